/* Paillier: round trips at 2048 and 3072 bits, homomorphic identities, rn
 * paths, modulus / ciphertext / prime-shape rejections, and a cross-check of
 * the CRT decryption against the textbook L(c^phi mod N^2) * phi^-1 mod N
 * computed with OpenSSL's variable-time BN_mod_exp (a different code path). */
#include <string.h>
#include <time.h>

#include <openssl/bn.h>

#include "det_rng.h"
#include "duosign/paillier.h"
#include "paillier_internal.h"
#include "test_harness.h"

/* One key per size, generated once for the whole binary. */
static duo_paillier_priv *g_sk[2];
static const unsigned g_bits[2] = {2048u, 3072u};
static duo_det_rng g_rng;

/* Thread CPU time: the printed figures do not depend on other load. */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A copy through bytes: no BN_FLG_CONSTTIME, so BN_mod_exp takes the
 * ordinary (variable-time) path. */
static BIGNUM *plain_copy(const BIGNUM *a) {
    unsigned char buf[1024];
    int n = BN_bn2bin(a, buf);
    return BN_bin2bn(buf, n, NULL);
}

/* Textbook decryption with g = N+1: m = L(c^phi mod N^2) * phi^-1 mod N. */
static int textbook_decrypt(const duo_paillier_priv *sk, BIGNUM *m, const BIGNUM *c) {
    const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *phi = plain_copy(duo_paillier_priv_phi(sk));
    BIGNUM *n = plain_copy(duo_paillier_pub_n(pk));
    BIGNUM *n2 = plain_copy(duo_paillier_pub_n2(pk));
    BIGNUM *cc = plain_copy(c);
    BIGNUM *x = BN_new(), *mu = BN_new();
    int ok = ctx && phi && n && n2 && cc && x && mu && BN_mod_exp(x, cc, phi, n2, ctx) && BN_sub_word(x, 1) &&
             BN_div(x, NULL, x, n, ctx) && BN_mod_inverse(mu, phi, n, ctx) != NULL && BN_mod_mul(m, x, mu, n, ctx);
    BN_free(phi);
    BN_free(n);
    BN_free(n2);
    BN_free(cc);
    BN_free(x);
    BN_free(mu);
    BN_CTX_free(ctx);
    return ok;
}

static void roundtrip_one(const duo_paillier_priv *sk, const BIGNUM *m) {
    const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
    BIGNUM *rn = BN_new(), *c = BN_new(), *d = BN_new(), *t = BN_new();
    DUO_REQUIRE(rn && c && d && t);
    DUO_CHECK_OK(duo_paillier_rn(pk, rn, &g_rng.rng));
    DUO_CHECK_OK(duo_paillier_encrypt(pk, c, m, rn));
    DUO_CHECK_OK(duo_paillier_ciphertext_check(pk, c));
    DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
    DUO_CHECK(BN_cmp(d, m) == 0);
    DUO_CHECK(textbook_decrypt(sk, t, c));
    DUO_CHECK(BN_cmp(t, m) == 0);
    BN_free(rn);
    BN_free(c);
    BN_free(d);
    BN_free(t);
}

static void test_roundtrip(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        const BIGNUM *n = duo_paillier_pub_n(pk);
        BIGNUM *m = BN_new();
        DUO_REQUIRE(m != NULL);
        DUO_CHECK(duo_paillier_pub_bits(pk) == g_bits[k]);
        DUO_CHECK((unsigned)BN_num_bits(n) == g_bits[k]);
        {
            BN_CTX *ctx = BN_CTX_new();
            BIGNUM *sq = BN_new();
            DUO_CHECK(ctx && sq && BN_sqr(sq, duo_paillier_priv_p(sk), ctx));
            DUO_CHECK((unsigned)BN_num_bits(sq) == g_bits[k]);
            DUO_CHECK(BN_sqr(sq, duo_paillier_priv_q(sk), ctx));
            DUO_CHECK((unsigned)BN_num_bits(sq) == g_bits[k]);
            BN_free(sq);
            BN_CTX_free(ctx);
        }
        unsigned long before = duo_paillier_priv_decryptions(sk);
        for (int i = 0; i < 6; i++) {
            DUO_CHECK_OK(duo_bn_random_below(m, n, &g_rng.rng));
            roundtrip_one(sk, m);
        }
        DUO_CHECK(duo_paillier_priv_decryptions(sk) == before + 6);
        BN_zero(m);
        roundtrip_one(sk, m);
        DUO_CHECK(BN_copy(m, n) && BN_sub_word(m, 1));
        roundtrip_one(sk, m);
        DUO_CHECK(BN_set_word(m, 1));
        roundtrip_one(sk, m);
        /* m out of range */
        BIGNUM *rn = BN_new(), *c = BN_new();
        DUO_CHECK_OK(duo_paillier_rn(pk, rn, &g_rng.rng));
        DUO_EXPECT_ERR(duo_paillier_encrypt(pk, c, n, rn), DUO_E_INVALID_ARG);
        BN_set_negative(m, 1);
        DUO_EXPECT_ERR(duo_paillier_encrypt(pk, c, m, rn), DUO_E_INVALID_ARG);
        /* rn not a unit mod N^2 */
        DUO_CHECK(BN_set_word(m, 5));
        DUO_EXPECT_ERR(duo_paillier_encrypt(pk, c, m, n), DUO_E_INVALID_ARG);
        BN_zero(rn);
        DUO_EXPECT_ERR(duo_paillier_encrypt(pk, c, m, rn), DUO_E_INVALID_ARG);
        BN_free(rn);
        BN_free(c);
        BN_free(m);
    }
}

