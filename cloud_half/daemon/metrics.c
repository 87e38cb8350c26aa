/* duosign-cloud: Prometheus metrics (metrics.h). */
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "daemon.h"
#include "keystore.h" /* duo_key_state_name */
#include "log.h"

/* Latency buckets (seconds): a signature's round 2 at 3072 bits is tens of
 * milliseconds, an enrolment round with proofs up to seconds. */
static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define NB (sizeof buckets / sizeof buckets[0])
#define NERR 128 /* results by -code: the error table's numbers stay above -128 */

static struct {
    const char *const *names;
    size_t n;
    atomic_uint_fast64_t req[DUO_METRICS_METHODS_MAX][NERR];
    atomic_uint_fast64_t hist[DUO_METRICS_METHODS_MAX][NB + 1]; /* last: +Inf only */
    atomic_uint_fast64_t sum_us[DUO_METRICS_METHODS_MAX];
    atomic_uint_fast64_t events[DUO_EV_COUNT];
} m;

void duo_metrics_set_methods(const char *const *names, size_t n) {
    m.names = names;
    m.n = n < DUO_METRICS_METHODS_MAX ? n : DUO_METRICS_METHODS_MAX;
}

void duo_metrics_request(int method, int code, double seconds) {
    if (method < 0 || (size_t)method >= m.n) return;
    int e = -code;
    if (e < 0 || e >= NERR) e = -DUO_E_INTERNAL;
    atomic_fetch_add(&m.req[method][e], 1);
    size_t b = 0;
    while (b < NB && seconds > buckets[b]) b++;
    atomic_fetch_add(&m.hist[method][b], 1);
    atomic_fetch_add(&m.sum_us[method], (uint_fast64_t)(seconds * 1e6));
}

void duo_metrics_event(duo_ops_event ev) {
    if ((unsigned)ev < DUO_EV_COUNT) atomic_fetch_add(&m.events[ev], 1);
}

/* ------------------------------------------------------------ render */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)n;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

static void render_requests(buf *b) {
    put(b, "# HELP duosign_requests_total RPCs answered, by method and result (DUO_E_* name, OK)\n"
           "# TYPE duosign_requests_total counter\n");
    for (size_t i = 0; i < m.n; i++)
        for (int e = 0; e < NERR; e++) {
            uint64_t v = atomic_load(&m.req[i][e]);
            if (v)
                put(b, "duosign_requests_total{method=\"%s\",result=\"%s\"} %llu\n", m.names[i], duo__result_name(-e),
                    (unsigned long long)v);
        }
    put(b, "# HELP duosign_request_duration_seconds Time in the handler, by method\n"
           "# TYPE duosign_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m.n; i++) {
        uint64_t cum = 0;
        for (size_t k = 0; k <= NB; k++) {
            cum += atomic_load(&m.hist[i][k]);
            if (k < NB)
                put(b, "duosign_request_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n", m.names[i],
                    buckets[k], (unsigned long long)cum);
            else
                put(b, "duosign_request_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n", m.names[i],
                    (unsigned long long)cum);
        }
        put(b, "duosign_request_duration_seconds_sum{method=\"%s\"} %.6f\n", m.names[i],
            (double)atomic_load(&m.sum_us[i]) / 1e6);
        put(b, "duosign_request_duration_seconds_count{method=\"%s\"} %llu\n", m.names[i], (unsigned long long)cum);
    }
}

static void render_events(buf *b) {
    for (int ev = 0; ev < DUO_EV_COUNT; ev++) {
        const char *name = duo__event_metric((duo_ops_event)ev);
        put(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, duo__event_help((duo_ops_event)ev), name, name,
            (unsigned long long)atomic_load(&m.events[ev]));
    }
}

