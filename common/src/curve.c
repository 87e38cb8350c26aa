/* The curve API: argument checks, the context, and everything that only
 * needs q (reduction, inversion, BIGNUM conversion, ECDSA encodings). The
 * curve's own arithmetic is its backend's (curve_internal.h): curve_k1.c
 * (libsecp256k1) or curve_p256.c (OpenSSL).
 *
 * The inverse uses OpenSSL's constant-time Montgomery exponentiation
 * (Fermat: a^(q-2) mod q, q prime) with BN_FLG_CONSTTIME, on both curves. */
#include "duosign/curve.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>

#include "curve_internal.h"
#include "duosign/mem.h"

static const duo__ec_ops *duo__ops_of(duo_curve curve) {
    switch (curve) {
        case DUO_CURVE_SECP256K1:
            return &duo__ec_k1_ops;
        case DUO_CURVE_P256:
            return &duo__ec_p256_ops;
        default:
            return NULL;
    }
}

int duo_curve_valid(int curve) { return curve > 0 && curve < DUO_CURVE_COUNT && duo__ops_of((duo_curve)curve) != NULL; }

const char *duo_curve_name(duo_curve curve) {
    switch (curve) {
        case DUO_CURVE_SECP256K1:
            return "secp256k1";
        case DUO_CURVE_P256:
            return "p256";
        default:
            return NULL;
    }
}

