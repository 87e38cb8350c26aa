/* Transcript: determinism, unambiguous encoding, typed items, challenges that
 * do not consume the state, and a known-answer check recomputed here with EVP
 * from the encoding documented in transcript.h. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "det_rng.h"
#include "duosign/transcript.h"
#include "test_harness.h"

static duo_ec *ec;

/* ---- reference encoder (independent of transcript.c) ---- */
typedef struct {
    uint8_t buf[4096];
    size_t len;
} ref_t;

static void ref_raw(ref_t *r, const void *p, size_t n) {
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

static void ref_item(ref_t *r, uint8_t type, const char *label, const void *v, size_t n) {
    uint8_t h[4], l[8];
    size_t ll = strlen(label);
    int i;
    ref_raw(r, &type, 1);
    for (i = 0; i < 4; i++) h[i] = (uint8_t)(ll >> (8 * (3 - i)));
    ref_raw(r, h, 4);
    ref_raw(r, label, ll);
    for (i = 0; i < 8; i++) l[i] = (uint8_t)((uint64_t)n >> (8 * (7 - i)));
    ref_raw(r, l, 8);
    if (n) ref_raw(r, v, n);
}

static void sha256(uint8_t out[32], const uint8_t *p, size_t n) {
    unsigned int ol = 0;
    DUO_CHECK(EVP_Digest(p, n, out, &ol, EVP_sha256(), NULL) == 1 && ol == 32);
}

static int digest_of(uint8_t out[32], duo_transcript *t) {
    int r = duo_transcript_digest(t, out);
    duo_transcript_free(t);
    return r;
}

static void test_determinism(void) {
    duo_transcript a, b, c;
    uint8_t da[32], db[32], dc[32];
    DUO_CHECK_OK(duo_transcript_init(&a, "duosign/test"));
    DUO_CHECK_OK(duo_transcript_init(&b, "duosign/test"));
    DUO_CHECK_OK(duo_transcript_init(&c, "duosign/test2"));
    duo_transcript_bytes(&a, "x", (const uint8_t *)"hello", 5);
    duo_transcript_bytes(&b, "x", (const uint8_t *)"hello", 5);
    duo_transcript_bytes(&c, "x", (const uint8_t *)"hello", 5);
    duo_transcript_u64(&a, "n", 42);
    duo_transcript_u64(&b, "n", 42);
    duo_transcript_u64(&c, "n", 42);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK_OK(digest_of(dc, &c));
    DUO_CHECK(memcmp(da, db, 32) == 0);
    DUO_CHECK(memcmp(da, dc, 32) != 0); /* domain matters */
}

static void test_boundaries(void) {
    duo_transcript a, b;
    uint8_t da[32], db[32];

    /* label/value boundary */
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_bytes(&a, "ab", (const uint8_t *)"c", 1);
    duo_transcript_bytes(&b, "a", (const uint8_t *)"bc", 2);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);

    /* value split across two items */
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_bytes(&a, "x", (const uint8_t *)"ab", 2);
    duo_transcript_bytes(&a, "x", (const uint8_t *)"c", 1);
    duo_transcript_bytes(&b, "x", (const uint8_t *)"a", 1);
    duo_transcript_bytes(&b, "x", (const uint8_t *)"bc", 2);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);

    /* domain/first-item boundary */
    DUO_CHECK_OK(duo_transcript_init(&a, "dx"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_bytes(&a, "", NULL, 0);
    duo_transcript_bytes(&b, "x", NULL, 0);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);

    /* empty item is not nothing */
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_bytes(&a, "", NULL, 0);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);
}

static void test_type_tags(void) {
    duo_transcript a, b;
    uint8_t da[32], db[32], eight[8] = {0, 0, 0, 0, 0, 0, 0, 42};
    duo_scalar s;
    BIGNUM *bn = BN_new();

    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_u64(&a, "v", 42);
    duo_transcript_bytes(&b, "v", eight, 8);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);

    memset(s.b, 0, 32);
    s.b[31] = 7;
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_scalar(&a, "v", &s);
    duo_transcript_bytes(&b, "v", s.b, 32);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);

    BN_set_word(bn, 7);
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_bn(&a, "v", bn);
    duo_transcript_bytes(&b, "v", s.b + 31, 1);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) != 0);
    BN_free(bn);
}

