/* duosign-cloud: small helpers (codes, hex, time, call trailers). */
#include "daemon.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "duosign/mem.h"
#include "duosign/rng.h"

/* Branch-free nibble -> '0'..'9','a'..'f' (wireguard encoding.c style). */
static char hex_digit(unsigned n) {
    int v = (int)n;
    return (char)(v + '0' + (((9 - v) >> 8) & ('a' - '0' - 10)));
}

void duo__hex(char *out, const uint8_t *in, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digit(in[i] >> 4);
        out[2 * i + 1] = hex_digit(in[i] & 15u);
    }
    out[2 * n] = '\0';
}

static int unhex_digit(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int duo__unhex(uint8_t *out, size_t n, const char *in) {
    if (!in || strlen(in) != 2 * n) return DUO_E_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        int hi = unhex_digit(in[2 * i]), lo = unhex_digit(in[2 * i + 1]);
        if (hi < 0 || lo < 0) return DUO_E_INVALID_ARG;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return DUO_OK;
}

/* Branch-free 5-bit value -> 'a'..'z' (0..25), '2'..'7' (26..31). */
static char b32_digit(unsigned n) {
    int v = (int)n;
    return (char)(v + 'a' + (((25 - v) >> 8) & ('2' - 'a' - 26)));
}

int duo__random_code(char *out, size_t out_cap, size_t nbytes, size_t group) {
    uint8_t buf[64];
    if (nbytes == 0 || nbytes > sizeof buf) return DUO_E_INVALID_ARG;
    size_t nchars = (nbytes * 8 + 4) / 5;
    size_t need = nchars + (group ? (nchars - 1) / group : 0) + 1;
    if (out_cap < need) return DUO_E_BUFFER_TOO_SMALL;
    int r = duo_rng_bytes(NULL, buf, nbytes);
    if (r != DUO_OK) return r;
    size_t o = 0;
    for (size_t i = 0; i < nchars; i++) {
        size_t bit = i * 5;
        unsigned v = 0;
        for (size_t b = 0; b < 5; b++) {
            size_t k = bit + b;
            unsigned x = k < nbytes * 8 ? (buf[k / 8] >> (7 - k % 8)) & 1u : 0u;
            v = v << 1 | x;
        }
        if (group && i > 0 && i % group == 0) out[o++] = '-';
        out[o++] = b32_digit(v);
    }
    out[o] = '\0';
    duo_memzero(buf, sizeof buf);
    return DUO_OK;
}

void duo__fmt_time(char *out, size_t cap, int64_t t) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, cap, "%lld", (long long)t);
}

/* ------------------------------------------------------ call answers */

void duo__trailer_i64(duo_call_info *info, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    if (duo_call_info_add_trailer(info, key, buf) != DUO_OK) { /* full: the message still says it */
    }
}

const char *duo__result_name(int code) {
    const char *n = duo_err_name(code);
    return strncmp(n, "DUO_", 4) == 0 ? n + 4 : n;
}