static void render_gauges(buf *b, const duo_metrics_gauges *g) {
    put(b,
        "# HELP duosign_sessions_in_progress Enrolment and signing sessions in progress\n"
        "# TYPE duosign_sessions_in_progress gauge\n"
        "duosign_sessions_in_progress{kind=\"enrol\"} %llu\n"
        "duosign_sessions_in_progress{kind=\"sign\"} %llu\n",
        (unsigned long long)g->sessions_enrol, (unsigned long long)g->sessions_sign);
    put(b,
        "# HELP duosign_pool_ready Paillier keys ready in the background pool\n"
        "# TYPE duosign_pool_ready gauge\nduosign_pool_ready %llu\n"
        "# HELP duosign_pool_target Paillier keys the pool keeps ready (--prime-pool)\n"
        "# TYPE duosign_pool_target gauge\nduosign_pool_target %llu\n",
        (unsigned long long)g->pool_ready, (unsigned long long)g->pool_target);
    put(b,
        "# HELP duosign_store_up 1 if the key store answered this scrape\n"
        "# TYPE duosign_store_up gauge\nduosign_store_up %d\n",
        g->keys_ok ? 1 : 0);
    if (!g->keys_ok) return;
    put(b, "# HELP duosign_keys Keys in the store, by state\n# TYPE duosign_keys gauge\n");
    for (int s = DUO_KEY_STATE_PENDING; s < DUO_METRICS_KEY_STATES; s++)
        put(b, "duosign_keys{state=\"%s\"} %llu\n", duo_key_state_name(s), (unsigned long long)g->keys[s]);
}

char *duo_metrics_render(duo_metrics_gauges_fn fn, void *arg) {
    buf b = {.cap = 16384};
    if (!(b.p = malloc(b.cap))) return NULL;
    b.p[0] = '\0';
    duo_metrics_gauges g;
    memset(&g, 0, sizeof g);
    if (fn) fn(arg, &g);
    put(&b,
        "# HELP duosign_build_info The daemon's version\n# TYPE duosign_build_info gauge\n"
        "duosign_build_info{version=\"%s\"} 1\n",
        DUOSIGN_VERSION);
    render_requests(&b);
    render_events(&b);
    render_gauges(&b, &g);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* -------------------------------------------------------------- HTTP */

struct duo_metrics_http {
    struct MHD_Daemon *d;
    duo_metrics_gauges_fn fn;
    void *arg;
    int port;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_len, void **state) {
    (void)version;
    (void)upload;
    (void)state;
    duo_metrics_http *h = cls;
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    char *body = NULL;
    if (*upload_len) return MHD_NO; /* a scrape has no body */
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") != 0) {
        status = MHD_HTTP_NOT_FOUND;
    } else if (!(body = duo_metrics_render(h->fn, h->arg))) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
    if (body)
        resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    else {
        static const char *const text[] = {"only GET /metrics\n", "not found: try /metrics\n", "out of memory\n"};
        const char *t = status == MHD_HTTP_METHOD_NOT_ALLOWED ? text[0]
                        : status == MHD_HTTP_NOT_FOUND        ? text[1]
                                                              : text[2];
        resp = MHD_create_response_from_buffer(strlen(t), (void *)t, MHD_RESPMEM_PERSISTENT);
    }
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            body ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" into a sockaddr. 0 or -1. */
static int parse_listen(struct sockaddr_storage *ss, const char *listen) {
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) return -1;
    size_t hl = (size_t)(colon - listen);
    if (hl >= sizeof host) return -1;
    memcpy(host, listen, hl);
    host[hl] = '\0';
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535) return -1;
    memset(ss, 0, sizeof *ss);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        return inet_pton(AF_INET6, host + 1, &a->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

/* libmicrohttpd's own error messages: the daemon's log, not raw stderr. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    duo_log_event(DUO_LOG_WARN, "metrics.http", NULL, NULL, "%s", msg);
}

int duo_metrics_listen_ok(const char *listen) {
    struct sockaddr_storage ss;
    return parse_listen(&ss, listen) == 0;
}

int duo_metrics_http_start(duo_metrics_http **out, const char *listen, duo_metrics_gauges_fn fn, void *arg, char *err,
                           size_t cap) {
    *out = NULL;
    struct sockaddr_storage ss;
    if (parse_listen(&ss, listen) != 0) {
        snprintf(err, cap, "--metrics-listen '%s' must be ADDR:PORT with a numeric address, e.g. 127.0.0.1:9464",
                 listen);
        return DUO_E_INVALID_ARG;
    }
    duo_metrics_http *h = calloc(1, sizeof *h);
    if (!h) return DUO_E_NOMEM;
    h->fn = fn;
    h->arg = arg;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, answer, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        snprintf(err, cap, "cannot serve metrics on %s: address in use or not local", listen);
        free(h);
        return DUO_E_UNAVAILABLE;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    *out = h;
    return DUO_OK;
}

int duo_metrics_http_port(const duo_metrics_http *h) { return h ? h->port : 0; }

void duo_metrics_http_stop(duo_metrics_http *h) {
    if (!h) return;
    MHD_stop_daemon(h->d);
    free(h);
}
