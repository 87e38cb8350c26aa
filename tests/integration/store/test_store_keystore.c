/* The key store: CRUD, tokens, activation, policy updates, secret rotation,
 * revocation, swapped/edited sealed columns, concurrency and crash safety. */
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "duosign/mem.h"
#include "store_test_util.h"

#ifdef DUO_STORE_TEST_PG
#define STORE_DRIVER "postgresql"
#else
#define STORE_DRIVER "sqlite"
#endif

#ifdef DUO_STORE_TEST_PG
/* Runs sql on the test's database outside the store (an edit duosign did
 * not make); out gets the first value. 0 on success. */
static int pg_sql(const store_env *e, const char *sql, char *out, size_t cap) {
    PGconn *c = PQconnectdb(e->db);
    PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int st = res ? (int)PQresultStatus(res) : -1;
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (ok && out && cap) snprintf(out, cap, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    if (!ok) fprintf(stderr, "sql: %s\n", PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    return ok ? 0 : -1;
}
#endif

static void check_same_secrets(const duo_key_secrets *a, const duo_key_secrets *b) {
    DUO_CHECK(duo_ct_eq(a->x1, b->x1, sizeof a->x1));
    DUO_CHECK(a->p_len == b->p_len && duo_ct_eq(a->p, b->p, a->p_len));
    DUO_CHECK(a->q_len == b->q_len && duo_ct_eq(a->q, b->q, a->q_len));
    DUO_CHECK(duo_ct_eq(a->current, b->current, sizeof a->current));
    DUO_CHECK(a->has_pending == b->has_pending);
    if (a->has_pending) DUO_CHECK(duo_ct_eq(a->pending, b->pending, sizeof a->pending));
}

static void check_same_info(const duo_key_info *a, const duo_key_info *b) {
    DUO_CHECK(memcmp(a->key_id, b->key_id, sizeof a->key_id) == 0);
    DUO_CHECK(strcmp(a->citizen_id, b->citizen_id) == 0 && strcmp(a->reason, b->reason) == 0);
    DUO_CHECK(a->state == b->state && a->pin_failures == b->pin_failures && a->locked_until == b->locked_until);
    DUO_CHECK(a->created_at == b->created_at && a->updated_at == b->updated_at);
    DUO_CHECK(a->has_pending_secret == b->has_pending_secret && a->retired_count == b->retired_count);
    DUO_CHECK(a->version == b->version && a->secret_version == b->secret_version);
    DUO_CHECK(memcmp(a->q, b->q, sizeof a->q) == 0 && memcmp(a->q2, b->q2, sizeof a->q2) == 0);
}

static uint64_t audit_count(duo_keystore *ks) {
    uint64_t n = 0;
    if (duo_keystore_audit_verify(ks, NULL, &n, NULL) != DUO_OK) return UINT64_MAX;
    return n;
}

struct list_ctx {
    int n;
    uint8_t first[16];
};

static int list_cb(void *data, const duo_key_info *k) {
    struct list_ctx *c = data;
    if (c->n++ == 0) memcpy(c->first, k->key_id, 16);
    return 0;
}

static void test_keystore_crud(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s, gs;
    struct list_ctx lc;
    struct stat st;
    uint8_t unknown[16] = {0xee};
    const duo_audit_event ev = {DUO_AUDIT_ENROL_START, NULL, "EE38001010001", "2048 bits"};
    DUO_REQUIRE(env_open(&e) == DUO_OK);

    make_key(&k, &s, 1, "EE38001010001");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, &ev));
    DUO_EXPECT_ERR(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL), DUO_E_EXISTS);
    e.now += 10;
    make_key(&k, &s, 2, "EE38001010001");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    make_key(&k, &s, 3, "LV12345");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));

    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_PENDING);
    DUO_CHECK(strcmp(got.citizen_id, "LV12345") == 0);
    DUO_CHECK(got.paillier_bits == 2048);
    DUO_CHECK(duo_ct_eq(got.q, k.q, 33) && duo_ct_eq(got.q2, k.q2, 33));
    DUO_CHECK(got.version == 1 && got.secret_version == 1);
    DUO_CHECK(got.created_at == e.now && got.updated_at == e.now);
    DUO_CHECK(!got.has_pending_secret && !got.has_revocation_code && got.pin_failures == 0);
    check_same_secrets(&gs, &s);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id)); /* public only */

    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, unknown), DUO_E_NOT_FOUND);
    DUO_CHECK(duo_ct_is_zero(&gs, sizeof gs));

    memset(&lc, 0, sizeof lc);
    DUO_CHECK_OK(duo_keystore_key_list(e.ks, NULL, list_cb, &lc));
    DUO_CHECK(lc.n == 3 && lc.first[0] == 1);
    memset(&lc, 0, sizeof lc);
    DUO_CHECK_OK(duo_keystore_key_list(e.ks, "EE38001010001", list_cb, &lc));
    DUO_CHECK(lc.n == 2);
    memset(&lc, 0, sizeof lc);
    DUO_CHECK_OK(duo_keystore_key_list(e.ks, "nobody", list_cb, &lc));
    DUO_CHECK(lc.n == 0);

    /* bad input */
    make_key(&k, &s, 4, "");
    DUO_EXPECT_ERR(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL), DUO_E_INVALID_ARG);
    make_key(&k, &s, 4, "x");
    s.p_len = DUO_KEY_PRIME_MAX + 1;
    DUO_EXPECT_ERR(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL), DUO_E_INVALID_ARG);

    /* persisted; file private; pragmas in force */
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    check_same_secrets(&gs, &s);
    DUO_CHECK(audit_count(e.ks) == 1);
    DUO_REQUIRE(stat(e.db, &st) == 0);
    DUO_CHECK((st.st_mode & 077) == 0);
    {
        sqlite3 *db;
        sqlite3_stmt *q;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "wal") == 0);
        sqlite3_finalize(q);
        DUO_CHECK(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW &&
                  sqlite3_column_int(q, 0) ==
                      12); /* v7 roles, v9 relying parties, v10 documents, v11 resync, v12 moved */
        sqlite3_finalize(q);
        /* no plaintext secret anywhere in the row */
        DUO_CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM keys WHERE instr(x1_sealed, ?1) > 0", -1, &q, NULL) ==
                  SQLITE_OK);
        sqlite3_bind_blob(q, 1, s.x1, 8, SQLITE_STATIC);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    /* a newer schema is refused */
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "PRAGMA user_version = 99") == SQLITE_OK);
    DUO_EXPECT_ERR(env_open_ks(&e, &e.ks), DUO_E_UNSUPPORTED);
    DUO_CHECK(e.ks == NULL);
    /* a store with the policy MAC column that claims an older schema was
     * edited: migrating it again would MAC whatever its rows say */
    DUO_REQUIRE(env_sql(&e, "PRAGMA user_version = 1") == SQLITE_OK);
    DUO_EXPECT_ERR(env_open_ks(&e, &e.ks), DUO_E_POLICY_MAC);
    DUO_CHECK(e.ks == NULL);
    /* the wrong KEK opens the store but no key row: its policy MAC fails
     * before any secret is tried */
    DUO_REQUIRE(env_sql(&e, "PRAGMA user_version = 6") == SQLITE_OK);
    e.kek.data[0] ^= 1;
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, k.key_id), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_POLICY_MAC);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

static const uint8_t tok1[] = "tok-0123456789abcdef-1";
static const uint8_t tok2[] = "tok-0123456789abcdef-2";
static const uint8_t tok3[] = "tok-0123456789abcdef-3";
static const uint8_t rcode[] = "REVOKE-CODE-0001";

