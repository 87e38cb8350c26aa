/* Curve module, on each curve (secp256k1, P-256): scalar range checks,
 * scalar arithmetic against OpenSSL BN, point parsing (off curve, wrong
 * length, x >= p, infinity), k*G known answers and consistency, and an ECDSA
 * cross-check where signatures built from duo_* scalar/point functions are
 * verified by OpenSSL and by libsecp256k1 (code not written here). */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_GFp_*_method in test_p256_method */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <secp256k1.h>
#include <secp256k1_preallocated.h>

#include <openssl/ec.h>
#include <openssl/obj_mac.h>

#include "det_rng.h"
#include "duosign/curve.h"
#include "duosign/mem.h"
#include "test_harness.h"

#define ITER 64

static duo_ec *ec;
static duo_det_rng drng;
static BN_CTX *bnctx;

/* Each curve's published parameters (SEC 2), typed in, not taken from a
 * library: the order q, the field prime p, y^2 = x^3 + a*x + b with a as a
 * small signed word, and G, 2G, 3G compressed. */
typedef struct curve_kat {
    duo_curve curve;
    const char *q, *p, *b;
    long a;
    const char *g, *g2, *g3;
} curve_kat;

static const curve_kat KATS[] = {
    {DUO_CURVE_SECP256K1, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
     "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F", "07", 0,
     "0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
     "02C6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5",
     "02F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9"},
    {DUO_CURVE_P256, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551",
     "FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF",
     "5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B", -3,
     "036B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296",
     "037CF27B188D034F7E8A52380304B51AC3C08969E277F21B35A60B48FC47669978",
     "025ECBE4D1A6330A44C8F7EF951D4BF165E6C6B721EFADA985FB41661BC6E7FD6C"},
};

static const curve_kat *kat;
#define Q_HEX (kat->q)
#define P_HEX (kat->p)

static BIGNUM *bn_hex(const char *hex) {
    BIGNUM *b = NULL;
    BN_hex2bn(&b, hex);
    return b;
}

static BIGNUM *bn_of(const duo_scalar *s) { return BN_bin2bn(s->b, 32, NULL); }

static int bn_eq_scalar(const BIGNUM *b, const duo_scalar *s) {
    uint8_t buf[32];
    if (BN_bn2binpad(b, buf, 32) != 32) return 0;
    return memcmp(buf, s->b, 32) == 0;
}

static void be32_from_bn(uint8_t out[32], const BIGNUM *b) { (void)BN_bn2binpad(b, out, 32); }

static void test_ctx(void) {
    duo_ec *e2 = NULL;
    DUO_CHECK(duo_ec_curve(ec) == kat->curve);
    DUO_CHECK((duo_ec_secp(ec) != NULL) == (kat->curve == DUO_CURVE_SECP256K1));
    BIGNUM *qq = bn_hex(Q_HEX);
    DUO_CHECK(BN_cmp(duo_ec_order(ec), qq) == 0);
    BN_free(qq);
    DUO_CHECK_OK(duo_ec_new(&e2, kat->curve, NULL));
    duo_ec_free(e2);
    duo_ec_free(NULL);
    e2 = (duo_ec *)1;
    DUO_EXPECT_ERR(duo_ec_new(&e2, DUO_CURVE_UNSPECIFIED, NULL), DUO_E_UNSUPPORTED);
    DUO_CHECK(e2 == NULL);
    DUO_EXPECT_ERR(duo_ec_new(&e2, (duo_curve)DUO_CURVE_COUNT, NULL), DUO_E_UNSUPPORTED);
    /* names both ways */
    duo_curve c = DUO_CURVE_UNSPECIFIED;
    DUO_CHECK_OK(duo_curve_parse(duo_curve_name(kat->curve), &c));
    DUO_CHECK(c == kat->curve);
    DUO_EXPECT_ERR(duo_curve_parse("p384", &c), DUO_E_UNSUPPORTED);
    DUO_CHECK(duo_curve_valid(kat->curve) && !duo_curve_valid(0) && !duo_curve_valid(DUO_CURVE_COUNT));
}

/* OpenSSL's P-256 must be the constant-time ecp_nistz256 code (or the
 * constant-time 64-bit nistp256), not the generic EC_GFp_mont / simple /
 * nist methods. The method getters are deprecated API, used here only. */
static void test_p256_method(void) {
    EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
    DUO_REQUIRE(g != NULL);
    const EC_METHOD *m = EC_GROUP_method_of(g);
    DUO_CHECK(m != EC_GFp_mont_method());
    DUO_CHECK(m != EC_GFp_simple_method());
    DUO_CHECK(m != EC_GFp_nist_method());
    EC_GROUP_free(g);
}

/* 1 if the context's blinding differs from libsecp256k1's unblinded
 * default: two byte copies of it (secp256k1_context_preallocated_clone), one
 * reset with secp256k1_context_randomize(NULL) (which restores the default
 * blinding of a new context), compared. Padding is copied, so equal copies
 * mean "never randomized". With copy set, *copy returns the first copy for comparisons
 * between contexts (caller frees). */
