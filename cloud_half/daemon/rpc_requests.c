/* duosign-cloud: the device's side of relying parties' requests
 * (docs/RELYING_PARTIES.md): WaitRequests (long poll), RefuseRequest,
 * ClaimLink. Each is MAC-authenticated like Status (key id, device nonce,
 * the method's field, under the current device secret); the key's citizen
 * and role decide which requests it sees. Approval is SignStart with
 * request_id (rpc_sign.c). */
#include <stdio.h>
#include <string.h>

#include "duosign.pb-c.h"
#include "duosign/mem.h"
#include "rp_keys.h"
#include "rpc.h"

#define WAIT_MAX_MS 30000

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

/* Checks the lengths of key id and nonce, then authenticates the request
 * (the MAC over mi) and loads the key: active, with its role. */
static int auth(duo_rpc *c, duo_key_info *ki, int *kind, const ProtobufCBinaryData *key_id,
                const ProtobufCBinaryData *nonce, const ProtobufCBinaryData *mac, const uint8_t mi[32]) {
    uint8_t used[32];
    duo_key_secrets *sec = NULL;
    int r;
    if (key_id->len != DUO_KEY_ID_BYTES || nonce->len != DUO_NONCE_BYTES || mac->len != DUO_MAC_BYTES)
        return DUO_E_BAD_FIELD;
    duo__call_key(c->info, key_id->data);
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    if ((r = duo__policy_key_load(c->ks, ki, sec, key_id->data, c->info)) != DUO_OK) goto out;
    if ((r = duo__policy_authenticate(c->ks, ki, sec, key_id->data, mi, mac->data, used, NULL, 0, c->info)) != DUO_OK)
        goto out;
    if (ki->state != DUO_KEY_STATE_ACTIVE && ki->state != DUO_KEY_STATE_LOCKED) {
        r = duo__policy_final_err(ki, c->info);
        goto out;
    }
    if (duo__rp_key_role(c->ks, key_id->data, kind, NULL, NULL) != DUO_OK) {
        DETAIL(c->info, "this key has no certificate: relying parties' requests need a certified key");
        r = DUO_E_RP_WRONG_ROLE;
    }
out:
    duo_memzero(used, sizeof used);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* A request as the device sees it. */
static void to_pending(Duosign__V1__PendingRequest *p, duo_rp_view *v) {
    duosign__v1__pending_request__init(p);
    p->request_id = (ProtobufCBinaryData){DUO_RP_ID_BYTES, v->id};
    p->kind = (Duosign__V1__PendingRequest__Kind)v->kind;
    p->rp_name = v->rp_name;
    p->display_text = v->display_text;
    p->verification_code = v->code;
    p->digest = (ProtobufCBinaryData){32, v->digest};
    p->expires_at = v->expires_at;
}

int duo__rpc_wait_requests(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    duo_key_info ki;
    uint8_t mi[32];
    int kind = 0;
    duo_rp_view *v = calloc(DUO_RP_PENDING_MAX, sizeof *v);
    if (!v) return DUO_E_NOMEM;
    int r = unpack(&pm, &duosign__v1__wait_requests_request__descriptor, in, in_len);
    if (r != DUO_OK) goto out;
    const Duosign__V1__WaitRequestsRequest *m = (const void *)pm;
    if (m->key_id.len != DUO_KEY_ID_BYTES || m->device_nonce.len != DUO_NONCE_BYTES) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    if ((r = duo_wire_mac_input_wait_requests(mi, m->key_id.data, m->device_nonce.data, m->timeout_ms)) != DUO_OK ||
        (r = auth(c, &ki, &kind, &m->key_id, &m->device_nonce, &m->mac, mi)) != DUO_OK)
        goto out;
    unsigned t = m->timeout_ms > WAIT_MAX_MS ? WAIT_MAX_MS : m->timeout_ms;
    int64_t left = duo_call_info_remaining_ms(c->info);
    if (left < (int64_t)t + 500) t = left > 500 ? (unsigned)(left - 500) : 0;
    size_t n = 0, k = 0;
    duo__rpc_ks_pause(c); /* no store connection held while waiting */
    r = duo__rp_room_pending(c->rp, ki.citizen_id, t, v, DUO_RP_PENDING_MAX, &n);
    duo__rpc_ks_resume(c);
    if (r != DUO_OK) goto out;
    Duosign__V1__PendingRequest items[DUO_RP_PENDING_MAX], *ptrs[DUO_RP_PENDING_MAX];
    for (size_t i = 0; i < n; i++) {
        /* Every request of the citizen is listed, each saying which key it
         * needs, so an app polling with one key sees those for the other. */
        to_pending(&items[k], &v[i]);
        ptrs[k] = &items[k];
        k++;
    }
    Duosign__V1__WaitRequestsResponse o = DUOSIGN__V1__WAIT_REQUESTS_RESPONSE__INIT;
    o.n_requests = k;
    o.requests = ptrs;
    r = pack(resp, resp_len, &o.base);
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    free(v);
    return r;
}

static void audit_answer(duo_rpc *c, const duo_key_info *ki, const uint8_t id[16], const char *what) {
    char idh[33], detail[160];
    duo__hex(idh, id, 16);
    snprintf(detail, sizeof detail, "relying-party request %s: %s", idh, what);
    duo_audit_event ev = {
        .kind = DUO_AUDIT_RP_ANSWER, .key_id = ki->key_id, .citizen_id = ki->citizen_id, .detail = detail};
    if (duo_keystore_audit_append(c->ks, NULL, &ev) != DUO_OK) { /* the store logged why */
    }
}

int duo__rpc_refuse_request(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    duo_key_info ki;
    uint8_t mi[32];
    int kind = 0;
    int r = unpack(&pm, &duosign__v1__refuse_request_request__descriptor, in, in_len);
    if (r != DUO_OK) return r;
    const Duosign__V1__RefuseRequestRequest *m = (const void *)pm;
    if (m->key_id.len != DUO_KEY_ID_BYTES || m->device_nonce.len != DUO_NONCE_BYTES ||
        m->request_id.len != DUO_RP_ID_BYTES) {
        r = DUO_E_BAD_FIELD;
        goto out;
    }
    if ((r = duo_wire_mac_input_refuse_request(mi, m->key_id.data, m->device_nonce.data, m->request_id.data)) !=
            DUO_OK ||
        (r = auth(c, &ki, &kind, &m->key_id, &m->device_nonce, &m->mac, mi)) != DUO_OK)
        goto out;
    r = duo__rp_room_refuse(c->rp, ki.citizen_id, m->request_id.data);
    if (r == DUO_E_RP_WRONG_CITIZEN)
        DETAIL(c->info, "this request is addressed to another citizen");
    else if (r == DUO_E_RP_REQUEST_CLOSED)
        DETAIL(c->info, "the request is no longer waiting (answered, cancelled or expired)");
    else if (r == DUO_E_RP_SESSION_UNKNOWN)
        DETAIL(c->info, "no such relying-party request");
    if (r == DUO_OK) audit_answer(c, &ki, m->request_id.data, "the citizen refused it");
    if (r == DUO_OK) {
        *resp = NULL;
        *resp_len = 0;
    }
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    return r;
}

int duo__rpc_claim_link(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    duo_key_info ki;
    uint8_t mi[32];
    int kind = 0;
    duo_rp_view *v = malloc(sizeof *v);
    if (!v) return DUO_E_NOMEM;
    int r = unpack(&pm, &duosign__v1__claim_link_request__descriptor, in, in_len);
    if (r != DUO_OK) goto out;
    const Duosign__V1__ClaimLinkRequest *m = (const void *)pm;
    if (m->key_id.len != DUO_KEY_ID_BYTES || m->device_nonce.len != DUO_NONCE_BYTES || !m->link ||
        !duo_rp_token_ok(m->link, DUO_RP_LINK_MAX)) {
        DETAIL(c->info, "the link must be the duosign://claim/... the relying party showed");
        r = m->key_id.len != DUO_KEY_ID_BYTES || m->device_nonce.len != DUO_NONCE_BYTES ? DUO_E_BAD_FIELD
                                                                                        : DUO_E_RP_LINK;
        goto out;
    }
    if ((r = duo_wire_mac_input_claim_link(mi, m->key_id.data, m->device_nonce.data, m->link)) != DUO_OK ||
        (r = auth(c, &ki, &kind, &m->key_id, &m->device_nonce, &m->mac, mi)) != DUO_OK)
        goto out;
    if (kind != DUO_RPQ_AUTH) {
        DETAIL(c->info, "a login link is claimed with the authentication key");
        r = DUO_E_RP_WRONG_ROLE;
        goto out;
    }
    if ((r = duo__rp_room_claim(c->rp, m->link, ki.citizen_id, v)) != DUO_OK) {
        DETAIL(c->info, "the link is unknown, expired or already claimed");
        goto out;
    }
    audit_answer(c, &ki, v->id, "the citizen's device claimed the login link");
    Duosign__V1__PendingRequest p;
    to_pending(&p, v);
    Duosign__V1__ClaimLinkResponse o = DUOSIGN__V1__CLAIM_LINK_RESPONSE__INIT;
    o.request = &p;
    r = pack(resp, resp_len, &o.base);
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    free(v);
    return r;
}
