/* duosign-cloud: PresentationCode (issue 19, DESIGN 8.5): a device asks for
 * a code for one of its citizen's documents. MAC-authenticated like Status
 * (no PIN: showing a document needs none, as in Diia); refused for a key that
 * is not active (revoked, suspended or frozen, locked) and for a document the
 * citizen does not have. The code is drawn here (present.c) and stored as
 * hashes, bound to the key, for DUO_CODE_TTL_S. */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include "docstore.h"
#include "duosign/mem.h"
#include "present.h"

#define DRAW_TRIES 3 /* a hash collision (UNIQUE) is drawn again */

static int not_active_err(const duo_key_info *ki, duo_call_info *info) {
    int r = duo__policy_final_err(ki, info);
    if (r != DUO_OK) return r;
    if (ki->state == DUO_KEY_STATE_LOCKED) {
        DETAIL(info, "key is locked after wrong PINs; documents are shown again when the lock ends");
        return DUO_E_KEY_LOCKED;
    }
    DETAIL(info, "key is not active; no presentation code");
    return DUO_E_KEY_NOT_ACTIVE;
}

/* Stores a fresh code for the request; fills out. */
static int issue(duo_rpc *c, const duo_key_info *ki, const duo_presentation_code_req *req,
                 duo_presentation_code_resp *out) {
    duo_present_code pc;
    duo_code_row row;
    char detail[128];
    int r = DUO_E_EXISTS;
    for (int i = 0; i < DRAW_TRIES && r == DUO_E_EXISTS; i++) {
        memset(&row, 0, sizeof row);
        if ((r = duo__present_draw(&pc)) != DUO_OK) break;
        memcpy(row.code_hash, pc.text_hash, 32);
        memcpy(row.barcode_hash, pc.barcode_hash, 32);
        memcpy(row.key_id, req->key_id, DUO_KEY_ID_BYTES);
        memcpy(row.citizen_id, ki->citizen_id, sizeof row.citizen_id);
        memcpy(row.doc_type, req->doc_type, sizeof row.doc_type);
        snprintf(detail, sizeof detail, "presentation code for %s", req->doc_type);
        duo_audit_event ev = {
            .kind = "code.issue", .key_id = req->key_id, .citizen_id = ki->citizen_id, .detail = detail};
        r = duo_keystore_code_insert(c->ks, &row, &ev);
    }
    if (r == DUO_OK) {
        memcpy(out->code, pc.text, sizeof pc.text);
        memcpy(out->barcode, pc.barcode, sizeof pc.barcode);
        out->issued_at = row.issued_at;
        out->expires_at = row.expires_at;
    }
    duo_memzero(&pc, sizeof pc);
    return r;
}

int duo__rpc_presentation_code(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_presentation_code_req req;
    duo_presentation_code_resp out;
    duo_key_info ki;
    uint8_t mi[32], used[32];
    duo_key_secrets *sec = NULL;
    memset(&out, 0, sizeof out);
    int r = duo_wire_parse_presentation_code_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    duo__call_key(c->info, req.key_id);
    if ((r = duo_wire_mac_input_presentation_code(mi, &req)) != DUO_OK) return r;
    if (duo__freezes_pending(c->freezes, req.key_id)) {
        (void)duo__freezes_retry(c->freezes, c->ks, req.key_id);
        DETAIL(c->info, "key is frozen: %s; enrol again", DUO_ATTACK_REASON);
        return DUO_E_KEY_SUSPENDED;
    }
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    if ((r = duo__policy_key_auth(c->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 0, c->info)) != DUO_OK)
        goto out;
    if (ki.state != DUO_KEY_STATE_ACTIVE) {
        r = not_active_err(&ki, c->info);
        goto out;
    }
    r = issue(c, &ki, &req, &out);
    if (r == DUO_E_DOC_NOT_FOUND)
        DETAIL(c->info, "the registry holds no %s for this citizen (the operator sets it: duosign-cloud citizen set)",
               req.doc_type);
    else if (r == DUO_E_KEY_NOT_ACTIVE)
        DETAIL(c->info, "key is not active; no presentation code");
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_presentation_code_resp(&o, &ol, &out);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(used, sizeof used);
    duo_memzero(&out, sizeof out);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}
