/* The PostgreSQL backend of the key store. See keystore.h and docs/STORE.md.
 *
 * One libpq connection per duo_keystore. Several daemons (nodes) may open the
 * same database: every write is one transaction (READ COMMITTED) that first
 * locks the rows its checks read (SELECT ... FOR UPDATE on the key row or the
 * token), so a check and the write that follows it are atomic across nodes,
 * exactly as SQLite's BEGIN IMMEDIATE makes them within one machine. The
 * audit chain's head row is locked last by every write that appends to it,
 * which orders the chain; locks are always taken key row (or token) first,
 * audit head last, so two writers cannot deadlock on them.
 *
 * The schema is versioned in schema_version; migrations run once, in one
 * transaction, under an advisory lock (two nodes starting at once). */
#include "keystore_pg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "policy_mac.h"

#define SCHEMA_VERSION 12
#define MIGRATE_LOCK "7310423187" /* pg_advisory_xact_lock key of the migration */

/* The schema of SQLite's v1-v4 in PostgreSQL's dialect (BIGINT for every
 * integer: results are read in binary). Versions are applied in order. */
static const char *const migrations[SCHEMA_VERSION] = {
    /* v1 */
    "CREATE TABLE keys("
    " key_id BYTEA PRIMARY KEY CHECK(length(key_id) = 16),"
    " citizen_id TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK(state IN ('pending','active','locked','suspended','revoked')),"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,"
    " paillier_bits BIGINT NOT NULL,"
    " q BYTEA NOT NULL CHECK(length(q) = 33), q2 BYTEA NOT NULL CHECK(length(q2) = 33),"
    " x1_sealed BYTEA, p_sealed BYTEA, q_sealed BYTEA,"
    " secret_cur_sealed BYTEA, secret_pend_sealed BYTEA,"
    " secret_version BIGINT NOT NULL, retired_count BIGINT NOT NULL DEFAULT 0,"
    " pin_failures BIGINT NOT NULL DEFAULT 0, locked_until BIGINT NOT NULL DEFAULT 0,"
    " reason TEXT NOT NULL DEFAULT '', revocation_hash BYTEA,"
    " version BIGINT NOT NULL);"
    "CREATE INDEX keys_citizen ON keys(citizen_id);"
    "CREATE TABLE retired_secrets("
    " key_id BYTEA NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    " n BIGINT NOT NULL, secret_hash BYTEA NOT NULL CHECK(length(secret_hash) = 32),"
    " sealed BYTEA NOT NULL, retired_at BIGINT NOT NULL,"
    " PRIMARY KEY(key_id, n));"
    "CREATE INDEX retired_hash ON retired_secrets(secret_hash);"
    "CREATE TABLE tokens("
    " token_hash BYTEA PRIMARY KEY CHECK(length(token_hash) = 32),"
    " citizen_id TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,"
    " used_at BIGINT, key_id BYTEA);"
    "CREATE TABLE audit("
    " seq BIGINT PRIMARY KEY, time BIGINT NOT NULL, kind TEXT NOT NULL, key_id BYTEA,"
    " citizen_id TEXT NOT NULL, detail TEXT NOT NULL,"
    " prev_hash BYTEA NOT NULL, hash BYTEA NOT NULL);"
    "CREATE TABLE audit_head(id BIGINT PRIMARY KEY CHECK(id = 1),"
    " count BIGINT NOT NULL, head BYTEA NOT NULL);"
    "INSERT INTO audit_head VALUES(1, 0, decode(repeat('00', 32), 'hex'));"
    /* As in SQLite: against accidents, not a security boundary (the chain is). */
    "CREATE FUNCTION duo_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION 'audit log is append-only'; END$$;"
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION duo_audit_append_only();",
    /* v2: enrolment records */
    "CREATE TABLE enrolments("
    " sid BYTEA PRIMARY KEY CHECK(length(sid) = 32),"
    " key_id BYTEA NOT NULL UNIQUE REFERENCES keys(key_id) ON DELETE CASCADE,"
    " token_hash BYTEA NOT NULL CHECK(length(token_hash) = 32));",
    /* v3: seen device nonces; id orders them (SQLite's rowid) */
    "CREATE TABLE seen_nonces("
    " id BIGSERIAL,"
    " key_id BYTEA NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    " secret_hash BYTEA NOT NULL CHECK(length(secret_hash) = 32),"
    " nonce_hash BYTEA NOT NULL CHECK(length(nonce_hash) = 32),"
    " seen_at BIGINT NOT NULL,"
    " PRIMARY KEY(key_id, secret_hash, nonce_hash));",
    /* v4: the issuing CA, certificates, the citizen's name */
    "ALTER TABLE tokens ADD COLUMN citizen_name TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE keys ADD COLUMN citizen_name TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE issuing_ca(id BIGINT PRIMARY KEY CHECK(id = 1),"
    " created_at BIGINT NOT NULL, cert BYTEA NOT NULL, key_sealed BYTEA NOT NULL,"
    " crl_number BIGINT NOT NULL DEFAULT 0, cert_days BIGINT NOT NULL,"
    " country TEXT NOT NULL, crl_url TEXT NOT NULL);"
    "CREATE TABLE certificates("
    " id BIGSERIAL,"
    " serial BYTEA PRIMARY KEY CHECK(length(serial) BETWEEN 1 AND 20),"
    " key_id BYTEA NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    " role TEXT NOT NULL CHECK(role IN ('auth','sign')),"
    " origin TEXT NOT NULL CHECK(origin IN ('issued','imported')),"
    " der BYTEA NOT NULL, issued_at BIGINT NOT NULL, not_after BIGINT NOT NULL,"
    " status TEXT NOT NULL DEFAULT 'good' CHECK(status IN ('good','revoked')),"
    " revoked_at BIGINT, reason BIGINT);"
    "CREATE INDEX certificates_key ON certificates(key_id);",
    /* v5: the key's curve (vocab.h duo_curve); rows before it are secp256k1 */
    "ALTER TABLE keys ADD COLUMN curve BIGINT NOT NULL DEFAULT 1 CHECK(curve IN (1, 2));",
    /* v6 (SQLite v7): the key's role (vocab.h duo_key_role, 0 = before roles) and the
     * token's two role slots. Idempotent: only what is missing is added. */
    "ALTER TABLE keys ADD COLUMN IF NOT EXISTS role BIGINT NOT NULL DEFAULT 0 CHECK(role IN (0, 1, 2));"
    "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS auth_key_id BYTEA;"
    "ALTER TABLE tokens ADD COLUMN IF NOT EXISTS sign_key_id BYTEA;",
    /* v7: the relying-party tables, as
     * SQLite's v9. Only the tables so far (the KEK rotation walks rp_ca's
     * sealed key): the backend's rp_* ops are not written yet, so RP
     * registration on PostgreSQL answers DUO_E_UNSUPPORTED (docs/STORE.md). */
    "CREATE TABLE IF NOT EXISTS rp_ca(id BIGINT PRIMARY KEY CHECK(id = 1),"
    " created_at BIGINT NOT NULL, cert BYTEA NOT NULL, key_sealed BYTEA NOT NULL);"
    "CREATE TABLE IF NOT EXISTS relying_parties("
    " name TEXT PRIMARY KEY CHECK(length(name) BETWEEN 1 AND 64),"
    " cert_sha256 BYTEA NOT NULL UNIQUE CHECK(length(cert_sha256) = 32),"
    " cert BYTEA NOT NULL, issued BIGINT NOT NULL CHECK(issued IN (0, 1)),"
    " created_at BIGINT NOT NULL, removed_at BIGINT NOT NULL DEFAULT 0);",
    /* v8: the citizen documents and
     * the presentation codes, as SQLite's v10 (docs_pg.c). */
    "CREATE TABLE IF NOT EXISTS citizen_documents("
    " citizen_id TEXT NOT NULL, doc_type TEXT NOT NULL, attrs TEXT NOT NULL, photo BYTEA,"
    " created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY(citizen_id, doc_type));"
    "CREATE TABLE IF NOT EXISTS presentation_codes("
    " code_hash BYTEA PRIMARY KEY CHECK(length(code_hash) = 32),"
    " barcode_hash BYTEA NOT NULL UNIQUE CHECK(length(barcode_hash) = 32),"
    " key_id BYTEA NOT NULL CHECK(length(key_id) = 16),"
    " citizen_id TEXT NOT NULL, doc_type TEXT NOT NULL,"
    " issued_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, redeemed_at BIGINT, redeemed_by TEXT);"
    "CREATE INDEX IF NOT EXISTS presentation_codes_expiry ON presentation_codes(expires_at);"
    "CREATE INDEX IF NOT EXISTS presentation_codes_doc ON presentation_codes(citizen_id, doc_type);",
    /* v9: signing sessions between round 1 and round 2, so that round 2 may
     * reach any node (sign_sessions_pg.c; state: 0 live, 1 taken by a round
     * 2, 2 used, 3 superseded). sealed: round 1's state under the KEK, AAD
     * key id || sid; NULL once taken. Self-contained and idempotent. */
    "CREATE TABLE IF NOT EXISTS sign_sessions("
    " sid BYTEA PRIMARY KEY CHECK(length(sid) = 32),"
    " key_id BYTEA NOT NULL REFERENCES keys(key_id) ON DELETE CASCADE,"
    " state BIGINT NOT NULL DEFAULT 0 CHECK(state IN (0, 1, 2, 3)),"
    " created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, taken_at BIGINT NOT NULL DEFAULT 0,"
    " sealed BYTEA);"
    "CREATE INDEX IF NOT EXISTS sign_sessions_key ON sign_sessions(key_id);"
    "CREATE INDEX IF NOT EXISTS sign_sessions_expiry ON sign_sessions(expires_at);",
    /* v10: the policy MAC (policy_mac.h), as SQLite's v6: NULL here, the
     * step is migrate_v10 (it needs the MAC key to MAC every existing row). */
    NULL,
    /* v11 (issue 12): keys.moved, the inner channel's per-key rule: every
     * existing key is unmoved; set once by key_set_moved, never cleared. */
    "ALTER TABLE keys ADD COLUMN IF NOT EXISTS moved BIGINT NOT NULL DEFAULT 0 CHECK(moved IN (0, 1));",
    /* v12 (issue 20, SECURITY 1.10), as SQLite's v11: the one-time
     * resynchronisation after a restore. resync_epoch: the restore epoch whose
     * resync the key may still use (0: none); resync_used: the epoch whose
     * resync it used (0: none). Both 0 on every existing row, so its MAC
     * holds (policy_mac.h adds them only when one is nonzero). NULL: the step
     * is migrate_v12 (it also repairs a database that took main's v10
     * placeholder, which had no policy_mac column). */
    NULL,
};

