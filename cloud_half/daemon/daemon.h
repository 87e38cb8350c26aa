/* duosign-cloud: internal declarations shared by the daemon's files.
 * Not a library API. */
#ifndef DUOSIGN_CLOUD_DAEMON_H
#define DUOSIGN_CLOUD_DAEMON_H

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "datadir.h" /* DUO_PATH_MAX, DUO_FILE_KEK, DUO_FILE_DB, duo_datadir_open_store */
#include "duosign/errors.h"
#include "server.h" /* duo_call_info */

#define DUO_ERRMSG_MAX 512

/* The daemon's files in a data directory (the store's: datadir.h). */
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

/* ---- answering a call (util.c) ---- */
/* The human message of a failed call (its gRPC status details). */
#define DETAIL(info, ...) duo_call_info_set_detail((info), __VA_ARGS__)
/* Adds "key: <decimal v>" to the call's trailers (dropped if they are full:
 * the message still says it). */
void duo__trailer_i64(duo_call_info *info, const char *key, int64_t v);

/* ---- clocks ---- */
static inline int64_t duo__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t duo__now_s(void) { return (int64_t)time(NULL); }

/* ---- commands ---- */
int duo__cmd_serve(int argc, char **argv);
/* kek_cmd.c: "duosign-cloud kek status|rotate" (exit status as main's). */
int duo__cmd_kek(int argc, char **argv);
/* init --kek REF (NULL: file:kek): makes the data directory's first KEK and
 * writes kek.ref. Returns DUO_OK or the error, with what to fix in err. */
int duo__kek_init(const char *dir, const char *ref, char *err, size_t err_cap);
/* serve --kek REF: DUO_OK if REF is the data directory's current KEK;
 * DUO_E_INVALID_ARG (and why in err) if not. */
int duo__kek_expect(const char *dir, const char *ref, char *err, size_t err_cap);

#endif
