/* Commitments: open succeeds; any change of value, randomness, sid, role or
 * purpose gives DUO_E_BAD_COMMITMENT. */
#include <string.h>

#include <openssl/evp.h>

#include "det_rng.h"
#include "duosign/commit.h"
#include "test_harness.h"

static duo_ec *ec;
static duo_det_rng drng;

typedef struct {
    const char *purpose;
    duo_binding bind;
    duo_point P;
    uint64_t n;
    uint8_t rand[DUO_COMMIT_RAND_BYTES];
} opening;

static int make(const opening *o, uint8_t c[DUO_COMMIT_BYTES]) {
    duo_transcript t;
    int r = duo_commit_begin(&t, o->purpose, &o->bind);
    if (r != DUO_OK) return r;
    duo_transcript_point(&t, ec, "P", &o->P);
    duo_transcript_u64(&t, "n", o->n);
    return duo_commit_finish(&t, o->rand, c);
}

static int check(const opening *o, const uint8_t c[DUO_COMMIT_BYTES]) {
    duo_transcript t;
    int r = duo_commit_begin(&t, o->purpose, &o->bind);
    if (r != DUO_OK) return r;
    duo_transcript_point(&t, ec, "P", &o->P);
    duo_transcript_u64(&t, "n", o->n);
    return duo_commit_check(&t, o->rand, c);
}

static void test_commit(void) {
    opening o, w;
    uint8_t c[DUO_COMMIT_BYTES], c2[DUO_COMMIT_BYTES];
    duo_scalar k;
    int i;

    o.purpose = "Q1";
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, o.bind.sid, 32));
    o.bind.role = DUO_ROLE_CLOUD;
    DUO_CHECK_OK(duo_scalar_random(ec, &k, &drng.rng));
    DUO_CHECK_OK(duo_point_mul_base(ec, &o.P, &k));
    o.n = 12345;
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, o.rand, sizeof o.rand));

    DUO_CHECK_OK(make(&o, c));
    DUO_CHECK_OK(check(&o, c));
    DUO_CHECK_OK(make(&o, c2));
    DUO_CHECK(memcmp(c, c2, 32) == 0); /* deterministic given rand */

    w = o; /* wrong value: point */
    DUO_CHECK_OK(duo_point_add(ec, &w.P, &o.P, &o.P));
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    w = o; /* wrong value: integer */
    w.n++;
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    w = o; /* wrong randomness */
    w.rand[31] ^= 1;
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    w = o; /* wrong sid */
    w.bind.sid[0] ^= 0x80;
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    w = o; /* wrong role */
    w.bind.role = DUO_ROLE_DEVICE;
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    w = o; /* wrong purpose */
    w.purpose = "Q2";
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    w = o;
    w.purpose = "Q";
    DUO_EXPECT_ERR(check(&w, c), DUO_E_BAD_COMMITMENT);
    /* tampered commitment, every bit */
    for (i = 0; i < DUO_COMMIT_BYTES * 8; i++) {
        memcpy(c2, c, 32);
        c2[i / 8] ^= (uint8_t)(1u << (i % 8));
        DUO_EXPECT_ERR(check(&o, c2), DUO_E_BAD_COMMITMENT);
    }
}

static void test_commit_kat(void) {
    /* C = SHA-256 over the documented transcript encoding:
     * DOMAIN "duosign/v1/commit/pin", BYTES "sid", U64 "role", values, BYTES "rand". */
    static const char *dom = "duosign/v1/commit/pin";
    uint8_t buf[512], want[32], got[32], rnd[32];
    size_t n = 0, ll;
    unsigned int ol;
    duo_binding b;
    duo_transcript t;
    int i;
#define PUT(p, len) (memcpy(buf + n, (p), (len)), n += (len))
#define ITEM(type, label, v, len)                                                    \
    do {                                                                             \
        uint8_t ty_ = (type), h_[4], l_[8];                                          \
        ll = strlen(label);                                                          \
        for (i = 0; i < 4; i++) h_[i] = (uint8_t)(ll >> (8 * (3 - i)));              \
        for (i = 0; i < 8; i++) l_[i] = (uint8_t)((uint64_t)(len) >> (8 * (7 - i))); \
        PUT(&ty_, 1);                                                                \
        PUT(h_, 4);                                                                  \
        PUT(label, ll);                                                              \
        PUT(l_, 8);                                                                  \
        if ((len) > 0) PUT((v), (len));                                              \
    } while (0)
    for (i = 0; i < 32; i++) {
        b.sid[i] = (uint8_t)(0xa0 + i);
        rnd[i] = (uint8_t)(0x10 + i);
    }
    b.role = DUO_ROLE_CLOUD;
    {
        uint8_t role[8] = {0, 0, 0, 0, 0, 0, 0, 1};
        ITEM(0x01, dom, "", 0);
        ITEM(0x02, "sid", b.sid, 32);
        ITEM(0x03, "role", role, 8);
        ITEM(0x02, "v", "xyz", 3);
        ITEM(0x02, "rand", rnd, 32);
    }
    DUO_CHECK(EVP_Digest(buf, n, want, &ol, EVP_sha256(), NULL) == 1);
    DUO_CHECK_OK(duo_commit_begin(&t, "pin", &b));
    duo_transcript_bytes(&t, "v", (const uint8_t *)"xyz", 3);
    DUO_CHECK_OK(duo_commit_finish(&t, rnd, got));
    DUO_CHECK(memcmp(want, got, 32) == 0);
#undef ITEM
#undef PUT
}

static void test_commit_args(void) {
    duo_transcript t;
    duo_binding b;
    char longp[200];
    memset(&b, 0, sizeof b);
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    DUO_EXPECT_ERR(duo_commit_begin(&t, longp, &b), DUO_E_INVALID_ARG);
    duo_transcript_free(&t);
    DUO_EXPECT_ERR(duo_commit_begin(&t, NULL, &b), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_commit_begin(&t, "x", NULL), DUO_E_INVALID_ARG);
    duo_transcript_free(&t);
}

int main(void) {
    duo_det_rng_init(&drng, (uint64_t)duo_test_seed());
    if (duo_ec_new(&ec, DUO_CURVE_SECP256K1, NULL) != DUO_OK) return 1;
    DUO_RUN(test_commit);
    DUO_RUN(test_commit_kat);
    DUO_RUN(test_commit_args);
    duo_ec_free(ec);
    return duo_test_finish();
}
