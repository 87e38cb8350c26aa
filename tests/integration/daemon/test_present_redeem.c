/* Presentation codes through the store and the daemon's redemption function
 * (cloud_half/store/docstore.h, cloud_half/daemon/present.h): the document
 * registry, a code's single use under two concurrent redeemers, expiry at
 * 180 s on the store's clock (the test's, never a sleep), the wrong document
 * type, an inactive key, malformed codes, and the per relying party limits
 * on an injected millisecond clock. Every refusal leaves the code as it was. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "../store/store_test_util.h"
#include "docstore.h"
#include "present.h"
#include "wire.h"

static const uint8_t tok[] = "tok-0123456789abcdef-1";
static const uint8_t rcode[] = "REVOKE-CODE-0001";

static int64_t test_ms;
static int64_t test_clock_ms(void *d) {
    (void)d;
    return test_ms;
}

static uint64_t audit_count(duo_keystore *ks) {
    uint64_t n = 0;
    if (duo_keystore_audit_verify(ks, NULL, &n, NULL) != DUO_OK) return UINT64_MAX;
    return n;
}

/* An active key of citizen c, id byte b. */
static void active_key(store_env *e, uint8_t b, const char *c, uint8_t key_id[16]) {
    duo_key_info k;
    duo_key_secrets s;
    uint8_t t[sizeof tok];
    memcpy(t, tok, sizeof t);
    t[0] = (uint8_t)('a' + b);
    make_key(&k, &s, b, c);
    DUO_REQUIRE(duo_keystore_key_insert_pending(e->ks, &k, &s, NULL) == DUO_OK);
    DUO_REQUIRE(duo_keystore_token_insert(e->ks, t, sizeof t, c, 600, NULL) == DUO_OK);
    DUO_REQUIRE(duo_keystore_key_activate(e->ks, k.key_id, t, sizeof t, rcode, sizeof rcode, NULL) == DUO_OK);
    memcpy(key_id, k.key_id, 16);
    duo_key_secrets_clear(&s);
}

static duo_doc_row *passport(const char *citizen) {
    static duo_doc_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.citizen_id, sizeof row.citizen_id, "%s", citizen);
    strcpy(row.doc_type, "passport");
    strcpy(row.attrs[0].name, "name");
    strcpy(row.attrs[0].value, "Olena Petrenko");
    strcpy(row.attrs[1].name, "birth_date");
    strcpy(row.attrs[1].value, "1990-04-01");
    row.n_attrs = 2;
    memcpy(row.photo, "\x89PNG", 4);
    row.photo_len = 4;
    return &row;
}

/* Issues a code for key/citizen and document; fills *pc. */
static int issue(store_env *e, duo_present_code *pc, const uint8_t key_id[16], const char *citizen, const char *doc) {
    duo_code_row row;
    int r;
    memset(&row, 0, sizeof row);
    if ((r = duo__present_draw(pc)) != DUO_OK) return r;
    memcpy(row.code_hash, pc->text_hash, 32);
    memcpy(row.barcode_hash, pc->barcode_hash, 32);
    memcpy(row.key_id, key_id, 16);
    snprintf(row.citizen_id, sizeof row.citizen_id, "%s", citizen);
    snprintf(row.doc_type, sizeof row.doc_type, "%s", doc);
    duo_audit_event ev = {.kind = "code.issue", .key_id = key_id, .citizen_id = citizen, .detail = doc};
    return duo_keystore_code_insert(e->ks, &row, &ev);
}

