/* duosign device library: relying parties' requests (DESIGN 8): waiting
 * for them (long poll), claiming one by its link, refusing one, and
 * approving one (a signature over the digest the request fixes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device_internal.h"
#include "duosign.pb-c.h"
#include "duosign/mem.h"
#include "duosign/rp_digest.h"

/* A PendingRequest as received: every field checked before it is copied
 * (what the app shows must be well-formed and bounded). */
static int pending_copy(duo_device_request *out, const Duosign__V1__PendingRequest *p) {
    memset(out, 0, sizeof *out);
    if (p == NULL || p->request_id.len != 16 || (p->kind != 1 && p->kind != 2) || p->digest.len != 32 ||
        p->rp_name == NULL || p->display_text == NULL || p->verification_code == NULL ||
        strlen(p->rp_name) > DUO_DEVICE_RP_NAME_MAX || strlen(p->verification_code) != 4 ||
        !duo_rp_display_text_ok(p->display_text) || (p->rp_name[0] && !duo_rp_display_text_ok(p->rp_name)))
        return DUO_E_BAD_FIELD;
    for (int i = 0; i < 4; i++)
        if (p->verification_code[i] < '0' || p->verification_code[i] > '9') return DUO_E_BAD_FIELD;
    memcpy(out->request_id, p->request_id.data, 16);
    out->kind = (int)p->kind;
    memcpy(out->rp_name, p->rp_name, strlen(p->rp_name) + 1);
    memcpy(out->display_text, p->display_text, strlen(p->display_text) + 1);
    memcpy(out->verification_code, p->verification_code, 5);
    memcpy(out->digest, p->digest.data, 32);
    out->expires_at = p->expires_at;
    return DUO_OK;
}

/* Packs m, sends it, unpacks the answer as rdesc (NULL: an empty answer). */
static int rq_call(duo_device_ctx *ctx, const char *method, const ProtobufCMessage *m,
                   const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **out) {
    size_t n = protobuf_c_message_get_packed_size(m), rsl = 0;
    uint8_t *rq = malloc(n ? n : 1), *rs = NULL;
    if (rq == NULL) return DUO_E_NOMEM;
    protobuf_c_message_pack(m, rq);
    int r = duo__dev_rpc(ctx, method, rq, n, &rs, &rsl);
    duo__dev_free_req(rq, n);
    if (r != DUO_OK) return r;
    if (rdesc != NULL) {
        *out = protobuf_c_message_unpack(rdesc, NULL, rsl, rs ? rs : (const uint8_t *)"");
        if (*out == NULL) r = DUO_E_DECODE;
    }
    duo__dev_release(ctx, rs, rsl);
    return r;
}

