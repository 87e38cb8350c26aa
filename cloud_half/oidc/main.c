/* duosign-oidc: an OpenID Connect provider in front of the signer
 * (docs/OIDC.md). Commands:
 *
 *   duosign-oidc init --dir DIR
 *   duosign-oidc client add --dir DIR --name NAME --redirect-uri URI [--sector S] [--public-key PEM]
 *   duosign-oidc client list --dir DIR
 *   duosign-oidc key rotate --dir DIR
 *   duosign-oidc evidence --dir DIR --jti JTI
 *   duosign-oidc serve --dir DIR --listen [HOST:]PORT --issuer URL
 *        (--tls-cert PEM --tls-key PEM | --insecure-http)
 *        --cloud HOST:PORT --cloud-ca PEM --rp-cert PEM --rp-key PEM --rp-name NAME
 *        [--poll-ms N] [--test-clock FILE]
 *
 * Exit status: the error table's (duo_err_exit_code), 2 for usage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "duosign/mem.h"
#include "oidc.h"

#define EX_USAGE_ 2

static const char usage[] =
    "usage: duosign-oidc COMMAND [options]\n"
    "  init --dir DIR                 make DIR/oidc.db, its KEK, the first provider key and the\n"
    "                                 pairwise-subject secret\n"
    "  client add --dir DIR --name NAME --redirect-uri URI [--sector S] [--public-key PEM]\n"
    "                                 register a service; prints client_id and (without --public-key)\n"
    "                                 the client secret, shown once. --sector groups services that may\n"
    "                                 share a subject (default: the redirect URI's host)\n"
    "  client list --dir DIR\n"
    "  key rotate --dir DIR           new signing key; the old one stays in JWKS for 600 s\n"
    "  evidence --dir DIR --jti JTI   the login behind an ID token: the citizen's signature over the\n"
    "                                 login structure, its inputs and certificate (JSON)\n"
    "  serve --dir DIR --listen [HOST:]PORT --issuer URL (--tls-cert PEM --tls-key PEM | --insecure-http)\n"
    "        --cloud HOST:PORT --cloud-ca PEM --rp-cert PEM --rp-key PEM --rp-name NAME\n"
    "        [--poll-ms N] [--test-clock FILE]\n";

/* --name VALUE; 1 if argv[*i] is name (and *val set), advancing *i. */
static int opt(int argc, char **argv, int *i, const char *name, const char **val) {
    if (strcmp(argv[*i], name) != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "duosign-oidc: %s needs a value\n", name);
        exit(EX_USAGE_);
    }
    *val = argv[++*i];
    return 1;
}

static int fail(int r, const char *what) {
    fprintf(stderr, "duosign-oidc: %s: %s\n", what, duo_strerror(r));
    return duo_err_exit_code(r);
}

static int bad_usage(const char *msg) {
    fprintf(stderr, "duosign-oidc: %s\n%s", msg, usage);
    return EX_USAGE_;
}

static char *read_file(const char *path, size_t max) {
    FILE *fp = fopen(path, "re");
    char *b = NULL;
    size_t n = 0;
    if (fp == NULL) return NULL;
    if ((b = malloc(max + 1)) != NULL) {
        n = fread(b, 1, max + 1, fp);
        if (n > max || ferror(fp)) {
            duo_memzero(b, max + 1);
            free(b);
            b = NULL;
        } else {
            b[n] = '\0';
        }
    }
    fclose(fp);
    return b;
}

/* https://HOST[:PORT]/PATH, or http://localhost|127.0.0.1[...] (a developer's
 * machine); never a fragment (RFC 6749 3.1.2). Returns the host in host. */
