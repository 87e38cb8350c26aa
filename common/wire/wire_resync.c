/* duosign wire layer: the Resync request and its MAC input (issue 20, the
 * one-time resynchronisation after a restore of the cloud's store). */
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "duosign/mem.h"
#include "duosign/transcript.h"
#include "wire_internal.h"

/* ---- ResyncRequest ----
 * Fixed sizes everywhere (a secret of another length is DUO_E_BAD_FIELD
 * before anything reads it); epoch 0 names no restore (DUO_E_BAD_FIELD). */
int duo_wire_parse_resync_req(duo_resync_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__ResyncRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__resync_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__ResyncRequest *)pm;
    DUO__FIX(out->key_id, m->key_id);
    DUO__FIX(out->device_nonce, m->device_nonce);
    DUO__FIX(out->device_secret, m->device_secret);
    DUO__FIX(out->pin_proof, m->pin_proof);
    DUO__FIX(out->mac, m->mac);
    if (m->epoch == 0) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    out->epoch = m->epoch;
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm); /* wipes: the secret was in it */
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_resync_req(uint8_t **out, size_t *out_len, const duo_resync_req *msg) {
    Duosign__V1__ResyncRequest m = DUOSIGN__V1__RESYNC_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || msg->epoch == 0) {
        return DUO_E_INVALID_ARG;
    }
    m.key_id = DUO__BD(msg->key_id);
    m.device_nonce = DUO__BD(msg->device_nonce);
    m.epoch = msg->epoch;
    m.device_secret = DUO__BD(msg->device_secret);
    m.pin_proof = DUO__BD(msg->pin_proof);
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- ResyncResponse (empty) ---- */
int duo_wire_build_resync_resp(uint8_t **out, size_t *out_len) {
    Duosign__V1__ResyncResponse m = DUOSIGN__V1__RESYNC_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    return duo__wire_pack(out, out_len, &m.base);
}

int duo_wire_parse_resync_resp(const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    int r = duo__wire_unpack(&pm, &duosign__v1__resync_response__descriptor, in, in_len);
    duo__wire_unpacked_free(pm);
    return r;
}

/* The MAC input hashes the secret instead of carrying it: the transcript
 * digest is no secret, and the MAC is keyed by the secret itself. */
int duo_wire_mac_input_resync(uint8_t out[32], const duo_resync_req *m) {
    duo_transcript t;
    uint8_t h[32];
    int r;

    if (out == NULL || m == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, "duosign/v1/mac/Resync")) != DUO_OK) {
        return r;
    }
    SHA256(m->device_secret, sizeof m->device_secret, h);
    duo_transcript_bytes(&t, "key_id", m->key_id, sizeof m->key_id);
    duo_transcript_bytes(&t, "device_nonce", m->device_nonce, sizeof m->device_nonce);
    duo_transcript_u64(&t, "epoch", m->epoch);
    duo_transcript_bytes(&t, "device_secret_sha256", h, sizeof h);
    duo_transcript_bytes(&t, "pin_proof", m->pin_proof, sizeof m->pin_proof);
    r = duo_transcript_digest(&t, out);
    duo_transcript_free(&t);
    if (r != DUO_OK) {
        duo_memzero(out, 32);
    }
    return r;
}
