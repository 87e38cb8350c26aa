/* duosign-oidc: the store (ostore.h). */
#include "ostore.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <jansson.h>
#include <sqlite3.h>

#include "duosign/mem.h"
#include "duosign/rng.h"
#include "jose.h"
#include "kekref.h"

#define OIDC_DB "oidc.db"
#define SEAL_COL_KEY "provider_key"
#define SEAL_COL_PAIRWISE "pairwise_secret"

struct os_store {
    sqlite3 *db;
    duo_kek kek; /* SECRET */
    pthread_mutex_t mu;
    char clock_file[PATH_MAX];
};

/* Schema v1; every statement creates only what is missing. */
static const char *schema =
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS clients(id TEXT PRIMARY KEY, name TEXT NOT NULL, redirect_uri TEXT NOT NULL,"
    " sector TEXT NOT NULL, secret_hash BLOB, public_key_pem TEXT, created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keys(kid TEXT PRIMARY KEY, sealed BLOB NOT NULL, jwk TEXT NOT NULL,"
    " created INTEGER NOT NULL, retired_at INTEGER, delete_after INTEGER);"
    "CREATE TABLE IF NOT EXISTS txns(txn TEXT PRIMARY KEY, csrf_hash BLOB NOT NULL, client_id TEXT NOT NULL,"
    " redirect_uri TEXT NOT NULL, state TEXT NOT NULL, nonce TEXT NOT NULL, scope TEXT NOT NULL,"
    " code_challenge TEXT NOT NULL, session_id TEXT NOT NULL, vc TEXT NOT NULL, link TEXT NOT NULL,"
    " challenge BLOB NOT NULL, display_text TEXT NOT NULL, expires_at INTEGER NOT NULL, done INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS codes(code_hash BLOB PRIMARY KEY, body TEXT NOT NULL, expires_at INTEGER NOT NULL,"
    " used INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS tokens(token_hash BLOB PRIMARY KEY, code_hash BLOB NOT NULL, jti TEXT NOT NULL,"
    " client_id TEXT NOT NULL, sub TEXT NOT NULL, scope TEXT NOT NULL, name TEXT NOT NULL,"
    " expires_at INTEGER NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS assertion_jtis(client_id TEXT NOT NULL, jti TEXT NOT NULL, exp INTEGER NOT NULL,"
    " PRIMARY KEY(client_id, jti));"
    "CREATE TABLE IF NOT EXISTS audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, jti TEXT NOT NULL,"
    " client_id TEXT NOT NULL, sub TEXT NOT NULL, citizen_id TEXT NOT NULL, session_id TEXT NOT NULL,"
    " verification_code TEXT NOT NULL, challenge BLOB NOT NULL, server_random BLOB NOT NULL,"
    " signed_digest BLOB NOT NULL, signature BLOB NOT NULL, certificate BLOB NOT NULL, rp_name TEXT NOT NULL,"
    " display_text TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(name, value) VALUES('schema', 1);";

int64_t os_now(const os_store *s) {
    if (s != NULL && s->clock_file[0] != '\0') {
        FILE *fp = fopen(s->clock_file, "re");
        long long v = 0;
        if (fp != NULL) {
            int ok = fscanf(fp, "%lld", &v) == 1;
            fclose(fp);
            if (ok) return (int64_t)v;
        }
    }
    return (int64_t)time(NULL);
}

void os_set_clock_file(os_store *s, const char *path) {
    snprintf(s->clock_file, sizeof s->clock_file, "%s", path ? path : "");
}

static int exec(os_store *s, const char *sql) {
    return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? DUO_OK : DUO_E_IO;
}

static sqlite3_stmt *prep(os_store *s, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    return st;
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t cap) {
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

static void col_blob(sqlite3_stmt *st, int i, uint8_t *out, size_t cap, size_t *len) {
    const void *b = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (n > cap) n = cap;
    if (b != NULL && n > 0) memcpy(out, b, n);
    if (len != NULL) *len = n;
}

/* Seals value under the KEK, bound to (name, column). */
static int seal(os_store *s, uint8_t *out, size_t cap, size_t *len, const char *name, const char *col,
                const uint8_t *pt, size_t pt_len) {
    return duo_seal_encrypt(&s->kek, out, cap, len, (const uint8_t *)name, strlen(name), col, 0, pt, pt_len, NULL);
}

static int unseal(os_store *s, uint8_t *out, size_t cap, size_t *len, const char *name, const char *col,
                  const uint8_t *sealed, size_t sealed_len) {
    return duo_seal_decrypt(&s->kek, out, cap, len, (const uint8_t *)name, strlen(name), col, 0, sealed, sealed_len);
}

/* Makes the pairwise secret once (init). */
static int ensure_pairwise(os_store *s) {
    uint8_t secret[32], sealed[32 + DUO_SEAL_OVERHEAD];
    size_t n = 0;
    int r;
    sqlite3_stmt *st = NULL;
    if ((r = duo_rng_bytes(NULL, secret, sizeof secret)) != DUO_OK) goto out;
    if ((r = seal(s, sealed, sizeof sealed, &n, "oidc.pairwise", SEAL_COL_PAIRWISE, secret, sizeof secret)) != DUO_OK)
        goto out;
    r = DUO_E_IO;
    if ((st = prep(s, "INSERT OR IGNORE INTO meta(name, value) VALUES('pairwise', ?)")) == NULL) goto out;
    sqlite3_bind_blob(st, 1, sealed, (int)n, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_DONE) r = DUO_OK;
out:
    sqlite3_finalize(st);
    duo_memzero(secret, sizeof secret);
    return r;
}

static int load_kek(os_store *s, char *err, size_t err_cap, const char *dir, int create) {
    duo_kek_refs refs;
    int r;
    if (create) {
        memset(&refs, 0, sizeof refs);
        snprintf(refs.current.ref, sizeof refs.current.ref, "file:kek");
        if ((r = duo_kek_slot_create(&s->kek, &refs.current, NULL, err, err_cap, dir)) != DUO_OK) return r;
        return duo_kek_refs_write(&refs, err, err_cap, dir);
    }
    if ((r = duo_kek_refs_read(&refs, err, err_cap, dir)) != DUO_OK) return r;
    return duo_kek_slot_load(&s->kek, err, err_cap, dir, &refs.current);
}

int os_open(os_store **out, char *err, size_t err_cap, const char *dir, int create) {
    char path[PATH_MAX];
    struct stat sb;
    os_store *s;
    int r = DUO_E_IO;
    *out = NULL;
    snprintf(path, sizeof path, "%s/" OIDC_DB, dir);
    int exists = stat(path, &sb) == 0;
    if (!exists && !create) {
        snprintf(err, err_cap, "%s does not exist; run duosign-oidc init --dir %s", path, dir);
        return DUO_E_OIDC_NO_STORE;
    }
    if (exists && create) {
        snprintf(err, err_cap, "%s exists already (init never overwrites)", path);
        return DUO_E_EXISTS;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) return DUO_E_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    if (create) (void)mkdir(dir, 0700);
    if ((r = load_kek(s, err, err_cap, dir, create)) != DUO_OK) goto fail;
    r = DUO_E_IO;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, err_cap, "cannot open %s", path);
        goto fail;
    }
    (void)chmod(path, 0600);
    sqlite3_busy_timeout(s->db, 5000);
    if (exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;") != DUO_OK || exec(s, schema) != DUO_OK) {
        snprintf(err, err_cap, "cannot create the schema in %s: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (create && ((r = ensure_pairwise(s)) != DUO_OK || (r = os_key_rotate(s, 0, NULL, 0)) != DUO_OK)) {
        snprintf(err, err_cap, "cannot make the provider's secrets: %s", duo_strerror(r));
        goto fail;
    }
    *out = s;
    return DUO_OK;
fail:
    os_close(s);
    return r;
}

void os_close(os_store *s) {
    if (s == NULL) return;
    sqlite3_close(s->db);
    duo_kek_clear(&s->kek);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ------------------------------------------------------------ clients */

int os_client_add(os_store *s, os_client *c, char *secret_out, size_t secret_cap) {
    uint8_t raw[32];
    int r;
    sqlite3_stmt *st = NULL;
    memset(c->secret_hash, 0, sizeof c->secret_hash);
    if ((r = duo_rng_bytes(NULL, raw, 16)) != DUO_OK) return r;
    jose_b64url(c->id, sizeof c->id, raw, 16);
    if (secret_out != NULL) secret_out[0] = '\0';
    if (c->public_key_pem[0] == '\0') {
        if ((r = duo_rng_bytes(NULL, raw, sizeof raw)) != DUO_OK) return r;
        jose_b64url(secret_out, secret_cap, raw, sizeof raw);
        SHA256((const unsigned char *)secret_out, strlen(secret_out), c->secret_hash);
        duo_memzero(raw, sizeof raw);
    }
    if ((st = prep(s, "INSERT INTO clients(id, name, redirect_uri, sector, secret_hash, public_key_pem, created)"
                      " VALUES(?,?,?,?,?,?,?)")) == NULL)
        return DUO_E_IO;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->redirect_uri, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->sector, -1, SQLITE_STATIC);
    if (c->public_key_pem[0] == '\0') sqlite3_bind_blob(st, 5, c->secret_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c->public_key_pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, os_now(s));
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    sqlite3_finalize(st);
    return r;
}

static void client_row(sqlite3_stmt *st, os_client *c) {
    memset(c, 0, sizeof *c);
    col_text(st, 0, c->id, sizeof c->id);
    col_text(st, 1, c->name, sizeof c->name);
    col_text(st, 2, c->redirect_uri, sizeof c->redirect_uri);
    col_text(st, 3, c->sector, sizeof c->sector);
    col_blob(st, 4, c->secret_hash, sizeof c->secret_hash, NULL);
    col_text(st, 5, c->public_key_pem, sizeof c->public_key_pem);
}

#define CLIENT_COLS "SELECT id, name, redirect_uri, sector, secret_hash, public_key_pem FROM clients"

int os_client_get(os_store *s, const char *id, os_client *c) {
    sqlite3_stmt *st = prep(s, CLIENT_COLS " WHERE id = ?");
    int r = DUO_E_OIDC_CLIENT_UNKNOWN;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        client_row(st, c);
        r = DUO_OK;
    }
    sqlite3_finalize(st);
    return r;
}

