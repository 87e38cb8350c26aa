/* The relying-party CA: made on first use, issues RP client certificates
 * (rp_ca.h). */
#include "rp_ca.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "duosign/mem.h"

void duo_rp_cert_fingerprint(uint8_t out[32], const uint8_t *der, size_t len) { SHA256(der, len, out); }

/* A certificate for key with subject CN=cn, signed by signer (itself when
 * issuer is NULL). */
static int make_cert(X509 **out, EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *signer, int64_t now,
                     unsigned days) {
    X509 *x = X509_new();
    uint8_t serial[DUO_CERT_SERIAL_MAX];
    size_t serial_len;
    int ca = issuer == NULL, r = DUO_E_INTERNAL;
    if (x == NULL || X509_set_version(x, 2) != 1) goto out;
    if ((r = duo__ca_random_serial(x, serial, &serial_len)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    X509_NAME *n = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, ca ? n : X509_get_subject_name(issuer)) != 1 || X509_set_pubkey(x, key) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)now) == NULL ||
        ASN1_TIME_adj(X509_getm_notAfter(x), (time_t)now, (int)days, 0) == NULL)
        goto out;
    X509 *iss = ca ? x : issuer;
    if (ca)
        r = duo__ca_add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    else
        r = duo__ca_add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
    if (r == DUO_OK)
        r = duo__ca_add_ext(x, iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    if (r == DUO_OK && !ca) r = duo__ca_add_ext(x, iss, NID_ext_key_usage, "clientAuth");
    if (r == DUO_OK) r = duo__ca_add_ext(x, iss, NID_subject_key_identifier, "hash");
    if (r == DUO_OK) r = duo__ca_add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
    if (r == DUO_OK) r = X509_sign(x, ca ? key : signer, EVP_sha256()) > 0 ? DUO_OK : DUO_E_INTERNAL;
out:
    if (r == DUO_OK)
        *out = x;
    else
        X509_free(x);
    return r;
}

/* The key as DER (SEC1 ECPrivateKey; SECRET) into out. */
static int key_der(EVP_PKEY *key, uint8_t *out, size_t cap, size_t *len) {
    unsigned char *p = NULL;
    int n = i2d_PrivateKey(key, &p);
    if (n <= 0 || (size_t)n > cap) {
        if (p != NULL) OPENSSL_clear_free(p, n > 0 ? (size_t)n : 0);
        return DUO_E_INTERNAL;
    }
    memcpy(out, p, (size_t)n);
    *len = (size_t)n;
    OPENSSL_clear_free(p, (size_t)n);
    return DUO_OK;
}

int duo_rp_ca_ensure(duo_keystore *ks, int64_t now) {
    uint8_t cert[DUO_CERT_DER_MAX], kd[DUO_CA_KEY_MAX];
    size_t cert_len = 0, kd_len = 0;
    int r = duo_keystore_rp_ca_get(ks, cert, sizeof cert, &cert_len, NULL, 0, NULL);
    if (r != DUO_E_NO_CA) return r; /* there is one, or the store failed */
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = NULL;
    r = key == NULL ? DUO_E_INTERNAL : make_cert(&x, key, DUO_RP_CA_NAME, NULL, NULL, now, DUO_RP_CA_DAYS);
    if (r == DUO_OK) r = duo__ca_x509_der(x, cert, sizeof cert, &cert_len);
    if (r == DUO_OK) r = key_der(key, kd, sizeof kd, &kd_len);
    duo_audit_event ev = {.kind = DUO_AUDIT_CA_CREATE, .detail = "relying-party CA created (P-256)"};
    if (r == DUO_OK) r = duo_keystore_rp_ca_create(ks, cert, cert_len, kd, kd_len, &ev);
    if (r == DUO_E_EXISTS) r = DUO_OK; /* another process made it first */
    duo_memzero(kd, sizeof kd);
    X509_free(x);
    EVP_PKEY_free(key);
    return r;
}

/* DER to malloc'ed PEM text under label. */
static int to_pem(char **out, int (*write)(BIO *, const void *), const void *obj) {
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    long n;
    int r = DUO_E_INTERNAL;
    if (b != NULL && write(b, obj) == 1 && (n = BIO_get_mem_data(b, &p)) > 0) {
        if ((*out = malloc((size_t)n + 1)) == NULL) {
            r = DUO_E_NOMEM;
        } else {
            memcpy(*out, p, (size_t)n);
            (*out)[n] = '\0';
            r = DUO_OK;
        }
        OPENSSL_cleanse(p, (size_t)n); /* may be a private key */
    }
    BIO_free(b);
    return r;
}

static int write_x509(BIO *b, const void *x) { return PEM_write_bio_X509(b, (X509 *)(uintptr_t)x); }
static int write_key(BIO *b, const void *k) {
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)(uintptr_t)k, NULL, NULL, 0, NULL, NULL);
}

/* The RP CA certificate (and key, when key != NULL) from the store. */
static int load(duo_keystore *ks, X509 **cert, EVP_PKEY **key) {
    uint8_t der[DUO_CERT_DER_MAX], kd[DUO_CA_KEY_MAX];
    size_t len = 0, kd_len = 0;
    int r = duo_keystore_rp_ca_get(ks, der, sizeof der, &len, key ? kd : NULL, sizeof kd, &kd_len);
    if (r != DUO_OK) return r;
    const uint8_t *p = der;
    if ((*cert = d2i_X509(NULL, &p, (long)len)) == NULL) r = DUO_E_STATE_CORRUPT;
    if (r == DUO_OK && key != NULL) {
        p = kd;
        if ((*key = d2i_AutoPrivateKey(NULL, &p, (long)kd_len)) == NULL || X509_check_private_key(*cert, *key) != 1)
            r = DUO_E_CA_MISMATCH;
    }
    duo_memzero(kd, sizeof kd);
    return r;
}

int duo_rp_ca_cert_pem(duo_keystore *ks, char **pem) {
    X509 *x = NULL;
    *pem = NULL;
    int r = load(ks, &x, NULL);
    if (r == DUO_OK) r = to_pem(pem, write_x509, x);
    X509_free(x);
    return r;
}

int duo_rp_ca_issue(duo_keystore *ks, const char *name, int64_t now, uint8_t *cert_der, size_t cert_cap,
                    size_t *cert_len, char **cert_pem, char **key_pem) {
    X509 *ca = NULL, *x = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    *cert_pem = *key_pem = NULL;
    *cert_len = 0;
    if (!duo_rp_name_ok(name)) return DUO_E_RP_NAME;
    int r = load(ks, &ca, &ca_key);
    if (r == DUO_OK) r = (key = EVP_EC_gen("P-256")) != NULL ? DUO_OK : DUO_E_INTERNAL;
    if (r == DUO_OK) r = make_cert(&x, key, name, ca, ca_key, now, DUO_RP_CERT_DAYS);
    if (r == DUO_OK) r = duo__ca_x509_der(x, cert_der, cert_cap, cert_len);
    if (r == DUO_OK) r = to_pem(cert_pem, write_x509, x);
    if (r == DUO_OK) r = to_pem(key_pem, write_key, key);
    if (r != DUO_OK) {
        free(*cert_pem);
        if (*key_pem) {
            duo_memzero(*key_pem, strlen(*key_pem));
            free(*key_pem);
        }
        *cert_pem = *key_pem = NULL;
    }
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    return r;
}
