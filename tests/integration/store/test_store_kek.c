/* The store's KEK ring and re-sealing (keystore.h), and kek.ref (kekref.h):
 * every sealed column re-sealed value by value with secrets unchanged; a
 * value that does not open stops the batch with its specific error and
 * nothing written; a value naming a KEK the store lacks; each field of
 * kek.ref edited is refused with its specific error. */
#include <errno.h>
#include <sys/stat.h>

#include "duosign/mem.h"
#include "kekref.h"
#include "sealed_columns.h"
#include "store_test_util.h"

#ifdef DUO_STORE_TEST_PG /* the PostgreSQL build: the same opens through its driver */
#define duo_keystore_open_sqlite(out, loc, kek, cfg) \
    duo_keystore_open(out, duo_keystore_driver_find("postgresql"), loc, kek, cfg)
#endif

/* Two keys with retired secrets and a pending one: every sealed column. */
static void fill(store_env *e, duo_key_secrets sec[2]) {
    duo_key_info k;
    uint8_t next[DUO_DEVICE_SECRET_BYTES];
    for (int i = 0; i < 2; i++) {
        make_key(&k, &sec[i], (uint8_t)(1 + i), i ? "bob" : "alice");
        DUO_REQUIRE(duo_keystore_key_insert_pending(e->ks, &k, &sec[i], NULL) == DUO_OK);
        memset(next, 0x70 + i, sizeof next);
        DUO_REQUIRE(duo_keystore_secret_rotate(e->ks, k.key_id, 1, 0, next, NULL) == DUO_OK);
        DUO_REQUIRE(duo_keystore_secret_rotate(e->ks, k.key_id, 2, 1, NULL, NULL) == DUO_OK);
        memset(next, 0x78 + i, sizeof next);
        DUO_REQUIRE(duo_keystore_secret_rotate(e->ks, k.key_id, 3, 0, next, NULL) == DUO_OK);
        DUO_REQUIRE(duo_keystore_key_get(e->ks, &k, &sec[i], k.key_id) == DUO_OK);
    }
}

static void check_secrets(duo_keystore *ks, const duo_key_secrets sec[2]) {
    duo_key_info k;
    duo_key_secrets *got = duo_secure_malloc(sizeof *got);
    DUO_REQUIRE(got != NULL);
    for (int i = 0; i < 2; i++) {
        uint8_t id[DUO_KEY_ID_BYTES];
        memset(id, 1 + i, sizeof id);
        DUO_CHECK_OK(duo_keystore_key_get(ks, &k, got, id));
        DUO_CHECK(duo_ct_eq(got, &sec[i], sizeof *got));
    }
    duo_key_secrets_clear(got);
    duo_secure_free(got);
}

static duo_kek kek_with(uint8_t b, uint32_t id) {
    duo_kek k;
    memset(&k, 0, sizeof k);
    memset(k.data, b, sizeof k.data);
    k.id = id;
    return k;
}