int duo_curve_parse(const char *name, duo_curve *out) {
    if (name == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (strcmp(name, "p256") == 0 || strcmp(name, "P-256") == 0 || strcmp(name, "prime256v1") == 0) {
        *out = DUO_CURVE_P256;
    } else if (strcmp(name, "secp256k1") == 0) {
        *out = DUO_CURVE_SECP256K1;
    } else {
        return DUO_E_UNSUPPORTED;
    }
    return DUO_OK;
}

/* q and the values derived from it, once the backend has set q_bytes. */
static int duo__ec_order_init(duo_ec *ec) {
    BN_CTX *bnctx = BN_CTX_new();
    int r = DUO_E_NOMEM;

    ec->q = BN_new();
    ec->q_minus_2 = BN_new();
    ec->half_q = BN_new();
    ec->mont_q = BN_MONT_CTX_new();
    if (bnctx == NULL || ec->q == NULL || ec->q_minus_2 == NULL || ec->half_q == NULL || ec->mont_q == NULL) {
        goto out;
    }
    r = DUO_E_INTERNAL;
    if (BN_bin2bn(ec->q_bytes, 32, ec->q) == NULL || BN_copy(ec->q_minus_2, ec->q) == NULL ||
        !BN_sub_word(ec->q_minus_2, 2) || !BN_rshift1(ec->half_q, ec->q) ||
        !BN_MONT_CTX_set(ec->mont_q, ec->q, bnctx)) {
        goto out;
    }
    r = DUO_OK;
out:
    BN_CTX_free(bnctx);
    return r;
}

int duo_ec_new(duo_ec **out, duo_curve curve, const duo_rng *rng) {
    int r = DUO_E_INTERNAL;
    duo_ec *ec = NULL;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if (duo__ops_of(curve) == NULL) {
        return DUO_E_UNSUPPORTED;
    }
    if ((ec = calloc(1, sizeof *ec)) == NULL) {
        return DUO_E_NOMEM;
    }
    ec->curve = curve;
    ec->ops = duo__ops_of(curve);
    if ((r = ec->ops->init(ec, rng)) != DUO_OK || (r = duo__ec_order_init(ec)) != DUO_OK) {
        goto out;
    }
    *out = ec;
    ec = NULL;
out:
    duo_ec_free(ec);
    return r;
}

void duo_ec_free(duo_ec *ec) {
    if (ec == NULL) {
        return;
    }
    ec->ops->release(ec);
    BN_free(ec->q);
    BN_free(ec->q_minus_2);
    BN_free(ec->half_q);
    BN_MONT_CTX_free(ec->mont_q);
    duo_memzero(ec, sizeof *ec);
    free(ec);
}

duo_curve duo_ec_curve(const duo_ec *ec) { return ec == NULL ? DUO_CURVE_UNSPECIFIED : ec->curve; }

const secp256k1_context *duo_ec_secp(const duo_ec *ec) { return ec == NULL ? NULL : ec->secp; }

const char *duo_ec_group_name(const duo_ec *ec) { return ec == NULL ? NULL : ec->group_name; }

const BIGNUM *duo_ec_order(const duo_ec *ec) { return ec == NULL ? NULL : ec->q; }

/* ---- scalars ---- */

/* Constant time: returns 1 if s is in [1, q-1]. */
static int duo__scalar_valid(const duo_ec *ec, const uint8_t s[32]) { return ec->ops->scalar_valid(ec, s); }

int duo_scalar_parse(const duo_ec *ec, duo_scalar *out, const uint8_t in[32]) {
    if (ec == NULL || out == NULL || in == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (!duo__scalar_valid(ec, in)) {
        duo_memzero(out, sizeof *out);
        return DUO_E_BAD_SCALAR;
    }
    memmove(out->b, in, 32);
    return DUO_OK;
}

int duo_scalar_random(const duo_ec *ec, duo_scalar *out, const duo_rng *rng) {
    uint8_t buf[32];
    int r;
    int i;

    if (ec == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    /* Rejection sampling: the chance of one rejection is about 2^-128, so
     * the loop count reveals nothing useful. */
    for (i = 0; i < 256; i++) {
        if ((r = duo_rng_bytes(rng, buf, sizeof buf)) != DUO_OK) {
            duo_memzero(out, sizeof *out);
            return r;
        }
        int valid = duo__scalar_valid(ec, buf);
        /* only the accept bit of a rejection sample becomes public */
        duo__declassify(&valid, sizeof valid);
        if (valid) {
            memcpy(out->b, buf, 32);
            duo_memzero(buf, sizeof buf);
            return DUO_OK;
        }
    }
    duo_memzero(buf, sizeof buf);
    duo_memzero(out, sizeof *out);
    return DUO_E_RNG; /* the source is broken (e.g. returns all zeros) */
}

int duo_scalar_reduce32(const duo_ec *ec, duo_scalar *out, const uint8_t in[32]) {
    uint8_t diff[32];
    uint32_t borrow = 0;
    int i;

    if (ec == NULL || out == NULL || in == NULL) {
        return DUO_E_INVALID_ARG;
    }
    /* diff = in - q; since 2^256 < 2q one conditional subtraction reduces.
     * Branch-free: select diff when there was no final borrow (in >= q). */
    for (i = 31; i >= 0; i--) {
        uint32_t t = (uint32_t)in[i] - (uint32_t)ec->q_bytes[i] - borrow;
        diff[i] = (uint8_t)(t & 0xffu);
        borrow = (t >> 31) & 1u;
    }
    memmove(out->b, in, 32);
    duo_ct_cmov(out->b, diff, 32, (int)(borrow ^ 1u));
    duo_memzero(diff, sizeof diff);
    int zero = duo_ct_is_zero(out->b, 32);
    /* zero test: the outcome is public (an error return), probability 2^-256
     * for secret input (secp256k1 ctime_tests declassify the same way) */
    duo__declassify(&zero, sizeof zero);
    if (zero) {
        return DUO_E_BAD_SCALAR;
    }
    return DUO_OK;
}

/* One backend scalar operation: op's ok bit is the zero/range test, a public
 * outcome (see reduce32). */
static int duo__scalar_op_result(duo_scalar *out, const uint8_t t[32], int ok) {
    duo__declassify(&ok, sizeof ok);
    if (!ok) {
        duo_memzero(out, sizeof *out);
        return DUO_E_BAD_SCALAR;
    }
    memcpy(out->b, t, 32);
    return DUO_OK;
}

int duo_scalar_add(const duo_ec *ec, duo_scalar *out, const duo_scalar *a, const duo_scalar *b) {
    uint8_t t[32];

    if (ec == NULL || out == NULL || a == NULL || b == NULL) {
        return DUO_E_INVALID_ARG;
    }
    int r = duo__scalar_op_result(out, t, ec->ops->scalar_add(ec, t, a->b, b->b));
    duo_memzero(t, sizeof t);
    return r;
}

int duo_scalar_mul(const duo_ec *ec, duo_scalar *out, const duo_scalar *a, const duo_scalar *b) {
    uint8_t t[32];

    if (ec == NULL || out == NULL || a == NULL || b == NULL) {
        return DUO_E_INVALID_ARG;
    }
    int r = duo__scalar_op_result(out, t, ec->ops->scalar_mul(ec, t, a->b, b->b));
    duo_memzero(t, sizeof t);
    return r;
}

int duo_scalar_negate(const duo_ec *ec, duo_scalar *out, const duo_scalar *a) {
    uint8_t t[32];

    if (ec == NULL || out == NULL || a == NULL) {
        return DUO_E_INVALID_ARG;
    }
    int r = duo__scalar_op_result(out, t, ec->ops->scalar_negate(ec, t, a->b));
    duo_memzero(t, sizeof t);
    return r;
}

int duo_scalar_inverse(const duo_ec *ec, duo_scalar *out, const duo_scalar *a) {
    int r = DUO_E_INTERNAL;
    BN_CTX *bnctx = NULL;
    BIGNUM *x = NULL, *y = NULL;
    uint8_t t[32];

    if (ec == NULL || out == NULL || a == NULL) {
        return DUO_E_INVALID_ARG;
    }
    int valid = duo__scalar_valid(ec, a->b);
    duo__declassify(&valid, sizeof valid); /* zero/range test, public outcome */
    if (!valid) {
        duo_memzero(out, sizeof *out);
        return DUO_E_BAD_SCALAR;
    }
    if ((bnctx = BN_CTX_secure_new()) == NULL || (x = BN_secure_new()) == NULL || (y = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(x, BN_FLG_CONSTTIME);
    BN_set_flags(y, BN_FLG_CONSTTIME);
    if (BN_bin2bn(a->b, 32, x) == NULL || !BN_mod_exp_mont_consttime(y, x, ec->q_minus_2, ec->q, bnctx, ec->mont_q) ||
        BN_bn2binpad(y, t, 32) != 32) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    /* a in [1, q-1] and q prime, so a^(q-2) is in [1, q-1]. */
    memcpy(out->b, t, 32);
    r = DUO_OK;
out:
    duo_memzero(t, sizeof t);
    BN_clear_free(x);
    BN_clear_free(y);
    BN_CTX_free(bnctx);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

int duo_scalar_to_bn(const duo_scalar *a, BIGNUM *out) {
    if (a == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    BN_set_flags(out, BN_FLG_CONSTTIME);
    if (BN_bin2bn(a->b, 32, out) == NULL) {
        return DUO_E_NOMEM;
    }
    return DUO_OK;
}

int duo_scalar_from_bn_mod(const duo_ec *ec, duo_scalar *out, const BIGNUM *in) {
    int r = DUO_E_INTERNAL;
    BN_CTX *bnctx = NULL;
    BIGNUM *t = NULL;
    uint8_t buf[32];

    if (ec == NULL || out == NULL || in == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((bnctx = BN_CTX_secure_new()) == NULL || (t = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(t, BN_FLG_CONSTTIME);
    if (!BN_nnmod(t, in, ec->q, bnctx) || BN_bn2binpad(t, buf, 32) != 32) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    memcpy(out->b, buf, 32);
    r = duo_ct_is_zero(buf, 32) ? DUO_E_BAD_SCALAR : DUO_OK;
out:
    duo_memzero(buf, sizeof buf);
    BN_clear_free(t);
    BN_CTX_free(bnctx);
    if (r != DUO_OK) {
        duo_memzero(out, sizeof *out);
    }
    return r;
}

/* ---- points ---- */

int duo_point_parse(const duo_ec *ec, duo_point *out, const uint8_t *in, size_t in_len) {
    if (ec == NULL || out == NULL || (in == NULL && in_len != 0)) {
        return DUO_E_INVALID_ARG;
    }
    /* Only compressed form: the libraries would also take 65-byte 04 keys
     * (and OpenSSL the 1-byte infinity). */
    if (in_len != DUO_POINT_BYTES || (in[0] != 0x02 && in[0] != 0x03)) {
        return DUO_E_BAD_POINT;
    }
    int r = ec->ops->point_parse(ec, out, in);
    if (r != DUO_OK) {
        memset(out, 0, sizeof *out);
    }
    return r;
}

void duo_point_serialize(const duo_ec *ec, uint8_t out[DUO_POINT_BYTES], const duo_point *p) {
    ec->ops->point_serialize(ec, out, p);
}

void duo_point_serialize_full(const duo_ec *ec, uint8_t out[DUO_POINT_FULL_BYTES], const duo_point *p) {
    ec->ops->point_serialize_full(ec, out, p);
}

int duo_point_mul_base(const duo_ec *ec, duo_point *out, const duo_scalar *k) {
    if (ec == NULL || out == NULL || k == NULL) {
        return DUO_E_INVALID_ARG;
    }
    return ec->ops->point_mul_base(ec, out, k->b); /* DUO_E_BAD_SCALAR for k == 0 or k >= q */
}

int duo_point_mul(const duo_ec *ec, duo_point *out, const duo_point *p, const duo_scalar *k) {
    if (ec == NULL || out == NULL || p == NULL || k == NULL) {
        return DUO_E_INVALID_ARG;
    }
    return ec->ops->point_mul(ec, out, p, k->b);
}

int duo_point_add(const duo_ec *ec, duo_point *out, const duo_point *a, const duo_point *b) {
    if (ec == NULL || out == NULL || a == NULL || b == NULL) {
        return DUO_E_INVALID_ARG;
    }
    return ec->ops->point_add(ec, out, a, b); /* DUO_E_BAD_POINT if a == -b */
}

int duo_point_eq_var(const duo_ec *ec, const duo_point *a, const duo_point *b) {
    return ec->ops->point_eq_var(ec, a, b);
}

int duo_point_x_mod_q(const duo_ec *ec, duo_scalar *r, const duo_point *p) {
    uint8_t buf[DUO_POINT_BYTES];

    if (ec == NULL || r == NULL || p == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo_point_serialize(ec, buf, p);
    return duo_scalar_reduce32(ec, r, buf + 1); /* x < p < 2q on both curves */
}

/* ---- ECDSA (public data) ---- */

/* Loads r and s of sig; DUO_E_BAD_SIGNATURE unless both are in [1, q-1]. */
static int duo__sig_load(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES], BIGNUM *r, BIGNUM *s) {
    if (BN_bin2bn(sig, 32, r) == NULL || BN_bin2bn(sig + 32, 32, s) == NULL) {
        return DUO_E_NOMEM;
    }
    if (BN_is_zero(r) || BN_is_zero(s) || BN_cmp(r, ec->q) >= 0 || BN_cmp(s, ec->q) >= 0) {
        return DUO_E_BAD_SIGNATURE;
    }
    return DUO_OK;
}

int duo_ecdsa_normalize(const duo_ec *ec, uint8_t sig[DUO_ECDSA_SIG_BYTES]) {
    BIGNUM *r = BN_new(), *s = BN_new();
    int rc = DUO_E_NOMEM;

    if (ec == NULL || sig == NULL) {
        rc = DUO_E_INVALID_ARG;
        goto out;
    }
    if (r == NULL || s == NULL || (rc = duo__sig_load(ec, sig, r, s)) != DUO_OK) {
        goto out;
    }
    if (BN_cmp(s, ec->half_q) > 0 && (!BN_sub(s, ec->q, s) || BN_bn2binpad(s, sig + 32, 32) != 32)) {
        rc = DUO_E_INTERNAL;
    }
out:
    BN_free(r);
    BN_free(s);
    return rc;
}

int duo_ecdsa_verify(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES], const uint8_t digest[32],
                     const duo_point *pub) {
    BIGNUM *r = BN_new(), *s = BN_new();
    int rc = DUO_E_NOMEM;

    if (ec == NULL || sig == NULL || digest == NULL || pub == NULL) {
        rc = DUO_E_INVALID_ARG;
        goto out;
    }
    if (r == NULL || s == NULL || (rc = duo__sig_load(ec, sig, r, s)) != DUO_OK) {
        goto out;
    }
    /* high S refused on both curves: every signature we make is low-S */
    rc = BN_cmp(s, ec->half_q) > 0 ? DUO_E_BAD_SIGNATURE : ec->ops->ecdsa_verify(ec, sig, digest, pub);
out:
    BN_free(r);
    BN_free(s);
    return rc;
}

int duo__ecdsa_der(uint8_t *der, size_t *der_len, const uint8_t sig[DUO_ECDSA_SIG_BYTES]) {
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *buf = NULL;
    int len = -1, rc = DUO_E_NOMEM;

    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    if ((len = i2d_ECDSA_SIG(es, &buf)) <= 0) {
        rc = DUO_E_INTERNAL;
        goto out;
    }
    if (*der_len < (size_t)len) {
        *der_len = (size_t)len;
        rc = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    memcpy(der, buf, (size_t)len);
    *der_len = (size_t)len;
    rc = DUO_OK;
out:
    OPENSSL_free(buf);
    ECDSA_SIG_free(es);
    return rc;
}

int duo_ecdsa_to_der(const duo_ec *ec, uint8_t *der, size_t *der_len, const uint8_t sig[DUO_ECDSA_SIG_BYTES]) {
    BIGNUM *r = BN_new(), *s = BN_new();
    int rc = DUO_E_NOMEM;

    if (ec == NULL || der == NULL || der_len == NULL || sig == NULL) {
        rc = DUO_E_INVALID_ARG;
        goto out;
    }
    if (r == NULL || s == NULL || (rc = duo__sig_load(ec, sig, r, s)) != DUO_OK) {
        goto out;
    }
    rc = duo__ecdsa_der(der, der_len, sig);
out:
    BN_free(r);
    BN_free(s);
    return rc;
}
