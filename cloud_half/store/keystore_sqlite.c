/* The SQLite backend of the key store. See keystore.h and docs/STORE.md.
 *
 * One connection per duo_keystore. WAL + synchronous=FULL: a transaction is
 * durable when COMMIT returns, and a crash at any instant leaves the last
 * committed state. Every write runs under BEGIN IMMEDIATE, so the write lock
 * is taken before anything is read and concurrent writers (threads or
 * processes) are serialised by SQLite (busy_timeout) rather than failing
 * halfway; checks and updates inside one transaction are therefore atomic. */
#include "keystore_sqlite.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "duosign/mem.h"
#include "policy_mac.h"
#include "sealed_columns.h"

#define SCHEMA_VERSION 12

/* Schema v1. The audit triggers stop accidental updates and deletes; they are
 * not a security boundary (the hash chain is). */
static const char schema_v1[] =
    "CREATE TABLE keys("
    " key_id BLOB PRIMARY KEY NOT NULL CHECK(length(key_id) = 16),"
    " citizen_id TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK(state IN ('pending','active','locked','suspended','revoked')),"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " paillier_bits INTEGER NOT NULL,"
    " q BLOB NOT NULL CHECK(length(q) = 33), q2 BLOB NOT NULL CHECK(length(q2) = 33),"
    " x1_sealed BLOB, p_sealed BLOB, q_sealed BLOB,"
    " secret_cur_sealed BLOB, secret_pend_sealed BLOB,"
    " secret_version INTEGER NOT NULL, retired_count INTEGER NOT NULL DEFAULT 0,"
    " pin_failures INTEGER NOT NULL DEFAULT 0, locked_until INTEGER NOT NULL DEFAULT 0,"
    " reason TEXT NOT NULL DEFAULT '', revocation_hash BLOB,"
    " version INTEGER NOT NULL);"
    "CREATE INDEX keys_citizen ON keys(citizen_id);"
    "CREATE TABLE retired_secrets("
    " key_id BLOB NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    " n INTEGER NOT NULL, secret_hash BLOB NOT NULL CHECK(length(secret_hash) = 32),"
    " sealed BLOB NOT NULL, retired_at INTEGER NOT NULL,"
    " PRIMARY KEY(key_id, n));"
    "CREATE INDEX retired_hash ON retired_secrets(secret_hash);"
    "CREATE TABLE tokens("
    " token_hash BLOB PRIMARY KEY NOT NULL CHECK(length(token_hash) = 32),"
    " citizen_id TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " used_at INTEGER, key_id BLOB);"
    "CREATE TABLE audit("
    " seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, kind TEXT NOT NULL, key_id BLOB,"
    " citizen_id TEXT NOT NULL, detail TEXT NOT NULL,"
    " prev_hash BLOB NOT NULL, hash BLOB NOT NULL);"
    "CREATE TABLE audit_head(id INTEGER PRIMARY KEY CHECK(id = 1),"
    " count INTEGER NOT NULL, head BLOB NOT NULL);"
    "INSERT INTO audit_head VALUES(1, 0, zeroblob(32));"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;"
    "PRAGMA user_version = 1;";

/* v2: the enrolment record written when round 4 succeeds, so a confirmation
 * can be checked (and repeated) from the database alone, also after a
 * restart: the enrolment sid, the key it created and the token it consumes. */
static const char schema_v1_to_v2[] = "CREATE TABLE IF NOT EXISTS enrolments("
                                      " sid BLOB PRIMARY KEY NOT NULL CHECK(length(sid) = 32),"
                                      " key_id BLOB NOT NULL UNIQUE REFERENCES keys(key_id) ON DELETE CASCADE,"
                                      " token_hash BLOB NOT NULL CHECK(length(token_hash) = 32));"
                                      "PRAGMA user_version = 2;";

/* v3: the device nonces accepted under each device secret (hashes), so a
 * replayed old request is told apart from a clone (DESIGN 3.5, SECURITY 3.2).
 * Bounded per secret by the writer; deleted with the key's retired secrets. */
static const char schema_v2_to_v3[] = "CREATE TABLE IF NOT EXISTS seen_nonces("
                                      " key_id BLOB NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
                                      " secret_hash BLOB NOT NULL CHECK(length(secret_hash) = 32),"
                                      " nonce_hash BLOB NOT NULL CHECK(length(nonce_hash) = 32),"
                                      " seen_at INTEGER NOT NULL,"
                                      " PRIMARY KEY(key_id, secret_hash, nonce_hash));"
                                      "PRAGMA user_version = 3;";

/* v4: the issuing CA and the certificates (docs/CERTIFICATES.md), and the
 * citizen's name, given with the token and copied to the key it enrols (the
 * certificate's subject). Old tokens and keys get "" (no name). */
static const char schema_v4_tokens_name[] = "ALTER TABLE tokens ADD COLUMN citizen_name TEXT NOT NULL DEFAULT '';";
static const char schema_v4_keys_name[] = "ALTER TABLE keys ADD COLUMN citizen_name TEXT NOT NULL DEFAULT '';";
static const char schema_v3_to_v4[] = "CREATE TABLE IF NOT EXISTS issuing_ca(id INTEGER PRIMARY KEY CHECK(id = 1),"
                                      " created_at INTEGER NOT NULL, cert BLOB NOT NULL, key_sealed BLOB NOT NULL,"
                                      " crl_number INTEGER NOT NULL DEFAULT 0, cert_days INTEGER NOT NULL,"
                                      " country TEXT NOT NULL, crl_url TEXT NOT NULL);"
                                      "CREATE TABLE IF NOT EXISTS certificates("
                                      " serial BLOB PRIMARY KEY NOT NULL CHECK(length(serial) BETWEEN 1 AND 20),"
                                      " key_id BLOB NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
                                      " role TEXT NOT NULL CHECK(role IN ('auth','sign')),"
                                      " origin TEXT NOT NULL CHECK(origin IN ('issued','imported')),"
                                      " der BLOB NOT NULL, issued_at INTEGER NOT NULL, not_after INTEGER NOT NULL,"
                                      " status TEXT NOT NULL DEFAULT 'good' CHECK(status IN ('good','revoked')),"
                                      " revoked_at INTEGER, reason INTEGER);"
                                      "CREATE INDEX IF NOT EXISTS certificates_key ON certificates(key_id);"
                                      "PRAGMA user_version = 4;";

/* v5: the key's curve (vocab.h duo_curve). Rows written before curves
 * existed are secp256k1 keys: the default 1 reads them as such. SQLite has
 * no ADD COLUMN IF NOT EXISTS: migrate() skips the ALTER when a store whose
 * user_version was set back already has the column. */
static const char schema_v4_to_v5[] = "ALTER TABLE keys ADD COLUMN curve INTEGER NOT NULL DEFAULT 1"
                                      " CHECK(curve IN (1, 2));";
static const char schema_v5_mark[] = "PRAGMA user_version = 5;";
/* v6: the policy MAC (policy_mac.h) over state, pin_failures, locked_until,
 * secret_version and the key id. The column is added and every existing row
 * MAC'd in the migration's transaction (the backend has the MAC key then), so
 * from v6 on a NULL MAC is a mismatch like any other. */
static const char schema_v5_keys_mac[] = "ALTER TABLE keys ADD COLUMN policy_mac BLOB;";

/* v7: the key's role (vocab.h duo_key_role; 0 = a key from before roles) and
 * the token's two role slots: a token admits one auth and one sign
 * enrolment, or one legacy one; used_at is set when it is spent. Each added
 * only where missing (migrate_v7). */
static const char schema_v7_keys_role[] =
    "ALTER TABLE keys ADD COLUMN role INTEGER NOT NULL DEFAULT 0 CHECK(role IN (0, 1, 2));";
static const char schema_v7_tokens_auth[] = "ALTER TABLE tokens ADD COLUMN auth_key_id BLOB;";
static const char schema_v7_tokens_sign[] = "ALTER TABLE tokens ADD COLUMN sign_key_id BLOB;";

/* v9: relying parties (docs/RELYING_PARTIES.md): the RP CA (its key sealed
 * like the issuing CA's) and the registered RPs. It runs after v7 (keys.role,
 * above); v8 (signing sessions, branch pg2) is another branch's step: this
 * one only creates what is missing, so it runs after it or without it. */
static const char schema_v9[] = "CREATE TABLE IF NOT EXISTS rp_ca(id INTEGER PRIMARY KEY CHECK(id = 1),"
                                " created_at INTEGER NOT NULL, cert BLOB NOT NULL, key_sealed BLOB NOT NULL);"
                                "CREATE TABLE IF NOT EXISTS relying_parties("
                                " name TEXT PRIMARY KEY NOT NULL CHECK(length(name) BETWEEN 1 AND 64),"
                                " cert_sha256 BLOB NOT NULL UNIQUE CHECK(length(cert_sha256) = 32),"
                                " cert BLOB NOT NULL, issued INTEGER NOT NULL CHECK(issued IN (0, 1)),"
                                " created_at INTEGER NOT NULL, removed_at INTEGER NOT NULL DEFAULT 0);"
                                "PRAGMA user_version = 9;";

#define KEY_COLS                                                                             \
    "key_id, citizen_id, state, created_at, updated_at, paillier_bits, q, q2, pin_failures," \
    " locked_until, reason, secret_pend_sealed IS NOT NULL, revocation_hash IS NOT NULL,"    \
    " retired_count, version, secret_version, x1_sealed, p_sealed, q_sealed,"                \
    " secret_cur_sealed, secret_pend_sealed, curve, policy_mac, role, resync_epoch, resync_used, moved"

enum {
    S_BEGIN,
    S_BEGIN_READ,
    S_COMMIT,
    S_ROLLBACK,
    S_KEY_INSERT,
    S_KEY_GET,
    S_KEY_LIST_ALL,
    S_KEY_LIST_CIT,
    S_KEY_STATE,
    S_KEY_ACTIVATE,
    S_KEY_POLICY,
    S_KEY_SECRETS,
    S_KEY_REVOKE,
    S_RETIRED_DEL,
    S_RETIRED_INSERT,
    S_RETIRED_LIST,
    S_PURGE,
    S_TOKEN_INSERT,
    S_TOKEN_GET,
    S_TOKEN_USE,
    S_KEY_ROLE,
    S_TOKEN_USE_AUTH,
    S_TOKEN_USE_SIGN,
    S_AUDIT_HEAD,
    S_AUDIT_INSERT,
    S_AUDIT_HEAD_SET,
    S_AUDIT_LIST,
    S_ENROL_INSERT,
    S_ENROL_GET,
    S_NONCE_INSERT,
    S_NONCE_PRUNE,
    S_NONCE_GET,
    S_NONCE_DEL,
    S_MAC_ROW,
    S_MAC_SET,
    S_KEY_MOVE,
    S_KEY_RESYNC_OPEN,
    S_KEY_RESYNC_CLOSE,
    S_RESYNC_KEYS,
    S_COUNT
};

