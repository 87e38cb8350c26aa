/* duosign: Pedersen commitments over NIST P-521, for the range proof
 * (zk_range.c). Internal to common/.
 *
 *     Com(m; s) = m*G + s*H
 *
 * G is P-521's generator; H is derived from a public string by
 * try-and-increment (pedersen521.c), so nobody knows log_G(H), and the
 * commitment binds under the discrete logarithm in P-521 (about 2^260
 * work). P-521 is used (not the signing curve) because the range proof needs
 * a group of prime order n > 2^466 that holds its integers without wrapping
 * (docs/PROTOCOL.md, "Range proof v2"). Its cofactor is 1: every point on the
 * curve is in the group. With s uniform in [0, n) the commitment hides m
 * perfectly.
 *
 * Thread-safe: the group, H and the fixed-base tables are built once
 * (pthread_once) and only read afterwards. */
#ifndef DUOSIGN_PEDERSEN521_H
#define DUOSIGN_PEDERSEN521_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/ec.h>

#include "duosign/errors.h"

/* Compressed encoding of a point: 0x02/0x03 || x (66 bytes). */
#define DUO_PED_POINT_BYTES 67u
/* Bytes of a scalar mod n (n < 2^521). */
#define DUO_PED_SCALAR_BYTES 66u

/* The group (P-521) and its order n; NULL if it could not be built. */
const EC_GROUP *duo__ped_group(void);
const BIGNUM *duo__ped_order(void);
/* H as a point of duo__ped_group(). */
const EC_POINT *duo__ped_h(void);

/* out = m*G + s*H with 0 <= m, s < n (DUO_E_INVALID_ARG otherwise). Two
 * fixed-base multiplications through OpenSSL's constant-time P-521 tables:
 * m and s may be secret. */
DUO_WARN_UNUSED_RESULT int duo__ped_commit(EC_POINT *out, const BIGNUM *m, const BIGNUM *s, BN_CTX *ctx);

/* Encodes a point that is not the point at infinity (DUO_E_INTERNAL for it). */
DUO_WARN_UNUSED_RESULT int duo__ped_point_encode(uint8_t out[DUO_PED_POINT_BYTES], const EC_POINT *p, BN_CTX *ctx);
/* Parses a compressed point: on the curve, not infinity; DUO_E_BAD_POINT
 * otherwise. */
DUO_WARN_UNUSED_RESULT int duo__ped_point_decode(EC_POINT *p, const uint8_t in[DUO_PED_POINT_BYTES], BN_CTX *ctx);

/* DUO_OK if g*G + h*H + sum_i k[i]*P[i] is the point at infinity, else
 * DUO_E_BAD_PROOF. One multi-scalar multiplication; variable time (public
 * values only). */
DUO_WARN_UNUSED_RESULT int duo__ped_msm_is_zero(const BIGNUM *g, const BIGNUM *h, size_t num, const EC_POINT *const *p,
                                                const BIGNUM *const *k, BN_CTX *ctx);

#endif
