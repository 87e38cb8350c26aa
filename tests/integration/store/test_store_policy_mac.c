/* The policy MAC (policy_mac.h, docs/STORE.md "Policy MAC"): a database writer
 * without the KEK who edits a key's state, PIN failure count, lock time or
 * secret version, drops the MAC or copies another key's, is refused on every
 * read and every write of the row, and nothing in the store changes; a store
 * from before the MAC (schema v4) gets its MACs when it is migrated.
 * Built twice: on SQLite (edits with the sqlite3 shell) and, with
 * DUO_STORE_TEST_PG, on a real PostgreSQL (edits with psql, schema v9 -> v10). */
#include <sys/wait.h>

#include "duosign/mem.h"
#include "store_test_util.h"

static const uint8_t rcode[] = "REVOKE-CODE-0001";

/* A key made active, with three recorded PIN failures and a lock. */
static int locked_key(store_env *e, duo_key_info *k, uint8_t b) {
    duo_key_secrets s;
    duo_key_info got;
    duo_key_policy pol = {.state = DUO_KEY_STATE_LOCKED, .pin_failures = 3, .locked_until = e->now + 3 * 3600};
    uint8_t tok[24];
    int r;
    memset(tok, 0x50 + b, sizeof tok);
    make_key(k, &s, b, "C");
    if ((r = duo_keystore_key_insert_pending(e->ks, k, &s, NULL)) != DUO_OK ||
        (r = duo_keystore_token_insert(e->ks, tok, sizeof tok, "C", 600, NULL)) != DUO_OK ||
        (r = duo_keystore_key_activate(e->ks, k->key_id, tok, sizeof tok, rcode, sizeof rcode, NULL)) != DUO_OK ||
        (r = duo_keystore_key_get(e->ks, &got, NULL, k->key_id)) != DUO_OK ||
        (r = duo_keystore_key_update_policy(e->ks, k->key_id, got.version, &pol, NULL)) != DUO_OK)
        return r;
    duo_key_secrets_clear(&s);
    return duo_keystore_key_get(e->ks, k, NULL, k->key_id);
}

#ifdef DUO_STORE_TEST_PG
/* SQL literals of the two test key ids, and the shell that edits rows. */
#define KID1 "decode('01010101010101010101010101010101', 'hex')"
#define KID2 "decode('02020202020202020202020202020202', 'hex')"
#define SHELL "psql -X -q -v ON_ERROR_STOP=1 '%s' -c \"%s\" >/dev/null"
#define SHELL_READ "psql -X -q -At '%s' -c \"%s\""
#define HEX(col) "encode(" col ", 'hex')"
#else
#define KID1 "x'01010101010101010101010101010101'"
#define KID2 "x'02020202020202020202020202020202'"
#define SHELL "sqlite3 -bail '%s' \"%s\""
#define SHELL_READ "sqlite3 '%s' \"%s\""
#define HEX(col) "hex(" col ")"
#endif

/* Runs sql with the database's command-line shell (sqlite3, psql), as an
 * operator (or an intruder) with write access to the database would. */
