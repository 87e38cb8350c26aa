/* The device state blob: round trip, every truncation, a flipped bit in
 * every byte, unknown version, the curve (version 1 is secp256k1, version 2
 * carries it: P-256 keys; version 3 adds role and certificate, version 4
 * the pinned channel key), the wrap hook, and the import/export/persist
 * rules of the public API (a refused blob leaves the context untouched). */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "blob.h"
#include "duosign/curve.h"
#include "duosign/device.h"
#include "duosign/inner_channel.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"
#include "test_harness.h"
#include "wire.h"

static uint8_t *g_n, *g_ckey, g_q[33], g_q256[33];
static unsigned g_bits = 2048;

static void fixture(void) {
    duo_paillier_priv *sk = NULL;
    duo_ec *ec = NULL;
    duo_scalar x;
    duo_point p;
    BIGNUM *m = BN_new(), *rn = BN_new(), *c = BN_new();
    const duo_paillier_pub *pk;
    size_t nb = g_bits / 8;

    if (duo_paillier_keygen(&sk, g_bits) != DUO_OK || duo_ec_new(&ec, DUO_CURVE_SECP256K1, NULL) != DUO_OK) abort();
    pk = duo_paillier_priv_pub(sk);
    g_n = malloc(nb);
    g_ckey = malloc(2 * nb);
    BN_set_word(m, 12345);
    if (duo_paillier_pub_serialize(pk, g_n, nb) != DUO_OK || duo_paillier_rn(pk, rn, NULL) != DUO_OK ||
        duo_paillier_encrypt(pk, c, m, rn) != DUO_OK ||
        duo_paillier_ciphertext_serialize(pk, g_ckey, 2 * nb, c) != DUO_OK)
        abort();
    if (duo_scalar_random(ec, &x, NULL) != DUO_OK || duo_point_mul_base(ec, &p, &x) != DUO_OK) abort();
    duo_point_serialize(ec, g_q, &p);
    duo_ec_free(ec);
    ec = NULL;
    if (duo_ec_new(&ec, DUO_CURVE_P256, NULL) != DUO_OK || duo_scalar_random(ec, &x, NULL) != DUO_OK ||
        duo_point_mul_base(ec, &p, &x) != DUO_OK)
        abort();
    duo_point_serialize(ec, g_q256, &p);
    BN_free(m);
    BN_free(rn);
    BN_free(c);
    duo_paillier_priv_free(sk);
    duo_ec_free(ec);
}

static void make_fields(duo__blob_fields *f, int confirmed) {
    size_t i;
    memset(f, 0, sizeof *f);
    f->flags = confirmed ? DUO__BLOB_FLAG_CONFIRMED : 0;
    for (i = 0; i < 16; i++) f->key_id[i] = (uint8_t)(i + 1);
    for (i = 0; i < 32; i++) f->x2_masked[i] = (uint8_t)(0x10 + i);
    f->x2_masked[0] = 0x01; /* < q */
    for (i = 0; i < 16; i++) f->pin_salt[i] = (uint8_t)(0xa0 + i);
    memcpy(f->q, g_q, 33);
    f->paillier_bits = g_bits;
    f->n = g_n;
    f->ckey = g_ckey;
    for (i = 0; i < 32; i++) f->device_secret[i] = (uint8_t)(0x55 ^ i);
    for (i = 0; i < 32; i++) f->sid[i] = (uint8_t)(0x77 ^ i);
    f->address = "127.0.0.1:7443";
    f->address_len = strlen(f->address);
    f->app = (const uint8_t *)"app-bytes";
    f->app_len = 9;
}

static void test_roundtrip(void) {
    duo__blob_fields f, g;
    uint8_t *b = NULL;
    size_t len = 0;

    make_fields(&f, 1);
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_REQUIRE(b != NULL);
    DUO_CHECK(memcmp(b, "DUOS", 4) == 0);
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(g.flags == f.flags);
    DUO_CHECK(memcmp(g.key_id, f.key_id, 16) == 0);
    DUO_CHECK(memcmp(g.x2_masked, f.x2_masked, 32) == 0);
    DUO_CHECK(memcmp(g.pin_salt, f.pin_salt, 16) == 0);
    DUO_CHECK(memcmp(g.q, f.q, 33) == 0);
    DUO_CHECK(g.paillier_bits == g_bits);
    DUO_CHECK(memcmp(g.n, g_n, g_bits / 8) == 0);
    DUO_CHECK(memcmp(g.ckey, g_ckey, g_bits / 4) == 0);
    DUO_CHECK(memcmp(g.device_secret, f.device_secret, 32) == 0);
    DUO_CHECK(memcmp(g.sid, f.sid, 32) == 0);
    DUO_CHECK(g.address_len == f.address_len && memcmp(g.address, f.address, f.address_len) == 0);
    DUO_CHECK(g.app_len == 9 && memcmp(g.app, "app-bytes", 9) == 0);
    duo_secure_free(b);
}

