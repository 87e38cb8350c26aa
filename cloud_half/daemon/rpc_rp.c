/* duosign-cloud: the RelyingParty service's RPCs (proto/relying_party.proto,
 * docs/RELYING_PARTIES.md): StartAuthentication, StartSignature, GetSession,
 * CancelSession (RedeemPresentation: rpc_rp_redeem.c). The caller is the registered RP the dispatcher found by its
 * client certificate (c->caller); every field is checked before anything
 * else, in the order of the message; every request, and every result the RP
 * is given, is audited. */
#include <stdio.h>
#include <string.h>

#include "duosign/rp_digest.h"
#include "relying_party.pb-c.h"
#include "rp_keys.h"
#include "rpc.h"

#define GET_TIMEOUT_MAX_MS 30000 /* a long poll's bound: proxies keep 60 s */

static int unpack(ProtobufCMessage **m, const ProtobufCMessageDescriptor *d, const uint8_t *in, size_t n) {
    if (n > DUO_WIRE_MAX_MSG) return DUO_E_MSG_TOO_LARGE;
    *m = protobuf_c_message_unpack(d, NULL, n, in);
    return *m ? DUO_OK : DUO_E_DECODE;
}

static int pack(uint8_t **resp, size_t *resp_len, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *o = malloc(n ? n : 1);
    if (!o) return DUO_E_NOMEM;
    protobuf_c_message_pack(m, o);
    *resp = o;
    *resp_len = n;
    return DUO_OK;
}

/* Audits one line about request v for the RP (best effort: an audit failure
 * is logged by the store and does not undo the request). */
static void audit(duo_rpc *c, const char *kind, const duo_rp_view *v, const char *what) {
    char idh[2 * DUO_RP_ID_BYTES + 1], detail[DUO_AUDIT_DETAIL_MAX + 1];
    duo__hex(idh, v->id, DUO_RP_ID_BYTES);
    snprintf(detail, sizeof detail, "rp '%s' request %s (%s): %s", c->caller->name, idh,
             v->kind == DUO_RPQ_AUTH ? "authentication" : "signature", what);
    duo_audit_event ev = {.kind = kind, .citizen_id = v->citizen, .detail = detail};
    if (duo_keystore_audit_append(c->ks, NULL, &ev) != DUO_OK) { /* the store logged why */
    }
}

static void audit_request(duo_rpc *c, const duo_rp_view *v) {
    char what[DUO_AUDIT_DETAIL_MAX - 128], dh[65];
    duo__hex(dh, v->digest, 32);
    snprintf(what, sizeof what, "shown: code %s, text \"%.200s\"; digest to sign %s%s", v->code, v->display_text, dh,
             v->link[0] ? "; anonymous, by link" : "");
    audit(c, DUO_AUDIT_RP_REQUEST, v, what);
}

/* The checks both starts share: request id, citizen id, display text. */
static int check_common(duo_rpc *c, duo_rp_start *s, const char *request_id, const char *citizen, const char *text,
                        int citizen_required) {
    if (!duo_rp_token_ok(request_id, DUO_RP_REQUEST_ID_MAX)) {
        DETAIL(c->info, "request_id must be 1..%d printable ASCII characters", DUO_RP_REQUEST_ID_MAX);
        return DUO_E_RP_REQUEST_ID;
    }
    if ((citizen_required || citizen[0]) && !duo_rp_token_ok(citizen, DUO_CITIZEN_ID_MAX)) {
        DETAIL(c->info, "citizen_id must be 1..%d printable ASCII characters", DUO_CITIZEN_ID_MAX);
        return DUO_E_RP_CITIZEN_ID;
    }
    if (!duo_rp_display_text_ok(text)) {
        DETAIL(c->info, "display_text must be 1..%d bytes of UTF-8 without control characters (newline allowed)",
               DUO_RP_DISPLAY_TEXT_MAX);
        return DUO_E_RP_DISPLAY_TEXT;
    }
    memcpy(s->rp_fp, c->info->peer_cert_sha256, 32);
    snprintf(s->rp_name, sizeof s->rp_name, "%s", c->caller->name);
    snprintf(s->rp_request_id, sizeof s->rp_request_id, "%s", request_id);
    snprintf(s->citizen, sizeof s->citizen, "%s", citizen);
    snprintf(s->display_text, sizeof s->display_text, "%s", text);
    return DUO_OK;
}

