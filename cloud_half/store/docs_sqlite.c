/* The SQLite backend's citizen documents and presentation codes (schema
 * v10, docstore.h). Statements are prepared per call (a code is asked for
 * at most every few minutes per citizen). Every write is one write
 * transaction of the key store's connection (keystore_sqlite.h), with its
 * audit entry inside it. Attributes are stored as "name=value\n" lines
 * (docs.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "docstore.h"
#include "keystore_sqlite.h"

static int prep(void *impl, sqlite3_stmt **st, const char *sql) {
    int rc = sqlite3_prepare_v2(duo__sq_db(impl), sql, -1, st, NULL);
    return rc == SQLITE_OK ? DUO_OK : duo__sq_map_rc(rc);
}

static int text(sqlite3_stmt *st, int i, const char *s) {
    return sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

static int blob(sqlite3_stmt *st, int i, const void *p, size_t n) {
    return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_TRANSIENT) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

/* Copies a text column of at most max bytes into out (max + 1 bytes). */
static int col_text(sqlite3_stmt *st, int i, char *out, size_t max) {
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (t == NULL || n < 0 || (size_t)n > max) return DUO_E_STATE_CORRUPT;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return DUO_OK;
}

#define DOC_COLS "citizen_id, doc_type, attrs, photo, created_at, updated_at"

static int doc_from(sqlite3_stmt *st, duo_doc_row *row) {
    int r;
    const void *photo = sqlite3_column_blob(st, 3);
    int pn = sqlite3_column_bytes(st, 3);
    if ((r = col_text(st, 0, row->citizen_id, DUO_CITIZEN_ID_MAX)) != DUO_OK ||
        (r = col_text(st, 1, row->doc_type, DUO_DOC_TYPE_MAX)) != DUO_OK)
        return r;
    const unsigned char *at = sqlite3_column_text(st, 2);
    if (at == NULL || sqlite3_column_bytes(st, 2) >= DUO_DOC_ATTRS_TEXT_MAX) return DUO_E_STATE_CORRUPT;
    if ((r = duo__doc_attrs_decode(row, (const char *)at)) != DUO_OK) return r;
    if (pn < 0 || (size_t)pn > DUO_DOC_PHOTO_MAX) return DUO_E_STATE_CORRUPT;
    if (pn > 0 && photo != NULL) memcpy(row->photo, photo, (size_t)pn);
    row->photo_len = photo != NULL ? (size_t)pn : 0;
    row->created_at = sqlite3_column_int64(st, 4);
    row->updated_at = sqlite3_column_int64(st, 5);
    return DUO_OK;
}

int duo__sq_doc_set(void *impl, const duo_doc_row *row, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    char *attrs = malloc(DUO_DOC_ATTRS_TEXT_MAX);
    int r;
    if (attrs == NULL) return DUO_E_NOMEM;
    if ((r = duo__doc_attrs_encode(row, attrs, DUO_DOC_ATTRS_TEXT_MAX)) != DUO_OK) {
        free(attrs);
        return r;
    }
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) {
        free(attrs);
        return r;
    }
    /* An update keeps created_at: the row says since when the citizen has it. */
    if ((r = prep(impl, &st,
                  "INSERT INTO citizen_documents(" DOC_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?5)"
                  " ON CONFLICT(citizen_id, doc_type) DO UPDATE SET attrs = excluded.attrs,"
                  " photo = excluded.photo, updated_at = excluded.updated_at")) != DUO_OK)
        goto out;
    if ((r = text(st, 1, row->citizen_id)) != DUO_OK || (r = text(st, 2, row->doc_type)) != DUO_OK ||
        (r = text(st, 3, attrs)) != DUO_OK ||
        (row->photo_len > 0 ? (r = blob(st, 4, row->photo, row->photo_len))
                            : (r = sqlite3_bind_null(st, 4) == SQLITE_OK ? DUO_OK : DUO_E_STORE)) != DUO_OK ||
        (r = sqlite3_bind_int64(st, 5, now) == SQLITE_OK ? DUO_OK : DUO_E_STORE) != DUO_OK)
        goto out;
    {
        int rc = sqlite3_step(st);
        r = rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc);
    }
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    sqlite3_finalize(st);
    free(attrs);
    return duo__sq_tx_end(impl, r);
}