static void test_reseal_all_columns(void) {
    store_env e;
    duo_key_secrets sec[2];
    duo_kek_census c;
    size_t n = 0, total = 0, batches = 0;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    fill(&e, sec);
    DUO_CHECK_OK(duo_keystore_kek_census(e.ks, &c));
    DUO_CHECK(c.n_ids == 1 && c.ids[0] == 0 && c.unopened == 0);
    /* 2 keys x 5 columns (a pending secret set) + 1 retired secret each */
    DUO_CHECK(c.total == 2 * 5 + 2 * 1);
    duo_kek b = kek_with(0xbb, 1);
    DUO_EXPECT_ERR(duo_keystore_reseal(e.ks, 1, 1, &n, NULL, 0), DUO_E_NOT_FOUND); /* not in the ring yet */
    DUO_CHECK_OK(duo_keystore_kek_add(e.ks, &b));
    DUO_EXPECT_ERR(duo_keystore_kek_add(e.ks, &b), DUO_E_EXISTS);
    do {
        DUO_REQUIRE(duo_keystore_reseal(e.ks, 1, 1, &n, NULL, 0) == DUO_OK);
        total += n;
        batches++;
        check_secrets(e.ks, sec); /* opens half way, each value under its own KEK */
    } while (n > 0);
    DUO_CHECK(total == c.total && batches == total + 1);
    DUO_CHECK_OK(duo_keystore_kek_census(e.ks, &c));
    DUO_CHECK(c.n_ids == 1 && c.ids[0] == 1 && c.counts[0] == total && c.unopened == 0);
    /* under the new KEK alone: everything opens; under the old alone: nothing */
    duo_keystore *nb = NULL, *old = NULL;
    duo_keystore_config cfg;
    env_cfg(&e, &cfg);
    DUO_REQUIRE(duo_keystore_open_sqlite(&nb, e.db, &b, &cfg) == DUO_OK);
    check_secrets(nb, sec);
    DUO_REQUIRE(duo_keystore_open_sqlite(&old, e.db, &e.kek, &cfg) == DUO_OK);
    duo_key_info k;
    duo_key_secrets *got = duo_secure_malloc(sizeof *got);
    uint8_t id[DUO_KEY_ID_BYTES];
    memset(id, 1, sizeof id);
    DUO_REQUIRE(got != NULL);
    /* the row's policy MAC (keyed from the KEK, moved to the new one by the
     * last reseal) fails first: nothing is opened */
    DUO_EXPECT_ERR(duo_keystore_key_get(old, &k, got, id), DUO_E_POLICY_MAC);
    DUO_CHECK(duo_ct_is_zero(got, sizeof *got));
    duo_secure_free(got);
    DUO_CHECK_OK(duo_keystore_kek_census(old, &c));
    DUO_CHECK(c.unopened == c.total && c.first_error == DUO_E_KEK_UNKNOWN);
    duo_keystore_free(nb);
    duo_keystore_free(old);
    duo_key_secrets_clear(&sec[0]);
    duo_key_secrets_clear(&sec[1]);
    env_close(&e);
}