int os_client_list(os_store *s, void (*fn)(void *, const os_client *), void *user) {
    sqlite3_stmt *st = prep(s, CLIENT_COLS " ORDER BY created");
    os_client c;
    if (st == NULL) return DUO_E_IO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        client_row(st, &c);
        fn(user, &c);
    }
    sqlite3_finalize(st);
    return DUO_OK;
}

/* ------------------------------------------------------------ provider keys */

int os_key_rotate(os_store *s, int64_t retire_after, char *kid_out, size_t kid_cap) {
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    unsigned char *der = NULL;
    uint8_t sealed[256 + DUO_SEAL_OVERHEAD];
    char kid[64], jwk[512];
    size_t n = 0;
    int der_len = 0, r = DUO_E_INTERNAL;
    sqlite3_stmt *st = NULL;
    int64_t now = os_now(s);
    if (pk == NULL || (der_len = i2d_PrivateKey(pk, &der)) <= 0 || (size_t)der_len > 256) goto out;
    if ((r = jose_jwk_public(pk, kid, sizeof kid, jwk, sizeof jwk)) != DUO_OK) goto out;
    if ((r = seal(s, sealed, sizeof sealed, &n, kid, SEAL_COL_KEY, der, (size_t)der_len)) != DUO_OK) goto out;
    pthread_mutex_lock(&s->mu);
    r = DUO_E_IO;
    if (exec(s, "BEGIN IMMEDIATE") != DUO_OK) goto unlock;
    if ((st = prep(s, "UPDATE keys SET retired_at = ?1, delete_after = ?1 + ?2 WHERE retired_at IS NULL")) == NULL)
        goto rollback;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, retire_after);
    if (sqlite3_step(st) != SQLITE_DONE) goto rollback;
    sqlite3_finalize(st);
    if ((st = prep(s, "INSERT INTO keys(kid, sealed, jwk, created) VALUES(?,?,?,?)")) == NULL) goto rollback;
    sqlite3_bind_text(st, 1, kid, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, sealed, (int)n, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, jwk, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if (sqlite3_step(st) != SQLITE_DONE) goto rollback;
    sqlite3_finalize(st);
    st = NULL;
    if (exec(s, "COMMIT") == DUO_OK) {
        r = DUO_OK;
        if (kid_out != NULL) snprintf(kid_out, kid_cap, "%s", kid);
        goto unlock;
    }
rollback:
    (void)exec(s, "ROLLBACK");
unlock:
    pthread_mutex_unlock(&s->mu);
out:
    sqlite3_finalize(st);
    if (der != NULL) OPENSSL_clear_free(der, (size_t)(der_len > 0 ? der_len : 0));
    EVP_PKEY_free(pk);
    return r;
}

