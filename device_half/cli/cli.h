/* The duosign CLI's shared pieces: options, the session with the library,
 * and the helpers the command files use (main.c defines them; the relying-
 * party commands are in cmd_requests.c). */
#ifndef DUOSIGN_CLI_H
#define DUOSIGN_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "duosign/device.h"
#include "duosign/device_grpc.h"

extern const char *prog;

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