/* Ciphertexts of fresh random plaintexts decrypt identically by CRT and by
 * the textbook formula; also a few arbitrary units mod N^2 (not produced by
 * our encrypt). */
static void test_crt_matches_textbook(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        BIGNUM *c = BN_new(), *d = BN_new(), *t = BN_new();
        DUO_REQUIRE(c && d && t);
        for (int i = 0; i < 4; i++) {
            DUO_CHECK_OK(duo_bn_random_below(c, duo_paillier_pub_n2(pk), &g_rng.rng));
            if (duo_paillier_ciphertext_check(pk, c) != DUO_OK) continue;
            DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
            DUO_CHECK(textbook_decrypt(sk, t, c));
            DUO_CHECK(BN_cmp(d, t) == 0);
        }
        BN_free(c);
        BN_free(d);
        BN_free(t);
    }
}

static void test_homomorphic(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        const BIGNUM *n = duo_paillier_pub_n(pk);
        BN_CTX *ctx = BN_CTX_new();
        BIGNUM *m1 = BN_new(), *m2 = BN_new(), *kk = BN_new(), *rn = BN_new(), *a = BN_new(), *b = BN_new(),
               *c = BN_new(), *d = BN_new(), *want = BN_new();
        DUO_REQUIRE(ctx && m1 && m2 && kk && rn && a && b && c && d && want);
        DUO_CHECK_OK(duo_bn_random_below(m1, n, &g_rng.rng));
        DUO_CHECK_OK(duo_bn_random_below(m2, n, &g_rng.rng));
        DUO_CHECK_OK(duo_bn_random_below(kk, n, &g_rng.rng));
        DUO_CHECK_OK(duo_paillier_rn(pk, rn, &g_rng.rng));
        DUO_CHECK_OK(duo_paillier_encrypt(pk, a, m1, rn));
        DUO_CHECK_OK(duo_paillier_rn(pk, rn, &g_rng.rng));
        DUO_CHECK_OK(duo_paillier_encrypt(pk, b, m2, rn));
        /* Dec(a (+) b) = m1 + m2 mod N */
        DUO_CHECK_OK(duo_paillier_add(pk, c, a, b));
        DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
        DUO_CHECK(BN_mod_add(want, m1, m2, n, ctx));
        DUO_CHECK(BN_cmp(d, want) == 0);
        /* Dec(a^k) = k * m1 mod N */
        DUO_CHECK_OK(duo_paillier_mul(pk, c, a, kk));
        DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
        DUO_CHECK(BN_mod_mul(want, kk, m1, n, ctx));
        DUO_CHECK(BN_cmp(d, want) == 0);
        /* k = N - 1: Dec = -m1 mod N */
        DUO_CHECK(BN_copy(kk, n) && BN_sub_word(kk, 1));
        DUO_CHECK_OK(duo_paillier_mul(pk, c, a, kk));
        DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
        DUO_CHECK(BN_mod_sub(want, n, m1, n, ctx));
        DUO_CHECK(BN_cmp(d, want) == 0);
        /* k = 0: Dec = 0 */
        BN_zero(kk);
        DUO_CHECK_OK(duo_paillier_mul(pk, c, a, kk));
        DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
        DUO_CHECK(BN_is_zero(d));
        /* k out of range, bad ciphertext operands */
        DUO_EXPECT_ERR(duo_paillier_mul(pk, c, a, n), DUO_E_INVALID_ARG);
        BN_zero(c);
        DUO_EXPECT_ERR(duo_paillier_add(pk, d, a, c), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_mul(pk, d, c, m1), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_add(pk, d, duo_paillier_pub_n2(pk), a), DUO_E_BAD_CIPHERTEXT);
        BN_free(m1);
        BN_free(m2);
        BN_free(kk);
        BN_free(rn);
        BN_free(a);
        BN_free(b);
        BN_free(c);
        BN_free(d);
        BN_free(want);
        BN_CTX_free(ctx);
    }
}

/* duo_paillier_rn(rng) = rn_from_r(r) = rn_from_r_priv(r) for the r that
 * duo_paillier_random_unit draws from an identically seeded rng. */