static void test_token_single_use_and_expiry(void) {
    store_env e;
    char cit[DUO_CITIZEN_ID_MAX + 1];
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, tok1, sizeof tok1, "C1", 600, NULL));
    DUO_EXPECT_ERR(duo_keystore_token_insert(e.ks, tok1, sizeof tok1, "C1", 600, NULL), DUO_E_EXISTS);
    DUO_EXPECT_ERR(duo_keystore_token_insert(e.ks, tok1, 8, "C1", 600, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_token_insert(e.ks, tok2, sizeof tok2, "C1", 0, NULL), DUO_E_INVALID_ARG);
    DUO_CHECK_OK(duo_keystore_token_check(e.ks, cit, tok1, sizeof tok1));
    DUO_CHECK(strcmp(cit, "C1") == 0);
    DUO_CHECK_OK(duo_keystore_token_check(e.ks, cit, tok1, sizeof tok1)); /* check != use */
    DUO_CHECK_OK(duo_keystore_token_consume(e.ks, cit, tok1, sizeof tok1, NULL));
    DUO_CHECK(strcmp(cit, "C1") == 0);
    DUO_EXPECT_ERR(duo_keystore_token_consume(e.ks, cit, tok1, sizeof tok1, NULL), DUO_E_TOKEN_INVALID);
    DUO_CHECK(cit[0] == '\0');
    DUO_EXPECT_ERR(duo_keystore_token_check(e.ks, cit, tok1, sizeof tok1), DUO_E_TOKEN_INVALID);
    DUO_EXPECT_ERR(duo_keystore_token_consume(e.ks, cit, tok2, sizeof tok2, NULL), DUO_E_TOKEN_INVALID); /* unknown */
    DUO_EXPECT_ERR(duo_keystore_token_consume(e.ks, cit, tok1, 0, NULL), DUO_E_TOKEN_INVALID);

    /* expiry: valid until (not at) issue + ttl */
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, tok2, sizeof tok2, "C2", 100, NULL));
    e.now += 99;
    DUO_CHECK_OK(duo_keystore_token_check(e.ks, cit, tok2, sizeof tok2));
    e.now += 1;
    DUO_EXPECT_ERR(duo_keystore_token_check(e.ks, cit, tok2, sizeof tok2), DUO_E_TOKEN_EXPIRED);
    DUO_EXPECT_ERR(duo_keystore_token_consume(e.ks, cit, tok2, sizeof tok2, NULL), DUO_E_TOKEN_EXPIRED);
    /* only the hash is stored */
    {
        sqlite3 *db;
        sqlite3_stmt *q;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens WHERE instr(token_hash, ?1) > 0", -1, &q, NULL) ==
                  SQLITE_OK);
        sqlite3_bind_blob(q, 1, "tok-", 4, SQLITE_STATIC);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    env_close(&e);
}

static void test_activate(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    const duo_audit_event ev = {DUO_AUDIT_ENROL_DONE, NULL, "C1", NULL};
    uint64_t n0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "C1");
    DUO_REQUIRE(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, tok1, sizeof tok1, "C1", 600, NULL));
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, tok2, sizeof tok2, "OTHER", 600, NULL));
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, tok3, sizeof tok3, "C1", 10, NULL));
    n0 = audit_count(e.ks);

    /* another citizen's token does not activate, and is not consumed */
    DUO_EXPECT_ERR(duo_keystore_key_activate(e.ks, k.key_id, tok2, sizeof tok2, rcode, sizeof rcode, &ev),
                   DUO_E_TOKEN_INVALID);
    {
        char cit[DUO_CITIZEN_ID_MAX + 1];
        DUO_CHECK_OK(duo_keystore_token_check(e.ks, cit, tok2, sizeof tok2));
    }
    e.now += 10;
    DUO_EXPECT_ERR(duo_keystore_key_activate(e.ks, k.key_id, tok3, sizeof tok3, rcode, sizeof rcode, &ev),
                   DUO_E_TOKEN_EXPIRED);
    DUO_CHECK(audit_count(e.ks) == n0); /* failed: no audit entry either */
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_PENDING && got.version == 1);

    DUO_CHECK_OK(duo_keystore_key_activate(e.ks, k.key_id, tok1, sizeof tok1, rcode, sizeof rcode, &ev));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_ACTIVE && got.version == 2 && got.has_revocation_code);
    DUO_CHECK(audit_count(e.ks) == n0 + 1);
    /* token consumed; key no longer pending */
    DUO_EXPECT_ERR(duo_keystore_key_activate(e.ks, k.key_id, tok1, sizeof tok1, rcode, sizeof rcode, &ev),
                   DUO_E_PROTO_STATE);
    make_key(&k, &s, 2, "C1");
    DUO_REQUIRE(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL) == DUO_OK);
    DUO_EXPECT_ERR(duo_keystore_key_activate(e.ks, k.key_id, tok1, sizeof tok1, rcode, sizeof rcode, &ev),
                   DUO_E_TOKEN_INVALID);
    memset(k.key_id, 0x77, 16);
    DUO_EXPECT_ERR(duo_keystore_key_activate(e.ks, k.key_id, tok1, sizeof tok1, rcode, sizeof rcode, &ev),
                   DUO_E_NOT_FOUND);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* Creates an active key with id byte b for citizen "C"; returns its version. */
static uint64_t active_key(store_env *e, duo_key_info *k, duo_key_secrets *s, uint8_t b) {
    uint8_t tok[24];
    duo_key_info got;
    memset(tok, 0x50 + b, sizeof tok);
    make_key(k, s, b, "C");
    if (duo_keystore_key_insert_pending(e->ks, k, s, NULL) != DUO_OK ||
        duo_keystore_token_insert(e->ks, tok, sizeof tok, "C", 600, NULL) != DUO_OK ||
        duo_keystore_key_activate(e->ks, k->key_id, tok, sizeof tok, rcode, sizeof rcode, NULL) != DUO_OK ||
        duo_keystore_key_get(e->ks, &got, NULL, k->key_id) != DUO_OK)
        return 0;
    return got.version;
}

static void test_policy_update(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s, gs;
    duo_key_policy pol;
    uint64_t v, n0;
    const duo_audit_event ev = {DUO_AUDIT_PIN_FAILURE, NULL, "C", "attempt"};
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE((v = active_key(&e, &k, &s, 1)) != 0);
    n0 = audit_count(e.ks);

    memset(&pol, 0, sizeof pol);
    pol.state = DUO_KEY_STATE_ACTIVE;
    pol.pin_failures = 1;
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, v, &pol, &ev));
    /* stale version: nothing written, no audit entry */
    pol.pin_failures = 2;
    DUO_EXPECT_ERR(duo_keystore_key_update_policy(e.ks, k.key_id, v, &pol, &ev), DUO_E_CONFLICT);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.pin_failures == 1 && got.version == v + 1);
    DUO_CHECK(audit_count(e.ks) == n0 + 1);
    /* a bad audit event fails the whole update */
    {
        const duo_audit_event bad = {"Bad Kind!", NULL, NULL, NULL};
        DUO_EXPECT_ERR(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, &bad), DUO_E_INVALID_ARG);
    }
    /* lock */
    pol.state = DUO_KEY_STATE_LOCKED;
    pol.pin_failures = 3;
    pol.locked_until = e.now + 3 * 3600;
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_LOCKED && got.pin_failures == 3 && got.locked_until == e.now + 3 * 3600);
    DUO_CHECK(audit_count(e.ks) == n0 + 1);
    /* unlock, reset */
    pol.state = DUO_KEY_STATE_ACTIVE;
    pol.pin_failures = 0;
    pol.locked_until = 0;
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    check_same_secrets(&gs, &s); /* policy updates leave secrets alone */
    DUO_CHECK(got.secret_version == 1);
    /* back to pending is not a transition */
    pol.state = DUO_KEY_STATE_PENDING;
    DUO_EXPECT_ERR(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL), DUO_E_INVALID_ARG);
    /* suspended is final except for revocation */
    pol.state = DUO_KEY_STATE_SUSPENDED;
    pol.reason = "clone suspected";
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_SUSPENDED && strcmp(got.reason, "clone suspected") == 0);
    check_same_secrets(&gs, &s); /* kept for investigation */
    pol.state = DUO_KEY_STATE_ACTIVE;
    pol.reason = NULL;
    DUO_EXPECT_ERR(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL), DUO_E_KEY_SUSPENDED);
    DUO_EXPECT_ERR(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 0, s.current, NULL), DUO_E_KEY_SUSPENDED);
    pol.state = DUO_KEY_STATE_REVOKED;
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_REVOKED);
    DUO_CHECK(duo_ct_is_zero(&gs, sizeof gs)); /* destroyed */
    pol.state = DUO_KEY_STATE_ACTIVE;
    DUO_EXPECT_ERR(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL), DUO_E_KEY_REVOKED);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

static int match_secret(void *data, const uint8_t secret[DUO_DEVICE_SECRET_BYTES]) {
    return duo_ct_eq(data, secret, DUO_DEVICE_SECRET_BYTES);
}

