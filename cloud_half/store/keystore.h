/* duosign cloud store: the key store.
 *
 * A duo_keystore is a backend (a struct of function pointers, opened by a
 * driver: duo_keystore_driver) plus the key-encryption key. The backend stores public
 * fields and *sealed* secret columns only; sealing and opening (seal.h) happen
 * here, above the backend, so every backend gets the same at-rest protection.
 *
 * Every state change is ONE backend transaction, and when the caller passes a
 * duo_audit_event it is appended to the audit chain inside that same
 * transaction: either the change and its audit entry are both durable, or
 * neither is.
 *
 * Versions. Each key row has two counters:
 *   - version: bumps on every change. Writers pass the version they read
 *     (expect_version); if the row changed meanwhile the write fails with
 *     DUO_E_CONFLICT and nothing is written (optimistic concurrency).
 *   - secret_version: bumps whenever any secret column is rewritten; ALL secret
 *     columns are then resealed with AAD version = secret_version, so a secret
 *     column copied from an older generation of the same row fails to open.
 *
 * Secret columns: x1, Paillier p and q, the current device secret and the
 * pending one. Retired device secrets are kept sealed (AAD column
 * "retired_secret", version = their per-key number) together with their
 * SHA-256: a MAC carries no secret id, so recognising "a MAC under a retired
 * secret" (DESIGN 3.5, clone detection) needs the secret itself; the hash is an
 * index for callers that do hold a candidate secret. Revocation destroys all
 * secret columns and retired secrets (PRAGMA secure_delete).
 *
 * Thread-safety: a duo_keystore is one database connection: use it from one
 * thread at a time. Several duo_keystore objects (threads, processes) may open
 * the same database; the backend serialises their writes. */
#ifndef DUOSIGN_STORE_KEYSTORE_H
#define DUOSIGN_STORE_KEYSTORE_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "audit.h"
#include "policy_mac.h"
#include "duosign/curve.h"
#include "duosign/errors.h"
#include "duosign/rng.h"
#include "duosign/vocab.h"
#include "seal.h"

/* Key ids, device secrets, tokens, citizen ids and the key states
 * (duo_key_state) are named in duosign/vocab.h; Q, Q2 and x1 have the curve's
 * sizes (DUO_POINT_BYTES, DUO_SCALAR_BYTES). Tokens and revocation codes are
 * at most DUO_TOKEN_MAX bytes. */
#define DUO_KEY_PRIME_MAX 256 /* bytes of one Paillier prime (N up to 4096 bits) */
#define DUO_REASON_MAX 255
#define DUO_SEALED_MAX (DUO_KEY_PRIME_MAX + DUO_SEAL_OVERHEAD)

/* Returns: "pending", "active", ... or "unknown". */
const char *duo_key_state_name(int state);
/* Returns: the state for a name, or 0 if unknown. */
int duo_key_state_from_name(const char *name);
/* Returns: "none" (a key from before roles), "auth", "sign" or "unknown". */
const char *duo_key_role_name(int role);

/* Public fields of a key (nothing here is secret). */
typedef struct duo_key_info {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    char citizen_id[DUO_CITIZEN_ID_MAX + 1];
    int state;                      /* duo_key_state */
    int64_t created_at, updated_at; /* unix seconds */
    uint32_t paillier_bits;
    int curve;                       /* duo_curve of Q, Q2 and x1 (rows before v4: secp256k1) */
    int role;                        /* duo_key_role (rows before v7: 0, a legacy single key) */
    uint8_t q[DUO_POINT_BYTES];      /* the joint public key Q */
    uint8_t q2[DUO_POINT_BYTES];     /* the device's share Q2 (checks the PIN proof) */
    uint32_t pin_failures;           /* consecutive */
    int64_t locked_until;            /* unix seconds; 0 = not locked */
    char reason[DUO_REASON_MAX + 1]; /* suspension or revocation reason, or "" */
    int has_pending_secret;
    int has_revocation_code;
    uint64_t retired_count;
    uint64_t version;
    uint64_t secret_version;
    /* 1 once the key has spoken through the inner channel (schema v12 / PG
     * v11): its plaintext requests are refused from then on
     * (DUO_E_CHANNEL_REQUIRED_FOR_KEY). Under the policy MAC. */
    int moved;
    uint64_t resync_epoch; /* a resync is open for this restore epoch; 0: none (schema v11, SECURITY 1.10) */
    uint64_t resync_used;  /* the epoch whose resync this key used; 0: none */
} duo_key_info;

/* Secret fields, opened. SECRET: keep on the stack or in a guarded buffer,
 * never copy, wipe with duo_key_secrets_clear() before it goes out of scope. */
typedef struct duo_key_secrets {
    uint8_t x1[DUO_SCALAR_BYTES];
    uint8_t p[DUO_KEY_PRIME_MAX];
    size_t p_len;
    uint8_t q[DUO_KEY_PRIME_MAX];
    size_t q_len;
    uint8_t current[DUO_DEVICE_SECRET_BYTES];
    uint8_t pending[DUO_DEVICE_SECRET_BYTES];
    int has_pending;
} duo_key_secrets;

void duo_key_secrets_clear(duo_key_secrets *s);

/* Policy fields written together by duo_keystore_key_update_policy. */
typedef struct duo_key_policy {
    int state; /* duo_key_state */
    uint32_t pin_failures;
    int64_t locked_until;
    const char *reason; /* NULL: unchanged */
} duo_key_policy;

/* ------------------------------------------------------------------ backend */

/* One sealed column as the backend stores it; len == 0 means NULL/absent. */
typedef struct duo_sealed_col {
    uint8_t data[DUO_SEALED_MAX];
    size_t len;
} duo_sealed_col;

typedef struct duo_key_sealed {
    duo_sealed_col x1, p, q, current, pending;
} duo_key_sealed;

/* A device nonce accepted under a device secret (schema v3): both hashed with
 * SHA-256. secret_hash is the same index as duo_retired_rec.hash. */
typedef struct duo_seen_nonce {
    uint8_t secret_hash[32];
    uint8_t nonce_hash[32];
} duo_seen_nonce;

/* At most this many nonces are kept per (key, secret); the oldest go first. */
#define DUO_SEEN_NONCES_PER_SECRET 64

typedef struct duo_retired_rec {
    uint64_t n; /* 1, 2, ... per key: the AAD version of sealed */
    int64_t retired_at;
    uint8_t hash[32]; /* SHA-256(secret) */
    duo_sealed_col sealed;
} duo_retired_rec;

/* Callbacks for listing. Return 0 to continue; a nonzero value stops the walk
 * and is returned by the listing function. A callback must not call back into
 * the same duo_keystore. */
