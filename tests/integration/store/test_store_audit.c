/* The hash-chained audit log: verify passes, then catches an edited, deleted,
 * swapped (reordered), inserted or truncated entry, and reports the first bad seq. */
#include "duosign/mem.h"
#include "store_test_util.h"

#define N_ENTRIES 8

/* A store with N_ENTRIES entries written by real operations and direct appends. */
static int audit_env(store_env *e) {
    duo_key_info k;
    duo_key_secrets s;
    uint8_t tok[20];
    char detail[64];
    int r;
    if ((r = env_open(e)) != DUO_OK) return r;
    make_key(&k, &s, 1, "C");
    memset(tok, 7, sizeof tok);
    const duo_audit_event e1 = {DUO_AUDIT_TOKEN_ISSUED, NULL, "C", "ttl 600"};
    const duo_audit_event e2 = {DUO_AUDIT_ENROL_START, k.key_id, "C", "2048"};
    const duo_audit_event e3 = {DUO_AUDIT_ENROL_DONE, k.key_id, "C", NULL};
    if ((r = duo_keystore_token_insert(e->ks, tok, sizeof tok, "C", 600, &e1)) != DUO_OK ||
        (r = duo_keystore_key_insert_pending(e->ks, &k, &s, &e2)) != DUO_OK ||
        (r = duo_keystore_key_activate(e->ks, k.key_id, tok, sizeof tok, tok, sizeof tok, &e3)) != DUO_OK)
        return r;
    for (int i = 4; i <= N_ENTRIES; i++) {
        e->now += 1;
        snprintf(detail, sizeof detail, "digest=%02x sighash=%02x", i, i * 3);
        const duo_audit_event ev = {DUO_AUDIT_SIGN, k.key_id, "C", detail};
        uint64_t seq = 0;
        if ((r = duo_keystore_audit_append(e->ks, &seq, &ev)) != DUO_OK) return r;
        if (seq != (uint64_t)i) return DUO_E_INTERNAL;
    }
    duo_key_secrets_clear(&s);
    return DUO_OK;
}

/* Lets the "attacker" connection change the append-only table. */
#define UNGUARD "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;"

static void expect_bad(store_env *e, uint64_t want) {
    uint64_t bad = 0, n = 99;
    DUO_EXPECT_ERR(duo_keystore_audit_verify(e->ks, &bad, &n, NULL), DUO_E_STATE_CORRUPT);
    DUO_CHECK(bad == want);
    if (bad != want)
        fprintf(stderr, "  bad_seq = %llu, want %llu\n", (unsigned long long)bad, (unsigned long long)want);
    DUO_CHECK(n == 0);
}

struct collect {
    int n;
    uint64_t last;
    int ok;
};

static int collect_cb(void *data, const duo_audit_entry *en) {
    struct collect *c = data;
    c->n++;
    c->last = en->seq;
    if (en->seq == 2)
        c->ok = en->has_key_id && strcmp(en->kind, "enrol.start") == 0 && strcmp(en->detail, "2048") == 0 &&
                strcmp(en->citizen_id, "C") == 0;
    return 0;
}

static void test_audit_verify_ok(void) {
    store_env e;
    uint64_t bad = 1, n = 0;
    uint8_t head[32] = {0}, head2[32];
    struct collect c = {0, 0, 0};
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, &bad, &n, head));
    DUO_CHECK(bad == 0 && n == N_ENTRIES && !duo_ct_is_zero(head, 32));
    DUO_CHECK_OK(duo_keystore_audit_list(e.ks, 1, collect_cb, &c));
    DUO_CHECK(c.n == N_ENTRIES && c.last == N_ENTRIES && c.ok);
    memset(&c, 0, sizeof c);
    DUO_CHECK_OK(duo_keystore_audit_list(e.ks, 5, collect_cb, &c));
    DUO_CHECK(c.n == N_ENTRIES - 4);
    /* the head moves with every append */
    DUO_CHECK_OK(duo_keystore_audit_append(e.ks, NULL, &(duo_audit_event){"admin", NULL, NULL, NULL}));
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, &bad, &n, head2));
    DUO_CHECK(n == N_ENTRIES + 1 && !duo_ct_eq(head, head2, 32));
    /* bad events are refused */
    DUO_EXPECT_ERR(duo_keystore_audit_append(e.ks, NULL, &(duo_audit_event){"", NULL, NULL, NULL}), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_audit_append(e.ks, NULL, &(duo_audit_event){"UPPER", NULL, NULL, NULL}),
                   DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_keystore_audit_append(e.ks, NULL, NULL), DUO_E_INVALID_ARG);
    /* empty log verifies */
    env_close(&e);
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, &bad, &n, NULL));
    DUO_CHECK(n == 0);
    env_close(&e);
}

