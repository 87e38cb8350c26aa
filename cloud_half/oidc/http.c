/* duosign-oidc: the HTTP(S) server (libmicrohttpd), request parameters and
 * replies (oidc.h). TLS is libmicrohttpd's (Debian builds it with GnuTLS;
 * docs/OIDC.md "HTTPS"). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "oidc.h"

const char *oidc_param(const oidc_params *p, const char *key) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->key[i], key) == 0) return p->val[i];
    return NULL;
}

int oidc_scope_has(const char *scope, const char *word) {
    size_t wl = strlen(word);
    for (const char *p = scope; (p = strstr(p, word)) != NULL; p += wl)
        if ((p == scope || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0')) return 1;
    return 0;
}

static void params_bad(oidc_params *p, const char *why) {
    if (!p->bad) snprintf(p->bad_why, sizeof p->bad_why, "%s", why);
    p->bad = 1;
}

/* A NUL-terminated copy of n bytes that need not be NUL-terminated
 * themselves (a form body is not): strndup may read past them. */
static char *copy_n(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c == NULL) return NULL;
    memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* Adds one parameter; RFC 6749 3.1: "Request and response parameters MUST
 * NOT be included more than once". */
static void params_add(oidc_params *p, const char *k, size_t kl, const char *v, size_t vl) {
    if (p->bad) return;
    if (p->n == OIDC_PARAMS_MAX) return params_bad(p, "too many parameters");
    if (kl > 64 || vl > OIDC_PARAM_MAX) return params_bad(p, "a parameter is too long");
    if (memchr(k, '\0', kl) != NULL || memchr(v, '\0', vl) != NULL)
        return params_bad(p, "a parameter holds a NUL byte");
    if ((p->key[p->n] = copy_n(k, kl)) == NULL || (p->val[p->n] = copy_n(v, vl)) == NULL) {
        free(p->key[p->n]);
        return params_bad(p, "out of memory");
    }
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->key[i], p->key[p->n]) == 0) {
            free(p->key[p->n]);
            free(p->val[p->n]);
            return params_bad(p, "a parameter is repeated");
        }
    p->n++;
}

static void params_free(oidc_params *p) {
    for (size_t i = 0; i < p->n; i++) {
        free(p->key[i]);
        free(p->val[i]);
    }
    p->n = 0;
}

static int hexv(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decodes s[0..n) in place (form encoding: '+' is a space); -1 on a
 * bad escape. */
static long pct_decode(char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            s[o++] = ' ';
        } else if (s[i] == '%') {
            int a, b;
            if (i + 2 >= n) return -1;
            if ((a = hexv(s[i + 1])) < 0 || (b = hexv(s[i + 2])) < 0) return -1;
            s[o++] = (char)(a << 4 | b);
            i += 2;
        } else {
            s[o++] = s[i];
        }
    }
    return (long)o;
}

/* application/x-www-form-urlencoded body. */
static void params_parse_form(oidc_params *p, char *body, size_t len) {
    size_t i = 0;
    while (i < len && !p->bad) {
        size_t j = i;
        while (j < len && body[j] != '&') j++;
        char *eq = memchr(body + i, '=', j - i);
        if (j > i) {
            if (eq == NULL) {
                params_bad(p, "a form field without '='");
                break;
            }
            long kl = pct_decode(body + i, (size_t)(eq - (body + i)));
            long vl = pct_decode(eq + 1, (size_t)(body + j - (eq + 1)));
            if (kl < 0 || vl < 0) {
                params_bad(p, "a bad percent escape");
                break;
            }
            params_add(p, body + i, (size_t)kl, eq + 1, (size_t)vl);
        }
        i = j + 1;
    }
}

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    oidc_params *p = cls;
    params_add(p, key, strlen(key), value ? value : "", value ? strlen(value) : 0);
    return MHD_YES;
}

/* ------------------------------------------------------------ replies */

void oidc_reply_json(oidc_reply *r, unsigned status, json_t *j) {
    r->status = status;
    r->ctype = "application/json";
    r->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    r->len = r->body ? strlen(r->body) : 0;
    json_decref(j);
    if (r->body == NULL) r->status = 500;
}

void oidc_reply_error(oidc_reply *r, unsigned status, const char *error, const char *desc) {
    oidc_reply_json(r, status, json_pack("{s:s, s:s}", "error", error, "error_description", desc));
    r->no_store = 1;
}

void oidc_reply_html(oidc_reply *r, unsigned status, char *html) {
    r->status = html ? status : 500;
    r->ctype = "text/html; charset=utf-8";
    r->body = html;
    r->len = html ? strlen(html) : 0;
}