#define KEY_COLS                                                                             \
    "key_id, citizen_id, state, created_at, updated_at, paillier_bits, q, q2, pin_failures," \
    " locked_until, reason, secret_pend_sealed IS NOT NULL, revocation_hash IS NOT NULL,"    \
    " retired_count, version, secret_version, x1_sealed, p_sealed, q_sealed,"                \
    " secret_cur_sealed, secret_pend_sealed, curve, role, policy_mac, moved, resync_epoch, resync_used"

/* The policy fields and MAC of a key row (policy_read); the first five are
 * those of schema v10 (POLICY_COLS_V10: its migration MACs rows that have
 * neither moved nor the resync columns yet). */
#define POLICY_COLS_V10 "state, pin_failures, locked_until, secret_version, policy_mac"
#define POLICY_COLS POLICY_COLS_V10 ", moved, resync_epoch, resync_used"

/* Statements with parameters are prepared once per connection (the server
 * then skips parsing and planning them on every call), named by the
 * position of their SQL text in this table; only string literals come here
 * (duo__pg_exec), so a pointer names one statement for the process's life. */
#define PG_PREPARED_MAX 64

typedef struct pg {
    PGconn *conn;
    const char *prepared[PG_PREPARED_MAX];
    int n_prepared;
    void (*before_commit)(void *);
    void *hook_data;
    int deferred; /* synchronous_commit = off on this connection (commit_mode) */
    int in_tx;
    /* SECRET: the policy MAC keys, one per loaded KEK (config, then
     * policy_key_add during a KEK rotation). Any of them verifies; the
     * newest (the rotation's target) writes. As SQLite's. */
    duo_policy_key mac_keys[2];
    size_t n_mac;
} pg;

/* ------------------------------------------------------------ libpq helpers */

void duo__pg_blob(duo_pg_params *q, const void *p, size_t len) {
    int i = q->n++;
    q->v[i] = (p == NULL || len == 0) ? NULL : p;
    q->len[i] = (int)len;
    q->fmt[i] = 1;
}

void duo__pg_text(duo_pg_params *q, const char *t) {
    int i = q->n++;
    q->v[i] = t;
    q->len[i] = 0;
    q->fmt[i] = 0;
}

void duo__pg_i64(duo_pg_params *q, int64_t v) {
    int i = q->n++;
    snprintf(q->num[i], sizeof q->num[i], "%" PRId64, v);
    q->v[i] = q->num[i];
    q->len[i] = 0;
    q->fmt[i] = 0;
}

static int map_state(const char *code) {
    if (code == NULL) return DUO_E_STORE;
    if (strncmp(code, "23", 2) == 0) return DUO_E_EXISTS; /* integrity constraint */
    if (strcmp(code, "40001") == 0 || strcmp(code, "40P01") == 0 || strcmp(code, "55P03") == 0 ||
        strcmp(code, "57014") == 0)
        return DUO_E_TIMEOUT;
    if (strncmp(code, "08", 2) == 0 || strncmp(code, "53", 2) == 0 || strncmp(code, "58", 2) == 0) return DUO_E_IO;
    if (strcmp(code, "42501") == 0) return DUO_E_PERMISSION;
    return DUO_E_STORE;
}

/* A lost connection (a restarted server, a failover) is reopened between
 * transactions, never inside one: what it did is gone with it. */
static void reconnect_if_lost(pg *s) {
    if (!s->in_tx && PQstatus(s->conn) == CONNECTION_BAD) {
        PQreset(s->conn);
        s->n_prepared = 0; /* prepared statements die with the session */
        if (PQstatus(s->conn) == CONNECTION_OK && s->deferred) {
            PGresult *res = PQexec(s->conn, "SET synchronous_commit = off");
            PQclear(res);
        }
    }
}

/* The name of sql's prepared statement ("" if it cannot be prepared: the
 * table is full, or the server refused; it then runs unprepared). */
static void prepared_name(pg *s, char name[16], const char *sql, const duo_pg_params *q) {
    int i;
    name[0] = '\0';
    for (i = 0; i < s->n_prepared; i++)
        if (s->prepared[i] == sql) break;
    if (i == s->n_prepared) {
        if (i == PG_PREPARED_MAX) return;
        snprintf(name, 16, "duo%d", i);
        PGresult *p = PQprepare(s->conn, name, sql, q->n, NULL);
        int ok = p != NULL && PQresultStatus(p) == PGRES_COMMAND_OK;
        PQclear(p);
        if (!ok) { /* inside a failed transaction, or a lost connection: not now */
            name[0] = '\0';
            return;
        }
        s->prepared[s->n_prepared++] = sql;
    }
    snprintf(name, 16, "duo%d", i);
}

static PGresult *exec_params(pg *s, const char *sql, const duo_pg_params *q, int prepare) {
    char name[16] = "";
    if (prepare && q != NULL && q->n > 0) prepared_name(s, name, sql, q);
    if (name[0] != '\0') return PQexecPrepared(s->conn, name, q->n, q->v, q->len, q->fmt, 1);
    return PQexecParams(s->conn, sql, q ? q->n : 0, NULL, q ? q->v : NULL, q ? q->len : NULL, q ? q->fmt : NULL, 1);
}

static int exec_any(void *impl, PGresult **res, const char *sql, const duo_pg_params *q, int prepare) {
    pg *s = impl;
    ExecStatusType st;
    *res = NULL;
    reconnect_if_lost(s);
    PGresult *r = exec_params(s, sql, q, prepare);
    if (r == NULL) return DUO_E_NOMEM;
    st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *res = r;
        return DUO_OK;
    }
    const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    int e = map_state(code);
    /* Constraint violations are expected (replays, duplicates): answered, not logged. */
    if (e != DUO_E_EXISTS) fprintf(stderr, "duosign-cloud: store error: %s", PQresultErrorMessage(r));
    PQclear(r);
    return e;
}

int duo__pg_exec(void *impl, PGresult **res, const char *sql, const duo_pg_params *q) {
    return exec_any(impl, res, sql, q, 1);
}

int duo__pg_exec_dynamic(void *impl, PGresult **res, const char *sql, const duo_pg_params *q) {
    return exec_any(impl, res, sql, q, 0);
}

/* Runs a statement whose result is not needed. *changed: rows affected. */
static int run(pg *s, const char *sql, const duo_pg_params *q, int64_t *changed) {
    PGresult *res;
    int r = duo__pg_exec(s, &res, sql, q);
    if (r != DUO_OK) return r;
    if (changed != NULL) *changed = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return DUO_OK;
}

int duo__pg_col_i64(const PGresult *res, int row, int col, int64_t *out) {
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    int n = PQgetlength(res, row, col);
    uint64_t v = 0;
    *out = 0;
    if (PQgetisnull(res, row, col)) return DUO_OK;
    if (PQfformat(res, col) != 1 || (n != 1 && n != 2 && n != 4 && n != 8)) return DUO_E_STATE_CORRUPT;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    if (n == 8)
        *out = (int64_t)v;
    else if (n == 4)
        *out = (int32_t)(uint32_t)v;
    else if (n == 2)
        *out = (int16_t)(uint16_t)v;
    else
        *out = (int64_t)v; /* boolean */
    return DUO_OK;
}

int duo__pg_col_blob(const PGresult *res, int row, int col, uint8_t *out, size_t len, size_t cap, size_t *got) {
    int n = PQgetlength(res, row, col);
    if (got != NULL) *got = 0;
    if (PQgetisnull(res, row, col)) return len == 0 ? DUO_OK : DUO_E_STATE_CORRUPT;
    if (n < 0 || (len != 0 && (size_t)n != len) || (size_t)n > cap) return DUO_E_STATE_CORRUPT;
    if (n > 0) memcpy(out, PQgetvalue(res, row, col), (size_t)n);
    if (got != NULL) *got = (size_t)n;
    return DUO_OK;
}

int duo__pg_col_text(const PGresult *res, int row, int col, char *out, size_t cap) {
    int n = PQgetlength(res, row, col);
    out[0] = '\0';
    if (PQgetisnull(res, row, col)) return DUO_OK;
    if (n < 0 || (size_t)n >= cap) return DUO_E_STATE_CORRUPT;
    memcpy(out, PQgetvalue(res, row, col), (size_t)n);
    out[n] = '\0';
    if (memchr(out, '\0', (size_t)n) != NULL) return DUO_E_STATE_CORRUPT;
    return DUO_OK;
}

/* ------------------------------------------------------------ transactions */