typedef int (*duo_key_info_cb)(void *data, const duo_key_info *info);
typedef int (*duo_retired_cb)(void *data, const duo_retired_rec *rec);
typedef int (*duo_audit_entry_cb)(void *data, const duo_audit_entry *e);

/* The issuing CA and the certificates (schema v4, docs/CERTIFICATES.md).
 * The CA's private key is the one sealed column here: AAD key id
 * DUO_CA_SEAL_ID, column "ca_key", version 1 (certs.c). */
#define DUO_CERT_DER_MAX 4096    /* bytes of one certificate */
#define DUO_CERT_SERIAL_MAX 20   /* RFC 5280 4.1.2.2 */
#define DUO_CA_KEY_MAX 256       /* the CA key as DER (SEC1 ECPrivateKey; P-256: 121 bytes) */
#define DUO_CITIZEN_NAME_MAX 128 /* bytes of UTF-8 */
#define DUO_CRL_URL_MAX 255
/* Signing sessions kept in the store (duo_keystore_sign_session_put). */
#define DUO_SIGN_SESS_STATE_MAX 512 /* bytes of one session's plaintext state */
#define DUO_SIGN_SESS_SEALED_MAX (DUO_SIGN_SESS_STATE_MAX + DUO_SEAL_OVERHEAD)
#define DUO_SIGN_TAKE_HOLD_S 10  /* a taken session blocks its key this long at most (its node may have died) */
#define DUO_SIGN_SESS_KEEP_S 600 /* an ended session answers "already used" this long after it expired */

typedef struct duo_ca_row {
    uint8_t cert[DUO_CERT_DER_MAX]; /* DER */
    size_t cert_len;
    duo_sealed_col key;  /* the sealed private key (DER, SEC1 ECPrivateKey) */
    uint64_t crl_number; /* the last CRL's number; 0 = none yet */
    int64_t created_at;
    /* The issuing profile, set at init (docs/CERTIFICATES.md). */
    uint32_t cert_days;                /* validity of an issued certificate */
    char country[3];                   /* ISO 3166 alpha-2, for PNO<CC>-<id> */
    char crl_url[DUO_CRL_URL_MAX + 1]; /* the CRL distribution point */
} duo_ca_row;

/* Key roles (schema: 'auth', 'sign'). */
enum { DUO_CERT_ROLE_AUTH = 1, DUO_CERT_ROLE_SIGN = 2 };
/* Where a certificate comes from (schema: 'issued', 'imported'). */
enum { DUO_CERT_ISSUED = 1, DUO_CERT_IMPORTED = 2 };
/* CRL reason codes (RFC 5280 5.3.1) the daemon uses. */
enum {
    DUO_CRL_REASON_KEY_COMPROMISE = 1,
    DUO_CRL_REASON_CESSATION = 5,
};

typedef struct duo_cert_row {
    uint8_t serial[DUO_CERT_SERIAL_MAX];
    size_t serial_len;
    uint8_t key_id[DUO_KEY_ID_BYTES];
    int role;   /* DUO_CERT_ROLE_* */
    int origin; /* DUO_CERT_ISSUED, DUO_CERT_IMPORTED */
    uint8_t der[DUO_CERT_DER_MAX];
    size_t der_len;
    int64_t issued_at, not_after;
    int revoked;        /* 0 = good */
    int64_t revoked_at; /* when revoked */
    int reason;         /* DUO_CRL_REASON_* when revoked */
} duo_cert_row;

typedef int (*duo_cert_cb)(void *data, const duo_cert_row *row);

/* A registered relying party (schema v9; docs/RELYING_PARTIES.md). It is
 * known by the SHA-256 of its TLS client certificate's DER; a removed RP
 * keeps its row (removed_at != 0) so its name and certificate are never
 * reused by mistake and the audit log's names stay meaningful. */
#define DUO_RP_ROW_NAME_MAX 64
typedef struct duo_rp_row {
    char name[DUO_RP_ROW_NAME_MAX + 1];
    uint8_t cert_sha256[32];
    uint8_t cert[DUO_CERT_DER_MAX]; /* DER */
    size_t cert_len;
    int issued;         /* 1: by the RP CA of this store; 0: brought with --cert */
    int64_t created_at; /* set by the store */
    int64_t removed_at; /* 0 while registered */
} duo_rp_row;

typedef int (*duo_rp_cb)(void *data, const duo_rp_row *row);

/* A rotation of the device secrets (key_rotate), planned by the key store
 * from the row the backend read inside the write transaction. */
typedef struct duo_key_rotation {
    /* In (the backend): the row as read in the transaction. */
    duo_key_info info;
    duo_key_sealed sealed;
    /* Out (the plan): what is written. */
    duo_key_sealed next; /* every secret column, sealed under next_secret_version */
    uint64_t next_secret_version;
    duo_retired_rec retire[2]; /* n_retire of them */
    size_t n_retire;
    int state; /* policy fields, written as given */
    uint32_t pin_failures;
    int64_t locked_until;
    const duo_audit_event *events[2]; /* appended in order; NULL entries skipped */
    uint64_t resync_close;            /* nonzero: the resync of this epoch is used (resync_epoch 0, resync_used it) */
} duo_key_rotation;

typedef int (*duo_key_rotate_fn)(void *data, duo_key_rotation *rot);

/* One value of a sealed column (sealed_columns.h) as sealed_walk hands it
 * out: its AAD from the row, the stored value, and (write walks) the value
 * to store instead. */
typedef struct duo_sealed_value {
    uint8_t aad_id[64];
    size_t aad_id_len;
    uint64_t aad_version;
    duo_sealed_col in;
    duo_sealed_col out; /* write walks: filled by the callback */
} duo_sealed_value;

struct duo_sealed_column;
struct duo_doc_row;  /* docstore.h */
struct duo_code_row; /* docstore.h */
/* Returns DUO_OK to go on; anything else stops the walk (a write walk then
 * rolls back) and is returned. */
typedef int (*duo_sealed_fn)(void *data, const struct duo_sealed_column *col, duo_sealed_value *v);

/* What a backend implements. Each write is one transaction that also appends
 * ev (if non-NULL) to the audit chain. "now" comes from the key store's clock.
 * Backends check state rules and expect_version inside the transaction. */
