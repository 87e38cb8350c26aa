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

/* ---- admin command helpers (admin.c) ---- */
/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i. A
 * missing value exits with DUO_EXIT_USAGE. */
int duo__opt_val(int argc, char **argv, int *i, const char *name, const char **val);
int duo__is_help(const char *a);
/* Print a usage error for cmd and exit with DUO_EXIT_USAGE. */
void duo__unknown_arg(const char *cmd, const char *a) __attribute__((noreturn));
void duo__need(const char *cmd, const char *opt, const char *val);
/* "duosign-cloud: MESSAGE" on stderr; returns DUO_EXIT_FAIL. */
int duo__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Opens dir's store or exits with DUO_EXIT_FAIL and the store's message. */
struct duo_keystore *duo__open_or_die(const char *dir);

/* ---- certificate commands (cmd_ca.c; docs/CERTIFICATES.md) ---- */
struct duo_ca_settings;
/* Consumes one of init's CA options at argv[*i] (--no-ca, --ca-name,
 * --ca-days, --cert-days, --country, --crl-url) into s / *no_ca; returns 1
 * if it did. A bad value exits with DUO_EXIT_USAGE. */
int duo__ca_init_opt(int argc, char **argv, int *i, struct duo_ca_settings *s, int *no_ca);
/* init's last step: creates the issuing CA in ks (unless no_ca) and says so.
 * Returns DUO_EXIT_OK or DUO_EXIT_FAIL. */
int duo__ca_init(struct duo_keystore *ks, const struct duo_ca_settings *s, int no_ca);
int duo__cmd_ca(int argc, char **argv);
int duo__cmd_cert(int argc, char **argv);
int duo__cmd_crl(int argc, char **argv);
/* The citizen document registry (cmd_citizen.c; docs/DOCUMENTS.md). */
int duo__cmd_citizen(int argc, char **argv);
/* Revokes the key's certificates after the key was revoked or frozen; a
 * failure is logged (the next CRL's sweep catches it, ca_crl.c). */
void duo__certs_follow_key(struct duo_keystore *ks, const uint8_t key_id[16], int reason);

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

/* The result of a call as the log and the metrics name it: the error
 * table's name without "DUO_" ("OK", "E_WRONG_PIN"). */
const char *duo__result_name(int code);

/* ---- answering a call (util.c) ---- */
/* Notes the key a call is about, for its log line. */
static inline void duo__call_key(duo_call_info *info, const uint8_t *key_id) {
    for (int i = 0; i < 16; i++) info->key_id[i] = key_id[i];
    info->has_key_id = 1;
}
/* The human message of a failed call (its gRPC status details). */
#define DETAIL(info, ...) duo_call_info_set_detail((info), __VA_ARGS__)
/* Adds "key: <decimal v>" to the call's trailers (dropped if they are full:
 * the message still says it). */
void duo__trailer_i64(duo_call_info *info, const char *key, int64_t v);

/* ---- clocks ---- */
static inline int64_t duo__mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t duo__mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t duo__now_s(void) { return (int64_t)time(NULL); }

/* ---- commands ---- */
int duo__cmd_serve(int argc, char **argv);
/* check, backup, restore (cmd_store.c). */
int duo__cmd_check(int argc, char **argv);
int duo__cmd_backup(int argc, char **argv);
int duo__cmd_restore(int argc, char **argv);
/* kek_cmd.c: "duosign-cloud kek status|rotate" (exit status as main's). */
int duo__cmd_kek(int argc, char **argv);
/* rp add|list|remove (cmd_rp.c). */
int duo__cmd_rp(int argc, char **argv);
/* init --kek REF (NULL: file:kek): makes the data directory's first KEK and
 * writes kek.ref. Returns DUO_OK or the error, with what to fix in err. */
int duo__kek_init(const char *dir, const char *ref, char *err, size_t err_cap);
/* serve --kek REF: DUO_OK if REF is the data directory's current KEK;
 * DUO_E_INVALID_ARG (and why in err) if not. */
int duo__kek_expect(const char *dir, const char *ref, char *err, size_t err_cap);

#endif