/* Starts (or finds again) the request; a new one is audited, and completed
 * at once with ACCOUNT_UNUSABLE when the citizen has no usable key of its
 * role (the RP learns it from GetSession, as for any other end). */
static int start(duo_rpc *c, const duo_rp_start *s, duo_rp_view *v) {
    int created = 0;
    int r = duo__rp_room_start(c->rp, s, v, &created);
    if (r == DUO_E_RP_TOO_MANY)
        DETAIL(c->info, "too many open requests for this relying party or this citizen; retry later");
    else if (r == DUO_E_RP_IDEMPOTENCY)
        DETAIL(c->info, "request_id '%s' was already used with different fields", s->rp_request_id);
    if (r != DUO_OK || !created) return r;
    audit_request(c, v);
    if (s->citizen[0] && !duo__rp_citizen_usable(c->ks, s->citizen, s->kind)) {
        duo__rp_room_unusable(c->rp, v->id);
        audit(c, DUO_AUDIT_RP_RESULT, v, "ACCOUNT_UNUSABLE (no active, certified key of this role)");
    }
    return DUO_OK;
}

static void session_id_hex(char out[2 * DUO_RP_ID_BYTES + 1], const uint8_t id[DUO_RP_ID_BYTES]) {
    duo__hex(out, id, DUO_RP_ID_BYTES);
}

int duo__rpc_rp_start_auth(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    duo_rp_start s;
    duo_rp_view v;
    memset(&s, 0, sizeof s);
    int r = unpack(&pm, &duosign__v1__start_authentication_request__descriptor, in, in_len);
    if (r != DUO_OK) return r;
    const Duosign__V1__StartAuthenticationRequest *m = (const void *)pm;
    if ((r = check_common(c, &s, m->request_id, m->citizen_id, m->display_text, 0)) != DUO_OK) goto out;
    if (m->challenge.len < DUO_RP_CHALLENGE_MIN || m->challenge.len > DUO_RP_CHALLENGE_MAX) {
        DETAIL(c->info, "challenge must be %d..%d bytes, got %zu", DUO_RP_CHALLENGE_MIN, DUO_RP_CHALLENGE_MAX,
               m->challenge.len);
        r = DUO_E_RP_CHALLENGE;
        goto out;
    }
    s.kind = DUO_RPQ_AUTH;
    memcpy(s.challenge, m->challenge.data, m->challenge.len);
    s.challenge_len = m->challenge.len;
    if ((r = start(c, &s, &v)) != DUO_OK) goto out;
    char sid[2 * DUO_RP_ID_BYTES + 1];
    session_id_hex(sid, v.id);
    Duosign__V1__StartAuthenticationResponse o = DUOSIGN__V1__START_AUTHENTICATION_RESPONSE__INIT;
    o.session_id = sid;
    o.verification_code = v.code;
    o.link = v.link;
    o.expires_at = v.expires_at;
    r = pack(resp, resp_len, &o.base);
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    return r;
}

int duo__rpc_rp_start_sign(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    duo_rp_start s;
    duo_rp_view v;
    memset(&s, 0, sizeof s);
    int r = unpack(&pm, &duosign__v1__start_signature_request__descriptor, in, in_len);
    if (r != DUO_OK) return r;
    const Duosign__V1__StartSignatureRequest *m = (const void *)pm;
    if ((r = check_common(c, &s, m->request_id, m->citizen_id, m->display_text, 1)) != DUO_OK) goto out;
    size_t want = duo_rp_hash_len((int)m->hash_algorithm);
    if (want == 0 || m->digest.len != want) {
        DETAIL(c->info, "digest must be the %zu bytes of its hash_algorithm (SHA256 32, SHA384 48, SHA512 64), got %zu",
               want, m->digest.len);
        r = DUO_E_RP_DIGEST;
        goto out;
    }
    if (m->cms) {
        DETAIL(c->info, "cms = true (signed attributes built by the cloud) is not implemented yet; send the digest of "
                        "your own signed attributes");
        r = DUO_E_UNSUPPORTED;
        goto out;
    }
    s.kind = DUO_RPQ_SIGN;
    memcpy(s.rp_digest, m->digest.data, m->digest.len);
    s.rp_digest_len = m->digest.len;
    s.hash_alg = (int)m->hash_algorithm;
    if ((r = start(c, &s, &v)) != DUO_OK) goto out;
    char sid[2 * DUO_RP_ID_BYTES + 1];
    session_id_hex(sid, v.id);
    Duosign__V1__StartSignatureResponse o = DUOSIGN__V1__START_SIGNATURE_RESPONSE__INIT;
    o.session_id = sid;
    o.verification_code = v.code;
    o.expires_at = v.expires_at;
    r = pack(resp, resp_len, &o.base);
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    return r;
}