static int ctx_is_blinded(const secp256k1_context *c, uint8_t **copy, size_t *copy_len) {
    size_t sz = secp256k1_context_preallocated_clone_size(c);
    uint8_t *a = calloc(1, sz), *b = calloc(1, sz), *keep = calloc(1, sz);
    secp256k1_context *ca, *cb;
    int blinded = -1;
    if (a != NULL && b != NULL && keep != NULL) {
        ca = secp256k1_context_preallocated_clone(c, a);
        cb = secp256k1_context_preallocated_clone(c, b);
        if (secp256k1_context_randomize(cb, NULL)) blinded = memcmp(a, b, sz) != 0;
        memcpy(keep, a, sz); /* _destroy clears the blinding */
        secp256k1_context_preallocated_destroy(ca);
        secp256k1_context_preallocated_destroy(cb);
    }
    free(a);
    free(b);
    if (copy != NULL) {
        *copy = keep;
        *copy_len = sz;
    } else {
        free(keep);
    }
    return blinded;
}

/* secp256k1_context_randomize on the one context that touches secrets (every
 * secret-scalar operation goes through duo_ec's context; issue 13). Fails if
 * duo_ec_new stops randomizing. */
static void test_ctx_randomized(void) {
    secp256k1_context *plain = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    duo_ec *e1 = NULL, *e2 = NULL, *e3 = NULL;
    duo_det_rng d1, d2;
    uint8_t *c1 = NULL, *c2 = NULL, *c3 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0;
    DUO_REQUIRE(plain != NULL);
    /* control: a context nobody randomized reads as unblinded */
    DUO_CHECK(ctx_is_blinded(plain, NULL, NULL) == 0);
    DUO_CHECK(ctx_is_blinded(duo_ec_secp(ec), NULL, NULL) == 1);
    DUO_CHECK_OK(duo_ec_new(&e1, DUO_CURVE_SECP256K1, NULL));
    DUO_CHECK(ctx_is_blinded(duo_ec_secp(e1), NULL, NULL) == 1);
    /* the seed comes from the context's RNG: the same det seed gives the same
     * blinding, another seed another one */
    duo_det_rng_init(&d1, 11);
    duo_det_rng_init(&d2, 12);
    DUO_CHECK_OK(duo_ec_new(&e2, DUO_CURVE_SECP256K1, &d1.rng));
    DUO_CHECK_OK(duo_ec_new(&e3, DUO_CURVE_SECP256K1, &d2.rng));
    DUO_CHECK(d1.bytes_drawn >= 32 && d2.bytes_drawn >= 32);
    DUO_CHECK(ctx_is_blinded(duo_ec_secp(e2), &c2, &l2) == 1);
    DUO_CHECK(ctx_is_blinded(duo_ec_secp(e3), &c3, &l3) == 1);
    DUO_CHECK(c2 && c3 && l2 == l3 && memcmp(c2, c3, l2) != 0);
    duo_ec_free(e2);
    e2 = NULL;
    duo_det_rng_init(&d1, 11);
    DUO_CHECK_OK(duo_ec_new(&e2, DUO_CURVE_SECP256K1, &d1.rng));
    DUO_CHECK(ctx_is_blinded(duo_ec_secp(e2), &c1, &l1) == 1);
    DUO_CHECK(c1 && l1 == l2 && memcmp(c1, c2, l1) == 0);
    free(c1);
    free(c2);
    free(c3);
    duo_ec_free(e1);
    duo_ec_free(e2);
    duo_ec_free(e3);
    secp256k1_context_destroy(plain);
}

static int failing_fill(void *data, uint8_t *out, size_t len) {
    (void)data;
    (void)out;
    (void)len;
    return -1;
}

static int zero_fill(void *data, uint8_t *out, size_t len) {
    (void)data;
    memset(out, 0, len);
    return 0;
}

static void test_ctx_rng_failure(void) {
    duo_ec *e2 = (duo_ec *)1;
    duo_rng bad = {failing_fill, NULL};
    DUO_EXPECT_ERR(duo_ec_new(&e2, DUO_CURVE_SECP256K1, &bad), DUO_E_RNG);
    DUO_CHECK(e2 == NULL);
    duo_scalar s;
    duo_rng zero = {zero_fill, NULL};
    DUO_EXPECT_ERR(duo_scalar_random(ec, &s, &bad), DUO_E_RNG);
    DUO_EXPECT_ERR(duo_scalar_random(ec, &s, &zero), DUO_E_RNG); /* never returns 0 */
}