char *oidc_html_escape(const char *s) {
    size_t n = 0;
    for (const char *p = s; *p; p++) n += strchr("<>&\"'", *p) ? 6 : 1;
    char *o = malloc(n + 1), *q = o;
    if (o == NULL) return NULL;
    for (const char *p = s; *p; p++) {
        const char *e = *p == '<'    ? "&lt;"
                        : *p == '>'  ? "&gt;"
                        : *p == '&'  ? "&amp;"
                        : *p == '"'  ? "&quot;"
                        : *p == '\'' ? "&#39;"
                                     : NULL;
        if (e) {
            memcpy(q, e, strlen(e));
            q += strlen(e);
        } else {
            *q++ = *p;
        }
    }
    *q = '\0';
    return o;
}

void oidc_reply_error_page(oidc_reply *r, unsigned status, const char *error, const char *desc) {
    char *d = oidc_html_escape(desc), *html = malloc(1024 + (d ? strlen(d) : 0));
    if (html != NULL)
        sprintf(html,
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Login refused</title></head><body>"
                "<h1>This login request is refused</h1><p id=\"error\">%s</p><p id=\"why\">%s</p>"
                "<p>Nothing was sent back to the service. Go back to it and try again.</p></body></html>",
                error, d ? d : "");
    free(d);
    oidc_reply_html(r, status, html);
}

static size_t pct_encode(char *out, size_t cap, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
            if (o + 1 >= cap) return 0;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= cap) return 0;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return o;
}

int oidc_build_redirect(char *out, size_t cap, const char *redirect_uri, const char *const *kv) {
    size_t o = (size_t)snprintf(out, cap, "%s", redirect_uri);
    char sep = strchr(redirect_uri, '?') ? '&' : '?';
    if (o >= cap) return 0;
    for (size_t i = 0; kv[i] != NULL; i += 2) {
        if (kv[i + 1] == NULL) continue;
        int n = snprintf(out + o, cap - o, "%c%s=", sep, kv[i]);
        if (n < 0 || (size_t)n >= cap - o) return 0;
        o += (size_t)n;
        if (kv[i + 1][0] != '\0') {
            size_t m = pct_encode(out + o, cap - o, kv[i + 1]);
            if (m == 0) return 0;
            o += m;
        }
        sep = '&';
    }
    return 1;
}

void oidc_reply_redirect(oidc_reply *r, const char *redirect_uri, ...) {
    const char *kv[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, redirect_uri);
    while (n < 14) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) break;
        kv[n++] = k;
        kv[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    kv[n] = NULL;
    if (!oidc_build_redirect(r->location, sizeof r->location, redirect_uri, kv)) {
        oidc_reply_error_page(r, 400, "invalid_request", "the answer does not fit in a redirect");
        return;
    }
    r->status = 303;
    r->ctype = "text/plain";
    r->body = strdup("redirecting\n");
    r->len = r->body ? strlen(r->body) : 0;
}

/* ------------------------------------------------------------ server */

typedef struct {
    char *buf;
    size_t len;
    int too_big;
} conn_state;

typedef struct {
    struct MHD_Daemon *d;
    oidc_ctx *c;
} http_srv;

