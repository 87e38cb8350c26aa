/* duosign-oidc: the provider's shared state and the pieces of its HTTP layer
 * (docs/OIDC.md). One file per job: http.c (server, parameters, replies),
 * ep_meta.c (discovery, JWKS), ep_authorize.c (authorization, login page,
 * its polling), ep_token.c (token, userinfo), login_page.c (HTML, QR),
 * evidence.c (the citizen's signature over the login challenge). */
#ifndef DUOSIGN_OIDC_H
#define DUOSIGN_OIDC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ostore.h"
#include "rpclient.h"

#define OIDC_CODE_TTL 60       /* s: an authorization code (the 60 s) */
#define OIDC_TOKEN_TTL 300     /* s: access and ID tokens */
#define OIDC_KEY_KEEP 600      /* s: a rotated key stays in JWKS (> OIDC_TOKEN_TTL) */
#define OIDC_PARAM_MAX 512     /* bytes: any one parameter value */
#define OIDC_BODY_MAX 8192     /* bytes: a POST body */
#define OIDC_PARAMS_MAX 24     /* parameters in one request */
#define OIDC_POLL_MS_MAX 25000 /* one long poll of the login page */

typedef struct {
    os_store *store;
    rp_config rp;
    const char *issuer;  /* https://host[:port], no trailing slash */
    const char *rp_name; /* this provider's name as registered at duosign-cloud */
    int https;
    unsigned poll_ms;
} oidc_ctx;

/* A request's parameters (query or form body), already percent-decoded. */
typedef struct {
    char *key[OIDC_PARAMS_MAX], *val[OIDC_PARAMS_MAX];
    size_t n;
    int bad; /* duplicate, oversized or too many: invalid_request */
    char bad_why[96];
} oidc_params;

/* A reply built by an endpoint and sent by http.c. */
typedef struct {
    unsigned status;
    const char *ctype;
    char *body; /* malloc'd */
    size_t len;
    char location[2048];
    char cookie[256];
    char www_auth[160];
    char csp[320]; /* Content-Security-Policy (the login page) */
    int no_store;
} oidc_reply;

typedef struct {
    const char *method, *path;
    const char *authorization, *cookie_csrf, *origin;
    oidc_params *params;
} oidc_req;

const char *oidc_param(const oidc_params *p, const char *key);
/* 1 if the space-separated scope holds word as a whole item. */
int oidc_scope_has(const char *scope, const char *word);

/* Replies. */
void oidc_reply_json(oidc_reply *r, unsigned status, json_t *j); /* steals j */
void oidc_reply_error(oidc_reply *r, unsigned status, const char *error, const char *desc);
void oidc_reply_html(oidc_reply *r, unsigned status, char *html); /* steals html */
/* An error page that never redirects (unknown client, unregistered redirect URI). */
void oidc_reply_error_page(oidc_reply *r, unsigned status, const char *error, const char *desc);
/* 303 to redirect_uri with the given query pairs (NULL-terminated k, v list;
 * NULL values skipped), each percent-encoded. */
void oidc_reply_redirect(oidc_reply *r, const char *redirect_uri, ...);
/* redirect_uri?k=v&... into out (percent-encoded); 0 if it does not fit. */
int oidc_build_redirect(char *out, size_t cap, const char *redirect_uri, const char *const *kv);
/* HTML-escaped copy (malloc'd). */
char *oidc_html_escape(const char *s);

/* Endpoints. */
void ep_discovery(oidc_ctx *c, const oidc_req *q, oidc_reply *r);
void ep_jwks(oidc_ctx *c, const oidc_req *q, oidc_reply *r);
void ep_authorize(oidc_ctx *c, const oidc_req *q, oidc_reply *r);
void ep_login_poll(oidc_ctx *c, const oidc_req *q, oidc_reply *r);
void ep_token(oidc_ctx *c, const oidc_req *q, oidc_reply *r);
void ep_userinfo(oidc_ctx *c, const oidc_req *q, oidc_reply *r);

/* The login page (HTML, malloc'd) with its QR code of link. */
char *login_page_html(const char *client_name, const char *vc, const char *link, const char *txn, const char *csrf,
                      int64_t expires_in);

/* The login page's Content-Security-Policy: its one script and one style by
 * SHA-256, XHR to itself only, no frames, no forms, nothing else. */
void login_page_csp(char *out, size_t cap);

/* Checks a completed authentication: the signature verifies under the
 * certificate's P-256 key over signed_digest, and signed_digest is the
 * login structure over our challenge (evidence.c). Fills name (the
 * certificate's CN, may be empty).
 * Returns: DUO_OK; DUO_E_BAD_SIGNATURE; DUO_E_OIDC_LOGIN_DIGEST; DUO_E_DECODE. */
DUO_WARN_UNUSED_RESULT int evidence_check(const oidc_ctx *c, const os_txn *t, const rp_session *s, char *name,
                                          size_t name_cap);
/* Starts the HTTP(S) server; returns NULL with err set. */
void *oidc_http_start(oidc_ctx *c, const char *listen, const char *tls_cert_pem, const char *tls_key_pem, char *err,
                      size_t err_cap, unsigned *port_out);
void oidc_http_stop(void *h);

#endif