#ifdef DUO_STORE_TEST_PG
static int redeemed_rows(store_env *e) {
    PGconn *c = PQconnectdb(e->db);
    PGresult *res = PQstatus(c) == CONNECTION_OK
                        ? PQexec(c, "SELECT count(*) FROM presentation_codes WHERE redeemed_at IS NOT NULL")
                        : NULL;
    int n = res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK ? atoi(PQgetvalue(res, 0, 0)) : -1;
    PQclear(res);
    PQfinish(c);
    return n;
}
#else
static int redeemed_rows(store_env *e) {
    sqlite3 *db;
    sqlite3_stmt *q;
    int n = -1;
    if (sqlite3_open(e->db, &db) != SQLITE_OK) return -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM presentation_codes WHERE redeemed_at IS NOT NULL", -1, &q, NULL) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}
#endif

static duo_redeem_limit *roomy_limit(void) {
    duo_redeem_limit *l = NULL;
    duo_redeem_limit_config c = {1000, 1000, 1000, 1000, test_clock_ms, NULL};
    if (duo__redeem_limit_new(&l, &c) != DUO_OK) return NULL;
    return l;
}

static void test_registry(void) {
    store_env e;
    duo_doc_row *got = calloc(1, sizeof *got), *row;
    DUO_REQUIRE(got != NULL && env_open(&e) == DUO_OK);
    duo_audit_event ev = {.kind = "citizen.doc.set", .citizen_id = "C1", .detail = "passport"};
    uint64_t n0 = audit_count(e.ks);
    DUO_CHECK_OK(duo_keystore_doc_set(e.ks, passport("C1"), &ev));
    DUO_CHECK(audit_count(e.ks) == n0 + 1);
    DUO_CHECK_OK(duo_keystore_doc_get(e.ks, got, "C1", "passport"));
    DUO_CHECK(got->n_attrs == 2 && strcmp(got->attrs[1].value, "1990-04-01") == 0 && got->photo_len == 4);
    DUO_EXPECT_ERR(duo_keystore_doc_get(e.ks, got, "C1", "driving_licence"), DUO_E_DOC_NOT_FOUND);
    DUO_EXPECT_ERR(duo_keystore_doc_get(e.ks, got, "C2", "passport"), DUO_E_DOC_NOT_FOUND);
    /* bad names and values: refused, nothing written */
    row = passport("C1");
    strcpy(row->attrs[1].name, "Birth-Date");
    DUO_EXPECT_ERR(duo_keystore_doc_set(e.ks, row, &ev), DUO_E_DOC_ATTR);
    row = passport("C1");
    strcpy(row->attrs[1].name, "name");
    DUO_EXPECT_ERR(duo_keystore_doc_set(e.ks, row, &ev), DUO_E_DOC_ATTR);
    row = passport("C1");
    strcpy(row->attrs[1].value, "line\nbreak");
    DUO_EXPECT_ERR(duo_keystore_doc_set(e.ks, row, &ev), DUO_E_DOC_ATTR);
    row = passport("C1");
    strcpy(row->doc_type, "Passport");
    DUO_EXPECT_ERR(duo_keystore_doc_set(e.ks, row, &ev), DUO_E_INVALID_ARG);
    DUO_CHECK(audit_count(e.ks) == n0 + 1);
    /* replace keeps created_at, moves updated_at */
    e.now += 50;
    row = passport("C1");
    strcpy(row->attrs[0].value, "Olena Kovalenko");
    DUO_CHECK_OK(duo_keystore_doc_set(e.ks, row, &ev));
    DUO_CHECK_OK(duo_keystore_doc_get(e.ks, got, "C1", "passport"));
    DUO_CHECK(strcmp(got->attrs[0].value, "Olena Kovalenko") == 0 && got->updated_at == got->created_at + 50);
    DUO_CHECK_OK(duo_keystore_doc_remove(e.ks, "C1", "passport", &ev));
    DUO_EXPECT_ERR(duo_keystore_doc_remove(e.ks, "C1", "passport", &ev), DUO_E_DOC_NOT_FOUND);
    free(got);
    env_close(&e);
}

static void test_redeem_once_expiry_mismatch(void) {
    store_env e;
    uint8_t kid[16];
    duo_present_code pc, pc2, pc3;
    duo_doc_row *doc = calloc(1, sizeof *doc);
    duo_code_row row;
    char why[256];
    duo_redeem_limit *lim = roomy_limit();
    DUO_REQUIRE(doc != NULL && lim != NULL && env_open(&e) == DUO_OK);
    active_key(&e, 1, "C1", kid);
    DUO_REQUIRE(duo_keystore_doc_set(e.ks, passport("C1"), NULL) == DUO_OK);
    /* a document the citizen does not have: no code */
    DUO_EXPECT_ERR(issue(&e, &pc, kid, "C1", "driving_licence"), DUO_E_DOC_NOT_FOUND);
    DUO_CHECK_OK(issue(&e, &pc, kid, "C1", "passport"));
    DUO_CHECK(strlen(pc.text) == 32 && strlen(pc.barcode) == 13 && duo_wire_ean13_check(pc.barcode) == pc.barcode[12]);
    uint64_t n0 = audit_count(e.ks);
    /* wrong document type: refused, audited, code untouched */
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "id_card", doc, &row, why, sizeof why),
                   DUO_E_CODE_DOC_MISMATCH);
    DUO_CHECK(strstr(why, "another document") != NULL && redeemed_rows(&e) == 0 && audit_count(e.ks) == n0 + 1);
    /* malformed forms: a bad check digit, a short code, a foreign character */
    char bad[16];
    memcpy(bad, pc.barcode, 14);
    bad[12] = (char)('0' + (bad[12] - '0' + 1) % 10);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", bad, "passport", doc, &row, why, sizeof why),
                   DUO_E_CODE_UNKNOWN);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", "ABC", "passport", doc, &row, why, sizeof why),
                   DUO_E_CODE_UNKNOWN);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1", "passport", doc, &row,
                                       why, sizeof why),
                   DUO_E_CODE_UNKNOWN);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "passport", doc, &row,
                                       why, sizeof why),
                   DUO_E_CODE_UNKNOWN);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "Pass port", doc, &row, why, sizeof why),
                   DUO_E_BAD_FIELD);
    DUO_CHECK(redeemed_rows(&e) == 0);
    /* lower case with a dash is the same code; it is redeemed once */
    char typed[128];
    snprintf(typed, sizeof typed, "%.16s-%s", pc.text, pc.text + 16);
    for (char *c = typed; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    e.now += 179;
    uint64_t n1 = audit_count(e.ks);
    DUO_CHECK_OK(duo__present_redeem(e.ks, lim, "bank", typed, "passport", doc, &row, why, sizeof why));
    DUO_CHECK(strcmp(doc->citizen_id, "C1") == 0 && doc->n_attrs == 2 && strcmp(doc->attrs[0].name, "name") == 0);
    DUO_CHECK(row.issued_at == e.now - 179 && memcmp(row.key_id, kid, 16) == 0);
    DUO_CHECK(audit_count(e.ks) == n1 + 1 && redeemed_rows(&e) == 1);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "passport", doc, &row, why, sizeof why),
                   DUO_E_CODE_USED);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "border", pc.barcode, "passport", doc, &row, why, sizeof why),
                   DUO_E_CODE_USED);
    /* the barcode form redeems; 180 s after issue a code is dead */
    DUO_CHECK_OK(issue(&e, &pc2, kid, "C1", "passport"));
    DUO_CHECK_OK(issue(&e, &pc3, kid, "C1", "passport"));
    DUO_CHECK_OK(duo__present_redeem(e.ks, lim, "border", pc2.barcode, "passport", doc, &row, why, sizeof why));
    e.now += 180;
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc3.text, "passport", doc, &row, why, sizeof why),
                   DUO_E_CODE_EXPIRED);
    DUO_CHECK(strstr(why, "180 s") != NULL && redeemed_rows(&e) == 2);
    /* unused and used codes are purged once expired */
    size_t n = 0;
    DUO_CHECK_OK(duo_keystore_code_purge(e.ks, &n, e.now + 1));
    DUO_CHECK(n == 3);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc3.text, "passport", doc, &row, why, sizeof why),
                   DUO_E_CODE_UNKNOWN);
    duo__redeem_limit_free(lim);
    free(doc);
    env_close(&e);
}