static int redirect_uri_ok(const char *uri, char *host, size_t cap) {
    const char *h;
    if (strlen(uri) >= OS_URI_MAX || strchr(uri, '#') || strpbrk(uri, " \t\r\n\"<>\\")) return 0;
    if (strncmp(uri, "https://", 8) == 0)
        h = uri + 8;
    else if (strncmp(uri, "http://localhost", 16) == 0 || strncmp(uri, "http://127.0.0.1", 16) == 0)
        h = uri + 7;
    else
        return 0;
    size_t n = strcspn(h, ":/?");
    if (n == 0 || n >= cap) return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    return 1;
}

static int cmd_init(int argc, char **argv) {
    const char *dir = NULL;
    char err[512] = "";
    os_store *s;
    for (int i = 0; i < argc; i++)
        if (!opt(argc, argv, &i, "--dir", &dir)) return bad_usage("init: unknown option");
    if (dir == NULL) return bad_usage("init needs --dir");
    int r = os_open(&s, err, sizeof err, dir, 1);
    if (r != DUO_OK) return fprintf(stderr, "duosign-oidc: %s\n", err), duo_err_exit_code(r);
    os_close(s);
    printf("initialised %s\n", dir);
    return 0;
}

static int open_store(os_store **s, const char *dir) {
    char err[512] = "";
    int r = os_open(s, err, sizeof err, dir, 0);
    if (r != DUO_OK) fprintf(stderr, "duosign-oidc: %s\n", err);
    return r;
}

static int cmd_client_add(int argc, char **argv) {
    const char *dir = NULL, *name = NULL, *uri = NULL, *sector = NULL, *pub = NULL;
    char host[256], secret[64];
    os_client c;
    os_store *s;
    int r;
    for (int i = 0; i < argc; i++)
        if (!opt(argc, argv, &i, "--dir", &dir) && !opt(argc, argv, &i, "--name", &name) &&
            !opt(argc, argv, &i, "--redirect-uri", &uri) && !opt(argc, argv, &i, "--sector", &sector) &&
            !opt(argc, argv, &i, "--public-key", &pub))
            return bad_usage("client add: unknown option");
    if (dir == NULL || name == NULL || uri == NULL) return bad_usage("client add needs --dir, --name, --redirect-uri");
    memset(&c, 0, sizeof c);
    if (!redirect_uri_ok(uri, host, sizeof host)) {
        fprintf(stderr, "duosign-oidc: --redirect-uri %s: %s\n", uri, duo_strerror(DUO_E_OIDC_REDIRECT_URI));
        return duo_err_exit_code(DUO_E_OIDC_REDIRECT_URI);
    }
    if (name[0] == '\0' || strlen(name) >= sizeof c.name ||
        (sector && (!sector[0] || strlen(sector) >= sizeof c.sector)))
        return fail(DUO_E_INVALID_ARG, "--name and --sector must be 1..127 characters");
    snprintf(c.name, sizeof c.name, "%s", name);
    snprintf(c.redirect_uri, sizeof c.redirect_uri, "%s", uri);
    snprintf(c.sector, sizeof c.sector, "%s", sector ? sector : host);
    if (pub != NULL) {
        char *pem = read_file(pub, sizeof c.public_key_pem - 1);
        if (pem == NULL || strstr(pem, "-----BEGIN PUBLIC KEY-----") == NULL) {
            free(pem);
            return fail(DUO_E_INVALID_ARG, "--public-key must be a PEM public key (P-256)");
        }
        snprintf(c.public_key_pem, sizeof c.public_key_pem, "%s", pem);
        free(pem);
    }
    if ((r = open_store(&s, dir)) != DUO_OK) return duo_err_exit_code(r);
    r = os_client_add(s, &c, secret, sizeof secret);
    os_close(s);
    if (r != DUO_OK) return fail(r, "client add");
    printf("client_id %s\n", c.id);
    if (pub == NULL) printf("client_secret %s\n", secret);
    printf("sector %s\n", c.sector);
    duo_memzero(secret, sizeof secret);
    return 0;
}

static void print_client(void *u, const os_client *c) {
    (void)u;
    printf("%s\t%s\t%s\t%s\t%s\n", c->id, c->name, c->redirect_uri, c->sector,
           c->public_key_pem[0] ? "private_key_jwt" : "client_secret_basic");
}