static void test_scalar_parse(void) {
    uint8_t buf[32];
    duo_scalar s;
    BIGNUM *q = bn_hex(Q_HEX), *t = BN_new();

    memset(buf, 0, 32);
    DUO_EXPECT_ERR(duo_scalar_parse(ec, &s, buf), DUO_E_BAD_SCALAR); /* 0 */
    be32_from_bn(buf, q);
    DUO_EXPECT_ERR(duo_scalar_parse(ec, &s, buf), DUO_E_BAD_SCALAR); /* q */
    BN_copy(t, q);
    BN_add_word(t, 1);
    be32_from_bn(buf, t);
    DUO_EXPECT_ERR(duo_scalar_parse(ec, &s, buf), DUO_E_BAD_SCALAR); /* q+1 */
    memset(buf, 0xff, 32);
    DUO_EXPECT_ERR(duo_scalar_parse(ec, &s, buf), DUO_E_BAD_SCALAR); /* 2^256-1 */
    BN_copy(t, q);
    BN_sub_word(t, 1);
    be32_from_bn(buf, t);
    DUO_CHECK_OK(duo_scalar_parse(ec, &s, buf)); /* q-1 */
    DUO_CHECK(memcmp(s.b, buf, 32) == 0);
    memset(buf, 0, 32);
    buf[31] = 1;
    DUO_CHECK_OK(duo_scalar_parse(ec, &s, buf)); /* 1 */
    DUO_CHECK(memcmp(s.b, buf, 32) == 0);
    BN_free(q);
    BN_free(t);
}

static void test_scalar_reduce32(void) {
    uint8_t buf[32];
    duo_scalar s;
    BIGNUM *q = bn_hex(Q_HEX), *t = BN_new(), *u = BN_new();
    int i;

    be32_from_bn(buf, q);
    DUO_EXPECT_ERR(duo_scalar_reduce32(ec, &s, buf), DUO_E_BAD_SCALAR);
    DUO_CHECK(duo_ct_is_zero(s.b, 32));
    memset(buf, 0, 32);
    DUO_EXPECT_ERR(duo_scalar_reduce32(ec, &s, buf), DUO_E_BAD_SCALAR);
    BN_copy(t, q);
    BN_add_word(t, 1);
    be32_from_bn(buf, t);
    DUO_CHECK_OK(duo_scalar_reduce32(ec, &s, buf));
    {
        BIGNUM *v = bn_of(&s);
        DUO_CHECK(BN_is_one(v));
        BN_free(v);
    }
    for (i = 0; i < 256 + ITER; i++) {
        if (i == 0) {
            memset(buf, 0xff, 32);
        } else {
            DUO_CHECK_OK(duo_rng_bytes(&drng.rng, buf, 32));
            if (i < 256) memset(buf, 0xff, (size_t)(i % 17)); /* bias to >= q */
        }
        BN_bin2bn(buf, 32, t);
        BN_nnmod(u, t, q, bnctx);
        int rr = duo_scalar_reduce32(ec, &s, buf);
        DUO_CHECK(rr == DUO_OK);
        DUO_CHECK(bn_eq_scalar(u, &s));
    }
    BN_free(q);
    BN_free(t);
    BN_free(u);
}

static void test_scalar_arith(void) {
    BIGNUM *q = bn_hex(Q_HEX), *A = NULL, *B = NULL, *R = BN_new();
    duo_scalar a, b, r, r2;
    int i;

    for (i = 0; i < ITER; i++) {
        DUO_CHECK_OK(duo_scalar_random(ec, &a, &drng.rng));
        DUO_CHECK_OK(duo_scalar_random(ec, &b, &drng.rng));
        A = bn_of(&a);
        B = bn_of(&b);
        DUO_CHECK(!BN_is_zero(A) && BN_cmp(A, q) < 0);

        DUO_CHECK_OK(duo_scalar_add(ec, &r, &a, &b));
        BN_mod_add(R, A, B, q, bnctx);
        DUO_CHECK(bn_eq_scalar(R, &r));

        DUO_CHECK_OK(duo_scalar_mul(ec, &r, &a, &b));
        BN_mod_mul(R, A, B, q, bnctx);
        DUO_CHECK(bn_eq_scalar(R, &r));

        DUO_CHECK_OK(duo_scalar_negate(ec, &r, &a));
        BN_sub(R, q, A);
        DUO_CHECK(bn_eq_scalar(R, &r));
        /* a + (-a) == 0 is not a valid scalar */
        DUO_EXPECT_ERR(duo_scalar_add(ec, &r2, &a, &r), DUO_E_BAD_SCALAR);

        DUO_CHECK_OK(duo_scalar_inverse(ec, &r, &a));
        BN_mod_inverse(R, A, q, bnctx);
        DUO_CHECK(bn_eq_scalar(R, &r));
        DUO_CHECK_OK(duo_scalar_mul(ec, &r2, &r, &a));
        DUO_CHECK(BN_is_one(R = (BN_bin2bn(r2.b, 32, R))));

        /* aliasing: out == a */
        r = a;
        DUO_CHECK_OK(duo_scalar_add(ec, &r, &r, &b));
        BN_mod_add(R, A, B, q, bnctx);
        DUO_CHECK(bn_eq_scalar(R, &r));
        r = b;
        DUO_CHECK_OK(duo_scalar_mul(ec, &r, &a, &r));
        BN_mod_mul(R, A, B, q, bnctx);
        DUO_CHECK(bn_eq_scalar(R, &r));

        BN_free(A);
        BN_free(B);
    }

    /* Edge values: wrap-around and the ends of the range. */
    {
        uint8_t buf[32];
        duo_scalar one, two, qm1, zero, big;
        memset(buf, 0, 32);
        buf[31] = 1;
        DUO_CHECK_OK(duo_scalar_parse(ec, &one, buf));
        buf[31] = 2;
        DUO_CHECK_OK(duo_scalar_parse(ec, &two, buf));
        BN_copy(R, q);
        BN_sub_word(R, 1);
        be32_from_bn(buf, R);
        DUO_CHECK_OK(duo_scalar_parse(ec, &qm1, buf));
        DUO_CHECK_OK(duo_scalar_add(ec, &r, &qm1, &two));
        DUO_CHECK(memcmp(r.b, one.b, 32) == 0);
        DUO_EXPECT_ERR(duo_scalar_add(ec, &r, &qm1, &one), DUO_E_BAD_SCALAR);
        DUO_CHECK_OK(duo_scalar_mul(ec, &r, &qm1, &qm1)); /* (-1)^2 = 1 */
        DUO_CHECK(memcmp(r.b, one.b, 32) == 0);
        DUO_CHECK_OK(duo_scalar_inverse(ec, &r, &qm1));
        DUO_CHECK(memcmp(r.b, qm1.b, 32) == 0);
        DUO_CHECK_OK(duo_scalar_inverse(ec, &r, &one));
        DUO_CHECK(memcmp(r.b, one.b, 32) == 0);
        DUO_CHECK_OK(duo_scalar_negate(ec, &r, &one));
        DUO_CHECK(memcmp(r.b, qm1.b, 32) == 0);

        /* Out-of-range inputs are rejected by every operation, including a
         * zero second operand (libsecp256k1 accepts a zero add tweak). */
        memset(&zero, 0, sizeof zero);
        be32_from_bn(big.b, q);
        DUO_EXPECT_ERR(duo_scalar_add(ec, &r, &one, &zero), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_add(ec, &r, &zero, &one), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_add(ec, &r, &one, &big), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_add(ec, &r, &big, &one), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_mul(ec, &r, &one, &zero), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_mul(ec, &r, &zero, &one), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_mul(ec, &r, &big, &one), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_negate(ec, &r, &zero), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_negate(ec, &r, &big), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_inverse(ec, &r, &zero), DUO_E_BAD_SCALAR);
        DUO_EXPECT_ERR(duo_scalar_inverse(ec, &r, &big), DUO_E_BAD_SCALAR);
    }
    BN_free(q);
    BN_free(R);
}

