/* duosign CLI: `duosign revoke`: from the device (--state), or with the
 * revocation code shown at enrolment when the phone is lost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

/* revoke --code CODE --citizen ID: the phone is lost, so there is no state
 * file; the server and its CA come from the command line. */
static int cmd_revoke_code(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t *ca = NULL;
    size_t ca_len = 0, i, n = 0;
    char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    int r, ex;

    if (o->state != NULL) {
        usage_err("%s", "revoke takes either --state FILE (from the device) or --code CODE --citizen ID (without "
                        "it), not both");
        return EX_USAGE_;
    }
    if (!require(o->code, "--code CODE") || !require(o->citizen, "--citizen ID") ||
        !require(o->server, "--server HOST:PORT")) {
        return EX_USAGE_;
    }
    if (o->ca == NULL && !o->insecure) {
        usage_err("%s", "revoke --code needs --ca CA.pem (or --insecure for tests)");
        return EX_USAGE_;
    }
    /* The code as printed at enrolment; case and spaces do not matter. */
    for (i = 0; o->code[i] != '\0'; i++) {
        char c = o->code[i];
        if (c == ' ' || c == '\t') continue;
        if (n == DUO_DEVICE_REVOCATION_CODE_MAX) {
            n = 0;
            break;
        }
        code[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    code[n] = '\0';
    if (n == 0 || strlen(o->citizen) == 0 || strlen(o->citizen) > DUO_DEVICE_CITIZEN_ID_MAX) {
        usage_err("the revocation code must be 1 to %d characters and the citizen id 1 to %d",
                  DUO_DEVICE_REVOCATION_CODE_MAX, DUO_DEVICE_CITIZEN_ID_MAX);
        return EX_USAGE_;
    }
    if (o->ca != NULL && !o->insecure) {
        if ((ex = read_ca(o->ca, &ca, &ca_len)) != EX_OK_) return ex;
    }
    if ((r = duo_device_ctx_new(&s.ctx)) != DUO_OK) {
        ex = EX_OTHER;
        goto out;
    }
    s.ca_origin = o->ca;
    if ((ex = connect_transport(&s, o, o->server, ca, ca_len)) != EX_OK_) goto out;
    r = duo_device_revoke_with_code(s.ctx, o->citizen, code);
    if (r == DUO_E_UNAUTHENTICATED) {
        fprintf(stderr,
                "%s: revocation refused by %s: this code does not revoke a key of citizen '%s' (a typo, a code "
                "already used, or another citizen id); nothing was changed\n",
                prog, o->server, o->citizen);
        ex = exit_for(r);
        goto out;
    }
    if (r != DUO_OK) {
        ex = r == DUO_E_INVALID_ARG ? EX_USAGE_ : report(&s, "revocation", r);
        if (r == DUO_E_INVALID_ARG) fprintf(stderr, "%s: %s\n", prog, duo_device_errmsg(s.ctx));
        goto out;
    }
    printf("key of citizen %s revoked with the revocation code; it can no longer sign\n", o->citizen);
    ex = EX_OK_;
out:
    OPENSSL_cleanse(code, sizeof code);
    free(ca);
    session_close(&s);
    return ex;
}

int cmd_revoke(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    int r, ex;
    if (o->code != NULL || o->citizen != NULL) return cmd_revoke_code(o);
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_revoke(s.ctx)) != DUO_OK) {
        ex = report(&s, "revocation", r);
        goto out;
    }
    printf("key revoked; the state file %s can be deleted\n", o->state);
out:
    session_close(&s);
    return ex;
}
