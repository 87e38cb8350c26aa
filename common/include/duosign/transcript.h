/* duosign: canonical transcript hashing (SHA-256) for Fiat-Shamir challenges,
 * commitments and session ids.
 *
 * Every item is encoded as  type(1) || u32be(len(label)) || label ||
 * u64be(len(value)) || value, so no two different item sequences share an
 * encoding (the TSSHOCK alpha-shuffle lesson). A transcript always starts with
 * its domain tag. Protobuf bytes are never hashed: callers append the
 * logical values. */
#ifndef DUOSIGN_TRANSCRIPT_H
#define DUOSIGN_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>

#include "duosign/curve.h"
#include "duosign/errors.h"

/* Item type tags. */
enum {
    DUO_TT_DOMAIN = 0x01,
    DUO_TT_BYTES = 0x02,
    DUO_TT_U64 = 0x03,
    DUO_TT_POINT = 0x04,
    DUO_TT_SCALAR = 0x05,
    DUO_TT_BIGNUM = 0x06,
    DUO_TT_CHALLENGE = 0x07
};

/* Party roles bound into every proof and commitment. */
enum { DUO_ROLE_CLOUD = 1, DUO_ROLE_DEVICE = 2 };

/* What a proof or commitment is bound to: the session id (which itself hashes
 * the key id and both parties' nonces) and the role of the party that made it. */
typedef struct duo_binding {
    uint8_t sid[32];
    uint32_t role;
} duo_binding;

typedef struct duo_transcript {
    void *md; /* EVP_MD_CTX * */
    int failed;
} duo_transcript;

/* Starts a transcript with a domain tag such as "duosign/v1/dlog". */
DUO_WARN_UNUSED_RESULT int duo_transcript_init(duo_transcript *t, const char *domain);
/* Copies the running state (for forking a transcript). */
DUO_WARN_UNUSED_RESULT int duo_transcript_copy(duo_transcript *dst, const duo_transcript *src);
void duo_transcript_free(duo_transcript *t);

/* Appends one typed, labelled item. Errors are remembered: the final
 * challenge/digest call reports them (so callers may chain appends). */
void duo_transcript_bytes(duo_transcript *t, const char *label, const uint8_t *v, size_t len);
void duo_transcript_u64(duo_transcript *t, const char *label, uint64_t v);
void duo_transcript_point(duo_transcript *t, const duo_ec *ec, const char *label, const duo_point *p);
void duo_transcript_scalar(duo_transcript *t, const char *label, const duo_scalar *s);
/* Non-negative BIGNUM as minimal big-endian bytes (zero is the empty string). */
void duo_transcript_bn(duo_transcript *t, const char *label, const BIGNUM *v);
/* Appends sid and role. */
void duo_transcript_binding(duo_transcript *t, const duo_binding *bind);

/* Finishes: out = SHA-256 of everything appended. The transcript is then
 * spent (free it). */
DUO_WARN_UNUSED_RESULT int duo_transcript_digest(duo_transcript *t, uint8_t out[32]);
/* Derives len challenge bytes labelled `label` from the current state without
 * consuming it: out = SHA-256(state || CHALLENGE label || counter) blocks. */
DUO_WARN_UNUSED_RESULT int duo_transcript_challenge(const duo_transcript *t, const char *label, uint8_t *out,
                                                    size_t len);

#endif
