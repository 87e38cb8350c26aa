/* The SQLite backend's relying-party tables (schema v9): rp_ca and
 * relying_parties. Admin-rate writes and one read per RP connection's call:
 * statements are prepared per call, as certs_sqlite.c does. */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "keystore_sqlite.h"

static int prep(void *impl, sqlite3_stmt **st, const char *sql) {
    int rc = sqlite3_prepare_v2(duo__sq_db(impl), sql, -1, st, NULL);
    return rc == SQLITE_OK ? DUO_OK : duo__sq_map_rc(rc);
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

int duo__sq_rp_ca_insert(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st, "INSERT INTO rp_ca(id, created_at, cert, key_sealed) VALUES(1, ?1, ?2, ?3)")) != DUO_OK)
        goto out;
    if (sqlite3_bind_int64(st, 1, now) != SQLITE_OK || (r = blob(st, 2, row->cert, row->cert_len)) != DUO_OK ||
        (r = blob(st, 3, row->key.data, row->key.len)) != DUO_OK) {
        if (r == DUO_OK) r = DUO_E_STORE;
    } else if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
        r = rc == SQLITE_CONSTRAINT ? DUO_E_EXISTS : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

int duo__sq_rp_ca_get(void *impl, duo_ca_row *row) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, "SELECT cert, key_sealed, created_at FROM rp_ca WHERE id = 1")) != DUO_OK) return r;
    if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = col(st, 0, row->cert, sizeof row->cert, &row->cert_len)) == DUO_OK)
            r = col(st, 1, row->key.data, sizeof row->key.data, &row->key.len);
        row->created_at = sqlite3_column_int64(st, 2);
    } else {
        r = rc == SQLITE_DONE ? DUO_E_NO_CA : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

int duo__sq_rp_insert(void *impl, const duo_rp_row *row, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st,
                  "INSERT INTO relying_parties(name, cert_sha256, cert, issued, created_at)"
                  " VALUES(?1, ?2, ?3, ?4, ?5)")) != DUO_OK)
        goto out;
    if (sqlite3_bind_text(st, 1, row->name, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (r = blob(st, 2, row->cert_sha256, 32)) != DUO_OK || (r = blob(st, 3, row->cert, row->cert_len)) != DUO_OK ||
        sqlite3_bind_int(st, 4, row->issued ? 1 : 0) != SQLITE_OK || sqlite3_bind_int64(st, 5, now) != SQLITE_OK) {
        if (r == DUO_OK) r = DUO_E_STORE;
    } else if ((rc = sqlite3_step(st)) != SQLITE_DONE) {
        /* The name (primary key) or the certificate (unique) is taken. */
        r = rc == SQLITE_CONSTRAINT ? DUO_E_RP_EXISTS : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

int duo__sq_rp_remove(void *impl, const char *name, const duo_audit_event *ev, int64_t now) {
    sqlite3_stmt *st = NULL;
    int r;
    if ((r = duo__sq_tx_begin(impl)) != DUO_OK) return r;
    if ((r = prep(impl, &st, "UPDATE relying_parties SET removed_at = ?2 WHERE name = ?1 AND removed_at = 0")) !=
        DUO_OK)
        goto out;
    if (sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_int64(st, 2, now) != SQLITE_OK)
        r = DUO_E_STORE;
    else if (sqlite3_step(st) != SQLITE_DONE)
        r = duo__sq_map_rc(sqlite3_errcode(duo__sq_db(impl)));
    else if (sqlite3_changes(duo__sq_db(impl)) != 1)
        r = DUO_E_RP_NOT_FOUND;
    sqlite3_finalize(st);
    if (r == DUO_OK) r = duo__sq_audit(impl, ev, now);
out:
    return duo__sq_tx_end(impl, r);
}

/* One row of "SELECT name, cert_sha256, cert, issued, created_at, removed_at". */
static int read_row(sqlite3_stmt *st, duo_rp_row *row) {
    const unsigned char *name = sqlite3_column_text(st, 0);
    size_t fp_len = 0;
    int r;
    memset(row, 0, sizeof *row);
    if (name == NULL || strlen((const char *)name) > DUO_RP_ROW_NAME_MAX) return DUO_E_STATE_CORRUPT;
    memcpy(row->name, name, strlen((const char *)name) + 1);
    if ((r = col(st, 1, row->cert_sha256, 32, &fp_len)) != DUO_OK || fp_len != 32 ||
        (r = col(st, 2, row->cert, sizeof row->cert, &row->cert_len)) != DUO_OK)
        return r != DUO_OK ? r : DUO_E_STATE_CORRUPT;
    row->issued = sqlite3_column_int(st, 3);
    row->created_at = sqlite3_column_int64(st, 4);
    row->removed_at = sqlite3_column_int64(st, 5);
    return DUO_OK;
}

#define RP_COLS "SELECT name, cert_sha256, cert, issued, created_at, removed_at FROM relying_parties"

int duo__sq_rp_by_cert(void *impl, const uint8_t cert_sha256[32], duo_rp_row *row) {
    sqlite3_stmt *st = NULL;
    int r, rc;
    if ((r = prep(impl, &st, RP_COLS " WHERE cert_sha256 = ?1 AND removed_at = 0")) != DUO_OK) return r;
    if ((r = blob(st, 1, cert_sha256, 32)) == DUO_OK) {
        if ((rc = sqlite3_step(st)) == SQLITE_ROW)
            r = read_row(st, row);
        else
            r = rc == SQLITE_DONE ? DUO_E_RP_UNKNOWN : duo__sq_map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

int duo__sq_rp_list(void *impl, duo_rp_cb cb, void *data) {
    sqlite3_stmt *st = NULL;
    duo_rp_row *row = malloc(sizeof *row);
    int r, rc = SQLITE_DONE;
    if (row == NULL) return DUO_E_NOMEM;
    if ((r = prep(impl, &st, RP_COLS " ORDER BY created_at, name")) != DUO_OK) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = read_row(st, row)) != DUO_OK || (r = cb(data, row)) != 0) break;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = duo__sq_map_rc(rc);
    sqlite3_finalize(st);
out:
    free(row);
    return r;
}