static void test_truncation_and_bitflips(void) {
    duo__blob_fields f, g;
    uint8_t *b = NULL, *copy;
    size_t len = 0, i;
    int bad_trunc = 0, bad_flip = 0;

    make_fields(&f, 1);
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_REQUIRE(b != NULL);
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        memcpy(copy, b, i);
        if (duo__blob_decode(&g, copy, i) != DUO_E_STATE_CORRUPT) bad_trunc++;
    }
    DUO_CHECK(bad_trunc == 0);
    for (i = 0; i < len; i++) {
        memcpy(copy, b, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (duo__blob_decode(&g, copy, len) != DUO_E_STATE_CORRUPT) bad_flip++;
    }
    DUO_CHECK(bad_flip == 0);
    /* Trailing garbage. */
    {
        uint8_t *longer = malloc(len + 1);
        memcpy(longer, b, len);
        longer[len] = 0;
        DUO_EXPECT_ERR(duo__blob_decode(&g, longer, len + 1), DUO_E_STATE_CORRUPT);
        free(longer);
    }
    free(copy);
    duo_secure_free(b);
}

/* A version-9 blob with a correct digest is still refused. */
static void test_unknown_version(void) {
    duo__blob_fields f, g;
    uint8_t *b = NULL;
    size_t len = 0;
    make_fields(&f, 0);
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_REQUIRE(b != NULL);
    b[5] = 9;
    SHA256(b, len - 32, b + len - 32); /* only the version is wrong */
    DUO_EXPECT_ERR(duo__blob_decode(&g, b, len), DUO_E_STATE_CORRUPT);
    duo_secure_free(b);
}

/* Curves: a secp256k1 key (or one from before curves, curve 0) is written
 * as version 1 byte for byte; a P-256 key as version 2 with the curve after
 * Q, every byte of which is checked; a version-2 blob naming secp256k1 (never
 * written) or an unknown curve is corruption. */
static void test_curve_versions(void) {
    duo__blob_fields f, g;
    uint8_t *b1 = NULL, *b0 = NULL, *b2 = NULL, *copy;
    size_t l1 = 0, l0 = 0, l2 = 0, i;
    int bad = 0;

    make_fields(&f, 1);
    DUO_CHECK_OK(duo__blob_encode(&b0, &l0, &f)); /* curve 0 */
    f.curve = DUO_CURVE_SECP256K1;
    DUO_CHECK_OK(duo__blob_encode(&b1, &l1, &f));
    DUO_CHECK(l0 == l1 && memcmp(b0, b1, l1) == 0 && b1[5] == 1);
    DUO_CHECK_OK(duo__blob_decode(&g, b1, l1));
    DUO_CHECK(g.curve == DUO_CURVE_SECP256K1);

    memcpy(f.q, g_q256, 33);
    f.curve = DUO_CURVE_P256;
    DUO_CHECK_OK(duo__blob_encode(&b2, &l2, &f));
    DUO_CHECK(l2 == l1 + 2 && b2[5] == 2);
    DUO_CHECK_OK(duo__blob_decode(&g, b2, l2));
    DUO_CHECK(g.curve == DUO_CURVE_P256 && g.paillier_bits == f.paillier_bits && memcmp(g.q, g_q256, 33) == 0);
    copy = malloc(l2);
    for (i = 0; i < l2; i++) {
        memcpy(copy, b2, l2);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (duo__blob_decode(&g, copy, l2) != DUO_E_STATE_CORRUPT) bad++;
    }
    DUO_CHECK(bad == 0);
    /* the curve field (after the 12-byte header and 97 bytes of key fields)
     * set to secp256k1 and to unknown values, with a correct digest */
    static const uint16_t wrong[] = {0, 1, 3, 0xffff};
    for (i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        memcpy(copy, b2, l2);
        copy[12 + 97] = (uint8_t)(wrong[i] >> 8);
        copy[12 + 98] = (uint8_t)wrong[i];
        SHA256(copy, l2 - 32, copy + l2 - 32);
        DUO_EXPECT_ERR(duo__blob_decode(&g, copy, l2), DUO_E_STATE_CORRUPT);
    }
    duo_secure_free(b0);
    f.curve = 3;
    DUO_EXPECT_ERR(duo__blob_encode(&b0, &l0, &f), DUO_E_INVALID_ARG);
    DUO_CHECK(b0 == NULL);
    free(copy);
    duo_secure_free(b1);
    duo_secure_free(b2);
}

