/* Paillier encryption over OpenSSL 3.0 BIGNUM, g = N + 1.
 *
 * Secret values (p, q, p-1, q-1, phi, the CRT constants, r, plaintexts under
 * decryption) carry BN_FLG_CONSTTIME and go through BN_mod_exp_mont_consttime,
 * Montgomery multiplication and OpenSSL 3.0's fixed-top BN_div. What remains
 * visible to timing is the limb count (BIGNUM top) of some intermediates, as
 * with every public OpenSSL BIGNUM API. */
#include "duosign/paillier.h"

#include <stdatomic.h>
#include <string.h>

#include <openssl/bn.h>

#include "duosign/mem.h"
#include "duosign/rng.h"
#include "paillier_internal.h"

/* Limbs of the largest modulus N (3072 bits) for the unit test's gcd. */
#define DUO__GCD_MAX_LIMBS (3072 / 64)

struct duo_paillier_pub {
    unsigned bits;
    BIGNUM *n;
    BIGNUM *n2;
    BN_MONT_CTX *mont_n2;
    /* duo_paillier_encrypt_fixed's public constants (e + 1 as 2*bits/8
     * big-endian bytes, G*R^2 mod N^2), made once by pub_parse/pub_dup
     * (the device's keys); NULL in a key built from primes (the cloud never
     * encrypts a secret plaintext on its signing path): computed per call. */
    uint8_t *enc_e1;
    BIGNUM *enc_g;
    /* N passed duo_paillier_modulus_check (set by pub_parse, kept by
     * pub_dup; N never changes after construction). */
    int modulus_checked;
};

struct duo_paillier_priv {
    duo_paillier_pub pub;
    BIGNUM *p, *q;       /* the primes */
    BIGNUM *pm1, *qm1;   /* p - 1, q - 1 (decryption exponents) */
    BIGNUM *phi;         /* (p - 1)(q - 1) */
    BIGNUM *p2, *q2;     /* p^2, q^2 */
    BIGNUM *hp_m, *hq_m; /* h_p, h_q in Montgomery form mod p, q */
    BIGNUM *qinv_p_m;    /* q^-1 mod p, Montgomery form mod p */
    BIGNUM *q2inv_p2_m;  /* (q^2)^-1 mod p^2, Montgomery form mod p^2 */
    BIGNUM *np, *nq;     /* N mod p(p-1), N mod q(q-1): r^N exponents */
    BN_MONT_CTX *mont_p, *mont_q, *mont_p2, *mont_q2;
    atomic_ulong decryptions;
};

/* ---------------------------------------------------------------- helpers */

int duo_paillier_bits_supported(unsigned bits) { return bits == 2048u || bits == 3072u; }

static void bn_secret(BIGNUM *b) { BN_set_flags(b, BN_FLG_CONSTTIME); }

static BIGNUM *bn_new_secret(void) {
    BIGNUM *b = BN_secure_new();
    if (b != NULL) {
        bn_secret(b);
    }
    return b;
}

/* Sieve of Eratosthenes over odd numbers below `limit` (<= 65536): fills
 * out[] with the odd primes in increasing order, returns their count. */
static size_t odd_primes_below(uint16_t *out, size_t cap, unsigned limit) {
    uint8_t composite[65536 / 16]; /* bit i: 2i+1 composite */
    size_t count = 0;
    unsigned i, j;
    memset(composite, 0, sizeof composite);
    for (i = 3; i < limit; i += 2) {
        unsigned idx = i >> 1;
        if (composite[idx >> 3] & (1u << (idx & 7))) {
            continue;
        }
        if (count < cap) {
            out[count++] = (uint16_t)i;
        }
        for (j = i * i; j < limit; j += 2 * i) {
            unsigned jdx = j >> 1;
            composite[jdx >> 3] = (uint8_t)(composite[jdx >> 3] | (1u << (jdx & 7)));
        }
    }
    return count;
}

/* out = floor(sqrt(n)) by Newton's iteration from above (public data). */
static int bn_isqrt_var(BIGNUM *out, const BIGNUM *n, BN_CTX *ctx) {
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *x = BN_CTX_get(ctx), *y = BN_CTX_get(ctx);
    if (y == NULL) goto out;
    if (BN_is_zero(n)) {
        BN_zero(out);
        ok = 1;
        goto out;
    }
    /* x = 2^ceil(bits/2) >= sqrt(n) */
    if (!BN_set_word(x, 0) || !BN_set_bit(x, (BN_num_bits(n) + 1) / 2)) goto out;
    for (;;) {
        if (!BN_div(y, NULL, n, x, ctx) || !BN_add(y, y, x) || !BN_rshift1(y, y)) goto out;
        if (BN_cmp(y, x) >= 0) break;
        if (!BN_copy(x, y)) goto out;
    }
    ok = BN_copy(out, x) != NULL;
out:
    BN_CTX_end(ctx);
    return ok;
}

/* out = a (< m) in Montgomery form. */
static int bn_to_mont(BIGNUM *out, const BIGNUM *a, BN_MONT_CTX *mont, BN_CTX *ctx) {
    return BN_to_montgomery(out, a, mont, ctx);
}

/* CRT: out = x_b + B * ((x_a - x_b) * binv mod A), with x_a < A, x_b < B < 2A,
 * binv_m = B^-1 mod A in Montgomery form for mont_a. Result < A*B.
 * Uses unsigned add/sub whose operand order never depends on secret data,
 * fixed-top division (OpenSSL 3.0 BN_div) and Montgomery multiplication. */
static int crt_combine(BIGNUM *out, const BIGNUM *xa, const BIGNUM *xb, const BIGNUM *a, const BIGNUM *b,
                       const BIGNUM *binv_m, BN_MONT_CTX *mont_a, BN_CTX *ctx) {
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx), *u = BN_CTX_get(ctx);
    if (u == NULL) goto out;
    bn_secret(t);
    bn_secret(u);
    /* t = xa + 2A - xb > 0 since xb < B < 2A */
    if (!BN_lshift1(t, a) || !BN_uadd(t, t, xa) || !BN_usub(t, t, xb)) goto out;
    if (!BN_mod(t, t, a, ctx)) goto out;
    if (!BN_mod_mul_montgomery(t, t, binv_m, mont_a, ctx)) goto out; /* (xa - xb) B^-1 mod A */
    if (!BN_mul(u, t, b, ctx) || !BN_uadd(out, u, xb)) goto out;
    ok = 1;
out:
    BN_CTX_end(ctx);
    return ok;
}

/* ------------------------------------------------------------- random values */

int duo_bn_random_below(BIGNUM *out, const BIGNUM *bound, const duo_rng *rng) {
    int r = DUO_E_INTERNAL;
    uint8_t *buf = NULL;
    size_t len;
    int tries;
    if (out == NULL || bound == NULL || BN_is_zero(bound) || BN_is_negative(bound)) {
        return DUO_E_INVALID_ARG;
    }
    bn_secret(out);
    if (BN_is_one(bound)) {
        BN_zero(out);
        return DUO_OK;
    }
    int nbits = BN_num_bits(bound);
    len = (size_t)BN_num_bytes(bound);
    uint8_t mask = (uint8_t)(0xffu >> ((8 - nbits % 8) % 8));
    if ((buf = duo_secure_malloc(len)) == NULL) {
        return DUO_E_NOMEM;
    }
    /* Each try succeeds with probability > 1/2. */
    for (tries = 0; tries < 256; tries++) {
        if ((r = duo_rng_bytes(rng, buf, len)) != DUO_OK) goto out;
        buf[0] &= mask;
        if (BN_bin2bn(buf, (int)len, out) == NULL) {
            r = DUO_E_NOMEM;
            goto out;
        }
        bn_secret(out);
        if (BN_cmp(out, bound) < 0) {
            r = DUO_OK;
            goto out;
        }
    }
    r = DUO_E_RNG;
out:
    duo_memzero(buf, len);
    duo_secure_free(buf);
    if (r != DUO_OK) {
        BN_zero(out);
    }
    return r;
}

