/* duosign-cloud: the operator's log (log.h). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <grpc/support/log.h>
#include <jansson.h>

#include "daemon.h"
#include "keystore.h"

#define LINE_MAX_BYTES 4096

static struct {
    pthread_mutex_t mu; /* guards fd (a reopen swaps it) and path */
    int fd;             /* 2 (stderr) until duo_log_open */
    char path[DUO_PATH_MAX];
    duo_log_format fmt;
    duo_log_level min;
} g = {PTHREAD_MUTEX_INITIALIZER, 2, "", DUO_LOG_TEXT, DUO_LOG_INFO};

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

/* ---------------------------------------------------------- the sink */

static void emit(const char *line, size_t len) {
    pthread_mutex_lock(&g.mu);
    ssize_t n = write(g.fd, line, len); /* one write per line: O_APPEND keeps lines whole */
    (void)n;                            /* a full disk loses log lines, never requests */
    pthread_mutex_unlock(&g.mu);
}

static void iso_now(char *out, size_t cap) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t s = tv.tv_sec;
    gmtime_r(&s, &tm);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

/* The fields of one line; NULL strings and key_id are left out. */
typedef struct {
    duo_log_level lvl;
    const char *event, *request_id, *method, *result, *peer, *msg;
    const uint8_t *key_id;
    int has_code, code;
    int has_ms;
    double ms;
} fields;

static void write_json(const fields *f, const char *ts, const char *kid) {
    json_t *o = json_object();
    if (!o) return;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[f->lvl]));
    json_object_set_new(o, "event", json_string(f->event));
    if (f->request_id) json_object_set_new(o, "request_id", json_string(f->request_id));
    if (f->method) json_object_set_new(o, "method", json_string(f->method));
    if (kid) json_object_set_new(o, "key_id", json_string(kid));
    if (f->result) json_object_set_new(o, "result", json_string(f->result));
    if (f->has_code) json_object_set_new(o, "code", json_integer(f->code));
    if (f->has_ms) json_object_set_new(o, "duration_ms", json_real(f->ms));
    if (f->peer) json_object_set_new(o, "peer", json_string(f->peer));
    if (f->msg) json_object_set_new(o, "msg", json_string(f->msg));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(o);
    if (!s) return;
    size_t n = strlen(s);
    char line[LINE_MAX_BYTES];
    if (n + 1 < sizeof line) {
        memcpy(line, s, n);
        line[n] = '\n';
        emit(line, n + 1);
    }
    free(s);
}

/* Text: key=value; values with spaces, quotes or '=' are quoted (quotes
 * and backslashes escaped). */
static size_t put_kv(char *buf, size_t at, size_t cap, const char *k, const char *v) {
    if (!v || at >= cap) return at;
    int quote = v[0] == '\0' || strpbrk(v, " \"=") != NULL;
    at += (size_t)snprintf(buf + at, cap - at, " %s=%s", k, quote ? "\"" : "");
    for (const char *p = v; *p && at + 3 < cap; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') buf[at++] = '\\';
        buf[at++] = (char)ch;
    }
    if (quote && at + 1 < cap) buf[at++] = '"';
    buf[at < cap ? at : cap - 1] = '\0';
    return at;
}

static void write_text(const fields *f, const char *ts, const char *kid) {
    char line[LINE_MAX_BYTES], num[48];
    size_t cap = sizeof line - 1, at = (size_t)snprintf(line, cap, "%s %s %s", ts, level_names[f->lvl], f->event);
    at = put_kv(line, at, cap, "id", f->request_id);
    at = put_kv(line, at, cap, "method", f->method);
    at = put_kv(line, at, cap, "key", kid);
    at = put_kv(line, at, cap, "result", f->result);
    if (f->has_code) {
        snprintf(num, sizeof num, "%d", f->code);
        at = put_kv(line, at, cap, "code", num);
    }
    if (f->has_ms) {
        snprintf(num, sizeof num, "%.3f", f->ms);
        at = put_kv(line, at, cap, "ms", num);
    }
    at = put_kv(line, at, cap, "peer", f->peer);
    at = put_kv(line, at, cap, "msg", f->msg);
    if (at > cap) at = cap;
    line[at++] = '\n';
    emit(line, at);
}

/* Messages may quote what a client sent (a citizen id, a peer address):
 * anything but printable ASCII becomes '?', so a line is one line, valid
 * UTF-8 and valid JSON whatever came in. */
static const char *printable(char *out, size_t cap, const char *in) {
    if (!in) return NULL;
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++) out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[i] = '\0';
    return out;
}

