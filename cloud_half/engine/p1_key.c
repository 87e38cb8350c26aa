/* duosign P1: the cloud's stored key, and its conversion to and from the
 * bytes the key store keeps. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

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

int duo_p1_key_parse(duo_p1_key **out, const duo_ec *ec, const uint8_t key_id[DUO_KEY_ID_BYTES],
                     const uint8_t x1[DUO_SCALAR_BYTES], const uint8_t q[DUO_POINT_BYTES],
                     const uint8_t q2[DUO_POINT_BYTES], const uint8_t *p, size_t p_len, const uint8_t *pq,
                     size_t pq_len, unsigned paillier_bits) {
    duo_scalar xs;
    duo_point qp, q2p;
    BIGNUM *bp = NULL, *bq = NULL;
    duo_paillier_priv *pk = NULL;
    int r;
    *out = NULL;
    if ((r = duo_scalar_parse(ec, &xs, x1)) != DUO_OK) goto out;
    if ((r = duo_point_parse(ec, &qp, q, DUO_POINT_BYTES)) != DUO_OK ||
        (r = duo_point_parse(ec, &q2p, q2, DUO_POINT_BYTES)) != DUO_OK)
        goto out;
    bp = BN_secure_new();
    bq = BN_secure_new();
    if (!bp || !bq) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(bp, BN_FLG_CONSTTIME);
    BN_set_flags(bq, BN_FLG_CONSTTIME);
    if (!BN_bin2bn(p, (int)p_len, bp) || !BN_bin2bn(pq, (int)pq_len, bq)) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_paillier_priv_from_primes(&pk, bp, bq, paillier_bits)) != DUO_OK) goto out;
    r = duo_p1_key_new(out, ec, key_id, &xs, &qp, &q2p, pk);
out:
    if (r != DUO_OK && r != DUO_E_NOMEM) r = DUO_E_STATE_CORRUPT;
    duo_memzero(&xs, sizeof xs);
    BN_clear_free(bp);
    BN_clear_free(bq);
    return r;
}

static int bn_out(uint8_t *out, size_t cap, size_t *len, const BIGNUM *bn) {
    int n = BN_num_bytes(bn);
    if (n <= 0 || (size_t)n > cap) return DUO_E_INTERNAL;
    if (BN_bn2bin(bn, out) != n) return DUO_E_INTERNAL;
    *len = (size_t)n;
    return DUO_OK;
}

int duo_p1_key_serialize(const duo_ec *ec, uint8_t x1[DUO_SCALAR_BYTES], uint8_t q[DUO_POINT_BYTES],
                         uint8_t q2[DUO_POINT_BYTES], uint8_t *p, size_t p_cap, size_t *p_len, uint8_t *pq,
                         size_t pq_cap, size_t *pq_len, const duo_p1_key *key) {
    int r;
    memcpy(x1, key->x1.b, DUO_SCALAR_BYTES);
    duo_point_serialize(ec, q, &key->q);
    duo_point_serialize(ec, q2, &key->q2);
    if ((r = bn_out(p, p_cap, p_len, duo_paillier_priv_p(key->paillier))) != DUO_OK ||
        (r = bn_out(pq, pq_cap, pq_len, duo_paillier_priv_q(key->paillier))) != DUO_OK)
        return r;
    return DUO_OK;
}
