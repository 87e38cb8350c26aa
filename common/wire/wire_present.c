/* duosign wire layer: presentation codes (issue 19): PresentationCodeRequest
 * and PresentationCodeResponse (the request's MAC input is in wire_mac.c). */
#include <string.h>

#include "duosign/mem.h"
#include "wire_internal.h"

int duo_wire_doc_type_ok(const char *s) {
    size_t n = s == NULL ? 0 : strnlen(s, DUO_WIRE_DOC_TYPE_MAX + 1);
    if (n == 0 || n > DUO_WIRE_DOC_TYPE_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
    return 1;
}

char duo_wire_ean13_check(const char digits[12]) {
    int sum = 0;
    for (int i = 0; i < 12; i++) sum += (digits[i] - '0') * (i % 2 ? 3 : 1);
    return (char)('0' + (10 - sum % 10) % 10);
}

static int code_ok(const char *s) {
    size_t n = s == NULL ? 0 : strnlen(s, DUO_WIRE_CODE_MAX + 1);
    return n >= DUO_WIRE_CODE_MIN && n <= DUO_WIRE_CODE_MAX && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == n;
}

static int barcode_ok(const char *s) {
    size_t n = s == NULL ? 0 : strnlen(s, DUO_WIRE_BARCODE_DIGITS + 1);
    return n == DUO_WIRE_BARCODE_DIGITS && strspn(s, "0123456789") == n && duo_wire_ean13_check(s) == s[12];
}

/* ---- PresentationCodeRequest ---- */
int duo_wire_parse_presentation_code_req(duo_presentation_code_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__PresentationCodeRequest *m;
    int r;

    if (out == NULL) return DUO_E_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__presentation_code_request__descriptor, in, in_len)) != DUO_OK)
        goto out;
    m = (const Duosign__V1__PresentationCodeRequest *)pm;
    DUO__FIX(out->key_id, m->key_id);
    DUO__FIX(out->device_nonce, m->device_nonce);
    DUO__FIX(out->mac, m->mac);
    if (!duo_wire_doc_type_ok(m->doc_type)) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    memcpy(out->doc_type, m->doc_type, strlen(m->doc_type) + 1);
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) duo_memzero(out, sizeof *out);
    return r;
}

int duo_wire_build_presentation_code_req(uint8_t **out, size_t *out_len, const duo_presentation_code_req *msg) {
    Duosign__V1__PresentationCodeRequest m = DUOSIGN__V1__PRESENTATION_CODE_REQUEST__INIT;

    if (out == NULL || out_len == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || !duo_wire_doc_type_ok(msg->doc_type)) return DUO_E_INVALID_ARG;
    m.key_id = DUO__BD(msg->key_id);
    m.device_nonce = DUO__BD(msg->device_nonce);
    m.doc_type = (char *)(uintptr_t)msg->doc_type;
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- PresentationCodeResponse ---- */
int duo_wire_parse_presentation_code_resp(duo_presentation_code_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__PresentationCodeResponse *m;
    int r;

    if (out == NULL) return DUO_E_INVALID_ARG;
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__presentation_code_response__descriptor, in, in_len)) != DUO_OK)
        goto out;
    m = (const Duosign__V1__PresentationCodeResponse *)pm;
    if (!code_ok(m->code) || !barcode_ok(m->barcode) || m->issued_at <= 0 || m->expires_at <= m->issued_at) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    memcpy(out->code, m->code, strlen(m->code) + 1);
    memcpy(out->barcode, m->barcode, DUO_WIRE_BARCODE_DIGITS + 1);
    out->issued_at = m->issued_at;
    out->expires_at = m->expires_at;
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) duo_memzero(out, sizeof *out);
    return r;
}

int duo_wire_build_presentation_code_resp(uint8_t **out, size_t *out_len, const duo_presentation_code_resp *msg) {
    Duosign__V1__PresentationCodeResponse m = DUOSIGN__V1__PRESENTATION_CODE_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || !code_ok(msg->code) || !barcode_ok(msg->barcode) || msg->issued_at <= 0 ||
        msg->expires_at <= msg->issued_at)
        return DUO_E_INVALID_ARG;
    m.code = (char *)(uintptr_t)msg->code;
    m.barcode = (char *)(uintptr_t)msg->barcode;
    m.issued_at = msg->issued_at;
    m.expires_at = msg->expires_at;
    return duo__wire_pack(out, out_len, &m.base);
}