static void test_rn_paths(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        duo_det_rng r1, r2;
        BIGNUM *r = BN_new(), *rn0 = BN_new(), *rn1 = BN_new(), *rn2 = BN_new(), *m = BN_new(), *c = BN_new(),
               *d = BN_new();
        DUO_REQUIRE(r && rn0 && rn1 && rn2 && m && c && d);
        for (int i = 0; i < 3; i++) {
            duo_det_rng_init(&r1, 1000u + (unsigned)i);
            duo_det_rng_init(&r2, 1000u + (unsigned)i);
            DUO_CHECK_OK(duo_paillier_rn(pk, rn0, &r1.rng));
            DUO_CHECK_OK(duo_paillier_random_unit(pk, r, &r2.rng));
            DUO_CHECK(r1.bytes_drawn == r2.bytes_drawn);
            /* duo_paillier_rn exponentiates 2^bits + r (fixed-width load, no
             * gcd on r: paillier.c), i.e. r' = r + 2^bits mod N */
            {
                BN_CTX *bc = BN_CTX_new();
                BIGNUM *sh = BN_new(), *rp = BN_new();
                DUO_REQUIRE(bc && sh && rp);
                DUO_REQUIRE(BN_set_bit(sh, (int)duo_paillier_pub_bits(pk)) &&
                            BN_mod_add(rp, r, sh, duo_paillier_pub_n(pk), bc));
                DUO_CHECK_OK(duo_paillier_rn_from_r(pk, rn1, rp));
                DUO_CHECK(BN_cmp(rn0, rn1) == 0);
                /* the constant-time encryption agrees with duo_paillier_encrypt */
                {
                    uint8_t mb[96];
                    BIGNUM *ca = BN_new(), *cb = BN_new(), *mm = BN_new();
                    DUO_REQUIRE(ca && cb && mm);
                    for (size_t j = 0; j < sizeof mb; j++) mb[j] = (uint8_t)(j * 41u + (unsigned)i);
                    DUO_REQUIRE(BN_bin2bn(mb, sizeof mb, mm) != NULL);
                    DUO_CHECK_OK(duo_paillier_encrypt_fixed(pk, ca, mb, sizeof mb, rn0));
                    DUO_CHECK_OK(duo_paillier_encrypt(pk, cb, mm, rn0));
                    DUO_CHECK(BN_cmp(ca, cb) == 0);
                    BN_free(ca);
                    BN_free(cb);
                    BN_free(mm);
                }
                BN_free(sh);
                BN_free(rp);
                BN_CTX_free(bc);
            }
            DUO_CHECK_OK(duo_paillier_rn_from_r(pk, rn1, r));
            DUO_CHECK_OK(duo_paillier_rn_from_r_priv(sk, rn2, r));
            DUO_CHECK(BN_cmp(rn1, rn2) == 0);
            DUO_CHECK(!BN_is_one(rn2));
            /* an encryption with the CRT-computed factor decrypts */
            DUO_CHECK_OK(duo_bn_random_below(m, duo_paillier_pub_n(pk), &g_rng.rng));
            DUO_CHECK_OK(duo_paillier_encrypt(pk, c, m, rn2));
            DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
            DUO_CHECK(BN_cmp(d, m) == 0);
        }
        /* a different r gives a different rn */
        DUO_CHECK(BN_add_word(r, 2));
        DUO_CHECK_OK(duo_paillier_rn_from_r_priv(sk, rn2, r));
        DUO_CHECK(BN_cmp(rn1, rn2) != 0);
        /* r checks: 0, N, p (not a unit) */
        BN_zero(r);
        DUO_EXPECT_ERR(duo_paillier_rn_from_r(pk, rn1, r), DUO_E_INVALID_ARG);
        DUO_EXPECT_ERR(duo_paillier_rn_from_r_priv(sk, rn1, r), DUO_E_INVALID_ARG);
        DUO_EXPECT_ERR(duo_paillier_rn_from_r(pk, rn1, duo_paillier_pub_n(pk)), DUO_E_INVALID_ARG);
        DUO_EXPECT_ERR(duo_paillier_rn_from_r(pk, rn1, duo_paillier_priv_p(sk)), DUO_E_INVALID_ARG);
        DUO_EXPECT_ERR(duo_paillier_rn_from_r_priv(sk, rn1, duo_paillier_priv_q(sk)), DUO_E_INVALID_ARG);
        BN_free(r);
        BN_free(rn0);
        BN_free(rn1);
        BN_free(rn2);
        BN_free(m);
        BN_free(c);
        BN_free(d);
    }
}

/* A prime P in [lo, 2*lo) with s * P of exactly `bits` bits: random start,
 * then the next prime (BN_check_prime trial-divides before Miller-Rabin). */
static int prime_for_product(BIGNUM *out, unsigned long s, unsigned bits, BN_CTX *ctx) {
    int ok = 0;
    BIGNUM *lo = BN_new(), *hi = BN_new(), *range = BN_new(), *prod = BN_new();
    if (!lo || !hi || !range || !prod) goto out;
    /* lo = 2^(bits-1) / s + 1, hi = (2^bits - 1) / s */
    if (!BN_set_bit(lo, (int)bits - 1) || BN_div_word(lo, s) == (BN_ULONG)-1 || !BN_add_word(lo, 1)) goto out;
    if (!BN_set_bit(hi, (int)bits) || !BN_sub_word(hi, 1) || BN_div_word(hi, s) == (BN_ULONG)-1) goto out;
    if (!BN_sub(range, hi, lo) || !BN_rshift1(range, range)) goto out;
    for (;;) {
        if (!BN_rand_range(out, range) || !BN_add(out, out, lo) || !BN_set_bit(out, 0)) goto out;
        for (int i = 0; i < 100000; i++) {
            int pr = BN_check_prime(out, ctx, NULL);
            if (pr < 0) goto out;
            if (pr == 1) {
                if (!BN_copy(prod, out) || !BN_mul_word(prod, s)) goto out;
                if ((unsigned)BN_num_bits(prod) == bits) ok = 1;
                goto out;
            }
            if (!BN_add_word(out, 2)) goto out;
        }
    }
out:
    BN_free(lo);
    BN_free(hi);
    BN_free(range);
    BN_free(prod);
    return ok;
}