static void test_secret_rotate(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s, gs;
    uint8_t n1[32], n2[32], n3[32], first[32];
    int found;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    memcpy(first, s.current, 32);
    memset(n1, 0xa1, 32);
    memset(n2, 0xa2, 32);
    memset(n3, 0xa3, 32);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));

    /* promote without a pending secret */
    DUO_EXPECT_ERR(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 1, NULL, NULL), DUO_E_PROTO_STATE);
    DUO_EXPECT_ERR(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 0, NULL, NULL), DUO_E_INVALID_ARG);
    /* after a signature: next secret pending */
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 0, n1, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.has_pending_secret && gs.has_pending && got.secret_version == 2);
    DUO_CHECK(duo_ct_eq(gs.current, first, 32) && duo_ct_eq(gs.pending, n1, 32));
    DUO_CHECK(duo_ct_eq(gs.x1, s.x1, 32)); /* resealed, same value */
    DUO_CHECK(got.retired_count == 0);
    /* stale version */
    DUO_EXPECT_ERR(duo_keystore_secret_rotate(e.ks, k.key_id, got.version - 1, 1, NULL, NULL), DUO_E_CONFLICT);
    /* device did not persist: current used again, new pending; n1 retires */
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 0, n2, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(duo_ct_eq(gs.current, first, 32) && duo_ct_eq(gs.pending, n2, 32));
    DUO_CHECK(got.retired_count == 1);
    /* MAC under pending: promote, and set the next pending in the same step */
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 1, n3, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(duo_ct_eq(gs.current, n2, 32) && duo_ct_eq(gs.pending, n3, 32));
    DUO_CHECK(got.retired_count == 2 && got.secret_version == 4);
    /* promote only */
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 1, NULL, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(duo_ct_eq(gs.current, n3, 32) && !gs.has_pending && !got.has_pending_secret);
    DUO_CHECK(got.retired_count == 3);

    /* retired: first, n1, n2; live: n3 */
    DUO_CHECK_OK(duo_keystore_secret_find_retired(e.ks, &found, k.key_id, match_secret, first));
    DUO_CHECK(found == 1);
    DUO_CHECK_OK(duo_keystore_secret_find_retired(e.ks, &found, k.key_id, match_secret, n1));
    DUO_CHECK(found == 1);
    DUO_CHECK_OK(duo_keystore_secret_find_retired(e.ks, &found, k.key_id, match_secret, n2));
    DUO_CHECK(found == 1);
    DUO_CHECK_OK(duo_keystore_secret_find_retired(e.ks, &found, k.key_id, match_secret, n3));
    DUO_CHECK(found == 0);
    DUO_CHECK_OK(duo_keystore_secret_is_retired(e.ks, &found, k.key_id, n1));
    DUO_CHECK(found == 1);
    DUO_CHECK_OK(duo_keystore_secret_is_retired(e.ks, &found, k.key_id, n3));
    DUO_CHECK(found == 0);
    /* a retired secret moved to another slot no longer opens */
    DUO_REQUIRE(env_sql(&e, "DROP TRIGGER IF EXISTS x; UPDATE retired_secrets SET n = n + 10"
                            " WHERE n = 1") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_keystore_secret_find_retired(e.ks, &found, k.key_id, match_secret, first), DUO_E_STATE_CORRUPT);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

/* The resync after a restore (schema v11, SECURITY 1.10): restore opens it
 * on active keys in one transaction with its audit entry; adoption makes
 * the device's secret current and retires the store's, clears the PIN
 * count, closes the resync; a second one, another epoch, none open and a
 * stale version are refused with nothing written; the fields are under the
 * policy MAC. */
static void test_resync(void) {
    store_env e;
    duo_key_info k, k2, got, before;
    duo_key_secrets s, s2, gs;
    uint8_t dev[32], other[32];
    size_t n = 0;
    int found = 0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    DUO_REQUIRE(active_key(&e, &k2, &s2, 2) != 0);
    memset(dev, 0xd1, sizeof dev);
    memset(other, 0xd2, sizeof other);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(duo_key_resync_state(&got, 1) == DUO_E_RESYNC_NOT_OPEN);
    DUO_EXPECT_ERR(duo_keystore_resync_adopt(e.ks, k.key_id, got.version, 1, dev, NULL, NULL), DUO_E_RESYNC_NOT_OPEN);
    uint64_t audits = audit_count(e.ks);
    duo_audit_event ev = {.kind = "store.restore", .detail = "test"};
    DUO_CHECK_OK(duo_keystore_resync_open(e.ks, 3, &n, &ev));
    DUO_CHECK(n == 2 && audit_count(e.ks) == audits + 1);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &before, NULL, k.key_id));
    DUO_CHECK(before.resync_epoch == 3 && before.resync_used == 0 && duo_key_resync_state(&before, 3) == DUO_OK);
    DUO_CHECK(duo_key_resync_state(&before, 2) == DUO_E_RESYNC_EPOCH);
    /* refused, nothing written: another epoch, a stale version */
    DUO_EXPECT_ERR(duo_keystore_resync_adopt(e.ks, k.key_id, before.version, 2, dev, NULL, NULL), DUO_E_RESYNC_EPOCH);
    DUO_EXPECT_ERR(duo_keystore_resync_adopt(e.ks, k.key_id, before.version - 1, 3, dev, NULL, NULL), DUO_E_CONFLICT);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.version == before.version && got.secret_version == before.secret_version);
    /* adopted */
    duo_audit_event rev = {.kind = "secret.resync", .key_id = k.key_id, .citizen_id = "C", .detail = "test"};
    DUO_CHECK_OK(duo_keystore_resync_adopt(e.ks, k.key_id, before.version, 3, dev, &rev, &got));
    DUO_CHECK(got.resync_epoch == 0 && got.resync_used == 3 && got.pin_failures == 0);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(duo_ct_eq(gs.current, dev, 32) && !gs.has_pending && got.resync_used == 3 && got.resync_epoch == 0);
    DUO_CHECK(got.retired_count == before.retired_count + 1);
    DUO_CHECK_OK(duo_keystore_secret_is_retired(e.ks, &found, k.key_id, s.current));
    DUO_CHECK(found == 1);
    /* a second one in the epoch */
    DUO_EXPECT_ERR(duo_keystore_resync_adopt(e.ks, k.key_id, got.version, 3, other, NULL, NULL), DUO_E_RESYNC_USED);
    /* the other key's resync is still open; reopened by hand on k: the MAC says no */
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k2.key_id));
    DUO_CHECK(got.resync_epoch == 3);
#ifdef DUO_STORE_TEST_PG
    DUO_REQUIRE(pg_sql(&e, "UPDATE keys SET resync_epoch = 3, resync_used = 0 WHERE resync_used = 3", NULL, 0) == 0);
#else
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET resync_epoch = 3, resync_used = 0 WHERE resync_used = 3") == SQLITE_OK);
#endif
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_POLICY_MAC);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&s2);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

/* Seen requests (schema v3, SECURITY 3.2): recorded per key and per secret,
 * a second record is DUO_E_EXISTS (nothing written), recorded with a rotation
 * atomically (a duplicate rolls the rotation back), bounded per secret,
 * deleted at revocation. */
/* SignFinish's write: one transaction on one read, refused without a trace
 * for a key it must not sign with. */