/* The session id as the RP sent it (32 hex digits), or why not. */
static int parse_session(duo_rpc *c, uint8_t id[DUO_RP_ID_BYTES], const char *s) {
    if (s == NULL || strlen(s) != 2 * DUO_RP_ID_BYTES || duo__unhex(id, DUO_RP_ID_BYTES, s) != DUO_OK) {
        DETAIL(c->info, "session_id must be the 32 hex digits a Start call returned");
        return DUO_E_RP_SESSION_UNKNOWN;
    }
    return DUO_OK;
}

static const char *result_name(int r) {
    static const char *n[] = {"RUNNING",          "OK",         "USER_REFUSED", "TIMEOUT",
                              "ACCOUNT_UNUSABLE", "PIN_LOCKED", "CANCELLED"};
    return r >= 0 && r <= DUO_RPR_CANCELLED ? n[r] : "?";
}

int duo__rpc_rp_get_session(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    uint8_t id[DUO_RP_ID_BYTES];
    duo_rp_view *v = malloc(sizeof *v);
    if (!v) return DUO_E_NOMEM;
    int r = unpack(&pm, &duosign__v1__get_session_request__descriptor, in, in_len);
    if (r != DUO_OK) goto out;
    const Duosign__V1__GetSessionRequest *m = (const void *)pm;
    if ((r = parse_session(c, id, m->session_id)) != DUO_OK) goto out;
    unsigned t = m->timeout_ms > GET_TIMEOUT_MAX_MS ? GET_TIMEOUT_MAX_MS : m->timeout_ms;
    int64_t left = duo_call_info_remaining_ms(c->info);
    if (left < (int64_t)t + 500) t = left > 500 ? (unsigned)(left - 500) : 0; /* answer before the deadline */
    duo__rpc_ks_pause(c); /* no store connection held while waiting */
    r = duo__rp_room_get(c->rp, c->info->peer_cert_sha256, id, t, v);
    duo__rpc_ks_resume(c);
    if (r != DUO_OK) {
        DETAIL(c->info, "no such session for this relying party (unknown, erased after 5 minutes, or another's)");
        goto out;
    }
    Duosign__V1__GetSessionResponse o = DUOSIGN__V1__GET_SESSION_RESPONSE__INIT;
    int done = v->state == DUO_RPQ_COMPLETE;
    o.state =
        done ? DUOSIGN__V1__GET_SESSION_RESPONSE__STATE__COMPLETE : DUOSIGN__V1__GET_SESSION_RESPONSE__STATE__RUNNING;
    o.result = done ? (Duosign__V1__GetSessionResponse__EndResult)v->result : 0;
    o.citizen_id = v->citizen;
    if (done && v->result == DUO_RPR_OK) {
        o.signature = (ProtobufCBinaryData){64, v->signature};
        o.signed_digest = (ProtobufCBinaryData){32, v->digest};
        o.certificate = (ProtobufCBinaryData){v->cert_len, v->cert};
        if (v->kind == DUO_RPQ_AUTH) o.server_random = (ProtobufCBinaryData){32, v->server_random};
    }
    r = pack(resp, resp_len, &o.base);
    if (r == DUO_OK && done) {
        char what[96];
        snprintf(what, sizeof what, "returned to the RP: %s%s", result_name(v->result),
                 v->result == DUO_RPR_OK ? " with the signature and certificate" : "");
        audit(c, DUO_AUDIT_RP_RESULT, v, what);
    }
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    free(v);
    return r;
}

int duo__rpc_rp_cancel(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    uint8_t id[DUO_RP_ID_BYTES];
    int r = unpack(&pm, &duosign__v1__cancel_session_request__descriptor, in, in_len);
    if (r != DUO_OK) return r;
    const Duosign__V1__CancelSessionRequest *m = (const void *)pm;
    if ((r = parse_session(c, id, m->session_id)) == DUO_OK &&
        (r = duo__rp_room_cancel(c->rp, c->info->peer_cert_sha256, id)) != DUO_OK)
        DETAIL(c->info, "no such session for this relying party");
    protobuf_c_message_free_unpacked(pm, NULL);
    if (r != DUO_OK) return r;
    *resp = NULL;
    *resp_len = 0;
    return DUO_OK;
}
