/* duosign device library: what the library's own files share (internal;
 * never installed, never included outside device_half/lib).
 *
 * The context (struct duo_device_ctx) and the helpers more than one file
 * of the library needs, each with the duo__dev_ prefix. A helper one file
 * needs stays static there. The library is built with hidden visibility:
 * nothing here is exported from the shared library. */
#ifndef DUOSIGN_DEVICE_INTERNAL_H
#define DUOSIGN_DEVICE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>

#include "duosign/curve.h"
#include "duosign/device.h"
#include "duosign/inner_channel.h"
#include "duosign/rng.h"
#include "p2.h"
#include "wire.h"

#define DUO__DEV_ERRMSG_CAP 512

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

    char errmsg[DUO__DEV_ERRMSG_CAP];
};

/* ------------------------------------------------ context helpers (device.c) */

/* The rng the engine uses: the app's (duo_device_set_rng) or the default. */
const duo_rng *duo__dev_rng(const duo_device_ctx *ctx);

/* Starts an API call: clears the message of the previous one. */
void duo__dev_begin(duo_device_ctx *ctx);

/* Records the outcome of an API call: keeps a message set by the transport,
 * else uses the error table's message. */
int duo__dev_finish(duo_device_ctx *ctx, int r);

/* The state changed: the app must export and persist it again. */
void duo__dev_mark_dirty(duo_device_ctx *ctx);

/* DUO_OK if ctx holds a confirmed key, else DUO_E_MISUSE with a message
 * saying what to do. */
int duo__dev_need_key(duo_device_ctx *ctx);

/* Fills a MACed request's key id and a fresh device nonce (ctx holds a key). */
int duo__dev_fill_mac_req(duo_device_ctx *ctx, uint8_t key_id[16], uint8_t nonce[32]);

/* ------------------------------------------------------- prepared PIN (pin.c) */

/* Wipes and frees the prepared PIN, if any. */
void duo__dev_drop_prepared(duo_device_ctx *ctx);

/* 1 if the prepared PIN was made for the key and PIN salt held now. The
 * salt changes with every re-masking (duo_p2_key_change_pin), the key id
 * with the key. Neither is secret. */
int duo__dev_prepared_matches(const duo_device_ctx *ctx);

/* ---------------------------------------------------------------- RPC (rpc.c) */

/* One unary call: sealed once a channel key is pinned (fetched first when
 * none is: enrolment and the one online upgrade step of an older state). On
 * success *resp belongs to the library: release it with duo__dev_release(). */
int duo__dev_rpc(duo_device_ctx *ctx, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                 size_t *resp_len);

/* Wipes and frees a response duo__dev_rpc returned (NULL: nothing). */
void duo__dev_release(duo_device_ctx *ctx, uint8_t *resp, size_t resp_len);

/* Wipes and frees a built request (NULL: nothing). */
void duo__dev_free_req(uint8_t *buf, size_t len);

/* A token that carries the channel key's fingerprint (duosign/channel_fp.h):
 * the key the cloud presents (fetched now, plain over the pinned-CA TLS, or
 * pinned already) must match it before the first enrolment request. On a
 * mismatch a key fetched here is dropped again: nothing is kept. A token
 * without a fingerprint trusts the TLS alone, as before. */
int duo__dev_check_token_fingerprint(duo_device_ctx *ctx, const uint8_t *token, size_t token_len);

/* Builds, sends, parses. BUILD/PARSE name the wire functions. */
#define DUO__RPC(ctx, method, build, reqmsg, parse, respmsg, r, label)  \
    do {                                                                \
        uint8_t *rq_ = NULL, *rs_ = NULL;                               \
        size_t rql_ = 0, rsl_ = 0;                                      \
        if (((r) = build(&rq_, &rql_, (reqmsg))) != DUO_OK) goto label; \
        (r) = duo__dev_rpc((ctx), (method), rq_, rql_, &rs_, &rsl_);    \
        duo__dev_free_req(rq_, rql_);                                   \
        if ((r) != DUO_OK) goto label;                                  \
        (r) = parse((respmsg), rs_ ? rs_ : (const uint8_t *)"", rsl_);  \
        duo__dev_release((ctx), rs_, rsl_);                             \
        if ((r) != DUO_OK) goto label;                                  \
    } while (0)

/* ------------------------------------------------------- signing (sign.c) */

/* What a request names: purpose and its extra field (docs/PROTOCOL.md). */
typedef struct duo__dev_sign_purpose {
    int purpose;
    const uint8_t *data;
    size_t len;
    const uint8_t *request_id; /* NULL, or the relying party's request approved (MACed) */
} duo__dev_sign_purpose;

/* A document signature: DOCUMENT for a key with a role; a key from before
 * roles sends no purpose, so an older cloud accepts it as before. */
duo__dev_sign_purpose duo__dev_document_purpose(const duo_device_ctx *ctx);

/* DESIGN 3.3, both rounds, and the secret rotation of 3.5: exactly one of
 * pin and pin_kdf. On failure sig is wiped. */
int duo__dev_sign_inner(duo_device_ctx *ctx, uint8_t sig[64], const uint8_t digest[32], const duo__dev_sign_purpose *sp,
                        const uint8_t *pin, size_t pin_len, const duo_scalar *pin_kdf);

/* duo_device_sign, _sign_login, _sign_csr_info and duo_device_approve: the
 * PIN or the prepared PIN. */
int duo__dev_sign_common(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                         const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const duo__dev_sign_purpose *sp,
                         const uint8_t *pin, size_t pin_len);

/* -------------------------------------------------- certificates (certs.c) */

/* DUO_OK if der is one X.509 certificate (nothing after it) whose public
 * key is the point q on curve; DUO_E_DECODE, DUO_E_CERT_KEY_MISMATCH. */
int duo__dev_cert_matches(int curve, const uint8_t q[33], const uint8_t *der, size_t der_len);

#endif
