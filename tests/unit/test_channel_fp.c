/* The channel key's fingerprint in the enrolment token (channel_fp.h): the
 * value against OpenSSL's SHA-256 computed here, its hex form, and every
 * token shape the device may be given: without a fingerprint (a token from
 * before: not an error), with the right one, and each malformed one
 * (DUO_E_CHANNEL_FP_MALFORMED, nothing read). */
#include <openssl/sha.h>
#include <string.h>

#include "duosign/channel_fp.h"
#include "test_harness.h"

static const char CODE[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"; /* 32 characters, as token issue prints */

static void test_fingerprint_value(void) {
    uint8_t pub[DUO_CH_PUB_BYTES], fp[DUO_CH_FP_BYTES], h[SHA256_DIGEST_LENGTH];
    char hex[DUO_CH_FP_HEX + 1], want[DUO_CH_FP_HEX + 1];
    for (size_t i = 0; i < sizeof pub; i++) pub[i] = (uint8_t)(3 * i + 1);
    SHA256(pub, sizeof pub, h);
    DUO_CHECK_OK(duo_ch_fingerprint(fp, pub));
    DUO_CHECK(memcmp(fp, h, DUO_CH_FP_BYTES) == 0);
    DUO_CHECK_OK(duo_ch_fingerprint_hex(hex, pub));
    for (size_t i = 0; i < DUO_CH_FP_BYTES; i++) snprintf(want + 2 * i, 3, "%02x", h[i]);
    DUO_CHECK(strcmp(hex, want) == 0 && strlen(hex) == DUO_CH_FP_HEX);
    DUO_CHECK_OK(duo_ch_fingerprint_check(fp, pub));
    pub[31] ^= 1; /* another key */
    DUO_EXPECT_ERR(duo_ch_fingerprint_check(fp, pub), DUO_E_CHANNEL_FINGERPRINT);
    DUO_EXPECT_ERR(duo_ch_fingerprint(NULL, pub), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_ch_fingerprint(fp, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_ch_fingerprint_check(NULL, pub), DUO_E_INVALID_ARG);
}

static int parse(const char *tok, uint8_t fp[DUO_CH_FP_BYTES], int *has) {
    return duo_ch_token_fingerprint(fp, has, (const uint8_t *)tok, strlen(tok));
}

static void test_token_shapes(void) {
    uint8_t pub[DUO_CH_PUB_BYTES] = {7}, fp[DUO_CH_FP_BYTES], want[DUO_CH_FP_BYTES];
    char hex[DUO_CH_FP_HEX + 1], tok[128];
    int has = -1;
    DUO_REQUIRE(duo_ch_fingerprint(want, pub) == DUO_OK && duo_ch_fingerprint_hex(hex, pub) == DUO_OK);
    /* a token from before the fingerprint: accepted, none read */
    DUO_CHECK_OK(parse(CODE, fp, &has));
    DUO_CHECK(has == 0);
    DUO_CHECK_OK(parse("not-a-real-token", fp, &has)); /* any bytes without '.' */
    DUO_CHECK(has == 0);
    /* CODE.HEX */
    snprintf(tok, sizeof tok, "%s.%s", CODE, hex);
    DUO_CHECK_OK(parse(tok, fp, &has));
    DUO_CHECK(has == 1 && memcmp(fp, want, sizeof fp) == 0);
    DUO_CHECK_OK(duo_ch_fingerprint_check(fp, pub));
    /* malformed: each refused, *has stays 0 */
    static const char *bad_fp[] = {"",
                                   "0",
                                   "0123456789abcdef0123456789abcde",
                                   "0123456789abcdef0123456789abcdef0",
                                   "0123456789ABCDEF0123456789abcdef",
                                   "0123456789abcdef0123456789abcdeg",
                                   "0123456789abcdef.123456789abcdef",
                                   " 123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof bad_fp / sizeof bad_fp[0]; i++) {
        snprintf(tok, sizeof tok, "%s.%s", CODE, bad_fp[i]);
        has = -1;
        DUO_EXPECT_ERR(parse(tok, fp, &has), DUO_E_CHANNEL_FP_MALFORMED);
        DUO_CHECK_MSG(has == 0, "case %zu", i);
    }
    snprintf(tok, sizeof tok, ".%s", hex); /* no code */
    DUO_EXPECT_ERR(parse(tok, fp, &has), DUO_E_CHANNEL_FP_MALFORMED);
    snprintf(tok, sizeof tok, "%s.%s.%s", CODE, hex, hex); /* two separators */
    DUO_EXPECT_ERR(parse(tok, fp, &has), DUO_E_CHANNEL_FP_MALFORMED);
    DUO_EXPECT_ERR(duo_ch_token_fingerprint(NULL, &has, (const uint8_t *)tok, 1), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_ch_token_fingerprint(fp, NULL, (const uint8_t *)tok, 1), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_ch_token_fingerprint(fp, &has, NULL, 1), DUO_E_INVALID_ARG);
    DUO_CHECK(duo_err_exit_code(DUO_E_CHANNEL_FP_MALFORMED) == 22 &&
              duo_err_exit_code(DUO_E_CHANNEL_FINGERPRINT) == 22);
}

int main(void) {
    DUO_RUN(test_fingerprint_value);
    DUO_RUN(test_token_shapes);
    return duo_test_finish();
}
