/* secp256k1 scalars and points over libsecp256k1 0.2.0.
 *
 * libsecp256k1 0.2.0 has no public scalar API, so scalar arithmetic goes
 * through its secret-key tweak functions, which are constant time in the key
 * and the tweak:
 *   a + b   = secp256k1_ec_seckey_tweak_add(a, b)
 *   a * b   = secp256k1_ec_seckey_tweak_mul(a, b)
 *   -a      = secp256k1_ec_seckey_negate(a)
 * All of them require both operands in [1, q-1], which is exactly the domain
 * of duo_scalar. The inverse uses OpenSSL's constant-time Montgomery
 * exponentiation (Fermat: a^(q-2) mod q, q prime) with BN_FLG_CONSTTIME.
 *
 * k*P for a secret k uses secp256k1_ecdh (secp256k1_ecmult_const, constant
 * time) rather than secp256k1_ec_pubkey_tweak_mul, which uses the
 * variable-time secp256k1_ecmult. */
#include "duosign/curve.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <secp256k1_ecdh.h>

#include "duosign/mem.h"

struct duo_ec {
    secp256k1_context *secp;
    BIGNUM *q;           /* group order */
    BIGNUM *q_minus_2;   /* Fermat exponent (public) */
    BN_MONT_CTX *mont_q; /* Montgomery context for q; read-only after _new */
};

