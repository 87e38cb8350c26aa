/* duosign: certificate request and CMS signature builders (libduosign-device).
 *
 * A split key has no private key anywhere: whatever signs with it goes
 * through the two-party protocol. These builders make the bytes a CA and a
 * relying party expect (docs/CERTIFICATES.md) and ask the caller for one
 * signature each, over a SHA-256 digest, through a callback:
 *
 *   - duo_csr_build: a PKCS#10 certification request for a public key, its
 *     self-signature (the proof of possession the cloud CA checks) made by
 *     the callback;
 *   - duo_cms_sign_detached: a detached CMS SignedData (RFC 5652) with
 *     CAdES-BES signed attributes (content type, message digest, signing
 *     time, ESS signing-certificate-v2) and the signer's certificate, whose
 *     signature value the callback makes.
 *
 * The ASN.1 is OpenSSL's (X509_REQ and CMS APIs). Both builders verify the
 * callback's signature against the public key before handing anything out,
 * so a faulty signer never produces a request or a signature that does not
 * verify.
 *
 * Curves: "secp256k1" and "P-256" (also "prime256v1").
 *
 * Threads: reentrant; no global state. Memory: free the buffers returned
 * with duo_x509_free (OpenSSL's allocator made them). Nothing here is secret except
 * what the callback holds. */
#ifndef DUOSIGN_DEVICE_X509_H
#define DUOSIGN_DEVICE_X509_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The signer: signs a 32-byte SHA-256 digest with the key (the two-party
 * protocol in the app; any ECDSA key in tests).
 * Returns: 0 (DUO_OK) with sig_rs = r || s (32 + 32 bytes, big-endian), or a
 *          DUO_E_* code, which the builder returns unchanged.
 * In:      ctx: the caller's pointer; digest: what to sign. */
typedef int (*duo_sign_digest_fn)(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]);

/* The subject of a request. Each field may be NULL (left out); at least one
 * must be given. */
typedef struct duo_csr_subject {
    const char *common_name;   /* CN, UTF-8, at most 64 bytes */
    const char *serial_number; /* serialNumber, e.g. "PNOUA-1234567890" (PrintableString) */
    const char *country;       /* C, 2 letters */
} duo_csr_subject;

/* Builds a PKCS#10 request (version 1, ecdsa-with-SHA256) for the key.
 * Returns: DUO_OK; DUO_E_INVALID_ARG (NULL, empty subject, a field too long
 *          or outside its string type); DUO_E_UNSUPPORTED (curve);
 *          DUO_E_BAD_POINT (point not on the curve); DUO_E_BAD_SIGNATURE
 *          (the callback's signature does not verify under the key); the
 *          callback's error; DUO_E_NOMEM; DUO_E_INTERNAL.
 * Out:     *der / *der_len: the request (DER); free with duo_x509_free.
 * In:      curve, point/point_len: the public key (SEC1, 33 or 65 bytes);
 *          subject; sign/sign_ctx: called once with SHA-256 of the
 *          request's certificationRequestInfo. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_csr_build(uint8_t **der, size_t *der_len, const char *curve,
                                                 const uint8_t *point, size_t point_len, const duo_csr_subject *subject,
                                                 duo_sign_digest_fn sign, void *sign_ctx);

/* The certificationRequestInfo duo_csr_build signs for the same key and
 * subject (DER; the bytes are the same: the encoding is deterministic).
 * A device sends it with a CSR-purpose signature
 * (duo_device_sign_csr_info), so the cloud can check the request is the
 * key's own before it signs SHA-256 of it.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_BAD_POINT; DUO_E_UNSUPPORTED
 *          (curve); DUO_E_NOMEM; DUO_E_INTERNAL.
 * Out:     *der / *der_len: free with duo_x509_free. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_csr_info(uint8_t **der, size_t *der_len, const char *curve, const uint8_t *point,
                                                size_t point_len, const duo_csr_subject *subject);

/* Builds a detached CMS SignedData over a document given by its SHA-256.
 * SignerInfo: issuerAndSerialNumber of cert, sha256, ecdsa-with-SHA256;
 * signed attributes: contentType id-data, messageDigest = content_sha256,
 * signingTime = signing_time, signingCertificateV2 (ESS, RFC 5035) of cert;
 * certificates: cert. The signature covers the DER SET OF the signed
 * attributes (RFC 5652 5.4).
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_DECODE (cert is not a DER
 *          certificate); DUO_E_UNSUPPORTED (cert's key is not EC P-256 or
 *          secp256k1); DUO_E_BAD_SIGNATURE (the callback's signature does
 *          not verify under cert's key); the callback's error; DUO_E_NOMEM;
 *          DUO_E_INTERNAL.
 * Out:     *der / *der_len: the ContentInfo (DER, a .p7s); free with
 *          duo_x509_free.
 * In:      cert/cert_len: the signer's certificate (DER);
 *          content_sha256: SHA-256 of the document (the document itself
 *          never reaches the signer); signing_time: unix seconds;
 *          sign/sign_ctx: called once. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_cms_sign_detached(uint8_t **der, size_t *der_len, const uint8_t *cert,
                                                         size_t cert_len, const uint8_t content_sha256[32],
                                                         int64_t signing_time, duo_sign_digest_fn sign, void *sign_ctx);

/* Frees a buffer from this header. NULL is a no-op. */
DUO_API void duo_x509_free(uint8_t *p);

#ifdef __cplusplus
}
#endif
#endif
