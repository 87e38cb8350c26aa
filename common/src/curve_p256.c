/* The P-256 backend over OpenSSL 3 (EC_GROUP prime256v1).
 *
 * Secret scalars: k*G and k*P go through EC_POINT_mul with k a BIGNUM that
 * has BN_FLG_CONSTTIME. On x86_64 (and aarch64) OpenSSL builds P-256 with
 * ecp_nistz256 (EC_GFp_nistz256_method): fixed-window multiplication with
 * constant-time table gathers for both the generator and an arbitrary point,
 * and a constant-time field inversion for the affine result
 * (docs/SECURITY.md "Curves"; test_curve checks the method in use).
 * Scalar arithmetic mod q is scalar256.c's, since BN_mod_mul and friends
 * branch on the operands' lengths. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include "curve_internal.h"
#include "duosign/mem.h"

static int duo__p256_init(duo_ec *ec, const duo_rng *rng) {
    (void)rng; /* OpenSSL's P-256 code takes no blinding seed */
    ec->group_name = "prime256v1";
    if ((ec->group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL || (ec->p = BN_new()) == NULL) {
        return DUO_E_NOMEM;
    }
    if (!EC_GROUP_get_curve(ec->group, ec->p, NULL, NULL, NULL) ||
        BN_bn2binpad(EC_GROUP_get0_order(ec->group), ec->q_bytes, 32) != 32 ||
        !duo__mod256_init(&ec->mod, EC_GROUP_get0_order(ec->group))) {
        return DUO_E_INTERNAL;
    }
    return DUO_OK;
}

static void duo__p256_release(duo_ec *ec) {
    EC_GROUP_free(ec->group);
    BN_free(ec->p);
    ec->group = NULL;
    ec->p = NULL;
}

static int duo__p256_scalar_valid(const duo_ec *ec, const uint8_t s[32]) { return duo__mod256_valid(&ec->mod, s); }

static int duo__p256_scalar_add(const duo_ec *ec, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]) {
    int ok = duo__mod256_valid(&ec->mod, a) & duo__mod256_valid(&ec->mod, b);
    return ok & duo__mod256_add(&ec->mod, out, a, b);
}

static int duo__p256_scalar_mul(const duo_ec *ec, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]) {
    int ok = duo__mod256_valid(&ec->mod, a) & duo__mod256_valid(&ec->mod, b);
    return ok & duo__mod256_mul(&ec->mod, out, a, b);
}

static int duo__p256_scalar_negate(const duo_ec *ec, uint8_t out[32], const uint8_t a[32]) {
    int ok = duo__mod256_valid(&ec->mod, a);
    return ok & duo__mod256_negate(&ec->mod, out, a);
}

/* p = EC point from its affine x || y. set_affine_coordinates checks the
 * curve equation, so a damaged duo_point cannot reach the arithmetic. */
static int duo__p256_load(const duo_ec *ec, EC_POINT *pt, const duo_point *p, BN_CTX *ctx) {
    BIGNUM *x = BN_CTX_get(ctx), *y = BN_CTX_get(ctx);
    return y != NULL && BN_bin2bn(p->xy, 32, x) != NULL && BN_bin2bn(p->xy + 32, 32, y) != NULL &&
           EC_POINT_set_affine_coordinates(ec->group, pt, x, y, ctx);
}

/* out = the affine coordinates of pt; DUO_E_BAD_POINT for infinity. */
static int duo__p256_store(const duo_ec *ec, duo_point *out, const EC_POINT *pt, BN_CTX *ctx) {
    BIGNUM *x = BN_CTX_get(ctx), *y = BN_CTX_get(ctx);
    if (y == NULL) {
        return DUO_E_NOMEM;
    }
    if (EC_POINT_is_at_infinity(ec->group, pt)) {
        return DUO_E_BAD_POINT;
    }
    if (!EC_POINT_get_affine_coordinates(ec->group, pt, x, y, ctx) || BN_bn2binpad(x, out->xy, 32) != 32 ||
        BN_bn2binpad(y, out->xy + 32, 32) != 32) {
        return DUO_E_INTERNAL;
    }
    return DUO_OK;
}

