/* duosign CLI: the session with the device library: loading the state
 * file, connecting to the service it names (or --server / --ca), finishing
 * an unconfirmed enrolment, saving the state, and the messages and exit
 * codes of failed online calls. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic.h"
#include "cli.h"

/* The exit status for a failure: the error table's column (errors.h,
 * duo_err_exit_code; documented in docs/CLI.md). */
int exit_for(int r) { return duo_err_exit_code(r); }

/* Reports a failure of an online library call with the server's message
 * and what to do, and returns the exit code. */
int report(session *s, const char *what, int r) {
    const char *addr = s->addr != NULL ? s->addr : "?";
    fprintf(stderr, "%s: %s failed: %s (%s)\n", prog, what, duo_device_errmsg(s->ctx), duo_err_name(r));
    switch (r) {
        case DUO_E_WRONG_PIN:
        case DUO_E_KEY_LOCKED: {
            duo_device_status_info st;
            if (duo_device_status(s->ctx, &st) == DUO_OK) {
                if (st.state == DUO_DEVICE_KEY_LOCKED && st.locked_until > 0) {
                    char tb[64];
                    fmt_time(st.locked_until, tb, sizeof tb);
                    fprintf(stderr, "%s: the key is locked until %s\n", prog, tb);
                    return EX_LOCKED;
                }
                if (st.state == DUO_DEVICE_KEY_REVOKED) {
                    fprintf(stderr, "%s: the key is now revoked\n", prog);
                    return EX_REVOKED;
                }
                if (r == DUO_E_WRONG_PIN) {
                    fprintf(stderr, "%s: PIN attempts left before the key locks: %u\n", prog, st.pin_attempts_left);
                }
            }
            break;
        }
        case DUO_E_UNAVAILABLE:
            fprintf(stderr, "%s: check the server address (%s) and that duosign-cloud is running there\n", prog, addr);
            break;
        case DUO_E_TIMEOUT:
            fprintf(stderr, "%s: no answer from %s in time: check the network, or raise --timeout-ms\n", prog, addr);
            break;
        case DUO_E_TLS_UNTRUSTED:
            fprintf(stderr,
                    "%s: the server at %s is reachable, but its certificate does not verify under the CA in use "
                    "(%s): give the CA of that service with --ca, or check that %s is the service you enrolled "
                    "with\n",
                    prog, addr, s->ca_origin != NULL ? s->ca_origin : "?", addr);
            break;
        case DUO_E_SERVER_BUSY:
            fprintf(stderr, "%s: the server at %s is up but busy (too many sessions in progress): retry in a minute\n",
                    prog, addr);
            break;
        case DUO_E_TOKEN_INVALID:
            fprintf(stderr,
                    "%s: the enrolment token was refused: it is unknown, already used, or issued for another "
                    "citizen; ask the operator for a new one\n",
                    prog);
            break;
        case DUO_E_TOKEN_EXPIRED:
            fprintf(stderr, "%s: the enrolment token has expired; ask the operator for a new one\n", prog);
            break;
        case DUO_E_STATE_CORRUPT:
        case DUO_E_STORE:
            /* Online, a corrupted record is the cloud's (the library never
             * reports its own state as corrupt after it was loaded). */
            fprintf(stderr,
                    "%s: this is an error at the signing service (%s), not in your state file, which is "
                    "unchanged: report it to the service's operator\n",
                    prog, addr);
            return EX_SERVER;
        case DUO_E_CLONE_SUSPECTED:
            fprintf(stderr, "%s: the key is frozen; enrol again\n", prog);
            break;
        case DUO_E_RESYNC_POSSIBLE:
            fprintf(stderr,
                    "%s: the service was restored from a backup: run 'duosign resync --state FILE' (it asks the "
                    "PIN once), then this command again\n",
                    prog);
            break;
        default:
            break;
    }
    return exit_for(r);
}

void session_close(session *s) {
    duo_device_ctx_free(s->ctx);
    duo_grpc_transport_free(s->t);
    s->ctx = NULL;
    s->t = NULL;
}

/* The connection settings stored in the app data of the state:
 * APP_MAGIC, then "insecure\n" or "tls\n" followed by the CA PEM. */
int connect_transport(session *s, const opts *o, const char *address, const uint8_t *ca, size_t ca_len) {
    int r;
    if (o->insecure) {
        ca = NULL;
        ca_len = 0;
    }
    s->addr = address;
    if ((r = duo_grpc_transport_new(&s->t, address, (const char *)ca, ca_len, o->timeout_ms)) != DUO_OK) {
        fprintf(stderr, "%s: cannot set up the connection to %s: %s\n", prog, address, duo_strerror(r));
        return r == DUO_E_BAD_CA ? EX_INPUT : EX_OTHER;
    }
    if ((r = duo_device_set_transport(s->ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, s->t)) != DUO_OK) {
        return EX_OTHER;
    }
    return EX_OK_;
}

