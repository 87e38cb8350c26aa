/* Randomness: OpenSSL's CSPRNG by default, replaceable per context. */
#include "duosign/rng.h"

#include <limits.h>
#include <openssl/rand.h>

#include "duosign/mem.h"

static int duo__openssl_fill(void *data, uint8_t *out, size_t len) {
    (void)data;
    while (len > 0) {
        int chunk = len > (size_t)INT_MAX ? INT_MAX : (int)len;
        if (RAND_bytes(out, chunk) != 1) {
            return -1;
        }
        out += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

static const duo_rng duo__rng_openssl = {duo__openssl_fill, NULL};

const duo_rng *duo_rng_default(void) { return &duo__rng_openssl; }

int duo_rng_bytes(const duo_rng *rng, uint8_t *out, size_t len) {
    if (rng == NULL) {
        rng = &duo__rng_openssl;
    }
    if (len == 0) {
        return DUO_OK;
    }
    if (out == NULL || rng->fill == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (rng->fill(rng->data, out, len) != 0) {
        duo_memzero(out, len);
        return DUO_E_RNG;
    }
    return DUO_OK;
}