int duo__pg_tx_begin(void *impl) {
    pg *s = impl;
    int r = run(s, "BEGIN", NULL, NULL);
    s->in_tx = r == DUO_OK;
    return r;
}

static void tx_rollback(pg *s) {
    if (PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        PGresult *res = PQexec(s->conn, "ROLLBACK");
        PQclear(res);
    }
    s->in_tx = 0;
}

int duo__pg_tx_end(void *impl, int r) {
    pg *s = impl;
    if (r == DUO_OK) {
        if (s->before_commit != NULL) s->before_commit(s->hook_data);
        r = run(s, "COMMIT", NULL, NULL);
    }
    tx_rollback(s); /* after a failed COMMIT too: nothing may stay open */
    return r;
}

/* ------------------------------------------------------------ audit (in tx) */

static int audit_head_read(pg *s, uint64_t *count, uint8_t head[DUO_AUDIT_HASH_LEN], int lock) {
    PGresult *res;
    int64_t c = 0;
    int r = duo__pg_exec(s, &res,
                         lock ? "SELECT count, head FROM audit_head WHERE id = 1 FOR UPDATE"
                              : "SELECT count, head FROM audit_head WHERE id = 1",
                         NULL);
    if (r != DUO_OK) return r;
    if (PQntuples(res) != 1)
        r = DUO_E_STATE_CORRUPT;
    else if ((r = duo__pg_col_i64(res, 0, 0, &c)) == DUO_OK)
        r = duo__pg_col_blob(res, 0, 1, head, DUO_AUDIT_HASH_LEN, DUO_AUDIT_HASH_LEN, NULL);
    *count = (uint64_t)c;
    PQclear(res);
    return r;
}

/* Appends ev; the caller holds the write transaction. The head row's lock
 * orders concurrent appenders (any node). */
static int audit_append_tx(pg *s, uint64_t *seq, const duo_audit_event *ev, int64_t now) {
    duo_audit_entry *e;
    duo_pg_params q = {0};
    uint64_t count = 0;
    uint8_t head[DUO_AUDIT_HASH_LEN];
    int r;

    if ((e = malloc(sizeof *e)) == NULL) return DUO_E_NOMEM;
    if ((r = audit_head_read(s, &count, head, 1)) != DUO_OK) goto out;
    if ((r = duo_audit_entry_make(e, count + 1, now, ev, head)) != DUO_OK) goto out;
    duo__pg_i64(&q, (int64_t)e->seq);
    duo__pg_i64(&q, e->time);
    duo__pg_text(&q, e->kind);
    duo__pg_blob(&q, e->key_id, e->has_key_id ? DUO_KEY_ID_BYTES : 0);
    duo__pg_text(&q, e->citizen_id);
    duo__pg_text(&q, e->detail);
    duo__pg_blob(&q, e->prev_hash, DUO_AUDIT_HASH_LEN);
    duo__pg_blob(&q, e->hash, DUO_AUDIT_HASH_LEN);
    if ((r = run(s,
                 "INSERT INTO audit(seq, time, kind, key_id, citizen_id, detail, prev_hash, hash)"
                 " VALUES($1, $2, $3, $4, $5, $6, $7, $8)",
                 &q, NULL)) != DUO_OK)
        goto out;
    memset(&q, 0, sizeof q);
    duo__pg_i64(&q, (int64_t)e->seq);
    duo__pg_blob(&q, e->hash, DUO_AUDIT_HASH_LEN);
    if ((r = run(s, "UPDATE audit_head SET count = $1, head = $2 WHERE id = 1", &q, NULL)) != DUO_OK) goto out;
    if (seq != NULL) *seq = e->seq;
out:
    free(e);
    return r;
}

int duo__pg_audit(void *impl, const duo_audit_event *ev, int64_t now) {
    return ev == NULL ? DUO_OK : audit_append_tx(impl, NULL, ev, now);
}

/* ------------------------------------------------------------ policy MAC */

/* Where a result row holds the policy fields: state, pin_failures,
 * locked_until, secret_version, policy_mac, moved, resync_epoch,
 * resync_used; a negative column is a field the row's schema lacks (0). */
#define POLICY_NCOLS 8
static const int key_row_policy_cols[POLICY_NCOLS] = {2, 8, 9, 15, 23, 24, 25, 26}; /* KEY_COLS */
static const int policy_cols[POLICY_NCOLS] = {0, 1, 2, 3, 4, 5, 6, 7};              /* POLICY_COLS */
static const int policy_cols_v10[POLICY_NCOLS] = {0, 1, 2, 3, 4, -1, -1, -1};       /* POLICY_COLS_V10 */

/* Reads a row's policy fields. A value outside its field's range was not
 * written by duosign: DUO_E_POLICY_MAC, like a MAC mismatch (a pin_failures
 * of 2^32 + 3 must not pass for 3, a moved of 2 for 1). */
static int policy_read(const PGresult *res, int row, const int cols[POLICY_NCOLS], const uint8_t *key_id,
                       duo_policy_fields *f) {
    char name[16];
    int64_t v[6] = {0};
    int r;
    memset(f, 0, sizeof *f);
    memcpy(f->key_id, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_col_text(res, row, cols[0], name, sizeof name)) != DUO_OK) return r;
    for (int i = 0; i < 6; i++) {
        int c = cols[i < 3 ? 1 + i : 2 + i]; /* skips the MAC's column */
        if (c >= 0 && (r = duo__pg_col_i64(res, row, c, &v[i])) != DUO_OK) return r;
    }
    if (v[0] < 0 || v[0] > UINT32_MAX || v[2] < 0 || (v[3] != 0 && v[3] != 1) || v[4] < 0 || v[5] < 0)
        return DUO_E_POLICY_MAC;
    f->state = duo_key_state_from_name(name); /* 0 for an unknown name: its MAC fails */
    f->pin_failures = (uint32_t)v[0];
    f->locked_until = v[1];
    f->secret_version = (uint64_t)v[2];
    f->moved = (int)v[3];
    f->resync_epoch = (uint64_t)v[4];
    f->resync_used = (uint64_t)v[5];
    return DUO_OK;
}

/* DUO_OK if the row's stored MAC (column cols[4]) verifies under any loaded
 * policy key; a NULL or short MAC is a mismatch. */
static int policy_check(const pg *s, const PGresult *res, int row, const int cols[POLICY_NCOLS],
                        const uint8_t *key_id) {
    duo_policy_fields f;
    int r = policy_read(res, row, cols, key_id, &f);
    if (r != DUO_OK) return r;
    int n = PQgetisnull(res, row, cols[4]) ? 0 : PQgetlength(res, row, cols[4]);
    const uint8_t *mac = (const uint8_t *)PQgetvalue(res, row, cols[4]);
    r = DUO_E_POLICY_MAC;
    for (size_t i = 0; i < s->n_mac && r == DUO_E_POLICY_MAC; i++)
        r = duo_policy_mac_check(&s->mac_keys[i], &f, mac, n < 0 ? 0 : (size_t)n);
    return r;
}

/* Inside a write transaction: locks the key row and refuses it when its MAC
 * does not match (it was edited outside duosign). */
static int mac_verify(pg *s, const uint8_t *key_id) {
    PGresult *res;
    duo_pg_params q = {0};
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(s, &res, "SELECT " POLICY_COLS " FROM keys WHERE key_id = $1 FOR UPDATE", &q)) != DUO_OK)
        return r;
    r = PQntuples(res) == 1 ? policy_check(s, res, 0, policy_cols, key_id) : DUO_E_NOT_FOUND;
    PQclear(res);
    return r;
}

/* Stores the MAC of f (the row's policy fields as just written) under the
 * newest policy key, inside the write's transaction. */
static int mac_store(pg *s, const uint8_t *key_id, const duo_policy_fields *f) {
    duo_pg_params q = {0};
    uint8_t mac[DUO_POLICY_MAC_LEN];
    int r;
    if ((r = duo_policy_mac(mac, &s->mac_keys[s->n_mac - 1], f)) != DUO_OK) return r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_blob(&q, mac, sizeof mac);
    return run(s, "UPDATE keys SET policy_mac = $2 WHERE key_id = $1", &q, NULL);
}

/* Runs sql, a write (or read) of key_id's row returning its policy fields
 * at cols, and stores the MAC of what it wrote: the fields come back with
 * the write (no second read). */
static int write_row_mac_cols(pg *s, const char *sql, const duo_pg_params *q, const uint8_t *key_id,
                              const int cols[POLICY_NCOLS]) {
    PGresult *res;
    duo_policy_fields f;
    int r = duo__pg_exec(s, &res, sql, q);
    if (r != DUO_OK) return r;
    r = PQntuples(res) == 1 ? policy_read(res, 0, cols, key_id, &f) : DUO_E_NOT_FOUND;
    PQclear(res);
    return r == DUO_OK ? mac_store(s, key_id, &f) : r;
}

/* write_row_mac_cols for sql ending in "RETURNING " POLICY_COLS. */
static int write_row_mac(pg *s, const char *sql, const duo_pg_params *q, const uint8_t *key_id) {
    return write_row_mac_cols(s, sql, q, key_id, policy_cols);
}

/* Inside a write transaction: reads the row's policy fields and stores
 * their MAC (a KEK rotation's remac, the flag moved). */
static int mac_rewrite(pg *s, const uint8_t *key_id) {
    duo_pg_params q = {0};
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    return write_row_mac(s, "SELECT " POLICY_COLS " FROM keys WHERE key_id = $1", &q, key_id);
}

