/* duosign: hash commitments.
 * C = SHA-256 transcript(domain "duosign/v1/commit/<purpose>", sid, role,
 *     the committed values..., 32 bytes of opening randomness).
 * Open by sending the values and the randomness; check in constant time. */
#ifndef DUOSIGN_COMMIT_H
#define DUOSIGN_COMMIT_H

#include "duosign/transcript.h"

#define DUO_COMMIT_BYTES 32
#define DUO_COMMIT_RAND_BYTES 32

/* Starts a commitment transcript; the caller then appends the values with
 * duo_transcript_* and finishes with duo_commit_finish or duo_commit_check. */
DUO_WARN_UNUSED_RESULT int duo_commit_begin(duo_transcript *t, const char *purpose, const duo_binding *bind);
/* Appends the randomness and writes the 32-byte commitment. Frees t. */
DUO_WARN_UNUSED_RESULT int duo_commit_finish(duo_transcript *t, const uint8_t rand[DUO_COMMIT_RAND_BYTES],
                                             uint8_t out[DUO_COMMIT_BYTES]);
/* Recomputes and compares with `expected` in constant time. Frees t.
 * DUO_OK or DUO_E_BAD_COMMITMENT. */
DUO_WARN_UNUSED_RESULT int duo_commit_check(duo_transcript *t, const uint8_t rand[DUO_COMMIT_RAND_BYTES],
                                            const uint8_t expected[DUO_COMMIT_BYTES]);

#endif