static int cmd_client_list(int argc, char **argv) {
    const char *dir = NULL;
    os_store *s;
    int r;
    for (int i = 0; i < argc; i++)
        if (!opt(argc, argv, &i, "--dir", &dir)) return bad_usage("client list: unknown option");
    if (dir == NULL) return bad_usage("client list needs --dir");
    if ((r = open_store(&s, dir)) != DUO_OK) return duo_err_exit_code(r);
    r = os_client_list(s, print_client, NULL);
    os_close(s);
    return r == DUO_OK ? 0 : fail(r, "client list");
}

static int cmd_key_rotate(int argc, char **argv) {
    const char *dir = NULL;
    char kid[64];
    os_store *s;
    int r;
    for (int i = 0; i < argc; i++)
        if (!opt(argc, argv, &i, "--dir", &dir)) return bad_usage("key rotate: unknown option");
    if (dir == NULL) return bad_usage("key rotate needs --dir");
    if ((r = open_store(&s, dir)) != DUO_OK) return duo_err_exit_code(r);
    r = os_key_rotate(s, OIDC_KEY_KEEP, kid, sizeof kid);
    os_close(s);
    if (r != DUO_OK) return fail(r, "key rotate");
    printf("kid %s\n", kid);
    return 0;
}

static int cmd_evidence(int argc, char **argv) {
    const char *dir = NULL, *jti = NULL;
    os_store *s;
    int r;
    for (int i = 0; i < argc; i++)
        if (!opt(argc, argv, &i, "--dir", &dir) && !opt(argc, argv, &i, "--jti", &jti))
            return bad_usage("evidence: unknown option");
    if (dir == NULL || jti == NULL) return bad_usage("evidence needs --dir and --jti");
    if ((r = open_store(&s, dir)) != DUO_OK) return duo_err_exit_code(r);
    r = os_audit_print(s, jti);
    os_close(s);
    return r == DUO_OK ? 0 : fail(r, "evidence: no login with this jti");
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

typedef struct {
    const char *dir, *listen, *issuer, *tls_cert, *tls_key, *cloud, *cloud_ca, *rp_cert, *rp_key, *rp_name, *clock,
        *poll;
    int insecure;
} serve_opts;

static int parse_serve(int argc, char **argv, serve_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--insecure-http") == 0) {
            o->insecure = 1;
            continue;
        }
        if (!opt(argc, argv, &i, "--dir", &o->dir) && !opt(argc, argv, &i, "--listen", &o->listen) &&
            !opt(argc, argv, &i, "--issuer", &o->issuer) && !opt(argc, argv, &i, "--tls-cert", &o->tls_cert) &&
            !opt(argc, argv, &i, "--tls-key", &o->tls_key) && !opt(argc, argv, &i, "--cloud", &o->cloud) &&
            !opt(argc, argv, &i, "--cloud-ca", &o->cloud_ca) && !opt(argc, argv, &i, "--rp-cert", &o->rp_cert) &&
            !opt(argc, argv, &i, "--rp-key", &o->rp_key) && !opt(argc, argv, &i, "--rp-name", &o->rp_name) &&
            !opt(argc, argv, &i, "--test-clock", &o->clock) && !opt(argc, argv, &i, "--poll-ms", &o->poll))
            return bad_usage("serve: unknown option");
    }
    if (!o->dir || !o->listen || !o->issuer || !o->cloud || !o->cloud_ca || !o->rp_cert || !o->rp_key || !o->rp_name)
        return bad_usage("serve needs --dir --listen --issuer --cloud --cloud-ca --rp-cert --rp-key --rp-name");
    if (o->insecure ? (o->tls_cert || o->tls_key) : (!o->tls_cert || !o->tls_key)) {
        fprintf(stderr, "duosign-oidc: %s\n", duo_strerror(DUO_E_OIDC_NO_TLS));
        return duo_err_exit_code(DUO_E_OIDC_NO_TLS);
    }
    size_t il = strlen(o->issuer);
    if ((strncmp(o->issuer, "https://", 8) != 0 && !(o->insecure && strncmp(o->issuer, "http://", 7) == 0)) ||
        il > 256 || o->issuer[il - 1] == '/' || strpbrk(o->issuer, "?#"))
        return bad_usage("--issuer must be https://HOST[:PORT][/PATH] without a trailing slash, query or fragment");
    return 0;
}

