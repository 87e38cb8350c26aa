/* duosign cloud: the relying-party CA (docs/RELYING_PARTIES.md).
 *
 * It issues the TLS client certificates relying parties present to the
 * RelyingParty listener (duosign-cloud serve --rp-listen), and that listener
 * trusts it alone. It is not the issuing CA of citizens' certificates and not
 * the TLS server CA: a leaked RP certificate authenticates an RP, never a
 * server or a citizen. Its P-256 key is kept in the store, sealed under the
 * KEK (rpstore.h); it is made on first use by `duosign-cloud rp add`. */
#ifndef DUOSIGN_CLOUD_RP_CA_H
#define DUOSIGN_CLOUD_RP_CA_H

#include <stddef.h>
#include <stdint.h>

#include "rpstore.h"

#define DUO_RP_CA_NAME "duosign relying-party CA"
#define DUO_RP_CA_DAYS 3650
#define DUO_RP_CERT_DAYS 825

/* Makes the RP CA if the store has none (one transaction with its audit
 * entry). Returns DUO_OK; DUO_E_UNSUPPORTED (backend without RPs);
 * DUO_E_INTERNAL (OpenSSL); a store error. */
DUO_WARN_UNUSED_RESULT int duo_rp_ca_ensure(duo_keystore *ks, int64_t now);

/* The RP CA certificate as PEM (malloc'ed, NUL-terminated; public): the
 * trust anchor of the RP listener. Returns DUO_OK; DUO_E_NO_CA (no RP is
 * registered yet); DUO_E_NOMEM; a store error. */
DUO_WARN_UNUSED_RESULT int duo_rp_ca_cert_pem(duo_keystore *ks, char **pem);

/* Issues a client certificate for a new RP: a fresh P-256 key, subject
 * CN=name, extendedKeyUsage clientAuth, DUO_RP_CERT_DAYS days, signed by the
 * RP CA. Out: cert_der (public), cert_pem and key_pem (malloc'ed; key_pem
 * SECRET: the caller wipes and frees it). Returns DUO_OK; DUO_E_NO_CA;
 * DUO_E_RP_NAME; DUO_E_INTERNAL; a store error. */
DUO_WARN_UNUSED_RESULT int duo_rp_ca_issue(duo_keystore *ks, const char *name, int64_t now, uint8_t *cert_der,
                                           size_t cert_cap, size_t *cert_len, char **cert_pem, char **key_pem);

/* The SHA-256 of a certificate's DER (what the registry keys RPs by). */
void duo_rp_cert_fingerprint(uint8_t out[32], const uint8_t *der, size_t len);

#endif
