/* duosign device library: the public API (duosign/device.h) over the P2
 * engine (device_half/engine/p2.h) and the wire layer (common/wire/wire.h).
 *
 * This file: the context (struct duo_device_ctx, device_internal.h), its
 * settings and accessors, and the helpers every other file of the library
 * uses (the outcome of a call, the state generation, the rng). The other
 * jobs live in files of their own: rpc.c (the transport and the inner
 * channel), enroll.c, sign.c, pin.c (the prepared PIN, the PIN change),
 * lifecycle.c (Refresh, Revoke, Status), resync.c, documents.c, pubkey.c,
 * state.c (the state blob), certs.c, requests.c (relying parties). The
 * library holds no protocol logic of its own beyond building the MACed
 * lifecycle requests, which the engine does not cover. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_internal.h"
#include "duosign/mem.h"

/* ------------------------------------------------------------ helpers */

static int rng_adapter(void *data, uint8_t *out, size_t len) {
    duo_device_ctx *ctx = data;
    return ctx->app_rng(ctx->app_rng_user, out, len) == 0 ? 0 : 1;
}

const duo_rng *duo__dev_rng(const duo_device_ctx *ctx) { return ctx->app_rng != NULL ? &ctx->rng : duo_rng_default(); }

void duo__dev_begin(duo_device_ctx *ctx) { ctx->errmsg[0] = '\0'; }

/* Records the outcome of an API call: keeps a message set by the transport,
 * else uses the error table's message. */
int duo__dev_finish(duo_device_ctx *ctx, int r) {
    if (r == DUO_OK) {
        ctx->errmsg[0] = '\0';
    } else if (ctx->errmsg[0] == '\0') {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s", duo_strerror(r));
    }
    return r;
}

void duo__dev_mark_dirty(duo_device_ctx *ctx) {
    ctx->gen++;
    ctx->exported = 0;
}

static void drop_precomputed(duo_device_ctx *ctx) {
    unsigned i;
    for (i = 0; i < ctx->npre; i++) {
        BN_clear_free(ctx->pre[i]);
        ctx->pre[i] = NULL;
    }
    ctx->npre = 0;
}

static void drop_key(duo_device_ctx *ctx) {
    duo__dev_drop_prepared(ctx);
    duo_p2_key_free(ctx->key);
    ctx->key = NULL;
    ctx->confirmed = 0;
    duo_memzero(ctx->sid, sizeof ctx->sid);
    duo_memzero(ctx->pending, sizeof ctx->pending);
    ctx->has_pending = 0;
    free(ctx->app);
    ctx->app = NULL;
    ctx->app_len = 0;
    free(ctx->cert);
    ctx->cert = NULL;
    ctx->cert_len = 0;
    ctx->role = 0;
    ctx->address[0] = '\0';
    drop_precomputed(ctx);
}

int duo__dev_need_key(duo_device_ctx *ctx) {
    if (ctx->key == NULL) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "no key: enrol first or load a state");
        return DUO_E_MISUSE;
    }
    if (!ctx->confirmed) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the enrolment is not confirmed yet");
        return DUO_E_MISUSE;
    }
    return DUO_OK;
}

int duo__dev_fill_mac_req(duo_device_ctx *ctx, uint8_t key_id[16], uint8_t nonce[32]) {
    memcpy(key_id, ctx->key->key_id, 16);
    return duo_rng_bytes(duo__dev_rng(ctx), nonce, 32);
}

/* ------------------------------------------------------------ version */

unsigned long duo_device_version(void) { return DUOSIGN_DEVICE_VERSION_NUMBER; }

const char *duo_device_version_string(void) { return DUOSIGN_DEVICE_VERSION_STRING; }

/* ------------------------------------------------------------ context */