static int shell_sql(const store_env *e, const char *sql) {
    char cmd[PATH_MAX + 1024];
    snprintf(cmd, sizeof cmd, SHELL, e->db, sql);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A fingerprint of everything stored for the keys and the audit log. */
static void store_digest(const store_env *e, char out[65]) {
    char cmd[PATH_MAX + 512];
    snprintf(
        cmd, sizeof cmd, SHELL_READ " | sha256sum", e->db,
        "SELECT " HEX(
            "key_id") ", state, pin_failures, locked_until, secret_version, version,"
                      " " HEX("policy_mac") ", " HEX(
                          "secret_pend_sealed") " FROM keys ORDER BY key_id;"
                                                " SELECT count(*) FROM audit; SELECT count(*) FROM retired_secrets");
    FILE *p = popen(cmd, "r");
    out[0] = '\0';
    if (p == NULL) return;
    if (fscanf(p, "%64s", out) != 1) out[0] = '\0';
    pclose(p);
}

/* Every way in to the edited row: refused with DUO_E_POLICY_MAC, the store
 * unchanged. */
static void check_refused(store_env *e, const duo_key_info *k) {
    duo_key_info got;
    duo_key_secrets sec;
    duo_key_policy pol = {.state = DUO_KEY_STATE_ACTIVE, .pin_failures = 0, .locked_until = 0};
    uint8_t next[32];
    char before[65], after[65];
    memset(next, 0x77, sizeof next);
    store_digest(e, before);
    DUO_CHECK(before[0] != '\0');
    DUO_EXPECT_ERR(duo_keystore_key_get(e->ks, &got, NULL, k->key_id), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_key_get(e->ks, &got, &sec, k->key_id), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_key_update_policy(e->ks, k->key_id, k->version, &pol, NULL), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_secret_rotate(e->ks, k->key_id, k->version, 0, next, NULL), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_sign_commit(e->ks, &got, k->key_id, next, NULL, NULL), DUO_E_POLICY_MAC);
    store_digest(e, after);
    DUO_CHECK_MSG(strcmp(before, after) == 0, "the store changed: %s -> %s", before, after);
}

/* Each covered field edited with the sqlite3 shell, one at a time. */
static void test_field_edits(void) {
    static const char *const edits[] = {
        "UPDATE keys SET pin_failures = 0 WHERE key_id = " KID1,
        "UPDATE keys SET state = 'active' WHERE key_id = " KID1,
        "UPDATE keys SET locked_until = 0 WHERE key_id = " KID1,
        "UPDATE keys SET secret_version = secret_version - 1 WHERE key_id = " KID1,
        "UPDATE keys SET policy_mac = NULL WHERE key_id = " KID1,
        "UPDATE keys SET policy_mac = substr(policy_mac, 1, 31) WHERE key_id = " KID1,
        /* the MAC of another key's row with the same fields (key id binding) */
        "UPDATE keys SET policy_mac = (SELECT policy_mac FROM keys WHERE key_id = " KID2 ") WHERE key_id = " KID1,
        /* out of the field's range: must not wrap to the MAC'd value */
        "UPDATE keys SET pin_failures = 4294967299 WHERE key_id = " KID1,
        "UPDATE keys SET pin_failures = -1 WHERE key_id = " KID1,
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        store_env e;
        duo_key_info k, other, got;
        DUO_REQUIRE(env_open(&e) == DUO_OK);
        DUO_REQUIRE(locked_key(&e, &k, 1) == DUO_OK);
        DUO_REQUIRE(locked_key(&e, &other, 2) == DUO_OK);
        DUO_REQUIRE(k.pin_failures == 3 && k.state == DUO_KEY_STATE_LOCKED);
        DUO_CHECK_MSG(shell_sql(&e, edits[i]) == 0, "edit %zu did not run", i);
        check_refused(&e, &k);
        /* the other key is untouched and still served */
        DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, other.key_id));
        /* ... also by a fresh connection (nothing cached above the store) */
        duo_keystore_free(e.ks);
        DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
        DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_POLICY_MAC);
        env_close(&e);
    }
}

/* Revocation reads the row first like every writer: an edited row is refused
 * there too (fail closed: the operator investigates, docs/STORE.md). */
static void test_revoke_edited(void) {
    store_env e;
    duo_key_info k, got;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(locked_key(&e, &k, 1) == DUO_OK);
    DUO_REQUIRE(shell_sql(&e, "UPDATE keys SET pin_failures = 0") == 0);
    DUO_EXPECT_ERR(duo_keystore_key_revoke(e.ks, k.key_id, NULL, 0, "admin", NULL), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_POLICY_MAC);
    env_close(&e);
}

/* Honest writes keep the MAC valid through every kind of update. */
static void test_honest_writes(void) {
    store_env e;
    duo_key_info k, got;
    duo_key_secrets sec;
    duo_key_policy pol = {.state = DUO_KEY_STATE_ACTIVE, .pin_failures = 0, .locked_until = 0};
    uint8_t next[32];
    memset(next, 0x55, sizeof next);
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(locked_key(&e, &k, 1) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, k.version, &pol, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK_OK(duo_keystore_secret_rotate(e.ks, k.key_id, got.version, 0, next, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &sec, k.key_id));
    DUO_CHECK_OK(duo_keystore_sign_commit(e.ks, &got, k.key_id, next, NULL, NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, &sec, k.key_id));
    DUO_CHECK_OK(duo_keystore_key_revoke(e.ks, k.key_id, NULL, 0, "lost", NULL));
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.state == DUO_KEY_STATE_REVOKED);
    duo_key_secrets_clear(&sec);
    env_close(&e);
}

/* A schema v4 store (no MAC column) is migrated: its rows get their MACs and
 * open; editing one afterwards is caught. */
