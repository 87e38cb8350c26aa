/* Canonical transcript hashing over SHA-256 (DESIGN.md 3.1).
 *
 * Item encoding (transcript.h):
 *   type(1) || u32be(len(label)) || label || u64be(len(value)) || value
 * Concrete items:
 *   init(domain)      DOMAIN,    label = domain tag, value = empty
 *   bytes(l, v)       BYTES,     label l, value v
 *   u64(l, v)         U64,       label l, value = u64be(v) (8 bytes)
 *   point(l, P)       POINT,     label l, value = 33-byte compressed P on
 *                     secp256k1 (as before curves), curve id (1 byte) ||
 *                     compressed P on any other curve: a transcript of one
 *                     curve never equals one of another (DESIGN 8.1)
 *   scalar(l, s)      SCALAR,    label l, value = 32-byte big-endian s
 *   bn(l, v)          BIGNUM,    label l, value = minimal big-endian v (0 -> empty)
 *   binding(b)        BYTES "sid" (32 bytes), then U64 "role"
 *   challenge block i CHALLENGE, label = challenge label, value = u64be(i),
 *                     appended to a copy of the state; block i gives
 *                     out[32*i .. 32*i+31].
 * Errors (NULL arguments, OpenSSL failures) are stored in t->failed as a
 * DUO_E_* code and reported by digest/challenge. */
#include "duosign/transcript.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "duosign/mem.h"

static void duo__tr_fail(duo_transcript *t, int err) {
    if (t->failed == 0) {
        t->failed = err;
    }
}