/* Version 3 (issue 16): a key with a role or a certificate; the role after
 * the curve (any curve), the certificate after the app data; every byte
 * checked; a v3 blob without either, or with an unknown role, is corrupt;
 * a role-less key without a certificate is still written as v1/v2. */
static void test_role_cert_v3(void) {
    duo__blob_fields f, g;
    uint8_t *b = NULL, *b1 = NULL, *copy, cert[300];
    size_t len = 0, l1 = 0, i;
    int bad = 0;
    for (i = 0; i < sizeof cert; i++) cert[i] = (uint8_t)(i * 7);
    make_fields(&f, 1);
    DUO_CHECK_OK(duo__blob_encode(&b1, &l1, &f));
    DUO_CHECK(b1[5] == 1);
    f.role = DUO_KEY_ROLE_SIGN;
    f.cert = cert;
    f.cert_len = sizeof cert;
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_REQUIRE(b != NULL);
    DUO_CHECK(b[5] == 3 && len == l1 + 2 + 2 + 4 + sizeof cert);
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(g.role == DUO_KEY_ROLE_SIGN && g.curve == DUO_CURVE_SECP256K1 && g.cert_len == sizeof cert &&
              memcmp(g.cert, cert, sizeof cert) == 0 && g.app_len == 9);
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        memcpy(copy, b, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (duo__blob_decode(&g, copy, len) != DUO_E_STATE_CORRUPT) bad++;
    }
    DUO_CHECK(bad == 0);
    /* an unknown role (the two bytes after the curve), with a correct digest */
    memcpy(copy, b, len);
    copy[12 + 97 + 3] = 3;
    SHA256(copy, len - 32, copy + len - 32);
    DUO_EXPECT_ERR(duo__blob_decode(&g, copy, len), DUO_E_STATE_CORRUPT);
    free(copy);
    duo_secure_free(b);
    /* a role alone, no certificate: v3 too */
    f.cert = NULL;
    f.cert_len = 0;
    f.role = DUO_KEY_ROLE_AUTH;
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_CHECK(b[5] == 3);
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(g.role == DUO_KEY_ROLE_AUTH && g.cert == NULL && g.cert_len == 0);
    /* the same bytes with role 0: never written as v3 */
    b[12 + 97 + 3] = 0;
    SHA256(b, len - 32, b + len - 32);
    DUO_EXPECT_ERR(duo__blob_decode(&g, b, len), DUO_E_STATE_CORRUPT);
    duo_secure_free(b);
    f.role = 3;
    DUO_EXPECT_ERR(duo__blob_encode(&b, &len, &f), DUO_E_INVALID_ARG);
    duo_secure_free(b1);
}

/* Version 4 (issue 12 on top of issue 16): version 3 plus the pinned
 * channel key after the certificate, written whenever a key is pinned, with
 * or without a role and a certificate, on any curve; every byte checked; a
 * blob of each earlier version has no pinned key. */