typedef struct duo_keystore_backend_ops {
    void (*close)(void *impl);
    int (*key_insert)(void *impl, const duo_key_info *info, const duo_key_sealed *sealed, const duo_audit_event *ev,
                      int64_t now);
    /* sealed may be NULL (public fields only). */
    int (*key_get)(void *impl, duo_key_info *info, duo_key_sealed *sealed, const uint8_t key_id[DUO_KEY_ID_BYTES]);
    int (*key_list)(void *impl, const char *citizen_id, duo_key_info_cb cb, void *data);
    int (*key_activate)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t token_hash[32],
                        const uint8_t revocation_hash[32], const duo_audit_event *ev, int64_t now);
    int (*key_update_policy)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], uint64_t expect_version,
                             const duo_key_policy *pol, const duo_audit_event *ev, int64_t now);
    /* Sets keys.moved (schema v12 / PG v11) with ev, in one transaction,
     * whatever the key's state or version; *changed = 0 (nothing written)
     * if it was set already. NULL: DUO_E_UNSUPPORTED. */
    int (*key_set_moved)(void *impl, int *changed, const uint8_t key_id[DUO_KEY_ID_BYTES], const duo_audit_event *ev,
                         int64_t now);
    /* One write transaction on one read of the key row: reads the row with
     * its sealed columns into rot->info / rot->sealed (a revoked or suspended
     * key is refused first), lets plan fill the rest of rot (an error from
     * plan rolls back and is returned), then writes the secret columns and
     * the policy fields (version + 1), the retired records, seen (may be
     * NULL; a nonce already recorded under that secret fails the whole write
     * with DUO_E_EXISTS) and plan's audit events, in that order. */
    int (*key_rotate)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], duo_key_rotation *rot, duo_key_rotate_fn plan,
                      void *plan_data, const duo_seen_nonce *seen, int64_t now);
    int (*key_revoke)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t *code_hash, const char *reason,
                      const duo_audit_event *ev, int64_t now);
    int (*purge_pending)(void *impl, size_t *n_purged, int64_t created_before, const duo_audit_event *ev, int64_t now);
    int (*retired_list)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], duo_retired_cb cb, void *data);
    /* citizen_name: "" for none (schema v4). */
    int (*token_insert)(void *impl, const uint8_t token_hash[32], const char *citizen_id, const char *citizen_name,
                        int64_t expires_at, const duo_audit_event *ev, int64_t now);
    /* role < 0: any; else that role's slot must be free (DUO_E_TOKEN_ROLE_USED). */
    int (*token_check)(void *impl, char citizen_id[DUO_CITIZEN_ID_MAX + 1], const uint8_t token_hash[32], int role,
                       int64_t now);
    int (*token_consume)(void *impl, char citizen_id[DUO_CITIZEN_ID_MAX + 1], const uint8_t token_hash[32],
                         const duo_audit_event *ev, int64_t now);
    int (*audit_append)(void *impl, uint64_t *seq, const duo_audit_event *ev, int64_t now);
    int (*audit_list)(void *impl, uint64_t from_seq, duo_audit_entry_cb cb, void *data);
    int (*audit_head)(void *impl, uint64_t *count, uint8_t head[DUO_AUDIT_HASH_LEN]);
    /* begin != 0: start a read snapshot (reads between see one consistent
     * state); begin == 0: end it. Used by audit verification. */
    int (*read_snapshot)(void *impl, int begin);
    /* Like key_insert, plus the enrolment record (sid, key id, token hash) in
     * the same transaction. */
    int (*enrol_insert)(void *impl, const duo_key_info *info, const duo_key_sealed *sealed, const uint8_t sid[32],
                        const uint8_t token_hash[32], const duo_audit_event *ev, int64_t now);
    /* The key id and token hash recorded for an enrolment sid (DUO_E_NOT_FOUND). */
    int (*enrol_get)(void *impl, uint8_t key_id[DUO_KEY_ID_BYTES], uint8_t token_hash[32], const uint8_t sid[32]);
    /* Seen device nonces (schema v3). nonce_record: one transaction (with ev if
     * non-NULL); DUO_E_EXISTS if already recorded (nothing written); keeps at
     * most DUO_SEEN_NONCES_PER_SECRET per (key, secret); does not change the
     * key row or its version; a revoked key is refused.
     * nonce_seen: *seen = 1 if recorded. */
    int (*nonce_record)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], const duo_seen_nonce *n,
                        const duo_audit_event *ev, int64_t now);
    int (*nonce_seen)(void *impl, int *seen, const uint8_t key_id[DUO_KEY_ID_BYTES], const duo_seen_nonce *n);
    /* Optional (NULL: every commit is durable). durable == 0: this
     * connection's next commits may be lost by a power failure or OS crash
     * until the next durable commit (a process crash loses nothing);
     * durable != 0: back to durable commits. See duo_keystore_commit_mode. */
    int (*commit_mode)(void *impl, int durable);
    /* Checks the store's own structure (full = 0: the quick check a start can
     * afford; 1: the full one). DUO_E_STATE_CORRUPT with the first finding in
     * why when damaged. NULL: the backend has none. */
    int (*integrity_check)(void *impl, int full, char *why, size_t why_cap);
    /* The issuing CA and certificates (schema v4; NULL: DUO_E_UNSUPPORTED).
     * ca_insert: DUO_E_EXISTS if there is one. ca_get: DUO_E_NO_CA if none.
     * ca_next_crl: bumps and returns the CRL number (DUO_E_NO_CA). */
    int (*ca_insert)(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now);
    int (*ca_get)(void *impl, duo_ca_row *row);
    int (*ca_next_crl)(void *impl, uint64_t *number, const duo_audit_event *ev, int64_t now);
    /* cert_insert: the key must be active in the same transaction
     * (DUO_E_KEY_NOT_ACTIVE, DUO_E_NOT_FOUND); DUO_E_EXISTS for a serial
     * already stored. */
    int (*cert_insert)(void *impl, const duo_cert_row *row, const duo_audit_event *ev, int64_t now);
    /* key_id NULL: every certificate, oldest first. */
    int (*cert_list)(void *impl, const uint8_t *key_id, duo_cert_cb cb, void *data);
    /* Marks the key's good certificates revoked with reason at now. */
    int (*cert_revoke_key)(void *impl, size_t *n_revoked, const uint8_t key_id[DUO_KEY_ID_BYTES], int reason,
                           const duo_audit_event *ev, int64_t now);
    /* Relying parties (schema v9; NULL: DUO_E_UNSUPPORTED). rp_ca_*: as
     * ca_* for the RP CA (cert, key; the other fields unused). rp_insert:
     * DUO_E_RP_EXISTS if the name or the certificate is stored (removed or
     * not). rp_remove: DUO_E_RP_NOT_FOUND unless a registered one has the
     * name. rp_by_cert: DUO_E_RP_UNKNOWN unless a registered one has it. */
    int (*rp_ca_insert)(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now);
    int (*rp_ca_get)(void *impl, duo_ca_row *row);
    int (*rp_insert)(void *impl, const duo_rp_row *row, const duo_audit_event *ev, int64_t now);
    int (*rp_remove)(void *impl, const char *name, const duo_audit_event *ev, int64_t now);
    int (*rp_by_cert)(void *impl, const uint8_t cert_sha256[32], duo_rp_row *row);
    int (*rp_list)(void *impl, duo_rp_cb cb, void *data);
    /* The citizen's name recorded with the key (from its token), or "". */
    int (*key_name_get)(void *impl, char name[DUO_CITIZEN_NAME_MAX + 1], const uint8_t key_id[DUO_KEY_ID_BYTES]);
    /* A consistent copy of the whole store into a NEW file at path (0600),
     * made while other connections keep writing (SQLite: the online backup
     * API in one read snapshot). DUO_E_EXISTS if path exists. NULL: the
     * backend has its own way (PostgreSQL: point-in-time recovery,
     * docs/STORE.md) and duo_keystore_backup gives DUO_E_UNSUPPORTED. */
    int (*backup_to)(void *impl, const char *path);
    /* Policy MAC keys (policy_mac.h) during a KEK rotation: policy_key_add
     * loads the key of the added KEK (from then on it writes; every loaded
     * key verifies); policy_remac, in one transaction, verifies every key
     * row under any loaded key and rewrites its MAC under the newest, *n rows
     * (DUO_E_POLICY_MAC and nothing written if one fails). */
    int (*policy_key_add)(void *impl, const duo_policy_key *k);
    int (*policy_remac)(void *impl, size_t *n);
    /* The non-NULL values of one sealed column whose first skip_len bytes
     * differ from skip (skip_len 0: all of them). write == 0: hands each to
     * fn (read only). write != 0: ONE write transaction over at most max of
     * them: fn fills v->out and the backend stores it in place of v->in
     * (nothing else in the row changes). *n: the values handed to fn. */
    int (*sealed_walk)(void *impl, const struct duo_sealed_column *col, const uint8_t *skip, size_t skip_len,
                       size_t max, int write, duo_sealed_fn fn, void *data, size_t *n);
    /* Citizen documents and presentation codes (schema v10, docstore.h, whose
     * functions say what each returns; NULL: DUO_E_UNSUPPORTED). Arguments
     * arrive checked. code_redeem appends its own audit entry (it names the
     * redeemer and the code's key, known only once the row is read). */
    int (*doc_set)(void *impl, const struct duo_doc_row *row, const duo_audit_event *ev, int64_t now);
    int (*doc_get)(void *impl, struct duo_doc_row *row, const char *citizen_id, const char *doc_type);
    int (*doc_list)(void *impl, const char *citizen_id, int (*cb)(void *data, const struct duo_doc_row *row),
                    void *data);
    int (*doc_remove)(void *impl, const char *citizen_id, const char *doc_type, const duo_audit_event *ev, int64_t now);
    int (*code_insert)(void *impl, const struct duo_code_row *row, const duo_audit_event *ev, int64_t now);
    int (*code_redeem)(void *impl, struct duo_doc_row *doc, struct duo_code_row *code, const uint8_t hash[32],
                       int by_barcode, const char *doc_type, const char *rp_name, int64_t now);
    int (*code_purge)(void *impl, size_t *n, int64_t before);
    /* Signing sessions kept in the store, so that round 2 may reach another
     * node (DESIGN 8.6; NULL: the daemon keeps them in its memory; see
     * duo_keystore_sign_session_put for the rules). sign_sess_put: one
     * transaction holding the key row: DUO_E_SESSION_BUSY if a round 2 holds
     * a session of the key (taken less than DUO_SIGN_TAKE_HOLD_S ago and not
     * expired), else live sessions of the key are superseded and the new one
     * stored. sign_sess_take: atomically live -> taken (one caller ever
     * wins): the key id and the sealed state; else DUO_E_NOT_FOUND,
     * DUO_E_PROTO_STATE (taken or used), DUO_E_SESSION_SUPERSEDED,
     * DUO_E_SESSION_EXPIRED. sign_sess_end: taken -> used. sign_sess_purge:
     * deletes rows expired more than DUO_SIGN_SESS_KEEP_S ago, *n of them. */
    int (*sign_sess_put)(void *impl, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t sid[32],
                         const uint8_t *sealed, size_t sealed_len, int64_t expires_at, int64_t now);
    int (*sign_sess_take)(void *impl, uint8_t key_id[DUO_KEY_ID_BYTES], uint8_t *sealed, size_t cap, size_t *sealed_len,
                          const uint8_t sid[32], int64_t now);
    int (*sign_sess_end)(void *impl, const uint8_t sid[32]);
    int (*sign_sess_purge)(void *impl, size_t *n, int64_t now);
    /* The resynchronisation after a restore (SQLite schema v11, PostgreSQL
     * v12; NULL: DUO_E_UNSUPPORTED). resync_open: ONE transaction: every
     * active or locked key (MAC checked) gets resync_epoch = epoch and
     * resync_used = 0, its MAC rewritten, *n of them; then ev. */
    int (*resync_open)(void *impl, uint64_t epoch, size_t *n, const duo_audit_event *ev, int64_t now);
} duo_keystore_backend_ops;

