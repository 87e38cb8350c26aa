/* duosign cloud: the issuing CA (issue 16; docs/CERTIFICATES.md).
 *
 * The cloud's own certification authority for citizens' keys, separate from
 * the TLS CA (daemon/pki.c): a P-256 key sealed in the store (certstore.h)
 * and a self-signed certificate. It issues X.509 v3 certificates for
 * PKCS#10 requests whose key is a stored key, revokes a key's certificates
 * and signs CRLs. Without a CA (init --no-ca) the cloud stores certificates
 * an external CA issued (duo_ca_import_cert).
 *
 * All X.509 work is OpenSSL's (X509, X509_REQ, X509_CRL, EVP_PKEY).
 * Times come from the caller (now, unix seconds): tests inject them.
 *
 * Thread-safety: a duo_ca is read-only after duo_ca_load and may be shared;
 * the duo_keystore arguments follow keystore.h (one per thread). */
#ifndef DUOSIGN_CLOUD_CA_H
#define DUOSIGN_CLOUD_CA_H

#include <stddef.h>
#include <stdint.h>

#include "certstore.h"
#include "duosign/errors.h"

/* The operator's settings for a new CA (init flags; the defaults apply to
 * zero / NULL fields). */
typedef struct duo_ca_settings {
    const char *name;    /* the CA's CN; default DUO_CA_DEFAULT_NAME */
    uint32_t ca_days;    /* the CA certificate's validity; default 3650 */
    uint32_t cert_days;  /* an issued certificate's validity; default 730 */
    const char *country; /* 2 letters, for PNO<CC>-<id>; default "UA" */
    const char *crl_url; /* the CRL distribution point; default DUO_CA_DEFAULT_CRL_URL */
} duo_ca_settings;

#define DUO_CA_DEFAULT_NAME "duosign issuing CA"
#define DUO_CA_DEFAULT_CA_DAYS 3650
#define DUO_CA_DEFAULT_CERT_DAYS 730
#define DUO_CA_DEFAULT_COUNTRY "UA"
#define DUO_CA_DEFAULT_CRL_URL "http://localhost/duosign-ca.crl"

/* The subject of a citizen's certificate. */
typedef struct duo_ca_subject {
    const char *citizen_id; /* -> serialNumber PNO<CC>-<citizen_id> */
    const char *name;       /* -> CN; the citizen id when "" or NULL */
} duo_ca_subject;

typedef struct duo_ca duo_ca;

/* Creates the issuing CA: a fresh P-256 key (EVP_EC_gen) and a self-signed
 * v3 certificate (CA:TRUE critical, keyCertSign|cRLSign critical, SKI,
 * pathlen 0), valid from now for settings->ca_days; stores both, the key
 * sealed under the KEK, with an audit entry.
 * Returns: DUO_OK; DUO_E_EXISTS (a CA is already stored); DUO_E_INVALID_ARG
 *          (a setting out of range: name 1..64 bytes, days 1..36500,
 *          country 2 capital letters, URL 1..255 bytes); DUO_E_INTERNAL
 *          (OpenSSL); the store's errors. */
DUO_WARN_UNUSED_RESULT int duo_ca_create(duo_keystore *ks, const duo_ca_settings *settings, int64_t now);

/* Loads the issuing CA from the store and checks that its key is its
 * certificate's key.
 * Returns: DUO_OK; DUO_E_NO_CA; DUO_E_CA_MISMATCH (key and certificate
 *          differ); DUO_E_STATE_CORRUPT (unparseable, or the sealed key
 *          does not open); DUO_E_NOMEM; the store's errors.
 * Out:  *out, freed with duo_ca_free (which wipes the key). */
DUO_WARN_UNUSED_RESULT int duo_ca_load(duo_ca **out, duo_keystore *ks);
void duo_ca_free(duo_ca *ca);

/* The CA certificate as DER (borrowed until duo_ca_free) and its profile. */
const uint8_t *duo_ca_cert_der(const duo_ca *ca, size_t *len);
const duo_ca_row *duo_ca_profile(const duo_ca *ca);

/* Issues a certificate for a PKCS#10 request (DER) of a key. Checks, in
 * order: the CA is valid at now; the request parses (nothing after it);
 * it is signed by its own key; its key is the stored key (point on curve).
 * Builds: subject CN = name, serialNumber = PNO<CC>-<citizen id>, C = CC;
 * keyUsage digitalSignature (role auth) or nonRepudiation (role sign),
 * critical; basicConstraints CA:FALSE critical; SKI; AKI; the CRL
 * distribution point; a random positive 128-bit serial; validity now ..
 * now + cert_days, never beyond the CA's notAfter. Stores nothing.
 * Returns: DUO_OK; DUO_E_CA_EXPIRED; DUO_E_CSR_MALFORMED;
 *          DUO_E_CSR_BAD_SIGNATURE; DUO_E_CSR_KEY_MISMATCH; DUO_E_BAD_POINT;
 *          DUO_E_INVALID_ARG (role, subject); DUO_E_BUFFER_TOO_SMALL;
 *          DUO_E_INTERNAL.
 * Out:  out[0..*out_len) the certificate (DER); row (may be NULL): serial,
 *       role, validity and DER filled for duo_keystore_cert_insert (key_id
 *       is the caller's). */
