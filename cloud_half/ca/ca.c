/* The issuing CA's life: created at init (a P-256 key, a self-signed
 * certificate, both stored, the key sealed), loaded and checked before use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "duosign/mem.h"

static int settings_ok(const duo_ca_settings *s, size_t name_len, size_t url_len) {
    const char *cc = s->country;
    if (name_len == 0 || name_len > 64) return 0; /* ub-common-name */
    if (s->ca_days == 0 || s->ca_days > 36500 || s->cert_days == 0 || s->cert_days > 36500) return 0;
    if (strlen(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') return 0;
    if (url_len == 0 || url_len > DUO_CRL_URL_MAX) return 0;
    /* OpenSSL's extension syntax splits on ',' and a URI has no spaces */
    for (size_t i = 0; i < url_len; i++)
        if (s->crl_url[i] <= ' ' || s->crl_url[i] == ',' || (unsigned char)s->crl_url[i] >= 0x7f) return 0;
    return strncmp(s->crl_url, "http://", 7) == 0 || strncmp(s->crl_url, "https://", 8) == 0 ||
           strncmp(s->crl_url, "ldap://", 7) == 0;
}

static void with_defaults(duo_ca_settings *s, const duo_ca_settings *in) {
    memset(s, 0, sizeof *s);
    if (in != NULL) *s = *in;
    if (s->name == NULL) s->name = DUO_CA_DEFAULT_NAME;
    if (s->ca_days == 0) s->ca_days = DUO_CA_DEFAULT_CA_DAYS;
    if (s->cert_days == 0) s->cert_days = DUO_CA_DEFAULT_CERT_DAYS;
    if (s->country == NULL) s->country = DUO_CA_DEFAULT_COUNTRY;
    if (s->crl_url == NULL) s->crl_url = DUO_CA_DEFAULT_CRL_URL;
}

/* The self-signed CA certificate for key. */
static int make_ca_cert(X509 **out, EVP_PKEY *key, const duo_ca_settings *s, int64_t now) {
    X509 *x = X509_new();
    X509_NAME *n;
    uint8_t serial[DUO_CERT_SERIAL_MAX];
    size_t serial_len;
    int r = DUO_E_INTERNAL;
    if (x == NULL || X509_set_version(x, 2) != 1) goto out;
    if ((r = duo__ca_random_serial(x, serial, &serial_len)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    n = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)s->country, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)s->name, -1, -1, 0) != 1 ||
        X509_set_issuer_name(x, n) != 1 || X509_set_pubkey(x, key) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)now) == NULL ||
        ASN1_TIME_adj(X509_getm_notAfter(x), (time_t)now, (int)s->ca_days, 0) == NULL)
        goto out;
    if ((r = duo__ca_add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0")) != DUO_OK ||
        (r = duo__ca_add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign")) != DUO_OK ||
        (r = duo__ca_add_ext(x, x, NID_subject_key_identifier, "hash")) != DUO_OK ||
        (r = duo__ca_add_ext(x, x, NID_authority_key_identifier, "keyid:always")) != DUO_OK)
        goto out;
    r = X509_sign(x, key, EVP_sha256()) > 0 ? DUO_OK : DUO_E_INTERNAL;
out:
    if (r == DUO_OK)
        *out = x;
    else
        X509_free(x);
    return r;
}

int duo_ca_create(duo_keystore *ks, const duo_ca_settings *settings, int64_t now) {
    duo_ca_settings s;
    duo_ca_row *profile = NULL;
    EVP_PKEY *key = NULL;
    X509 *x = NULL;
    uint8_t cert[DUO_CERT_DER_MAX], kder[DUO_CA_KEY_MAX], *p; /* kder: SECRET */
    size_t cert_len = 0;
    int r, n;
    with_defaults(&s, settings);
    if (ks == NULL) return DUO_E_INVALID_ARG;
    if (!settings_ok(&s, strlen(s.name), strlen(s.crl_url))) return DUO_E_INVALID_ARG;
    if ((profile = calloc(1, sizeof *profile)) == NULL) return DUO_E_NOMEM;
    r = DUO_E_INTERNAL;
    if ((key = EVP_EC_gen("P-256")) == NULL) goto out;
    if ((r = make_ca_cert(&x, key, &s, now)) != DUO_OK) goto out;
    if ((r = duo__ca_x509_der(x, cert, sizeof cert, &cert_len)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if ((n = i2d_PrivateKey(key, NULL)) <= 0 || (size_t)n > sizeof kder) goto out;
    p = kder;
    if (i2d_PrivateKey(key, &p) != n) goto out;
    profile->cert_days = s.cert_days;
    memcpy(profile->country, s.country, 3);
    memcpy(profile->crl_url, s.crl_url, strlen(s.crl_url) + 1);
    char detail[160];
    snprintf(detail, sizeof detail, "issuing CA created: P-256, %u days, certificates %u days", s.ca_days, s.cert_days);
    duo_audit_event ev = {.kind = DUO_AUDIT_CA_CREATE, .detail = detail};
    r = duo_keystore_ca_create(ks, cert, cert_len, kder, (size_t)n, profile, &ev);
out:
    duo_memzero(kder, sizeof kder);
    X509_free(x);
    EVP_PKEY_free(key);
    free(profile);
    return r;
}

void duo_ca_free(duo_ca *ca) {
    if (ca == NULL) return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca->der);
    duo_memzero(ca, sizeof *ca);
    free(ca);
}

/* Parses the stored certificate and key into ca and checks they belong together. */
static int parse_ca(duo_ca *ca, const uint8_t *kder, size_t klen) {
    const uint8_t *p = ca->der;
    if ((ca->cert = d2i_X509(NULL, &p, (long)ca->der_len)) == NULL || p != ca->der + ca->der_len)
        return DUO_E_STATE_CORRUPT;
    p = kder;
    if ((ca->key = d2i_AutoPrivateKey(NULL, &p, (long)klen)) == NULL || p != kder + klen) return DUO_E_STATE_CORRUPT;
    if (X509_check_private_key(ca->cert, ca->key) != 1) return DUO_E_CA_MISMATCH;
    if (duo__ca_time(&ca->not_before, X509_get0_notBefore(ca->cert)) != DUO_OK ||
        duo__ca_time(&ca->not_after, X509_get0_notAfter(ca->cert)) != DUO_OK)
        return DUO_E_STATE_CORRUPT;
    return DUO_OK;
}

int duo_ca_load(duo_ca **out, duo_keystore *ks) {
    duo_ca *ca;
    uint8_t kder[DUO_CA_KEY_MAX]; /* SECRET */
    size_t klen = 0;
    int r;
    if (out == NULL || ks == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if ((ca = calloc(1, sizeof *ca)) == NULL || (ca->der = malloc(DUO_CERT_DER_MAX)) == NULL) {
        duo_ca_free(ca);
        return DUO_E_NOMEM;
    }
    r = duo_keystore_ca_get(ks, ca->der, DUO_CERT_DER_MAX, &ca->der_len, kder, sizeof kder, &klen, &ca->profile);
    if (r == DUO_OK) r = parse_ca(ca, kder, klen);
    duo_memzero(kder, sizeof kder);
    if (r != DUO_OK) {
        duo_ca_free(ca);
        return r;
    }
    *out = ca;
    return DUO_OK;
}

const uint8_t *duo_ca_cert_der(const duo_ca *ca, size_t *len) {
    *len = ca->der_len;
    return ca->der;
}

const duo_ca_row *duo_ca_profile(const duo_ca *ca) { return &ca->profile; }