typedef struct duo_keystore_backend {
    const duo_keystore_backend_ops *ops;
    void *impl;
} duo_keystore_backend;

/* ------------------------------------------------------------------ store */

typedef struct duo_keystore duo_keystore;

typedef struct duo_keystore_config {
    const duo_rng *rng;                 /* NULL: duo_rng_default() */
    int64_t (*clock)(void *clock_data); /* NULL: time(NULL) */
    void *clock_data;
    int busy_timeout_ms; /* SQLite: wait this long for a lock; 0: 5000 */
    /* Optional: connections of one process given the same mutex take it
     * around each write transaction, so they queue on it (woken at once)
     * instead of on SQLite's write lock, whose busy handler sleeps 1 to 100
     * ms between tries. Other processes still meet busy_timeout_ms. */
    pthread_mutex_t *write_mu;
    /* TESTING ONLY: called by the SQLite backend after a write transaction's
     * statements ran and right before COMMIT (crash-safety tests _exit() here). */
    void (*before_commit)(void *hook_data);
    void *hook_data;
    /* Set by duo_keystore_open for the driver (callers leave it NULL): the
     * policy MAC key derived from the KEK (policy_mac.h). A backend copies it
     * at open, MACs the policy fields of every key row it writes (old rows
     * too, in the migration that adds the MAC), checks the MAC on every read
     * and before every write of a row (DUO_E_POLICY_MAC), and refuses to open
     * without it (DUO_E_INVALID_ARG). */
    const duo_policy_key *policy_key;
    /* The high-water mark file (mark.h), or NULL for none (copied). Every
     * durable write that appends to the audit chain moves it before
     * returning. */
    const char *mark_path;
} duo_keystore_config;

/* A kind of backend: its name and how to open one at a location (SQLite: a
 * database file; a PostgreSQL backend: a connection string). The key store
 * itself knows no backend by name: the store layer's drivers are listed in
 * one table (drivers.c), and a new backend is a new row there plus its file.
 * open fills *out (ops and impl) or returns an error; cfg is never NULL. */