static const char *const sql_text[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_BEGIN_READ] = "BEGIN DEFERRED",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_KEY_INSERT] = "INSERT INTO keys(key_id, citizen_id, state, created_at, updated_at, paillier_bits,"
                     " q, q2, x1_sealed, p_sealed, q_sealed, secret_cur_sealed, secret_pend_sealed,"
                     " secret_version, retired_count, pin_failures, locked_until, reason,"
                     " revocation_hash, version, curve, role, moved)"
                     " VALUES(?1, ?2, 'pending', ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, ?11, 0, 0, 0,"
                     " '', NULL, 1, ?12, ?13, ?14)",
    [S_KEY_GET] = "SELECT " KEY_COLS " FROM keys WHERE key_id = ?1",
    [S_KEY_LIST_ALL] = "SELECT " KEY_COLS " FROM keys ORDER BY created_at, key_id",
    [S_KEY_LIST_CIT] = "SELECT " KEY_COLS " FROM keys WHERE citizen_id = ?1 ORDER BY created_at, key_id",
    [S_KEY_STATE] = "SELECT state, version, citizen_id, revocation_hash FROM keys WHERE key_id = ?1",
    /* The token that enrols the key gives it its citizen's name. */
    [S_KEY_ACTIVATE] = "UPDATE keys SET state = 'active', revocation_hash = ?2,"
                       " updated_at = ?3, version = version + 1, citizen_name = coalesce("
                       "(SELECT citizen_name FROM tokens WHERE token_hash = ?4), '') WHERE key_id = ?1",
    [S_KEY_POLICY] = "UPDATE keys SET state = ?2, pin_failures = ?3, locked_until = ?4,"
                     " reason = coalesce(?5, reason), updated_at = ?6, version = version + 1"
                     " WHERE key_id = ?1",
    [S_KEY_SECRETS] = "UPDATE keys SET x1_sealed = ?2, p_sealed = ?3, q_sealed = ?4,"
                      " secret_cur_sealed = ?5, secret_pend_sealed = ?6, secret_version = ?7,"
                      " retired_count = retired_count + ?8, updated_at = ?9, state = ?10,"
                      " pin_failures = ?11, locked_until = ?12, version = version + 1"
                      " WHERE key_id = ?1",
    [S_KEY_REVOKE] = "UPDATE keys SET state = 'revoked', reason = coalesce(?2, reason),"
                     " revocation_hash = NULL, x1_sealed = NULL, p_sealed = NULL,"
                     " q_sealed = NULL, secret_cur_sealed = NULL, secret_pend_sealed = NULL,"
                     " locked_until = 0, updated_at = ?3, version = version + 1"
                     " WHERE key_id = ?1",
    [S_RETIRED_DEL] = "DELETE FROM retired_secrets WHERE key_id = ?1",
    [S_RETIRED_INSERT] = "INSERT INTO retired_secrets(key_id, n, secret_hash, sealed,"
                         " retired_at) VALUES(?1, ?2, ?3, ?4, ?5)",
    [S_RETIRED_LIST] = "SELECT n, retired_at, secret_hash, sealed FROM retired_secrets"
                       " WHERE key_id = ?1 ORDER BY n DESC",
    [S_PURGE] = "DELETE FROM keys WHERE state = 'pending' AND created_at < ?1",
    [S_TOKEN_INSERT] = "INSERT INTO tokens(token_hash, citizen_id, created_at, expires_at,"
                       " used_at, key_id, citizen_name) VALUES(?1, ?2, ?3, ?4, NULL, NULL, ?5)",
    [S_TOKEN_GET] = "SELECT citizen_id, expires_at, used_at, auth_key_id IS NOT NULL, sign_key_id IS NOT NULL"
                    " FROM tokens WHERE token_hash = ?1",
    /* A legacy enrolment (or token_consume) spends the whole token. */
    [S_TOKEN_USE] = "UPDATE tokens SET used_at = ?2, key_id = ?3"
                    " WHERE token_hash = ?1 AND used_at IS NULL AND auth_key_id IS NULL AND sign_key_id IS NULL",
    [S_KEY_ROLE] = "SELECT role FROM keys WHERE key_id = ?1",
    /* A role fills its slot; the token is spent once both are filled. */
    [S_TOKEN_USE_AUTH] = "UPDATE tokens SET auth_key_id = ?3,"
                         " used_at = CASE WHEN sign_key_id IS NOT NULL THEN ?2 END,"
                         " key_id = CASE WHEN sign_key_id IS NOT NULL THEN ?3 END"
                         " WHERE token_hash = ?1 AND used_at IS NULL AND auth_key_id IS NULL",
    [S_TOKEN_USE_SIGN] = "UPDATE tokens SET sign_key_id = ?3,"
                         " used_at = CASE WHEN auth_key_id IS NOT NULL THEN ?2 END,"
                         " key_id = CASE WHEN auth_key_id IS NOT NULL THEN ?3 END"
                         " WHERE token_hash = ?1 AND used_at IS NULL AND sign_key_id IS NULL",
    [S_AUDIT_HEAD] = "SELECT count, head FROM audit_head WHERE id = 1",
    [S_AUDIT_INSERT] = "INSERT INTO audit(seq, time, kind, key_id, citizen_id, detail,"
                       " prev_hash, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [S_AUDIT_HEAD_SET] = "UPDATE audit_head SET count = ?1, head = ?2 WHERE id = 1",
    [S_AUDIT_LIST] = "SELECT seq, time, kind, key_id, citizen_id, detail, prev_hash, hash"
                     " FROM audit WHERE seq >= ?1 ORDER BY seq",
    [S_ENROL_INSERT] = "INSERT INTO enrolments(sid, key_id, token_hash) VALUES(?1, ?2, ?3)",
    [S_ENROL_GET] = "SELECT key_id, token_hash FROM enrolments WHERE sid = ?1",
    [S_NONCE_INSERT] = "INSERT INTO seen_nonces(key_id, secret_hash, nonce_hash, seen_at)"
                       " VALUES(?1, ?2, ?3, ?4)",
    [S_NONCE_PRUNE] = "DELETE FROM seen_nonces WHERE key_id = ?1 AND secret_hash = ?2 AND rowid NOT IN"
                      " (SELECT rowid FROM seen_nonces WHERE key_id = ?1 AND secret_hash = ?2"
                      " ORDER BY rowid DESC LIMIT ?3)",
    [S_NONCE_GET] = "SELECT 1 FROM seen_nonces WHERE key_id = ?1 AND secret_hash = ?2"
                    " AND nonce_hash = ?3",
    [S_NONCE_DEL] = "DELETE FROM seen_nonces WHERE key_id = ?1",
    [S_MAC_ROW] = "SELECT state, pin_failures, locked_until, secret_version, policy_mac, resync_epoch, resync_used,"
                  " moved FROM keys WHERE key_id = ?1",
    [S_MAC_SET] = "UPDATE keys SET policy_mac = ?2 WHERE key_id = ?1",
    /* Once set, never cleared (no statement clears it). */
    [S_KEY_MOVE] = "UPDATE keys SET moved = 1, updated_at = ?2, version = version + 1 WHERE key_id = ?1 AND moved = 0",
    [S_KEY_RESYNC_OPEN] = "UPDATE keys SET resync_epoch = ?2, resync_used = 0, updated_at = ?3,"
                          " version = version + 1 WHERE key_id = ?1",
    [S_KEY_RESYNC_CLOSE] = "UPDATE keys SET resync_epoch = 0, resync_used = ?2 WHERE key_id = ?1",
    [S_RESYNC_KEYS] = "SELECT key_id FROM keys WHERE state IN ('active', 'locked') ORDER BY key_id",
};

typedef struct sq {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    void (*before_commit)(void *);
    void *hook_data;
    int deferred;              /* synchronous = NORMAL on this connection (commit_mode) */
    pthread_mutex_t *write_mu; /* held from tx_begin to tx_end (config) */
    /* SECRET: the policy MAC keys, one per loaded KEK (config, then
     * policy_key_add during a KEK rotation). Any of them verifies; the
     * newest (the rotation's target) writes. */
    duo_policy_key mac_keys[2];
    size_t n_mac;
} sq;

static int map_rc(int rc) {
    switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
            return DUO_OK;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return DUO_E_TIMEOUT;
        case SQLITE_NOMEM:
            return DUO_E_NOMEM;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            return DUO_E_STATE_CORRUPT;
        case SQLITE_IOERR:
        case SQLITE_FULL:
        case SQLITE_CANTOPEN:
            return DUO_E_IO;
        case SQLITE_PERM:
        case SQLITE_READONLY:
            return DUO_E_PERMISSION;
        case SQLITE_CONSTRAINT:
            return DUO_E_EXISTS;
        default:
            return DUO_E_STORE;
    }
}

/* Returns a statement ready to bind (reset, bindings cleared). */
static sqlite3_stmt *stmt(sq *s, int which) {
    sqlite3_stmt *st = s->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Steps a statement that returns no rows; resets it. */
static int step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? DUO_OK : map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
}

static int exec_stmt(sq *s, int which) { return step_done(stmt(s, which)); }

static int tx_begin(sq *s) {
    if (s->write_mu != NULL) pthread_mutex_lock(s->write_mu);
    int r = exec_stmt(s, S_BEGIN);
    if (r == DUO_E_TIMEOUT) /* SQLite does not report a busy BEGIN itself: say it through its log */
        sqlite3_log(SQLITE_BUSY, "write transaction not started: the database is locked by another connection "
                                 "or process for longer than the busy timeout");
    if (r != DUO_OK && s->write_mu != NULL) pthread_mutex_unlock(s->write_mu);
    return r;
}

static void tx_rollback(sq *s) {
    if (!sqlite3_get_autocommit(s->db)) (void)!exec_stmt(s, S_ROLLBACK);
}

static int tx_commit(sq *s) {
    int r;
    if (s->before_commit != NULL) s->before_commit(s->hook_data);
    if ((r = exec_stmt(s, S_COMMIT)) != DUO_OK) tx_rollback(s);
    return r;
}

/* Ends a write transaction: commit on success, roll back otherwise. */
static int tx_end(sq *s, int r) {
    if (r == DUO_OK)
        r = tx_commit(s);
    else
        tx_rollback(s);
    if (s->write_mu != NULL) pthread_mutex_unlock(s->write_mu);
    return r;
}