/* ------------------------------------ fixed-width arithmetic on secrets
 * OpenSSL's public BIGNUM API strips leading zero bytes/limbs of every value
 * it builds (BN_bin2bn, bn_correct_top), a branch on the top of the value.
 * The helpers below keep secret integers as fixed-width big-endian byte
 * strings and do the little integer arithmetic the signing path needs with
 * loops whose bounds depend on public lengths only (docs/SECURITY.md 3.1). */

/* 32-bit little-endian limbs <-> big-endian bytes; nl*4 >= len. */
static void be_to_limbs(uint32_t *l, size_t nl, const uint8_t *be, size_t len) {
    size_t i;
    memset(l, 0, nl * sizeof *l);
    for (i = 0; i < len; i++) {
        l[i / 4] |= (uint32_t)be[len - 1 - i] << (8 * (i % 4));
    }
}

static void limbs_to_be(uint8_t *be, size_t len, const uint32_t *l) {
    size_t i;
    for (i = 0; i < len; i++) {
        be[len - 1 - i] = (uint8_t)(l[i / 4] >> (8 * (i % 4)));
    }
}

/* acc (nacc limbs) += a * b; the carry out of acc is dropped (the callers
 * size acc so that there is none). Data-independent. */
static void limbs_muladd(uint32_t *acc, size_t nacc, const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    size_t i, j;
    for (i = 0; i < na; i++) {
        uint64_t carry = 0;
        for (j = 0; j < nb && i + j < nacc; j++) {
            uint64_t t = (uint64_t)a[i] * b[j] + acc[i + j] + carry;
            acc[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        for (j = i + nb; j < nacc; j++) {
            uint64_t t = (uint64_t)acc[j] + carry;
            acc[j] = (uint32_t)t;
            carry = t >> 32;
        }
    }
}

int duo_be_muladd(uint8_t *out, size_t out_len, const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len,
                  const uint8_t *c, size_t c_len) {
    enum { MAXL = 2 * 3072 / 32 };
    uint32_t acc[MAXL], la[MAXL], lb[MAXL];
    size_t nacc = (out_len + 3) / 4, na = (a_len + 3) / 4, nb = (b_len + 3) / 4;
    if (out == NULL || a == NULL || b == NULL || (c == NULL && c_len != 0) || nacc > MAXL || na > MAXL || nb > MAXL ||
        c_len > out_len)
        return DUO_E_INVALID_ARG;
    be_to_limbs(acc, nacc, c, c_len);
    be_to_limbs(la, na, a, a_len);
    be_to_limbs(lb, nb, b, b_len);
    limbs_muladd(acc, nacc, la, na, lb, nb);
    limbs_to_be(out, out_len, acc);
    duo_memzero(acc, sizeof acc);
    duo_memzero(la, sizeof la);
    duo_memzero(lb, sizeof lb);
    return DUO_OK;
}

/* Constant-time a < b for len-byte big-endian strings: 1 or 0. */
static unsigned be_lt_ct(const uint8_t *a, const uint8_t *b, size_t len) {
    uint32_t borrow = 0;
    size_t i;
    for (i = len; i-- > 0;) {
        uint32_t d = (uint32_t)a[i] - (uint32_t)b[i] - borrow;
        borrow = (d >> 8) & 1u;
    }
    return (unsigned)borrow;
}

int duo_random_below_be(uint8_t *out, const uint8_t *bound, size_t len, const duo_rng *rng) {
    int r = DUO_E_RNG, tries;
    size_t top;
    uint8_t mask;
    if (out == NULL || bound == NULL || len == 0) return DUO_E_INVALID_ARG;
    for (top = 0; top < len && bound[top] == 0; top++) {
    } /* bound is public */
    if (top == len) return DUO_E_INVALID_ARG;
    mask = bound[top];
    mask |= (uint8_t)(mask >> 1);
    mask |= (uint8_t)(mask >> 2);
    mask |= (uint8_t)(mask >> 4);
    /* Each try succeeds with probability > 1/2. */
    for (tries = 0; tries < 256; tries++) {
        unsigned lt;
        memset(out, 0, top);
        if ((r = duo_rng_bytes(rng, out + top, len - top)) != DUO_OK) break;
        out[top] &= mask;
        lt = be_lt_ct(out, bound, len);
        /* Rejection sampling: only whether this (then discarded) draw was
         * below the bound becomes public, not the accepted value. */
        duo__declassify(&lt, sizeof lt);
        if (lt) return DUO_OK;
    }
    duo_memzero(out, len);
    return tries < 256 ? r : DUO_E_RNG;
}

/* 1 <= r < N and gcd(r, N) = 1 (BN_gcd is constant-time in OpenSSL 3.0). */
static int is_unit_mod_n(const duo_paillier_pub *pk, const BIGNUM *r, BN_CTX *ctx, int *is_unit) {
    int ok = 0;
    *is_unit = 0;
    BN_CTX_start(ctx);
    BIGNUM *g = BN_CTX_get(ctx);
    if (g == NULL) goto out;
    if (BN_is_negative(r) || BN_is_zero(r) || BN_cmp(r, pk->n) >= 0) {
        ok = 1;
        goto out;
    }
    if (!BN_gcd(g, r, pk->n, ctx)) goto out;
    *is_unit = BN_is_one(g);
    ok = 1;
out:
    BN_CTX_end(ctx);
    return ok;
}

int duo_paillier_random_unit(const duo_paillier_pub *pk, BIGNUM *r, const duo_rng *rng) {
    int ret = DUO_E_INTERNAL, tries, unit = 0;
    BN_CTX *ctx = NULL;
    if (pk == NULL || r == NULL) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    /* A non-unit reveals a factor of N: probability ~2^-1023. */
    for (tries = 0; tries < 64; tries++) {
        if ((ret = duo_bn_random_below(r, pk->n, rng)) != DUO_OK) goto out;
        if (!is_unit_mod_n(pk, r, ctx, &unit)) {
            ret = DUO_E_INTERNAL;
            goto out;
        }
        if (unit) {
            ret = DUO_OK;
            goto out;
        }
    }
    ret = DUO_E_RNG;
out:
    if (ret != DUO_OK) BN_zero(r);
    BN_CTX_free(ctx);
    return ret;
}

/* ------------------------------------------------------------------ primes */

/* Blum prime of exactly k bits, top two bits set: random start with the top
 * two bits set and p = 3 mod 4, then an incremental search in steps of 4
 * sieved by the odd primes below 2^13, then BN_check_prime (Miller-Rabin with
 * OpenSSL's round count for the size). */
static int blum_prime_k(BIGNUM *out, int k, BN_CTX *ctx) {
    enum { NSMALL = 1100, MAXDELTA = 1u << 20 };
    uint16_t primes[NSMALL];
    uint32_t mods[NSMALL];
    size_t np = odd_primes_below(primes, NSMALL, 8192u), i;
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *base = BN_CTX_get(ctx), *cand = BN_CTX_get(ctx);
    if (cand == NULL) goto out;
    for (;;) {
        uint32_t delta;
        if (!BN_priv_rand_ex(base, k, BN_RAND_TOP_TWO, BN_RAND_BOTTOM_ODD, 0, ctx)) goto out;
        if (!BN_set_bit(base, 1)) goto out; /* 3 mod 4 */
        for (i = 0; i < np; i++) {
            BN_ULONG m = BN_mod_word(base, primes[i]);
            if (m == (BN_ULONG)-1) goto out;
            mods[i] = (uint32_t)m;
        }
        for (delta = 0; delta < MAXDELTA; delta += 4) {
            for (i = 0; i < np; i++) {
                if ((mods[i] + delta) % primes[i] == 0) break;
            }
            if (i < np) continue;
            if (!BN_copy(cand, base) || !BN_add_word(cand, delta)) goto out;
            if (BN_num_bits(cand) != k) break; /* ran past 2^k: restart */
            int pr = BN_check_prime(cand, ctx, NULL);
            if (pr < 0) goto out;
            if (pr == 1) {
                ok = BN_copy(out, cand) != NULL;
                goto out;
            }
        }
    }
out:
    if (base != NULL) BN_clear(base);
    if (cand != NULL) BN_clear(cand);
    BN_CTX_end(ctx);
    return ok;
}

int duo_paillier_blum_prime(BIGNUM *out, unsigned bits) {
    BN_CTX *ctx;
    int ok;
    if (out == NULL || !duo_paillier_bits_supported(bits)) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    ok = blum_prime_k(out, (int)(bits / 2), ctx);
    BN_CTX_free(ctx);
    if (!ok) {
        BN_clear(out);
        return DUO_E_INTERNAL;
    }
    bn_secret(out);
    return DUO_OK;
}

/* ------------------------------------------------------------------- keys */

static void pub_clear(duo_paillier_pub *pk) {
    BN_free(pk->n);
    BN_free(pk->n2);
    BN_MONT_CTX_free(pk->mont_n2);
    OPENSSL_free(pk->enc_e1);
    BN_free(pk->enc_g);
    pk->n = pk->n2 = NULL;
    pk->mont_n2 = NULL;
    pk->enc_e1 = NULL;
    pk->enc_g = NULL;
    pk->modulus_checked = 0;
}

static int enc_consts(const duo_paillier_pub *pk, uint8_t *e1, BIGNUM *g, BN_CTX *ctx);

/* Precomputes the encryption constants into pk (pk->n, n2, mont_n2 set). */
static int pub_init_enc(duo_paillier_pub *pk, BN_CTX *ctx) {
    size_t n2b = 2 * (pk->bits / 8);
    if ((pk->enc_e1 = OPENSSL_zalloc(n2b)) == NULL || (pk->enc_g = BN_new()) == NULL) return 0;
    return enc_consts(pk, pk->enc_e1, pk->enc_g, ctx);
}

/* Fills pk from n (copied); n already checked. */
static int pub_init(duo_paillier_pub *pk, const BIGNUM *n, unsigned bits, BN_CTX *ctx) {
    pk->bits = bits;
    if ((pk->n = BN_dup(n)) == NULL || (pk->n2 = BN_new()) == NULL || (pk->mont_n2 = BN_MONT_CTX_new()) == NULL)
        return 0;
    if (!BN_sqr(pk->n2, pk->n, ctx)) return 0;
    if (!BN_MONT_CTX_set(pk->mont_n2, pk->n2, ctx)) return 0;
    return 1;
}

void duo_paillier_priv_free(duo_paillier_priv *sk) {
    if (sk == NULL) return;
    pub_clear(&sk->pub);
    BN_clear_free(sk->p);
    BN_clear_free(sk->q);
    BN_clear_free(sk->pm1);
    BN_clear_free(sk->qm1);
    BN_clear_free(sk->phi);
    BN_clear_free(sk->p2);
    BN_clear_free(sk->q2);
    BN_clear_free(sk->hp_m);
    BN_clear_free(sk->hq_m);
    BN_clear_free(sk->qinv_p_m);
    BN_clear_free(sk->q2inv_p2_m);
    BN_clear_free(sk->np);
    BN_clear_free(sk->nq);
    /* OpenSSL 3.0 BN_MONT_CTX_free BN_clear_free()s its modulus and constants. */
    BN_MONT_CTX_free(sk->mont_p);
    BN_MONT_CTX_free(sk->mont_q);
    BN_MONT_CTX_free(sk->mont_p2);
    BN_MONT_CTX_free(sk->mont_q2);
    duo_memzero(sk, sizeof *sk);
    OPENSSL_free(sk);
}

static int check_prime_shape(const BIGNUM *p, unsigned bits) {
    int k = (int)(bits / 2);
    return BN_num_bits(p) == k && BN_is_bit_set(p, k - 2) && BN_is_bit_set(p, 0) && BN_is_bit_set(p, 1) &&
           !BN_is_negative(p);
}

/* h = (L_p((N+1)^(p-1) mod p^2))^-1 mod p, returned in Montgomery form mod p.
 * Closed form, no exponentiation: N^2 = 0 mod p^2, so by the binomial theorem
 * (1+N)^(p-1) = 1 + (p-1)N mod p^2 for any integers p, q; hence
 * L_p = (p-1)N/p = (p-1)q = -q mod p and h = (-q)^-1 = p - (q^-1 mod p).
 * This equals what the exponentiation gave (it fails exactly when q is not
 * invertible mod p, as before) at a small fraction of the cost: the key is
 * rebuilt from its primes for every signature by the cloud daemon.
 * q < 2p (same bit length), so q mod p is one subtraction. */
static int crt_h(BIGNUM *h_m, const BIGNUM *p, const BIGNUM *q, BN_MONT_CTX *mont_p, BN_CTX *ctx) {
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx), *h = BN_CTX_get(ctx);
    if (h == NULL) goto out;
    bn_secret(t);
    bn_secret(h);
    if (!BN_mod(t, q, p, ctx)) goto out;
    if (BN_mod_inverse(t, t, p, ctx) == NULL) goto out; /* in [1, p-1] */
    if (!BN_sub(h, p, t)) goto out;                     /* -q^-1 mod p, in [1, p-1] */
    if (!bn_to_mont(h_m, h, mont_p, ctx)) goto out;
    ok = 1;
out:
    if (t != NULL) BN_clear(t);
    if (h != NULL) BN_clear(h);
    BN_CTX_end(ctx);
    return ok;
}

int duo_paillier_priv_from_primes(duo_paillier_priv **out, const BIGNUM *p, const BIGNUM *q, unsigned bits) {
    int r = DUO_E_INTERNAL;
    duo_paillier_priv *sk = NULL;
    BN_CTX *ctx = NULL;
    BIGNUM *n = NULL, *t = NULL;
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (p == NULL || q == NULL || !duo_paillier_bits_supported(bits)) return DUO_E_INVALID_ARG;
    if (!check_prime_shape(p, bits) || !check_prime_shape(q, bits) || BN_cmp(p, q) == 0) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    if ((sk = OPENSSL_zalloc(sizeof *sk)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    atomic_init(&sk->decryptions, 0);
    r = DUO_E_NOMEM;
    if ((n = BN_new()) == NULL || (t = bn_new_secret()) == NULL) goto out;
    if ((sk->p = bn_new_secret()) == NULL || (sk->q = bn_new_secret()) == NULL || (sk->pm1 = bn_new_secret()) == NULL ||
        (sk->qm1 = bn_new_secret()) == NULL || (sk->phi = bn_new_secret()) == NULL ||
        (sk->p2 = bn_new_secret()) == NULL || (sk->q2 = bn_new_secret()) == NULL ||
        (sk->hp_m = bn_new_secret()) == NULL || (sk->hq_m = bn_new_secret()) == NULL ||
        (sk->qinv_p_m = bn_new_secret()) == NULL || (sk->q2inv_p2_m = bn_new_secret()) == NULL ||
        (sk->np = bn_new_secret()) == NULL || (sk->nq = bn_new_secret()) == NULL ||
        (sk->mont_p = BN_MONT_CTX_new()) == NULL || (sk->mont_q = BN_MONT_CTX_new()) == NULL ||
        (sk->mont_p2 = BN_MONT_CTX_new()) == NULL || (sk->mont_q2 = BN_MONT_CTX_new()) == NULL)
        goto out;
    r = DUO_E_INTERNAL;
    if (!BN_copy(sk->p, p) || !BN_copy(sk->q, q)) goto out;
    if (!BN_mul(n, sk->p, sk->q, ctx)) goto out;
    if ((unsigned)BN_num_bits(n) != bits) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if (!pub_init(&sk->pub, n, bits, ctx)) goto out;
    if (!BN_copy(sk->pm1, sk->p) || !BN_sub_word(sk->pm1, 1) || !BN_copy(sk->qm1, sk->q) || !BN_sub_word(sk->qm1, 1) ||
        !BN_mul(sk->phi, sk->pm1, sk->qm1, ctx))
        goto out;
    if (!BN_sqr(sk->p2, sk->p, ctx) || !BN_sqr(sk->q2, sk->q, ctx)) goto out;
    if (!BN_MONT_CTX_set(sk->mont_p, sk->p, ctx) || !BN_MONT_CTX_set(sk->mont_q, sk->q, ctx) ||
        !BN_MONT_CTX_set(sk->mont_p2, sk->p2, ctx) || !BN_MONT_CTX_set(sk->mont_q2, sk->q2, ctx))
        goto out;
    if (!crt_h(sk->hp_m, sk->p, sk->q, sk->mont_p, ctx) || !crt_h(sk->hq_m, sk->q, sk->p, sk->mont_q, ctx)) {
        r = DUO_E_INVALID_ARG; /* L_p not invertible: p is not prime */
        goto out;
    }
    /* q^-1 mod p (q < 2p so one reduction), (q^2)^-1 mod p^2 */
    if (!BN_mod(t, sk->q, sk->p, ctx)) goto out;
    if (BN_mod_inverse(t, t, sk->p, ctx) == NULL) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if (!bn_to_mont(sk->qinv_p_m, t, sk->mont_p, ctx)) goto out;
    if (!BN_mod(t, sk->q2, sk->p2, ctx)) goto out;
    if (BN_mod_inverse(t, t, sk->p2, ctx) == NULL) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if (!bn_to_mont(sk->q2inv_p2_m, t, sk->mont_p2, ctx)) goto out;
    /* |Z*_{p^2}| = p(p-1): r^N = r^(N mod p(p-1)) mod p^2 */
    if (!BN_mul(t, sk->p, sk->pm1, ctx) || !BN_mod(sk->np, n, t, ctx)) goto out;
    if (!BN_mul(t, sk->q, sk->qm1, ctx) || !BN_mod(sk->nq, n, t, ctx)) goto out;
    *out = sk;
    sk = NULL;
    r = DUO_OK;
out:
    BN_free(n);
    BN_clear_free(t);
    duo_paillier_priv_free(sk);
    BN_CTX_free(ctx);
    return r;
}

int duo_paillier_keygen(duo_paillier_priv **out, unsigned bits) {
    int r;
    BIGNUM *p = NULL, *q = NULL;
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (!duo_paillier_bits_supported(bits)) return DUO_E_INVALID_ARG;
    if ((p = bn_new_secret()) == NULL || (q = bn_new_secret()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_paillier_blum_prime(p, bits)) != DUO_OK) goto out;
    do {
        if ((r = duo_paillier_blum_prime(q, bits)) != DUO_OK) goto out;
    } while (BN_cmp(p, q) == 0);
    r = duo_paillier_priv_from_primes(out, p, q, bits);
out:
    BN_clear_free(p);
    BN_clear_free(q);
    return r;
}

const duo_paillier_pub *duo_paillier_priv_pub(const duo_paillier_priv *sk) { return sk ? &sk->pub : NULL; }
const BIGNUM *duo_paillier_priv_p(const duo_paillier_priv *sk) { return sk ? sk->p : NULL; }
const BIGNUM *duo_paillier_priv_q(const duo_paillier_priv *sk) { return sk ? sk->q : NULL; }
const BIGNUM *duo_paillier_priv_phi(const duo_paillier_priv *sk) { return sk ? sk->phi : NULL; }

unsigned long duo_paillier_priv_decryptions(const duo_paillier_priv *sk) {
    /* atomic_load needs a non-const object in C11; sk is heap-allocated and
     * never defined const, so the cast is sound. */
    return sk ? atomic_load(&((duo_paillier_priv *)sk)->decryptions) : 0ul;
}

/* ----------------------------------------------------------------- public */

int duo_paillier_modulus_check(const BIGNUM *n, unsigned bits) {
    enum { NPRIMES = 6600 };
    uint16_t primes[NPRIMES];
    int r = DUO_E_BAD_MODULUS;
    BN_CTX *ctx = NULL;
    if (n == NULL) return DUO_E_INVALID_ARG;
    if (!duo_paillier_bits_supported(bits)) return DUO_E_UNSUPPORTED;
    if (BN_is_negative(n) || (unsigned)BN_num_bits(n) != bits || !BN_is_odd(n)) return DUO_E_BAD_MODULUS;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    BN_CTX_start(ctx);
    BIGNUM *prod = BN_CTX_get(ctx), *g = BN_CTX_get(ctx);
    if (g == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    /* Product of all primes below 2^16 (about 94,000 bits), packed into words
     * first, then one reduction mod N and one gcd. */
    {
        size_t np = odd_primes_below(primes, NPRIMES, DUO_PAILLIER_SMALL_PRIME_BOUND), i;
        BN_ULONG w = 2;
        r = DUO_E_INTERNAL;
        if (!BN_one(prod)) goto out;
        for (i = 0; i < np; i++) {
            if (w > (BN_ULONG)-1 / primes[i]) {
                if (!BN_mul_word(prod, w)) goto out;
                w = 1;
            }
            w *= primes[i];
        }
        if (!BN_mul_word(prod, w)) goto out;
        if (!BN_mod(prod, prod, n, ctx) || !BN_gcd(g, prod, n, ctx)) goto out;
        if (!BN_is_one(g)) {
            r = DUO_E_BAD_MODULUS;
            goto out;
        }
    }
    r = DUO_E_INTERNAL;
    if (!bn_isqrt_var(g, n, ctx) || !BN_sqr(g, g, ctx)) goto out;
    if (BN_cmp(g, n) == 0) {
        r = DUO_E_BAD_MODULUS;
        goto out;
    }
    int pr = BN_check_prime(n, ctx, NULL);
    if (pr < 0) goto out;
    r = pr == 0 ? DUO_OK : DUO_E_BAD_MODULUS;
out:
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return r;
}

int duo_paillier_pub_parse(duo_paillier_pub **out, const uint8_t *n, size_t n_len, unsigned bits) {
    int r;
    BIGNUM *bn = NULL;
    BN_CTX *ctx = NULL;
    duo_paillier_pub *pk = NULL;
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (n == NULL) return DUO_E_INVALID_ARG;
    if (!duo_paillier_bits_supported(bits)) return DUO_E_UNSUPPORTED;
    if (n_len != bits / 8) return DUO_E_BAD_MODULUS;
    if ((bn = BN_bin2bn(n, (int)n_len, NULL)) == NULL) return DUO_E_NOMEM;
    if ((r = duo_paillier_modulus_check(bn, bits)) != DUO_OK) goto out;
    r = DUO_E_NOMEM;
    if ((ctx = BN_CTX_new()) == NULL || (pk = OPENSSL_zalloc(sizeof *pk)) == NULL) goto out;
    if (!pub_init(pk, bn, bits, ctx) || !pub_init_enc(pk, ctx)) goto out;
    pk->modulus_checked = 1;
    *out = pk;
    pk = NULL;
    r = DUO_OK;
out:
    duo_paillier_pub_free(pk);
    BN_free(bn);
    BN_CTX_free(ctx);
    return r;
}

int duo_paillier_pub_dup(duo_paillier_pub **out, const duo_paillier_pub *pk) {
    int r = DUO_E_NOMEM;
    BN_CTX *ctx = NULL;
    duo_paillier_pub *d = NULL;
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (pk == NULL) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_new()) == NULL || (d = OPENSSL_zalloc(sizeof *d)) == NULL) goto out;
    if (!pub_init(d, pk->n, pk->bits, ctx) || !pub_init_enc(d, ctx)) goto out;
    d->modulus_checked = pk->modulus_checked;
    *out = d;
    d = NULL;
    r = DUO_OK;
out:
    duo_paillier_pub_free(d);
    BN_CTX_free(ctx);
    return r;
}

int duo_paillier_pub_modulus_check(const duo_paillier_pub *pk) {
    if (pk == NULL) return DUO_E_INVALID_ARG;
    return pk->modulus_checked ? DUO_OK : duo_paillier_modulus_check(pk->n, pk->bits);
}

void duo_paillier_pub_free(duo_paillier_pub *pk) {
    if (pk == NULL) return;
    pub_clear(pk);
    OPENSSL_free(pk);
}

unsigned duo_paillier_pub_bits(const duo_paillier_pub *pk) { return pk ? pk->bits : 0u; }
const BIGNUM *duo_paillier_pub_n(const duo_paillier_pub *pk) { return pk ? pk->n : NULL; }
const BIGNUM *duo_paillier_pub_n2(const duo_paillier_pub *pk) { return pk ? pk->n2 : NULL; }

int duo_paillier_pub_serialize(const duo_paillier_pub *pk, uint8_t *out, size_t out_len) {
    if (pk == NULL || out == NULL) return DUO_E_INVALID_ARG;
    if (out_len < pk->bits / 8) return DUO_E_BUFFER_TOO_SMALL;
    if (out_len != pk->bits / 8) return DUO_E_INVALID_ARG;
    return BN_bn2binpad(pk->n, out, (int)out_len) == (int)out_len ? DUO_OK : DUO_E_INTERNAL;
}

/* ------------------------------------------------------------- ciphertexts */

size_t duo_paillier_ciphertext_bytes(const duo_paillier_pub *pk) { return pk ? 2u * (pk->bits / 8u) : 0u; }

/* 0 < c < N^2 (public comparison). */
static int in_range(const duo_paillier_pub *pk, const BIGNUM *a) {
    return !BN_is_negative(a) && !BN_is_zero(a) && BN_cmp(a, pk->n2) < 0;
}

/* Loads a (< 2^(64*nl), >= 0) into nl 64-bit little-endian limbs. */
static int bn_to_u64_limbs(uint64_t *l, size_t nl, const BIGNUM *a) {
    uint8_t buf[DUO__GCD_MAX_LIMBS * 8];
    size_t i;
    if (nl > DUO__GCD_MAX_LIMBS || BN_bn2lebinpad(a, buf, (int)(8 * nl)) != (int)(8 * nl)) return 0;
    for (i = 0; i < 8 * nl; i++) {
        if (i % 8 == 0) l[i / 8] = 0;
        l[i / 8] |= (uint64_t)buf[i] << (8 * (i % 8));
    }
    return 1;
}

/* 1 if gcd(a, b) = 1, else 0, for b odd and a, b of at most nl limbs (both
 * modified). PUBLIC data only: variable time (binary gcd: strip the
 * factors 2 of a, subtract the smaller from the larger, both odd). */
static int gcd_is_one_var(uint64_t *a, uint64_t *b, size_t nl) {
    size_t na = nl, nb = nl, i, z;
    while (na > 0 && a[na - 1] == 0) na--;
    while (nb > 0 && b[nb - 1] == 0) nb--;
    for (;;) {
        unsigned s;
        int cmp = 0;
        if (na == 0) return nb == 1 && b[0] == 1; /* gcd = b */
        /* a >>= its trailing zero bits (b is odd: the gcd is unchanged) */
        for (z = 0; a[z] == 0; z++) {
        }
        for (s = 0; ((a[z] >> s) & 1u) == 0; s++) { /* a[z] != 0; ~2 steps on average */
        }
        if (z != 0 || s != 0) {
            for (i = 0; i + z + 1 < na; i++) {
                a[i] = s != 0 ? (a[i + z] >> s) | (a[i + z + 1] << (64 - s)) : a[i + z];
            }
            a[i] = a[i + z] >> s;
            na -= z;
            while (na > 0 && a[na - 1] == 0) na--;
        }
        if (na != nb) {
            cmp = na > nb ? 1 : -1;
        } else {
            for (i = na; i-- > 0;) {
                if (a[i] != b[i]) {
                    cmp = a[i] > b[i] ? 1 : -1;
                    break;
                }
            }
        }
        if (cmp == 0) return na == 1 && a[0] == 1; /* gcd = a = b */
        if (cmp < 0) {
            uint64_t *t = a;
            size_t tn = na;
            a = b;
            b = t;
            na = nb;
            nb = tn;
        }
        /* a -= b (a > b, both odd: the difference is even and > 0) */
        {
            uint64_t borrow = 0;
            for (i = 0; i < na; i++) {
                uint64_t bi = i < nb ? b[i] : 0, d = a[i] - bi;
                uint64_t b2 = (uint64_t)(a[i] < bi) | (uint64_t)(d < borrow);
                a[i] = d - borrow;
                borrow = b2;
            }
        }
        while (na > 0 && a[na - 1] == 0) na--;
    }
}

/* 0 < c < N^2 and gcd(c, N) = 1 for a public c. gcd(c, N) = gcd(c mod N, N),
 * tested with a binary gcd on 64-bit limbs (variable time, public data;
 * ~5x faster than OpenSSL's variable-time BN_mod_inverse, whose cofactors
 * are not needed here, and ~10x than its constant-time BN_gcd). (For an rn
 * this is fine too: rn mod N = c mod N becomes public with the ciphertext.) */
static int ct_check(const duo_paillier_pub *pk, const BIGNUM *c, BN_CTX *ctx) {
    int r = DUO_E_INTERNAL;
    uint64_t a[DUO__GCD_MAX_LIMBS], b[DUO__GCD_MAX_LIMBS];
    size_t nl;
    if (!in_range(pk, c)) return DUO_E_BAD_CIPHERTEXT;
    nl = ((size_t)BN_num_bits(pk->n) + 63) / 64;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx); /* BN_CTX_get clears BN_FLG_CONSTTIME */
    if (t == NULL) goto out;
    if (!BN_nnmod(t, c, pk->n, ctx)) goto out;
    if (BN_is_zero(t)) {
        r = DUO_E_BAD_CIPHERTEXT;
        goto out;
    }
    if (!bn_to_u64_limbs(a, nl, t) || !bn_to_u64_limbs(b, nl, pk->n)) goto out;
    r = gcd_is_one_var(a, b, nl) ? DUO_OK : DUO_E_BAD_CIPHERTEXT;
out:
    BN_CTX_end(ctx);
    return r;
}

int duo__coprime_var(int *coprime, const BIGNUM *a, const BIGNUM *n, BN_CTX *ctx) {
    int r = DUO_E_INTERNAL;
    uint64_t la[DUO__GCD_MAX_LIMBS], lb[DUO__GCD_MAX_LIMBS];
    size_t nl;
    if (coprime == NULL || a == NULL || n == NULL || ctx == NULL) return DUO_E_INVALID_ARG;
    *coprime = 0;
    if (BN_is_negative(a) || BN_is_negative(n) || !BN_is_odd(n) || BN_is_one(n) ||
        BN_num_bits(n) > 64 * DUO__GCD_MAX_LIMBS)
        return DUO_E_INVALID_ARG;
    nl = ((size_t)BN_num_bits(n) + 63) / 64;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx);
    if (t == NULL || !BN_nnmod(t, a, n, ctx)) goto out;
    r = DUO_OK;
    if (BN_is_zero(t)) goto out;
    r = DUO_E_INTERNAL;
    if (!bn_to_u64_limbs(la, nl, t) || !bn_to_u64_limbs(lb, nl, n)) goto out;
    *coprime = gcd_is_one_var(la, lb, nl);
    r = DUO_OK;
out:
    BN_CTX_end(ctx);
    return r;
}