typedef struct duo_keystore_driver {
    const char *name;
    int (*open)(duo_keystore_backend *out, const char *location, const duo_keystore_config *cfg);
} duo_keystore_driver;

/* Returns: the driver registered under name ("sqlite"), or NULL. */
const duo_keystore_driver *duo_keystore_driver_find(const char *name);

/* Opens a key store through a driver at location.
 * Returns: DUO_OK; the driver's errors (SQLite: DUO_E_STORE; DUO_E_UNSUPPORTED
 *          for a schema from a newer version; DUO_E_IO, DUO_E_PERMISSION);
 *          DUO_E_NOMEM; DUO_E_INVALID_ARG.
 * Out:  *out, freed with duo_keystore_free.
 * In:   kek is copied (secret); cfg may be NULL. */
DUO_WARN_UNUSED_RESULT int duo_keystore_open(duo_keystore **out, const duo_keystore_driver *drv, const char *location,
                                             const duo_kek *kek, const duo_keystore_config *cfg);

/* duo_keystore_open with the SQLite driver (keystore_sqlite.c): opens
 * (creating if needed) a SQLite key store at path: WAL, synchronous=FULL,
 * foreign keys, secure_delete, busy timeout, schema versioned with
 * PRAGMA user_version (migrated forward; a newer schema is refused).
 * Returns: as duo_keystore_open. */
DUO_WARN_UNUSED_RESULT int duo_keystore_open_sqlite(duo_keystore **out, const char *path, const duo_kek *kek,
                                                    const duo_keystore_config *cfg);

/* Wraps any backend. Takes ownership of be->impl (closed even on failure). */
DUO_WARN_UNUSED_RESULT int duo_keystore_new(duo_keystore **out, const duo_keystore_backend *be, const duo_kek *kek,
                                            const duo_keystore_config *cfg);

/* Closes the backend, wipes the KEK copies. NULL is a no-op. */
void duo_keystore_free(duo_keystore *ks);

/* ------------------------------------------------ key-encryption keys */

/* The store seals under the KEK it was opened with and opens every value
 * with the KEK its id names (seal.h); during a KEK rotation a second KEK is
 * added that only opens. At most DUO_KEYSTORE_KEKS KEKs. */
#define DUO_KEYSTORE_KEKS 2

/* Adds a KEK that opens values naming kek->id (never seals).
 * Returns: DUO_OK; DUO_E_EXISTS (that id is there); DUO_E_INVALID_ARG (full). */
DUO_WARN_UNUSED_RESULT int duo_keystore_kek_add(duo_keystore *ks, const duo_kek *kek);

/* Re-seals, in ONE write transaction, up to max values of one sealed column
 * (sealed_columns.h) that do not name KEK target_id yet: each is opened with
 * the KEK it names and sealed under target_id with the same AAD. Call it
 * until *n == 0: then every sealed value of the store names target_id. A
 * crash between two calls leaves each value under one KEK or the other.
 * Returns: DUO_OK; DUO_E_NOT_FOUND (no KEK with target_id); DUO_E_KEK_UNKNOWN
 *          (a value names a KEK the store does not have); DUO_E_STATE_CORRUPT;
 *          the backend's errors (DUO_E_UNSUPPORTED: it cannot walk).
 * Out:  why (may be NULL): on a value that fails, "table.column of KEYID,
 *       version N" (public data). */
DUO_WARN_UNUSED_RESULT int duo_keystore_reseal(duo_keystore *ks, uint32_t target_id, size_t max, size_t *n, char *why,
                                               size_t why_cap);

/* Sealed values by KEK id, each one opened. */
#define DUO_KEK_CENSUS_IDS 8
typedef struct duo_kek_census {
    uint32_t ids[DUO_KEK_CENSUS_IDS];
    size_t counts[DUO_KEK_CENSUS_IDS];
    size_t n_ids;
    size_t total;
    size_t unopened; /* values that did not open (missing KEK, edited) */
    int first_error; /* the error of the first of them */
} duo_kek_census;

/* Opens every sealed value of the store and counts them per KEK id.
 * Returns: DUO_OK (even if some did not open: see unopened); the backend's
 *          errors. */
DUO_WARN_UNUSED_RESULT int duo_keystore_kek_census(duo_keystore *ks, duo_kek_census *out);

/* SHA-256 helper (tokens, revocation codes, secrets). Returns DUO_OK or DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_store_sha256(uint8_t out[32], const uint8_t *in, size_t len);

/* Stores a new key in state pending (version 1, secret_version 1, no pending
 * device secret). Reads from info: key_id, citizen_id, paillier_bits, curve
 * (0 stores secp256k1, the curve of callers written before curves), q, q2;
 * from sec: x1, p/p_len, q/q_len, current (the first device secret).
 * Returns: DUO_OK; DUO_E_EXISTS (key id taken); DUO_E_INVALID_ARG; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_insert_pending(duo_keystore *ks, const duo_key_info *info,
                                                           const duo_key_secrets *sec, const duo_audit_event *ev);

/* Enrolment records (schema v2): written when enrolment round 4 succeeds so
 * that the confirmation can be checked from the database alone (after a
 * restart, or repeated after a lost reply).
 *
 * duo_keystore_key_insert_enrolment: duo_keystore_key_insert_pending plus, in
 * the same transaction, the record sid -> key id, SHA-256(token). The record
 * lives as long as the key row (deleted with a purged pending key).
 * Returns: as duo_keystore_key_insert_pending (DUO_E_EXISTS also for a taken sid). */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_insert_enrolment(duo_keystore *ks, const duo_key_info *info,
                                                             const duo_key_secrets *sec, const uint8_t sid[32],
                                                             const uint8_t *token, size_t token_len,
                                                             const duo_audit_event *ev);

/* The key id recorded for an enrolment sid.
 * Returns: DUO_OK; DUO_E_NOT_FOUND; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_enrolment_key(duo_keystore *ks, uint8_t key_id[DUO_KEY_ID_BYTES],
                                                      const uint8_t sid[32]);

/* duo_keystore_key_activate for the key and token recorded for sid.
 * Returns: as duo_keystore_key_activate. */
DUO_WARN_UNUSED_RESULT int duo_keystore_enrolment_activate(duo_keystore *ks, const uint8_t sid[32],
                                                           const uint8_t *revocation_code, size_t revocation_code_len,
                                                           const duo_audit_event *ev);

