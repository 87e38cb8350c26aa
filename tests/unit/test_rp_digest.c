/* The relying-party digests (rp_digest.h): the Smart-ID v2 verification code
 * and the authentication digest against vectors computed independently
 * (Python hashlib and the transcript encoding of transcript.h, see
 * docs/RELYING_PARTIES.md), and the display-text and token checks. */
#include <string.h>

#include <openssl/sha.h>

#include "duosign/rp_digest.h"
#include "test_harness.h"

static void hex(uint8_t *out, const char *h, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void test_verification_code(void) {
    char vc[5];
    uint8_t d[64];
    memset(d, 0, 32);
    DUO_CHECK_OK(duo_rp_verification_code(vc, d, 32));
    DUO_CHECK(strcmp(vc, "0533") == 0);
    SHA256((const uint8_t *)"Hello World!", 12, d);
    DUO_CHECK_OK(duo_rp_verification_code(vc, d, 32));
    DUO_CHECK(strcmp(vc, "7712") == 0);
    SHA512((const uint8_t *)"Hello World!", 12, d);
    DUO_CHECK_OK(duo_rp_verification_code(vc, d, 64));
    DUO_CHECK(strcmp(vc, "4664") == 0);
    for (int i = 0; i < 48; i++) d[i] = (uint8_t)i;
    DUO_CHECK_OK(duo_rp_verification_code(vc, d, 48));
    DUO_CHECK(strcmp(vc, "9075") == 0);
    DUO_EXPECT_ERR(duo_rp_verification_code(vc, d, 0), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_rp_verification_code(vc, NULL, 32), DUO_E_INVALID_ARG);
}

static void test_auth_digest(void) {
    uint8_t ch[64], sr[32], out[32], want[32], other[32];
    for (int i = 0; i < 64; i++) ch[i] = (uint8_t)i;
    memset(sr, 0xaa, sizeof sr);
    const char *text = "\xd0\xa3\xd0\xb2\xd1\x96\xd0\xb9\xd1\x82\xd0\xb8 \xd0\xb4\xd0\xbe "
                       "\xd0\xb1\xd0\xb0\xd0\xbd\xd0\xba\xd1\x83"; /* "Увійти до банку" */
    hex(want, "451a1bb578815c72cd63fba69c369ecfc9bd34d485e50464cc4d8e4a8b89f8f8", 32);
    DUO_CHECK_OK(duo_rp_auth_digest(out, "Test Bank", ch, 32, sr, "1234", text));
    DUO_CHECK(memcmp(out, want, 32) == 0);
    /* Every item changes the digest. */
    DUO_CHECK_OK(duo_rp_auth_digest(other, "Test Banks", ch, 32, sr, "1234", text));
    DUO_CHECK(memcmp(out, other, 32) != 0);
    DUO_CHECK_OK(duo_rp_auth_digest(other, "Test Bank", ch, 33, sr, "1234", text));
    DUO_CHECK(memcmp(out, other, 32) != 0);
    sr[0] ^= 1;
    DUO_CHECK_OK(duo_rp_auth_digest(other, "Test Bank", ch, 32, sr, "1234", text));
    DUO_CHECK(memcmp(out, other, 32) != 0);
    sr[0] ^= 1;
    DUO_CHECK_OK(duo_rp_auth_digest(other, "Test Bank", ch, 32, sr, "1235", text));
    DUO_CHECK(memcmp(out, other, 32) != 0);
    DUO_CHECK_OK(duo_rp_auth_digest(other, "Test Bank", ch, 32, sr, "1234", "x"));
    DUO_CHECK(memcmp(out, other, 32) != 0);
    /* Moving bytes between items changes it too (length prefixes). */
    DUO_CHECK_OK(duo_rp_auth_digest(out, "ab", ch, 32, sr, "1234", "c"));
    DUO_CHECK_OK(duo_rp_auth_digest(other, "a", ch, 32, sr, "1234", "bc"));
    DUO_CHECK(memcmp(out, other, 32) != 0);
    DUO_EXPECT_ERR(duo_rp_auth_digest(out, "x", ch, 31, sr, "1234", "t"), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_rp_auth_digest(out, "x", ch, 65, sr, "1234", "t"), DUO_E_INVALID_ARG);
}

static void test_display_text(void) {
    char big[256];
    DUO_CHECK(duo_rp_display_text_ok("Sign the loan agreement"));
    DUO_CHECK(duo_rp_display_text_ok("two\nlines"));
    DUO_CHECK(duo_rp_display_text_ok("\xf0\x9f\x94\x91 key"));
    DUO_CHECK(!duo_rp_display_text_ok(""));
    DUO_CHECK(!duo_rp_display_text_ok("\x1b[2J"));          /* escape: moves the cursor */
    DUO_CHECK(!duo_rp_display_text_ok("a\rb"));             /* carriage return overwrites */
    DUO_CHECK(!duo_rp_display_text_ok("\xc0\xaf"));         /* overlong '/' */
    DUO_CHECK(!duo_rp_display_text_ok("\xe0\x80\xaf"));     /* overlong, 3 bytes */
    DUO_CHECK(!duo_rp_display_text_ok("\xed\xa0\x80"));     /* surrogate */
    DUO_CHECK(!duo_rp_display_text_ok("\xf4\x90\x80\x80")); /* above U+10FFFF */
    DUO_CHECK(!duo_rp_display_text_ok("\xe2\x82"));         /* truncated */
    DUO_CHECK(!duo_rp_display_text_ok("\xff"));
    memset(big, 'a', 200);
    big[200] = '\0';
    DUO_CHECK(duo_rp_display_text_ok(big));
    big[200] = 'a';
    big[201] = '\0';
    DUO_CHECK(!duo_rp_display_text_ok(big));
    DUO_CHECK(duo_rp_token_ok("req-1", 64));
    DUO_CHECK(!duo_rp_token_ok("req 1", 64));
    DUO_CHECK(!duo_rp_token_ok("", 64));
    DUO_CHECK(!duo_rp_token_ok("abc", 2));
    DUO_CHECK(duo_rp_hash_len(1) == 32 && duo_rp_hash_len(2) == 48 && duo_rp_hash_len(3) == 64);
    DUO_CHECK(duo_rp_hash_len(0) == 0 && duo_rp_hash_len(4) == 0);
}

int main(void) {
    DUO_RUN(test_verification_code);
    DUO_RUN(test_auth_digest);
    DUO_RUN(test_display_text);
    return duo_test_finish();
}