static void test_channel_v4(void) {
    duo__blob_fields f, g;
    uint8_t *b = NULL, *b3 = NULL, *copy, cert[200], pub[32];
    size_t len = 0, l3 = 0, i;
    int bad = 0;
    for (i = 0; i < sizeof cert; i++) cert[i] = (uint8_t)(i * 5 + 1);
    for (i = 0; i < sizeof pub; i++) pub[i] = (uint8_t)(0xa0 + i);
    make_fields(&f, 1);
    f.role = DUO_KEY_ROLE_SIGN;
    f.cert = cert;
    f.cert_len = sizeof cert;
    DUO_CHECK_OK(duo__blob_encode(&b3, &l3, &f));
    DUO_REQUIRE(b3 != NULL);
    DUO_CHECK(b3[5] == 3);
    DUO_CHECK_OK(duo__blob_decode(&g, b3, l3));
    DUO_CHECK(!g.has_chkey);
    /* role, certificate and the pin together */
    f.has_chkey = 1;
    f.chkey_number = 0x01020304u;
    memcpy(f.chkey_pub, pub, 32);
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_REQUIRE(b != NULL);
    DUO_CHECK(b[5] == 4 && len == l3 + 4 + 32);
    DUO_CHECK(memcmp(b + 6, b3 + 6, 2) == 0 && memcmp(b + 12, b3 + 12, l3 - 12 - 32) == 0); /* v3's fields first */
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(g.has_chkey && g.chkey_number == 0x01020304u && memcmp(g.chkey_pub, pub, 32) == 0);
    DUO_CHECK(g.role == DUO_KEY_ROLE_SIGN && g.cert_len == sizeof cert && memcmp(g.cert, cert, sizeof cert) == 0 &&
              g.curve == DUO_CURVE_SECP256K1 && g.app_len == 9);
    copy = malloc(len);
    for (i = 0; i < len; i++) {
        memcpy(copy, b, len);
        copy[i] ^= (uint8_t)(1u << (i % 8));
        if (duo__blob_decode(&g, copy, len) != DUO_E_STATE_CORRUPT) bad++;
    }
    DUO_CHECK(bad == 0);
    /* the pin cut off, the digest recomputed: too short for a v4 */
    memcpy(copy, b, len);
    copy[8] = (uint8_t)((len - 36) >> 24);
    copy[9] = (uint8_t)((len - 36) >> 16);
    copy[10] = (uint8_t)((len - 36) >> 8);
    copy[11] = (uint8_t)(len - 36);
    SHA256(copy, len - 36 - 32, copy + len - 36 - 32);
    DUO_EXPECT_ERR(duo__blob_decode(&g, copy, len - 36), DUO_E_STATE_CORRUPT);
    /* an unknown role in a v4, with a correct digest */
    memcpy(copy, b, len);
    copy[12 + 97 + 3] = 3;
    SHA256(copy, len - 32, copy + len - 32);
    DUO_EXPECT_ERR(duo__blob_decode(&g, copy, len), DUO_E_STATE_CORRUPT);
    free(copy);
    duo_secure_free(b);
    /* a pinned key without role or certificate, on P-256: still v4 (unlike
     * v3, which is never written without one of them) */
    f.role = 0;
    f.cert = NULL;
    f.cert_len = 0;
    memcpy(f.q, g_q256, 33);
    f.curve = DUO_CURVE_P256;
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_REQUIRE(b != NULL);
    DUO_CHECK(b[5] == 4);
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(g.has_chkey && g.role == 0 && g.cert == NULL && g.curve == DUO_CURVE_P256 &&
              memcmp(g.chkey_pub, pub, 32) == 0);
    duo_secure_free(b);
    /* versions 1 and 2 carry no pin */
    f.has_chkey = 0;
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_CHECK(b[5] == 2);
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(!g.has_chkey);
    duo_secure_free(b);
    memcpy(f.q, g_q, 33);
    f.curve = DUO_CURVE_SECP256K1;
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_CHECK(b[5] == 1);
    DUO_CHECK_OK(duo__blob_decode(&g, b, len));
    DUO_CHECK(!g.has_chkey);
    duo_secure_free(b);
    duo_secure_free(b3);
}

/* A P-256 state through the public API: the key's curve, its PEM names
 * prime256v1, export gives back the same version-2 bytes; a P-256 blob
 * whose Q is not a P-256 point (a secp256k1 key's x that has no P-256
 * point) is refused whole. */
static void test_api_p256(void) {
    duo__blob_fields f;
    duo_device_ctx *ctx = NULL;
    uint8_t *b = NULL, *out = NULL, pk[33];
    size_t len = 0, out_len = 0;
    char pem[DUO_DEVICE_PUBKEY_PEM_MAX];
    size_t pem_len = sizeof pem;

    make_fields(&f, 1);
    memcpy(f.q, g_q256, 33);
    f.curve = DUO_CURVE_P256;
    DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
    DUO_CHECK_OK(duo_device_ctx_new(&ctx));
    DUO_CHECK(duo_device_curve(ctx) == 0); /* no key yet */
    DUO_CHECK_OK(duo_device_state_import(ctx, b, len));
    DUO_CHECK(duo_device_curve(ctx) == DUO_DEVICE_CURVE_P256);
    DUO_CHECK(strcmp(duo_device_curve_name(duo_device_curve(ctx)), "p256") == 0);
    DUO_EXPECT_ERR(duo_device_set_enroll_curve(ctx, DUO_DEVICE_CURVE_SECP256K1), DUO_E_EXISTS);
    DUO_CHECK_OK(duo_device_pubkey(ctx, pk));
    DUO_CHECK(memcmp(pk, g_q256, 33) == 0);
    DUO_CHECK_OK(duo_device_pubkey_pem(ctx, pem, &pem_len));
    {
        BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
        EVP_PKEY *k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        char name[64] = "";
        DUO_CHECK(k != NULL && EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, NULL));
        DUO_CHECK(strcmp(name, "prime256v1") == 0);
        EVP_PKEY_free(k);
        BIO_free(bio);
    }
    DUO_CHECK_OK(duo_device_state_export(ctx, &out, &out_len));
    DUO_CHECK(out_len == len && memcmp(out, b, len) == 0);
    duo_device_blob_free(out, out_len);
    duo_device_ctx_free(ctx);
    duo_secure_free(b);

    /* enrol curve choice: unknown curves refused, known ones accepted */
    DUO_CHECK_OK(duo_device_ctx_new(&ctx));
    DUO_EXPECT_ERR(duo_device_set_enroll_curve(ctx, 0), DUO_E_UNSUPPORTED);
    DUO_EXPECT_ERR(duo_device_set_enroll_curve(ctx, 3), DUO_E_UNSUPPORTED);
    DUO_CHECK_OK(duo_device_set_enroll_curve(ctx, DUO_DEVICE_CURVE_SECP256K1));
    DUO_CHECK(duo_device_curve_name(3) == NULL);

    /* a secp256k1 Q (whose x is off P-256, found by trying) in a P-256 blob */
    {
        int refused = 0, tried = 0;
        for (uint8_t k = 0; k < 64 && !refused; k++) {
            duo_ec *ec = NULL;
            duo_point pt;
            uint8_t q[33] = {0x02};
            q[32] = k;
            if (duo_ec_new(&ec, DUO_CURVE_P256, NULL) != DUO_OK) break;
            int off = duo_point_parse(ec, &pt, q, 33) == DUO_E_BAD_POINT;
            duo_ec_free(ec);
            if (!off) continue;
            tried++;
            memcpy(f.q, q, 33);
            DUO_CHECK_OK(duo__blob_encode(&b, &len, &f));
            refused = duo_device_state_import(ctx, b, len) == DUO_E_STATE_CORRUPT && !duo_device_has_key(ctx);
            duo_secure_free(b);
        }
        DUO_CHECK(tried > 0 && refused);
    }
    duo_device_ctx_free(ctx);
}