/* Reads a key. sec may be NULL (nothing secret is opened then).
 * Returns: DUO_OK; DUO_E_NOT_FOUND; DUO_E_STATE_CORRUPT (a sealed column fails
 *          to open: edited, swapped, wrong KEK); DUO_E_STORE.
 * Out:  info; sec (SECRET; wiped on failure). For a revoked key sec is all zero. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_get(duo_keystore *ks, duo_key_info *info, duo_key_secrets *sec,
                                                const uint8_t key_id[DUO_KEY_ID_BYTES]);

/* Lists keys (all, or one citizen's if citizen_id is non-NULL), by created_at. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_list(duo_keystore *ks, const char *citizen_id, duo_key_info_cb cb,
                                                 void *data);

/* Atomically: consumes the enrolment token (it must be unused, unexpired and
 * issued to the key's citizen; for a key with a role, the token's slot of
 * that role is filled and the token is spent when both are: schema v7),
 * moves the key pending -> active, stores the
 * SHA-256 of the one-time revocation code, appends ev.
 * Returns: DUO_OK; DUO_E_NOT_FOUND; DUO_E_PROTO_STATE (key not pending);
 *          DUO_E_TOKEN_INVALID (unknown, used, other citizen);
 *          DUO_E_TOKEN_ROLE_USED (the role's slot is taken);
 *          DUO_E_TOKEN_EXPIRED; DUO_E_STORE. Nothing changes on failure. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_activate(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                     const uint8_t *token, size_t token_len,
                                                     const uint8_t *revocation_code, size_t revocation_code_len,
                                                     const duo_audit_event *ev);

/* Atomically writes state, pin_failures, locked_until (and reason if non-NULL)
 * and appends ev. Allowed: any change among pending/active/locked;
 * -> suspended or revoked from any non-final state; suspended -> revoked.
 * Moving to revoked this way also destroys the secrets.
 * Returns: DUO_OK; DUO_E_CONFLICT (version moved on: re-read and retry);
 *          DUO_E_KEY_REVOKED / DUO_E_KEY_SUSPENDED (final state);
 *          DUO_E_NOT_FOUND; DUO_E_INVALID_ARG; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_update_policy(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                          uint64_t expect_version, const duo_key_policy *pol,
                                                          const duo_audit_event *ev);

/* Marks the key moved to the inner channel (schema v12 / PG v11; docs/
 * PROTOCOL.md "Inner channel"): from then on its plaintext requests are
 * refused. One durable transaction with ev (appended only if the flag
 * changed); the flag is never cleared. changed (may be NULL): 1 if this call
 * set it, 0 if it was set already.
 * Returns: DUO_OK; DUO_E_NOT_FOUND; DUO_E_POLICY_MAC (the row was edited);
 *          DUO_E_UNSUPPORTED (a backend without the flag); DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_set_moved(duo_keystore *ks, int *changed,
                                                      const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                      const duo_audit_event *ev);

/* Rotates the device secrets in one transaction (DESIGN 3.5):
 *   promote != 0: pending -> current, the old current retires (needs a pending);
 *   next != NULL: becomes the new pending; a pending that was not promoted is
 *                 superseded and retires.
 * All secret columns are resealed under secret_version + 1.
 * Returns: DUO_OK; DUO_E_CONFLICT; DUO_E_PROTO_STATE (promote without pending);
 *          DUO_E_KEY_REVOKED / DUO_E_KEY_SUSPENDED; DUO_E_NOT_FOUND;
 *          DUO_E_STATE_CORRUPT; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_secret_rotate(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                      uint64_t expect_version, int promote, const uint8_t *next,
                                                      const duo_audit_event *ev);

/* duo_keystore_secret_rotate that also records, in the same transaction, that
 * the device nonce `nonce` (nonce_len bytes) was accepted under the device
 * secret `seen_secret` (both NULL: nothing recorded), and on success gives
 * the key as written (info_out, sec_out: each may be NULL), so that the
 * caller need not read the row again. See the seen-nonce functions below.
 * Returns: as duo_keystore_secret_rotate; DUO_E_EXISTS if that nonce was
 *          already recorded under that secret (a replay: nothing written). */
DUO_WARN_UNUSED_RESULT int duo_keystore_secret_rotate_seen(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                           uint64_t expect_version, int promote, const uint8_t *next,
                                                           const uint8_t *seen_secret, const uint8_t *nonce,
                                                           size_t nonce_len, const duo_audit_event *ev,
                                                           duo_key_info *info_out, duo_key_secrets *sec_out);

/* The write that releases a signature (DESIGN 3.3-3.5), one transaction on
 * one read of the key row: refuses a key that is revoked, suspended, pending
 * or locked until later; resets a non-zero PIN failure count or an expired
 * lock (appending reset_ev, which may be NULL, first); stores `next` as the
 * pending device secret (a pending one still there is superseded and
 * retires); appends ev. Whatever the key's version: the caller authenticated
 * the session's requests, not a version of the row.
 * Returns: DUO_OK; DUO_E_KEY_REVOKED / DUO_E_KEY_SUSPENDED / DUO_E_KEY_LOCKED
 *          / DUO_E_PROTO_STATE (pending) with *info set to the row read (for
 *          the message); DUO_E_NOT_FOUND; DUO_E_STATE_CORRUPT; DUO_E_STORE.
 *          Nothing is written on failure. */
DUO_WARN_UNUSED_RESULT int duo_keystore_sign_commit(duo_keystore *ks, duo_key_info *info,
                                                    const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                    const uint8_t next[DUO_DEVICE_SECRET_BYTES],
                                                    const duo_audit_event *reset_ev, const duo_audit_event *ev);

/* Seen device nonces (schema v3; DESIGN 3.5, docs/SECURITY.md 3.2). A request
 * MAC'd under a retired device secret is either a clone (a new request) or a
 * replay of a request the cloud already accepted under that secret; the
 * cloud tells them apart by remembering SHA-256(nonce) per key and per
 * SHA-256(secret). Bounded: DUO_SEEN_NONCES_PER_SECRET per secret (a secret
 * normally lives for one or a few requests); deleted with the retired
 * secrets (revocation, purge of a pending key).
 *
 * duo_keystore_nonce_record: records it in its own transaction with ev (may
 * be NULL). Does not bump the key's version.
 * Returns: DUO_OK; DUO_E_EXISTS (already recorded: a replay; nothing written);
 *          DUO_E_KEY_REVOKED; DUO_E_NOT_FOUND; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_nonce_record(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                     const uint8_t secret[DUO_DEVICE_SECRET_BYTES],
                                                     const uint8_t *nonce, size_t nonce_len, const duo_audit_event *ev);

/* Durability of this store connection's following writes. DUO_COMMIT_DURABLE
 * (the default): a write is on disk when it returns. DUO_COMMIT_DEFERRED: it
 * survives a crash of the process at once, but an OS crash or power failure
 * may lose it until the next durable commit (of any connection: they share
 * one log). Only for writes that a durable write is about to follow and whose
 * loss is harmless: SignStart's promotion of the device's new secret and its
 * request record, made durable by SignFinish (docs/STORE.md, "Deferred
 * commits"). SQLite: synchronous = NORMAL instead of FULL (WAL); a
 * PostgreSQL backend would use synchronous_commit = off.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_STORE. */
