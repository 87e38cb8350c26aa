/* duosign wire layer: IssueCertificate (certificates inside enrolment,
 * issue 16). Encodings only; the cloud checks the MAC, the request and the
 * key (cloud_half/daemon/rpc_cert.c). */
#include <string.h>

#include "duosign/mem.h"
#include "wire_internal.h"

/* ---- IssueCertificateRequest ---- */
int duo_wire_parse_issue_cert_req(duo_issue_cert_req *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__IssueCertificateRequest *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__issue_certificate_request__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__IssueCertificateRequest *)pm;
    DUO__FIX(out->key_id, m->key_id);
    DUO__FIX(out->device_nonce, m->device_nonce);
    DUO__FIX(out->mac, m->mac);
    if (m->csr.len > sizeof out->csr) {
        r = DUO_E_BAD_FIELD; /* empty is allowed: a fetch */
        goto out;
    }
    if (m->csr.len > 0) {
        memcpy(out->csr, m->csr.data, m->csr.len);
    }
    out->csr_len = m->csr.len;
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_issue_cert_req(uint8_t **out, size_t *out_len, const duo_issue_cert_req *msg) {
    Duosign__V1__IssueCertificateRequest m = DUOSIGN__V1__ISSUE_CERTIFICATE_REQUEST__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || msg->csr_len > sizeof msg->csr) {
        return DUO_E_INVALID_ARG;
    }
    m.key_id = DUO__BD(msg->key_id);
    m.device_nonce = DUO__BD(msg->device_nonce);
    m.csr = duo__wire_bd(msg->csr, msg->csr_len);
    m.mac = DUO__BD(msg->mac);
    return duo__wire_pack(out, out_len, &m.base);
}

/* ---- IssueCertificateResponse ---- */
int duo_wire_parse_issue_cert_resp(duo_issue_cert_resp *out, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    const Duosign__V1__IssueCertificateResponse *m;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    if ((r = duo__wire_unpack(&pm, &duosign__v1__issue_certificate_response__descriptor, in, in_len)) != DUO_OK) {
        goto out;
    }
    m = (const Duosign__V1__IssueCertificateResponse *)pm;
    if (m->certificate.len < 1 || m->certificate.len > sizeof out->certificate) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    memcpy(out->certificate, m->certificate.data, m->certificate.len);
    out->certificate_len = m->certificate.len;
    r = DUO_OK;
out:
    duo__wire_unpacked_free(pm);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_wire_build_issue_cert_resp(uint8_t **out, size_t *out_len, const duo_issue_cert_resp *msg) {
    Duosign__V1__IssueCertificateResponse m = DUOSIGN__V1__ISSUE_CERTIFICATE_RESPONSE__INIT;

    if (out == NULL || out_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    *out_len = 0;
    if (msg == NULL || msg->certificate_len < 1 || msg->certificate_len > sizeof msg->certificate) {
        return DUO_E_INVALID_ARG;
    }
    m.certificate = duo__wire_bd(msg->certificate, msg->certificate_len);
    return duo__wire_pack(out, out_len, &m.base);
}