static void test_sign_commit(void) {
    store_env e;
    duo_key_info k, got, before, ri;
    duo_key_secrets s, gs;
    uint8_t n1[32], n2[32], unknown[16] = {0xee};
    int found;
    const duo_audit_event reset = {DUO_AUDIT_PIN_RESET, NULL, "EE1", "reset"};
    const duo_audit_event sig = {DUO_AUDIT_SIGN, NULL, "EE1", "digest=.. r=.."};
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    memset(n1, 0xb1, 32);
    memset(n2, 0xb2, 32);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(NULL, &ri, k.key_id, n1, NULL, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e.ks, NULL, k.key_id, n1, NULL, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e.ks, &ri, k.key_id, NULL, NULL, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e.ks, &ri, unknown, n1, NULL, NULL), DUO_E_NOT_FOUND);

    /* clean key: the next secret pending, one audit entry (no reset) */
    uint64_t a0 = audit_count(e.ks);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &before, NULL, k.key_id));
    DUO_CHECK_OK(duo_keystore_sign_commit(e.ks, &ri, k.key_id, n1, &reset, &sig));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(duo_ct_eq(gs.current, s.current, 32) && gs.has_pending && duo_ct_eq(gs.pending, n1, 32));
    DUO_CHECK(got.version == before.version + 1 && got.secret_version == before.secret_version + 1);
    DUO_CHECK(audit_count(e.ks) == a0 + 1);

    /* failures and an expired lock: reset (audited first), the leftover
     * pending n1 is superseded and retires */
    duo_key_policy pol = {DUO_KEY_STATE_LOCKED, 3, e.now - 1, NULL};
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    a0 = audit_count(e.ks);
    DUO_CHECK_OK(duo_keystore_sign_commit(e.ks, &ri, k.key_id, n2, &reset, &sig));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_ACTIVE && got.pin_failures == 0 && got.locked_until == 0);
    DUO_CHECK(duo_ct_eq(gs.pending, n2, 32) && got.retired_count == before.retired_count + 1);
    DUO_CHECK_OK(duo_keystore_secret_find_retired(e.ks, &found, k.key_id, match_secret, n1));
    DUO_CHECK(found == 1);
    DUO_CHECK(audit_count(e.ks) == a0 + 2);

    /* refused, nothing written, the row as read given back */
    pol.locked_until = e.now + 3600;
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &before, NULL, k.key_id));
    a0 = audit_count(e.ks);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e.ks, &ri, k.key_id, n1, &reset, &sig), DUO_E_KEY_LOCKED);
    DUO_CHECK(ri.state == DUO_KEY_STATE_LOCKED && ri.locked_until == e.now + 3600 && ri.version == before.version);
    pol = (duo_key_policy){DUO_KEY_STATE_SUSPENDED, 3, 0, "clone"};
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, before.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &before, NULL, k.key_id));
    a0 = audit_count(e.ks);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e.ks, &ri, k.key_id, n1, &reset, &sig), DUO_E_KEY_SUSPENDED);
    DUO_CHECK(strcmp(ri.reason, "clone") == 0);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.version == before.version && duo_ct_eq(gs.pending, n2, 32));
    DUO_CHECK(audit_count(e.ks) == a0);

    /* a pending (unconfirmed) key never signs */
    make_key(&k, &s, 7, "EE1");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e.ks, &ri, k.key_id, n1, &reset, &sig), DUO_E_PROTO_STATE);
    DUO_CHECK(ri.state == DUO_KEY_STATE_PENDING);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

static void test_seen_nonces(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    uint8_t req1[32], req2[32], n1[32], cur[32];
    int seen;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    memcpy(cur, s.current, 32);
    memset(req1, 0xb1, 32);
    memset(req2, 0xb2, 32);
    memset(n1, 0xc1, 32);
    DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, cur, req1, 32));
    DUO_CHECK(seen == 0);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    uint64_t v = got.version;
    DUO_CHECK_OK(duo_keystore_nonce_record(e.ks, k.key_id, cur, req1, 32, NULL));
    DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, cur, req1, 32));
    DUO_CHECK(seen == 1);
    DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, n1, req1, 32)); /* other secret */
    DUO_CHECK(seen == 0);
    DUO_EXPECT_ERR(duo_keystore_nonce_record(e.ks, k.key_id, cur, req1, 32, NULL), DUO_E_EXISTS);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.version == v); /* recording does not move the row version */
    /* with a rotation: a duplicate rolls the whole rotation back */
    DUO_EXPECT_ERR(duo_keystore_secret_rotate_seen(e.ks, k.key_id, v, 0, n1, cur, req1, 32, NULL, NULL, NULL),
                   DUO_E_EXISTS);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.version == v && !got.has_pending_secret);
    duo_key_info wi;
    duo_key_secrets ws, rs;
    DUO_CHECK_OK(duo_keystore_secret_rotate_seen(e.ks, k.key_id, v, 0, n1, cur, req2, 32, NULL, &wi, &ws));
    DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, cur, req2, 32));
    DUO_CHECK(seen == 1);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &rs, k.key_id));
    DUO_CHECK(got.has_pending_secret);
    /* what the rotation says it wrote is what a fresh read gives */
    check_same_info(&wi, &got);
    check_same_secrets(&ws, &rs);
    duo_key_secrets_clear(&ws);
    duo_key_secrets_clear(&rs);
    /* bounded per secret: the oldest go */
    for (int i = 0; i < DUO_SEEN_NONCES_PER_SECRET + 5; i++) {
        uint8_t r[32];
        memset(r, 0, 32);
        r[0] = (uint8_t)i;
        r[1] = 0x5e;
        DUO_CHECK_OK(duo_keystore_nonce_record(e.ks, k.key_id, n1, r, 32, NULL));
    }
    {
        uint8_t r[32];
        memset(r, 0, 32);
        r[1] = 0x5e;
        DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, n1, r, 32));
        DUO_CHECK(seen == 0);
        r[0] = DUO_SEEN_NONCES_PER_SECRET + 4;
        DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, n1, r, 32));
        DUO_CHECK(seen == 1);
    }
    DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, cur, req1, 32)); /* other secret kept */
    DUO_CHECK(seen == 1);
    /* revocation deletes them */
    DUO_CHECK_OK(duo_keystore_key_revoke(e.ks, k.key_id, NULL, 0, "test", NULL));
    DUO_CHECK_OK(duo_keystore_nonce_seen(e.ks, &seen, k.key_id, cur, req1, 32));
    DUO_CHECK(seen == 0);
    DUO_EXPECT_ERR(duo_keystore_nonce_record(e.ks, k.key_id, cur, req1, 32, NULL), DUO_E_KEY_REVOKED);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* Secret columns swapped between rows, between columns, or restored from an
 * older generation of the same row: all rejected. */
static void test_swapped_sealed_columns(void) {
    store_env e;
    duo_key_info a, b, got;
    duo_key_secrets sa, sb, gs;
    uint8_t n1[32];
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &a, &sa, 1) != 0);
    DUO_REQUIRE(active_key(&e, &b, &sb, 2) != 0);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, a.key_id));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, b.key_id));

    /* swap x1 between the two rows */
    DUO_REQUIRE(env_sql(&e, "CREATE TABLE t AS SELECT key_id, x1_sealed FROM keys;"
                            "UPDATE keys SET x1_sealed = (SELECT x1_sealed FROM t"
                            " WHERE t.key_id != keys.key_id);"
                            "DROP TABLE t;") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, a.key_id), DUO_E_STATE_CORRUPT);
    DUO_CHECK(duo_ct_is_zero(&gs, sizeof gs));
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, b.key_id), DUO_E_STATE_CORRUPT);
    /* swap back: fine again */
    DUO_REQUIRE(env_sql(&e, "CREATE TABLE t AS SELECT key_id, x1_sealed FROM keys;"
                            "UPDATE keys SET x1_sealed = (SELECT x1_sealed FROM t"
                            " WHERE t.key_id != keys.key_id);"
                            "DROP TABLE t;") == SQLITE_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, a.key_id));
    check_same_secrets(&gs, &sa);

    /* p and q swapped within a row */
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET p_sealed = q_sealed, q_sealed = p_sealed"
                            " WHERE key_id = (SELECT min(key_id) FROM keys)") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, a.key_id), DUO_E_STATE_CORRUPT);
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET p_sealed = q_sealed, q_sealed = p_sealed"
                            " WHERE key_id = (SELECT min(key_id) FROM keys)") == SQLITE_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, a.key_id));

    /* one byte edited */
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET secret_cur_sealed = substr(secret_cur_sealed, 1, 20)"
                            " || x'00' || substr(secret_cur_sealed, 22)"
                            " WHERE key_id = (SELECT max(key_id) FROM keys)") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, b.key_id), DUO_E_STATE_CORRUPT);

    /* older generation of the same row's current secret restored after rotation */
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, a.key_id));
    DUO_REQUIRE(env_sql(&e, "CREATE TABLE old AS SELECT key_id, secret_cur_sealed FROM keys"
                            " WHERE key_id = (SELECT min(key_id) FROM keys)") == SQLITE_OK);
    memset(n1, 0xcc, sizeof n1);
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, a.key_id, got.version, 0, n1, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, a.key_id));
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET secret_cur_sealed = (SELECT secret_cur_sealed"
                            " FROM old) WHERE key_id = (SELECT key_id FROM old)") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, a.key_id), DUO_E_STATE_CORRUPT);
    /* ... and the version rolled back with it fails the policy MAC first */
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET secret_version = secret_version - 1"
                            " WHERE key_id = (SELECT key_id FROM old)") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, a.key_id), DUO_E_POLICY_MAC);
    duo_key_secrets_clear(&sa);
    duo_key_secrets_clear(&sb);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