enum { DUO_COMMIT_DEFERRED = 0, DUO_COMMIT_DURABLE = 1 };
DUO_WARN_UNUSED_RESULT int duo_keystore_commit_mode(duo_keystore *ks, int mode);

/* Checks the store's structure (SQLite: PRAGMA quick_check, or integrity_check
 * with full != 0): pages, b-trees, indexes. The daemon runs the quick one at
 * start and refuses a damaged store.
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT (damaged: the first finding in why);
 *          another error if the check itself could not run. */
DUO_WARN_UNUSED_RESULT int duo_keystore_integrity_check(duo_keystore *ks, int full, char *why, size_t why_cap);

/* Sends SQLite's own error reports (the reason behind a DUO_E_STORE, a full
 * disk, an I/O error, a lock held too long) to stderr as "PROG: store error:
 * ..." lines. Process-wide; call before any store is opened. Constraint
 * violations (expected: they detect replays) and notices are not reported. */
DUO_WARN_UNUSED_RESULT int duo_keystore_sqlite_log_errors(const char *prog);
/* The same, but each report goes to sink as one line "MESSAGE (REASON)"
 * (the daemon's logger) instead of stderr. Call once, before any store
 * opens. Returns DUO_OK or DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_sqlite_log_to(void (*sink)(const char *line));

/* *seen = 1 if the nonce was recorded under that secret for the key. */
DUO_WARN_UNUSED_RESULT int duo_keystore_nonce_seen(duo_keystore *ks, int *seen, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                   const uint8_t secret[DUO_DEVICE_SECRET_BYTES], const uint8_t *nonce,
                                                   size_t nonce_len);

/* Calls match(data, secret) for each retired device secret of the key, newest
 * first (the secret is SECRET and wiped after the call), until match returns
 * nonzero. *found = 1 if one matched.
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int
duo_keystore_secret_find_retired(duo_keystore *ks, int *found, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                 int (*match)(void *data, const uint8_t secret[DUO_DEVICE_SECRET_BYTES]), void *data);

/* *found = 1 if SHA-256(secret) equals the hash of a retired secret of the key. */
DUO_WARN_UNUSED_RESULT int duo_keystore_secret_is_retired(duo_keystore *ks, int *found,
                                                          const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                          const uint8_t secret[DUO_DEVICE_SECRET_BYTES]);

/* Revokes a key and destroys its secret columns, in one transaction with ev.
 * With revocation_code (non-NULL): it must match the stored one-time code,
 * which is consumed. Admin and device revocations pass NULL (the caller has
 * authenticated them).
 * Returns: DUO_OK; DUO_E_KEY_REVOKED (already); DUO_E_UNAUTHENTICATED (wrong or
 *          no code); DUO_E_NOT_FOUND; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_key_revoke(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                   const uint8_t *revocation_code, size_t revocation_code_len,
                                                   const char *reason, const duo_audit_event *ev);

/* Deletes pending keys created more than max_age seconds ago (abandoned
 * enrolments). ev, if given, is appended once when at least one was deleted. */
DUO_WARN_UNUSED_RESULT int duo_keystore_purge_pending(duo_keystore *ks, size_t *n_purged, int64_t max_age,
                                                      const duo_audit_event *ev);

/* Stores an enrolment token (only its SHA-256) for citizen_id, valid for ttl
 * seconds. token is generated by the caller (>= 16 random bytes).
 * Returns: DUO_OK; DUO_E_EXISTS; DUO_E_INVALID_ARG; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_token_insert(duo_keystore *ks, const uint8_t *token, size_t token_len,
                                                     const char *citizen_id, int64_t ttl, const duo_audit_event *ev);

/* duo_keystore_token_insert with the citizen's name (schema v4): copied to
 * the key its enrolment activates, for the certificate's subject.
 * citizen_name: printable UTF-8, at most DUO_CITIZEN_NAME_MAX bytes; NULL or
 * "" for none (the old form).
 * Returns: as duo_keystore_token_insert. */
DUO_WARN_UNUSED_RESULT int duo_keystore_token_insert_named(duo_keystore *ks, const uint8_t *token, size_t token_len,
                                                           const char *citizen_id, const char *citizen_name,
                                                           int64_t ttl, const duo_audit_event *ev);

/* Checks a token without consuming it. Out: citizen_id it was issued to.
 * Returns: DUO_OK; DUO_E_TOKEN_INVALID (unknown or used); DUO_E_TOKEN_EXPIRED. */
DUO_WARN_UNUSED_RESULT int duo_keystore_token_check(duo_keystore *ks, char citizen_id[DUO_CITIZEN_ID_MAX + 1],
                                                    const uint8_t *token, size_t token_len);

/* duo_keystore_token_check for an enrolment of a role (schema v7): a token
 * admits one DUO_KEY_ROLE_AUTH and one DUO_KEY_ROLE_SIGN enrolment, or one
 * role-less (legacy) enrolment that spends it whole; role < 0 names none.
 * Returns: as duo_keystore_token_check; DUO_E_TOKEN_ROLE_USED (that role's
 *          slot is taken, or a legacy enrolment on a token already half used);
 *          DUO_E_INVALID_ARG (role out of range). */
DUO_WARN_UNUSED_RESULT int duo_keystore_token_check_role(duo_keystore *ks, char citizen_id[DUO_CITIZEN_ID_MAX + 1],
                                                         const uint8_t *token, size_t token_len, int role);

/* Consumes a token: atomic, exactly one caller among concurrent ones (any
 * connection, any process) gets DUO_OK. Errors as duo_keystore_token_check. */
DUO_WARN_UNUSED_RESULT int duo_keystore_token_consume(duo_keystore *ks, char citizen_id[DUO_CITIZEN_ID_MAX + 1],
                                                      const uint8_t *token, size_t token_len,
                                                      const duo_audit_event *ev);

/* Appends one audit entry in its own transaction. seq may be NULL. */
DUO_WARN_UNUSED_RESULT int duo_keystore_audit_append(duo_keystore *ks, uint64_t *seq, const duo_audit_event *ev);

/* Calls cb for every entry with seq >= from_seq, in order. */
DUO_WARN_UNUSED_RESULT int duo_keystore_audit_list(duo_keystore *ks, uint64_t from_seq, duo_audit_entry_cb cb,
                                                   void *data);

/* Walks the whole chain and checks it against the head record.
 * Returns: DUO_OK (*count = entries, head = last hash); DUO_E_STATE_CORRUPT with
 *          *bad_seq = first bad seq (edited, deleted, reordered, truncated);
 *          DUO_E_STORE. bad_seq, count and head may be NULL. */
