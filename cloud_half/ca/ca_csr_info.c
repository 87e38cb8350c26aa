/* duosign-cloud: the CSR signing purpose's check (docs/PROTOCOL.md "Signing
 * purposes"). A SignStart with purpose CSR carries the request's
 * CertificationRequestInfo; the cloud signs SHA-256 of it only if it is a
 * DER CertificationRequestInfo whose public key is the key's own, so the CSR
 * purpose can never sign anything else (a document hash is not the hash of
 * an info that holds the key). */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "ca.h"
#include "duosign/ec_pkey.h"

/* ecdsa-with-SHA256 AlgorithmIdentifier and an empty BIT STRING: the frame
 * that makes the info a CertificationRequest OpenSSL parses (the signature
 * is never checked here: the two-party protocol is about to make it). */
static const uint8_t alg_and_sig[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
                                      0x3d, 0x04, 0x03, 0x02, 0x03, 0x01, 0x00};

/* DER length octets of n (n < 2^16 here). */
static size_t der_len(uint8_t out[3], size_t n) {
    if (n < 0x80) {
        out[0] = (uint8_t)n;
        return 1;
    }
    if (n < 0x100) {
        out[0] = 0x81;
        out[1] = (uint8_t)n;
        return 2;
    }
    out[0] = 0x82;
    out[1] = (uint8_t)(n >> 8);
    out[2] = (uint8_t)n;
    return 3;
}

/* The info framed as a CertificationRequest and parsed. */
static int parse_framed(X509_REQ **req, const uint8_t *info, size_t len) {
    uint8_t lb[3], *buf;
    size_t body = len + sizeof alg_and_sig, ll = der_len(lb, body), n = 1 + ll + body;
    const uint8_t *p;
    if ((buf = malloc(n)) == NULL) return DUO_E_NOMEM;
    buf[0] = 0x30;
    memcpy(buf + 1, lb, ll);
    memcpy(buf + 1 + ll, info, len);
    memcpy(buf + 1 + ll + len, alg_and_sig, sizeof alg_and_sig);
    p = buf;
    *req = d2i_X509_REQ(NULL, &p, (long)n);
    int whole = *req != NULL && p == buf + n;
    free(buf);
    return whole ? DUO_OK : DUO_E_CSR_MALFORMED;
}

int duo_ca_csr_info_check(const uint8_t *info, size_t len, const char *curve, const uint8_t *point, size_t point_len) {
    X509_REQ *req = NULL;
    EVP_PKEY *stored = NULL;
    const EVP_PKEY *rk;
    uint8_t *tbs = NULL;
    int tbs_len, r;
    if (info == NULL || len == 0 || len > DUO_CSR_INFO_MAX || curve == NULL || point == NULL) return DUO_E_INVALID_ARG;
    if ((r = parse_framed(&req, info, len)) != DUO_OK) goto out;
    /* DER only: the bytes signed are exactly the info re-encoded. */
    tbs_len = i2d_re_X509_REQ_tbs(req, &tbs);
    if (tbs_len <= 0 || (size_t)tbs_len != len || memcmp(tbs, info, len) != 0) {
        r = DUO_E_CSR_MALFORMED;
        goto out;
    }
    if ((rk = X509_REQ_get0_pubkey(req)) == NULL) {
        r = DUO_E_CSR_MALFORMED;
        goto out;
    }
    if ((r = duo_ec_pkey_from_point(&stored, curve, point, point_len)) != DUO_OK) goto out;
    r = EVP_PKEY_eq(rk, stored) == 1 ? DUO_OK : DUO_E_CSR_KEY_MISMATCH;
out:
    OPENSSL_free(tbs);
    EVP_PKEY_free(stored);
    X509_REQ_free(req);
    return r;
}
