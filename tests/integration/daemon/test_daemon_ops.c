/* Operating the daemon (issue 21 items 1-4): the real duosign-cloud with
 * --log-format json, --log-file, --log-level debug and --metrics-listen,
 * driven through gRPC by the test device.
 *
 *   run       enrol three devices, sign (every signature verified by
 *             OpenSSL), wrong PINs, a lockout, a clone, a revocation by code;
 *   log       every line parses as a JSON object; one request line per call
 *             with request id, method, key id, result and duration; one
 *             security event per wrong PIN, lockout, clone and revocation;
 *             gRPC core's lines are in it and the daemon's stderr is empty;
 *             no secret the test knows (tokens, revocation codes, device
 *             secrets, the shares x2 and x2', PIN proofs, openings, MACs, c3)
 *             appears in hex or base64;
 *   metrics   /metrics scraped over HTTP, parsed as the Prometheus text
 *             format and checked against the operations done;
 *   store     a store error (the write lock held by another process): its
 *             event with the method and SQLite's reason, and its counter;
 *   unknown   a call answered without a handler (unknown method) is logged;
 *   reopen    the log renamed, SIGHUP: new lines in a new file;
 *   tls       a new certificate from a new CA, SIGHUP: a client already
 *             connected keeps working (a signature started before the
 *             reload finishes after it), a new connection sees the new
 *             certificate (and no longer the old one); a bad pair is refused
 *             and the good one stays;
 *   mistakes  malformed or refused --log-* / --metrics-listen values: a clear
 *             message and exit 2 (or 1), nothing served;
 *   second    a second daemon on the data directory is refused, naming the
 *             first one's pid;
 *   text      --log-format text: readable lines with the same fields;
 *   SIGINT    drains and exits 0 like SIGTERM.
 *
 * Usage: test_daemon_ops PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "daemon_client.h"
#include "duosign/mem.h"

#define BADPIN "0000"
#define WAIT_LINE_S 60 /* bounded waits for a line to appear: not a timing assertion */

static daemon_t g_d;
static client g_c;
static char g_log[300], g_err[300];

/* ------------------------------------------------------- secrets seen */

#define MAX_SECRETS 256
static struct {
    uint8_t b[512];
    size_t len;
    const char *what;
} g_sec[MAX_SECRETS];
static size_t g_nsec;

static void secret_add(const char *what, const void *b, size_t len) {
    if (g_nsec == MAX_SECRETS || len == 0) return;
    if (len > sizeof g_sec[0].b) len = sizeof g_sec[0].b;
    memcpy(g_sec[g_nsec].b, b, len);
    g_sec[g_nsec].len = len;
    g_sec[g_nsec].what = what;
    g_nsec++;
}

static void secret_str(const char *what, const char *s) { secret_add(what, s, strlen(s)); }

/* The device's shares now: x2' as stored, x2 = x2' + KDF(PIN), and its
 * current MAC secret. */
static void secrets_of_device(const device *dv) {
    secret_add("x2_masked", dv->key->x2_masked.b, 32);
    secret_add("device_secret", dv->key->device_secret, 32);
    duo_scalar kdf, x2;
    if (duo_p2_pin_kdf(g_ec, &kdf, dv->key, (const uint8_t *)PIN, strlen(PIN)) == DUO_OK &&
        duo_scalar_add(g_ec, &x2, &dv->key->x2_masked, &kdf) == DUO_OK) {
        secret_add("x2", x2.b, 32);
        secret_add("pin_kdf", kdf.b, 32);
    }
    duo_memzero(&kdf, sizeof kdf);
    duo_memzero(&x2, sizeof x2);
}

/* What a SignFinish request carried: the PIN proof, the opening, c3, the MAC. */
static void secrets_of_finish(const uint8_t *b, size_t len) {
    duo_sign_finish_req m;
    if (!b || duo_wire_parse_sign_finish_req(&m, b, len) != DUO_OK) return;
    secret_add("pin_proof", m.pin_proof, sizeof m.pin_proof);
    secret_add("r2_opening", m.r2_opening, sizeof m.r2_opening);
    secret_add("finish_mac", m.mac, sizeof m.mac);
    secret_add("c3", m.c3.ptr, m.c3.len);
    duo_wire_free_sign_finish_req(&m);
}

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* Hex (either case) and base64 (standard and URL-safe, whole and its first
 * 12 bytes) of every secret, and printable secrets as they are. Returns the
 * number of findings (each printed). */