int duo_paillier_ciphertext_check(const duo_paillier_pub *pk, const BIGNUM *c) {
    BN_CTX *ctx;
    int r;
    if (pk == NULL || c == NULL) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    r = ct_check(pk, c, ctx);
    BN_CTX_free(ctx);
    return r;
}

int duo_paillier_ciphertext_parse(const duo_paillier_pub *pk, BIGNUM *c, const uint8_t *in, size_t in_len) {
    int r;
    if (pk == NULL || c == NULL || in == NULL) return DUO_E_INVALID_ARG;
    if (in_len != duo_paillier_ciphertext_bytes(pk)) return DUO_E_BAD_FIELD;
    if (BN_bin2bn(in, (int)in_len, c) == NULL) return DUO_E_NOMEM;
    if ((r = duo_paillier_ciphertext_check(pk, c)) != DUO_OK) BN_zero(c);
    return r;
}

int duo_paillier_ciphertext_serialize(const duo_paillier_pub *pk, uint8_t *out, size_t out_len, const BIGNUM *c) {
    size_t need;
    if (pk == NULL || out == NULL || c == NULL) return DUO_E_INVALID_ARG;
    need = duo_paillier_ciphertext_bytes(pk);
    if (out_len < need) return DUO_E_BUFFER_TOO_SMALL;
    if (out_len != need || BN_is_negative(c) || BN_is_zero(c) || BN_cmp(c, pk->n2) >= 0) return DUO_E_INVALID_ARG;
    return BN_bn2binpad(c, out, (int)out_len) == (int)out_len ? DUO_OK : DUO_E_INTERNAL;
}

