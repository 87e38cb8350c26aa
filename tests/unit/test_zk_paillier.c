/* L_N, Pi-mod and the L_P range proof (zk_paillier.h): completeness at 2048
 * and 3072 bits, rejection of wrong bindings, other moduli, tampering, wrong
 * lengths, bad moduli (gcd(N, phi(N)) != 1, non-Blum) and out-of-range
 * plaintexts. Prints proof sizes and prove/verify times (never asserted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>

#include "det_rng.h"
#include "duosign/curve.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"
#include "duosign/transcript.h"
#include "duosign/zk_paillier.h"
#include "test_harness.h"
#include "pedersen521.h"
#include "zk_paillier_internal.h"

static duo_ec *g_ec;
static duo_paillier_priv *g_a; /* 2048 */
static duo_paillier_priv *g_b; /* 2048, another key */
static duo_paillier_priv *g_c; /* 3072 */
static duo_det_rng g_rng;
static duo_binding g_bind;

/* Process CPU time: the test is single-threaded, and CPU time is stable when
 * other builds share the machine (wall time is not). */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const duo_paillier_pub *pub(const duo_paillier_priv *sk) { return duo_paillier_priv_pub(sk); }

static size_t nbytes(const duo_paillier_priv *sk) { return duo_paillier_pub_bits(pub(sk)) / 8u; }

static duo_binding other_sid(void) {
    duo_binding b = g_bind;
    b.sid[5] ^= 0x01;
    return b;
}

static duo_binding other_role(void) {
    duo_binding b = g_bind;
    b.role = DUO_ROLE_DEVICE;
    return b;
}

/* Parses N into a public key (runs the modulus checks). */
static duo_paillier_pub *pub_from_n(const BIGNUM *n, unsigned bits) {
    uint8_t buf[384];
    duo_paillier_pub *pk = NULL;
    if (BN_bn2binpad(n, buf, (int)(bits / 8u)) < 0) return NULL;
    if (duo_paillier_pub_parse(&pk, buf, bits / 8u, bits) != DUO_OK) return NULL;
    return pk;
}

/* A random prime of `bits` bits, = rem mod 4 (rem 1 or 3), top bit set. */
static BIGNUM *prime_mod4(int bits, unsigned long rem) {
    BIGNUM *p = BN_new(), *add = BN_new(), *r = BN_new();
    int ok =
        p && add && r && BN_set_word(add, 4) && BN_set_word(r, rem) && BN_generate_prime_ex(p, bits, 0, add, r, NULL);
    BN_free(add);
    BN_free(r);
    if (!ok) {
        BN_free(p);
        return NULL;
    }
    return p;
}

/* ---------------------------------------------------------------- Jacobi */

static void test_jacobi(void) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *a = BN_new(), *n = BN_new();
    int i, j, mism = 0, nonzero = 0;
    DUO_REQUIRE(ctx && a && n);
    /* small exhaustive: every a < n for odd n < 200, against BN_kronecker */
    for (i = 3; i < 200; i += 2) {
        for (j = 0; j < i; j++) {
            int got = 5;
            DUO_CHECK(BN_set_word(a, (BN_ULONG)j) && BN_set_word(n, (BN_ULONG)i));
            DUO_CHECK_OK(duo__jacobi_var(&got, a, n, ctx));
            if (got != BN_kronecker(a, n, ctx)) mism++;
        }
    }
    DUO_CHECK(mism == 0);
    /* random 2048-bit values against the RSA modulus of key A */
    for (i = 0; i < 200; i++) {
        int got = 5;
        DUO_CHECK(BN_rand(a, 2100, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY));
        DUO_CHECK_OK(duo__jacobi_var(&got, a, duo_paillier_pub_n(pub(g_a)), ctx));
        DUO_CHECK(got == BN_kronecker(a, duo_paillier_pub_n(pub(g_a)), ctx));
        nonzero += got != 0;
    }
    DUO_CHECK(nonzero == 200);
    /* J(-1 / N) = 1 for N = pq, p = q = 3 mod 4; J(-1/p) = -1 */
    DUO_CHECK(BN_copy(a, duo_paillier_pub_n(pub(g_a))) && BN_sub_word(a, 1));
    DUO_CHECK_OK(duo__jacobi_var(&i, a, duo_paillier_pub_n(pub(g_a)), ctx));
    DUO_CHECK(i == 1);
    DUO_CHECK(BN_copy(a, duo_paillier_priv_p(g_a)) && BN_sub_word(a, 1));
    DUO_CHECK_OK(duo__jacobi_var(&i, a, duo_paillier_priv_p(g_a), ctx));
    DUO_CHECK(i == -1);
    DUO_CHECK(BN_set_word(n, 10));
    DUO_EXPECT_ERR(duo__jacobi_var(&i, a, n, ctx), DUO_E_INVALID_ARG);
    BN_free(a);
    BN_free(n);
    BN_CTX_free(ctx);
}

/* ------------------------------------------------------------------- L_N */

static void flip(uint8_t *buf, size_t pos, int bit) { buf[pos] ^= (uint8_t)(1u << bit); }

static void report(const char *what, unsigned bits, size_t size, double prove, double verify) {
    fprintf(stderr, "  [%s %u] %zu bytes, prove %.1f ms, verify %.1f ms (CPU)\n", what, bits, size, prove, verify);
}

static void ln_roundtrip(const duo_paillier_priv *sk) {
    unsigned bits = duo_paillier_pub_bits(pub(sk));
    size_t len = duo_zk_ln_bytes(bits);
    uint8_t *pr = malloc(len);
    double t0, t1, t2;
    DUO_REQUIRE(pr != NULL && len == 10u * bits / 8u);
    t0 = now_ms();
    DUO_CHECK_OK(duo_zk_ln_prove(sk, &g_bind, pr, len));
    t1 = now_ms();
    DUO_CHECK_OK(duo_zk_ln_verify(pub(sk), &g_bind, pr, len));
    t2 = now_ms();
    report("L_N", bits, len, t1 - t0, t2 - t1);
    free(pr);
}

static void test_ln(void) {
    size_t nb = nbytes(g_a), len = duo_zk_ln_bytes(2048), i;
    uint8_t *pr = malloc(len + 1), *pb = malloc(len);
    duo_binding b;
    DUO_REQUIRE(pr != NULL && pb != NULL);
    ln_roundtrip(g_a);
    DUO_CHECK_OK(duo_zk_ln_prove(g_a, &g_bind, pr, len));
    DUO_CHECK_OK(duo_zk_ln_verify(pub(g_a), &g_bind, pr, len));
    /* deterministic: same key and binding give the same proof */
    DUO_CHECK_OK(duo_zk_ln_prove(g_a, &g_bind, pb, len));
    DUO_CHECK(memcmp(pr, pb, len) == 0);
    /* binding */
    b = other_sid();
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &b, pr, len), DUO_E_BAD_PROOF);
    b = other_role();
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &b, pr, len), DUO_E_BAD_PROOF);
    /* another modulus */
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_b), &g_bind, pr, len), DUO_E_BAD_PROOF);
    DUO_CHECK_OK(duo_zk_ln_prove(g_b, &g_bind, pb, len));
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
    /* lengths */
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pr, len - 1), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pr, len + 1), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pr, 0), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(duo_zk_ln_prove(g_a, &g_bind, pb, len - 1), DUO_E_BUFFER_TOO_SMALL);
    /* bit flips: first, middle and last byte of every sigma_i */
    for (i = 0; i < DUO_ZK_LN_REPS; i++) {
        size_t pos[3] = {i * nb, i * nb + nb / 2, i * nb + nb - 1};
        int k;
        for (k = 0; k < 3; k++) {
            flip(pr, pos[k], k * 3);
            DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
            flip(pr, pos[k], k * 3);
        }
    }
    /* out-of-range and non-unit sigma: 0, N, N + sigma, p */
    {
        BIGNUM *v = BN_new();
        DUO_REQUIRE(v != NULL);
        memcpy(pb, pr, len);
        memset(pb + 3 * nb, 0, nb);
        DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
        DUO_CHECK(BN_bn2binpad(duo_paillier_pub_n(pub(g_a)), pb + 3 * nb, (int)nb) == (int)nb);
        DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
        memset(pb + 3 * nb, 0xff, nb);
        DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
        DUO_CHECK(BN_bn2binpad(duo_paillier_priv_p(g_a), pb + 3 * nb, (int)nb) == (int)nb);
        DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
        /* a forged sigma: a random unit */
        DUO_CHECK_OK(duo_paillier_random_unit(pub(g_a), v, &g_rng.rng));
        DUO_CHECK(BN_bn2binpad(v, pb + 3 * nb, (int)nb) == (int)nb);
        DUO_EXPECT_ERR(duo_zk_ln_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
        BN_free(v);
    }
    free(pr);
    free(pb);
}

