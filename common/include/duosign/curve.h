/* duosign: curve points, scalars mod q, and ECDSA helpers, for the curve of
 * a key (DESIGN 8.1): secp256k1 over libsecp256k1 0.2.0, P-256 over OpenSSL
 * (curve_k1.c, curve_p256.c; both constant time for secret scalars, see
 * docs/SECURITY.md "Curves"). One duo_ec per curve; every function works on
 * the curve of its ec, so engines do not know which curve they run on.
 *
 * q is the group order (256 bits on both curves). Scalars are 32-byte big-endian values in [1, q-1]
 * unless a function says otherwise; a duo_scalar may hold a secret, so wipe it
 * (duo_memzero) when done. Points are never infinity. */
#ifndef DUOSIGN_CURVE_H
#define DUOSIGN_CURVE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <secp256k1.h>

#include "duosign/errors.h"
#include "duosign/rng.h"
#include "duosign/vocab.h"

#define DUO_POINT_BYTES 33      /* compressed SEC1 encoding */
#define DUO_POINT_FULL_BYTES 65 /* uncompressed SEC1 encoding (04 || x || y) */
#define DUO_SCALAR_BYTES 32
#define DUO_ECDSA_SIG_BYTES 64 /* r || s, big-endian */
#define DUO_ECDSA_DER_MAX 72

/* A scalar mod q, big-endian. May be secret: MUST be wiped after use.
 * Functions taking a duo_scalar reject 0 and values >= q (DUO_E_BAD_SCALAR)
 * unless documented otherwise. */
typedef struct duo_scalar {
    uint8_t b[DUO_SCALAR_BYTES];
} duo_scalar;

/* A valid point other than infinity of one curve (the ec that made it):
 * secp256k1 keeps libsecp256k1's parsed form, P-256 the affine x || y
 * (big-endian), checked on the curve when made. Only the ec of the same
 * curve may read it. */
typedef struct duo_point {
    union {
        secp256k1_pubkey p; /* DUO_CURVE_SECP256K1 */
        uint8_t xy[64];     /* DUO_CURVE_P256 */
    };
} duo_point;

/* The curve context: the backend (a randomized libsecp256k1 context, or
 * OpenSSL's P-256 group) plus q. Immutable after creation; may be shared
 * read-only between threads. */
typedef struct duo_ec duo_ec;

/* Creates a context for curve (DUO_CURVE_SECP256K1 or DUO_CURVE_P256). The
 * secp256k1 context is randomized (side-channel blinding) with 32 bytes from
 * rng (default source if NULL); OpenSSL's P-256 code has no blinding input.
 * Returns DUO_OK, DUO_E_UNSUPPORTED (unknown curve), DUO_E_NOMEM, DUO_E_RNG. */
DUO_WARN_UNUSED_RESULT int duo_ec_new(duo_ec **out, duo_curve curve, const duo_rng *rng);
void duo_ec_free(duo_ec *ec);
/* The curve of ec. */
duo_curve duo_ec_curve(const duo_ec *ec);
/* The underlying libsecp256k1 context; NULL for any other curve. */
const secp256k1_context *duo_ec_secp(const duo_ec *ec);
/* The curve's OpenSSL group name ("prime256v1", "secp256k1") for keys,
 * certificates and verifiers built with OpenSSL. */
const char *duo_ec_group_name(const duo_ec *ec);

/* The CLI and config name of a curve ("p256", "secp256k1"); NULL if unknown. */
const char *duo_curve_name(duo_curve curve);
/* Parses a name from duo_curve_name (also "P-256", "prime256v1").
 * DUO_OK or DUO_E_UNSUPPORTED. */
DUO_WARN_UNUSED_RESULT int duo_curve_parse(const char *name, duo_curve *out);
/* 1 if curve is one this build implements, else 0. */
int duo_curve_valid(int curve);
/* q, the group order (read-only; do not free). */
const BIGNUM *duo_ec_order(const duo_ec *ec);

/* ---- scalars ---- */
/* Loads 32 big-endian bytes; DUO_E_BAD_SCALAR unless in [1, q-1]. Constant
 * time with respect to the value. */
DUO_WARN_UNUSED_RESULT int duo_scalar_parse(const duo_ec *ec, duo_scalar *out, const uint8_t in[32]);
/* Uniform in [1, q-1] (rejection sampling). */
DUO_WARN_UNUSED_RESULT int duo_scalar_random(const duo_ec *ec, duo_scalar *out, const duo_rng *rng);
/* Reduces any 32-byte string (e.g. a SHA-256 digest) mod q. The result may be
 * zero; returns DUO_E_BAD_SCALAR in that case (out is then all zero). */
