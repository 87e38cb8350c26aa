/* duosign wire layer: enrolment messages (rounds 1-4 and confirmation).
 * docs/PROTOCOL.md gives the values' meaning; here only encodings are checked:
 * exact lengths of fixed-size fields, presence and size caps of the
 * Paillier-sized ones, the token and revocation-code rules. */
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "wire_internal.h"

/* ---- EnrollStartRequest ---- */
int duo_wire_parse_enroll_start_req(duo_enroll_start_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollStartRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_start_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollStartRequest *)pm;
    r = DUO_E_BAD_FIELD;
    if (m->token.len < 1 || m->token.len > DUO_TOKEN_MAX || m->token.data == NULL) {
        goto out;
    }
    memcpy(out->token, m->token.data, m->token.len);
    out->token_len = m->token.len;
    DUO__FIX(out->device_nonce, m->device_nonce);
    if (m->paillier_bits != 2048 && m->paillier_bits != 3072) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    out->paillier_bits = m->paillier_bits;
    /* Kept as sent: absent (UNSPECIFIED) is a device from before curves,
     * which spoke secp256k1; its readers map it (rpc_enroll.c, p1_enroll.c).
     * Mapping it here would re-encode the message differently from the
     * bytes that came (found by fuzz_wire_enroll_start_req). */
    out->curve = (duo_curve)m->curve;
    if (!duo_curve_valid((int)m->curve) && m->curve != DUOSIGN__V1__CURVE__CURVE_UNSPECIFIED) {
        r = DUO_E_BAD_FIELD; /* a curve this build does not know, like a Paillier size */
        goto out;
    }
    if ((unsigned)m->role >= DUO_KEY_ROLE_COUNT) {
        r = DUO_E_BAD_FIELD; /* absent (0) is a legacy single key */
        goto out;
    }
    out->role = (duo_key_role)m->role;
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_start_req(uint8_t **out, size_t *out_len, const duo_enroll_start_req *msg) {
    Duosign__V1__EnrollStartRequest m = DUOSIGN__V1__ENROLL_START_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || msg->token_len < 1 || msg->token_len > DUO_TOKEN_MAX ||
        (msg->paillier_bits != 2048 && msg->paillier_bits != 3072) ||
        (msg->curve != DUO_CURVE_UNSPECIFIED && !duo_curve_valid(msg->curve)) ||
        (unsigned)msg->role >= DUO_KEY_ROLE_COUNT) {
        return DUO_E_INVALID_ARG;
    }
    m.token = duo__wire_bd(msg->token, msg->token_len);
    m.device_nonce = DUO__BD(msg->device_nonce);
    m.paillier_bits = msg->paillier_bits;
    m.curve = (Duosign__V1__Curve)msg->curve; /* UNSPECIFIED: absent on the wire */
    m.role = (Duosign__V1__KeyRole)msg->role; /* UNSPECIFIED: absent on the wire */
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollStartResponse ---- */
int duo_wire_parse_enroll_start_resp(duo_enroll_start_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollStartResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_start_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollStartResponse *)pm;
    DUO__FIX(out->key_id, m->key_id);
    DUO__FIX(out->cloud_nonce, m->cloud_nonce);
    DUO__FIX(out->q1_commitment, m->q1_commitment);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_start_resp(uint8_t **out, size_t *out_len, const duo_enroll_start_resp *msg) {
    Duosign__V1__EnrollStartResponse m = DUOSIGN__V1__ENROLL_START_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.key_id = DUO__BD(msg->key_id);
    m.cloud_nonce = DUO__BD(msg->cloud_nonce);
    m.q1_commitment = DUO__BD(msg->q1_commitment);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollKeyShareRequest ---- */
int duo_wire_parse_enroll_key_share_req(duo_enroll_key_share_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollKeyShareRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_key_share_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollKeyShareRequest *)pm;
    DUO__FIX(out->sid, m->sid);
    DUO__FIX(out->q2, m->q2);
    DUO__FIX(out->q2_proof, m->q2_proof);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_key_share_req(uint8_t **out, size_t *out_len, const duo_enroll_key_share_req *msg) {
    Duosign__V1__EnrollKeyShareRequest m = DUOSIGN__V1__ENROLL_KEY_SHARE_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.sid = DUO__BD(msg->sid);
    m.q2 = DUO__BD(msg->q2);
    m.q2_proof = DUO__BD(msg->q2_proof);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollKeyShareResponse ---- */
int duo_wire_parse_enroll_key_share_resp(duo_enroll_key_share_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollKeyShareResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_key_share_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollKeyShareResponse *)pm;
    DUO__FIX(out->q1, m->q1);
    DUO__FIX(out->q1_proof, m->q1_proof);
    DUO__FIX(out->q1_opening, m->q1_opening);
    {
        duo_span *const spans[] = {&out->paillier_n, &out->ckey, &out->proof_ln, &out->proof_mod, &out->proof_range};
        const ProtobufCBinaryData *const f[] = {&m->paillier_n, &m->ckey, &m->proof_ln, &m->proof_mod, &m->proof_range};
        r = duo__wire_spans_copy(&out->buf, spans, f, 5);
    }
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_wire_free_enroll_key_share_resp(out);
    }
    return r;
}