static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t len) {
    if (p == NULL || len == 0) return sqlite3_bind_null(st, i) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
    return sqlite3_bind_blob(st, i, p, (int)len, SQLITE_TRANSIENT) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

static int bind_text(sqlite3_stmt *st, int i, const char *t) {
    if (t == NULL) return sqlite3_bind_null(st, i) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
    return sqlite3_bind_text(st, i, t, -1, SQLITE_TRANSIENT) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

static int bind_i64(sqlite3_stmt *st, int i, int64_t v) {
    return sqlite3_bind_int64(st, i, (sqlite3_int64)v) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

/* Copies a blob column of exactly len bytes (or up to cap if len == 0). */
static int col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t len, size_t cap, size_t *got) {
    const void *p = sqlite3_column_blob(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (got != NULL) *got = 0;
    if (sqlite3_column_type(st, i) == SQLITE_NULL) return len == 0 ? DUO_OK : DUO_E_STATE_CORRUPT;
    if (n < 0 || (len != 0 && (size_t)n != len) || (size_t)n > cap || (n > 0 && p == NULL)) return DUO_E_STATE_CORRUPT;
    if (n > 0) memcpy(out, p, (size_t)n);
    if (got != NULL) *got = (size_t)n;
    return DUO_OK;
}

static int col_text(sqlite3_stmt *st, int i, char *out, size_t cap) {
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    out[0] = '\0';
    if (t == NULL) return DUO_OK;
    if (n < 0 || (size_t)n >= cap) return DUO_E_STATE_CORRUPT;
    memcpy(out, t, (size_t)n);
    out[n] = '\0';
    return DUO_OK;
}

static int key_mac_check(const sq *q, const duo_key_info *k, sqlite3_stmt *st, int col);

/* A pin_failures or secret_version outside its field's range was not written
 * by duosign: a policy MAC failure (2^32 + 3 must not pass for 3). */
static int policy_ints_in_range(sqlite3_stmt *st, int pin_col, int secret_version_col) {
    int64_t pin = sqlite3_column_int64(st, pin_col);
    return pin >= 0 && pin <= UINT32_MAX && sqlite3_column_int64(st, secret_version_col) >= 0;
}

static int read_key_row(const sq *q, sqlite3_stmt *st, duo_key_info *k, duo_key_sealed *s) {
    char state[16];
    int r;
    memset(k, 0, sizeof *k);
    if ((r = col_blob(st, 0, k->key_id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) != DUO_OK ||
        (r = col_text(st, 1, k->citizen_id, sizeof k->citizen_id)) != DUO_OK ||
        (r = col_text(st, 2, state, sizeof state)) != DUO_OK ||
        (r = col_blob(st, 6, k->q, DUO_POINT_BYTES, DUO_POINT_BYTES, NULL)) != DUO_OK ||
        (r = col_blob(st, 7, k->q2, DUO_POINT_BYTES, DUO_POINT_BYTES, NULL)) != DUO_OK ||
        (r = col_text(st, 10, k->reason, sizeof k->reason)) != DUO_OK)
        return r;
    if ((k->state = duo_key_state_from_name(state)) == 0) return DUO_E_STATE_CORRUPT;
    if (!policy_ints_in_range(st, 8, 15)) return DUO_E_POLICY_MAC;
    k->created_at = sqlite3_column_int64(st, 3);
    k->updated_at = sqlite3_column_int64(st, 4);
    k->paillier_bits = (uint32_t)sqlite3_column_int64(st, 5);
    k->pin_failures = (uint32_t)sqlite3_column_int64(st, 8);
    k->locked_until = sqlite3_column_int64(st, 9);
    k->has_pending_secret = sqlite3_column_int(st, 11) != 0;
    k->has_revocation_code = sqlite3_column_int(st, 12) != 0;
    k->retired_count = (uint64_t)sqlite3_column_int64(st, 13);
    k->version = (uint64_t)sqlite3_column_int64(st, 14);
    k->secret_version = (uint64_t)sqlite3_column_int64(st, 15);
    k->curve = (int)sqlite3_column_int64(st, 21);
    if (!duo_curve_valid(k->curve)) return DUO_E_STATE_CORRUPT;
    k->role = (int)sqlite3_column_int64(st, 23);
    if (k->role < 0 || k->role >= DUO_KEY_ROLE_COUNT) return DUO_E_STATE_CORRUPT;
    k->resync_epoch = (uint64_t)sqlite3_column_int64(st, 24);
    k->resync_used = (uint64_t)sqlite3_column_int64(st, 25);
    int64_t moved = sqlite3_column_int64(st, 26);
    if (moved != 0 && moved != 1) return DUO_E_STATE_CORRUPT;
    k->moved = (int)moved;
    if ((r = key_mac_check(q, k, st, 22)) != DUO_OK) return r;
    if (s == NULL) return DUO_OK;
    memset(s, 0, sizeof *s);
    if ((r = col_blob(st, 16, s->x1.data, 0, DUO_SEALED_MAX, &s->x1.len)) != DUO_OK ||
        (r = col_blob(st, 17, s->p.data, 0, DUO_SEALED_MAX, &s->p.len)) != DUO_OK ||
        (r = col_blob(st, 18, s->q.data, 0, DUO_SEALED_MAX, &s->q.len)) != DUO_OK ||
        (r = col_blob(st, 19, s->current.data, 0, DUO_SEALED_MAX, &s->current.len)) != DUO_OK ||
        (r = col_blob(st, 20, s->pending.data, 0, DUO_SEALED_MAX, &s->pending.len)) != DUO_OK)
        return r;
    return DUO_OK;
}

/* ------------------------------------------------------------ policy MAC */

static void policy_fields(duo_policy_fields *f, const uint8_t *key_id, int state, uint32_t pin, int64_t locked,
                          uint64_t secret_version, int moved) {
    memset(f, 0, sizeof *f); /* the resync fields: set by the callers that read them */
    memcpy(f->key_id, key_id, DUO_KEY_ID_BYTES);
    f->moved = moved;
    f->state = state;
    f->pin_failures = pin;
    f->locked_until = locked;
    f->secret_version = secret_version;
}

/* DUO_OK if mac verifies under any loaded policy key. */
static int mac_check_any(const sq *q, const duo_policy_fields *f, const uint8_t *mac, size_t mac_len) {
    int r = DUO_E_POLICY_MAC;
    for (size_t i = 0; i < q->n_mac && r == DUO_E_POLICY_MAC; i++)
        r = duo_policy_mac_check(&q->mac_keys[i], f, mac, mac_len);
    return r;
}

/* Checks the MAC in column col of a row read into k. */
static int key_mac_check(const sq *q, const duo_key_info *k, sqlite3_stmt *st, int col) {
    duo_policy_fields f;
    int n = sqlite3_column_bytes(st, col);
    const void *mac = sqlite3_column_blob(st, col);
    policy_fields(&f, k->key_id, k->state, k->pin_failures, k->locked_until, k->secret_version, k->moved);
    f.resync_epoch = k->resync_epoch;
    f.resync_used = k->resync_used;
    return mac_check_any(q, &f, mac, mac == NULL || n < 0 ? 0 : (size_t)n);
}

/* Reads the row's policy fields inside the current transaction; *mac_ok = 1
 * when its stored MAC matches. */
static int mac_row(sq *s, const uint8_t *key_id, duo_policy_fields *f, int *mac_ok) {
    sqlite3_stmt *st = stmt(s, S_MAC_ROW);
    char name[16];
    int rc, r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK) return r;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = DUO_E_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    } else if (sqlite3_column_int64(st, 7) != 0 && sqlite3_column_int64(st, 7) != 1) {
        r = DUO_E_POLICY_MAC; /* a moved flag duosign never writes */
    } else if (!policy_ints_in_range(st, 1, 3)) {
        r = DUO_E_POLICY_MAC; /* no MAC can cover it, not even a rewrite */
    } else if ((r = col_text(st, 0, name, sizeof name)) == DUO_OK) {
        policy_fields(f, key_id, duo_key_state_from_name(name), (uint32_t)sqlite3_column_int64(st, 1),
                      sqlite3_column_int64(st, 2), (uint64_t)sqlite3_column_int64(st, 3),
                      (int)sqlite3_column_int64(st, 7));
        f->resync_epoch = (uint64_t)sqlite3_column_int64(st, 5);
        f->resync_used = (uint64_t)sqlite3_column_int64(st, 6);
        const void *mac = sqlite3_column_blob(st, 4);
        int n = sqlite3_column_bytes(st, 4);
        r = mac_check_any(s, f, mac, mac == NULL || n < 0 ? 0 : (size_t)n);
        *mac_ok = r == DUO_OK;
        if (r == DUO_E_POLICY_MAC) r = DUO_OK;
    }
    sqlite3_reset(st);
    return r;
}

/* Inside a write transaction, before a key row is changed: refuses a row
 * whose MAC does not match (it was edited outside duosign). */
static int mac_verify(sq *s, const uint8_t *key_id) {
    duo_policy_fields f;
    int ok = 0, r = mac_row(s, key_id, &f, &ok);
    return r != DUO_OK ? r : ok ? DUO_OK : DUO_E_POLICY_MAC;
}

/* Inside a write transaction, after a key row's policy fields were written:
 * stores their new MAC. */
static int mac_rewrite(sq *s, const uint8_t *key_id) {
    duo_policy_fields f;
    uint8_t mac[DUO_POLICY_MAC_LEN];
    sqlite3_stmt *st;
    int ok = 0, r;
    if ((r = mac_row(s, key_id, &f, &ok)) != DUO_OK ||
        (r = duo_policy_mac(mac, &s->mac_keys[s->n_mac - 1], &f)) != DUO_OK)
        return r;
    st = stmt(s, S_MAC_SET);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || (r = bind_blob(st, 2, mac, sizeof mac)) != DUO_OK)
        return r;
    return step_done(st);
}

/* ------------------------------------------------------------ audit (in tx) */

static int audit_head_read(sq *s, uint64_t *count, uint8_t head[DUO_AUDIT_HASH_LEN]) {
    sqlite3_stmt *st = stmt(s, S_AUDIT_HEAD);
    int rc = sqlite3_step(st), r;
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? DUO_E_STATE_CORRUPT : map_rc(rc);
    }
    *count = (uint64_t)sqlite3_column_int64(st, 0);
    r = col_blob(st, 1, head, DUO_AUDIT_HASH_LEN, DUO_AUDIT_HASH_LEN, NULL);
    sqlite3_reset(st);
    return r;
}

