/* duosign-cloud: the key lifecycle RPCs (DESIGN 3.5-3.6): Refresh, Revoke,
 * Status. */
#include "rpc.h"
#include "chkeys.h"

#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"
#include "duosign/rng.h"

int duo__rpc_refresh(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_refresh_req req;
    duo_refresh_resp out;
    duo_key_info ki;
    uint8_t mi[32], used[32], next[32];
    duo_key_secrets *sec = NULL;
    int record = 0;
    int r = duo_wire_parse_refresh_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_refresh(mi, &req)) != DUO_OK) return r;
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    /* The request is recorded as seen in the rotation's transaction below
     * (record), unless authenticate already wrote it with a promotion. */
    if ((r = duo__policy_key_auth(c->ks, &ki, sec, req.key_id, mi, req.mac, used, &record, 0, c->info)) != DUO_OK)
        goto out;
    if ((r = duo_rng_bytes(NULL, out.rotate_seed, sizeof out.rotate_seed)) != DUO_OK) goto out;
    if ((r = duo_secret_rotate(next, used, req.device_nonce, out.rotate_seed)) != DUO_OK) goto out;
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        duo_audit_event ev = {.kind = DUO_AUDIT_SECRET_ROTATE,
                              .key_id = req.key_id,
                              .citizen_id = ki.citizen_id,
                              .detail = "refresh: new pending secret"};
        r = duo_keystore_secret_rotate_seen(c->ks, req.key_id, ki.version, 0, next, record ? used : NULL,
                                            record ? mi : NULL, 32, &ev, NULL, NULL);
        if (r != DUO_E_CONFLICT) break;
        if ((r = duo_keystore_key_get(c->ks, &ki, NULL, req.key_id)) != DUO_OK) break;
    }
    if (r == DUO_E_EXISTS) r = duo__policy_replay_reject(c->ks, &ki, req.key_id, "current", c->info);
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_refresh_resp(&o, &ol, &out);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(used, sizeof used);
    duo_memzero(next, sizeof next);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* Revocation with the one-time code when the phone is lost: the citizen
 * knows the code and their citizen id, not the key id (issue 13 item 6).
 * Each of the citizen's live keys that still has a code is tried with
 * duo_keystore_key_revoke, which checks the code against the stored SHA-256
 * and consumes it. Every refusal (unknown citizen, no such key, wrong or
 * used code) gives the same error and message and writes one audit entry,
 * so the answer does not tell whether the citizen exists; the code has 128
 * bits, so the audit trail, not a counter, is the defence against guessing. */
#define REVOKE_BY_CITIZEN_MAX_KEYS 16
typedef struct {
    uint8_t ids[REVOKE_BY_CITIZEN_MAX_KEYS][DUO_KEY_ID_BYTES];
    size_t n;
} revoke_cands;

static int revoke_cand_cb(void *data, const duo_key_info *ki) {
    revoke_cands *c = data;
    if (ki->state != DUO_KEY_STATE_REVOKED && ki->has_revocation_code && c->n < REVOKE_BY_CITIZEN_MAX_KEYS)
        memcpy(c->ids[c->n++], ki->key_id, DUO_KEY_ID_BYTES);
    return 0;
}

static int revoke_by_citizen(duo_rpc *c, duo_revoke_req *req, uint8_t **resp, size_t *resp_len) {
    revoke_cands cands;
    int r;
    memset(&cands, 0, sizeof cands);
    if ((r = duo_keystore_key_list(c->ks, req->citizen_id, revoke_cand_cb, &cands)) != DUO_OK) goto out;
    r = DUO_E_UNAUTHENTICATED;
    for (size_t i = 0; i < cands.n && r == DUO_E_UNAUTHENTICATED; i++) {
        duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE,
                              .key_id = cands.ids[i],
                              .citizen_id = req->citizen_id,
                              .detail = "revoked with the one-time revocation code and the citizen id"};
        r = duo_keystore_key_revoke(c->ks, cands.ids[i], (const uint8_t *)req->revocation_code,
                                    strlen(req->revocation_code), "revoked with the revocation code", &ev);
        if (r == DUO_OK) {
            duo__keycache_forget(c->keys, cands.ids[i]);
            duo__certs_follow_key(c->ks, cands.ids[i], DUO_CRL_REASON_CESSATION);
            duo__event(DUO_EV_REVOKED, c->info, cands.ids[i], "revoked with the revocation code and the citizen id");
        }
        if (r == DUO_E_KEY_REVOKED || r == DUO_E_NOT_FOUND) r = DUO_E_UNAUTHENTICATED; /* raced: next key */
    }
    if (r == DUO_E_UNAUTHENTICATED) {
        duo_audit_event ev = {.kind = "key.revoke.refused",
                              .citizen_id = req->citizen_id,
                              .detail = "revocation with a code and a citizen id refused: no live key of that "
                                        "citizen id has this code"};
        if (duo_keystore_audit_append(c->ks, NULL, &ev) != DUO_OK) { /* the refusal is what matters */
        }
        DETAIL(c->info, "revocation refused: this code does not revoke a key of this citizen id (wrong, already "
                        "used, or no such enrolment)");
    }
    if (r == DUO_OK) {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_revoke_resp(&o, &ol);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(req, sizeof *req);
    duo_memzero(&cands, sizeof cands);
    return r;
}

