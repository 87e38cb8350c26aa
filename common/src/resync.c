/* duosign: the resynchronisation's PIN proof binding and check (resync.h). */
#include <string.h>

#include <openssl/sha.h>

#include "duosign/mem.h"
#include "duosign/resync.h"

int duo_resync_binding(duo_binding *out, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t nonce[DUO_NONCE_BYTES],
                       uint64_t epoch, const uint8_t device_secret[DUO_DEVICE_SECRET_BYTES]) {
    duo_transcript t;
    uint8_t h[32];
    int r;
    if (out == NULL || key_id == NULL || nonce == NULL || device_secret == NULL || epoch == 0) return DUO_E_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if ((r = duo_transcript_init(&t, "duosign/v1/resync")) != DUO_OK) return r;
    SHA256(device_secret, DUO_DEVICE_SECRET_BYTES, h);
    duo_transcript_bytes(&t, "key_id", key_id, DUO_KEY_ID_BYTES);
    duo_transcript_bytes(&t, "device_nonce", nonce, DUO_NONCE_BYTES);
    duo_transcript_u64(&t, "epoch", epoch);
    duo_transcript_bytes(&t, "device_secret_sha256", h, sizeof h);
    r = duo_transcript_digest(&t, out->sid);
    duo_transcript_free(&t);
    duo_memzero(h, sizeof h);
    out->role = DUO_ROLE_DEVICE;
    if (r != DUO_OK) duo_memzero(out, sizeof *out);
    return r;
}

int duo_resync_proof_verify(const duo_ec *ec, const uint8_t q2[DUO_POINT_BYTES], const duo_binding *bind,
                            const uint8_t proof[DUO_DLOG_PROOF_BYTES]) {
    duo_point x2g;
    duo_dlog_proof p;
    if (ec == NULL || q2 == NULL || bind == NULL || proof == NULL) return DUO_E_INVALID_ARG;
    if (duo_point_parse(ec, &x2g, q2, DUO_POINT_BYTES) != DUO_OK) return DUO_E_STATE_CORRUPT;
    if (duo_dlog_proof_parse(ec, &p, proof, DUO_DLOG_PROOF_BYTES) != DUO_OK ||
        duo_dlog_verify(ec, &p, &x2g, bind, DUO_RESYNC_PURPOSE) != DUO_OK)
        return DUO_E_WRONG_PIN;
    return DUO_OK;
}
