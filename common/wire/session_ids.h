/* duosign: values both engines derive identically from the protocol
 * transcript: session ids and the first device secret (docs/PROTOCOL.md).
 * One definition here, used by the P1 and P2 engines and by tests. */
#ifndef DUOSIGN_SESSION_IDS_H
#define DUOSIGN_SESSION_IDS_H

#include "duosign/transcript.h"
#include "wire.h"

/* Maps a failed check on peer data to `code`, keeping resource errors. */
static inline int duo__map_peer_error(int r, int code) {
    if (r == DUO_OK || r == DUO_E_NOMEM || r == DUO_E_RNG) return r;
    return code;
}

/* Enrolment sid = H("duosign/v1/sid/enroll", key_id, device_nonce, cloud_nonce). */
static inline int duo__sid_enroll(uint8_t sid[32], const uint8_t key_id[DUO_KEY_ID_BYTES],
                                  const uint8_t device_nonce[DUO_NONCE_BYTES],
                                  const uint8_t cloud_nonce[DUO_NONCE_BYTES]) {
    duo_transcript t;
    int r;
    if ((r = duo_transcript_init(&t, "duosign/v1/sid/enroll")) != DUO_OK) return r;
    duo_transcript_bytes(&t, "key_id", key_id, DUO_KEY_ID_BYTES);
    duo_transcript_bytes(&t, "device_nonce", device_nonce, DUO_NONCE_BYTES);
    duo_transcript_bytes(&t, "cloud_nonce", cloud_nonce, DUO_NONCE_BYTES);
    r = duo_transcript_digest(&t, sid);
    duo_transcript_free(&t);
    return r;
}

/* Signing pre-sid (binds the R2 commitment before the cloud nonce exists) =
 * H("duosign/v1/sid/sign-pre", key_id, device_nonce, digest). */
static inline int duo__presid_sign(uint8_t presid[32], const uint8_t key_id[DUO_KEY_ID_BYTES],
                                   const uint8_t device_nonce[DUO_NONCE_BYTES],
                                   const uint8_t digest[DUO_DIGEST_BYTES]) {
    duo_transcript t;
    int r;
    if ((r = duo_transcript_init(&t, "duosign/v1/sid/sign-pre")) != DUO_OK) return r;
    duo_transcript_bytes(&t, "key_id", key_id, DUO_KEY_ID_BYTES);
    duo_transcript_bytes(&t, "device_nonce", device_nonce, DUO_NONCE_BYTES);
    duo_transcript_bytes(&t, "digest", digest, DUO_DIGEST_BYTES);
    r = duo_transcript_digest(&t, presid);
    duo_transcript_free(&t);
    return r;
}

/* Signing sid = H("duosign/v1/sid/sign", key_id, device_nonce, cloud_nonce,
 * digest, r2_commitment). */
static inline int duo__sid_sign(uint8_t sid[32], const uint8_t key_id[DUO_KEY_ID_BYTES],
                                const uint8_t device_nonce[DUO_NONCE_BYTES], const uint8_t cloud_nonce[DUO_NONCE_BYTES],
                                const uint8_t digest[DUO_DIGEST_BYTES], const uint8_t r2_commitment[32]) {
    duo_transcript t;
    int r;
    if ((r = duo_transcript_init(&t, "duosign/v1/sid/sign")) != DUO_OK) return r;
    duo_transcript_bytes(&t, "key_id", key_id, DUO_KEY_ID_BYTES);
    duo_transcript_bytes(&t, "device_nonce", device_nonce, DUO_NONCE_BYTES);
    duo_transcript_bytes(&t, "cloud_nonce", cloud_nonce, DUO_NONCE_BYTES);
    duo_transcript_bytes(&t, "digest", digest, DUO_DIGEST_BYTES);
    duo_transcript_bytes(&t, "r2_commitment", r2_commitment, 32);
    r = duo_transcript_digest(&t, sid);
    duo_transcript_free(&t);
    return r;
}

/* First device secret = H("duosign/v1/device-secret", sid, x1*x2*G): each
 * side computes the ECDH of its share with the other's public share, so no
 * secret crosses the wire. shared is the 33-byte compressed point. */
static inline int duo__device_secret(uint8_t out[32], const uint8_t sid[32], const uint8_t shared[33]) {
    duo_transcript t;
    int r;
    if ((r = duo_transcript_init(&t, "duosign/v1/device-secret")) != DUO_OK) return r;
    duo_transcript_bytes(&t, "sid", sid, 32);
    duo_transcript_bytes(&t, "shared", shared, 33);
    r = duo_transcript_digest(&t, out);
    duo_transcript_free(&t);
    return r;
}

#endif
