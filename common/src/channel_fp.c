/* duosign: the channel key's fingerprint in the enrolment token
 * (channel_fp.h). */
#include "duosign/channel_fp.h"

#include <string.h>

#include <openssl/evp.h>

#include "duosign/mem.h"

int duo_ch_fingerprint(uint8_t out[DUO_CH_FP_BYTES], const uint8_t pub[DUO_CH_PUB_BYTES]) {
    uint8_t h[32];
    unsigned int n = 0;
    if (out == NULL || pub == NULL) return DUO_E_INVALID_ARG;
    if (EVP_Digest(pub, DUO_CH_PUB_BYTES, h, &n, EVP_sha256(), NULL) != 1 || n != sizeof h) return DUO_E_INTERNAL;
    memcpy(out, h, DUO_CH_FP_BYTES);
    return DUO_OK;
}

int duo_ch_fingerprint_hex(char out[DUO_CH_FP_HEX + 1], const uint8_t pub[DUO_CH_PUB_BYTES]) {
    static const char digits[] = "0123456789abcdef";
    uint8_t fp[DUO_CH_FP_BYTES];
    int r;
    if (out == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo_ch_fingerprint(fp, pub)) != DUO_OK) return r;
    for (size_t i = 0; i < DUO_CH_FP_BYTES; i++) {
        out[2 * i] = digits[fp[i] >> 4];
        out[2 * i + 1] = digits[fp[i] & 15];
    }
    out[DUO_CH_FP_HEX] = '\0';
    return DUO_OK;
}

/* A lowercase hex digit's value, or -1 (uppercase is refused: one spelling
 * per token, as printed). */
static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int duo_ch_token_fingerprint(uint8_t fp[DUO_CH_FP_BYTES], int *has, const uint8_t *token, size_t token_len) {
    const uint8_t *dot;
    if (fp == NULL || has == NULL || token == NULL) return DUO_E_INVALID_ARG;
    *has = 0;
    if ((dot = memchr(token, DUO_CH_FP_SEP, token_len)) == NULL) return DUO_OK; /* a token from before */
    size_t code_len = (size_t)(dot - token), rest = token_len - code_len - 1;
    if (code_len == 0 || rest != DUO_CH_FP_HEX) return DUO_E_CHANNEL_FP_MALFORMED;
    for (size_t i = 0; i < DUO_CH_FP_BYTES; i++) {
        int hi = hexval(dot[1 + 2 * i]), lo = hexval(dot[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            duo_memzero(fp, DUO_CH_FP_BYTES);
            return DUO_E_CHANNEL_FP_MALFORMED;
        }
        fp[i] = (uint8_t)(hi << 4 | lo);
    }
    *has = 1;
    return DUO_OK;
}

int duo_ch_fingerprint_check(const uint8_t fp[DUO_CH_FP_BYTES], const uint8_t pub[DUO_CH_PUB_BYTES]) {
    uint8_t want[DUO_CH_FP_BYTES];
    int r;
    if (fp == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo_ch_fingerprint(want, pub)) != DUO_OK) return r;
    return duo_ct_eq(want, fp, DUO_CH_FP_BYTES) ? DUO_OK : DUO_E_CHANNEL_FINGERPRINT;
}
