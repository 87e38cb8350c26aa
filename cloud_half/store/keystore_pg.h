/* Internal: the PostgreSQL backend of the key store (keystore_pg.c) and what
 * its certificate part (certs_pg.c) shares with it. */
#ifndef DUOSIGN_STORE_KEYSTORE_PG_H
#define DUOSIGN_STORE_KEYSTORE_PG_H

#include <libpq-fe.h>

#include "keystore.h"

/* The "postgresql" driver (listed in drivers.c): location is a libpq
 * connection string or URL (postgresql://user@host:port/db). */
extern const duo_keystore_driver duo__keystore_pg_driver;

/* Parameters of one statement: bytea go binary, numbers and text as text. */
#define DUO_PG_MAX_PARAMS 16
typedef struct duo_pg_params {
    const char *v[DUO_PG_MAX_PARAMS];
    int len[DUO_PG_MAX_PARAMS];
    int fmt[DUO_PG_MAX_PARAMS];
    char num[DUO_PG_MAX_PARAMS][24];
    int n;
} duo_pg_params;

void duo__pg_blob(duo_pg_params *q, const void *p, size_t len); /* len 0 or p NULL: SQL NULL */
void duo__pg_text(duo_pg_params *q, const char *t);             /* NULL: SQL NULL */
void duo__pg_i64(duo_pg_params *q, int64_t v);

/* Runs sql (results in binary format) on the store's connection. On success
 * *res holds the result (PQclear it); on failure *res is NULL and the return
 * is the mapped error (unique/foreign-key violation: DUO_E_EXISTS; lock
 * timeout, deadlock, serialisation failure: DUO_E_TIMEOUT; else DUO_E_STORE). */
int duo__pg_exec(void *impl, PGresult **res, const char *sql, const duo_pg_params *q);
/* duo__pg_exec for SQL built at run time: never prepared (duo__pg_exec
 * prepares a statement with parameters once, keyed by the address of its
 * text, which must therefore be a string literal). */
int duo__pg_exec_dynamic(void *impl, PGresult **res, const char *sql, const duo_pg_params *q);
/* Write transactions: begin; end commits when r is DUO_OK, else rolls back,
 * and returns the result. */
int duo__pg_tx_begin(void *impl);
int duo__pg_tx_end(void *impl, int r);
int duo__pg_audit(void *impl, const duo_audit_event *ev, int64_t now);

/* Inside a write transaction: locks the key row and answers DUO_OK if its
 * policy MAC holds and it is active (DUO_E_POLICY_MAC, DUO_E_NOT_FOUND,
 * DUO_E_KEY_NOT_ACTIVE). */
int duo__pg_key_active(void *impl, const uint8_t *key_id);

/* Binary result columns. col_i64 reads bigint, integer, smallint, boolean. */
int duo__pg_col_i64(const PGresult *res, int row, int col, int64_t *out);
/* Copies a bytea/text column: exactly len bytes, or up to cap when len == 0
 * (NULL gives *got = 0 and is accepted only when len == 0). */
int duo__pg_col_blob(const PGresult *res, int row, int col, uint8_t *out, size_t len, size_t cap, size_t *got);
/* Copies a text column with its terminating NUL; NULL gives "". */
int duo__pg_col_text(const PGresult *res, int row, int col, char *out, size_t cap);

/* The certificate ops (certs_pg.c). */
int duo__pg_ca_insert(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now);
int duo__pg_ca_get(void *impl, duo_ca_row *row);
int duo__pg_ca_next_crl(void *impl, uint64_t *number, const duo_audit_event *ev, int64_t now);
int duo__pg_cert_insert(void *impl, const duo_cert_row *row, const duo_audit_event *ev, int64_t now);
int duo__pg_cert_list(void *impl, const uint8_t *key_id, duo_cert_cb cb, void *data);
int duo__pg_cert_revoke_key(void *impl, size_t *n_revoked, const uint8_t *key_id, int reason, const duo_audit_event *ev,
                            int64_t now);
int duo__pg_key_name_get(void *impl, char *name, const uint8_t *key_id);
/* The documents and presentation codes (docs_pg.c; docstore.h). */
int duo__pg_doc_set(void *impl, const struct duo_doc_row *row, const duo_audit_event *ev, int64_t now);
int duo__pg_doc_get(void *impl, struct duo_doc_row *row, const char *citizen_id, const char *doc_type);
int duo__pg_doc_list(void *impl, const char *citizen_id, int (*cb)(void *data, const struct duo_doc_row *row),
                     void *data);
int duo__pg_doc_remove(void *impl, const char *citizen_id, const char *doc_type, const duo_audit_event *ev,
                       int64_t now);
int duo__pg_code_insert(void *impl, const struct duo_code_row *row, const duo_audit_event *ev, int64_t now);
int duo__pg_code_redeem(void *impl, struct duo_doc_row *doc, struct duo_code_row *code, const uint8_t hash[32],
                        int by_barcode, const char *doc_type, const char *rp_name, int64_t now);
int duo__pg_code_purge(void *impl, size_t *n, int64_t before);
/* The sealed-column walk (sealed_walk_pg.c). */
int duo__pg_sealed_walk(void *impl, const struct duo_sealed_column *col, const uint8_t *skip, size_t skip_len,
                        size_t max, int write, duo_sealed_fn fn, void *data, size_t *n);
/* Signing sessions kept in the store (sign_sessions_pg.c). */
int duo__pg_sign_sess_put(void *impl, const uint8_t *key_id, const uint8_t *sid, const uint8_t *sealed,
                          size_t sealed_len, int64_t expires_at, int64_t now);
int duo__pg_sign_sess_take(void *impl, uint8_t *key_id, uint8_t *sealed, size_t cap, size_t *sealed_len,
                           const uint8_t *sid, int64_t now);
int duo__pg_sign_sess_end(void *impl, const uint8_t *sid);
int duo__pg_sign_sess_purge(void *impl, size_t *n, int64_t now);

#endif
