/* duosign device library: signing (DESIGN 3.3, both rounds, and the
 * secret rotation of 3.5) for a document, a login, a CSR or a relying
 * party's request; the signature's DER form; precomputed Paillier
 * factors. */
#include <stdio.h>
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/sha.h>

#include "device_internal.h"
#include "duosign/login_digest.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"

/* A document signature: DOCUMENT for a key with a role; a key from before
 * roles sends no purpose, so an older cloud accepts it as before. */
duo__dev_sign_purpose duo__dev_document_purpose(const duo_device_ctx *ctx) {
    duo__dev_sign_purpose sp = {ctx->role != 0 ? DUO_SIGN_PURPOSE_DOCUMENT : DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0,
                                NULL};
    return sp;
}

/* DESIGN 3.3, both rounds, and the secret rotation of 3.5. */
int duo__dev_sign_inner(duo_device_ctx *ctx, uint8_t sig[64], const uint8_t digest[32], const duo__dev_sign_purpose *sp,
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
    p.rng = duo__dev_rng(ctx);
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
    duo__dev_mark_dirty(ctx);
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

int duo_device_sign(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                    const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const uint8_t *pin, size_t pin_len) {
    duo__dev_sign_purpose sp;
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    sp = duo__dev_document_purpose(ctx);
    return duo__dev_sign_common(ctx, sig, digest, &sp, pin, pin_len);
}

int duo_device_sign_login(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                          uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const uint8_t *challenge, size_t challenge_len,
                          const uint8_t *pin, size_t pin_len) {
    duo__dev_sign_purpose sp = {DUO_SIGN_PURPOSE_LOGIN, challenge, challenge_len, NULL};
    int r;
    if (ctx == NULL || digest == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (challenge == NULL || challenge_len < DUO_LOGIN_CHALLENGE_MIN || challenge_len > DUO_LOGIN_CHALLENGE_MAX) {
        duo__dev_begin(ctx);
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "a login challenge is %d to %d bytes", DUO_LOGIN_CHALLENGE_MIN,
                 DUO_LOGIN_CHALLENGE_MAX);
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = duo_login_digest(digest, challenge, challenge_len)) != DUO_OK) return r;
    return duo__dev_sign_common(ctx, sig, digest, &sp, pin, pin_len);
}

int duo_device_sign_csr_info(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES], const uint8_t *info,
                             size_t info_len, const uint8_t *pin, size_t pin_len) {
    duo__dev_sign_purpose sp = {DUO_SIGN_PURPOSE_CSR, info, info_len, NULL};
    uint8_t digest[32];
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (info == NULL || info_len == 0 || info_len > DUO_CSR_INFO_MAX) {
        duo__dev_begin(ctx);
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    SHA256(info, info_len, digest);
    return duo__dev_sign_common(ctx, sig, digest, &sp, pin, pin_len);
}

/* duo_device_sign, _sign_login, _sign_csr_info and duo_device_approve: the
 * PIN or the prepared PIN. */
int duo__dev_sign_common(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                         const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const duo__dev_sign_purpose *sp,
                         const uint8_t *pin, size_t pin_len) {
    int r;
    duo_scalar *kdf = NULL;
    int matches;

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    /* One prepared PIN serves one call, whatever happens: take it out of ctx
     * now (a call with a PIN wipes it unused). */
    matches = duo__dev_prepared_matches(ctx);
    kdf = ctx->prep;
    ctx->prep = NULL;
    duo__dev_drop_prepared(ctx);
    if (sig == NULL || digest == NULL || (pin == NULL && pin_len != 0) ||
        (pin != NULL && (pin_len == 0 || pin_len > DUO_DEVICE_PIN_MAX))) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) {
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
        r = duo__dev_sign_inner(ctx, sig, digest, sp, NULL, 0, kdf);
    } else {
        r = duo__dev_sign_inner(ctx, sig, digest, sp, pin, pin_len, NULL);
    }
out:
    if (kdf != NULL) {
        duo_memzero(kdf, sizeof *kdf);
        duo_secure_free(kdf);
    }
    if (r != DUO_OK && sig != NULL) {
        duo_memzero(sig, DUO_DEVICE_SIG_BYTES);
    }
    return duo__dev_finish(ctx, r);
}

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
    duo__dev_begin(ctx);
    if (available != NULL) {
        *available = ctx->npre;
    }
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    while (count > 0 && ctx->npre < DUO_DEVICE_PRECOMPUTE_MAX) {
        BIGNUM *rn = BN_secure_new();
        if (rn == NULL) {
            r = DUO_E_NOMEM;
            break;
        }
        if ((r = duo_paillier_rn(ctx->key->paillier, rn, duo__dev_rng(ctx))) != DUO_OK) {
            BN_clear_free(rn);
            break;
        }
        ctx->pre[ctx->npre++] = rn;
        count--;
    }
    if (available != NULL) {
        *available = ctx->npre;
    }
    return duo__dev_finish(ctx, r);
}
