/* duosign: an OpenSSL EVP_PKEY for a public key given as a SEC1 point and a
 * curve name: the one place the cloud CA (checking a request against the
 * stored key) and the device builders (a request for the joint key) turn
 * duosign's encoded points into OpenSSL keys. */
#ifndef DUOSIGN_EC_PKEY_H
#define DUOSIGN_EC_PKEY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "duosign/errors.h"

/* Returns: OpenSSL's group name for a curve duosign accepts, by name
 * ("secp256k1"; "p256" (duo_curve_name), "P-256" and "prime256v1" ->
 * "prime256v1"), or NULL. (duo_ec_group_name in curve.h is the same for a
 * curve context.) */
const char *duo_openssl_group_name(const char *curve);

/* Builds a public EC key from a SEC1 point (33 compressed or 65
 * uncompressed bytes) on curve.
 * Returns: DUO_OK; DUO_E_UNSUPPORTED (another curve); DUO_E_BAD_POINT (not
 *          a point of that curve, or the wrong length); DUO_E_INVALID_ARG;
 *          DUO_E_INTERNAL.
 * Out:  *out, freed with EVP_PKEY_free. */
DUO_WARN_UNUSED_RESULT int duo_ec_pkey_from_point(EVP_PKEY **out, const char *curve, const uint8_t *point,
                                                  size_t point_len);

#endif