int duo_wire_build_enroll_key_share_resp(uint8_t **out, size_t *out_len, const duo_enroll_key_share_resp *msg) {
    Duosign__V1__EnrollKeyShareResponse m = DUOSIGN__V1__ENROLL_KEY_SHARE_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || !duo__wire_span_ok(&msg->paillier_n) || !duo__wire_span_ok(&msg->ckey) ||
        !duo__wire_span_ok(&msg->proof_ln) || !duo__wire_span_ok(&msg->proof_mod) ||
        !duo__wire_span_ok(&msg->proof_range)) {
        return DUO_E_INVALID_ARG;
    }
    m.q1 = DUO__BD(msg->q1);
    m.q1_proof = DUO__BD(msg->q1_proof);
    m.q1_opening = DUO__BD(msg->q1_opening);
    m.paillier_n = DUO__BD_SPAN(msg->paillier_n);
    m.ckey = DUO__BD_SPAN(msg->ckey);
    m.proof_ln = DUO__BD_SPAN(msg->proof_ln);
    m.proof_mod = DUO__BD_SPAN(msg->proof_mod);
    m.proof_range = DUO__BD_SPAN(msg->proof_range);
    return duo__wire_pack(out, out_len, &m.base);
}

void duo_wire_free_enroll_key_share_resp(duo_enroll_key_share_resp *m) {
    if (m == NULL) {
        return;
    }
    {
        duo_span *const spans[] = {&m->paillier_n, &m->ckey, &m->proof_ln, &m->proof_mod, &m->proof_range};
        duo__wire_spans_free(m->buf, spans, 5);
    }
    duo_memzero(m, sizeof *m);
}

/* ---- EnrollPdlChallengeRequest ---- */
int duo_wire_parse_enroll_pdl_challenge_req(duo_enroll_pdl_challenge_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollPdlChallengeRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_pdl_challenge_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollPdlChallengeRequest *)pm;
    DUO__FIX(out->sid, m->sid);
    DUO__FIX(out->ab_commitment, m->ab_commitment);
    {
        duo_span *const spans[] = {&out->c_prime};
        const ProtobufCBinaryData *const f[] = {&m->c_prime};
        r = duo__wire_spans_copy(&out->buf, spans, f, 1);
    }
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_wire_free_enroll_pdl_challenge_req(out);
    }
    return r;
}

int duo_wire_build_enroll_pdl_challenge_req(uint8_t **out, size_t *out_len, const duo_enroll_pdl_challenge_req *msg) {
    Duosign__V1__EnrollPdlChallengeRequest m = DUOSIGN__V1__ENROLL_PDL_CHALLENGE_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || !duo__wire_span_ok(&msg->c_prime)) {
        return DUO_E_INVALID_ARG;
    }
    m.sid = DUO__BD(msg->sid);
    m.c_prime = DUO__BD_SPAN(msg->c_prime);
    m.ab_commitment = DUO__BD(msg->ab_commitment);
    return duo__wire_pack(out, out_len, &m.base);
}

void duo_wire_free_enroll_pdl_challenge_req(duo_enroll_pdl_challenge_req *m) {
    if (m == NULL) {
        return;
    }
    {
        duo_span *const spans[] = {&m->c_prime};
        duo__wire_spans_free(m->buf, spans, 1);
    }
    duo_memzero(m, sizeof *m);
}

