/* The SQLite backend's certificate tables (schema v4): issuing_ca and
 * certificates. Admin-rate operations: statements are prepared per call.
 * Every write is one write transaction of the key store's connection
 * (keystore_sqlite.h), with its audit entry inside it. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "keystore_sqlite.h"

static int prep(void *impl, sqlite3_stmt **st, const char *sql) {
    int rc = sqlite3_prepare_v2(duo__sq_db(impl), sql, -1, st, NULL);
    return rc == SQLITE_OK ? DUO_OK : duo__sq_map_rc(rc);
}

/* Steps a statement expected to finish without rows; finalizes it. */
static int run(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? DUO_OK : duo__sq_map_rc(rc);
}

static int blob(sqlite3_stmt *st, int i, const void *p, size_t n) {
    return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_TRANSIENT) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

/* Copies a blob column of 1..cap bytes. */
static int col(sqlite3_stmt *st, int i, uint8_t *out, size_t cap, size_t *got) {
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (p == NULL || n <= 0 || (size_t)n > cap) return DUO_E_STATE_CORRUPT;
    memcpy(out, p, (size_t)n);
    *got = (size_t)n;
    return DUO_OK;
}

int duo__sq_ca_insert(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st,
                  "INSERT INTO issuing_ca(id, created_at, cert, key_sealed, cert_days, country, crl_url)"
                  " VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6)")) != DUO_OK)
        goto out;
    if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK || (r = blob(st, 2, row->cert, row->cert_len)) != DUO_OK ||
        (r = blob(st, 3, row->key.data, row->key.len)) != DUO_OK ||
        sqlite3_bind_int64(st, 4, row->cert_days) != SQLITE_OK ||
        sqlite3_bind_text(st, 5, row->country, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 6, row->crl_url, -1, SQLITE_TRANSIENT) != SQLITE_OK) {
        if (r == DUO_OK) r = DUO_E_STORE;
        sqlite3_finalize(st);
    } else if ((r = run(st)) == DUO_OK)
        r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

int duo__sq_ca_get(void *impl, duo_ca_row *row) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st,
                  "SELECT cert, key_sealed, crl_number, created_at, cert_days, country, crl_url"
                  " FROM issuing_ca WHERE id = 1")) != DUO_OK)
        return r;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *cc = sqlite3_column_text(st, 5), *url = sqlite3_column_text(st, 6);
        int64_t days = sqlite3_column_int64(st, 4);
        if ((r = col(st, 0, row->cert, sizeof row->cert, &row->cert_len)) == DUO_OK)
            r = col(st, 1, row->key.data, sizeof row->key.data, &row->key.len);
        row->crl_number = (uint64_t)sqlite3_column_int64(st, 2);
        row->created_at = sqlite3_column_int64(st, 3);
        if (r == DUO_OK && (cc == NULL || url == NULL || strlen((const char *)cc) != 2 ||
                            strlen((const char *)url) > DUO_CRL_URL_MAX || days <= 0 || days > 36500))
            r = DUO_E_STATE_CORRUPT;
        if (r == DUO_OK) {
            row->cert_days = (uint32_t)days;
            memcpy(row->country, cc, 3);
            memcpy(row->crl_url, url, strlen((const char *)url) + 1);
        }
    } else {
        r = rc == SQLITE_DONE ? DUO_E_NO_CA : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

int duo__sq_ca_next_crl(void *impl, uint64_t *number, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st,
                  "UPDATE issuing_ca SET crl_number = crl_number + 1 WHERE id = 1"
                  " RETURNING crl_number")) != DUO_OK)
        goto out;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW)
        *number = (uint64_t)sqlite3_column_int64(st, 0);
    else
        r = rc == SQLITE_DONE ? DUO_E_NO_CA : duo__sq_map_rc(rc);
    sqlite3_finalize(st);
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

/* Inside the write transaction: the key exists and is active. */
static int key_active(void *impl, const uint8_t *key_id) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, "SELECT state FROM keys WHERE key_id = ?1")) != DUO_OK) return r;
    if ((r = blob(st, 1, key_id, DUO_KEY_ID_BYTES)) == DUO_OK) {
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *s = sqlite3_column_text(st, 0);
            r = s != NULL && strcmp((const char *)s, "active") == 0 ? DUO_OK : DUO_E_KEY_NOT_ACTIVE;
        } else {
            r = rc == SQLITE_DONE ? DUO_E_NOT_FOUND : duo__sq_map_rc(rc);
        }
    }
    sqlite3_finalize(st);
    /* The state just read decides: it must be the one duosign wrote. */
    return r == DUO_OK ? duo__sq_key_mac_verify(impl, key_id) : r;
}

