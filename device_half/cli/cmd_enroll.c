/* duosign CLI: `duosign enroll`: one key, or the citizen's two keys (the
 * authentication key in FILE.auth, the signing key in FILE), each stored
 * before its confirmation and given its certificate when it has a role. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "atomic.h"
#include "cli.h"

static int enroll_one(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t *ca = NULL, *app = NULL;
    size_t ca_len = 0, app_len;
    char pin[DUO_DEVICE_PIN_MAX + 2];
    size_t pin_len = 0;
    char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    uint8_t kid[DUO_DEVICE_KEY_ID_BYTES];
    struct stat st;
    int r, ex;

    if (!require(o->server, "--server HOST:PORT") || !require(o->token, "--token TOKEN") ||
        !require(o->state, "--state FILE")) {
        return EX_USAGE_;
    }
    if (o->ca == NULL && !o->insecure) {
        usage_err("%s", "enroll needs --ca CA.pem (or --insecure for tests)");
        return EX_USAGE_;
    }
    if (strlen(o->token) == 0 || strlen(o->token) > DUO_DEVICE_TOKEN_MAX) {
        usage_err("%s", "the token must be 1 to 128 characters");
        return EX_USAGE_;
    }
    if (stat(o->state, &st) == 0) {
        fprintf(stderr, "%s: state file '%s' already exists; refusing to overwrite an enrolled key\n", prog, o->state);
        return EX_USAGE_;
    }
    /* An enrolment killed while saving may have left its temporary file. */
    cleanup_tmp(o->state);
    if (o->ca != NULL && !o->insecure) {
        if ((ex = read_ca(o->ca, &ca, &ca_len)) != EX_OK_) return ex;
    }
    /* The token is consumed by the cloud: check that the state can be
     * written before using it. */
    if ((r = duo_cli_check_writable(o->state)) != 0) {
        fprintf(stderr, "%s: cannot write the state file '%s': %s (nothing was sent)\n", prog, o->state, strerror(-r));
        free(ca);
        return EX_INPUT;
    }
    if (o->pin_pre != NULL) {
        memcpy(pin, o->pin_pre, o->pin_pre_len);
        pin_len = o->pin_pre_len;
    } else if ((ex = get_pin(o, 0, 1, pin, sizeof pin, &pin_len)) != EX_OK_) {
        goto out;
    }
    if ((r = duo_device_ctx_new(&s.ctx)) != DUO_OK) {
        ex = EX_OTHER;
        goto out;
    }
    s.ca_origin = o->ca;
    if ((ex = connect_transport(&s, o, o->server, ca, ca_len)) != EX_OK_) goto out;
    if (o->curve != 0 && (r = duo_device_set_enroll_curve(s.ctx, o->curve)) != DUO_OK) {
        ex = report(&s, "enrolment", r);
        goto out;
    }
    if ((r = duo_device_set_enroll_role(s.ctx, o->role)) != DUO_OK) {
        ex = report(&s, "enrolment", r);
        goto out;
    }
    fprintf(stderr, "enrolling with %s (%s key, Paillier %u bits)...\n", o->server,
            duo_device_curve_name(o->curve ? o->curve : DUO_DEVICE_CURVE_P256),
            o->paillier_bits ? o->paillier_bits : 3072);
    r = duo_device_enroll(s.ctx, o->server, (const uint8_t *)o->token, strlen(o->token), (const uint8_t *)pin, pin_len,
                          o->paillier_bits);
    if (r != DUO_OK) {
        ex = report(&s, "enrolment", r);
        goto out;
    }
    /* Remember how to reach the server. */
    app_len = strlen(APP_MAGIC) + (ca ? 4 + ca_len : 9);
    if ((app = malloc(app_len)) == NULL) {
        ex = EX_OTHER;
        goto out;
    }
    memcpy(app, APP_MAGIC, strlen(APP_MAGIC));
    if (ca) {
        memcpy(app + strlen(APP_MAGIC), "tls\n", 4);
        memcpy(app + strlen(APP_MAGIC) + 4, ca, ca_len);
    } else {
        memcpy(app + strlen(APP_MAGIC), "insecure\n", 9);
    }
    if ((r = duo_device_set_app_data(s.ctx, app, app_len)) != DUO_OK) {
        ex = report(&s, "storing the connection settings", r);
        goto out;
    }
    /* DESIGN 3.2: store durably before the confirmation. */
    if ((ex = save_state(&s, o->state)) != EX_OK_) goto out;
    if ((r = duo_device_enroll_confirm(s.ctx, code, sizeof code)) != DUO_OK) {
        ex = report(&s, "enrolment confirmation", r);
        fprintf(stderr, "%s: the state is stored; any later command retries the confirmation\n", prog);
        goto out;
    }
    if ((ex = save_state(&s, o->state)) != EX_OK_) goto out;
    if (duo_device_key_id(s.ctx, kid) == DUO_OK) {
        printf("enrolled key ");
        print_hex(stdout, kid, sizeof kid);
        printf(" at %s\nstate: %s\n", o->server, o->state);
        if (code[0] != '\0')
            printf("revocation code (keep it safe, shown once): %s\n%s\n", code, REVOKE_HINT);
        else
            printf("%s\n", NO_CODE_AGAIN);
    }
    /* A key with a role gets its certificate now (its PIN proves the request). */
    ex = o->role != DUO_DEVICE_ROLE_NONE ? enrol_certificate(&s, o, pin, pin_len) : EX_OK_;
