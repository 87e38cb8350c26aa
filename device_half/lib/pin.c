/* duosign device library: the PIN outside a signature: a prepared PIN
 * (KDF output held for one signature, bound to the key and PIN salt it
 * was made for) and the PIN change (an online PIN proof, then a local
 * re-masking of the share). */
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "device_internal.h"
#include "duosign/login_digest.h"
#include "duosign/mem.h"

/* Wipes and frees the prepared PIN, if any. */
void duo__dev_drop_prepared(duo_device_ctx *ctx) {
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
int duo__dev_prepared_matches(const duo_device_ctx *ctx) {
    return ctx->prep != NULL && ctx->key != NULL &&
           duo_ct_eq(ctx->prep_key_id, ctx->key->key_id, sizeof ctx->prep_key_id) &&
           duo_ct_eq(ctx->prep_salt, ctx->key->pin_salt, sizeof ctx->prep_salt);
}

int duo_device_pin_prepare(duo_device_ctx *ctx, const uint8_t *pin, size_t pin_len) {
    int r;
    duo_scalar *kdf = NULL;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    duo__dev_drop_prepared(ctx); /* a new PIN replaces the old one; a failure leaves none */
    if (pin == NULL || pin_len == 0 || pin_len > DUO_DEVICE_PIN_MAX) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) {
        return duo__dev_finish(ctx, r);
    }
    if ((kdf = duo_secure_malloc(sizeof *kdf)) == NULL) {
        return duo__dev_finish(ctx, DUO_E_NOMEM);
    }
    /* The PIN KDF (scrypt, DESIGN 3.4) under the key's current salt. */
    if ((r = duo_p2_pin_kdf(ctx->ec, kdf, ctx->key, pin, pin_len)) != DUO_OK) {
        duo_memzero(kdf, sizeof *kdf);
        duo_secure_free(kdf);
        return duo__dev_finish(ctx, r);
    }
    ctx->prep = kdf;
    memcpy(ctx->prep_key_id, ctx->key->key_id, sizeof ctx->prep_key_id);
    memcpy(ctx->prep_salt, ctx->key->pin_salt, sizeof ctx->prep_salt);
    return duo__dev_finish(ctx, DUO_OK);
}

void duo_device_pin_prepare_clear(duo_device_ctx *ctx) {
    if (ctx != NULL) {
        duo__dev_drop_prepared(ctx);
    }
}

int duo_device_pin_prepared(const duo_device_ctx *ctx) { return ctx != NULL && duo__dev_prepared_matches(ctx); }

#define CHANGE_PIN_TAG "duosign/v1/change-pin"

int duo_device_change_pin(duo_device_ctx *ctx, const uint8_t *old_pin, size_t old_pin_len, const uint8_t *new_pin,
                          size_t new_pin_len) {
    int r;
    uint8_t buf[sizeof CHANGE_PIN_TAG - 1 + 16 + 32], digest[32], sig[64];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    /* The share is about to be re-masked under a new salt: a prepared PIN
     * must not outlive that (and the old PIN is the one given here). */
    duo__dev_drop_prepared(ctx);
    if (old_pin == NULL || old_pin_len == 0 || old_pin_len > DUO_DEVICE_PIN_MAX) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if (new_pin == NULL || new_pin_len < DUO_DEVICE_PIN_MIN || new_pin_len > DUO_DEVICE_PIN_MAX) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "the new PIN must be %d to %d bytes", DUO_DEVICE_PIN_MIN,
                 DUO_DEVICE_PIN_MAX);
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) {
        return duo__dev_finish(ctx, r);
    }
    /* The online PIN proof: a signature over a digest no document can have
     * (domain-separated, fresh randomness). */
    memcpy(buf, CHANGE_PIN_TAG, sizeof CHANGE_PIN_TAG - 1);
    memcpy(buf + sizeof CHANGE_PIN_TAG - 1, ctx->key->key_id, 16);
    if ((r = duo_rng_bytes(duo__dev_rng(ctx), buf + sizeof CHANGE_PIN_TAG - 1 + 16, 32)) != DUO_OK) goto out;
    SHA256(buf, sizeof buf, digest);
    /* An authentication key signs no document: its PIN proof is a login over
     * the same fresh bytes (a login digest, cloud-checked). */
    duo__dev_sign_purpose sp = duo__dev_document_purpose(ctx);
    if (ctx->role == DUO_KEY_ROLE_AUTH) {
        sp.purpose = DUO_SIGN_PURPOSE_LOGIN;
        sp.data = buf;
        sp.len = sizeof buf;
        if ((r = duo_login_digest(digest, buf, sizeof buf)) != DUO_OK) goto out;
    }
    if ((r = duo__dev_sign_inner(ctx, sig, digest, &sp, old_pin, old_pin_len, NULL)) != DUO_OK) goto out;
    /* old_pin is proven: re-mask locally with a fresh salt. */
    if ((r = duo_p2_key_change_pin(ctx->ec, ctx->key, old_pin, old_pin_len, new_pin, new_pin_len, duo__dev_rng(ctx))) !=
        DUO_OK) {
        goto out;
    }
    duo__dev_mark_dirty(ctx);
out:
    duo_memzero(sig, sizeof sig);
    return duo__dev_finish(ctx, r);
}