static void test_revoke(void) {
    store_env e;
    duo_key_info a, b, c, got;
    duo_key_secrets s, gs;
    const duo_audit_event ev = {DUO_AUDIT_REVOKE, NULL, "C", "revocation code"};
    int found;
    uint8_t n1[32];
    uint64_t n0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &a, &s, 1) != 0);
    DUO_REQUIRE(active_key(&e, &b, &s, 2) != 0);
    DUO_REQUIRE(active_key(&e, &c, &s, 3) != 0);
    memset(n1, 0x99, sizeof n1);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, a.key_id));
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, a.key_id, got.version, 0, n1, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, a.key_id));
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, a.key_id, got.version, 1, NULL, NULL));
    n0 = audit_count(e.ks);

    /* with the one-time code */
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, a.key_id, (const uint8_t *)"WRONG", 5, NULL, &ev),
                   DUO_E_UNAUTHENTICATED);
    DUO_CHECK(audit_count(e.ks) == n0);
    DUO_CHECK_OK(duo_keystore_key_revoke(e.ks, a.key_id, rcode, sizeof rcode, "code", &ev));
    DUO_CHECK(audit_count(e.ks) == n0 + 1);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, a.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_REVOKED && !got.has_revocation_code && strcmp(got.reason, "code") == 0);
    DUO_CHECK(duo_ct_is_zero(&gs, sizeof gs));
    DUO_CHECK_OK(duo_keystore_secret_is_retired(e.ks, &found, a.key_id, s.current));
    DUO_CHECK(found == 0); /* retired secrets destroyed too */
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, a.key_id, rcode, sizeof rcode, NULL, &ev), DUO_E_KEY_REVOKED);
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, a.key_id, NULL, 0, NULL, &ev), DUO_E_KEY_REVOKED);
    {
        sqlite3 *db;
        sqlite3_stmt *q;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_CHECK(sqlite3_prepare_v2(db,
                                     "SELECT count(*) FROM keys WHERE state = 'revoked' AND"
                                     " (x1_sealed IS NOT NULL OR p_sealed IS NOT NULL OR"
                                     " q_sealed IS NOT NULL OR secret_cur_sealed IS NOT NULL)",
                                     -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0);
        sqlite3_finalize(q);
        DUO_CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM retired_secrets", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    /* admin / device (caller authenticated): no code */
    DUO_CHECK_OK(duo_keystore_key_revoke(e.ks, b.key_id, NULL, 0, "admin", NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, b.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_REVOKED);
    /* the code of one key does not revoke another: codes are per key; c's code
     * is the same string in this test, so use a wrong one */
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, c.key_id, (const uint8_t *)"x", 1, NULL, NULL), DUO_E_UNAUTHENTICATED);
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, c.key_id, rcode, 0, NULL, NULL), DUO_E_UNAUTHENTICATED);
    memset(n1, 0x42, 16);
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, n1, NULL, 0, NULL, NULL), DUO_E_NOT_FOUND);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

static void test_purge_pending(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    size_t n = 99;
    const duo_audit_event ev = {DUO_AUDIT_ADMIN, NULL, NULL, "purged abandoned enrolments"};
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    make_key(&k, &s, 2, "C");
    DUO_REQUIRE(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL) == DUO_OK);
    e.now += 100;
    make_key(&k, &s, 3, "C");
    DUO_REQUIRE(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_purge_pending(e.ks, &n, 50, &ev));
    DUO_CHECK(n == 1);
    DUO_CHECK(audit_count(e.ks) == 1);
    memset(k.key_id, 2, 16);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_NOT_FOUND);
    memset(k.key_id, 1, 16);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id)); /* active stays */
    memset(k.key_id, 3, 16);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id)); /* young stays */
    DUO_CHECK_OK(duo_keystore_purge_pending(e.ks, &n, 50, &ev));
    DUO_CHECK(n == 0);
    DUO_CHECK(audit_count(e.ks) == 1);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* ------------------------------------------------------------ concurrency */

struct racer {
    store_env *e;
    pthread_barrier_t *bar;
    const uint8_t *tok;
    size_t tok_len;
    int result;
    duo_keystore *ks;
};

static void *race_consume(void *arg) {
    struct racer *r = arg;
    char cit[DUO_CITIZEN_ID_MAX + 1];
    const duo_audit_event ev = {"token.used", NULL, NULL, NULL};
    pthread_barrier_wait(r->bar);
    r->result = duo_keystore_token_consume(r->ks, cit, r->tok, r->tok_len, &ev);
    return NULL;
}

static void test_token_concurrent_consume(void) {
    store_env e;
    pthread_barrier_t bar;
    struct racer rs[2];
    pthread_t th[2];
    uint8_t tok[32];
    int rounds = 25, wins_total = 0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 2; i++) {
        rs[i].e = &e;
        DUO_REQUIRE(env_open_ks(&e, &rs[i].ks) == DUO_OK); /* own connection each */
    }
    for (int round = 0; round < rounds; round++) {
        int wins = 0, invalid = 0;
        memset(tok, 0, sizeof tok);
        snprintf((char *)tok, sizeof tok, "race-token-%d", round);
        DUO_REQUIRE(duo_keystore_token_insert(e.ks, tok, sizeof tok, "C", 600, NULL) == DUO_OK);
        pthread_barrier_init(&bar, NULL, 2);
        for (int i = 0; i < 2; i++) {
            rs[i].bar = &bar;
            rs[i].tok = tok;
            rs[i].tok_len = sizeof tok;
            rs[i].result = 1;
            DUO_REQUIRE(pthread_create(&th[i], NULL, race_consume, &rs[i]) == 0);
        }
        for (int i = 0; i < 2; i++) {
            pthread_join(th[i], NULL);
            wins += rs[i].result == DUO_OK;
            invalid += rs[i].result == DUO_E_TOKEN_INVALID;
        }
        pthread_barrier_destroy(&bar);
        DUO_CHECK(wins == 1 && invalid == 1);
        wins_total += wins;
    }
    DUO_CHECK(wins_total == rounds);
    DUO_CHECK(audit_count(e.ks) == (uint64_t)rounds); /* one entry per win */
    for (int i = 0; i < 2; i++) duo_keystore_free(rs[i].ks);
    env_close(&e);
}

/* Same race across processes: a forked child and the parent. */
static void test_token_concurrent_consume_processes(void) {
    store_env e;
    uint8_t tok[32];
    int rounds = 10;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    for (int round = 0; round < rounds; round++) {
        int pipefd[2], status = 0, mine, theirs;
        char go = 'g', cit[DUO_CITIZEN_ID_MAX + 1];
        pid_t pid;
        memset(tok, 0, sizeof tok);
        snprintf((char *)tok, sizeof tok, "proc-token-%d", round);
        DUO_REQUIRE(duo_keystore_token_insert(e.ks, tok, sizeof tok, "C", 600, NULL) == DUO_OK);
        DUO_REQUIRE(pipe(pipefd) == 0);
        /* No SQLite connection may cross fork(): close ours, reopen after. */
        duo_keystore_free(e.ks);
        e.ks = NULL;
        fflush(NULL);
        pid = fork();
        DUO_REQUIRE(pid >= 0);
        if (pid == 0) {
            duo_keystore *ks = NULL;
            int r;
            close(pipefd[1]);
            if (env_open_ks(&e, &ks) != DUO_OK) _exit(100);
            if (read(pipefd[0], &go, 1) != 1) _exit(101);
            r = duo_keystore_token_consume(ks, cit, tok, sizeof tok, NULL);
            duo_keystore_free(ks);
            _exit(r == DUO_OK ? 0 : r == DUO_E_TOKEN_INVALID ? 1 : 102);
        }
        close(pipefd[0]);
        DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
        if (write(pipefd[1], &go, 1) != 1) DUO_CHECK(0);
        close(pipefd[1]);
        mine = duo_keystore_token_consume(e.ks, cit, tok, sizeof tok, NULL);
        DUO_REQUIRE(waitpid(pid, &status, 0) == pid);
        DUO_REQUIRE(WIFEXITED(status));
        theirs = WEXITSTATUS(status);
        DUO_CHECK(theirs == 0 || theirs == 1);
        DUO_CHECK((mine == DUO_OK) + (theirs == 0) == 1);
        DUO_CHECK(mine == DUO_OK || mine == DUO_E_TOKEN_INVALID);
    }
    env_close(&e);
}