int duo__rpc_revoke(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_revoke_req req;
    duo_key_info ki;
    uint8_t mi[32], used[32];
    duo_key_secrets *sec = NULL;
    int r = duo_wire_parse_revoke_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if (req.by_citizen) return revoke_by_citizen(c, &req, resp, resp_len);
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    if ((r = duo__policy_key_load(c->ks, &ki, sec, req.key_id, c->info)) != DUO_OK) goto out;
    if (ki.state == DUO_KEY_STATE_REVOKED) {
        r = duo__policy_revoked_err(&ki, c->info);
        goto out;
    }
    if (req.has_mac) {
        if ((r = duo_wire_mac_input_revoke(mi, &req)) != DUO_OK) goto out;
        if ((r = duo__policy_authenticate(c->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 0, c->info)) != DUO_OK)
            goto out;
        duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE,
                              .key_id = req.key_id,
                              .citizen_id = ki.citizen_id,
                              .detail = "revoked by the device"};
        r = duo_keystore_key_revoke(c->ks, req.key_id, NULL, 0, "revoked by the device", &ev);
    } else {
        duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE,
                              .key_id = req.key_id,
                              .citizen_id = ki.citizen_id,
                              .detail = "revoked with the one-time revocation code"};
        r = duo_keystore_key_revoke(c->ks, req.key_id, (const uint8_t *)req.revocation_code,
                                    strlen(req.revocation_code), "revoked with the revocation code", &ev);
        if (r == DUO_E_UNAUTHENTICATED)
            DETAIL(c->info, "the revocation code does not match this key (or was already used)");
    }
    if (r == DUO_E_KEY_REVOKED) DETAIL(c->info, "key is already revoked");
    if (r == DUO_OK)
        duo__event(DUO_EV_REVOKED, c->info, req.key_id, "%s",
                   req.has_mac ? "revoked by the device" : "revoked with the revocation code");
    if (r == DUO_OK || r == DUO_E_KEY_REVOKED) duo__keycache_forget(c->keys, req.key_id);
    if (r == DUO_OK) duo__certs_follow_key(c->ks, req.key_id, DUO_CRL_REASON_CESSATION);
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_revoke_resp(&o, &ol);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(used, sizeof used);
    duo_memzero(&req, sizeof req);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

int duo__rpc_status(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_status_req req;
    duo_status_resp out;
    memset(&out, 0, sizeof out);
    duo_key_info ki;
    uint8_t mi[32], used[32];
    duo_key_secrets *sec = NULL;
    int r = duo_wire_parse_status_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    if ((r = duo__policy_key_load(c->ks, &ki, sec, req.key_id, c->info)) != DUO_OK) goto out;
    /* A revoked key has no secrets left to authenticate with; its state is all
     * there is to tell. */
    if (ki.state != DUO_KEY_STATE_REVOKED) {
        if ((r = duo_wire_mac_input_status(mi, &req)) != DUO_OK) goto out;
        if ((r = duo__policy_authenticate(c->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 0, c->info)) != DUO_OK)
            goto out;
    }
    out.state = (duo_key_state)ki.state;
    out.pin_attempts_left = (ki.state == DUO_KEY_STATE_ACTIVE || ki.state == DUO_KEY_STATE_LOCKED)
                                ? duo__lock_policy_left(&c->cfg->lock, ki.pin_failures)
                                : 0;
    out.locked_until = ki.state == DUO_KEY_STATE_LOCKED ? ki.locked_until : 0;
    memcpy(out.public_key, ki.q, sizeof out.public_key);
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_status_resp(&o, &ol, &out);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(used, sizeof used);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* ChannelKey: the cloud's current inner-channel key. Plain at first contact
 * (TLS authenticates the answer), sealed after a rotation (the old key
 * authenticates it). Nothing secret, nothing stored. */
int duo__rpc_channel_key(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    int r = duo_wire_parse_channel_key_req(in, in_len);
    const duo_ch_static *k = duo__chkeys_current(c->chkeys);
    if (r != DUO_OK) return r;
    if (k == NULL) return DUO_E_INTERNAL;
    uint8_t *o = NULL;
    size_t ol = 0;
    r = duo_wire_build_channel_key_resp(&o, &ol, k->id, k->pub);
    return duo__rpc_respond(resp, resp_len, r, o, ol);
}
