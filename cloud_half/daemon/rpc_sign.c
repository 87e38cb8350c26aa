/* duosign-cloud: the signing RPCs (DESIGN 3.3): SignStart, SignFinish. */
#include "rpc.h"
#include "sign_shared.h"

#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"
#include "duosign/rng.h"
#include "rp_keys.h"

/* SignStart with request_id: the signature approves a relying party's
 * request. The key must be the request's citizen's and of its role, the
 * digest the request's; the request then waits for this session alone
 * (a second approval is refused), docs/RELYING_PARTIES.md. */
static int bind_request(duo_rpc *c, duo_sess *x, const duo_sign_start_req *req, const duo_key_info *ki,
                        const uint8_t *sid) {
    int kind = 0;
    int r = duo__rp_key_role(c->ks, req->key_id, &kind, NULL, NULL);
    if (r == DUO_E_NOT_FOUND) {
        DETAIL(c->info, "this key has no certificate: it cannot answer a relying party's request");
        return DUO_E_RP_WRONG_ROLE;
    }
    if (r != DUO_OK) return r;
    r = duo__rp_room_bind(c->rp, ki->citizen_id, kind, req->request_id, req->digest, sid);
    switch (r) {
        case DUO_OK:
            x->has_rp = 1;
            memcpy(x->rp_id, req->request_id, sizeof x->rp_id);
            break;
        case DUO_E_RP_SESSION_UNKNOWN:
            DETAIL(c->info, "no such relying-party request (unknown, or erased)");
            break;
        case DUO_E_RP_WRONG_CITIZEN:
            DETAIL(c->info, "this request is addressed to another citizen");
            break;
        case DUO_E_RP_WRONG_ROLE:
            DETAIL(c->info, "this request needs the citizen's %s key",
                   kind == DUO_RPQ_AUTH ? "signing" : "authentication");
            break;
        case DUO_E_RP_REQUEST_CLOSED:
            DETAIL(c->info, "the request is no longer waiting (answered, being approved, cancelled or expired)");
            break;
        case DUO_E_RP_DIGEST:
            DETAIL(c->info, "the digest is not the request's: nothing is signed that was not shown");
            break;
        default:
            break;
    }
    return r;
}

