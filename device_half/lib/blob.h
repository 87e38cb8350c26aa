/* duosign device library: the state blob codec (internal).
 *
 * Layout, versions 1 and 2 (all integers big-endian):
 *   "DUOS" | u16 version | u16 flags | u32 total length
 *   key_id[16] | x2_masked[32] | pin_salt[16] | Q[33]
 *   u16 curve (version 2 only; version 1 is secp256k1)
 *   u32 paillier_bits | N[bits/8] | ckey[2*bits/8]
 *   device_secret[32] | enrol sid[32]
 *   u16 address length | address
 *   u32 app data length | app data
 *   SHA-256 of every byte above [32]
 * A secp256k1 key is written as version 1, byte for byte as before curves
 * (so an older library still reads it); any other curve as version 2.
 * Version 3 (issue 16: a key with a role, or with a certificate) writes the
 * curve whatever it is, then u16 role after it, and after the app data
 *   u32 certificate length (0..DUO__BLOB_CERT_MAX) | certificate DER
 * (public: the key's X.509 certificate, checked by state.c and certs.c against Q).
 * A role-less key without a certificate is still written as version 1 or 2.
 * Version 4 (issue 12) is version 3 (curve, role, certificate, the role and
 * the certificate possibly absent) plus, after the certificate:
 *   u32 channel key number | channel public key[32]
 * the cloud's inner-channel key (X25519) the device pinned; it is written
 * whenever a key is pinned, and versions 1 to 3 (no pinned key) still parse.
 * (The inner branch's first version 4, version 2 plus the key, was never
 * written outside tests and is not read.)
 * The codec only checks the encoding (lengths, magic, version, digest, a
 * known curve);
 * state.c checks the values (point on curve, modulus, ciphertext).
 * Any failure is DUO_E_STATE_CORRUPT: a blob is used whole or not at all. */
#ifndef DUOSIGN_DEVICE_BLOB_H
#define DUOSIGN_DEVICE_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

#define DUO__BLOB_MAGIC "DUOS"
#define DUO__BLOB_VERSION 1u         /* secp256k1 keys */
#define DUO__BLOB_VERSION_CURVE 2u   /* keys of any other curve: adds the curve */
#define DUO__BLOB_VERSION_CERT 3u    /* role and certificate (issue 16) */
#define DUO__BLOB_VERSION_CHANNEL 4u /* version 3 plus the pinned channel key (issue 12) */
#define DUO__BLOB_CERT_MAX 16384u
#define DUO__BLOB_FLAG_CONFIRMED 0x0001u
#define DUO__BLOB_FLAGS_KNOWN 0x0001u
#define DUO__BLOB_ADDRESS_MAX 255u
#define DUO__BLOB_APP_MAX 65536u

typedef struct duo__blob_fields {
    uint16_t flags;
    uint8_t key_id[16];
    uint8_t x2_masked[32]; /* SECRET */
    uint8_t pin_salt[16];
    uint8_t q[33];
    int curve;                 /* duo_curve (0 encodes as secp256k1) */
    uint32_t paillier_bits;    /* 2048 or 3072 */
    const uint8_t *n;          /* bits/8 bytes */
    const uint8_t *ckey;       /* 2*bits/8 bytes */
    uint8_t device_secret[32]; /* SECRET */
    uint8_t sid[32];
    const char *address; /* not NUL-terminated after parse: use address_len */
    size_t address_len;
    const uint8_t *app;
    size_t app_len;
    int role;            /* duo_key_role (0 below version 3) */
    const uint8_t *cert; /* the key's certificate (DER), or NULL */
    size_t cert_len;
    int has_chkey; /* version 4: the pinned cloud channel key */
    uint32_t chkey_number;
    uint8_t chkey_pub[32];
} duo__blob_fields;

/* Serializes f. *out is allocated (duo_secure_malloc; free with
 * duo_secure_free). Returns DUO_OK, DUO_E_INVALID_ARG, DUO_E_NOMEM. */
DUO_WARN_UNUSED_RESULT int duo__blob_encode(uint8_t **out, size_t *out_len, const duo__blob_fields *f);
/* Parses in. Pointers in *f point into in. DUO_OK or DUO_E_STATE_CORRUPT. */
DUO_WARN_UNUSED_RESULT int duo__blob_decode(duo__blob_fields *f, const uint8_t *in, size_t in_len);

#endif
