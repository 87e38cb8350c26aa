/* duosign-cloud: Resync, the one-time resynchronisation after a restore of
 * the store (docs/SECURITY.md 1.10, docs/PROTOCOL.md "After a restore of the
 * cloud's store").
 *
 * The device sends the secret it holds, MAC'd under itself, with a PIN proof
 * bound to (key, nonce, epoch, the secret's hash). Checks, in this order:
 *   1. encoding (wire: DUO_E_BAD_FIELD, DUO_E_DECODE);
 *   2. the MAC under the carried secret: DUO_E_RESYNC_MAC (altered on the
 *      way; nothing read, nothing counted);
 *   3. the backend keeps resync fields (SQLite and PostgreSQL both do):
 *      DUO_E_UNSUPPORTED otherwise;
 *   4. the key and its final states, then the secret against the key's
 *      secrets exactly as any request's MAC (policy.c): current -> already
 *      in sync, DUO_OK with nothing changed (a lost answer, or a device that
 *      never needed it); pending -> promoted as usual; retired -> a clone,
 *      frozen; a replay -> refused;
 *   5. an unknown secret: the row's resync fields: none open ->
 *      DUO_E_RESYNC_NOT_OPEN; already used in this epoch -> DUO_E_RESYNC_USED
 *      (audited resync.refused: a second device with the PIN or a copy);
 *      another epoch -> DUO_E_RESYNC_EPOCH; all counting nothing;
 *   6. a lock still running: DUO_E_KEY_LOCKED;
 *   7. the PIN proof against the stored Q2: DUO_E_WRONG_PIN, counted and
 *      locking exactly as in SignFinish;
 *   8. in one transaction: the secret adopted, the old ones retired, the
 *      resync closed, audit secret.resync. */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"
#include "duosign/resync.h"

/* *known = 1 if the carried secret is the key's current, pending or a
 * retired one (constant time per comparison). */
static int secret_known(duo_keystore *ks, int *known, const duo_key_secrets *sec, const duo_resync_req *req) {
    int found = 0, r;
    *known = duo_ct_eq(sec->current, req->device_secret, DUO_DEVICE_SECRET_BYTES) |
             (sec->has_pending & duo_ct_eq(sec->pending, req->device_secret, DUO_DEVICE_SECRET_BYTES));
    if (*known) return DUO_OK;
    r = duo_keystore_secret_is_retired(ks, &found, req->key_id, req->device_secret);
    *known = found;
    return r;
}

/* Step 5: why an unknown secret gets no resync (the row decides). */
static int refuse_closed(duo_rpc *c, const duo_key_info *ki, const duo_resync_req *req, int r) {
    char detail[DUO_AUDIT_DETAIL_MAX];
    if (r == DUO_E_RESYNC_NOT_OPEN) {
        DETAIL(c->info, "no resynchronisation is open for this key: the cloud's store was not restored since it "
                        "was enrolled (request authentication failed; this does not count as a PIN attempt)");
    } else if (r == DUO_E_RESYNC_EPOCH) {
        DETAIL(c->info, "the resynchronisation names restore epoch %llu, the cloud's is %llu: ask again",
               (unsigned long long)req->epoch, (unsigned long long)ki->resync_epoch);
    } else if (r == DUO_E_RESYNC_USED) {
        snprintf(detail, sizeof detail,
                 "a second resynchronisation in restore epoch %llu refused (another copy of the device, or another "
                 "device with the PIN)",
                 (unsigned long long)ki->resync_used);
        duo_audit_event ev = {
            .kind = DUO_AUDIT_RESYNC_REFUSED, .key_id = req->key_id, .citizen_id = ki->citizen_id, .detail = detail};
        if (duo_keystore_audit_append(c->ks, NULL, &ev) != DUO_OK)
            duo__event(DUO_EV_STORE_ERROR, c->info, req->key_id, "could not audit a refused resync");
        DETAIL(c->info, "this key already resynchronised after the cloud's restore; another resynchronisation is "
                        "refused (if this device did not do it, a copy of it did: revoke the key)");
    }
    return r;
}

/* Steps 6-8 on the row ki (read at ki->version). */
static int resync_adopt(duo_rpc *c, duo_key_info *ki, const duo_resync_req *req) {
    duo_binding bind;
    char detail[DUO_AUDIT_DETAIL_MAX];
    int r, revoked = 0;
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        if ((r = duo_key_resync_state(ki, req->epoch)) != DUO_OK) return refuse_closed(c, ki, req, r);
        if (ki->state == DUO_KEY_STATE_LOCKED && ki->locked_until > duo__now_s())
            return duo__policy_locked_err(ki, c->info);
        if ((r = duo_resync_binding(&bind, req->key_id, req->device_nonce, req->epoch, req->device_secret)) != DUO_OK)
            return r;
        if ((r = duo_resync_proof_verify(c->ec[ki->curve], ki->q2, &bind, req->pin_proof)) == DUO_E_WRONG_PIN)
            return duo__policy_pin_failure(c->ks, &c->cfg->lock, req->key_id, &revoked, c->info);
        if (r != DUO_OK) return r;
        snprintf(detail, sizeof detail,
                 "after the restore of epoch %llu: the device's secret adopted with a PIN proof, the store's retired",
                 (unsigned long long)req->epoch);
        duo_audit_event ev = {
            .kind = DUO_AUDIT_SECRET_RESYNC, .key_id = req->key_id, .citizen_id = ki->citizen_id, .detail = detail};
        r = duo_keystore_resync_adopt(c->ks, req->key_id, ki->version, req->epoch, req->device_secret, &ev, NULL);
        if (r != DUO_E_CONFLICT) return r == DUO_OK ? r : refuse_closed(c, ki, req, r);
        if ((r = duo_keystore_key_get(c->ks, ki, NULL, req->key_id)) != DUO_OK) return r;
        if ((r = duo__policy_final_err(ki, c->info)) != DUO_OK) return r;
    }
    return DUO_E_CONFLICT;
}

int duo__rpc_resync(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_resync_req req;
    duo_key_info ki;
    uint8_t mi[32], used[32];
    duo_key_secrets *sec = NULL;
    int known = 0;
    int r = duo_wire_parse_resync_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_resync(mi, &req)) != DUO_OK) goto out;
    if (duo_mac_check(req.device_secret, mi, req.mac) != DUO_OK) {
        DETAIL(c->info, "the resynchronisation request was altered on the way (its MAC does not verify); nothing "
                        "was counted");
        r = DUO_E_RESYNC_MAC;
        goto out;
    }
    if (!duo_keystore_resync_supported(c->ks)) {
        DETAIL(c->info, "this store keeps no resynchronisation fields (its backend does not implement them)");
        r = DUO_E_UNSUPPORTED;
        goto out;
    }
    if (!(sec = duo_secure_malloc(sizeof *sec))) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo__policy_key_load(c->ks, &ki, sec, req.key_id, c->info)) != DUO_OK ||
        (r = duo__policy_final_err(&ki, c->info)) != DUO_OK || (r = secret_known(c->ks, &known, sec, &req)) != DUO_OK)
        goto out;
    if (known) { /* step 4: the policy of every request (in sync, promote, clone, replay) */
        r = duo__policy_authenticate(c->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 0, c->info);
        if (r == DUO_OK) DETAIL(c->info, "already in sync: the cloud knows this device's secret");
    } else {
        r = resync_adopt(c, &ki, &req);
    }
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_resync_resp(&o, &ol);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(used, sizeof used);
    duo_memzero(&req, sizeof req);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}