static void test_challenge(void) {
    duo_transcript a, b;
    uint8_t c1[32], c2[32], c3[32], c64[64], da[32], db[32];

    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_init(&b, "d"));
    duo_transcript_bytes(&a, "x", (const uint8_t *)"1", 1);
    duo_transcript_bytes(&b, "x", (const uint8_t *)"1", 1);
    DUO_CHECK_OK(duo_transcript_challenge(&a, "e", c1, 32));
    DUO_CHECK_OK(duo_transcript_challenge(&a, "e", c2, 32));
    DUO_CHECK(memcmp(c1, c2, 32) == 0);
    DUO_CHECK_OK(duo_transcript_challenge(&a, "f", c3, 32));
    DUO_CHECK(memcmp(c1, c3, 32) != 0);
    DUO_CHECK_OK(duo_transcript_challenge(&a, "e", c64, 64));
    DUO_CHECK(memcmp(c64, c1, 32) == 0);
    DUO_CHECK(memcmp(c64 + 32, c1, 32) != 0);
    DUO_CHECK_OK(duo_transcript_challenge(&a, "e", c3, 5));
    DUO_CHECK(memcmp(c3, c1, 5) == 0);
    /* state not consumed: a (challenged) and b (never challenged) agree */
    duo_transcript_u64(&a, "n", 1);
    duo_transcript_u64(&b, "n", 1);
    DUO_CHECK_OK(duo_transcript_challenge(&b, "e", c2, 32));
    DUO_CHECK(memcmp(c1, c2, 32) != 0); /* challenge depends on later items */
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) == 0);
}

static void test_copy(void) {
    duo_transcript a, b;
    uint8_t da[32], db[32];
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    duo_transcript_u64(&a, "n", 9);
    DUO_CHECK_OK(duo_transcript_copy(&b, &a));
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK_OK(digest_of(db, &b));
    DUO_CHECK(memcmp(da, db, 32) == 0);
    DUO_CHECK_OK(duo_transcript_init(&a, "d"));
    DUO_CHECK_OK(duo_transcript_copy(&b, &a));
    duo_transcript_u64(&b, "n", 9); /* fork diverges, original unaffected */
    DUO_CHECK_OK(digest_of(db, &b));
    duo_transcript_u64(&a, "n", 8);
    DUO_CHECK_OK(digest_of(da, &a));
    DUO_CHECK(memcmp(da, db, 32) != 0);
}

static void test_kat(void) {
    static const char *dom = "duosign/v1/kat";
    duo_transcript t;
    ref_t r;
    uint8_t want[32], got[32], chal[64], wantc[32];
    uint8_t u[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    uint8_t pt[33], bnb[2] = {0x01, 0x02};
    duo_scalar k, s;
    duo_point P;
    duo_binding bind;
    BIGNUM *bn = BN_new(), *zero = BN_new();
    int i;

    memset(k.b, 0, 32);
    k.b[31] = 3;
    DUO_CHECK_OK(duo_point_mul_base(ec, &P, &k));
    duo_point_serialize(ec, pt, &P);
    for (i = 0; i < 32; i++) s.b[i] = (uint8_t)(0x40 + i);
    for (i = 0; i < 32; i++) bind.sid[i] = (uint8_t)i;
    bind.role = DUO_ROLE_DEVICE;
    BN_set_word(bn, 0x0102);
    BN_zero(zero);

    memset(&r, 0, sizeof r);
    ref_item(&r, 0x01, dom, NULL, 0);
    ref_item(&r, 0x02, "msg", "abc", 3);
    ref_item(&r, 0x03, "u", u, 8);
    ref_item(&r, 0x04, "P", pt, 33);
    ref_item(&r, 0x05, "s", s.b, 32);
    ref_item(&r, 0x06, "bn", bnb, 2);
    ref_item(&r, 0x06, "zero", NULL, 0);
    ref_item(&r, 0x02, "sid", bind.sid, 32);
    {
        uint8_t role[8] = {0, 0, 0, 0, 0, 0, 0, 2};
        ref_item(&r, 0x03, "role", role, 8);
    }

    DUO_CHECK_OK(duo_transcript_init(&t, dom));
    duo_transcript_bytes(&t, "msg", (const uint8_t *)"abc", 3);
    duo_transcript_u64(&t, "u", 0x0102030405060708ull);
    duo_transcript_point(&t, ec, "P", &P);
    duo_transcript_scalar(&t, "s", &s);
    duo_transcript_bn(&t, "bn", bn);
    duo_transcript_bn(&t, "zero", zero);
    duo_transcript_binding(&t, &bind);

    /* challenge block i = SHA-256(state || CHALLENGE "e" u64be(i)) */
    DUO_CHECK_OK(duo_transcript_challenge(&t, "e", chal, 64));
    for (i = 0; i < 2; i++) {
        ref_t rc = r;
        uint8_t ctr[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)i};
        ref_item(&rc, 0x07, "e", ctr, 8);
        sha256(wantc, rc.buf, rc.len);
        DUO_CHECK(memcmp(chal + 32 * i, wantc, 32) == 0);
    }

    sha256(want, r.buf, r.len);
    DUO_CHECK_OK(duo_transcript_digest(&t, got));
    DUO_CHECK(memcmp(want, got, 32) == 0);
    /* spent: a second digest is refused */
    DUO_CHECK(duo_transcript_digest(&t, got) != DUO_OK);
    duo_transcript_free(&t);
    BN_free(bn);
    BN_free(zero);
}

