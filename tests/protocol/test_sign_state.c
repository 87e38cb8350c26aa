/* Round 1's exported state (duo_p1_sign_export/import, DESIGN 8.6: round 2
 * on another node). On the curve of DUO_TEST_CURVE:
 *  - round 1 on one engine session, round 2 on the imported copy: the
 *    signature verifies under Q; the exporting session is spent (k1 wiped,
 *    round 2 refused there);
 *  - each field of the state changed by one bit: the format byte, key id,
 *    device nonce, digest and pre-sid are refused at import with the
 *    specific error, before k1 is used; a changed R2 commitment or sid
 *    imports but round 2 is refused (bad commitment, session mismatch) with
 *    nothing decrypted; k1 out of range (0, q) is refused at import;
 *  - the state imported on another key: DUO_E_SESSION_MISMATCH;
 *  - a changed k1 in range imports and its signature fails under Q
 *    (DUO_E_PEER_CHEATED): the store's AEAD seal is what stops that
 *    (keystore.c, AAD key id || sid; test_pg_nodes edits sealed rows). */
#include "b2b.h"
#include "p1_internal.h"

enum {
    OFF_FORMAT = 0,
    OFF_KEY_ID = 1,
    OFF_NONCE = OFF_KEY_ID + DUO_KEY_ID_BYTES,
    OFF_DIGEST = OFF_NONCE + DUO_NONCE_BYTES,
    OFF_R2C = OFF_DIGEST + DUO_DIGEST_BYTES,
    OFF_PRESID = OFF_R2C + 32,
    OFF_SID = OFF_PRESID + 32,
    OFF_K1 = OFF_SID + DUO_SID_BYTES,
};
_Static_assert(OFF_K1 + 32 == DUO_P1_SIGN_STATE_BYTES, "the state's layout");

static b2b_enroll_run g_er;

/* Round 1 for a fresh signature, stopped before round 2 is delivered. */
static void round1(b2b_sign_run *sr, const b2b_enroll_run *er, const uint8_t digest[32]) {
    b2b_sign_opts so;
    memset(&so, 0, sizeof so);
    so.pin = "123456";
    so.digest = digest;
    so.stop_after = B2B_S_FINISH_REQ;
    DUO_REQUIRE(b2b_sign(sr, er->k1, er->k2, er->cloud_device_secret, &so) == DUO_OK);
}

/* Round 2 on s; on success the device's signature must verify under Q. */
static int round2(b2b_sign_run *sr, duo_p1_sign *s, const uint8_t digest[32]) {
    uint8_t sig[64];
    int r = duo_p1_sign_finish(s, &sr->m2, &sr->m3);
    if (r != DUO_OK) return r;
    if ((r = duo_p2_sign_on_finish(sr->p2, &sr->m3, sig)) != DUO_OK) return r;
    return duo_ecdsa_verify(b2b_ec(), sig, digest, &g_er.k1->q);
}

static void test_roundtrip(void) {
    b2b_sign_run sr;
    duo_p1_sign *other = NULL;
    uint8_t st[DUO_P1_SIGN_STATE_BYTES], digest[32];
    memset(digest, 0x5a, sizeof digest);
    round1(&sr, &g_er, digest);
    DUO_CHECK_OK(duo_p1_sign_export(sr.p1, st));
    DUO_CHECK(duo__p1_sign_nonce_wiped(sr.p1));
    DUO_EXPECT_ERR(duo_p1_sign_export(sr.p1, st), DUO_E_SESSION_FAILED); /* spent */
    DUO_CHECK_OK(duo_p1_sign_import(&other, b2b_ec(), NULL, g_er.k1, st));
    DUO_CHECK_OK(round2(&sr, other, digest));
    DUO_CHECK(duo__p1_sign_nonce_wiped(other));
    /* the exporting session never finishes */
    DUO_CHECK(duo_p1_sign_finish(sr.p1, &sr.m2, &sr.m3) != DUO_OK);
    duo_p1_sign_free(other);
    b2b_sign_run_free(&sr);
}

/* One bit of the field at off flipped: want_import from the import; if it
 * imports, want_finish from round 2. */