static void test_modulus_checks(void) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *x = BN_new(), *y = BN_new();
    DUO_REQUIRE(ctx && x && y);
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const BIGNUM *n = duo_paillier_pub_n(duo_paillier_priv_pub(sk));
        const BIGNUM *p = duo_paillier_priv_p(sk);
        unsigned bits = g_bits[k];
        /* the real key passes; time the check */
        double t0 = now_ms();
        DUO_CHECK_OK(duo_paillier_modulus_check(n, bits));
        fprintf(stderr, "  modulus check (%u bits): %.2f ms\n", bits, now_ms() - t0);
        /* wrong size: N with one bit fewer / one bit more (both odd) */
        DUO_CHECK(BN_rshift1(x, n) && BN_set_bit(x, 0));
        DUO_CHECK((unsigned)BN_num_bits(x) == bits - 1);
        DUO_EXPECT_ERR(duo_paillier_modulus_check(x, bits), DUO_E_BAD_MODULUS);
        DUO_CHECK(BN_lshift1(x, n) && BN_set_bit(x, 0));
        DUO_CHECK((unsigned)BN_num_bits(x) == bits + 1);
        DUO_EXPECT_ERR(duo_paillier_modulus_check(x, bits), DUO_E_BAD_MODULUS);
        /* the other supported size */
        DUO_EXPECT_ERR(duo_paillier_modulus_check(n, g_bits[1 - k]), DUO_E_BAD_MODULUS);
        /* even */
        DUO_CHECK(BN_copy(x, n) && BN_add_word(x, 1));
        DUO_EXPECT_ERR(duo_paillier_modulus_check(x, bits), DUO_E_BAD_MODULUS);
        /* prime of the right size (RFC 3526 MODP primes) */
        BIGNUM *prime = bits == 2048 ? BN_get_rfc3526_prime_2048(NULL) : BN_get_rfc3526_prime_3072(NULL);
        DUO_CHECK(prime != NULL && (unsigned)BN_num_bits(prime) == bits);
        DUO_EXPECT_ERR(duo_paillier_modulus_check(prime, bits), DUO_E_BAD_MODULUS);
        BN_free(prime);
        /* N = p * p: right size, odd, composite, no small factor, but a square */
        DUO_CHECK(BN_sqr(x, p, ctx));
        DUO_CHECK((unsigned)BN_num_bits(x) == bits);
        DUO_EXPECT_ERR(duo_paillier_modulus_check(x, bits), DUO_E_BAD_MODULUS);
        /* N = 3 * P with P a large prime */
        DUO_CHECK(prime_for_product(y, 3, bits, ctx));
        DUO_CHECK(BN_copy(x, y) && BN_mul_word(x, 3));
        DUO_CHECK((unsigned)BN_num_bits(x) == bits && BN_is_odd(x));
        DUO_EXPECT_ERR(duo_paillier_modulus_check(x, bits), DUO_E_BAD_MODULUS);
        DUO_EXPECT_ERR(duo_paillier_modulus_check(NULL, bits), DUO_E_INVALID_ARG);
        DUO_EXPECT_ERR(duo_paillier_modulus_check(n, 1024), DUO_E_UNSUPPORTED);
    }
    /* N = 65521 * P (65521 is the largest prime below 2^16), 2048 bits */
    DUO_CHECK(prime_for_product(y, 65521, 2048, ctx));
    DUO_CHECK(BN_copy(x, y) && BN_mul_word(x, 65521));
    DUO_CHECK(BN_num_bits(x) == 2048);
    DUO_EXPECT_ERR(duo_paillier_modulus_check(x, 2048), DUO_E_BAD_MODULUS);
    /* 65537 (above the bound) times a large prime passes the check: the
     * bound is exactly 2^16, not more (shows the sieve is not over-eager) */
    DUO_CHECK(prime_for_product(y, 65537, 2048, ctx));
    DUO_CHECK(BN_copy(x, y) && BN_mul_word(x, 65537));
    DUO_CHECK(BN_num_bits(x) == 2048);
    DUO_CHECK_OK(duo_paillier_modulus_check(x, 2048));
    BN_free(x);
    BN_free(y);
    BN_CTX_free(ctx);
}

static void test_pub_encoding(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_pub *pk = duo_paillier_priv_pub(g_sk[k]);
        unsigned bits = g_bits[k];
        uint8_t buf[3072 / 8 + 1];
        duo_paillier_pub *pk2 = NULL, *pk3 = NULL;
        DUO_EXPECT_ERR(duo_paillier_pub_serialize(pk, buf, bits / 8 - 1), DUO_E_BUFFER_TOO_SMALL);
        DUO_CHECK_OK(duo_paillier_pub_serialize(pk, buf, bits / 8));
        DUO_CHECK_OK(duo_paillier_pub_parse(&pk2, buf, bits / 8, bits));
        DUO_REQUIRE(pk2 != NULL);
        DUO_CHECK(BN_cmp(duo_paillier_pub_n(pk2), duo_paillier_pub_n(pk)) == 0);
        DUO_CHECK(BN_cmp(duo_paillier_pub_n2(pk2), duo_paillier_pub_n2(pk)) == 0);
        DUO_CHECK(duo_paillier_pub_bits(pk2) == bits);
        DUO_CHECK_OK(duo_paillier_pub_dup(&pk3, pk2));
        DUO_CHECK(pk3 != NULL && BN_cmp(duo_paillier_pub_n(pk3), duo_paillier_pub_n(pk)) == 0);
        /* the remembered modulus check (parsed, copied, and a key from primes,
         * which runs it) */
        DUO_CHECK_OK(duo_paillier_pub_modulus_check(pk2));
        DUO_CHECK_OK(duo_paillier_pub_modulus_check(pk3));
        DUO_CHECK_OK(duo_paillier_pub_modulus_check(pk));
        DUO_EXPECT_ERR(duo_paillier_pub_modulus_check(NULL), DUO_E_INVALID_ARG);
        duo_paillier_pub_free(pk2);
        duo_paillier_pub_free(pk3);
        pk2 = (duo_paillier_pub *)1;
        DUO_EXPECT_ERR(duo_paillier_pub_parse(&pk2, buf, bits / 8 - 1, bits), DUO_E_BAD_MODULUS);
        DUO_CHECK(pk2 == NULL);
        DUO_EXPECT_ERR(duo_paillier_pub_parse(&pk2, buf, bits / 8 + 1, bits), DUO_E_BAD_MODULUS);
        buf[bits / 8 - 1] ^= 1; /* even */
        DUO_EXPECT_ERR(duo_paillier_pub_parse(&pk2, buf, bits / 8, bits), DUO_E_BAD_MODULUS);
        buf[bits / 8 - 1] ^= 1;
        buf[0] = 0; /* too short a value in the right length */
        DUO_EXPECT_ERR(duo_paillier_pub_parse(&pk2, buf, bits / 8, bits), DUO_E_BAD_MODULUS);
        DUO_CHECK(pk2 == NULL);
        duo_paillier_pub_free(NULL);
    }
}

