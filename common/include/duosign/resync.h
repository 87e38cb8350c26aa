/* duosign: the PIN proof of the one-time resynchronisation after a restore
 * of the cloud's store (docs/SECURITY.md 1.10, docs/PROTOCOL.md "After a
 * restore of the cloud's store").
 *
 * The proof is PoK(x2) "resync" (dlog_proof.h) for the key's Q2, bound to
 *     sid = H("duosign/v1/resync", key_id, device_nonce, u64 epoch,
 *             SHA-256(device_secret)),  role DEVICE,
 * so it proves the PIN for this key, this restore epoch and this secret
 * only: it cannot be replayed for another key, another epoch or to install
 * another secret, and no signing session's PIN proof ("pin", bound to a
 * signing sid) verifies as one. */
#ifndef DUOSIGN_RESYNC_H
#define DUOSIGN_RESYNC_H

#include <stdint.h>

#include "duosign/dlog_proof.h"
#include "duosign/errors.h"
#include "duosign/transcript.h"
#include "duosign/vocab.h"

#define DUO_RESYNC_PURPOSE "resync"

/* The binding above. device_secret is SECRET (only its hash is used).
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_resync_binding(duo_binding *out, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                              const uint8_t nonce[DUO_NONCE_BYTES], uint64_t epoch,
                                              const uint8_t device_secret[DUO_DEVICE_SECRET_BYTES]);

/* Checks a serialized proof (A || z, DUO_DLOG_PROOF_BYTES) against the
 * stored Q2 (q2: DUO_POINT_BYTES, compressed) under bind.
 * Returns: DUO_OK; DUO_E_WRONG_PIN (unparsable or not verifying: a wrong
 *          PIN proves another point); DUO_E_STATE_CORRUPT (the stored Q2
 *          does not parse); DUO_E_INVALID_ARG. */
DUO_WARN_UNUSED_RESULT int duo_resync_proof_verify(const duo_ec *ec, const uint8_t q2[DUO_POINT_BYTES],
                                                   const duo_binding *bind, const uint8_t proof[DUO_DLOG_PROOF_BYTES]);

#endif
