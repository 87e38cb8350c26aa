/* The duosign CLI's shared pieces: options, the session with the library,
 * and the helpers the command files use. main.c holds main(), the command
 * table and the help; cli_opts.c the options, cli_session.c the session,
 * cli_pin.c the PINs, cli_io.c files and printing, cli_jws.c base64url and
 * JWS, cli_signer.c the two-party signer of the X.509/CMS builders; each
 * command group is in its cmd_*.c (resync.c: resync; present.c draws the
 * codes of cmd_present.c). */
#ifndef DUOSIGN_CLI_H
#define DUOSIGN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "duosign/device.h"
#include "duosign/device_grpc.h"

extern const char *prog;
/* The top-level help (main.c), printed by --help. */
extern const char usage_text[];

#define MAX_DOC ((size_t)1 << 30)
#define MAX_SMALL ((size_t)1 << 20)
#define APP_MAGIC "duosign-cli/1\n"

/* Printed under the revocation code. */
#define REVOKE_HINT                                                                                         \
    "if this device is lost: duosign revoke --code CODE --citizen YOUR-CITIZEN-ID --server HOST:PORT --ca " \
    "CA.pem"

/* An empty revocation code: the cloud had already accepted an earlier
 * confirmation whose answer was lost, and shows the code only once. */
#define NO_CODE_AGAIN                                                                                     \
    "enrolment confirmed (the cloud had already accepted an earlier attempt); the revocation code is "    \
    "shown only the first time and cannot be shown again. Without it, the key can still be revoked from " \
    "this device (duosign revoke) or by the operator"

/* Exit codes (stable; documented in --help and docs/CLI.md). */
enum {
    EX_OK_ = 0,
    EX_OTHER = 1,
    EX_USAGE_ = 2,
    EX_INPUT = 3,
    EX_WRONG_PIN = 4,
    EX_LOCKED = 5,
    EX_REVOKED = 6,
    EX_CLONE = 7,
    EX_UNREACHABLE = 8,
    EX_CORRUPT = 9,
    EX_FALLBACK = 10,  /* signed, state saved, but the signature is in the fallback file */
    EX_TLS = 11,       /* DUO_E_TLS_UNTRUSTED */
    EX_BUSY = 12,      /* DUO_E_SERVER_BUSY */
    EX_TOKEN = 13,     /* DUO_E_TOKEN_INVALID */
    EX_TOKEN_OLD = 14, /* DUO_E_TOKEN_EXPIRED */
    EX_SERVER = 15     /* an error on the service's side (its key store) */
};

typedef struct opts {
    const char *cmd;
    const char *server, *ca, *token, *state, *in, *out, *format, *pubkey, *sig;
    const char *pin_file, *new_pin_file;
    const char *code, *citizen, *name;
    const char *key; /* --key auth|sign; NULL: the state as given (sign) */
    const char *auth_token, *pin1_file, *pin2_file;
    const char *doc, *png; /* present */
    int once;
    const char *pin_label; /* the prompt for a new PIN; NULL: "PIN" */
    size_t pin_min;        /* a new PIN's minimum length; 0: DUO_DEVICE_PIN_MIN */
    int pin_digits;        /* a new PIN must be digits only (a role's PIN) */
    const char *pin_pre;   /* a PIN already read (two keys: both are read first) */
    size_t pin_pre_len;
    char state_buf[4096]; /* FILE.auth for --key auth */
    int pin_stdin, insecure, raw, verbose;
    int both;  /* enroll --both: the two keys from one token */
    int fetch; /* cert --fetch */
    int role;  /* enroll_one: DUO_DEVICE_ROLE_* of the key it makes */
    unsigned paillier_bits;
    int curve; /* DUO_DEVICE_CURVE_*; 0: the library's default (P-256) */
    unsigned timeout_ms;
    const char *request; /* approve, refuse: --request ID (32 hex digits) */
    const char *link;    /* claim LINK */
    unsigned wait_s;     /* requests --wait SECONDS */
    int has_wait;
} opts;

typedef struct session {
    duo_device_ctx *ctx;
    duo_grpc_transport *t;
    const char *addr;      /* the address actually used (--server or the state's) */
    const char *ca_origin; /* where the CA in use came from, for messages */
} session;

/* Used by every command: open_state, session_close, report, save_state and
 * check_state_writable are in cli_session.c, get_pin in cli_pin.c, require
 * in cli_opts.c, print_hex and fmt_time in cli_io.c. */