out:
    OPENSSL_cleanse(pin, sizeof pin);
    free(app);
    free(ca);
    session_close(&s);
    return ex;
}

/* enroll: one key (--token), or the citizen's two keys in one action
 * (--auth-token T1 --token T2): the authentication key (PIN1, at least 4
 * digits) in FILE.auth, then the signing key (PIN2, at least 5 digits) in
 * FILE. Each is a full two-party key with its own share, secrets and
 * lockout counter (docs/DECISIONS.md). */
int cmd_enroll(const opts *o) {
    opts a, b;
    struct stat st;
    char pin1[DUO_DEVICE_PIN_MAX + 2], pin2[DUO_DEVICE_PIN_MAX + 2];
    int ex, r;
    if (o->auth_token == NULL && !o->both && o->pin1_file == NULL && o->pin2_file == NULL) {
        return enroll_one(o); /* one key without a role, as before roles */
    }
    if (!require(o->state, "--state FILE") || !require(o->token, "--token TOKEN (the signing key's)")) return EX_USAGE_;
    if (o->pin_file != NULL) {
        usage_err("%s", "two keys take --pin1-file (authentication) and --pin2-file (signing), not --pin-file");
        return EX_USAGE_;
    }
    if (o->pin_stdin && (o->pin1_file != NULL || o->pin2_file != NULL)) {
        usage_err("%s", "give the two PINs either as files or on standard input (PIN1, then PIN2), not both");
        return EX_USAGE_;
    }
    a = *o;
    b = *o;
    if ((size_t)snprintf(a.state_buf, sizeof a.state_buf, "%s.auth", o->state) >= sizeof a.state_buf) {
        usage_err("%s", "--state is too long");
        return EX_USAGE_;
    }
    a.state = a.state_buf;
    if (stat(a.state, &st) == 0 || stat(b.state, &st) == 0) {
        fprintf(stderr, "%s: state file '%s' or '%s' already exists; refusing to overwrite an enrolled key\n", prog,
                b.state, a.state);
        return EX_USAGE_;
    }
    /* One token admits both keys; --auth-token (a second token) still works. */
    a.token = o->auth_token != NULL ? o->auth_token : o->token;
    a.role = DUO_DEVICE_ROLE_AUTH;
    b.role = DUO_DEVICE_ROLE_SIGN;
    a.pin_file = o->pin1_file;
    a.pin_label = "PIN1 (authentication)";
    a.pin_min = 4;
    a.pin_digits = 1;
    b.pin_file = o->pin2_file;
    b.pin_label = "PIN2 (signing)";
    b.pin_min = 5;
    b.pin_digits = 1;
    /* Both PINs and both files are checked before the first token is used. */
    if ((r = duo_cli_check_writable(a.state)) != 0 || (r = duo_cli_check_writable(b.state)) != 0) {
        fprintf(stderr, "%s: cannot write the state files '%s': %s (nothing was sent)\n", prog, b.state, strerror(-r));
        return EX_INPUT;
    }
    if ((ex = get_pin(&a, 0, 1, pin1, sizeof pin1, &a.pin_pre_len)) != EX_OK_) goto out;
    if ((ex = get_pin(&b, 0, 1, pin2, sizeof pin2, &b.pin_pre_len)) != EX_OK_) goto out;
    a.pin_pre = pin1;
    b.pin_pre = pin2;
    fprintf(stderr, "authentication key (PIN1) -> %s\n", a.state);
    if ((ex = enroll_one(&a)) != EX_OK_) goto out;
    fprintf(stderr, "signing key (PIN2) -> %s\n", b.state);
    if ((ex = enroll_one(&b)) != EX_OK_)
        fprintf(stderr, "%s: the authentication key is enrolled (%s); the signing key is not\n", prog, a.state);
out:
    OPENSSL_cleanse(pin1, sizeof pin1);
    OPENSSL_cleanse(pin2, sizeof pin2);
    return ex;
}
