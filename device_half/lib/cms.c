/* Detached CMS SignedData with CAdES-BES signed attributes, signed by the
 * caller's signer. OpenSSL's CMS API builds the structure (CMS_add1_signer
 * with the certificate's public key only, CMS_PARTIAL: no private key is
 * ever asked for); the signature value is the callback's, over the DER SET
 * OF the signed attributes (RFC 5652 5.4). */
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <openssl/x509.h>

#include "x509_sig.h"

/* SignedAttributes as they are signed: SET OF Attribute, DER (sorted), with
 * the universal SET tag, not the [0] of SignerInfo. OpenSSL's own template
 * for this is not exported; this one is the same declaration. */
DECLARE_ASN1_ITEM(DUO_SIGNED_ATTRS)
ASN1_ITEM_TEMPLATE(DUO_SIGNED_ATTRS) = ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SET_OF, 0, DUO_SIGNED_ATTRS, X509_ATTRIBUTE)
    ASN1_ITEM_TEMPLATE_END(DUO_SIGNED_ATTRS)

    /* The signed attributes OpenSSL does not add itself at CMS_add1_signer:
 * content type, message digest, signing time. (CMS_CADES added
 * signingCertificateV2.) */
    static int add_attrs(CMS_SignerInfo * si, const uint8_t content_sha256[32], int64_t signing_time) {
    ASN1_TIME *t = ASN1_TIME_set(NULL, (time_t)signing_time);
    int ok =
        t != NULL &&
        CMS_signed_add1_attr_by_NID(si, NID_pkcs9_contentType, V_ASN1_OBJECT, OBJ_nid2obj(NID_pkcs7_data), -1) == 1 &&
        CMS_signed_add1_attr_by_NID(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, content_sha256, 32) == 1 &&
        CMS_signed_add1_attr_by_NID(si, NID_pkcs9_signingTime, t->type, t, -1) == 1;
    ASN1_TIME_free(t);
    return ok ? DUO_OK : DUO_E_NOMEM;
}

/* DER of the signed attributes as a SET OF (what is signed). */
static int attrs_der(unsigned char **out, int *len, CMS_SignerInfo *si) {
    STACK_OF(X509_ATTRIBUTE) *sk = sk_X509_ATTRIBUTE_new_null(); /* borrows si's attributes */
    int n = CMS_signed_get_attr_count(si), r = DUO_E_NOMEM;
    *out = NULL;
    if (sk == NULL || n <= 0) goto out;
    for (int i = 0; i < n; i++)
        if (sk_X509_ATTRIBUTE_push(sk, CMS_signed_get_attr(si, i)) <= 0) goto out;
    if ((*len = ASN1_item_i2d((ASN1_VALUE *)sk, out, ASN1_ITEM_rptr(DUO_SIGNED_ATTRS))) <= 0) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    r = DUO_OK;
out:
    sk_X509_ATTRIBUTE_free(sk);
    return r;
}

static int sign_si(CMS_SignerInfo *si, EVP_PKEY *pub, duo_sign_digest_fn sign, void *sign_ctx) {
    unsigned char *tbs = NULL, *sig = NULL;
    size_t sig_len = 0;
    int n = 0, r;
    if ((r = attrs_der(&tbs, &n, si)) != DUO_OK) return r;
    if ((r = duo__x509_sign(&sig, &sig_len, pub, tbs, (size_t)n, sign, sign_ctx)) == DUO_OK) {
        ASN1_STRING_set0(CMS_SignerInfo_get0_signature(si), sig, (int)sig_len); /* takes sig */
        sig = NULL;
    }
    OPENSSL_free(sig);
    OPENSSL_free(tbs);
    return r;
}

int duo_cms_sign_detached(uint8_t **der, size_t *der_len, const uint8_t *cert, size_t cert_len,
                          const uint8_t content_sha256[32], int64_t signing_time, duo_sign_digest_fn sign,
                          void *sign_ctx) {
    const unsigned char *p = cert;
    const unsigned int flags = CMS_DETACHED | CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP | CMS_CADES;
    X509 *x = NULL;
    EVP_PKEY *pub;
    CMS_ContentInfo *cms = NULL;
    CMS_SignerInfo *si;
    unsigned char *out = NULL;
    int n, r = DUO_E_DECODE;
    if (der != NULL) *der = NULL;
    if (der_len != NULL) *der_len = 0;
    if (der == NULL || der_len == NULL || cert == NULL || content_sha256 == NULL || sign == NULL)
        return DUO_E_INVALID_ARG;
    if ((x = d2i_X509(NULL, &p, (long)cert_len)) == NULL || p != cert + cert_len) goto out;
    if (!duo__x509_curve_ok(pub = X509_get0_pubkey(x))) {
        r = DUO_E_UNSUPPORTED;
        goto out;
    }
    r = DUO_E_NOMEM;
    /* the public key stands in for the private one: CMS_add1_signer only
     * checks they match, and CMS_PARTIAL keeps it from signing */
    if ((cms = CMS_sign(NULL, NULL, NULL, NULL, flags)) == NULL ||
        (si = CMS_add1_signer(cms, x, pub, EVP_sha256(), flags)) == NULL)
        goto out;
    if ((r = add_attrs(si, content_sha256, signing_time)) != DUO_OK) goto out;
    if ((r = sign_si(si, pub, sign, sign_ctx)) != DUO_OK) goto out;
    if ((n = i2d_CMS_ContentInfo(cms, &out)) <= 0) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    *der = out;
    *der_len = (size_t)n;
    r = DUO_OK;
out:
    CMS_ContentInfo_free(cms);
    X509_free(x);
    return r;
}