/* Loads the state (and connects when online); an exit code. */
int open_state(session *s, const opts *o, int online);
void session_close(session *s);
/* A failed online call: message, hint, exit code. */
int report(session *s, const char *what, int r);
/* Saves the state atomically and acknowledges it; an exit code. */
int save_state(session *s, const char *path);
/* Reads the PIN (which 0: the PIN) per --pin-file / --pin-stdin / terminal. */
int get_pin(const opts *o, int which, int confirm, char *buf, size_t cap, size_t *len);
/* The state file must be writable before anything is sent; an exit code. */
int check_state_writable(const opts *o);
int require(const char *val, const char *name);
void print_hex(FILE *f, const uint8_t *p, size_t n);
void fmt_time(int64_t t, char *buf, size_t cap);

/* cli_opts.c: parses argv (argv[0] is the command word) into o; returns -1
 * to continue, or an exit code (help printed: EX_OK_; usage error: EX_USAGE_). */
int parse_opts(opts *o, int argc, char **argv);
/* Prints "duosign: <message>" and the hint to run --help, on stderr. */
void usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_session.c: the exit status of a DUO_E_* (the error table's column). */
int exit_for(int r);
/* Sets up the gRPC transport to address (no CA with --insecure); an exit code. */
int connect_transport(session *s, const opts *o, const char *address, const uint8_t *ca, size_t ca_len);
/* Wipes and removes temporary copies of the state a killed save left (they
 * hold the next device secret); says so on stderr. Not fatal. */
void cleanup_tmp(const char *state);

/* cli_io.c: reads path (at most max bytes) into *out (malloc'd, the
 * caller frees); an exit code, the failure said on stderr. */
int read_input(const char *what, const char *path, uint8_t **out, size_t *len, size_t max);
/* read_input of a CA file that must hold a PEM certificate; an exit code. */
int read_ca(const char *path, uint8_t **out, size_t *len);
/* Writes data atomically with mode; an exit code. */
int write_output(const char *what, const char *path, const uint8_t *data, size_t len, mode_t mode);
/* Wipes n bytes of p, then frees it (p may be NULL). */
void wipe_free(uint8_t *p, size_t n);

/* cli_jws.c: base64url without padding (malloc'd text, NULL on no memory);
 * the strict decode returns 0 and a malloc'd *out, or -1. */
char *b64url_encode(const uint8_t *in, size_t len);
int b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len);
/* "ES256" for P-256, "ES256K" for secp256k1, else NULL. */
const char *jws_alg_of(int curve);
/* b64url(header) "." b64url(doc), malloc'd; NULL on no memory. */
char *jws_signing_input(const char *alg, const uint8_t *doc, size_t doc_len);

/* The two-party signer behind the X.509/CMS builders: one signing session
 * (the PIN is checked by the cloud), the state saved right after. */
typedef struct cli_signer {
    session *s;
    const opts *o;
    const char *pin;
    size_t pin_len;
    int r;               /* the library's error, for report() */
    int save_ex;         /* the state's save */
    const uint8_t *info; /* a certification request's info: signed with the CSR purpose */
    size_t info_len;
} cli_signer;

/* cli_signer.c: the duo_x509 sign callback (ctx: a cli_signer). */
int cli_sign_digest(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]);
/* Reads the PIN, runs build through the signer, wipes the PIN; an exit code. */
int run_signed(session *s, const opts *o, int (*build)(void *arg, cli_signer *cs), void *arg);

/* cmd_cert.c: STATE.cert.pem into buf; an exit code. */
int cert_path(const opts *o, char *buf, size_t cap);
/* The key's certificate (the state's, else the file at path, checked
 * against the key): EX_OK_ and *out (X509_free), or an exit code. */
int load_own_cert(session *s, const char *path, X509 **out);
/* After an enrolment with a role: the key's certificate; an exit code. */
int enrol_certificate(session *s, const opts *o, const char *pin, size_t pin_len);

/* The commands (main.c's table), each returning an exit code. */
int cmd_enroll(const opts *o); /* cmd_enroll.c */
int cmd_sign(const opts *o);   /* cmd_sign.c */
int cmd_verify(const opts *o); /* cmd_verify.c */
int cmd_csr(const opts *o);    /* cmd_cert.c */
int cmd_cert(const opts *o);
int cmd_pubkey(const opts *o); /* cmd_key.c */
int cmd_status(const opts *o);
int cmd_refresh(const opts *o);
int cmd_change_pin(const opts *o);
int cmd_revoke(const opts *o);  /* cmd_revoke.c */
int cmd_present(const opts *o); /* cmd_present.c */

/* resync.c: duo_device_resync with the user told when it happened (a
 * DUO_E_* code); `duosign resync`. */
int duo_cli_resync(session *s, const char *pin, size_t pin_len);
int cmd_resync(const opts *o);

/* cmd_requests.c */
int cmd_requests(const opts *o);
int cmd_approve(const opts *o);
int cmd_refuse(const opts *o);
int cmd_claim(const opts *o);

#endif