static void test_audit_append_only_triggers(void) {
    store_env e;
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_CHECK(env_sql(&e, "UPDATE audit SET detail = 'x' WHERE seq = 2") != SQLITE_OK);
    DUO_CHECK(env_sql(&e, "DELETE FROM audit WHERE seq = 2") != SQLITE_OK);
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, NULL, NULL, NULL));
    env_close(&e);
}

static void test_audit_detects_edit(void) {
    static const char *const edits[] = {
        UNGUARD "UPDATE audit SET detail = 'digest=00 sighash=00' WHERE seq = 5",
        UNGUARD "UPDATE audit SET time = time + 1 WHERE seq = 5",
        UNGUARD "UPDATE audit SET kind = 'admin' WHERE seq = 5",
        UNGUARD "UPDATE audit SET citizen_id = 'D' WHERE seq = 5",
        UNGUARD "UPDATE audit SET key_id = zeroblob(16) WHERE seq = 5",
        UNGUARD "UPDATE audit SET key_id = NULL WHERE seq = 5",
        UNGUARD "UPDATE audit SET hash = zeroblob(32) WHERE seq = 5",
        UNGUARD "UPDATE audit SET prev_hash = zeroblob(32) WHERE seq = 5",
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        store_env e;
        DUO_REQUIRE(audit_env(&e) == DUO_OK);
        DUO_REQUIRE(env_sql(&e, edits[i]) == SQLITE_OK);
        expect_bad(&e, 5);
        env_close(&e);
    }
}

/* The attacker edits entry 4 and recomputes its own hash (not the later ones):
 * entry 5 no longer links to it. */
static void test_audit_detects_rehashed_edit(void) {
    store_env e;
    duo_audit_entry en;
    char sql[512], hex[65];
    int found = 0;
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    {
        sqlite3 *db;
        sqlite3_stmt *q;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_REQUIRE(sqlite3_prepare_v2(db,
                                       "SELECT time, kind, key_id, citizen_id, prev_hash FROM"
                                       " audit WHERE seq = 4",
                                       -1, &q, NULL) == SQLITE_OK);
        if (sqlite3_step(q) == SQLITE_ROW) {
            memset(&en, 0, sizeof en);
            en.seq = 4;
            en.time = sqlite3_column_int64(q, 0);
            snprintf(en.kind, sizeof en.kind, "%s", (const char *)sqlite3_column_text(q, 1));
            en.has_key_id = 1;
            memcpy(en.key_id, sqlite3_column_blob(q, 2), 16);
            snprintf(en.citizen_id, sizeof en.citizen_id, "%s", (const char *)sqlite3_column_text(q, 3));
            snprintf(en.detail, sizeof en.detail, "forged");
            memcpy(en.prev_hash, sqlite3_column_blob(q, 4), 32);
            found = 1;
        }
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    DUO_REQUIRE(found);
    DUO_REQUIRE(duo_audit_entry_hash(en.hash, &en) == DUO_OK);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", en.hash[i]);
    snprintf(sql, sizeof sql, UNGUARD "UPDATE audit SET detail = 'forged', hash = x'%s' WHERE seq = 4", hex);
    DUO_REQUIRE(env_sql(&e, sql) == SQLITE_OK);
    expect_bad(&e, 5);
    env_close(&e);
}

static void test_audit_detects_deleted_middle(void) {
    store_env e;
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "DELETE FROM audit WHERE seq = 4") == SQLITE_OK);
    expect_bad(&e, 4);
    env_close(&e);
    /* deleted and the later ones renumbered to close the gap */
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "DELETE FROM audit WHERE seq = 4;"
                                    "UPDATE audit SET seq = seq - 1 WHERE seq > 4;"
                                    "UPDATE audit_head SET count = count - 1") == SQLITE_OK);
    expect_bad(&e, 4);
    env_close(&e);
    /* the first one */
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "DELETE FROM audit WHERE seq = 1") == SQLITE_OK);
    expect_bad(&e, 1);
    env_close(&e);
}

