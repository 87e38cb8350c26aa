/* duosign: internal entry points of zk_paillier.c. Not part of the public
 * API: the Jacobi symbol, the range verifier's non-batched mode, helpers
 * shared with zk_range.c, and test-only
 * provers that skip the honest prover's input checks (so tests can show that
 * a dishonest prover's output is rejected). Nothing outside common/ and tests/
 * may include this header. */
#ifndef DUOSIGN_ZK_PAILLIER_INTERNAL_H
#define DUOSIGN_ZK_PAILLIER_INTERNAL_H

#include <openssl/bn.h>

#include "duosign/zk_paillier.h"

/* *out = Jacobi(a / n) in {-1, 0, 1} for odd n > 1 and any a >= 0.
 * Variable time: public inputs only. DUO_E_INVALID_ARG for even or
 * non-positive n. */
DUO_WARN_UNUSED_RESULT int duo__jacobi_var(int *out, const BIGNUM *a, const BIGNUM *n, BN_CTX *ctx);

/* TEST ONLY. L_N "proof" with sigma_i = rho_i^d mod n for a caller-chosen
 * exponent d (the honest prover uses d = N^-1 mod phi(N)). Lets tests run a
 * prover on a modulus with gcd(N, phi(N)) != 1. */
DUO_WARN_UNUSED_RESULT int duo__zk_ln_prove_exp(const BIGNUM *n, unsigned bits, const BIGNUM *d,
                                                const duo_binding *bind, uint8_t *out, size_t out_len);

/* TEST ONLY. The Pi-mod prover run on raw primes p, q without checking that
 * they are Blum primes (the public prover refuses non-Blum keys). On a
 * non-Blum modulus the fourth roots it computes are wrong, so the output must
 * fail verification. */
DUO_WARN_UNUSED_RESULT int duo__zk_mod_prove_pq(const BIGNUM *p, const BIGNUM *q, unsigned bits,
                                                const duo_binding *bind, const duo_rng *rng, uint8_t *out,
                                                size_t out_len);

/* TEST ONLY. The range prover (zk_range.c) without the x in [0, l) check:
 * x may be any value in [0, N), read as the signed value x - N when
 * x > N/2. Runs the honest algorithm on it (C commits to x mod n, z = alpha
 * + e x over the integers, z_k = x + w_j); where neither x + w_j is in
 * [l, 2l) it sends z_k = l, so the proof passes the verifier's range checks
 * and must be caught by the commitment equations. Not constant time. */
DUO_WARN_UNUSED_RESULT int duo__zk_range_prove_unchecked(const duo_ec *ec, const duo_paillier_priv *sk,
                                                         const duo_binding *bind, const BIGNUM *ckey, const BIGNUM *x,
                                                         const BIGNUM *r, const duo_rng *rng, uint8_t *out,
                                                         size_t out_len);

/* TEST ONLY. y = the i-th Pi-mod challenge for (bind, N, bits, w), exactly as
 * prover and verifier derive it, so tests can build Pi-mod proofs by hand. */
DUO_WARN_UNUSED_RESULT int duo__zk_mod_challenge(BIGNUM *y, const BIGNUM *n, unsigned bits, const duo_binding *bind,
                                                 const BIGNUM *w, unsigned i);

/* TEST ONLY. As duo__zk_range_prove_unchecked, but where neither x + w_j is
 * in [l, 2l) it sends the true z_k = x + w_j (for a j whose z_k is
 * non-negative and fits the 32-byte field; DUO_E_INVALID_ARG if neither
 * does), so every commitment equation holds and only the verifier's
 * z_k in [l, 2l) check rejects it. */
DUO_WARN_UNUSED_RESULT int duo__zk_range_prove_raw_z(const duo_ec *ec, const duo_paillier_priv *sk,
                                                     const duo_binding *bind, const BIGNUM *ckey, const BIGNUM *x,
                                                     const BIGNUM *r, const duo_rng *rng, uint8_t *out, size_t out_len);

/* Range verifier with an explicit mode: batch = 1 checks all commitment
 * equations with one random linear combination (random 128-bit coefficients
 * from rng, NULL = default source) in one multi-scalar multiplication;
 * batch = 0 checks each equation separately (the reference the tests
 * compare against). */
DUO_WARN_UNUSED_RESULT int duo__zk_range_verify_ex(const duo_ec *ec, const duo_paillier_pub *pk,
                                                   const duo_binding *bind, const BIGNUM *ckey, const uint8_t *in,
                                                   size_t in_len, int batch, const duo_rng *rng);

/* Helpers shared by zk_paillier.c and zk_range.c. */
/* Largest supported modulus, in bytes (3072 bits). */
#define DUO_ZK_NB_MAX 384u
/* bits / 8 for a supported modulus size, else 0. */
size_t duo__zk_nbytes(unsigned bits);
/* Sets BN_FLG_CONSTTIME. */
void duo__zk_bn_secret(BIGNUM *b);
/* Starts a proof transcript: domain, binding, u64 "bits", bn "N". */
DUO_WARN_UNUSED_RESULT int duo__zk_start(duo_transcript *t, const char *domain, const duo_binding *bind,
                                         const BIGNUM *n, unsigned bits);
/* Reads a big-endian integer and checks lo <= v < hi (lo NULL: 0, hi NULL:
 * no bound): DUO_E_BAD_PROOF outside. */
DUO_WARN_UNUSED_RESULT int duo__zk_read_range(BIGNUM *v, const uint8_t *in, size_t len, const BIGNUM *lo,
                                              const BIGNUM *hi);
/* v as exactly len big-endian bytes (DUO_E_INTERNAL if it does not fit). */
DUO_WARN_UNUSED_RESULT int duo__zk_write_fixed(uint8_t *out, size_t len, const BIGNUM *v);

#endif
