/* Internal to cloud_half/ca/: the loaded CA and helpers its files share. */
#ifndef DUOSIGN_CLOUD_CA_INTERNAL_H
#define DUOSIGN_CLOUD_CA_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca.h"

struct duo_ca {
    X509 *cert;
    EVP_PKEY *key; /* SECRET: the CA's private key (freed with EVP_PKEY_free, which clears it) */
    uint8_t *der;  /* the certificate's DER */
    size_t der_len;
    int64_t not_before, not_after; /* the CA certificate's validity, unix seconds */
    duo_ca_row profile;            /* cert_days, country, crl_url (no cert, no key) */
};

/* An ASN1_TIME as unix seconds. Returns DUO_OK or DUO_E_STATE_CORRUPT. */
int duo__ca_time(int64_t *out, const ASN1_TIME *t);

/* Adds an extension written in OpenSSL's config syntax, with issuer and
 * subject (crl: the CRL instead) for the key identifiers.
 * Returns DUO_OK or DUO_E_INTERNAL. */
int duo__ca_add_ext(X509 *subject, X509 *issuer, int nid, const char *value);

/* A random positive serial of 128 random bits (RFC 5280 4.1.2.2: at most 20 bytes;
 * CA/B forum: at least 64 random bits): set on x, its minimal big-endian
 * bytes in out[0..*len). Returns DUO_OK, DUO_E_RNG or DUO_E_INTERNAL. */
int duo__ca_random_serial(X509 *x, uint8_t out[DUO_CERT_SERIAL_MAX], size_t *len);

/* Copies the DER encoding of x into out. Returns DUO_OK,
 * DUO_E_BUFFER_TOO_SMALL or DUO_E_INTERNAL. */
int duo__ca_x509_der(const X509 *x, uint8_t *out, size_t cap, size_t *len);

/* The CA must be valid at now. Returns DUO_OK or DUO_E_CA_EXPIRED. */
int duo__ca_check_valid(const duo_ca *ca, int64_t now);

#endif