int duo__sq_doc_get(void *impl, duo_doc_row *row, const char *citizen_id, const char *doc_type) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, "SELECT " DOC_COLS " FROM citizen_documents WHERE citizen_id = ?1 AND doc_type = ?2")) !=
        DUO_OK)
        return r;
    if ((r = text(st, 1, citizen_id)) == DUO_OK && (r = text(st, 2, doc_type)) == DUO_OK) {
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? doc_from(st, row) : rc == SQLITE_DONE ? DUO_E_DOC_NOT_FOUND : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

int duo__sq_doc_list(void *impl, const char *citizen_id, int (*cb)(void *data, const duo_doc_row *row), void *data) {
    sqlite3_stmt *st = NULL;
    duo_doc_row *row = malloc(sizeof *row);
    int r, rc;
    if (row == NULL) return DUO_E_NOMEM;
    if ((r = prep(impl, &st,
                  "SELECT " DOC_COLS " FROM citizen_documents WHERE ?1 IS NULL OR citizen_id = ?1"
                  " ORDER BY citizen_id, doc_type")) != DUO_OK)
        goto out;
    if (citizen_id != NULL && (r = text(st, 1, citizen_id)) != DUO_OK) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(row, 0, sizeof *row);
        if ((r = doc_from(st, row)) != DUO_OK || (r = cb(data, row)) != 0) goto out;
    }
    r = rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc);
out:
    sqlite3_finalize(st);
    free(row);
    return r;
}

/* Runs one statement with two text bindings; *changed: rows it changed. */
static int run2(void *impl, const char *sql, const char *a, const char *b, int *changed) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, sql)) != DUO_OK) return r;
    if ((r = text(st, 1, a)) == DUO_OK && (r = text(st, 2, b)) == DUO_OK) {
        rc = sqlite3_step(st);
        r = rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    if (changed != NULL) *changed = sqlite3_changes(duo__sq_db(impl));
    return r;
}

int duo__sq_doc_remove(void *impl, const char *citizen_id, const char *doc_type, const duo_audit_event *ev,
                       int64_t now) {
    int r, changed = 0;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    r = run2(impl, "DELETE FROM citizen_documents WHERE citizen_id = ?1 AND doc_type = ?2", citizen_id, doc_type,
             &changed);
    if (r == DUO_OK && changed == 0) r = DUO_E_DOC_NOT_FOUND;
    if (r == DUO_OK)
        r = run2(impl, "DELETE FROM presentation_codes WHERE citizen_id = ?1 AND doc_type = ?2 AND redeemed_at IS NULL",
                 citizen_id, doc_type, NULL);
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
    return duo__sq_tx_end(impl, r);
}

/* Inside a write transaction: DUO_OK if the key exists, its policy MAC holds
 * and it is active. */
static int key_active(void *impl, const uint8_t *key_id) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = duo__sq_key_mac_verify(impl, key_id)) != DUO_OK) return r;
    if ((r = prep(impl, &st, "SELECT state FROM keys WHERE key_id = ?1")) != DUO_OK) return r;
    if ((r = blob(st, 1, key_id, DUO_KEY_ID_BYTES)) == DUO_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *s = sqlite3_column_text(st, 0);
            r = s != NULL && strcmp((const char *)s, "active") == 0 ? DUO_OK : DUO_E_KEY_NOT_ACTIVE;
        } else {
            r = rc == SQLITE_DONE ? DUO_E_NOT_FOUND : duo__sq_map_rc(rc);
        }
    }
    sqlite3_finalize(st);
    return r;
}

static int doc_exists(void *impl, const char *citizen_id, const char *doc_type) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, "SELECT 1 FROM citizen_documents WHERE citizen_id = ?1 AND doc_type = ?2")) != DUO_OK)
        return r;
    if ((r = text(st, 1, citizen_id)) == DUO_OK && (r = text(st, 2, doc_type)) == DUO_OK) {
        rc = sqlite3_step(st);
        r = rc == SQLITE_ROW ? DUO_OK : rc == SQLITE_DONE ? DUO_E_DOC_NOT_FOUND : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

int duo__sq_code_insert(void *impl, const duo_code_row *row, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_active(impl, row->key_id)) != DUO_OK ||
        (r = doc_exists(impl, row->citizen_id, row->doc_type)) != DUO_OK)
        goto out;
    if ((r = prep(impl, &st,
                  "INSERT INTO presentation_codes(code_hash, barcode_hash, key_id, citizen_id, doc_type,"
                  " issued_at, expires_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")) != DUO_OK)
        goto out;
    if ((r = blob(st, 1, row->code_hash, 32)) == DUO_OK && (r = blob(st, 2, row->barcode_hash, 32)) == DUO_OK &&
        (r = blob(st, 3, row->key_id, DUO_KEY_ID_BYTES)) == DUO_OK && (r = text(st, 4, row->citizen_id)) == DUO_OK &&
        (r = text(st, 5, row->doc_type)) == DUO_OK) {
        if (sqlite3_bind_int64(st, 6, row->issued_at) != SQLITE_OK ||
            sqlite3_bind_int64(st, 7, row->expires_at) != SQLITE_OK) {
            r = DUO_E_STORE;
        } else {
            int rc = sqlite3_step(st);
            r = rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc); /* a colliding hash: DUO_E_EXISTS */
        }
    }
    sqlite3_finalize(st);
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