static int secret_hits(const char *text, const char *name) {
    char enc[1400];
    int hits = 0;
    for (size_t i = 0; i < g_nsec; i++) {
        const uint8_t *b = g_sec[i].b;
        size_t len = g_sec[i].len;
        for (size_t part = 0; part < 2; part++) {
            size_t n = part == 0 ? len : (len > 12 ? 12 : len);
            if (n < 8) continue;
            for (size_t k = 0; k < n; k++) snprintf(enc + 2 * k, 3, "%02x", b[k]);
            if (strcasestr(text, enc)) {
                fprintf(stderr, "# %s holds %s in hex\n", name, g_sec[i].what);
                hits++;
            }
            EVP_EncodeBlock((unsigned char *)enc, b, (int)n);
            char *eq = strchr(enc, '=');
            if (eq) *eq = '\0';
            if (strstr(text, enc)) {
                fprintf(stderr, "# %s holds %s in base64\n", name, g_sec[i].what);
                hits++;
            }
            for (char *p = enc; *p; p++) *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
            if (strstr(text, enc)) {
                fprintf(stderr, "# %s holds %s in base64url\n", name, g_sec[i].what);
                hits++;
            }
        }
        int printable = len >= 8;
        for (size_t k = 0; k < len && printable; k++) printable = isprint(b[k]);
        if (printable) {
            snprintf(enc, sizeof enc, "%.*s", (int)len, (const char *)b);
            if (strstr(text, enc)) {
                fprintf(stderr, "# %s holds %s as text\n", name, g_sec[i].what);
                hits++;
            }
        }
    }
    return hits;
}

static void check_no_secret_in(const char *text, const char *name) { DUO_CHECK(secret_hits(text, name) == 0); }

/* The search itself finds what it looks for: every secret planted. */
static void check_search_works(void) {
    for (size_t i = 0; i < g_nsec; i++) {
        char text[1400] = "x ", *p = text + 2;
        for (size_t k = 0; k < g_sec[i].len && k < 32; k++) p += sprintf(p, "%02X", g_sec[i].b[k]);
        DUO_CHECK_MSG(secret_hits(text, "planted text") > 0, "%s not found where planted", g_sec[i].what);
    }
}

/* ------------------------------------------------------ the JSON log */

typedef struct {
    json_t **lines;
    size_t n;
} jlog;

/* Every line of path must be one JSON object with ts, level and event. */
static int jlog_read(jlog *l, const char *path) {
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int bad = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_error_t e;
        json_t *o = json_loadb(line, (size_t)len, 0, &e);
        if (!o || !json_is_object(o) || !json_is_string(json_object_get(o, "ts")) ||
            !json_is_string(json_object_get(o, "level")) || !json_is_string(json_object_get(o, "event"))) {
            fprintf(stderr, "# not a log line: %s", line);
            bad++;
            json_decref(o);
            continue;
        }
        json_t **p = realloc(l->lines, (l->n + 1) * sizeof *p);
        if (!p) break;
        l->lines = p;
        l->lines[l->n++] = o;
    }
    free(line);
    fclose(f);
    return bad ? -1 : 0;
}

static void jlog_free(jlog *l) {
    for (size_t i = 0; i < l->n; i++) json_decref(l->lines[i]);
    free(l->lines);
}

static const char *jstr(json_t *o, const char *k) {
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* Lines with this event (and method / result / key id when non-NULL). */
static int jcount(const jlog *l, const char *event, const char *method, const char *result, const char *key) {
    int n = 0;
    for (size_t i = 0; i < l->n; i++) {
        json_t *o = l->lines[i];
        if (strcmp(jstr(o, "event"), event) != 0) continue;
        if (method && strcmp(jstr(o, "method"), method) != 0) continue;
        if (result && strcmp(jstr(o, "result"), result) != 0) continue;
        if (key && strcmp(jstr(o, "key_id"), key) != 0) continue;
        n++;
    }
    return n;
}

/* Waits (bounded) for text to appear in path. 0 found, -1 not. */
static int wait_for_text(const char *path, const char *text) {
    for (int i = 0; i < WAIT_LINE_S * 10; i++) {
        char *s = read_all(path);
        int found = s && strstr(s, text);
        free(s);
        if (found) return 0;
        usleep(100000);
    }
    return -1;
}

/* ------------------------------------------------------------ metrics */

#define MAX_SAMPLES 1024
static struct {
    char key[256]; /* name{labels} as written */
    double v;
} g_m[MAX_SAMPLES];
static size_t g_nm;

static int metric_name_ok(const char *s, size_t n) {
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':')) return 0;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':')) return 0;
    return 1;
}

/* The text exposition format: "# HELP name text", "# TYPE name kind",
 * "name{k="v",...} value". Returns the number of malformed lines. */
