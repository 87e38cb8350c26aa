/* duosign device library: the public API (duosign/device.h) over the P2
 * engine (device_half/engine/p2.h) and the wire layer (common/wire/wire.h).
 *
 * This file moves messages between the engine and the app's transport,
 * keeps the key, the rotating device secret and its pending successor
 * (DESIGN 3.5), and (de)serializes the state blob (blob.c). It holds no
 * protocol logic of its own beyond building the MACed lifecycle requests
 * (Refresh, Revoke, Status, and the enrolment confirmation after a restart),
 * which the engine does not cover. */
#include "duosign/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "blob.h"
#include "duosign/curve.h"
#include "duosign.pb-c.h"
#include "duosign/ec_pkey.h"
#include "duosign/channel_fp.h"
#include "duosign/inner_channel.h"
#include "duosign/login_digest.h"
#include "duosign/mem.h"
#include "duosign/resync.h"
#include "duosign/rp_digest.h"
#include "duosign/paillier.h"
#include "duosign/rng.h"
#include "p2.h"
#include "wire.h"

#define ERRMSG_CAP 512

struct duo_device_ctx {
    duo_ec *ecs[DUO_CURVE_COUNT]; /* one context per curve (NULL at 0) */
    duo_ec *ec;                   /* ecs[the key's curve], or of the next enrolment */
    duo_rng rng;                  /* adapter over app_rng; used only when app_rng is set */
    duo_device_rng_fn app_rng;
    void *app_rng_user;

    duo_device_transport_fn transport;
    duo_device_transport_free_fn transport_free;
    void *transport_user;

    duo_device_wrap_fn wrap, unwrap;
    void *wrap_user;

    duo_p2_key *key; /* key->device_secret is the secret in use */
    int confirmed;
    uint8_t sid[32]; /* enrolment session id (for the confirmation) */
    char address[DUO_DEVICE_ADDRESS_MAX + 1];
    uint8_t *app;
    size_t app_len;
    int role;        /* duo_key_role of the key (0: from before roles) */
    int enroll_role; /* the role of the next duo_device_enroll */
    uint8_t *cert;   /* the key's certificate (DER, public), or NULL */
    size_t cert_len;

    uint8_t pending[32]; /* SECRET: next device secret, not yet persisted */
    int has_pending;

    /* The inner channel (issue 12): the cloud's channel key, pinned in the
     * state blob (v4), and the open session (its keys SECRET). */
    int has_chkey;
    uint32_t chkey_number;
    uint8_t chkey_pub[DUO_CH_PUB_BYTES];
    duo_channel ch;
    int ch_open;
    int want_rekey; /* the cloud said it has a newer channel key */

    /* Every change bumps gen; persisted() is accepted only for the blob of
     * the current generation. */
    unsigned long gen, exported_gen, persisted_gen;
    int exported;

    BIGNUM *pre[DUO_DEVICE_PRECOMPUTE_MAX]; /* SECRET: r^N mod N^2 factors */
    unsigned npre;

    /* A prepared PIN (duo_device_pin_prepare): KDF(PIN, salt) in locked,
     * wipe-on-free memory, for one signature, bound to the key id and PIN
     * salt it was derived for. SECRET: with x2_masked it gives x2. */
    duo_scalar *prep;
    uint8_t prep_key_id[DUO_DEVICE_KEY_ID_BYTES];
    uint8_t prep_salt[DUO_PIN_SALT_BYTES];

    char errmsg[ERRMSG_CAP];
};

/* ------------------------------------------------------------ helpers */

static int rng_adapter(void *data, uint8_t *out, size_t len) {
    duo_device_ctx *ctx = data;
    return ctx->app_rng(ctx->app_rng_user, out, len) == 0 ? 0 : 1;
}

static const duo_rng *ctx_rng(const duo_device_ctx *ctx) {
    return ctx->app_rng != NULL ? &ctx->rng : duo_rng_default();
}

static void begin(duo_device_ctx *ctx) { ctx->errmsg[0] = '\0'; }

/* Records the outcome of an API call: keeps a message set by the transport,
 * else uses the error table's message. */
static int finish(duo_device_ctx *ctx, int r) {
    if (r == DUO_OK) {
        ctx->errmsg[0] = '\0';
    } else if (ctx->errmsg[0] == '\0') {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s", duo_strerror(r));
    }
    return r;
}