int duo__pg_key_active(void *impl, const uint8_t *key_id) {
    duo_pg_params q = {0};
    PGresult *res;
    char st[16];
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(impl, &res, "SELECT " POLICY_COLS " FROM keys WHERE key_id = $1 FOR UPDATE", &q)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1) r = DUO_E_NOT_FOUND;
    /* The state about to decide must be the one duosign wrote. */
    else if ((r = policy_check(impl, res, 0, policy_cols, key_id)) == DUO_OK &&
             (r = duo__pg_col_text(res, 0, 0, st, sizeof st)) == DUO_OK)
        r = strcmp(st, "active") == 0 ? DUO_OK : DUO_E_KEY_NOT_ACTIVE;
    PQclear(res);
    return r;
}

/* ------------------------------------------------------------ key rows */

static int read_key_row(const pg *s, const PGresult *res, int row, duo_key_info *k, duo_key_sealed *sl) {
    char state[16];
    int64_t v[10];
    int r;
    int64_t curve = 0, role = 0, rs[3] = {0};
    static const int icols[10] = {3, 4, 5, 8, 9, 11, 12, 13, 14, 15};
    memset(k, 0, sizeof *k);
    if ((r = duo__pg_col_blob(res, row, 0, k->key_id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) != DUO_OK ||
        (r = duo__pg_col_text(res, row, 1, k->citizen_id, sizeof k->citizen_id)) != DUO_OK ||
        (r = duo__pg_col_text(res, row, 2, state, sizeof state)) != DUO_OK ||
        (r = duo__pg_col_blob(res, row, 6, k->q, DUO_POINT_BYTES, DUO_POINT_BYTES, NULL)) != DUO_OK ||
        (r = duo__pg_col_blob(res, row, 7, k->q2, DUO_POINT_BYTES, DUO_POINT_BYTES, NULL)) != DUO_OK ||
        (r = duo__pg_col_text(res, row, 10, k->reason, sizeof k->reason)) != DUO_OK)
        return r;
    /* Before anything else decides on the row: its policy is duosign's. */
    if ((r = policy_check(s, res, row, key_row_policy_cols, k->key_id)) != DUO_OK) return r;
    for (int i = 0; i < 10; i++)
        if ((r = duo__pg_col_i64(res, row, icols[i], &v[i])) != DUO_OK) return r;
    if ((r = duo__pg_col_i64(res, row, 21, &curve)) != DUO_OK || (r = duo__pg_col_i64(res, row, 22, &role)) != DUO_OK ||
        (r = duo__pg_col_i64(res, row, 24, &rs[0])) != DUO_OK ||
        (r = duo__pg_col_i64(res, row, 25, &rs[1])) != DUO_OK || (r = duo__pg_col_i64(res, row, 26, &rs[2])) != DUO_OK)
        return r;
    k->moved = (int)rs[0]; /* each in its range: policy_read checked */
    k->resync_epoch = (uint64_t)rs[1];
    k->resync_used = (uint64_t)rs[2];
    if (role < 0 || role >= DUO_KEY_ROLE_COUNT) return DUO_E_STATE_CORRUPT;
    k->role = (int)role;
    if ((k->state = duo_key_state_from_name(state)) == 0) return DUO_E_STATE_CORRUPT;
    if (curve < 0 || curve > 64 || !duo_curve_valid((int)curve)) return DUO_E_STATE_CORRUPT;
    k->curve = (int)curve;
    if (v[2] < 0 || v[2] > UINT32_MAX || v[3] < 0 || v[3] > UINT32_MAX) return DUO_E_STATE_CORRUPT;
    k->created_at = v[0];
    k->updated_at = v[1];
    k->paillier_bits = (uint32_t)v[2];
    k->pin_failures = (uint32_t)v[3];
    k->locked_until = v[4];
    k->has_pending_secret = v[5] != 0;
    k->has_revocation_code = v[6] != 0;
    k->retired_count = (uint64_t)v[7];
    k->version = (uint64_t)v[8];
    k->secret_version = (uint64_t)v[9];
    if (sl == NULL) return DUO_OK;
    memset(sl, 0, sizeof *sl);
    duo_sealed_col *cols[5] = {&sl->x1, &sl->p, &sl->q, &sl->current, &sl->pending};
    for (int i = 0; i < 5; i++)
        if ((r = duo__pg_col_blob(res, row, 16 + i, cols[i]->data, 0, DUO_SEALED_MAX, &cols[i]->len)) != DUO_OK)
            return r;
    return DUO_OK;
}

/* Reads the key row; lock != 0 (inside a write): FOR UPDATE, so no other
 * node's transaction changes the row until this one ends. */
static int key_get_row(pg *s, duo_key_info *k, duo_key_sealed *sl, const uint8_t *key_id, int lock) {
    PGresult *res;
    duo_pg_params q = {0};
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    r = duo__pg_exec(s, &res,
                     lock ? "SELECT " KEY_COLS " FROM keys WHERE key_id = $1 FOR UPDATE"
                          : "SELECT " KEY_COLS " FROM keys WHERE key_id = $1",
                     &q);
    if (r != DUO_OK) return r;
    r = PQntuples(res) == 1 ? read_key_row(s, res, 0, k, sl) : DUO_E_NOT_FOUND;
    PQclear(res);
    return r;
}

/* Inside a write: locks the key row, checks its policy MAC and reads its
 * state and version (and optionally citizen and revocation hash). */
static const int state_policy_cols[POLICY_NCOLS] = {0, 4, 5, 6, 7, 8, 9, 10};
static int key_state(pg *s, int *state, uint64_t *version, char *citizen, uint8_t *rev_hash, int *has_rev,
                     const uint8_t *key_id) {
    PGresult *res;
    duo_pg_params q = {0};
    char name[16];
    int64_t v = 0;
    size_t got = 0;
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(s, &res,
                          "SELECT state, version, citizen_id, revocation_hash, pin_failures, locked_until,"
                          " secret_version, policy_mac, moved, resync_epoch, resync_used FROM keys"
                          " WHERE key_id = $1 FOR UPDATE",
                          &q)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1) {
        r = DUO_E_NOT_FOUND;
    } else if ((r = policy_check(s, res, 0, state_policy_cols, key_id)) != DUO_OK) {
        /* every writer reads the row here first: an edited row changes nothing */
    } else if ((r = duo__pg_col_text(res, 0, 0, name, sizeof name)) == DUO_OK &&
               (r = duo__pg_col_i64(res, 0, 1, &v)) == DUO_OK) {
        *state = duo_key_state_from_name(name);
        *version = (uint64_t)v;
        if (citizen != NULL) r = duo__pg_col_text(res, 0, 2, citizen, DUO_CITIZEN_ID_MAX + 1);
        if (r == DUO_OK && rev_hash != NULL) {
            r = duo__pg_col_blob(res, 0, 3, rev_hash, 0, 32, &got);
            if (r == DUO_OK && got != 0 && got != 32) r = DUO_E_STATE_CORRUPT;
            *has_rev = got == 32;
        }
        if (r == DUO_OK && *state == 0) r = DUO_E_STATE_CORRUPT;
    }
    PQclear(res);
    return r;
}

/* ------------------------------------------------------------ ops */

static void pg_close(void *impl) {
    pg *s = impl;
    if (s == NULL) return;
    if (s->conn != NULL) PQfinish(s->conn);
    duo_memzero(s, sizeof *s); /* the policy MAC keys */
    free(s);
}

static int key_insert_tx(pg *s, const duo_key_info *k, const duo_key_sealed *sl, int64_t now) {
    duo_pg_params q = {0};
    duo__pg_blob(&q, k->key_id, DUO_KEY_ID_BYTES);
    duo__pg_text(&q, k->citizen_id);
    duo__pg_i64(&q, now);
    duo__pg_i64(&q, k->paillier_bits);
    duo__pg_blob(&q, k->q, DUO_POINT_BYTES);
    duo__pg_blob(&q, k->q2, DUO_POINT_BYTES);
    duo__pg_blob(&q, sl->x1.data, sl->x1.len);
    duo__pg_blob(&q, sl->p.data, sl->p.len);
    duo__pg_blob(&q, sl->q.data, sl->q.len);
    duo__pg_blob(&q, sl->current.data, sl->current.len);
    duo__pg_i64(&q, (int64_t)k->secret_version);
    duo__pg_i64(&q, k->curve);
    duo__pg_i64(&q, k->role);
    duo__pg_i64(&q, k->moved != 0);
    return write_row_mac(s,
                         "INSERT INTO keys(key_id, citizen_id, state, created_at, updated_at, paillier_bits,"
                         " q, q2, x1_sealed, p_sealed, q_sealed, secret_cur_sealed, secret_pend_sealed,"
                         " secret_version, retired_count, pin_failures, locked_until, reason, revocation_hash,"
                         " version, curve, role, moved)"
                         " VALUES($1, $2, 'pending', $3, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $11, 0, 0, 0, '',"
                         " NULL, 1, $12, $13, $14) RETURNING " POLICY_COLS,
                         &q, k->key_id); /* DUO_E_EXISTS on a taken key id */
}

static int pg_key_insert(void *impl, const duo_key_info *k, const duo_key_sealed *sl, const duo_audit_event *ev,
                         int64_t now) {
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_insert_tx(impl, k, sl, now)) == DUO_OK) r = duo__pg_audit(impl, ev, now);
    return duo__pg_tx_end(impl, r);
}

static int pg_enrol_insert(void *impl, const duo_key_info *k, const duo_key_sealed *sl, const uint8_t *sid,
                           const uint8_t *token_hash, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_insert_tx(impl, k, sl, now)) != DUO_OK) goto out;
    duo__pg_blob(&q, sid, 32);
    duo__pg_blob(&q, k->key_id, DUO_KEY_ID_BYTES);
    duo__pg_blob(&q, token_hash, 32);
    if ((r = run(impl, "INSERT INTO enrolments(sid, key_id, token_hash) VALUES($1, $2, $3)", &q, NULL)) != DUO_OK)
        goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

