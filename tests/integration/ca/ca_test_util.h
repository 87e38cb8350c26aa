/* Helpers for the certificate tests: ordinary OpenSSL keys stand in for the
 * two-party signer (the builders' callback), and a key is put into a store
 * the way enrolment leaves it (pending, then activated with its token). */
#ifndef DUO_CA_TEST_UTIL_H
#define DUO_CA_TEST_UTIL_H

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "duosign/device_x509.h"
#include "keystore.h"

/* curve: "secp256k1" or "P-256". */
static inline EVP_PKEY *ct_key_new(const char *curve) { return EVP_EC_gen(curve); }

/* The key's compressed SEC1 point (33 bytes). Returns 0 on success. */
static inline int ct_key_point(EVP_PKEY *pk, uint8_t out[33]) {
    unsigned char *u = NULL;
    size_t n = EVP_PKEY_get1_encoded_public_key(pk, &u); /* 04 || x || y */
    int r = -1;
    if (n == 65 && u[0] == 0x04) {
        out[0] = (uint8_t)(0x02 | (u[64] & 1));
        memcpy(out + 1, u + 1, 32);
        r = 0;
    }
    OPENSSL_free(u);
    return r;
}

/* The builders' callback for an OpenSSL key (ctx: EVP_PKEY *). */
static inline int ct_sign(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]) {
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)ctx, NULL);
    unsigned char der[80];
    const unsigned char *p = der;
    size_t n = sizeof der;
    ECDSA_SIG *s = NULL;
    int r = DUO_E_INTERNAL;
    if (c != NULL && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, der, &n, digest, 32) == 1 &&
        (s = d2i_ECDSA_SIG(NULL, &p, (long)n)) != NULL && BN_bn2binpad(ECDSA_SIG_get0_r(s), sig_rs, 32) == 32 &&
        BN_bn2binpad(ECDSA_SIG_get0_s(s), sig_rs + 32, 32) == 32)
        r = DUO_OK;
    ECDSA_SIG_free(s);
    EVP_PKEY_CTX_free(c);
    return r;
}

/* Stores a key with public point q for citizen, pending; activates it with a
 * new token carrying name (NULL: none) unless activate == 0. */
static inline int ct_add_key(duo_keystore *ks, const uint8_t key_id[16], const char *citizen, const char *name,
                             const uint8_t q[33], int activate) {
    duo_key_info k;
    duo_key_secrets s;
    uint8_t tok[20];
    int r;
    memset(&k, 0, sizeof k);
    memset(&s, 0, sizeof s);
    memcpy(k.key_id, key_id, 16);
    snprintf(k.citizen_id, sizeof k.citizen_id, "%s", citizen);
    k.paillier_bits = 2048;
    memcpy(k.q, q, 33);
    memcpy(k.q2, q, 33);
    memset(s.x1, 0x11, sizeof s.x1);
    s.p_len = s.q_len = 128;
    memset(s.p, 0x22, s.p_len);
    memset(s.q, 0x33, s.q_len);
    memset(s.current, 0x44, sizeof s.current);
    if ((r = duo_keystore_key_insert_pending(ks, &k, &s, NULL)) != DUO_OK || !activate) return r;
    memcpy(tok, key_id, 16);
    memcpy(tok + 16, "tokn", 4);
    if ((r = duo_keystore_token_insert_named(ks, tok, sizeof tok, citizen, name, 600, NULL)) != DUO_OK) return r;
    return duo_keystore_key_activate(ks, key_id, tok, sizeof tok, (const uint8_t *)"revocation-code-0123", 20, NULL);
}

/* A DER PKCS#10 request for pk through the builder (free with duo_x509_free). */
static inline int ct_csr(uint8_t **der, size_t *len, EVP_PKEY *pk, const char *curve, const char *cn) {
    uint8_t q[33];
    duo_csr_subject subj = {.common_name = cn, .serial_number = NULL, .country = NULL};
    if (ct_key_point(pk, q) != 0) return DUO_E_INTERNAL;
    return duo_csr_build(der, len, curve, q, sizeof q, &subj, ct_sign, pk);
}

#endif