/* --------------------------------------------------------- randomizers r^N */

static int rn_pub(const duo_paillier_pub *pk, BIGNUM *rn, const BIGNUM *r, BN_CTX *ctx) {
    return BN_mod_exp_mont_consttime(rn, r, pk->n, pk->n2, ctx, pk->mont_n2);
}

int duo_paillier_rn_from_r(const duo_paillier_pub *pk, BIGNUM *rn, const BIGNUM *r) {
    int ret = DUO_E_INTERNAL, unit = 0;
    BN_CTX *ctx;
    if (pk == NULL || rn == NULL || r == NULL) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    if (!is_unit_mod_n(pk, r, ctx, &unit)) goto out;
    if (!unit) {
        ret = DUO_E_INVALID_ARG;
        goto out;
    }
    bn_secret(rn);
    ret = rn_pub(pk, rn, r, ctx) ? DUO_OK : DUO_E_INTERNAL;
out:
    BN_CTX_free(ctx);
    return ret;
}

/* rn = r^N mod N^2 for a uniform r in [0, N), without a gcd on the secret r.
 *
 * Unit check. r is uniform below N; gcd(r, N) != 1 only if r is 0 or a
 * multiple of p or q, probability (p + q - 1)/N < 2^-1000, and then r would
 * hand its holder a factor of N. Testing that with BN_gcd on the secret r
 * (a variable-time binary gcd on limbs and word lengths) leaks r; instead
 * the check is made on PUBLIC data: for c = (1 + m*N) * rn * f mod N^2 with
 * f a unit (e.g. ckey^v), c mod N = r^N * f mod N, so gcd(c, N) = 1 iff
 * gcd(r, N) = 1. The sender checks its ciphertext (duo_paillier_ciphertext_
 * check on the bytes it sends: duo_p2_sign_on_start) and the receiver checks
 * every ciphertext it parses. Callers that need a checked rn before any
 * ciphertext exists use duo_paillier_rn_from_r / duo_paillier_random_unit.
 *
 * Fixed-width load. BN_bin2bn of r itself strips leading zero bytes (a
 * branch on r's top byte). r^N mod N^2 depends only on r mod N ((r + kN)^N =
 * r^N mod N^2 by the binomial theorem), so the value exponentiated is
 * X = 2^(8*nbytes) + r, loaded from 0x01 || r: the top limb is the public
 * constant 1, BN_bin2bn and bn_correct_top never look at r's bytes. X mod N is
 * r + 2^(8*nbytes) mod N, a fixed permutation of Z_N applied to a uniform r,
 * hence uniform. BN_mod_exp_mont_consttime then runs on X with
 * BN_FLG_CONSTTIME (X < N^2, so no reduction). */
