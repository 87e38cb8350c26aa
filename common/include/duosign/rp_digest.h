/* duosign: what a relying party's request fixes (docs/RELYING_PARTIES.md).
 *
 * The verification code the RP and the device both show, the digest an
 * authentication signs, and the checks on the strings a request carries.
 * Shared by the cloud (which computes them for the RP and the device), the
 * device library (which recomputes them before asking for the PIN) and the
 * RP tools (which verify the result). Nothing here is secret. */
#ifndef DUOSIGN_RP_DIGEST_H
#define DUOSIGN_RP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

#define DUO_RP_DISPLAY_TEXT_MAX 200 /* bytes of UTF-8 (Smart-ID's displayText200) */
#define DUO_RP_CHALLENGE_MIN 32
#define DUO_RP_CHALLENGE_MAX 64
#define DUO_RP_SERVER_RANDOM_BYTES 32
#define DUO_RP_NAME_MAX 64
#define DUO_RP_AUTH_DOMAIN "duosign/v1/rp-auth"

/* The Smart-ID v2 verification code: SHA-256 of the raw digest bytes, its
 * last two bytes as a big-endian integer, mod 10000, as 4 digits with
 * leading zeros (SK's reference main.c). digest: 1..64 bytes.
 * Returns DUO_OK; DUO_E_INVALID_ARG (NULL or empty digest); DUO_E_INTERNAL.
 * Out: out, NUL-terminated. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_rp_verification_code(char out[5], const uint8_t *digest, size_t digest_len);

/* The digest an authentication signs with the citizen's authentication key:
 * the transcript (transcript.h: every item typed, labelled and
 * length-prefixed) of domain "duosign/v1/rp-auth", then the items
 * "rp_name", "challenge", "server_random", "code", "display_text", each as
 * bytes, in that order. An RP recomputes it from what it sent and what
 * GetSession returned (server_random, the code), so the citizen's signature
 * proves they approved this RP's challenge and saw this text and code.
 * Returns DUO_OK; DUO_E_INVALID_ARG (a NULL pointer, a challenge outside
 * 32..64 bytes); DUO_E_INTERNAL (OpenSSL). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_rp_auth_digest(uint8_t out[32], const char *rp_name, const uint8_t *challenge,
                                                      size_t challenge_len,
                                                      const uint8_t server_random[DUO_RP_SERVER_RANDOM_BYTES],
                                                      const char code[5], const char *display_text);

/* 1 if s is 1..DUO_RP_DISPLAY_TEXT_MAX bytes of well-formed UTF-8 (no
 * overlong forms, no surrogates, nothing above U+10FFFF) and holds no C0
 * control other than newline; else 0. What the device shows must be what the
 * RP sent, byte for byte, with nothing that moves the cursor. */
DUO_API int duo_rp_display_text_ok(const char *s);

/* 1 if s is 1..max printable ASCII characters (0x21..0x7e; ids and names in
 * logs stay one token); else 0. */
DUO_API int duo_rp_token_ok(const char *s, size_t max);

/* The digest length of a hash algorithm of proto/relying_party.proto
 * (1 SHA256: 32, 2 SHA384: 48, 3 SHA512: 64); 0 for any other value. */
DUO_API size_t duo_rp_hash_len(int hash_algorithm);

#endif
