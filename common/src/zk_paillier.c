/* Non-interactive zero-knowledge proofs about a Paillier key and ckey
 * (zk_paillier.h; DESIGN.md 3.2; research report 1.1, 2.4, 2.7, checks 8-16).
 *
 * All three proofs are Fiat-Shamir over duo_transcript. Every transcript
 * starts with a per-proof domain tag and then binds
 *     binding (sid, role) || u64 "bits" || bn "N"
 * (the range proof adds bn "q" and bn "ckey"). Group elements mod N are
 * derived by duo__zk_derive_unit: a fork of the transcript gets u64 "index"
 * and u64 "attempt", and bits/8 + 16 challenge bytes reduced mod N (bias
 * <= 2^-128) are taken if they are a unit, else the next attempt is tried.
 *
 * Verifiers: the length is checked first (DUO_E_BAD_FIELD), then the modulus
 * checks are run again on N (duo_paillier_pub_parse already ran them; we
 * repeat them because the proofs' soundness rests on them and they cost a few
 * milliseconds; DUO_E_BAD_MODULUS), then every received integer is
 * range-checked before any arithmetic on it. Any other failure is
 * DUO_E_BAD_PROOF. Verifiers only see public data and use variable-time
 * arithmetic.
 *
 * Provers: exponentiations with secret exponents or moduli go through
 * BN_mod_exp_mont_consttime on BN_FLG_CONSTTIME values; the values they
 * output are public. The range prover's secret selection is branch-free. */
#include "duosign/zk_paillier.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "duosign/mem.h"
#include "paillier_internal.h"
#include "zk_paillier_internal.h"

#define LN_DOMAIN "duosign/v1/zk/ln"
#define MOD_DOMAIN "duosign/v2/zk/mod" /* v2: no z_i (issue 22) */
#define RANGE_DOMAIN "duosign/v1/zk/range"

/* A unit from the hash fails only if the hash output shares a factor with N. */
#define DERIVE_ATTEMPTS 64u
/* Bytes for w1, w2, z in the range proof: all are < 2l < q < 2^256. */
#define RANGE_SB 32u
/* Largest supported modulus, in bytes (3072 bits). */
#define NB_MAX 384u

/* ------------------------------------------------------------ helpers */

static size_t nbytes_of(unsigned bits) { return duo_paillier_bits_supported(bits) ? (size_t)bits / 8u : 0u; }

static void bn_secret(BIGNUM *b) { BN_set_flags(b, BN_FLG_CONSTTIME); }

/* Starts a proof transcript: domain, binding, bits, N. */
static int zk_start(duo_transcript *t, const char *domain, const duo_binding *bind, const BIGNUM *n, unsigned bits) {
    int r = duo_transcript_init(t, domain);
    if (r != DUO_OK) return r;
    duo_transcript_binding(t, bind);
    duo_transcript_u64(t, "bits", bits);
    duo_transcript_bn(t, "N", n);
    return DUO_OK;
}

/* out = the index-th unit mod n derived from transcript t (see top). */
static int derive_unit(BIGNUM *out, const duo_transcript *t, const char *label, uint64_t index, const BIGNUM *n,
                       size_t nb, BN_CTX *ctx) {
    uint8_t buf[NB_MAX + 16];
    uint32_t attempt;
    int r = DUO_E_NOMEM, unit = 0;

    if (nb > NB_MAX) return DUO_E_INTERNAL;
    BN_CTX_start(ctx);
    for (attempt = 0; attempt < DERIVE_ATTEMPTS; attempt++) {
        duo_transcript f;
        if ((r = duo_transcript_copy(&f, t)) != DUO_OK) goto out;
        duo_transcript_u64(&f, "index", index);
        duo_transcript_u64(&f, "attempt", attempt);
        r = duo_transcript_challenge(&f, label, buf, nb + 16u);
        duo_transcript_free(&f);
        if (r != DUO_OK) goto out;
        r = DUO_E_INTERNAL;
        if (BN_bin2bn(buf, (int)(nb + 16u), out) == NULL || !BN_nnmod(out, out, n, ctx)) goto out;
        /* Public values: the variable-time gcd (issue 22: OpenSSL's
         * constant-time BN_gcd here cost the device ~0.5 ms per unit). */
        if ((r = duo__coprime_var(&unit, out, n, ctx)) != DUO_OK) goto out;
        if (unit) goto out;
    }
    /* 64 hash outputs all sharing a factor with N: N is not a valid modulus. */
    r = DUO_E_BAD_MODULUS;
out:
    BN_CTX_end(ctx);
    return r;
}

/* Reads a big-endian integer and checks lo <= v < hi (lo may be NULL for 0). */
static int read_range(BIGNUM *v, const uint8_t *in, size_t len, const BIGNUM *lo, const BIGNUM *hi) {
    if (BN_bin2bn(in, (int)len, v) == NULL) return DUO_E_NOMEM;
    if (lo != NULL && BN_cmp(v, lo) < 0) return DUO_E_BAD_PROOF;
    if (hi != NULL && BN_cmp(v, hi) >= 0) return DUO_E_BAD_PROOF;
    return DUO_OK;
}

static int write_fixed(uint8_t *out, size_t len, const BIGNUM *v) {
    return BN_bn2binpad(v, out, (int)len) == (int)len ? DUO_OK : DUO_E_INTERNAL;
}