DUO_WARN_UNUSED_RESULT int duo_scalar_reduce32(const duo_ec *ec, duo_scalar *out, const uint8_t in[32]);
/* out = a + b, a * b, -a, a^-1 mod q. DUO_E_BAD_SCALAR if an input is out of
 * range or the result is zero. out may alias an input. Constant time. */
DUO_WARN_UNUSED_RESULT int duo_scalar_add(const duo_ec *ec, duo_scalar *out, const duo_scalar *a, const duo_scalar *b);
DUO_WARN_UNUSED_RESULT int duo_scalar_mul(const duo_ec *ec, duo_scalar *out, const duo_scalar *a, const duo_scalar *b);
DUO_WARN_UNUSED_RESULT int duo_scalar_negate(const duo_ec *ec, duo_scalar *out, const duo_scalar *a);
DUO_WARN_UNUSED_RESULT int duo_scalar_inverse(const duo_ec *ec, duo_scalar *out, const duo_scalar *a);
/* Converts to/from an OpenSSL BIGNUM (for Paillier plaintexts). to_bn sets
 * BN_FLG_CONSTTIME on out. from_bn reduces mod q; DUO_E_BAD_SCALAR if the
 * result is zero. */
DUO_WARN_UNUSED_RESULT int duo_scalar_to_bn(const duo_scalar *a, BIGNUM *out);
DUO_WARN_UNUSED_RESULT int duo_scalar_from_bn_mod(const duo_ec *ec, duo_scalar *out, const BIGNUM *in);

/* ---- points ---- */
/* Parses a 33-byte compressed point; DUO_E_BAD_POINT for anything not on the
 * curve, x >= p, infinity, or not 33 bytes of 02/03 form (the same checks
 * and the same error on both curves). */
DUO_WARN_UNUSED_RESULT int duo_point_parse(const duo_ec *ec, duo_point *out, const uint8_t *in, size_t in_len);
void duo_point_serialize(const duo_ec *ec, uint8_t out[DUO_POINT_BYTES], const duo_point *p);
/* The uncompressed form (04 || x || y), for SubjectPublicKeyInfo and JWK. */
void duo_point_serialize_full(const duo_ec *ec, uint8_t out[DUO_POINT_FULL_BYTES], const duo_point *p);
/* out = k*G (k secret-safe). */
DUO_WARN_UNUSED_RESULT int duo_point_mul_base(const duo_ec *ec, duo_point *out, const duo_scalar *k);
/* out = k*P (k secret-safe). */
DUO_WARN_UNUSED_RESULT int duo_point_mul(const duo_ec *ec, duo_point *out, const duo_point *p, const duo_scalar *k);
/* out = a + b; DUO_E_BAD_POINT if the sum is infinity. */
DUO_WARN_UNUSED_RESULT int duo_point_add(const duo_ec *ec, duo_point *out, const duo_point *a, const duo_point *b);
/* 1 if equal, else 0 (variable time: public points only). */
int duo_point_eq_var(const duo_ec *ec, const duo_point *a, const duo_point *b);
/* r = x(P) mod q; DUO_E_BAD_SCALAR if r == 0. */
DUO_WARN_UNUSED_RESULT int duo_point_x_mod_q(const duo_ec *ec, duo_scalar *r, const duo_point *p);

/* ---- ECDSA (public data) ---- */
/* Normalises sig (r||s) to low-S in place (on both curves: P-256 verifiers
 * take either S, so one form everywhere costs nothing; DECISIONS.md).
 * DUO_E_BAD_SIGNATURE if r or s is 0 or >= q. */
DUO_WARN_UNUSED_RESULT int duo_ecdsa_normalize(const duo_ec *ec, uint8_t sig[DUO_ECDSA_SIG_BYTES]);
/* Verifies a low-S r||s over a 32-byte digest with the curve's own verifier
 * (libsecp256k1; OpenSSL's ECDSA for P-256). DUO_OK or DUO_E_BAD_SIGNATURE. */
DUO_WARN_UNUSED_RESULT int duo_ecdsa_verify(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES],
                                            const uint8_t digest[32], const duo_point *pub);
/* DER-encodes r||s. *der_len in: capacity, out: length. */
DUO_WARN_UNUSED_RESULT int duo_ecdsa_to_der(const duo_ec *ec, uint8_t *der, size_t *der_len,
                                            const uint8_t sig[DUO_ECDSA_SIG_BYTES]);

#endif