static int pg_enrol_get(void *impl, uint8_t *key_id, uint8_t *token_hash, const uint8_t *sid) {
    PGresult *res;
    duo_pg_params q = {0};
    int r;
    duo__pg_blob(&q, sid, 32);
    if ((r = duo__pg_exec(impl, &res, "SELECT key_id, token_hash FROM enrolments WHERE sid = $1", &q)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1)
        r = DUO_E_NOT_FOUND;
    else if ((r = duo__pg_col_blob(res, 0, 0, key_id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) == DUO_OK)
        r = duo__pg_col_blob(res, 0, 1, token_hash, 32, 32, NULL);
    PQclear(res);
    return r;
}

static int pg_key_get(void *impl, duo_key_info *k, duo_key_sealed *sl, const uint8_t *key_id) {
    return key_get_row(impl, k, sl, key_id, 0);
}

static int pg_key_list(void *impl, const char *citizen, duo_key_info_cb cb, void *data) {
    PGresult *res;
    duo_pg_params q = {0};
    duo_key_info k;
    int r;
    if (citizen != NULL) duo__pg_text(&q, citizen);
    r = duo__pg_exec(impl, &res,
                     citizen != NULL ? "SELECT " KEY_COLS " FROM keys WHERE citizen_id = $1 ORDER BY created_at, key_id"
                                     : "SELECT " KEY_COLS " FROM keys ORDER BY created_at, key_id",
                     &q);
    if (r != DUO_OK) return r;
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++)
        if ((r = read_key_row(impl, res, i, &k, NULL)) == DUO_OK) r = cb(data, &k);
    PQclear(res);
    return r;
}

/* The token's role slot (columns 3, 4: auth_key_id, sign_key_id): a legacy
 * enrolment (role 0) needs both free. */
static int token_role_free(const PGresult *res, int role) {
    int auth = !PQgetisnull(res, 0, 3), sign = !PQgetisnull(res, 0, 4);
    if (role == DUO_KEY_ROLE_AUTH) return !auth;
    if (role == DUO_KEY_ROLE_SIGN) return !sign;
    return !auth && !sign;
}

/* Checks a token inside the current transaction (lock: FOR UPDATE); role < 0:
 * any, else that role's slot must be free (DUO_E_TOKEN_ROLE_USED). */
static int token_state(pg *s, char *citizen, const uint8_t *hash, int role, int64_t now, int lock) {
    PGresult *res;
    duo_pg_params q = {0};
    int64_t exp = 0;
    int r;
    duo__pg_blob(&q, hash, 32);
    if ((r = duo__pg_exec(s, &res,
                          lock ? "SELECT citizen_id, expires_at, used_at, auth_key_id, sign_key_id FROM tokens"
                                 " WHERE token_hash = $1 FOR UPDATE"
                               : "SELECT citizen_id, expires_at, used_at, auth_key_id, sign_key_id FROM tokens"
                                 " WHERE token_hash = $1",
                          &q)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1)
        r = DUO_E_TOKEN_INVALID;
    else if (!PQgetisnull(res, 0, 2))
        r = DUO_E_TOKEN_INVALID; /* used */
    else if ((r = duo__pg_col_i64(res, 0, 1, &exp)) == DUO_OK && exp <= now)
        r = DUO_E_TOKEN_EXPIRED;
    else if (r == DUO_OK && role >= 0 && !token_role_free(res, role))
        r = DUO_E_TOKEN_ROLE_USED;
    else if (r == DUO_OK)
        r = duo__pg_col_text(res, 0, 0, citizen, DUO_CITIZEN_ID_MAX + 1);
    PQclear(res);
    return r;
}

/* A role fills its slot and spends the token once both are filled; a legacy
 * enrolment (role 0) spends it whole. */
static int token_use(pg *s, const uint8_t *hash, const uint8_t *key_id, int role, int64_t now) {
    duo_pg_params q = {0};
    int64_t n = 0;
    int r;
    const char *sql =
        role == DUO_KEY_ROLE_AUTH
            ? "UPDATE tokens SET auth_key_id = $3, used_at = CASE WHEN sign_key_id IS NOT NULL THEN $2 END,"
              " key_id = CASE WHEN sign_key_id IS NOT NULL THEN $3 END"
              " WHERE token_hash = $1 AND used_at IS NULL AND auth_key_id IS NULL"
        : role == DUO_KEY_ROLE_SIGN
            ? "UPDATE tokens SET sign_key_id = $3, used_at = CASE WHEN auth_key_id IS NOT NULL THEN $2 END,"
              " key_id = CASE WHEN auth_key_id IS NOT NULL THEN $3 END"
              " WHERE token_hash = $1 AND used_at IS NULL AND sign_key_id IS NULL"
            : "UPDATE tokens SET used_at = $2, key_id = $3"
              " WHERE token_hash = $1 AND used_at IS NULL AND auth_key_id IS NULL AND sign_key_id IS NULL";
    duo__pg_blob(&q, hash, 32);
    duo__pg_i64(&q, now);
    duo__pg_blob(&q, key_id, key_id != NULL ? DUO_KEY_ID_BYTES : 0);
    if ((r = run(s, sql, &q, &n)) != DUO_OK) return r;
    return n == 1 ? DUO_OK : DUO_E_TOKEN_INVALID; /* the row lock makes this a guard only */
}

/* The key's role, inside the current transaction (the key row is locked). */
static int key_role(pg *s, int *role, const uint8_t *key_id) {
    PGresult *res;
    duo_pg_params q = {0};
    int64_t v = 0;
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(s, &res, "SELECT role FROM keys WHERE key_id = $1", &q)) != DUO_OK) return r;
    if (PQntuples(res) != 1)
        r = DUO_E_NOT_FOUND;
    else if ((r = duo__pg_col_i64(res, 0, 0, &v)) == DUO_OK && (v < 0 || v >= DUO_KEY_ROLE_COUNT))
        r = DUO_E_STATE_CORRUPT;
    *role = (int)v;
    PQclear(res);
    return r;
}

static int pg_key_activate(void *impl, const uint8_t *key_id, const uint8_t *token_hash, const uint8_t *rev_hash,
                           const duo_audit_event *ev, int64_t now) {
    char kc[DUO_CITIZEN_ID_MAX + 1], tc[DUO_CITIZEN_ID_MAX + 1];
    duo_pg_params q = {0};
    int state, role = 0, r;
    uint64_t version;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_state(impl, &state, &version, kc, NULL, NULL, key_id)) != DUO_OK) goto out;
    if (state != DUO_KEY_STATE_PENDING) {
        r = DUO_E_PROTO_STATE;
        goto out;
    }
    if ((r = key_role(impl, &role, key_id)) != DUO_OK) goto out;
    if ((r = token_state(impl, tc, token_hash, role, now, 1)) != DUO_OK) goto out;
    if (strcmp(kc, tc) != 0) { /* a token enrols only its own citizen */
        r = DUO_E_TOKEN_INVALID;
        goto out;
    }
    if ((r = token_use(impl, token_hash, key_id, role, now)) != DUO_OK) goto out;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_blob(&q, rev_hash, 32);
    duo__pg_i64(&q, now);
    duo__pg_blob(&q, token_hash, 32);
    /* The token that enrols the key gives it its citizen's name. */
    if ((r = write_row_mac(impl,
                           "UPDATE keys SET state = 'active', revocation_hash = $2, updated_at = $3,"
                           " version = version + 1,"
                           " citizen_name = coalesce((SELECT citizen_name FROM tokens WHERE token_hash = $4), '')"
                           " WHERE key_id = $1 RETURNING " POLICY_COLS,
                           &q, key_id)) != DUO_OK)
        goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

/* Destroys the secrets of a key (inside a write). PostgreSQL keeps dead row
 * versions until VACUUM: docs/STORE.md says how the operator scrubs them. */
static int revoke_tx(pg *s, const uint8_t *key_id, const char *reason, int64_t now) {
    duo_pg_params q = {0};
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_text(&q, reason);
    duo__pg_i64(&q, now);
    if ((r = write_row_mac(s,
                           "UPDATE keys SET state = 'revoked', reason = coalesce($2, reason), revocation_hash = NULL,"
                           " x1_sealed = NULL, p_sealed = NULL, q_sealed = NULL, secret_cur_sealed = NULL,"
                           " secret_pend_sealed = NULL, locked_until = 0, updated_at = $3, version = version + 1"
                           " WHERE key_id = $1 RETURNING " POLICY_COLS,
                           &q, key_id)) != DUO_OK)
        return r;
    q.n = 1;
    if ((r = run(s, "DELETE FROM retired_secrets WHERE key_id = $1", &q, NULL)) != DUO_OK) return r;
    return run(s, "DELETE FROM seen_nonces WHERE key_id = $1", &q, NULL);
}

/* Inside a write: records a seen nonce (DUO_E_EXISTS if already there) and
 * keeps only the newest DUO_SEEN_NONCES_PER_SECRET of that secret. */