int duo_paillier_rn(const duo_paillier_pub *pk, BIGNUM *rn, const duo_rng *rng) {
    int ret = DUO_E_NOMEM;
    size_t nb;
    uint8_t *buf = NULL, *nbe = NULL;
    BIGNUM *x = NULL;
    BN_CTX *ctx = NULL;
    if (pk == NULL || rn == NULL) return DUO_E_INVALID_ARG;
    nb = pk->bits / 8;
    if ((buf = duo_secure_malloc(nb + 1)) == NULL || (nbe = OPENSSL_malloc(nb)) == NULL ||
        (x = bn_new_secret()) == NULL || (ctx = BN_CTX_secure_new()) == NULL)
        goto out;
    ret = DUO_E_INTERNAL;
    if (BN_bn2binpad(pk->n, nbe, (int)nb) != (int)nb) goto out;
    buf[0] = 0x01;
    if ((ret = duo_random_below_be(buf + 1, nbe, nb, rng)) != DUO_OK) goto out;
    ret = DUO_E_INTERNAL;
    if (BN_bin2bn(buf, (int)(nb + 1), x) == NULL) goto out;
    bn_secret(x);
    bn_secret(rn);
    ret = rn_pub(pk, rn, x, ctx) ? DUO_OK : DUO_E_INTERNAL;
out:
    if (buf != NULL) duo_memzero(buf, nb + 1);
    duo_secure_free(buf);
    OPENSSL_free(nbe);
    BN_clear_free(x);
    BN_CTX_free(ctx);
    if (ret != DUO_OK && rn != NULL) BN_zero(rn);
    return ret;
}

