/* Public EC keys from SEC1 points (duosign/ec_pkey.h). */
#include "duosign/ec_pkey.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

const char *duo_openssl_group_name(const char *curve) {
    if (curve == NULL) return NULL;
    if (strcmp(curve, "secp256k1") == 0) return "secp256k1";
    if (strcmp(curve, "p256") == 0 || strcmp(curve, "P-256") == 0 || strcmp(curve, "prime256v1") == 0)
        return "prime256v1";
    return NULL;
}

int duo_ec_pkey_from_point(EVP_PKEY **out, const char *curve, const uint8_t *point, size_t point_len) {
    const char *name = duo_openssl_group_name(curve);
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pk = NULL;
    int r = DUO_E_INTERNAL;
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (name == NULL) return DUO_E_UNSUPPORTED;
    if (point == NULL || (point_len != 33 && point_len != 65)) return DUO_E_BAD_POINT;
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, name, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1)
        goto out;
    /* fromdata decodes the point with EC_POINT_oct2point: a point off the curve fails here */
    r = EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1 ? DUO_OK : DUO_E_BAD_POINT;
    if (r == DUO_OK) *out = pk;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return r;
}