/* ---- EnrollPdlChallengeResponse ---- */
int duo_wire_parse_enroll_pdl_challenge_resp(duo_enroll_pdl_challenge_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollPdlChallengeResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_pdl_challenge_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollPdlChallengeResponse *)pm;
    DUO__FIX(out->alpha_commitment, m->alpha_commitment);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_pdl_challenge_resp(uint8_t **out, size_t *out_len, const duo_enroll_pdl_challenge_resp *msg) {
    Duosign__V1__EnrollPdlChallengeResponse m = DUOSIGN__V1__ENROLL_PDL_CHALLENGE_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.alpha_commitment = DUO__BD(msg->alpha_commitment);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollPdlOpenRequest ---- */
int duo_wire_parse_enroll_pdl_open_req(duo_enroll_pdl_open_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollPdlOpenRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_pdl_open_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollPdlOpenRequest *)pm;
    DUO__FIX(out->sid, m->sid);
    DUO__FIX(out->a, m->a);
    DUO__FIX(out->b, m->b);
    DUO__FIX(out->ab_opening, m->ab_opening);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_pdl_open_req(uint8_t **out, size_t *out_len, const duo_enroll_pdl_open_req *msg) {
    Duosign__V1__EnrollPdlOpenRequest m = DUOSIGN__V1__ENROLL_PDL_OPEN_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.sid = DUO__BD(msg->sid);
    m.a = DUO__BD(msg->a);
    m.b = DUO__BD(msg->b);
    m.ab_opening = DUO__BD(msg->ab_opening);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollPdlOpenResponse ---- */
int duo_wire_parse_enroll_pdl_open_resp(duo_enroll_pdl_open_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollPdlOpenResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_pdl_open_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollPdlOpenResponse *)pm;
    DUO__FIX(out->alpha_point, m->alpha_point);
    DUO__FIX(out->alpha_opening, m->alpha_opening);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_pdl_open_resp(uint8_t **out, size_t *out_len, const duo_enroll_pdl_open_resp *msg) {
    Duosign__V1__EnrollPdlOpenResponse m = DUOSIGN__V1__ENROLL_PDL_OPEN_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.alpha_point = DUO__BD(msg->alpha_point);
    m.alpha_opening = DUO__BD(msg->alpha_opening);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollConfirmRequest ---- */
int duo_wire_parse_enroll_confirm_req(duo_enroll_confirm_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollConfirmRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_confirm_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollConfirmRequest *)pm;
    DUO__FIX(out->sid, m->sid);
    DUO__FIX(out->public_key, m->public_key);
    DUO__FIX(out->mac, m->mac);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_confirm_req(uint8_t **out, size_t *out_len, const duo_enroll_confirm_req *msg) {
    Duosign__V1__EnrollConfirmRequest m = DUOSIGN__V1__ENROLL_CONFIRM_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.sid = DUO__BD(msg->sid);
    m.public_key = DUO__BD(msg->public_key);
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- EnrollConfirmResponse ----
 * protobuf-c hands strings back NUL-terminated and without their length, so a
 * code with an embedded NUL is seen up to the NUL (the rest is discarded). */
int duo_wire_parse_enroll_confirm_resp(duo_enroll_confirm_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__EnrollConfirmResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__enroll_confirm_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__EnrollConfirmResponse *)pm;
    /* Empty: a repeated confirmation (the code is shown only the first time). */
    if (m->revocation_code == NULL || m->revocation_code[0] == '\0') {
        r = DUO_OK;
        goto out;
    }
    if (!duo__wire_code_ok(m->revocation_code, DUO_REVOCATION_CODE_MAX + 1)) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    memcpy(out->revocation_code, m->revocation_code, strlen(m->revocation_code) + 1);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_enroll_confirm_resp(uint8_t **out, size_t *out_len, const duo_enroll_confirm_resp *msg) {
    Duosign__V1__EnrollConfirmResponse m = DUOSIGN__V1__ENROLL_CONFIRM_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL ||
        (msg->revocation_code[0] != '\0' && !duo__wire_code_ok(msg->revocation_code, sizeof msg->revocation_code))) {
        return DUO_E_INVALID_ARG;
    }
    m.revocation_code = (char *)(uintptr_t)msg->revocation_code;
    return duo__wire_pack(out, out_len, &m.base);
}
