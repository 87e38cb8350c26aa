/* The secp256k1 backend over libsecp256k1 0.2.0.
 *
 * libsecp256k1 0.2.0 has no public scalar API, so scalar arithmetic goes
 * through its secret-key tweak functions, which are constant time in the key
 * and the tweak:
 *   a + b   = secp256k1_ec_seckey_tweak_add(a, b)
 *   a * b   = secp256k1_ec_seckey_tweak_mul(a, b)
 *   -a      = secp256k1_ec_seckey_negate(a)
 * All of them require both operands in [1, q-1], which is exactly the domain
 * of duo_scalar.
 *
 * k*P for a secret k uses secp256k1_ecdh (secp256k1_ecmult_const, constant
 * time) rather than secp256k1_ec_pubkey_tweak_mul, which uses the
 * variable-time secp256k1_ecmult. */
#include <string.h>

#include <secp256k1_ecdh.h>

#include "curve_internal.h"
#include "duosign/mem.h"

/* q = FFFFFFFF FFFFFFFF FFFFFFFF FFFFFFFE BAAEDCE6 AF48A03B BFD25E8C D0364141 */
static const uint8_t duo__k1_q[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                      0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

static int duo__k1_init(duo_ec *ec, const duo_rng *rng) {
    uint8_t seed[32];
    int r;

    memcpy(ec->q_bytes, duo__k1_q, 32);
    ec->group_name = "secp256k1";
    if ((ec->secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE)) == NULL) {
        return DUO_E_NOMEM;
    }
    if ((r = duo_rng_bytes(rng, seed, sizeof seed)) != DUO_OK) {
        return r;
    }
    r = secp256k1_context_randomize(ec->secp, seed) ? DUO_OK : DUO_E_INTERNAL;
    duo_memzero(seed, sizeof seed);
    return r;
}

static void duo__k1_release(duo_ec *ec) {
    if (ec->secp != NULL) {
        secp256k1_context_destroy(ec->secp);
        ec->secp = NULL;
    }
}

/* secp256k1_ec_seckey_verify is documented constant time in the key. */
static int duo__k1_scalar_valid(const duo_ec *ec, const uint8_t s[32]) {
    return secp256k1_ec_seckey_verify(ec->secp, s);
}

static int duo__k1_scalar_add(const duo_ec *ec, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]) {
    uint8_t t[32];
    memcpy(t, a, 32);
    /* tweak_add checks t; b must be checked here. It fails only when
     * a + b == 0 mod q. */
    int ok = duo__k1_scalar_valid(ec, b) & secp256k1_ec_seckey_tweak_add(ec->secp, t, b);
    memcpy(out, t, 32);
    duo_memzero(t, sizeof t);
    return ok;
}

static int duo__k1_scalar_mul(const duo_ec *ec, uint8_t out[32], const uint8_t a[32], const uint8_t b[32]) {
    uint8_t t[32];
    memcpy(t, a, 32);
    int ok = secp256k1_ec_seckey_tweak_mul(ec->secp, t, b);
    memcpy(out, t, 32);
    duo_memzero(t, sizeof t);
    return ok;
}

static int duo__k1_scalar_negate(const duo_ec *ec, uint8_t out[32], const uint8_t a[32]) {
    uint8_t t[32];
    memcpy(t, a, 32);
    int ok = secp256k1_ec_seckey_negate(ec->secp, t);
    memcpy(out, t, 32);
    duo_memzero(t, sizeof t);
    return ok;
}

static int duo__k1_point_parse(const duo_ec *ec, duo_point *out, const uint8_t in[DUO_POINT_BYTES]) {
    /* Rejects x >= p and x with no square root (off curve). */
    return secp256k1_ec_pubkey_parse(ec->secp, &out->p, in, DUO_POINT_BYTES) ? DUO_OK : DUO_E_BAD_POINT;
}

