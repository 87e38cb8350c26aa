/* duosign wire layer: lifecycle messages (refresh, revoke, status). */
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "wire_internal.h"

/* Refresh and Status requests have the same fields (key id, nonce, mac) and
 * the same C type; only the protobuf descriptor differs. */
static int duo__parse_kid_nonce_mac(duo_refresh_req *out, const ProtobufCMessageDescriptor *desc, const uint8_t *in,
                                    size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const ProtobufCBinaryData *key_id, *device_nonce, *mac;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, desc, in, in_len)) != DUO_OK) {
        goto out;
    }
    if (desc == &duosign__v1__refresh_request__descriptor) {
        const Duosign__V1__RefreshRequest *m = (const Duosign__V1__RefreshRequest *)pm;
        key_id = &m->key_id;
        device_nonce = &m->device_nonce;
        mac = &m->mac;
    } else {
        const Duosign__V1__StatusRequest *m = (const Duosign__V1__StatusRequest *)pm;
        key_id = &m->key_id;
        device_nonce = &m->device_nonce;
        mac = &m->mac;
    }
    DUO__FIX(out->key_id, *key_id);
    DUO__FIX(out->device_nonce, *device_nonce);
    DUO__FIX(out->mac, *mac);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

/* ---- RefreshRequest ---- */
int duo_wire_parse_refresh_req(duo_refresh_req *out, const uint8_t *in, size_t in_len) {
    return duo__parse_kid_nonce_mac(out, &duosign__v1__refresh_request__descriptor, in, in_len);
}