static void test_inactive_key(void) {
    store_env e;
    uint8_t kid[16];
    duo_present_code pc;
    duo_doc_row *doc = calloc(1, sizeof *doc);
    duo_code_row row;
    duo_redeem_limit *lim = roomy_limit();
    DUO_REQUIRE(doc != NULL && lim != NULL && env_open(&e) == DUO_OK);
    active_key(&e, 2, "C2", kid);
    DUO_REQUIRE(duo_keystore_doc_set(e.ks, passport("C2"), NULL) == DUO_OK);
    DUO_CHECK_OK(issue(&e, &pc, kid, "C2", "passport"));
    /* revoked after the code was made: the code dies with the key */
    DUO_CHECK_OK(duo_keystore_key_revoke(e.ks, kid, rcode, sizeof rcode, "test", NULL));
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "passport", doc, &row, NULL, 0),
                   DUO_E_KEY_NOT_ACTIVE);
    DUO_EXPECT_ERR(issue(&e, &pc, kid, "C2", "passport"), DUO_E_KEY_NOT_ACTIVE);
    DUO_CHECK(redeemed_rows(&e) == 0);
    duo__redeem_limit_free(lim);
    free(doc);
    env_close(&e);
}

/* Two redeemers, each on its own store connection, released together. */
typedef struct racer {
    store_env *e;
    duo_keystore *ks;
    duo_redeem_limit *lim;
    const char *code, *rp;
    pthread_barrier_t *go;
    int r;
} racer;

static void *race(void *p) {
    racer *x = p;
    duo_doc_row *doc = calloc(1, sizeof *doc);
    duo_code_row row;
    pthread_barrier_wait(x->go);
    x->r =
        doc == NULL ? DUO_E_NOMEM : duo__present_redeem(x->ks, x->lim, x->rp, x->code, "passport", doc, &row, NULL, 0);
    free(doc);
    return NULL;
}

