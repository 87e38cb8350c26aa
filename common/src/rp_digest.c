/* duosign: the verification code, the authentication digest and the checks
 * on a relying party's strings (rp_digest.h). */
#include "duosign/rp_digest.h"

#include <string.h>

#include <openssl/sha.h>

#include "duosign/transcript.h"

int duo_rp_verification_code(char out[5], const uint8_t *digest, size_t digest_len) {
    if (!out || !digest || digest_len == 0) return DUO_E_INVALID_ARG;
    uint8_t h[SHA256_DIGEST_LENGTH];
    if (!SHA256(digest, digest_len, h)) return DUO_E_INTERNAL;
    unsigned v = ((unsigned)h[SHA256_DIGEST_LENGTH - 2] << 8 | h[SHA256_DIGEST_LENGTH - 1]) % 10000u;
    for (int i = 3; i >= 0; i--, v /= 10) out[i] = (char)('0' + v % 10);
    out[4] = '\0';
    return DUO_OK;
}

int duo_rp_auth_digest(uint8_t out[32], const char *rp_name, const uint8_t *challenge, size_t challenge_len,
                       const uint8_t server_random[DUO_RP_SERVER_RANDOM_BYTES], const char code[5],
                       const char *display_text) {
    if (!out || !rp_name || !challenge || !server_random || !code || !display_text) return DUO_E_INVALID_ARG;
    if (challenge_len < DUO_RP_CHALLENGE_MIN || challenge_len > DUO_RP_CHALLENGE_MAX) return DUO_E_INVALID_ARG;
    duo_transcript t;
    int r = duo_transcript_init(&t, DUO_RP_AUTH_DOMAIN);
    if (r != DUO_OK) return r;
    duo_transcript_bytes(&t, "rp_name", (const uint8_t *)rp_name, strlen(rp_name));
    duo_transcript_bytes(&t, "challenge", challenge, challenge_len);
    duo_transcript_bytes(&t, "server_random", server_random, DUO_RP_SERVER_RANDOM_BYTES);
    duo_transcript_bytes(&t, "code", (const uint8_t *)code, strnlen(code, 4));
    duo_transcript_bytes(&t, "display_text", (const uint8_t *)display_text, strlen(display_text));
    r = duo_transcript_digest(&t, out);
    duo_transcript_free(&t);
    return r;
}

/* Length of the UTF-8 sequence at s (1..4), or 0 if it is not well-formed. */
static size_t utf8_seq(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (n == 0 || c > 0xf4) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    /* Overlong 3- and 4-byte forms, surrogates, above U+10FFFF. */
    if (c == 0xe0 && s[1] < 0xa0) return 0;
    if (c == 0xed && s[1] > 0x9f) return 0;
    if (c == 0xf0 && s[1] < 0x90) return 0;
    if (c == 0xf4 && s[1] > 0x8f) return 0;
    return n;
}

int duo_rp_display_text_ok(const char *s) {
    if (!s) return 0;
    size_t len = strnlen(s, DUO_RP_DISPLAY_TEXT_MAX + 1);
    if (len == 0 || len > DUO_RP_DISPLAY_TEXT_MAX) return 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        if ((p[i] < 0x20 && p[i] != '\n') || p[i] == 0x7f) return 0;
        size_t n = utf8_seq(p + i);
        if (n == 0 || i + n > len) return 0;
        i += n;
    }
    return 1;
}

int duo_rp_token_ok(const char *s, size_t max) {
    if (!s) return 0;
    size_t len = strnlen(s, max + 1);
    if (len == 0 || len > max) return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e) return 0;
    return 1;
}

size_t duo_rp_hash_len(int hash_algorithm) {
    switch (hash_algorithm) {
        case 1:
            return 32;
        case 2:
            return 48;
        case 3:
            return 64;
        default:
            return 0;
    }
}