static int nonce_insert_tx(pg *s, const uint8_t *key_id, const duo_seen_nonce *n, int64_t now) {
    duo_pg_params q = {0};
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_blob(&q, n->secret_hash, 32);
    duo__pg_blob(&q, n->nonce_hash, 32);
    duo__pg_i64(&q, now);
    /* ON CONFLICT DO NOTHING + a row count: a replay is not an error in the
     * server's log, and the transaction stays usable. */
    int64_t added = 0;
    if ((r = run(s,
                 "INSERT INTO seen_nonces(key_id, secret_hash, nonce_hash, seen_at) VALUES($1, $2, $3, $4)"
                 " ON CONFLICT DO NOTHING",
                 &q, &added)) != DUO_OK)
        return r;
    if (added != 1) return DUO_E_EXISTS;
    q.n = 2;
    duo__pg_i64(&q, DUO_SEEN_NONCES_PER_SECRET);
    return run(s,
               "DELETE FROM seen_nonces WHERE key_id = $1 AND secret_hash = $2 AND id NOT IN"
               " (SELECT id FROM seen_nonces WHERE key_id = $1 AND secret_hash = $2 ORDER BY id DESC LIMIT $3)",
               &q, NULL);
}

static int pg_key_update_policy(void *impl, const uint8_t *key_id, uint64_t expect_version, const duo_key_policy *pol,
                                const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    int state, r;
    uint64_t version;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_state(impl, &state, &version, NULL, NULL, NULL, key_id)) != DUO_OK) goto out;
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
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_text(&q, duo_key_state_name(pol->state));
    duo__pg_i64(&q, pol->pin_failures);
    duo__pg_i64(&q, pol->locked_until);
    duo__pg_text(&q, pol->reason);
    duo__pg_i64(&q, now);
    if ((r = write_row_mac(impl,
                           "UPDATE keys SET state = $2, pin_failures = $3, locked_until = $4,"
                           " reason = coalesce($5, reason), updated_at = $6, version = version + 1"
                           " WHERE key_id = $1 RETURNING " POLICY_COLS,
                           &q, key_id)) != DUO_OK)
        goto out;
    if (pol->state == DUO_KEY_STATE_REVOKED && (r = revoke_tx(impl, key_id, NULL, now)) != DUO_OK) goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

/* The inner channel's per-key flag (keystore.h key_set_moved): set once, on
 * the locked row whose MAC holds, with its new MAC and audit entry;
 * *changed = 0 if it was set. As SQLite's. */
static int pg_key_set_moved(void *impl, int *changed, const uint8_t *key_id, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    int64_t n = 0;
    int r;
    *changed = 0;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = mac_verify(impl, key_id)) != DUO_OK) goto out;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_i64(&q, now);
    if ((r = run(impl,
                 "UPDATE keys SET moved = 1, updated_at = $2, version = version + 1 WHERE key_id = $1 AND moved = 0",
                 &q, &n)) != DUO_OK)
        goto out;
    if (n == 0) goto out; /* already moved (mac_verify found the row) */
    *changed = 1;
    if ((r = mac_rewrite(impl, key_id)) != DUO_OK) goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    if (r != DUO_OK) *changed = 0;
    return duo__pg_tx_end(impl, r);
}

/* The secret columns and policy fields of a planned rotation. */
static int rotation_write(pg *s, const uint8_t *key_id, const duo_key_rotation *rot, int64_t now) {
    const duo_key_sealed *sl = &rot->next;
    duo_pg_params q = {0};
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_blob(&q, sl->x1.data, sl->x1.len);
    duo__pg_blob(&q, sl->p.data, sl->p.len);
    duo__pg_blob(&q, sl->q.data, sl->q.len);
    duo__pg_blob(&q, sl->current.data, sl->current.len);
    duo__pg_blob(&q, sl->pending.data, sl->pending.len);
    duo__pg_i64(&q, (int64_t)rot->next_secret_version);
    duo__pg_i64(&q, (int64_t)rot->n_retire);
    duo__pg_i64(&q, now);
    duo__pg_text(&q, duo_key_state_name(rot->state));
    duo__pg_i64(&q, rot->pin_failures);
    duo__pg_i64(&q, rot->locked_until);
    duo__pg_i64(&q, (int64_t)rot->resync_close);
    /* $13 nonzero: the resync of that epoch is used (resync_epoch 0,
     * resync_used $13), in the same write as the MAC'd fields it covers. */
    if ((r = write_row_mac(s,
                           "UPDATE keys SET x1_sealed = $2, p_sealed = $3, q_sealed = $4, secret_cur_sealed = $5,"
                           " secret_pend_sealed = $6, secret_version = $7, retired_count = retired_count + $8,"
                           " updated_at = $9, state = $10, pin_failures = $11, locked_until = $12,"
                           " resync_epoch = CASE WHEN $13 <> 0 THEN 0 ELSE resync_epoch END,"
                           " resync_used = CASE WHEN $13 <> 0 THEN $13 ELSE resync_used END,"
                           " version = version + 1 WHERE key_id = $1 RETURNING " POLICY_COLS,
                           &q, key_id)) != DUO_OK)
        return r;
    for (size_t i = 0; i < rot->n_retire && i < 2; i++) {
        memset(&q, 0, sizeof q);
        duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
        duo__pg_i64(&q, (int64_t)rot->retire[i].n);
        duo__pg_blob(&q, rot->retire[i].hash, 32);
        duo__pg_blob(&q, rot->retire[i].sealed.data, rot->retire[i].sealed.len);
        duo__pg_i64(&q, now);
        if ((r = run(s,
                     "INSERT INTO retired_secrets(key_id, n, secret_hash, sealed, retired_at)"
                     " VALUES($1, $2, $3, $4, $5)",
                     &q, NULL)) != DUO_OK)
            return r;
    }
    return DUO_OK;
}

static int pg_key_rotate(void *impl, const uint8_t *key_id, duo_key_rotation *rot, duo_key_rotate_fn plan,
                         void *plan_data, const duo_seen_nonce *seen, int64_t now) {
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_get_row(impl, &rot->info, &rot->sealed, key_id, 1)) != DUO_OK) goto out;
    if (rot->info.state == DUO_KEY_STATE_REVOKED || rot->info.state == DUO_KEY_STATE_SUSPENDED) {
        r = rot->info.state == DUO_KEY_STATE_REVOKED ? DUO_E_KEY_REVOKED : DUO_E_KEY_SUSPENDED;
        goto out;
    }
    if ((r = plan(plan_data, rot)) != DUO_OK || (r = rotation_write(impl, key_id, rot, now)) != DUO_OK) goto out;
    if (seen != NULL && (r = nonce_insert_tx(impl, key_id, seen, now)) != DUO_OK) goto out;
    for (size_t i = 0; i < 2 && r == DUO_OK; i++) r = duo__pg_audit(impl, rot->events[i], now);
out:
    return duo__pg_tx_end(impl, r);
}

/* Opens the resync of `epoch` on every active or locked key (restore
 * --mark-only), in one transaction with the restore's audit entry: each row
 * locked and its MAC checked first (an edited row stops the restore), then
 * rewritten. As SQLite's, except that a key whose resync of this epoch is
 * already open or used is left as it is: several nodes accept one recovery
 * (each runs --mark-only), and the second must not reopen a resync a device
 * used through the first (a copy of the device would get a second one). */
static int pg_resync_open(void *impl, uint64_t epoch, size_t *n, const duo_audit_event *ev, int64_t now) {
    PGresult *res = NULL;
    duo_pg_params sel = {0};
    uint8_t id[DUO_KEY_ID_BYTES];
    int k = 0, r;
    *n = 0;
    duo__pg_i64(&sel, (int64_t)epoch);
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT key_id FROM keys WHERE state IN ('active', 'locked') AND resync_epoch <> $1"
                          " AND resync_used <> $1 ORDER BY key_id FOR UPDATE",
                          &sel)) != DUO_OK)
        goto out;
    for (k = 0; k < PQntuples(res) && r == DUO_OK; k++) {
        duo_pg_params q = {0};
        if ((r = duo__pg_col_blob(res, k, 0, id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) != DUO_OK ||
            (r = mac_verify(impl, id)) != DUO_OK)
            break;
        duo__pg_blob(&q, id, DUO_KEY_ID_BYTES);
        duo__pg_i64(&q, (int64_t)epoch);
        duo__pg_i64(&q, now);
        r = write_row_mac(impl,
                          "UPDATE keys SET resync_epoch = $2, resync_used = 0, updated_at = $3, version = version + 1"
                          " WHERE key_id = $1 RETURNING " POLICY_COLS,
                          &q, id);
    }
    if (r == DUO_OK) r = duo__pg_audit(impl, ev, now);
    if (r == DUO_OK) *n = (size_t)k;
out:
    PQclear(res);
    return duo__pg_tx_end(impl, r);
}

static int pg_key_revoke(void *impl, const uint8_t *key_id, const uint8_t *code_hash, const char *reason,
                         const duo_audit_event *ev, int64_t now) {
    int state, has_rev = 0, r;
    uint64_t version;
    uint8_t stored[32] = {0};
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_state(impl, &state, &version, NULL, stored, &has_rev, key_id)) != DUO_OK) goto out;
    if (state == DUO_KEY_STATE_REVOKED) {
        r = DUO_E_KEY_REVOKED;
        goto out;
    }
    if (code_hash != NULL && !(has_rev & duo_ct_eq(stored, code_hash, 32))) {
        r = DUO_E_UNAUTHENTICATED;
        goto out;
    }
    if ((r = revoke_tx(impl, key_id, reason, now)) != DUO_OK) goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    duo_memzero(stored, sizeof stored);
    return duo__pg_tx_end(impl, r);
}

static int pg_purge_pending(void *impl, size_t *n, int64_t before, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    int64_t changed = 0;
    int r;
    *n = 0;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    duo__pg_i64(&q, before);
    if ((r = run(impl, "DELETE FROM keys WHERE state = 'pending' AND created_at < $1", &q, &changed)) != DUO_OK)
        goto out;
    *n = (size_t)changed;
    if (*n > 0) r = duo__pg_audit(impl, ev, now);
out:
    if (r != DUO_OK) *n = 0;
    return duo__pg_tx_end(impl, r);
}

