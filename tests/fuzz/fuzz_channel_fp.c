/* libFuzzer target: the enrolment token's fingerprint parser
 * (duo_ch_token_fingerprint, issue 12).
 *
 * Input: a token as the user types or pastes it. Properties:
 *   - the result is DUO_OK or DUO_E_CHANNEL_FP_MALFORMED, nothing else;
 *   - no '.' in the token: OK without a fingerprint;
 *   - OK with a fingerprint exactly when the token is a non-empty code and
 *     its first '.' is followed by exactly 32 lowercase hex digits (so no
 *     second '.': "a '.' not followed by exactly 32 ..." is malformed); then
 *     the 16 bytes printed back as lowercase hex give those 32 digits.
 * The reference below is written from the header's words, not the code. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/channel_fp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
    fprintf(stderr, "fuzz_channel_fp: %s\n", what);
    abort();
}

static int is_lower_hex(uint8_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* -1: no '.', 1: well formed with a fingerprint, 0: malformed. */
static int reference(const uint8_t *t, size_t n) {
    const uint8_t *dot = NULL;
    size_t i, code_len;
    for (i = 0; i < n && dot == NULL; i++) {
        if (t[i] == '.') dot = t + i;
    }
    if (dot == NULL) return -1;
    code_len = (size_t)(dot - t);
    if (code_len == 0 || n - code_len - 1 != DUO_CH_FP_HEX) return 0;
    for (i = code_len + 1; i < n; i++) {
        if (!is_lower_hex(t[i])) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t fp[DUO_CH_FP_BYTES];
    int has = -1, r, want = reference(data, size);
    memset(fp, 0xa5, sizeof fp);
    r = duo_ch_token_fingerprint(fp, &has, data, size);
    if (r != DUO_OK && r != DUO_E_CHANNEL_FP_MALFORMED) fail("an error outside the documented two");
    if (want == -1 && !(r == DUO_OK && has == 0)) fail("a token without '.' was not accepted without a fingerprint");
    if (want == 0 && r != DUO_E_CHANNEL_FP_MALFORMED) fail("a malformed fingerprint was accepted");
    if (want == 1) {
        static const char hx[] = "0123456789abcdef";
        size_t i;
        if (r != DUO_OK || has != 1) fail("a well-formed fingerprint was refused");
        for (i = 0; i < DUO_CH_FP_BYTES; i++) {
            const uint8_t *h = data + size - DUO_CH_FP_HEX + 2 * i;
            if (hx[fp[i] >> 4] != (char)h[0] || hx[fp[i] & 15] != (char)h[1]) fail("the fingerprint read back differs");
        }
    }
    return 0;
}
