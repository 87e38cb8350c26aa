/* duosign: Paillier encryption over OpenSSL BIGNUM, g = N + 1.
 *
 * Enc(m; r) = (1 + m*N) * r^N mod N^2. The factor rn = r^N mod N^2 depends
 * only on the public key, so it can be computed ahead of time
 * (duo_paillier_rn) and passed to duo_paillier_encrypt; a factor is used for
 * exactly one encryption. Decryption uses the CRT with constant-time
 * exponentiation (BN_mod_exp_mont_consttime) modulo p^2 and q^2.
 *
 * Moduli are generated from Blum primes (p = q = 3 mod 4) each with its top two
 * bits set, so N has exactly `bits` bits, and p^2, q^2 exactly `bits` bits.
 * Wire encodings are fixed-length big-endian: N in bits/8 bytes, a
 * ciphertext in 2*bits/8 bytes. */
#ifndef DUOSIGN_PAILLIER_H
#define DUOSIGN_PAILLIER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>

#include "duosign/errors.h"
#include "duosign/rng.h"

#define DUO_PAILLIER_BITS_DEFAULT 3072u
#define DUO_PAILLIER_BITS_MIN 2048u
/* Moduli with any prime factor below this bound are rejected (primes below
 * 2^16 are sieved by one gcd with their product). */
#define DUO_PAILLIER_SMALL_PRIME_BOUND 65536u

typedef struct duo_paillier_pub duo_paillier_pub;
typedef struct duo_paillier_priv duo_paillier_priv;

/* 1 if bits is a supported modulus size (2048 or 3072), else 0. */
int duo_paillier_bits_supported(unsigned bits);

/* A prime p = 3 mod 4 of exactly bits/2 bits with its two top bits set
 * (so p >= 2^(bits/2 - 1/2)). Uses OpenSSL's CSPRNG; slow (tens to hundreds
 * of ms); meant for the cloud's background prime pool. */
DUO_WARN_UNUSED_RESULT int duo_paillier_blum_prime(BIGNUM *out, unsigned bits);

/* Builds a private key from two such primes (copied). Checks p != q, both
 * 3 mod 4, both of bits/2 bits with top two bits set, N of exactly `bits`
 * bits. DUO_E_INVALID_ARG otherwise. */
DUO_WARN_UNUSED_RESULT int duo_paillier_priv_from_primes(duo_paillier_priv **out, const BIGNUM *p, const BIGNUM *q,
                                                         unsigned bits);
/* Generates two primes and the key. */
DUO_WARN_UNUSED_RESULT int duo_paillier_keygen(duo_paillier_priv **out, unsigned bits);
/* Wipes and frees; NULL is a no-op. */
void duo_paillier_priv_free(duo_paillier_priv *sk);
/* The public half, owned by sk. */
const duo_paillier_pub *duo_paillier_priv_pub(const duo_paillier_priv *sk);
/* The secret primes (owned by sk; flagged constant-time). */
const BIGNUM *duo_paillier_priv_p(const duo_paillier_priv *sk);
const BIGNUM *duo_paillier_priv_q(const duo_paillier_priv *sk);
/* phi(N) = (p-1)(q-1) (secret; owned by sk). */
const BIGNUM *duo_paillier_priv_phi(const duo_paillier_priv *sk);
/* Number of decryptions performed with sk (tests count them). */
unsigned long duo_paillier_priv_decryptions(const duo_paillier_priv *sk);

/* Loads a received modulus: exactly bits/8 bytes, big-endian, and runs
 * duo_paillier_modulus_check. DUO_E_BAD_MODULUS on any failure. */
DUO_WARN_UNUSED_RESULT int duo_paillier_pub_parse(duo_paillier_pub **out, const uint8_t *n, size_t n_len,
                                                  unsigned bits);
/* Modulus checks: exactly `bits` bits, odd, not prime, not a perfect square,
 * no prime factor below DUO_PAILLIER_SMALL_PRIME_BOUND. DUO_OK or DUO_E_BAD_MODULUS. */
DUO_WARN_UNUSED_RESULT int duo_paillier_modulus_check(const BIGNUM *n, unsigned bits);
/* duo_paillier_modulus_check(N, bits) for pk's N, remembered: a key made by
 * duo_paillier_pub_parse (which ran the check) or duo_paillier_pub_dup of
 * one answers DUO_OK at once; any other key runs the check (~4 ms at 2048
 * bits). The zero-knowledge verifiers call it instead of re-running the
 * check for the same received N (issue 22: 3 x 4 ms of the device's
 * enrolment). */
DUO_WARN_UNUSED_RESULT int duo_paillier_pub_modulus_check(const duo_paillier_pub *pk);
DUO_WARN_UNUSED_RESULT int duo_paillier_pub_dup(duo_paillier_pub **out, const duo_paillier_pub *pk);
void duo_paillier_pub_free(duo_paillier_pub *pk);
unsigned duo_paillier_pub_bits(const duo_paillier_pub *pk);
const BIGNUM *duo_paillier_pub_n(const duo_paillier_pub *pk);
const BIGNUM *duo_paillier_pub_n2(const duo_paillier_pub *pk);
/* Writes N as bits/8 bytes. */
DUO_WARN_UNUSED_RESULT int duo_paillier_pub_serialize(const duo_paillier_pub *pk, uint8_t *out, size_t out_len);

