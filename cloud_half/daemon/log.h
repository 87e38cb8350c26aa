/* duosign-cloud: the operator's log (one process-wide logger).
 *
 * One line per request (dispatch in service.c), per security event
 * (events.h) and per daemon event (start, signals, reloads, store errors,
 * gRPC core's own lines). Text ("2026-01-02T03:04:05.678Z INFO request
 * id=... method=SignStart key=... result=OK code=0 ms=12.345 ...") or
 * JSON lines ({"ts":...,"level":...,"event":...}). A line never holds a
 * secret: callers pass only ids, names, codes and human messages (the
 * messages a citizen gets), never request bytes, shares, PIN proofs,
 * device secrets, tokens or revocation codes.
 *
 * Thread-safe: each line is one write() on an O_APPEND descriptor under
 * a mutex. Before duo_log_open() lines go to stderr as text. */
#ifndef DUOSIGN_CLOUD_LOG_H
#define DUOSIGN_CLOUD_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DUO_LOG_DEBUG = 0, DUO_LOG_INFO, DUO_LOG_WARN, DUO_LOG_ERROR } duo_log_level;
typedef enum { DUO_LOG_TEXT = 0, DUO_LOG_JSON } duo_log_format;

/* Directs the log to path (appended, created 0640; NULL: stderr) in fmt,
 * dropping lines below min, and sends gRPC core's and SQLite's lines here.
 * Returns DUO_OK, or DUO_E_IO with the reason in err (path unchanged). */
int duo_log_open(const char *path, duo_log_format fmt, duo_log_level min, char *err, size_t cap);
/* Reopens the file by its path (after a logrotate rename). SIGHUP's
 * handler. Returns DUO_OK; on failure the old descriptor stays and
 * DUO_E_IO is returned with the reason in err. */
int duo_log_reopen(char *err, size_t cap);
/* Flushes nothing (lines are written whole), closes the file. */
void duo_log_close(void);

/* Parses "text"/"json" and "debug"/"info"/"warn"/"error". 0 or -1. */
int duo_log_format_parse(duo_log_format *out, const char *s);
int duo_log_level_parse(duo_log_level *out, const char *s);

/* One request: what dispatch knows when the handler returns. key_id NULL
 * when the request named none (or never reached it). */
typedef struct duo_log_request {
    const char *request_id;
    const char *method;
    const uint8_t *key_id; /* 16 bytes or NULL */
    int code;              /* DUO_OK or DUO_E_* */
    double duration_ms;
    const char *peer;
    const char *detail; /* the message the caller got ("" on success) */
} duo_log_request;
void duo_log_request_line(const duo_log_request *r);

/* A line for an event: lvl, a dotted event name ("pin.wrong",
 * "daemon.reload", ...), the request it belongs to and the key (either
 * may be NULL), and a printf message. */
void duo_log_event(duo_log_level lvl, const char *event, const char *request_id, const uint8_t *key_id, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

#endif
