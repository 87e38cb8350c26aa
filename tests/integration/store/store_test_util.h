/* Helpers shared by the store tests: a temp directory with a KEK and a key store. */
#ifndef DUO_STORE_TEST_UTIL_H
#define DUO_STORE_TEST_UTIL_H

#include <ctype.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#ifdef DUO_STORE_TEST_PG
#include <libpq-fe.h>
#endif

#include "keystore.h"
#include "test_harness.h"

typedef struct store_env {
    char dir[PATH_MAX - 64];
    char db[PATH_MAX];
    char kek_path[PATH_MAX];
    duo_kek kek;
    duo_keystore *ks;
    int64_t now; /* the store's clock */
} store_env;

static inline int64_t env_clock(void *data) { return ((store_env *)data)->now; }

#ifdef DUO_STORE_TEST_PG
/* The PostgreSQL build of a store test (tests/integration/pg/pg_env.sh gives
 * DUO_TEST_PG_URL): each store_env gets its own empty schema, named after its
 * temp dir, and e->db becomes the URL that selects it. */
static inline int env_pg_schema(store_env *e) {
    const char *url = getenv("DUO_TEST_PG_URL"), *base = strrchr(e->dir, '/');
    char schema[64], sql[128];
    if (url == NULL || *url == '\0') {
        fprintf(stderr, "DUO_TEST_PG_URL is not set: run this test through tests/integration/pg/pg_env.sh\n");
        return -1;
    }
    snprintf(schema, sizeof schema, "s_%s", base != NULL ? base + 1 : "x");
    for (char *c = schema; *c; c++)
        *c = *c == '-' ? '_' : (char)tolower((unsigned char)*c); /* search_path folds case */
    PGconn *c = PQconnectdb(url);
    snprintf(sql, sizeof sql, "CREATE SCHEMA \"%s\"", schema);
    PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "cannot create schema %s: %s\n", schema, PQerrorMessage(c));
    PQclear(res);
    PQfinish(c);
    snprintf(e->db, sizeof e->db, "%s%coptions=-csearch_path%%3D%s", url, strchr(url, '?') ? '&' : '?', schema);
    return ok ? 0 : -1;
}
#endif

static inline int env_mkdir(store_env *e) {
    const char *tmp = getenv("TMPDIR");
    memset(e, 0, sizeof *e);
    snprintf(e->dir, sizeof e->dir, "%s/duo-store-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(e->dir) == NULL) return -1;
    snprintf(e->db, sizeof e->db, "%s/keys.db", e->dir);
#ifdef DUO_STORE_TEST_PG
    if (env_pg_schema(e) != 0) return -1;
#endif
    snprintf(e->kek_path, sizeof e->kek_path, "%s/kek", e->dir);
    e->now = 1700000000;
    return 0;
}

static inline void env_cfg(store_env *e, duo_keystore_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->clock = env_clock;
    cfg->clock_data = e;
    cfg->busy_timeout_ms = 10000;
}

static inline int env_open_ks(store_env *e, duo_keystore **ks) {
    duo_keystore_config cfg;
    env_cfg(e, &cfg);
#ifdef DUO_STORE_TEST_PG
    return duo_keystore_open(ks, duo_keystore_driver_find("postgresql"), e->db, &e->kek, &cfg);
#else
    return duo_keystore_open_sqlite(ks, e->db, &e->kek, &cfg);
#endif
}

/* Creates a temp dir, a KEK file and an open key store. */
static inline int env_open(store_env *e) {
    if (env_mkdir(e) != 0) return DUO_E_IO;
    int r = duo_kek_create_file(&e->kek, NULL, 0, e->kek_path, NULL);
    if (r != DUO_OK) return r;
    return env_open_ks(e, &e->ks);
}

static inline void env_close(store_env *e) {
    DIR *d;
    struct dirent *de;
    char p[PATH_MAX + 256];
    duo_keystore_free(e->ks);
    e->ks = NULL;
    duo_kek_clear(&e->kek);
    if (e->dir[0] == '\0' || (d = opendir(e->dir)) == NULL) return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", e->dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(e->dir);
}

/* Runs SQL on the database through a separate raw connection (the attacker's
 * or the crash's view). Returns the SQLite result code. */
static inline int env_sql(const store_env *e, const char *sql) {
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc = sqlite3_open(e->db, &db);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 10000);
        rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK && getenv("DUO_TEST_VERBOSE") != NULL) fprintf(stderr, "sql: %s\n", msg ? msg : "?");
    }
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
}

/* Fills a test key: id byte b, citizen c. */
static inline void make_key(duo_key_info *k, duo_key_secrets *s, uint8_t b, const char *c) {
    memset(k, 0, sizeof *k);
    memset(s, 0, sizeof *s);
    memset(k->key_id, b, sizeof k->key_id);
    snprintf(k->citizen_id, sizeof k->citizen_id, "%s", c);
    k->paillier_bits = 2048;
    memset(k->q, 0x02, sizeof k->q);
    k->q[1] = b;
    memset(k->q2, 0x03, sizeof k->q2);
    k->q2[1] = b;
    memset(s->x1, 0x10 + b, sizeof s->x1);
    s->p_len = 128;
    memset(s->p, 0x20 + b, s->p_len);
    s->q_len = 128;
    memset(s->q, 0x30 + b, s->q_len);
    memset(s->current, 0x40 + b, sizeof s->current);
}

#endif