/* N = p^2 * r: passes every modulus check (odd, composite, not a square, no
 * small factor) but gcd(N, phi(N)) = p. The only thing that stops it is L_N. */
static void test_ln_rejects_non_coprime(void) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = NULL, *r = NULL, *n = BN_new(), *phi = BN_new(), *g = BN_new(), *d = BN_new(), *t = BN_new();
    duo_paillier_pub *pk = NULL;
    size_t len = duo_zk_ln_bytes(2048);
    uint8_t *pr = malloc(len);
    int tries = 0;
    DUO_REQUIRE(ctx && n && phi && g && d && t && pr);
    do {
        BN_free(p);
        BN_free(r);
        p = prime_mod4(683, 3);
        r = prime_mod4(682, 3);
        DUO_REQUIRE(p && r);
        DUO_CHECK(BN_sqr(n, p, ctx) && BN_mul(n, n, r, ctx));
    } while (BN_num_bits(n) != 2048 && ++tries < 100);
    DUO_REQUIRE(BN_num_bits(n) == 2048);
    pk = pub_from_n(n, 2048);
    DUO_REQUIRE(pk != NULL); /* the modulus checks cannot see the flaw */
    /* phi(N) = p (p - 1) (r - 1); gcd(N, phi(N)) = p */
    DUO_CHECK(BN_copy(phi, p) && BN_sub_word(phi, 1) && BN_copy(t, r) && BN_sub_word(t, 1) &&
              BN_mul(phi, phi, t, ctx) && BN_mul(t, phi, p, ctx) && BN_gcd(g, n, t, ctx));
    DUO_CHECK(BN_cmp(g, p) == 0);
    /* Best cheating exponent: d = N^-1 mod (p-1)(r-1) gives N-th roots mod p
     * and mod r, but x -> x^N is p-to-1 on Z*_{p^2}, so rho_i is an N-th
     * power only with probability 1/p. */
    DUO_REQUIRE(BN_mod_inverse(d, n, phi, ctx) != NULL);
    DUO_CHECK_OK(duo__zk_ln_prove_exp(n, 2048, d, &g_bind, pr, len));
    DUO_EXPECT_ERR(duo_zk_ln_verify(pk, &g_bind, pr, len), DUO_E_BAD_PROOF);
    /* the same cheating prover on a good modulus does pass (sanity of the
     * test path): d = N^-1 mod phi(N) */
    DUO_REQUIRE(BN_mod_inverse(d, duo_paillier_pub_n(pub(g_a)), duo_paillier_priv_phi(g_a), ctx) != NULL);
    DUO_CHECK_OK(duo__zk_ln_prove_exp(duo_paillier_pub_n(pub(g_a)), 2048, d, &g_bind, pr, len));
    DUO_CHECK_OK(duo_zk_ln_verify(pub(g_a), &g_bind, pr, len));
    duo_paillier_pub_free(pk);
    BN_free(p);
    BN_free(r);
    BN_free(n);
    BN_free(phi);
    BN_free(g);
    BN_free(d);
    BN_free(t);
    BN_CTX_free(ctx);
    free(pr);
}

/* ---------------------------------------------------------------- Pi-mod */

static void mod_roundtrip(const duo_paillier_priv *sk) {
    unsigned bits = duo_paillier_pub_bits(pub(sk));
    size_t len = duo_zk_mod_bytes(bits);
    uint8_t *pr = malloc(len);
    double t0, t1, t2;
    DUO_REQUIRE(pr != NULL && len == bits / 8u + 80u * (1u + bits / 8u));
    t0 = now_ms();
    DUO_CHECK_OK(duo_zk_mod_prove(sk, &g_bind, &g_rng.rng, pr, len));
    t1 = now_ms();
    DUO_CHECK_OK(duo_zk_mod_verify(pub(sk), &g_bind, pr, len));
    t2 = now_ms();
    report("Pi-mod", bits, len, t1 - t0, t2 - t1);
    free(pr);
}

static void test_mod(void) {
    size_t nb = nbytes(g_a), len = duo_zk_mod_bytes(2048), rep = 1 + nb;
    uint8_t *pr = malloc(len + 1), *pb = malloc(len);
    duo_binding b;
    unsigned i;
    DUO_REQUIRE(pr != NULL && pb != NULL);
    mod_roundtrip(g_a);
    DUO_CHECK_OK(duo_zk_mod_prove(g_a, &g_bind, &g_rng.rng, pr, len));
    DUO_CHECK_OK(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len));
    b = other_sid();
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &b, pr, len), DUO_E_BAD_PROOF);
    b = other_role();
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &b, pr, len), DUO_E_BAD_PROOF);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_b), &g_bind, pr, len), DUO_E_BAD_PROOF);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len - 1), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len + 1), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(duo_zk_mod_prove(g_a, &g_bind, &g_rng.rng, pr, len + 1), DUO_E_BUFFER_TOO_SMALL);
    /* bit flips in w (first/last byte) */
    flip(pr, 0, 0);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
    flip(pr, 0, 0);
    flip(pr, nb - 1, 1);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
    flip(pr, nb - 1, 1);
    /* in repetitions 0, 41 and 79: the (a, b) byte (bits 0, 1, 7), x_i (first,
     * last, middle byte) */
    for (i = 0; i < 3; i++) {
        size_t off = nb + (size_t)(i == 0 ? 0 : i == 1 ? 41 : 79) * rep;
        int bits[3] = {0, 1, 7}, k;
        for (k = 0; k < 3; k++) {
            flip(pr, off, bits[k]);
            DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
            flip(pr, off, bits[k]);
        }
        flip(pr, off + 1, 2);
        DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
        flip(pr, off + 1, 2);
        flip(pr, off + 1 + nb - 1, 0);
        DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
        flip(pr, off + 1 + nb - 1, 0);
        flip(pr, off + 1 + nb / 2, 5);
        DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len), DUO_E_BAD_PROOF);
        flip(pr, off + 1 + nb / 2, 5);
    }
    DUO_CHECK_OK(duo_zk_mod_verify(pub(g_a), &g_bind, pr, len)); /* restored */
    /* x_0 = 0 and x_0 = N (out of range) are rejected. */
    memcpy(pb, pr, len);
    memset(pb + nb + 1, 0, nb);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
    DUO_CHECK(BN_bn2binpad(duo_paillier_pub_n(pub(g_a)), pb + nb + 1, (int)nb) == (int)nb);
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
    /* w with Jacobi +1: w = 1 */
    memcpy(pb, pr, len);
    memset(pb, 0, nb);
    pb[nb - 1] = 1;
    DUO_EXPECT_ERR(duo_zk_mod_verify(pub(g_a), &g_bind, pb, len), DUO_E_BAD_PROOF);
    free(pr);
    free(pb);
}

/* N = p q with p = 1 mod 4 (not Blum). The honest prover's key type refuses
 * such primes; the test-only prover runs anyway and must be rejected. Also
 * shows directly that for some challenges y no valid answer exists: none of
 * +-y, +-w y is a fourth power mod N. */