static void test_ciphertext_checks(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        const BIGNUM *n = duo_paillier_pub_n(pk), *n2 = duo_paillier_pub_n2(pk);
        size_t len = duo_paillier_ciphertext_bytes(pk);
        uint8_t buf[2 * 3072 / 8 + 1];
        BIGNUM *c = BN_new(), *c2 = BN_new(), *m = BN_new(), *rn = BN_new();
        DUO_REQUIRE(c && c2 && m && rn);
        DUO_CHECK(len == 2 * g_bits[k] / 8);
        BN_zero(c);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, c), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, n2), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_copy(c, n2) && BN_add_word(c, 1));
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, c), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, n), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, duo_paillier_priv_p(sk)), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_copy(c, duo_paillier_priv_q(sk)) && BN_mul_word(c, 12345));
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, c), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_set_word(c, 1) && (BN_set_negative(c, 1), 1));
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, c), DUO_E_BAD_CIPHERTEXT);
        /* boundaries that are valid */
        DUO_CHECK(BN_set_word(c, 1));
        DUO_CHECK_OK(duo_paillier_ciphertext_check(pk, c));
        DUO_CHECK(BN_copy(c, n2) && BN_sub_word(c, 1));
        DUO_CHECK_OK(duo_paillier_ciphertext_check(pk, c));
        /* decrypt validates first and does not count a rejected input */
        unsigned long before = duo_paillier_priv_decryptions(sk);
        DUO_EXPECT_ERR(duo_paillier_decrypt(sk, m, n), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_decrypt(sk, m, n2), DUO_E_BAD_CIPHERTEXT);
        DUO_EXPECT_ERR(duo_paillier_decrypt(sk, m, duo_paillier_priv_p(sk)), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_copy(c, duo_paillier_priv_q(sk)) && BN_mul_word(c, 12345));
        DUO_EXPECT_ERR(duo_paillier_decrypt(sk, m, c), DUO_E_BAD_CIPHERTEXT);
        BN_zero(c);
        DUO_EXPECT_ERR(duo_paillier_decrypt(sk, m, c), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(duo_paillier_priv_decryptions(sk) == before);
        /* encodings */
        DUO_CHECK_OK(duo_bn_random_below(m, n, &g_rng.rng));
        DUO_CHECK_OK(duo_paillier_rn(pk, rn, &g_rng.rng));
        DUO_CHECK_OK(duo_paillier_encrypt(pk, c, m, rn));
        DUO_EXPECT_ERR(duo_paillier_ciphertext_serialize(pk, buf, len - 1, c), DUO_E_BUFFER_TOO_SMALL);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_serialize(pk, buf, len, n2), DUO_E_INVALID_ARG);
        DUO_CHECK_OK(duo_paillier_ciphertext_serialize(pk, buf, len, c));
        DUO_CHECK_OK(duo_paillier_ciphertext_parse(pk, c2, buf, len));
        DUO_CHECK(BN_cmp(c, c2) == 0);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len - 1), DUO_E_BAD_FIELD);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len + 1), DUO_E_BAD_FIELD);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, 0), DUO_E_BAD_FIELD);
        /* right length, invalid values: 0, N^2, all-ones, N, p */
        memset(buf, 0, len);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_bn2binpad(n2, buf, (int)len) == (int)len);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len), DUO_E_BAD_CIPHERTEXT);
        memset(buf, 0xff, len);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_bn2binpad(n, buf, (int)len) == (int)len);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len), DUO_E_BAD_CIPHERTEXT);
        DUO_CHECK(BN_bn2binpad(duo_paillier_priv_p(sk), buf, (int)len) == (int)len);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_parse(pk, c2, buf, len), DUO_E_BAD_CIPHERTEXT);
        BN_free(c);
        BN_free(c2);
        BN_free(m);
        BN_free(rn);
    }
}

/* The unit test of duo_paillier_ciphertext_check (a binary gcd of c mod N
 * and N on 64-bit limbs, paillier.c) agrees with OpenSSL's BN_gcd: random
 * values (units), multiples of p and of q (non-units), values with long runs
 * of zero bits (the gcd's shifts across limbs) and the edges 1, N - 1,
 * N + 1, N^2 - 1, N^2 - p. */
static int gcd_is_one_ref(const BIGNUM *c, const BIGNUM *n) {
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *g = BN_new(), *t = BN_new();
    int one = ctx && g && t && BN_nnmod(t, c, n, ctx) && !BN_is_zero(t) && BN_gcd(g, t, n, ctx) && BN_is_one(g);
    BN_free(g);
    BN_free(t);
    BN_CTX_free(ctx);
    return one;
}

static void expect_unit_check(const duo_paillier_pub *pk, const BIGNUM *c) {
    int ref = gcd_is_one_ref(c, duo_paillier_pub_n(pk));
    int r = duo_paillier_ciphertext_check(pk, c);
    DUO_CHECK(r == (ref ? DUO_OK : DUO_E_BAD_CIPHERTEXT));
}

/* duo__coprime_var (the zero-knowledge verifiers' unit test on public
 * values, issue 22) agrees with OpenSSL's gcd on random values, multiples of
 * p and q, 0 and N, and refuses moduli it is not for. */