static void test_scalar_bn(void) {
    BIGNUM *q = bn_hex(Q_HEX), *t = BN_new(), *u = BN_new();
    duo_scalar a, b;
    int i;

    for (i = 0; i < 16; i++) {
        DUO_CHECK_OK(duo_scalar_random(ec, &a, &drng.rng));
        DUO_CHECK_OK(duo_scalar_to_bn(&a, t));
        DUO_CHECK(BN_get_flags(t, BN_FLG_CONSTTIME) != 0);
        DUO_CHECK(bn_eq_scalar(t, &a));
        DUO_CHECK_OK(duo_scalar_from_bn_mod(ec, &b, t));
        DUO_CHECK(memcmp(a.b, b.b, 32) == 0);
        /* t + 5q reduces back to a */
        BN_copy(u, q);
        BN_mul_word(u, 5);
        BN_add(u, u, t);
        DUO_CHECK_OK(duo_scalar_from_bn_mod(ec, &b, u));
        DUO_CHECK(memcmp(a.b, b.b, 32) == 0);
    }
    DUO_EXPECT_ERR(duo_scalar_from_bn_mod(ec, &b, q), DUO_E_BAD_SCALAR);
    BN_zero(u);
    DUO_EXPECT_ERR(duo_scalar_from_bn_mod(ec, &b, u), DUO_E_BAD_SCALAR);
    BN_set_word(u, 1);
    BN_set_negative(u, 1); /* -1 -> q-1 */
    DUO_CHECK_OK(duo_scalar_from_bn_mod(ec, &b, u));
    BN_copy(t, q);
    BN_sub_word(t, 1);
    DUO_CHECK(bn_eq_scalar(t, &b));
    BN_free(q);
    BN_free(t);
    BN_free(u);
}

