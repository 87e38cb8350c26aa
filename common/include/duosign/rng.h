/* duosign: randomness. Production code draws from OpenSSL RAND_bytes through
 * duo_rng_default(). Tests may substitute a deterministic source
 * (tests/support/det_rng.h); no deterministic source ships in a library. */
#ifndef DUOSIGN_RNG_H
#define DUOSIGN_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

/* Fills out with len random bytes. Returns 0 on success, nonzero on failure. */
typedef int (*duo_rng_fn)(void *data, uint8_t *out, size_t len);

typedef struct duo_rng {
    duo_rng_fn fill;
    void *data;
} duo_rng;

/* Returns: the process-wide OpenSSL-backed source (stateless; safe to share). */
const duo_rng *duo_rng_default(void);

/* Fills out with len random bytes from rng (the default source if rng is NULL).
 * Returns DUO_OK or DUO_E_RNG; on failure out is wiped. */
DUO_WARN_UNUSED_RESULT int duo_rng_bytes(const duo_rng *rng, uint8_t *out, size_t len);

#endif
