/* duosign-cloud: the service behind the gRPC adapter.
 *
 * For each duosign.v1.DuoSign RPC a handler (rpc_*.c) parses the request
 * (wire.h), applies the policy (policy.h: MACs, replay and clone detection,
 * PIN lockout), runs the P1 engine, persists through the key store with its
 * audit entry and builds the response. The service is their composition
 * root: configuration, store connections, the method table and dispatch,
 * the libuv timers (session expiry, lock expiry, abandoned enrolments), the
 * background Paillier pool, lifecycle.
 *
 * Locks: the service's own mutex guards only the free list of store
 * connections (a handler holds one connection for its whole call); the
 * rooms it holds have their own (sessions.h, keycache.h, pool.h,
 * overlap.h). The handler runs on any server worker thread; new, stop and
 * free on the loop thread. */
#ifndef DUOSIGN_CLOUD_SERVICE_H
#define DUOSIGN_CLOUD_SERVICE_H

#include <uv.h>

#include "daemon.h"
#include "policy.h" /* duo_lock_policy */
#include "server.h"

typedef struct duo_service duo_service;

/* duo_service_config.curves: every curve this build has. */
#define DUO_CURVES_ALL ((1u << DUO_CURVE_SECP256K1) | (1u << DUO_CURVE_P256))

typedef struct duo_service_config {
    const char *data_dir;
    unsigned paillier_bits;      /* 3072 or 2048 */
    unsigned workers;            /* handler threads (one store connection each, plus one) */
    duo_lock_policy lock;        /* PIN lockout steps */
    unsigned session_ttl_s;      /* enrolment and signing sessions (60) */
    unsigned max_sessions;       /* live sessions at once (0: 10000); finished ones not counted */
    unsigned prime_pool;         /* Paillier keys kept ready (at least 1: keys are made only there) */
    unsigned max_enrol_per_peer; /* live enrolments from one client address (0: 16) */
    unsigned store_busy_ms;      /* how long a store write waits for another process's lock (0: 5000) */
    unsigned curves;             /* curves new keys may use, bit (1 << duo_curve) (0: all); existing keys sign on any */
    unsigned rp_ttl_s;           /* a relying party's request lives this long (0: 120) */
    unsigned rp_result_ttl_s;    /* its result is kept this long, then erased (0: 300) */
    unsigned rp_max_per_rp;      /* open requests of one RP (0: 1000) */
    unsigned rp_max_per_citizen; /* open requests to one citizen (0: 5) */
    int require_channel;         /* 1: plain requests refused (DUO_E_CHANNEL_REQUIRED) but ChannelKey's */
    uv_loop_t *loop;             /* timers, pool refill; the service runs on its thread */
} duo_service_config;

/* Opens the store connections and starts timers and the pool (loop thread).
 * Returns DUO_OK or an error with an actionable message in err. */
int duo_service_new(duo_service **out, char *err, size_t cap, const duo_service_config *cfg);
/* The server's handler: one entry point for every method of
 * duosign__v1__duo_sign__descriptor (its app pointer is the service). */
duo_server_handler_fn duo_service_handler(void);
/* The server's duo_server_config.inline_methods with serve --inline: the
 * signing rounds (SignStart, SignFinish), a few ms of CPU each, which an
 * idle server then runs on its polling thread instead of handing them to a
 * worker. */
uint64_t duo_service_inline_methods(void);
/* The RelyingParty server's handler (app: the service): every method of
 * duosign__v1__relying_party__descriptor, the caller found by its client
 * certificate (docs/RELYING_PARTIES.md). */
duo_server_handler_fn duo_service_rp_handler(void);
/* The RP listener's trust roots (PEM, malloc'ed): the RP CA's certificate.
 * Returns DUO_OK; DUO_E_NO_CA (no RP registered yet); a store error. */
int duo_service_rp_roots(duo_service *svc, char **pem);
/* The server's duo_server_config.refused: a request line and a count for
 * calls answered without the handler. */
duo_server_refused_fn duo_service_refused(void);
/* Loop thread, after the server has drained: stops the timers and the pool
 * and closes the libuv handles (uv_run then returns once pool work ends). */
void duo_service_stop(duo_service *svc);
/* After uv_run returned: frees everything (sessions, pool, store). */
void duo_service_free(duo_service *svc);
/* Gives the metrics the method table's names (before serving). */
void duo_service_metrics_methods(void);
/* The metrics' gauges callback (duo_metrics_gauges_fn; arg: the service).
 * Thread-safe; takes a store connection to count keys by state. */
struct duo_metrics_gauges;
void duo_service_metrics_gauges(void *svc, struct duo_metrics_gauges *g);
/* Ready Paillier keys in the pool (tests, logs). */
size_t duo_service_pool_ready(duo_service *svc);

#endif
