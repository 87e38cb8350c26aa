/* PKCS#10 requests for a split key: OpenSSL builds the request, the
 * caller's signer (the two-party protocol) signs its to-be-signed bytes. */
#include <string.h>

#include <openssl/x509.h>

#include "duosign/ec_pkey.h"
#include "x509_sig.h"

static int add_subject(X509_REQ *req, const duo_csr_subject *s) {
    X509_NAME *n = X509_NAME_new();
    int r = DUO_E_INVALID_ARG;
    if (n == NULL) return DUO_E_NOMEM;
    if (s->country != NULL &&
        (strlen(s->country) != 2 ||
         X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)s->country, -1, -1, 0) != 1))
        goto out;
    /* serialNumber is a PrintableString: OpenSSL refuses other characters */
    if (s->serial_number != NULL &&
        (strlen(s->serial_number) == 0 || strlen(s->serial_number) > 64 ||
         X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC, (const unsigned char *)s->serial_number, -1, -1,
                                    0) != 1))
        goto out;
    if (s->common_name != NULL &&
        (strlen(s->common_name) == 0 || strlen(s->common_name) > 64 ||
         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)s->common_name, -1, -1, 0) != 1))
        goto out;
    if (X509_NAME_entry_count(n) == 0) goto out;
    r = X509_REQ_set_subject_name(req, n) == 1 ? DUO_OK : DUO_E_NOMEM;
out:
    X509_NAME_free(n);
    return r;
}

/* Signs the request's certificationRequestInfo through the callback and sets
 * the signature algorithm and value. */
static int sign_req(X509_REQ *req, EVP_PKEY *pub, duo_sign_digest_fn sign, void *sign_ctx) {
    unsigned char *tbs = NULL, *sig = NULL;
    size_t sig_len = 0;
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    int n, r = DUO_E_NOMEM;
    if (alg == NULL || bits == NULL) goto out;
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL); /* RFC 5758: no parameters */
    if ((n = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo__x509_sign(&sig, &sig_len, pub, tbs, (size_t)n, sign, sign_ctx)) != DUO_OK) goto out;
    r = DUO_E_NOMEM;
    if (ASN1_BIT_STRING_set(bits, sig, (int)sig_len) != 1) goto out;
    /* a whole number of bytes: no unused bits */
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    if (X509_REQ_set1_signature_algo(req, alg) != 1) goto out;
    X509_REQ_set0_signature(req, bits);
    bits = NULL; /* req owns it */
    r = DUO_OK;
out:
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    OPENSSL_free(sig);
    OPENSSL_free(tbs);
    return r;
}

/* The unsigned request: version 1, the public key, the subject. */
static int make_req(X509_REQ **req, EVP_PKEY **pub, const char *curve, const uint8_t *point, size_t point_len,
                    const duo_csr_subject *subject) {
    int r;
    if ((r = duo_ec_pkey_from_point(pub, curve, point, point_len)) != DUO_OK) return r;
    if ((*req = X509_REQ_new()) == NULL || X509_REQ_set_version(*req, 0) != 1 || X509_REQ_set_pubkey(*req, *pub) != 1)
        return DUO_E_NOMEM;
    return add_subject(*req, subject);
}

int duo_csr_build(uint8_t **der, size_t *der_len, const char *curve, const uint8_t *point, size_t point_len,
                  const duo_csr_subject *subject, duo_sign_digest_fn sign, void *sign_ctx) {
    EVP_PKEY *pub = NULL;
    X509_REQ *req = NULL;
    unsigned char *out = NULL;
    int n, r;
    if (der != NULL) *der = NULL;
    if (der_len != NULL) *der_len = 0;
    if (der == NULL || der_len == NULL || subject == NULL || sign == NULL) return DUO_E_INVALID_ARG;
    if ((r = make_req(&req, &pub, curve, point, point_len, subject)) != DUO_OK) goto out;
    if ((r = sign_req(req, pub, sign, sign_ctx)) != DUO_OK) goto out;
    if ((n = i2d_X509_REQ(req, &out)) <= 0) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    *der = out;
    *der_len = (size_t)n;
    r = DUO_OK;
out:
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    return r;
}

int duo_csr_info(uint8_t **der, size_t *der_len, const char *curve, const uint8_t *point, size_t point_len,
                 const duo_csr_subject *subject) {
    EVP_PKEY *pub = NULL;
    X509_REQ *req = NULL;
    unsigned char *out = NULL;
    int n, r;
    if (der != NULL) *der = NULL;
    if (der_len != NULL) *der_len = 0;
    if (der == NULL || der_len == NULL || subject == NULL) return DUO_E_INVALID_ARG;
    if ((r = make_req(&req, &pub, curve, point, point_len, subject)) != DUO_OK) goto out;
    if ((n = i2d_re_X509_REQ_tbs(req, &out)) <= 0) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    *der = out;
    *der_len = (size_t)n;
    r = DUO_OK;
out:
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    return r;
}
