/* Secure memory: wiping, constant-time compare, secret buffers. */
#include "duosign/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

void duo_memzero(void *p, size_t len) {
    if (p == NULL || len == 0) {
        return;
    }
    /* OPENSSL_cleanse, not explicit_bzero: explicit_bzero is glibc >= 2.25
     * and missing from Android's bionic before API 34 and from Apple's libc,
     * and the device library targets both; OpenSSL is a dependency anyway.
     * The barrier covers compilers that might still reason about the call
     * (secp256k1_memzero_explicit does the same). */
    OPENSSL_cleanse(p, len);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

int duo_ct_eq(const void *a, const void *b, size_t len) {
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t acc = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        acc |= (uint8_t)(x[i] ^ y[i]);
    }
    /* (acc - 1) >> 8 is 1 only when acc == 0, without a branch. */
    return (int)(((uint32_t)acc - 1u) >> 31);
}

int duo_ct_is_zero(const void *p, size_t len) {
    const volatile uint8_t *x = p;
    uint8_t acc = 0;
    size_t i;
    for (i = 0; i < len; i++) {
        acc |= x[i];
    }
    return (int)(((uint32_t)acc - 1u) >> 31);
}

void duo_ct_cmov(void *dst, const void *src, size_t len, int flag) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    uint8_t mask = (uint8_t)(0u - (uint8_t)(flag & 1));
    size_t i;
    for (i = 0; i < len; i++) {
        d[i] = (uint8_t)(d[i] ^ (mask & (d[i] ^ s[i])));
    }
}

int duo_secbuf_alloc(duo_secbuf *out, size_t len) {
    out->data = NULL;
    out->len = 0;
    if (len == 0) {
        return DUO_E_INVALID_ARG;
    }
    out->data = calloc(1, len);
    if (out->data == NULL) {
        return DUO_E_NOMEM;
    }
    /* Best effort: keep secret pages out of swap. Failure (RLIMIT_MEMLOCK) is
     * not fatal; the data is still wiped on free. */
    (void)mlock(out->data, len);
    out->len = len;
    return DUO_OK;
}

void duo_secbuf_free(duo_secbuf *b) {
    if (b == NULL || b->data == NULL) {
        return;
    }
    duo_memzero(b->data, b->len);
    (void)munlock(b->data, b->len);
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* The size lives in a header in front of the block so free can wipe it. */
typedef union {
    size_t len;
    max_align_t align;
} duo__sec_hdr;

void *duo_secure_malloc(size_t len) {
    duo__sec_hdr *h;
    if (len > SIZE_MAX - sizeof(duo__sec_hdr)) {
        return NULL;
    }
    h = malloc(sizeof(duo__sec_hdr) + len);
    if (h == NULL) {
        return NULL;
    }
    h->len = len;
    return h + 1;
}

void duo_secure_free(void *p) {
    duo__sec_hdr *h;
    if (p == NULL) {
        return;
    }
    h = (duo__sec_hdr *)p - 1;
    duo_memzero(p, h->len);
    free(h);
}