static void route(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    int get = strcmp(q->method, "GET") == 0, post = strcmp(q->method, "POST") == 0;
    if (strcmp(q->path, "/.well-known/openid-configuration") == 0 && get) return ep_discovery(c, q, r);
    if (strcmp(q->path, "/jwks") == 0 && get) return ep_jwks(c, q, r);
    if (strcmp(q->path, "/authorize") == 0 && get) return ep_authorize(c, q, r);
    if (strcmp(q->path, "/login/poll") == 0 && post) return ep_login_poll(c, q, r);
    if (strcmp(q->path, "/token") == 0 && post) return ep_token(c, q, r);
    if (strcmp(q->path, "/userinfo") == 0 && (get || post)) return ep_userinfo(c, q, r);
    oidc_reply_error(r, 404, "not_found", "no such endpoint or method");
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, oidc_reply *r, int https) {
    struct MHD_Response *res =
        MHD_create_response_from_buffer(r->len, r->body ? r->body : (char *)"", MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ok;
    if (res == NULL) return MHD_NO;
    MHD_add_response_header(res, "Content-Type", r->ctype ? r->ctype : "text/plain");
    MHD_add_response_header(res, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(res, "X-Frame-Options", "DENY");
    MHD_add_response_header(res, "Referrer-Policy", "no-referrer");
    if (https) MHD_add_response_header(res, "Strict-Transport-Security", "max-age=31536000");
    if (r->no_store) {
        MHD_add_response_header(res, "Cache-Control", "no-store");
        MHD_add_response_header(res, "Pragma", "no-cache");
    }
    if (r->location[0]) MHD_add_response_header(res, "Location", r->location);
    if (r->cookie[0]) MHD_add_response_header(res, "Set-Cookie", r->cookie);
    if (r->www_auth[0]) MHD_add_response_header(res, "WWW-Authenticate", r->www_auth);
    MHD_add_response_header(res, "Content-Security-Policy",
                            r->csp[0] ? r->csp : "default-src 'none'; frame-ancestors 'none'");
    ok = MHD_queue_response(conn, r->status, res);
    MHD_destroy_response(res);
    return ok;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    http_srv *h = cls;
    conn_state *cs = *con_cls;
    oidc_params params;
    oidc_reply reply;
    oidc_req q;
    enum MHD_Result ok;
    if (cs == NULL) {
        if ((cs = calloc(1, sizeof *cs)) == NULL) return MHD_NO;
        *con_cls = cs;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (cs->len + *upload_size > OIDC_BODY_MAX) {
            cs->too_big = 1;
        } else {
            char *nb = realloc(cs->buf, cs->len + *upload_size + 1);
            if (nb == NULL) return MHD_NO;
            cs->buf = nb;
            memcpy(cs->buf + cs->len, upload, *upload_size);
            cs->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    memset(&params, 0, sizeof params);
    memset(&reply, 0, sizeof reply);
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, query_iter, &params);
    if (strcmp(method, "POST") == 0) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (cs->too_big)
            params_bad(&params, "the request body is too large");
        else if (cs->len > 0 && (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0))
            params_bad(&params, "the body must be application/x-www-form-urlencoded");
        else if (cs->len > 0)
            params_parse_form(&params, cs->buf, cs->len);
    }
    q.method = method;
    q.path = url;
    q.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    q.cookie_csrf = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "duo_csrf");
    q.origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    q.params = &params;
    if (params.bad && strcmp(url, "/authorize") != 0) /* /authorize redirects its errors when it can */
        oidc_reply_error(&reply, cs->too_big ? 413 : 400, "invalid_request", params.bad_why);
    else
        route(h->c, &q, &reply);
    ok = send_reply(conn, &reply, h->c->https);
    free(reply.body);
    params_free(&params);
    return ok;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode tc) {
    (void)cls;
    (void)conn;
    (void)tc;
    conn_state *cs = *con_cls;
    if (cs != NULL) {
        free(cs->buf);
        free(cs);
        *con_cls = NULL;
    }
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fputs("duosign-oidc: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* "HOST:PORT" or "PORT" (IPv4; a reverse proxy or the TLS listener is local). */
static int parse_listen(struct sockaddr_in *sa, const char *listen) {
    char host[64] = "127.0.0.1";
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port;
    memset(sa, 0, sizeof *sa);
    if (colon != NULL) {
        if ((size_t)(colon - listen) >= sizeof host) return -1;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        listen = colon + 1;
    }
    port = strtol(listen, &end, 10);
    if (*listen == '\0' || *end != '\0' || port < 0 || port > 65535) return -1;
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

void *oidc_http_start(oidc_ctx *c, const char *listen, const char *tls_cert_pem, const char *tls_key_pem, char *err,
                      size_t err_cap, unsigned *port_out) {
    struct sockaddr_in sa;
    http_srv *h;
    /* A thread per connection: the login page's long polls block for up to
     * OIDC_POLL_MS_MAX; the connection limits (64, 16 per address) bound
     * the threads one client can hold. */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    if (parse_listen(&sa, listen) != 0) {
        snprintf(err, err_cap, "--listen %s: want IPv4-HOST:PORT or PORT", listen);
        return NULL;
    }
    if (tls_cert_pem != NULL) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, err_cap, "this libmicrohttpd has no TLS support");
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    if ((h = calloc(1, sizeof *h)) == NULL) return NULL;
    h->c = c;
    if (tls_cert_pem != NULL)
        h->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_HTTPS_MEM_CERT,
                                tls_cert_pem, MHD_OPTION_HTTPS_MEM_KEY, tls_key_pem, MHD_OPTION_END);
    else
        h->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT,
                                (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    if (h->d == NULL) {
        snprintf(err, err_cap, "cannot serve on %s (address in use, or the TLS certificate/key do not load)", listen);
        free(h);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    if (port_out != NULL) *port_out = di ? di->port : 0;
    return h;
}

void oidc_http_stop(void *hv) {
    http_srv *h = hv;
    if (h == NULL) return;
    MHD_stop_daemon(h->d);
    free(h);
}
