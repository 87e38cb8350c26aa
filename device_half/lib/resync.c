/* duosign device library: resynchronisation after a restore of the cloud's
 * store (DESIGN 8): asks Status, then sends one Resync with the device
 * secret, a PIN proof bound to it and the restore epoch the cloud named. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_internal.h"
#include "duosign/mem.h"
#include "duosign/resync.h"

/* The restore epoch the cloud names in DUO_E_RESYNC_POSSIBLE's message
 * ("... [resync epoch N]", policy.c): 0 if absent. The bracket is the
 * cloud's only channel for it that a device from before resync ignores. */
static uint64_t resync_epoch_of(const char *msg) {
    const char *p = strstr(msg, "[resync epoch ");
    unsigned long long e = 0;
    if (p == NULL || sscanf(p, "[resync epoch %llu]", &e) != 1) return 0;
    return (uint64_t)e;
}

#ifdef DUO_TEST_HOOKS
/* TESTING ONLY (device_half/lib/CMakeLists.txt): DUOSIGN_TEST_RESYNC_TAMPER
 * alters the Resync request as a party on the way would. "key_id",
 * "epoch": before the proof and the MAC (re-MACed: the cloud's own checks
 * answer); "<field>_after" (key_id, nonce, epoch, secret, proof, mac):
 * one byte after the MAC; "secret_len": the secret field one byte short on
 * the wire; "secret": another (random) secret, re-MACed.
 * DUOSIGN_TEST_RESYNC_FORCE=1 sends the Resync (epoch 1) without asking. */
static const char *resync_tamper(void) {
    const char *t = getenv("DUOSIGN_TEST_RESYNC_TAMPER");
    return t != NULL ? t : "";
}

static void resync_tamper_before(duo_resync_req *req) {
    if (strcmp(resync_tamper(), "key_id") == 0) req->key_id[0] ^= 0x5a;
    if (strcmp(resync_tamper(), "epoch") == 0) req->epoch += 1;
    if (strcmp(resync_tamper(), "secret") == 0) req->device_secret[0] ^= 0x5a;
}

static int resync_forced(void) {
    const char *f = getenv("DUOSIGN_TEST_RESYNC_FORCE");
    return f != NULL && strcmp(f, "1") == 0;
}

static void resync_tamper_after(duo_resync_req *req) {
    const char *t = resync_tamper();
    if (strcmp(t, "key_id_after") == 0) req->key_id[3] ^= 1;
    if (strcmp(t, "nonce_after") == 0) req->device_nonce[7] ^= 1;
    if (strcmp(t, "epoch_after") == 0) req->epoch += 1;
    if (strcmp(t, "secret_after") == 0) req->device_secret[11] ^= 1;
    if (strcmp(t, "proof_after") == 0) req->pin_proof[40] ^= 1;
    if (strcmp(t, "mac_after") == 0) req->mac[0] ^= 1;
}

/* The secret field (tag 0x22, length 32) re-encoded with 31 bytes. */
static void resync_tamper_wire(uint8_t *rq, size_t *rql, const uint8_t secret[32]) {
    if (strcmp(resync_tamper(), "secret_len") != 0) return;
    for (size_t i = 0; i + 34 <= *rql; i++)
        if (rq[i] == 0x22 && rq[i + 1] == 0x20 && memcmp(rq + i + 2, secret, 32) == 0) {
            rq[i + 1] = 0x1f;
            memmove(rq + i + 33, rq + i + 34, *rql - i - 34);
            (*rql)--;
            return;
        }
}
#else
#define resync_tamper_before(req) ((void)0)
#define resync_tamper_after(req) ((void)0)
#define resync_tamper_wire(rq, rql, secret) ((void)0)
#define resync_forced() 0
#endif

int duo_device_resync(duo_device_ctx *ctx, const uint8_t *pin, size_t pin_len, int *done) {
    duo_device_status_info st;
    duo_resync_req req;
    duo_binding bind;
    uint8_t mi[32];
    int r;

    if (done != NULL) *done = 0;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    if (pin == NULL || pin_len == 0 || pin_len > DUO_DEVICE_PIN_MAX) return DUO_E_INVALID_ARG;
    memset(&req, 0, sizeof req);
    duo__dev_begin(ctx);
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) return duo__dev_finish(ctx, r);
    if (resync_forced())
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "[resync epoch 1]");
    else if ((r = duo_device_status(ctx, &st)) != DUO_E_RESYNC_POSSIBLE && r != DUO_E_RESYNC_USED)
        return r; /* DUO_OK: in sync */
    /* RESYNC_USED: asked anyway, so the cloud records the second attempt. */
    req.epoch = resync_epoch_of(ctx->errmsg);
    duo__dev_begin(ctx);
    if (req.epoch == 0) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the cloud offers a resynchronisation but names no restore epoch");
        return duo__dev_finish(ctx, DUO_E_DECODE);
    }
    if ((r = duo__dev_fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    memcpy(req.device_secret, ctx->key->device_secret, sizeof req.device_secret);
    resync_tamper_before(&req);
    if ((r = duo_resync_binding(&bind, req.key_id, req.device_nonce, req.epoch, req.device_secret)) != DUO_OK ||
        (r = duo_p2_resync_proof(ctx->ec, req.pin_proof, ctx->key, pin, pin_len, &bind, duo__dev_rng(ctx))) != DUO_OK ||
        (r = duo_wire_mac_input_resync(mi, &req)) != DUO_OK ||
        (r = duo_mac_compute(req.mac, req.device_secret, mi)) != DUO_OK)
        goto out;
    resync_tamper_after(&req);
    {
        uint8_t *rq = NULL, *rs = NULL;
        size_t rql = 0, rsl = 0;
        if ((r = duo_wire_build_resync_req(&rq, &rql, &req)) != DUO_OK) goto out;
        size_t built = rql;
        resync_tamper_wire(rq, &rql, req.device_secret);
        r = duo__dev_rpc(ctx, "Resync", rq, rql, &rs, &rsl);
        rql = built; /* what free_req wipes */
        duo__dev_free_req(rq, rql);
        if (r == DUO_OK) r = duo_wire_parse_resync_resp(rs ? rs : (const uint8_t *)"", rsl);
        duo__dev_release(ctx, rs, rsl);
    }
    if (r == DUO_OK && done != NULL) *done = 1;
out:
    duo_memzero(&req, sizeof req);
    duo_memzero(mi, sizeof mi);
    return duo__dev_finish(ctx, r);
}