static int pg_nonce_record(void *impl, const uint8_t *key_id, const duo_seen_nonce *n, const duo_audit_event *ev,
                           int64_t now) {
    int state, r;
    uint64_t version;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = key_state(impl, &state, &version, NULL, NULL, NULL, key_id)) != DUO_OK) goto out;
    if (state == DUO_KEY_STATE_REVOKED) { /* no secrets left; a suspended key may still answer Status */
        r = DUO_E_KEY_REVOKED;
        goto out;
    }
    if ((r = nonce_insert_tx(impl, key_id, n, now)) != DUO_OK) goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

static int pg_nonce_seen(void *impl, int *seen, const uint8_t *key_id, const duo_seen_nonce *n) {
    PGresult *res;
    duo_pg_params q = {0};
    int r;
    *seen = 0;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_blob(&q, n->secret_hash, 32);
    duo__pg_blob(&q, n->nonce_hash, 32);
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT 1 FROM seen_nonces WHERE key_id = $1 AND secret_hash = $2 AND nonce_hash = $3",
                          &q)) != DUO_OK)
        return r;
    *seen = PQntuples(res) > 0;
    PQclear(res);
    return DUO_OK;
}

static int pg_retired_list(void *impl, const uint8_t *key_id, duo_retired_cb cb, void *data) {
    PGresult *res;
    duo_pg_params q = {0};
    duo_retired_rec *rec;
    int64_t n = 0, at = 0;
    int r;
    if ((rec = malloc(sizeof *rec)) == NULL) return DUO_E_NOMEM;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT n, retired_at, secret_hash, sealed FROM retired_secrets WHERE key_id = $1"
                          " ORDER BY n DESC",
                          &q)) != DUO_OK)
        goto out;
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++) {
        memset(rec, 0, sizeof *rec);
        if ((r = duo__pg_col_i64(res, i, 0, &n)) != DUO_OK || (r = duo__pg_col_i64(res, i, 1, &at)) != DUO_OK ||
            (r = duo__pg_col_blob(res, i, 2, rec->hash, 32, 32, NULL)) != DUO_OK ||
            (r = duo__pg_col_blob(res, i, 3, rec->sealed.data, 0, DUO_SEALED_MAX, &rec->sealed.len)) != DUO_OK)
            break;
        rec->n = (uint64_t)n;
        rec->retired_at = at;
        r = cb(data, rec);
    }
    PQclear(res);
out:
    duo_memzero(rec, sizeof *rec);
    free(rec);
    return r;
}

static int pg_token_insert(void *impl, const uint8_t *hash, const char *citizen, const char *name, int64_t expires_at,
                           const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    duo__pg_blob(&q, hash, 32);
    duo__pg_text(&q, citizen);
    duo__pg_i64(&q, now);
    duo__pg_i64(&q, expires_at);
    duo__pg_text(&q, name != NULL ? name : "");
    if ((r = run(impl,
                 "INSERT INTO tokens(token_hash, citizen_id, created_at, expires_at, used_at, key_id, citizen_name)"
                 " VALUES($1, $2, $3, $4, NULL, NULL, $5)",
                 &q, NULL)) == DUO_OK)
        r = duo__pg_audit(impl, ev, now);
    return duo__pg_tx_end(impl, r);
}

static int pg_token_check(void *impl, char *citizen, const uint8_t *hash, int role, int64_t now) {
    return token_state(impl, citizen, hash, role, now, 0);
}

static int pg_token_consume(void *impl, char *citizen, const uint8_t *hash, const duo_audit_event *ev, int64_t now) {
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = token_state(impl, citizen, hash, DUO_KEY_ROLE_UNSPECIFIED, now, 1)) != DUO_OK) goto out;
    if ((r = token_use(impl, hash, NULL, DUO_KEY_ROLE_UNSPECIFIED, now)) != DUO_OK) goto out;
    r = duo__pg_audit(impl, ev, now);
out:
    if (r != DUO_OK) citizen[0] = '\0';
    return duo__pg_tx_end(impl, r);
}

static int pg_audit_append(void *impl, uint64_t *seq, const duo_audit_event *ev, int64_t now) {
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    r = audit_append_tx(impl, seq, ev, now);
    return duo__pg_tx_end(impl, r);
}

static int pg_audit_list(void *impl, uint64_t from, duo_audit_entry_cb cb, void *data) {
    PGresult *res;
    duo_pg_params q = {0};
    duo_audit_entry *e;
    int64_t seq = 0, t = 0;
    size_t got;
    int r;
    if ((e = malloc(sizeof *e)) == NULL) return DUO_E_NOMEM;
    duo__pg_i64(&q, (int64_t)from);
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT seq, time, kind, key_id, citizen_id, detail, prev_hash, hash FROM audit"
                          " WHERE seq >= $1 ORDER BY seq",
                          &q)) != DUO_OK)
        goto out;
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++) {
        memset(e, 0, sizeof *e);
        if ((r = duo__pg_col_i64(res, i, 0, &seq)) != DUO_OK || (r = duo__pg_col_i64(res, i, 1, &t)) != DUO_OK ||
            (r = duo__pg_col_text(res, i, 2, e->kind, sizeof e->kind)) != DUO_OK ||
            (r = duo__pg_col_blob(res, i, 3, e->key_id, 0, DUO_KEY_ID_BYTES, &got)) != DUO_OK ||
            (r = duo__pg_col_text(res, i, 4, e->citizen_id, sizeof e->citizen_id)) != DUO_OK ||
            (r = duo__pg_col_text(res, i, 5, e->detail, sizeof e->detail)) != DUO_OK ||
            (r = duo__pg_col_blob(res, i, 6, e->prev_hash, DUO_AUDIT_HASH_LEN, DUO_AUDIT_HASH_LEN, NULL)) != DUO_OK ||
            (r = duo__pg_col_blob(res, i, 7, e->hash, DUO_AUDIT_HASH_LEN, DUO_AUDIT_HASH_LEN, NULL)) != DUO_OK)
            break;
        if (got != 0 && got != DUO_KEY_ID_BYTES) {
            r = DUO_E_STATE_CORRUPT;
            break;
        }
        e->seq = (uint64_t)seq;
        e->time = t;
        e->has_key_id = got == DUO_KEY_ID_BYTES;
        r = cb(data, e);
    }
    PQclear(res);
out:
    free(e);
    return r;
}

static int pg_audit_head(void *impl, uint64_t *count, uint8_t *head) { return audit_head_read(impl, count, head, 0); }

/* One snapshot for the whole walk: REPEATABLE READ sees one state. */
static int pg_read_snapshot(void *impl, int begin) {
    pg *s = impl;
    if (begin) {
        int r = run(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, NULL);
        s->in_tx = r == DUO_OK;
        return r;
    }
    return duo__pg_tx_end(s, DUO_OK);
}

/* synchronous_commit = off: a commit returns before its WAL is flushed; a
 * crash of the server (not of the daemon) may lose it, never corrupt. */
static int pg_commit_mode(void *impl, int durable) {
    pg *s = impl;
    int r;
    if (s->deferred == !durable) return DUO_OK;
    if (s->in_tx) return DUO_E_STORE;
    if ((r = run(s, durable ? "SET synchronous_commit = on" : "SET synchronous_commit = off", NULL, NULL)) != DUO_OK)
        return r;
    s->deferred = !durable;
    return DUO_OK;
}

static int pg_policy_key_add(void *impl, const duo_policy_key *k) {
    pg *s = impl;
    if (s->n_mac >= 2) return DUO_E_INVALID_ARG;
    s->mac_keys[s->n_mac++] = *k;
    return DUO_OK;
}

/* One transaction: every key row locked, its MAC verified under any loaded
 * key, then rewritten under the newest (a KEK rotation's target). */
static int pg_policy_remac(void *impl, size_t *n) {
    PGresult *res;
    uint8_t id[DUO_KEY_ID_BYTES];
    int r;
    *n = 0;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = duo__pg_exec(impl, &res, "SELECT key_id FROM keys ORDER BY key_id FOR UPDATE", NULL)) != DUO_OK) goto out;
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++) {
        if ((r = duo__pg_col_blob(res, i, 0, id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) == DUO_OK &&
            (r = mac_verify(impl, id)) == DUO_OK && (r = mac_rewrite(impl, id)) == DUO_OK)
            (*n)++;
    }
    PQclear(res);
out:
    if (r != DUO_OK) *n = 0;
    return duo__pg_tx_end(impl, r);
}

/* PostgreSQL checks its own pages (data checksums, on when the cluster was
 * made with initdb -k): nothing to run here, at start or in `check`. The
 * full check (`check`) says in why whether checksums are on; off is not a
 * failure of the store, but page damage then goes unnoticed until a query
 * trips on it, so it is said plainly. */
static int pg_integrity_check(void *impl, int full, char *why, size_t why_cap) {
    PGresult *res;
    char on[8] = "";
    int r;
    if (why_cap > 0) why[0] = '\0';
    if (!full) return DUO_OK;
    if ((r = duo__pg_exec(impl, &res, "SHOW data_checksums", NULL)) != DUO_OK) return r;
    r = PQntuples(res) == 1 ? duo__pg_col_text(res, 0, 0, on, sizeof on) : DUO_E_STORE;
    PQclear(res);
    if (r != DUO_OK) return r;
    snprintf(why, why_cap, "%s",
             strcmp(on, "on") == 0
                 ? "PostgreSQL's own: data checksums on (the server checks every page it reads)"
                 : "PostgreSQL's own: data checksums OFF (page damage goes unnoticed until a query trips on it;"
                   " initialise the cluster with initdb -k, or pg_checksums --enable with the server stopped)");
    return DUO_OK;
}