static void duo__k1_point_serialize(const duo_ec *ec, uint8_t out[DUO_POINT_BYTES], const duo_point *p) {
    size_t len = DUO_POINT_BYTES;
    if (!secp256k1_ec_pubkey_serialize(ec->secp, out, &len, &p->p, SECP256K1_EC_COMPRESSED)) {
        memset(out, 0, DUO_POINT_BYTES); /* unreachable for a valid point */
    }
}

static void duo__k1_point_serialize_full(const duo_ec *ec, uint8_t out[DUO_POINT_FULL_BYTES], const duo_point *p) {
    size_t len = DUO_POINT_FULL_BYTES;
    if (!secp256k1_ec_pubkey_serialize(ec->secp, out, &len, &p->p, SECP256K1_EC_UNCOMPRESSED)) {
        memset(out, 0, DUO_POINT_FULL_BYTES); /* unreachable for a valid point */
    }
}

static int duo__k1_point_mul_base(const duo_ec *ec, duo_point *out, const uint8_t k[32]) {
    /* Constant time (secp256k1_ecmult_gen); fails only for k == 0 or k >= q. */
    return secp256k1_ec_pubkey_create(ec->secp, &out->p, k) ? DUO_OK : DUO_E_BAD_SCALAR;
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

static int duo__k1_point_mul(const duo_ec *ec, duo_point *out, const duo_point *p, const uint8_t k[32]) {
    uint8_t buf[65];
    int r = DUO_OK;

    /* secp256k1_ecdh: secp256k1_ecmult_const, constant time in k. It rejects
     * k == 0 and k >= q; a nonzero k times a point of the prime-order group
     * is never infinity. */
    if (!secp256k1_ecdh(ec->secp, buf, &p->p, k, duo__ecdh_copy_point, NULL)) {
        r = DUO_E_BAD_SCALAR;
    } else if (!secp256k1_ec_pubkey_parse(ec->secp, &out->p, buf, sizeof buf)) {
        r = DUO_E_INTERNAL;
    }
    duo_memzero(buf, sizeof buf);
    return r;
}

static int duo__k1_point_add(const duo_ec *ec, duo_point *out, const duo_point *a, const duo_point *b) {
    const secp256k1_pubkey *ins[2] = {&a->p, &b->p};
    secp256k1_pubkey sum;

    if (!secp256k1_ec_pubkey_combine(ec->secp, &sum, ins, 2)) {
        return DUO_E_BAD_POINT; /* a == -b */
    }
    out->p = sum;
    return DUO_OK;
}

static int duo__k1_point_eq_var(const duo_ec *ec, const duo_point *a, const duo_point *b) {
    return secp256k1_ec_pubkey_cmp(ec->secp, &a->p, &b->p) == 0;
}

static int duo__k1_ecdsa_verify(const duo_ec *ec, const uint8_t sig[DUO_ECDSA_SIG_BYTES], const uint8_t digest[32],
                                const duo_point *pub) {
    secp256k1_ecdsa_signature s;

    if (!secp256k1_ecdsa_signature_parse_compact(ec->secp, &s, sig)) {
        return DUO_E_BAD_SIGNATURE;
    }
    /* Rejects r == 0, s == 0 and high S. */
    return secp256k1_ecdsa_verify(ec->secp, &s, digest, &pub->p) ? DUO_OK : DUO_E_BAD_SIGNATURE;
}

const duo__ec_ops duo__ec_k1_ops = {
    .init = duo__k1_init,
    .release = duo__k1_release,
    .scalar_valid = duo__k1_scalar_valid,
    .scalar_add = duo__k1_scalar_add,
    .scalar_mul = duo__k1_scalar_mul,
    .scalar_negate = duo__k1_scalar_negate,
    .point_parse = duo__k1_point_parse,
    .point_serialize = duo__k1_point_serialize,
    .point_serialize_full = duo__k1_point_serialize_full,
    .point_mul_base = duo__k1_point_mul_base,
    .point_mul = duo__k1_point_mul,
    .point_add = duo__k1_point_add,
    .point_eq_var = duo__k1_point_eq_var,
    .ecdsa_verify = duo__k1_ecdsa_verify,
};