int duo_paillier_rn_from_r_priv(const duo_paillier_priv *sk, BIGNUM *rn, const BIGNUM *r) {
    int ret = DUO_E_INTERNAL, unit = 0;
    BN_CTX *ctx;
    if (sk == NULL || rn == NULL || r == NULL) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    BN_CTX_start(ctx);
    BIGNUM *xp = BN_CTX_get(ctx), *xq = BN_CTX_get(ctx), *rr = BN_CTX_get(ctx);
    if (rr == NULL) goto out;
    bn_secret(xp);
    bn_secret(xq);
    bn_secret(rr);
    if (!is_unit_mod_n(&sk->pub, r, ctx, &unit)) goto out;
    if (!unit) {
        ret = DUO_E_INVALID_ARG;
        goto out;
    }
    /* r < N = p*q; reduce mod p^2, q^2 (fixed-top division) */
    if (!BN_mod(rr, r, sk->p2, ctx) || !BN_mod_exp_mont_consttime(xp, rr, sk->np, sk->p2, ctx, sk->mont_p2)) goto out;
    if (!BN_mod(rr, r, sk->q2, ctx) || !BN_mod_exp_mont_consttime(xq, rr, sk->nq, sk->q2, ctx, sk->mont_q2)) goto out;
    bn_secret(rn);
    if (!crt_combine(rn, xp, xq, sk->p2, sk->q2, sk->q2inv_p2_m, sk->mont_p2, ctx)) goto out;
    ret = DUO_OK;
out:
    if (xp != NULL) BN_clear(xp);
    if (xq != NULL) BN_clear(xq);
    if (rr != NULL) BN_clear(rr);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return ret;
}

