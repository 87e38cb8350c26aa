/* Pedersen commitments over P-521 (pedersen521.h).
 *
 * H: for ctr = 0, 1, ...: x = the first 66 bytes of
 *     SHA-512(H_DOMAIN || be32(ctr) || 0x00) || SHA-512(H_DOMAIN || be32(ctr) || 0x01)
 * with the top byte masked to its low bit (x < 2^521); the first x < p that
 * is the x-coordinate of a curve point, with the even y, is H. The output of
 * a hash is no multiple of G anyone knows. test_pedersen521 pins the result.
 *
 * OpenSSL 3.0 offers fixed-base tables (EC_GROUP_precompute_mult) and
 * multi-scalar multiplication (EC_POINTs_mul) only through functions it marks
 * deprecated; it has no replacement for either. They are the only deprecated
 * calls here, kept to this file (docs/DECISIONS.md, "Range proof v2"). H's
 * table lives in a copy of the group whose generator is H: a fixed-base
 * multiplication by H then costs what one by G does (~0.1 ms against ~0.23 ms
 * for a variable base). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "pedersen521.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

#define H_DOMAIN "duosign/v1/pedersen/P-521/H"
#define H_ATTEMPTS 1000u

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static EC_GROUP *g_group;  /* P-521, generator G */
static EC_GROUP *g_hgroup; /* P-521, generator H, with a fixed-base table */
static EC_POINT *g_h;      /* H in g_group */

static int sha512_block(uint8_t out[64], uint32_t ctr, uint8_t part) {
    uint8_t in[sizeof H_DOMAIN - 1u + 5u];
    unsigned int len = 0;
    memcpy(in, H_DOMAIN, sizeof H_DOMAIN - 1u);
    in[sizeof H_DOMAIN - 1u] = (uint8_t)(ctr >> 24);
    in[sizeof H_DOMAIN] = (uint8_t)(ctr >> 16);
    in[sizeof H_DOMAIN + 1u] = (uint8_t)(ctr >> 8);
    in[sizeof H_DOMAIN + 2u] = (uint8_t)ctr;
    in[sizeof H_DOMAIN + 3u] = part;
    return EVP_Digest(in, sizeof in, out, &len, EVP_sha512(), NULL) == 1 && len == 64u;
}

/* g_h <- the first hash output that is an x-coordinate (see top). */
static int derive_h(BN_CTX *ctx) {
    uint8_t buf[128];
    uint32_t ctr;
    int ok = 0;
    BIGNUM *x = BN_new(), *p = BN_new();
    if (x == NULL || p == NULL || !EC_GROUP_get_curve(g_group, p, NULL, NULL, ctx)) goto out;
    for (ctr = 0; ctr < H_ATTEMPTS && !ok; ctr++) {
        if (!sha512_block(buf, ctr, 0) || !sha512_block(buf + 64, ctr, 1)) goto out;
        buf[0] &= 0x01u;
        if (BN_bin2bn(buf, (int)DUO_PED_SCALAR_BYTES, x) == NULL) goto out;
        if (BN_cmp(x, p) >= 0) continue;
        ERR_set_mark();
        ok = EC_POINT_set_compressed_coordinates(g_group, g_h, x, 0, ctx) == 1 &&
             EC_POINT_is_on_curve(g_group, g_h, ctx) == 1;
        ERR_pop_to_mark(); /* a non-residue is the expected miss, not an error */
    }
out:
    BN_free(x);
    BN_free(p);
    return ok;
}

static void ped_init(void) {
    BN_CTX *ctx = BN_CTX_new();
    int ok = ctx != NULL && (g_group = EC_GROUP_new_by_curve_name(NID_secp521r1)) != NULL &&
             (g_h = EC_POINT_new(g_group)) != NULL && derive_h(ctx) && (g_hgroup = EC_GROUP_dup(g_group)) != NULL &&
             EC_GROUP_set_generator(g_hgroup, g_h, EC_GROUP_get0_order(g_group), BN_value_one()) == 1 &&
             EC_GROUP_precompute_mult(g_group, ctx) == 1 && EC_GROUP_precompute_mult(g_hgroup, ctx) == 1;
    if (!ok) {
        EC_POINT_free(g_h);
        EC_GROUP_free(g_hgroup);
        EC_GROUP_free(g_group);
        g_h = NULL;
        g_hgroup = NULL;
        g_group = NULL;
    }
    BN_CTX_free(ctx);
}

const EC_GROUP *duo__ped_group(void) {
    (void)pthread_once(&g_once, ped_init);
    return g_group;
}