/* Appends ev; the caller holds the write transaction. */
static int audit_append_tx(sq *s, uint64_t *seq, const duo_audit_event *ev, int64_t now) {
    duo_audit_entry *e;
    uint64_t count = 0;
    uint8_t head[DUO_AUDIT_HASH_LEN];
    sqlite3_stmt *st;
    int r;

    if ((e = malloc(sizeof *e)) == NULL) return DUO_E_NOMEM;
    if ((r = audit_head_read(s, &count, head)) != DUO_OK) goto out;
    if ((r = duo_audit_entry_make(e, count + 1, now, ev, head)) != DUO_OK) goto out;
    st = stmt(s, S_AUDIT_INSERT);
    if ((r = bind_i64(st, 1, (int64_t)e->seq)) != DUO_OK || (r = bind_i64(st, 2, e->time)) != DUO_OK ||
        (r = bind_text(st, 3, e->kind)) != DUO_OK ||
        (r = bind_blob(st, 4, e->key_id, e->has_key_id ? DUO_KEY_ID_BYTES : 0)) != DUO_OK ||
        (r = bind_text(st, 5, e->citizen_id)) != DUO_OK || (r = bind_text(st, 6, e->detail)) != DUO_OK ||
        (r = bind_blob(st, 7, e->prev_hash, DUO_AUDIT_HASH_LEN)) != DUO_OK ||
        (r = bind_blob(st, 8, e->hash, DUO_AUDIT_HASH_LEN)) != DUO_OK || (r = step_done(st)) != DUO_OK)
        goto out;
    st = stmt(s, S_AUDIT_HEAD_SET);
    if ((r = bind_i64(st, 1, (int64_t)e->seq)) != DUO_OK ||
        (r = bind_blob(st, 2, e->hash, DUO_AUDIT_HASH_LEN)) != DUO_OK || (r = step_done(st)) != DUO_OK)
        goto out;
    if (seq != NULL) *seq = e->seq;
out:
    free(e);
    return r;
}

static int maybe_audit(sq *s, const duo_audit_event *ev, int64_t now) {
    return ev == NULL ? DUO_OK : audit_append_tx(s, NULL, ev, now);
}

/* ------------------------------------------------------------ ops */

static void sq_close(void *impl) {
    sq *s = impl;
    if (s == NULL) return;
    for (int i = 0; i < S_COUNT; i++) sqlite3_finalize(s->st[i]);
    sqlite3_close(s->db);
    duo_memzero(s, sizeof *s);
    free(s);
}

static int key_insert_tx(sq *s, const duo_key_info *k, const duo_key_sealed *sl, int64_t now) {
    sqlite3_stmt *st = stmt(s, S_KEY_INSERT);
    int r;
    if ((r = bind_blob(st, 1, k->key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_text(st, 2, k->citizen_id)) != DUO_OK || (r = bind_i64(st, 3, now)) != DUO_OK ||
        (r = bind_i64(st, 4, k->paillier_bits)) != DUO_OK || (r = bind_blob(st, 5, k->q, DUO_POINT_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 6, k->q2, DUO_POINT_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 7, sl->x1.data, sl->x1.len)) != DUO_OK ||
        (r = bind_blob(st, 8, sl->p.data, sl->p.len)) != DUO_OK ||
        (r = bind_blob(st, 9, sl->q.data, sl->q.len)) != DUO_OK ||
        (r = bind_blob(st, 10, sl->current.data, sl->current.len)) != DUO_OK ||
        (r = bind_i64(st, 11, (int64_t)k->secret_version)) != DUO_OK || (r = bind_i64(st, 12, k->curve)) != DUO_OK ||
        (r = bind_i64(st, 13, k->role)) != DUO_OK || (r = bind_i64(st, 14, k->moved != 0)) != DUO_OK)
        return r;
    if ((r = step_done(st)) != DUO_OK) return r; /* DUO_E_EXISTS on a taken key id */
    return mac_rewrite(s, k->key_id);
}

static int sq_enrol_insert(void *impl, const duo_key_info *k, const duo_key_sealed *sl, const uint8_t *sid,
                           const uint8_t *token_hash, const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    sqlite3_stmt *st;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_insert_tx(s, k, sl, now)) != DUO_OK) goto out;
    st = stmt(s, S_ENROL_INSERT);
    if ((r = bind_blob(st, 1, sid, 32)) != DUO_OK || (r = bind_blob(st, 2, k->key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 3, token_hash, 32)) != DUO_OK || (r = step_done(st)) != DUO_OK)
        goto out;
    r = maybe_audit(s, ev, now);
out:
    return tx_end(s, r);
}

static int sq_enrol_get(void *impl, uint8_t *key_id, uint8_t *token_hash, const uint8_t *sid) {
    sq *s = impl;
    sqlite3_stmt *st = stmt(s, S_ENROL_GET);
    int rc, r;
    if ((r = bind_blob(st, 1, sid, 32)) != DUO_OK) return r;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = DUO_E_NOT_FOUND;
    else if (rc != SQLITE_ROW)
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    else if ((r = col_blob(st, 0, key_id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) == DUO_OK)
        r = col_blob(st, 1, token_hash, 32, 32, NULL);
    sqlite3_reset(st);
    return r;
}

static int sq_key_insert(void *impl, const duo_key_info *k, const duo_key_sealed *sl, const duo_audit_event *ev,
                         int64_t now) {
    sq *s = impl;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_insert_tx(s, k, sl, now)) == DUO_OK) r = maybe_audit(s, ev, now);
    return tx_end(s, r);
}

/* Reads the key row with the already-prepared S_KEY_GET statement. */
static int key_get_row(sq *s, duo_key_info *k, duo_key_sealed *sl, const uint8_t *key_id) {
    sqlite3_stmt *st = stmt(s, S_KEY_GET);
    int rc, r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK) return r;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = DUO_E_NOT_FOUND;
    else if (rc != SQLITE_ROW)
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    else
        r = read_key_row(s, st, k, sl);
    sqlite3_reset(st);
    return r;
}

static int sq_key_get(void *impl, duo_key_info *k, duo_key_sealed *sl, const uint8_t *key_id) {
    return key_get_row(impl, k, sl, key_id);
}

static int sq_key_list(void *impl, const char *citizen, duo_key_info_cb cb, void *data) {
    sq *s = impl;
    sqlite3_stmt *st = stmt(s, citizen != NULL ? S_KEY_LIST_CIT : S_KEY_LIST_ALL);
    duo_key_info k;
    int rc, r = DUO_OK;
    if (citizen != NULL && (r = bind_text(st, 1, citizen)) != DUO_OK) return r;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = read_key_row(s, st, &k, NULL)) != DUO_OK) break;
        if ((r = cb(data, &k)) != 0) break;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    sqlite3_reset(st);
    return r;
}

/* Reads state and version (and optionally citizen and revocation hash) inside
 * the current transaction. */
static int key_state(sq *s, int *state, uint64_t *version, char *citizen, uint8_t *rev_hash, int *has_rev,
                     const uint8_t *key_id) {
    sqlite3_stmt *st = stmt(s, S_KEY_STATE);
    char name[16];
    size_t got = 0;
    int rc, r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK) return r;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = DUO_E_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    } else if ((r = col_text(st, 0, name, sizeof name)) == DUO_OK) {
        *state = duo_key_state_from_name(name);
        *version = (uint64_t)sqlite3_column_int64(st, 1);
        if (citizen != NULL) r = col_text(st, 2, citizen, DUO_CITIZEN_ID_MAX + 1);
        if (r == DUO_OK && rev_hash != NULL) {
            r = col_blob(st, 3, rev_hash, 0, 32, &got);
            if (r == DUO_OK && got != 0 && got != 32) r = DUO_E_STATE_CORRUPT;
            *has_rev = got == 32;
        }
        if (r == DUO_OK && *state == 0) r = DUO_E_STATE_CORRUPT;
    }
    sqlite3_reset(st);
    /* Every writer reads the row here first: an edited row changes nothing. */
    return r == DUO_OK ? mac_verify(s, key_id) : r;
}

/* The key's role (schema v7), inside the current transaction. */
static int key_role(sq *s, int *role, const uint8_t *key_id) {
    sqlite3_stmt *st = stmt(s, S_KEY_ROLE);
    int rc, r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK) return r;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *role = sqlite3_column_int(st, 0);
        r = *role >= 0 && *role < DUO_KEY_ROLE_COUNT ? DUO_OK : DUO_E_STATE_CORRUPT;
    } else {
        r = rc == SQLITE_DONE ? DUO_E_NOT_FOUND : DUO_E_STORE;
    }
    sqlite3_reset(st);
    return r;
}

/* The token's role slot: a legacy enrolment (role 0) needs both free. */
static int token_role_free(sqlite3_stmt *st, int role) {
    int auth = sqlite3_column_int(st, 3) != 0, sign = sqlite3_column_int(st, 4) != 0;
    if (role == DUO_KEY_ROLE_AUTH) return !auth;
    if (role == DUO_KEY_ROLE_SIGN) return !sign;
    return !auth && !sign;
}

/* Checks a token inside the current transaction; role < 0: any slot (a
 * check that names no role), else that role's slot must be free
 * (DUO_E_TOKEN_ROLE_USED). */
static int token_state(sq *s, char *citizen, const uint8_t *hash, int role, int64_t now) {
    sqlite3_stmt *st = stmt(s, S_TOKEN_GET);
    int rc, r;
    if ((r = bind_blob(st, 1, hash, 32)) != DUO_OK) return r;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = DUO_E_TOKEN_INVALID;
    } else if (rc != SQLITE_ROW) {
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    } else if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
        r = DUO_E_TOKEN_INVALID; /* used */
    } else if (sqlite3_column_int64(st, 1) <= now) {
        r = DUO_E_TOKEN_EXPIRED;
    } else if (role >= 0 && !token_role_free(st, role)) {
        r = DUO_E_TOKEN_ROLE_USED;
    } else {
        r = col_text(st, 0, citizen, DUO_CITIZEN_ID_MAX + 1);
    }
    sqlite3_reset(st);
    return r;
}

static int token_use(sq *s, const uint8_t *hash, const uint8_t *key_id, int role, int64_t now) {
    sqlite3_stmt *st = stmt(s, role == DUO_KEY_ROLE_AUTH   ? S_TOKEN_USE_AUTH
                               : role == DUO_KEY_ROLE_SIGN ? S_TOKEN_USE_SIGN
                                                           : S_TOKEN_USE);
    int r;
    if ((r = bind_blob(st, 1, hash, 32)) != DUO_OK || (r = bind_i64(st, 2, now)) != DUO_OK ||
        (r = bind_blob(st, 3, key_id, key_id != NULL ? DUO_KEY_ID_BYTES : 0)) != DUO_OK ||
        (r = step_done(st)) != DUO_OK)
        return r;
    /* The write lock is held, so the check above still holds; this guards it. */
    return sqlite3_changes(s->db) == 1 ? DUO_OK : DUO_E_TOKEN_INVALID;
}

