/* duosign requests | approve | refuse | claim: relying parties' requests
 * (docs/RELYING_PARTIES.md, docs/CLI.md). The citizen's two keys are two
 * state files (FILE: signing, FILE.auth: authentication); a request says
 * which key it needs and these commands open that one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

#define LIST_MAX 16

static const char *kind_name(int k) { return k == DUO_DEVICE_REQUEST_AUTH ? "login" : "signature"; }

/* FILE or FILE.auth for a request's kind (--state names the signing key's
 * FILE; given FILE.auth, the signing key is FILE). */
static void state_for(char *out, size_t cap, const char *state, int kind) {
    size_t n = strlen(state);
    int is_auth = n > 5 && strcmp(state + n - 5, ".auth") == 0;
    if (kind == DUO_DEVICE_REQUEST_AUTH)
        snprintf(out, cap, "%s%s", state, is_auth ? "" : ".auth");
    else
        snprintf(out, cap, "%.*s", (int)(is_auth ? n - 5 : n), state);
}

static int parse_request_id(uint8_t id[16], const char *s) {
    if (s == NULL || strlen(s) != 32) return -1;
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
        id[i] = (uint8_t)v;
    }
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F'))) return -1;
    return 0;
}

static void show(const duo_device_request *q) {
    char tb[64];
    fmt_time(q->expires_at, tb, sizeof tb);
    printf("request ");
    print_hex(stdout, q->request_id, 16);
    printf("\n  %s asks for a %s (the %s key)\n  text: %s\n  verification code: %s (check that %s shows the "
           "same)\n  expires: %s\n",
           q->rp_name, kind_name(q->kind), q->kind == DUO_DEVICE_REQUEST_AUTH ? "authentication" : "signing",
           q->display_text, q->verification_code, q->rp_name, tb);
}

int cmd_requests(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    duo_device_request q[LIST_MAX];
    size_t n = 0;
    int r, ex;
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_wait_requests(s.ctx, o->has_wait ? o->wait_s * 1000u : 0, q, LIST_MAX, &n)) != DUO_OK) {
        ex = report(&s, "requests", r);
        goto out;
    }
    if (n == 0) printf("no requests waiting\n");
    for (size_t i = 0; i < n; i++) show(&q[i]);
    ex = EX_OK_;
out:
    session_close(&s);
    return ex;
}

/* Shows q, asks the PIN of its key (open in s) and approves; saves the
 * state (the device secret rotated). */
static int approve_in(session *s, const opts *o, const char *state, const duo_device_request *q) {
    char pin[256];
    size_t pin_len = 0;
    uint8_t sig[DUO_DEVICE_SIG_BYTES];
    int r, ex;
    show(q);
    fflush(stdout);
    if ((ex = get_pin(o, 0, 0, pin, sizeof pin, &pin_len)) != EX_OK_) return ex;
    r = duo_device_approve(s->ctx, q, sig, (const uint8_t *)pin, pin_len);
    OPENSSL_cleanse(pin, sizeof pin);
    if (r != DUO_OK) {
        /* A wrong PIN still rotated nothing; other failures leave the state as it was. */
        return report(s, "approve", r);
    }
    if ((ex = save_state(s, state)) != EX_OK_) return ex;
    printf("approved: %s has the %s\n", q->rp_name, kind_name(q->kind));
    return EX_OK_;
}

/* Finds the request id among the citizen's waiting requests (through the
 * key of o->state), then opens the key it needs. */
int cmd_approve(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    duo_device_request q[LIST_MAX];
    uint8_t id[16];
    size_t n = 0;
    int r, ex;
    char path[4200];
    opts o2 = *o;
    if (!require(o->request, "--request ID")) return EX_USAGE_;
    if (parse_request_id(id, o->request) != 0) {
        fprintf(stderr, "%s: --request must be the 32 hex digits `duosign requests` shows\n", prog);
        return EX_USAGE_;
    }
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_wait_requests(s.ctx, 0, q, LIST_MAX, &n)) != DUO_OK) {
        ex = report(&s, "requests", r);
        goto out;
    }
    size_t i = 0;
    while (i < n && memcmp(q[i].request_id, id, 16) != 0) i++;
    if (i == n) {
        fprintf(stderr, "%s: request %s is not waiting (answered, cancelled, expired, or not yours)\n", prog,
                o->request);
        ex = duo_err_exit_code(DUO_E_RP_REQUEST_CLOSED);
        goto out;
    }
    state_for(path, sizeof path, o->state, q[i].kind);
    o2.state = path;
    if ((ex = check_state_writable(&o2)) != EX_OK_) goto out;
    if (strcmp(path, o->state) != 0) { /* the other key's state */
        session_close(&s);
        if ((ex = open_state(&s, &o2, 1)) != EX_OK_) goto out;
    }
    ex = approve_in(&s, &o2, path, &q[i]);
out:
    session_close(&s);
    return ex;
}

int cmd_refuse(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t id[16];
    int r, ex;
    if (!require(o->request, "--request ID")) return EX_USAGE_;
    if (parse_request_id(id, o->request) != 0) {
        fprintf(stderr, "%s: --request must be the 32 hex digits `duosign requests` shows\n", prog);
        return EX_USAGE_;
    }
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_refuse_request(s.ctx, id)) != DUO_OK) {
        ex = report(&s, "refuse", r);
        goto out;
    }
    printf("refused: the relying party is told USER_REFUSED\n");
    ex = EX_OK_;
out:
    session_close(&s);
    return ex;
}

/* An anonymous login: the link is claimed with the authentication key
 * (FILE.auth), then approved like any request. */
int cmd_claim(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    duo_device_request q;
    char path[4200];
    opts o2 = *o;
    int r, ex;
    if (o->link == NULL) {
        fprintf(stderr, "%s: claim needs the LINK the relying party shows (duosign://claim/...)\n", prog);
        return EX_USAGE_;
    }
    if (strncmp(o->link, "duosign://claim/", 16) != 0 || strlen(o->link) > 80) {
        fprintf(stderr, "%s: '%s' is not a duosign login link (duosign://claim/...)\n", prog, o->link);
        return EX_USAGE_;
    }
    if (!require(o->state, "--state FILE")) return EX_USAGE_;
    state_for(path, sizeof path, o->state, DUO_DEVICE_REQUEST_AUTH);
    o2.state = path;
    if ((ex = check_state_writable(&o2)) != EX_OK_) return ex;
    if ((ex = open_state(&s, &o2, 1)) != EX_OK_) goto out;
    if ((r = duo_device_claim_link(s.ctx, o->link, &q)) != DUO_OK) {
        ex = report(&s, "claim", r);
        goto out;
    }
    ex = approve_in(&s, &o2, path, &q);
out:
    session_close(&s);
    return ex;
}