/* Reads the code's row (inside the transaction); *redeemed: 1 if it was. */
static int code_read(void *impl, duo_code_row *code, int *redeemed, const uint8_t *hash, int by_barcode) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st,
                  by_barcode ? "SELECT key_id, citizen_id, doc_type, issued_at, expires_at, redeemed_at, code_hash"
                               " FROM presentation_codes WHERE barcode_hash = ?1"
                             : "SELECT key_id, citizen_id, doc_type, issued_at, expires_at, redeemed_at, code_hash"
                               " FROM presentation_codes WHERE code_hash = ?1")) != DUO_OK)
        return r;
    if ((r = blob(st, 1, hash, 32)) != DUO_OK) goto out;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        r = rc == SQLITE_DONE ? DUO_E_CODE_UNKNOWN : duo__sq_map_rc(rc);
        goto out;
    }
    if (sqlite3_column_bytes(st, 0) != DUO_KEY_ID_BYTES || sqlite3_column_bytes(st, 6) != 32) {
        r = DUO_E_STATE_CORRUPT;
        goto out;
    }
    memcpy(code->key_id, sqlite3_column_blob(st, 0), DUO_KEY_ID_BYTES);
    memcpy(code->code_hash, sqlite3_column_blob(st, 6), 32);
    if ((r = col_text(st, 1, code->citizen_id, DUO_CITIZEN_ID_MAX)) != DUO_OK ||
        (r = col_text(st, 2, code->doc_type, DUO_DOC_TYPE_MAX)) != DUO_OK)
        goto out;
    code->issued_at = sqlite3_column_int64(st, 3);
    code->expires_at = sqlite3_column_int64(st, 4);
    *redeemed = sqlite3_column_type(st, 5) != SQLITE_NULL;
out:
    sqlite3_finalize(st);
    return r;
}

/* The conditional UPDATE that makes redemption exactly-once. */
static int code_mark(void *impl, const uint8_t *code_hash, const char *rp_name, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st,
                  "UPDATE presentation_codes SET redeemed_at = ?2, redeemed_by = ?3"
                  " WHERE code_hash = ?1 AND redeemed_at IS NULL")) != DUO_OK)
        return r;
    if ((r = blob(st, 1, code_hash, 32)) == DUO_OK && (r = text(st, 3, rp_name)) == DUO_OK) {
        if (sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
            r = DUO_E_STORE;
        } else {
            rc = sqlite3_step(st);
            r = rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc);
            if (r == DUO_OK && sqlite3_changes(duo__sq_db(impl)) != 1) r = DUO_E_CODE_USED;
        }
    }
    sqlite3_finalize(st);
    return r;
}

int duo__sq_code_redeem(void *impl, duo_doc_row *doc, duo_code_row *code, const uint8_t hash[32], int by_barcode,
                        const char *doc_type, const char *rp_name, int64_t now) {
    int r, redeemed = 0;
    char detail[DUO_AUDIT_DETAIL_MAX + 1];
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = code_read(impl, code, &redeemed, hash, by_barcode)) != DUO_OK) goto out;
    if ((r = duo__code_redeemable(code, redeemed, doc_type, now)) != DUO_OK) goto out;
    if ((r = key_active(impl, code->key_id)) != DUO_OK) {
        if (r == DUO_E_NOT_FOUND) r = DUO_E_KEY_NOT_ACTIVE;
        goto out;
    }
    if ((r = duo__sq_doc_get(impl, doc, code->citizen_id, code->doc_type)) != DUO_OK) goto out;
    if ((r = code_mark(impl, code->code_hash, rp_name, now)) != DUO_OK) goto out;
    {
        duo_audit_event ev = duo__code_redeem_event(detail, sizeof detail, code, rp_name);
        r = duo__sq_audit(impl, &ev, now);
    }
out:
    return duo__sq_tx_end(impl, r);
}

int duo__sq_code_purge(void *impl, size_t *n, int64_t before) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st, "DELETE FROM presentation_codes WHERE expires_at < ?1")) == DUO_OK) {
        if (sqlite3_bind_int64(st, 1, before) != SQLITE_OK) {
            r = DUO_E_STORE;
        } else {
            rc = sqlite3_step(st);
            r = rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc);
            if (r == DUO_OK) *n = (size_t)sqlite3_changes(duo__sq_db(impl));
        }
    }
    sqlite3_finalize(st);
    return duo__sq_tx_end(impl, r);
}
