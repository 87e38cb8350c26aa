/* duosign cloud store: the issuing CA and the certificates (schema v4).
 *
 * The CA row holds the CA certificate (public) and its private key (DER,
 * SEC1 ECPrivateKey), SEALED under the KEK like every secret: AAD key id DUO_CA_SEAL_ID,
 * column DUO_CA_SEAL_COLUMN, version 1. This is the only sealed column of
 * the certificate tables. The certificates table holds every certificate of
 * a key (issued here or imported), with its revocation status for the CRL.
 * The X.509 work is cloud_half/ca/'s; this layer stores bytes.
 * See docs/STORE.md and docs/CERTIFICATES.md.
 *
 * Thread-safety: as keystore.h (one duo_keystore per thread). */
#ifndef DUOSIGN_STORE_CERTSTORE_H
#define DUOSIGN_STORE_CERTSTORE_H

#include "keystore.h"

#define DUO_CA_SEAL_ID "duosign.issuing-ca"
#define DUO_CA_SEAL_COLUMN "ca_key"

/* Stores the issuing CA: its certificate and its private key, which is sealed
 * here. One transaction with ev.
 * Returns: DUO_OK; DUO_E_EXISTS (a CA is already stored: never replaced);
 *          DUO_E_INVALID_ARG (NULL, empty, too large); DUO_E_UNSUPPORTED
 *          (backend without certificates); DUO_E_STORE.
 * In:   key_der (SECRET: the caller wipes it). */
/* profile: cert_days (1..36500), country (2 letters), crl_url; its other
 * fields are ignored. */
DUO_WARN_UNUSED_RESULT int duo_keystore_ca_create(duo_keystore *ks, const uint8_t *cert, size_t cert_len,
                                                  const uint8_t *key_der, size_t key_len, const duo_ca_row *profile,
                                                  const duo_audit_event *ev);

/* Reads the issuing CA.
 * Returns: DUO_OK; DUO_E_NO_CA (none stored); DUO_E_STATE_CORRUPT (the
 *          sealed key does not open, or a field is out of range);
 *          DUO_E_BUFFER_TOO_SMALL; DUO_E_INVALID_ARG; DUO_E_STORE.
 * Out:  cert[0..*cert_len) (public); key[0..*key_len) the private key
 *       (SECRET: wipe it), skipped when key is NULL. On failure both are
 *       wiped and the lengths are 0. profile (may be NULL): cert_days,
 *       country, crl_url, crl_number, created_at (cert and key left empty). */
DUO_WARN_UNUSED_RESULT int duo_keystore_ca_get(duo_keystore *ks, uint8_t *cert, size_t cert_cap, size_t *cert_len,
                                               uint8_t *key, size_t key_cap, size_t *key_len, duo_ca_row *profile);

/* Takes the next CRL number (1, 2, ...), in one transaction with ev.
 * Returns: DUO_OK; DUO_E_NO_CA; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_ca_next_crl(duo_keystore *ks, uint64_t *number, const duo_audit_event *ev);

/* Stores a certificate of an active key (checked in the same transaction).
 * Returns: DUO_OK; DUO_E_KEY_NOT_ACTIVE; DUO_E_NOT_FOUND (no such key);
 *          DUO_E_EXISTS (serial already stored); DUO_E_INVALID_ARG; DUO_E_STORE.
 *          Nothing is stored on failure. */
DUO_WARN_UNUSED_RESULT int duo_keystore_cert_insert(duo_keystore *ks, const duo_cert_row *row,
                                                    const duo_audit_event *ev);

/* Calls cb for each certificate of key_id (NULL: of every key), oldest
 * first; a nonzero return from cb stops the walk and is returned. */
DUO_WARN_UNUSED_RESULT int duo_keystore_cert_list(duo_keystore *ks, const uint8_t *key_id, duo_cert_cb cb, void *data);

/* Revokes every good certificate of the key with reason (DUO_CRL_REASON_*),
 * in one transaction with ev (appended only if one was revoked).
 * Returns: DUO_OK (*n_revoked may be 0: none, or all revoked already);
 *          DUO_E_INVALID_ARG; DUO_E_UNSUPPORTED; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_cert_revoke_key(duo_keystore *ks, size_t *n_revoked,
                                                        const uint8_t key_id[DUO_KEY_ID_BYTES], int reason,
                                                        const duo_audit_event *ev);

/* The citizen's name recorded with the key from its enrolment token ("" when
 * the token had none).
 * Returns: DUO_OK; DUO_E_NOT_FOUND; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_citizen_name(duo_keystore *ks, char name[DUO_CITIZEN_NAME_MAX + 1],
                                                         const uint8_t key_id[DUO_KEY_ID_BYTES]);

/* Returns: "auth", "sign", or "unknown"; and the role for a name (0 if none). */
const char *duo_cert_role_name(int role);
int duo_cert_role_from_name(const char *name);

#endif
