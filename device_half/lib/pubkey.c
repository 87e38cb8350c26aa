/* duosign device library: the key's public half, compressed or as a PEM
 * SubjectPublicKeyInfo (OpenSSL). */
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "device_internal.h"

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