/* ---- public API ---- */

static uint8_t *valid_blob(size_t *len, int confirmed) {
    duo__blob_fields f;
    uint8_t *b = NULL;
    make_fields(&f, confirmed);
    if (duo__blob_encode(&b, len, &f) != DUO_OK) abort();
    return b;
}

static void test_api_import_export(void) {
    duo_device_ctx *ctx = NULL;
    uint8_t *b, *out = NULL, kid[16], pk[33];
    size_t len = 0, out_len = 0, i;
    char pem[DUO_DEVICE_PUBKEY_PEM_MAX];
    size_t pem_len = sizeof pem;
    const uint8_t *app;
    size_t app_len;
    int refused = 0;

    b = valid_blob(&len, 1);
    DUO_CHECK_OK(duo_device_ctx_new(&ctx));
    DUO_REQUIRE(ctx != NULL);
    /* Every truncation through the public API: refused, context untouched. */
    for (i = 0; i < len; i += 7) {
        if (duo_device_state_import(ctx, b, i) != DUO_E_STATE_CORRUPT) refused++;
        if (duo_device_has_key(ctx)) refused++;
    }
    DUO_CHECK(refused == 0);
    DUO_CHECK_OK(duo_device_state_import(ctx, b, len));
    DUO_CHECK(duo_device_has_key(ctx));
    DUO_CHECK(duo_device_is_confirmed(ctx));
    DUO_CHECK(!duo_device_state_dirty(ctx));
    DUO_EXPECT_ERR(duo_device_state_import(ctx, b, len), DUO_E_EXISTS);
    DUO_CHECK(strcmp(duo_device_server_address(ctx), "127.0.0.1:7443") == 0);
    DUO_CHECK_OK(duo_device_key_id(ctx, kid));
    DUO_CHECK(kid[0] == 1 && kid[15] == 16);
    DUO_CHECK_OK(duo_device_pubkey(ctx, pk));
    DUO_CHECK(memcmp(pk, g_q, 33) == 0);
    DUO_CHECK_OK(duo_device_pubkey_pem(ctx, pem, &pem_len));
    DUO_CHECK(strncmp(pem, "-----BEGIN PUBLIC KEY-----", 26) == 0);
    DUO_CHECK(pem_len == strlen(pem));
    DUO_CHECK_OK(duo_device_app_data(ctx, &app, &app_len));
    DUO_CHECK(app_len == 9 && memcmp(app, "app-bytes", 9) == 0);
    /* Export reproduces the same bytes. */
    DUO_CHECK_OK(duo_device_state_export(ctx, &out, &out_len));
    DUO_CHECK(out_len == len && memcmp(out, b, len) == 0);
    duo_device_blob_free(out, out_len);
    /* A change makes the state dirty; persisted needs a fresh export. */
    DUO_CHECK_OK(duo_device_set_app_data(ctx, (const uint8_t *)"x", 1));
    DUO_CHECK(duo_device_state_dirty(ctx));
    DUO_EXPECT_ERR(duo_device_state_persisted(ctx), DUO_E_MISUSE);
    DUO_CHECK_OK(duo_device_state_export(ctx, &out, &out_len));
    DUO_CHECK_OK(duo_device_state_persisted(ctx));
    DUO_CHECK(!duo_device_state_dirty(ctx));
    duo_device_blob_free(out, out_len);
    /* Precomputed Paillier factors: kept in memory, capped, never exported. */
    {
        unsigned avail = 0;
        uint8_t *e = NULL;
        size_t el = 0;
        DUO_CHECK_OK(duo_device_precompute(ctx, 3, &avail));
        DUO_CHECK(avail == 3);
        DUO_CHECK_OK(duo_device_precompute(ctx, 0, &avail));
        DUO_CHECK(avail == 3);
        DUO_CHECK_OK(duo_device_state_export(ctx, &e, &el));
        DUO_CHECK(el == out_len);
        duo_device_blob_free(e, el);
    }
    /* Offline calls that need a server fail cleanly without a transport. */
    {
        uint8_t sig[64], dg[32] = {1};
        DUO_EXPECT_ERR(duo_device_sign(ctx, sig, dg, (const uint8_t *)"1234", 4), DUO_E_MISUSE);
        DUO_CHECK(strlen(duo_device_errmsg(ctx)) > 0);
    }
    duo_device_ctx_free(ctx);

    /* An unconfirmed key cannot sign. */
    DUO_CHECK_OK(duo_device_ctx_new(&ctx));
    {
        uint8_t *u;
        size_t ul = 0;
        uint8_t sig[64], dg[32] = {1};
        u = valid_blob(&ul, 0);
        DUO_CHECK_OK(duo_device_state_import(ctx, u, ul));
        DUO_CHECK(!duo_device_is_confirmed(ctx));
        DUO_EXPECT_ERR(duo_device_sign(ctx, sig, dg, (const uint8_t *)"1234", 4), DUO_E_MISUSE);
        duo_secure_free(u);
    }
    duo_device_ctx_free(ctx);
    duo_secure_free(b);
}

