/* duosign: non-interactive zero-knowledge proofs about a Paillier key and
 * ciphertext, made by the key owner (cloud, P1) and checked by the device (P2)
 * at enrolment. All are Fiat-Shamir over the canonical transcript, bound to a
 * duo_binding; every received integer is range-checked before any
 * exponentiation. Proofs travel as flat byte strings of a fixed length that
 * depends only on the modulus size (the *_bytes functions).
 *
 * L_N  (duo_zk_ln_*): gcd(N, phi(N)) = 1. Goldberg-Reyzin-Sagga-Baldimtsi
 *      (ePrint 2018/057) with e = N: the prover sends N-th roots sigma_i of
 *      DUO_ZK_LN_REPS hash-derived rho_i in Z*_N; the verifier also requires no
 *      prime factor below DUO_PAILLIER_SMALL_PRIME_BOUND = 2^16. A cheating
 *      prover passes each repetition with probability <= 1/2^16, so 10
 *      repetitions give 2^-160.
 * Pi-mod (duo_zk_mod_*): N is a Paillier-Blum modulus (CGGMP21 Fig. 16),
 *      DUO_ZK_MOD_REPS = 80 repetitions, soundness 2^-80; defence in depth.
 *      Format v2 (issue 22): the fourth roots only, without CGGMP21's N-th
 *      roots z_i, whose statement (gcd(N, phi(N)) = 1) is L_N's: a passing
 *      Pi-mod means "Paillier-Blum" only together with a passing L_N for the
 *      same N and binding (the device checks L_N first).
 * L_P  (duo_zk_range_*, zk_range.c): ckey = Enc(x) with x in (-l, 2l), where
 *      l = floor(n_P256 / 3) on both curves (range proof v2, issue 22): a
 *      Pedersen commitment C to x over P-521, one equality proof between
 *      ckey's and C's plaintexts (128-bit challenge), and Lindell 2017's
 *      cut-and-choose (appendix A, DUO_ZK_RANGE_REPS = 128 repetitions) run
 *      on P-521 commitments instead of Paillier ciphertexts. Honest x in
 *      [0, l) always passes (no completeness failures); a passing proof
 *      guarantees x in (-l, 2l) mod N, i.e. |x| < q, under the discrete
 *      logarithm in P-521 (docs/PROTOCOL.md, "Range proof v2"). */
#ifndef DUOSIGN_ZK_PAILLIER_H
#define DUOSIGN_ZK_PAILLIER_H

#include "duosign/curve.h"
#include "duosign/paillier.h"
#include "duosign/transcript.h"

#define DUO_ZK_LN_REPS 10
#define DUO_ZK_MOD_REPS 80
#define DUO_ZK_RANGE_REPS 128

size_t duo_zk_ln_bytes(unsigned bits);
DUO_WARN_UNUSED_RESULT int duo_zk_ln_prove(const duo_paillier_priv *sk, const duo_binding *bind, uint8_t *out,
                                           size_t out_len);
/* DUO_OK, DUO_E_BAD_PROOF, or DUO_E_BAD_FIELD for a wrong length. */
DUO_WARN_UNUSED_RESULT int duo_zk_ln_verify(const duo_paillier_pub *pk, const duo_binding *bind, const uint8_t *in,
                                            size_t in_len);

size_t duo_zk_mod_bytes(unsigned bits);
DUO_WARN_UNUSED_RESULT int duo_zk_mod_prove(const duo_paillier_priv *sk, const duo_binding *bind, const duo_rng *rng,
                                            uint8_t *out, size_t out_len);
DUO_WARN_UNUSED_RESULT int duo_zk_mod_verify(const duo_paillier_pub *pk, const duo_binding *bind, const uint8_t *in,
                                             size_t in_len);

/* The range-proof bound l = floor(n_P256 / 3), the same on both curves (the
 * pool precomputes before it knows the curve); checks 2l < q for ec's q.
 * Honest x1 must be in [1, l). */