static void test_coprime_var(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const BIGNUM *n = duo_paillier_pub_n(duo_paillier_priv_pub(sk)),
                     *n2 = duo_paillier_pub_n2(duo_paillier_priv_pub(sk));
        const BIGNUM *pq[2] = {duo_paillier_priv_p(sk), duo_paillier_priv_q(sk)};
        BN_CTX *ctx = BN_CTX_new();
        BIGNUM *c = BN_new(), *x = BN_new();
        int co = -1, nonunits = 0;
        DUO_REQUIRE(ctx && c && x);
        for (int i = 0; i < 200; i++) {
            DUO_CHECK_OK(duo_bn_random_below(c, i % 2 ? n2 : n, &g_rng.rng));
            if (i % 4 == 3) DUO_REQUIRE(BN_mod_mul(c, c, pq[(i / 4) % 2], n2, ctx));
            DUO_CHECK_OK(duo__coprime_var(&co, c, n, ctx));
            DUO_CHECK(co == gcd_is_one_ref(c, n));
            nonunits += co == 0;
        }
        DUO_CHECK(nonunits >= 50);
        BN_zero(c);
        DUO_CHECK_OK(duo__coprime_var(&co, c, n, ctx));
        DUO_CHECK(co == 0);
        DUO_CHECK_OK(duo__coprime_var(&co, n, n, ctx));
        DUO_CHECK(co == 0);
        DUO_CHECK_OK(duo__coprime_var(&co, BN_value_one(), n, ctx));
        DUO_CHECK(co == 1);
        DUO_REQUIRE(BN_lshift1(x, n));
        DUO_EXPECT_ERR(duo__coprime_var(&co, c, x, ctx), DUO_E_INVALID_ARG); /* even */
        DUO_EXPECT_ERR(duo__coprime_var(&co, c, BN_value_one(), ctx), DUO_E_INVALID_ARG);
        DUO_EXPECT_ERR(duo__coprime_var(&co, c, n2, ctx), DUO_E_INVALID_ARG); /* N^2: over 3072 bits */
        BN_free(c);
        BN_free(x);
        BN_CTX_free(ctx);
    }
}

static void test_unit_check_matches_gcd(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        const BIGNUM *n = duo_paillier_pub_n(pk), *n2 = duo_paillier_pub_n2(pk);
        const BIGNUM *pq[2] = {duo_paillier_priv_p(sk), duo_paillier_priv_q(sk)};
        BN_CTX *ctx = BN_CTX_new();
        BIGNUM *c = BN_new(), *x = BN_new();
        int nonunits = 0;
        DUO_REQUIRE(ctx && c && x);
        for (int i = 0; i < 200; i++) {
            DUO_CHECK_OK(duo_bn_random_below(c, n2, &g_rng.rng));
            if (BN_is_zero(c)) continue;
            expect_unit_check(pk, c);
        }
        for (int i = 0; i < 100; i++) {
            /* f * x mod N^2 for f = p or q: c mod N shares f with N */
            DUO_CHECK_OK(duo_bn_random_below(x, n2, &g_rng.rng));
            DUO_REQUIRE(BN_mod_mul(c, x, pq[i % 2], n2, ctx));
            if (BN_is_zero(c)) continue;
            expect_unit_check(pk, c);
            nonunits += gcd_is_one_ref(c, n) == 0;
        }
        DUO_CHECK(nonunits == 100);
        for (int j = 1; j < 2 * (int)g_bits[k] - 2; j += 61) {
            /* 2^j * (small odd), 2^j * p, 2^j + 1: shifts of every size */
            DUO_REQUIRE(BN_set_word(c, 3) && BN_lshift(c, c, j));
            if (BN_cmp(c, n2) < 0) expect_unit_check(pk, c);
            DUO_REQUIRE(BN_lshift(c, pq[j % 2], j) && BN_nnmod(c, c, n2, ctx));
            if (!BN_is_zero(c)) expect_unit_check(pk, c);
            BN_zero(c);
            DUO_REQUIRE(BN_set_bit(c, j) && BN_add_word(c, 1));
            expect_unit_check(pk, c);
        }
        DUO_REQUIRE(BN_set_word(c, 1));
        expect_unit_check(pk, c);
        DUO_REQUIRE(BN_copy(c, n) && BN_sub_word(c, 1));
        expect_unit_check(pk, c);
        DUO_REQUIRE(BN_copy(c, n) && BN_add_word(c, 1));
        expect_unit_check(pk, c);
        DUO_REQUIRE(BN_copy(c, n2) && BN_sub_word(c, 1));
        expect_unit_check(pk, c);
        DUO_REQUIRE(BN_sub(c, n2, pq[0]));
        expect_unit_check(pk, c);
        DUO_EXPECT_ERR(duo_paillier_ciphertext_check(pk, c), DUO_E_BAD_CIPHERTEXT);
        BN_free(c);
        BN_free(x);
        BN_CTX_free(ctx);
    }
}

/* duo_paillier_encrypt_fixed under a parsed or duplicated public key (its
 * constants made once, at parse) gives the ciphertext it gives under the
 * key built from primes (constants made per call). */