/* rn = r^N mod N^2 for a fresh uniform r in Z*_N drawn from rng. */
DUO_WARN_UNUSED_RESULT int duo_paillier_rn(const duo_paillier_pub *pk, BIGNUM *rn, const duo_rng *rng);
/* rn = r^N mod N^2 for a given r in Z*_N (proofs that open r). Checks r. */
DUO_WARN_UNUSED_RESULT int duo_paillier_rn_from_r(const duo_paillier_pub *pk, BIGNUM *rn, const BIGNUM *r);
/* Same, faster with the factorisation (CRT); for the key owner's proofs. */
DUO_WARN_UNUSED_RESULT int duo_paillier_rn_from_r_priv(const duo_paillier_priv *sk, BIGNUM *rn, const BIGNUM *r);
/* Uniform r in Z*_N. */
DUO_WARN_UNUSED_RESULT int duo_paillier_random_unit(const duo_paillier_pub *pk, BIGNUM *r, const duo_rng *rng);

/* c = (1 + m*N) * rn mod N^2. m must be in [0, N); rn a valid unit mod N^2
 * (DUO_E_INVALID_ARG otherwise). Time independent of m's value. */
DUO_WARN_UNUSED_RESULT int duo_paillier_encrypt(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *m,
                                                const BIGNUM *rn);
/* Constant-time variant for a SECRET plaintext m given as m_len big-endian
 * bytes (1 <= m_len <= bits/8 - 16): c = (1 + m*N) * rn mod N^2 with no
 * branch or index on m (fixed-width arithmetic; see paillier.c). rn (secret)
 * is not checked: the caller checks the public ciphertext it sends. */
DUO_WARN_UNUSED_RESULT int duo_paillier_encrypt_fixed(const duo_paillier_pub *pk, BIGNUM *c, const uint8_t *m,
                                                      size_t m_len, const BIGNUM *rn);
/* c = a * b mod N^2 for secret factors (Montgomery only, no BN_div); a, b must
 * be below N^2 (only their limb count is checked). */
DUO_WARN_UNUSED_RESULT int duo_paillier_add_secret(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *a,
                                                   const BIGNUM *b);
/* m = Dec(c) in [0, N). Validates c first (DUO_E_BAD_CIPHERTEXT). CRT,
 * constant-time exponentiations. Counts one decryption. */
DUO_WARN_UNUSED_RESULT int duo_paillier_decrypt(const duo_paillier_priv *sk, BIGNUM *m, const BIGNUM *c);
/* c = a * b mod N^2 (plaintexts add). */
DUO_WARN_UNUSED_RESULT int duo_paillier_add(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *a, const BIGNUM *b);
/* c = a^k mod N^2 (plaintext times k), k in [0, N), constant time in k. */
DUO_WARN_UNUSED_RESULT int duo_paillier_mul(const duo_paillier_pub *pk, BIGNUM *c, const BIGNUM *a, const BIGNUM *k);
/* 0 < c < N^2 and gcd(c, N) = 1: DUO_OK or DUO_E_BAD_CIPHERTEXT. */
DUO_WARN_UNUSED_RESULT int duo_paillier_ciphertext_check(const duo_paillier_pub *pk, const BIGNUM *c);
/* Fixed-length (2*bits/8 bytes) encoding; parse also runs the check. */
size_t duo_paillier_ciphertext_bytes(const duo_paillier_pub *pk);
DUO_WARN_UNUSED_RESULT int duo_paillier_ciphertext_parse(const duo_paillier_pub *pk, BIGNUM *c, const uint8_t *in,
                                                         size_t in_len);
DUO_WARN_UNUSED_RESULT int duo_paillier_ciphertext_serialize(const duo_paillier_pub *pk, uint8_t *out, size_t out_len,
                                                             const BIGNUM *c);

/* Uniform value in [0, bound) from rng (rejection sampling; for nonces such as
 * rho, a, b, w). Sets BN_FLG_CONSTTIME on out. */
DUO_WARN_UNUSED_RESULT int duo_bn_random_below(BIGNUM *out, const BIGNUM *bound, const duo_rng *rng);

/* Fixed-width big-endian helpers for secrets (no BIGNUM, no data-dependent
 * branch): out (out_len bytes) = a * b + c mod 2^(8*out_len); out_len <= 768.
 * duo_random_below_be: uniform out in [0, bound) (len bytes each, bound
 * public), rejection sampling with a constant-time comparison. */
DUO_WARN_UNUSED_RESULT int duo_be_muladd(uint8_t *out, size_t out_len, const uint8_t *a, size_t a_len, const uint8_t *b,
                                         size_t b_len, const uint8_t *c, size_t c_len);
DUO_WARN_UNUSED_RESULT int duo_random_below_be(uint8_t *out, const uint8_t *bound, size_t len, const duo_rng *rng);

#endif