static int metrics_parse(char *text) {
    int bad = 0;
    g_nm = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            char kind[16], name[128];
            if (strncmp(line, "# HELP ", 7) == 0) continue;
            if (sscanf(line, "# TYPE %127s %15s", name, kind) != 2 ||
                (strcmp(kind, "counter") && strcmp(kind, "gauge") && strcmp(kind, "histogram")))
                bad++;
            continue;
        }
        char *sp = strrchr(line, ' ');
        if (!sp) {
            bad++;
            continue;
        }
        *sp = '\0';
        char *end;
        double v = strtod(sp + 1, &end);
        size_t nl = strcspn(line, "{");
        int ok = *end == '\0' && metric_name_ok(line, nl);
        if (ok && line[nl] == '{') { /* k="v" pairs */
            const char *p = line + nl + 1;
            while (ok && *p != '}') {
                size_t kl = strcspn(p, "=");
                ok = metric_name_ok(p, kl) && p[kl] == '=' && p[kl + 1] == '"';
                if (!ok) break;
                p += kl + 2;
                while (*p && *p != '"') p += (*p == '\\' && p[1]) ? 2 : 1;
                ok = *p == '"';
                if (!ok) break;
                p++;
                if (*p == ',') p++;
            }
            ok = ok && p[0] == '}' && p[1] == '\0';
        }
        if (!ok || g_nm == MAX_SAMPLES) {
            fprintf(stderr, "# malformed metric line: %s\n", line);
            bad++;
            continue;
        }
        snprintf(g_m[g_nm].key, sizeof g_m[g_nm].key, "%s", line);
        g_m[g_nm++].v = v;
    }
    return bad;
}

static double metric(const char *key) {
    for (size_t i = 0; i < g_nm; i++)
        if (strcmp(g_m[i].key, key) == 0) return g_m[i].v;
    return -1;
}

static int scrape(int port, char **body) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -sS --max-time 30 http://127.0.0.1:%d/metrics", port);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 1 << 20, n = fread(*body = malloc(cap), 1, cap - 1, p);
    (*body)[n] = '\0';
    return pclose(p) == 0 && n > 0 ? 0 : -1;
}

/* ---------------------------------------------------------------- run */

static char g_kid[3][33];
static int g_metrics_port;

static void sign_ok(device *dv, const char *text, int i) {
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.keep_finish = 1;
    digest_of(d, text, i);
    DUO_CHECK(dev_sign(&g_c, dv, PIN, d, &sr) == 0);
    DUO_CHECK(openssl_verify(dv, d, sr.sig) == 1);
    secrets_of_finish(sr.finish_bytes, sr.finish_len);
    free(sr.finish_bytes);
    secrets_of_device(dv);
}

static void sign_wrong_pin(device *dv, int i) {
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.keep_finish = 1;
    digest_of(d, "wrong", i);
    DUO_CHECK(dev_sign(&g_c, dv, BADPIN, d, &sr) != 0);
    DUO_CHECK(sr.res.duo_err == DUO_E_WRONG_PIN);
    secrets_of_finish(sr.finish_bytes, sr.finish_len);
    free(sr.finish_bytes);
}

static int enrol_keep(device *dv, const char *citizen) {
    char tok[128];
    rpc_result res;
    issue_token(tok, sizeof tok, citizen, 600);
    if (!tok[0]) return -1;
    secret_str("token", tok);
    int st = enrol(&g_c, tok, dv, &res);
    if (st == 0) {
        secret_str("revocation code", dv->code);
        secrets_of_device(dv);
        /* the confirmation's MAC (its last field) under the first device secret */
        if (dv->confirm_len >= 32) secret_add("confirm_mac", dv->confirm + dv->confirm_len - 32, 32);
    }
    return st;
}

/* A: signs, a wrong PIN, signs again, then a copy of its old state acts (a
 * clone). B: two wrong PINs, locked. C: signs, revoked by its code. */
static void test_run(void) {
    device a, b, c;
    DUO_REQUIRE(enrol_keep(&a, "UA-OPS-1") == 0);
    key_hex(g_kid[0], &a);
    sign_ok(&a, "ops-a", 0);
    uint8_t old_secret[32];
    memcpy(old_secret, a.key->device_secret, 32); /* the copy of the device */
    sign_ok(&a, "ops-a", 1);
    sign_wrong_pin(&a, 0);
    sign_ok(&a, "ops-a", 2);
    uint8_t real[32];
    memcpy(real, a.key->device_secret, 32);
    memcpy(a.key->device_secret, old_secret, 32);
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "clone", 0);
    DUO_CHECK(dev_sign(&g_c, &a, PIN, d, &sr) != 0);
    DUO_CHECK(sr.res.duo_err == DUO_E_CLONE_SUSPECTED);
    memcpy(a.key->device_secret, real, 32);

    DUO_REQUIRE(enrol_keep(&b, "UA-OPS-2") == 0);
    key_hex(g_kid[1], &b);
    sign_wrong_pin(&b, 1);
    sign_wrong_pin(&b, 2); /* --lock-policy 2:... : locked */

    DUO_REQUIRE(enrol_keep(&c, "UA-OPS-3") == 0);
    key_hex(g_kid[2], &c);
    sign_ok(&c, "ops-c", 0);
    rpc_result res;
    char code[48]; /* a revocation code is 39 characters */
    size_t cl = strnlen(c.code, sizeof code - 1);
    memcpy(code, c.code, cl);
    code[cl] = '\0';
    DUO_CHECK(dev_revoke(&g_c, &c, code, &res) == GRPC_STATUS_OK);
    device_free(&a);
    device_free(&b);
    device_free(&c);
}

