/* duosign-oidc: the authorization endpoint (RFC 6749 4.1.1, OIDC Core
 * 3.1.2, RFC 7636) and the login page's polling, which turns the citizen's
 * approval on their device into an authorization code.
 *
 * Order of checks at /authorize: the client and its exact redirect URI
 * first (an error before they are known is shown here, never redirected:
 * no open redirect), then everything else, answered at the redirect URI
 * with the RFC's error and the state echoed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "duosign/mem.h"
#include "duosign/rng.h"
#include "duosign/rp_digest.h"
#include "jose.h"
#include "oidc.h"

/* Characters of a PKCE code challenge/verifier (RFC 7636 4.1). */
static int pkce_chars(const char *s, size_t min, size_t max) {
    size_t n = strlen(s);
    return n >= min && n <= max && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

static int printable(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}

static void random_b64(char *out, size_t cap, size_t nbytes) {
    uint8_t b[32];
    if (nbytes > sizeof b || duo_rng_bytes(NULL, b, nbytes) != DUO_OK) {
        out[0] = '\0';
        return;
    }
    jose_b64url(out, cap, b, nbytes);
}

/* Everything after the client and redirect URI are known good; returns the
 * OAuth error (and desc) or NULL. */
static const char *check_request(const oidc_params *p, const char **desc) {
    const char *rt = oidc_param(p, "response_type"), *scope = oidc_param(p, "scope"),
               *cc = oidc_param(p, "code_challenge"), *ccm = oidc_param(p, "code_challenge_method"),
               *nonce = oidc_param(p, "nonce"), *state = oidc_param(p, "state");
    if (p->bad) return *desc = p->bad_why, "invalid_request";
    if (oidc_param(p, "request") || oidc_param(p, "request_uri"))
        return *desc = "request objects are not supported", "request_not_supported";
    if (rt == NULL) return *desc = "response_type is missing", "invalid_request";
    if (strcmp(rt, "code") != 0) return *desc = "only response_type=code", "unsupported_response_type";
    if (oidc_param(p, "response_mode") && strcmp(oidc_param(p, "response_mode"), "query") != 0)
        return *desc = "only response_mode=query", "invalid_request";
    if (scope == NULL || !oidc_scope_has(scope, "openid")) return *desc = "scope must include openid", "invalid_scope";
    if (cc == NULL) return *desc = "PKCE is required: code_challenge is missing", "invalid_request";
    if (ccm == NULL || strcmp(ccm, "S256") != 0)
        return *desc = "PKCE is required with code_challenge_method=S256", "invalid_request";
    if (strlen(cc) != 43 || !pkce_chars(cc, 43, 43))
        return *desc = "code_challenge is not a base64url SHA-256", "invalid_request";
    if ((nonce && !printable(nonce)) || (state && !printable(state)))
        return *desc = "state or nonce holds control characters", "invalid_request";
    if (oidc_param(p, "prompt") && strcmp(oidc_param(p, "prompt"), "none") == 0)
        return *desc = "a duosign login always needs the citizen", "interaction_required";
    return NULL;
}

/* Starts the signer's session and stores the page's transaction. */
static int start_login(oidc_ctx *c, const os_client *cl, const oidc_params *p, os_txn *t, char *csrf, size_t csrf_cap,
                       char *err, size_t err_cap) {
    rp_started st;
    char req_id[48];
    int r;
    memset(t, 0, sizeof *t);
    if ((r = duo_rng_bytes(NULL, t->challenge, sizeof t->challenge)) != DUO_OK) return r;
    random_b64(t->txn, sizeof t->txn, 24);
    random_b64(csrf, csrf_cap, 24);
    random_b64(req_id, sizeof req_id, 16);
    SHA256((const unsigned char *)csrf, strlen(csrf), t->csrf_hash);
    snprintf(t->display_text, sizeof t->display_text, "Log in to %s", cl->name);
    if ((r = rp_start_auth(&c->rp, req_id, t->challenge, t->display_text, &st, err, err_cap)) != DUO_OK) return r;
    /* The code the page shows must be the one derived from our challenge
     * (rp_digest.h), the one the citizen's device shows: else the page
     * would vouch for another request. */
    char want[5];
    if ((r = duo_rp_verification_code(want, t->challenge, sizeof t->challenge)) != DUO_OK) return r;
    if (strcmp(want, st.verification_code) != 0) {
        snprintf(err, err_cap, "the signer's verification code is not the one of our challenge");
        return DUO_E_BAD_FIELD;
    }
    snprintf(t->client_id, sizeof t->client_id, "%s", cl->id);
    snprintf(t->redirect_uri, sizeof t->redirect_uri, "%s", cl->redirect_uri);
    snprintf(t->state, sizeof t->state, "%s", oidc_param(p, "state") ? oidc_param(p, "state") : "");
    snprintf(t->nonce, sizeof t->nonce, "%s", oidc_param(p, "nonce") ? oidc_param(p, "nonce") : "");
    snprintf(t->scope, sizeof t->scope, "%s", oidc_param(p, "scope"));
    snprintf(t->code_challenge, sizeof t->code_challenge, "%s", oidc_param(p, "code_challenge"));
    snprintf(t->session_id, sizeof t->session_id, "%s", st.session_id);
    snprintf(t->verification_code, sizeof t->verification_code, "%s", st.verification_code);
    snprintf(t->link, sizeof t->link, "%s", st.link);
    int64_t now = os_now(c->store);
    /* The page lives as long as the signer's session, at most 5 minutes. */
    t->expires_at = st.expires_at > now && st.expires_at < now + 300 ? st.expires_at : now + 120;
    return os_txn_put(c->store, t);
}

void ep_authorize(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    const char *cid = oidc_param(q->params, "client_id"), *ru = oidc_param(q->params, "redirect_uri"), *desc = NULL, *e;
    os_client cl;
    os_txn t;
    char csrf[64], err[256] = "";
    if (cid == NULL || os_client_get(c->store, cid, &cl) != DUO_OK) {
        oidc_reply_error_page(r, 400, "invalid_client", "unknown client_id");
        return;
    }
    /* Exact string comparison (OAuth 2.0 Security BCP 4.1.3): no prefix, no
     * normalisation. */
    if (ru == NULL || strcmp(ru, cl.redirect_uri) != 0) {
        oidc_reply_error_page(r, 400, "invalid_request", "redirect_uri is not the one registered for this client");
        return;
    }
    const char *state = oidc_param(q->params, "state");
    if ((e = check_request(q->params, &desc)) != NULL) {
        /* A repeated or oversized state is not echoed: which one would be? */
        if (q->params->bad) state = NULL;
        oidc_reply_redirect(r, cl.redirect_uri, "error", e, "error_description", desc, "state", state, NULL);
        return;
    }
    if (os_purge(c->store, OIDC_CODE_TTL + OIDC_TOKEN_TTL) != DUO_OK)
        fprintf(stderr, "duosign-oidc: cannot purge expired rows\n");
    if (start_login(c, &cl, q->params, &t, csrf, sizeof csrf, err, sizeof err) != DUO_OK) {
        fprintf(stderr, "duosign-oidc: cannot start a login at the signer: %s\n", err);
        oidc_reply_redirect(r, cl.redirect_uri, "error", "temporarily_unavailable", "error_description",
                            "the signer cannot be reached", "state", state, NULL);
        return;
    }
    oidc_reply_html(
        r, 200, login_page_html(cl.name, t.verification_code, t.link, t.txn, csrf, t.expires_at - os_now(c->store)));
    r->no_store = 1;
    login_page_csp(r->csp, sizeof r->csp);
    snprintf(r->cookie, sizeof r->cookie, "duo_csrf=%s; Path=/login; HttpOnly; SameSite=Strict%s", csrf,
             c->https ? "; Secure" : "");
}

/* ------------------------------------------------------------ polling */

static void poll_answer(oidc_reply *r, const char *status, const char *message, const char *redirect) {
    json_t *j = json_pack("{s:s, s:s}", "status", status, "message", message);
    if (j != NULL && redirect != NULL) json_object_set_new(j, "redirect", json_string(redirect));
    oidc_reply_json(r, 200, j);
    r->no_store = 1;
}

/* The page's cookie, the form's copy of it and the Origin (when the browser
 * sends one) must all agree: another site can make the browser post here,
 * but cannot read the cookie to put it in the form. */
static int csrf_ok(const oidc_ctx *c, const oidc_req *q, const os_txn *t) {
    const char *form = oidc_param(q->params, "csrf");
    uint8_t h[32];
    if (q->cookie_csrf == NULL || form == NULL || strcmp(q->cookie_csrf, form) != 0) return 0;
    if (q->origin != NULL && strcmp(q->origin, c->issuer) != 0) return 0;
    SHA256((const unsigned char *)form, strlen(form), h);
    return duo_ct_eq(h, t->csrf_hash, sizeof h);
}

/* The citizen approved: check the evidence, store a code, answer its redirect. */
static void issue_code(oidc_ctx *c, const os_txn *t, const rp_session *s, oidc_reply *r) {
    os_code code;
    uint8_t raw[32], h[32];
    char cs[48], url[2048], name[OS_NAME_MAX] = "";
    const char *kv[] = {"code", cs, "state", t->state[0] ? t->state : NULL, NULL};
    int e;
    if ((e = evidence_check(c, t, s, name, sizeof name)) != DUO_OK) {
        fprintf(stderr, "duosign-oidc: session %s: refused evidence: %s\n", t->session_id, duo_strerror(e));
        poll_answer(r, "error", "The signer's answer does not check out; no login.", NULL);
        return;
    }
    memset(&code, 0, sizeof code);
    snprintf(code.client_id, sizeof code.client_id, "%s", t->client_id);
    snprintf(code.redirect_uri, sizeof code.redirect_uri, "%s", t->redirect_uri);
    snprintf(code.nonce, sizeof code.nonce, "%s", t->nonce);
    snprintf(code.scope, sizeof code.scope, "%s", t->scope);
    snprintf(code.code_challenge, sizeof code.code_challenge, "%s", t->code_challenge);
    snprintf(code.citizen_id, sizeof code.citizen_id, "%s", s->citizen_id);
    snprintf(code.name, sizeof code.name, "%s", name);
    snprintf(code.session_id, sizeof code.session_id, "%s", t->session_id);
    snprintf(code.verification_code, sizeof code.verification_code, "%s", t->verification_code);
    memcpy(code.signature, s->signature, 64);
    memcpy(code.digest, s->signed_digest, 32);
    memcpy(code.challenge, t->challenge, 32);
    memcpy(code.server_random, s->server_random, s->server_random_len);
    code.server_random_len = s->server_random_len;
    snprintf(code.display_text, sizeof code.display_text, "%s", t->display_text);
    snprintf(code.rp_name, sizeof code.rp_name, "%s", c->rp_name);
    memcpy(code.certificate, s->certificate, s->certificate_len);
    code.certificate_len = s->certificate_len;
    code.auth_time = os_now(c->store);
    code.expires_at = code.auth_time + OIDC_CODE_TTL;
    if (duo_rng_bytes(NULL, raw, sizeof raw) != DUO_OK) goto fail;
    jose_b64url(cs, sizeof cs, raw, sizeof raw);
    SHA256((const unsigned char *)cs, strlen(cs), h);
    /* One code per page, even if two polls see the approval at once. */
    if (os_txn_finish(c->store, t->txn) != DUO_OK) {
        poll_answer(r, "error", "This login page was already used.", NULL);
        return;
    }
    if (os_code_put(c->store, h, &code) != DUO_OK || !oidc_build_redirect(url, sizeof url, t->redirect_uri, kv))
        goto fail;
    poll_answer(r, "done", "Approved. Returning to the service.", url);
    return;
fail:
    poll_answer(r, "error", "The provider could not finish the login.", NULL);
}

/* A finished session that is not an approval: say why, and give the page
 * the way back with access_denied (OIDC Core 3.1.2.6). */
static void ended(const os_txn *t, int result, oidc_reply *r) {
    char url[2048];
    const char *status = "expired", *msg = "The request expired before it was approved. Start again.";
    if (result == RP_USER_REFUSED)
        status = "refused", msg = "You refused this login on your device.";
    else if (result == RP_ACCOUNT_UNUSABLE || result == RP_PIN_LOCKED)
        status = "unusable", msg = "This account cannot be used to log in (no usable authentication key, or the "
                                   "PIN is locked). Contact your provider.";
    const char *kv[] = {"error", "access_denied", "error_description", msg, "state", t->state[0] ? t->state : NULL,
                        NULL};
    poll_answer(r, status, msg, oidc_build_redirect(url, sizeof url, t->redirect_uri, kv) ? url : NULL);
}

void ep_login_poll(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    const char *txn = oidc_param(q->params, "txn");
    os_txn t;
    rp_session s;
    char err[256] = "";
    if (txn == NULL || os_txn_get(c->store, txn, &t) != DUO_OK || !csrf_ok(c, q, &t)) {
        oidc_reply_error(r, 403, "invalid_request", "not this page's login (missing or wrong CSRF token)");
        return;
    }
    if (t.done) return poll_answer(r, "error", "This login page was already used.", NULL);
    if (os_now(c->store) >= t.expires_at) return ended(&t, RP_TIMEOUT, r);
    if (rp_get_session(&c->rp, t.session_id, c->poll_ms, &s, err, sizeof err) != DUO_OK) {
        fprintf(stderr, "duosign-oidc: GetSession %s: %s\n", t.session_id, err);
        return poll_answer(r, "waiting", "The signer cannot be reached; still trying.", NULL);
    }
    if (s.state == RP_RUNNING) return poll_answer(r, "waiting", "Waiting for your approval on your device.", NULL);
    if (s.result == RP_OK) return issue_code(c, &t, &s, r);
    ended(&t, s.result, r);
}