const BIGNUM *duo__ped_order(void) {
    const EC_GROUP *g = duo__ped_group();
    return g != NULL ? EC_GROUP_get0_order(g) : NULL;
}

const EC_POINT *duo__ped_h(void) { return duo__ped_group() != NULL ? g_h : NULL; }

static int scalar_ok(const BIGNUM *v, const BIGNUM *n) { return !BN_is_negative(v) && BN_cmp(v, n) < 0; }

int duo__ped_commit(EC_POINT *out, const BIGNUM *m, const BIGNUM *s, BN_CTX *ctx) {
    int ok;
    EC_POINT *sh;
    const EC_GROUP *g = duo__ped_group();
    if (g == NULL) return DUO_E_INTERNAL;
    if (out == NULL || m == NULL || s == NULL || ctx == NULL) return DUO_E_INVALID_ARG;
    if (!scalar_ok(m, duo__ped_order()) || !scalar_ok(s, duo__ped_order())) return DUO_E_INVALID_ARG;
    if ((sh = EC_POINT_new(g_hgroup)) == NULL) return DUO_E_NOMEM;
    /* Both through the fixed-base path (generator only): constant time in
     * the scalar on OpenSSL's P-521 code. The result of g_hgroup is a point
     * of the same curve and method, so it adds into g_group's points. */
    ok = EC_POINT_mul(g_hgroup, sh, s, NULL, NULL, ctx) == 1 && EC_POINT_mul(g, out, m, NULL, NULL, ctx) == 1 &&
         EC_POINT_add(g, out, out, sh, ctx) == 1;
    EC_POINT_clear_free(sh);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

int duo__ped_point_encode(uint8_t out[DUO_PED_POINT_BYTES], const EC_POINT *p, BN_CTX *ctx) {
    const EC_GROUP *g = duo__ped_group();
    if (g == NULL || p == NULL || EC_POINT_is_at_infinity(g, p)) return DUO_E_INTERNAL;
    return EC_POINT_point2oct(g, p, POINT_CONVERSION_COMPRESSED, out, DUO_PED_POINT_BYTES, ctx) == DUO_PED_POINT_BYTES
               ? DUO_OK
               : DUO_E_INTERNAL;
}

int duo__ped_point_decode(EC_POINT *p, const uint8_t in[DUO_PED_POINT_BYTES], BN_CTX *ctx) {
    int ok;
    const EC_GROUP *g = duo__ped_group();
    if (g == NULL) return DUO_E_INTERNAL;
    if (p == NULL || in == NULL) return DUO_E_INVALID_ARG;
    /* Only the compressed form: oct2point also takes 0x04 (uncompressed,
     * 133 bytes) and 0x00 (infinity, 1 byte), neither of which is 67 bytes
     * long, but the prefix is checked first so no other reading exists. */
    if (in[0] != 0x02u && in[0] != 0x03u) return DUO_E_BAD_POINT;
    ERR_set_mark();
    ok = EC_POINT_oct2point(g, p, in, DUO_PED_POINT_BYTES, ctx) == 1 && EC_POINT_is_on_curve(g, p, ctx) == 1 &&
         !EC_POINT_is_at_infinity(g, p);
    ERR_pop_to_mark();
    return ok ? DUO_OK : DUO_E_BAD_POINT;
}

int duo__ped_msm_is_zero(const BIGNUM *gs, const BIGNUM *hs, size_t num, const EC_POINT *const *p,
                         const BIGNUM *const *k, BN_CTX *ctx) {
    int r = DUO_E_NOMEM;
    size_t i;
    const EC_POINT **pts = NULL;
    const BIGNUM **sc = NULL;
    EC_POINT *res = NULL;
    const EC_GROUP *g = duo__ped_group();
    if (g == NULL) return DUO_E_INTERNAL;
    if (gs == NULL || hs == NULL || (num > 0 && (p == NULL || k == NULL)) || ctx == NULL) return DUO_E_INVALID_ARG;
    if ((pts = calloc(num + 1u, sizeof *pts)) == NULL || (sc = calloc(num + 1u, sizeof *sc)) == NULL ||
        (res = EC_POINT_new(g)) == NULL)
        goto out;
    for (i = 0; i < num; i++) {
        pts[i] = p[i];
        sc[i] = k[i];
    }
    pts[num] = g_h;
    sc[num] = hs;
    r = DUO_E_INTERNAL;
    if (EC_POINTs_mul(g, res, gs, num + 1u, pts, sc, ctx) != 1) goto out;
    r = EC_POINT_is_at_infinity(g, res) ? DUO_OK : DUO_E_BAD_PROOF;
out:
    EC_POINT_free(res);
    free(pts);
    free(sc);
    return r;
}
