/* duosign device library: the state blob codec (see blob.h). */
#include "blob.h"

#include <string.h>

#include <openssl/sha.h>

#include "duosign/curve.h"
#include "duosign/mem.h"

#define DUO__BLOB_HEADER 12u
#define DUO__BLOB_HASH 32u

static int bits_ok(uint32_t bits) { return bits == 2048u || bits == 3072u; }

static void put16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static uint32_t get16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static uint32_t get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

int duo__blob_encode(uint8_t **out, size_t *out_len, const duo__blob_fields *f) {
    size_t nb, total, off = 0;
    uint8_t *b;

    if (out == NULL || out_len == NULL || f == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    *out_len = 0;
    if (!bits_ok(f->paillier_bits) || f->n == NULL || f->ckey == NULL) return DUO_E_INVALID_ARG;
    if (f->address_len > DUO__BLOB_ADDRESS_MAX || f->app_len > DUO__BLOB_APP_MAX) return DUO_E_INVALID_ARG;
    if ((f->address_len && f->address == NULL) || (f->app_len && f->app == NULL)) return DUO_E_INVALID_ARG;
    if (f->flags & ~DUO__BLOB_FLAGS_KNOWN) return DUO_E_INVALID_ARG;
    if (f->curve != 0 && !duo_curve_valid(f->curve)) return DUO_E_INVALID_ARG;
    if (f->role < 0 || f->role >= DUO_KEY_ROLE_COUNT || f->cert_len > DUO__BLOB_CERT_MAX ||
        (f->cert_len && f->cert == NULL))
        return DUO_E_INVALID_ARG;
    /* the newest version that the fields need: v4 (v3 + the pinned channel
     * key) whenever a key is pinned, v3 for a role or a certificate */
    int v4 = f->has_chkey;
    int v3 = v4 || f->role != 0 || f->cert_len != 0;
    int v1 = !v3 && (f->curve == 0 || f->curve == DUO_CURVE_SECP256K1);
    int curve = f->curve != 0 ? f->curve : DUO_CURVE_SECP256K1;
    uint32_t version = v4   ? DUO__BLOB_VERSION_CHANNEL
                       : v3 ? DUO__BLOB_VERSION_CERT
                       : v1 ? DUO__BLOB_VERSION
                            : DUO__BLOB_VERSION_CURVE;
    nb = f->paillier_bits / 8u;
    total = DUO__BLOB_HEADER + 16 + 32 + 16 + 33 + (v1 ? 0 : 2) + (v3 ? 2 : 0) + 4 + nb + 2 * nb + 32 + 32 + 2 +
            f->address_len + 4 + f->app_len + (v3 ? 4 + f->cert_len : 0) + (v4 ? 4 + 32 : 0) + DUO__BLOB_HASH;
    if ((b = duo_secure_malloc(total)) == NULL) return DUO_E_NOMEM;

    memcpy(b, DUO__BLOB_MAGIC, 4);
    put16(b + 4, version);
    put16(b + 6, f->flags);
    put32(b + 8, (uint32_t)total);
    off = DUO__BLOB_HEADER;
#define PUT(src, len)                  \
    do {                               \
        memcpy(b + off, (src), (len)); \
        off += (len);                  \
    } while (0)
    PUT(f->key_id, 16);
    PUT(f->x2_masked, 32);
    PUT(f->pin_salt, 16);
    PUT(f->q, 33);
    if (!v1) {
        put16(b + off, (uint32_t)curve);
        off += 2;
    }
    if (v3) {
        put16(b + off, (uint32_t)f->role);
        off += 2;
    }
    put32(b + off, f->paillier_bits);
    off += 4;
    PUT(f->n, nb);
    PUT(f->ckey, 2 * nb);
    PUT(f->device_secret, 32);
    PUT(f->sid, 32);
    put16(b + off, (uint32_t)f->address_len);
    off += 2;
    if (f->address_len) PUT(f->address, f->address_len);
    put32(b + off, (uint32_t)f->app_len);
    off += 4;
    if (f->app_len) PUT(f->app, f->app_len);
    if (v3) {
        put32(b + off, (uint32_t)f->cert_len);
        off += 4;
        if (f->cert_len) PUT(f->cert, f->cert_len);
    }
    if (v4) {
        put32(b + off, f->chkey_number);
        off += 4;
        PUT(f->chkey_pub, 32);
    }
#undef PUT
    SHA256(b, off, b + off);
    off += DUO__BLOB_HASH;
    *out = b;
    *out_len = off;
    return DUO_OK;
}

int duo__blob_decode(duo__blob_fields *f, const uint8_t *in, size_t in_len) {
    uint8_t h[32];
    size_t off, end, nb, len;
    uint32_t bits;

    if (f == NULL) return DUO_E_INVALID_ARG;
    memset(f, 0, sizeof *f);
    if (in == NULL) return DUO_E_STATE_CORRUPT;
    /* Envelope first: magic, version, exact length, digest. Nothing is read
     * from the body before the digest matched. */
    if (in_len < DUO__BLOB_HEADER + DUO__BLOB_HASH || in_len > (size_t)64 * 1024 * 1024) return DUO_E_STATE_CORRUPT;
    if (!duo_ct_eq(in, DUO__BLOB_MAGIC, 4)) return DUO_E_STATE_CORRUPT;
    uint32_t version = get16(in + 4);
    if (version != DUO__BLOB_VERSION && version != DUO__BLOB_VERSION_CURVE && version != DUO__BLOB_VERSION_CERT &&
        version != DUO__BLOB_VERSION_CHANNEL)
        return DUO_E_STATE_CORRUPT;
    if (get32(in + 8) != in_len) return DUO_E_STATE_CORRUPT;
    end = in_len - DUO__BLOB_HASH;
    SHA256(in, end, h);
    if (!duo_ct_eq(h, in + end, 32)) return DUO_E_STATE_CORRUPT;

    f->flags = (uint16_t)get16(in + 6);
    if (f->flags & ~DUO__BLOB_FLAGS_KNOWN) goto corrupt;
    off = DUO__BLOB_HEADER;
#define NEED(n)                            \
    do {                                   \
        if ((n) > end - off) goto corrupt; \
    } while (0)
#define GET(dst, n)                   \
    do {                              \
        NEED(n);                      \
        memcpy((dst), in + off, (n)); \
        off += (n);                   \
    } while (0)
    GET(f->key_id, 16);
    GET(f->x2_masked, 32);
    GET(f->pin_salt, 16);
    GET(f->q, 33);
    f->curve = DUO_CURVE_SECP256K1; /* version 1: written before curves */
    if (version == DUO__BLOB_VERSION_CURVE) {
        NEED(2);
        f->curve = (int)get16(in + off);
        off += 2;
        /* version 2 is only written for curves other than secp256k1 */
        if (!duo_curve_valid(f->curve) || f->curve == DUO_CURVE_SECP256K1) goto corrupt;
    } else if (version != DUO__BLOB_VERSION) {
        /* versions 3 and 4: the curve whatever it is, then the role */
        NEED(4);
        f->curve = (int)get16(in + off);
        f->role = (int)get16(in + off + 2);
        off += 4;
        if (!duo_curve_valid(f->curve) || f->role >= DUO_KEY_ROLE_COUNT) goto corrupt;
    }
    NEED(4);
    bits = get32(in + off);
    off += 4;
    if (!bits_ok(bits)) goto corrupt;
    f->paillier_bits = bits;
    nb = bits / 8u;
    NEED(nb);
    f->n = in + off;
    off += nb;
    NEED(2 * nb);
    f->ckey = in + off;
    off += 2 * nb;
    GET(f->device_secret, 32);
    GET(f->sid, 32);
    NEED(2);
    len = get16(in + off);
    off += 2;
    if (len > DUO__BLOB_ADDRESS_MAX) goto corrupt;
    NEED(len);
    f->address = (const char *)(in + off);
    f->address_len = len;
    off += len;
    NEED(4);
    len = get32(in + off);
    off += 4;
    if (len > DUO__BLOB_APP_MAX) goto corrupt;
    NEED(len);
    f->app = in + off;
    f->app_len = len;
    off += len;
    if (version >= DUO__BLOB_VERSION_CERT) {
        NEED(4);
        len = get32(in + off);
        off += 4;
        if (len > DUO__BLOB_CERT_MAX) goto corrupt;
        NEED(len);
        f->cert = len ? in + off : NULL;
        f->cert_len = len;
        off += len;
        /* version 3 is only written for a role or a certificate */
        if (version == DUO__BLOB_VERSION_CERT && f->role == 0 && len == 0) goto corrupt;
    }
    if (version == DUO__BLOB_VERSION_CHANNEL) {
        NEED(4 + 32);
        f->chkey_number = get32(in + off);
        off += 4;
        memcpy(f->chkey_pub, in + off, 32);
        off += 32;
        f->has_chkey = 1;
    }
    if (off != end) goto corrupt;
#undef GET
#undef NEED
    return DUO_OK;
corrupt:
    duo_memzero(f, sizeof *f);
    return DUO_E_STATE_CORRUPT;
}