static void test_log(void) {
    jlog l;
    DUO_CHECK_MSG(jlog_read(&l, g_log) == 0, "%s: some lines are not JSON objects", g_log);
    DUO_REQUIRE(l.n > 0);
    /* Request lines: id, method, result, code, duration; ids unique. */
    int requests = 0;
    for (size_t i = 0; i < l.n; i++) {
        json_t *o = l.lines[i];
        const char *lvl = jstr(o, "level");
        DUO_CHECK(!strcmp(lvl, "DEBUG") || !strcmp(lvl, "INFO") || !strcmp(lvl, "WARN") || !strcmp(lvl, "ERROR"));
        DUO_CHECK(strlen(jstr(o, "ts")) == 24 && jstr(o, "ts")[23] == 'Z');
        if (strcmp(jstr(o, "event"), "request") != 0) continue;
        requests++;
        const char *id = jstr(o, "request_id");
        DUO_CHECK_MSG(strlen(id) == 16, "request id '%s'", id);
        DUO_CHECK(json_is_integer(json_object_get(o, "code")) && json_is_real(json_object_get(o, "duration_ms")));
        DUO_CHECK(json_real_value(json_object_get(o, "duration_ms")) >= 0);
        DUO_CHECK(jstr(o, "method")[0] && jstr(o, "result")[0] && jstr(o, "peer")[0]);
        const char *m = jstr(o, "method");
        if (!strcmp(m, "SignStart") || !strcmp(m, "SignFinish") || !strcmp(m, "EnrollConfirm"))
            DUO_CHECK_MSG(strlen(jstr(o, "key_id")) == 32, "%s line without its key id", m);
        for (size_t j = i + 1; j < l.n; j++)
            if (!strcmp(jstr(l.lines[j], "event"), "request"))
                DUO_CHECK_MSG(strcmp(id, jstr(l.lines[j], "request_id")) != 0, "request id %s twice", id);
    }
    fprintf(stderr, "# %zu log lines, %d requests\n", l.n, requests);
    /* The operations, by method and result. */
    DUO_CHECK(jcount(&l, "request", "EnrollConfirm", "OK", NULL) == 3);
    DUO_CHECK(jcount(&l, "request", "SignFinish", "OK", NULL) == 4);
    DUO_CHECK(jcount(&l, "request", "SignFinish", "E_WRONG_PIN", NULL) == 3);
    DUO_CHECK(jcount(&l, "request", "SignStart", "E_CLONE_SUSPECTED", g_kid[0]) == 1);
    DUO_CHECK(jcount(&l, "request", "Revoke", "OK", g_kid[2]) == 1);
    /* The security events, each with its key and request. */
    DUO_CHECK(jcount(&l, "pin.wrong", NULL, NULL, g_kid[0]) == 1);
    DUO_CHECK(jcount(&l, "pin.wrong", NULL, NULL, g_kid[1]) == 2);
    DUO_CHECK(jcount(&l, "pin.lockout", NULL, NULL, g_kid[1]) == 1);
    DUO_CHECK(jcount(&l, "key.clone", NULL, NULL, g_kid[0]) == 1);
    DUO_CHECK(jcount(&l, "key.revoked", NULL, NULL, g_kid[2]) == 1);
    for (size_t i = 0; i < l.n; i++) {
        const char *ev = jstr(l.lines[i], "event");
        if (strcmp(ev, "pin.wrong") && strcmp(ev, "pin.lockout") && strcmp(ev, "key.clone") &&
            strcmp(ev, "key.revoked"))
            continue;
        DUO_CHECK_MSG(strlen(jstr(l.lines[i], "request_id")) == 16, "%s without its request id", ev);
    }
    /* gRPC core's lines come through the logger; nothing raw on stderr. */
    DUO_CHECK(jcount(&l, "grpc", NULL, NULL, NULL) > 0);
    DUO_CHECK(jcount(&l, "daemon.start", NULL, NULL, NULL) == 1);
    struct stat st;
    DUO_CHECK_MSG(stat(g_err, &st) == 0 && st.st_size == 0, "the daemon wrote %lld bytes to stderr",
                  (long long)st.st_size);
    jlog_free(&l);
    /* No secret of the run, in any encoding. */
    char *text = read_all(g_log);
    DUO_REQUIRE(text != NULL);
    fprintf(stderr, "# %zu secret values looked for\n", g_nsec);
    DUO_CHECK(g_nsec > 30);
    check_no_secret_in(text, "the log");
    check_search_works();
    free(text);
}