static void flipped(size_t off, int want_import, int want_finish) {
    b2b_sign_run sr;
    duo_p1_sign *other = NULL;
    uint8_t st[DUO_P1_SIGN_STATE_BYTES], digest[32];
    memset(digest, (int)off, sizeof digest);
    round1(&sr, &g_er, digest);
    DUO_REQUIRE(duo_p1_sign_export(sr.p1, st) == DUO_OK);
    st[off == OFF_FORMAT ? off : off + 3] ^= 0x10;
    int r = duo_p1_sign_import(&other, b2b_ec(), NULL, g_er.k1, st);
    if (r != want_import) fprintf(stderr, "# offset %zu: import %s\n", off, duo_err_name(r));
    DUO_CHECK(r == want_import && (r == DUO_OK) == (other != NULL));
    if (r == DUO_OK) {
        r = round2(&sr, other, digest);
        if (r != want_finish) fprintf(stderr, "# offset %zu: round 2 %s\n", off, duo_err_name(r));
        DUO_CHECK(r == want_finish);
        DUO_CHECK(duo__p1_sign_nonce_wiped(other));
    }
    duo_p1_sign_free(other);
    b2b_sign_run_free(&sr);
}

static void test_each_field_flipped(void) {
    flipped(OFF_FORMAT, DUO_E_STATE_CORRUPT, 0);
    flipped(OFF_KEY_ID, DUO_E_SESSION_MISMATCH, 0);
    flipped(OFF_NONCE, DUO_E_STATE_CORRUPT, 0);
    flipped(OFF_DIGEST, DUO_E_STATE_CORRUPT, 0);
    flipped(OFF_PRESID, DUO_E_STATE_CORRUPT, 0);
    flipped(OFF_R2C, DUO_OK, DUO_E_BAD_COMMITMENT);
    flipped(OFF_SID, DUO_OK, DUO_E_SESSION_MISMATCH);
    flipped(OFF_K1, DUO_OK, DUO_E_PEER_CHEATED);
}

static void test_k1_out_of_range(void) {
    b2b_sign_run sr;
    duo_p1_sign *other = NULL;
    uint8_t st[DUO_P1_SIGN_STATE_BYTES], digest[32];
    memset(digest, 0x77, sizeof digest);
    round1(&sr, &g_er, digest);
    DUO_REQUIRE(duo_p1_sign_export(sr.p1, st) == DUO_OK);
    memset(st + OFF_K1, 0, 32);
    DUO_EXPECT_ERR(duo_p1_sign_import(&other, b2b_ec(), NULL, g_er.k1, st), DUO_E_STATE_CORRUPT);
    memset(st + OFF_K1, 0xff, 32); /* >= q on both curves */
    DUO_EXPECT_ERR(duo_p1_sign_import(&other, b2b_ec(), NULL, g_er.k1, st), DUO_E_STATE_CORRUPT);
    DUO_CHECK(other == NULL);
    DUO_EXPECT_ERR(duo_p1_sign_import(&other, b2b_ec(), NULL, g_er.k1, NULL), DUO_E_INVALID_ARG);
    b2b_sign_run_free(&sr);
}

static void test_other_key(void) {
    b2b_sign_run sr;
    duo_p1_sign *other = NULL;
    uint8_t st[DUO_P1_SIGN_STATE_BYTES], digest[32];
    memset(digest, 0x33, sizeof digest);
    round1(&sr, &g_er, digest);
    DUO_REQUIRE(duo_p1_sign_export(sr.p1, st) == DUO_OK);
    duo_p1_key k = *g_er.k1; /* the same key under another id (shallow: nothing to free) */
    k.key_id[0] ^= 1;
    DUO_EXPECT_ERR(duo_p1_sign_import(&other, b2b_ec(), NULL, &k, st), DUO_E_SESSION_MISMATCH);
    DUO_CHECK(other == NULL);
    b2b_sign_run_free(&sr);
}

static void test_export_misuse(void) {
    duo_p1_sign *s = NULL;
    uint8_t st[DUO_P1_SIGN_STATE_BYTES];
    DUO_EXPECT_ERR(duo_p1_sign_export(NULL, st), DUO_E_INVALID_ARG);
    DUO_REQUIRE(duo_p1_sign_new(&s, b2b_ec(), NULL, g_er.k1) == DUO_OK);
    DUO_EXPECT_ERR(duo_p1_sign_export(s, st), DUO_E_PROTO_STATE); /* before round 1 */
    duo_p1_sign_free(s);
}

int main(void) {
    b2b_enroll_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.bits = 2048;
    eo.pin = "123456";
    if (b2b_enroll(&g_er, &eo) != DUO_OK) {
        fprintf(stderr, "enrolment failed\n");
        return 1;
    }
    DUO_RUN(test_roundtrip);
    DUO_RUN(test_each_field_flipped);
    DUO_RUN(test_k1_out_of_range);
    DUO_RUN(test_other_key);
    DUO_RUN(test_export_misuse);
    b2b_enroll_run_free(&g_er);
    b2b_env_free();
    return duo_test_finish();
}
