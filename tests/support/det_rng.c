#include "det_rng.h"

#include <openssl/evp.h>
#include <string.h>

static int duo__det_fill(void *data, uint8_t *out, size_t len) {
    duo_det_rng *d = data;
    while (len > 0) {
        uint8_t block[32], ctr[8];
        unsigned int outl = 0;
        size_t n = len < 32 ? len : 32;
        int i;
        for (i = 0; i < 8; i++) ctr[i] = (uint8_t)(d->counter >> (8 * i));
        d->counter++;
        EVP_MD_CTX *c = EVP_MD_CTX_new();
        if (c == NULL || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 || EVP_DigestUpdate(c, d->seed, 32) != 1 ||
            EVP_DigestUpdate(c, ctr, 8) != 1 || EVP_DigestFinal_ex(c, block, &outl) != 1) {
            EVP_MD_CTX_free(c);
            return -1;
        }
        EVP_MD_CTX_free(c);
        memcpy(out, block, n);
        out += n;
        len -= n;
        d->bytes_drawn += n;
    }
    return 0;
}

void duo_det_rng_init(duo_det_rng *d, uint64_t seed) {
    int i;
    memset(d, 0, sizeof *d);
    for (i = 0; i < 8; i++) d->seed[i] = (uint8_t)(seed >> (8 * i));
    d->rng.fill = duo__det_fill;
    d->rng.data = d;
}
