/* Helpers shared by the CA's files: times, extensions, serials, DER, and the
 * public key of a stored key. */
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"

int duo__ca_time(int64_t *out, const ASN1_TIME *t) {
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) return DUO_E_STATE_CORRUPT;
    *out = (int64_t)timegm(&tm);
    return DUO_OK;
}

int duo__ca_add_ext(X509 *subject, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;
    X509V3_set_ctx(&ctx, issuer, subject, NULL, NULL, 0);
    if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL) return DUO_E_INTERNAL;
    ok = X509_add_ext(subject, ext, -1);
    X509_EXTENSION_free(ext);
    return ok == 1 ? DUO_OK : DUO_E_INTERNAL;
}

int duo__ca_random_serial(X509 *x, uint8_t out[DUO_CERT_SERIAL_MAX], size_t *len) {
    uint8_t b[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int r = DUO_E_INTERNAL, n;
    if (RAND_bytes(b, sizeof b) != 1) return DUO_E_RNG;
    /* 128 random bits, read as a positive number: DER adds a 0x00 when the top
     * bit is set (17 bytes, under RFC 5280's 20). A zero serial (2^-128) would
     * be refused by the store's CHECK and fail the issue. */
    if ((bn = BN_bin2bn(b, sizeof b, NULL)) == NULL || (ai = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        X509_set_serialNumber(x, ai) != 1)
        goto out;
    if ((n = BN_bn2bin(bn, out)) <= 0 || n > DUO_CERT_SERIAL_MAX) goto out;
    *len = (size_t)n;
    r = DUO_OK;
out:
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return r;
}

int duo__ca_x509_der(const X509 *x, uint8_t *out, size_t cap, size_t *len) {
    int n = i2d_X509(x, NULL);
    uint8_t *p = out;
    if (n <= 0) return DUO_E_INTERNAL;
    if ((size_t)n > cap) return DUO_E_BUFFER_TOO_SMALL;
    if (i2d_X509(x, &p) != n) return DUO_E_INTERNAL;
    *len = (size_t)n;
    return DUO_OK;
}

int duo__ca_check_valid(const duo_ca *ca, int64_t now) {
    return now >= ca->not_before && now < ca->not_after ? DUO_OK : DUO_E_CA_EXPIRED;
}
