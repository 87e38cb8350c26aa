/* duosign device library: the key's MACed single-round requests: Refresh
 * (a secret rotation without a signature), Revoke (by the device, or by
 * the citizen with the revocation code) and Status. */
#include <stdio.h>
#include <string.h>

#include "device_internal.h"
#include "duosign/mem.h"

int duo_device_refresh(duo_device_ctx *ctx) {
    int r;
    duo_refresh_req req;
    duo_refresh_resp resp;
    uint8_t mi[32], next[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) {
        return duo__dev_finish(ctx, r);
    }
    if ((r = duo__dev_fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_refresh(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "Refresh", duo_wire_build_refresh_req, &req, duo_wire_parse_refresh_resp, &resp, r, out);
    /* Rotation context for a refresh: the request's device nonce. */
    if ((r = duo_secret_rotate(next, ctx->key->device_secret, req.device_nonce, resp.rotate_seed)) != DUO_OK) goto out;
    memcpy(ctx->pending, next, 32);
    ctx->has_pending = 1;
    duo__dev_mark_dirty(ctx);
out:
    duo_memzero(next, sizeof next);
    duo_memzero(mi, sizeof mi);
    duo_memzero(&resp, sizeof resp);
    return duo__dev_finish(ctx, r);
}

/* Sends a Revoke (by the device or by the citizen) and reads its empty
 * answer: the two callers differ only in how the request is filled. */
static int send_revoke(duo_device_ctx *ctx, const duo_revoke_req *req) {
    uint8_t *rq = NULL, *rs = NULL;
    size_t rql = 0, rsl = 0;
    int r;
    if ((r = duo_wire_build_revoke_req(&rq, &rql, req)) != DUO_OK) return r;
    r = duo__dev_rpc(ctx, "Revoke", rq, rql, &rs, &rsl);
    duo__dev_free_req(rq, rql);
    if (r != DUO_OK) return r;
    r = duo_wire_parse_revoke_resp(rs ? rs : (const uint8_t *)"", rsl);
    duo__dev_release(ctx, rs, rsl);
    return r;
}

int duo_device_revoke(duo_device_ctx *ctx) {
    int r;
    duo_revoke_req req;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    memset(&req, 0, sizeof req);
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    req.has_mac = 1;
    if ((r = duo__dev_fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_revoke(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    r = send_revoke(ctx, &req);
out:
    duo_memzero(mi, sizeof mi);
    return duo__dev_finish(ctx, r);
}

/* 1 if s is 1..max printable ASCII characters (what the wire accepts). */
static int printable_1_to(const char *s, size_t max) {
    size_t i;
    if (s == NULL) return 0;
    for (i = 0; i <= max && s[i] != '\0'; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return 0;
    }
    return i >= 1 && i <= max;
}

int duo_device_revoke_with_code(duo_device_ctx *ctx, const char *citizen_id, const char *revocation_code) {
    int r;
    duo_revoke_req req;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (!printable_1_to(citizen_id, DUO_DEVICE_CITIZEN_ID_MAX) ||
        !printable_1_to(revocation_code, DUO_DEVICE_REVOCATION_CODE_MAX)) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg,
                 "the citizen id and the revocation code must be 1 to %d printable "
                 "characters",
                 DUO_DEVICE_REVOCATION_CODE_MAX);
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    memset(&req, 0, sizeof req);
    req.has_mac = 0;
    req.by_citizen = 1;
    memcpy(req.citizen_id, citizen_id, strlen(citizen_id) + 1);
    memcpy(req.revocation_code, revocation_code, strlen(revocation_code) + 1);
    if ((r = duo_rng_bytes(duo__dev_rng(ctx), req.device_nonce, sizeof req.device_nonce)) != DUO_OK) goto out;
    r = send_revoke(ctx, &req);
out:
    duo_memzero(&req, sizeof req);
    return duo__dev_finish(ctx, r);
}

int duo_device_status(duo_device_ctx *ctx, duo_device_status_info *info) {
    int r;
    duo_status_req req;
    duo_status_resp resp;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (info == NULL) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    memset(info, 0, sizeof *info);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    if ((r = duo__dev_fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_status(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "Status", duo_wire_build_status_req, &req, duo_wire_parse_status_resp, &resp, r, out);
    info->state = (int)resp.state;
    info->pin_attempts_left = resp.pin_attempts_left;
    info->locked_until = resp.locked_until;
    memcpy(info->public_key, resp.public_key, 33);
out:
    duo_memzero(mi, sizeof mi);
    return duo__dev_finish(ctx, r);
}
