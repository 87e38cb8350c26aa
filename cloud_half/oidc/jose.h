/* duosign-oidc: the JOSE pieces it needs (RFC 7515/7517/7518/7638), on
 * OpenSSL: base64url, ES256 signing and verification of compact JWS, a P-256
 * public JWK with its thumbprint as kid, and the pairwise subject.
 * Only ES256 exists here: a token with any other "alg" is refused, so "none"
 * and algorithm confusion cannot happen. */
#ifndef DUOSIGN_OIDC_JOSE_H
#define DUOSIGN_OIDC_JOSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "duosign/errors.h"

/* base64url without padding; out NUL-terminated (empty if it does not fit). */
void jose_b64url(char *out, size_t cap, const uint8_t *in, size_t len);
/* Decodes base64url (no padding, no other characters). Returns the length,
 * or -1 (bad character, too long for cap). */
long jose_b64url_decode(uint8_t *out, size_t cap, const char *in, size_t in_len);

/* The public JWK of a P-256 key ({"kty","crv","x","y","use","alg","kid"})
 * as JSON text, and its RFC 7638 thumbprint as kid. */
DUO_WARN_UNUSED_RESULT int jose_jwk_public(EVP_PKEY *pk, char *kid, size_t kid_cap, char *jwk, size_t jwk_cap);

/* Signs claims as a compact JWS {"alg":"ES256","typ":"JWT","kid":kid}.
 * Returns a malloc'd string (caller frees) or NULL. */
char *jose_sign_es256(EVP_PKEY *pk, const char *kid, json_t *claims);

/* Verifies a compact ES256 JWS with the public key pem. Returns DUO_OK and
 * *claims (caller json_decref) or DUO_E_BAD_SIGNATURE / DUO_E_DECODE. */
DUO_WARN_UNUSED_RESULT int jose_verify_es256(const char *jws, const char *pem, json_t **claims);

/* Pairwise subject (OIDC Core 8.1): base64url(HMAC-SHA256(secret,
 * lp(sector) || lp(citizen id))). secret: 32 bytes (SECRET). */
DUO_WARN_UNUSED_RESULT int jose_pairwise_sub(char *out, size_t cap, const uint8_t secret[32], const char *sector,
                                             const char *citizen_id);

/* base64url(SHA-256(s)): the PKCS S256 transform and our hashed handles. */
void jose_s256(char *out, size_t cap, const char *s);

#endif