/* q = FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFE BAAEDCE6 AF48A03B BFD25E8C D0364141 */
static const uint8_t duo__q_bytes[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                         0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

int duo_ec_new(duo_ec **out, const duo_rng *rng) {
    int r = DUO_E_INTERNAL;
    duo_ec *ec = NULL;
    BN_CTX *bnctx = NULL;
    uint8_t seed[32];

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if ((ec = calloc(1, sizeof *ec)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    ec->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    ec->q = BN_new();
    ec->q_minus_2 = BN_new();
    ec->mont_q = BN_MONT_CTX_new();
    bnctx = BN_CTX_new();
    if (ec->secp == NULL || ec->q == NULL || ec->q_minus_2 == NULL || ec->mont_q == NULL || bnctx == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (BN_bin2bn(duo__q_bytes, 32, ec->q) == NULL || BN_copy(ec->q_minus_2, ec->q) == NULL ||
        !BN_sub_word(ec->q_minus_2, 2) || !BN_MONT_CTX_set(ec->mont_q, ec->q, bnctx)) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_rng_bytes(rng, seed, sizeof seed)) != DUO_OK) {
        goto out;
    }
    if (!secp256k1_context_randomize(ec->secp, seed)) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    *out = ec;
    ec = NULL;
    r = DUO_OK;
out:
    duo_memzero(seed, sizeof seed);
    BN_CTX_free(bnctx);
    duo_ec_free(ec);
    return r;
}

void duo_ec_free(duo_ec *ec) {
    if (ec == NULL) {
        return;
    }
    if (ec->secp != NULL) {
        secp256k1_context_destroy(ec->secp);
    }
    BN_free(ec->q);
    BN_free(ec->q_minus_2);
    BN_MONT_CTX_free(ec->mont_q);
    duo_memzero(ec, sizeof *ec);
    free(ec);
}

const secp256k1_context *duo_ec_secp(const duo_ec *ec) { return ec == NULL ? NULL : ec->secp; }

const BIGNUM *duo_ec_order(const duo_ec *ec) { return ec == NULL ? NULL : ec->q; }

/* ---- scalars ---- */

/* Constant time: returns 1 if s is in [1, q-1]. secp256k1_ec_seckey_verify
 * is documented constant time in the key. */
static int duo__scalar_valid(const duo_ec *ec, const uint8_t s[32]) { return secp256k1_ec_seckey_verify(ec->secp, s); }

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
        uint32_t t = (uint32_t)in[i] - (uint32_t)duo__q_bytes[i] - borrow;
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

int duo_scalar_add(const duo_ec *ec, duo_scalar *out, const duo_scalar *a, const duo_scalar *b) {
    uint8_t t[32];
    int ok;

    if (ec == NULL || out == NULL || a == NULL || b == NULL) {
        return DUO_E_INVALID_ARG;
    }
    /* Both operands must be in [1, q-1]; tweak_add then fails only when
     * a + b == 0 mod q. */
    memcpy(t, a->b, 32);
    ok = duo__scalar_valid(ec, b->b) & secp256k1_ec_seckey_tweak_add(ec->secp, t, b->b);
    duo__declassify(&ok, sizeof ok); /* zero test, public outcome (see reduce32) */
    if (!ok) {
        duo_memzero(t, sizeof t);
        duo_memzero(out, sizeof *out);
        return DUO_E_BAD_SCALAR;
    }
    memcpy(out->b, t, 32);
    duo_memzero(t, sizeof t);
    return DUO_OK;
}

int duo_scalar_mul(const duo_ec *ec, duo_scalar *out, const duo_scalar *a, const duo_scalar *b) {
    uint8_t t[32];
    int ok;

    if (ec == NULL || out == NULL || a == NULL || b == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memcpy(t, a->b, 32);
    ok = secp256k1_ec_seckey_tweak_mul(ec->secp, t, b->b);
    duo__declassify(&ok, sizeof ok); /* zero test, public outcome (see reduce32) */
    if (!ok) {
        duo_memzero(t, sizeof t);
        duo_memzero(out, sizeof *out);
        return DUO_E_BAD_SCALAR;
    }
    memcpy(out->b, t, 32);
    duo_memzero(t, sizeof t);
    return DUO_OK;
}

int duo_scalar_negate(const duo_ec *ec, duo_scalar *out, const duo_scalar *a) {
    uint8_t t[32];

    if (ec == NULL || out == NULL || a == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memcpy(t, a->b, 32);
    int ok = secp256k1_ec_seckey_negate(ec->secp, t);
    duo__declassify(&ok, sizeof ok); /* zero test, public outcome (see reduce32) */
    if (!ok) {
        duo_memzero(t, sizeof t);
        duo_memzero(out, sizeof *out);
        return DUO_E_BAD_SCALAR;
    }
    memcpy(out->b, t, 32);
    duo_memzero(t, sizeof t);
    return DUO_OK;
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
    /* Only compressed form: libsecp256k1 would also take 65-byte 04 keys. */
    if (in_len != DUO_POINT_BYTES || (in[0] != 0x02 && in[0] != 0x03)) {
        return DUO_E_BAD_POINT;
    }
    /* Rejects x >= p and x with no square root (off curve). */
    if (!secp256k1_ec_pubkey_parse(ec->secp, &out->p, in, in_len)) {
        return DUO_E_BAD_POINT;
    }
    return DUO_OK;
}

void duo_point_serialize(const duo_ec *ec, uint8_t out[DUO_POINT_BYTES], const duo_point *p) {
    size_t len = DUO_POINT_BYTES;
    if (!secp256k1_ec_pubkey_serialize(ec->secp, out, &len, &p->p, SECP256K1_EC_COMPRESSED)) {
        memset(out, 0, DUO_POINT_BYTES); /* unreachable for a valid point */
    }
}

int duo_point_mul_base(const duo_ec *ec, duo_point *out, const duo_scalar *k) {
    if (ec == NULL || out == NULL || k == NULL) {
        return DUO_E_INVALID_ARG;
    }
    /* Constant time (secp256k1_ecmult_gen); fails only for k == 0 or k >= q. */
    if (!secp256k1_ec_pubkey_create(ec->secp, &out->p, k->b)) {
        return DUO_E_BAD_SCALAR;
    }
    return DUO_OK;
}

/* secp256k1_ecdh hash callback that returns the point itself, uncompressed
 * (04 || x || y): parsing that back only checks the curve equation, where
 * the compressed form would cost a square root per multiplication. */
static int duo__ecdh_copy_point(unsigned char *output, const unsigned char *x32, const unsigned char *y32, void *data) {
    (void)data;
    output[0] = 0x04;
    memcpy(output + 1, x32, 32);
    memcpy(output + 33, y32, 32);
    return 1;
}

int duo_point_mul(const duo_ec *ec, duo_point *out, const duo_point *p, const duo_scalar *k) {
    uint8_t buf[65];
    int r = DUO_OK;

    if (ec == NULL || out == NULL || p == NULL || k == NULL) {
        return DUO_E_INVALID_ARG;
    }
    /* secp256k1_ecdh: secp256k1_ecmult_const, constant time in k. It rejects
     * k == 0 and k >= q; a nonzero k times a point of the prime-order group
     * is never infinity. */
    if (!secp256k1_ecdh(ec->secp, buf, &p->p, k->b, duo__ecdh_copy_point, NULL)) {
        r = DUO_E_BAD_SCALAR;
    } else if (!secp256k1_ec_pubkey_parse(ec->secp, &out->p, buf, sizeof buf)) {
        r = DUO_E_INTERNAL;
    }
    duo_memzero(buf, sizeof buf);
    return r;
}

int duo_point_add(const duo_ec *ec, duo_point *out, const duo_point *a, const duo_point *b) {
    const secp256k1_pubkey *ins[2];
    secp256k1_pubkey sum;

    if (ec == NULL || out == NULL || a == NULL || b == NULL) {
        return DUO_E_INVALID_ARG;
    }
    ins[0] = &a->p;
    ins[1] = &b->p;
    if (!secp256k1_ec_pubkey_combine(ec->secp, &sum, ins, 2)) {
        return DUO_E_BAD_POINT; /* a == -b */
    }
    out->p = sum;
    return DUO_OK;
}

int duo_point_eq_var(const duo_ec *ec, const duo_point *a, const duo_point *b) {
    return secp256k1_ec_pubkey_cmp(ec->secp, &a->p, &b->p) == 0;
}

int duo_point_x_mod_q(const duo_ec *ec, duo_scalar *r, const duo_point *p) {
    uint8_t buf[DUO_POINT_BYTES];

    if (ec == NULL || r == NULL || p == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo_point_serialize(ec, buf, p);
    return duo_scalar_reduce32(ec, r, buf + 1);
}

/* ---- ECDSA (public data) ---- */

int duo_ecdsa_normalize(const duo_ec *ec, uint8_t sig[DUO_ECDSA_SIG_BYTES]) {
    secp256k1_ecdsa_signature s;

    if (ec == NULL || sig == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (!secp256k1_ecdsa_signature_parse_compact(ec->secp, &s, sig)) {
        return DUO_E_BAD_SIGNATURE; /* r or s >= q */
    }
    (void)secp256k1_ecdsa_signature_normalize(ec->secp, &s, &s);
    if (!secp256k1_ecdsa_signature_serialize_compact(ec->secp, sig, &s)) {
        return DUO_E_INTERNAL;
    }
    return DUO_OK;
}

int duo_ecdsa_verify(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES], const uint8_t digest[32],
                     const duo_point *pub) {
    secp256k1_ecdsa_signature s;

    if (ec == NULL || sig == NULL || digest == NULL || pub == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (!secp256k1_ecdsa_signature_parse_compact(ec->secp, &s, sig)) {
        return DUO_E_BAD_SIGNATURE;
    }
    /* Rejects r == 0, s == 0 and high S. */
    if (!secp256k1_ecdsa_verify(ec->secp, &s, digest, &pub->p)) {
        return DUO_E_BAD_SIGNATURE;
    }
    return DUO_OK;
}

int duo_ecdsa_to_der(const duo_ec *ec, uint8_t *der, size_t *der_len, const uint8_t sig[DUO_ECDSA_SIG_BYTES]) {
    secp256k1_ecdsa_signature s;
    uint8_t buf[DUO_ECDSA_DER_MAX];
    size_t len = sizeof buf;

    if (ec == NULL || der == NULL || der_len == NULL || sig == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (!secp256k1_ecdsa_signature_parse_compact(ec->secp, &s, sig)) {
        return DUO_E_BAD_SIGNATURE;
    }
    if (!secp256k1_ecdsa_signature_serialize_der(ec->secp, buf, &len, &s)) {
        return DUO_E_INTERNAL;
    }
    if (*der_len < len) {
        *der_len = len;
        return DUO_E_BUFFER_TOO_SMALL;
    }
    memcpy(der, buf, len);
    *der_len = len;
    return DUO_OK;
}
