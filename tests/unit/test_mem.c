/* Secure memory and randomness: wipe, constant-time helpers, secret buffers,
 * the default and deterministic RNGs. */
#include <string.h>

#include "det_rng.h"
#include "duosign/mem.h"
#include "duosign/rng.h"
#include "test_harness.h"

static void test_memzero(void) {
    uint8_t buf[64];
    memset(buf, 0xa5, sizeof buf);
    duo_memzero(buf, sizeof buf);
    DUO_CHECK(duo_ct_is_zero(buf, sizeof buf));
    duo_memzero(NULL, 0); /* allowed */
}

static void test_ct_eq(void) {
    uint8_t a[32], b[32];
    size_t i;
    memset(a, 7, sizeof a);
    memcpy(b, a, sizeof a);
    DUO_CHECK(duo_ct_eq(a, b, sizeof a) == 1);
    for (i = 0; i < sizeof a; i++) {
        int bit;
        for (bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1u << bit);
            DUO_CHECK(duo_ct_eq(a, b, sizeof a) == 0);
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    DUO_CHECK(duo_ct_eq(a, b, 0) == 1);
    DUO_CHECK(duo_ct_is_zero(a, sizeof a) == 0);
}

static void test_ct_cmov(void) {
    uint8_t d[4] = {1, 2, 3, 4}, s[4] = {9, 9, 9, 9};
    duo_ct_cmov(d, s, 4, 0);
    DUO_CHECK(d[0] == 1 && d[3] == 4);
    duo_ct_cmov(d, s, 4, 1);
    DUO_CHECK(d[0] == 9 && d[3] == 9);
}

static void test_secbuf(void) {
    duo_secbuf b;
    DUO_CHECK_OK(duo_secbuf_alloc(&b, 48));
    DUO_CHECK(b.len == 48 && b.data != NULL && duo_ct_is_zero(b.data, b.len));
    memset(b.data, 0x5a, b.len);
    duo_secbuf_free(&b);
    DUO_CHECK(b.data == NULL && b.len == 0);
    duo_secbuf_free(&b); /* double free is a no-op */
    DUO_EXPECT_ERR(duo_secbuf_alloc(&b, 0), DUO_E_INVALID_ARG);
    void *p = duo_secure_malloc(100);
    DUO_CHECK(p != NULL);
    memset(p, 1, 100);
    duo_secure_free(p);
    duo_secure_free(NULL);
}

static int failing_fill(void *data, uint8_t *out, size_t len) {
    (void)data;
    memset(out, 0xff, len);
    return -1;
}

static void test_rng(void) {
    uint8_t a[32], b[32];
    DUO_CHECK_OK(duo_rng_bytes(NULL, a, sizeof a));
    DUO_CHECK_OK(duo_rng_bytes(duo_rng_default(), b, sizeof b));
    DUO_CHECK(!duo_ct_eq(a, b, sizeof a));
    duo_rng bad = {failing_fill, NULL};
    DUO_EXPECT_ERR(duo_rng_bytes(&bad, a, sizeof a), DUO_E_RNG);
    DUO_CHECK(duo_ct_is_zero(a, sizeof a)); /* wiped on failure */
    DUO_EXPECT_ERR(duo_rng_bytes(NULL, NULL, 4), DUO_E_INVALID_ARG);
}

static void test_det_rng(void) {
    duo_det_rng d1, d2, d3;
    uint8_t a[100], b[100], c[100];
    duo_det_rng_init(&d1, 42);
    duo_det_rng_init(&d2, 42);
    duo_det_rng_init(&d3, 43);
    DUO_CHECK_OK(duo_rng_bytes(&d1.rng, a, sizeof a));
    DUO_CHECK_OK(duo_rng_bytes(&d2.rng, b, sizeof b));
    DUO_CHECK_OK(duo_rng_bytes(&d3.rng, c, sizeof c));
    DUO_CHECK(memcmp(a, b, sizeof a) == 0);
    DUO_CHECK(memcmp(a, c, sizeof a) != 0);
    DUO_CHECK(d1.bytes_drawn == 100);
}

int main(void) {
    DUO_RUN(test_memzero);
    DUO_RUN(test_ct_eq);
    DUO_RUN(test_ct_cmov);
    DUO_RUN(test_secbuf);
    DUO_RUN(test_rng);
    DUO_RUN(test_det_rng);
    return duo_test_finish();
}