/* Two rows' contents swapped (= the entries reordered). */
static void test_audit_detects_swap(void) {
    store_env e;
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (3, 6);"
                                    "UPDATE audit SET (time, kind, key_id, citizen_id, detail, prev_hash, hash)"
                                    " = (SELECT time, kind, key_id, citizen_id, detail, prev_hash, hash FROM t"
                                    " WHERE t.seq = CASE audit.seq WHEN 3 THEN 6 ELSE 3 END)"
                                    " WHERE seq IN (3, 6);") == SQLITE_OK);
    expect_bad(&e, 3);
    env_close(&e);
    /* swapping the seq numbers instead */
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "UPDATE audit SET seq = 100 WHERE seq = 6;"
                                    "UPDATE audit SET seq = 6 WHERE seq = 7;"
                                    "UPDATE audit SET seq = 7 WHERE seq = 100;") == SQLITE_OK);
    expect_bad(&e, 6);
    env_close(&e);
}

static void test_audit_detects_truncation(void) {
    store_env e;
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "DELETE FROM audit WHERE seq > 6") == SQLITE_OK);
    expect_bad(&e, 7);
    env_close(&e);
    /* everything */
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "DELETE FROM audit") == SQLITE_OK);
    expect_bad(&e, 1);
    env_close(&e);
    /* tail and head count rolled back, head hash not */
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, UNGUARD "DELETE FROM audit WHERE seq = 8;"
                                    "UPDATE audit_head SET count = 7") == SQLITE_OK);
    expect_bad(&e, 7);
    env_close(&e);
    /* the head record itself deleted */
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, "DELETE FROM audit_head") == SQLITE_OK);
    {
        uint64_t bad = 0;
        DUO_CHECK(duo_keystore_audit_verify(e.ks, &bad, NULL, NULL) != DUO_OK);
    }
    env_close(&e);
}

/* An entry inserted behind the store's back (head not updated). */
static void test_audit_detects_insertion(void) {
    store_env e;
    DUO_REQUIRE(audit_env(&e) == DUO_OK);
    DUO_REQUIRE(env_sql(&e, "INSERT INTO audit SELECT 9, time, kind, key_id, citizen_id,"
                            " detail, hash, hash FROM audit WHERE seq = 8") == SQLITE_OK);
    expect_bad(&e, 9);
    env_close(&e);
}

/* The chain encoding is length-prefixed: moving text between fields changes it. */
static void test_audit_hash_unambiguous(void) {
    duo_audit_entry a, b;
    uint8_t z[32] = {0};
    DUO_CHECK_OK(duo_audit_entry_make(&a, 1, 5, &(duo_audit_event){"ab", NULL, "c", "d"}, z));
    DUO_CHECK_OK(duo_audit_entry_make(&b, 1, 5, &(duo_audit_event){"ab", NULL, "", "cd"}, z));
    DUO_CHECK(!duo_ct_eq(a.hash, b.hash, 32));
    DUO_CHECK_OK(duo_audit_entry_make(&b, 2, 5, &(duo_audit_event){"ab", NULL, "c", "d"}, z));
    DUO_CHECK(!duo_ct_eq(a.hash, b.hash, 32));
    /* streaming verifier on its own */
    duo_audit_verifier v;
    duo_audit_verifier_init(&v);
    DUO_CHECK_OK(duo_audit_verifier_feed(&v, &a));
    DUO_CHECK_OK(duo_audit_verifier_finish(&v, 1, a.hash));
    duo_audit_verifier_init(&v);
    DUO_EXPECT_ERR(duo_audit_verifier_feed(&v, &b), DUO_E_STATE_CORRUPT);
    DUO_CHECK(v.bad_seq == 1);
}

int main(void) {
    DUO_RUN(test_audit_verify_ok);
    DUO_RUN(test_audit_append_only_triggers);
    DUO_RUN(test_audit_detects_edit);
    DUO_RUN(test_audit_detects_rehashed_edit);
    DUO_RUN(test_audit_detects_deleted_middle);
    DUO_RUN(test_audit_detects_swap);
    DUO_RUN(test_audit_detects_truncation);
    DUO_RUN(test_audit_detects_insertion);
    DUO_RUN(test_audit_hash_unambiguous);
    return duo_test_finish();
}
