/* duosign device library: the RPC plumbing. One unary call through the
 * app's transport, sealed in the inner channel (issue 12) once the cloud's
 * channel key is pinned; the pinning itself (first contact, rotation, the
 * enrolment token's fingerprint); and the one retry of a continuing round
 * that reached a node without its channel (DUO_E_CHANNEL_UNKNOWN). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_internal.h"
#include "duosign/channel_fp.h"
#include "duosign/mem.h"

/* One unary call as the transport carries it. On success *resp is a copy
 * the library owns (duo__dev_release() wipes and frees it). */
static int rpc_plain(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                     size_t *resp_len) {
    char path[96];
    char msg[DUO__DEV_ERRMSG_CAP];
    uint8_t *t = NULL;
    size_t tl = 0;
    int r;

    *resp = NULL;
    *resp_len = 0;
    snprintf(path, sizeof path, "%s%s", DUO_DEVICE_METHOD_PREFIX, method);
    msg[0] = '\0';
    r = ctx->transport(ctx->transport_user, path, req, req_len, &t, &tl, msg, sizeof msg);
    msg[sizeof msg - 1] = '\0';
    if (r != DUO_OK) {
        if (r > 0 || !duo_err_is_known(r)) {
            r = DUO_E_IO;
        }
        if (msg[0] != '\0') {
            snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s", msg);
        }
    } else if (t == NULL && tl != 0) {
        r = DUO_E_DECODE;
    } else if ((*resp = malloc(tl ? tl : 1)) == NULL) {
        r = DUO_E_NOMEM;
    } else {
        if (tl) memcpy(*resp, t, tl);
        *resp_len = tl;
    }
    if (t != NULL && ctx->transport_free != NULL) {
        ctx->transport_free(ctx->transport_user, t, tl);
    }
    return r;
}

void duo__dev_release(duo_device_ctx *ctx, uint8_t *resp, size_t resp_len) {
    (void)ctx;
    if (resp != NULL) {
        duo_memzero(resp, resp_len);
        free(resp);
    }
}

static void channel_close(duo_device_ctx *ctx) {
    duo_ch_clear(&ctx->ch);
    ctx->ch_open = 0;
}

/* The methods that continue the session the previous call opened (their
 * request is record n >= 1 of its channel); every other method opens a new
 * channel. A new multi-round RPC adds its later rounds here (PROTOCOL.md). */
static int continues_session(const char *method) {
    static const char *const cont[] = {"EnrollKeyShare", "EnrollPdlChallenge", "EnrollPdlOpen", "EnrollConfirm",
                                       "SignFinish"};
    for (size_t i = 0; i < sizeof cont / sizeof cont[0]; i++)
        if (strcmp(method, cont[i]) == 0) return 1;
    return 0;
}

/* One call through the inner channel: the request sealed, the response
 * opened; the plain messages are exactly the RPC's own. */
/* Seals req in the open channel (a new one unless the call continues an
 * established session) and sends it; *raw is the sealed answer. */
static int seal_send(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **raw,
                     size_t *raw_len) {
    duo_ch_record rec;
    uint8_t *ct = NULL, *env = NULL;
    size_t env_len = 0;
    int r = DUO_OK;
    if (!(continues_session(method) && ctx->ch_open && ctx->ch.established)) {
        channel_close(ctx);
        if ((r = duo_ch_device_begin(&ctx->ch, ctx->chkey_number, ctx->chkey_pub, duo__dev_rng(ctx))) != DUO_OK)
            goto out;
        ctx->ch_open = 1;
    }
    if ((r = duo_ch_seal(&ctx->ch, &rec, &ct, method, ctx->key ? ctx->key->key_id : NULL, req, req_len,
                         duo__dev_rng(ctx))) != DUO_OK ||
        (r = duo_wire_build_sealed(&env, &env_len, &rec)) != DUO_OK)
        goto out;
    r = rpc_plain(ctx, method, env, env_len, raw, raw_len);
out:
    free(ct);
    free(env);
    return r;
}

static int rpc_sealed(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                      size_t *resp_len) {
    duo_ch_record back;
    uint8_t *raw = NULL, *bbuf = NULL;
    size_t raw_len = 0;
    int r = seal_send(ctx, method, req, req_len, &raw, &raw_len);
    /* A later round that reached a node without this channel (several nodes
     * on one store: the channel lives in the node that opened it, the
     * signing session in the store) was refused before anything ran; it
     * goes again in a channel of its own, which any node opens. */
    if (r == DUO_E_CHANNEL_UNKNOWN && continues_session(method)) {
        channel_close(ctx);
        r = seal_send(ctx, method, req, req_len, &raw, &raw_len);
    }
    if (r != DUO_OK) goto out;
    if ((r = duo_wire_parse_sealed(&back, &bbuf, raw, raw_len)) != DUO_OK ||
        (r = duo_ch_open(&ctx->ch, resp, resp_len, method, &back)) != DUO_OK)
        goto out;
    if (back.rekey) ctx->want_rekey = 1;
out:
    if (r != DUO_OK) channel_close(ctx); /* the next call starts a new session */
    free(bbuf);
    duo__dev_release(ctx, raw, raw_len);
    return r;
}

