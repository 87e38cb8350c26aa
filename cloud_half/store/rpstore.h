/* duosign cloud store: relying parties (schema v9; docs/RELYING_PARTIES.md).
 *
 * The RP CA (a certificate and its private key, the key SEALED under the KEK
 * like the issuing CA's: AAD key id DUO_RP_CA_SEAL_ID, column
 * DUO_RP_CA_SEAL_COLUMN, version 1) and the registered RPs, each known by
 * the SHA-256 of its client certificate. The X.509 work is
 * cloud_half/ca/rp_ca.c's; this layer stores bytes.
 *
 * Thread-safety: as keystore.h (one duo_keystore per thread). */
#ifndef DUOSIGN_STORE_RPSTORE_H
#define DUOSIGN_STORE_RPSTORE_H

#include "keystore.h"

#define DUO_RP_CA_SEAL_ID "duosign.rp-ca"
#define DUO_RP_CA_SEAL_COLUMN "rp_ca_key"

/* Stores the RP CA; the key is sealed here. One transaction with ev.
 * Returns: DUO_OK; DUO_E_EXISTS (one is stored: never replaced);
 *          DUO_E_INVALID_ARG; DUO_E_UNSUPPORTED (backend without RPs);
 *          DUO_E_STORE.
 * In:   key_der (SECRET: the caller wipes it). */
DUO_WARN_UNUSED_RESULT int duo_keystore_rp_ca_create(duo_keystore *ks, const uint8_t *cert, size_t cert_len,
                                                     const uint8_t *key_der, size_t key_len, const duo_audit_event *ev);

/* Reads the RP CA.
 * Returns: DUO_OK; DUO_E_NO_CA (none yet); DUO_E_STATE_CORRUPT (the key
 *          does not open); DUO_E_BUFFER_TOO_SMALL; DUO_E_INVALID_ARG;
 *          DUO_E_UNSUPPORTED; DUO_E_STORE.
 * Out:  cert (public); key (SECRET: wipe it; skipped when NULL). */
DUO_WARN_UNUSED_RESULT int duo_keystore_rp_ca_get(duo_keystore *ks, uint8_t *cert, size_t cert_cap, size_t *cert_len,
                                                  uint8_t *key, size_t key_cap, size_t *key_len);

/* Registers an RP: row's name (1..64 printable characters), cert and
 * issued; cert_sha256 is computed here. One transaction with ev.
 * Returns: DUO_OK; DUO_E_RP_NAME; DUO_E_RP_EXISTS (name or certificate
 *          already stored, also a removed one's); DUO_E_INVALID_ARG;
 *          DUO_E_UNSUPPORTED; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_rp_add(duo_keystore *ks, const duo_rp_row *row, const duo_audit_event *ev);

/* Removes a registered RP (its row stays, marked removed): from now on its
 * certificate is refused. Returns DUO_OK; DUO_E_RP_NOT_FOUND;
 * DUO_E_UNSUPPORTED; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_rp_remove(duo_keystore *ks, const char *name, const duo_audit_event *ev);

/* The registered (not removed) RP whose certificate has this SHA-256.
 * Returns DUO_OK; DUO_E_RP_UNKNOWN; DUO_E_UNSUPPORTED; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_rp_by_cert(duo_keystore *ks, const uint8_t cert_sha256[32], duo_rp_row *row);

/* Every RP, removed ones too, oldest first; cb's nonzero return stops the
 * walk and is returned. */
DUO_WARN_UNUSED_RESULT int duo_keystore_rp_list(duo_keystore *ks, duo_rp_cb cb, void *data);

/* 1 if name is 1..DUO_RP_ROW_NAME_MAX bytes of UTF-8 without control
 * characters (what a citizen's device shows as "who is asking"). */
int duo_rp_name_ok(const char *name);

#endif