int os_key_current(os_store *s, void **pkey, char *kid, size_t kid_cap) {
    uint8_t sealed[512], der[512];
    size_t sl = 0, dl = 0;
    int r = DUO_E_NOT_FOUND;
    sqlite3_stmt *st = prep(s, "SELECT kid, sealed FROM keys WHERE retired_at IS NULL ORDER BY created DESC LIMIT 1");
    *pkey = NULL;
    if (st == NULL) return DUO_E_IO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        col_text(st, 0, kid, kid_cap);
        col_blob(st, 1, sealed, sizeof sealed, &sl);
        if ((r = unseal(s, der, sizeof der, &dl, kid, SEAL_COL_KEY, sealed, sl)) == DUO_OK) {
            const unsigned char *p = der;
            *pkey = d2i_AutoPrivateKey(NULL, &p, (long)dl);
            r = *pkey != NULL ? DUO_OK : DUO_E_STATE_CORRUPT;
        }
    }
    sqlite3_finalize(st);
    duo_memzero(der, sizeof der);
    return r;
}

int os_key_each_public(os_store *s, void (*fn)(void *, const char *, const char *), void *user) {
    sqlite3_stmt *st;
    char kid[64], jwk[512];
    int64_t now = os_now(s);
    pthread_mutex_lock(&s->mu);
    if ((st = prep(s, "DELETE FROM keys WHERE delete_after IS NOT NULL AND delete_after < ?")) != NULL) {
        sqlite3_bind_int64(st, 1, now);
        (void)sqlite3_step(st);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->mu);
    if ((st = prep(s, "SELECT kid, jwk FROM keys ORDER BY retired_at IS NOT NULL, created DESC")) == NULL)
        return DUO_E_IO;
    while (sqlite3_step(st) == SQLITE_ROW) {
        col_text(st, 0, kid, sizeof kid);
        col_text(st, 1, jwk, sizeof jwk);
        fn(user, kid, jwk);
    }
    sqlite3_finalize(st);
    return DUO_OK;
}