static void test_metrics(void) {
    char *body = NULL;
    DUO_REQUIRE(g_metrics_port > 0);
    DUO_REQUIRE(scrape(g_metrics_port, &body) == 0);
    check_no_secret_in(body, "/metrics");
    DUO_CHECK(metrics_parse(body) == 0);
    free(body);
#define REQ(m, r) "duosign_requests_total{method=\"" m "\",result=\"" r "\"}"
    DUO_CHECK(metric(REQ("EnrollConfirm", "OK")) == 3);
    DUO_CHECK(metric(REQ("SignStart", "OK")) == 7);
    DUO_CHECK(metric(REQ("SignStart", "E_CLONE_SUSPECTED")) == 1);
    DUO_CHECK(metric(REQ("SignFinish", "OK")) == 4);
    DUO_CHECK(metric(REQ("SignFinish", "E_WRONG_PIN")) == 3);
    DUO_CHECK(metric(REQ("Revoke", "OK")) == 1);
    DUO_CHECK(metric("duosign_request_duration_seconds_count{method=\"SignFinish\"}") == 7);
    DUO_CHECK(metric("duosign_request_duration_seconds_bucket{method=\"SignFinish\",le=\"+Inf\"}") == 7);
    DUO_CHECK(metric("duosign_request_duration_seconds_sum{method=\"SignFinish\"}") > 0);
    DUO_CHECK(metric("duosign_request_duration_seconds_bucket{method=\"SignFinish\",le=\"0.001\"}") <=
              metric("duosign_request_duration_seconds_bucket{method=\"SignFinish\",le=\"30\"}"));
    DUO_CHECK(metric("duosign_pin_failures_total") == 3);
    DUO_CHECK(metric("duosign_pin_lockouts_total") == 1);
    DUO_CHECK(metric("duosign_clones_total") == 1);
    DUO_CHECK(metric("duosign_revocations_total") == 1);
    DUO_CHECK(metric("duosign_replays_total") == 0);
    DUO_CHECK(metric("duosign_store_errors_total") == 0);
    DUO_CHECK(metric("duosign_sessions_in_progress{kind=\"sign\"}") == 0);
    DUO_CHECK(metric("duosign_sessions_in_progress{kind=\"enrol\"}") == 0);
    DUO_CHECK(metric("duosign_pool_target") == 2);
    DUO_CHECK(metric("duosign_pool_ready") >= 0 && metric("duosign_pool_ready") <= 2);
    DUO_CHECK(metric("duosign_store_up") == 1);
    DUO_CHECK(metric("duosign_build_info{version=\"" DUOSIGN_VERSION "\"}") == 1);
    DUO_CHECK(metric("duosign_keys{state=\"active\"}") == 0);
    DUO_CHECK(metric("duosign_keys{state=\"locked\"}") == 1);
    DUO_CHECK(metric("duosign_keys{state=\"suspended\"}") == 1);
    DUO_CHECK(metric("duosign_keys{state=\"revoked\"}") == 1);
    /* Anything but GET /metrics is refused. */
    char out[64];
    DUO_CHECK(run_cmd(out, sizeof out, "curl -s -o /dev/null -w '%%{http_code}' http://127.0.0.1:%d/other",
                      g_metrics_port) == 0 &&
              strcmp(out, "404") == 0);
}

/* A Status of a fresh device on g_c... any request line will do: a Status
 * for an unknown key. */
static int any_request(client *c) {
    duo_status_req q;
    memset(&q, 0, sizeof q);
    q.key_id[0] = 1;
    duo_status_resp r;
    rpc_result res;
    return CALL(c, "Status", status_req, &q, status_resp, &r, &res) == -1 ? -1 : res.status;
}

/* A store error (the write lock held by another process past
 * --store-busy-ms): a store.error event with the method, SQLite's reason,
 * and the counter. */
static void test_store_error(void) {
    device dv;
    DUO_REQUIRE(enrol_keep(&dv, "UA-OPS-4") == 0);
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/keys.db", g_dir);
    DUO_REQUIRE(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    DUO_REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK);
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "store", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0);
    DUO_CHECK_MSG(sr.res.duo_err == DUO_E_STORE || sr.res.duo_err == DUO_E_TIMEOUT, "duo %d", sr.res.duo_err);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    DUO_CHECK(wait_for_text(g_log, "\"event\":\"store.error\"") == 0);
    jlog l;
    DUO_CHECK(jlog_read(&l, g_log) == 0);
    int with_method = 0, with_reason = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(jstr(l.lines[i], "event"), "store.error") != 0) continue;
        DUO_CHECK(!strcmp(jstr(l.lines[i], "level"), "ERROR"));
        with_method += strstr(jstr(l.lines[i], "msg"), "SignStart: store error") != NULL;
        with_reason += strstr(jstr(l.lines[i], "msg"), "database is locked") != NULL;
    }
    jlog_free(&l);
    DUO_CHECK_MSG(with_method == 1 && with_reason >= 1, "store.error lines: %d with the method, %d with the reason",
                  with_method, with_reason);
    char *body = NULL;
    DUO_REQUIRE(scrape(g_metrics_port, &body) == 0);
    DUO_CHECK(metrics_parse(body) == 0);
    free(body);
    DUO_CHECK(metric("duosign_store_errors_total") == 1);
    double a = metric(REQ("SignStart", "E_STORE")), b = metric(REQ("SignStart", "E_TIMEOUT"));
    DUO_CHECK_MSG((a > 0 ? a : 0) + (b > 0 ? b : 0) == 1, "SignStart store failures counted: %g + %g", a, b);
    device_free(&dv);
}