static int duo__p256_point_parse(const duo_ec *ec, duo_point *out, const uint8_t in[DUO_POINT_BYTES]) {
    BN_CTX *ctx = BN_CTX_new();
    EC_POINT *pt = EC_POINT_new(ec->group);
    BIGNUM *x = NULL;
    int r = DUO_E_NOMEM;

    if (ctx != NULL) {
        BN_CTX_start(ctx); /* ended at out: whenever ctx exists */
    }
    if (ctx == NULL || pt == NULL) {
        goto out;
    }
    if ((x = BN_CTX_get(ctx)) == NULL || BN_bin2bn(in + 1, 32, x) == NULL) {
        goto out;
    }
    /* x >= p is a second encoding of x - p: refused, not reduced */
    if (BN_cmp(x, ec->p) >= 0 || !EC_POINT_oct2point(ec->group, pt, in, DUO_POINT_BYTES, ctx)) {
        r = DUO_E_BAD_POINT; /* off the curve (x^3 - 3x + b has no root) */
        goto out;
    }
    r = duo__p256_store(ec, out, pt, ctx);
out:
    if (ctx != NULL) {
        BN_CTX_end(ctx);
    }
    ERR_clear_error();
    EC_POINT_free(pt);
    BN_CTX_free(ctx);
    return r;
}

static void duo__p256_point_serialize(const duo_ec *ec, uint8_t out[DUO_POINT_BYTES], const duo_point *p) {
    (void)ec;
    out[0] = (uint8_t)(0x02 | (p->xy[63] & 1));
    memcpy(out + 1, p->xy, 32);
}

static void duo__p256_point_serialize_full(const duo_ec *ec, uint8_t out[DUO_POINT_FULL_BYTES], const duo_point *p) {
    (void)ec;
    out[0] = 0x04;
    memcpy(out + 1, p->xy, 64);
}

/* out = k*G (p == NULL) or k*p, k secret: EC_POINT_mul with a
 * constant-time BIGNUM (see the top of the file). */
static int duo__p256_mul(const duo_ec *ec, duo_point *out, const duo_point *p, const uint8_t k[32]) {
    int valid = duo__mod256_valid(&ec->mod, k);
    duo__declassify(&valid, sizeof valid); /* range test, public outcome */
    if (!valid) {
        return DUO_E_BAD_SCALAR;
    }
    BN_CTX *ctx = BN_CTX_secure_new();
    EC_POINT *pt = EC_POINT_new(ec->group), *in = NULL;
    BIGNUM *kb = BN_secure_new();
    int r = DUO_E_NOMEM;

    if (ctx != NULL) {
        BN_CTX_start(ctx); /* ended at out: whenever ctx exists */
    }
    if (ctx == NULL || pt == NULL || kb == NULL) {
        goto out;
    }
    BN_set_flags(kb, BN_FLG_CONSTTIME);
    if (BN_bin2bn(k, 32, kb) == NULL) {
        goto out;
    }
    if (p != NULL && ((in = EC_POINT_new(ec->group)) == NULL || !duo__p256_load(ec, in, p, ctx))) {
        r = DUO_E_BAD_POINT;
        goto out;
    }
    if (!(p == NULL ? EC_POINT_mul(ec->group, pt, kb, NULL, NULL, ctx)
                    : EC_POINT_mul(ec->group, pt, NULL, in, kb, ctx))) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    /* k in [1, q-1] on a prime-order group: never infinity */
    r = duo__p256_store(ec, out, pt, ctx);
out:
    if (ctx != NULL) {
        BN_CTX_end(ctx);
    }
    ERR_clear_error();
    BN_clear_free(kb);
    EC_POINT_clear_free(pt);
    EC_POINT_free(in);
    BN_CTX_free(ctx);
    return r;
}

