/* duosign-oidc: its own small SQLite store (DIR/oidc.db) for clients,
 * provider keys, authorization codes, access tokens, login transactions and
 * the evidence log. Secrets (the provider's P-256 keys, the pairwise-subject
 * secret) are sealed under the data directory's KEK (cloud_half/store seal.h,
 * kekref.h: the same KEK code as duosign-cloud; docs/OIDC.md "Store").
 * Client secrets, codes and access tokens are high-entropy random values and
 * kept only as SHA-256 hashes, so a copy of the database issues nothing.
 *
 * Thread-safety: one connection opened SQLITE_OPEN_FULLMUTEX; every function
 * that reads then writes holds the store's mutex, so a code is consumed once
 * even when two token requests race. */
#ifndef DUOSIGN_OIDC_OSTORE_H
#define DUOSIGN_OIDC_OSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"
#include "seal.h"

#define OS_ID_MAX 64
#define OS_URI_MAX 512
#define OS_NAME_MAX 128
#define OS_TEXT_MAX 4096

typedef struct os_store os_store;

typedef struct {
    char id[OS_ID_MAX];
    char name[OS_NAME_MAX];
    char redirect_uri[OS_URI_MAX];
    char sector[OS_URI_MAX];
    uint8_t secret_hash[32];          /* SHA-256 of the client secret; all zero: none */
    char public_key_pem[OS_TEXT_MAX]; /* private_key_jwt; empty: none */
} os_client;

/* The login transaction between /authorize and the code (one per page). */
typedef struct {
    char txn[OS_ID_MAX];   /* random, in the page */
    uint8_t csrf_hash[32]; /* SHA-256 of the page's cookie value */
    char client_id[OS_ID_MAX];
    char redirect_uri[OS_URI_MAX];
    char state[OS_URI_MAX];
    char nonce[OS_URI_MAX];
    char scope[OS_URI_MAX];
    char code_challenge[OS_ID_MAX + 8];
    char session_id[OS_ID_MAX]; /* the signer's RP session */
    char verification_code[8];
    char link[OS_URI_MAX];
    uint8_t challenge[32]; /* our RP challenge */
    char display_text[OS_URI_MAX];
    int64_t expires_at;
    int done; /* a code was issued (the page is spent) */
} os_txn;

/* What an authorization code stands for. */
typedef struct {
    char client_id[OS_ID_MAX];
    char redirect_uri[OS_URI_MAX];
    char nonce[OS_URI_MAX];
    char scope[OS_URI_MAX];
    char code_challenge[OS_ID_MAX + 8];
    char citizen_id[OS_NAME_MAX];
    char name[OS_NAME_MAX]; /* from the citizen's certificate (profile scope) */
    int64_t auth_time, expires_at;
    int used;
    /* evidence: the two-party signature over the login challenge */
    uint8_t signature[64], digest[32], challenge[32], server_random[64];
    size_t server_random_len;
    char session_id[OS_ID_MAX];
    char verification_code[8];
    uint8_t certificate[4096]; /* the citizen's authentication certificate, DER */
    size_t certificate_len;
    char display_text[OS_URI_MAX]; /* what the device showed (in the signed structure) */
    char rp_name[OS_NAME_MAX];     /* the provider's registered name (in the signed structure) */
} os_code;

/* Opens (create: makes) DIR/oidc.db and loads the KEK DIR/kek.ref names.
 * Returns: DUO_OK; DUO_E_OIDC_NO_STORE (no oidc.db and !create); DUO_E_IO;
 *          the KEK loader's errors (message in err). */
DUO_WARN_UNUSED_RESULT int os_open(os_store **out, char *err, size_t err_cap, const char *dir, int create);
void os_close(os_store *s);

/* Seconds since the epoch: the real clock, or the test clock file
 * (--test-clock FILE: its decimal contents) so tests never wait. */
int64_t os_now(const os_store *s);
void os_set_clock_file(os_store *s, const char *path);

/* Clients. os_client_add fills c->id; the secret (secret_out, NUL-terminated,
 * shown once) is generated unless c has a public key. */