/* A call the server answers without a handler still gets its line. */
static void test_unknown_method(void) {
    duo_test_rpc_result res;
    uint8_t *resp = NULL;
    size_t rl = 0;
    int st = duo_test_unary(g_c.ch, NULL, "/duosign.v1.DuoSign/NoSuchMethod", (const uint8_t *)"", 0, 30000, &res,
                            &resp, &rl);
    free(resp);
    DUO_CHECK(st == GRPC_STATUS_UNIMPLEMENTED);
    DUO_CHECK(wait_for_text(g_log, "\"method\":\"NoSuchMethod\",\"result\":\"E_UNSUPPORTED\"") == 0);
}

static void test_log_reopen(void) {
    char old[320];
    snprintf(old, sizeof old, "%s.1", g_log);
    DUO_REQUIRE(rename(g_log, old) == 0);
    DUO_REQUIRE(kill(g_d.pid, SIGHUP) == 0);
    DUO_REQUIRE(wait_for_text(g_log, "log reopened") == 0);
    DUO_CHECK(any_request(&g_c) == GRPC_STATUS_NOT_FOUND);
    DUO_CHECK(wait_for_text(g_log, "\"method\":\"Status\"") == 0);
    char *o = read_all(old);
    DUO_CHECK(o && !strstr(o, "log reopened") && !strstr(o, "\"method\":\"Status\""));
    free(o);
}

static void test_tls_reload(void) {
    /* A new CA and a server certificate under it, in the daemon's paths. */
    char sh_out[2048];
    int sh_rc =
        run_cmd(sh_out, sizeof sh_out,
                "cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca2.key "
                "-out ca2.pem -days 2 -subj /CN=ops-ca2 -addext basicConstraints=critical,CA:TRUE "
                "-addext keyUsage=critical,keyCertSign 2>&1 && "
                "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv2.key -out srv2.csr "
                "-subj /CN=localhost 2>&1 && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext && "
                "openssl x509 -req -in srv2.csr -CA ca2.pem -CAkey ca2.key -CAcreateserial -days 2 -extfile ext "
                "-out srv2.pem 2>&1",
                g_parent);
    DUO_CHECK_MSG(sh_rc == 0, "openssl: %.600s", sh_out);
    DUO_REQUIRE(sh_rc == 0);
    char ca2[320], cmd[2048];
    snprintf(ca2, sizeof ca2, "%s/ca2.pem", g_parent);
    /* Before: the new CA does not verify the served certificate. */
    duo_test_channel_opts o1 = {.own_connection = 1};
    grpc_channel *before = duo_test_channel_open(ca2, g_d.port, &o1);
    DUO_REQUIRE(before != NULL);
    duo_test_rpc_result res;
    uint8_t *resp = NULL;
    size_t rl = 0;
    int st = duo_test_unary(before, NULL, M("Status"), (const uint8_t *)"", 0, 1500, &res, &resp, &rl);
    DUO_CHECK_MSG(st == GRPC_STATUS_UNAVAILABLE || st == GRPC_STATUS_DEADLINE_EXCEEDED, "before: status %d", st);
    free(resp);
    grpc_channel_destroy(before);

    /* A signature started before the reload, finished after it on the same
     * connection. */
    device dv;
    DUO_REQUIRE(enrol_keep(&dv, "UA-OPS-5") == 0);
    uint8_t digest[32], sig[64];
    digest_of(digest, "across SIGHUP", 0);
    duo_p2_sign *sg = NULL;
    duo_sign_finish_req m2;
    rpc_result rr;
    DUO_REQUIRE(dev_sign_open(&g_c, &dv, digest, &sg, &m2, &rr) == 0);

    snprintf(cmd, sizeof cmd, "cp '%s/srv2.pem' '%s/server.pem' && cp '%s/srv2.key' '%s/server.key'", g_parent, g_dir,
             g_parent, g_dir);
    DUO_REQUIRE(run_cmd(NULL, 0, "%s", cmd) == 0);
    DUO_REQUIRE(kill(g_d.pid, SIGHUP) == 0);
    DUO_REQUIRE(wait_for_text(g_log, "and key reloaded") == 0);

    duo_sign_finish_resp m3;
    DUO_CHECK(CALL(&g_c, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &rr) == 0 &&
              duo_p2_sign_on_finish(sg, &m3, sig) == DUO_OK && openssl_verify(&dv, digest, sig) == 1);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(sg);
    device_free(&dv);

    /* The connection made before the reload keeps working. */
    DUO_CHECK(any_request(&g_c) == GRPC_STATUS_NOT_FOUND);
    /* A new connection sees the new certificate... */
    duo_test_channel_opts o2 = {.own_connection = 2};
    client fresh = {duo_test_channel_open(ca2, g_d.port, &o2)};
    DUO_REQUIRE(fresh.ch != NULL);
    DUO_CHECK(any_request(&fresh) == GRPC_STATUS_NOT_FOUND);
    client_close(&fresh);
    /* ...and the old CA no longer verifies it. */
    char ca1[320];
    snprintf(ca1, sizeof ca1, "%s/ca.pem", g_dir);
    duo_test_channel_opts o3 = {.own_connection = 3};
    grpc_channel *old = duo_test_channel_open(ca1, g_d.port, &o3);
    resp = NULL;
    st = duo_test_unary(old, NULL, M("Status"), (const uint8_t *)"", 0, 1500, &res, &resp, &rl);
    DUO_CHECK_MSG(st == GRPC_STATUS_UNAVAILABLE || st == GRPC_STATUS_DEADLINE_EXCEEDED, "old CA: status %d", st);
    free(resp);
    grpc_channel_destroy(old);
    /* The served certificate, seen by OpenSSL. */
    char out[4096];
    snprintf(cmd, sizeof cmd,
             "openssl s_client -connect 127.0.0.1:%d -alpn h2 -CAfile '%s' -verify_return_error </dev/null 2>&1 | "
             "grep -aE 'issuer=|Verify return code'",
             g_d.port, ca2);
    DUO_CHECK(run_cmd(out, sizeof out, "%s", cmd) == 0);
    DUO_CHECK_MSG(strstr(out, "ops-ca2") && strstr(out, "Verify return code: 0 (ok)"), "s_client: %.600s", out);

    /* A key that does not match: refused, the working pair stays. */
    snprintf(cmd, sizeof cmd, "cp '%s/ca2.key' '%s/server.key'", g_parent, g_dir);
    DUO_REQUIRE(run_cmd(NULL, 0, "%s", cmd) == 0);
    DUO_REQUIRE(kill(g_d.pid, SIGHUP) == 0);
    DUO_CHECK(wait_for_text(g_log, "TLS not reloaded") == 0);
    duo_test_channel_opts o4 = {.own_connection = 4};
    client again = {duo_test_channel_open(ca2, g_d.port, &o4)};
    DUO_CHECK(any_request(&again) == GRPC_STATUS_NOT_FOUND);
    client_close(&again);
    snprintf(cmd, sizeof cmd, "cp '%s/srv2.key' '%s/server.key'", g_parent, g_dir);
    DUO_CHECK(run_cmd(NULL, 0, "%s", cmd) == 0);
}