/* The wrap hook: XOR with a key plus a 4-byte tag, as a stand-in for a
 * platform keystore. */
static int xwrap(void *user, uint8_t *out, size_t *out_len, const uint8_t *in, size_t in_len) {
    const uint8_t *k = user;
    size_t i;
    if (*out_len < in_len + 4) return DUO_E_BUFFER_TOO_SMALL;
    memcpy(out, "WRAP", 4);
    for (i = 0; i < in_len; i++) out[4 + i] = in[i] ^ k[i % 8];
    *out_len = in_len + 4;
    return DUO_OK;
}
static int xunwrap(void *user, uint8_t *out, size_t *out_len, const uint8_t *in, size_t in_len) {
    const uint8_t *k = user;
    size_t i;
    if (in_len < 4 || memcmp(in, "WRAP", 4) != 0 || *out_len < in_len - 4) return DUO_E_STATE_CORRUPT;
    for (i = 0; i < in_len - 4; i++) out[i] = in[4 + i] ^ k[i % 8];
    *out_len = in_len - 4;
    return DUO_OK;
}
static int failwrap(void *user, uint8_t *out, size_t *out_len, const uint8_t *in, size_t in_len) {
    (void)user, (void)out, (void)out_len, (void)in, (void)in_len;
    return DUO_E_PERMISSION;
}