DUO_WARN_UNUSED_RESULT int duo_ca_issue(const duo_ca *ca, uint8_t *out, size_t out_cap, size_t *out_len,
                                        duo_cert_row *row, const uint8_t *csr, size_t csr_len, const char *curve,
                                        const uint8_t *point, size_t point_len, const duo_ca_subject *who, int role,
                                        int64_t now);

/* duo_ca_issue for a stored key, then stores the certificate (one
 * transaction that re-checks the key is active). The key's curve is
 * secp256k1 until keys carry their curve (issue 15). The subject comes from
 * the key's citizen id and the name its token gave.
 * Returns: DUO_E_NOT_FOUND; DUO_E_KEY_NOT_ACTIVE; duo_ca_issue's errors;
 *          the store's. Nothing is stored on failure.
 * Out:  as duo_ca_issue (row may be NULL). */
DUO_WARN_UNUSED_RESULT int duo_ca_issue_for_key(const duo_ca *ca, duo_keystore *ks, uint8_t *out, size_t out_cap,
                                                size_t *out_len, duo_cert_row *row,
                                                const uint8_t key_id[DUO_KEY_ID_BYTES], int role, const uint8_t *csr,
                                                size_t csr_len, int64_t now);

/* Stores a certificate an external CA issued for a stored key (origin
 * "imported"): checks it parses and that its public key is the key's.
 * role: DUO_CERT_ROLE_*, or 0 to take it from the keyUsage
 * (nonRepudiation alone: sign; digitalSignature alone: auth).
 * Returns: DUO_OK; DUO_E_DECODE (not a certificate); DUO_E_CERT_KEY_MISMATCH;
 *          DUO_E_INVALID_ARG (role 0 and a keyUsage that names no role);
 *          DUO_E_NOT_FOUND; DUO_E_KEY_NOT_ACTIVE; DUO_E_EXISTS (its serial
 *          is stored); the store's errors. */
DUO_WARN_UNUSED_RESULT int duo_ca_import_cert(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int role,
                                              const uint8_t *der, size_t der_len);

/* Revokes every good certificate of a key with reason (DUO_CRL_REASON_*):
 * the one function the daemon calls where a key is revoked or frozen.
 * Returns: DUO_OK (also when the key has none); the store's errors. */
DUO_WARN_UNUSED_RESULT int duo_ca_revoke_key_certs(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                   int reason);

/* The CRL reason the CRL's sweep gives a key's final state: suspended (a
 * clone or an attack: frozen for good) -> keyCompromise; revoked ->
 * cessationOfOperation. Returns 0 for a state that revokes nothing. */
int duo_ca_reason_for_state(int state);

/* Signs a CRL (v2: crlNumber = the store's next number, AKI, thisUpdate =
 * now, nextUpdate = now + next_update_hours, every revoked certificate this
 * CA issued and that has not expired, with its revocation time and reason
 * code).
 * Returns: DUO_OK; DUO_E_CA_EXPIRED; DUO_E_INVALID_ARG (hours 1..8760);
 *          DUO_E_BUFFER_TOO_SMALL; DUO_E_INTERNAL; the store's errors.
 * Out:  out[0..*out_len) the CRL as DER. */
DUO_WARN_UNUSED_RESULT int duo_ca_crl(const duo_ca *ca, duo_keystore *ks, uint8_t *out, size_t out_cap, size_t *out_len,
                                      uint32_t next_update_hours, int64_t now);

/* The CSR signing purpose's check: info is a DER CertificationRequestInfo
 * (1..DUO_CSR_INFO_MAX bytes, nothing after it) whose public key is the
 * point on curve (duo_curve_name). The caller checks the digest is its
 * SHA-256. No secrets.
 * Returns: DUO_OK; DUO_E_CSR_MALFORMED; DUO_E_CSR_KEY_MISMATCH;
 *          DUO_E_BAD_POINT; DUO_E_INVALID_ARG; DUO_E_NOMEM. */
DUO_WARN_UNUSED_RESULT int duo_ca_csr_info_check(const uint8_t *info, size_t len, const char *curve,
                                                 const uint8_t *point, size_t point_len);

#endif