static int sq_key_activate(void *impl, const uint8_t *key_id, const uint8_t *token_hash, const uint8_t *rev_hash,
                           const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    char kc[DUO_CITIZEN_ID_MAX + 1], tc[DUO_CITIZEN_ID_MAX + 1];
    int state, role = 0, r;
    uint64_t version;
    sqlite3_stmt *st;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_state(s, &state, &version, kc, NULL, NULL, key_id)) != DUO_OK) goto out;
    if (state != DUO_KEY_STATE_PENDING) {
        r = DUO_E_PROTO_STATE;
        goto out;
    }
    if ((r = key_role(s, &role, key_id)) != DUO_OK) goto out;
    if ((r = token_state(s, tc, token_hash, role, now)) != DUO_OK) goto out;
    if (strcmp(kc, tc) != 0) { /* a token enrols only its own citizen */
        r = DUO_E_TOKEN_INVALID;
        goto out;
    }
    if ((r = token_use(s, token_hash, key_id, role, now)) != DUO_OK) goto out;
    st = stmt(s, S_KEY_ACTIVATE);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || (r = bind_blob(st, 2, rev_hash, 32)) != DUO_OK ||
        (r = bind_i64(st, 3, now)) != DUO_OK || (r = bind_blob(st, 4, token_hash, 32)) != DUO_OK ||
        (r = step_done(st)) != DUO_OK || (r = mac_rewrite(s, key_id)) != DUO_OK)
        goto out;
    r = maybe_audit(s, ev, now);
out:
    return tx_end(s, r);
}

static int revoke_tx(sq *s, const uint8_t *key_id, const char *reason, int64_t now) {
    sqlite3_stmt *st = stmt(s, S_KEY_REVOKE);
    int r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || (r = bind_text(st, 2, reason)) != DUO_OK ||
        (r = bind_i64(st, 3, now)) != DUO_OK || (r = step_done(st)) != DUO_OK)
        return r;
    st = stmt(s, S_RETIRED_DEL);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || (r = step_done(st)) != DUO_OK) return r;
    st = stmt(s, S_NONCE_DEL);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || (r = step_done(st)) != DUO_OK) return r;
    return mac_rewrite(s, key_id);
}

/* Inside a write transaction: records a seen nonce (DUO_E_EXISTS if it is
 * already there) and keeps only the newest DUO_SEEN_NONCES_PER_SECRET of that
 * secret. */
static int nonce_insert_tx(sq *s, const uint8_t *key_id, const duo_seen_nonce *n, int64_t now) {
    sqlite3_stmt *st = stmt(s, S_NONCE_INSERT);
    int r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 2, n->secret_hash, 32)) != DUO_OK || (r = bind_blob(st, 3, n->nonce_hash, 32)) != DUO_OK ||
        (r = bind_i64(st, 4, now)) != DUO_OK || (r = step_done(st)) != DUO_OK)
        return r;
    st = stmt(s, S_NONCE_PRUNE);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 2, n->secret_hash, 32)) != DUO_OK ||
        (r = bind_i64(st, 3, DUO_SEEN_NONCES_PER_SECRET)) != DUO_OK)
        return r;
    return step_done(st);
}

static int sq_key_update_policy(void *impl, const uint8_t *key_id, uint64_t expect_version, const duo_key_policy *pol,
                                const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    int state, r;
    uint64_t version;
    sqlite3_stmt *st;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_state(s, &state, &version, NULL, NULL, NULL, key_id)) != DUO_OK) goto out;
    if (version != expect_version) {
        r = DUO_E_CONFLICT;
        goto out;
    }
    if (state == DUO_KEY_STATE_REVOKED) {
        r = DUO_E_KEY_REVOKED;
        goto out;
    }
    if (state == DUO_KEY_STATE_SUSPENDED && pol->state != DUO_KEY_STATE_REVOKED) {
        r = DUO_E_KEY_SUSPENDED;
        goto out;
    }
    if (pol->state == DUO_KEY_STATE_PENDING && state != DUO_KEY_STATE_PENDING) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    st = stmt(s, S_KEY_POLICY);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_text(st, 2, duo_key_state_name(pol->state))) != DUO_OK ||
        (r = bind_i64(st, 3, pol->pin_failures)) != DUO_OK || (r = bind_i64(st, 4, pol->locked_until)) != DUO_OK ||
        (r = bind_text(st, 5, pol->reason)) != DUO_OK || (r = bind_i64(st, 6, now)) != DUO_OK ||
        (r = step_done(st)) != DUO_OK || (r = mac_rewrite(s, key_id)) != DUO_OK)
        goto out;
    if (pol->state == DUO_KEY_STATE_REVOKED && (r = revoke_tx(s, key_id, NULL, now)) != DUO_OK) goto out;
    r = maybe_audit(s, ev, now);
out:
    return tx_end(s, r);
}

/* The inner channel's per-key flag: set once, in one transaction with its
 * MAC and audit entry, on a row whose MAC holds. *changed = 0 when it was
 * already set (nothing written, no audit). */
static int sq_key_set_moved(void *impl, int *changed, const uint8_t *key_id, const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    sqlite3_stmt *st;
    int r;
    *changed = 0;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = mac_verify(s, key_id)) != DUO_OK) goto out;
    st = stmt(s, S_KEY_MOVE);
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK || (r = bind_i64(st, 2, now)) != DUO_OK ||
        (r = step_done(st)) != DUO_OK)
        goto out;
    if (sqlite3_changes(s->db) == 0) goto out; /* already moved */
    *changed = 1;
    if ((r = mac_rewrite(s, key_id)) != DUO_OK) goto out;
    r = maybe_audit(s, ev, now);
out:
    if (r != DUO_OK) *changed = 0;
    return tx_end(s, r);
}

/* The secret columns and policy fields of a planned rotation. */
static int rotation_write(sq *s, const uint8_t *key_id, const duo_key_rotation *rot, int64_t now) {
    sqlite3_stmt *st = stmt(s, S_KEY_SECRETS);
    const duo_key_sealed *sl = &rot->next;
    int r;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 2, sl->x1.data, sl->x1.len)) != DUO_OK ||
        (r = bind_blob(st, 3, sl->p.data, sl->p.len)) != DUO_OK ||
        (r = bind_blob(st, 4, sl->q.data, sl->q.len)) != DUO_OK ||
        (r = bind_blob(st, 5, sl->current.data, sl->current.len)) != DUO_OK ||
        (r = bind_blob(st, 6, sl->pending.data, sl->pending.len)) != DUO_OK ||
        (r = bind_i64(st, 7, (int64_t)rot->next_secret_version)) != DUO_OK ||
        (r = bind_i64(st, 8, (int64_t)rot->n_retire)) != DUO_OK || (r = bind_i64(st, 9, now)) != DUO_OK ||
        (r = bind_text(st, 10, duo_key_state_name(rot->state))) != DUO_OK ||
        (r = bind_i64(st, 11, rot->pin_failures)) != DUO_OK || (r = bind_i64(st, 12, rot->locked_until)) != DUO_OK)
        return r;
    if ((r = step_done(st)) != DUO_OK) return r;
    if (rot->resync_close != 0) { /* the resync is used: before the MAC, which covers it */
        st = stmt(s, S_KEY_RESYNC_CLOSE);
        if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
            (r = bind_i64(st, 2, (int64_t)rot->resync_close)) != DUO_OK || (r = step_done(st)) != DUO_OK)
            return r;
    }
    if ((r = mac_rewrite(s, key_id)) != DUO_OK) return r;
    for (size_t i = 0; i < rot->n_retire && i < 2; i++) {
        st = stmt(s, S_RETIRED_INSERT);
        if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
            (r = bind_i64(st, 2, (int64_t)rot->retire[i].n)) != DUO_OK ||
            (r = bind_blob(st, 3, rot->retire[i].hash, 32)) != DUO_OK ||
            (r = bind_blob(st, 4, rot->retire[i].sealed.data, rot->retire[i].sealed.len)) != DUO_OK ||
            (r = bind_i64(st, 5, now)) != DUO_OK || (r = step_done(st)) != DUO_OK)
            return r;
    }
    return DUO_OK;
}

static int sq_key_rotate(void *impl, const uint8_t *key_id, duo_key_rotation *rot, duo_key_rotate_fn plan,
                         void *plan_data, const duo_seen_nonce *seen, int64_t now) {
    sq *s = impl;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_get_row(s, &rot->info, &rot->sealed, key_id)) != DUO_OK) goto out;
    if (rot->info.state == DUO_KEY_STATE_REVOKED || rot->info.state == DUO_KEY_STATE_SUSPENDED) {
        r = rot->info.state == DUO_KEY_STATE_REVOKED ? DUO_E_KEY_REVOKED : DUO_E_KEY_SUSPENDED;
        goto out;
    }
    if ((r = plan(plan_data, rot)) != DUO_OK || (r = rotation_write(s, key_id, rot, now)) != DUO_OK) goto out;
    if (seen != NULL && (r = nonce_insert_tx(s, key_id, seen, now)) != DUO_OK) goto out;
    for (size_t i = 0; i < 2 && r == DUO_OK; i++) r = maybe_audit(s, rot->events[i], now);
out:
    return tx_end(s, r);
}

/* Opens the resync of `epoch` on every active or locked key (restore). The
 * ids are read first (a statement is not stepped while others write). */
static int sq_resync_open(void *impl, uint64_t epoch, size_t *n, const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    uint8_t(*ids)[DUO_KEY_ID_BYTES] = NULL;
    size_t cap = 0, k = 0;
    sqlite3_stmt *st;
    int rc, r;
    *n = 0;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    st = stmt(s, S_RESYNC_KEYS);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            void *grown = realloc(ids, (cap = cap ? 2 * cap : 64) * sizeof *ids);
            if (grown == NULL) {
                r = DUO_E_NOMEM;
                break;
            }
            ids = grown;
        }
        if ((r = col_blob(st, 0, ids[k], DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) != DUO_OK) break;
        k++;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    sqlite3_reset(st);
    for (size_t i = 0; i < k && r == DUO_OK; i++) {
        st = stmt(s, S_KEY_RESYNC_OPEN);
        if ((r = mac_verify(s, ids[i])) == DUO_OK && (r = bind_blob(st, 1, ids[i], DUO_KEY_ID_BYTES)) == DUO_OK &&
            (r = bind_i64(st, 2, (int64_t)epoch)) == DUO_OK && (r = bind_i64(st, 3, now)) == DUO_OK &&
            (r = step_done(st)) == DUO_OK)
            r = mac_rewrite(s, ids[i]);
    }
    if (r == DUO_OK) r = maybe_audit(s, ev, now);
    if (r == DUO_OK) *n = k;
    free(ids);
    return tx_end(s, r);
}

static int sq_key_revoke(void *impl, const uint8_t *key_id, const uint8_t *code_hash, const char *reason,
                         const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    int state, has_rev = 0, r;
    uint64_t version;
    uint8_t stored[32] = {0};
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_state(s, &state, &version, NULL, stored, &has_rev, key_id)) != DUO_OK) goto out;
    if (state == DUO_KEY_STATE_REVOKED) {
        r = DUO_E_KEY_REVOKED;
        goto out;
    }
    if (code_hash != NULL && !(has_rev & duo_ct_eq(stored, code_hash, 32))) {
        r = DUO_E_UNAUTHENTICATED;
        goto out;
    }
    if ((r = revoke_tx(s, key_id, reason, now)) != DUO_OK) goto out;
    r = maybe_audit(s, ev, now);