static const duo_keystore_backend_ops pg_ops = {
    .close = pg_close,
    .key_insert = pg_key_insert,
    .key_get = pg_key_get,
    .key_list = pg_key_list,
    .key_activate = pg_key_activate,
    .key_update_policy = pg_key_update_policy,
    .key_set_moved = pg_key_set_moved,
    .key_rotate = pg_key_rotate,
    .resync_open = pg_resync_open,
    .key_revoke = pg_key_revoke,
    .purge_pending = pg_purge_pending,
    .retired_list = pg_retired_list,
    .token_insert = pg_token_insert,
    .token_check = pg_token_check,
    .token_consume = pg_token_consume,
    .audit_append = pg_audit_append,
    .audit_list = pg_audit_list,
    .audit_head = pg_audit_head,
    .read_snapshot = pg_read_snapshot,
    .enrol_insert = pg_enrol_insert,
    .enrol_get = pg_enrol_get,
    .nonce_record = pg_nonce_record,
    .nonce_seen = pg_nonce_seen,
    .commit_mode = pg_commit_mode,
    .policy_key_add = pg_policy_key_add,
    .policy_remac = pg_policy_remac,
    .integrity_check = pg_integrity_check, /* PostgreSQL checks its pages itself (data checksums, initdb -k) */
    .ca_insert = duo__pg_ca_insert,
    .ca_get = duo__pg_ca_get,
    .ca_next_crl = duo__pg_ca_next_crl,
    .cert_insert = duo__pg_cert_insert,
    .doc_set = duo__pg_doc_set,
    .doc_get = duo__pg_doc_get,
    .doc_list = duo__pg_doc_list,
    .doc_remove = duo__pg_doc_remove,
    .code_insert = duo__pg_code_insert,
    .code_redeem = duo__pg_code_redeem,
    .code_purge = duo__pg_code_purge,
    .cert_list = duo__pg_cert_list,
    .cert_revoke_key = duo__pg_cert_revoke_key,
    .key_name_get = duo__pg_key_name_get,
    .sealed_walk = duo__pg_sealed_walk,
    .sign_sess_put = duo__pg_sign_sess_put,
    .sign_sess_take = duo__pg_sign_sess_take,
    .sign_sess_end = duo__pg_sign_sess_end,
    .sign_sess_purge = duo__pg_sign_sess_purge,
};

/* ------------------------------------------------------------ open */

/* *has = 1 if keys.policy_mac exists. */
static int mac_column_has(pg *s, int *has) {
    PGresult *res;
    int64_t n = 0;
    int r = duo__pg_exec(s, &res,
                         "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
                         " AND table_name = 'keys' AND column_name = 'policy_mac'",
                         NULL);
    if (r != DUO_OK) return r;
    r = PQntuples(res) == 1 ? duo__pg_col_i64(res, 0, 0, &n) : DUO_E_STATE_CORRUPT;
    PQclear(res);
    *has = n != 0;
    return r;
}

/* Adds keys.policy_mac and MACs every existing row with rewrite. */
static int mac_column_add(pg *s, int (*rewrite)(pg *, const uint8_t *)) {
    PGresult *res;
    uint8_t id[DUO_KEY_ID_BYTES];
    int r;
    if ((r = run(s, "ALTER TABLE keys ADD COLUMN policy_mac BYTEA", NULL, NULL)) != DUO_OK ||
        (r = duo__pg_exec(s, &res, "SELECT key_id FROM keys ORDER BY key_id", NULL)) != DUO_OK)
        return r;
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++)
        if ((r = duo__pg_col_blob(res, i, 0, id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL)) == DUO_OK)
            r = rewrite(s, id);
    PQclear(res);
    return r;
}

/* mac_rewrite at schema v10: the row has neither moved nor the resync
 * columns yet (their 0 is what the MAC input then leaves out). */
static int mac_rewrite_v10(pg *s, const uint8_t *key_id) {
    duo_pg_params q = {0};
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    return write_row_mac_cols(s, "SELECT " POLICY_COLS_V10 " FROM keys WHERE key_id = $1", &q, key_id, policy_cols_v10);
}

/* v10: adds the policy MAC column and MACs every existing row, in the
 * migration's transaction (the backend has the MAC key then), so from v10 on
 * a NULL MAC is a mismatch like any other. A database that already has the
 * column but claims an older version was edited: refused (re-running this
 * step would bless whatever its rows now say). As SQLite's v6. */
static int migrate_v10(pg *s) {
    int has = 0, r;
    if ((r = mac_column_has(s, &has)) != DUO_OK) return r;
    return has ? DUO_E_POLICY_MAC : mac_column_add(s, mac_rewrite_v10);
}

/* v12: the resync columns (migrations[] says why). A database that took
 * main's v10 placeholder reaches here without keys.policy_mac: its rows get
 * the MAC now, with every field (moved included) in it. */
static int migrate_v12(pg *s) {
    int has = 0, r;
    if ((r = run(s, "ALTER TABLE keys ADD COLUMN IF NOT EXISTS resync_epoch BIGINT NOT NULL DEFAULT 0", NULL, NULL)) !=
            DUO_OK ||
        (r = run(s, "ALTER TABLE keys ADD COLUMN IF NOT EXISTS resync_used BIGINT NOT NULL DEFAULT 0", NULL, NULL)) !=
            DUO_OK ||
        (r = mac_column_has(s, &has)) != DUO_OK)
        return r;
    return has ? DUO_OK : mac_column_add(s, mac_rewrite);
}

/* Creates or upgrades the schema in one transaction under an advisory lock:
 * two nodes starting at once on a fresh database do not both create it (the
 * second waits, then finds the version current). */
static int migrate(pg *s) {
    PGresult *res;
    int64_t v = 0;
    int r;
    if ((r = duo__pg_tx_begin(s)) != DUO_OK) return r;
    if ((r = run(s, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", NULL, NULL)) != DUO_OK ||
        (r = run(s, "SET LOCAL client_min_messages = warning", NULL, NULL)) != DUO_OK ||
        (r = run(s, "CREATE TABLE IF NOT EXISTS schema_version(version BIGINT NOT NULL)", NULL, NULL)) != DUO_OK ||
        (r = duo__pg_exec(s, &res, "SELECT max(version) FROM schema_version", NULL)) != DUO_OK)
        goto out;
    r = PQntuples(res) == 1 ? duo__pg_col_i64(res, 0, 0, &v) : DUO_E_STATE_CORRUPT;
    PQclear(res);
    if (r != DUO_OK) goto out;
    if (v > SCHEMA_VERSION || v < 0) {
        r = DUO_E_UNSUPPORTED; /* written by a newer duosign */
        goto out;
    }
    for (; v < SCHEMA_VERSION; v++) {
        duo_pg_params q = {0};
        if (migrations[v] == NULL) { /* a step in C (v10, v12) */
            if ((r = (v + 1 == 10 ? migrate_v10(s) : migrate_v12(s))) != DUO_OK) goto out;
            duo__pg_i64(&q, v + 1);
            if ((r = run(s, "INSERT INTO schema_version(version) VALUES($1)", &q, NULL)) != DUO_OK) goto out;
            continue;
        }
        /* Several statements in one string: the simple protocol (no parameters). */
        PGresult *m = PQexec(s->conn, migrations[v]);
        if (PQresultStatus(m) != PGRES_COMMAND_OK) {
            fprintf(stderr, "duosign-cloud: store error: schema v%" PRId64 ": %s", v + 1, PQresultErrorMessage(m));
            r = map_state(PQresultErrorField(m, PG_DIAG_SQLSTATE));
            PQclear(m);
            goto out;
        }
        PQclear(m);
        duo__pg_i64(&q, v + 1);
        if ((r = run(s, "INSERT INTO schema_version(version) VALUES($1)", &q, NULL)) != DUO_OK) goto out;
    }
out:
    return duo__pg_tx_end(s, r);
}

static int pg_open(duo_keystore_backend *out, const char *location, const duo_keystore_config *cfg) {
    pg *s;
    int r;
    memset(out, 0, sizeof *out);
    if (location == NULL) return DUO_E_INVALID_ARG;
    if (cfg->policy_key == NULL) return DUO_E_INVALID_ARG; /* only through duo_keystore_open */
    if ((s = calloc(1, sizeof *s)) == NULL) return DUO_E_NOMEM;
    s->mac_keys[0] = *cfg->policy_key;
    s->n_mac = 1;
    s->before_commit = cfg->before_commit;
    s->hook_data = cfg->hook_data;
    s->conn = PQconnectdb(location);
    if (s->conn == NULL) {
        free(s);
        return DUO_E_NOMEM;
    }
    if (PQstatus(s->conn) != CONNECTION_OK) {
        fprintf(stderr, "duosign-cloud: store error: %s", PQerrorMessage(s->conn));
        r = DUO_E_IO;
        goto out;
    }
    /* A lock wait bounded like SQLite's busy timeout: a stuck node cannot
     * hold every other node's request forever. */
    char set[96];
    snprintf(set, sizeof set, "SET lock_timeout = %d", cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
    if ((r = run(s, set, NULL, NULL)) != DUO_OK || (r = migrate(s)) != DUO_OK) goto out;
    out->ops = &pg_ops;
    out->impl = s;
    return DUO_OK;
out:
    pg_close(s);
    return r;
}

const duo_keystore_driver duo__keystore_pg_driver = {"postgresql", pg_open};