/* Saves the state atomically (mode 0600), then acknowledges it. */
int save_state(session *s, const char *path) {
    uint8_t *blob = NULL;
    size_t len = 0;
    int r, ex;

    if ((r = duo_device_state_export(s->ctx, &blob, &len)) != DUO_OK) {
        fprintf(stderr, "%s: cannot serialize the state: %s\n", prog, duo_strerror(r));
        return EX_OTHER;
    }
    ex = write_output("state file", path, blob, len, 0600);
    duo_device_blob_free(blob, len);
    if (ex != EX_OK_) {
        /* Not acknowledged: the library keeps using the stored secret. */
        return ex;
    }
    if ((r = duo_device_state_persisted(s->ctx)) != DUO_OK) {
        fprintf(stderr, "%s: %s\n", prog, duo_device_errmsg(s->ctx));
        return EX_OTHER;
    }
    return EX_OK_;
}

/* Temporary copies of the state left by a process killed while saving hold
 * the next device secret: wipe and remove them (atomic.h). Not fatal. */
void cleanup_tmp(const char *state) {
    unsigned n = 0;
    int r = duo_cli_cleanup_tmp(state, &n);
    if (n > 0)
        fprintf(stderr,
                "%s: removed %u leftover temporary state file%s of '%s' (an earlier run was killed while saving)\n",
                prog, n, n == 1 ? "" : "s", state);
    if (r != 0) fprintf(stderr, "%s: warning: cannot remove temporary files of '%s': %s\n", prog, state, strerror(-r));
}

/* Loads the state file and, when online, connects to its server. */
int open_state(session *s, const opts *o, int online) {
    uint8_t *blob = NULL;
    size_t len = 0;
    int r, ex;
    const uint8_t *app = NULL;
    size_t app_len = 0;
    uint8_t *ca_file = NULL;
    size_t ca_file_len = 0;
    const uint8_t *ca = NULL;
    size_t ca_len = 0;
    const char *addr;

    if (!require(o->state, "--state FILE")) return EX_USAGE_;
    if ((r = duo_device_ctx_new(&s->ctx)) != DUO_OK) {
        fprintf(stderr, "%s: %s\n", prog, duo_strerror(r));
        return EX_OTHER;
    }
    if ((ex = read_input("state file", o->state, &blob, &len, 16u << 20)) != EX_OK_) return ex;
    cleanup_tmp(o->state);
    r = duo_device_state_import(s->ctx, blob, len);
    wipe_free(blob, len);
    if (r != DUO_OK) {
        fprintf(stderr, "%s: state file '%s' refused: %s\n", prog, o->state, duo_strerror(r));
        return exit_for(r);
    }
    if (!online) return EX_OK_;

    if (duo_device_app_data(s->ctx, &app, &app_len) == DUO_OK && app_len >= strlen(APP_MAGIC) &&
        memcmp(app, APP_MAGIC, strlen(APP_MAGIC)) == 0) {
        const uint8_t *p = app + strlen(APP_MAGIC);
        size_t n = app_len - strlen(APP_MAGIC);
        if (n >= 4 && memcmp(p, "tls\n", 4) == 0) {
            ca = p + 4;
            ca_len = n - 4;
            s->ca_origin = "the CA stored in the state file at enrolment";
        }
    }
    if (o->ca != NULL) {
        if ((ex = read_ca(o->ca, &ca_file, &ca_file_len)) != EX_OK_) return ex;
        s->ca_origin = o->ca;
        ca = ca_file;
        ca_len = ca_file_len;
    }
    addr = o->server ? o->server : duo_device_server_address(s->ctx);
    if (ca == NULL && !o->insecure) {
        fprintf(stderr, "%s: the state has no CA certificate for %s: give --ca CA.pem (or --insecure for tests)\n",
                prog, addr);
        free(ca_file);
        return EX_USAGE_;
    }
    ex = connect_transport(s, o, addr, ca_len ? ca : NULL, ca_len);
    free(ca_file);
    if (ex != EX_OK_) return ex;

    /* An enrolment stored but not confirmed (crash or network loss): finish it. */
    if (!duo_device_is_confirmed(s->ctx)) {
        char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
        if ((r = duo_device_enroll_confirm(s->ctx, code, sizeof code)) != DUO_OK) {
            return report(s, "confirming the enrolment", r);
        }
        if ((ex = save_state(s, o->state)) != EX_OK_) return ex;
        if (code[0] != '\0')
            printf("enrolment confirmed; revocation code (keep it safe, shown once): %s\n%s\n", code, REVOKE_HINT);
        else
            printf("%s\n", NO_CODE_AGAIN);
    }
    return EX_OK_;
}

/* Commands that rotate the device secret write the state afterwards: check
 * that they can before the cloud is contacted (issue 13 item 4). */
int check_state_writable(const opts *o) {
    int r;
    if (o->state == NULL || (r = duo_cli_check_writable(o->state)) == 0) return EX_OK_;
    fprintf(stderr, "%s: cannot write the state file '%s': %s (nothing was sent)\n", prog, o->state, strerror(-r));
    return EX_INPUT;
}