int duo_wire_build_refresh_req(uint8_t **out, size_t *out_len, const duo_refresh_req *msg) {
    Duosign__V1__RefreshRequest m = DUOSIGN__V1__REFRESH_REQUEST__INIT;

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
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- RefreshResponse ---- */
int duo_wire_parse_refresh_resp(duo_refresh_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__RefreshResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__refresh_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__RefreshResponse *)pm;
    DUO__FIX(out->rotate_seed, m->rotate_seed);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_refresh_resp(uint8_t **out, size_t *out_len, const duo_refresh_resp *msg) {
    Duosign__V1__RefreshResponse m = DUOSIGN__V1__REFRESH_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    m.rotate_seed = DUO__BD(msg->rotate_seed);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- RevokeRequest ----
 * Exactly one of mac (device revocation, 32 bytes) and revocation_code
 * (1..64 printable ASCII, revocation without the device) is present; both or
 * neither is DUO_E_BAD_FIELD. A present-but-empty field is indistinguishable
 * from an absent one in proto3 and counts as absent. As for
 * EnrollConfirmResponse, a code is read up to an embedded NUL.
 * citizen_id (1..64 printable ASCII, same reading) is allowed only with a
 * code: then key_id must be absent and device_nonce absent or 32 bytes
 * (by_citizen = 1); without it key_id (16) and device_nonce (32) are
 * required, as before. */
int duo_wire_parse_revoke_req(duo_revoke_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__RevokeRequest *m;
    int r, has_mac, has_code;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__revoke_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__RevokeRequest *)pm;
    has_mac = m->mac.len != 0;
    has_code = m->revocation_code != NULL && m->revocation_code[0] != '\0';
    if (m->citizen_id != NULL && m->citizen_id[0] != '\0') {
        r = DUO_E_BAD_FIELD;
        if (!has_code || has_mac || m->key_id.len != 0 || !duo__wire_code_ok(m->citizen_id, DUO_CITIZEN_ID_MAX + 1)) {
            goto out;
        }
        memcpy(out->citizen_id, m->citizen_id, strlen(m->citizen_id) + 1);
        out->by_citizen = 1;
        DUO__FIX(out->device_nonce, m->device_nonce); /* as in every request (and the builder always emits it) */
    } else {
        DUO__FIX(out->key_id, m->key_id);
        DUO__FIX(out->device_nonce, m->device_nonce);
    }
    r = DUO_E_BAD_FIELD;
    if (has_mac == has_code) {
        goto out;
    }
    if (has_mac) {
        DUO__FIX(out->mac, m->mac);
        out->has_mac = 1;
    } else {
        if (!duo__wire_code_ok(m->revocation_code, DUO_REVOCATION_CODE_MAX + 1)) {
            goto out;
        }
        memcpy(out->revocation_code, m->revocation_code, strlen(m->revocation_code) + 1);
        out->has_mac = 0;
    }
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

/* has_mac must be 0 or 1; with has_mac the code must be empty, without it the
 * code must be valid (so the builder never emits what the parser rejects). */
int duo_wire_build_revoke_req(uint8_t **out, size_t *out_len, const duo_revoke_req *msg) {
    Duosign__V1__RevokeRequest m = DUOSIGN__V1__REVOKE_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (msg->by_citizen == 1) {
        if (msg->has_mac != 0 || !duo__wire_code_ok(msg->citizen_id, sizeof msg->citizen_id)) {
            return DUO_E_INVALID_ARG;
        }
        m.citizen_id = (char *)(uintptr_t)msg->citizen_id;
    } else if (msg->by_citizen == 0) {
        m.key_id = DUO__BD(msg->key_id);
    } else {
        return DUO_E_INVALID_ARG;
    }
    m.device_nonce = DUO__BD(msg->device_nonce);
    if (msg->has_mac == 1) {
        if (msg->revocation_code[0] != '\0') {
            return DUO_E_INVALID_ARG;
        }
        m.mac = DUO__BD(msg->mac);
    } else if (msg->has_mac == 0) {
        if (!duo__wire_code_ok(msg->revocation_code, sizeof msg->revocation_code)) {
            return DUO_E_INVALID_ARG;
        }
        m.revocation_code = (char *)(uintptr_t)msg->revocation_code;
    } else {
        return DUO_E_INVALID_ARG;
    }
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- RevokeResponse (empty) ---- */
int duo_wire_build_revoke_resp(uint8_t **out, size_t *out_len) {
    Duosign__V1__RevokeResponse m = DUOSIGN__V1__REVOKE_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    return duo__wire_pack(out, out_len, &m.base);
}

int duo_wire_parse_revoke_resp(const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    int r = duo__wire_unpack(&pm, &duosign__v1__revoke_response__descriptor, in, in_len);
    duo__wire_unpacked_free(pm);
    return r;
}

/* ---- StatusRequest ---- */
int duo_wire_parse_status_req(duo_status_req *out, const uint8_t *in, size_t in_len) {
    return duo__parse_kid_nonce_mac(out, &duosign__v1__status_request__descriptor, in, in_len);
}

int duo_wire_build_status_req(uint8_t **out, size_t *out_len, const duo_status_req *msg) {
    Duosign__V1__StatusRequest m = DUOSIGN__V1__STATUS_REQUEST__INIT;

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
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- StatusResponse ----
 * state must be one of the KeyState values (0..5; UNSPECIFIED is accepted
 * here, the device decides what it means). public_key is always required. */
int duo_wire_parse_status_resp(duo_status_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__StatusResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__status_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__StatusResponse *)pm;
    if ((int)m->state < DUO_KEY_STATE_UNSPECIFIED || (int)m->state > DUO_KEY_STATE_REVOKED) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    out->state = (duo_key_state)m->state;
    out->pin_attempts_left = m->pin_attempts_left;
    out->locked_until = m->locked_until;
    DUO__FIX(out->public_key, m->public_key);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_status_resp(uint8_t **out, size_t *out_len, const duo_status_resp *msg) {
    Duosign__V1__StatusResponse m = DUOSIGN__V1__STATUS_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || (int)msg->state < DUO_KEY_STATE_UNSPECIFIED || (int)msg->state > DUO_KEY_STATE_REVOKED) {
        return DUO_E_INVALID_ARG;
    }
    m.state = (Duosign__V1__StatusResponse__KeyState)msg->state;
    m.pin_attempts_left = msg->pin_attempts_left;
    m.locked_until = msg->locked_until;
    m.public_key = DUO__BD(msg->public_key);
    return duo__wire_pack(out, out_len, &m.base);
}