/* ------------------------------------------------------------ crash safety */

static void die_before_commit(void *data) {
    (void)data;
    _exit(42); /* no COMMIT, no close, no atexit: like a crash */
}

/* A child process runs a real write transaction of the store and dies right
 * before COMMIT (hook), or is SIGKILLed holding an open write transaction:
 * the previous state survives, the audit chain is intact, the DB is sound. */
static void test_crash_before_commit(void) {
    store_env e;
    duo_key_info k, before, after;
    duo_key_secrets s, gs_before, gs_after;
    uint8_t n1[32];
    uint64_t audit_before, bad = 0;
    int status = 0;
    pid_t pid;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    DUO_CHECK_OK(duo_keystore_audit_append(e.ks, NULL, &(duo_audit_event){"admin", NULL, NULL, "x"}));
    DUO_REQUIRE(duo_keystore_key_get(e.ks, &before, &gs_before, k.key_id) == DUO_OK);
    audit_before = audit_count(e.ks);
    memset(n1, 0x5a, sizeof n1);
    /* No SQLite connection may cross fork(): close ours, reopen at the end. */
    duo_keystore_free(e.ks);
    e.ks = NULL;

    static const int ops = 4;
    for (int op = 0; op < ops; op++) {
        fflush(NULL);
        pid = fork();
        DUO_REQUIRE(pid >= 0);
        if (pid == 0) {
            duo_keystore_config cfg;
            duo_keystore *ks = NULL;
            duo_key_policy pol = {DUO_KEY_STATE_LOCKED, 3, 1, "x"};
            const duo_audit_event ev = {"crash.test", k.key_id, "C", "must not survive"};
            char cit[DUO_CITIZEN_ID_MAX + 1];
            int r = -1;
            env_cfg(&e, &cfg);
            cfg.before_commit = die_before_commit;
            if (duo_keystore_open_sqlite(&ks, e.db, &e.kek, &cfg) != DUO_OK) _exit(100);
            switch (op) {
                case 0:
                    r = duo_keystore_secret_rotate(ks, k.key_id, before.version, 0, n1, &ev);
                    break;
                case 1:
                    r = duo_keystore_key_update_policy(ks, k.key_id, before.version, &pol, &ev);
                    break;
                case 2:
                    r = duo_keystore_key_revoke(ks, k.key_id, NULL, 0, "crash", &ev);
                    break;
                case 3:
                    r = duo_keystore_token_insert(ks, (const uint8_t *)"crash-token-000000", 18, "C", 60, &ev);
                    (void)cit;
                    break;
            }
            _exit(r == DUO_OK ? 0 : 101); /* only reached if the hook did not fire */
        }
        DUO_REQUIRE(waitpid(pid, &status, 0) == pid);
        DUO_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    }

    /* SIGKILL while holding an open write transaction with changes made */
    {
        int pfd[2];
        char c;
        DUO_REQUIRE(pipe(pfd) == 0);
        fflush(NULL);
        pid = fork();
        DUO_REQUIRE(pid >= 0);
        if (pid == 0) {
            sqlite3 *db;
            close(pfd[0]);
            if (sqlite3_open(e.db, &db) != SQLITE_OK) _exit(100);
            sqlite3_busy_timeout(db, 10000);
            if (sqlite3_exec(db,
                             "BEGIN IMMEDIATE; UPDATE keys SET state = 'revoked', x1_sealed = NULL;"
                             "DELETE FROM audit_head;",
                             NULL, NULL, NULL) != SQLITE_OK)
                _exit(101);
            if (write(pfd[1], "k", 1) != 1) _exit(102);
            for (;;) pause();
        }
        close(pfd[1]);
        DUO_CHECK(read(pfd[0], &c, 1) == 1);
        close(pfd[0]);
        kill(pid, SIGKILL);
        DUO_REQUIRE(waitpid(pid, &status, 0) == pid);
        DUO_CHECK(WIFSIGNALED(status));
    }

    /* Reopen from scratch: exactly the state before. */
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &after, &gs_after, k.key_id));
    DUO_CHECK(after.version == before.version && after.state == before.state &&
              after.secret_version == before.secret_version && !after.has_pending_secret &&
              after.pin_failures == before.pin_failures);
    check_same_secrets(&gs_after, &gs_before);
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, &bad, NULL, NULL));
    DUO_CHECK(audit_count(e.ks) == audit_before);
    {
        char cit[DUO_CITIZEN_ID_MAX + 1];
        DUO_EXPECT_ERR(duo_keystore_token_check(e.ks, cit, (const uint8_t *)"crash-token-000000", 18),
                       DUO_E_TOKEN_INVALID);
    }
    {
        sqlite3 *db;
        sqlite3_stmt *q;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    /* and the store still works */
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, k.key_id, after.version, 0, n1, NULL));
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs_before);
    duo_key_secrets_clear(&gs_after);
    env_close(&e);
}

/* ------------------------------------------------------------ several writers on one key */

/* What the daemon's PIN counting does: read the row, write failures + 1 with
 * the version read, re-read on DUO_E_CONFLICT. Each counter has its own
 * connection (a node); every increment must land exactly once. */
struct counter {
    store_env *e;
    duo_keystore *ks;
    const uint8_t *key_id;
    pthread_barrier_t *bar;
    int n, done, errors;
};

static void *count_failures(void *arg) {
    struct counter *c = arg;
    const duo_audit_event ev = {"pin.failure", c->key_id, "C", "counted"};
    pthread_barrier_wait(c->bar);
    while (c->done < c->n) {
        duo_key_info k;
        if (duo_keystore_key_get(c->ks, &k, NULL, c->key_id) != DUO_OK) {
            c->errors++;
            return NULL;
        }
        duo_key_policy pol = {k.state, k.pin_failures + 1, k.locked_until, NULL};
        int r = duo_keystore_key_update_policy(c->ks, c->key_id, k.version, &pol, &ev);
        if (r == DUO_OK)
            c->done++;
        else if (r != DUO_E_CONFLICT && r != DUO_E_TIMEOUT && c->errors++ > 0)
            return NULL;
    }
    return NULL;
}

static void test_policy_concurrent_writers(void) {
    enum { WRITERS = 4, EACH = 25 };
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    pthread_barrier_t bar;
    struct counter c[WRITERS];
    pthread_t th[WRITERS];
    uint64_t audit0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 7) != 0);
    audit0 = audit_count(e.ks);
    pthread_barrier_init(&bar, NULL, WRITERS);
    for (int i = 0; i < WRITERS; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].e = &e;
        c[i].key_id = k.key_id;
        c[i].bar = &bar;
        c[i].n = EACH;
        DUO_REQUIRE(env_open_ks(&e, &c[i].ks) == DUO_OK);
        DUO_REQUIRE(pthread_create(&th[i], NULL, count_failures, &c[i]) == 0);
    }
    for (int i = 0; i < WRITERS; i++) {
        pthread_join(th[i], NULL);
        DUO_CHECK(c[i].errors == 0 && c[i].done == EACH);
        duo_keystore_free(c[i].ks);
    }
    pthread_barrier_destroy(&bar);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.pin_failures == WRITERS * EACH);
    DUO_CHECK(audit_count(e.ks) == audit0 + WRITERS * EACH);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* A write that dies right before COMMIT (the backend's hook) leaves nothing. */
static void test_crash_hook_any_backend(void) {
    store_env e;
    duo_key_info k, before, after;
    duo_key_secrets s;
    uint8_t n1[32];
    int status = 0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 2) != 0);
    DUO_REQUIRE(duo_keystore_key_get(e.ks, &before, NULL, k.key_id) == DUO_OK);
    uint64_t audit0 = audit_count(e.ks);
    memset(n1, 0x5b, sizeof n1);
    duo_keystore_free(e.ks);
    e.ks = NULL;
    for (int op = 0; op < 2; op++) {
        fflush(NULL);
        pid_t pid = fork();
        DUO_REQUIRE(pid >= 0);
        if (pid == 0) {
            duo_keystore_config cfg;
            duo_keystore *ks = NULL;
            duo_key_policy pol = {DUO_KEY_STATE_LOCKED, 3, 1, "x"};
            const duo_audit_event ev = {"crash.test", k.key_id, "C", "must not survive"};
            int r;
            env_cfg(&e, &cfg);
            cfg.before_commit = die_before_commit;
            if (duo_keystore_open(&ks, duo_keystore_driver_find(STORE_DRIVER), e.db, &e.kek, &cfg) != DUO_OK)
                _exit(100);
            r = op == 0 ? duo_keystore_secret_rotate(ks, k.key_id, before.version, 0, n1, &ev)
                        : duo_keystore_key_update_policy(ks, k.key_id, before.version, &pol, &ev);
            _exit(r == DUO_OK ? 0 : 101);
        }
        DUO_REQUIRE(waitpid(pid, &status, 0) == pid);
        DUO_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    }
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &after, NULL, k.key_id));
    DUO_CHECK(after.version == before.version && after.state == before.state && !after.has_pending_secret &&
              after.pin_failures == before.pin_failures);
    DUO_CHECK(audit_count(e.ks) == audit0);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* Schema v5 (issue 15): keys.curve. A new row keeps the curve it was
 * given (0 from a caller written before curves stores secp256k1); a store
 * written before v5 (its keys table without the column, user_version 4)
 * migrates and reads its rows as secp256k1; a curve outside the table is
 * refused before anything is stored, and a damaged curve value reads as
 * corruption. */