static int cmd_serve(int argc, char **argv) {
    serve_opts o;
    oidc_ctx c;
    char err[512] = "", *cert = NULL, *key = NULL;
    unsigned port = 0;
    void *h = NULL;
    int r = parse_serve(argc, argv, &o);
    if (r != 0) return r;
    memset(&c, 0, sizeof c);
    c.issuer = o.issuer;
    c.rp_name = o.rp_name;
    c.https = !o.insecure;
    c.poll_ms = o.poll ? (unsigned)strtoul(o.poll, NULL, 10) : 20000;
    if (c.poll_ms == 0 || c.poll_ms > OIDC_POLL_MS_MAX) c.poll_ms = OIDC_POLL_MS_MAX;
    c.rp.target = o.cloud;
    c.rp.ca_pem = read_file(o.cloud_ca, 65536);
    c.rp.cert_pem = read_file(o.rp_cert, 65536);
    c.rp.key_pem = read_file(o.rp_key, 65536);
    if (!c.rp.ca_pem || !c.rp.cert_pem || !c.rp.key_pem) {
        r = fail(DUO_E_IO, "cannot read --cloud-ca, --rp-cert or --rp-key");
        goto out;
    }
    if (!o.insecure && (!(cert = read_file(o.tls_cert, 65536)) || !(key = read_file(o.tls_key, 65536)))) {
        r = fail(DUO_E_IO, "cannot read --tls-cert or --tls-key");
        goto out;
    }
    if ((r = open_store(&c.store, o.dir)) != DUO_OK) {
        r = duo_err_exit_code(r);
        goto out;
    }
    if (o.clock) os_set_clock_file(c.store, o.clock);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    if ((h = oidc_http_start(&c, o.listen, cert, key, err, sizeof err, &port)) == NULL) {
        fprintf(stderr, "duosign-oidc: %s\n", err);
        r = duo_err_exit_code(DUO_E_UNAVAILABLE);
        goto out;
    }
    printf("duosign-oidc: serving %s on port %u (%s)\n", o.issuer, port, o.insecure ? "plain HTTP" : "HTTPS");
    fflush(stdout);
    while (!stop) pause();
    oidc_http_stop(h);
    r = 0;
out:
    os_close(c.store);
    if (key) duo_memzero(key, strlen(key));
    if (c.rp.key_pem) duo_memzero(c.rp.key_pem, strlen(c.rp.key_pem));
    free(cert);
    free(key);
    free(c.rp.ca_pem);
    free(c.rp.cert_pem);
    free(c.rp.key_pem);
    return r;
}

int main(int argc, char **argv) {
    if (argc < 2) return bad_usage("a command is needed");
    if (strcmp(argv[1], "init") == 0) return cmd_init(argc - 2, argv + 2);
    if (strcmp(argv[1], "serve") == 0) return cmd_serve(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "client") == 0 && strcmp(argv[2], "add") == 0)
        return cmd_client_add(argc - 3, argv + 3);
    if (argc >= 3 && strcmp(argv[1], "client") == 0 && strcmp(argv[2], "list") == 0)
        return cmd_client_list(argc - 3, argv + 3);
    if (strcmp(argv[1], "evidence") == 0) return cmd_evidence(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "key") == 0 && strcmp(argv[2], "rotate") == 0)
        return cmd_key_rotate(argc - 3, argv + 3);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    return bad_usage("unknown command");
}