static void test_wrap_hook(void) {
    static uint8_t key[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    duo_device_ctx *a = NULL, *c = NULL;
    uint8_t *b, *w = NULL;
    size_t len = 0, wl = 0;

    b = valid_blob(&len, 1);
    DUO_CHECK_OK(duo_device_ctx_new(&a));
    DUO_CHECK_OK(duo_device_ctx_new(&c));
    DUO_REQUIRE(a != NULL && c != NULL);
    DUO_EXPECT_ERR(duo_device_set_blob_wrap(a, xwrap, NULL, key), DUO_E_INVALID_ARG);
    DUO_CHECK_OK(duo_device_state_import(a, b, len));
    DUO_CHECK_OK(duo_device_set_blob_wrap(a, xwrap, xunwrap, key));
    DUO_CHECK_OK(duo_device_state_export(a, &w, &wl));
    DUO_CHECK(wl == len + 4 && memcmp(w, "WRAP", 4) == 0);
    /* Without the hook the wrapped blob is refused. */
    DUO_EXPECT_ERR(duo_device_state_import(c, w, wl), DUO_E_STATE_CORRUPT);
    DUO_CHECK_OK(duo_device_set_blob_wrap(c, xwrap, xunwrap, key));
    /* A flipped bit inside the wrapped bytes is caught by the inner digest. */
    w[100] ^= 0x10;
    DUO_EXPECT_ERR(duo_device_state_import(c, w, wl), DUO_E_STATE_CORRUPT);
    DUO_CHECK(!duo_device_has_key(c));
    w[100] ^= 0x10;
    DUO_CHECK_OK(duo_device_state_import(c, w, wl));
    DUO_CHECK(duo_device_has_key(c));
    duo_device_blob_free(w, wl);
    /* A failing wrap is passed through and exports nothing. */
    DUO_CHECK_OK(duo_device_set_blob_wrap(a, failwrap, xunwrap, key));
    w = (uint8_t *)1;
    DUO_EXPECT_ERR(duo_device_state_export(a, &w, &wl), DUO_E_PERMISSION);
    DUO_CHECK(w == NULL);
    duo_device_ctx_free(a);
    duo_device_ctx_free(c);
    duo_secure_free(b);
}

static void test_sig_to_der(void) {
    uint8_t sig[64], der[DUO_DEVICE_SIG_DER_MAX];
    size_t dl = sizeof der, small = 8;
    memset(sig, 0x7f, 64);
    DUO_CHECK_OK(duo_device_sig_to_der(der, &dl, sig));
    DUO_CHECK(der[0] == 0x30 && dl == 70);
    DUO_EXPECT_ERR(duo_device_sig_to_der(der, &small, sig), DUO_E_BUFFER_TOO_SMALL);
    memset(sig, 0, 32);
    dl = sizeof der;
    DUO_EXPECT_ERR(duo_device_sig_to_der(der, &dl, sig), DUO_E_INVALID_ARG);
}

/* Item 14 of issue 13: the version macros and call agree with the build. */
static void test_version(void) {
    char buf[32];
    DUO_CHECK(duo_device_version() == DUOSIGN_DEVICE_VERSION_NUMBER);
    DUO_CHECK(DUOSIGN_DEVICE_VERSION_NUMBER ==
              DUOSIGN_DEVICE_VERSION_MAJOR * 10000 + DUOSIGN_DEVICE_VERSION_MINOR * 100 + DUOSIGN_DEVICE_VERSION_PATCH);
    snprintf(buf, sizeof buf, "%d.%d.%d", DUOSIGN_DEVICE_VERSION_MAJOR, DUOSIGN_DEVICE_VERSION_MINOR,
             DUOSIGN_DEVICE_VERSION_PATCH);
    DUO_CHECK(strcmp(buf, DUOSIGN_DEVICE_VERSION_STRING) == 0);
    DUO_CHECK(strcmp(duo_device_version_string(), DUOSIGN_DEVICE_VERSION_STRING) == 0);
}

static int g_calls;
static int counting_transport(void *user, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                              size_t *resp_len, char *errmsg, size_t errmsg_cap) {
    (void)user, (void)method, (void)req, (void)req_len, (void)resp, (void)resp_len;
    g_calls++;
    snprintf(errmsg, errmsg_cap, "test transport: no server");
    return DUO_E_UNAVAILABLE;
}

/* Item 8 of issue 13: a new PIN shorter than DUO_DEVICE_PIN_MIN is refused
 * before anything is sent; the minimum is a usable PIN (it reaches the
 * transport). */
static void test_pin_minimum(void) {
    duo_device_ctx *ctx = NULL;
    static const uint8_t tok[] = "token-token-token";
    DUO_CHECK(DUO_DEVICE_PIN_MIN == 4);
    DUO_CHECK_OK(duo_device_ctx_new(&ctx));
    DUO_CHECK_OK(duo_device_set_transport(ctx, counting_transport, NULL, NULL));
    g_calls = 0;
    DUO_EXPECT_ERR(duo_device_enroll(ctx, "127.0.0.1:1", tok, sizeof tok - 1, (const uint8_t *)"1", 1, 2048),
                   DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_enroll(ctx, "127.0.0.1:1", tok, sizeof tok - 1, (const uint8_t *)"123", 3, 2048),
                   DUO_E_INVALID_ARG);
    DUO_CHECK(strstr(duo_device_errmsg(ctx), "at least") != NULL || strstr(duo_device_errmsg(ctx), "4 to") != NULL);
    DUO_CHECK(g_calls == 0);
    DUO_EXPECT_ERR(duo_device_enroll(ctx, "127.0.0.1:1", tok, sizeof tok - 1, (const uint8_t *)"1234", 4, 2048),
                   DUO_E_UNAVAILABLE);
    DUO_CHECK(g_calls == 1);
    duo_device_ctx_free(ctx);

    /* change-pin: a short new PIN is refused before the online PIN proof;
     * the old PIN is the cloud's to judge (any 1..64 bytes reach it). */
    {
        size_t len = 0;
        uint8_t *b = valid_blob(&len, 1);
        DUO_CHECK_OK(duo_device_ctx_new(&ctx));
        DUO_CHECK_OK(duo_device_state_import(ctx, b, len));
        DUO_CHECK_OK(duo_device_set_transport(ctx, counting_transport, NULL, NULL));
        g_calls = 0;
        DUO_EXPECT_ERR(duo_device_change_pin(ctx, (const uint8_t *)"2468", 4, (const uint8_t *)"12", 2),
                       DUO_E_INVALID_ARG);
        DUO_CHECK(g_calls == 0);
        DUO_EXPECT_ERR(duo_device_change_pin(ctx, (const uint8_t *)"2", 1, (const uint8_t *)"1234", 4),
                       DUO_E_UNAVAILABLE);
        DUO_CHECK(g_calls == 1);
        duo_device_ctx_free(ctx);
        duo_device_blob_free(b, len);
    }
}

/* Issue 13 item 6: revocation with the code and the citizen id, from a
 * context without a key: what goes on the wire, and what comes back. */
static int g_rv_calls;
static duo_revoke_req g_rv;
static duo_ch_static g_cloud_key; /* the test plays the cloud's channel key */

/* The request as the cloud sees it: the first contact's ChannelKey (plain),
 * then the Revoke sealed to that key, opened here as the cloud would. */
static int revoke_transport(void *user, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                            size_t *resp_len, char *errmsg, size_t errmsg_cap) {
    duo_ch_record rec;
    duo_channel ch;
    uint8_t *buf = NULL, *pt = NULL;
    size_t pt_len = 0;
    int r = DUO_E_INTERNAL;
    (void)user;
    if (strcmp(method, DUO_DEVICE_METHOD_PREFIX "ChannelKey") == 0)
        return duo_wire_build_channel_key_resp(resp, resp_len, g_cloud_key.id, g_cloud_key.pub);
    g_rv_calls++;
    if (strcmp(method, DUO_DEVICE_METHOD_PREFIX "Revoke") == 0 &&
        duo_wire_parse_sealed(&rec, &buf, req, req_len) == DUO_OK &&
        duo_ch_cloud_accept(&ch, &g_cloud_key, &rec) == DUO_OK &&
        duo_ch_open(&ch, &pt, &pt_len, "Revoke", &rec) == DUO_OK &&
        duo_wire_parse_revoke_req(&g_rv, pt, pt_len) == DUO_OK) {
        snprintf(errmsg, errmsg_cap, "refused by the test");
        r = DUO_E_UNAUTHENTICATED;
    }
    free(buf);
    free(pt);
    return r;
}

static void free_resp(void *user, uint8_t *resp, size_t len) {
    (void)user, (void)len;
    free(resp);
}

static void test_revoke_with_code(void) {
    duo_device_ctx *ctx = NULL;
    char long_code[DUO_DEVICE_REVOCATION_CODE_MAX + 2];
    memset(long_code, 'a', sizeof long_code - 1);
    long_code[sizeof long_code - 1] = '\0';
    DUO_CHECK_OK(duo_device_ctx_new(&ctx));
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, "carol", "abcd-efgh"), DUO_E_MISUSE); /* no transport */
    DUO_CHECK_OK(duo_ch_static_generate(&g_cloud_key, 3));
    DUO_CHECK_OK(duo_device_set_transport(ctx, revoke_transport, free_resp, NULL));
    g_rv_calls = 0;
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, "", "abcd"), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, "carol", ""), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, NULL, "abcd"), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, "carol", long_code), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, "car\nol", "abcd"), DUO_E_INVALID_ARG);
    DUO_CHECK(g_rv_calls == 0); /* nothing sent */
    DUO_EXPECT_ERR(duo_device_revoke_with_code(ctx, "carol", "abcd-efgh"), DUO_E_UNAUTHENTICATED);
    DUO_CHECK(g_rv_calls == 1);
    DUO_CHECK(g_rv.by_citizen == 1 && g_rv.has_mac == 0 && strcmp(g_rv.citizen_id, "carol") == 0 &&
              strcmp(g_rv.revocation_code, "abcd-efgh") == 0 && duo_ct_is_zero(g_rv.key_id, sizeof g_rv.key_id));
    DUO_CHECK(strcmp(duo_device_errmsg(ctx), "refused by the test") == 0);
    DUO_CHECK(!duo_device_has_key(ctx));
    duo_device_ctx_free(ctx);
}

int main(void) {
    fixture();
    DUO_RUN(test_roundtrip);
    DUO_RUN(test_truncation_and_bitflips);
    DUO_RUN(test_unknown_version);
    DUO_RUN(test_curve_versions);
    DUO_RUN(test_role_cert_v3);
    DUO_RUN(test_channel_v4);
    DUO_RUN(test_api_p256);
    DUO_RUN(test_api_import_export);
    DUO_RUN(test_wrap_hook);
    DUO_RUN(test_sig_to_der);
    DUO_RUN(test_version);
    DUO_RUN(test_pin_minimum);
    DUO_RUN(test_revoke_with_code);
    free(g_n);
    free(g_ckey);
    return duo_test_finish();
}
