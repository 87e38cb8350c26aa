/* duosign-oidc's JOSE pieces (cloud_half/oidc/jose.c) against fixed vectors
 * and OpenSSL: base64url (RFC 4648 section 10 vectors, in the URL alphabet),
 * ES256 round trip and every refusal (edited payload, edited signature,
 * alg "none", alg HS256, two or four parts, another key), the pairwise
 * subject (deterministic, separated by sector, length-prefixed), and the
 * RFC 7636 appendix B S256 vector. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "jose.h"
#include "test_harness.h"

static void test_b64url(void) {
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[32];
    uint8_t back[32];
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        jose_b64url(out, sizeof out, (const uint8_t *)in[i], strlen(in[i]));
        DUO_CHECK(strcmp(out, want[i]) == 0);
        DUO_CHECK(jose_b64url_decode(back, sizeof back, out, strlen(out)) == (long)strlen(in[i]));
        DUO_CHECK(memcmp(back, in[i], strlen(in[i])) == 0);
    }
    const uint8_t hi[] = {0xfb, 0xff};
    jose_b64url(out, sizeof out, hi, 2);
    DUO_CHECK(strcmp(out, "-_8") == 0); /* URL alphabet, no padding */
    DUO_CHECK(jose_b64url_decode(back, sizeof back, "Zg==", 4) == -1);
    DUO_CHECK(jose_b64url_decode(back, sizeof back, "Z+8", 3) == -1);
    DUO_CHECK(jose_b64url_decode(back, sizeof back, "Z", 1) == -1);
    DUO_CHECK(jose_b64url_decode(back, 2, "Zm9v", 4) == -1); /* does not fit */
}

static char *pub_pem(EVP_PKEY *pk) {
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out;
    long n;
    PEM_write_bio_PUBKEY(b, pk);
    n = BIO_get_mem_data(b, &p);
    out = malloc((size_t)n + 1); /* the BIO's data has no NUL: strndup would read past it */
    if (out) {
        memcpy(out, p, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

static void test_es256(void) {
    EVP_PKEY *pk = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
    char kid[64], jwk[512], *pem = pub_pem(pk), *pem2 = pub_pem(other);
    json_t *claims = json_pack("{s:s, s:i}", "sub", "abc", "exp", 123), *got = NULL;
    DUO_REQUIRE(pk && other && pem && pem2 && claims);
    DUO_CHECK_OK(jose_jwk_public(pk, kid, sizeof kid, jwk, sizeof jwk));
    DUO_CHECK(strlen(kid) == 43 && strstr(jwk, kid) != NULL && strstr(jwk, "\"crv\":\"P-256\"") != NULL);
    char *jws = jose_sign_es256(pk, kid, claims);
    DUO_REQUIRE(jws != NULL);
    DUO_CHECK_OK(jose_verify_es256(jws, pem, &got));
    DUO_CHECK(got && strcmp(json_string_value(json_object_get(got, "sub")), "abc") == 0);
    json_decref(got);
    DUO_EXPECT_ERR(jose_verify_es256(jws, pem2, &got), DUO_E_BAD_SIGNATURE);
    /* An edited payload character, an edited signature character. */
    char *d1 = strchr(jws, '.'), *d2 = strrchr(jws, '.');
    d1[2] ^= 1;
    DUO_CHECK(jose_verify_es256(jws, pem, &got) != DUO_OK && got == NULL);
    d1[2] ^= 1;
    d2[5] = d2[5] == 'A' ? 'B' : 'A';
    DUO_EXPECT_ERR(jose_verify_es256(jws, pem, &got), DUO_E_BAD_SIGNATURE);
    /* Other algorithms and shapes are refused before any key is used. */
    char buf[1024];
    snprintf(buf, sizeof buf, "eyJhbGciOiJub25lIn0%s", d1); /* {"alg":"none"} */
    DUO_EXPECT_ERR(jose_verify_es256(buf, pem, &got), DUO_E_DECODE);
    snprintf(buf, sizeof buf, "eyJhbGciOiJIUzI1NiJ9%s", d1); /* {"alg":"HS256"} */
    DUO_EXPECT_ERR(jose_verify_es256(buf, pem, &got), DUO_E_DECODE);
    DUO_EXPECT_ERR(jose_verify_es256("a.b", pem, &got), DUO_E_DECODE);
    snprintf(buf, sizeof buf, "%s.x", jws);
    DUO_EXPECT_ERR(jose_verify_es256(buf, pem, &got), DUO_E_DECODE);
    free(jws);
    free(pem);
    free(pem2);
    json_decref(claims);
    EVP_PKEY_free(pk);
    EVP_PKEY_free(other);
}

static void test_pairwise(void) {
    uint8_t k[32] = {1}, k2[32] = {2};
    char a[64], b[64], c[64], d[64], e[64];
    DUO_CHECK_OK(jose_pairwise_sub(a, sizeof a, k, "bank.example", "UA-1"));
    DUO_CHECK_OK(jose_pairwise_sub(b, sizeof b, k, "bank.example", "UA-1"));
    DUO_CHECK_OK(jose_pairwise_sub(c, sizeof c, k, "shop.example", "UA-1"));
    DUO_CHECK_OK(jose_pairwise_sub(d, sizeof d, k, "ab", "c"));
    DUO_CHECK_OK(jose_pairwise_sub(e, sizeof e, k, "a", "bc"));
    DUO_CHECK(strcmp(a, b) == 0 && strlen(a) == 43);
    DUO_CHECK(strcmp(a, c) != 0);
    DUO_CHECK(strcmp(d, e) != 0);
    DUO_CHECK_OK(jose_pairwise_sub(b, sizeof b, k2, "bank.example", "UA-1"));
    DUO_CHECK(strcmp(a, b) != 0);
}

static void test_s256(void) {
    char out[48];
    jose_s256(out, sizeof out, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
    DUO_CHECK(strcmp(out, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM") == 0); /* RFC 7636 appendix B */
}

int main(void) {
    DUO_RUN(test_b64url);
    DUO_RUN(test_es256);
    DUO_RUN(test_pairwise);
    DUO_RUN(test_s256);
    return duo_test_finish();
}
