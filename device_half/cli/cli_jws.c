/* duosign CLI: the compact JWS pieces sign --format jws writes and verify
 * reads: base64url (RFC 7515), the alg of a key's curve, the signing input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding (RFC 7515 section 2). Returns malloc'd text. */
char *b64url_encode(const uint8_t *in, size_t len) {
    size_t cap = (len + 2) / 3 * 4 + 1, i, o = 0;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64url_val(char c) {
    const char *p = (c == '\0') ? NULL : strchr(b64url_alphabet, c);
    return p ? (int)(p - b64url_alphabet) : -1;
}

/* Strict decode (no padding, canonical trailing bits). Returns 0 or -1. */
int b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len) {
    size_t i, o = 0;
    uint8_t *buf;
    uint32_t acc = 0;
    int bits = 0;
    if (len % 4 == 1) return -1;
    if ((buf = malloc(len * 3 / 4 + 1)) == NULL) return -1;
    for (i = 0; i < len; i++) {
        int v = b64url_val(in[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* The JWS alg of a key's curve: ES256 (RFC 7518 3.4) for P-256, ES256K
 * (RFC 8812) for secp256k1; NULL for anything else. */
const char *jws_alg_of(int curve) {
    return curve == DUO_DEVICE_CURVE_P256 ? "ES256" : curve == DUO_DEVICE_CURVE_SECP256K1 ? "ES256K" : NULL;
}

/* signing input = b64url(header) "." b64url(doc) */
char *jws_signing_input(const char *alg, const uint8_t *doc, size_t doc_len) {
    char header[64];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JOSE\"}", alg);
    char *h = b64url_encode((const uint8_t *)header, strlen(header));
    char *p = b64url_encode(doc, doc_len);
    char *si = NULL;
    if (h != NULL && p != NULL && (si = malloc(strlen(h) + strlen(p) + 2)) != NULL) {
        sprintf(si, "%s.%s", h, p);
    }
    free(h);
    free(p);
    return si;
}