/* ------------------------------------------------------ encrypt / decrypt */

int duo_paillier_encrypt(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *m, const BIGNUM *rn) {
    int ret = DUO_E_INTERNAL;
    BN_CTX *ctx;
    if (pk == NULL || c == NULL || m == NULL || rn == NULL) return DUO_E_INVALID_ARG;
    if (BN_is_negative(m) || BN_cmp(m, pk->n) >= 0) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    if ((ret = ct_check(pk, rn, ctx)) != DUO_OK) {
        ret = ret == DUO_E_BAD_CIPHERTEXT ? DUO_E_INVALID_ARG : ret;
        goto out;
    }
    ret = DUO_E_INTERNAL;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx);
    if (t == NULL) goto end;
    bn_secret(t);
    /* t = 1 + m*N < N^2; c = t * rn mod N^2 via two Montgomery products */
    if (!BN_mul(t, m, pk->n, ctx) || !BN_add_word(t, 1)) goto end;
    if (!BN_to_montgomery(t, t, pk->mont_n2, ctx) || !BN_mod_mul_montgomery(c, t, rn, pk->mont_n2, ctx)) goto end;
    ret = DUO_OK;
end:
    if (t != NULL) BN_clear(t);
    BN_CTX_end(ctx);
out:
    BN_CTX_free(ctx);
    return ret;
}

/* c = (1 + m*N) * rn mod N^2 for a SECRET m given as m_len fixed-width
 * big-endian bytes; the time does not depend on m's value.
 *
 * 1 + m*N < N^2 needs no reduction, so it is computed in fixed width here
 * (duo_be_muladd), not with BN_mul/BN_add_word (whose results are
 * top-corrected, a branch on the secret's top limb). To load it into a
 * BIGNUM without BN_bin2bn looking at secret bytes, a public multiple of N
 * with a public top limb is added: with L = 64 * (limbs of N^2 - 1),
 * d = ceil(2^L / N) and X = d*N = 2^L + e (0 <= e < N), the value loaded is
 *   t = 1 + e + m*N + 2^L = 1 + (m + d)*N,  where 1 + e + m*N < 2^L
 * (m < 2^(8*m_len) <= 2^(bits-128)), so the top 64-bit limb of t is the public
 * constant 1 and the low limbs never carry into it. t < N^2 since
 * N^2 >= 2^(2*bits-2) > 2^L + N. t encrypts m + d; the public factor
 * G = 1 + (N - d)*N (an encryption of -d with randomness 1) removes d:
 *   c = t * rn * G mod N^2 = Mont(Mont(t, rn), G*R^2).
 * Both Montgomery products run on fixed-size operands (t and rn have the
 * modulus' limb count); what OpenSSL still does on the secret intermediate
 * is its final bn_correct_top (a test of the top limb for zero: probability
 * 2^-62 for a value uniform mod N^2), listed in docs/SECURITY.md 3.1.
 * rn is not checked here (it is secret: see duo_paillier_rn); the caller
 * checks the public ciphertext it derives from c. */
int duo_paillier_encrypt_fixed(const duo_paillier_pub *pk, BIGNUM *c, const uint8_t *m, size_t m_len,
                               const BIGNUM *rn) {
    int ret = DUO_E_INVALID_ARG;
    BN_CTX *ctx = NULL;
    size_t nb, n2b;
    uint8_t *tbuf = NULL, *ebuf = NULL, *nbe = NULL;
    const uint8_t *e1;
    const BIGNUM *g;
    if (pk == NULL || c == NULL || m == NULL || rn == NULL) return DUO_E_INVALID_ARG;
    nb = pk->bits / 8;
    n2b = 2 * nb;
    if (m_len == 0 || m_len > nb - 16) return DUO_E_INVALID_ARG;
    /* rn is not range-checked: BN_cmp would branch on its secret top limb.
     * It comes from duo_paillier_rn (< N^2); an rn with more limbs than N^2
     * makes BN_mod_mul_montgomery fail. */
    ret = DUO_E_NOMEM;
    if ((ctx = BN_CTX_secure_new()) == NULL || (tbuf = duo_secure_malloc(n2b)) == NULL ||
        (nbe = OPENSSL_malloc(nb)) == NULL)
        goto out;
    BN_CTX_start(ctx);
    BIGNUM *gt = BN_CTX_get(ctx), *t = BN_CTX_get(ctx), *u = BN_CTX_get(ctx);
    if (u == NULL) goto end;
    ret = DUO_E_INTERNAL;
    if (pk->enc_e1 != NULL && pk->enc_g != NULL) {
        e1 = pk->enc_e1;
        g = pk->enc_g;
    } else {
        if ((ebuf = OPENSSL_zalloc(n2b)) == NULL) {
            ret = DUO_E_NOMEM;
            goto end;
        }
        if (!enc_consts(pk, ebuf, gt, ctx)) goto end;
        e1 = ebuf;
        g = gt;
    }
    if (BN_bn2binpad(pk->n, nbe, (int)nb) != (int)nb) goto end;
    /* secret, fixed width: tbuf = e + 1 + m*N, then the public top limb */
    if (duo_be_muladd(tbuf, n2b, m, m_len, nbe, nb, e1, n2b) != DUO_OK) goto end;
    memset(tbuf, 0, 8);
    tbuf[7] = 0x01; /* + 2^L: no carry reaches this limb (see above) */
    if (BN_bin2bn(tbuf, (int)n2b, t) == NULL) goto end;
    bn_secret(t);
    bn_secret(u);
    bn_secret(c);
    if (!BN_mod_mul_montgomery(u, t, rn, pk->mont_n2, ctx) || !BN_mod_mul_montgomery(c, u, g, pk->mont_n2, ctx))
        goto end;
    ret = DUO_OK;
end:
    if (t != NULL) BN_clear(t);
    if (u != NULL) BN_clear(u);
    BN_CTX_end(ctx);
out:
    if (tbuf != NULL) duo_memzero(tbuf, n2b);
    duo_secure_free(tbuf);
    OPENSSL_free(ebuf);
    OPENSSL_free(nbe);
    BN_CTX_free(ctx);
    return ret;
}