int os_pairwise_secret(os_store *s, uint8_t out[32]) {
    uint8_t sealed[128];
    size_t sl = 0, n = 0;
    int r = DUO_E_STATE_CORRUPT;
    sqlite3_stmt *st = prep(s, "SELECT value FROM meta WHERE name = 'pairwise'");
    if (st == NULL) return DUO_E_IO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        col_blob(st, 0, sealed, sizeof sealed, &sl);
        r = unseal(s, out, 32, &n, "oidc.pairwise", SEAL_COL_PAIRWISE, sealed, sl);
        if (r == DUO_OK && n != 32) r = DUO_E_STATE_CORRUPT;
    }
    sqlite3_finalize(st);
    return r;
}

/* ------------------------------------------------------------ login transactions */

int os_txn_put(os_store *s, const os_txn *t) {
    sqlite3_stmt *st = prep(s, "INSERT INTO txns(txn, csrf_hash, client_id, redirect_uri, state, nonce, scope,"
                               " code_challenge, session_id, vc, link, challenge, display_text, expires_at, done)"
                               " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,0)");
    int r;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_text(st, 1, t->txn, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, t->csrf_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->redirect_uri, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, t->nonce, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, t->scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, t->code_challenge, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, t->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, t->verification_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, t->link, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, t->challenge, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, t->display_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 14, t->expires_at);
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    sqlite3_finalize(st);
    return r;
}

int os_txn_get(os_store *s, const char *txn, os_txn *t) {
    sqlite3_stmt *st =
        prep(s, "SELECT txn, csrf_hash, client_id, redirect_uri, state, nonce, scope, code_challenge,"
                " session_id, vc, link, challenge, display_text, expires_at, done FROM txns WHERE txn = ?");
    int r = DUO_E_NOT_FOUND;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        memset(t, 0, sizeof *t);
        col_text(st, 0, t->txn, sizeof t->txn);
        col_blob(st, 1, t->csrf_hash, 32, NULL);
        col_text(st, 2, t->client_id, sizeof t->client_id);
        col_text(st, 3, t->redirect_uri, sizeof t->redirect_uri);
        col_text(st, 4, t->state, sizeof t->state);
        col_text(st, 5, t->nonce, sizeof t->nonce);
        col_text(st, 6, t->scope, sizeof t->scope);
        col_text(st, 7, t->code_challenge, sizeof t->code_challenge);
        col_text(st, 8, t->session_id, sizeof t->session_id);
        col_text(st, 9, t->verification_code, sizeof t->verification_code);
        col_text(st, 10, t->link, sizeof t->link);
        col_blob(st, 11, t->challenge, 32, NULL);
        col_text(st, 12, t->display_text, sizeof t->display_text);
        t->expires_at = sqlite3_column_int64(st, 13);
        t->done = sqlite3_column_int(st, 14);
        r = DUO_OK;
    }
    sqlite3_finalize(st);
    return r;
}

