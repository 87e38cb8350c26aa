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

/* A unit from the hash fails only if the hash output shares a factor with N. */
#define DERIVE_ATTEMPTS 64u
#define NB_MAX DUO_ZK_NB_MAX

/* ------------------------------------------------------------ helpers */

size_t duo__zk_nbytes(unsigned bits) { return duo_paillier_bits_supported(bits) ? (size_t)bits / 8u : 0u; }

void duo__zk_bn_secret(BIGNUM *b) { BN_set_flags(b, BN_FLG_CONSTTIME); }

/* Starts a proof transcript: domain, binding, bits, N. */
int duo__zk_start(duo_transcript *t, const char *domain, const duo_binding *bind, const BIGNUM *n, unsigned bits) {
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
int duo__zk_read_range(BIGNUM *v, const uint8_t *in, size_t len, const BIGNUM *lo, const BIGNUM *hi) {
    if (BN_bin2bn(in, (int)len, v) == NULL) return DUO_E_NOMEM;
    if (lo != NULL && BN_cmp(v, lo) < 0) return DUO_E_BAD_PROOF;
    if (hi != NULL && BN_cmp(v, hi) >= 0) return DUO_E_BAD_PROOF;
    return DUO_OK;
}

int duo__zk_write_fixed(uint8_t *out, size_t len, const BIGNUM *v) {
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
    duo__zk_bn_secret(k->p);
    duo__zk_bn_secret(k->q);
    duo__zk_bn_secret(k->pm1);
    duo__zk_bn_secret(k->qm1);
    duo__zk_bn_secret(k->qinv);
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
    duo__zk_bn_secret(bp);
    duo__zk_bn_secret(bq);
    duo__zk_bn_secret(xp);
    duo__zk_bn_secret(xq);
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
    duo__zk_bn_secret(t);
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

size_t duo_zk_ln_bytes(unsigned bits) { return (size_t)DUO_ZK_LN_REPS * duo__zk_nbytes(bits); }

/* Either k (honest, CRT) or d (test-only, sigma = rho^d mod n) is set. */
static int ln_prove_impl(const BIGNUM *n, unsigned bits, const crt_key *k, const BIGNUM *dp, const BIGNUM *dq,
                         const BIGNUM *d, const duo_binding *bind, uint8_t *out, size_t out_len) {
    int r = DUO_E_NOMEM;
    unsigned i;
    size_t nb = duo__zk_nbytes(bits);
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
    if ((r = duo__zk_start(&t, LN_DOMAIN, bind, n, bits)) != DUO_OK) goto out;
    for (i = 0; i < DUO_ZK_LN_REPS; i++) {
        if ((r = derive_unit(rho, &t, "rho", i, n, nb, ctx)) != DUO_OK) goto out;
        if (k != NULL) {
            r = crt_exp(sigma, rho, dp, dq, k, ctx);
        } else {
            r = BN_mod_exp(sigma, rho, d, n, ctx) ? DUO_OK : DUO_E_INTERNAL;
        }
        if (r != DUO_OK || (r = duo__zk_write_fixed(out + (size_t)i * nb, nb, sigma)) != DUO_OK) goto out;
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
    duo__zk_bn_secret(dp);
    duo__zk_bn_secret(dq);
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
    if ((nb = duo__zk_nbytes(bits)) == 0) return DUO_E_UNSUPPORTED;
    if (in_len != duo_zk_ln_bytes(bits)) return DUO_E_BAD_FIELD;
    if ((r = duo_paillier_pub_modulus_check(pk)) != DUO_OK) return r;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    r = DUO_E_NOMEM;
    BN_CTX_start(ctx);
    rho = BN_CTX_get(ctx);
    sigma = BN_CTX_get(ctx);
    v = BN_CTX_get(ctx);
    if (v == NULL) goto out;
    if ((r = duo__zk_start(&t, LN_DOMAIN, bind, n, bits)) != DUO_OK) goto out;
    for (i = 0; i < DUO_ZK_LN_REPS; i++) {
        if ((r = duo__zk_read_range(sigma, in + (size_t)i * nb, nb, BN_value_one(), n)) != DUO_OK) goto out;
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
    size_t nb = duo__zk_nbytes(bits);
    return nb == 0 ? 0 : nb + (size_t)DUO_ZK_MOD_REPS * (1u + nb);
}

int duo__zk_mod_prove_pq(const BIGNUM *p, const BIGNUM *q, unsigned bits, const duo_binding *bind, const duo_rng *rng,
                         uint8_t *out, size_t out_len) {
    int r = DUO_E_NOMEM, jac = 0, wp = 0, wq = 0;
    unsigned i, attempt;
    size_t nb = duo__zk_nbytes(bits), off;
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
    duo__zk_bn_secret(ep_root);
    duo__zk_bn_secret(eq_root);
    duo__zk_bn_secret(ep_inv);
    duo__zk_bn_secret(eq_inv);
    duo__zk_bn_secret(p_half);
    duo__zk_bn_secret(q_half);
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
    if ((r = duo__zk_write_fixed(out, nb, w)) != DUO_OK) goto out;
    if ((r = duo__zk_start(&t, MOD_DOMAIN, bind, k.n, bits)) != DUO_OK) goto out;
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
        if ((r = duo__zk_write_fixed(out + off + 1u, nb, x)) != DUO_OK) goto out;
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
    size_t nb = duo__zk_nbytes(bits);
    duo_transcript t = {NULL, 0};
    BN_CTX *ctx;
    if (y == NULL || n == NULL || bind == NULL || w == NULL) return DUO_E_INVALID_ARG;
    if (nb == 0) return DUO_E_UNSUPPORTED;
    if ((ctx = BN_CTX_new()) == NULL) return DUO_E_NOMEM;
    if ((r = duo__zk_start(&t, MOD_DOMAIN, bind, n, bits)) == DUO_OK) {
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
    if ((nb = duo__zk_nbytes(bits)) == 0) return DUO_E_UNSUPPORTED;
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
    if ((r = duo__zk_read_range(w, in, nb, BN_value_one(), n)) != DUO_OK) goto end;
    if ((r = duo__jacobi_var(&jac, w, n, ctx)) != DUO_OK) goto end;
    /* Jacobi(w, N) = -1. Without it a prover may send a w sharing a factor
     * with N (Jacobi 0): w = p makes every (-1)^a p y_i a fourth power mod p
     * (it is 0 there), so N = p * q passes for any p as long as q is a Blum
     * prime (tests/unit/test_zk_paillier.c, test_mod_jacobi). */
    if (jac != -1) {
        r = DUO_E_BAD_PROOF;
        goto end;
    }
    if ((r = duo__zk_start(&t, MOD_DOMAIN, bind, n, bits)) != DUO_OK) goto end;
    duo_transcript_bn(&t, "w", w);
    for (i = 0, off = nb; i < DUO_ZK_MOD_REPS; i++, off += 1u + nb) {
        uint8_t ab = in[off];
        if (ab > 3u) {
            r = DUO_E_BAD_PROOF;
            goto end;
        }
        if ((r = duo__zk_read_range(x, in + off + 1u, nb, BN_value_one(), n)) != DUO_OK) goto end;
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
