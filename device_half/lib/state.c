/* duosign device library: the state blob: export (optionally wrapped by
 * the app), the acknowledgement that it is stored (which makes a pending
 * device secret the one in use, DESIGN 3.5), import with every value
 * checked before anything is committed to the context, and the app's data
 * kept in the blob. The byte layout is blob.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "device_internal.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"

int duo_device_state_export(duo_device_ctx *ctx, uint8_t **blob, size_t *blob_len) {
    int r = DUO_E_INTERNAL;
    duo__blob_fields f;
    uint8_t *n = NULL, *ck = NULL, *inner = NULL, *outer = NULL;
    size_t nb = 0, inner_len = 0, outer_len;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (blob == NULL || blob_len == NULL) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    *blob = NULL;
    *blob_len = 0;
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
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
    return duo__dev_finish(ctx, r);
}

int duo_device_state_persisted(duo_device_ctx *ctx) {
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (ctx->key == NULL || !ctx->exported || ctx->exported_gen != ctx->gen) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "no exported state of the current generation to acknowledge");
        return duo__dev_finish(ctx, DUO_E_MISUSE);
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
    duo__dev_begin(ctx);
    memset(&f, 0, sizeof f);
    if (ctx->key != NULL) {
        return duo__dev_finish(ctx, DUO_E_EXISTS);
    }
    if (blob == NULL || blob_len == 0) {
        return duo__dev_finish(ctx, DUO_E_STATE_CORRUPT);
    }
    if (ctx->unwrap != NULL) {
        plain_len = blob_len;
        if ((plain = duo_secure_malloc(plain_len)) == NULL) {
            return duo__dev_finish(ctx, DUO_E_NOMEM);
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
        if (duo__dev_cert_matches(f.curve, q, f.cert, f.cert_len) != DUO_OK) goto out;
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
    return duo__dev_finish(ctx, r);
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
    duo__dev_begin(ctx);
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    if (len > DUO_DEVICE_APP_DATA_MAX || (len > 0 && data == NULL)) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if (len > 0) {
        if ((copy = malloc(len)) == NULL) {
            return duo__dev_finish(ctx, DUO_E_NOMEM);
        }
        memcpy(copy, data, len);
    }
    free(ctx->app);
    ctx->app = copy;
    ctx->app_len = len;
    duo__dev_mark_dirty(ctx);
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