DUO_WARN_UNUSED_RESULT int duo_keystore_audit_verify(duo_keystore *ks, uint64_t *bad_seq, uint64_t *count,
                                                     uint8_t head[DUO_AUDIT_HASH_LEN]);

/* Re-MACs every key row's policy fields under the newest KEK's key (see
 * backend op policy_remac): the last step of a KEK rotation before the
 * switch. Returns: DUO_OK; DUO_E_POLICY_MAC; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_policy_remac(duo_keystore *ks, size_t *n);

/* Copies the store to a new file at path (backend op backup_to), safe while
 * the daemon serves. Returns: DUO_OK; DUO_E_EXISTS; DUO_E_IO;
 * DUO_E_UNSUPPORTED (backend without it); DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_backup(duo_keystore *ks, const char *path);

/* ------------------------------------- resynchronisation (SECURITY 1.10) */
/* `restore`: opens one resynchronisation for the restore epoch on every
 * active or locked key, and appends ev (store.restore), in one transaction.
 * Returns: DUO_OK (*n keys); DUO_E_UNSUPPORTED (the backend has none:
 *          PostgreSQL); DUO_E_POLICY_MAC (a row was edited: nothing
 *          written); DUO_E_INVALID_ARG (epoch 0); DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_resync_open(duo_keystore *ks, uint64_t epoch, size_t *n,
                                                    const duo_audit_event *ev);
/* Adopts the device's secret in one transaction on the row at
 * expect_version whose resync is open for epoch: `secret` becomes the
 * current secret (no pending), the old current and pending retire (a device
 * still holding them is a clone), the PIN count and an expired lock clear,
 * resync_epoch = 0 and resync_used = epoch; then ev (secret.resync).
 * Returns: DUO_OK (info_out, may be NULL: the row as written); DUO_E_CONFLICT
 *          (re-read, decide again); DUO_E_RESYNC_NOT_OPEN / DUO_E_RESYNC_USED
 *          / DUO_E_RESYNC_EPOCH (the row says so now); DUO_E_KEY_LOCKED;
 *          DUO_E_KEY_REVOKED / DUO_E_KEY_SUSPENDED; DUO_E_NOT_FOUND;
 *          DUO_E_STATE_CORRUPT; DUO_E_STORE. Nothing changes on failure.
 * In:   secret is SECRET (copied into the sealed column only). */
DUO_WARN_UNUSED_RESULT int duo_keystore_resync_adopt(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                     uint64_t expect_version, uint64_t epoch,
                                                     const uint8_t secret[DUO_DEVICE_SECRET_BYTES],
                                                     const duo_audit_event *ev, duo_key_info *info_out);
/* 1 if the backend keeps the resync fields (SQLite, PostgreSQL), else 0. */
int duo_keystore_resync_supported(const duo_keystore *ks);
/* The decision the row's resync fields give for a Resync naming epoch:
 * DUO_OK (open for it), DUO_E_RESYNC_USED, DUO_E_RESYNC_EPOCH (open for
 * another), DUO_E_RESYNC_NOT_OPEN. */
int duo_key_resync_state(const duo_key_info *info, uint64_t epoch);

/* The high-water mark (mark.h) against this store: its audit chain must hold
 * an entry at mark->seq whose hash is mark->head.
 * Returns: DUO_OK; DUO_E_STORE_ROLLED_BACK (the store's head is older than
 *          the mark, or its chain differs at the mark); DUO_E_STORE.
 * Out:  *store_seq (may be NULL): the store's audit entry count. */
typedef struct duo_mark_rec duo_mark_rec;
DUO_WARN_UNUSED_RESULT int duo_keystore_mark_check(duo_keystore *ks, uint64_t *store_seq, const duo_mark_rec *mark);

/* ------------------------------------------------ signing sessions in the store
 * Round 1's state kept in the store so that round 2 may reach any node
 * (DESIGN 8.6; docs/STORE.md "Signing sessions"). state is sealed under the
 * KEK with the AAD key id || sid (column "sign_sessions.state"), so a row
 * moved to another key or sid does not open. */

/* 1 if the backend keeps signing sessions (PostgreSQL), 0 if the caller keeps
 * them in memory (SQLite: one daemon per store). */
int duo_keystore_sign_sessions_shared(const duo_keystore *ks);
/* Stores a session after round 1, live for ttl_s seconds, in one transaction
 * that holds the key row: live sessions of the key are superseded (one live
 * signing session per key across all nodes).
 * Returns: DUO_OK; DUO_E_SESSION_BUSY (a round 2 of the key is running on
 *          some node); DUO_E_NOT_FOUND (no such key); DUO_E_EXISTS (sid
 *          stored already); DUO_E_UNSUPPORTED (backend without sessions);
 *          DUO_E_INVALID_ARG (NULL, len 0 or over DUO_SIGN_SESS_STATE_MAX);
 *          DUO_E_STORE, DUO_E_TIMEOUT.
 * In:   state (SECRET, the caller wipes it). */
DUO_WARN_UNUSED_RESULT int duo_keystore_sign_session_put(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                         const uint8_t sid[32], const uint8_t *state, size_t len,
                                                         unsigned ttl_s);
/* Takes a live session for its round 2: exactly one caller across all nodes
 * ever gets it (the row turns "taken" in one statement, before anything is
 * decrypted), even if that caller then dies.
 * Returns: DUO_OK; DUO_E_NOT_FOUND (unknown, or purged); DUO_E_PROTO_STATE
 *          (already taken or used); DUO_E_SESSION_SUPERSEDED;
 *          DUO_E_SESSION_EXPIRED; DUO_E_STATE_CORRUPT (the sealed state does
 *          not open under its key id and sid); DUO_E_BUFFER_TOO_SMALL;
 *          DUO_E_UNSUPPORTED; DUO_E_STORE, DUO_E_TIMEOUT.
 * Out:  key_id; state[0..*len) (SECRET: wipe it; wiped on failure). */
DUO_WARN_UNUSED_RESULT int duo_keystore_sign_session_take(duo_keystore *ks, uint8_t key_id[DUO_KEY_ID_BYTES],
                                                          uint8_t *state, size_t cap, size_t *len,
                                                          const uint8_t sid[32]);
/* Marks a taken session used (its round 2 answered, whatever the answer). */
DUO_WARN_UNUSED_RESULT int duo_keystore_sign_session_end(duo_keystore *ks, const uint8_t sid[32]);
/* Deletes sessions expired more than DUO_SIGN_SESS_KEEP_S ago (*n: how many). */
DUO_WARN_UNUSED_RESULT int duo_keystore_sign_session_purge(duo_keystore *ks, size_t *n);

/* Fills rec->seq and rec->head with the store's audit head (rec->epoch is
 * left). Returns: DUO_OK; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_mark_head(duo_keystore *ks, duo_mark_rec *rec);

#endif