static void duo__put_u32be(uint8_t out[4], uint32_t v) {
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

static void duo__put_u64be(uint8_t out[8], uint64_t v) {
    int i;
    for (i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

/* Hashes one item into md. Returns 1 on success. */
static int duo__md_item(EVP_MD_CTX *md, uint8_t type, const char *label, const uint8_t *v, size_t len) {
    uint8_t hdr[1 + 4];
    uint8_t vlen[8];
    size_t llen = strlen(label);

    if (llen > UINT32_MAX) {
        return 0;
    }
    hdr[0] = type;
    duo__put_u32be(hdr + 1, (uint32_t)llen);
    duo__put_u64be(vlen, (uint64_t)len);
    return EVP_DigestUpdate(md, hdr, sizeof hdr) == 1 && EVP_DigestUpdate(md, label, llen) == 1 &&
           EVP_DigestUpdate(md, vlen, sizeof vlen) == 1 && (len == 0 || EVP_DigestUpdate(md, v, len) == 1);
}

static void duo__tr_item(duo_transcript *t, uint8_t type, const char *label, const uint8_t *v, size_t len) {
    if (t == NULL) {
        return;
    }
    if (t->failed != 0) {
        return;
    }
    if (t->md == NULL) {
        duo__tr_fail(t, DUO_E_MISUSE);
        return;
    }
    if (label == NULL || (v == NULL && len != 0)) {
        duo__tr_fail(t, DUO_E_INVALID_ARG);
        return;
    }
    if (!duo__md_item((EVP_MD_CTX *)t->md, type, label, v, len)) {
        duo__tr_fail(t, DUO_E_INTERNAL);
    }
}

int duo_transcript_init(duo_transcript *t, const char *domain) {
    EVP_MD_CTX *md;

    if (t == NULL) {
        return DUO_E_INVALID_ARG;
    }
    t->md = NULL;
    t->failed = 0;
    if (domain == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((md = EVP_MD_CTX_new()) == NULL) {
        return DUO_E_NOMEM;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || !duo__md_item(md, DUO_TT_DOMAIN, domain, NULL, 0)) {
        EVP_MD_CTX_free(md);
        return DUO_E_INTERNAL;
    }
    t->md = md;
    return DUO_OK;
}

int duo_transcript_copy(duo_transcript *dst, const duo_transcript *src) {
    EVP_MD_CTX *md;

    if (dst == NULL || src == NULL || src->md == NULL) {
        return DUO_E_INVALID_ARG;
    }
    dst->md = NULL;
    dst->failed = 0;
    if ((md = EVP_MD_CTX_new()) == NULL) {
        return DUO_E_NOMEM;
    }
    if (EVP_MD_CTX_copy_ex(md, (const EVP_MD_CTX *)src->md) != 1) {
        EVP_MD_CTX_free(md);
        return DUO_E_INTERNAL;
    }
    dst->md = md;
    dst->failed = src->failed;
    return DUO_OK;
}

void duo_transcript_free(duo_transcript *t) {
    if (t == NULL) {
        return;
    }
    /* EVP_MD_CTX_free cleanses the hash state (it may hold committed secrets). */
    EVP_MD_CTX_free((EVP_MD_CTX *)t->md);
    t->md = NULL;
    t->failed = 0;
}

void duo_transcript_bytes(duo_transcript *t, const char *label, const uint8_t *v, size_t len) {
    duo__tr_item(t, DUO_TT_BYTES, label, v, len);
}

void duo_transcript_u64(duo_transcript *t, const char *label, uint64_t v) {
    uint8_t b[8];
    duo__put_u64be(b, v);
    duo__tr_item(t, DUO_TT_U64, label, b, sizeof b);
}

void duo_transcript_point(duo_transcript *t, const duo_ec *ec, const char *label, const duo_point *p) {
    uint8_t b[1 + DUO_POINT_BYTES];
    if (t == NULL) {
        return;
    }
    if (ec == NULL || p == NULL) {
        duo__tr_fail(t, DUO_E_INVALID_ARG);
        return;
    }
    b[0] = (uint8_t)duo_ec_curve(ec);
    duo_point_serialize(ec, b + 1, p);
    /* secp256k1 keeps the pre-curve encoding, so its transcripts (and the
     * test vectors) are unchanged */
    if (duo_ec_curve(ec) == DUO_CURVE_SECP256K1) {
        duo__tr_item(t, DUO_TT_POINT, label, b + 1, DUO_POINT_BYTES);
    } else {
        duo__tr_item(t, DUO_TT_POINT, label, b, sizeof b);
    }
}

void duo_transcript_scalar(duo_transcript *t, const char *label, const duo_scalar *s) {
    if (t == NULL) {
        return;
    }
    if (s == NULL) {
        duo__tr_fail(t, DUO_E_INVALID_ARG);
        return;
    }
    duo__tr_item(t, DUO_TT_SCALAR, label, s->b, sizeof s->b);
}

void duo_transcript_bn(duo_transcript *t, const char *label, const BIGNUM *v) {
    uint8_t stackbuf[512];
    uint8_t *buf = stackbuf;
    int n;

    if (t == NULL) {
        return;
    }
    if (v == NULL || BN_is_negative(v)) {
        duo__tr_fail(t, DUO_E_INVALID_ARG);
        return;
    }
    n = BN_num_bytes(v); /* 0 for zero: the empty string */
    if ((size_t)n > sizeof stackbuf) {
        /* Transient copy of a (possibly secret) value; wiped below. */
        if ((buf = malloc((size_t)n)) == NULL) {
            duo__tr_fail(t, DUO_E_NOMEM);
            return;
        }
    }
    if (n > 0 && BN_bn2binpad(v, buf, n) != n) {
        duo__tr_fail(t, DUO_E_INTERNAL);
    } else {
        duo__tr_item(t, DUO_TT_BIGNUM, label, buf, (size_t)n);
    }
    duo_memzero(buf, (size_t)n);
    if (buf != stackbuf) {
        free(buf);
    }
}

void duo_transcript_binding(duo_transcript *t, const duo_binding *bind) {
    if (t == NULL) {
        return;
    }
    if (bind == NULL) {
        duo__tr_fail(t, DUO_E_INVALID_ARG);
        return;
    }
    duo_transcript_bytes(t, "sid", bind->sid, sizeof bind->sid);
    duo_transcript_u64(t, "role", (uint64_t)bind->role);
}

int duo_transcript_digest(duo_transcript *t, uint8_t out[32]) {
    unsigned int len = 0;

    if (t == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (t->failed != 0) {
        return t->failed;
    }
    if (t->md == NULL) {
        return DUO_E_MISUSE;
    }
    if (EVP_DigestFinal_ex((EVP_MD_CTX *)t->md, out, &len) != 1 || len != 32) {
        duo_memzero(out, 32);
        t->failed = DUO_E_INTERNAL;
        return DUO_E_INTERNAL;
    }
    /* Spent: any further append or digest reports misuse. */
    t->failed = DUO_E_MISUSE;
    return DUO_OK;
}

int duo_transcript_challenge(const duo_transcript *t, const char *label, uint8_t *out, size_t len) {
    EVP_MD_CTX *md = NULL;
    uint8_t block[32];
    uint8_t ctr[8];
    unsigned int blen = 0;
    uint64_t i;
    size_t off = 0;
    int r = DUO_E_INTERNAL;

    if (t == NULL || label == NULL || (out == NULL && len != 0)) {
        return DUO_E_INVALID_ARG;
    }
    if (t->failed != 0) {
        return t->failed;
    }
    if (t->md == NULL) {
        return DUO_E_MISUSE;
    }
    if ((md = EVP_MD_CTX_new()) == NULL) {
        return DUO_E_NOMEM;
    }
    for (i = 0; off < len; i++) {
        size_t take = len - off < 32 ? len - off : 32;
        duo__put_u64be(ctr, i);
        /* Work on a copy so the caller's transcript continues unchanged. */
        if (EVP_MD_CTX_copy_ex(md, (const EVP_MD_CTX *)t->md) != 1 ||
            !duo__md_item(md, DUO_TT_CHALLENGE, label, ctr, sizeof ctr) || EVP_DigestFinal_ex(md, block, &blen) != 1 ||
            blen != 32) {
            r = DUO_E_INTERNAL;
            goto out;
        }
        memcpy(out + off, block, take);
        off += take;
    }
    r = DUO_OK;
out:
    duo_memzero(block, sizeof block);
    EVP_MD_CTX_free(md);
    if (r != DUO_OK && out != NULL) {
        duo_memzero(out, len);
    }
    return r;
}