int duo_device_wait_requests(duo_device_ctx *ctx, unsigned timeout_ms, duo_device_request *out, size_t cap, size_t *n) {
    uint8_t key_id[16], nonce[32], mi[32], mac[32];
    ProtobufCMessage *pm = NULL;
    int r;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    duo__dev_begin(ctx);
    if (n == NULL || (out == NULL && cap != 0)) return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    *n = 0;
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) return duo__dev_finish(ctx, r);
    if ((r = duo__dev_fill_mac_req(ctx, key_id, nonce)) != DUO_OK ||
        (r = duo_wire_mac_input_wait_requests(mi, key_id, nonce, timeout_ms)) != DUO_OK ||
        (r = duo_mac_compute(mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    Duosign__V1__WaitRequestsRequest m = DUOSIGN__V1__WAIT_REQUESTS_REQUEST__INIT;
    m.key_id = (ProtobufCBinaryData){16, key_id};
    m.device_nonce = (ProtobufCBinaryData){32, nonce};
    m.timeout_ms = timeout_ms;
    m.mac = (ProtobufCBinaryData){32, mac};
    if ((r = rq_call(ctx, "WaitRequests", &m.base, &duosign__v1__wait_requests_response__descriptor, &pm)) != DUO_OK)
        goto out;
    const Duosign__V1__WaitRequestsResponse *a = (const void *)pm;
    for (size_t i = 0; i < a->n_requests && *n < cap && r == DUO_OK; i++)
        if ((r = pending_copy(&out[*n], a->requests[i])) == DUO_OK) (*n)++;
out:
    if (pm != NULL) protobuf_c_message_free_unpacked(pm, NULL);
    duo_memzero(mac, sizeof mac);
    return duo__dev_finish(ctx, r);
}

int duo_device_refuse_request(duo_device_ctx *ctx, const uint8_t request_id[16]) {
    uint8_t key_id[16], nonce[32], mi[32], mac[32];
    int r;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    duo__dev_begin(ctx);
    if (request_id == NULL) return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) return duo__dev_finish(ctx, r);
    if ((r = duo__dev_fill_mac_req(ctx, key_id, nonce)) != DUO_OK ||
        (r = duo_wire_mac_input_refuse_request(mi, key_id, nonce, request_id)) != DUO_OK ||
        (r = duo_mac_compute(mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    Duosign__V1__RefuseRequestRequest m = DUOSIGN__V1__REFUSE_REQUEST_REQUEST__INIT;
    m.key_id = (ProtobufCBinaryData){16, key_id};
    m.device_nonce = (ProtobufCBinaryData){32, nonce};
    m.request_id = (ProtobufCBinaryData){16, (uint8_t *)(uintptr_t)request_id};
    m.mac = (ProtobufCBinaryData){32, mac};
    r = rq_call(ctx, "RefuseRequest", &m.base, NULL, NULL);
out:
    duo_memzero(mac, sizeof mac);
    return duo__dev_finish(ctx, r);
}

int duo_device_claim_link(duo_device_ctx *ctx, const char *link, duo_device_request *out) {
    uint8_t key_id[16], nonce[32], mi[32], mac[32];
    ProtobufCMessage *pm = NULL;
    int r;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    duo__dev_begin(ctx);
    if (link == NULL || out == NULL || strlen(link) == 0 || strlen(link) > 80)
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) return duo__dev_finish(ctx, r);
    if ((r = duo__dev_fill_mac_req(ctx, key_id, nonce)) != DUO_OK ||
        (r = duo_wire_mac_input_claim_link(mi, key_id, nonce, link)) != DUO_OK ||
        (r = duo_mac_compute(mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    Duosign__V1__ClaimLinkRequest m = DUOSIGN__V1__CLAIM_LINK_REQUEST__INIT;
    m.key_id = (ProtobufCBinaryData){16, key_id};
    m.device_nonce = (ProtobufCBinaryData){32, nonce};
    m.link = (char *)(uintptr_t)link;
    m.mac = (ProtobufCBinaryData){32, mac};
    if ((r = rq_call(ctx, "ClaimLink", &m.base, &duosign__v1__claim_link_response__descriptor, &pm)) != DUO_OK)
        goto out;
    r = pending_copy(out, ((const Duosign__V1__ClaimLinkResponse *)pm)->request);
out:
    if (pm != NULL) protobuf_c_message_free_unpacked(pm, NULL);
    duo_memzero(mac, sizeof mac);
    return duo__dev_finish(ctx, r);
}

int duo_device_approve(duo_device_ctx *ctx, const duo_device_request *req, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                       const uint8_t *pin, size_t pin_len) {
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    if (req == NULL) {
        duo__dev_begin(ctx);
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    /* What the request's kind is for: a login (the auth key) or a document
     * (the sign key); no login challenge, the request fixes the digest. */
    duo__dev_sign_purpose sp = {req->kind == DUO_DEVICE_REQUEST_AUTH ? DUO_SIGN_PURPOSE_LOGIN
                                                                     : DUO_SIGN_PURPOSE_DOCUMENT,
                                NULL, 0, req->request_id};
    return duo__dev_sign_common(ctx, sig, req->digest, &sp, pin, pin_len);
}
