/* duosign cloud: the gRPC C-core server adapter.
 *
 * Moves bytes between gRPC and a table of handlers; holds no protocol logic.
 *
 *   - the method table is a protobuf-c service descriptor: every method is
 *     registered as "/<package.Service>/<Method>" and handed to the one
 *     handler function with its index in the descriptor (the app maps the
 *     index to its own handlers);
 *   - grpc.health.v1.Health/Check is answered inline (SERVING, or NOT_SERVING
 *     while draining; NOT_FOUND for an unknown service name);
 *   - a generic catch-all request per completion queue answers UNIMPLEMENTED
 *     (without it an unknown method hangs until the client's deadline);
 *   - several completion-queue threads poll; handlers run on a separate worker
 *     pool so the CQ threads keep polling and notice cancellation, except
 *     the methods of duo_server_config.inline_methods on an idle server,
 *     which run on the polling thread that received them (a hand-off to a
 *     worker and back costs two thread wake-ups per call);
 *   - the deadline is checked before a handler starts (DEADLINE_EXCEEDED) and
 *     handlers may poll duo_call_info_expired() before heavy steps;
 *   - messages are capped (receive and send);
 *   - TLS from PEM strings by default, plaintext only when asked;
 *   - duo_server_shutdown() drains: stop accepting, let in-flight calls finish
 *     (cancelling them after a grace period), wait for every call context,
 *     destroy the server, shut the CQs down, join every thread.
 *
 * Error mapping: a handler returns DUO_OK (and a response) or a DUO_E_* code.
 * The status is duo_err_grpc_status(code), the details are info->detail when
 * the handler set it (else duo_strerror(code)), and the trailing metadata
 * carries "duo-error: <decimal code>" plus any trailers the handler added.
 *
 * Threading: the handler runs concurrently on worker threads (and, for the
 * inline methods, on a polling thread); the app pointer is shared, so the app
 * synchronises its own state. */
#ifndef DUOSIGN_CLOUD_SERVER_H
#define DUOSIGN_CLOUD_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "duosign/errors.h"

#define DUO_CALL_DETAIL_MAX 512
#define DUO_CALL_MAX_TRAILERS 4
#define DUO_CALL_TRAILER_KEY_MAX 48
#define DUO_CALL_TRAILER_VALUE_MAX 160
#define DUO_CALL_PEER_MAX 128
#define DUO_CALL_ID_MAX 24

/* Default message cap: the protocol's 1 MiB plus room for framing. */
#define DUO_SERVER_MAX_MSG_DEFAULT ((1u << 20) + (64u << 10))

typedef struct duo_server duo_server;

/* Per-call information shared between the server and a handler. */
typedef struct duo_call_info {
    /* In (set by the server): */
    const char *method; /* full path, e.g. "/duosign.v1.DuoSign/SignStart" */
    char peer[DUO_CALL_PEER_MAX];
    /* Out (set by the handler; optional): */
    char detail[DUO_CALL_DETAIL_MAX]; /* human message for the status details */
    size_t n_trailers;
    struct {
        char key[DUO_CALL_TRAILER_KEY_MAX];     /* lowercase, [a-z0-9-_.] */
        char value[DUO_CALL_TRAILER_VALUE_MAX]; /* printable ASCII */
    } trailers[DUO_CALL_MAX_TRAILERS];
    /* The app's notes for its request log (the server does not read them): */
    char request_id[DUO_CALL_ID_MAX];
    /* With duo_server_config.client_ca_pem: the SHA-256 of the verified
     * client certificate's DER (set by the server before the handler). */
    uint8_t peer_cert_sha256[32];
    int has_peer_cert;
    uint8_t key_id[16];
    int has_key_id;
    /* The inner channel's per-key rule (cloud_half/daemon/service.c): plain
     * = a DuoSign request that came outside the channel (refused for a
     * moved key); key_authed = a request MAC of key_id verified, key_moved =
     * that key's flag as read then. */
    int plain;
    int key_authed;
    int key_moved;
    /* Private to the server. */
    void *priv_;
} duo_call_info;

/* The handler: one entry point for every method; method_index is the
 * method's index in the service descriptor. req/req_len is the raw request (protobuf bytes; wiped after the
 * call). On DUO_OK, *resp is a malloc'ed response the server sends, wipes and
 * frees (*resp may be NULL when *resp_len is 0: an empty message). On
 * failure, return the DUO_E_* code; *resp is ignored (and freed if set). */
typedef int (*duo_server_handler_fn)(void *app, int method_index, const uint8_t *req, size_t req_len, uint8_t **resp,
                                     size_t *resp_len, duo_call_info *info);

