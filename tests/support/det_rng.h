/* A deterministic random source for tests only: SHA-256 in counter mode over
 * a seed. Never linked into a library. */
#ifndef DUO_DET_RNG_H
#define DUO_DET_RNG_H

#include <stdint.h>

#include "duosign/rng.h"

typedef struct duo_det_rng {
    duo_rng rng; /* pass &d.rng wherever a const duo_rng * is taken */
    uint8_t seed[32];
    uint64_t counter;
    uint64_t bytes_drawn;
} duo_det_rng;

void duo_det_rng_init(duo_det_rng *d, uint64_t seed);

#endif