/* Every sealed value of the database, hex, in one string (the stored state). */
static void snapshot(const store_env *e, char *out, size_t cap) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    size_t o = 0;
    out[0] = '\0';
    DUO_REQUIRE(sqlite3_open(e->db, &db) == SQLITE_OK);
    DUO_REQUIRE(sqlite3_prepare_v2(db,
                                   "SELECT hex(x1_sealed) || hex(p_sealed) || hex(q_sealed) || hex(secret_cur_sealed) "
                                   "|| hex(coalesce(secret_pend_sealed, x'')) FROM keys UNION ALL SELECT hex(sealed) "
                                   "FROM retired_secrets",
                                   -1, &st, NULL) == SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && o + 1 < cap)
        o += (size_t)snprintf(out + o, cap - o, "%s|", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* Flips one byte of alice's sealed x1 (through a raw connection). */
static void flip_x1(const store_env *e, size_t at) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    uint8_t v[DUO_SEALED_MAX];
    int n = 0;
    DUO_REQUIRE(sqlite3_open(e->db, &db) == SQLITE_OK);
    DUO_REQUIRE(sqlite3_prepare_v2(db, "SELECT x1_sealed FROM keys ORDER BY key_id LIMIT 1", -1, &st, NULL) ==
                SQLITE_OK);
    DUO_REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    n = sqlite3_column_bytes(st, 0);
    DUO_REQUIRE(n > (int)at && n <= (int)sizeof v);
    memcpy(v, sqlite3_column_blob(st, 0), (size_t)n);
    sqlite3_finalize(st);
    v[at] ^= 1;
    DUO_REQUIRE(sqlite3_prepare_v2(db,
                                   "UPDATE keys SET x1_sealed = ?1 WHERE rowid = (SELECT rowid FROM keys ORDER BY "
                                   "key_id LIMIT 1)",
                                   -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, v, n, SQLITE_TRANSIENT);
    DUO_REQUIRE(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A value that does not open stops its batch: the specific error, and no
 * sealed value of the database changes. */
static void test_reseal_refuses_edited_value(void) {
    store_env e;
    duo_key_secrets sec[2];
    static char before[16384], after[16384];
    size_t n = 9;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    fill(&e, sec);
    duo_kek b = kek_with(0xbc, 1);
    DUO_REQUIRE(duo_keystore_kek_add(e.ks, &b) == DUO_OK);
    /* each part of the value: format, KEK id, nonce, ciphertext, tag */
    static const struct {
        size_t at;
        int want;
    } cases[] = {{0, DUO_E_STATE_CORRUPT},
                 {3, DUO_E_KEK_UNKNOWN},
                 /* id 256: no such KEK */ {DUO_SEAL_HEADER_LEN, DUO_E_STATE_CORRUPT},
                 {DUO_SEAL_HEADER_LEN + DUO_SEAL_NONCE_LEN + 3, DUO_E_STATE_CORRUPT},
                 {DUO_SEAL_HEADER_LEN + DUO_SEAL_NONCE_LEN + DUO_SCALAR_BYTES + 2, DUO_E_STATE_CORRUPT}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        flip_x1(&e, cases[i].at);
        snapshot(&e, before, sizeof before);
        char why[256];
        DUO_EXPECT_ERR(duo_keystore_reseal(e.ks, 1, 64, &n, why, sizeof why), cases[i].want);
        DUO_CHECK(n == 0);
        DUO_CHECK(strcmp(why, "keys.x1_sealed of 01010101010101010101010101010101, version 4") == 0);
        snapshot(&e, after, sizeof after);
        DUO_CHECK(strcmp(before, after) == 0); /* bob's x1, in the same batch, unchanged too */
        flip_x1(&e, cases[i].at);
    }
    /* restored: the rotation goes through */
    do DUO_REQUIRE(duo_keystore_reseal(e.ks, 1, 64, &n, NULL, 0) == DUO_OK);
    while (n > 0);
    check_secrets(e.ks, sec);
    duo_key_secrets_clear(&sec[0]);
    duo_key_secrets_clear(&sec[1]);
    env_close(&e);
}

/* Every sealed column of the schema is in the table (a new one must be). */
static void test_sealed_columns_cover_schema(void) {
    store_env e;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
    DUO_REQUIRE(sqlite3_prepare_v2(db,
                                   "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
                                   "WHERE m.type = 'table' AND (p.name LIKE '%sealed%')",
                                   -1, &st, NULL) == SQLITE_OK);
    int found = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0), *c = (const char *)sqlite3_column_text(st, 1);
        int listed = 0;
        for (size_t i = 0; i < duo_sealed_columns_count; i++)
            listed |= strcmp(duo_sealed_columns[i].table, t) == 0 && strcmp(duo_sealed_columns[i].column, c) == 0;
        if (!listed) fprintf(stderr, "sealed column %s.%s is not in duo_sealed_columns\n", t, c);
        DUO_CHECK(listed);
        found++;
    }
    DUO_CHECK(found == (int)duo_sealed_columns_count);
    sqlite3_finalize(st);
    sqlite3_close(db);
    env_close(&e);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    DUO_REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* kek.ref: each field edited is refused with its own error. */
static void test_kekref_fields(void) {
    store_env e;
    duo_kek_refs refs, back;
    duo_kek k;
    char err[1024], path[PATH_MAX + 32], line[2048];
    DUO_REQUIRE(env_mkdir(&e) == 0);
    /* no kek.ref: the legacy default */
    DUO_CHECK_OK(duo_kek_refs_read(&refs, err, sizeof err, e.dir));
    DUO_CHECK(refs.current.id == 0 && strcmp(refs.current.ref, "file:kek") == 0 && !refs.has_next &&
              refs.current.check_len == 0);
    /* a new file KEK, written and read back */
    memset(&refs, 0, sizeof refs);
    refs.current.id = 4;
    snprintf(refs.current.ref, sizeof refs.current.ref, "file:k4");
    DUO_CHECK_OK(duo_kek_slot_create(&k, &refs.current, NULL, err, sizeof err, e.dir));
    DUO_CHECK(k.id == 4 && refs.current.check_len > 0);
    DUO_EXPECT_ERR(duo_kek_slot_create(&k, &refs.current, NULL, err, sizeof err, e.dir), DUO_E_EXISTS);
    DUO_CHECK_OK(duo_kek_refs_write(&refs, err, sizeof err, e.dir));
    snprintf(path, sizeof path, "%s/kek.ref", e.dir);
    struct stat st;
    DUO_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    DUO_CHECK_OK(duo_kek_refs_read(&back, err, sizeof err, e.dir));
    DUO_CHECK(back.current.id == 4 && strcmp(back.current.ref, "file:k4") == 0 &&
              back.current.check_len == refs.current.check_len &&
              memcmp(back.current.check, refs.current.check, back.current.check_len) == 0);
    DUO_CHECK_OK(duo_kek_slot_load(&k, err, sizeof err, e.dir, &back.current));
    /* the id edited: the check does not open under it */
    back.current.id = 5;
    DUO_EXPECT_ERR(duo_kek_slot_load(&k, err, sizeof err, e.dir, &back.current), DUO_E_KEK_WRONG);
    DUO_CHECK(strstr(err, "is not KEK id 5") != NULL);
    DUO_CHECK(duo_ct_is_zero(k.data, sizeof k.data));
    back.current.id = 4;
    /* each byte of the check edited */
    for (size_t i = 0; i < back.current.check_len; i++) {
        back.current.check[i] ^= 0x20;
        int r = duo_kek_slot_load(&k, err, sizeof err, e.dir, &back.current);
        DUO_CHECK(r == DUO_E_KEK_WRONG);
        back.current.check[i] ^= 0x20;
    }
    /* the reference edited to another (valid) KEK file */
    duo_kek_slot other = {.id = 9};
    snprintf(other.ref, sizeof other.ref, "file:k9");
    DUO_CHECK_OK(duo_kek_slot_create(&k, &other, NULL, err, sizeof err, e.dir));
    snprintf(back.current.ref, sizeof back.current.ref, "file:k9");
    DUO_EXPECT_ERR(duo_kek_slot_load(&k, err, sizeof err, e.dir, &back.current), DUO_E_KEK_WRONG);
    /* a reference of no known kind, one with white space */
    snprintf(back.current.ref, sizeof back.current.ref, "http://x");
    DUO_EXPECT_ERR(duo_kek_slot_load(&k, err, sizeof err, e.dir, &back.current), DUO_E_INVALID_ARG);
    snprintf(refs.current.ref, sizeof refs.current.ref, "file:a b");
    DUO_EXPECT_ERR(duo_kek_refs_write(&refs, err, sizeof err, e.dir), DUO_E_INVALID_ARG);
    /* lines that do not parse */
    static const char *const bad[] = {
        "current x file:k4 -\n",
        "current 4\n",
        "next 4 file:k4 -\n",
        "current 4 file:k4 zz\n",
        "current -1 file:k4 -\n",
        "current 4 file:k4 -\nnext 5 file:k5\n",
        "current 4 file:k4 -\nfoo 1 a -\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(line, sizeof line, "%s", bad[i]);
        write_text(path, line);
        DUO_EXPECT_ERR(duo_kek_refs_read(&back, err, sizeof err, e.dir), DUO_E_STATE_CORRUPT);
    }
    duo_kek_clear(&k);
    env_close(&e);
}

int main(void) {
    DUO_RUN(test_reseal_all_columns);
#ifdef DUO_STORE_TEST_PG /* the others read and edit SQLite's file directly */
    (void)test_reseal_refuses_edited_value, (void)test_sealed_columns_cover_schema, (void)test_kekref_fields;
    return duo_test_finish();
#endif
    DUO_RUN(test_reseal_refuses_edited_value);
    DUO_RUN(test_sealed_columns_cover_schema);
    DUO_RUN(test_kekref_fields);
    return duo_test_finish();
}