static void test_second_daemon(void) {
    char out[1024], want[64];
    int rc = run_cmd(out, sizeof out, "'%s' serve --data '%s' --listen 127.0.0.1:0 2>&1", g_bin, g_dir);
    snprintf(want, sizeof want, "(pid %d)", (int)g_d.pid);
    DUO_CHECK_MSG(rc == 1 && strstr(out, "another duosign-cloud is already serving") && strstr(out, want),
                  "exit %d: %.600s", rc, out);
}

/* The operator's mistakes with the new flags: a clear message, exit 2 for
 * a malformed value, 1 for one the system refuses; nothing starts. */
static void test_flag_mistakes(void) {
    char out[1024], dir2[320];
    snprintf(dir2, sizeof dir2, "%s/data2", g_parent);
    DUO_REQUIRE(run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, dir2) == 0);
    static const struct {
        const char *args;
        int rc;
        const char *says;
    } cases[] = {
        {"--log-format yaml", 2, "--log-format must be text or json (got 'yaml')"},
        {"--log-level loud", 2, "--log-level must be debug, info, warn or error (got 'loud')"},
        {"--log-format", 2, "--log-format needs a value"},
        {"--metrics-listen localhost:9464", 2, "--metrics-listen 'localhost:9464' must be ADDR:PORT"},
        {"--metrics-listen 127.0.0.1", 2, "must be ADDR:PORT"},
        {"--metrics-listen 127.0.0.1:99999", 2, "must be ADDR:PORT"},
        {"--log-file /nonexistent-duo-dir/daemon.log", 1,
         "cannot open the log file /nonexistent-duo-dir/daemon.log: No such file or directory"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_cmd(out, sizeof out, "'%s' serve --data '%s' --listen 127.0.0.1:0 %s 2>&1 </dev/null", g_bin, dir2,
                         cases[i].args);
        DUO_CHECK_MSG(rc == cases[i].rc && strstr(out, cases[i].says) && !strstr(out, "listening on"),
                      "%s: exit %d: %.600s", cases[i].args, rc, out);
    }
    /* The metrics port taken (by the running daemon's endpoint). */
    int rc = run_cmd(out, sizeof out,
                     "'%s' serve --data '%s' --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:%d 2>&1 </dev/null", g_bin,
                     dir2, g_metrics_port);
    DUO_CHECK_MSG(rc == 1 && strstr(out, "cannot serve metrics on 127.0.0.1:") && !strstr(out, "listening on"),
                  "metrics port in use: exit %d: %.600s", rc, out);
}