out:
    duo_memzero(stored, sizeof stored);
    return tx_end(s, r);
}

static int sq_purge_pending(void *impl, size_t *n, int64_t before, const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    sqlite3_stmt *st;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    st = stmt(s, S_PURGE);
    if ((r = bind_i64(st, 1, before)) != DUO_OK || (r = step_done(st)) != DUO_OK) goto out;
    *n = (size_t)sqlite3_changes(s->db);
    if (*n > 0) r = maybe_audit(s, ev, now);
out:
    if (r != DUO_OK) *n = 0;
    return tx_end(s, r);
}

static int sq_nonce_record(void *impl, const uint8_t *key_id, const duo_seen_nonce *n, const duo_audit_event *ev,
                           int64_t now) {
    sq *s = impl;
    int state, r;
    uint64_t version;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = key_state(s, &state, &version, NULL, NULL, NULL, key_id)) != DUO_OK) goto out;
    if (state == DUO_KEY_STATE_REVOKED) { /* no secrets left; a suspended key may still answer Status */
        r = DUO_E_KEY_REVOKED;
        goto out;
    }
    if ((r = nonce_insert_tx(s, key_id, n, now)) != DUO_OK) goto out;
    r = maybe_audit(s, ev, now);
out:
    return tx_end(s, r);
}

static int sq_nonce_seen(void *impl, int *seen, const uint8_t *key_id, const duo_seen_nonce *n) {
    sq *s = impl;
    sqlite3_stmt *st = stmt(s, S_NONCE_GET);
    int rc, r;
    *seen = 0;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK ||
        (r = bind_blob(st, 2, n->secret_hash, 32)) != DUO_OK || (r = bind_blob(st, 3, n->nonce_hash, 32)) != DUO_OK) {
        sqlite3_reset(st);
        return r;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *seen = 1;
    else if (rc != SQLITE_DONE)
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    sqlite3_reset(st);
    return r;
}

static int sq_retired_list(void *impl, const uint8_t *key_id, duo_retired_cb cb, void *data) {
    sq *s = impl;
    sqlite3_stmt *st = stmt(s, S_RETIRED_LIST);
    duo_retired_rec *rec;
    int rc = SQLITE_DONE, r;
    if ((rec = malloc(sizeof *rec)) == NULL) return DUO_E_NOMEM;
    if ((r = bind_blob(st, 1, key_id, DUO_KEY_ID_BYTES)) != DUO_OK) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(rec, 0, sizeof *rec);
        rec->n = (uint64_t)sqlite3_column_int64(st, 0);
        rec->retired_at = sqlite3_column_int64(st, 1);
        if ((r = col_blob(st, 2, rec->hash, 32, 32, NULL)) != DUO_OK ||
            (r = col_blob(st, 3, rec->sealed.data, 0, DUO_SEALED_MAX, &rec->sealed.len)) != DUO_OK)
            break;
        if ((r = cb(data, rec)) != 0) break;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
out:
    sqlite3_reset(st);
    free(rec);
    return r;
}

static int sq_token_insert(void *impl, const uint8_t *hash, const char *citizen, const char *name, int64_t expires_at,
                           const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    sqlite3_stmt *st;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    st = stmt(s, S_TOKEN_INSERT);
    if ((r = bind_blob(st, 1, hash, 32)) != DUO_OK || (r = bind_text(st, 2, citizen)) != DUO_OK ||
        (r = bind_i64(st, 3, now)) != DUO_OK || (r = bind_i64(st, 4, expires_at)) != DUO_OK ||
        (r = bind_text(st, 5, name != NULL ? name : "")) != DUO_OK || (r = step_done(st)) != DUO_OK)
        goto out;
    r = maybe_audit(s, ev, now);
out:
    return tx_end(s, r);
}

static int sq_token_check(void *impl, char *citizen, const uint8_t *hash, int role, int64_t now) {
    return token_state(impl, citizen, hash, role, now);
}

static int sq_token_consume(void *impl, char *citizen, const uint8_t *hash, const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if ((r = token_state(s, citizen, hash, DUO_KEY_ROLE_UNSPECIFIED, now)) != DUO_OK) goto out;
    if ((r = token_use(s, hash, NULL, DUO_KEY_ROLE_UNSPECIFIED, now)) != DUO_OK) goto out;
    r = maybe_audit(s, ev, now);
out:
    if (r != DUO_OK) citizen[0] = '\0';
    return tx_end(s, r);
}

static int sq_audit_append(void *impl, uint64_t *seq, const duo_audit_event *ev, int64_t now) {
    sq *s = impl;
    int r;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    r = audit_append_tx(s, seq, ev, now);
    return tx_end(s, r);
}

static int sq_audit_list(void *impl, uint64_t from, duo_audit_entry_cb cb, void *data) {
    sq *s = impl;
    sqlite3_stmt *st = stmt(s, S_AUDIT_LIST);
    duo_audit_entry *e;
    size_t got;
    int rc = SQLITE_DONE, r;
    if ((e = malloc(sizeof *e)) == NULL) return DUO_E_NOMEM;
    if ((r = bind_i64(st, 1, (int64_t)from)) != DUO_OK) goto out;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(e, 0, sizeof *e);
        e->seq = (uint64_t)sqlite3_column_int64(st, 0);
        e->time = sqlite3_column_int64(st, 1);
        if ((r = col_text(st, 2, e->kind, sizeof e->kind)) != DUO_OK ||
            (r = col_blob(st, 3, e->key_id, 0, DUO_KEY_ID_BYTES, &got)) != DUO_OK ||
            (r = col_text(st, 4, e->citizen_id, sizeof e->citizen_id)) != DUO_OK ||
            (r = col_text(st, 5, e->detail, sizeof e->detail)) != DUO_OK ||
            (r = col_blob(st, 6, e->prev_hash, DUO_AUDIT_HASH_LEN, DUO_AUDIT_HASH_LEN, NULL)) != DUO_OK ||
            (r = col_blob(st, 7, e->hash, DUO_AUDIT_HASH_LEN, DUO_AUDIT_HASH_LEN, NULL)) != DUO_OK)
            break;
        if (got != 0 && got != DUO_KEY_ID_BYTES) {
            r = DUO_E_STATE_CORRUPT;
            break;
        }
        e->has_key_id = got == DUO_KEY_ID_BYTES;
        if ((r = cb(data, e)) != 0) break;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
out:
    sqlite3_reset(st);
    free(e);
    return r;
}

static int sq_audit_head(void *impl, uint64_t *count, uint8_t *head) { return audit_head_read(impl, count, head); }

static int sq_read_snapshot(void *impl, int begin) {
    sq *s = impl;
    if (begin) return exec_stmt(s, S_BEGIN_READ);
    return exec_stmt(s, S_COMMIT);
}

static int sq_policy_key_add(void *impl, const duo_policy_key *k) {
    sq *s = impl;
    if (s->n_mac >= 2) return DUO_E_INVALID_ARG;
    s->mac_keys[s->n_mac++] = *k;
    return DUO_OK;
}

/* One transaction: every key row's MAC verified under any loaded key, then
 * rewritten under the newest (a KEK rotation's target) before the switch. */
static int sq_policy_remac(void *impl, size_t *n) {
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    uint8_t id[DUO_KEY_ID_BYTES];
    int rc, r;
    *n = 0;
    if ((r = tx_begin(s)) != DUO_OK) return r;
    if (sqlite3_prepare_v2(s->db, "SELECT key_id FROM keys", -1, &st, NULL) != SQLITE_OK) {
        r = DUO_E_STORE;
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = col_blob(st, 0, id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) != DUO_OK ||
            (r = mac_verify(s, id)) != DUO_OK || (r = mac_rewrite(s, id)) != DUO_OK)
            break;
        (*n)++;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = DUO_E_STORE;
out:
    sqlite3_finalize(st);
    return tx_end(s, r);
}

static int sq_commit_mode(void *impl, int durable);
static int sq_integrity_check(void *impl, int full, char *why, size_t why_cap);

/* The online backup API: one pass (step -1) holds one read snapshot of the
 * source, so the copy is consistent while writers go on (WAL). The copy is
 * written to a new file made 0600 first, then fsync()ed. */
static int sq_backup_to(void *impl, const char *path) {
    sq *s = impl;
    sqlite3 *dst = NULL;
    sqlite3_backup *b;
    int fd, rc, r = DUO_E_STORE;
    if ((fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0)
        return errno == EEXIST ? DUO_E_EXISTS : errno == EACCES ? DUO_E_PERMISSION : DUO_E_IO;
    close(fd);
    if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) goto out;
    if ((b = sqlite3_backup_init(dst, "main", s->db, "main")) == NULL) goto out;
    do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
    } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
    rc = sqlite3_backup_finish(b) == SQLITE_OK && rc == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    /* One self-contained file: no -wal beside it. */
    if (rc == SQLITE_OK && sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) == SQLITE_OK) r = DUO_OK;
out:
    sqlite3_close(dst);
    if (r == DUO_OK && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        if (fsync(fd) != 0) r = DUO_E_IO;
        close(fd);
    }
    if (r != DUO_OK) unlink(path);
    return r;
}

/* ------------------------------------------------------------ sealed columns */

/* Reads one row of a sealed-column walk: rowid, AAD key id, AAD version, value. */
static int walk_row(sqlite3_stmt *st, int64_t *rowid, duo_sealed_value *v) {
    int r;
    memset(v, 0, sizeof *v);
    *rowid = sqlite3_column_int64(st, 0);
    v->aad_version = (uint64_t)sqlite3_column_int64(st, 2);
    if ((r = col_blob(st, 1, v->aad_id, 0, sizeof v->aad_id, &v->aad_id_len)) != DUO_OK ||
        (r = col_blob(st, 3, v->in.data, 0, sizeof v->in.data, &v->in.len)) != DUO_OK)
        return r;
    return v->aad_id_len > 0 && v->in.len > 0 ? DUO_OK : DUO_E_STATE_CORRUPT;
}

