/* duosign P1: the cloud's stored key. */
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "p1_internal.h"

int duo_p1_key_new(duo_p1_key **out, const duo_ec *ec, const uint8_t key_id[DUO_KEY_ID_BYTES], const duo_scalar *x1,
                   const duo_point *q, const duo_point *q2, duo_paillier_priv *paillier) {
    int r = DUO_E_INTERNAL;
    duo_p1_key *key = NULL;
    duo_point q1, sum;

    if (out != NULL) {
        *out = NULL;
    }
    if (out == NULL || ec == NULL || key_id == NULL || x1 == NULL || q == NULL || q2 == NULL || paillier == NULL) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    /* The stored parts must form one key: x1*G + Q2 == Q. */
    if ((r = duo_point_mul_base(ec, &q1, x1)) != DUO_OK) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if (duo_point_add(ec, &sum, &q1, q2) != DUO_OK || !duo_point_eq_var(ec, &sum, q)) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    /* The Paillier key was built by duo_paillier_priv_from_primes, which
     * checked the primes; only the size is left to check. */
    if (!duo_paillier_bits_supported(duo_paillier_pub_bits(duo_paillier_priv_pub(paillier)))) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if ((key = calloc(1, sizeof *key)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    memcpy(key->key_id, key_id, DUO_KEY_ID_BYTES);
    key->x1 = *x1;
    key->q = *q;
    key->q2 = *q2;
    key->paillier = paillier;
    paillier = NULL;
    *out = key;
    r = DUO_OK;
out:
    duo_paillier_priv_free(paillier);
    return r;
}

void duo_p1_key_free(duo_p1_key *key) {
    if (key == NULL) {
        return;
    }
    duo_paillier_priv_free(key->paillier);
    duo_memzero(key, sizeof *key);
    free(key);
}