static void write_line(const fields *in) {
    if (in->lvl < g.min) return;
    fields c = *in, *f = &c;
    char msg[1024], peer[DUO_CALL_PEER_MAX];
    c.msg = printable(msg, sizeof msg, in->msg);
    c.peer = printable(peer, sizeof peer, in->peer);
    char ts[64], kid[33];
    iso_now(ts, sizeof ts);
    if (f->key_id) duo__hex(kid, f->key_id, 16);
    if (g.fmt == DUO_LOG_JSON)
        write_json(f, ts, f->key_id ? kid : NULL);
    else
        write_text(f, ts, f->key_id ? kid : NULL);
}

/* --------------------------------------------------------- the API */

void duo_log_request_line(const duo_log_request *r) {
    fields f = {.lvl = r->code == DUO_OK ? DUO_LOG_INFO : DUO_LOG_WARN,
                .event = "request",
                .request_id = r->request_id,
                .method = r->method,
                .key_id = r->key_id,
                .result = duo__result_name(r->code),
                .has_code = 1,
                .code = r->code,
                .has_ms = 1,
                .ms = r->duration_ms,
                .peer = r->peer,
                .msg = r->detail && r->detail[0] ? r->detail : NULL};
    if (r->code == DUO_E_INTERNAL || r->code == DUO_E_STORE) f.lvl = DUO_LOG_ERROR;
    write_line(&f);
}

void duo_log_event(duo_log_level lvl, const char *event, const char *request_id, const uint8_t *key_id, const char *fmt,
                   ...) {
    if (lvl < g.min) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fields f = {.lvl = lvl, .event = event, .request_id = request_id, .key_id = key_id, .msg = msg};
    write_line(&f);
}

/* gRPC core's own lines (gpr_log): the same log, never raw on stderr. */
static void grpc_sink(gpr_log_func_args *a) {
    duo_log_level lvl = a->severity == GPR_LOG_SEVERITY_ERROR  ? DUO_LOG_ERROR
                        : a->severity == GPR_LOG_SEVERITY_INFO ? DUO_LOG_INFO
                                                               : DUO_LOG_DEBUG;
    const char *file = a->file ? strrchr(a->file, '/') : NULL;
    duo_log_event(lvl, "grpc", NULL, NULL, "%s:%d %s", file ? file + 1 : (a->file ? a->file : "?"), a->line,
                  a->message ? a->message : "");
}

/* "store error: " kept from the stderr lines operators already grep for. */
static void store_sink(const char *line) {
    duo_log_event(DUO_LOG_ERROR, "store.error", NULL, NULL, "store error: %s", line);
}

int duo_log_format_parse(duo_log_format *out, const char *s) {
    if (strcmp(s, "text") == 0)
        *out = DUO_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = DUO_LOG_JSON;
    else
        return -1;
    return 0;
}

int duo_log_level_parse(duo_log_level *out, const char *s) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (duo_log_level)i;
            return 0;
        }
    return -1;
}

static int open_path(const char *path, char *err, size_t cap) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0) snprintf(err, cap, "cannot open the log file %s: %s", path, strerror(errno));
    return fd;
}

int duo_log_open(const char *path, duo_log_format fmt, duo_log_level min, char *err, size_t cap) {
    int fd = 2;
    if (path && (fd = open_path(path, err, cap)) < 0) return DUO_E_IO;
    pthread_mutex_lock(&g.mu);
    if (g.fd > 2) close(g.fd);
    g.fd = fd;
    snprintf(g.path, sizeof g.path, "%s", path ? path : "");
    g.fmt = fmt;
    g.min = min;
    pthread_mutex_unlock(&g.mu);
    gpr_set_log_function(grpc_sink);
    /* gRPC core: errors only, everything with --log-level debug. */
    gpr_set_log_verbosity(min == DUO_LOG_DEBUG ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
    if (duo_keystore_sqlite_log_to(store_sink) != DUO_OK)
        duo_log_event(DUO_LOG_WARN, "daemon.start", NULL, NULL, "store errors will be logged without SQLite's reason");
    return DUO_OK;
}

int duo_log_reopen(char *err, size_t cap) {
    pthread_mutex_lock(&g.mu);
    int r = DUO_OK;
    if (g.path[0]) {
        int fd = open_path(g.path, err, cap);
        if (fd < 0) {
            r = DUO_E_IO;
        } else {
            if (g.fd > 2) close(g.fd);
            g.fd = fd;
        }
    }
    pthread_mutex_unlock(&g.mu);
    return r;
}

void duo_log_close(void) {
    pthread_mutex_lock(&g.mu);
    if (g.fd > 2) close(g.fd);
    g.fd = 2;
    g.path[0] = '\0';
    pthread_mutex_unlock(&g.mu);
}