int duo__rpc_sign_start(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_sign_start_req req;
    duo_sign_start_resp out;
    duo_key_info ki;
    duo_key_secrets *sec = NULL;
    uint8_t mi[32], used[32];
    duo_sess *x = NULL;
    duo_keycache_item *kc = NULL;
    const int shared = duo_keystore_sign_sessions_shared(c->ks);
    int r = duo_wire_parse_sign_start_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_sign_start(mi, &req)) != DUO_OK) return r;
    if ((r = duo__purpose_digest_check(&req, c->info)) != DUO_OK) return r;
    if (duo__freezes_pending(c->freezes, req.key_id)) {
        int fr = duo__freezes_retry(c->freezes, c->ks, req.key_id);
        DETAIL(c->info, "key is frozen: %s; enrol again%s", DUO_ATTACK_REASON,
               fr == DUO_OK ? "" : " (the freeze is not stored yet; the key is refused until it is)");
        return DUO_E_KEY_SUSPENDED;
    }
    sec = duo_secure_malloc(sizeof *sec);
    if (!sec) return DUO_E_NOMEM;
    if ((r = duo__policy_key_auth(c->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 1, c->info)) != DUO_OK)
        goto out;
    if ((r = duo__policy_locked_err(&ki, c->info)) != DUO_OK) goto out;
    if ((r = duo__purpose_key_check(&req, &ki, c->info)) != DUO_OK) goto out;
    if ((r = duo__keycache_get(c->keys, &kc, &ki, sec)) != DUO_OK) {
        DETAIL(c->info, "the stored key failed its integrity check; contact the operator");
        goto out;
    }
    if ((r = duo__sessions_insert(c->sessions, &x, DUO_SESS_SIGN, req.key_id, NULL, NULL, c->info)) != DUO_OK) goto out;
    x->kc = kc;
    kc = NULL;
    memcpy(x->secret, used, 32);
    memcpy(x->digest, req.digest, 32);
    snprintf(x->citizen, sizeof x->citizen, "%s", ki.citizen_id);
    r = duo_p1_sign_new(&x->sg, c->ec[ki.curve], NULL, duo__keycache_key(x->kc)); /* curve checked by the cache */
    if (r == DUO_OK) r = duo_p1_sign_start(x->sg, &req, &out);
    /* Relying-party requests live in this node's memory (rp_room.c), so an
     * approval is refused on a shared store rather than finished elsewhere
     * without its request's checks. A shared store keeps the session (round 2
     * may reach another node): the local one ends below without a sid, so it
     * leaves no tombstone here. */
    if (r == DUO_OK && req.has_request_id)
        r = shared ? DUO_E_UNSUPPORTED : bind_request(c, x, &req, &ki, duo_p1_sign_sid(x->sg));
    if (r == DUO_OK && shared) r = duo__sign_shared_put(c, x);
    if (r == DUO_OK) {
        if (!shared) duo__sessions_set_sid(c->sessions, x, duo_p1_sign_sid(x->sg));
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_sign_start_resp(&o, &ol, &out);
        /* Deadline passed or client cancelled while we worked: the device
         * will never see this answer, so do not leave the key's one live
         * session behind. A cancel that arrives after this check, while the
         * answer is on its way, leaves it live but idle: the device's next
         * SignStart replaces it (duo__sessions_insert). */
        if (r == DUO_OK && duo_call_info_expired(c->info)) {
            free(o);
            o = NULL;
            DETAIL(c->info, "deadline exceeded or call cancelled; the signing session was released: start again");
            r = DUO_E_TIMEOUT;
        }
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
    duo__sessions_release(c->sessions, x,
                          r == DUO_OK && shared ? DUO_E_SESSION_SUPERSEDED
                          : r == DUO_OK         ? 0
                          : r == DUO_E_TIMEOUT  ? DUO_E_SESSION_EXPIRED
                                                : DUO_E_SESSION_FAILED);
out:
    duo__keycache_put(kc);
    if (r == DUO_E_KEY_REVOKED || r == DUO_E_KEY_SUSPENDED || r == DUO_E_CLONE_SUSPECTED)
        duo__keycache_forget(c->keys, req.key_id);
    duo_memzero(used, sizeof used);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* SignFinish's store write (duo_keystore_sign_commit), run beside the
 * decryption: the PIN count reset, the next device secret and the audit of
 * the signature, named by its digest and r (with Q they fix the one low-S
 * signature; docs/DECISIONS.md "The signature's audit entry names r"). */
typedef struct sign_write {
    duo_keystore *ks;
    const duo_sess *x;
    const uint8_t *next;
    char detail[256];
    duo_key_info ki; /* the row as read, for the message if refused */
    int r;
} sign_write;

static void sign_write_run(void *arg) {
    sign_write *w = arg;
    const duo_sess *x = w->x;
    duo_audit_event reset = {.kind = DUO_AUDIT_PIN_RESET,
                             .key_id = x->key_id,
                             .citizen_id = x->citizen,
                             .detail = "correct PIN: failure count reset"};
    duo_audit_event ev = {.kind = DUO_AUDIT_SIGN, .key_id = x->key_id, .citizen_id = x->citizen, .detail = w->detail};
    w->r = duo_keystore_sign_commit(w->ks, &w->ki, x->key_id, w->next, &reset, &ev);
}

/* The message for a refused sign_write. */
static int sign_write_err(duo_keycache *keys, const sign_write *w, duo_call_info *info) {
    switch (w->r) {
        case DUO_E_KEY_REVOKED:
        case DUO_E_KEY_SUSPENDED:
            duo__keycache_forget(keys, w->x->key_id);
            return duo__policy_final_err(&w->ki, info);
        case DUO_E_KEY_LOCKED:
            return duo__policy_locked_err(&w->ki, info);
        case DUO_E_PROTO_STATE:
            return duo__policy_state_final_err(&w->ki, info);
        case DUO_E_NOT_FOUND:
            DETAIL(info, "unknown key id; enrol again");
            return w->r;
        case DUO_E_STATE_CORRUPT:
            DETAIL(info, "the stored key failed its integrity check; contact the operator");
            return w->r;
        case DUO_E_POLICY_MAC:
            DETAIL(info, "the stored key's policy fields were edited outside duosign; contact the operator");
            return w->r;
        default:
            return w->r;
    }
}

/* The relying party's request after SignFinish: OK with the signature and
 * the key's certificate; PIN_LOCKED when the wrong PIN locked or revoked the
 * key; else back to waiting (a wrong PIN: the citizen may try again while
 * the request lives). Audited. */
static void rp_answer(duo_rpc *c, const duo_sess *x, const uint8_t *sid, int r, const uint8_t sig[64]) {
    int result = r == DUO_OK ? DUO_RPR_OK : DUO_RPR_NONE;
    duo_key_info ki;
    if (r == DUO_E_WRONG_PIN && duo_keystore_key_get(c->ks, &ki, NULL, x->key_id) == DUO_OK &&
        (ki.state == DUO_KEY_STATE_LOCKED || ki.state == DUO_KEY_STATE_REVOKED))
        result = DUO_RPR_PIN_LOCKED; /* this wrong PIN locked the key */
    uint8_t *cert = result == DUO_RPR_OK ? malloc(DUO_CERT_DER_MAX) : NULL;
    size_t cert_len = 0;
    int kind = 0;
    if (cert && duo__rp_key_role(c->ks, x->key_id, &kind, cert, &cert_len) != DUO_OK) cert_len = 0;
    duo__rp_room_finish(c->rp, x->rp_id, sid, result, sig, cert, cert_len);
    free(cert);
    char idh[33], detail[160];
    duo__hex(idh, x->rp_id, 16);
    snprintf(detail, sizeof detail, "relying-party request %s: the citizen %s", idh,
             result == DUO_RPR_OK           ? "approved it (signed)"
             : result == DUO_RPR_PIN_LOCKED ? "entered a wrong PIN and the key is locked"
                                            : "did not complete the approval (it waits again)");
    duo_audit_event ev = {.kind = DUO_AUDIT_RP_ANSWER, .key_id = x->key_id, .citizen_id = x->citizen, .detail = detail};
    if (duo_keystore_audit_append(c->ks, NULL, &ev) != DUO_OK) { /* the store logged why */
    }
}

int duo__rpc_sign_finish(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_sign_finish_req req;
    duo_sign_finish_resp out;
    memset(&out, 0, sizeof out);
    duo_sess *x;
    uint8_t mi[32], next[32], rx[32];
    const int shared = duo_keystore_sign_sessions_shared(c->ks);
    int r = duo_wire_parse_sign_finish_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    /* The session is consumed by this request whatever happens (single use):
     * from this node's table, or from the shared store (sign_shared.h). */
    if (shared)
        r = duo__sign_shared_take(c, &x, req.sid);
    else
        r = duo__sessions_take(c->sessions, &x, req.sid, DUO_SESS_SIGN, c->info);
    if (r != DUO_OK) goto out_req;
    /* A session of this node's table was not loaded from the store: a moved
     * key's plain round 2 is refused here (spent, nothing counted). */
    if (!shared && (r = duo__policy_plain_check(c->ks, x->key_id, c->info)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_sign_finish(mi, &req)) != DUO_OK) goto out;
    if (duo_mac_check(x->secret, mi, req.mac) != DUO_OK) {
        DETAIL(c->info, "request authentication failed (missing or bad MAC); this does not count as a PIN "
                        "attempt; start a new signature");
        r = DUO_E_UNAUTHENTICATED;
        goto out;
    }
    if (duo_call_info_expired(c->info)) {
        DETAIL(c->info, "deadline exceeded before the signature was computed; start a new signature");
        r = DUO_E_TIMEOUT;
        goto out;
    }
    if (x->has_rp && duo__rp_room_check(c->rp, x->rp_id, req.sid) != DUO_OK) {
        DETAIL(c->info, "the relying party's request expired or was cancelled while the PIN was typed; nothing "
                        "was signed");
        r = DUO_E_RP_REQUEST_CLOSED;
        goto out;
    }
    r = duo_p1_sign_finish_check(x->sg, &req, &out, rx);
    if (r == DUO_E_WRONG_PIN) {
        int revoked = 0;
        r = duo__policy_pin_failure(c->ks, &c->cfg->lock, x->key_id, &revoked, c->info);
        if (revoked) duo__keycache_forget(c->keys, x->key_id);
        goto out;
    }
    if (r != DUO_OK) goto out;
    /* The PIN is proven. Store the next device secret, reset the PIN count
     * and audit the signature while the decryption runs; the signature is
     * released only if both succeed (the device rotates on receipt, so the
     * cloud must know the next secret first). The key's state is checked in
     * that write, atomically with it: no signature for a key revoked, frozen
     * or locked since SignStart. */
    if ((r = duo_secret_rotate(next, x->secret, req.sid, out.rotate_seed)) != DUO_OK) goto out;
    sign_write w = {.ks = c->ks, .x = x, .next = next};
    char dh[65], rh[65];
    duo__hex(dh, x->digest, 32);
    duo__hex(rh, rx, 32);
    /* Written before the decryption's outcome is known: it names the round
     * that was accepted, not a signature (a share that fails to verify is
     * audited as attack.suspected, "no signature was released"). */
    snprintf(w.detail, sizeof w.detail, "round 2 accepted (signature released if the share verifies): digest=%s r=%s",
             dh, rh);
    duo_overlap_job job = {.fn = sign_write_run, .arg = &w};
    duo_overlap_start(c->overlap, &job);
    r = duo_p1_sign_finish_decrypt(x->sg, &out);
    duo_overlap_wait(c->overlap, &job);
    if (r == DUO_E_PEER_CHEATED) {
        duo__keycache_forget(c->keys, x->key_id);
        int fr = duo__policy_freeze(c->ks, x->key_id, DUO_AUDIT_ATTACK, DUO_ATTACK_REASON);
        if (fr != DUO_OK) duo__freezes_add(c->freezes, x->key_id); /* fail closed until it is stored */
        duo__event(DUO_EV_ATTACK, c->info, x->key_id, "invalid signature share from the device; key %s",
                   fr == DUO_OK ? "frozen" : "refused until its freeze is stored");
        DETAIL(c->info, "the device sent an invalid signature share; the key is frozen: enrol again");
        goto out;
    }
    if (r != DUO_OK) goto out;
    if (w.r != DUO_OK) {
        r = sign_write_err(c->keys, &w, c->info);
        goto out;
    }
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_sign_finish_resp(&o, &ol, &out);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    if (x->has_rp) rp_answer(c, x, req.sid, r, out.signature);
    if (shared)
        duo__sign_shared_end(c, x);
    else
        duo__sessions_release(c->sessions, x, DUO_E_PROTO_STATE);
out_req:
    duo_wire_free_sign_finish_req(&req);
    duo_memzero(next, sizeof next);
    duo_memzero(&out, sizeof out);
    return r;
}