DUO_WARN_UNUSED_RESULT int duo_zk_range_bound(const duo_ec *ec, BIGNUM *l);
size_t duo_zk_range_bytes(unsigned bits);
/* Proves ckey = Enc(x; r) with x in [0, l). x and r are secret. */
DUO_WARN_UNUSED_RESULT int duo_zk_range_prove(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                                              const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng,
                                              uint8_t *out, size_t out_len);
DUO_WARN_UNUSED_RESULT int duo_zk_range_verify(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind,
                                               const BIGNUM *ckey, const uint8_t *in, size_t in_len);
/* Precomputed randomness for one enrolment's ckey and range proof: ckey's
 * encryption randomness (r and r^N mod N^2), and everything of the proof
 * that depends on neither x nor the session: the 128 repetitions' seeds and
 * their P-521 commitments, the equality proof's alpha, beta^N mod N^2,
 * gamma and B, and C's randomness. The cloud's background pool computes it
 * with the key (~64 ms at 2048 bits, the commitments' 257 P-521 points).
 * SECRET: the object holds r, r^N, the seeds, alpha, beta, gamma; it lives
 * in wiped, mlock()ed memory.
 * Single use: the ckey pair can be taken once
 * (duo_zk_range_precomp_take_enc) and the proof part consumed once
 * (duo_zk_range_prove_precomp); each is wiped when taken, and any further
 * use returns DUO_E_PROTO_STATE. Bound to the key it was made for: use with
 * another key returns DUO_E_INVALID_ARG (and still spends the object).
 * Not thread-safe: one owner at a time. */
typedef struct duo_zk_range_precomp duo_zk_range_precomp;
/* Draws the randomness above (two units r in Z*_N with r^N mod N^2 computed
 * with the factorisation, 257 P-521 commitments). ~64 ms at 2048 bits:
 * meant for a background thread. rng NULL: OpenSSL. */
DUO_WARN_UNUSED_RESULT int duo_zk_range_precomp_new(duo_zk_range_precomp **out, const duo_paillier_priv *sk,
                                                    const duo_rng *rng);
/* Wipes and frees (NULL-safe). */
void duo_zk_range_precomp_free(duo_zk_range_precomp *pc);
/* The ckey pair: r (flagged constant-time) and rn = r^N mod N^2, for
 * duo_paillier_encrypt(pk, ckey, x, rn) and then the proof's r. Once. */
DUO_WARN_UNUSED_RESULT int duo_zk_range_precomp_take_enc(duo_zk_range_precomp *pc, const duo_paillier_priv *sk,
                                                         BIGNUM *r, BIGNUM *rn);
/* duo_zk_range_prove with all of the proof's randomness taken from pc (same
 * proof distribution, same output format; rng is not used). Consumes pc's
 * proof part whatever the outcome. */
DUO_WARN_UNUSED_RESULT int duo_zk_range_prove_precomp(const duo_ec *ec, const duo_paillier_priv *sk,
                                                      const duo_binding *bind, const BIGNUM *ckey, const BIGNUM *x,
                                                      const BIGNUM *r, const duo_rng *rng, duo_zk_range_precomp *pc,
                                                      uint8_t *out, size_t out_len);
/* Same as duo_zk_range_verify, with the source of the verifier's batch
 * coins made explicit (duo_zk_range_verify uses the default source). The
 * P-521 commitment equations are checked together in one random linear
 * combination with 128-bit coefficients drawn after the proof arrived
 * (a wrong equation passes with probability <= 2^-128 per verification).
 * Like every range-proof check, it relies on L_N (gcd(N, phi(N)) = 1)
 * having been verified for the same key.
 * Verifiers return DUO_E_BAD_MODULUS if N fails duo_paillier_modulus_check
 * (duo_paillier_pub_modulus_check: once per key), DUO_E_BAD_CIPHERTEXT if
 * ckey is not in Z*_{N^2}, DUO_E_BAD_FIELD for a wrong length and
 * DUO_E_BAD_PROOF for anything else. */
DUO_WARN_UNUSED_RESULT int duo_zk_range_verify_rng(const duo_ec *ec, const duo_paillier_pub *pk,
                                                   const duo_binding *bind, const BIGNUM *ckey, const uint8_t *in,
                                                   size_t in_len, const duo_rng *rng);

#endif
