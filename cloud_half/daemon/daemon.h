/* duosign-cloud: internal declarations shared by the daemon's files.
 * Not a library API. This header must not include keystore.h or wire.h (the
 * two define different duo_key_state types); files that need both use the
 * renaming trick in service.c. */
#ifndef DUOSIGN_CLOUD_DAEMON_H
#define DUOSIGN_CLOUD_DAEMON_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "duosign/errors.h"

#define DUO_PATH_MAX 4096
#define DUO_ERRMSG_MAX 512

/* Files in a data directory. */
#define DUO_FILE_KEK "kek"
#define DUO_FILE_DB "keys.db"
#define DUO_FILE_CA "ca.pem"
#define DUO_FILE_CERT "server.pem"
#define DUO_FILE_KEY "server.key"
#define DUO_FILE_SERVE_LOCK "serve.lock" /* flock: one serving daemon per data directory */

/* Exit codes. */
#define DUO_EXIT_OK 0
#define DUO_EXIT_FAIL 1
#define DUO_EXIT_USAGE 2

/* ---- pki.c ---- */
/* Creates ca.pem, server.pem (DNS:localhost, IP:127.0.0.1) and server.key
 * (0600) in dir, never overwriting. */
int duo__pki_create(const char *dir, char *err, size_t cap);
/* Checks that cert/key PEMs parse, match and the certificate is current. */
int duo__pki_check(const char *cert_pem, const char *key_pem, const char *cert_path, const char *key_path, char *err,
                   size_t cap);
/* Reads a whole (small) file, NUL-terminated; caller frees. */
int duo__read_file(char **out, size_t *out_len, const char *path, size_t max, char *err, size_t cap);

/* ---- lock policy (policy.c) ---- */
#define DUO_LOCK_STEPS_MAX 8
#define DUO_LOCK_REVOKE (-1)
typedef struct duo_lock_step {
    uint32_t failures; /* consecutive wrong PINs that trigger this step */
    int64_t seconds;   /* lock duration, or DUO_LOCK_REVOKE */
} duo_lock_step;
typedef struct duo_lock_policy {
    duo_lock_step steps[DUO_LOCK_STEPS_MAX];
    size_t n; /* increasing failures; the last one may revoke */
} duo_lock_policy;

/* The default: 3:10800,6:86400,9:revoke. */
void duo__lock_policy_default(duo_lock_policy *p);
/* Parses "3:10800,6:86400,9:revoke" (seconds, or suffix s/m/h/d). */
int duo__lock_policy_parse(duo_lock_policy *p, const char *s, char *err, size_t cap);
/* The step reached exactly at `failures`, or NULL. */
const duo_lock_step *duo__lock_policy_step(const duo_lock_policy *p, uint32_t failures);
/* Wrong PINs left before the next step (0 if none). */
uint32_t duo__lock_policy_left(const duo_lock_policy *p, uint32_t failures);

/* ---- encoding helpers (util.c) ---- */
/* Branch-free lowercase hex of secret-free or secret bytes; out has 2n+1. */
void duo__hex(char *out, const uint8_t *in, size_t n);
/* Parses exactly 2n hex digits. DUO_OK or DUO_E_INVALID_ARG. */
int duo__unhex(uint8_t *out, size_t n, const char *in);
/* A random code in base32 (a-z, 2-7), `nbytes` of entropy, groups of `group`
 * characters separated by '-' (0: no groups). out_cap >= needed. */
int duo__random_code(char *out, size_t out_cap, size_t nbytes, size_t group);
/* "2024-05-01 12:00:00 UTC" */
void duo__fmt_time(char *out, size_t cap, int64_t t);

/* ---- commands ---- */
int duo__cmd_serve(int argc, char **argv);
/* Opens the key store of a data dir (loads the KEK). Returns a duo_keystore*
 * through a void** to keep keystore.h out of this header. */
/* write_mu: shared by the connections of one process (keystore.h), or NULL. */
int duo__open_store(void **ks, const char *dir, int create, pthread_mutex_t *write_mu, int busy_ms, char *err,
                    size_t cap);

#endif
