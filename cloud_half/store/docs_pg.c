/* The PostgreSQL backend's citizen documents and presentation codes, as in
 * docs_sqlite.c (its v7 here; the integrator renumbers). Every write is one
 * transaction of the key store's connection (keystore_pg.h) with its audit
 * entry; the key row is locked (FOR UPDATE) while a code is made or
 * redeemed, and the redemption's UPDATE is conditional on "not redeemed",
 * so of two nodes redeeming one code exactly one changes the row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docstore.h"
#include "keystore_pg.h"

#define DOC_COLS "citizen_id, doc_type, attrs, photo, created_at, updated_at"

static int doc_from(const PGresult *res, int row, duo_doc_row *d) {
    char *attrs = malloc(DUO_DOC_ATTRS_TEXT_MAX);
    int r;
    if (attrs == NULL) return DUO_E_NOMEM;
    if ((r = duo__pg_col_text(res, row, 0, d->citizen_id, sizeof d->citizen_id)) == DUO_OK &&
        (r = duo__pg_col_text(res, row, 1, d->doc_type, sizeof d->doc_type)) == DUO_OK &&
        (r = duo__pg_col_text(res, row, 2, attrs, DUO_DOC_ATTRS_TEXT_MAX)) == DUO_OK &&
        (r = duo__pg_col_blob(res, row, 3, d->photo, 0, sizeof d->photo, &d->photo_len)) == DUO_OK &&
        (r = duo__pg_col_i64(res, row, 4, &d->created_at)) == DUO_OK &&
        (r = duo__pg_col_i64(res, row, 5, &d->updated_at)) == DUO_OK)
        r = duo__doc_attrs_decode(d, attrs);
    free(attrs);
    return r;
}

int duo__pg_doc_set(void *impl, const duo_doc_row *row, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    PGresult *res;
    char *attrs = malloc(DUO_DOC_ATTRS_TEXT_MAX);
    int r;
    if (attrs == NULL) return DUO_E_NOMEM;
    if ((r = duo__doc_attrs_encode(row, attrs, DUO_DOC_ATTRS_TEXT_MAX)) != DUO_OK ||
        (r = duo__pg_tx_begin(impl)) != DUO_OK) {
        free(attrs);
        return r;
    }
    duo__pg_text(&q, row->citizen_id);
    duo__pg_text(&q, row->doc_type);
    duo__pg_text(&q, attrs);
    duo__pg_blob(&q, row->photo, row->photo_len);
    duo__pg_i64(&q, now);
    if ((r = duo__pg_exec(impl, &res,
                          "INSERT INTO citizen_documents(" DOC_COLS ") VALUES($1, $2, $3, $4, $5, $5)"
                          " ON CONFLICT(citizen_id, doc_type) DO UPDATE SET attrs = excluded.attrs,"
                          " photo = excluded.photo, updated_at = excluded.updated_at",
                          &q)) == DUO_OK)
        PQclear(res);
    if (r == DUO_OK) r = duo__pg_audit(impl, ev, now);
    free(attrs);
    return duo__pg_tx_end(impl, r);
}

int duo__pg_doc_get(void *impl, duo_doc_row *row, const char *citizen_id, const char *doc_type) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    duo__pg_text(&q, citizen_id);
    duo__pg_text(&q, doc_type);
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT " DOC_COLS " FROM citizen_documents WHERE citizen_id = $1 AND doc_type = $2", &q)) !=
        DUO_OK)
        return r;
    r = PQntuples(res) == 1 ? doc_from(res, 0, row) : DUO_E_DOC_NOT_FOUND;
    PQclear(res);
    return r;
}

int duo__pg_doc_list(void *impl, const char *citizen_id, int (*cb)(void *data, const duo_doc_row *row), void *data) {
    duo_pg_params q = {0};
    PGresult *res;
    duo_doc_row *row = malloc(sizeof *row);
    int r;
    if (row == NULL) return DUO_E_NOMEM;
    duo__pg_text(&q, citizen_id);
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT " DOC_COLS " FROM citizen_documents WHERE $1::text IS NULL OR citizen_id = $1"
                          " ORDER BY citizen_id, doc_type",
                          &q)) == DUO_OK) {
        for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++) {
            memset(row, 0, sizeof *row);
            if ((r = doc_from(res, i, row)) == DUO_OK) r = cb(data, row);
        }
        PQclear(res);
    }
    free(row);
    return r;
}

/* Runs a statement of two text parameters; *changed: rows it changed. */
static int run2(void *impl, const char *sql, const char *a, const char *b, int *changed) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    duo__pg_text(&q, a);
    duo__pg_text(&q, b);
    if ((r = duo__pg_exec(impl, &res, sql, &q)) != DUO_OK) return r;
    if (changed != NULL) *changed = atoi(PQcmdTuples(res));
    PQclear(res);
    return DUO_OK;
}

int duo__pg_doc_remove(void *impl, const char *citizen_id, const char *doc_type, const duo_audit_event *ev,
                       int64_t now) {
    int r, changed = 0;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    r = run2(impl, "DELETE FROM citizen_documents WHERE citizen_id = $1 AND doc_type = $2", citizen_id, doc_type,
             &changed);
    if (r == DUO_OK && changed == 0) r = DUO_E_DOC_NOT_FOUND;
    if (r == DUO_OK)
        r = run2(impl, "DELETE FROM presentation_codes WHERE citizen_id = $1 AND doc_type = $2 AND redeemed_at IS NULL",
                 citizen_id, doc_type, NULL);
    if (r == DUO_OK) r = duo__pg_audit(impl, ev, now);
    return duo__pg_tx_end(impl, r);
}