/* After the JSON run: the same daemon in text, one request, readable lines. */
static void test_text_format(void) {
    char tlog[320], extra[900], ca2[320];
    snprintf(tlog, sizeof tlog, "%s/text.log", g_parent);
    snprintf(ca2, sizeof ca2, "%s/ca2.pem", g_parent);
    snprintf(extra, sizeof extra, "--log-file '%s' 2>>'%s'", tlog, g_err);
    client_close(&g_c);
    DUO_REQUIRE(daemon_stop(&g_d) == 0);
    DUO_CHECK(wait_for_text(g_log, "stopped cleanly") == 0);
    DUO_REQUIRE(daemon_start(&g_d, extra) == 0);
    duo_test_channel_opts o = {.own_connection = 5};
    g_c.ch = duo_test_channel_open(ca2, g_d.port, &o);
    DUO_REQUIRE(g_c.ch != NULL);
    DUO_CHECK(any_request(&g_c) == GRPC_STATUS_NOT_FOUND);
    DUO_REQUIRE(wait_for_text(tlog, "method=Status") == 0);
    char *t = read_all(tlog);
    DUO_REQUIRE(t != NULL);
    int lines = 0;
    for (char *l = strtok(t, "\n"); l; l = strtok(NULL, "\n"), lines++) {
        DUO_CHECK_MSG(strlen(l) > 30 && l[4] == '-' && l[10] == 'T' && l[23] == 'Z' && l[24] == ' ', "line: %s", l);
        if (strstr(l, " request ")) {
            DUO_CHECK_MSG(strstr(l, " id=") && strstr(l, " result=E_NOT_FOUND") && strstr(l, " ms=") &&
                              strstr(l, " key=01000000000000000000000000000000"),
                          "line: %s", l);
        }
    }
    DUO_CHECK(lines >= 2);
    free(t);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    snprintf(g_dir, sizeof g_dir, "/tmp/duo-ops-XXXXXX");
    if (!mkdtemp(g_dir)) return 2;
    snprintf(g_parent, sizeof g_parent, "%s", g_dir);
    strcat(g_dir, "/data");
    snprintf(g_log, sizeof g_log, "%s/daemon.log", g_parent);
    snprintf(g_err, sizeof g_err, "%s/daemon.stderr", g_parent);
    char out[1024], extra[1024];
    if (run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir) != 0) {
        fprintf(stderr, "init failed: %s\n", out);
        return 1;
    }
    if (duo_ec_new(&g_ec, DUO_CURVE_SECP256K1, NULL) != DUO_OK) return 2;
    grpc_init();
    snprintf(extra, sizeof extra,
             "--lock-policy 2:3600,9:revoke --store-busy-ms 300 --log-format json --log-level debug --log-file '%s' "
             "--metrics-listen 127.0.0.1:0 2>'%s'",
             g_log, g_err);
    if (daemon_start(&g_d, extra) != 0 || client_open(&g_c, g_d.port) != 0) {
        fprintf(stderr, "cannot start the daemon\n");
        return 1;
    }
    /* The metrics port, from the daemon's start line in its log. */
    if (wait_for_text(g_log, "/metrics") == 0) {
        char *s = read_all(g_log), *p = s ? strstr(s, "metrics on http://127.0.0.1:") : NULL;
        g_metrics_port = p ? atoi(p + strlen("metrics on http://127.0.0.1:")) : 0;
        free(s);
    }
    DUO_RUN(test_run);
    DUO_RUN(test_log);
    DUO_RUN(test_metrics);
    DUO_RUN(test_store_error);
    DUO_RUN(test_unknown_method);
    DUO_RUN(test_log_reopen);
    DUO_RUN(test_tls_reload);
    DUO_RUN(test_second_daemon);
    DUO_RUN(test_flag_mistakes);
    DUO_RUN(test_text_format);
    /* SIGINT drains like SIGTERM: exit 0, said in the (text) log. */
    client_close(&g_c);
    int st = -1;
    DUO_CHECK(kill(g_d.pid, SIGINT) == 0 && waitpid(g_d.pid, &st, 0) == g_d.pid);
    DUO_CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT: status %d", st);
    char tlog[320];
    snprintf(tlog, sizeof tlog, "%s/text.log", g_parent);
    DUO_CHECK(wait_for_text(tlog, "SIGINT: draining") == 0 && wait_for_text(tlog, "stopped cleanly") == 0);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' audit verify --data '%s' 2>&1", g_bin, g_dir) == 0);
    grpc_shutdown();
    duo_ec_free(g_ec);
    if (!getenv("DUO_E2E_KEEP")) run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