static void test_mod_rejects_non_blum(void) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = NULL, *q = BN_new(), *n = BN_new(), *y = BN_new(), *w = BN_new(), *c = BN_new(), *e = BN_new(),
           *t = BN_new();
    duo_paillier_priv *sk = NULL;
    duo_paillier_pub *pk = NULL;
    size_t len = duo_zk_mod_bytes(2048), nb = 256;
    uint8_t *pr = malloc(len);
    int tries = 0, i, no_root = 0, jac = 0;
    DUO_REQUIRE(ctx && q && n && y && w && c && e && t && pr);
    DUO_CHECK_OK(duo_paillier_blum_prime(q, 2048));
    do {
        BN_free(p);
        p = prime_mod4(1024, 1);
        DUO_REQUIRE(p != NULL);
        DUO_CHECK(BN_mul(n, p, q, ctx));
    } while (BN_num_bits(n) != 2048 && ++tries < 100);
    DUO_REQUIRE(BN_num_bits(n) == 2048);
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk, p, q, 2048), DUO_E_INVALID_ARG);
    pk = pub_from_n(n, 2048);
    DUO_REQUIRE(pk != NULL);
    DUO_CHECK_OK(duo__zk_mod_prove_pq(p, q, 2048, &g_bind, &g_rng.rng, pr, len));
    DUO_EXPECT_ERR(duo_zk_mod_verify(pk, &g_bind, pr, len), DUO_E_BAD_PROOF);
    /* the same test-only prover with Blum primes passes (sanity of the path) */
    {
        uint8_t *pa = malloc(len);
        DUO_REQUIRE(pa != NULL);
        DUO_CHECK_OK(duo__zk_mod_prove_pq(duo_paillier_priv_p(g_a), duo_paillier_priv_q(g_a), 2048, &g_bind, &g_rng.rng,
                                          pa, len));
        DUO_CHECK_OK(duo_zk_mod_verify(pub(g_a), &g_bind, pa, len));
        free(pa);
    }
    /* Direct argument: w from the proof (Jacobi -1); for random units y,
     * count those where no (a, b) makes (-1)^a w^b y a fourth power mod N
     * (fourth power mod p: v^((p-1)/4) = 1; mod q = 3 mod 4: a QR). */
    DUO_CHECK(BN_bin2bn(pr, (int)nb, w) != NULL);
    DUO_CHECK_OK(duo__jacobi_var(&jac, w, n, ctx));
    DUO_CHECK(jac == -1);
    for (i = 0; i < 80; i++) {
        int a, b, found = 0;
        DUO_CHECK_OK(duo_paillier_random_unit(pk, y, &g_rng.rng));
        for (a = 0; a < 2; a++) {
            for (b = 0; b < 2; b++) {
                int quart_p, qr_q;
                DUO_CHECK(BN_copy(c, y) != NULL);
                if (b) DUO_CHECK(BN_mod_mul(c, c, w, n, ctx));
                if (a) DUO_CHECK(BN_sub(c, n, c));
                DUO_CHECK(BN_copy(e, p) && BN_sub_word(e, 1) && BN_rshift(e, e, 2) && BN_mod_exp(t, c, e, p, ctx));
                quart_p = BN_is_one(t);
                DUO_CHECK(BN_copy(e, q) && BN_sub_word(e, 1) && BN_rshift1(e, e) && BN_mod_exp(t, c, e, q, ctx));
                qr_q = BN_is_one(t);
                found |= quart_p && qr_q;
            }
        }
        no_root += !found;
    }
    fprintf(stderr, "  non-Blum N: %d of 80 challenges have no fourth root at all\n", no_root);
    DUO_CHECK(no_root > 0);
    duo_paillier_pub_free(pk);
    BN_free(p);
    BN_free(q);
    BN_free(n);
    BN_free(y);
    BN_free(w);
    BN_free(c);
    BN_free(e);
    BN_free(t);
    BN_CTX_free(ctx);
    free(pr);
}

/* ------------------------------------------------------------ range L_P */

typedef struct range_fixture {
    const duo_paillier_priv *sk;
    BIGNUM *x, *r, *ckey, *l;
} range_fixture;

static void rf_free(range_fixture *f) {
    BN_clear_free(f->x);
    BN_clear_free(f->r);
    BN_free(f->ckey);
    BN_free(f->l);
    memset(f, 0, sizeof *f);
}

/* ckey = Enc(x; r) for the given x (NULL: uniform in [0, l)). */
static int rf_init(range_fixture *f, const duo_paillier_priv *sk, const BIGNUM *x) {
    BIGNUM *rn = BN_new();
    int ok;
    memset(f, 0, sizeof *f);
    f->sk = sk;
    f->x = BN_new();
    f->r = BN_new();
    f->ckey = BN_new();
    f->l = BN_new();
    ok = rn && f->x && f->r && f->ckey && f->l && duo_zk_range_bound(g_ec, f->l) == DUO_OK;
    if (ok) ok = x ? BN_copy(f->x, x) != NULL : duo_bn_random_below(f->x, f->l, &g_rng.rng) == DUO_OK;
    ok = ok && duo_paillier_random_unit(pub(sk), f->r, &g_rng.rng) == DUO_OK &&
         duo_paillier_rn_from_r(pub(sk), rn, f->r) == DUO_OK &&
         duo_paillier_encrypt(pub(sk), f->ckey, f->x, rn) == DUO_OK;
    BN_clear_free(rn);
    return ok;
}

static int range_prove(const range_fixture *f, uint8_t *out, size_t len) {
    return duo_zk_range_prove(g_ec, f->sk, &g_bind, f->ckey, f->x, f->r, &g_rng.rng, out, len);
}

static int range_verify(const range_fixture *f, const uint8_t *in, size_t len) {
    return duo_zk_range_verify_rng(g_ec, pub(f->sk), &g_bind, f->ckey, in, len, &g_rng.rng);
}

static int range_verify_strict(const range_fixture *f, const uint8_t *in, size_t len) {
    return duo__zk_range_verify_ex(g_ec, pub(f->sk), &g_bind, f->ckey, in, len, 0, NULL);
}

/* The proof's fixed layout (zk_range.c). */
#define REP_BYTES_T (67u + 67u + 1u + 32u + 66u)
static size_t hdr_bytes(size_t nb) { return 67u + 67u + 3u * nb + 59u + 66u; }

static void range_roundtrip(const duo_paillier_priv *sk, int strict) {
    unsigned bits = duo_paillier_pub_bits(pub(sk));
    size_t nb = bits / 8u, len = duo_zk_range_bytes(bits);
    uint8_t *pr = malloc(len);
    range_fixture f;
    double t0, t1, t2, t3;
    DUO_REQUIRE(pr != NULL && len == hdr_bytes(nb) + 128u * REP_BYTES_T);
    DUO_REQUIRE(rf_init(&f, sk, NULL));
    t0 = now_ms();
    DUO_CHECK_OK(range_prove(&f, pr, len));
    t1 = now_ms();
    DUO_CHECK_OK(range_verify(&f, pr, len));
    t2 = now_ms();
    report("L_P range", bits, len, t1 - t0, t2 - t1);
    if (strict) {
        DUO_CHECK_OK(range_verify_strict(&f, pr, len));
        t3 = now_ms();
        fprintf(stderr, "  [L_P range %u] verify without batching %.1f ms (CPU)\n", bits, t3 - t2);
    }
    rf_free(&f);
    free(pr);
}

/* Offsets inside repetition k (zk_range.c: c_a || c_b || j || f1 || f2). */
typedef struct rep_layout {
    size_t base, ca, cb, j, f1, f2, end;
} rep_layout;

static rep_layout layout(size_t nb, unsigned k) {
    rep_layout L;
    L.base = hdr_bytes(nb) + (size_t)k * REP_BYTES_T;
    L.ca = L.base;
    L.cb = L.ca + 67;
    L.j = L.cb + 67;
    L.f1 = L.j + 1;
    L.f2 = L.f1 + 32;
    L.end = L.f2 + 66;
    return L;
}

/* Offsets of the header: C || B || A || z || w || v. */
typedef struct hdr_layout {
    size_t c, b, a, z, w, v;
} hdr_layout;

static hdr_layout hlayout(size_t nb) {
    hdr_layout H;
    H.c = 0;
    H.b = 67;
    H.a = 134;
    H.z = H.a + 2 * nb;
    H.w = H.z + 59;
    H.v = H.w + nb;
    return H;
}

/* 1 if repetition k was answered for challenge bit 1 (t_k is never all
 * zero in practice; bit-0 answers have f2 all zero). */
