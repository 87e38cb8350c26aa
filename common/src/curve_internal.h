/* The curve context and its backend table (curve_k1.c: libsecp256k1,
 * curve_p256.c: OpenSSL). curve.c checks arguments and does everything that
 * only needs q; a backend does what needs the curve's own arithmetic.
 * Private to common/src. */
#ifndef DUOSIGN_CURVE_INTERNAL_H
#define DUOSIGN_CURVE_INTERNAL_H

#include <openssl/ec.h>

#include "duosign/curve.h"
#include "scalar256.h"

/* Every scalar argument is 32 big-endian bytes; the scalar functions return
 * 1 on success and 0 when an input is out of range or the result is zero,
 * in constant time (the caller declassifies that one bit). The point
 * functions return DUO_OK or a DUO_E_ code. */
typedef struct duo__ec_ops {
    int (*init)(duo_ec *ec, const duo_rng *rng);
    void (*release)(duo_ec *ec);
    int (*scalar_valid)(const duo_ec *ec, const uint8_t s[32]);
    int (*scalar_add)(const duo_ec *ec, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]);
    int (*scalar_mul)(const duo_ec *ec, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]);
    int (*scalar_negate)(const duo_ec *ec, uint8_t out[32], const uint8_t a[32]);
    /* in: 33 bytes starting 02 or 03 (checked by the caller) */
    int (*point_parse)(const duo_ec *ec, duo_point *out, const uint8_t in[DUO_POINT_BYTES]);
    void (*point_serialize)(const duo_ec *ec, uint8_t out[DUO_POINT_BYTES], const duo_point *p);
    void (*point_serialize_full)(const duo_ec *ec, uint8_t out[DUO_POINT_FULL_BYTES], const duo_point *p);
    int (*point_mul_base)(const duo_ec *ec, duo_point *out, const uint8_t k[32]);
    int (*point_mul)(const duo_ec *ec, duo_point *out, const duo_point *p, const uint8_t k[32]);
    int (*point_add)(const duo_ec *ec, duo_point *out, const duo_point *a, const duo_point *b);
    int (*point_eq_var)(const duo_ec *ec, const duo_point *a, const duo_point *b);
    /* sig: r||s with r, s in [1, q-1] and s low (checked by the caller) */
    int (*ecdsa_verify)(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES], const uint8_t digest[32],
                        const duo_point *pub);
} duo__ec_ops;

struct duo_ec {
    duo_curve curve;
    const duo__ec_ops *ops;
    const char *group_name; /* OpenSSL's name */
    uint8_t q_bytes[32];    /* q, big-endian */
    BIGNUM *q;              /* group order */
    BIGNUM *q_minus_2;      /* Fermat exponent (public) */
    BIGNUM *half_q;         /* (q - 1) / 2: the largest low S */
    BN_MONT_CTX *mont_q;    /* Montgomery context for q; read-only after _new */
    /* backends */
    secp256k1_context *secp; /* secp256k1 */
    EC_GROUP *group;         /* P-256 */
    BIGNUM *p;               /* P-256: the field prime (x < p on parse) */
    duo__mod256 mod;         /* P-256: constant-time scalars mod q */
};

/* DER-encodes r||s (r, s in [1, q-1]) for OpenSSL's verifiers and the
 * outputs. DUO_OK, DUO_E_BUFFER_TOO_SMALL (*der_len then says how much). */
int duo__ecdsa_der(uint8_t *der, size_t *der_len, const uint8_t sig[DUO_ECDSA_SIG_BYTES]);

extern const duo__ec_ops duo__ec_k1_ops;
extern const duo__ec_ops duo__ec_p256_ops;

#endif
