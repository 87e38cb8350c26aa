/* duosign-cloud: Prometheus metrics (text format 0.0.4) over plain HTTP.
 *
 * Counters live process-wide (atomics: any thread counts without a lock):
 * requests by method and result, latency histograms by method, and the
 * security events of events.h. Gauges (sessions in progress, pool depth,
 * keys by state) are read at scrape time through the gauges callback.
 * `--metrics-listen ADDR:PORT` serves them at /metrics on its own port
 * (libmicrohttpd, one internal thread); without it nothing listens and the
 * counters still count. Names: cloud_half/daemon/README.md "Metrics". */
#ifndef DUOSIGN_CLOUD_METRICS_H
#define DUOSIGN_CLOUD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "duosign/vocab.h"

#define DUO_METRICS_KEY_STATES (DUO_KEY_STATE_REVOKED + 1) /* duo_key_state values */

/* Read at each scrape, on the HTTP thread: the callback must be
 * thread-safe. */
typedef struct duo_metrics_gauges {
    uint64_t sessions_enrol, sessions_sign; /* in progress */
    uint64_t pool_ready, pool_target;
    int keys_ok;                           /* 0: the store could not be read this time */
    uint64_t keys[DUO_METRICS_KEY_STATES]; /* by duo_key_state */
} duo_metrics_gauges;
typedef void (*duo_metrics_gauges_fn)(void *arg, duo_metrics_gauges *out);

/* The method names, by method index (the daemon's method table), used as
 * the method label. Call once before serving; names must outlive the
 * process's metrics. n at most DUO_METRICS_METHODS_MAX. */
#define DUO_METRICS_METHODS_MAX 32
void duo_metrics_set_methods(const char *const *names, size_t n);

/* Counts one request: method index, DUO_OK or DUO_E_*, seconds. */
void duo_metrics_request(int method, int code, double seconds);
/* Counts one security event (duo__event does). */
void duo_metrics_event(duo_ops_event ev);

/* Renders the whole text exposition (malloc'ed, NUL-terminated; NULL when
 * out of memory). */
char *duo_metrics_render(duo_metrics_gauges_fn fn, void *arg);

typedef struct duo_metrics_http duo_metrics_http;
/* 1 if listen is "ADDR:PORT" with a numeric IPv4 or [IPv6] address. */
int duo_metrics_listen_ok(const char *listen);
/* Starts the HTTP endpoint on listen ("ADDR:PORT", IPv4 or [IPv6]; port 0
 * picks one). Returns DUO_OK, DUO_E_INVALID_ARG (malformed address) or
 * DUO_E_UNAVAILABLE (cannot bind), with the reason in err. */
int duo_metrics_http_start(duo_metrics_http **out, const char *listen, duo_metrics_gauges_fn fn, void *arg, char *err,
                           size_t cap);
/* The bound port. */
int duo_metrics_http_port(const duo_metrics_http *h);
/* Stops the endpoint (waits for a scrape in progress). NULL is a no-op. */
void duo_metrics_http_stop(duo_metrics_http *h);

#endif