static void hex2bin(uint8_t *out, const char *hex, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

/* 1 if x^3 + a*x + b is a square mod p (so x is the abscissa of a curve
 * point). */
static int x_on_curve(const BIGNUM *x, const BIGNUM *p) {
    BIGNUM *y2 = BN_new(), *e = BN_new(), *r = BN_new(), *b = bn_hex(kat->b), *ax = BN_new();
    int ok;
    BN_mod_sqr(y2, x, p, bnctx);
    BN_mod_mul(y2, y2, x, p, bnctx);
    BN_copy(ax, x);
    BN_mul_word(ax, (BN_ULONG)(kat->a < 0 ? -kat->a : kat->a));
    if (kat->a < 0) BN_set_negative(ax, 1);
    BN_add(y2, y2, ax);
    BN_add(y2, y2, b);
    BN_nnmod(y2, y2, p, bnctx);
    BN_free(b);
    BN_free(ax);
    BN_copy(e, p);
    BN_sub_word(e, 1);
    BN_rshift1(e, e);
    BN_mod_exp(r, y2, e, p, bnctx);
    ok = BN_is_one(r) || BN_is_zero(y2);
    BN_free(y2);
    BN_free(e);
    BN_free(r);
    return ok;
}

static void test_point_parse(void) {
    const char *G_HEX = kat->g;
    uint8_t buf[65], out[33];
    duo_point P;
    BIGNUM *p = bn_hex(P_HEX), *x = BN_new();
    int found_bad = 0, found_good = 0;
    unsigned long w;

    hex2bin(buf, G_HEX, 33);
    DUO_CHECK_OK(duo_point_parse(ec, &P, buf, 33));
    duo_point_serialize(ec, out, &P);
    DUO_CHECK(memcmp(out, buf, 33) == 0);
    buf[0] ^= 0x01;
    DUO_CHECK_OK(duo_point_parse(ec, &P, buf, 33)); /* -G */
    buf[0] ^= 0x01;
    /* the point at infinity: its SEC1 form (one 00 byte) and 33 zero bytes */
    {
        uint8_t inf[33] = {0};
        DUO_EXPECT_ERR(duo_point_parse(ec, &P, inf, 1), DUO_E_BAD_POINT);
        DUO_EXPECT_ERR(duo_point_parse(ec, &P, inf, 33), DUO_E_BAD_POINT);
    }
    /* wrong prefixes */
    buf[0] = 0x04;
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
    buf[0] = 0x00;
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
    buf[0] = 0x05;
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
    buf[0] = 0x06;
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
    buf[0] = kat->g[1] == '2' ? 0x02 : 0x03;
    /* wrong lengths */
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 32), DUO_E_BAD_POINT);
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 34), DUO_E_BAD_POINT);
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 0), DUO_E_BAD_POINT);
    /* a valid uncompressed encoding of G is still refused */
    {
        uint8_t unc[65];
        DUO_CHECK_OK(duo_point_parse(ec, &P, buf, 33));
        duo_point_serialize_full(ec, unc, &P);
        DUO_CHECK(unc[0] == 0x04 && memcmp(unc + 1, buf + 1, 32) == 0);
        if (duo_ec_secp(ec) != NULL) {
            secp256k1_pubkey pk;
            DUO_CHECK(secp256k1_ec_pubkey_parse(duo_ec_secp(ec), &pk, unc, 65)); /* libsecp would take it */
        }
        DUO_EXPECT_ERR(duo_point_parse(ec, &P, unc, 65), DUO_E_BAD_POINT);
        unc[0] = 0x02;
        DUO_EXPECT_ERR(duo_point_parse(ec, &P, unc, 65), DUO_E_BAD_POINT);
    }
    /* off-curve and on-curve x, decided independently with BN arithmetic */
    for (w = 1; w < 64 && !(found_bad && found_good); w++) {
        BN_set_word(x, w);
        memset(buf, 0, 33);
        buf[0] = 0x02;
        be32_from_bn(buf + 1, x);
        if (x_on_curve(x, p)) {
            DUO_CHECK_OK(duo_point_parse(ec, &P, buf, 33));
            found_good = 1;
            /* x + p < 2^256 names the same field element: must be refused */
            {
                BIGNUM *xp = BN_new();
                BN_add(xp, x, p);
                DUO_CHECK(BN_num_bits(xp) <= 256);
                be32_from_bn(buf + 1, xp);
                DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
                BN_free(xp);
            }
        } else {
            DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
            buf[0] = 0x03;
            DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
            found_bad = 1;
        }
    }
    DUO_CHECK(found_bad && found_good);
    /* x == p and x = 2^256-1 */
    buf[0] = 0x02;
    be32_from_bn(buf + 1, p);
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
    memset(buf + 1, 0xff, 32);
    DUO_EXPECT_ERR(duo_point_parse(ec, &P, buf, 33), DUO_E_BAD_POINT);
    BN_free(p);
    BN_free(x);
}

static void test_point_kat(void) {
    const char *G2 = kat->g2;
    const char *G3 = kat->g3;
    uint8_t want[33], got[33], b[32];
    duo_scalar k;
    duo_point P, G, G2p;

    memset(b, 0, 32);
    b[31] = 2;
    DUO_CHECK_OK(duo_scalar_parse(ec, &k, b));
    DUO_CHECK_OK(duo_point_mul_base(ec, &P, &k));
    duo_point_serialize(ec, got, &P);
    hex2bin(want, G2, 33);
    DUO_CHECK(memcmp(got, want, 33) == 0);
    /* 3G = 2G + G = 3*G via mul */
    b[31] = 1;
    DUO_CHECK_OK(duo_scalar_parse(ec, &k, b));
    DUO_CHECK_OK(duo_point_mul_base(ec, &G, &k));
    DUO_CHECK_OK(duo_point_add(ec, &G2p, &P, &G));
    duo_point_serialize(ec, got, &G2p);
    hex2bin(want, G3, 33);
    DUO_CHECK(memcmp(got, want, 33) == 0);
    b[31] = 3;
    DUO_CHECK_OK(duo_scalar_parse(ec, &k, b));
    DUO_CHECK_OK(duo_point_mul(ec, &P, &G, &k));
    duo_point_serialize(ec, got, &P);
    DUO_CHECK(memcmp(got, want, 33) == 0);
}