static int rep_is_e1(const uint8_t *pr, size_t nb, unsigned k) {
    rep_layout L = layout(nb, k);
    return !duo_ct_is_zero(pr + L.f2, 66);
}

static void test_range_honest(void) {
    size_t len = duo_zk_range_bytes(2048), nb = 256;
    uint8_t *pr = malloc(len);
    range_fixture f;
    unsigned k, e1 = 0;
    int i, passes = 0, strict_passes = 0;
    double tp = 0, tv = 0, t0;
    DUO_REQUIRE(pr != NULL);
    range_roundtrip(g_a, 1);
    /* x = 0 and x = l - 1 (the edges of the honest range) */
    {
        BIGNUM *x = BN_new();
        DUO_REQUIRE(x != NULL);
        BN_zero(x);
        DUO_REQUIRE(rf_init(&f, g_a, x));
        DUO_CHECK_OK(range_prove(&f, pr, len));
        DUO_CHECK_OK(range_verify(&f, pr, len));
        DUO_CHECK_OK(range_verify_strict(&f, pr, len));
        DUO_CHECK(BN_copy(x, f.l) && BN_sub_word(x, 1));
        rf_free(&f);
        DUO_REQUIRE(rf_init(&f, g_a, x));
        DUO_CHECK_OK(range_prove(&f, pr, len));
        DUO_CHECK_OK(range_verify(&f, pr, len));
        DUO_CHECK_OK(range_verify_strict(&f, pr, len));
        /* the honest prover refuses x = l */
        DUO_CHECK(BN_copy(x, f.l));
        DUO_EXPECT_ERR(duo_zk_range_prove(g_ec, g_a, &g_bind, f.ckey, x, f.r, &g_rng.rng, pr, len), DUO_E_INVALID_ARG);
        rf_free(&f);
        BN_free(x);
    }
    /* completeness: 50 random x in [0, l) with a fixed key, all pass
     * (5 with DUO_TEST_QUICK=1, the sanitizer build) */
    const char *quick = getenv("DUO_TEST_QUICK");
    const int runs = (quick != NULL && quick[0] == '1') ? 5 : 50;
    for (i = 0; i < runs; i++) {
        DUO_REQUIRE(rf_init(&f, g_a, NULL));
        t0 = now_ms();
        DUO_CHECK_OK(range_prove(&f, pr, len));
        tp += now_ms() - t0;
        t0 = now_ms();
        passes += range_verify(&f, pr, len) == DUO_OK;
        tv += now_ms() - t0;
        if (i < 2) strict_passes += range_verify_strict(&f, pr, len) == DUO_OK;
        for (k = 0; k < DUO_ZK_RANGE_REPS; k++) e1 += (unsigned)rep_is_e1(pr, nb, k);
        rf_free(&f);
    }
    DUO_CHECK(passes == runs);
    DUO_CHECK(strict_passes == 2);
    /* both challenge values occur, about half each (runs * 128 bits; the
     * bounds are over 10 standard deviations away in the full run) */
    {
        const unsigned total = (unsigned)runs * DUO_ZK_RANGE_REPS;
        DUO_CHECK(e1 > total * 3 / 8 && e1 < total * 5 / 8);
    }
    fprintf(stderr, "  [L_P range 2048] %d runs: all %d verify; mean prove %.1f ms, verify %.1f ms\n", runs, passes,
            tp / runs, tv / runs);
    free(pr);
}