int duo__sq_cert_insert(void *impl, const duo_cert_row *c, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_active(impl, c->key_id)) != DUO_OK) goto out;
    if ((r = prep(impl, &st,
                  "INSERT INTO certificates(serial, key_id, role, origin, der, issued_at, not_after)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")) != DUO_OK)
        goto out;
    if ((r = blob(st, 1, c->serial, c->serial_len)) != DUO_OK || (r = blob(st, 2, c->key_id, DUO_KEY_ID_BYTES)) ||
        (r = blob(st, 5, c->der, c->der_len)) != DUO_OK ||
        sqlite3_bind_text(st, 3, c->role == DUO_CERT_ROLE_AUTH ? "auth" : "sign", -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, c->origin == DUO_CERT_ISSUED ? "issued" : "imported", -1, SQLITE_STATIC) !=
            SQLITE_OK ||
        sqlite3_bind_int64(st, 6, c->issued_at) != SQLITE_OK || sqlite3_bind_int64(st, 7, c->not_after) != SQLITE_OK) {
        if (r == DUO_OK) r = DUO_E_STORE;
        sqlite3_finalize(st);
        goto out;
    }
    if ((r = run(st)) == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

static int read_cert(sqlite3_stmt *st, duo_cert_row *c) {
    const unsigned char *role = sqlite3_column_text(st, 2), *origin = sqlite3_column_text(st, 3),
                        *status = sqlite3_column_text(st, 7);
    size_t kid = 0;
    int r;
    memset(c, 0, sizeof *c);
    if ((r = col(st, 0, c->serial, sizeof c->serial, &c->serial_len)) != DUO_OK ||
        (r = col(st, 1, c->key_id, sizeof c->key_id, &kid)) != DUO_OK ||
        (r = col(st, 4, c->der, sizeof c->der, &c->der_len)) != DUO_OK)
        return r;
    if (kid != DUO_KEY_ID_BYTES || role == NULL || origin == NULL || status == NULL) return DUO_E_STATE_CORRUPT;
    c->role = strcmp((const char *)role, "auth") == 0 ? DUO_CERT_ROLE_AUTH : DUO_CERT_ROLE_SIGN;
    c->origin = strcmp((const char *)origin, "issued") == 0 ? DUO_CERT_ISSUED : DUO_CERT_IMPORTED;
    c->issued_at = sqlite3_column_int64(st, 5);
    c->not_after = sqlite3_column_int64(st, 6);
    c->revoked = strcmp((const char *)status, "revoked") == 0;
    c->revoked_at = sqlite3_column_int64(st, 8);
    c->reason = sqlite3_column_int(st, 9);
    return DUO_OK;
}

int duo__sq_cert_list(void *impl, const uint8_t *key_id, duo_cert_cb cb, void *data) {
    sqlite3_stmt *st = NULL;
    duo_cert_row *c;
    int r, rc;
    if ((c = malloc(sizeof *c)) == NULL) return DUO_E_NOMEM;
    if ((r = prep(impl, &st,
                  "SELECT serial, key_id, role, origin, der, issued_at, not_after, status, revoked_at, reason"
                  " FROM certificates WHERE ?1 IS NULL OR key_id = ?1 ORDER BY issued_at, rowid")) != DUO_OK)
        goto out;
    if (key_id != NULL && (r = blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = read_cert(st, c)) != DUO_OK || (r = cb(data, c)) != 0) break;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = duo__sq_map_rc(rc);
out:
    sqlite3_finalize(st);
    free(c);
    return r;
}

int duo__sq_cert_revoke_key(void *impl, size_t *n, const uint8_t *key_id, int reason, const duo_audit_event *ev,
                            int64_t now) {
    sqlite3_stmt *st = NULL;
    int r;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st,
                  "UPDATE certificates SET status = 'revoked', revoked_at = ?2, reason = ?3"
                  " WHERE key_id = ?1 AND status = 'good'")) != DUO_OK)
        goto out;
    if ((r = blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
        sqlite3_bind_int(st, 3, reason) != SQLITE_OK) {
        if (r == DUO_OK) r = DUO_E_STORE;
        sqlite3_finalize(st);
        goto out;
    }
    if ((r = run(st)) != DUO_OK) goto out;
    *n = (size_t)sqlite3_changes(duo__sq_db(impl));
    if (*n > 0) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

int duo__sq_key_name_get(void *impl, char *name, const uint8_t *key_id) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, "SELECT citizen_name FROM keys WHERE key_id = ?1")) != DUO_OK) return r;
    if ((r = blob(st, 1, key_id, DUO_KEY_ID_BYTES)) == DUO_OK) {
        if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            int len = sqlite3_column_bytes(st, 0);
            if (len < 0 || len > DUO_CITIZEN_NAME_MAX)
                r = DUO_E_STATE_CORRUPT;
            else if (t != NULL)
                memcpy(name, t, (size_t)len + 1);
        } else {
            r = rc == SQLITE_DONE ? DUO_E_NOT_FOUND : duo__sq_map_rc(rc);
        }
    }
    sqlite3_finalize(st);
    return r;
}