static int duo__p256_point_mul_base(const duo_ec *ec, duo_point *out, const uint8_t k[32]) {
    return duo__p256_mul(ec, out, NULL, k);
}

static int duo__p256_point_mul(const duo_ec *ec, duo_point *out, const duo_point *p, const uint8_t k[32]) {
    return duo__p256_mul(ec, out, p, k);
}

static int duo__p256_point_add(const duo_ec *ec, duo_point *out, const duo_point *a, const duo_point *b) {
    BN_CTX *ctx = BN_CTX_new();
    EC_POINT *pa = EC_POINT_new(ec->group), *pb = EC_POINT_new(ec->group);
    int r = DUO_E_NOMEM;

    if (ctx != NULL) {
        BN_CTX_start(ctx); /* ended at out: whenever ctx exists */
    }
    if (ctx == NULL || pa == NULL || pb == NULL) {
        goto out;
    }
    if (!duo__p256_load(ec, pa, a, ctx) || !duo__p256_load(ec, pb, b, ctx)) {
        r = DUO_E_BAD_POINT;
        goto out;
    }
    if (!EC_POINT_add(ec->group, pa, pa, pb, ctx)) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    r = duo__p256_store(ec, out, pa, ctx); /* DUO_E_BAD_POINT if a == -b */
out:
    if (ctx != NULL) {
        BN_CTX_end(ctx);
    }
    ERR_clear_error();
    EC_POINT_free(pa);
    EC_POINT_free(pb);
    BN_CTX_free(ctx);
    return r;
}

static int duo__p256_point_eq_var(const duo_ec *ec, const duo_point *a, const duo_point *b) {
    (void)ec;
    return memcmp(a->xy, b->xy, 64) == 0; /* affine coordinates are unique */
}

/* An EVP_PKEY for the public point, for OpenSSL's own ECDSA verifier. */
static EVP_PKEY *duo__p256_pkey(const duo_ec *ec, const duo_point *pub) {
    uint8_t full[DUO_POINT_FULL_BYTES];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = NULL;
    EVP_PKEY *pkey = NULL;

    duo__p256_point_serialize_full(ec, full, pub);
    if (bld == NULL || OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, ec->group_name, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, full, sizeof full) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(pctx) != 1 ||
        EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    EVP_PKEY_CTX_free(pctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

static int duo__p256_ecdsa_verify(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES], const uint8_t digest[32],
                                  const duo_point *pub) {
    uint8_t der[DUO_ECDSA_DER_MAX];
    size_t der_len = sizeof der;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *vctx = NULL;
    int r = DUO_E_BAD_SIGNATURE;

    if (duo__ecdsa_der(der, &der_len, sig) != DUO_OK) {
        return DUO_E_BAD_SIGNATURE;
    }
    if ((pkey = duo__p256_pkey(ec, pub)) == NULL || (vctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL ||
        EVP_PKEY_verify_init(vctx) != 1) {
        r = DUO_E_INTERNAL;
    } else if (EVP_PKEY_verify(vctx, der, der_len, digest, 32) == 1) {
        r = DUO_OK;
    }
    ERR_clear_error();
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_free(pkey);
    return r;
}

const duo__ec_ops duo__ec_p256_ops = {
    .init = duo__p256_init,
    .release = duo__p256_release,
    .scalar_valid = duo__p256_scalar_valid,
    .scalar_add = duo__p256_scalar_add,
    .scalar_mul = duo__p256_scalar_mul,
    .scalar_negate = duo__p256_scalar_negate,
    .point_parse = duo__p256_point_parse,
    .point_serialize = duo__p256_point_serialize,
    .point_serialize_full = duo__p256_point_serialize_full,
    .point_mul_base = duo__p256_point_mul_base,
    .point_mul = duo__p256_point_mul,
    .point_add = duo__p256_point_add,
    .point_eq_var = duo__p256_point_eq_var,
    .ecdsa_verify = duo__p256_ecdsa_verify,
};
