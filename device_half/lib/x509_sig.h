/* Internal to the builders (csr.c, cms.c): the signature both ask for. */
#ifndef DUOSIGN_DEVICE_X509_SIG_H
#define DUOSIGN_DEVICE_X509_SIG_H

#include <openssl/evp.h>

#include "duosign/device_x509.h"

/* Hashes tbs with SHA-256, asks sign for r || s, checks it verifies under
 * pub and returns it DER-encoded (ECDSA-Sig-Value).
 * Returns: DUO_OK; DUO_E_BAD_SIGNATURE; the callback's error; DUO_E_NOMEM;
 *          DUO_E_INTERNAL.
 * Out:  *sig (OPENSSL_free) / *sig_len. */
int duo__x509_sign(unsigned char **sig, size_t *sig_len, EVP_PKEY *pub, const unsigned char *tbs, size_t tbs_len,
                   duo_sign_digest_fn sign, void *sign_ctx);

/* 1 if pub is an EC key on P-256 or secp256k1. */
int duo__x509_curve_ok(EVP_PKEY *pub);

#endif