static void test_curve_column(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s, gs;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    k.curve = DUO_CURVE_P256;
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.curve == DUO_CURVE_P256);
    make_key(&k, &s, 2, "EE38001010001");
    k.curve = 0;
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.curve == DUO_CURVE_SECP256K1);
    make_key(&k, &s, 3, "EE38001010001");
    k.curve = 3;
    DUO_EXPECT_ERR(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, k.key_id), DUO_E_NOT_FOUND);

    /* back to a v4 store: the column gone, every row as it was */
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "ALTER TABLE keys DROP COLUMN curve; ALTER TABLE keys DROP COLUMN policy_mac;"
                            " PRAGMA user_version = 4") == SQLITE_OK);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.curve == DUO_CURVE_SECP256K1); /* the P-256 mark went with the column */
    check_same_secrets(&gs, &s);

    /* a curve value nobody wrote (the CHECK bypassed) is corruption */
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "PRAGMA ignore_check_constraints = ON; UPDATE keys SET curve = 7") == SQLITE_OK);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, k.key_id), DUO_E_STATE_CORRUPT);
    env_close(&e);
}

/* The curve column through the store interface alone (both backends). */
static void test_curve_roundtrip(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s, gs;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    k.curve = DUO_CURVE_P256;
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.curve == DUO_CURVE_P256);
    check_same_secrets(&gs, &s);
    make_key(&k, &s, 2, "EE38001010001");
    k.curve = 0;
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(got.curve == DUO_CURVE_SECP256K1);
    make_key(&k, &s, 3, "EE38001010001");
    k.curve = 3;
    DUO_EXPECT_ERR(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, &gs, k.key_id), DUO_E_NOT_FOUND);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

/* The inner channel's per-key flag (schema v12 / PG v11) through the store
 * interface alone (both backends): a key is born unmoved or moved, is moved
 * once (one audit entry, the row version bumps), and never back. */
static void test_moved_roundtrip(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    uint8_t unknown[16] = {0xee};
    int changed = -1;
    const duo_audit_event ev = {DUO_AUDIT_KEY_MOVED, NULL, NULL, "first sealed request"};
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 0 && got.version == 1);
    uint64_t a0 = audit_count(e.ks);
    e.now += 5;
    DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, k.key_id, &ev));
    DUO_CHECK(changed == 1 && audit_count(e.ks) == a0 + 1);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 1 && got.version == 2 && got.updated_at == e.now && got.secret_version == 1);
    DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, k.key_id, &ev));
    DUO_CHECK(changed == 0 && audit_count(e.ks) == a0 + 1); /* set already: nothing written */
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 1 && got.version == 2);
    /* other policy writes keep it */
    duo_key_policy pol = {.state = DUO_KEY_STATE_ACTIVE, .pin_failures = 2, .locked_until = 0, .reason = NULL};
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 1 && got.pin_failures == 2);
    /* enrolled through the channel: moved at birth */
    make_key(&k, &s, 2, "EE38001010001");
    k.moved = 1;
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 1 && got.version == 1);
    DUO_EXPECT_ERR(duo_keystore_key_set_moved(e.ks, &changed, unknown, &ev), DUO_E_NOT_FOUND);
    DUO_CHECK(changed == 0);
    DUO_EXPECT_ERR(duo_keystore_key_set_moved(NULL, &changed, k.key_id, &ev), DUO_E_INVALID_ARG);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* SQLite: keys.moved is under the policy MAC (clearing or setting it by hand
 * is DUO_E_POLICY_MAC), and a store from before v12 (no column, user_version
 * 10 or 11) migrates with every key unmoved and its MAC still good; a moved
 * key whose flag is lost that way fails its MAC (a rollback, not a fresh
 * key). */
static void test_moved_column(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    int changed = 0;
    uint8_t id1[16], id2[16];
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    memcpy(id1, k.key_id, 16);
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    make_key(&k, &s, 2, "EE38001010001");
    memcpy(id2, k.key_id, 16);
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, id2, NULL));
    /* edited by hand: both directions fail the MAC, and set_moved refuses */
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET moved = 1 - moved") == SQLITE_OK);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, id1), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, id2), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_key_set_moved(e.ks, &changed, id1, NULL), DUO_E_POLICY_MAC);
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET moved = 1 - moved") == SQLITE_OK);
    /* a value duosign never writes (the CHECK bypassed) */
    DUO_REQUIRE(env_sql(&e, "PRAGMA ignore_check_constraints = ON; UPDATE keys SET moved = 2 WHERE moved = 1") ==
                SQLITE_OK);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, id2), DUO_E_STATE_CORRUPT);
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "PRAGMA ignore_check_constraints = ON; UPDATE keys SET moved = 1 WHERE moved = 2") ==
                SQLITE_OK);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, id2));
    DUO_CHECK(got.moved == 1);
    /* back to v10 (and to v11, branch resync's number): the column gone */
    for (int v = 10; v <= 11; v++) {
        char sql[128];
        duo_keystore_free(e.ks);
        e.ks = NULL;
        snprintf(sql, sizeof sql, "ALTER TABLE keys DROP COLUMN moved; PRAGMA user_version = %d", v);
        DUO_REQUIRE(env_sql(&e, sql) == SQLITE_OK);
        DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
        DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, id1)); /* its v1 MAC holds */
        DUO_CHECK(got.moved == 0);
        DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, id2), DUO_E_POLICY_MAC); /* the flag was lost */
        {
            sqlite3 *db;
            sqlite3_stmt *q;
            DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
            DUO_CHECK(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK);
            DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 12);
            sqlite3_finalize(q);
            sqlite3_close(db);
        }
        /* the migrated unmoved key moves as any other */
        DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, id1, NULL));
        DUO_CHECK(changed == 1);
        DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, id1));
        DUO_CHECK(got.moved == 1);
        /* for the next round: id1 unmoved again through a fresh key row */
        duo_keystore_free(e.ks);
        e.ks = NULL;
        DUO_REQUIRE(env_sql(&e, "DELETE FROM keys") == SQLITE_OK);
        DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
        make_key(&k, &s, 1, "EE38001010001");
        DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
        make_key(&k, &s, 2, "EE38001010001");
        k.moved = 1;
        DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    }
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* A KEK rotation re-MACs a moved key's row with its flag (the "moved"
 * suffix), so the flag survives the switch to the new KEK and stays covered. */
