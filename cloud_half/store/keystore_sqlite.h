/* Internal: the SQLite backend of the key store (keystore_sqlite.c). */
#ifndef DUOSIGN_STORE_KEYSTORE_SQLITE_H
#define DUOSIGN_STORE_KEYSTORE_SQLITE_H

#include "keystore.h"

/* The "sqlite" driver (listed in drivers.c): its open creates or opens the
 * database file at location and fills *out; cfg must not be NULL (hooks,
 * timeout). */
extern const duo_keystore_driver duo__keystore_sqlite_driver;

/* What certs_sqlite.c (the certificate tables) shares with keystore_sqlite.c:
 * the connection, its write transactions (begin; end commits when r is
 * DUO_OK, else rolls back, and returns the result), the audit append inside
 * one, and the error mapping of a failed SQLite call (never DUO_OK). */
struct sqlite3;
struct sqlite3 *duo__sq_db(void *impl);
int duo__sq_tx_begin(void *impl);
int duo__sq_tx_end(void *impl, int r);
int duo__sq_audit(void *impl, const duo_audit_event *ev, int64_t now);
int duo__sq_map_rc(int rc);
/* Inside a write transaction: DUO_E_POLICY_MAC if the key row's policy MAC
 * does not match (DUO_E_NOT_FOUND if there is no such key). */
int duo__sq_key_mac_verify(void *impl, const uint8_t *key_id);

/* The certificate ops of the SQLite backend (certs_sqlite.c). */
int duo__sq_ca_insert(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now);
int duo__sq_ca_get(void *impl, duo_ca_row *row);
int duo__sq_ca_next_crl(void *impl, uint64_t *number, const duo_audit_event *ev, int64_t now);
int duo__sq_cert_insert(void *impl, const duo_cert_row *row, const duo_audit_event *ev, int64_t now);
int duo__sq_cert_list(void *impl, const uint8_t *key_id, duo_cert_cb cb, void *data);
int duo__sq_cert_revoke_key(void *impl, size_t *n_revoked, const uint8_t *key_id, int reason, const duo_audit_event *ev,
                            int64_t now);
int duo__sq_key_name_get(void *impl, char *name, const uint8_t *key_id);

/* The documents and presentation codes of the SQLite backend (docs_sqlite.c,
 * schema v10; docstore.h). */
int duo__sq_doc_set(void *impl, const struct duo_doc_row *row, const duo_audit_event *ev, int64_t now);
int duo__sq_doc_get(void *impl, struct duo_doc_row *row, const char *citizen_id, const char *doc_type);
int duo__sq_doc_list(void *impl, const char *citizen_id, int (*cb)(void *data, const struct duo_doc_row *row),
                     void *data);
int duo__sq_doc_remove(void *impl, const char *citizen_id, const char *doc_type, const duo_audit_event *ev,
                       int64_t now);
int duo__sq_code_insert(void *impl, const struct duo_code_row *row, const duo_audit_event *ev, int64_t now);
int duo__sq_code_redeem(void *impl, struct duo_doc_row *doc, struct duo_code_row *code, const uint8_t hash[32],
                        int by_barcode, const char *doc_type, const char *rp_name, int64_t now);
int duo__sq_code_purge(void *impl, size_t *n, int64_t before);
/* The relying-party ops of the SQLite backend (rps_sqlite.c). */
int duo__sq_rp_ca_insert(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now);
int duo__sq_rp_ca_get(void *impl, duo_ca_row *row);
int duo__sq_rp_insert(void *impl, const duo_rp_row *row, const duo_audit_event *ev, int64_t now);
int duo__sq_rp_remove(void *impl, const char *name, const duo_audit_event *ev, int64_t now);
int duo__sq_rp_by_cert(void *impl, const uint8_t cert_sha256[32], duo_rp_row *row);
int duo__sq_rp_list(void *impl, duo_rp_cb cb, void *data);

#endif