static void test_range_reject(void) {
    size_t len = duo_zk_range_bytes(2048), nb = 256;
    uint8_t *pr = malloc(len + 1), *pb = malloc(len);
    range_fixture f, fb;
    duo_binding b;
    unsigned k, k0 = 999, k1 = 999;
    DUO_REQUIRE(pr != NULL && pb != NULL);
    DUO_REQUIRE(rf_init(&f, g_a, NULL));
    DUO_REQUIRE(rf_init(&fb, g_b, NULL));
    DUO_CHECK_OK(range_prove(&f, pr, len));
    DUO_CHECK_OK(range_verify(&f, pr, len));
    /* bindings */
    b = other_sid();
    DUO_EXPECT_ERR(duo_zk_range_verify(g_ec, pub(g_a), &b, f.ckey, pr, len), DUO_E_BAD_PROOF);
    b = other_role();
    DUO_EXPECT_ERR(duo_zk_range_verify(g_ec, pub(g_a), &b, f.ckey, pr, len), DUO_E_BAD_PROOF);
    /* the public entry point (default coins) accepts the honest proof */
    DUO_CHECK_OK(duo_zk_range_verify(g_ec, pub(g_a), &g_bind, f.ckey, pr, len));
    /* another modulus (with a valid ckey under it), another ckey */
    DUO_EXPECT_ERR(duo_zk_range_verify(g_ec, pub(g_b), &g_bind, fb.ckey, pr, len), DUO_E_BAD_PROOF);
    {
        range_fixture f2;
        DUO_REQUIRE(rf_init(&f2, g_a, NULL));
        DUO_EXPECT_ERR(duo_zk_range_verify(g_ec, pub(g_a), &g_bind, f2.ckey, pr, len), DUO_E_BAD_PROOF);
        rf_free(&f2);
    }
    /* ckey not a valid ciphertext */
    {
        BIGNUM *bad = BN_new();
        DUO_REQUIRE(bad != NULL);
        BN_zero(bad);
        DUO_EXPECT_ERR(duo_zk_range_verify(g_ec, pub(g_a), &g_bind, bad, pr, len), DUO_E_BAD_CIPHERTEXT);
        BN_free(bad);
    }
    /* lengths */
    DUO_EXPECT_ERR(range_verify(&f, pr, len - 1), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(range_verify(&f, pr, len + 1), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(range_verify(&f, pr, 0), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(range_prove(&f, pb, len - 1), DUO_E_BUFFER_TOO_SMALL);
    /* find one repetition of each challenge value */
    for (k = 0; k < DUO_ZK_RANGE_REPS; k++) {
        if (rep_is_e1(pr, nb, k)) {
            if (k1 == 999) k1 = k;
        } else if (k0 == 999) {
            k0 = k;
        }
    }
    DUO_REQUIRE(k0 != 999 && k1 != 999);
    /* bit flips in every field of the header and of both kinds of
     * repetition, checked by the batched and the per-equation verifier */
    {
        hdr_layout H = hlayout(nb);
        size_t hpos[] = {H.c + 1,  H.c + 66, H.b + 5,      H.a,     H.a + 2 * nb - 1, H.z + 1,
                         H.z + 58, H.w,      H.w + nb - 1, H.v + 1, H.v + 65};
        size_t i;
        for (i = 0; i < sizeof hpos / sizeof hpos[0]; i++) {
            flip(pr, hpos[i], (int)(i % 8));
            DUO_EXPECT_ERR(range_verify(&f, pr, len), DUO_E_BAD_PROOF);
            if (hpos[i] == H.z + 58 || hpos[i] == H.v + 65)
                DUO_EXPECT_ERR(range_verify_strict(&f, pr, len), DUO_E_BAD_PROOF);
            flip(pr, hpos[i], (int)(i % 8));
        }
        /* the C and B prefixes: 0x04 (uncompressed) and a y-parity flip */
        memcpy(pb, pr, len);
        pb[H.c] = 0x04;
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        memcpy(pb, pr, len);
        pb[H.b] ^= 0x01u;
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
    }
    {
        unsigned which;
        for (which = 0; which < 2; which++) {
            rep_layout L = layout(nb, which == 0 ? k0 : k1);
            size_t pos[] = {L.ca, L.ca + 66, L.cb + 1, L.cb + 66, L.j, L.f1, L.f1 + 31, L.f2, L.f2 + 65};
            size_t i;
            for (i = 0; i < sizeof pos / sizeof pos[0]; i++) {
                int bit = (int)(i % 8);
                flip(pr, pos[i], bit);
                DUO_EXPECT_ERR(range_verify(&f, pr, len), DUO_E_BAD_PROOF);
                if (pos[i] == L.f1 + 31 || pos[i] == L.f2 + 65)
                    DUO_EXPECT_ERR(range_verify_strict(&f, pr, len), DUO_E_BAD_PROOF);
                flip(pr, pos[i], bit);
            }
            /* j: the other commitment, and j = 2 */
            memcpy(pb, pr, len);
            pb[L.j] = (uint8_t)(which == 1 ? pb[L.j] ^ 1u : 1u);
            DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
            pb[L.j] = 2;
            DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        }
    }
    DUO_CHECK_OK(range_verify(&f, pr, len)); /* restored */
    /* bit 0: the seed of another bit-0 repetition; bit 1: z_k = 2l (just out
     * of range), t_k = 0, and z_k, t_k of another bit-1 repetition */
    {
        rep_layout L0 = layout(nb, k0), L1 = layout(nb, k1), M;
        unsigned kk;
        memcpy(pb, pr, len);
        for (kk = 0; kk < DUO_ZK_RANGE_REPS; kk++) {
            if (kk != k0 && !rep_is_e1(pr, nb, kk)) break;
        }
        DUO_REQUIRE(kk < DUO_ZK_RANGE_REPS);
        M = layout(nb, kk);
        memcpy(pb + L0.f1, pr + M.f1, 32);
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        DUO_EXPECT_ERR(range_verify_strict(&f, pb, len), DUO_E_BAD_PROOF);
        memcpy(pb, pr, len);
        {
            BIGNUM *z = BN_new();
            DUO_REQUIRE(z != NULL);
            DUO_CHECK(BN_lshift1(z, f.l) && BN_bn2binpad(z, pb + L1.f1, 32) == 32);
            DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
            BN_free(z);
        }
        memcpy(pb, pr, len);
        memset(pb + L1.f2, 0, 66);
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        for (kk = 0; kk < DUO_ZK_RANGE_REPS; kk++) {
            if (kk != k1 && rep_is_e1(pr, nb, kk)) break;
        }
        DUO_REQUIRE(kk < DUO_ZK_RANGE_REPS);
        M = layout(nb, kk);
        memcpy(pb, pr, len);
        memcpy(pb + L1.j, pr + M.j, 1 + 32 + 66);
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
    }
    /* The equality's w -> N - w: (N - w)^N = -w^N mod N^2, so the Paillier
     * equation fails (no batching there: rejected every time). */
    {
        hdr_layout H = hlayout(nb);
        BIGNUM *w = BN_new();
        DUO_REQUIRE(w != NULL);
        memcpy(pb, pr, len);
        DUO_CHECK(BN_bin2bn(pb + H.w, (int)nb, w) && BN_sub(w, duo_paillier_pub_n(pub(g_a)), w) &&
                  BN_bn2binpad(w, pb + H.w, (int)nb) == (int)nb);
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        DUO_EXPECT_ERR(range_verify_strict(&f, pb, len), DUO_E_BAD_PROOF);
        BN_free(w);
    }
    /* A proof made for another ckey's plaintext under the same C: the
     * Paillier half of the equality catches a ckey swapped after proving. */
    {
        range_fixture f3;
        DUO_REQUIRE(rf_init(&f3, g_a, f.x)); /* same x, other randomness */
        DUO_EXPECT_ERR(duo_zk_range_verify(g_ec, pub(g_a), &g_bind, f3.ckey, pr, len), DUO_E_BAD_PROOF);
        rf_free(&f3);
    }
    rf_free(&f);
    rf_free(&fb);
    free(pr);
    free(pb);
}

/* Dishonest provers: ckey encrypts a value outside the honest range; the
 * test-only prover runs the honest algorithm on it. */
static void test_range_dishonest(void) {
    size_t len = duo_zk_range_bytes(2048);
    uint8_t *pr = malloc(len);
    BIGNUM *x = BN_new(), *x1 = BN_new(), *l = BN_new();
    const BIGNUM *q = duo_ec_order(g_ec), *n = duo_paillier_pub_n(pub(g_a));
    range_fixture f;
    int j;
    DUO_REQUIRE(pr && x && x1 && l);
    DUO_CHECK_OK(duo_zk_range_bound(g_ec, l));
    DUO_CHECK_OK(duo_bn_random_below(x1, l, &g_rng.rng));
    for (j = 0; j < 8; j++) {
        const char *what;
        int want_ok = 0;
        switch (j) {
            case 0:
            case 1:
            case 2: /* x1 + j q, j = 1..3 */
                DUO_CHECK(BN_copy(x, q) && BN_mul_word(x, (BN_ULONG)(j + 1)) && BN_add(x, x, x1));
                what = j == 0 ? "x1 + q" : j == 1 ? "x1 + 2q" : "x1 + 3q";
                break;
            case 3:
                DUO_CHECK(BN_lshift1(x, l));
                what = "2l";
                break;
            case 4:
                DUO_CHECK(BN_copy(x, q) != NULL);
                what = "q";
                break;
            case 5: /* -l mod N: the lower edge of the proven interval (-l, 2l) */
                DUO_CHECK(BN_sub(x, n, l));
                what = "N - l";
                break;
            case 6:
                /* N - 1 = -1 mod N lies inside the proven interval (-l, 2l):
             * the proof shows |x| < q, not x >= 0, and no cut-and-choose of
             * this shape can exclude it without losing completeness. The
             * honest algorithm (z = x + w1 mod N = w1 - 1) passes. Harmless
             * for Lindell17 (research report check 16). */
                DUO_CHECK(BN_sub(x, n, BN_value_one()));
                what = "N - 1 (inside the slack: accepted)";
                want_ok = 1;
                break;
            default: /* x = l: also inside the slack, accepted (z = l + w2) */
                DUO_CHECK(BN_copy(x, l) != NULL);
                what = "l (inside the slack: accepted)";
                want_ok = 1;
                break;
        }
        DUO_REQUIRE(rf_init(&f, g_a, x));
        DUO_EXPECT_ERR(duo_zk_range_prove(g_ec, g_a, &g_bind, f.ckey, f.x, f.r, &g_rng.rng, pr, len),
                       DUO_E_INVALID_ARG);
        DUO_CHECK_OK(duo__zk_range_prove_unchecked(g_ec, g_a, &g_bind, f.ckey, f.x, f.r, &g_rng.rng, pr, len));
        if (want_ok) {
            DUO_CHECK_OK(range_verify(&f, pr, len));
        } else {
            DUO_EXPECT_ERR(range_verify(&f, pr, len), DUO_E_BAD_PROOF);
        }
        /* the per-equation verifier agrees (sampled: it costs ~2 s) */
        if (j == 0 || j == 3 || j == 6)
            DUO_EXPECT_ERR(range_verify_strict(&f, pr, len), want_ok ? DUO_OK : DUO_E_BAD_PROOF);
        fprintf(stderr, "  dishonest x = %s: checked\n", what);
        rf_free(&f);
    }
    BN_free(x);
    BN_free(x1);
    BN_free(l);
    free(pr);
}

/* Precomputed randomness (duo_zk_range_precomp): ckey from the ckey pair,
 * a proof from the proof pairs verifies (batched and strict); each part is
 * single use; another key is refused (and the object still spent). */
static void test_range_precomp(void) {
    size_t len = duo_zk_range_bytes(2048);
    uint8_t *pr = malloc(len);
    duo_zk_range_precomp *pc = NULL, *pc2 = NULL;
    range_fixture f;
    BIGNUM *r = BN_new(), *rn = BN_new(), *x = BN_new(), *ck = BN_new(), *l = BN_new();
    double t0, tpre, tprove;
    DUO_REQUIRE(pr && r && rn && x && ck && l);
    DUO_REQUIRE(duo_zk_range_bound(g_ec, l) == DUO_OK && duo_bn_random_below(x, l, &g_rng.rng) == DUO_OK);
    t0 = now_ms();
    DUO_CHECK_OK(duo_zk_range_precomp_new(&pc, g_a, &g_rng.rng));
    tpre = now_ms() - t0;
    DUO_REQUIRE(pc != NULL);
    DUO_CHECK_OK(duo_zk_range_precomp_take_enc(pc, g_a, r, rn));
    DUO_EXPECT_ERR(duo_zk_range_precomp_take_enc(pc, g_a, r, rn), DUO_E_PROTO_STATE);
    /* rn = r^N: the same as computing it publicly */
    {
        BIGNUM *chk = BN_new();
        DUO_REQUIRE(chk != NULL);
        DUO_CHECK_OK(duo_paillier_rn_from_r(pub(g_a), chk, r));
        DUO_CHECK(BN_cmp(chk, rn) == 0);
        BN_free(chk);
    }
    DUO_CHECK_OK(duo_paillier_encrypt(pub(g_a), ck, x, rn));
    memset(&f, 0, sizeof f);
    f.sk = g_a;
    f.x = x;
    f.r = r;
    f.ckey = ck;
    t0 = now_ms();
    DUO_CHECK_OK(duo_zk_range_prove_precomp(g_ec, g_a, &g_bind, ck, x, r, &g_rng.rng, pc, pr, len));
    tprove = now_ms() - t0;
    DUO_CHECK_OK(range_verify(&f, pr, len));
    DUO_CHECK_OK(range_verify_strict(&f, pr, len));
    /* single use */
    DUO_EXPECT_ERR(duo_zk_range_prove_precomp(g_ec, g_a, &g_bind, ck, x, r, &g_rng.rng, pc, pr, len),
                   DUO_E_PROTO_STATE);
    duo_zk_range_precomp_free(pc);
    /* made for g_a, used with g_b: refused, and spent */
    DUO_CHECK_OK(duo_zk_range_precomp_new(&pc2, g_a, &g_rng.rng));
    DUO_EXPECT_ERR(duo_zk_range_precomp_take_enc(pc2, g_b, r, rn), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_zk_range_precomp_take_enc(pc2, g_a, r, rn), DUO_E_PROTO_STATE);
    DUO_EXPECT_ERR(duo_zk_range_prove_precomp(g_ec, g_b, &g_bind, ck, x, r, &g_rng.rng, pc2, pr, len),
                   DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_zk_range_prove_precomp(g_ec, g_a, &g_bind, ck, x, r, &g_rng.rng, pc2, pr, len),
                   DUO_E_PROTO_STATE);
    duo_zk_range_precomp_free(pc2);
    duo_zk_range_precomp_free(NULL);
    DUO_EXPECT_ERR(duo_zk_range_prove_precomp(g_ec, g_a, &g_bind, ck, x, r, &g_rng.rng, NULL, pr, len),
                   DUO_E_INVALID_ARG);
    fprintf(stderr, "  [L_P range 2048] precompute %.1f ms (background), prove with it %.1f ms (CPU)\n", tpre, tprove);
    BN_clear_free(r);
    BN_clear_free(rn);
    BN_clear_free(x);
    BN_free(ck);
    BN_free(l);
    free(pr);
}

/* ------------------------------------------- bounds, each on its own */

/* Replaces the nb-byte big-endian field v by v + N if that still fits in nb
 * bytes (a non-canonical encoding of the same residue). Returns 1 if done. */
static int add_n_if_fits(uint8_t *field, size_t nb, const BIGNUM *n) {
    BIGNUM *v = BN_bin2bn(field, (int)nb, NULL);
    int ok = 0;
    if (v != NULL && BN_add(v, v, n) && BN_num_bytes(v) <= (int)nb) ok = BN_bn2binpad(v, field, (int)nb) == (int)nb;
    BN_free(v);
    return ok;
}

/* Every response integer is range-checked on its own: v + N is the same
 * residue, so sigma_i^N, x_i^4 and r^N mod N^2 are unchanged and the
 * equations still hold; only the bound [1, N) rejects these. Each case
 * fails if its bound is removed from zk_paillier.c. */
static void test_bounds_noncanonical(void) {
    const duo_paillier_priv *sk = g_a;
    const BIGNUM *n;
    size_t nb = 256, len, i;
    uint8_t *pr, *pb;
    unsigned s;
    int found;
    /* the key with the smaller N leaves more room above N in 256 bytes */
    if (BN_cmp(duo_paillier_pub_n(pub(g_b)), duo_paillier_pub_n(pub(g_a))) < 0) sk = g_b;
    n = duo_paillier_pub_n(pub(sk));
    len = duo_zk_range_bytes(2048);
    pr = malloc(len);
    pb = malloc(len);
    DUO_REQUIRE(pr && pb);
    /* L_N: sigma_i + N (10 values per proof: try other bindings) */
    for (s = 0, found = 0; s < 400 && !found; s++) {
        duo_binding b = g_bind;
        size_t ln = duo_zk_ln_bytes(2048);
        b.sid[0] = (uint8_t)s;
        b.sid[1] = (uint8_t)(s >> 8);
        DUO_CHECK_OK(duo_zk_ln_prove(sk, &b, pr, ln));
        for (i = 0; i < DUO_ZK_LN_REPS && !found; i++) {
            memcpy(pb, pr, ln);
            if (!add_n_if_fits(pb + i * nb, nb, n)) continue;
            found = 1;
            DUO_CHECK_OK(duo_zk_ln_verify(pub(sk), &b, pr, ln));
            DUO_EXPECT_ERR(duo_zk_ln_verify(pub(sk), &b, pb, ln), DUO_E_BAD_PROOF);
        }
    }
    DUO_CHECK(found);
    /* Pi-mod: x_i + N */
    {
        size_t ml = duo_zk_mod_bytes(2048), rep = 1 + nb;
        DUO_CHECK_OK(duo_zk_mod_prove(sk, &g_bind, &g_rng.rng, pr, ml));
        DUO_CHECK_OK(duo_zk_mod_verify(pub(sk), &g_bind, pr, ml));
        for (i = 0, found = 0; i < DUO_ZK_MOD_REPS && !found; i++) {
            memcpy(pb, pr, ml);
            if (!add_n_if_fits(pb + nb + i * rep + 1, nb, n)) continue;
            found = 1;
            DUO_EXPECT_ERR(duo_zk_mod_verify(pub(sk), &g_bind, pb, ml), DUO_E_BAD_PROOF);
        }
        DUO_CHECK(found);
    }
    /* range: t_k + n in a bit-1 repetition and v + n (P-521's order: the
     * commitment equations hold mod n, 66 bytes hold both), w + N (same
     * residue, same w^N mod N^2): only each bound rejects */
    {
        range_fixture f;
        const BIGNUM *ord = duo__ped_order();
        hdr_layout H = hlayout(nb);
        unsigned r;
        DUO_REQUIRE(ord != NULL);
        DUO_REQUIRE(rf_init(&f, sk, NULL));
        DUO_CHECK_OK(range_prove(&f, pr, len));
        DUO_CHECK_OK(range_verify(&f, pr, len));
        for (r = 0, found = 0; r < DUO_ZK_RANGE_REPS && !found; r++) {
            rep_layout L = layout(nb, r);
            if (!rep_is_e1(pr, nb, r)) continue;
            memcpy(pb, pr, len);
            DUO_REQUIRE(add_n_if_fits(pb + L.f2, 66, ord));
            found = 1;
            DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        }
        DUO_CHECK(found);
        memcpy(pb, pr, len);
        DUO_REQUIRE(add_n_if_fits(pb + H.v, 66, ord));
        DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        /* w + N needs room above N in nb bytes: try a few proofs */
        for (r = 0, found = 0; r < 64 && !found; r++) {
            DUO_CHECK_OK(range_prove(&f, pr, len));
            memcpy(pb, pr, len);
            if (!add_n_if_fits(pb + H.w, nb, n)) continue;
            found = 1;
            DUO_EXPECT_ERR(range_verify(&f, pb, len), DUO_E_BAD_PROOF);
        }
        DUO_CHECK(found);
        rf_free(&f);
    }
    free(pr);
    free(pb);
}

/* The range proof's z_k in [l, 2l) check on its own: the raw-z prover makes
 * every commitment equation hold, so only the bound rejects (each case is
 * accepted when the bound is removed from verify_rep). The bit-0 openings
 * need no bound of their own: u is derived from the seed mod l. */
static void test_range_z_interval(void) {
    size_t len = duo_zk_range_bytes(2048);
    uint8_t *pr = malloc(len);
    BIGNUM *x = BN_new(), *l = BN_new();
    const BIGNUM *n = duo_paillier_pub_n(pub(g_a));
    range_fixture f;
    int j;
    DUO_REQUIRE(pr && x && l);
    DUO_CHECK_OK(duo_zk_range_bound(g_ec, l));
    for (j = 0; j < 3; j++) {
        const char *what;
        if (j == 0) {
            /* control: an honest x never needs the raw branch */
            DUO_CHECK_OK(duo_bn_random_below(x, l, &g_rng.rng));
            what = "x in [0, l) (control: accepted)";
        } else if (j == 1) {
            /* z = 2l + u in [2l, 3l), < 2^256: the upper bound */
            DUO_CHECK(BN_lshift1(x, l));
            what = "x = 2l, z in [2l, 3l)";
        } else {
            /* x = -(l + 1): z = x + w1 = u - 1 in [0, l): the lower bound */
            DUO_CHECK(BN_sub(x, n, l) && BN_sub_word(x, 1));
            what = "x = N - l - 1, z in [0, l)";
        }
        DUO_REQUIRE(rf_init(&f, g_a, x));
        DUO_CHECK_OK(duo__zk_range_prove_raw_z(g_ec, g_a, &g_bind, f.ckey, f.x, f.r, &g_rng.rng, pr, len));
        if (j == 0) {
            DUO_CHECK_OK(range_verify(&f, pr, len));
        } else {
            DUO_EXPECT_ERR(range_verify(&f, pr, len), DUO_E_BAD_PROOF);
        }
        if (j == 1) DUO_EXPECT_ERR(range_verify_strict(&f, pr, len), DUO_E_BAD_PROOF);
        fprintf(stderr, "  range bound: %s: checked\n", what);
        rf_free(&f);
    }
    BN_free(x);
    BN_free(l);
    free(pr);
}

/* Pi-mod's Jacobi(w, N) = -1 check on its own. N = p * q with p = 1 mod 4
 * (not a Blum integer) and the prover sends w = p (Jacobi 0): mod p every
 * (-1)^a w y_i is 0, a fourth power, and mod the Blum prime q one of
 * +-p y_i is a QR, hence a fourth power. So with b_i = 1 every repetition
 * is answered: only the Jacobi check rejects (the proof is accepted when it
 * is removed). (Pi-mod v1 also carried z_i = y_i^(N^-1 mod phi), which this
 * N has too; v2 leaves that statement to L_N, see test_mod_needs_ln.) */
static void test_mod_jacobi(void) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = NULL, *q = BN_new(), *n = BN_new(), *phi = BN_new(), *d = BN_new(), *e4 = BN_new(), *y = BN_new(),
           *t = BN_new(), *tq = BN_new(), *x = BN_new(), *pinv = BN_new(), *z = BN_new(), *h = BN_new();
    duo_paillier_pub *pk = NULL;
    size_t len = duo_zk_mod_bytes(2048), nb = 256, rep = 1 + nb;
    uint8_t *pr = calloc(1, len);
    unsigned i;
    int tries = 0, jac = 0;
    DUO_REQUIRE(ctx && q && n && phi && d && e4 && y && t && tq && x && pinv && z && h && pr);
    DUO_CHECK_OK(duo_paillier_blum_prime(q, 2048));
    do {
        BN_free(p);
        p = prime_mod4(1024, 1);
        DUO_REQUIRE(p != NULL);
        DUO_CHECK(BN_mul(n, p, q, ctx));
        DUO_CHECK(BN_copy(phi, p) && BN_sub_word(phi, 1) && BN_copy(t, q) && BN_sub_word(t, 1) &&
                  BN_mul(phi, phi, t, ctx));
    } while ((BN_num_bits(n) != 2048 || BN_mod_inverse(d, n, phi, ctx) == NULL) && ++tries < 100);
    DUO_REQUIRE(BN_num_bits(n) == 2048);
    pk = pub_from_n(n, 2048);
    DUO_REQUIRE(pk != NULL);
    DUO_CHECK_OK(duo__jacobi_var(&jac, p, n, ctx));
    DUO_CHECK(jac == 0);
    /* fourth roots of QRs mod the Blum prime q: exponent ((q+1)/4)^2 mod (q-1) */
    DUO_CHECK(BN_copy(e4, q) && BN_add_word(e4, 1) && BN_rshift(e4, e4, 2) && BN_copy(t, q) && BN_sub_word(t, 1) &&
              BN_mod_sqr(e4, e4, t, ctx));
    DUO_CHECK(BN_copy(h, q) && BN_sub_word(h, 1) && BN_rshift1(h, h)); /* Euler's criterion */
    DUO_REQUIRE(BN_mod_inverse(pinv, p, q, ctx) != NULL);
    DUO_CHECK(BN_bn2binpad(p, pr, (int)nb) == (int)nb); /* w = p */
    for (i = 0; i < DUO_ZK_MOD_REPS; i++) {
        size_t off = nb + (size_t)i * rep;
        int a;
        DUO_CHECK_OK(duo__zk_mod_challenge(y, n, 2048, &g_bind, p, i));
        /* t = (-1)^a p y mod N with t a QR mod q */
        for (a = 0; a < 2; a++) {
            DUO_CHECK(BN_mod_mul(t, p, y, n, ctx));
            if (a) DUO_CHECK(BN_sub(t, n, t));
            DUO_CHECK(BN_nnmod(tq, t, q, ctx) && BN_mod_exp(z, tq, h, q, ctx));
            if (BN_is_one(z)) break;
        }
        DUO_REQUIRE(a < 2);
        /* x = 0 mod p, x = tq^e4 mod q: x = p * (xq * p^-1 mod q) */
        DUO_CHECK(BN_mod_exp(x, tq, e4, q, ctx) && BN_mod_mul(x, x, pinv, q, ctx) && BN_mul(x, x, p, ctx));
        /* the equations the verifier checks do hold */
        DUO_CHECK(BN_mod_sqr(tq, x, n, ctx) && BN_mod_sqr(tq, tq, n, ctx) && BN_cmp(tq, t) == 0);
        pr[off] = (uint8_t)(a | 2);
        DUO_CHECK(BN_bn2binpad(x, pr + off + 1, (int)nb) == (int)nb);
    }
    DUO_EXPECT_ERR(duo_zk_mod_verify(pk, &g_bind, pr, len), DUO_E_BAD_PROOF);
    duo_paillier_pub_free(pk);
    BN_free(p);
    BN_free(q);
    BN_free(n);
    BN_free(phi);
    BN_free(d);
    BN_free(e4);
    BN_free(y);
    BN_free(t);
    BN_free(tq);
    BN_free(x);
    BN_free(pinv);
    BN_free(z);
    BN_free(h);
    BN_CTX_free(ctx);
    free(pr);
}

/* Pi-mod v2 (no z_i, issue 22) leaves gcd(N, phi(N)) = 1 to L_N. This test
 * shows the split of work: N = p^2 q with Blum primes p, q passes the modulus
 * checks and Pi-mod v2 (fourth roots exist exactly as for p q: Z*_{p^2} is
 * cyclic of order p (p - 1) with odd part p (p - 1) / 2), while L_N rejects
 * it (p divides both N and phi(N), so the rho_i have no N-th roots), whatever
 * exponent its prover uses. The device verifies L_N before Pi-mod. */
static void test_mod_needs_ln(void) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *p = NULL, *q = NULL, *p2 = BN_new(), *n = BN_new(), *w = BN_new(), *y = BN_new(), *t = BN_new(),
           *ep = BN_new(), *eq = BN_new(), *o = BN_new(), *xp = BN_new(), *xq = BN_new(), *x = BN_new(),
           *qinv = BN_new(), *d = BN_new(), *qm1 = BN_new(), *pm1 = BN_new();
    duo_paillier_pub *pk = NULL;
    size_t len = duo_zk_mod_bytes(2048), ll = duo_zk_ln_bytes(2048), nb = 256, rep = 1 + nb;
    uint8_t *pr = calloc(1, len), *pl = calloc(1, ll);
    unsigned i;
    int tries = 0, sp = 0, sq = 0;
    DUO_REQUIRE(ctx && p2 && n && w && y && t && ep && eq && o && xp && xq && x && qinv && d && qm1 && pm1 && pr && pl);
    do {
        BN_free(p);
        BN_free(q);
        p = prime_mod4(683, 3);
        q = prime_mod4(683, 3);
        DUO_REQUIRE(p != NULL && q != NULL);
        DUO_CHECK(BN_sqr(p2, p, ctx) && BN_mul(n, p2, q, ctx));
    } while (BN_num_bits(n) != 2048 && ++tries < 200);
    DUO_REQUIRE(BN_num_bits(n) == 2048);
    pk = pub_from_n(n, 2048); /* odd, not prime, not a square, no small factor */
    DUO_REQUIRE(pk != NULL);
    /* fourth-root exponents: mod p^2 the QRs have odd order o = p (p-1)/2,
     * so t^(((o+1)/2)^2 mod o); mod q ((q+1)/4)^2 mod (q-1) */
    DUO_CHECK(BN_copy(pm1, p) && BN_sub_word(pm1, 1) && BN_mul(o, p, pm1, ctx) && BN_rshift1(o, o));
    DUO_CHECK(BN_copy(ep, o) && BN_add_word(ep, 1) && BN_rshift1(ep, ep) && BN_mod_sqr(ep, ep, o, ctx));
    DUO_CHECK(BN_copy(qm1, q) && BN_sub_word(qm1, 1) && BN_copy(eq, q) && BN_add_word(eq, 1) && BN_rshift(eq, eq, 2) &&
              BN_mod_sqr(eq, eq, qm1, ctx));
    DUO_REQUIRE(BN_mod_inverse(qinv, q, p2, ctx) != NULL);
    /* w: a QR mod p, a non-residue mod q, so Jacobi(w, N) = -1 */
    do {
        DUO_CHECK(BN_rand_range(w, n));
        DUO_CHECK_OK(duo__jacobi_var(&sp, w, p, ctx));
        DUO_CHECK_OK(duo__jacobi_var(&sq, w, q, ctx));
    } while (sp != 1 || sq != -1);
    DUO_CHECK(BN_bn2binpad(w, pr, (int)nb) == (int)nb);
    for (i = 0; i < DUO_ZK_MOD_REPS; i++) {
        size_t off = nb + (size_t)i * rep;
        int a, b;
        DUO_CHECK_OK(duo__zk_mod_challenge(y, n, 2048, &g_bind, w, i));
        DUO_CHECK_OK(duo__jacobi_var(&sp, y, p, ctx));
        DUO_CHECK_OK(duo__jacobi_var(&sq, y, q, ctx));
        /* -1 flips both characters, w only the one mod q */
        a = sp == -1;
        b = (sp * sq) == -1;
        DUO_CHECK(BN_copy(t, y) != NULL);
        if (b) DUO_CHECK(BN_mod_mul(t, t, w, n, ctx));
        if (a) DUO_CHECK(BN_sub(t, n, t));
        DUO_CHECK(BN_mod_exp(xp, t, ep, p2, ctx) && BN_mod_exp(xq, t, eq, q, ctx));
        /* x = xq + q ((xp - xq) q^-1 mod p^2) */
        DUO_CHECK(BN_mod_sub(x, xp, xq, p2, ctx) && BN_mod_mul(x, x, qinv, p2, ctx) && BN_mul(x, x, q, ctx) &&
                  BN_add(x, x, xq));
        DUO_CHECK(BN_mod_sqr(xp, x, n, ctx) && BN_mod_sqr(xp, xp, n, ctx) && BN_cmp(xp, t) == 0);
        pr[off] = (uint8_t)(a | (b << 1));
        DUO_CHECK(BN_bn2binpad(x, pr + off + 1, (int)nb) == (int)nb);
    }
    DUO_CHECK_OK(duo_zk_mod_verify(pk, &g_bind, pr, len));
    /* L_N: N^-1 mod (p-1)(q-1) (the closest a prover gets), and 1 */
    DUO_CHECK(BN_mul(t, pm1, qm1, ctx));
    DUO_REQUIRE(BN_mod_inverse(d, n, t, ctx) != NULL);
    DUO_CHECK_OK(duo__zk_ln_prove_exp(n, 2048, d, &g_bind, pl, ll));
    DUO_EXPECT_ERR(duo_zk_ln_verify(pk, &g_bind, pl, ll), DUO_E_BAD_PROOF);
    DUO_CHECK_OK(duo__zk_ln_prove_exp(n, 2048, BN_value_one(), &g_bind, pl, ll));
    DUO_EXPECT_ERR(duo_zk_ln_verify(pk, &g_bind, pl, ll), DUO_E_BAD_PROOF);
    duo_paillier_pub_free(pk);
    BN_free(p);
    BN_free(q);
    BN_free(p2);
    BN_free(n);
    BN_free(w);
    BN_free(y);
    BN_free(t);
    BN_free(ep);
    BN_free(eq);
    BN_free(o);
    BN_free(xp);
    BN_free(xq);
    BN_free(x);
    BN_free(qinv);
    BN_free(d);
    BN_free(qm1);
    BN_free(pm1);
    BN_CTX_free(ctx);
    free(pr);
    free(pl);
}

static void test_3072(void) {
    if (g_c == NULL) return;
    ln_roundtrip(g_c);
    mod_roundtrip(g_c);
    range_roundtrip(g_c, 0);
}

static void test_sizes(void) {
    DUO_CHECK(duo_zk_ln_bytes(2048) == 2560 && duo_zk_ln_bytes(3072) == 3840);
    DUO_CHECK(duo_zk_mod_bytes(2048) == 256u + 80u * 257u && duo_zk_mod_bytes(3072) == 384u + 80u * 385u);
    DUO_CHECK(duo_zk_range_bytes(2048) == 1027u + 128u * 233u && duo_zk_range_bytes(3072) == 1411u + 128u * 233u);
    DUO_CHECK(duo_zk_ln_bytes(1024) == 0 && duo_zk_mod_bytes(4096) == 0 && duo_zk_range_bytes(0) == 0);
    fprintf(stderr, "  sizes 2048: L_N %zu, Pi-mod %zu, L_P %zu; 3072: %zu, %zu, %zu bytes\n", duo_zk_ln_bytes(2048),
            duo_zk_mod_bytes(2048), duo_zk_range_bytes(2048), duo_zk_ln_bytes(3072), duo_zk_mod_bytes(3072),
            duo_zk_range_bytes(3072));
}

int main(void) {
    double t0;
    duo_det_rng_init(&g_rng, (uint64_t)duo_test_seed());
    if (duo_ec_new(&g_ec, DUO_CURVE_SECP256K1, &g_rng.rng) != DUO_OK) return 1;
    if (duo_rng_bytes(&g_rng.rng, g_bind.sid, sizeof g_bind.sid) != DUO_OK) return 1;
    g_bind.role = DUO_ROLE_CLOUD;
    t0 = now_ms();
    if (duo_paillier_keygen(&g_a, 2048) != DUO_OK || duo_paillier_keygen(&g_b, 2048) != DUO_OK) return 1;
    fprintf(stderr, "  two 2048-bit keys in %.0f ms\n", now_ms() - t0);
    t0 = now_ms();
    if (duo_paillier_keygen(&g_c, 3072) != DUO_OK) return 1;
    fprintf(stderr, "  one 3072-bit key in %.0f ms\n", now_ms() - t0);
    DUO_RUN(test_sizes);
    DUO_RUN(test_jacobi);
    DUO_RUN(test_ln);
    DUO_RUN(test_ln_rejects_non_coprime);
    DUO_RUN(test_mod);
    DUO_RUN(test_mod_rejects_non_blum);
    DUO_RUN(test_range_honest);
    DUO_RUN(test_range_reject);
    DUO_RUN(test_range_dishonest);
    DUO_RUN(test_range_precomp);
    DUO_RUN(test_bounds_noncanonical);
    DUO_RUN(test_range_z_interval);
    DUO_RUN(test_mod_jacobi);
    DUO_RUN(test_mod_needs_ln);
    DUO_RUN(test_3072);
    duo_paillier_priv_free(g_a);
    duo_paillier_priv_free(g_b);
    duo_paillier_priv_free(g_c);
    duo_ec_free(g_ec);
    return duo_test_finish();
}