static void test_encrypt_fixed_cached_consts(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        duo_paillier_pub *pp = NULL, *pd = NULL;
        uint8_t nbuf[3072 / 8], mb[96];
        size_t nb = g_bits[k] / 8;
        BIGNUM *rn = BN_new(), *c0 = BN_new(), *c1 = BN_new(), *c2 = BN_new(), *d = BN_new(), *mm = BN_new();
        DUO_REQUIRE(rn && c0 && c1 && c2 && d && mm);
        DUO_CHECK_OK(duo_paillier_pub_serialize(pk, nbuf, nb));
        DUO_CHECK_OK(duo_paillier_pub_parse(&pp, nbuf, nb, g_bits[k]));
        DUO_CHECK_OK(duo_paillier_pub_dup(&pd, pp));
        for (int i = 0; i < 4; i++) {
            DUO_CHECK_OK(duo_rng_bytes(&g_rng.rng, mb, sizeof mb));
            if (i == 0) memset(mb, 0, sizeof mb);
            if (i == 1) memset(mb, 0xff, sizeof mb);
            DUO_CHECK_OK(duo_paillier_rn(pk, rn, &g_rng.rng));
            DUO_CHECK_OK(duo_paillier_encrypt_fixed(pk, c0, mb, sizeof mb, rn));
            DUO_CHECK_OK(duo_paillier_encrypt_fixed(pp, c1, mb, sizeof mb, rn));
            DUO_CHECK_OK(duo_paillier_encrypt_fixed(pd, c2, mb, sizeof mb, rn));
            DUO_CHECK(BN_cmp(c0, c1) == 0 && BN_cmp(c0, c2) == 0);
            DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c1));
            DUO_REQUIRE(BN_bin2bn(mb, sizeof mb, mm) != NULL);
            DUO_CHECK(BN_cmp(d, mm) == 0);
        }
        duo_paillier_pub_free(pp);
        duo_paillier_pub_free(pd);
        BN_free(rn);
        BN_free(c0);
        BN_free(c1);
        BN_free(c2);
        BN_free(d);
        BN_free(mm);
    }
}

static void test_from_primes(void) {
    const duo_paillier_priv *sk = g_sk[0];
    const BIGNUM *p = duo_paillier_priv_p(sk), *q = duo_paillier_priv_q(sk);
    duo_paillier_priv *sk2 = NULL;
    BIGNUM *x = BN_new(), *m = BN_new(), *rn = BN_new(), *c = BN_new(), *d = BN_new();
    DUO_REQUIRE(x && m && rn && c && d);
    /* shapes of the generated primes */
    for (int k = 0; k < 2; k++) {
        const BIGNUM *pp[2] = {duo_paillier_priv_p(g_sk[k]), duo_paillier_priv_q(g_sk[k])};
        for (int j = 0; j < 2; j++) {
            int h = (int)g_bits[k] / 2;
            DUO_CHECK(BN_num_bits(pp[j]) == h && BN_is_bit_set(pp[j], h - 2));
            DUO_CHECK(BN_is_bit_set(pp[j], 0) && BN_is_bit_set(pp[j], 1));
            DUO_CHECK(BN_get_flags(pp[j], BN_FLG_CONSTTIME) != 0);
        }
        BN_CTX *ctx = BN_CTX_new();
        DUO_CHECK(BN_mul(x, pp[0], pp[1], ctx) && BN_cmp(x, duo_paillier_pub_n(duo_paillier_priv_pub(g_sk[k]))) == 0);
        DUO_CHECK(BN_sub(x, pp[0], BN_value_one()) && BN_sub(m, pp[1], BN_value_one()) && BN_mul(x, x, m, ctx) &&
                  BN_cmp(x, duo_paillier_priv_phi(g_sk[k])) == 0);
        BN_CTX_free(ctx);
    }
    /* a key rebuilt from the same primes (either order) decrypts the same */
    DUO_CHECK_OK(duo_paillier_priv_from_primes(&sk2, q, p, 2048));
    DUO_REQUIRE(sk2 != NULL);
    DUO_CHECK(duo_paillier_priv_decryptions(sk2) == 0);
    DUO_CHECK_OK(duo_bn_random_below(m, duo_paillier_pub_n(duo_paillier_priv_pub(sk)), &g_rng.rng));
    DUO_CHECK_OK(duo_paillier_rn(duo_paillier_priv_pub(sk), rn, &g_rng.rng));
    DUO_CHECK_OK(duo_paillier_encrypt(duo_paillier_priv_pub(sk), c, m, rn));
    DUO_CHECK_OK(duo_paillier_decrypt(sk2, d, c));
    DUO_CHECK(BN_cmp(d, m) == 0);
    DUO_CHECK(duo_paillier_priv_decryptions(sk2) == 1);
    duo_paillier_priv_free(sk2);
    duo_paillier_priv_free(NULL);
    sk2 = (duo_paillier_priv *)1;
    /* p = 1 mod 4 */
    DUO_CHECK(BN_copy(x, p) && BN_add_word(x, 2));
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, x, q, 2048), DUO_E_INVALID_ARG);
    DUO_CHECK(sk2 == NULL);
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, p, x, 2048), DUO_E_INVALID_ARG);
    /* p == q */
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, p, p, 2048), DUO_E_INVALID_ARG);
    /* short primes: one bit fewer (kept 3 mod 4) */
    DUO_CHECK(BN_rshift1(x, p) && BN_set_bit(x, 0) && BN_set_bit(x, 1));
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, x, q, 2048), DUO_E_INVALID_ARG);
    /* second-highest bit clear */
    DUO_CHECK(BN_copy(x, p) && BN_clear_bit(x, 1022));
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, x, q, 2048), DUO_E_INVALID_ARG);
    /* primes of the other size */
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, p, q, 3072), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_paillier_priv_from_primes(&sk2, p, q, 2047), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_paillier_keygen(&sk2, 1024), DUO_E_INVALID_ARG);
    DUO_CHECK(duo_paillier_bits_supported(2048) && duo_paillier_bits_supported(3072));
    DUO_CHECK(!duo_paillier_bits_supported(4096) && !duo_paillier_bits_supported(0));
    BN_free(x);
    BN_free(m);
    BN_free(rn);
    BN_free(c);
    BN_free(d);
}

static int fill_ff(void *data, uint8_t *out, size_t len) {
    (void)data;
    memset(out, 0xff, len);
    return 0;
}
static int fill_fail(void *data, uint8_t *out, size_t len) {
    (void)data;
    (void)out;
    (void)len;
    return -1;
}