static void test_moved_remac(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    duo_kek kek2;
    size_t n = 0;
    int changed = 0;
    uint8_t id1[16], id2[16];
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    memcpy(id1, k.key_id, 16);
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    make_key(&k, &s, 2, "EE38001010001");
    memcpy(id2, k.key_id, 16);
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, id2, NULL));
    memset(&kek2, 0, sizeof kek2);
    kek2.id = e.kek.id + 1;
    memset(kek2.data, 0x5c, sizeof kek2.data);
    DUO_REQUIRE(duo_keystore_kek_add(e.ks, &kek2) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_policy_remac(e.ks, &n));
    DUO_CHECK(n == 2);
    duo_keystore_free(e.ks);
    e.ks = NULL;
    duo_kek_clear(&e.kek);
    e.kek = kek2; /* the new KEK alone: its MAC key must verify both rows */
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, id1));
    DUO_CHECK(got.moved == 0);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, id2));
    DUO_CHECK(got.moved == 1);
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(env_sql(&e, "UPDATE keys SET moved = 0") == SQLITE_OK);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, id2), DUO_E_POLICY_MAC);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, id1));
    duo_key_secrets_clear(&s);
    env_close(&e);
}

#ifdef DUO_STORE_TEST_PG
/* Two nodes (two store handles) adopt a resync for one key from the same
 * read: the row lock and version check let one through, the other gets
 * DUO_E_CONFLICT and, read again, DUO_E_RESYNC_USED; the first's secret is
 * the one kept. A second node's resync_open of the same epoch leaves the
 * used resync closed (PostgreSQL: every node runs restore --mark-only). */
static void test_resync_two_nodes(void) {
    store_env e;
    duo_keystore *ks2 = NULL;
    duo_key_info k, a, b, got;
    duo_key_secrets s, gs;
    uint8_t d1[32], d2[32];
    size_t n = 0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(active_key(&e, &k, &s, 1) != 0);
    memset(d1, 0xe1, sizeof d1);
    memset(d2, 0xe2, sizeof d2);
    duo_audit_event ev = {.kind = "store.restore", .detail = "test"};
    DUO_CHECK_OK(duo_keystore_resync_open(e.ks, 1, &n, &ev));
    DUO_CHECK(n == 1);
    DUO_REQUIRE(env_open_ks(&e, &ks2) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &a, NULL, k.key_id));
    DUO_CHECK_OK(duo_keystore_key_get(ks2, &b, NULL, k.key_id));
    DUO_CHECK(a.version == b.version && a.resync_epoch == 1);
    DUO_CHECK_OK(duo_keystore_resync_adopt(e.ks, k.key_id, a.version, 1, d1, NULL, NULL));
    DUO_EXPECT_ERR(duo_keystore_resync_adopt(ks2, k.key_id, b.version, 1, d2, NULL, NULL), DUO_E_CONFLICT);
    DUO_CHECK_OK(duo_keystore_key_get(ks2, &got, NULL, k.key_id));
    DUO_EXPECT_ERR(duo_keystore_resync_adopt(ks2, k.key_id, got.version, 1, d2, NULL, NULL), DUO_E_RESYNC_USED);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &gs, k.key_id));
    DUO_CHECK(duo_ct_eq(gs.current, d1, 32) && got.resync_used == 1 && got.resync_epoch == 0);
    DUO_CHECK_OK(duo_keystore_resync_open(ks2, 1, &n, &ev));
    DUO_CHECK(n == 0);
    DUO_CHECK_OK(duo_keystore_key_get(ks2, &b, NULL, k.key_id));
    DUO_CHECK(b.resync_used == 1 && b.resync_epoch == 0 && b.version == got.version);
    duo_keystore_free(ks2);
    duo_key_secrets_clear(&s);
    duo_key_secrets_clear(&gs);
    env_close(&e);
}

/* PostgreSQL v11 and v12: a store at v10 (keys.policy_mac, no keys.moved,
 * no resync columns) migrates with its keys unmoved, no resync open, their
 * MACs still holding; the versions become 1-12. */
static void test_moved_pg_migration(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    char out[128];
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010001");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(pg_sql(&e,
                       "ALTER TABLE keys DROP COLUMN moved, DROP COLUMN resync_epoch, DROP COLUMN resync_used;"
                       " DELETE FROM schema_version WHERE version >= 11",
                       NULL, 0) == 0);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 0 && got.version == 1 && got.resync_epoch == 0 && got.resync_used == 0);
    DUO_REQUIRE(
        pg_sql(&e, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version", out, sizeof out) == 0);
    DUO_CHECK_MSG(strcmp(out, "1,2,3,4,5,6,7,8,9,10,11,12") == 0, "versions %s", out);
    int changed = 0;
    DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, k.key_id, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(changed == 1 && got.moved == 1);
    duo_key_secrets_clear(&s);
    env_close(&e);
}

/* A database main's PostgreSQL v10 placeholder brought to v11 (keys.moved,
 * one key moved, no policy_mac, no resync columns): v12 adds the resync
 * columns and the MAC of every row (moved in it); the rows read back as
 * they were, and an edit of moved afterwards fails the MAC. */
static void test_pg_v11_without_mac(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets s;
    char out[128];
    int changed = 0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    make_key(&k, &s, 1, "EE38001010002");
    DUO_CHECK_OK(duo_keystore_key_insert_pending(e.ks, &k, &s, NULL));
    DUO_CHECK_OK(duo_keystore_key_set_moved(e.ks, &changed, k.key_id, NULL));
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_REQUIRE(pg_sql(&e,
                       "ALTER TABLE keys DROP COLUMN policy_mac, DROP COLUMN resync_epoch, DROP COLUMN resync_used;"
                       " DELETE FROM schema_version WHERE version >= 12",
                       NULL, 0) == 0);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.moved == 1 && got.resync_epoch == 0 && got.resync_used == 0);
    DUO_REQUIRE(
        pg_sql(&e, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version", out, sizeof out) == 0);
    DUO_CHECK_MSG(strcmp(out, "1,2,3,4,5,6,7,8,9,10,11,12") == 0, "versions %s", out);
    DUO_REQUIRE(pg_sql(&e, "UPDATE keys SET moved = 0", NULL, 0) == 0);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_POLICY_MAC);
    duo_key_secrets_clear(&s);
    env_close(&e);
}
#endif

int main(void) {
#ifdef DUO_STORE_TEST_PG
    /* The PostgreSQL build (run through tests/integration/pg/pg_env.sh): the
     * tests that look only through the store interface. The others read or
     * edit SQLite's file directly. */
    (void)test_keystore_crud, (void)test_token_single_use_and_expiry, (void)test_secret_rotate;
    (void)test_swapped_sealed_columns, (void)test_revoke, (void)test_crash_before_commit, (void)test_curve_column;
    (void)test_moved_column, (void)test_moved_remac;
    DUO_RUN(test_curve_roundtrip);
    DUO_RUN(test_moved_roundtrip);
    DUO_RUN(test_moved_pg_migration);
    DUO_RUN(test_resync);
    DUO_RUN(test_resync_two_nodes);
    DUO_RUN(test_pg_v11_without_mac);
    DUO_RUN(test_activate);
    DUO_RUN(test_policy_update);
    DUO_RUN(test_sign_commit);
    DUO_RUN(test_seen_nonces);
    DUO_RUN(test_purge_pending);
    DUO_RUN(test_token_concurrent_consume);
    DUO_RUN(test_token_concurrent_consume_processes);
    DUO_RUN(test_policy_concurrent_writers);
    DUO_RUN(test_crash_hook_any_backend);
    return duo_test_finish();
#else
    DUO_RUN(test_keystore_crud);
    DUO_RUN(test_curve_column);
    DUO_RUN(test_curve_roundtrip);
    DUO_RUN(test_moved_roundtrip);
    DUO_RUN(test_moved_column);
    DUO_RUN(test_moved_remac);
    DUO_RUN(test_token_single_use_and_expiry);
    DUO_RUN(test_activate);
    DUO_RUN(test_policy_update);
    DUO_RUN(test_secret_rotate);
    DUO_RUN(test_resync);
    DUO_RUN(test_sign_commit);
    DUO_RUN(test_seen_nonces);
    DUO_RUN(test_swapped_sealed_columns);
    DUO_RUN(test_revoke);
    DUO_RUN(test_purge_pending);
    DUO_RUN(test_token_concurrent_consume);
    DUO_RUN(test_token_concurrent_consume_processes);
    DUO_RUN(test_crash_before_commit);
    DUO_RUN(test_policy_concurrent_writers);
    DUO_RUN(test_crash_hook_any_backend);
    return duo_test_finish();
#endif
}