static void test_concurrent_redeemers(void) {
    store_env e;
    uint8_t kid[16];
    duo_keystore *ks2 = NULL;
    duo_redeem_limit *lim = roomy_limit();
    DUO_REQUIRE(lim != NULL && env_open(&e) == DUO_OK);
    DUO_REQUIRE(env_open_ks(&e, &ks2) == DUO_OK);
    active_key(&e, 3, "C3", kid);
    DUO_REQUIRE(duo_keystore_doc_set(e.ks, passport("C3"), NULL) == DUO_OK);
    for (int round = 0; round < 20; round++) {
        duo_present_code pc;
        pthread_barrier_t go;
        pthread_t t[2];
        DUO_REQUIRE(issue(&e, &pc, kid, "C3", "passport") == DUO_OK);
        pthread_barrier_init(&go, NULL, 2);
        racer a = {&e, e.ks, lim, pc.text, "bank", &go, 0}, b = {&e, ks2, lim, pc.barcode, "border", &go, 0};
        pthread_create(&t[0], NULL, race, &a);
        pthread_create(&t[1], NULL, race, &b);
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
        pthread_barrier_destroy(&go);
        DUO_CHECK_MSG((a.r == DUO_OK) + (b.r == DUO_OK) == 1, "round %d: %s / %s", round, duo_err_name(a.r),
                      duo_err_name(b.r));
        DUO_CHECK(a.r == DUO_E_CODE_USED || b.r == DUO_E_CODE_USED);
    }
    DUO_CHECK(redeemed_rows(&e) == 20);
    duo_keystore_free(ks2);
    duo__redeem_limit_free(lim);
    env_close(&e);
}

static void test_rate_limits(void) {
    store_env e;
    uint8_t kid[16];
    duo_present_code pc;
    duo_doc_row *doc = calloc(1, sizeof *doc);
    duo_code_row row;
    duo_redeem_limit *lim = NULL;
    /* 1 attempt/s, burst 3; 3600 misses/h (one per second), burst 2 */
    duo_redeem_limit_config c = {1, 3, 3600, 2, test_clock_ms, NULL};
    test_ms = 1000000;
    DUO_REQUIRE(doc != NULL && duo__redeem_limit_new(&lim, &c) == DUO_OK && env_open(&e) == DUO_OK);
    active_key(&e, 4, "C4", kid);
    DUO_REQUIRE(duo_keystore_doc_set(e.ks, passport("C4"), NULL) == DUO_OK);
    DUO_REQUIRE(issue(&e, &pc, kid, "C4", "passport") == DUO_OK);
    /* two guesses use up the misses: the right code is then refused too */
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "guesser", "0000000000000", "passport", doc, &row, NULL, 0),
                   DUO_E_CODE_UNKNOWN);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "guesser", "4006381333931", "passport", doc, &row, NULL, 0),
                   DUO_E_CODE_UNKNOWN);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "guesser", pc.text, "passport", doc, &row, NULL, 0),
                   DUO_E_RATE_LIMITED);
    DUO_CHECK(redeemed_rows(&e) == 0);
    /* another relying party is not affected; its burst of 3 then runs out */
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "id_card", doc, &row, NULL, 0),
                   DUO_E_CODE_DOC_MISMATCH);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "id_card", doc, &row, NULL, 0),
                   DUO_E_CODE_DOC_MISMATCH);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "id_card", doc, &row, NULL, 0),
                   DUO_E_CODE_DOC_MISMATCH);
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "bank", pc.text, "passport", doc, &row, NULL, 0), DUO_E_RATE_LIMITED);
    test_ms += 1000; /* one token back */
    DUO_CHECK_OK(duo__present_redeem(e.ks, lim, "bank", pc.text, "passport", doc, &row, NULL, 0));
    /* the guesser's misses refill at one per second */
    test_ms += 1000;
    DUO_EXPECT_ERR(duo__present_redeem(e.ks, lim, "guesser", pc.text, "passport", doc, &row, NULL, 0), DUO_E_CODE_USED);
    duo__redeem_limit_free(lim);
    free(doc);
    env_close(&e);
}

int main(void) {
    DUO_RUN(test_registry);
    DUO_RUN(test_redeem_once_expiry_mismatch);
    DUO_RUN(test_inactive_key);
    DUO_RUN(test_concurrent_redeemers);
    DUO_RUN(test_rate_limits);
    return duo_test_finish();
}
