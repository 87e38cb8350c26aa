/* duosign: the fingerprint of the cloud's channel key in the enrolment token
 * (issue 12; docs/PROTOCOL.md "Inner channel", docs/SECURITY.md 1.6.1).
 *
 * fingerprint = SHA-256(the X25519 public key, 32 bytes), first 16 bytes.
 * `duosign-cloud token issue` prints CODE "." HEX, HEX the fingerprint of
 * the current channel key in 32 lowercase hex digits. The whole string is
 * the token: the cloud hashes and checks it as before, and a token from
 * before the fingerprint (CODE alone, never a '.') still enrols, with the
 * channel key trusted by the pinned-CA TLS alone. The device compares the
 * key ChannelKey gives at enrolment with the token's fingerprint before its
 * first enrolment request (DUO_E_CHANNEL_FINGERPRINT, nothing kept). */
#ifndef DUOSIGN_CHANNEL_FP_H
#define DUOSIGN_CHANNEL_FP_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"
#include "duosign/inner_channel.h"

#define DUO_CH_FP_HEX (2 * DUO_CH_FP_BYTES)

/* The fingerprint of a channel public key.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_ch_fingerprint(uint8_t out[DUO_CH_FP_BYTES], const uint8_t pub[DUO_CH_PUB_BYTES]);

/* The fingerprint in the token's form (NUL-terminated lowercase hex).
 * Returns: as duo_ch_fingerprint. */
DUO_WARN_UNUSED_RESULT int duo_ch_fingerprint_hex(char out[DUO_CH_FP_HEX + 1], const uint8_t pub[DUO_CH_PUB_BYTES]);

/* Reads the fingerprint a token carries. *has = 0 for a token without one
 * (no '.'), which is not an error.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_CHANNEL_FP_MALFORMED (a '.' not
 *          followed by exactly 32 lowercase hex digits, or an empty code).
 * Out: fp (the 16 bytes when *has). */
DUO_WARN_UNUSED_RESULT int duo_ch_token_fingerprint(uint8_t fp[DUO_CH_FP_BYTES], int *has, const uint8_t *token,
                                                    size_t token_len);

/* DUO_OK if pub's fingerprint is fp (constant time; public values, but one
 * comparison style everywhere), else DUO_E_CHANNEL_FINGERPRINT. */
DUO_WARN_UNUSED_RESULT int duo_ch_fingerprint_check(const uint8_t fp[DUO_CH_FP_BYTES],
                                                    const uint8_t pub[DUO_CH_PUB_BYTES]);

#endif