DUO_WARN_UNUSED_RESULT int os_client_add(os_store *s, os_client *c, char *secret_out, size_t secret_cap);
/* Returns DUO_OK or DUO_E_OIDC_CLIENT_UNKNOWN. */
DUO_WARN_UNUSED_RESULT int os_client_get(os_store *s, const char *id, os_client *c);
DUO_WARN_UNUSED_RESULT int os_client_list(os_store *s, void (*fn)(void *, const os_client *), void *user);

/* Provider signing keys (P-256). os_key_rotate makes a new current key; the
 * previous ones stay published until retire_after seconds after they stopped
 * signing (longer than any token they signed lives), then are deleted. */
DUO_WARN_UNUSED_RESULT int os_key_rotate(os_store *s, int64_t retire_after, char *kid_out, size_t kid_cap);
/* The current key (EVP_PKEY *, caller frees) and its kid. */
DUO_WARN_UNUSED_RESULT int os_key_current(os_store *s, void **pkey, char *kid, size_t kid_cap);
/* Calls fn for every published public key (current first). */
DUO_WARN_UNUSED_RESULT int os_key_each_public(os_store *s, void (*fn)(void *, const char *kid, const char *jwk),
                                              void *user);

/* The pairwise-subject secret (32 bytes, SECRET: wipe). */
DUO_WARN_UNUSED_RESULT int os_pairwise_secret(os_store *s, uint8_t out[32]);

/* Login transactions. */
DUO_WARN_UNUSED_RESULT int os_txn_put(os_store *s, const os_txn *t);
/* Returns DUO_OK or DUO_E_NOT_FOUND. */
DUO_WARN_UNUSED_RESULT int os_txn_get(os_store *s, const char *txn, os_txn *t);
/* Marks the page spent; DUO_E_NOT_FOUND if it already was (one code per page). */
DUO_WARN_UNUSED_RESULT int os_txn_finish(os_store *s, const char *txn);

/* Codes: stored by SHA-256 of the code. */
DUO_WARN_UNUSED_RESULT int os_code_put(os_store *s, const uint8_t code_hash[32], const os_code *c);
/* Atomically reads and marks used. Returns DUO_OK (c->used tells whether it
 * was already used before this call) or DUO_E_NOT_FOUND. */
DUO_WARN_UNUSED_RESULT int os_code_take(os_store *s, const uint8_t code_hash[32], os_code *c);

/* Access tokens, tied to the code they came from (a replayed code revokes them). */
DUO_WARN_UNUSED_RESULT int os_token_put(os_store *s, const uint8_t token_hash[32], const uint8_t code_hash[32],
                                        const char *jti, const char *client_id, const char *sub, const char *scope,
                                        const char *name, int64_t expires_at);
DUO_WARN_UNUSED_RESULT int os_tokens_revoke_by_code(os_store *s, const uint8_t code_hash[32]);
/* Returns DUO_OK, DUO_E_NOT_FOUND (unknown, revoked or expired). Out strings
 * are OS_URI_MAX / OS_NAME_MAX. */
DUO_WARN_UNUSED_RESULT int os_token_get(os_store *s, const uint8_t token_hash[32], char *sub, char *scope, char *name);

/* A private_key_jwt assertion's jti is accepted once (until exp). Returns
 * DUO_OK, or DUO_E_EXISTS for a replay. */
DUO_WARN_UNUSED_RESULT int os_jti_once(os_store *s, const char *client_id, const char *jti, int64_t exp);

/* Prints the evidence row of an ID token's jti as JSON to stdout (binary
 * fields base64url, the certificate as PEM). Returns DUO_OK or DUO_E_NOT_FOUND. */
DUO_WARN_UNUSED_RESULT int os_audit_print(os_store *s, const char *jti);

/* Deletes login pages and codes expired more than keep seconds ago (a used
 * code is kept that long so its replay still revokes its tokens), expired
 * access tokens and assertion jtis. The audit table is never purged. */
DUO_WARN_UNUSED_RESULT int os_purge(os_store *s, int64_t keep);

/* Evidence: one row per issued ID token, with the citizen's signature. */
DUO_WARN_UNUSED_RESULT int os_audit_login(os_store *s, const char *jti, const os_code *c, const char *sub);

#endif
