/* duosign-cloud: small helpers (codes, hex, time, lock policy parsing). */
#include "daemon.h"

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

/* ------------------------------------------------------ lock policy */

void duo__lock_policy_default(duo_lock_policy *p) {
    memset(p, 0, sizeof *p);
    p->steps[0] = (duo_lock_step){3, 3 * 3600};
    p->steps[1] = (duo_lock_step){6, 24 * 3600};
    p->steps[2] = (duo_lock_step){9, DUO_LOCK_REVOKE};
    p->n = 3;
}

int duo__lock_policy_parse(duo_lock_policy *p, const char *s, char *err, size_t cap) {
    duo_lock_policy tmp;
    memset(&tmp, 0, sizeof tmp);
    const char *q = s;
    if (!s || !*s) goto bad;
    while (*q) {
        if (tmp.n == DUO_LOCK_STEPS_MAX) goto bad;
        char *end;
        unsigned long f = strtoul(q, &end, 10);
        if (end == q || *end != ':' || f == 0 || f > 1000) goto bad;
        q = end + 1;
        int64_t secs;
        if (strncmp(q, "revoke", 6) == 0) {
            secs = DUO_LOCK_REVOKE;
            q += 6;
        } else {
            unsigned long long v = strtoull(q, &end, 10);
            if (end == q || v == 0) goto bad;
            unsigned long long mul = 1;
            if (*end == 's')
                end++;
            else if (*end == 'm') {
                mul = 60;
                end++;
            } else if (*end == 'h') {
                mul = 3600;
                end++;
            } else if (*end == 'd') {
                mul = 86400;
                end++;
            }
            if (v > 100ULL * 365 * 86400 / mul) goto bad;
            secs = (int64_t)(v * mul);
            q = end;
        }
        if (tmp.n > 0 && (f <= tmp.steps[tmp.n - 1].failures || tmp.steps[tmp.n - 1].seconds == DUO_LOCK_REVOKE))
            goto bad;
        tmp.steps[tmp.n++] = (duo_lock_step){(uint32_t)f, secs};
        if (*q == ',') {
            q++;
            if (!*q) goto bad;
        } else if (*q) {
            goto bad;
        }
    }
    *p = tmp;
    return DUO_OK;
bad:
    snprintf(err, cap,
             "bad --lock-policy '%s': expected FAILURES:DURATION[,...] with increasing FAILURES, "
             "DURATION in seconds (or with s/m/h/d) or 'revoke' (last), e.g. 3:10800,6:86400,9:revoke",
             s ? s : "");
    return DUO_E_INVALID_ARG;
}

const duo_lock_step *duo__lock_policy_step(const duo_lock_policy *p, uint32_t failures) {
    for (size_t i = 0; i < p->n; i++)
        if (p->steps[i].failures == failures) return &p->steps[i];
    return NULL;
}

uint32_t duo__lock_policy_left(const duo_lock_policy *p, uint32_t failures) {
    for (size_t i = 0; i < p->n; i++)
        if (p->steps[i].failures > failures) return p->steps[i].failures - failures;
    return 0;
}
