/* duosign-oidc: RelyingParty client (rpclient.h). */
#include "rpclient.h"

#include <stdio.h>
#include <string.h>

#include "duosign/device_grpc.h"
#include "relying_party.pb-c.h"

#define SVC "/duosign.v1.RelyingParty/"

/* One unary call on a fresh channel; *resp freed with free_resp. */
static int call(const rp_config *c, unsigned timeout_ms, const char *method, const ProtobufCMessage *req,
                uint8_t **resp, size_t *resp_len, char *err, size_t err_cap) {
    duo_grpc_transport *t = NULL;
    uint8_t buf[1024];
    size_t n = protobuf_c_message_get_packed_size(req);
    int r;
    if (n > sizeof buf) return DUO_E_MSG_TOO_LARGE;
    protobuf_c_message_pack(req, buf);
    if ((r = duo_grpc_transport_new_mtls(&t, c->target, c->ca_pem, c->ca_pem ? strlen(c->ca_pem) : 0, c->cert_pem,
                                         c->key_pem, timeout_ms)) != DUO_OK) {
        snprintf(err, err_cap, "cannot open a channel to %s: %s", c->target, duo_strerror(r));
        return r;
    }
    r = duo_grpc_transport_call(t, method, buf, n, resp, resp_len, err, err_cap);
    if (r != DUO_OK) {
        duo_grpc_transport_free(t);
        return r;
    }
    duo_grpc_transport_free(t);
    return DUO_OK;
}

/* The link goes into the page's QR code and an href: only a duosign: or
 * https: URI of printable ASCII without quotes or angle brackets. */
static int link_ok(const char *s) {
    if (s == NULL || (strncmp(s, "duosign:", 8) != 0 && strncmp(s, "https://", 8) != 0)) return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"'<>\\`", *p)) return 0;
    return 1;
}

static int digits4(const char *s) { return s != NULL && strlen(s) == 4 && strspn(s, "0123456789") == 4; }

int rp_start_auth(const rp_config *c, const char *request_id, const uint8_t challenge[32], const char *display_text,
                  rp_started *out, char *err, size_t err_cap) {
    Duosign__V1__StartAuthenticationRequest req = DUOSIGN__V1__START_AUTHENTICATION_REQUEST__INIT;
    Duosign__V1__StartAuthenticationResponse *res = NULL;
    uint8_t *resp = NULL;
    size_t rl = 0;
    int r;
    memset(out, 0, sizeof *out);
    req.request_id = (char *)request_id;
    req.citizen_id = (char *)"";
    req.challenge.data = (uint8_t *)challenge;
    req.challenge.len = 32;
    req.display_text = (char *)display_text;
    if ((r = call(c, 0, SVC "StartAuthentication", &req.base, &resp, &rl, err, err_cap)) != DUO_OK) return r;
    res = duosign__v1__start_authentication_response__unpack(NULL, rl, resp);
    duo_grpc_transport_free_resp(NULL, resp, rl);
    r = DUO_E_BAD_FIELD;
    if (res == NULL) {
        snprintf(err, err_cap, "the signer's StartAuthentication answer does not decode");
        return DUO_E_DECODE;
    }
    if (res->session_id == NULL || res->session_id[0] == '\0' || strlen(res->session_id) >= sizeof out->session_id ||
        !digits4(res->verification_code) || !link_ok(res->link) || strlen(res->link) >= sizeof out->link) {
        snprintf(err, err_cap,
                 "the signer's StartAuthentication answer lacks a session, a 4-digit code or a duosign:/https: link");
        goto out;
    }
    snprintf(out->session_id, sizeof out->session_id, "%s", res->session_id);
    snprintf(out->verification_code, sizeof out->verification_code, "%s", res->verification_code);
    snprintf(out->link, sizeof out->link, "%s", res->link);
    out->expires_at = res->expires_at;
    r = DUO_OK;
out:
    duosign__v1__start_authentication_response__free_unpacked(res, NULL);
    return r;
}

/* Fields of a successful authentication, length-checked before use. */
static int take_ok(const Duosign__V1__GetSessionResponse *res, rp_session *out) {
    if (res->signature.len != 64 || res->signed_digest.len != 32 || res->server_random.len != 32 ||
        res->certificate.len == 0 || res->certificate.len > sizeof out->certificate || res->citizen_id == NULL ||
        res->citizen_id[0] == '\0' || strlen(res->citizen_id) >= sizeof out->citizen_id)
        return DUO_E_BAD_FIELD;
    memcpy(out->signature, res->signature.data, 64);
    memcpy(out->signed_digest, res->signed_digest.data, 32);
    memcpy(out->server_random, res->server_random.data, res->server_random.len);
    out->server_random_len = res->server_random.len;
    memcpy(out->certificate, res->certificate.data, res->certificate.len);
    out->certificate_len = res->certificate.len;
    snprintf(out->citizen_id, sizeof out->citizen_id, "%s", res->citizen_id);
    return DUO_OK;
}

int rp_get_session(const rp_config *c, const char *session_id, unsigned timeout_ms, rp_session *out, char *err,
                   size_t err_cap) {
    Duosign__V1__GetSessionRequest req = DUOSIGN__V1__GET_SESSION_REQUEST__INIT;
    Duosign__V1__GetSessionResponse *res = NULL;
    uint8_t *resp = NULL;
    size_t rl = 0;
    int r;
    memset(out, 0, sizeof *out);
    req.session_id = (char *)session_id;
    req.timeout_ms = timeout_ms;
    /* The channel's deadline outlives the poll by 10 s: the poll ends first. */
    if ((r = call(c, timeout_ms + 10000, SVC "GetSession", &req.base, &resp, &rl, err, err_cap)) != DUO_OK) return r;
    res = duosign__v1__get_session_response__unpack(NULL, rl, resp);
    duo_grpc_transport_free_resp(NULL, resp, rl);
    if (res == NULL) {
        snprintf(err, err_cap, "the signer's GetSession answer does not decode");
        return DUO_E_DECODE;
    }
    out->state = (int)res->state;
    out->result = (int)res->result;
    r = DUO_OK;
    if (out->state == RP_COMPLETE && out->result == RP_OK && (r = take_ok(res, out)) != DUO_OK)
        snprintf(err, err_cap, "the signer's GetSession answer has a field of the wrong length");
    else if (out->state != RP_RUNNING && out->state != RP_COMPLETE) {
        snprintf(err, err_cap, "the signer's GetSession answer has no state");
        r = DUO_E_BAD_FIELD;
    }
    duosign__v1__get_session_response__free_unpacked(res, NULL);
    return r;
}