static void test_random_below(void) {
    BIGNUM *out = BN_new(), *bound = BN_new();
    int seen[3] = {0, 0, 0};
    DUO_REQUIRE(out && bound);
    DUO_CHECK(BN_set_word(bound, 3));
    for (int i = 0; i < 200; i++) {
        DUO_CHECK_OK(duo_bn_random_below(out, bound, &g_rng.rng));
        DUO_CHECK(BN_cmp(out, bound) < 0);
        seen[BN_get_word(out) % 3]++;
    }
    DUO_CHECK(seen[0] > 30 && seen[1] > 30 && seen[2] > 30);
    DUO_CHECK(BN_get_flags(out, BN_FLG_CONSTTIME) != 0);
    /* a bound just above a power of two: about half the draws are rejected */
    DUO_CHECK(BN_set_word(bound, 0) && BN_set_bit(bound, 300) && BN_add_word(bound, 1));
    int top = 0;
    for (int i = 0; i < 200; i++) {
        DUO_CHECK_OK(duo_bn_random_below(out, bound, &g_rng.rng));
        DUO_CHECK(BN_cmp(out, bound) < 0);
        top += BN_num_bits(out) == 300;
    }
    DUO_CHECK(top > 60 && top < 140); /* the top bit is set about half the time */
    DUO_CHECK(BN_set_word(bound, 1));
    DUO_CHECK_OK(duo_bn_random_below(out, bound, &g_rng.rng));
    DUO_CHECK(BN_is_zero(out));
    BN_zero(bound);
    DUO_EXPECT_ERR(duo_bn_random_below(out, bound, &g_rng.rng), DUO_E_INVALID_ARG);
    /* an rng stuck at all-ones bytes gives 2^301 - 1 > bound after masking
     * every time: the sampler gives up with DUO_E_RNG instead of looping */
    duo_rng ff = {fill_ff, NULL}, bad = {fill_fail, NULL};
    DUO_CHECK(BN_set_word(bound, 0) && BN_set_bit(bound, 300) && BN_add_word(bound, 1));
    DUO_EXPECT_ERR(duo_bn_random_below(out, bound, &ff), DUO_E_RNG);
    DUO_EXPECT_ERR(duo_bn_random_below(out, bound, &bad), DUO_E_RNG);
    DUO_CHECK(BN_is_zero(out));
    BN_free(out);
    BN_free(bound);
}

static void test_timing(void) {
    for (int k = 0; k < 2; k++) {
        const duo_paillier_priv *sk = g_sk[k];
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        BIGNUM *m = BN_new(), *rn = BN_new(), *c = BN_new(), *d = BN_new(), *r = BN_new();
        const int iters = 20;
        DUO_REQUIRE(m && rn && c && d && r);
        DUO_CHECK_OK(duo_bn_random_below(m, duo_paillier_pub_n(pk), &g_rng.rng));
        DUO_CHECK_OK(duo_paillier_random_unit(pk, r, &g_rng.rng));
        double t0 = now_ms();
        for (int i = 0; i < iters; i++) DUO_CHECK_OK(duo_paillier_rn_from_r(pk, rn, r));
        double t_rn = (now_ms() - t0) / iters;
        t0 = now_ms();
        for (int i = 0; i < iters; i++) DUO_CHECK_OK(duo_paillier_rn_from_r_priv(sk, rn, r));
        double t_rn_crt = (now_ms() - t0) / iters;
        t0 = now_ms();
        for (int i = 0; i < iters; i++) DUO_CHECK_OK(duo_paillier_encrypt(pk, c, m, rn));
        double t_enc = (now_ms() - t0) / iters;
        t0 = now_ms();
        for (int i = 0; i < iters; i++) DUO_CHECK_OK(duo_paillier_decrypt(sk, d, c));
        double t_dec = (now_ms() - t0) / iters;
        DUO_CHECK(BN_cmp(d, m) == 0);
        fprintf(
            stderr,
            "  paillier %u (CPU time): CRT decrypt %.3f ms, rn %.3f ms, rn (CRT) %.3f ms, encrypt given rn %.3f ms\n",
            g_bits[k], t_dec, t_rn, t_rn_crt, t_enc);
        BN_free(m);
        BN_free(rn);
        BN_free(c);
        BN_free(d);
        BN_free(r);
    }
}

int main(void) {
    duo_det_rng_init(&g_rng, duo_test_seed());
    for (int k = 0; k < 2; k++) {
        double t0 = now_ms();
        int r = duo_paillier_keygen(&g_sk[k], g_bits[k]);
        if (r != DUO_OK || g_sk[k] == NULL) {
            fprintf(stderr, "keygen %u failed: %s\n", g_bits[k], duo_err_name(r));
            return 1;
        }
        fprintf(stderr, "  keygen %u: %.0f ms\n", g_bits[k], now_ms() - t0);
    }
    DUO_RUN(test_random_below);
    DUO_RUN(test_roundtrip);
    DUO_RUN(test_crt_matches_textbook);
    DUO_RUN(test_homomorphic);
    DUO_RUN(test_rn_paths);
    DUO_RUN(test_pub_encoding);
    DUO_RUN(test_ciphertext_checks);
    DUO_RUN(test_unit_check_matches_gcd);
    DUO_RUN(test_coprime_var);
    DUO_RUN(test_encrypt_fixed_cached_consts);
    DUO_RUN(test_from_primes);
    DUO_RUN(test_modulus_checks);
    DUO_RUN(test_timing);
    duo_paillier_priv_free(g_sk[0]);
    duo_paillier_priv_free(g_sk[1]);
    return duo_test_finish();
}