static void test_migration(void) {
    store_env e;
    duo_key_info k, got;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_REQUIRE(locked_key(&e, &k, 1) == DUO_OK);
    duo_keystore_free(e.ks);
    e.ks = NULL;
#ifdef DUO_STORE_TEST_PG
    /* a v9 store: the column and its version row gone */
    DUO_REQUIRE(
        shell_sql(&e, "ALTER TABLE keys DROP COLUMN policy_mac; DELETE FROM schema_version WHERE version >= 10") == 0);
#else
    DUO_REQUIRE(shell_sql(&e, "ALTER TABLE keys DROP COLUMN policy_mac; PRAGMA user_version = 4;") == 0);
#endif
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    DUO_CHECK_OK(duo_keystore_key_get(e.ks, &got, NULL, k.key_id));
    DUO_CHECK(got.pin_failures == 3 && got.state == DUO_KEY_STATE_LOCKED);
    DUO_CHECK_OK(duo_keystore_key_update_policy(e.ks, k.key_id, got.version,
                                                &(duo_key_policy){.state = DUO_KEY_STATE_ACTIVE}, NULL));
    DUO_REQUIRE(shell_sql(&e, "UPDATE keys SET pin_failures = 2") == 0);
    DUO_EXPECT_ERR(duo_keystore_key_get(e.ks, &got, NULL, k.key_id), DUO_E_POLICY_MAC);
    /* a store with the column that claims an older schema was edited:
     * migrating it again would MAC whatever its rows now say */
    duo_keystore_free(e.ks);
    e.ks = NULL;
#ifdef DUO_STORE_TEST_PG
    DUO_REQUIRE(shell_sql(&e, "DELETE FROM schema_version WHERE version >= 10") == 0);
#else
    DUO_REQUIRE(shell_sql(&e, "PRAGMA user_version = 5;") == 0);
#endif
    DUO_EXPECT_ERR(env_open_ks(&e, &e.ks), DUO_E_POLICY_MAC);
    DUO_CHECK(e.ks == NULL);
    env_close(&e);
}

/* The MAC itself: deterministic, bound to each field. */
static void test_mac_fields(void) {
    duo_kek kek;
    duo_policy_key pk, pk2;
    duo_policy_fields f, g;
    uint8_t m[32], m2[32];
    memset(&kek, 0, sizeof kek);
    memset(kek.data, 0x42, sizeof kek.data);
    memset(&f, 0, sizeof f);
    memset(f.key_id, 9, sizeof f.key_id);
    f.state = DUO_KEY_STATE_ACTIVE;
    f.pin_failures = 2;
    f.locked_until = 17;
    f.secret_version = 5;
    DUO_REQUIRE(duo_policy_key_derive(&pk, &kek) == DUO_OK);
    DUO_REQUIRE(duo_policy_key_derive(&pk2, &kek) == DUO_OK);
    DUO_CHECK(duo_ct_eq(pk.k, pk2.k, sizeof pk.k));
    DUO_CHECK(!duo_ct_eq(pk.k, kek.data, sizeof pk.k)); /* derived, not the KEK itself */
    DUO_CHECK_OK(duo_policy_mac(m, &pk, &f));
    DUO_CHECK_OK(duo_policy_mac_check(&pk, &f, m, sizeof m));
    DUO_EXPECT_ERR(duo_policy_mac_check(&pk, &f, m, 31), DUO_E_POLICY_MAC);
    DUO_EXPECT_ERR(duo_policy_mac_check(&pk, &f, NULL, 0), DUO_E_POLICY_MAC);
    for (int i = 0; i < 6; i++) {
        g = f;
        if (i == 5) g.moved = 1; /* schema v12: the inner channel's flag */
        if (i == 0) g.key_id[15] ^= 1;
        if (i == 1) g.state = DUO_KEY_STATE_LOCKED;
        if (i == 2) g.pin_failures = 0;
        if (i == 3) g.locked_until = 0;
        if (i == 4) g.secret_version = 4;
        DUO_CHECK_OK(duo_policy_mac(m2, &pk, &g));
        DUO_CHECK_MSG(!duo_ct_eq(m, m2, sizeof m), "field %d not covered", i);
    }
    g = f;
    g.moved = 2; /* only 0 or 1 */
    DUO_EXPECT_ERR(duo_policy_mac(m2, &pk, &g), DUO_E_INVALID_ARG);
    duo_policy_key_clear(&pk);
    duo_policy_key_clear(&pk2);
}

int main(void) {
    DUO_RUN(test_mac_fields);
    DUO_RUN(test_field_edits);
    DUO_RUN(test_revoke_edited);
    DUO_RUN(test_honest_writes);
    DUO_RUN(test_migration);
    return duo_test_finish();
}
