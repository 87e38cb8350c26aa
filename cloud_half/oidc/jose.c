/* duosign-oidc: JOSE on OpenSSL (jose.h). */
#include "jose.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "duosign/mem.h"

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void jose_b64url(char *out, size_t cap, const uint8_t *in, size_t len) {
    size_t o = 0, i;
    if (cap == 0) return;
    if ((len * 4 + 2) / 3 + 1 > cap) {
        out[0] = '\0';
        return;
    }
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
        out[o++] = b64u[v >> 6 & 63];
        out[o++] = b64u[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
        out[o++] = b64u[v >> 6 & 63];
    }
    out[o] = '\0';
}

static int b64u_val(char c) {
    const char *p = c ? strchr(b64u, c) : NULL;
    return p ? (int)(p - b64u) : -1;
}

long jose_b64url_decode(uint8_t *out, size_t cap, const char *in, size_t in_len) {
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (in_len % 4 == 1) return -1;
    for (size_t i = 0; i < in_len; i++) {
        int v = b64u_val(in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)o;
}

/* x and y of a P-256 key, 32 bytes each. */
static int ec_xy(EVP_PKEY *pk, uint8_t xy[64]) {
    uint8_t pt[65];
    size_t n = 0;
    if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt, &n) != 1 || n != 65 || pt[0] != 4)
        return DUO_E_INTERNAL;
    memcpy(xy, pt + 1, 64);
    return DUO_OK;
}

int jose_jwk_public(EVP_PKEY *pk, char *kid, size_t kid_cap, char *jwk, size_t jwk_cap) {
    uint8_t xy[64], th[32];
    char x[48], y[48], canon[256];
    int r = ec_xy(pk, xy);
    if (r != DUO_OK) return r;
    jose_b64url(x, sizeof x, xy, 32);
    jose_b64url(y, sizeof y, xy + 32, 32);
    /* RFC 7638: the required members in lexicographic order, no white space. */
    snprintf(canon, sizeof canon, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}", x, y);
    SHA256((const unsigned char *)canon, strlen(canon), th);
    jose_b64url(kid, kid_cap, th, sizeof th);
    if ((size_t)snprintf(
            jwk, jwk_cap,
            "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\",\"use\":\"sig\",\"alg\":\"ES256\","
            "\"kid\":\"%s\"}",
            x, y, kid) >= jwk_cap)
        return DUO_E_BUFFER_TOO_SMALL;
    return DUO_OK;
}

/* DER ECDSA signature -> r || s (JWS form). */
static int der_to_raw(const unsigned char *der, size_t len, uint8_t raw[64]) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    int ok = sig != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) == 32 &&
             BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

static int raw_to_der(const uint8_t raw[64], unsigned char **der, int *len) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    *der = NULL;
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return DUO_E_NOMEM;
    }
    *len = i2d_ECDSA_SIG(sig, der);
    ECDSA_SIG_free(sig);
    return *len > 0 ? DUO_OK : DUO_E_INTERNAL;
}

char *jose_sign_es256(EVP_PKEY *pk, const char *kid, json_t *claims) {
    json_t *hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", "JWT", "kid", kid);
    char *h = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL, *p = json_dumps(claims, JSON_COMPACT), *out = NULL;
    unsigned char der[80];
    uint8_t raw[64];
    size_t dl = sizeof der, hl, pl, n;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (h == NULL || p == NULL || md == NULL) goto out;
    hl = strlen(h);
    pl = strlen(p);
    n = (hl + pl) * 4 / 3 + 8 + 90;
    if ((out = malloc(n)) == NULL) goto out;
    jose_b64url(out, n, (const uint8_t *)h, hl);
    size_t o = strlen(out);
    out[o++] = '.';
    jose_b64url(out + o, n - o, (const uint8_t *)p, pl);
    o += strlen(out + o);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
        EVP_DigestSign(md, der, &dl, (const unsigned char *)out, o) != 1 || der_to_raw(der, dl, raw) != DUO_OK) {
        free(out);
        out = NULL;
        goto out;
    }
    out[o++] = '.';
    jose_b64url(out + o, n - o, raw, 64);
out:
    EVP_MD_CTX_free(md);
    free(h);
    free(p);
    json_decref(hdr);
    return out;
}

/* Decodes one base64url JSON part. */
static json_t *part_json(const char *b, size_t len) {
    uint8_t *buf = malloc(len);
    long n = buf ? jose_b64url_decode(buf, len, b, len) : -1;
    json_t *j = n > 0 ? json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(buf);
    return json_is_object(j) ? j : (json_decref(j), NULL);
}

int jose_verify_es256(const char *jws, const char *pem, json_t **claims) {
    const char *d1 = strchr(jws, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    json_t *hdr = NULL;
    uint8_t raw[64];
    unsigned char *der = NULL;
    int dl = 0, r = DUO_E_DECODE;
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *md = NULL;
    *claims = NULL;
    if (d1 == NULL || d2 == NULL || strchr(d2 + 1, '.') != NULL) goto out;
    if ((hdr = part_json(jws, (size_t)(d1 - jws))) == NULL) goto out;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (alg == NULL || strcmp(alg, "ES256") != 0) goto out; /* only ES256: no "none", no HMAC confusion */
    if (jose_b64url_decode(raw, sizeof raw, d2 + 1, strlen(d2 + 1)) != 64) goto out;
    r = DUO_E_BAD_SIGNATURE;
    if ((bio = BIO_new_mem_buf(pem, -1)) == NULL || (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL ||
        raw_to_der(raw, &der, &dl) != DUO_OK || (md = EVP_MD_CTX_new()) == NULL)
        goto out;
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
        EVP_DigestVerify(md, der, (size_t)dl, (const unsigned char *)jws, (size_t)(d2 - jws)) != 1)
        goto out;
    r = (*claims = part_json(d1 + 1, (size_t)(d2 - d1 - 1))) ? DUO_OK : DUO_E_DECODE;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    EVP_PKEY_free(pk);
    BIO_free(bio);
    json_decref(hdr);
    return r;
}

static void put_lp(uint8_t *buf, size_t *o, const char *s) {
    size_t n = strlen(s);
    buf[(*o)++] = (uint8_t)(n >> 24);
    buf[(*o)++] = (uint8_t)(n >> 16);
    buf[(*o)++] = (uint8_t)(n >> 8);
    buf[(*o)++] = (uint8_t)n;
    memcpy(buf + *o, s, n);
    *o += n;
}

int jose_pairwise_sub(char *out, size_t cap, const uint8_t secret[32], const char *sector, const char *citizen_id) {
    size_t sl = strlen(sector), cl = strlen(citizen_id), o = 0;
    uint8_t mac[32], *buf;
    unsigned ml = 0;
    if (sl > 4096 || cl > 4096 || (buf = malloc(sl + cl + 8)) == NULL) return DUO_E_INVALID_ARG;
    /* Length-prefixed so ("ab","c") and ("a","bc") differ. */
    put_lp(buf, &o, sector);
    put_lp(buf, &o, citizen_id);
    int ok = HMAC(EVP_sha256(), secret, 32, buf, o, mac, &ml) != NULL && ml == 32;
    free(buf);
    if (!ok) return DUO_E_INTERNAL;
    jose_b64url(out, cap, mac, 32);
    return DUO_OK;
}

void jose_s256(char *out, size_t cap, const char *s) {
    uint8_t h[32];
    SHA256((const unsigned char *)s, strlen(s), h);
    jose_b64url(out, cap, h, 32);
}
