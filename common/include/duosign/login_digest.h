/* duosign: the digest an authentication key signs for a login (DESIGN 8.2,
 * 8.3; docs/PROTOCOL.md "Signing purposes").
 *
 * A login signature must never be usable as a document signature. The auth
 * key never signs a document (the cloud refuses that purpose), and the digest
 * it signs for a login is not the caller's: both sides compute it from a
 * domain-separated, length-prefixed structure, so no document hash can be
 * passed off as one:
 *
 *   digest = SHA-256( u32be(len(tag)) || tag
 *                     || for each field, in order: u32be(len) || bytes )
 *   tag    = "duosign/login/v1"
 *   fields = challenge                       (a plain login, this version)
 *
 * A relying party that checks a login signature computes the same bytes. The
 * relying-party login (issue 17) extends the structure with its own tag and
 * fields (RP name, RP challenge, server random, verification code, display
 * text) through duo_login_digest_fields. No secrets. */
#ifndef DUOSIGN_LOGIN_DIGEST_H
#define DUOSIGN_LOGIN_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

#define DUO_LOGIN_TAG_V1 "duosign/login/v1"

/* One length-prefixed field of a login structure. */
typedef struct duo_login_field {
    const uint8_t *ptr; /* may be NULL when len == 0 */
    size_t len;         /* at most UINT32_MAX */
} duo_login_field;

/* The digest of tag and fields[0..n-1] as above.
 * Returns: DUO_OK; DUO_E_INVALID_ARG (NULL out or tag, a field longer than
 *          UINT32_MAX, a NULL field pointer with a length); DUO_E_INTERNAL. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_login_digest_fields(uint8_t out[32], const char *tag,
                                                           const duo_login_field *fields, size_t n);

/* The plain login digest (tag DUO_LOGIN_TAG_V1, one field: the challenge).
 * Returns: as duo_login_digest_fields. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_login_digest(uint8_t out[32], const uint8_t *challenge, size_t challenge_len);

#endif
