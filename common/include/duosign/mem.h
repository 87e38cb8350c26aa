/* duosign: secure memory. Wipe that the compiler cannot remove, constant-time
 * comparison, and typed secret buffers. */
#ifndef DUOSIGN_MEM_H
#define DUOSIGN_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

/* Zeroes len bytes at p in a way the optimiser cannot elide (OPENSSL_cleanse,
 * portable to every platform the device library targets).
 * p may be NULL when len is 0. */
void duo_memzero(void *p, size_t len);

/* Constant-time equality of two len-byte buffers: the time depends on len
 * only, never on the contents. Returns 1 if equal, 0 otherwise. Use this, never
 * memcmp, for MACs, commitments, tokens and secrets. */
int duo_ct_eq(const void *a, const void *b, size_t len);

/* Constant-time: returns 1 if all len bytes are zero, else 0. */
int duo_ct_is_zero(const void *p, size_t len);

/* Constant-time conditional copy: if flag is 1, dst = src; if 0, dst unchanged.
 * flag must be 0 or 1. */
void duo_ct_cmov(void *dst, const void *src, size_t len, int flag);

/* A heap buffer that holds secret bytes. The pages are mlock()ed where the
 * system allows it (best effort) and the contents are wiped on free.
 * Treat the fields as read-only; resize is not supported. */
typedef struct duo_secbuf {
    uint8_t *data;
    size_t len;
} duo_secbuf;

/* Allocates len zeroed secret bytes. Returns DUO_OK or DUO_E_NOMEM. */
DUO_WARN_UNUSED_RESULT int duo_secbuf_alloc(duo_secbuf *out, size_t len);
/* Wipes and frees; leaves {NULL, 0}. Safe on a zeroed or already freed buffer. */
void duo_secbuf_free(duo_secbuf *b);

/* Allocation helpers that wipe on free: used for secret-bearing heap objects
 * whose size is not otherwise remembered. duo_secure_free(NULL) is a no-op. */
void *duo_secure_malloc(size_t len);
void duo_secure_free(void *p);

/* Valgrind constant-time checks: mark bytes secret (undefined) or public
 * again. No-ops unless built with DUO_CTIME_CHECKS and valgrind headers. */
#if defined(DUO_CTIME_CHECKS)
#include <valgrind/memcheck.h>
#define DUO_CT_POISON(p, len) VALGRIND_MAKE_MEM_UNDEFINED((p), (len))
#define DUO_CT_UNPOISON(p, len) VALGRIND_MAKE_MEM_DEFINED((p), (len))
#else
#define DUO_CT_POISON(p, len) ((void)(p), (void)(len))
#define DUO_CT_UNPOISON(p, len) ((void)(p), (void)(len))
#endif
/* Marks a value that legitimately becomes public (e.g. a signature). */
#define duo__declassify(p, len) DUO_CT_UNPOISON((p), (len))

#endif
