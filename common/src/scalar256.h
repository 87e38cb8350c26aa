/* Constant-time arithmetic mod a 256-bit odd modulus q (2^255 < q < 2^256),
 * on 8 little-endian 32-bit limbs, for curves whose library has no scalar API
 * (P-256 over OpenSSL: BN_mod_mul and friends branch on the operands' sizes).
 * Every function runs the same instructions whatever the values; results
 * are fully reduced. Private to common/src (curve_p256.c). */
#ifndef DUOSIGN_SCALAR256_H
#define DUOSIGN_SCALAR256_H

#include <stdint.h>

#include <openssl/bn.h>

typedef struct duo__mod256 {
    uint32_t q[8];  /* the modulus */
    uint32_t r2[8]; /* 2^512 mod q, to leave the Montgomery domain in one step */
    uint32_t n0;    /* -q^-1 mod 2^32 */
} duo__mod256;

/* Sets m from q (public). Returns 1, or 0 if q is even or not 256 bits. */
int duo__mod256_init(duo__mod256 *m, const BIGNUM *q);
/* 1 if the 32 big-endian bytes s are in [1, q-1], else 0. */
int duo__mod256_valid(const duo__mod256 *m, const uint8_t s[32]);
/* out = a + b, a * b, -a mod q on 32-byte big-endian values already in
 * [1, q-1] (the caller checks). Return 1 if the result is nonzero, else 0.
 * out may alias an input. */
int duo__mod256_add(const duo__mod256 *m, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]);
int duo__mod256_mul(const duo__mod256 *m, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]);
int duo__mod256_negate(const duo__mod256 *m, uint8_t out[32], const uint8_t a[32]);

#endif