static void test_point_arith(void) {
    duo_scalar a, b, s, na, zero;
    duo_point A, B, S, T, U, nA;
    int i;

    for (i = 0; i < ITER; i++) {
        DUO_CHECK_OK(duo_scalar_random(ec, &a, &drng.rng));
        DUO_CHECK_OK(duo_scalar_random(ec, &b, &drng.rng));
        DUO_CHECK_OK(duo_point_mul_base(ec, &A, &a));
        DUO_CHECK_OK(duo_point_mul_base(ec, &B, &b));
        /* a*G + b*G == (a+b)*G */
        DUO_CHECK_OK(duo_scalar_add(ec, &s, &a, &b));
        DUO_CHECK_OK(duo_point_mul_base(ec, &S, &s));
        DUO_CHECK_OK(duo_point_add(ec, &T, &A, &B));
        DUO_CHECK(duo_point_eq_var(ec, &S, &T));
        DUO_CHECK(!duo_point_eq_var(ec, &A, &B));
        /* a*(b*G) == (a*b)*G == b*(a*G) */
        DUO_CHECK_OK(duo_scalar_mul(ec, &s, &a, &b));
        DUO_CHECK_OK(duo_point_mul_base(ec, &S, &s));
        DUO_CHECK_OK(duo_point_mul(ec, &T, &B, &a));
        DUO_CHECK_OK(duo_point_mul(ec, &U, &A, &b));
        DUO_CHECK(duo_point_eq_var(ec, &S, &T));
        DUO_CHECK(duo_point_eq_var(ec, &S, &U));
        /* A + (-A) is infinity */
        DUO_CHECK_OK(duo_scalar_negate(ec, &na, &a));
        DUO_CHECK_OK(duo_point_mul_base(ec, &nA, &na));
        DUO_EXPECT_ERR(duo_point_add(ec, &T, &A, &nA), DUO_E_BAD_POINT);
        /* A + A == 2a*G */
        DUO_CHECK_OK(duo_scalar_add(ec, &s, &a, &a));
        DUO_CHECK_OK(duo_point_mul_base(ec, &S, &s));
        DUO_CHECK_OK(duo_point_add(ec, &T, &A, &A));
        DUO_CHECK(duo_point_eq_var(ec, &S, &T));
    }
    memset(&zero, 0, sizeof zero);
    DUO_EXPECT_ERR(duo_point_mul_base(ec, &S, &zero), DUO_E_BAD_SCALAR);
    DUO_EXPECT_ERR(duo_point_mul(ec, &S, &A, &zero), DUO_E_BAD_SCALAR);
    memset(zero.b, 0xff, 32);
    DUO_EXPECT_ERR(duo_point_mul_base(ec, &S, &zero), DUO_E_BAD_SCALAR);
    DUO_EXPECT_ERR(duo_point_mul(ec, &S, &A, &zero), DUO_E_BAD_SCALAR);
}

static void test_x_mod_q(void) {
    BIGNUM *q = bn_hex(Q_HEX), *p = bn_hex(P_HEX), *x = BN_new(), *r = BN_new();
    duo_scalar a, rs;
    duo_point P;
    uint8_t enc[33];
    int i, found = 0;

    for (i = 0; i < 16; i++) {
        DUO_CHECK_OK(duo_scalar_random(ec, &a, &drng.rng));
        DUO_CHECK_OK(duo_point_mul_base(ec, &P, &a));
        duo_point_serialize(ec, enc, &P);
        BN_bin2bn(enc + 1, 32, x);
        BN_nnmod(r, x, q, bnctx);
        DUO_CHECK_OK(duo_point_x_mod_q(ec, &rs, &P));
        DUO_CHECK(bn_eq_scalar(r, &rs));
    }
    /* A point with q <= x < p: x mod q must actually subtract q. */
    BN_copy(x, q);
    for (i = 0; i < 200 && !found; i++) {
        BN_add_word(x, 1);
        if (!x_on_curve(x, p)) continue;
        enc[0] = 0x02;
        be32_from_bn(enc + 1, x);
        DUO_CHECK_OK(duo_point_parse(ec, &P, enc, 33));
        DUO_CHECK_OK(duo_point_x_mod_q(ec, &rs, &P));
        BN_sub(r, x, q);
        DUO_CHECK(bn_eq_scalar(r, &rs));
        DUO_CHECK(BN_num_bits(r) < 16);
        found = 1;
    }
    DUO_CHECK(found);
    BN_free(q);
    BN_free(p);
    BN_free(x);
    BN_free(r);
}

/* ---- ECDSA cross-check against libsecp256k1 and OpenSSL ---- */