static int prepare_walk(sq *s, sqlite3_stmt **st, const duo_sealed_column *col, const uint8_t *skip, size_t skip_len,
                        size_t max) {
    char sql[512];
    int n = snprintf(sql, sizeof sql, "SELECT rowid, %s, %s, %s FROM %s WHERE %s IS NOT NULL%s%s%s%s", col->aad_id,
                     col->aad_version, col->column, col->table, col->column, skip_len ? " AND substr(" : "",
                     skip_len ? col->column : "", skip_len ? ", 1, ?1) IS NOT ?2" : "", max ? " LIMIT ?3" : "");
    if (n < 0 || (size_t)n >= sizeof sql || sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return DUO_E_STORE;
    if (skip_len && (bind_i64(*st, 1, (int64_t)skip_len) != DUO_OK || bind_blob(*st, 2, skip, skip_len) != DUO_OK))
        return DUO_E_STORE;
    if (max && bind_i64(*st, 3, (int64_t)max) != DUO_OK) return DUO_E_STORE;
    return DUO_OK;
}

/* Collects up to max values, lets fn reseal each, writes them back: one
 * transaction. The rows are read before any is written, so the walk never
 * meets its own writes. */
static int walk_write(sq *s, sqlite3_stmt *st, const duo_sealed_column *col, size_t max, duo_sealed_fn fn, void *data,
                      size_t *n) {
    duo_sealed_value *v = calloc(max, sizeof *v);
    int64_t *rowids = calloc(max, sizeof *rowids);
    sqlite3_stmt *up = NULL;
    char sql[256];
    int rc = SQLITE_DONE, r = DUO_OK;
    size_t got = 0;
    if (v == NULL || rowids == NULL) r = DUO_E_NOMEM;
    while (r == DUO_OK && got < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((r = walk_row(st, &rowids[got], &v[got])) == DUO_OK) got++;
    if (r == DUO_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    snprintf(sql, sizeof sql, "UPDATE %s SET %s = ?1 WHERE rowid = ?2", col->table, col->column);
    if (r == DUO_OK && got > 0 && sqlite3_prepare_v2(s->db, sql, -1, &up, NULL) != SQLITE_OK) r = DUO_E_STORE;
    for (size_t i = 0; i < got && r == DUO_OK; i++) {
        if ((r = fn(data, col, &v[i])) != DUO_OK) break;
        sqlite3_reset(up);
        if ((r = bind_blob(up, 1, v[i].out.data, v[i].out.len)) == DUO_OK && (r = bind_i64(up, 2, rowids[i])) == DUO_OK)
            r = step_done(up);
    }
    sqlite3_finalize(up);
    if (r == DUO_OK) *n = got;
    free(v); /* sealed values only */
    free(rowids);
    return r;
}

static int sq_sealed_walk(void *impl, const duo_sealed_column *col, const uint8_t *skip, size_t skip_len, size_t max,
                          int write, duo_sealed_fn fn, void *data, size_t *n) {
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    duo_sealed_value *v = NULL;
    int rc = SQLITE_DONE, r;
    *n = 0;
    if (col == NULL || col->column == NULL || fn == NULL || (write && max == 0)) return DUO_E_INVALID_ARG;
    if (write && (r = tx_begin(s)) != DUO_OK) return r;
    if ((r = prepare_walk(s, &st, col, skip, skip_len, write ? max : 0)) != DUO_OK) goto out;
    if (write) {
        r = walk_write(s, st, col, max, fn, data, n);
        goto out;
    }
    if ((v = malloc(sizeof *v)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    while (r == DUO_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t rowid;
        if ((r = walk_row(st, &rowid, v)) == DUO_OK && (r = fn(data, col, v)) == DUO_OK) (*n)++;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
out:
    sqlite3_finalize(st);
    free(v);
    if (write) r = tx_end(s, r);
    if (r != DUO_OK) *n = 0;
    return r;
}

static const duo_keystore_backend_ops sqlite_ops = {
    .close = sq_close,
    .backup_to = sq_backup_to,
    .policy_key_add = sq_policy_key_add,
    .policy_remac = sq_policy_remac,
    .key_insert = sq_key_insert,
    .key_get = sq_key_get,
    .key_list = sq_key_list,
    .key_activate = sq_key_activate,
    .key_update_policy = sq_key_update_policy,
    .key_set_moved = sq_key_set_moved,
    .key_rotate = sq_key_rotate,
    .resync_open = sq_resync_open,
    .key_revoke = sq_key_revoke,
    .purge_pending = sq_purge_pending,
    .retired_list = sq_retired_list,
    .token_insert = sq_token_insert,
    .token_check = sq_token_check,
    .token_consume = sq_token_consume,
    .audit_append = sq_audit_append,
    .audit_list = sq_audit_list,
    .audit_head = sq_audit_head,
    .read_snapshot = sq_read_snapshot,
    .enrol_insert = sq_enrol_insert,
    .enrol_get = sq_enrol_get,
    .nonce_record = sq_nonce_record,
    .nonce_seen = sq_nonce_seen,
    .commit_mode = sq_commit_mode,
    .integrity_check = sq_integrity_check,
    .ca_insert = duo__sq_ca_insert,
    .ca_get = duo__sq_ca_get,
    .ca_next_crl = duo__sq_ca_next_crl,
    .cert_insert = duo__sq_cert_insert,
    .cert_list = duo__sq_cert_list,
    .cert_revoke_key = duo__sq_cert_revoke_key,
    .key_name_get = duo__sq_key_name_get,
    .rp_ca_insert = duo__sq_rp_ca_insert,
    .rp_ca_get = duo__sq_rp_ca_get,
    .rp_insert = duo__sq_rp_insert,
    .rp_remove = duo__sq_rp_remove,
    .rp_by_cert = duo__sq_rp_by_cert,
    .rp_list = duo__sq_rp_list,
    .sealed_walk = sq_sealed_walk,
    .doc_set = duo__sq_doc_set,
    .doc_get = duo__sq_doc_get,
    .doc_list = duo__sq_doc_list,
    .doc_remove = duo__sq_doc_remove,
    .code_insert = duo__sq_code_insert,
    .code_redeem = duo__sq_code_redeem,
    .code_purge = duo__sq_code_purge,
};

/* For certs_sqlite.c (keystore_sqlite.h). */
sqlite3 *duo__sq_db(void *impl) { return ((sq *)impl)->db; }
int duo__sq_tx_begin(void *impl) { return tx_begin(impl); }
int duo__sq_tx_end(void *impl, int r) { return tx_end(impl, r); }
int duo__sq_audit(void *impl, const duo_audit_event *ev, int64_t now) { return maybe_audit(impl, ev, now); }
int duo__sq_key_mac_verify(void *impl, const uint8_t *key_id) { return mac_verify(impl, key_id); }
int duo__sq_map_rc(int rc) { return map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc); }

/* ------------------------------------------------------------ open */

/* PRAGMA quick_check / integrity_check: one row "ok", else one row per
 * finding (the first one is kept). */
static int sq_integrity_check(void *impl, int full, char *why, size_t why_cap) {
    sq *s = impl;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)", -1, &st, NULL);
    int r = DUO_OK, rows = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *m = (const char *)sqlite3_column_text(st, 0);
        if (rows++ == 0 && m != NULL && strcmp(m, "ok") == 0) continue;
        if (r == DUO_OK) snprintf(why, why_cap, "%s", m ? m : "(no detail)");
        r = DUO_E_STATE_CORRUPT;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW && r == DUO_OK) {
        snprintf(why, why_cap, "%s", sqlite3_errmsg(s->db));
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

static void (*sq_log_sink)(const char *line); /* set once, before any store opens */

static void sq_log_cb(void *prog, int code, const char *msg) {
    switch (code & 0xff) {
        case SQLITE_CONSTRAINT: /* a replay or a duplicate: detected and answered, not a fault */
        case SQLITE_NOTICE:
        case SQLITE_WARNING:
        case SQLITE_SCHEMA: /* a statement re-prepared: handled inside SQLite */
            return;
        default:
            if (sq_log_sink) {
                char line[768];
                snprintf(line, sizeof line, "%s (%s)", msg, sqlite3_errstr(code));
                sq_log_sink(line);
            } else {
                fprintf(stderr, "%s: store error: %s (%s)\n", (const char *)prog, msg, sqlite3_errstr(code));
            }
    }
}

int duo_keystore_sqlite_log_errors(const char *prog) {
    return sqlite3_config(SQLITE_CONFIG_LOG, sq_log_cb, (void *)prog) == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

int duo_keystore_sqlite_log_to(void (*sink)(const char *line)) {
    sq_log_sink = sink;
    return sqlite3_config(SQLITE_CONFIG_LOG, sq_log_cb, (void *)"duosign-cloud") == SQLITE_OK ? DUO_OK : DUO_E_STORE;
}

static int exec_sql(sqlite3 *db, const char *sql) {
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? DUO_OK : map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
}

/* In WAL mode, synchronous = NORMAL appends the commit to the log without
 * fsync (a process crash loses nothing: the log is in the OS page cache);
 * the next FULL commit of any connection fsyncs the log and with it every
 * earlier commit. Changed only between transactions. */
static int sq_commit_mode(void *impl, int durable) {
    sq *s = impl;
    int r;
    if (s->deferred == !durable) return DUO_OK;
    if (!sqlite3_get_autocommit(s->db)) return DUO_E_STORE; /* inside a transaction */
    if ((r = exec_sql(s->db, durable ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;")) != DUO_OK)
        return r;
    s->deferred = !durable;
    return DUO_OK;
}

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL), r = DUO_E_STORE;
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        r = DUO_OK;
    } else if (rc != SQLITE_OK && rc != SQLITE_DONE) {
        r = map_rc(rc) == DUO_OK ? DUO_E_STORE : map_rc(rc);
    }
    sqlite3_finalize(st);
    return r;
}

static int set_wal(sqlite3 *db) {
    sqlite3_stmt *st = NULL;
    int r = DUO_E_STORE;
    if (sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *m = sqlite3_column_text(st, 0);
        if (m != NULL && strcmp((const char *)m, "wal") == 0) r = DUO_OK;
    }
    sqlite3_finalize(st);
    return r;
}

/* v4's columns, added only where missing: an older user_version on a
 * database that has them (restored by hand) must still open. */
static int migrate_v4(sqlite3 *db) {
    int64_t n = 0;
    int r;
    if ((r = pragma_int(db, "SELECT count(*) FROM pragma_table_info('tokens') WHERE name = 'citizen_name'", &n)) !=
            DUO_OK ||
        (n == 0 && (r = exec_sql(db, schema_v4_tokens_name)) != DUO_OK))
        return r;
    if ((r = pragma_int(db, "SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'citizen_name'", &n)) !=
            DUO_OK ||
        (n == 0 && (r = exec_sql(db, schema_v4_keys_name)) != DUO_OK))
        return r;
    return exec_sql(db, schema_v3_to_v4);
}

/* v6: adds the policy MAC column and MACs every existing row. A database that
 * already has the column but claims an older version was edited: refused
 * (re-running this step would bless whatever its rows now say). */
static int migrate_v6(sq *s) {
    sqlite3_stmt *st = NULL;
    uint8_t id[DUO_KEY_ID_BYTES];
    int64_t n = 0;
    int rc, r;
    if ((r = pragma_int(s->db, "SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'policy_mac'", &n)) !=
        DUO_OK)
        return r;
    if (n != 0) return DUO_E_POLICY_MAC;
    if ((r = exec_sql(s->db, schema_v5_keys_mac)) != DUO_OK) return r;
    /* The policy fields as they are at v6: the resync ones (v11) and
     * keys.moved (v12) come later, so these rows have none (zeros). */
    static const char mac_row_v6[] = "SELECT state, pin_failures, locked_until, secret_version, policy_mac, 0, 0, 0"
                                     " FROM keys WHERE key_id = ?1";
    for (int i = S_MAC_ROW; i <= S_MAC_SET; i++)
        if (sqlite3_prepare_v2(s->db, i == S_MAC_ROW ? mac_row_v6 : sql_text[i], -1, &s->st[i], NULL) != SQLITE_OK)
            return DUO_E_STORE;
    if (sqlite3_prepare_v2(s->db, "SELECT key_id FROM keys", -1, &st, NULL) != SQLITE_OK) return DUO_E_STORE;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((r = col_blob(st, 0, id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) != DUO_OK ||
            (r = mac_rewrite(s, id)) != DUO_OK)
            break;
    }
    if (r == DUO_OK && rc != SQLITE_DONE) r = DUO_E_STORE;
    sqlite3_finalize(st);
    for (int i = S_MAC_ROW; i <= S_MAC_SET; i++) {
        sqlite3_finalize(s->st[i]);
        s->st[i] = NULL;
    }
    return r == DUO_OK ? exec_sql(s->db, "PRAGMA user_version = 6;") : r;
}

/* A column a migration adds: probe counts it, add creates it. */
typedef struct col_add {
    const char *probe, *add;
} col_add;

/* Adds the columns that are missing (a store whose user_version was set back
 * may have some), then sets the version. */
static int add_missing_columns(sqlite3 *db, const col_add *cols, size_t n_cols, const char *set_version) {
    int64_t n = 0;
    int r;
    for (size_t i = 0; i < n_cols; i++)
        if ((r = pragma_int(db, cols[i].probe, &n)) != DUO_OK || (n == 0 && (r = exec_sql(db, cols[i].add)) != DUO_OK))
            return r;
    return exec_sql(db, set_version);
}

/* v7: keys.role and the token's role slots, each added only where missing. */
static int migrate_v7(sqlite3 *db) {
    static const col_add cols[] = {
        {"SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'role'", schema_v7_keys_role},
        {"SELECT count(*) FROM pragma_table_info('tokens') WHERE name = 'auth_key_id'", schema_v7_tokens_auth},
        {"SELECT count(*) FROM pragma_table_info('tokens') WHERE name = 'sign_key_id'", schema_v7_tokens_sign},
    };
    return add_missing_columns(db, cols, sizeof cols / sizeof cols[0], "PRAGMA user_version = 7;");
}
/* v10 (issue 19): the citizen documents and the presentation codes
 * (docs_sqlite.c, docstore.h). Self-contained and idempotent: it creates only
 * what is missing and touches no table of v7..v9 (other branches' steps), so
 * it runs after whichever of them a database has. */
static const char schema_v10_docs[] =
    "CREATE TABLE IF NOT EXISTS citizen_documents("
    " citizen_id TEXT NOT NULL, doc_type TEXT NOT NULL,"
    " attrs TEXT NOT NULL, photo BLOB,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " PRIMARY KEY(citizen_id, doc_type));"
    "CREATE TABLE IF NOT EXISTS presentation_codes("
    " code_hash BLOB PRIMARY KEY NOT NULL CHECK(length(code_hash) = 32),"
    " barcode_hash BLOB NOT NULL UNIQUE CHECK(length(barcode_hash) = 32),"
    " key_id BLOB NOT NULL CHECK(length(key_id) = 16),"
    " citizen_id TEXT NOT NULL, doc_type TEXT NOT NULL,"
    " issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    " redeemed_at INTEGER, redeemed_by TEXT);"
    "CREATE INDEX IF NOT EXISTS presentation_codes_expiry ON presentation_codes(expires_at);"
    "CREATE INDEX IF NOT EXISTS presentation_codes_doc ON presentation_codes(citizen_id, doc_type);"
    "PRAGMA user_version = 10;";

/* v11 (issue 20, SECURITY 1.10): the one-time resynchronisation after a
 * restore. resync_epoch: the restore epoch whose resync the key may still
 * use (0: none); resync_used: the epoch whose resync it used (0: none). Both
 * are under the policy MAC (policy_mac.h), which covers them only when one
 * is nonzero, so no row's MAC changes here. Columns added only where
 * missing, as v7's. */
static int migrate_v11(sqlite3 *db) {
    static const col_add cols[] = {
        {"SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'resync_epoch'",
         "ALTER TABLE keys ADD COLUMN resync_epoch INTEGER NOT NULL DEFAULT 0"},
        {"SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'resync_used'",
         "ALTER TABLE keys ADD COLUMN resync_used INTEGER NOT NULL DEFAULT 0"},
    };
    return add_missing_columns(db, cols, sizeof cols / sizeof cols[0], "PRAGMA user_version = 11;");
}

/* v12 (issue 12): keys.moved, the inner channel's per-key rule. Added only
 * where missing; every existing key is unmoved (0), whose policy MAC is the
 * form already stored, so no row is re-MAC'd. */
static int migrate_v12(sqlite3 *db) {
    int64_t n = 0;
    int r = pragma_int(db, "SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'moved'", &n);
    if (r == DUO_OK && n == 0)
        r = exec_sql(db, "ALTER TABLE keys ADD COLUMN moved INTEGER NOT NULL DEFAULT 0 CHECK(moved IN (0, 1));");
    return r == DUO_OK ? exec_sql(db, "PRAGMA user_version = 12;") : r;
}

/* Creates or upgrades the schema under the write lock, so two processes
 * opening a fresh database do not both create it. */
static int migrate(sq *s) {
    sqlite3 *db = s->db;
    int64_t v = 0;
    int r;
    if ((r = exec_sql(db, "BEGIN IMMEDIATE")) != DUO_OK) return r;
    if ((r = pragma_int(db, "PRAGMA user_version", &v)) != DUO_OK) goto out;
    if (v > SCHEMA_VERSION) {
        r = DUO_E_UNSUPPORTED; /* written by a newer duosign */
        goto out;
    }
    if (v == 0 && (r = exec_sql(db, schema_v1)) == DUO_OK) v = 1;
    if (r == DUO_OK && v == 1 && (r = exec_sql(db, schema_v1_to_v2)) == DUO_OK) v = 2;
    if (r == DUO_OK && v == 2 && (r = exec_sql(db, schema_v2_to_v3)) == DUO_OK) v = 3;
    if (r == DUO_OK && v == 3 && (r = migrate_v4(db)) == DUO_OK) v = 4;
    if (r == DUO_OK && v == 4) {
        int64_t has_curve = 0;
        r = pragma_int(db, "SELECT count(*) FROM pragma_table_info('keys') WHERE name = 'curve'", &has_curve);
        if (r == DUO_OK && has_curve == 0) r = exec_sql(db, schema_v4_to_v5);
        if (r == DUO_OK) r = exec_sql(db, schema_v5_mark);
    }
    if (r == DUO_OK && v == 4) v = 5;
    if (r == DUO_OK && v == 5 && (r = migrate_v6(s)) == DUO_OK) v = 6;
    if (r == DUO_OK && v == 6 && (r = migrate_v7(db)) == DUO_OK) v = 7;
    /* v8 is kept for the store's signing sessions (issue 20). */
    if (r == DUO_OK && v >= 7 && v < 9 && (r = exec_sql(db, schema_v9)) == DUO_OK) v = 9;
    if (r == DUO_OK && v == 9 && (r = exec_sql(db, schema_v10_docs)) == DUO_OK) v = 10;
    if (r == DUO_OK && v == 10 && (r = migrate_v11(db)) == DUO_OK) v = 11;
    if (r == DUO_OK && v == 11) r = migrate_v12(db);
out:
    if (r == DUO_OK) return exec_sql(db, "COMMIT");
    (void)!exec_sql(db, "ROLLBACK");
    return r;
}

static int sqlite_open(duo_keystore_backend *out, const char *path, const duo_keystore_config *cfg) {
    sq *s = NULL;
    int r = DUO_E_STORE, fd;
    int64_t fk = 0;

    memset(out, 0, sizeof *out);
    /* Create the file ourselves so it is 0600 from the start; SQLite gives the
     * -wal and -shm files the same mode. O_EXCL matters: opening and closing
     * an EXISTING database file here would drop the POSIX locks that other
     * SQLite connections of this process hold on it (close() releases every
     * fcntl lock of the process on that file), and SQLite would then
     * checkpoint and delete the WAL under them. */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR);
    if (fd >= 0) {
        close(fd);
    } else if (errno != EEXIST) {
        return errno == EACCES ? DUO_E_PERMISSION : DUO_E_IO;
    }
    if (cfg->policy_key == NULL) return DUO_E_INVALID_ARG; /* only through duo_keystore_open */
    if ((s = calloc(1, sizeof *s)) == NULL) return DUO_E_NOMEM;
    s->mac_keys[0] = *cfg->policy_key;
    s->n_mac = 1;
    s->before_commit = cfg->before_commit;
    s->write_mu = cfg->write_mu;
    s->hook_data = cfg->hook_data;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        r = s->db != NULL ? map_rc(sqlite3_errcode(s->db)) : DUO_E_NOMEM;
        if (r == DUO_OK) r = DUO_E_STORE;
        goto out;
    }
    sqlite3_extended_result_codes(s->db, 0);
    sqlite3_busy_timeout(s->db, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
    if ((r = set_wal(s->db)) != DUO_OK ||
        (r = exec_sql(s->db, "PRAGMA synchronous = FULL;"
                             "PRAGMA foreign_keys = ON;"
                             "PRAGMA secure_delete = ON;"
                             "PRAGMA trusted_schema = OFF;")) != DUO_OK ||
        (r = pragma_int(s->db, "PRAGMA foreign_keys", &fk)) != DUO_OK)
        goto out;
    if (fk != 1) {
        r = DUO_E_UNSUPPORTED; /* SQLite built without foreign keys */
        goto out;
    }
    if ((r = migrate(s)) != DUO_OK) goto out;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL) != SQLITE_OK) {
            r = DUO_E_STORE;
            goto out;
        }
    }
    out->ops = &sqlite_ops;
    out->impl = s;
    return DUO_OK;
out:
    sq_close(s);
    return r;
}

const duo_keystore_driver duo__keystore_sqlite_driver = {"sqlite", sqlite_open};

int duo_keystore_open_sqlite(duo_keystore **out, const char *path, const duo_kek *kek, const duo_keystore_config *cfg) {
    return duo_keystore_open(out, &duo__keystore_sqlite_driver, path, kek, cfg);
}