int duo_device_ctx_new(duo_device_ctx **out) {
    duo_device_ctx *ctx;
    int r;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if ((ctx = calloc(1, sizeof *ctx)) == NULL) {
        return DUO_E_NOMEM;
    }
    for (int c = 1; c < DUO_CURVE_COUNT; c++) {
        if ((r = duo_ec_new(&ctx->ecs[c], (duo_curve)c, NULL)) != DUO_OK) {
            duo_device_ctx_free(ctx);
            return r;
        }
    }
    ctx->ec = ctx->ecs[DUO_CURVE_DEFAULT];
    ctx->rng.fill = rng_adapter;
    ctx->rng.data = ctx;
    ctx->gen = 1;
    *out = ctx;
    return DUO_OK;
}

void duo_device_ctx_free(duo_device_ctx *ctx) {
    if (ctx == NULL) {
        return;
    }
    drop_key(ctx);
    for (int c = 0; c < DUO_CURVE_COUNT; c++) duo_ec_free(ctx->ecs[c]);
    duo_memzero(ctx, sizeof *ctx);
    free(ctx);
}

int duo_device_set_enroll_curve(duo_device_ctx *ctx, int curve) {
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (!duo_curve_valid(curve)) {
        return DUO_E_UNSUPPORTED;
    }
    if (ctx->key != NULL) {
        return DUO_E_EXISTS;
    }
    ctx->ec = ctx->ecs[curve];
    return DUO_OK;
}

int duo_device_curve(const duo_device_ctx *ctx) {
    return ctx == NULL || ctx->key == NULL ? 0 : (int)duo_ec_curve(ctx->ec);
}

const char *duo_device_curve_name(int curve) {
    return duo_curve_valid(curve) ? duo_curve_name((duo_curve)curve) : NULL;
}

int duo_device_set_transport(duo_device_ctx *ctx, duo_device_transport_fn fn, duo_device_transport_free_fn free_resp,
                             void *user) {
    if (ctx == NULL || fn == NULL) {
        return DUO_E_INVALID_ARG;
    }
    ctx->transport = fn;
    ctx->transport_free = free_resp;
    ctx->transport_user = user;
    return DUO_OK;
}

int duo_device_set_rng(duo_device_ctx *ctx, duo_device_rng_fn fn, void *user) {
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    ctx->app_rng = fn;
    ctx->app_rng_user = user;
    return DUO_OK;
}

int duo_device_set_blob_wrap(duo_device_ctx *ctx, duo_device_wrap_fn wrap, duo_device_wrap_fn unwrap, void *user) {
    if (ctx == NULL || (wrap == NULL) != (unwrap == NULL)) {
        return DUO_E_INVALID_ARG;
    }
    ctx->wrap = wrap;
    ctx->unwrap = unwrap;
    ctx->wrap_user = user;
    return DUO_OK;
}

const char *duo_device_errmsg(const duo_device_ctx *ctx) { return ctx != NULL ? ctx->errmsg : "no context"; }

int duo_device_has_key(const duo_device_ctx *ctx) { return ctx != NULL && ctx->key != NULL; }

int duo_device_is_confirmed(const duo_device_ctx *ctx) { return ctx != NULL && ctx->key != NULL && ctx->confirmed; }

int duo_device_role(const duo_device_ctx *ctx) { return ctx == NULL || ctx->key == NULL ? 0 : ctx->role; }

int duo_device_set_enroll_role(duo_device_ctx *ctx, int role) {
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    if (ctx->key != NULL) return DUO_E_EXISTS;
    if (role < 0 || role >= DUO_KEY_ROLE_COUNT) return DUO_E_UNSUPPORTED;
    ctx->enroll_role = role;
    return DUO_OK;
}

int duo_device_key_id(const duo_device_ctx *ctx, uint8_t out[DUO_DEVICE_KEY_ID_BYTES]) {
    if (ctx == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (ctx->key == NULL) {
        return DUO_E_MISUSE;
    }
    memcpy(out, ctx->key->key_id, 16);
    return DUO_OK;
}

const char *duo_device_server_address(const duo_device_ctx *ctx) {
    return (ctx != NULL && ctx->key != NULL) ? ctx->address : NULL;
}