/* duo_paillier_encrypt_fixed's public constants (see there): e1 = e + 1 =
 * d*N - 2^L + 1 as 2*bits/8 big-endian bytes, and g = G*R^2 mod N^2 with
 * G = 1 + (N - d)*N, d = ceil(2^L / N), L = 64 * (limbs of N^2 - 1). */
static int enc_consts(const duo_paillier_pub *pk, uint8_t *e1, BIGNUM *g, BN_CTX *ctx) {
    int ok = 0;
    size_t n2b = 2 * (pk->bits / 8), lbits = 8 * n2b - 64;
    BN_CTX_start(ctx);
    BIGNUM *d = BN_CTX_get(ctx), *u = BN_CTX_get(ctx);
    if (u == NULL) goto out;
    BN_zero(g);
    if (!BN_set_bit(g, (int)lbits) || !BN_sub_word(g, 1) || !BN_div(d, NULL, g, pk->n, ctx) || !BN_add_word(d, 1) ||
        !BN_mul(u, d, pk->n, ctx) || !BN_clear_bit(u, (int)lbits) || BN_num_bits(u) > (int)lbits ||
        !BN_add_word(u, 1) || BN_bn2binpad(u, e1, (int)n2b) != (int)n2b)
        goto out;
    if (!BN_sub(g, pk->n, d) || !BN_mul(g, g, pk->n, ctx) || !BN_add_word(g, 1) ||
        !BN_to_montgomery(g, g, pk->mont_n2, ctx) || !BN_to_montgomery(g, g, pk->mont_n2, ctx))
        goto out;
    ok = 1;
out:
    BN_CTX_end(ctx);
    return ok;
}

/* c = a * b mod N^2 for secret a, b < N^2 (e.g. two ciphertext factors whose
 * product only is published): two Montgomery products (a*b*R^-1, then times
 * R^2), no BN_div on the secret double-length product. */
int duo_paillier_add_secret(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *a, const BIGNUM *b) {
    BN_CTX *ctx;
    int ok = 0;
    if (pk == NULL || c == NULL || a == NULL || b == NULL) return DUO_E_INVALID_ARG;
    /* no range check (BN_cmp branches on the secret top limb): a and b come
     * out of Montgomery code mod N^2; more limbs than N^2 make it fail. */
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    BN_CTX_start(ctx);
    BIGNUM *t = BN_CTX_get(ctx);
    if (t != NULL) {
        bn_secret(t);
        ok = BN_mod_mul_montgomery(t, a, b, pk->mont_n2, ctx) && BN_to_montgomery(c, t, pk->mont_n2, ctx);
        BN_clear(t);
    }
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

/* m_p = L_p(c^(p-1) mod p^2) * h_p mod p. */
static int dec_half(BIGNUM *mp, const BIGNUM *c, const BIGNUM *p, const BIGNUM *pm1, const BIGNUM *p2,
                    const BIGNUM *h_m, BN_MONT_CTX *mont_p2, BN_MONT_CTX *mont_p, BN_CTX *ctx) {
    int ok = 0;
    BN_CTX_start(ctx);
    BIGNUM *cp = BN_CTX_get(ctx), *x = BN_CTX_get(ctx);
    if (x == NULL) goto out;
    bn_secret(cp);
    bn_secret(x);
    if (!BN_mod(cp, c, p2, ctx)) goto out;
    if (!BN_mod_exp_mont_consttime(x, cp, pm1, p2, ctx, mont_p2)) goto out;
    /* x = 1 mod p, so x >= 1 and (x - 1) / p is exact and < p */
    if (!BN_sub_word(x, 1) || !BN_div(x, NULL, x, p, ctx)) goto out;
    if (!BN_mod_mul_montgomery(mp, x, h_m, mont_p, ctx)) goto out;
    ok = 1;
out:
    if (cp != NULL) BN_clear(cp);
    if (x != NULL) BN_clear(x);
    BN_CTX_end(ctx);
    return ok;
}

int duo_paillier_decrypt(const duo_paillier_priv *sk, BIGNUM *m, const BIGNUM *c) {
    int ret;
    BN_CTX *ctx;
    if (sk == NULL || m == NULL || c == NULL) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    if (!in_range(&sk->pub, c)) {
        BN_CTX_free(ctx);
        return DUO_E_BAD_CIPHERTEXT;
    }
    ret = DUO_E_INTERNAL;
    BN_CTX_start(ctx);
    BIGNUM *mp = BN_CTX_get(ctx), *mq = BN_CTX_get(ctx);
    if (mq == NULL) goto out;
    bn_secret(mp);
    bn_secret(mq);
    bn_secret(m);
    /* gcd(c, N) = 1 iff p and q do not divide c: two cheap reductions instead
     * of a gcd. c is public and a rejection is visible anyway. */
    if (!BN_mod(mp, c, sk->p, ctx) || !BN_mod(mq, c, sk->q, ctx)) goto out;
    if (BN_is_zero(mp) || BN_is_zero(mq)) {
        ret = DUO_E_BAD_CIPHERTEXT;
        goto out;
    }
    /* see duo_paillier_priv_decryptions for the cast */
    atomic_fetch_add(&((duo_paillier_priv *)sk)->decryptions, 1ul);
    if (!dec_half(mp, c, sk->p, sk->pm1, sk->p2, sk->hp_m, sk->mont_p2, sk->mont_p, ctx) ||
        !dec_half(mq, c, sk->q, sk->qm1, sk->q2, sk->hq_m, sk->mont_q2, sk->mont_q, ctx))
        goto out;
    if (!crt_combine(m, mp, mq, sk->p, sk->q, sk->qinv_p_m, sk->mont_p, ctx)) goto out;
    ret = DUO_OK;
out:
    if (mp != NULL) BN_clear(mp);
    if (mq != NULL) BN_clear(mq);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    if (ret != DUO_OK) BN_zero(m);
    return ret;
}

/* -------------------------------------------------------------- homomorphic */

int duo_paillier_add(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *a, const BIGNUM *b) {
    BN_CTX *ctx;
    int ok;
    if (pk == NULL || c == NULL || a == NULL || b == NULL) return DUO_E_INVALID_ARG;
    if (!in_range(pk, a) || !in_range(pk, b)) return DUO_E_BAD_CIPHERTEXT;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    ok = BN_mod_mul(c, a, b, pk->n2, ctx);
    BN_CTX_free(ctx);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

int duo_paillier_mul(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *a, const BIGNUM *k) {
    BN_CTX *ctx;
    int ok;
    if (pk == NULL || c == NULL || a == NULL || k == NULL) return DUO_E_INVALID_ARG;
    if (!in_range(pk, a)) return DUO_E_BAD_CIPHERTEXT;
    if (BN_is_negative(k) || BN_cmp(k, pk->n) >= 0) return DUO_E_INVALID_ARG;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    ok = BN_mod_exp_mont_consttime(c, a, k, pk->n2, ctx, pk->mont_n2);
    BN_CTX_free(ctx);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}
