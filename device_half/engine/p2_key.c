/* duosign P2: the device key, PIN masking and its KDF (DESIGN 3.4).
 *
 * The stored share is x2' = x2 - KDF(PIN, salt) mod q. The KDF is scrypt
 * (N = 2^15, r = 8, p = 1) from OpenSSL's EVP_KDF "SCRYPT", 64 output bytes
 * reduced mod q (a wide reduction: bias below 2^-256). Nothing in the key can
 * test a PIN guess offline: every PIN unmasks to some scalar, and only the
 * cloud, holding Q2, can tell (online, through the PIN proof). */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "duosign/mem.h"
#include "p2_internal.h"

int duo__p2_pin_kdf(const duo_ec *ec, duo_scalar *kdf, const uint8_t *pin, size_t pin_len,
                    const uint8_t salt[DUO_PIN_SALT_BYTES]) {
    int r = DUO_E_INTERNAL;
    EVP_KDF *alg = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[7], *p = params;
    uint64_t n = (uint64_t)1 << DUO_PIN_KDF_LOG2_N;
    uint32_t rr = DUO_PIN_KDF_R, pp = DUO_PIN_KDF_P;
    uint64_t maxmem = (uint64_t)256 * 1024 * 1024;
    uint8_t out[DUO_PIN_KDF_BYTES];
    BIGNUM *bn = NULL;

    if (ec == NULL || kdf == NULL || pin == NULL || pin_len == 0 || pin_len > DUO_PIN_MAX || salt == NULL) {
        if (kdf != NULL) {
            duo_memzero(kdf, sizeof *kdf);
        }
        return DUO_E_INVALID_ARG;
    }
    if ((alg = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL || (kctx = EVP_KDF_CTX_new(alg)) == NULL) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)pin, pin_len);
    *p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, DUO_PIN_SALT_BYTES);
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr);
    *p++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp);
    /* 128 * r * N = 32 MiB exactly hits OpenSSL's default cap: raise it. */
    *p++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem);
    *p = OSSL_PARAM_construct_end();
    if (EVP_KDF_derive(kctx, out, sizeof out, params) != 1) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((bn = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(bn, BN_FLG_CONSTTIME);
    if (BN_bin2bn(out, sizeof out, bn) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    /* Zero with probability 2^-256: treat as an internal failure. */
    if ((r = duo_scalar_from_bn_mod(ec, kdf, bn)) != DUO_OK) {
        r = (r == DUO_E_BAD_SCALAR) ? DUO_E_INTERNAL : r;
        goto out;
    }
    r = DUO_OK;
out:
    duo_memzero(out, sizeof out);
    BN_clear_free(bn);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(alg);
    if (r != DUO_OK) {
        duo_memzero(kdf, sizeof *kdf);
    }
    return r;
}

int duo__p2_pin_mask(const duo_ec *ec, duo_scalar *masked, const duo_scalar *x2, const uint8_t *pin, size_t pin_len,
                     const uint8_t salt[DUO_PIN_SALT_BYTES]) {
    int r = DUO_E_INTERNAL;
    duo_scalar k, nk;

    if ((r = duo__p2_pin_kdf(ec, &k, pin, pin_len, salt)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_scalar_negate(ec, &nk, &k)) != DUO_OK) {
        goto out;
    }
    /* x2 - k == 0 has probability 2^-256; the caller redraws the salt. */
    if ((r = duo_scalar_add(ec, masked, x2, &nk)) != DUO_OK) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    r = DUO_OK;
out:
    duo_memzero(&k, sizeof k);
    duo_memzero(&nk, sizeof nk);
    return r;
}

int duo__p2_pin_unmask(const duo_ec *ec, duo_scalar *x2, const duo_scalar *masked, const uint8_t *pin, size_t pin_len,
                       const uint8_t salt[DUO_PIN_SALT_BYTES]) {
    int r = DUO_E_INTERNAL;
    duo_scalar k;

    if ((r = duo__p2_pin_kdf(ec, &k, pin, pin_len, salt)) != DUO_OK) {
        goto out;
    }
    r = duo__p2_unmask_kdf(ec, x2, masked, &k);
out:
    duo_memzero(&k, sizeof k);
    return r;
}

int duo__p2_unmask_kdf(const duo_ec *ec, duo_scalar *x2, const duo_scalar *masked, const duo_scalar *kdf) {
    /* Zero only if the PIN is wrong and KDF(PIN') == -x2' (2^-256). */
    if (duo_scalar_add(ec, x2, masked, kdf) != DUO_OK) {
        duo_memzero(x2, sizeof *x2);
        return DUO_E_INTERNAL;
    }
    return DUO_OK;
}

int duo_p2_pin_kdf(const duo_ec *ec, duo_scalar *kdf, const duo_p2_key *key, const uint8_t *pin, size_t pin_len) {
    if (kdf == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (ec == NULL || key == NULL) {
        duo_memzero(kdf, sizeof *kdf);
        return DUO_E_INVALID_ARG;
    }
    /* duo__p2_pin_kdf checks the PIN and zeroes kdf on every failure. */
    return duo__p2_pin_kdf(ec, kdf, pin, pin_len, key->pin_salt);
}

int duo_p2_key_new(duo_p2_key **out, const duo_ec *ec, const uint8_t key_id[DUO_KEY_ID_BYTES],
                   const uint8_t x2_masked[DUO_SCALAR_BYTES], const uint8_t pin_salt[DUO_PIN_SALT_BYTES],
                   const uint8_t q[DUO_POINT_BYTES], unsigned paillier_bits, const uint8_t *n, size_t n_len,
                   const uint8_t *ckey, size_t ckey_len, const uint8_t device_secret[DUO_DEVICE_SECRET_BYTES]) {
    int r = DUO_E_NOMEM;
    duo_p2_key *key = NULL;

    *out = NULL;
    if ((key = calloc(1, sizeof *key)) == NULL) {
        goto out;
    }
    r = DUO_E_STATE_CORRUPT;
    memcpy(key->key_id, key_id, DUO_KEY_ID_BYTES);
    if (duo_scalar_parse(ec, &key->x2_masked, x2_masked) != DUO_OK) {
        goto out;
    }
    memcpy(key->pin_salt, pin_salt, DUO_PIN_SALT_BYTES);
    if (duo_point_parse(ec, &key->q, q, DUO_POINT_BYTES) != DUO_OK) {
        goto out;
    }
    if (duo_paillier_pub_parse(&key->paillier, n, n_len, paillier_bits) != DUO_OK) {
        goto out;
    }
    if ((key->ckey = BN_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (duo_paillier_ciphertext_parse(key->paillier, key->ckey, ckey, ckey_len) != DUO_OK) {
        goto out;
    }
    memcpy(key->device_secret, device_secret, DUO_DEVICE_SECRET_BYTES);
    *out = key;
    key = NULL;
    r = DUO_OK;
out:
    duo_p2_key_free(key);
    return r;
}

void duo_p2_key_free(duo_p2_key *key) {
    if (key == NULL) {
        return;
    }
    duo_paillier_pub_free(key->paillier);
    BN_free(key->ckey);
    duo_memzero(key, sizeof *key);
    free(key);
}

int duo_p2_key_change_pin(const duo_ec *ec, duo_p2_key *key, const uint8_t *old_pin, size_t old_pin_len,
                          const uint8_t *new_pin, size_t new_pin_len, const duo_rng *rng) {
    int r = DUO_E_INTERNAL;
    duo_scalar x2, masked;
    uint8_t salt[DUO_PIN_SALT_BYTES];
    int tries;

    if (ec == NULL || key == NULL || old_pin == NULL || new_pin == NULL || old_pin_len == 0 ||
        old_pin_len > DUO_PIN_MAX || new_pin_len == 0 || new_pin_len > DUO_PIN_MAX) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo__p2_pin_unmask(ec, &x2, &key->x2_masked, old_pin, old_pin_len, key->pin_salt)) != DUO_OK) {
        goto out;
    }
    for (tries = 0; tries < 4; tries++) {
        if ((r = duo_rng_bytes(rng, salt, sizeof salt)) != DUO_OK) {
            goto out;
        }
        if ((r = duo__p2_pin_mask(ec, &masked, &x2, new_pin, new_pin_len, salt)) != DUO_E_INTERNAL) {
            break;
        }
    }
    if (r != DUO_OK) {
        goto out;
    }
    /* Commit only when everything succeeded: the key is never half-updated. */
    key->x2_masked = masked;
    memcpy(key->pin_salt, salt, sizeof salt);
    r = DUO_OK;
out:
    duo_memzero(&x2, sizeof x2);
    duo_memzero(&masked, sizeof masked);
    duo_memzero(salt, sizeof salt);
    return r;
}