static EVP_PKEY *openssl_pub(const uint8_t *pub, size_t pub_len) {
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;

    if (bld == NULL || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, duo_ec_group_name(ec), 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* 1 if OpenSSL accepts the DER signature over the 32-byte digest. */
static int openssl_verify(EVP_PKEY *pkey, const uint8_t *der, size_t der_len, const uint8_t digest[32]) {
    EVP_PKEY_CTX *v = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    int ok = v != NULL && EVP_PKEY_verify_init(v) == 1 && EVP_PKEY_verify(v, der, der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(v);
    return ok;
}

static int p256_verify_low_s(const uint8_t sig[64], const uint8_t digest[32], const duo_point *pub) {
    uint8_t full[65], der[DUO_ECDSA_DER_MAX];
    unsigned char *p = der;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL), *half = bn_hex(Q_HEX);
    int ok = 0;
    BN_rshift1(half, half);
    duo_point_serialize_full(ec, full, pub);
    if (BN_cmp(s, half) <= 0 && ECDSA_SIG_set0(es, r, s)) {
        int len = i2d_ECDSA_SIG(es, &p);
        EVP_PKEY *k = openssl_pub(full, 65);
        ok = len > 0 && k != NULL && openssl_verify(k, der, (size_t)len, digest);
        EVP_PKEY_free(k);
        r = s = NULL;
    }
    BN_free(r);
    BN_free(s);
    BN_free(half);
    ECDSA_SIG_free(es);
    return ok;
}

/* libsecp256k1's verifier on secp256k1; on P-256 OpenSSL's (called with the
 * raw r||s turned into DER by hand-free ECDSA_SIG), both refusing high S. */
static int secp_verify(const uint8_t sig[64], const uint8_t digest[32], const duo_point *pub) {
    if (duo_ec_secp(ec) == NULL) {
        return p256_verify_low_s(sig, digest, pub);
    }
    secp256k1_ecdsa_signature s;
    if (!secp256k1_ecdsa_signature_parse_compact(duo_ec_secp(ec), &s, sig)) return 0;
    return secp256k1_ecdsa_verify(duo_ec_secp(ec), &s, digest, &pub->p);
}

/* Builds an ECDSA signature purely from duo_* scalar/point functions. */
static int duo_sign(uint8_t sig[64], const uint8_t digest[32], const duo_scalar *x) {
    duo_scalar k, kinv, r, m, rx, t, s;
    duo_point R;
    if (duo_scalar_random(ec, &k, &drng.rng) != DUO_OK) return 0;
    if (duo_point_mul_base(ec, &R, &k) != DUO_OK) return 0;
    if (duo_point_x_mod_q(ec, &r, &R) != DUO_OK) return 0;
    if (duo_scalar_reduce32(ec, &m, digest) != DUO_OK) return 0;
    if (duo_scalar_mul(ec, &rx, &r, x) != DUO_OK) return 0;
    if (duo_scalar_add(ec, &t, &m, &rx) != DUO_OK) return 0;
    if (duo_scalar_inverse(ec, &kinv, &k) != DUO_OK) return 0;
    if (duo_scalar_mul(ec, &s, &kinv, &t) != DUO_OK) return 0;
    memcpy(sig, r.b, 32);
    memcpy(sig + 32, s.b, 32);
    duo_memzero(&k, sizeof k);
    duo_memzero(&kinv, sizeof kinv);
    return 1;
}

static void test_ecdsa_crosscheck(void) {
    int i, high_seen = 0;

    for (i = 0; i < ITER; i++) {
        duo_scalar x, s, ns;
        duo_point X;
        uint8_t pub[33], digest[32], sig[64], raw[64], bad[64], der[DUO_ECDSA_DER_MAX], der2[DUO_ECDSA_DER_MAX];
        size_t der_len = sizeof der, der2_len = sizeof der2;
        EVP_PKEY *pkey;

        DUO_CHECK_OK(duo_scalar_random(ec, &x, &drng.rng));
        DUO_CHECK_OK(duo_point_mul_base(ec, &X, &x));
        duo_point_serialize(ec, pub, &X);
        DUO_CHECK_OK(duo_rng_bytes(&drng.rng, digest, 32));
        DUO_REQUIRE(duo_sign(raw, digest, &x));
        memcpy(sig, raw, 64);
        DUO_CHECK_OK(duo_ecdsa_normalize(ec, sig));
        /* low S: s <= (q-1)/2, and the normaliser picked s or q-s */
        memcpy(s.b, raw + 32, 32);
        DUO_CHECK_OK(duo_scalar_negate(ec, &ns, &s));
        DUO_CHECK(memcmp(sig + 32, s.b, 32) == 0 || memcmp(sig + 32, ns.b, 32) == 0);
        DUO_CHECK(memcmp(sig, raw, 32) == 0);

        pkey = openssl_pub(pub, 33);
        DUO_REQUIRE(pkey != NULL);
        DUO_CHECK_OK(duo_ecdsa_to_der(ec, der, &der_len, sig));
        DUO_CHECK(der_len >= 8 && der_len <= DUO_ECDSA_DER_MAX && der[0] == 0x30);

        /* valid: libsecp256k1 directly, duo wrapper, OpenSSL */
        DUO_CHECK(secp_verify(sig, digest, &X) == 1);
        DUO_CHECK_OK(duo_ecdsa_verify(ec, sig, digest, &X));
        DUO_CHECK(openssl_verify(pkey, der, der_len, digest) == 1);

        /* high-S twin: OpenSSL accepts, libsecp256k1 (and we) reject */
        memcpy(bad, sig, 32);
        memcpy(s.b, sig + 32, 32);
        DUO_CHECK_OK(duo_scalar_negate(ec, &ns, &s));
        memcpy(bad + 32, ns.b, 32);
        DUO_CHECK_OK(duo_ecdsa_to_der(ec, der2, &der2_len, bad));
        DUO_CHECK(openssl_verify(pkey, der2, der2_len, digest) == 1);
        DUO_CHECK(secp_verify(bad, digest, &X) == 0);
        DUO_EXPECT_ERR(duo_ecdsa_verify(ec, bad, digest, &X), DUO_E_BAD_SIGNATURE);
        if (memcmp(raw + 32, ns.b, 32) == 0) high_seen = 1;

        /* tampered: one bit of s, one bit of r, one bit of the digest */
        {
            int which;
            for (which = 0; which < 3; which++) {
                uint8_t d2[32];
                memcpy(bad, sig, 64);
                memcpy(d2, digest, 32);
                if (which == 0) bad[63] ^= 0x01;
                if (which == 1) bad[5] ^= 0x10;
                if (which == 2) d2[0] ^= 0x80;
                der2_len = sizeof der2;
                if (duo_ecdsa_to_der(ec, der2, &der2_len, bad) != DUO_OK) continue; /* r/s >= q */
                DUO_CHECK(secp_verify(bad, d2, &X) == 0);
                DUO_CHECK(duo_ecdsa_verify(ec, bad, d2, &X) == DUO_E_BAD_SIGNATURE);
                DUO_CHECK(openssl_verify(pkey, der2, der2_len, d2) == 0);
            }
        }
        /* wrong key */
        {
            duo_point Y;
            DUO_CHECK_OK(duo_point_add(ec, &Y, &X, &X));
            DUO_CHECK(secp_verify(sig, digest, &Y) == 0);
            DUO_EXPECT_ERR(duo_ecdsa_verify(ec, sig, digest, &Y), DUO_E_BAD_SIGNATURE);
        }
        EVP_PKEY_free(pkey);
        duo_memzero(&x, sizeof x);
    }
    /* the raw (unnormalised) signature was high-S in some round: normalize did work */
    DUO_CHECK(high_seen);
}

static void test_ecdsa_misc(void) {
    uint8_t sig[64], der[DUO_ECDSA_DER_MAX];
    size_t len;
    BIGNUM *q = bn_hex(Q_HEX);

    memset(sig, 0x11, 64);
    len = 8;
    DUO_EXPECT_ERR(duo_ecdsa_to_der(ec, der, &len, sig), DUO_E_BUFFER_TOO_SMALL);
    DUO_CHECK(len > 8);
    DUO_CHECK_OK(duo_ecdsa_to_der(ec, der, &len, sig));
    /* r == q cannot be parsed */
    be32_from_bn(sig, q);
    DUO_EXPECT_ERR(duo_ecdsa_normalize(ec, sig), DUO_E_BAD_SIGNATURE);
    len = sizeof der;
    DUO_EXPECT_ERR(duo_ecdsa_to_der(ec, der, &len, sig), DUO_E_BAD_SIGNATURE);
    memset(sig, 0xff, 64);
    DUO_EXPECT_ERR(duo_ecdsa_normalize(ec, sig), DUO_E_BAD_SIGNATURE);
    /* normalize maps s = q-1 to 1 */
    memset(sig, 0x11, 32);
    BN_sub_word(q, 1);
    be32_from_bn(sig + 32, q);
    DUO_CHECK_OK(duo_ecdsa_normalize(ec, sig));
    DUO_CHECK(sig[63] == 1 && duo_ct_is_zero(sig + 32, 31));
    BN_free(q);
}

static void run_curve(void);

int main(void) {
    unsigned long seed = duo_test_seed();
    duo_det_rng_init(&drng, (uint64_t)seed);
    bnctx = BN_CTX_new();
    for (size_t c = 0; c < sizeof KATS / sizeof KATS[0]; c++) {
        kat = &KATS[c];
        fprintf(stderr, "== curve %s\n", duo_curve_name(kat->curve));
        if (duo_ec_new(&ec, kat->curve, &drng.rng) != DUO_OK) {
            fprintf(stderr, "duo_ec_new failed\n");
            return 1;
        }
        run_curve();
        duo_ec_free(ec);
    }
    BN_CTX_free(bnctx);
    return duo_test_finish();
}

static void run_curve(void) {
    DUO_RUN(test_ctx);
    if (kat->curve == DUO_CURVE_SECP256K1) {
        DUO_RUN(test_ctx_randomized);
        DUO_RUN(test_ctx_rng_failure);
    } else {
        DUO_RUN(test_p256_method);
    }
    DUO_RUN(test_scalar_parse);
    DUO_RUN(test_scalar_reduce32);
    DUO_RUN(test_scalar_arith);
    DUO_RUN(test_scalar_bn);
    DUO_RUN(test_point_parse);
    DUO_RUN(test_point_kat);
    DUO_RUN(test_point_arith);
    DUO_RUN(test_x_mod_q);
    DUO_RUN(test_ecdsa_crosscheck);
    DUO_RUN(test_ecdsa_misc);
}