static void test_errors(void) {
    duo_transcript t;
    uint8_t d[32];
    BIGNUM *neg = BN_new();

    DUO_EXPECT_ERR(duo_transcript_init(&t, NULL), DUO_E_INVALID_ARG);
    duo_transcript_free(&t); /* safe after failed init */

    DUO_CHECK_OK(duo_transcript_init(&t, "d"));
    duo_transcript_bytes(&t, NULL, (const uint8_t *)"x", 1);
    duo_transcript_u64(&t, "ok", 1); /* later appends do not clear the error */
    DUO_EXPECT_ERR(duo_transcript_challenge(&t, "e", d, 32), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_transcript_digest(&t, d), DUO_E_INVALID_ARG);
    duo_transcript_free(&t);

    DUO_CHECK_OK(duo_transcript_init(&t, "d"));
    duo_transcript_bytes(&t, "v", NULL, 3);
    DUO_EXPECT_ERR(duo_transcript_digest(&t, d), DUO_E_INVALID_ARG);
    duo_transcript_free(&t);

    BN_set_word(neg, 5);
    BN_set_negative(neg, 1);
    DUO_CHECK_OK(duo_transcript_init(&t, "d"));
    duo_transcript_bn(&t, "v", neg);
    DUO_EXPECT_ERR(duo_transcript_digest(&t, d), DUO_E_INVALID_ARG);
    duo_transcript_free(&t);

    DUO_CHECK_OK(duo_transcript_init(&t, "d"));
    duo_transcript_binding(&t, NULL);
    DUO_EXPECT_ERR(duo_transcript_digest(&t, d), DUO_E_INVALID_ARG);
    duo_transcript_free(&t);
    BN_free(neg);
}

static void test_bn_large(void) {
    /* A 4096-bit BIGNUM (Paillier-sized) takes the heap path; compare with
     * the bytes item of the same content under the reference encoder. */
    duo_transcript t;
    ref_t *r = malloc(sizeof *r);
    uint8_t v[600], got[32], want[32];
    BIGNUM *bn;
    duo_det_rng d;

    DUO_REQUIRE(r != NULL);
    duo_det_rng_init(&d, 7);
    DUO_CHECK_OK(duo_rng_bytes(&d.rng, v, sizeof v));
    v[0] |= 0x80;
    bn = BN_bin2bn(v, sizeof v, NULL);
    memset(r, 0, sizeof *r);
    ref_item(r, 0x01, "d", NULL, 0);
    ref_item(r, 0x06, "n", v, sizeof v);
    sha256(want, r->buf, r->len);
    DUO_CHECK_OK(duo_transcript_init(&t, "d"));
    duo_transcript_bn(&t, "n", bn);
    DUO_CHECK_OK(digest_of(got, &t));
    DUO_CHECK(memcmp(got, want, 32) == 0);
    BN_free(bn);
    free(r);
}

int main(void) {
    if (duo_ec_new(&ec, DUO_CURVE_SECP256K1, NULL) != DUO_OK) return 1;
    DUO_RUN(test_determinism);
    DUO_RUN(test_boundaries);
    DUO_RUN(test_type_tags);
    DUO_RUN(test_challenge);
    DUO_RUN(test_copy);
    DUO_RUN(test_kat);
    DUO_RUN(test_errors);
    DUO_RUN(test_bn_large);
    duo_ec_free(ec);
    return duo_test_finish();
}
