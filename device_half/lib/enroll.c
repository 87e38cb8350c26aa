/* duosign device library: enrolment (DESIGN 3.2): the four rounds that
 * make the split key, then the confirmation that activates it once the app
 * has stored the state. */
#include <stdio.h>
#include <string.h>

#include "device_internal.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"

/* Takes ownership of an engine key (from enrolment or duo_p2_key_new):
 * released with duo_p2_key_free. */
static int adopt_key(duo_device_ctx *ctx, duo_p2_key *k) {
    ctx->key = k;
    return DUO_OK;
}

int duo_device_enroll(duo_device_ctx *ctx, const char *server_address, const uint8_t *token, size_t token_len,
                      const uint8_t *pin, size_t pin_len, unsigned paillier_bits) {
    int r = DUO_E_INTERNAL;
    duo_p2_enroll *s = NULL;
    duo_p2_enroll_params p;
    duo_enroll_start_req r1;
    duo_enroll_start_resp a1;
    duo_enroll_key_share_req r2;
    duo_enroll_key_share_resp a2;
    duo_enroll_pdl_challenge_req r3;
    duo_enroll_pdl_challenge_resp a3;
    duo_enroll_pdl_open_req r4;
    duo_enroll_pdl_open_resp a4;
    duo_enroll_confirm_req conf;
    duo_p2_key *key = NULL;
    size_t alen;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    memset(&a2, 0, sizeof a2);
    memset(&r3, 0, sizeof r3);
    memset(&r4, 0, sizeof r4);
    if (ctx->key != NULL) {
        return duo__dev_finish(ctx, DUO_E_EXISTS);
    }
    if (server_address == NULL || (alen = strlen(server_address)) == 0 || alen > DUO_DEVICE_ADDRESS_MAX ||
        token == NULL || token_len == 0 || token_len > DUO_DEVICE_TOKEN_MAX) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if (pin == NULL || pin_len < DUO_DEVICE_PIN_MIN || pin_len > DUO_DEVICE_PIN_MAX) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the PIN must be %d to %d bytes", DUO_DEVICE_PIN_MIN,
                 DUO_DEVICE_PIN_MAX);
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if (paillier_bits == 0) {
        paillier_bits = DUO_PAILLIER_BITS_DEFAULT;
    }
    if (!duo_paillier_bits_supported(paillier_bits)) {
        return duo__dev_finish(ctx, DUO_E_UNSUPPORTED);
    }
    if ((r = duo__dev_check_token_fingerprint(ctx, token, token_len)) != DUO_OK) {
        return duo__dev_finish(ctx, r);
    }
    memset(&p, 0, sizeof p);
    p.ec = ctx->ec;
    p.rng = duo__dev_rng(ctx);
    p.paillier_bits = paillier_bits;
    p.token = token;
    p.token_len = token_len;
    p.pin = pin;
    p.pin_len = pin_len;
    if ((r = duo_p2_enroll_new(&s, &p)) != DUO_OK) goto out;

    /* Round 1 (DESIGN 3.2 step 1): token and device nonce; the cloud commits. */
    if ((r = duo_p2_enroll_start(s, &r1)) != DUO_OK) goto out;
    r1.role = (duo_key_role)ctx->enroll_role;
    DUO__RPC(ctx, "EnrollStart", duo_wire_build_enroll_start_req, &r1, duo_wire_parse_enroll_start_resp, &a1, r, out);
    /* Round 2: Q2 and PoK(x2); the cloud opens Q1, sends N, ckey and proofs. */
    if ((r = duo_p2_enroll_on_start(s, &a1, &r2)) != DUO_OK) goto out;
    DUO__RPC(ctx, "EnrollKeyShare", duo_wire_build_enroll_key_share_req, &r2, duo_wire_parse_enroll_key_share_resp, &a2,
             r, out);
    /* Round 3: the engine checks N, the proofs and ckey, then starts L_PDL. */
    if ((r = duo_p2_enroll_on_key_share(s, &a2, &r3)) != DUO_OK) goto out;
    DUO__RPC(ctx, "EnrollPdlChallenge", duo_wire_build_enroll_pdl_challenge_req, &r3,
             duo_wire_parse_enroll_pdl_challenge_resp, &a3, r, out);
    /* Round 4: open (a, b); the cloud opens alpha*G. */
    if ((r = duo_p2_enroll_on_pdl_challenge(s, &a3, &r4)) != DUO_OK) goto out;
    DUO__RPC(ctx, "EnrollPdlOpen", duo_wire_build_enroll_pdl_open_req, &r4, duo_wire_parse_enroll_pdl_open_resp, &a4, r,
             out);
    if ((r = duo_p2_enroll_on_pdl_open(s, &a4)) != DUO_OK) goto out;
    if ((r = duo_p2_enroll_take_key(s, &key)) != DUO_OK) goto out;
    /* Only the sid is kept: the confirmation is rebuilt from the key (its
     * MAC under the first device secret) when the app confirms, so it can be
     * retried after a restart. */
    if ((r = duo_p2_enroll_confirm(s, &conf)) != DUO_OK) goto out;
    memcpy(ctx->sid, conf.sid, 32);
    if ((r = adopt_key(ctx, key)) != DUO_OK) goto out;
    key = NULL;
    memcpy(ctx->address, server_address, alen + 1);
    ctx->role = ctx->enroll_role;
    ctx->confirmed = 0;
    ctx->has_pending = 0;
    duo__dev_mark_dirty(ctx);
    r = DUO_OK;
out:
    duo_wire_free_enroll_key_share_resp(&a2);
    duo_wire_free_enroll_pdl_challenge_req(&r3);
    duo_memzero(&r4, sizeof r4);
    duo_memzero(&conf, sizeof conf);
    duo_p2_key_free(key);
    duo_p2_enroll_free(s);
    return duo__dev_finish(ctx, r);
}

int duo_device_enroll_confirm(duo_device_ctx *ctx, char *revocation_code, size_t code_cap) {
    int r = DUO_E_INTERNAL;
    duo_enroll_confirm_req req;
    duo_enroll_confirm_resp resp;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (revocation_code != NULL) {
        if (code_cap == 0) {
            return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
        }
        revocation_code[0] = '\0';
    }
    if (ctx->key == NULL || ctx->confirmed) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    if (duo_device_state_dirty(ctx)) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "store the state durably before confirming the enrolment");
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    memcpy(req.sid, ctx->sid, 32);
    duo_point_serialize(ctx->ec, req.public_key, &ctx->key->q);
    if ((r = duo_wire_mac_input_enroll_confirm(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "EnrollConfirm", duo_wire_build_enroll_confirm_req, &req, duo_wire_parse_enroll_confirm_resp, &resp,
             r, out);
    if (revocation_code != NULL) {
        if (strlen(resp.revocation_code) + 1 > code_cap) {
            r = DUO_E_BUFFER_TOO_SMALL;
        } else {
            memcpy(revocation_code, resp.revocation_code, strlen(resp.revocation_code) + 1);
        }
    }
    /* The cloud has activated the key: record it even if the code did not
     * fit, so the app stores the confirmed flag. */
    ctx->confirmed = 1;
    duo__dev_mark_dirty(ctx);
out:
    duo_memzero(mi, sizeof mi);
    duo_memzero(&resp, sizeof resp);
    return duo__dev_finish(ctx, r);
}
