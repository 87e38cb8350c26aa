/* duosign wire layer: signing messages (rounds 1 and 2). Encodings only;
 * the engines check points, proofs, the ciphertext and the MAC. */
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "wire_internal.h"

/* ---- SignStartRequest ---- */
/* The purpose and its one extra field: csr_info exactly for CSR,
 * login_challenge exactly for LOGIN, neither otherwise, so every accepted
 * request re-encodes to the bytes that came. */
static int duo__sign_purpose_ok(int purpose, size_t csr_len, size_t chal_len) {
    if (purpose < 0 || purpose >= DUO_SIGN_PURPOSE_COUNT) return 0;
    if ((purpose == DUO_SIGN_PURPOSE_CSR) != (csr_len > 0)) return 0;
    if ((purpose == DUO_SIGN_PURPOSE_LOGIN) != (chal_len > 0)) return 0;
    if (csr_len > DUO_CSR_INFO_MAX) return 0;
    return chal_len == 0 || (chal_len >= DUO_LOGIN_CHALLENGE_MIN && chal_len <= DUO_LOGIN_CHALLENGE_MAX);
}

static int duo__sign_purpose_parse(duo_sign_start_req *out, const Duosign__V1__SignStartRequest *m) {
    if (!duo__sign_purpose_ok((int)m->purpose, m->csr_info.len, m->login_challenge.len)) return DUO_E_BAD_FIELD;
    out->purpose = (duo_sign_purpose)m->purpose;
    if (m->csr_info.len > 0) memcpy(out->csr_info, m->csr_info.data, m->csr_info.len);
    out->csr_info_len = m->csr_info.len;
    if (m->login_challenge.len > 0) memcpy(out->login_challenge, m->login_challenge.data, m->login_challenge.len);
    out->login_challenge_len = m->login_challenge.len;
    return DUO_OK;
}

int duo_wire_parse_sign_start_req(duo_sign_start_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__SignStartRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__sign_start_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__SignStartRequest *)pm;
    DUO__FIX(out->key_id, m->key_id);
    DUO__FIX(out->device_nonce, m->device_nonce);
    DUO__FIX(out->digest, m->digest);
    DUO__FIX(out->r2_commitment, m->r2_commitment);
    DUO__FIX(out->mac, m->mac);
    r = duo__sign_purpose_parse(out, m);
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_sign_start_req(uint8_t **out, size_t *out_len, const duo_sign_start_req *msg) {
    Duosign__V1__SignStartRequest m = DUOSIGN__V1__SIGN_START_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.key_id = DUO__BD(msg->key_id);
    m.device_nonce = DUO__BD(msg->device_nonce);
    m.digest = DUO__BD(msg->digest);
    m.r2_commitment = DUO__BD(msg->r2_commitment);
    m.mac = DUO__BD(msg->mac);
    if (!duo__sign_purpose_ok((int)msg->purpose, msg->csr_info_len, msg->login_challenge_len)) {
        return DUO_E_INVALID_ARG;
    }
    m.purpose = (Duosign__V1__SignPurpose)msg->purpose;
    m.csr_info = duo__wire_bd(msg->csr_info, msg->csr_info_len);
    m.login_challenge = duo__wire_bd(msg->login_challenge, msg->login_challenge_len);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- SignStartResponse ---- */
int duo_wire_parse_sign_start_resp(duo_sign_start_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__SignStartResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__sign_start_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__SignStartResponse *)pm;
    DUO__FIX(out->cloud_nonce, m->cloud_nonce);
    DUO__FIX(out->r1, m->r1);
    DUO__FIX(out->r1_proof, m->r1_proof);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_sign_start_resp(uint8_t **out, size_t *out_len, const duo_sign_start_resp *msg) {
    Duosign__V1__SignStartResponse m = DUOSIGN__V1__SIGN_START_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.cloud_nonce = DUO__BD(msg->cloud_nonce);
    m.r1 = DUO__BD(msg->r1);
    m.r1_proof = DUO__BD(msg->r1_proof);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- SignFinishRequest ---- */
int duo_wire_parse_sign_finish_req(duo_sign_finish_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__SignFinishRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__sign_finish_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__SignFinishRequest *)pm;
    DUO__FIX(out->sid, m->sid);
    DUO__FIX(out->r2, m->r2);
    DUO__FIX(out->r2_proof, m->r2_proof);
    DUO__FIX(out->r2_opening, m->r2_opening);
    DUO__FIX(out->pin_proof, m->pin_proof);
    DUO__FIX(out->mac, m->mac);
    {
        duo_span *const spans[] = {&out->c3};
        const ProtobufCBinaryData *const f[] = {&m->c3};
        r = duo__wire_spans_copy(&out->buf, spans, f, 1);
    }
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_wire_free_sign_finish_req(out);
    }
    return r;
}

int duo_wire_build_sign_finish_req(uint8_t **out, size_t *out_len, const duo_sign_finish_req *msg) {
    Duosign__V1__SignFinishRequest m = DUOSIGN__V1__SIGN_FINISH_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || !duo__wire_span_ok(&msg->c3)) {
        return DUO_E_INVALID_ARG;
    }
    m.sid = DUO__BD(msg->sid);
    m.r2 = DUO__BD(msg->r2);
    m.r2_proof = DUO__BD(msg->r2_proof);
    m.r2_opening = DUO__BD(msg->r2_opening);
    m.pin_proof = DUO__BD(msg->pin_proof);
    m.c3 = DUO__BD_SPAN(msg->c3);
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

void duo_wire_free_sign_finish_req(duo_sign_finish_req *m) {
    if (m == NULL) {
        return;
    }
    {
        duo_span *const spans[] = {&m->c3};
        duo__wire_spans_free(m->buf, spans, 1);
    }
    duo_memzero(m, sizeof *m);
}

/* ---- SignFinishResponse ---- */
int duo_wire_parse_sign_finish_resp(duo_sign_finish_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__SignFinishResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__sign_finish_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__SignFinishResponse *)pm;
    DUO__FIX(out->signature, m->signature);
    DUO__FIX(out->rotate_seed, m->rotate_seed);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_sign_finish_resp(uint8_t **out, size_t *out_len, const duo_sign_finish_resp *msg) {
    Duosign__V1__SignFinishResponse m = DUOSIGN__V1__SIGN_FINISH_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.signature = DUO__BD(msg->signature);
    m.rotate_seed = DUO__BD(msg->rotate_seed);
    return duo__wire_pack(out, out_len, &m.base);
}
