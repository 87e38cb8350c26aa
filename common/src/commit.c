/* Hash commitments (DESIGN.md 3.1):
 *   C = transcript(domain "duosign/v1/commit/<purpose>", sid, role,
 *                  values..., BYTES "rand" = 32 random bytes)
 * The caller appends the values between begin and finish/check. */
#include "duosign/commit.h"

#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"

#define DUO__COMMIT_PREFIX "duosign/v1/commit/"
#define DUO__COMMIT_DOMAIN_MAX 128

int duo_commit_begin(duo_transcript *t, const char *purpose, const duo_binding *bind) {
    char domain[DUO__COMMIT_DOMAIN_MAX];
    int n;
    int r;

    if (t == NULL) {
        return DUO_E_INVALID_ARG;
    }
    t->md = NULL;
    t->failed = 0;
    if (purpose == NULL || bind == NULL) {
        return DUO_E_INVALID_ARG;
    }
    n = snprintf(domain, sizeof domain, "%s%s", DUO__COMMIT_PREFIX, purpose);
    if (n < 0 || (size_t)n >= sizeof domain) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(t, domain)) != DUO_OK) {
        return r;
    }
    duo_transcript_binding(t, bind);
    return DUO_OK;
}

/* Appends rand and computes the digest; always frees t. */
static int duo__commit_compute(duo_transcript *t, const uint8_t rand[DUO_COMMIT_RAND_BYTES],
                               uint8_t out[DUO_COMMIT_BYTES]) {
    int r;
    duo_transcript_bytes(t, "rand", rand, DUO_COMMIT_RAND_BYTES);
    r = duo_transcript_digest(t, out);
    duo_transcript_free(t);
    return r;
}

int duo_commit_finish(duo_transcript *t, const uint8_t rand[DUO_COMMIT_RAND_BYTES], uint8_t out[DUO_COMMIT_BYTES]) {
    if (t == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (rand == NULL || out == NULL) {
        duo_transcript_free(t);
        return DUO_E_INVALID_ARG;
    }
    return duo__commit_compute(t, rand, out);
}

int duo_commit_check(duo_transcript *t, const uint8_t rand[DUO_COMMIT_RAND_BYTES],
                     const uint8_t expected[DUO_COMMIT_BYTES]) {
    uint8_t got[DUO_COMMIT_BYTES];
    int r;

    if (t == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (rand == NULL || expected == NULL) {
        duo_transcript_free(t);
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo__commit_compute(t, rand, got)) != DUO_OK) {
        duo_memzero(got, sizeof got);
        return r;
    }
    r = duo_ct_eq(got, expected, DUO_COMMIT_BYTES) ? DUO_OK : DUO_E_BAD_COMMITMENT;
    duo_memzero(got, sizeof got);
    return r;
}