/* Optional: told of every call the server answered without the handler
 * (deadline already past, queue full, unknown method): method_index as for
 * the handler, -1 for an unknown method (path then names it); duo_err the
 * code the caller got. For the app's request log and metrics. Runs on a
 * server thread; must not block. */
typedef void (*duo_server_refused_fn)(void *app, int method_index, const char *path, int duo_err, const char *peer);

typedef struct duo_server_config {
    const char *listen;                        /* "ADDR:PORT"; port 0 = ephemeral */
    int insecure;                              /* 1: plaintext (no TLS) */
    const char *tls_cert_pem;                  /* server certificate chain (PEM) */
    const char *tls_key_pem;                   /* server private key (PEM) */
    const char *client_ca_pem;                 /* non-NULL: TLS requires a client certificate chaining to these
                                                  roots; the handler sees its SHA-256 (duo_call_info) */
    const ProtobufCServiceDescriptor *service; /* the method table: methods to register */
    duo_server_handler_fn handler;             /* called for every method of service */
    void *app;                                 /* passed to the handler */
    duo_server_refused_fn refused;             /* optional: calls answered without the handler */
    unsigned cq_count;                         /* completion queues (0: 2) */
    unsigned cq_threads;                       /* polling threads per CQ (0: 2) */
    unsigned workers;                          /* handler threads (0: 4) */
    size_t max_message;                        /* 0: DUO_SERVER_MAX_MSG_DEFAULT */
    unsigned max_queue;                        /* queued calls before RESOURCE_EXHAUSTED (0: 1024) */
    uint64_t inline_methods;                   /* bit i: method i runs on the polling thread itself when no
                                                  worker is busy, none is queued and no other call runs
                                                  there (no hand-off to a worker and back); only for short,
                                                  bounded handlers: while one runs, that thread does not
                                                  poll (cancellation is seen after it). 0: all to workers */
} duo_server_config;

/* Creates, binds and starts the server (grpc_init is called here).
 * Returns: DUO_OK; DUO_E_INVALID_ARG (bad config); DUO_E_UNAVAILABLE (cannot
 *          bind the address or bad TLS material); DUO_E_NOMEM; DUO_E_INTERNAL.
 * Out: *out (free with duo_server_free after duo_server_shutdown); err/err_cap
 *      an actionable message on failure (may be NULL). */
DUO_WARN_UNUSED_RESULT int duo_server_start(duo_server **out, char *err, size_t err_cap, const duo_server_config *cfg);

/* The bound port (useful with port 0). */
int duo_server_port(const duo_server *srv);

/* Marks the server as draining (health answers NOT_SERVING). Thread-safe. */
void duo_server_set_draining(duo_server *srv);

/* Graceful drain, blocking: stops accepting, waits up to grace_ms for the
 * calls in flight (then cancels them), waits for every call context, destroys
 * the server, shuts the CQs down and joins all threads. Idempotent. */
void duo_server_shutdown(duo_server *srv, unsigned grace_ms);

/* Frees a shut-down server (calls duo_server_shutdown(srv, 0) if needed) and
 * releases gRPC (grpc_shutdown). NULL is a no-op. */
void duo_server_free(duo_server *srv);

/* Replaces the TLS certificate chain and key (PEM, copied; check them
 * first): new connections' handshakes use them, connections already open
 * keep theirs and are not dropped. Thread-safe.
 * Returns DUO_OK; DUO_E_UNSUPPORTED (a plaintext server); DUO_E_NOMEM;
 * DUO_E_INVALID_ARG. */
DUO_WARN_UNUSED_RESULT int duo_server_reload_tls(duo_server *srv, const char *cert_pem, const char *key_pem);

/* Statistics (for logs and tests). */
typedef struct duo_server_stats {
    uint64_t calls, ok, failed, unimplemented, deadline_exceeded, cancelled;
    uint64_t inlined; /* calls run on a polling thread (duo_server_config.inline_methods) */
} duo_server_stats;
void duo_server_get_stats(const duo_server *srv, duo_server_stats *out);

/* 1 if the call's deadline has passed or the client cancelled it; handlers
 * poll this before heavy work and then return DUO_E_TIMEOUT. */
int duo_call_info_expired(const duo_call_info *info);
/* Milliseconds left before the deadline (INT64_MAX without a deadline, 0 if past). */
int64_t duo_call_info_remaining_ms(const duo_call_info *info);
/* Formats info->detail (printf-style). */
void duo_call_info_set_detail(duo_call_info *info, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Adds a trailing metadata entry. Returns DUO_OK or DUO_E_INVALID_ARG (full,
 * too long, or an illegal key/value). */
DUO_WARN_UNUSED_RESULT int duo_call_info_add_trailer(duo_call_info *info, const char *key, const char *value);

#endif