static void mark_dirty(duo_device_ctx *ctx) {
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

/* Wipes and frees the prepared PIN, if any. */
static void drop_prepared(duo_device_ctx *ctx) {
    if (ctx->prep != NULL) {
        duo_memzero(ctx->prep, sizeof *ctx->prep);
        duo_secure_free(ctx->prep);
        ctx->prep = NULL;
    }
    duo_memzero(ctx->prep_key_id, sizeof ctx->prep_key_id);
    duo_memzero(ctx->prep_salt, sizeof ctx->prep_salt);
}

/* 1 if the prepared PIN was made for the key and PIN salt held now. The
 * salt changes with every re-masking (duo_p2_key_change_pin), the key id
 * with the key. Neither is secret. */
static int prepared_matches(const duo_device_ctx *ctx) {
    return ctx->prep != NULL && ctx->key != NULL &&
           duo_ct_eq(ctx->prep_key_id, ctx->key->key_id, sizeof ctx->prep_key_id) &&
           duo_ct_eq(ctx->prep_salt, ctx->key->pin_salt, sizeof ctx->prep_salt);
}

static void drop_key(duo_device_ctx *ctx) {
    drop_prepared(ctx);
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

/* One unary call as the transport carries it. On success *resp is a copy
 * the library owns (release() wipes and frees it). */
static int rpc_plain(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                     size_t *resp_len) {
    char path[96];
    char msg[ERRMSG_CAP];
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

static void release(duo_device_ctx *ctx, uint8_t *resp, size_t resp_len) {
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
        if ((r = duo_ch_device_begin(&ctx->ch, ctx->chkey_number, ctx->chkey_pub, ctx_rng(ctx))) != DUO_OK) goto out;
        ctx->ch_open = 1;
    }
    if ((r = duo_ch_seal(&ctx->ch, &rec, &ct, method, ctx->key ? ctx->key->key_id : NULL, req, req_len,
                         ctx_rng(ctx))) != DUO_OK ||
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
    release(ctx, raw, raw_len);
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
    release(ctx, rs, rsl);
    if (r != DUO_OK) return r;
    if (!ctx->has_chkey || number != ctx->chkey_number || memcmp(pub, ctx->chkey_pub, sizeof pub) != 0) {
        ctx->has_chkey = 1;
        ctx->chkey_number = number;
        memcpy(ctx->chkey_pub, pub, sizeof pub);
        if (ctx->key != NULL) mark_dirty(ctx);
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
static int check_token_fingerprint(duo_device_ctx *ctx, const uint8_t *token, size_t token_len) {
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
 * success *resp belongs to the library: release it with release(). */
static int rpc(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
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

static void free_req(uint8_t *buf, size_t len) {
    if (buf != NULL) {
        duo_memzero(buf, len);
        free(buf);
    }
}

/* Builds, sends, parses. BUILD/PARSE name the wire functions. */
#define DUO__RPC(ctx, method, build, reqmsg, parse, respmsg, r, label)  \
    do {                                                                \
        uint8_t *rq_ = NULL, *rs_ = NULL;                               \
        size_t rql_ = 0, rsl_ = 0;                                      \
        if (((r) = build(&rq_, &rql_, (reqmsg))) != DUO_OK) goto label; \
        (r) = rpc((ctx), (method), rq_, rql_, &rs_, &rsl_);             \
        free_req(rq_, rql_);                                            \
        if ((r) != DUO_OK) goto label;                                  \
        (r) = parse((respmsg), rs_ ? rs_ : (const uint8_t *)"", rsl_);  \
        release((ctx), rs_, rsl_);                                      \
        if ((r) != DUO_OK) goto label;                                  \
    } while (0)

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

/* ------------------------------------------------------------ enrolment */

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
    begin(ctx);
    memset(&a2, 0, sizeof a2);
    memset(&r3, 0, sizeof r3);
    memset(&r4, 0, sizeof r4);
    if (ctx->key != NULL) {
        return finish(ctx, DUO_E_EXISTS);
    }
    if (server_address == NULL || (alen = strlen(server_address)) == 0 || alen > DUO_DEVICE_ADDRESS_MAX ||
        token == NULL || token_len == 0 || token_len > DUO_DEVICE_TOKEN_MAX) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if (pin == NULL || pin_len < DUO_DEVICE_PIN_MIN || pin_len > DUO_DEVICE_PIN_MAX) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the PIN must be %d to %d bytes", DUO_DEVICE_PIN_MIN,
                 DUO_DEVICE_PIN_MAX);
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if (paillier_bits == 0) {
        paillier_bits = DUO_PAILLIER_BITS_DEFAULT;
    }
    if (!duo_paillier_bits_supported(paillier_bits)) {
        return finish(ctx, DUO_E_UNSUPPORTED);
    }
    if ((r = check_token_fingerprint(ctx, token, token_len)) != DUO_OK) {
        return finish(ctx, r);
    }
    memset(&p, 0, sizeof p);
    p.ec = ctx->ec;
    p.rng = ctx_rng(ctx);
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
    mark_dirty(ctx);
    r = DUO_OK;
out:
    duo_wire_free_enroll_key_share_resp(&a2);
    duo_wire_free_enroll_pdl_challenge_req(&r3);
    duo_memzero(&r4, sizeof r4);
    duo_memzero(&conf, sizeof conf);
    duo_p2_key_free(key);
    duo_p2_enroll_free(s);
    return finish(ctx, r);
}

int duo_device_enroll_confirm(duo_device_ctx *ctx, char *revocation_code, size_t code_cap) {
    int r = DUO_E_INTERNAL;
    duo_enroll_confirm_req req;
    duo_enroll_confirm_resp resp;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (revocation_code != NULL) {
        if (code_cap == 0) {
            return finish(ctx, DUO_E_INVALID_ARG);
        }
        revocation_code[0] = '\0';
    }
    if (ctx->key == NULL || ctx->confirmed) {
        return finish(ctx, DUO_E_MISUSE);
    }
    if (duo_device_state_dirty(ctx)) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "store the state durably before confirming the enrolment");
        return finish(ctx, DUO_E_MISUSE);
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
    mark_dirty(ctx);
out:
    duo_memzero(mi, sizeof mi);
    duo_memzero(&resp, sizeof resp);
    return finish(ctx, r);
}

/* ------------------------------------------------------------ signing */

static int need_key(duo_device_ctx *ctx) {
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

/* DESIGN 3.3, both rounds, and the secret rotation of 3.5. */
/* What a request names: purpose and its extra field (docs/PROTOCOL.md). */
typedef struct sign_purpose {
    int purpose;
    const uint8_t *data;
    size_t len;
    const uint8_t *request_id; /* NULL, or the relying party's request approved (MACed) */
} sign_purpose;

/* A document signature: DOCUMENT for a key with a role; a key from before
 * roles sends no purpose, so an older cloud accepts it as before. */
static sign_purpose document_purpose(const duo_device_ctx *ctx) {
    sign_purpose sp = {ctx->role != 0 ? DUO_SIGN_PURPOSE_DOCUMENT : DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0, NULL};
    return sp;
}

static int sign_inner(duo_device_ctx *ctx, uint8_t sig[64], const uint8_t digest[32], const sign_purpose *sp,
                      const uint8_t *pin, size_t pin_len, const duo_scalar *pin_kdf) {
    int r = DUO_E_INTERNAL;
    duo_p2_sign *s = NULL;
    duo_p2_sign_params p;
    duo_sign_start_req r1;
    duo_sign_start_resp a1;
    duo_sign_finish_req r2;
    duo_sign_finish_resp a2;
    uint8_t next[32];

    memset(&r2, 0, sizeof r2);
    memset(&a2, 0, sizeof a2);
    memset(&p, 0, sizeof p);
    p.ec = ctx->ec;
    p.rng = ctx_rng(ctx);
    p.key = ctx->key; /* key->device_secret: the secret in use */
    p.pin = pin;      /* exactly one of pin and pin_kdf */
    p.pin_len = pin_len;
    p.pin_kdf = pin_kdf;
    p.digest = digest;
    p.purpose = sp->purpose;
    p.purpose_data = sp->data;
    p.purpose_data_len = sp->len;
    p.request_id = sp->request_id;
    if (ctx->npre > 0) {
        /* Used once: the engine takes it whatever happens. */
        p.precomputed_rn = ctx->pre[--ctx->npre];
        ctx->pre[ctx->npre] = NULL;
    }
    if ((r = duo_p2_sign_new(&s, &p)) != DUO_OK) goto out;
    if ((r = duo_p2_sign_start(s, &r1)) != DUO_OK) goto out;
    DUO__RPC(ctx, "SignStart", duo_wire_build_sign_start_req, &r1, duo_wire_parse_sign_start_resp, &a1, r, out);
    if ((r = duo_p2_sign_on_start(s, &a1, &r2)) != DUO_OK) goto out;
    DUO__RPC(ctx, "SignFinish", duo_wire_build_sign_finish_req, &r2, duo_wire_parse_sign_finish_resp, &a2, r, out);
    if ((r = duo_p2_sign_on_finish(s, &a2, sig)) != DUO_OK) goto out;
    /* The cloud derived the same pending secret; the app persists it. */
    if ((r = duo_secret_rotate(next, ctx->key->device_secret, duo_p2_sign_sid(s), a2.rotate_seed)) != DUO_OK) {
        goto out;
    }
    memcpy(ctx->pending, next, 32);
    ctx->has_pending = 1;
    mark_dirty(ctx);
out:
    duo_memzero(next, sizeof next);
    duo_wire_free_sign_finish_req(&r2);
    duo_memzero(&a2, sizeof a2);
    duo_p2_sign_free(s);
    if (r != DUO_OK) {
        duo_memzero(sig, 64);
    }
    return r;
}

static int sign_common(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                       const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const sign_purpose *sp, const uint8_t *pin,
                       size_t pin_len);

int duo_device_sign(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                    const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const uint8_t *pin, size_t pin_len) {
    sign_purpose sp;
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    sp = document_purpose(ctx);
    return sign_common(ctx, sig, digest, &sp, pin, pin_len);
}

int duo_device_sign_login(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                          uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const uint8_t *challenge, size_t challenge_len,
                          const uint8_t *pin, size_t pin_len) {
    sign_purpose sp = {DUO_SIGN_PURPOSE_LOGIN, challenge, challenge_len, NULL};
    int r;
    if (ctx == NULL || digest == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (challenge == NULL || challenge_len < DUO_LOGIN_CHALLENGE_MIN || challenge_len > DUO_LOGIN_CHALLENGE_MAX) {
        begin(ctx);
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "a login challenge is %d to %d bytes", DUO_LOGIN_CHALLENGE_MIN,
                 DUO_LOGIN_CHALLENGE_MAX);
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = duo_login_digest(digest, challenge, challenge_len)) != DUO_OK) return r;
    return sign_common(ctx, sig, digest, &sp, pin, pin_len);
}

int duo_device_sign_csr_info(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES], const uint8_t *info,
                             size_t info_len, const uint8_t *pin, size_t pin_len) {
    sign_purpose sp = {DUO_SIGN_PURPOSE_CSR, info, info_len, NULL};
    uint8_t digest[32];
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (info == NULL || info_len == 0 || info_len > DUO_CSR_INFO_MAX) {
        begin(ctx);
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    SHA256(info, info_len, digest);
    return sign_common(ctx, sig, digest, &sp, pin, pin_len);
}

int duo_device_role(const duo_device_ctx *ctx) { return ctx == NULL || ctx->key == NULL ? 0 : ctx->role; }

int duo_device_set_enroll_role(duo_device_ctx *ctx, int role) {
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    if (ctx->key != NULL) return DUO_E_EXISTS;
    if (role < 0 || role >= DUO_KEY_ROLE_COUNT) return DUO_E_UNSUPPORTED;
    ctx->enroll_role = role;
    return DUO_OK;
}

/* duo_device_sign, _sign_login, _sign_csr_info and duo_device_approve: the
 * PIN or the prepared PIN. */
static int sign_common(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                       const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const sign_purpose *sp, const uint8_t *pin,
                       size_t pin_len) {
    int r;
    duo_scalar *kdf = NULL;
    int matches;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    /* One prepared PIN serves one call, whatever happens: take it out of ctx
     * now (a call with a PIN wipes it unused). */
    matches = prepared_matches(ctx);
    kdf = ctx->prep;
    ctx->prep = NULL;
    drop_prepared(ctx);
    if (sig == NULL || digest == NULL || (pin == NULL && pin_len != 0) ||
        (pin != NULL && (pin_len == 0 || pin_len > DUO_DEVICE_PIN_MAX))) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if ((r = need_key(ctx)) != DUO_OK) {
        goto out;
    }
    if (pin == NULL) {
        if (kdf == NULL) {
            snprintf(ctx->errmsg, sizeof ctx->errmsg,
                     "no prepared PIN (none made, or already used by a signature): give the PIN or call "
                     "duo_device_pin_prepare first");
            r = DUO_E_MISUSE;
            goto out;
        }
        if (!matches) {
            snprintf(ctx->errmsg, sizeof ctx->errmsg,
                     "the prepared PIN was made for another key or PIN salt (the state changed since): prepare "
                     "it again");
            r = DUO_E_MISUSE;
            goto out;
        }
        r = sign_inner(ctx, sig, digest, sp, NULL, 0, kdf);
    } else {
        r = sign_inner(ctx, sig, digest, sp, pin, pin_len, NULL);
    }
out:
    if (kdf != NULL) {
        duo_memzero(kdf, sizeof *kdf);
        duo_secure_free(kdf);
    }
    if (r != DUO_OK && sig != NULL) {
        duo_memzero(sig, DUO_DEVICE_SIG_BYTES);
    }
    return finish(ctx, r);
}

int duo_device_pin_prepare(duo_device_ctx *ctx, const uint8_t *pin, size_t pin_len) {
    int r;
    duo_scalar *kdf = NULL;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    drop_prepared(ctx); /* a new PIN replaces the old one; a failure leaves none */
    if (pin == NULL || pin_len == 0 || pin_len > DUO_DEVICE_PIN_MAX) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = need_key(ctx)) != DUO_OK) {
        return finish(ctx, r);
    }
    if ((kdf = duo_secure_malloc(sizeof *kdf)) == NULL) {
        return finish(ctx, DUO_E_NOMEM);
    }
    /* The PIN KDF (scrypt, DESIGN 3.4) under the key's current salt. */
    if ((r = duo_p2_pin_kdf(ctx->ec, kdf, ctx->key, pin, pin_len)) != DUO_OK) {
        duo_memzero(kdf, sizeof *kdf);
        duo_secure_free(kdf);
        return finish(ctx, r);
    }
    ctx->prep = kdf;
    memcpy(ctx->prep_key_id, ctx->key->key_id, sizeof ctx->prep_key_id);
    memcpy(ctx->prep_salt, ctx->key->pin_salt, sizeof ctx->prep_salt);
    return finish(ctx, DUO_OK);
}

void duo_device_pin_prepare_clear(duo_device_ctx *ctx) {
    if (ctx != NULL) {
        drop_prepared(ctx);
    }
}

int duo_device_pin_prepared(const duo_device_ctx *ctx) { return ctx != NULL && prepared_matches(ctx); }

int duo_device_sig_to_der(uint8_t *der, size_t *der_len, const uint8_t sig[DUO_DEVICE_SIG_BYTES]) {
    ECDSA_SIG *es = NULL;
    BIGNUM *br = NULL, *bs = NULL;
    unsigned char *p = NULL;
    int n, r = DUO_E_INTERNAL;

    if (der == NULL || der_len == NULL || sig == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((es = ECDSA_SIG_new()) == NULL || (br = BN_bin2bn(sig, 32, NULL)) == NULL ||
        (bs = BN_bin2bn(sig + 32, 32, NULL)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (BN_is_zero(br) || BN_is_zero(bs)) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if (ECDSA_SIG_set0(es, br, bs) != 1) goto out;
    br = bs = NULL;
    if ((n = i2d_ECDSA_SIG(es, &p)) <= 0) goto out;
    if ((size_t)n > *der_len) {
        r = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    memcpy(der, p, (size_t)n);
    *der_len = (size_t)n;
    r = DUO_OK;
out:
    OPENSSL_free(p);
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(es);
    return r;
}

int duo_device_precompute(duo_device_ctx *ctx, unsigned count, unsigned *available) {
    int r = DUO_OK;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (available != NULL) {
        *available = ctx->npre;
    }
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    while (count > 0 && ctx->npre < DUO_DEVICE_PRECOMPUTE_MAX) {
        BIGNUM *rn = BN_secure_new();
        if (rn == NULL) {
            r = DUO_E_NOMEM;
            break;
        }
        if ((r = duo_paillier_rn(ctx->key->paillier, rn, ctx_rng(ctx))) != DUO_OK) {
            BN_clear_free(rn);
            break;
        }
        ctx->pre[ctx->npre++] = rn;
        count--;
    }
    if (available != NULL) {
        *available = ctx->npre;
    }
    return finish(ctx, r);
}

/* ------------------------------------------------------------ lifecycle */

#define CHANGE_PIN_TAG "duosign/v1/change-pin"

int duo_device_change_pin(duo_device_ctx *ctx, const uint8_t *old_pin, size_t old_pin_len, const uint8_t *new_pin,
                          size_t new_pin_len) {
    int r;
    uint8_t buf[sizeof CHANGE_PIN_TAG - 1 + 16 + 32], digest[32], sig[64];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    /* The share is about to be re-masked under a new salt: a prepared PIN
     * must not outlive that (and the old PIN is the one given here). */
    drop_prepared(ctx);
    if (old_pin == NULL || old_pin_len == 0 || old_pin_len > DUO_DEVICE_PIN_MAX) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if (new_pin == NULL || new_pin_len < DUO_DEVICE_PIN_MIN || new_pin_len > DUO_DEVICE_PIN_MAX) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the new PIN must be %d to %d bytes", DUO_DEVICE_PIN_MIN,
                 DUO_DEVICE_PIN_MAX);
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = need_key(ctx)) != DUO_OK) {
        return finish(ctx, r);
    }
    /* The online PIN proof: a signature over a digest no document can have
     * (domain-separated, fresh randomness). */
    memcpy(buf, CHANGE_PIN_TAG, sizeof CHANGE_PIN_TAG - 1);
    memcpy(buf + sizeof CHANGE_PIN_TAG - 1, ctx->key->key_id, 16);
    if ((r = duo_rng_bytes(ctx_rng(ctx), buf + sizeof CHANGE_PIN_TAG - 1 + 16, 32)) != DUO_OK) goto out;
    SHA256(buf, sizeof buf, digest);
    /* An authentication key signs no document: its PIN proof is a login over
     * the same fresh bytes (a login digest, cloud-checked). */
    sign_purpose sp = document_purpose(ctx);
    if (ctx->role == DUO_KEY_ROLE_AUTH) {
        sp.purpose = DUO_SIGN_PURPOSE_LOGIN;
        sp.data = buf;
        sp.len = sizeof buf;
        if ((r = duo_login_digest(digest, buf, sizeof buf)) != DUO_OK) goto out;
    }
    if ((r = sign_inner(ctx, sig, digest, &sp, old_pin, old_pin_len, NULL)) != DUO_OK) goto out;
    /* old_pin is proven: re-mask locally with a fresh salt. */
    if ((r = duo_p2_key_change_pin(ctx->ec, ctx->key, old_pin, old_pin_len, new_pin, new_pin_len, ctx_rng(ctx))) !=
        DUO_OK) {
        goto out;
    }
    mark_dirty(ctx);
out:
    duo_memzero(sig, sizeof sig);
    return finish(ctx, r);
}

static int fill_mac_req(duo_device_ctx *ctx, uint8_t key_id[16], uint8_t nonce[32]) {
    memcpy(key_id, ctx->key->key_id, 16);
    return duo_rng_bytes(ctx_rng(ctx), nonce, 32);
}

int duo_device_refresh(duo_device_ctx *ctx) {
    int r;
    duo_refresh_req req;
    duo_refresh_resp resp;
    uint8_t mi[32], next[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if ((r = need_key(ctx)) != DUO_OK) {
        return finish(ctx, r);
    }
    if ((r = fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_refresh(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "Refresh", duo_wire_build_refresh_req, &req, duo_wire_parse_refresh_resp, &resp, r, out);
    /* Rotation context for a refresh: the request's device nonce. */
    if ((r = duo_secret_rotate(next, ctx->key->device_secret, req.device_nonce, resp.rotate_seed)) != DUO_OK) goto out;
    memcpy(ctx->pending, next, 32);
    ctx->has_pending = 1;
    mark_dirty(ctx);
out:
    duo_memzero(next, sizeof next);
    duo_memzero(mi, sizeof mi);
    duo_memzero(&resp, sizeof resp);
    return finish(ctx, r);
}

int duo_device_revoke(duo_device_ctx *ctx) {
    int r;
    duo_revoke_req req;
    uint8_t mi[32];
    uint8_t *rq = NULL, *rs = NULL;
    size_t rql = 0, rsl = 0;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    memset(&req, 0, sizeof req);
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    req.has_mac = 1;
    if ((r = fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_revoke(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    if ((r = duo_wire_build_revoke_req(&rq, &rql, &req)) != DUO_OK) goto out;
    r = rpc(ctx, "Revoke", rq, rql, &rs, &rsl);
    free_req(rq, rql);
    if (r != DUO_OK) goto out;
    r = duo_wire_parse_revoke_resp(rs ? rs : (const uint8_t *)"", rsl);
    release(ctx, rs, rsl);
out:
    duo_memzero(mi, sizeof mi);
    return finish(ctx, r);
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
    uint8_t *rq = NULL, *rs = NULL;
    size_t rql = 0, rsl = 0;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (!printable_1_to(citizen_id, DUO_DEVICE_CITIZEN_ID_MAX) ||
        !printable_1_to(revocation_code, DUO_DEVICE_REVOCATION_CODE_MAX)) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg,
                 "the citizen id and the revocation code must be 1 to %d printable "
                 "characters",
                 DUO_DEVICE_REVOCATION_CODE_MAX);
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    memset(&req, 0, sizeof req);
    req.has_mac = 0;
    req.by_citizen = 1;
    memcpy(req.citizen_id, citizen_id, strlen(citizen_id) + 1);
    memcpy(req.revocation_code, revocation_code, strlen(revocation_code) + 1);
    if ((r = duo_rng_bytes(ctx_rng(ctx), req.device_nonce, sizeof req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_build_revoke_req(&rq, &rql, &req)) != DUO_OK) goto out;
    r = rpc(ctx, "Revoke", rq, rql, &rs, &rsl);
    free_req(rq, rql);
    if (r != DUO_OK) goto out;
    r = duo_wire_parse_revoke_resp(rs ? rs : (const uint8_t *)"", rsl);
    release(ctx, rs, rsl);
out:
    duo_memzero(&req, sizeof req);
    return finish(ctx, r);
}

int duo_device_status(duo_device_ctx *ctx, duo_device_status_info *info) {
    int r;
    duo_status_req req;
    duo_status_resp resp;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (info == NULL) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    memset(info, 0, sizeof *info);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    if ((r = fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_status(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "Status", duo_wire_build_status_req, &req, duo_wire_parse_status_resp, &resp, r, out);
    info->state = (int)resp.state;
    info->pin_attempts_left = resp.pin_attempts_left;
    info->locked_until = resp.locked_until;
    memcpy(info->public_key, resp.public_key, 33);
out:
    duo_memzero(mi, sizeof mi);
    return finish(ctx, r);
}

/* ------------------------------------------------------------ resync */

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
    begin(ctx);
    if ((r = need_key(ctx)) != DUO_OK) return finish(ctx, r);
    if (resync_forced())
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "[resync epoch 1]");
    else if ((r = duo_device_status(ctx, &st)) != DUO_E_RESYNC_POSSIBLE && r != DUO_E_RESYNC_USED)
        return r; /* DUO_OK: in sync */
    /* RESYNC_USED: asked anyway, so the cloud records the second attempt. */
    req.epoch = resync_epoch_of(ctx->errmsg);
    begin(ctx);
    if (req.epoch == 0) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the cloud offers a resynchronisation but names no restore epoch");
        return finish(ctx, DUO_E_DECODE);
    }
    if ((r = fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    memcpy(req.device_secret, ctx->key->device_secret, sizeof req.device_secret);
    resync_tamper_before(&req);
    if ((r = duo_resync_binding(&bind, req.key_id, req.device_nonce, req.epoch, req.device_secret)) != DUO_OK ||
        (r = duo_p2_resync_proof(ctx->ec, req.pin_proof, ctx->key, pin, pin_len, &bind, ctx_rng(ctx))) != DUO_OK ||
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
        r = rpc(ctx, "Resync", rq, rql, &rs, &rsl);
        rql = built; /* what free_req wipes */
        free_req(rq, rql);
        if (r == DUO_OK) r = duo_wire_parse_resync_resp(rs ? rs : (const uint8_t *)"", rsl);
        release(ctx, rs, rsl);
    }
    if (r == DUO_OK && done != NULL) *done = 1;
out:
    duo_memzero(&req, sizeof req);
    duo_memzero(mi, sizeof mi);
    return finish(ctx, r);
}

/* ------------------------------------------------------------ documents */

int duo_device_presentation_code(duo_device_ctx *ctx, const char *doc_type, duo_device_presentation *out) {
    int r;
    duo_presentation_code_req req;
    duo_presentation_code_resp resp;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (out == NULL) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    memset(out, 0, sizeof *out);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if (!duo_wire_doc_type_ok(doc_type)) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    memcpy(req.doc_type, doc_type, strlen(doc_type) + 1);
    if ((r = fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_presentation_code(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "PresentationCode", duo_wire_build_presentation_code_req, &req, duo_wire_parse_presentation_code_resp,
             &resp, r, out);
    memcpy(out->code, resp.code, sizeof out->code);
    memcpy(out->barcode, resp.barcode, sizeof out->barcode);
    out->issued_at = resp.issued_at;
    out->expires_at = resp.expires_at;
out:
    duo_memzero(mi, sizeof mi);
    duo_memzero(&resp, sizeof resp);
    return finish(ctx, r);
}

/* ------------------------------------------------------------ public key */

int duo_device_pubkey(const duo_device_ctx *ctx, uint8_t out[DUO_DEVICE_PUBKEY_BYTES]) {
    if (ctx == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (ctx->key == NULL) {
        return DUO_E_MISUSE;
    }
    duo_point_serialize(ctx->ec, out, &ctx->key->q);
    return DUO_OK;
}

int duo_device_pubkey_pem(const duo_device_ctx *ctx, char *pem, size_t *pem_len) {
    int r = DUO_E_INTERNAL;
    uint8_t pt[DUO_POINT_FULL_BYTES];
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    long n;

    if (ctx == NULL || pem == NULL || pem_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (ctx->key == NULL) {
        return DUO_E_MISUSE;
    }
    duo_point_serialize_full(ctx->ec, pt, &ctx->key->q);
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, duo_ec_group_name(ctx->ec), 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        goto out;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) goto out;
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0) goto out;
    if ((size_t)n + 1 > *pem_len) {
        r = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    memcpy(pem, data, (size_t)n);
    pem[n] = '\0';
    *pem_len = (size_t)n;
    r = DUO_OK;
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return r;
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

/* ------------------------------------------------------------ state blob */

int duo_device_state_export(duo_device_ctx *ctx, uint8_t **blob, size_t *blob_len) {
    int r = DUO_E_INTERNAL;
    duo__blob_fields f;
    uint8_t *n = NULL, *ck = NULL, *inner = NULL, *outer = NULL;
    size_t nb = 0, inner_len = 0, outer_len;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (blob == NULL || blob_len == NULL) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    *blob = NULL;
    *blob_len = 0;
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    memset(&f, 0, sizeof f);
    f.paillier_bits = duo_paillier_pub_bits(ctx->key->paillier);
    nb = f.paillier_bits / 8u;
    if ((n = malloc(nb)) == NULL || (ck = malloc(2 * nb)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_paillier_pub_serialize(ctx->key->paillier, n, nb)) != DUO_OK) goto out;
    if ((r = duo_paillier_ciphertext_serialize(ctx->key->paillier, ck, 2 * nb, ctx->key->ckey)) != DUO_OK) goto out;
    f.flags = ctx->confirmed ? DUO__BLOB_FLAG_CONFIRMED : 0;
    memcpy(f.key_id, ctx->key->key_id, 16);
    memcpy(f.x2_masked, ctx->key->x2_masked.b, 32);
    memcpy(f.pin_salt, ctx->key->pin_salt, 16);
    duo_point_serialize(ctx->ec, f.q, &ctx->key->q);
    f.curve = duo_ec_curve(ctx->ec);
    f.n = n;
    f.ckey = ck;
    /* The stored secret is the one the next process must use: the pending
     * one if any (DESIGN 3.5: the cloud holds it as its pending secret). */
    memcpy(f.device_secret, ctx->has_pending ? ctx->pending : ctx->key->device_secret, 32);
    memcpy(f.sid, ctx->sid, 32);
    f.address = ctx->address;
    f.address_len = strlen(ctx->address);
    f.app = ctx->app;
    f.app_len = ctx->app_len;
    f.role = ctx->role;
    f.cert = ctx->cert;
    f.cert_len = ctx->cert_len;
    f.has_chkey = ctx->has_chkey;
    f.chkey_number = ctx->chkey_number;
    memcpy(f.chkey_pub, ctx->chkey_pub, sizeof f.chkey_pub);
    if ((r = duo__blob_encode(&inner, &inner_len, &f)) != DUO_OK) goto out;
    if (ctx->wrap != NULL) {
        outer_len = inner_len + DUO_DEVICE_WRAP_OVERHEAD_MAX;
        if ((outer = duo_secure_malloc(outer_len)) == NULL) {
            r = DUO_E_NOMEM;
            goto out;
        }
        if ((r = ctx->wrap(ctx->wrap_user, outer, &outer_len, inner, inner_len)) != DUO_OK) {
            if (r > 0 || !duo_err_is_known(r)) r = DUO_E_INTERNAL;
            goto out;
        }
        if (outer_len > inner_len + DUO_DEVICE_WRAP_OVERHEAD_MAX) {
            r = DUO_E_BUFFER_TOO_SMALL;
            goto out;
        }
        *blob = outer;
        *blob_len = outer_len;
        outer = NULL;
    } else {
        *blob = inner;
        *blob_len = inner_len;
        inner = NULL;
    }
    ctx->exported = 1;
    ctx->exported_gen = ctx->gen;
    r = DUO_OK;
out:
    duo_memzero(&f, sizeof f);
    free(n);
    free(ck);
    duo_secure_free(inner);
    duo_secure_free(outer);
    return finish(ctx, r);
}

int duo_device_state_persisted(duo_device_ctx *ctx) {
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (ctx->key == NULL || !ctx->exported || ctx->exported_gen != ctx->gen) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "no exported state of the current generation to acknowledge");
        return finish(ctx, DUO_E_MISUSE);
    }
    if (ctx->has_pending) {
        memcpy(ctx->key->device_secret, ctx->pending, 32);
        duo_memzero(ctx->pending, 32);
        ctx->has_pending = 0;
    }
    ctx->persisted_gen = ctx->gen;
    return DUO_OK;
}

int duo_device_state_dirty(const duo_device_ctx *ctx) {
    return ctx != NULL && ctx->key != NULL && ctx->persisted_gen != ctx->gen;
}

/* DUO_OK if der is one X.509 certificate (nothing after it) whose public
 * key is the point q on curve; DUO_E_DECODE, DUO_E_CERT_KEY_MISMATCH. */
static int cert_matches(int curve, const uint8_t q[33], const uint8_t *der, size_t der_len) {
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    EVP_PKEY *want = NULL;
    int r = DUO_E_DECODE;
    if (x == NULL || p != der + der_len) goto out;
    if ((r = duo_ec_pkey_from_point(&want, duo_curve_name((duo_curve)curve), q, 33)) != DUO_OK) goto out;
    r = X509_get0_pubkey(x) != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), want) == 1 ? DUO_OK : DUO_E_CERT_KEY_MISMATCH;
out:
    EVP_PKEY_free(want);
    X509_free(x);
    return r;
}

int duo_device_state_import(duo_device_ctx *ctx, const uint8_t *blob, size_t blob_len) {
    int r = DUO_E_STATE_CORRUPT;
    duo__blob_fields f;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    const uint8_t *in = blob;
    size_t in_len = blob_len;
    duo_p2_key *key = NULL;
    uint8_t *app = NULL, *cert = NULL;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    memset(&f, 0, sizeof f);
    if (ctx->key != NULL) {
        return finish(ctx, DUO_E_EXISTS);
    }
    if (blob == NULL || blob_len == 0) {
        return finish(ctx, DUO_E_STATE_CORRUPT);
    }
    if (ctx->unwrap != NULL) {
        plain_len = blob_len;
        if ((plain = duo_secure_malloc(plain_len)) == NULL) {
            return finish(ctx, DUO_E_NOMEM);
        }
        if (ctx->unwrap(ctx->wrap_user, plain, &plain_len, blob, blob_len) != DUO_OK || plain_len > blob_len) {
            r = DUO_E_STATE_CORRUPT;
            goto out;
        }
        in = plain;
        in_len = plain_len;
    }
    if ((r = duo__blob_decode(&f, in, in_len)) != DUO_OK) goto out;

    /* Values: anything invalid is corruption too (the engine's constructor). */
    /* the blob codec accepts only curves of this build */
    if ((r = duo_p2_key_new(&key, ctx->ecs[f.curve], f.key_id, f.x2_masked, f.pin_salt, f.q, f.paillier_bits, f.n,
                            f.paillier_bits / 8u, f.ckey, 2u * f.paillier_bits / 8u, f.device_secret)) != DUO_OK)
        goto out;
    r = DUO_E_STATE_CORRUPT;
    if (f.address_len == 0 || f.address_len > DUO_DEVICE_ADDRESS_MAX || memchr(f.address, 0, f.address_len) != NULL) {
        goto out;
    }
    if (f.app_len > 0) {
        if ((app = malloc(f.app_len)) == NULL) {
            r = DUO_E_NOMEM;
            goto out;
        }
        memcpy(app, f.app, f.app_len);
    }
    if (f.cert_len > 0) {
        /* A certificate for another key is corruption like any other. */
        uint8_t q[33];
        duo_point_serialize(ctx->ecs[f.curve], q, &key->q);
        if (cert_matches(f.curve, q, f.cert, f.cert_len) != DUO_OK) goto out;
        if ((cert = malloc(f.cert_len)) == NULL) {
            r = DUO_E_NOMEM;
            goto out;
        }
        memcpy(cert, f.cert, f.cert_len);
    }
    /* All checks passed: commit to ctx in one go. */
    ctx->key = key;
    key = NULL;
    ctx->ec = ctx->ecs[f.curve];
    ctx->confirmed = (f.flags & DUO__BLOB_FLAG_CONFIRMED) != 0;
    memcpy(ctx->sid, f.sid, 32);
    memcpy(ctx->address, f.address, f.address_len);
    ctx->address[f.address_len] = '\0';
    ctx->app = app;
    ctx->app_len = f.app_len;
    app = NULL;
    ctx->role = f.role;
    ctx->cert = cert;
    ctx->cert_len = f.cert_len;
    cert = NULL;
    ctx->has_pending = 0;
    /* An older blob has no channel key: the first online call fetches and
     * pins it (the upgrade step), and the state is saved as v4. */
    ctx->has_chkey = f.has_chkey;
    ctx->chkey_number = f.chkey_number;
    memcpy(ctx->chkey_pub, f.chkey_pub, sizeof ctx->chkey_pub);
    /* What was loaded is what is stored. */
    ctx->gen++;
    ctx->exported = 1;
    ctx->exported_gen = ctx->gen;
    ctx->persisted_gen = ctx->gen;
    r = DUO_OK;
out:
    duo_memzero(&f, sizeof f);
    duo_p2_key_free(key);
    free(app);
    free(cert);
    if (plain != NULL) {
        duo_memzero(plain, blob_len);
        duo_secure_free(plain);
    }
    return finish(ctx, r);
}

void duo_device_blob_free(uint8_t *blob, size_t blob_len) {
    (void)blob_len; /* duo_secure_free knows the size and wipes */
    duo_secure_free(blob);
}

int duo_device_set_app_data(duo_device_ctx *ctx, const uint8_t *data, size_t len) {
    uint8_t *copy = NULL;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    if (len > DUO_DEVICE_APP_DATA_MAX || (len > 0 && data == NULL)) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if (len > 0) {
        if ((copy = malloc(len)) == NULL) {
            return finish(ctx, DUO_E_NOMEM);
        }
        memcpy(copy, data, len);
    }
    free(ctx->app);
    ctx->app = copy;
    ctx->app_len = len;
    mark_dirty(ctx);
    return DUO_OK;
}

int duo_device_app_data(const duo_device_ctx *ctx, const uint8_t **data, size_t *len) {
    if (ctx == NULL || data == NULL || len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *data = NULL;
    *len = 0;
    if (ctx->key == NULL) {
        return DUO_E_MISUSE;
    }
    *data = ctx->app;
    *len = ctx->app_len;
    return DUO_OK;
}

/* ------------------------------------------------------------ certificates */

int duo_device_set_certificate(duo_device_ctx *ctx, const uint8_t *der, size_t der_len) {
    uint8_t q[33], *copy;
    int r;
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if (ctx->key == NULL) {
        return finish(ctx, DUO_E_MISUSE);
    }
    if (der == NULL || der_len == 0 || der_len > DUO__BLOB_CERT_MAX) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    duo_point_serialize(ctx->ec, q, &ctx->key->q);
    if ((r = cert_matches((int)duo_ec_curve(ctx->ec), q, der, der_len)) != DUO_OK) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s",
                 r == DUO_E_CERT_KEY_MISMATCH ? "the certificate is for another key" : "not a DER X.509 certificate");
        return finish(ctx, r);
    }
    if ((copy = malloc(der_len)) == NULL) {
        return finish(ctx, DUO_E_NOMEM);
    }
    memcpy(copy, der, der_len);
    free(ctx->cert);
    ctx->cert = copy;
    ctx->cert_len = der_len;
    mark_dirty(ctx);
    return finish(ctx, DUO_OK);
}

int duo_device_certificate(const duo_device_ctx *ctx, const uint8_t **der, size_t *der_len) {
    if (ctx == NULL || der == NULL || der_len == NULL) return DUO_E_INVALID_ARG;
    *der = NULL;
    *der_len = 0;
    if (ctx->key == NULL || ctx->cert == NULL) return DUO_E_NO_CERT;
    *der = ctx->cert;
    *der_len = ctx->cert_len;
    return DUO_OK;
}

int duo_device_issue_certificate(duo_device_ctx *ctx, const uint8_t *csr, size_t csr_len) {
    duo_issue_cert_req *req = NULL;
    duo_issue_cert_resp *resp = NULL;
    uint8_t mi[32];
    int r;
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    begin(ctx);
    if ((csr == NULL && csr_len != 0) || csr_len > DUO_WIRE_CSR_MAX) {
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = need_key(ctx)) != DUO_OK) {
        return finish(ctx, r);
    }
    if ((req = calloc(1, sizeof *req)) == NULL || (resp = calloc(1, sizeof *resp)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = fill_mac_req(ctx, req->key_id, req->device_nonce)) != DUO_OK) goto out;
    if (csr_len > 0) memcpy(req->csr, csr, csr_len);
    req->csr_len = csr_len;
    if ((r = duo_wire_mac_input_issue_cert(mi, req)) != DUO_OK ||
        (r = duo_mac_compute(req->mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    DUO__RPC(ctx, "IssueCertificate", duo_wire_build_issue_cert_req, req, duo_wire_parse_issue_cert_resp, resp, r, out);
    /* Kept only if it certifies this key (set_certificate checks). */
    free(req);
    req = NULL;
    r = duo_device_set_certificate(ctx, resp->certificate, resp->certificate_len);
    free(resp);
    return r;
out:
    free(req);
    free(resp);
    return finish(ctx, r);
}

/* ------------------------------------------------- relying parties' requests */

/* A PendingRequest as received: every field checked before it is copied
 * (what the app shows must be well-formed and bounded). */
static int pending_copy(duo_device_request *out, const Duosign__V1__PendingRequest *p) {
    memset(out, 0, sizeof *out);
    if (p == NULL || p->request_id.len != 16 || (p->kind != 1 && p->kind != 2) || p->digest.len != 32 ||
        p->rp_name == NULL || p->display_text == NULL || p->verification_code == NULL ||
        strlen(p->rp_name) > DUO_DEVICE_RP_NAME_MAX || strlen(p->verification_code) != 4 ||
        !duo_rp_display_text_ok(p->display_text) || (p->rp_name[0] && !duo_rp_display_text_ok(p->rp_name)))
        return DUO_E_BAD_FIELD;
    for (int i = 0; i < 4; i++)
        if (p->verification_code[i] < '0' || p->verification_code[i] > '9') return DUO_E_BAD_FIELD;
    memcpy(out->request_id, p->request_id.data, 16);
    out->kind = (int)p->kind;
    memcpy(out->rp_name, p->rp_name, strlen(p->rp_name) + 1);
    memcpy(out->display_text, p->display_text, strlen(p->display_text) + 1);
    memcpy(out->verification_code, p->verification_code, 5);
    memcpy(out->digest, p->digest.data, 32);
    out->expires_at = p->expires_at;
    return DUO_OK;
}

/* Packs m, sends it, unpacks the answer as rdesc (NULL: an empty answer). */
static int rq_call(duo_device_ctx *ctx, const char *method, const ProtobufCMessage *m,
                   const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **out) {
    size_t n = protobuf_c_message_get_packed_size(m), rsl = 0;
    uint8_t *rq = malloc(n ? n : 1), *rs = NULL;
    if (rq == NULL) return DUO_E_NOMEM;
    protobuf_c_message_pack(m, rq);
    int r = rpc(ctx, method, rq, n, &rs, &rsl);
    free_req(rq, n);
    if (r != DUO_OK) return r;
    if (rdesc != NULL) {
        *out = protobuf_c_message_unpack(rdesc, NULL, rsl, rs ? rs : (const uint8_t *)"");
        if (*out == NULL) r = DUO_E_DECODE;
    }
    release(ctx, rs, rsl);
    return r;
}

int duo_device_wait_requests(duo_device_ctx *ctx, unsigned timeout_ms, duo_device_request *out, size_t cap, size_t *n) {
    uint8_t key_id[16], nonce[32], mi[32], mac[32];
    ProtobufCMessage *pm = NULL;
    int r;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    begin(ctx);
    if (n == NULL || (out == NULL && cap != 0)) return finish(ctx, DUO_E_INVALID_ARG);
    *n = 0;
    if ((r = need_key(ctx)) != DUO_OK) return finish(ctx, r);
    if ((r = fill_mac_req(ctx, key_id, nonce)) != DUO_OK ||
        (r = duo_wire_mac_input_wait_requests(mi, key_id, nonce, timeout_ms)) != DUO_OK ||
        (r = duo_mac_compute(mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    Duosign__V1__WaitRequestsRequest m = DUOSIGN__V1__WAIT_REQUESTS_REQUEST__INIT;
    m.key_id = (ProtobufCBinaryData){16, key_id};
    m.device_nonce = (ProtobufCBinaryData){32, nonce};
    m.timeout_ms = timeout_ms;
    m.mac = (ProtobufCBinaryData){32, mac};
    if ((r = rq_call(ctx, "WaitRequests", &m.base, &duosign__v1__wait_requests_response__descriptor, &pm)) != DUO_OK)
        goto out;
    const Duosign__V1__WaitRequestsResponse *a = (const void *)pm;
    for (size_t i = 0; i < a->n_requests && *n < cap && r == DUO_OK; i++)
        if ((r = pending_copy(&out[*n], a->requests[i])) == DUO_OK) (*n)++;
out:
    if (pm != NULL) protobuf_c_message_free_unpacked(pm, NULL);
    duo_memzero(mac, sizeof mac);
    return finish(ctx, r);
}

int duo_device_refuse_request(duo_device_ctx *ctx, const uint8_t request_id[16]) {
    uint8_t key_id[16], nonce[32], mi[32], mac[32];
    int r;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    begin(ctx);
    if (request_id == NULL) return finish(ctx, DUO_E_INVALID_ARG);
    if ((r = need_key(ctx)) != DUO_OK) return finish(ctx, r);
    if ((r = fill_mac_req(ctx, key_id, nonce)) != DUO_OK ||
        (r = duo_wire_mac_input_refuse_request(mi, key_id, nonce, request_id)) != DUO_OK ||
        (r = duo_mac_compute(mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    Duosign__V1__RefuseRequestRequest m = DUOSIGN__V1__REFUSE_REQUEST_REQUEST__INIT;
    m.key_id = (ProtobufCBinaryData){16, key_id};
    m.device_nonce = (ProtobufCBinaryData){32, nonce};
    m.request_id = (ProtobufCBinaryData){16, (uint8_t *)(uintptr_t)request_id};
    m.mac = (ProtobufCBinaryData){32, mac};
    r = rq_call(ctx, "RefuseRequest", &m.base, NULL, NULL);
out:
    duo_memzero(mac, sizeof mac);
    return finish(ctx, r);
}

int duo_device_claim_link(duo_device_ctx *ctx, const char *link, duo_device_request *out) {
    uint8_t key_id[16], nonce[32], mi[32], mac[32];
    ProtobufCMessage *pm = NULL;
    int r;
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    begin(ctx);
    if (link == NULL || out == NULL || strlen(link) == 0 || strlen(link) > 80) return finish(ctx, DUO_E_INVALID_ARG);
    if ((r = need_key(ctx)) != DUO_OK) return finish(ctx, r);
    if ((r = fill_mac_req(ctx, key_id, nonce)) != DUO_OK ||
        (r = duo_wire_mac_input_claim_link(mi, key_id, nonce, link)) != DUO_OK ||
        (r = duo_mac_compute(mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    Duosign__V1__ClaimLinkRequest m = DUOSIGN__V1__CLAIM_LINK_REQUEST__INIT;
    m.key_id = (ProtobufCBinaryData){16, key_id};
    m.device_nonce = (ProtobufCBinaryData){32, nonce};
    m.link = (char *)(uintptr_t)link;
    m.mac = (ProtobufCBinaryData){32, mac};
    if ((r = rq_call(ctx, "ClaimLink", &m.base, &duosign__v1__claim_link_response__descriptor, &pm)) != DUO_OK)
        goto out;
    r = pending_copy(out, ((const Duosign__V1__ClaimLinkResponse *)pm)->request);
out:
    if (pm != NULL) protobuf_c_message_free_unpacked(pm, NULL);
    duo_memzero(mac, sizeof mac);
    return finish(ctx, r);
}

int duo_device_approve(duo_device_ctx *ctx, const duo_device_request *req, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                       const uint8_t *pin, size_t pin_len) {
    if (ctx == NULL) return DUO_E_INVALID_ARG;
    if (req == NULL) {
        begin(ctx);
        return finish(ctx, DUO_E_INVALID_ARG);
    }
    /* What the request's kind is for: a login (the auth key) or a document
     * (the sign key); no login challenge, the request fixes the digest. */
    sign_purpose sp = {req->kind == DUO_DEVICE_REQUEST_AUTH ? DUO_SIGN_PURPOSE_LOGIN : DUO_SIGN_PURPOSE_DOCUMENT, NULL,
                       0, req->request_id};
    return sign_common(ctx, sig, req->digest, &sp, pin, pin_len);
}
