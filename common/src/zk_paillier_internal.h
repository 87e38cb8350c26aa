/* duosign: internal entry points of zk_paillier.c. Not part of the public
 * API: the Jacobi symbol, the verifiers' non-batched mode, and test-only
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

/* TEST ONLY. The range prover without the x in [0, l) check: x may be any
 * value in [0, N). Runs the honest algorithm (z = x + w_j mod N, j chosen as
 * for an honest x); where neither x + w_j is in [l, 2l) it sends z = l, so
 * the proof passes the verifier's range checks and must be caught by the
 * encryption equations. */
DUO_WARN_UNUSED_RESULT int duo__zk_range_prove_unchecked(const duo_ec *ec, const duo_paillier_priv *sk,
                                                         const duo_binding *bind, const BIGNUM *ckey, const BIGNUM *x,
                                                         const BIGNUM *r, const duo_rng *rng, uint8_t *out,
                                                         size_t out_len);

/* TEST ONLY. A dishonest range prover (no x in [0, l) check). Where neither
 * x + w_j is in [l, 2l) it sends the true z = x + w_j (for a j whose z fits
 * the 32-byte field; DUO_E_INVALID_ARG if neither does), so the encryption
 * equation holds and only the verifier's z in [l, 2l) check rejects it. With
 * wide_u it also draws u in [l, 2l), so the e = 0 openings w1 = u + l lie in
 * [2l, 3l), always sent first (w_a = w1, w_b = u), so that only the
 * verifier's w < 2l bound rejects them; with x = 0 every e = 1 answer z = u
 * is in range. */
DUO_WARN_UNUSED_RESULT int duo__zk_range_prove_dishonest(const duo_ec *ec, const duo_paillier_priv *sk,
                                                         const duo_binding *bind, const BIGNUM *ckey, const BIGNUM *x,
                                                         const BIGNUM *r, const duo_rng *rng, int wide_u, uint8_t *out,
                                                         size_t out_len);

/* TEST ONLY. y = the i-th Pi-mod challenge for (bind, N, bits, w), exactly as
 * prover and verifier derive it, so tests can build Pi-mod proofs by hand. */
DUO_WARN_UNUSED_RESULT int duo__zk_mod_challenge(BIGNUM *y, const BIGNUM *n, unsigned bits, const duo_binding *bind,
                                                 const BIGNUM *w, unsigned i);

/* Range verifier with an explicit mode: batch = 1 checks all encryption
 * equations with one randomised product test (random 64-bit exponents from
 * rng, NULL = default source); batch = 0 checks each equation separately (the
 * reference the tests compare against). */
DUO_WARN_UNUSED_RESULT int duo__zk_range_verify_ex(const duo_ec *ec, const duo_paillier_pub *pk,
                                                   const duo_binding *bind, const BIGNUM *ckey, const uint8_t *in,
                                                   size_t in_len, int batch, const duo_rng *rng);

#endif