int os_txn_finish(os_store *s, const char *txn) {
    sqlite3_stmt *st = prep(s, "UPDATE txns SET done = 1 WHERE txn = ? AND done = 0");
    int r;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_text(st, 1, txn, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    if (r == DUO_OK && sqlite3_changes(s->db) != 1) r = DUO_E_NOT_FOUND;
    sqlite3_finalize(st);
    return r;
}

/* ------------------------------------------------------------ codes and tokens */

/* A code's record as JSON (binary fields base64url): the row outlives the
 * build that wrote it, so no C struct goes into the database. */
static int put_str(json_t *j, const char *k, const char *v) { return json_object_set_new(j, k, json_string(v)); }

static int put_bin(json_t *j, const char *k, const uint8_t *v, size_t n) {
    char b[6000];
    jose_b64url(b, sizeof b, v, n);
    return json_object_set_new(j, k, json_string(b));
}

static char *code_encode(const os_code *c) {
    json_t *j = json_object();
    char *out = NULL;
    if (j != NULL && put_str(j, "client_id", c->client_id) == 0 && put_str(j, "redirect_uri", c->redirect_uri) == 0 &&
        put_str(j, "nonce", c->nonce) == 0 && put_str(j, "scope", c->scope) == 0 &&
        put_str(j, "code_challenge", c->code_challenge) == 0 && put_str(j, "citizen_id", c->citizen_id) == 0 &&
        put_str(j, "name", c->name) == 0 && put_str(j, "session_id", c->session_id) == 0 &&
        put_str(j, "verification_code", c->verification_code) == 0 &&
        put_str(j, "display_text", c->display_text) == 0 && put_str(j, "rp_name", c->rp_name) == 0 &&
        json_object_set_new(j, "auth_time", json_integer(c->auth_time)) == 0 &&
        put_bin(j, "signature", c->signature, sizeof c->signature) == 0 &&
        put_bin(j, "digest", c->digest, sizeof c->digest) == 0 &&
        put_bin(j, "challenge", c->challenge, sizeof c->challenge) == 0 &&
        put_bin(j, "server_random", c->server_random, c->server_random_len) == 0 &&
        put_bin(j, "certificate", c->certificate, c->certificate_len) == 0)
        out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

static int get_str(json_t *j, const char *k, char *out, size_t cap) {
    const char *v = json_string_value(json_object_get(j, k));
    if (v == NULL || strlen(v) >= cap) return 0;
    memcpy(out, v, strlen(v) + 1);
    return 1;
}

/* Decodes a base64url field of exactly want bytes (want 0: up to cap). */
static int get_bin(json_t *j, const char *k, uint8_t *out, size_t cap, size_t want, size_t *len) {
    const char *v = json_string_value(json_object_get(j, k));
    long n = v ? jose_b64url_decode(out, cap, v, strlen(v)) : -1;
    if (n < 0 || (want != 0 && (size_t)n != want)) return 0;
    if (len != NULL) *len = (size_t)n;
    return 1;
}

static int code_decode(const char *text, os_code *c) {
    json_t *j = json_loads(text, 0, NULL);
    int ok = j != NULL && get_str(j, "client_id", c->client_id, sizeof c->client_id) &&
             get_str(j, "redirect_uri", c->redirect_uri, sizeof c->redirect_uri) &&
             get_str(j, "nonce", c->nonce, sizeof c->nonce) && get_str(j, "scope", c->scope, sizeof c->scope) &&
             get_str(j, "code_challenge", c->code_challenge, sizeof c->code_challenge) &&
             get_str(j, "citizen_id", c->citizen_id, sizeof c->citizen_id) &&
             get_str(j, "name", c->name, sizeof c->name) &&
             get_str(j, "session_id", c->session_id, sizeof c->session_id) &&
             get_str(j, "verification_code", c->verification_code, sizeof c->verification_code) &&
             get_str(j, "display_text", c->display_text, sizeof c->display_text) &&
             get_str(j, "rp_name", c->rp_name, sizeof c->rp_name) && json_is_integer(json_object_get(j, "auth_time")) &&
             get_bin(j, "signature", c->signature, sizeof c->signature, sizeof c->signature, NULL) &&
             get_bin(j, "digest", c->digest, sizeof c->digest, sizeof c->digest, NULL) &&
             get_bin(j, "challenge", c->challenge, sizeof c->challenge, sizeof c->challenge, NULL) &&
             get_bin(j, "server_random", c->server_random, sizeof c->server_random, 0, &c->server_random_len) &&
             get_bin(j, "certificate", c->certificate, sizeof c->certificate, 0, &c->certificate_len);
    if (ok) c->auth_time = json_integer_value(json_object_get(j, "auth_time"));
    json_decref(j);
    return ok;
}

int os_code_put(os_store *s, const uint8_t code_hash[32], const os_code *c) {
    char *body = code_encode(c);
    sqlite3_stmt *st = body ? prep(s, "INSERT INTO codes(code_hash, body, expires_at) VALUES(?,?,?)") : NULL;
    int r = DUO_E_IO;
    if (st != NULL) {
        sqlite3_bind_blob(st, 1, code_hash, 32, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, body, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, c->expires_at);
        r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    }
    sqlite3_finalize(st);
    free(body);
    return r;
}

int os_code_take(os_store *s, const uint8_t code_hash[32], os_code *c) {
    sqlite3_stmt *st = NULL;
    int r = DUO_E_NOT_FOUND;
    pthread_mutex_lock(&s->mu);
    if ((st = prep(s, "SELECT body, used, expires_at FROM codes WHERE code_hash = ?")) == NULL) {
        r = DUO_E_IO;
        goto out;
    }
    sqlite3_bind_blob(st, 1, code_hash, 32, SQLITE_STATIC);
    memset(c, 0, sizeof *c);
    if (sqlite3_step(st) == SQLITE_ROW) {
        const unsigned char *body = sqlite3_column_text(st, 0);
        r = body != NULL && code_decode((const char *)body, c) ? DUO_OK : DUO_E_STATE_CORRUPT;
        c->used = sqlite3_column_int(st, 1);
        c->expires_at = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (r == DUO_OK && (st = prep(s, "UPDATE codes SET used = 1 WHERE code_hash = ?")) != NULL) {
        sqlite3_bind_blob(st, 1, code_hash, 32, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) r = DUO_E_IO;
    }
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->mu);
    return r;
}

int os_token_put(os_store *s, const uint8_t token_hash[32], const uint8_t code_hash[32], const char *jti,
                 const char *client_id, const char *sub, const char *scope, const char *name, int64_t expires_at) {
    sqlite3_stmt *st = prep(s, "INSERT INTO tokens(token_hash, code_hash, jti, client_id, sub, scope, name,"
                               " expires_at) VALUES(?,?,?,?,?,?,?,?)");
    int r;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, code_hash, 32, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, jti, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, scope, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, expires_at);
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    sqlite3_finalize(st);
    return r;
}

int os_tokens_revoke_by_code(os_store *s, const uint8_t code_hash[32]) {
    sqlite3_stmt *st = prep(s, "UPDATE tokens SET revoked = 1 WHERE code_hash = ?");
    int r;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_blob(st, 1, code_hash, 32, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    sqlite3_finalize(st);
    return r;
}

int os_token_get(os_store *s, const uint8_t token_hash[32], char *sub, char *scope, char *name) {
    sqlite3_stmt *st =
        prep(s, "SELECT sub, scope, name FROM tokens WHERE token_hash = ? AND revoked = 0 AND expires_at > ?");
    int r = DUO_E_NOT_FOUND;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, os_now(s));
    if (sqlite3_step(st) == SQLITE_ROW) {
        col_text(st, 0, sub, OS_URI_MAX);
        col_text(st, 1, scope, OS_URI_MAX);
        col_text(st, 2, name, OS_NAME_MAX);
        r = DUO_OK;
    }
    sqlite3_finalize(st);
    return r;
}

int os_jti_once(os_store *s, const char *client_id, const char *jti, int64_t exp) {
    sqlite3_stmt *st = prep(s, "INSERT OR IGNORE INTO assertion_jtis(client_id, jti, exp) VALUES(?,?,?)");
    int r;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_text(st, 1, client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, jti, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, exp);
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    if (r == DUO_OK && sqlite3_changes(s->db) != 1) r = DUO_E_EXISTS;
    sqlite3_finalize(st);
    return r;
}

int os_audit_login(os_store *s, const char *jti, const os_code *c, const char *sub) {
    sqlite3_stmt *st =
        prep(s, "INSERT INTO audit(at, jti, client_id, sub, citizen_id, session_id, verification_code,"
                " challenge, server_random, signed_digest, signature, certificate, rp_name, display_text)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    int r;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_int64(st, 1, os_now(s));
    sqlite3_bind_text(st, 2, jti, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->client_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, sub, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c->citizen_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, c->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, c->verification_code, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, c->challenge, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 9, c->server_random, (int)c->server_random_len, SQLITE_STATIC);
    sqlite3_bind_blob(st, 10, c->digest, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 11, c->signature, 64, SQLITE_STATIC);
    sqlite3_bind_blob(st, 12, c->certificate, (int)c->certificate_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, c->rp_name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 14, c->display_text, -1, SQLITE_STATIC);
    r = sqlite3_step(st) == SQLITE_DONE ? DUO_OK : DUO_E_IO;
    sqlite3_finalize(st);
    return r;
}

int os_purge(os_store *s, int64_t keep) {
    sqlite3_stmt *st = NULL;
    static const char *const sql[] = {
        "DELETE FROM txns WHERE expires_at < ?1 - ?2", "DELETE FROM codes WHERE expires_at < ?1 - ?2",
        "DELETE FROM tokens WHERE expires_at < ?1", "DELETE FROM assertion_jtis WHERE exp < ?1"};
    int r = DUO_OK;
    int64_t now = os_now(s);
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && r == DUO_OK; i++) {
        if ((st = prep(s, sql[i])) == NULL) return DUO_E_IO;
        sqlite3_bind_int64(st, 1, now);
        if (sqlite3_bind_parameter_count(st) > 1) sqlite3_bind_int64(st, 2, keep);
        if (sqlite3_step(st) != SQLITE_DONE) r = DUO_E_IO;
        sqlite3_finalize(st);
    }
    return r;
}

int os_audit_print(os_store *s, const char *jti) {
    static const char *const cols[] = {
        "at",       "jti",          "client_id",         "sub",       "citizen_id",    "session_id",
        "rp_name",  "display_text", "verification_code", "challenge", "server_random", "signed_digest",
        "signature"};
    sqlite3_stmt *st = prep(s, "SELECT at, jti, client_id, sub, citizen_id, session_id, rp_name, display_text,"
                               " verification_code, challenge, server_random, signed_digest, signature, certificate"
                               " FROM audit WHERE jti = ?");
    json_t *j = NULL;
    int r = DUO_E_NOT_FOUND;
    if (st == NULL) return DUO_E_IO;
    sqlite3_bind_text(st, 1, jti, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW && (j = json_object()) != NULL) {
        for (int i = 0; i < 13; i++) {
            if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
                json_object_set_new(j, cols[i], json_integer(sqlite3_column_int64(st, i)));
            else if (sqlite3_column_type(st, i) == SQLITE_BLOB)
                put_bin(j, cols[i], sqlite3_column_blob(st, i), (size_t)sqlite3_column_bytes(st, i));
            else
                json_object_set_new(j, cols[i], json_string((const char *)sqlite3_column_text(st, i)));
        }
        const unsigned char *der = sqlite3_column_blob(st, 13);
        X509 *cert = d2i_X509(NULL, &der, sqlite3_column_bytes(st, 13));
        BIO *b = BIO_new(BIO_s_mem());
        char *pem = NULL;
        long n = 0;
        if (cert != NULL && b != NULL && PEM_write_bio_X509(b, cert) == 1 && (n = BIO_get_mem_data(b, &pem)) > 0)
            json_object_set_new(j, "certificate", json_stringn(pem, (size_t)n));
        X509_free(cert);
        BIO_free(b);
        char *text = json_dumps(j, JSON_INDENT(2));
        if (text != NULL) printf("%s\n", text);
        free(text);
        r = text != NULL ? DUO_OK : DUO_E_NOMEM;
    }
    json_decref(j);
    sqlite3_finalize(st);
    return r;
}