int duo__pg_code_insert(void *impl, const duo_code_row *row, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    PGresult *res;
    int r, n = 0;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = duo__pg_key_active(impl, row->key_id)) != DUO_OK) goto out;
    if ((r = run2(impl, "SELECT 1 FROM citizen_documents WHERE citizen_id = $1 AND doc_type = $2", row->citizen_id,
                  row->doc_type, &n)) != DUO_OK)
        goto out;
    if (n == 0) {
        r = DUO_E_DOC_NOT_FOUND;
        goto out;
    }
    duo__pg_blob(&q, row->code_hash, 32);
    duo__pg_blob(&q, row->barcode_hash, 32);
    duo__pg_blob(&q, row->key_id, DUO_KEY_ID_BYTES);
    duo__pg_text(&q, row->citizen_id);
    duo__pg_text(&q, row->doc_type);
    duo__pg_i64(&q, row->issued_at);
    duo__pg_i64(&q, row->expires_at);
    if ((r = duo__pg_exec(impl, &res,
                          "INSERT INTO presentation_codes(code_hash, barcode_hash, key_id, citizen_id, doc_type,"
                          " issued_at, expires_at) VALUES($1, $2, $3, $4, $5, $6, $7)",
                          &q)) == DUO_OK) /* a colliding hash: DUO_E_EXISTS */
        PQclear(res);
    if (r == DUO_OK) r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

static int code_read(void *impl, duo_code_row *code, int *redeemed, const uint8_t *hash, int by_barcode) {
    duo_pg_params q = {0};
    PGresult *res;
    int64_t red = 0;
    int r;
    duo__pg_blob(&q, hash, 32);
    if ((r = duo__pg_exec(impl, &res,
                          by_barcode ? "SELECT key_id, citizen_id, doc_type, issued_at, expires_at,"
                                       " coalesce(redeemed_at, 0), code_hash FROM presentation_codes"
                                       " WHERE barcode_hash = $1 FOR UPDATE"
                                     : "SELECT key_id, citizen_id, doc_type, issued_at, expires_at,"
                                       " coalesce(redeemed_at, 0), code_hash FROM presentation_codes"
                                       " WHERE code_hash = $1 FOR UPDATE",
                          &q)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return DUO_E_CODE_UNKNOWN;
    }
    size_t got;
    if ((r = duo__pg_col_blob(res, 0, 0, code->key_id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, &got)) == DUO_OK &&
        (r = duo__pg_col_text(res, 0, 1, code->citizen_id, sizeof code->citizen_id)) == DUO_OK &&
        (r = duo__pg_col_text(res, 0, 2, code->doc_type, sizeof code->doc_type)) == DUO_OK &&
        (r = duo__pg_col_i64(res, 0, 3, &code->issued_at)) == DUO_OK &&
        (r = duo__pg_col_i64(res, 0, 4, &code->expires_at)) == DUO_OK &&
        (r = duo__pg_col_i64(res, 0, 5, &red)) == DUO_OK)
        r = duo__pg_col_blob(res, 0, 6, code->code_hash, 32, 32, &got);
    PQclear(res);
    *redeemed = red != 0;
    return r;
}

static int code_mark(void *impl, const uint8_t *code_hash, const char *rp_name, int64_t now) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    duo__pg_blob(&q, code_hash, 32);
    duo__pg_i64(&q, now);
    duo__pg_text(&q, rp_name);
    if ((r = duo__pg_exec(impl, &res,
                          "UPDATE presentation_codes SET redeemed_at = $2, redeemed_by = $3"
                          " WHERE code_hash = $1 AND redeemed_at IS NULL",
                          &q)) != DUO_OK)
        return r;
    if (strcmp(PQcmdTuples(res), "1") != 0) r = DUO_E_CODE_USED;
    PQclear(res);
    return r;
}

int duo__pg_code_redeem(void *impl, duo_doc_row *doc, duo_code_row *code, const uint8_t hash[32], int by_barcode,
                        const char *doc_type, const char *rp_name, int64_t now) {
    int r, redeemed = 0;
    char detail[DUO_AUDIT_DETAIL_MAX + 1];
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = code_read(impl, code, &redeemed, hash, by_barcode)) != DUO_OK) goto out;
    if ((r = duo__code_redeemable(code, redeemed, doc_type, now)) != DUO_OK) goto out;
    if ((r = duo__pg_key_active(impl, code->key_id)) != DUO_OK) {
        if (r == DUO_E_NOT_FOUND) r = DUO_E_KEY_NOT_ACTIVE;
        goto out;
    }
    if ((r = duo__pg_doc_get(impl, doc, code->citizen_id, code->doc_type)) != DUO_OK) goto out;
    if ((r = code_mark(impl, code->code_hash, rp_name, now)) != DUO_OK) goto out;
    {
        duo_audit_event ev = duo__code_redeem_event(detail, sizeof detail, code, rp_name);
        r = duo__pg_audit(impl, &ev, now);
    }
out:
    return duo__pg_tx_end(impl, r);
}

int duo__pg_code_purge(void *impl, size_t *n, int64_t before) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    duo__pg_i64(&q, before);
    if ((r = duo__pg_exec(impl, &res, "DELETE FROM presentation_codes WHERE expires_at < $1", &q)) == DUO_OK) {
        *n = (size_t)atol(PQcmdTuples(res));
        PQclear(res);
    }
    return duo__pg_tx_end(impl, r);
}