int duo__jacobi_var(int *out, const BIGNUM *a, const BIGNUM *n, BN_CTX *ctx) {
    /* Binary Jacobi algorithm (Cohen, "A Course in Computational Algebraic
     * Number Theory", Alg. 1.4.10). Public inputs; variable time. */
    int r = DUO_E_INTERNAL, t = 1, k;
    BIGNUM *x, *y;

    if (out == NULL || a == NULL || n == NULL || ctx == NULL) return DUO_E_INVALID_ARG;
    if (BN_is_negative(n) || !BN_is_odd(n) || BN_is_negative(a)) return DUO_E_INVALID_ARG;
    BN_CTX_start(ctx);
    x = BN_CTX_get(ctx);
    y = BN_CTX_get(ctx);
    if (y == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (!BN_nnmod(x, a, n, ctx) || BN_copy(y, n) == NULL) goto out;
    while (!BN_is_zero(x)) {
        /* Strip factors of two: (2/y) = -1 iff y = 3, 5 mod 8. */
        k = 0;
        while (!BN_is_bit_set(x, k)) k++;
        if (k > 0) {
            if (!BN_rshift(x, x, k)) goto out;
            if ((k & 1) != 0) {
                int y8 = BN_is_bit_set(y, 0) | (BN_is_bit_set(y, 1) << 1) | (BN_is_bit_set(y, 2) << 2);
                if (y8 == 3 || y8 == 5) t = -t;
            }
        }
        /* Quadratic reciprocity: flip iff x = y = 3 mod 4. */
        if (BN_is_bit_set(x, 1) && BN_is_bit_set(y, 1)) t = -t;
        BN_swap(x, y);
        if (!BN_nnmod(x, x, y, ctx)) goto out;
    }
    *out = BN_is_one(y) ? t : 0;
    r = DUO_OK;
out:
    BN_CTX_end(ctx);
    return r;
}

/* ---------------------------------------------------- CRT with the factors */

/* The prover's view of N = p*q: constant-time copies of the primes,
 * q^-1 mod p and Montgomery contexts. */
typedef struct crt_key {
    BIGNUM *n, *p, *q, *pm1, *qm1, *qinv;
    BN_MONT_CTX *mp, *mq;
} crt_key;

static void crt_free(crt_key *k) {
    BN_free(k->n);
    BN_clear_free(k->p);
    BN_clear_free(k->q);
    BN_clear_free(k->pm1);
    BN_clear_free(k->qm1);
    BN_clear_free(k->qinv);
    BN_MONT_CTX_free(k->mp);
    BN_MONT_CTX_free(k->mq);
    memset(k, 0, sizeof *k);
}

static int crt_init(crt_key *k, const BIGNUM *p, const BIGNUM *q, BN_CTX *ctx) {
    memset(k, 0, sizeof *k);
    if ((k->n = BN_new()) == NULL || (k->p = BN_dup(p)) == NULL || (k->q = BN_dup(q)) == NULL ||
        (k->pm1 = BN_dup(p)) == NULL || (k->qm1 = BN_dup(q)) == NULL || (k->qinv = BN_new()) == NULL ||
        (k->mp = BN_MONT_CTX_new()) == NULL || (k->mq = BN_MONT_CTX_new()) == NULL)
        return DUO_E_NOMEM;
    bn_secret(k->p);
    bn_secret(k->q);
    bn_secret(k->pm1);
    bn_secret(k->qm1);
    bn_secret(k->qinv);
    if (!BN_mul(k->n, p, q, ctx) || !BN_sub_word(k->pm1, 1) || !BN_sub_word(k->qm1, 1) ||
        !BN_MONT_CTX_set(k->mp, k->p, ctx) || !BN_MONT_CTX_set(k->mq, k->q, ctx))
        return DUO_E_INTERNAL;
    /* BN_mod_inverse takes its constant-time path because q is flagged. */
    if (BN_mod_inverse(k->qinv, k->q, k->p, ctx) == NULL) return DUO_E_INVALID_ARG;
    return DUO_OK;
}

/* out = base^e mod N where e = ep mod (p-1) = eq mod (q-1); constant-time
 * exponentiations mod p and q, Garner recombination with flagged moduli.
 * base and out are public; ep, eq and the primes are secret. */
static int crt_exp(BIGNUM *out, const BIGNUM *base, const BIGNUM *ep, const BIGNUM *eq, const crt_key *k, BN_CTX *ctx) {
    int r = DUO_E_NOMEM;
    BIGNUM *bp, *bq, *xp, *xq;
    BN_CTX_start(ctx);
    bp = BN_CTX_get(ctx);
    bq = BN_CTX_get(ctx);
    xp = BN_CTX_get(ctx);
    xq = BN_CTX_get(ctx);
    if (xq == NULL) goto out;
    bn_secret(bp);
    bn_secret(bq);
    bn_secret(xp);
    bn_secret(xq);
    r = DUO_E_INTERNAL;
    if (!BN_nnmod(bp, base, k->p, ctx) || !BN_nnmod(bq, base, k->q, ctx) ||
        !BN_mod_exp_mont_consttime(xp, bp, ep, k->p, ctx, k->mp) ||
        !BN_mod_exp_mont_consttime(xq, bq, eq, k->q, ctx, k->mq))
        goto out;
    /* out = xq + q * ((xp - xq) * qinv mod p) */
    if (!BN_mod_sub(xp, xp, xq, k->p, ctx) || !BN_mod_mul(xp, xp, k->qinv, k->p, ctx) || !BN_mul(xp, xp, k->q, ctx) ||
        !BN_add(out, xp, xq))
        goto out;
    r = DUO_OK;
out:
    if (xq != NULL) {
        BN_clear(bp);
        BN_clear(bq);
        BN_clear(xp);
        BN_clear(xq);
    }
    BN_CTX_end(ctx);
    return r;
}

/* Legendre symbol of a unit a mod prime p by Euler's criterion, constant time
 * in p. Returns DUO_OK and *sym in {1, -1}. */
static int legendre_ct(int *sym, const BIGNUM *a, const BIGNUM *p, const BIGNUM *half, BN_MONT_CTX *mp, BN_CTX *ctx) {
    int r = DUO_E_NOMEM;
    BIGNUM *t;
    BN_CTX_start(ctx);
    if ((t = BN_CTX_get(ctx)) == NULL) goto out;
    bn_secret(t);
    r = DUO_E_INTERNAL;
    if (!BN_nnmod(t, a, p, ctx) || !BN_mod_exp_mont_consttime(t, t, half, p, ctx, mp)) goto out;
    /* The symbol itself becomes public through the proof's (a_i, b_i). */
    *sym = BN_is_one(t) ? 1 : -1;
    r = DUO_OK;
out:
    BN_CTX_end(ctx);
    return r;
}

/* ------------------------------------------------------------------- L_N */
/* Layout: sigma_1 .. sigma_10, each bits/8 bytes big-endian.
 * rho_i = derive_unit(T, "rho", i), T = LN_DOMAIN || binding || bits || N.
 * Check: sigma_i in [1, N), gcd(sigma_i, N) = 1, sigma_i^N = rho_i mod N.
 * Soundness (GRSB 2018/057 with e = N): if a prime r divides both N and
 * phi(N), x -> x^N on Z*_N is not onto and each rho_i is an N-th power with
 * probability <= 1/r; N has no prime factor below 2^16 (modulus check), so
 * 10 repetitions give <= 2^-160 (plus 2^-128 hash bias). */

size_t duo_zk_ln_bytes(unsigned bits) { return (size_t)DUO_ZK_LN_REPS * nbytes_of(bits); }

/* Either k (honest, CRT) or d (test-only, sigma = rho^d mod n) is set. */
static int ln_prove_impl(const BIGNUM *n, unsigned bits, const crt_key *k, const BIGNUM *dp, const BIGNUM *dq,
                         const BIGNUM *d, const duo_binding *bind, uint8_t *out, size_t out_len) {
    int r = DUO_E_NOMEM;
    unsigned i;
    size_t nb = nbytes_of(bits);
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx = NULL;
    BIGNUM *rho, *sigma;

    if (nb == 0) return DUO_E_UNSUPPORTED;
    if (out == NULL || bind == NULL) return DUO_E_INVALID_ARG;
    if (out_len != duo_zk_ln_bytes(bits)) return DUO_E_BUFFER_TOO_SMALL;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    BN_CTX_start(ctx);
    rho = BN_CTX_get(ctx);
    sigma = BN_CTX_get(ctx);
    if (sigma == NULL) goto out;
    if ((r = zk_start(&t, LN_DOMAIN, bind, n, bits)) != DUO_OK) goto out;
    for (i = 0; i < DUO_ZK_LN_REPS; i++) {
        if ((r = derive_unit(rho, &t, "rho", i, n, nb, ctx)) != DUO_OK) goto out;
        if (k != NULL) {
            r = crt_exp(sigma, rho, dp, dq, k, ctx);
        } else {
            r = BN_mod_exp(sigma, rho, d, n, ctx) ? DUO_OK : DUO_E_INTERNAL;
        }
        if (r != DUO_OK || (r = write_fixed(out + (size_t)i * nb, nb, sigma)) != DUO_OK) goto out;
    }
    r = DUO_OK;
out:
    duo_transcript_free(&t);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    if (r != DUO_OK) duo_memzero(out, out_len);
    return r;
}

int duo_zk_ln_prove(const duo_paillier_priv *sk, const duo_binding *bind, uint8_t *out, size_t out_len) {
    int r;
    crt_key k;
    BN_CTX *ctx;
    BIGNUM *dp = NULL, *dq = NULL;
    const duo_paillier_pub *pk;

    if (sk == NULL || bind == NULL || out == NULL) return DUO_E_INVALID_ARG;
    pk = duo_paillier_priv_pub(sk);
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    if ((r = crt_init(&k, duo_paillier_priv_p(sk), duo_paillier_priv_q(sk), ctx)) != DUO_OK) goto out;
    r = DUO_E_NOMEM;
    if ((dp = BN_new()) == NULL || (dq = BN_new()) == NULL) goto out;
    bn_secret(dp);
    bn_secret(dq);
    /* M = N^-1 mod phi(N) reduced mod p-1 and q-1: N^-1 mod (p-1), mod (q-1). */
    r = DUO_E_INVALID_ARG;
    if (BN_mod_inverse(dp, duo_paillier_pub_n(pk), k.pm1, ctx) == NULL ||
        BN_mod_inverse(dq, duo_paillier_pub_n(pk), k.qm1, ctx) == NULL)
        goto out;
    r = ln_prove_impl(duo_paillier_pub_n(pk), duo_paillier_pub_bits(pk), &k, dp, dq, NULL, bind, out, out_len);
out:
    BN_clear_free(dp);
    BN_clear_free(dq);
    crt_free(&k);
    BN_CTX_free(ctx);
    return r;
}

int duo__zk_ln_prove_exp(const BIGNUM *n, unsigned bits, const BIGNUM *d, const duo_binding *bind, uint8_t *out,
                         size_t out_len) {
    if (n == NULL || d == NULL) return DUO_E_INVALID_ARG;
    return ln_prove_impl(n, bits, NULL, NULL, NULL, d, bind, out, out_len);
}

int duo_zk_ln_verify(const duo_paillier_pub *pk, const duo_binding *bind, const uint8_t *in, size_t in_len) {
    int r, unit = 0;
    unsigned i, bits;
    size_t nb;
    const BIGNUM *n;
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx = NULL;
    BIGNUM *rho, *sigma, *v;

    if (pk == NULL || bind == NULL || in == NULL) return DUO_E_INVALID_ARG;
    bits = duo_paillier_pub_bits(pk);
    n = duo_paillier_pub_n(pk);
    if ((nb = nbytes_of(bits)) == 0) return DUO_E_UNSUPPORTED;
    if (in_len != duo_zk_ln_bytes(bits)) return DUO_E_BAD_FIELD;
    if ((r = duo_paillier_pub_modulus_check(pk)) != DUO_OK) return r;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    r = DUO_E_NOMEM;
    BN_CTX_start(ctx);
    rho = BN_CTX_get(ctx);
    sigma = BN_CTX_get(ctx);
    v = BN_CTX_get(ctx);
    if (v == NULL) goto out;
    if ((r = zk_start(&t, LN_DOMAIN, bind, n, bits)) != DUO_OK) goto out;
    for (i = 0; i < DUO_ZK_LN_REPS; i++) {
        if ((r = read_range(sigma, in + (size_t)i * nb, nb, BN_value_one(), n)) != DUO_OK) goto out;
        if ((r = duo__coprime_var(&unit, sigma, n, ctx)) != DUO_OK) goto out;
        if (!unit) {
            r = DUO_E_BAD_PROOF;
            goto out;
        }
        if ((r = derive_unit(rho, &t, "rho", i, n, nb, ctx)) != DUO_OK) goto out;
        r = DUO_E_INTERNAL;
        if (!BN_mod_exp(v, sigma, n, n, ctx)) goto out;
        if (BN_cmp(v, rho) != 0) {
            r = DUO_E_BAD_PROOF;
            goto out;
        }
    }
    r = DUO_OK;
out:
    duo_transcript_free(&t);
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    return r;
}

/* ---------------------------------------------------------------- Pi-mod */
/* CGGMP21 (ePrint 2021/060) Fig. 16, Paillier-Blum modulus.
 * Layout: w (bits/8) || 80 x [ ab (1) || x_i (bits/8) ],
 * ab = a_i | b_i << 1 (other bits must be zero).
 * T = MOD_DOMAIN || binding || bits || N || bn "w"; y_i = derive_unit(T, "y", i),
 * so the y_i are fixed only after w.
 * Verifier: N passes the modulus checks (odd, not prime, ...), w in [1, N)
 * with Jacobi(w, N) = -1, x_i in [1, N), x_i^4 = (-1)^a_i w^b_i y_i mod N.
 *
 * Why no z_i (issue 22). CGGMP21's Pi-mod also sends z_i = y_i^(N^-1 mod
 * phi(N)) and checks z_i^N = y_i: 80 exponentiations by N on the device
 * (~190 ms at 2048 bits), whose only job is to show that gcd(N, phi(N)) = 1
 * (every y_i an N-th power). That is exactly the statement of L_N, which the
 * device verifies first for the same N, with the same kind of check on
 * DUO_ZK_LN_REPS hash-derived elements and a soundness error of 2^-160 (no
 * prime factor of N below 2^16), smaller than the 2^-80 of the proof the z_i
 * were part of. Given gcd(N, phi(N)) = 1 (so N is square-free), the fourth-root
 * answers alone give CGGMP21's argument for the remaining structure: N has
 * exactly two prime factors, both 3 mod 4 (each y_i answerable with
 * probability <= 1/2 otherwise), soundness 2^-80 per hash query, as before.
 * So this verifier's statement is conditional on L_N: on its own it accepts,
 * e.g., N = p^2 q with Blum p, q (tests/unit/test_zk_paillier.c,
 * test_mod_needs_ln, where L_N rejects the same N). */

size_t duo_zk_mod_bytes(unsigned bits) {
    size_t nb = nbytes_of(bits);
    return nb == 0 ? 0 : nb + (size_t)DUO_ZK_MOD_REPS * (1u + nb);
}

int duo__zk_mod_prove_pq(const BIGNUM *p, const BIGNUM *q, unsigned bits, const duo_binding *bind, const duo_rng *rng,
                         uint8_t *out, size_t out_len) {
    int r = DUO_E_NOMEM, jac = 0, wp = 0, wq = 0;
    unsigned i, attempt;
    size_t nb = nbytes_of(bits), off;
    crt_key k;
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx = NULL;
    BIGNUM *ep_root, *eq_root, *ep_inv, *eq_inv, *p_half, *q_half, *w, *y, *yp, *x, *g;

    memset(&k, 0, sizeof k);
    if (p == NULL || q == NULL || bind == NULL || out == NULL) return DUO_E_INVALID_ARG;
    if (nb == 0) return DUO_E_UNSUPPORTED;
    if (out_len != duo_zk_mod_bytes(bits)) return DUO_E_BUFFER_TOO_SMALL;
    if ((ctx = BN_CTX_secure_new()) == NULL) return DUO_E_NOMEM;
    BN_CTX_start(ctx);
    ep_root = BN_CTX_get(ctx);
    eq_root = BN_CTX_get(ctx);
    ep_inv = BN_CTX_get(ctx);
    eq_inv = BN_CTX_get(ctx);
    p_half = BN_CTX_get(ctx);
    q_half = BN_CTX_get(ctx);
    w = BN_CTX_get(ctx);
    y = BN_CTX_get(ctx);
    yp = BN_CTX_get(ctx);
    x = BN_CTX_get(ctx);
    g = BN_CTX_get(ctx);
    if (g == NULL) goto out;
    bn_secret(ep_root);
    bn_secret(eq_root);
    bn_secret(ep_inv);
    bn_secret(eq_inv);
    bn_secret(p_half);
    bn_secret(q_half);
    if ((r = crt_init(&k, p, q, ctx)) != DUO_OK) goto out;
    if ((unsigned)BN_num_bits(k.n) != bits) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    r = DUO_E_INTERNAL;
    /* Fourth-root exponent ((p+1)/4)^2 mod (p-1): for a QR y, y^((p+1)/4) is
     * the square root that is itself a QR (QR_p has odd order (p-1)/2), so
     * applying it twice gives a fourth root. */
    if (BN_copy(ep_root, k.p) == NULL || !BN_add_word(ep_root, 1) || !BN_rshift(ep_root, ep_root, 2) ||
        !BN_mod_sqr(ep_root, ep_root, k.pm1, ctx))
        goto out;
    if (BN_copy(eq_root, k.q) == NULL || !BN_add_word(eq_root, 1) || !BN_rshift(eq_root, eq_root, 2) ||
        !BN_mod_sqr(eq_root, eq_root, k.qm1, ctx))
        goto out;
    if (!BN_rshift1(p_half, k.pm1) || !BN_rshift1(q_half, k.qm1)) goto out;
    /* The honest prover still refuses a key with gcd(N, phi(N)) != 1 (L_N
     * would fail for it anyway). */
    r = DUO_E_INVALID_ARG;
    if (BN_mod_inverse(ep_inv, k.n, k.pm1, ctx) == NULL || BN_mod_inverse(eq_inv, k.n, k.qm1, ctx) == NULL) goto out;

    /* w: a random unit with Jacobi(w, N) = -1 (half of all units). */
    for (attempt = 0;; attempt++) {
        if (attempt == 256) {
            r = DUO_E_RNG;
            goto out;
        }
        if ((r = duo_bn_random_below(w, k.n, rng)) != DUO_OK) goto out;
        if (BN_is_zero(w)) continue;
        r = DUO_E_INTERNAL;
        if (!BN_gcd(g, w, k.n, ctx)) goto out;
        if (!BN_is_one(g)) continue;
        if ((r = duo__jacobi_var(&jac, w, k.n, ctx)) != DUO_OK) goto out;
        if (jac == -1) break;
    }
    if ((r = legendre_ct(&wp, w, k.p, p_half, k.mp, ctx)) != DUO_OK ||
        (r = legendre_ct(&wq, w, k.q, q_half, k.mq, ctx)) != DUO_OK)
        goto out;
    if ((r = write_fixed(out, nb, w)) != DUO_OK) goto out;
    if ((r = zk_start(&t, MOD_DOMAIN, bind, k.n, bits)) != DUO_OK) goto out;
    duo_transcript_bn(&t, "w", w);

    for (i = 0, off = nb; i < DUO_ZK_MOD_REPS; i++, off += 1u + nb) {
        int sp = 0, sq = 0, a, b;
        if ((r = derive_unit(y, &t, "y", i, k.n, nb, ctx)) != DUO_OK) goto out;
        if ((r = legendre_ct(&sp, y, k.p, p_half, k.mp, ctx)) != DUO_OK ||
            (r = legendre_ct(&sq, y, k.q, q_half, k.mq, ctx)) != DUO_OK)
            goto out;
        /* (-1/p) = (-1/q) = -1 for Blum primes and exactly one of (w/p),
         * (w/q) is -1, so the four classes are covered: y' is a QR mod p and
         * mod q iff (-1)^b = (y/p)(y/q) and (-1)^a = (w/p)^b (y/p). */
        b = (sp * sq == -1);
        a = ((b ? wp : 1) * sp == -1);
        r = DUO_E_INTERNAL;
        if (BN_copy(yp, y) == NULL) goto out;
        if (b && !BN_mod_mul(yp, yp, w, k.n, ctx)) goto out;
        if (a && !BN_sub(yp, k.n, yp)) goto out;
        if ((r = crt_exp(x, yp, ep_root, eq_root, &k, ctx)) != DUO_OK) goto out;
        out[off] = (uint8_t)(a | (b << 1));
        if ((r = write_fixed(out + off + 1u, nb, x)) != DUO_OK) goto out;
    }
    r = DUO_OK;
out:
    duo_transcript_free(&t);
    crt_free(&k);
    if (g != NULL) {
        BN_clear(ep_root);
        BN_clear(eq_root);
        BN_clear(ep_inv);
        BN_clear(eq_inv);
        BN_clear(p_half);
        BN_clear(q_half);
    }
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    if (r != DUO_OK && out != NULL) duo_memzero(out, out_len);
    return r;
}

int duo_zk_mod_prove(const duo_paillier_priv *sk, const duo_binding *bind, const duo_rng *rng, uint8_t *out,
                     size_t out_len) {
    const BIGNUM *p, *q;
    if (sk == NULL || bind == NULL || out == NULL) return DUO_E_INVALID_ARG;
    p = duo_paillier_priv_p(sk);
    q = duo_paillier_priv_q(sk);
    /* The key constructor already insists on Blum primes; refuse anyway. */
    if (!BN_is_bit_set(p, 0) || !BN_is_bit_set(p, 1) || !BN_is_bit_set(q, 0) || !BN_is_bit_set(q, 1))
        return DUO_E_INVALID_ARG;
    return duo__zk_mod_prove_pq(p, q, duo_paillier_pub_bits(duo_paillier_priv_pub(sk)), bind, rng, out, out_len);
}

int duo__zk_mod_challenge(BIGNUM *y, const BIGNUM *n, unsigned bits, const duo_binding *bind, const BIGNUM *w,
                          unsigned i) {
    int r;
    size_t nb = nbytes_of(bits);
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx;
    if (y == NULL || n == NULL || bind == NULL || w == NULL) return DUO_E_INVALID_ARG;
    if (nb == 0) return DUO_E_UNSUPPORTED;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    if ((r = zk_start(&t, MOD_DOMAIN, bind, n, bits)) == DUO_OK) {
        duo_transcript_bn(&t, "w", w);
        r = derive_unit(y, &t, "y", i, n, nb, ctx);
    }
    duo_transcript_free(&t);
    BN_CTX_free(ctx);
    return r;
}

int duo_zk_mod_verify(const duo_paillier_pub *pk, const duo_binding *bind, const uint8_t *in, size_t in_len) {
    int r, jac = 0;
    unsigned i, bits;
    size_t nb, off;
    const BIGNUM *n;
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx = NULL;
    BIGNUM *w, *y, *yp, *x, *v;

    if (pk == NULL || bind == NULL || in == NULL) return DUO_E_INVALID_ARG;
    bits = duo_paillier_pub_bits(pk);
    n = duo_paillier_pub_n(pk);
    if ((nb = nbytes_of(bits)) == 0) return DUO_E_UNSUPPORTED;
    if (in_len != duo_zk_mod_bytes(bits)) return DUO_E_BAD_FIELD;
    /* N odd and not prime (plus size, small factors, not a square). */
    if ((r = duo_paillier_pub_modulus_check(pk)) != DUO_OK) return r;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    r = DUO_E_NOMEM;
    BN_CTX_start(ctx);
    w = BN_CTX_get(ctx);
    y = BN_CTX_get(ctx);
    yp = BN_CTX_get(ctx);
    x = BN_CTX_get(ctx);
    v = BN_CTX_get(ctx);
    if (v == NULL) goto end;
    if ((r = read_range(w, in, nb, BN_value_one(), n)) != DUO_OK) goto end;
    if ((r = duo__jacobi_var(&jac, w, n, ctx)) != DUO_OK) goto end;
    /* Jacobi(w, N) = -1. Without it a prover may send a w sharing a factor
     * with N (Jacobi 0): w = p makes every (-1)^a p y_i a fourth power mod p
     * (it is 0 there), so N = p * q passes for any p as long as q is a Blum
     * prime (tests/unit/test_zk_paillier.c, test_mod_jacobi). */
    if (jac != -1) {
        r = DUO_E_BAD_PROOF;
        goto end;
    }
    if ((r = zk_start(&t, MOD_DOMAIN, bind, n, bits)) != DUO_OK) goto end;
    duo_transcript_bn(&t, "w", w);
    for (i = 0, off = nb; i < DUO_ZK_MOD_REPS; i++, off += 1u + nb) {
        uint8_t ab = in[off];
        if (ab > 3u) {
            r = DUO_E_BAD_PROOF;
            goto end;
        }
        if ((r = read_range(x, in + off + 1u, nb, BN_value_one(), n)) != DUO_OK) goto end;
        if ((r = derive_unit(y, &t, "y", i, n, nb, ctx)) != DUO_OK) goto end;
        r = DUO_E_INTERNAL;
        if (BN_copy(yp, y) == NULL) goto end;
        if ((ab & 2u) != 0 && !BN_mod_mul(yp, yp, w, n, ctx)) goto end;
        if ((ab & 1u) != 0 && !BN_sub(yp, n, yp)) goto end;
        if (!BN_mod_sqr(v, x, n, ctx) || !BN_mod_sqr(v, v, n, ctx)) goto end;
        if (BN_cmp(v, yp) != 0) {
            r = DUO_E_BAD_PROOF;
            goto end;
        }
    }
    r = DUO_OK;
end:
    BN_CTX_end(ctx);
    duo_transcript_free(&t);
    BN_CTX_free(ctx);
    return r;
}

/* ------------------------------------------------------------ range L_P */
/* Lindell 2017 (ePrint 2017/552) appendix A, non-interactive.
 *
 * Statement: ckey = Enc(x; r) with x in [0, l), l = floor(q/3).
 * Per repetition the prover draws u in [0, l), sets w1 = u + l in [l, 2l),
 * w2 = u = w1 - l, encrypts c1 = Enc(w1; r1), c2 = Enc(w2; r2), and sends
 * them in random order as (c_a, c_b).
 * T = RANGE_DOMAIN || binding || bits || N || bn "q" || bn "ckey" ||
 *     128 x bytes "c" (c_a || c_b, fixed length); e = challenge "e", 16 bytes,
 *     e_k = bit (k mod 8) of byte k/8.
 * e_k = 0: open both: (w_a, r_a), (w_b, r_b).
 * e_k = 1: open z = x + w_j in [l, 2l) and rho = r * r_j mod N for the j
 *     with z in range; verifier checks Enc(z; rho) = ckey * c_j mod N^2.
 *
 * Completeness (no failures): for x in [0, l) and w1 in [l, 2l): if
 * x + w1 < 2l then l <= w1 <= x + w1 < 2l and j = 1 works; otherwise
 * x + w1 >= 2l, so x + w2 = x + w1 - l >= l and x + w2 < l + 2l - l = 2l,
 * and j = 2 works. One of the two always does.
 * Zero knowledge: z is uniform in [l, 2l) whatever x is (j = 1 gives
 * z in [l + x, 2l), j = 2 gives z in [l, l + x), each w1 equally likely), and
 * the position of c_j in (c_a, c_b) is masked by the random order.
 * Soundness: Enc is a bijection Z_N x Z*_N -> Z*_{N^2} once gcd(N, phi(N)) = 1
 * (L_N, which the caller must verify too), so each ciphertext has one
 * plaintext. If a repetition can answer both challenges, its plaintexts are
 * {w, w - l} with w in [l, 2l), and x = z - w_j with z in [l, 2l), so
 * x in (-l, 2l) mod N. A prover with x outside that set answers at most one
 * challenge per repetition: 2^-128 (Fiat-Shamir in the ROM).
 * The bound is (-l, 2l), so |x| < 2l < q: in particular x = N - 1 (-1)
 * passes, which is harmless (research report check 16).
 *
 * Wire layout, per repetition k (fixed size 6*NB + 65, NB = bits/8):
 *   c_a (2 NB) || c_b (2 NB) || j (1) || v1 (32) || v2 (32) || s1 (NB) || s2 (NB)
 *   e_k = 0: j = 0, v1 = w_a, v2 = w_b, s1 = r_a, s2 = r_b.
 *   e_k = 1: j in {0 = c_a, 1 = c_b}, v1 = z, v2 = 0, s1 = rho, s2 = 0.
 * All fields are big-endian; unused fields must be zero. */

#define RANGE_REP_BYTES(nb) (6u * (nb) + 1u + 2u * RANGE_SB)

int duo_zk_range_bound(const duo_ec *ec, BIGNUM *l) {
    int ok;
    if (ec == NULL || l == NULL) return DUO_E_INVALID_ARG;
    ok = BN_copy(l, duo_ec_order(ec)) != NULL && BN_div_word(l, 3) != (BN_ULONG)-1;
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

size_t duo_zk_range_bytes(unsigned bits) {
    size_t nb = nbytes_of(bits);
    return nb == 0 ? 0 : (size_t)DUO_ZK_RANGE_REPS * RANGE_REP_BYTES(nb);
}

/* Constant-time big-endian arithmetic on fixed-length byte strings. */
static uint32_t ct_add_be(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len) {
    uint32_t c = 0;
    size_t i = len;
    while (i-- > 0) {
        c += (uint32_t)a[i] + b[i];
        out[i] = (uint8_t)c;
        c >>= 8;
    }
    return c;
}

static uint32_t ct_sub_be(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len) {
    uint32_t borrow = 0;
    size_t i = len;
    while (i-- > 0) {
        uint32_t d = (uint32_t)a[i] - b[i] - borrow;
        out[i] = (uint8_t)d;
        borrow = (d >> 8) & 1u;
    }
    return borrow;
}

/* 1 if a < b (as integers), else 0; constant time. */
static int ct_lt_be(const uint8_t *a, const uint8_t *b, uint8_t *scratch, size_t len) {
    return (int)ct_sub_be(scratch, a, b, len);
}

/* out = a + b mod m for a, b < m; constant time. */
static void ct_addmod_be(uint8_t *out, const uint8_t *a, const uint8_t *b, const uint8_t *m, uint8_t *scratch,
                         size_t len) {
    uint32_t carry = ct_add_be(out, a, b, len);
    uint32_t borrow = ct_sub_be(scratch, out, m, len);
    /* out >= m iff the addition overflowed or the subtraction did not borrow. */
    duo_ct_cmov(out, scratch, len, (int)(carry | (borrow ^ 1u)));
}

/* Secret per-repetition state, in one wiped buffer. */
typedef struct range_secret {
    uint8_t u[RANGE_SB]; /* w2 = u, w1 = u + l */
    uint8_t swap;        /* 1: (c_a, c_b) = (c2, c1) */
    uint8_t r1[NB_MAX];
    uint8_t r2[NB_MAX];
} range_secret;

/* r uniform in Z*_N and rn = r^N mod N^2. duo_paillier_rn_from_r_priv
 * already rejects non-units (DUO_E_INVALID_ARG), so draw from [0, N) and
 * retry rather than pay for a second gcd per draw. */
static int random_rn(const duo_paillier_priv *sk, BIGNUM *r, BIGNUM *rn, const duo_rng *rng) {
    int ret = DUO_E_RNG, i;
    const BIGNUM *n = duo_paillier_pub_n(duo_paillier_priv_pub(sk));
    for (i = 0; i < 8; i++) {
        if ((ret = duo_bn_random_below(r, n, rng)) != DUO_OK) return ret;
        ret = duo_paillier_rn_from_r_priv(sk, rn, r);
        if (ret != DUO_E_INVALID_ARG) return ret;
    }
    return ret;
}

/* ----------------------------------------- precomputed range randomness */
/* Slot 0 is ckey's pair; slots 1 + 2k and 2 + 2k are repetition k's (r1, r2).
 * Each slot is r (nb bytes) || r^N mod N^2 (2 nb bytes), big-endian, in one
 * secret buffer (duo_secbuf: mlock()ed, wiped on free). */
#define PC_SLOTS (2u * DUO_ZK_RANGE_REPS + 1u)

struct duo_zk_range_precomp {
    size_t nb;
    BIGNUM *n;      /* the modulus it was made for (public) */
    int enc_used;   /* slot 0 taken */
    int proof_used; /* slots 1.. consumed */
    duo_secbuf buf;
};

static uint8_t *pc_slot(const duo_zk_range_precomp *pc, size_t i) { return pc->buf.data + i * 3u * pc->nb; }

static void pc_wipe_slots(duo_zk_range_precomp *pc, size_t from, size_t to) {
    if (pc->buf.data != NULL && to > from) duo_memzero(pc_slot(pc, from), (to - from) * 3u * pc->nb);
}

static int pc_same_key(const duo_zk_range_precomp *pc, const duo_paillier_priv *sk) {
    return BN_cmp(pc->n, duo_paillier_pub_n(duo_paillier_priv_pub(sk))) == 0;
}

/* r, rn <- slot i (r and rn flagged constant-time). */
static int pc_load(const duo_zk_range_precomp *pc, size_t i, BIGNUM *r, BIGNUM *rn) {
    const uint8_t *sl = pc_slot(pc, i);
    bn_secret(r);
    bn_secret(rn);
    if (BN_bin2bn(sl, (int)pc->nb, r) == NULL || BN_bin2bn(sl + pc->nb, (int)(2u * pc->nb), rn) == NULL)
        return DUO_E_NOMEM;
    return DUO_OK;
}

int duo_zk_range_precomp_new(duo_zk_range_precomp **out, const duo_paillier_priv *sk, const duo_rng *rng) {
    int ret = DUO_E_NOMEM;
    size_t i, nb;
    duo_zk_range_precomp *pc = NULL;
    BIGNUM *r = NULL, *rn = NULL;

    if (out != NULL) *out = NULL;
    if (out == NULL || sk == NULL) return DUO_E_INVALID_ARG;
    if ((nb = nbytes_of(duo_paillier_pub_bits(duo_paillier_priv_pub(sk)))) == 0) return DUO_E_UNSUPPORTED;
    if ((pc = calloc(1, sizeof *pc)) == NULL) return DUO_E_NOMEM;
    pc->nb = nb;
    if ((pc->n = BN_dup(duo_paillier_pub_n(duo_paillier_priv_pub(sk)))) == NULL ||
        (ret = duo_secbuf_alloc(&pc->buf, PC_SLOTS * 3u * nb)) != DUO_OK || (r = BN_secure_new()) == NULL ||
        (rn = BN_secure_new()) == NULL) {
        ret = DUO_E_NOMEM;
        goto out;
    }
    bn_secret(r);
    bn_secret(rn);
    for (i = 0; i < PC_SLOTS; i++) {
        uint8_t *sl = pc_slot(pc, i);
        if ((ret = random_rn(sk, r, rn, rng)) != DUO_OK || (ret = write_fixed(sl, nb, r)) != DUO_OK ||
            (ret = write_fixed(sl + nb, 2u * nb, rn)) != DUO_OK)
            goto out;
    }
    *out = pc;
    pc = NULL;
    ret = DUO_OK;
out:
    BN_clear_free(r);
    BN_clear_free(rn);
    duo_zk_range_precomp_free(pc);
    return ret;
}

void duo_zk_range_precomp_free(duo_zk_range_precomp *pc) {
    if (pc == NULL) return;
    duo_secbuf_free(&pc->buf);
    BN_free(pc->n);
    duo_memzero(pc, sizeof *pc);
    free(pc);
}

int duo_zk_range_precomp_take_enc(duo_zk_range_precomp *pc, const duo_paillier_priv *sk, BIGNUM *r, BIGNUM *rn) {
    int ret;
    if (pc == NULL || sk == NULL || r == NULL || rn == NULL) return DUO_E_INVALID_ARG;
    if (pc->enc_used) return DUO_E_PROTO_STATE;
    pc->enc_used = 1;
    if (!pc_same_key(pc, sk)) {
        ret = DUO_E_INVALID_ARG;
    } else {
        ret = pc_load(pc, 0, r, rn);
    }
    pc_wipe_slots(pc, 0, 1);
    if (ret != DUO_OK) {
        BN_clear(r);
        BN_clear(rn);
    }
    return ret;
}

/* range_prove_impl flags: the honest prover is RANGE_CHECK_X alone; the
 * others exist for the test-only provers (zk_paillier_internal.h). */
#define RANGE_CHECK_X 1u /* refuse x outside [0, l) */
#define RANGE_RAW_Z 2u   /* out-of-range x: send the true z (see below) */
#define RANGE_WIDE_U 4u  /* draw u in [l, 2l) instead of [0, l) */

static int range_prove_impl(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind, const BIGNUM *ckey,
                            const BIGNUM *x, const BIGNUM *rr, const duo_rng *rng, unsigned flags,
                            const duo_zk_range_precomp *pc, uint8_t *out, size_t out_len) {
    int r = DUO_E_NOMEM;
    unsigned k;
    size_t nb, cb, rep;
    const duo_paillier_pub *pk;
    const BIGNUM *n;
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx = NULL;
    BN_MONT_CTX *mont = NULL;
    duo_secbuf sec = {NULL, 0}, scratch = {NULL, 0};
    range_secret *st;
    uint8_t e[DUO_ZK_RANGE_REPS / 8];
    BIGNUM *l, *u, *w1, *r1, *r2, *rn, *c1, *c2, *rm, *rj, *rho;

    if (ec == NULL || sk == NULL || bind == NULL || ckey == NULL || x == NULL || rr == NULL || out == NULL)
        return DUO_E_INVALID_ARG;
    pk = duo_paillier_priv_pub(sk);
    n = duo_paillier_pub_n(pk);
    if ((nb = nbytes_of(duo_paillier_pub_bits(pk))) == 0) return DUO_E_UNSUPPORTED;
    cb = 2u * nb;
    rep = RANGE_REP_BYTES(nb);
    if (out_len != duo_zk_range_bytes(duo_paillier_pub_bits(pk))) return DUO_E_BUFFER_TOO_SMALL;
    if (duo_paillier_ciphertext_check(pk, ckey) != DUO_OK) return DUO_E_INVALID_ARG;
    memset(out, 0, out_len);
    if ((ctx = BN_CTX_secure_new()) == NULL || (mont = BN_MONT_CTX_new()) == NULL) goto out0;
    if ((r = duo_secbuf_alloc(&sec, (size_t)DUO_ZK_RANGE_REPS * sizeof(range_secret))) != DUO_OK ||
        (r = duo_secbuf_alloc(&scratch, 8u * NB_MAX)) != DUO_OK)
        goto out0;
    st = (range_secret *)(void *)sec.data;
    r = DUO_E_NOMEM;
    BN_CTX_start(ctx);
    l = BN_CTX_get(ctx);
    u = BN_CTX_get(ctx);
    w1 = BN_CTX_get(ctx);
    r1 = BN_CTX_get(ctx);
    r2 = BN_CTX_get(ctx);
    rn = BN_CTX_get(ctx);
    c1 = BN_CTX_get(ctx);
    c2 = BN_CTX_get(ctx);
    rm = BN_CTX_get(ctx);
    rj = BN_CTX_get(ctx);
    rho = BN_CTX_get(ctx);
    if (rho == NULL) goto out;
    bn_secret(u);
    bn_secret(w1);
    bn_secret(r1);
    bn_secret(r2);
    bn_secret(rm);
    bn_secret(rj);
    if ((r = duo_zk_range_bound(ec, l)) != DUO_OK) goto out;
    /* Input checks. The x < l test branches on x only to refuse misuse (an
     * honest caller always passes); it reveals nothing else. */
    r = DUO_E_INVALID_ARG;
    if (BN_is_negative(x) || BN_cmp(x, n) >= 0 || ((flags & RANGE_CHECK_X) != 0 && BN_cmp(x, l) >= 0)) goto out;
    if (BN_is_negative(rr) || BN_is_zero(rr) || BN_cmp(rr, n) >= 0) goto out;
    r = DUO_E_INTERNAL;
    if (!BN_MONT_CTX_set(mont, n, ctx)) goto out;

    /* Commit: 128 pairs of encryptions of (u + l, u) in random order. */
    for (k = 0; k < DUO_ZK_RANGE_REPS; k++) {
        uint8_t *o = out + (size_t)k * rep;
        uint8_t sbit;
        if ((r = duo_bn_random_below(u, l, rng)) != DUO_OK) goto out;
        r = DUO_E_INTERNAL;
        if ((flags & RANGE_WIDE_U) != 0 && !BN_add(u, u, l)) goto out; /* test only: u in [l, 2l) */
        if (!BN_add(w1, u, l)) goto out;
        if (pc != NULL) {
            /* Precomputed (r1, r1^N), (r2, r2^N): the pool drew them uniform
             * in Z*_N exactly as random_rn does. */
            if ((r = pc_load(pc, 1u + 2u * k, r1, rn)) != DUO_OK ||
                (r = duo_paillier_encrypt(pk, c1, w1, rn)) != DUO_OK ||
                (r = pc_load(pc, 2u + 2u * k, r2, rn)) != DUO_OK || (r = duo_paillier_encrypt(pk, c2, u, rn)) != DUO_OK)
                goto out;
        } else if ((r = random_rn(sk, r1, rn, rng)) != DUO_OK || (r = duo_paillier_encrypt(pk, c1, w1, rn)) != DUO_OK ||
                   (r = random_rn(sk, r2, rn, rng)) != DUO_OK || (r = duo_paillier_encrypt(pk, c2, u, rn)) != DUO_OK) {
            goto out;
        }
        if ((r = duo_rng_bytes(rng, &sbit, 1)) != DUO_OK) goto out;
        st[k].swap = (uint8_t)(sbit & 1u);
        if ((flags & RANGE_WIDE_U) != 0) st[k].swap = 0; /* test only: w1 opened as w_a */
        if ((r = write_fixed(st[k].u, RANGE_SB, u)) != DUO_OK || (r = write_fixed(st[k].r1, nb, r1)) != DUO_OK ||
            (r = write_fixed(st[k].r2, nb, r2)) != DUO_OK)
            goto out;
        /* The order is public once a repetition is opened; a branch is fine. */
        if ((r = duo_paillier_ciphertext_serialize(pk, o, cb, st[k].swap ? c2 : c1)) != DUO_OK ||
            (r = duo_paillier_ciphertext_serialize(pk, o + cb, cb, st[k].swap ? c1 : c2)) != DUO_OK)
            goto out;
    }

    /* Challenge. */
    if ((r = zk_start(&t, RANGE_DOMAIN, bind, n, duo_paillier_pub_bits(pk))) != DUO_OK) goto out;
    duo_transcript_bn(&t, "q", duo_ec_order(ec));
    duo_transcript_bn(&t, "ckey", ckey);
    for (k = 0; k < DUO_ZK_RANGE_REPS; k++) duo_transcript_bytes(&t, "c", out + (size_t)k * rep, 2u * cb);
    if ((r = duo_transcript_challenge(&t, "e", e, sizeof e)) != DUO_OK) goto out;

    /* Responses. */
    {
        uint8_t *xb = scratch.data, *lb = xb + NB_MAX, *l2b = lb + NB_MAX, *nbuf = l2b + NB_MAX;
        uint8_t *w1b = nbuf + NB_MAX, *w2b = w1b + NB_MAX, *z1 = w2b + NB_MAX, *z2 = z1 + NB_MAX;
        uint8_t tmp[NB_MAX];
        r = DUO_E_INTERNAL;
        if (write_fixed(xb, nb, x) != DUO_OK || write_fixed(lb, nb, l) != DUO_OK || write_fixed(nbuf, nb, n) != DUO_OK)
            goto out;
        (void)ct_add_be(l2b, lb, lb, nb); /* 2l < 2^257, no overflow in nb bytes */
        /* rm = r in Montgomery form: rho = MontMul(rm, r_j) = r * r_j mod N. */
        if (!BN_to_montgomery(rm, rr, mont, ctx)) goto out;
        for (k = 0; k < DUO_ZK_RANGE_REPS; k++) {
            uint8_t *o = out + (size_t)k * rep + 2u * cb;
            const range_secret *s = &st[k];
            int ek = (e[k >> 3] >> (k & 7u)) & 1;
            /* u and u + l as nb-byte strings */
            memset(w2b, 0, nb);
            memcpy(w2b + nb - RANGE_SB, s->u, RANGE_SB);
            (void)ct_add_be(w1b, w2b, lb, nb);
            if (ek == 0) {
                /* Open both in wire order (c_a, c_b). */
                const uint8_t *wa = s->swap ? w2b : w1b, *wb = s->swap ? w1b : w2b;
                const uint8_t *ra = s->swap ? s->r2 : s->r1, *rb = s->swap ? s->r1 : s->r2;
                o[0] = 0;
                memcpy(o + 1, wa + nb - RANGE_SB, RANGE_SB);
                memcpy(o + 1 + RANGE_SB, wb + nb - RANGE_SB, RANGE_SB);
                memcpy(o + 1 + 2 * RANGE_SB, ra, nb);
                memcpy(o + 1 + 2 * RANGE_SB + nb, rb, nb);
            } else {
                /* Branch-free choice of j: use1 = [l <= x + w1 mod N < 2l].
                 * x, w1, w2, r1, r2 are secret; z, rho and the position byte
                 * are the public answer (uniform, see above). */
                int use1, use2, neither;
                uint8_t pos;
                ct_addmod_be(z1, xb, w1b, nbuf, tmp, nb);
                ct_addmod_be(z2, xb, w2b, nbuf, tmp, nb);
                use1 = (1 - ct_lt_be(z1, lb, tmp, nb)) & ct_lt_be(z1, l2b, tmp, nb);
                use2 = (1 - ct_lt_be(z2, lb, tmp, nb)) & ct_lt_be(z2, l2b, tmp, nb);
                /* Never for x in [0, l) (completeness); only the test-only
                 * provers with an out-of-range x get here. */
                neither = (1 - use1) & (1 - use2);
                if ((flags & RANGE_RAW_Z) != 0 && neither) {
                    /* Test only (branches on x): send the true z = x + w_j
                     * for a j whose z fits the 32-byte field, so that the
                     * encryption equation holds and only the verifier's
                     * z in [l, 2l) check can reject the repetition. */
                    int fit1 = duo_ct_is_zero(z1, nb - RANGE_SB), fit2 = duo_ct_is_zero(z2, nb - RANGE_SB);
                    if (!fit1 && !fit2) {
                        r = DUO_E_INVALID_ARG;
                        goto out;
                    }
                    use1 = fit1;
                }
                duo_ct_cmov(z2, z1, nb, use1); /* z2 := chosen z */
                /* Otherwise (test-only unchecked prover) send z = l so that
                 * the verifier has to reject on the encryption equation, not
                 * on the range check alone. */
                if ((flags & RANGE_RAW_Z) == 0) duo_ct_cmov(z2, lb, nb, neither);
                memcpy(tmp, s->r2, nb);
                duo_ct_cmov(tmp, s->r1, nb, use1); /* tmp := r_j */
                /* c1 sits at position swap, c2 at 1 - swap. */
                pos = (uint8_t)(s->swap ^ (uint8_t)(1 - use1));
                duo__declassify(&pos, 1);
                r = DUO_E_INTERNAL;
                /* BN_bin2bn trims leading zero words, so r_j's word length
                 * (N's length except with probability ~2^-64) is the only
                 * thing it could reveal; both r_1 and r_2 are uniform. */
                if (BN_bin2bn(tmp, (int)nb, rj) == NULL || !BN_mod_mul_montgomery(rho, rm, rj, mont, ctx)) goto out;
                o[0] = pos;
                /* z is in [l, 2l) and 2l < 2^256: the top nb - 32 bytes are
                 * zero (for RANGE_RAW_Z: checked above). */
                memcpy(o + 1, z2 + nb - RANGE_SB, RANGE_SB);
                if ((r = write_fixed(o + 1 + 2 * RANGE_SB, nb, rho)) != DUO_OK) goto out;
                duo_memzero(tmp, sizeof tmp);
            }
        }
        duo_memzero(tmp, sizeof tmp);
    }
    r = DUO_OK;
out:
    if (rho != NULL) {
        BN_clear(u);
        BN_clear(w1);
        BN_clear(r1);
        BN_clear(r2);
        BN_clear(rn);
        BN_clear(rm);
        BN_clear(rj);
    }
    BN_CTX_end(ctx);
out0:
    duo_transcript_free(&t);
    duo_secbuf_free(&sec);
    duo_secbuf_free(&scratch);
    BN_MONT_CTX_free(mont);
    BN_CTX_free(ctx);
    if (r != DUO_OK) duo_memzero(out, out_len);
    return r;
}

int duo_zk_range_prove(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind, const BIGNUM *ckey,
                       const BIGNUM *x, const BIGNUM *r, const duo_rng *rng, uint8_t *out, size_t out_len) {
    return range_prove_impl(ec, sk, bind, ckey, x, r, rng, RANGE_CHECK_X, NULL, out, out_len);
}

int duo_zk_range_prove_precomp(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                               const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng,
                               duo_zk_range_precomp *pc, uint8_t *out, size_t out_len) {
    int ret;
    if (pc == NULL) return DUO_E_INVALID_ARG;
    if (pc->proof_used) return DUO_E_PROTO_STATE;
    /* Spent from here on, whatever happens: a commitment's randomness must
     * never serve two proofs (two openings of one r with different
     * challenges would reveal x). */
    pc->proof_used = 1;
    if (sk == NULL || !pc_same_key(pc, sk)) {
        ret = DUO_E_INVALID_ARG;
    } else {
        ret = range_prove_impl(ec, sk, bind, ckey, x, r, rng, RANGE_CHECK_X, pc, out, out_len);
    }
    pc_wipe_slots(pc, 1, PC_SLOTS);
    return ret;
}

int duo__zk_range_prove_unchecked(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                                  const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng,
                                  uint8_t *out, size_t out_len) {
    return range_prove_impl(ec, sk, bind, ckey, x, r, rng, 0, NULL, out, out_len);
}

int duo__zk_range_prove_dishonest(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                                  const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng, int wide_u,
                                  uint8_t *out, size_t out_len) {
    return range_prove_impl(ec, sk, bind, ckey, x, r, rng, RANGE_RAW_Z | (wide_u ? RANGE_WIDE_U : 0u), NULL, out,
                            out_len);
}

/* Bucket (Pippenger) multi-exponentiation with MEXP_WIN-bit windows: per
 * window, each base is multiplied into the bucket of its digit, then
 * sum_d d * bucket[d] is formed with two running products. For the range
 * proof's ~192 bases and 64-bit exponents that is 13 x (192 + 62)
 * multiplications instead of 192 x 32 for square-and-multiply (issue 22). */
#define MEXP_WIN 5u
#define MEXP_BUCKETS ((1u << MEXP_WIN) - 1u)

/* *acc (Montgomery form; *have = 0 means 1) times sum_d d * bucket[d]. */
static int mexp_fold(BIGNUM *acc, int *have, BIGNUM *const *bk, const int *used, BIGNUM *run, BIGNUM *tot,
                     BN_MONT_CTX *mont, BN_CTX *ctx) {
    int have_run = 0, have_tot = 0;
    unsigned d;
    for (d = MEXP_BUCKETS; d >= 1u; d--) {
        if (used[d - 1u]) {
            if (!have_run ? BN_copy(run, bk[d - 1u]) == NULL : !BN_mod_mul_montgomery(run, run, bk[d - 1u], mont, ctx))
                return DUO_E_INTERNAL;
            have_run = 1;
        }
        if (have_run) {
            if (!have_tot ? BN_copy(tot, run) == NULL : !BN_mod_mul_montgomery(tot, tot, run, mont, ctx))
                return DUO_E_INTERNAL;
            have_tot = 1;
        }
    }
    if (!have_tot) return DUO_OK;
    if (!*have ? BN_copy(acc, tot) == NULL : !BN_mod_mul_montgomery(acc, acc, tot, mont, ctx)) return DUO_E_INTERNAL;
    *have = 1;
    return DUO_OK;
}

/* out = prod bases[i]^e[i] mod m. Variable time: the exponents are the
 * verifier's own, used once, and the bases public. */
static int multiexp64_var(BIGNUM *out, BIGNUM *const *bases, const uint64_t *e, size_t cnt, BN_MONT_CTX *mont,
                          BN_CTX *ctx) {
    int r = DUO_E_NOMEM, have = 0, used[MEXP_BUCKETS];
    unsigned d, k, win;
    size_t i;
    BIGNUM **bm = NULL, *bk[MEXP_BUCKETS], *acc, *run, *tot;

    BN_CTX_start(ctx);
    acc = BN_CTX_get(ctx);
    run = BN_CTX_get(ctx);
    tot = BN_CTX_get(ctx);
    for (d = 0; d < MEXP_BUCKETS; d++) bk[d] = BN_CTX_get(ctx);
    if (bk[MEXP_BUCKETS - 1u] == NULL) goto out;
    if ((bm = calloc(cnt == 0 ? 1 : cnt, sizeof *bm)) == NULL) goto out;
    for (i = 0; i < cnt; i++) {
        if ((bm[i] = BN_new()) == NULL) goto out;
    }
    r = DUO_E_INTERNAL;
    for (i = 0; i < cnt; i++) {
        if (!BN_to_montgomery(bm[i], bases[i], mont, ctx)) goto out;
    }
    for (win = (64u + MEXP_WIN - 1u) / MEXP_WIN; win-- > 0;) {
        for (k = 0; have && k < MEXP_WIN; k++) {
            if (!BN_mod_mul_montgomery(acc, acc, acc, mont, ctx)) goto out;
        }
        memset(used, 0, sizeof used);
        for (i = 0; i < cnt; i++) {
            unsigned dig = (unsigned)(e[i] >> (win * MEXP_WIN)) & MEXP_BUCKETS;
            if (dig == 0) continue;
            if (!used[dig - 1u] ? BN_copy(bk[dig - 1u], bm[i]) == NULL
                                : !BN_mod_mul_montgomery(bk[dig - 1u], bk[dig - 1u], bm[i], mont, ctx))
                goto out;
            used[dig - 1u] = 1;
        }
        if ((r = mexp_fold(acc, &have, bk, used, run, tot, mont, ctx)) != DUO_OK) goto out;
        r = DUO_E_INTERNAL;
    }
    if (!have ? !BN_one(out) : !BN_from_montgomery(out, acc, mont, ctx)) goto out;
    r = DUO_OK;
out:
    if (bm != NULL) {
        for (i = 0; i < cnt; i++) BN_free(bm[i]);
        free(bm);
    }
    BN_CTX_end(ctx);
    return r;
}

/* Batch verification of the encryption equations  C_i = Enc(m_i; r_i),
 * written as  r_i^N = T_i := C_i * (1 - m_i N) mod N^2  (since
 * (1 + mN)^-1 = 1 - mN mod N^2). With fresh random 64-bit e_i we check
 *     (prod r_i^e_i)^N == prod T_i^e_i  (mod N^2)
 * and that prod r_i is a unit mod N (so every r_i is).
 *
 * Soundness. With gcd(N, phi(N)) = 1 (L_N), Z*_{N^2} = {Enc(m; s)} is
 * isomorphic to Z_N x Z*_N and pi(Enc(m; s)) = m is a homomorphism onto
 * Z_N. Let D_i = T_i / r_i^N; pi(D_i) = pi(C_i) - m_i, the plaintext error.
 * A passing check gives prod D_i^e_i = 1, hence sum e_i pi(D_i) = 0 mod N.
 * If some pi(D_k) != 0 mod N, take a prime p' | N with pi(D_k) != 0 mod p';
 * given the other e_i, at most one residue of e_k mod p' satisfies the sum,
 * and since p' > 2^64 at most one e_k in [0, 2^64): probability <= 2^-64
 * over the verifier's fresh coins (an online bound: each try costs the cheater
 * an aborted enrolment). Small-order elements of Z*_{N^2} (-1, or elements of
 * order dividing p-1 or q-1) all lie in the Z*_N (randomness) factor, where
 * pi vanishes: an error there only means C_i = Enc(m_i; s) for another s,
 * which is still an encryption of m_i, so they cannot hide a plaintext
 * error. Squaring both sides would remove only the order-2 part and is not
 * needed for this statement. Only plaintexts matter to the range proof's
 * soundness (see the comment above duo_zk_range_bound), so the batched check
 * is as sound as the separate ones, up to 2^-64. */
static int batch_check_var(BIGNUM *const *rs, BIGNUM *const *ts, size_t cnt, const duo_paillier_pub *pk,
                           const duo_rng *rng, BN_CTX *ctx) {
    int r = DUO_E_NOMEM;
    size_t i;
    uint64_t *e = NULL;
    uint8_t *eb = NULL;
    BN_MONT_CTX *mont = NULL, *mont_n = NULL;
    const BIGNUM *n = duo_paillier_pub_n(pk), *n2 = duo_paillier_pub_n2(pk);
    BIGNUM *lhs, *rhs, *prod;

    BN_CTX_start(ctx);
    lhs = BN_CTX_get(ctx);
    rhs = BN_CTX_get(ctx);
    prod = BN_CTX_get(ctx);
    if (prod == NULL) goto out;
    if ((e = calloc(cnt == 0 ? 1 : cnt, sizeof *e)) == NULL || (eb = calloc(cnt == 0 ? 1 : cnt, 8)) == NULL ||
        (mont = BN_MONT_CTX_new()) == NULL || (mont_n = BN_MONT_CTX_new()) == NULL)
        goto out;
    /* Every r_i a unit mod N: one gcd on their product. */
    r = DUO_E_INTERNAL;
    if (!BN_one(prod)) goto out;
    for (i = 0; i < cnt; i++) {
        if (!BN_mod_mul(prod, prod, rs[i], n, ctx)) goto out;
    }
    if (!BN_gcd(lhs, prod, n, ctx)) goto out;
    if (!BN_is_one(lhs)) {
        r = DUO_E_BAD_PROOF;
        goto out;
    }
    if ((r = duo_rng_bytes(rng, eb, 8u * cnt)) != DUO_OK) goto out;
    for (i = 0; i < cnt; i++) {
        uint64_t v = 0;
        int j;
        for (j = 0; j < 8; j++) v = (v << 8) | eb[8u * i + (size_t)j];
        e[i] = v;
    }
    /* prod r_i^e_i is taken mod N, not N^2: a = b mod N implies
     * a^N = b^N mod N^2 (binomial theorem), so the check is the same, at a
     * quarter of the cost per multiplication. */
    r = DUO_E_INTERNAL;
    if (!BN_MONT_CTX_set(mont_n, n, ctx) || !BN_MONT_CTX_set(mont, n2, ctx)) goto out;
    if ((r = multiexp64_var(lhs, rs, e, cnt, mont_n, ctx)) != DUO_OK ||
        (r = multiexp64_var(rhs, ts, e, cnt, mont, ctx)) != DUO_OK)
        goto out;
    r = DUO_E_INTERNAL;
    if (!BN_mod_exp_mont(lhs, lhs, n, n2, ctx, mont)) goto out;
    r = BN_cmp(lhs, rhs) == 0 ? DUO_OK : DUO_E_BAD_PROOF;
out:
    free(e);
    free(eb);
    BN_MONT_CTX_free(mont);
    BN_MONT_CTX_free(mont_n);
    BN_CTX_end(ctx);
    return r;
}

/* One equation C = Enc(m; s): either queued for the batch (rs/ts get s and
 * T = C (1 - mN) mod N^2) or checked now by re-encrypting. */
static int range_equation(const duo_paillier_pub *pk, const BIGNUM *c, const BIGNUM *m, const BIGNUM *s, int batch,
                          BIGNUM **rs, BIGNUM **ts, size_t *cnt, BN_CTX *ctx) {
    int r = DUO_E_INTERNAL;
    const BIGNUM *n = duo_paillier_pub_n(pk), *n2 = duo_paillier_pub_n2(pk);
    if (batch) {
        BIGNUM *rs_i = rs[*cnt], *t = ts[*cnt];
        if (BN_copy(rs_i, s) == NULL || !BN_mul(t, m, n, ctx) || !BN_mod_sub(t, BN_value_one(), t, n2, ctx) ||
            !BN_mod_mul(t, t, c, n2, ctx))
            return DUO_E_INTERNAL;
        (*cnt)++;
        return DUO_OK;
    }
    BN_CTX_start(ctx);
    BIGNUM *rn = BN_CTX_get(ctx), *cc = BN_CTX_get(ctx);
    if (cc == NULL) goto out;
    if ((r = duo_paillier_rn_from_r(pk, rn, s)) != DUO_OK) {
        r = r == DUO_E_INVALID_ARG ? DUO_E_BAD_PROOF : r; /* s not a unit */
        goto out;
    }
    if ((r = duo_paillier_encrypt(pk, cc, m, rn)) != DUO_OK) goto out;
    r = BN_cmp(cc, c) == 0 ? DUO_OK : DUO_E_BAD_PROOF;
out:
    BN_CTX_end(ctx);
    return r;
}

int duo__zk_range_verify_ex(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind, const BIGNUM *ckey,
                            const uint8_t *in, size_t in_len, int batch, const duo_rng *rng) {
    enum { MAXEQ = 2 * DUO_ZK_RANGE_REPS, NCT = 2 * DUO_ZK_RANGE_REPS };
    int r;
    unsigned k, bits;
    size_t nb, cb, rep, cnt = 0, i;
    const BIGNUM *n, *n2;
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx = NULL;
    BIGNUM **cts = NULL, **rs = NULL, **ts = NULL;
    BIGNUM *l, *l2, *v1, *v2, *s1, *s2, *cj;
    uint8_t e[DUO_ZK_RANGE_REPS / 8];

    if (ec == NULL || pk == NULL || bind == NULL || ckey == NULL || in == NULL) return DUO_E_INVALID_ARG;
    bits = duo_paillier_pub_bits(pk);
    n = duo_paillier_pub_n(pk);
    n2 = duo_paillier_pub_n2(pk);
    if ((nb = nbytes_of(bits)) == 0) return DUO_E_UNSUPPORTED;
    cb = 2u * nb;
    rep = RANGE_REP_BYTES(nb);
    if (in_len != duo_zk_range_bytes(bits)) return DUO_E_BAD_FIELD;
    if ((r = duo_paillier_pub_modulus_check(pk)) != DUO_OK) return r;
    if ((r = duo_paillier_ciphertext_check(pk, ckey)) != DUO_OK) return r;
    r = DUO_E_NOMEM;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    if ((cts = calloc(NCT, sizeof *cts)) == NULL || (rs = calloc(MAXEQ, sizeof *rs)) == NULL ||
        (ts = calloc(MAXEQ, sizeof *ts)) == NULL)
        goto out0;
    for (i = 0; i < NCT; i++) {
        if ((cts[i] = BN_new()) == NULL) goto out0;
    }
    for (i = 0; i < MAXEQ; i++) {
        if ((rs[i] = BN_new()) == NULL || (ts[i] = BN_new()) == NULL) goto out0;
    }
    BN_CTX_start(ctx);
    l = BN_CTX_get(ctx);
    l2 = BN_CTX_get(ctx);
    v1 = BN_CTX_get(ctx);
    v2 = BN_CTX_get(ctx);
    s1 = BN_CTX_get(ctx);
    s2 = BN_CTX_get(ctx);
    cj = BN_CTX_get(ctx);
    if (cj == NULL) goto out;
    if ((r = duo_zk_range_bound(ec, l)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if (!BN_lshift1(l2, l)) goto out;

    /* Commitments: every ciphertext in (0, N^2) and a unit. */
    for (k = 0; k < DUO_ZK_RANGE_REPS; k++) {
        const uint8_t *o = in + (size_t)k * rep;
        if ((r = duo_paillier_ciphertext_parse(pk, cts[2 * k], o, cb)) != DUO_OK ||
            (r = duo_paillier_ciphertext_parse(pk, cts[2 * k + 1], o + cb, cb)) != DUO_OK) {
            r = (r == DUO_E_BAD_CIPHERTEXT || r == DUO_E_BAD_FIELD) ? DUO_E_BAD_PROOF : r;
            goto out;
        }
    }
    if ((r = zk_start(&t, RANGE_DOMAIN, bind, n, bits)) != DUO_OK) goto out;
    duo_transcript_bn(&t, "q", duo_ec_order(ec));
    duo_transcript_bn(&t, "ckey", ckey);
    for (k = 0; k < DUO_ZK_RANGE_REPS; k++) duo_transcript_bytes(&t, "c", in + (size_t)k * rep, 2u * cb);
    if ((r = duo_transcript_challenge(&t, "e", e, sizeof e)) != DUO_OK) goto out;

    for (k = 0; k < DUO_ZK_RANGE_REPS; k++) {
        const uint8_t *o = in + (size_t)k * rep + 2u * cb;
        const uint8_t *f_v1 = o + 1, *f_v2 = o + 1 + RANGE_SB, *f_s1 = o + 1 + 2 * RANGE_SB, *f_s2 = f_s1 + nb;
        int ek = (e[k >> 3] >> (k & 7u)) & 1;
        r = DUO_E_BAD_PROOF;
        if (ek == 0) {
            /* {w_a, w_b} = {w, w - l} with w in [l, 2l), in either order. */
            if (o[0] != 0) goto out;
            if ((r = read_range(v1, f_v1, RANGE_SB, NULL, l2)) != DUO_OK ||
                (r = read_range(v2, f_v2, RANGE_SB, NULL, l2)) != DUO_OK ||
                (r = read_range(s1, f_s1, nb, BN_value_one(), n)) != DUO_OK ||
                (r = read_range(s2, f_s2, nb, BN_value_one(), n)) != DUO_OK)
                goto out;
            r = DUO_E_INTERNAL;
            if (BN_cmp(v1, l) >= 0) {
                if (!BN_sub(cj, v1, l)) goto out;
                r = BN_cmp(cj, v2) == 0 ? DUO_OK : DUO_E_BAD_PROOF;
            } else {
                if (!BN_sub(cj, v2, l)) goto out;
                r = (BN_cmp(v2, l) >= 0 && BN_cmp(cj, v1) == 0) ? DUO_OK : DUO_E_BAD_PROOF;
            }
            if (r != DUO_OK) goto out;
            if ((r = range_equation(pk, cts[2 * k], v1, s1, batch, rs, ts, &cnt, ctx)) != DUO_OK ||
                (r = range_equation(pk, cts[2 * k + 1], v2, s2, batch, rs, ts, &cnt, ctx)) != DUO_OK)
                goto out;
        } else {
            /* z in [l, 2l), Enc(z; rho) = ckey * c_j; unused fields zero. */
            if (o[0] > 1u || !duo_ct_is_zero(f_v2, RANGE_SB) || !duo_ct_is_zero(f_s2, nb)) goto out;
            if ((r = read_range(v1, f_v1, RANGE_SB, NULL, NULL)) != DUO_OK ||
                (r = read_range(s1, f_s1, nb, BN_value_one(), n)) != DUO_OK)
                goto out;
            /* THE range check: z in [l, 2l). It carries the soundness (with
             * the e = 0 openings, x = z - w_j lies in (-l, 2l)); the 32-byte
             * field alone would let through any z < 2^256, e.g. the true
             * z = x + w_2 of a prover with x = 2l (a plaintext >= l), and it
             * is not what should keep Enc(x1 + q) out. Tested on its own by
             * tests/unit/test_zk_paillier.c (test_range_z_interval). */
            if (BN_cmp(v1, l) < 0 || BN_cmp(v1, l2) >= 0) {
                r = DUO_E_BAD_PROOF;
                goto out;
            }
            r = DUO_E_INTERNAL;
            if (!BN_mod_mul(cj, ckey, cts[2 * k + o[0]], n2, ctx)) goto out;
            if ((r = range_equation(pk, cj, v1, s1, batch, rs, ts, &cnt, ctx)) != DUO_OK) goto out;
        }
    }
    r = batch ? batch_check_var(rs, ts, cnt, pk, rng, ctx) : DUO_OK;
out:
    BN_CTX_end(ctx);
out0:
    duo_transcript_free(&t);
    if (cts != NULL) {
        for (i = 0; i < NCT; i++) BN_free(cts[i]);
    }
    if (rs != NULL) {
        for (i = 0; i < MAXEQ; i++) BN_free(rs[i]);
    }
    if (ts != NULL) {
        for (i = 0; i < MAXEQ; i++) BN_free(ts[i]);
    }
    free(cts);
    free(rs);
    free(ts);
    BN_CTX_free(ctx);
    return r;
}

int duo_zk_range_verify_rng(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind, const BIGNUM *ckey,
                            const uint8_t *in, size_t in_len, const duo_rng *rng) {
    return duo__zk_range_verify_ex(ec, pk, bind, ckey, in, in_len, 1, rng);
}

int duo_zk_range_verify(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind, const BIGNUM *ckey,
                        const uint8_t *in, size_t in_len) {
    return duo__zk_range_verify_ex(ec, pk, bind, ckey, in, in_len, 1, NULL);
}