/* Pins the cloud's channel key: plain over TLS at first contact (no key
 * pinned yet), sealed under the pinned key after a rotation (then the
 * answer is authentic under the old key). A key held already marks the
 * state dirty: the app saves the upgraded blob (v4). */
static int fetch_channel_key(duo_device_ctx *ctx) {
    uint8_t *rs = NULL, pub[DUO_CH_PUB_BYTES];
    size_t rsl = 0;
    uint32_t number = 0;
    int r = ctx->has_chkey ? rpc_sealed(ctx, "ChannelKey", (const uint8_t *)"", 0, &rs, &rsl)
                           : rpc_plain(ctx, "ChannelKey", (const uint8_t *)"", 0, &rs, &rsl);
    if (ctx->has_chkey) channel_close(ctx);
    if (r == DUO_OK) r = duo_wire_parse_channel_key_resp(&number, pub, rs, rsl);
    duo__dev_release(ctx, rs, rsl);
    if (r != DUO_OK) return r;
    if (!ctx->has_chkey || number != ctx->chkey_number || memcmp(pub, ctx->chkey_pub, sizeof pub) != 0) {
        ctx->has_chkey = 1;
        ctx->chkey_number = number;
        memcpy(ctx->chkey_pub, pub, sizeof pub);
        if (ctx->key != NULL) duo__dev_mark_dirty(ctx);
    }
    ctx->want_rekey = 0;
    return DUO_OK;
}

int duo_device_channel_unpin(duo_device_ctx *ctx) {
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    channel_close(ctx);
    ctx->has_chkey = 0;
    ctx->want_rekey = 0;
    return DUO_OK;
}

/* A token that carries the channel key's fingerprint (duosign/channel_fp.h):
 * the key the cloud presents (fetched now, plain over the pinned-CA TLS, or
 * pinned already) must match it before the first enrolment request. On a
 * mismatch a key fetched here is dropped again: nothing is kept. A token
 * without a fingerprint trusts the TLS alone, as before. */
int duo__dev_check_token_fingerprint(duo_device_ctx *ctx, const uint8_t *token, size_t token_len) {
    uint8_t fp[DUO_CH_FP_BYTES];
    int has = 0, fetched = 0, r;
#ifdef DUO_TEST_HOOKS
    /* TESTING ONLY: a device from before the channel does not read tokens. */
    const char *legacy = getenv("DUOSIGN_TEST_LEGACY_PLAIN");
    if (legacy != NULL && strcmp(legacy, "1") == 0 && !ctx->has_chkey) return DUO_OK;
#endif
    if ((r = duo_ch_token_fingerprint(fp, &has, token, token_len)) != DUO_OK) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg,
                 "the token's channel-key fingerprint is malformed (after its '.': 32 hex digits)");
        return r;
    }
    if (!has) return DUO_OK;
    if (ctx->transport == NULL) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "no transport configured");
        return DUO_E_MISUSE;
    }
    if (!ctx->has_chkey) {
        if ((r = fetch_channel_key(ctx)) != DUO_OK) return r;
        fetched = 1;
    }
    if ((r = duo_ch_fingerprint_check(fp, ctx->chkey_pub)) != DUO_OK) {
        if (fetched) { /* nothing kept: the next attempt asks the cloud again */
            ctx->has_chkey = 0;
            memset(ctx->chkey_pub, 0, sizeof ctx->chkey_pub);
        }
        snprintf(ctx->errmsg, sizeof ctx->errmsg,
                 "the cloud's channel key %u is not the one the enrolment token names: not this service's "
                 "signer, or a token from another deployment; no enrolment request was sent",
                 (unsigned)ctx->chkey_number);
    }
    return r;
}

/* One unary call: sealed once a channel key is pinned (fetched first when
 * none is: enrolment and the one online upgrade step of an older state). On
 * success *resp belongs to the library: release it with duo__dev_release(). */
int duo__dev_rpc(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                 size_t *resp_len) {
    int r;
    *resp = NULL;
    *resp_len = 0;
    if (ctx->transport == NULL) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "no transport configured");
        return DUO_E_MISUSE;
    }
#ifdef DUO_TEST_HOOKS
    /* TESTING ONLY (device_half/lib/CMakeLists.txt): a device from before the channel. */
    const char *legacy = getenv("DUOSIGN_TEST_LEGACY_PLAIN");
    if (legacy != NULL && strcmp(legacy, "1") == 0 && !ctx->has_chkey)
        return rpc_plain(ctx, method, req, req_len, resp, resp_len);
#endif
    if ((!ctx->has_chkey || (ctx->want_rekey && !continues_session(method))) && (r = fetch_channel_key(ctx)) != DUO_OK)
        return r;
    return rpc_sealed(ctx, method, req, req_len, resp, resp_len);
}

void duo__dev_free_req(uint8_t *buf, size_t len) {
    if (buf != NULL) {
        duo_memzero(buf, len);
        free(buf);
    }
}
