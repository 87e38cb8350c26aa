/* duosign cloud: the gRPC C-core server adapter (see server.h).
 *
 * Follows ../shared/docs/grpc-c-core.md (gRPC 1.51 core): registered methods
 * with READ_INITIAL_BYTE_BUFFER, one generic request per CQ for UNIMPLEMENTED
 * (pitfall P1), an early RECV_CLOSE_ON_SERVER per call so cancellation is seen
 * while a worker computes (P2), a live-call count so CQs are shut down only
 * when no thread can start a batch any more (P3), and batches are started by
 * the thread that finished the work with no access to the context afterwards
 * (P4). */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "duosign/mem.h"
#include "health.pb-c.h"
#include "server_tls.h"

#define HEALTH_PATH "/grpc.health.v1.Health/Check"
#define PREARM_PER_METHOD 4
#define PREARM_GENERIC 2

typedef enum { EV_NEW, EV_GENERIC_NEW, EV_CLOSE, EV_FINISH, EV_SHUTDOWN } ev_kind;

struct call_ctx;
typedef struct {
    ev_kind kind;
    struct call_ctx *ctx;
} tag_t;

typedef struct call_ctx {
    tag_t t_new, t_close, t_finish;
    duo_server *srv;
    unsigned cq_idx;
    int method; /* index in srv->paths; -1 for the generic catch-all */
    int accepted;
    int early_close;
    grpc_call *call;
    gpr_timespec deadline;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    grpc_byte_buffer *resp;
    grpc_slice status_msg;
    int has_status_msg;
    grpc_metadata trailers[DUO_CALL_MAX_TRAILERS + 1];
    size_t n_trailers;
    int cancelled;
    atomic_int refs;
    atomic_int cancel_seen;
    duo_call_info info;
    struct call_ctx *next; /* worker queue */
} call_ctx;

struct duo_server {
    grpc_server *server;
    grpc_completion_queue **cqs;
    unsigned ncq, cq_threads, nworkers, max_queue;
    pthread_t *cq_thr;
    pthread_t *wk_thr;
    size_t n_cq_thr, n_wk_thr;
    int port;

    const ProtobufCServiceDescriptor *service;
    duo_server_handler_fn handler; /* one entry point for every method */
    duo_server_refused_fn refused; /* optional */
    void *app;
    size_t n_paths; /* service methods + health */
    char **paths;
    void **mhandles;
    int health_idx;

    tag_t shutdown_tag;
    atomic_int shutting_down;
    atomic_int draining;
    atomic_int live;
    int shutdown_done;
    int shut; /* duo_server_shutdown ran */
    int grpc_inited;

    pthread_mutex_t mu; /* shutdown_done, live wake-ups, worker queue */
    pthread_cond_t cv;  /* shutdown progress */
    pthread_cond_t wcv; /* worker queue */
    call_ctx *qhead, *qtail;
    unsigned qlen;
    unsigned idle;     /* workers waiting on wcv */
    unsigned inline_n; /* calls running on a polling thread (run_inline) */
    int wquit;
    uint64_t inline_methods; /* duo_server_config.inline_methods */

    duo_server_tls *tls; /* NULL with --insecure */
    int client_auth;     /* 1: client certificates required (duo_call_info.peer_cert_sha256) */

    atomic_uint_fast64_t st_calls, st_ok, st_failed, st_unimpl, st_deadline, st_cancelled, st_inlined;
};

/* ------------------------------------------------------------ helpers */

static void set_err(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...) {
    if (!err || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static int ctx_is_past_deadline(const call_ctx *c) {
    if (c->deadline.tv_sec == INT64_MAX) return 0;
    gpr_timespec now = gpr_now(c->deadline.clock_type);
    return gpr_time_cmp(now, c->deadline) >= 0;
}

int duo_call_info_expired(const duo_call_info *info) {
    const call_ctx *c = info ? info->priv_ : NULL;
    if (!c) return 0;
    return atomic_load(&c->cancel_seen) || ctx_is_past_deadline(c);
}

int64_t duo_call_info_remaining_ms(const duo_call_info *info) {
    const call_ctx *c = info ? info->priv_ : NULL;
    if (!c || c->deadline.tv_sec == INT64_MAX) return INT64_MAX;
    gpr_timespec now = gpr_now(c->deadline.clock_type);
    if (gpr_time_cmp(now, c->deadline) >= 0) return 0;
    return gpr_time_to_millis(gpr_time_sub(c->deadline, now));
}

void duo_call_info_set_detail(duo_call_info *info, const char *fmt, ...) {
    if (!info) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->detail, sizeof info->detail, fmt, ap);
    va_end(ap);
}

static int trailer_key_ok(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n >= DUO_CALL_TRAILER_KEY_MAX || k[0] == ':') return 0;
    if (strncmp(k, "grpc-", 5) == 0) return 0; /* reserved */
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.')) return 0;
    }
    return 1;
}

int duo_call_info_add_trailer(duo_call_info *info, const char *key, const char *value) {
    if (!info || !key || !value || info->n_trailers >= DUO_CALL_MAX_TRAILERS) return DUO_E_INVALID_ARG;
    if (!trailer_key_ok(key) || strlen(value) >= DUO_CALL_TRAILER_VALUE_MAX) return DUO_E_INVALID_ARG;
    for (const char *p = value; *p; p++)
        if (*p < 0x20 || *p > 0x7e) return DUO_E_INVALID_ARG;
    size_t i = info->n_trailers++;
    snprintf(info->trailers[i].key, sizeof info->trailers[i].key, "%s", key);
    snprintf(info->trailers[i].value, sizeof info->trailers[i].value, "%s", value);
    return DUO_OK;
}

/* ------------------------------------------------------- call contexts */

static call_ctx *ctx_new(duo_server *s, unsigned cq_idx, int method) {
    call_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->srv = s;
    c->cq_idx = cq_idx;
    c->method = method;
    c->t_new = (tag_t){method < 0 ? EV_GENERIC_NEW : EV_NEW, c};
    c->t_close = (tag_t){EV_CLOSE, c};
    c->t_finish = (tag_t){EV_FINISH, c};
    grpc_metadata_array_init(&c->md);
    grpc_call_details_init(&c->details);
    c->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    atomic_init(&c->refs, 1);
    atomic_init(&c->cancel_seen, 0);
    c->info.priv_ = c;
    return c;
}

static void ctx_free(call_ctx *c) {
    duo_server *s = c->srv;
    grpc_metadata_array_destroy(&c->md);
    grpc_call_details_destroy(&c->details);
    if (c->req) grpc_byte_buffer_destroy(c->req);
    if (c->resp) grpc_byte_buffer_destroy(c->resp);
    if (c->has_status_msg) grpc_slice_unref(c->status_msg);
    for (size_t i = 0; i < c->n_trailers; i++) {
        grpc_slice_unref(c->trailers[i].key);
        grpc_slice_unref(c->trailers[i].value);
    }
    if (c->call) grpc_call_unref(c->call);
    int accepted = c->accepted;
    free(c);
    if (accepted && atomic_fetch_sub(&s->live, 1) == 1 && atomic_load(&s->shutting_down)) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

static void ctx_unref(call_ctx *c) {
    if (atomic_fetch_sub(&c->refs, 1) == 1) ctx_free(c);
}

static void ctx_accept(call_ctx *c) {
    c->accepted = 1;
    atomic_fetch_add(&c->srv->live, 1);
    atomic_fetch_add(&c->srv->st_calls, 1);
}

static void arm(duo_server *s, unsigned cq_idx, int method) {
    if (atomic_load(&s->shutting_down)) return;
    call_ctx *c = ctx_new(s, cq_idx, method);
    if (!c) return;
    grpc_completion_queue *cq = s->cqs[cq_idx];
    grpc_call_error e;
    if (method < 0)
        e = grpc_server_request_call(s->server, &c->call, &c->details, &c->md, cq, cq, &c->t_new);
    else
        e = grpc_server_request_registered_call(s->server, s->mhandles[method], &c->call, &c->deadline, &c->md, &c->req,
                                                cq, cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        gpr_log(GPR_ERROR, "request call failed: %s", grpc_call_error_to_string(e)); /* to the app's log */
        ctx_free(c);
    }
}

/* ---------------------------------------------------------- replying */

/* Final batch. Takes ownership of resp (may be NULL). duo_err != 0 adds the
 * "duo-error" trailer. The context must not be touched after this returns. */
static void finish(call_ctx *c, grpc_status_code code, const char *detail, grpc_byte_buffer *resp, int duo_err) {
    duo_server *s = c->srv;
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    size_t n = 0;

    if (duo_err != 0 && c->n_trailers < DUO_CALL_MAX_TRAILERS + 1) {
        char v[16];
        snprintf(v, sizeof v, "%d", duo_err);
        c->trailers[c->n_trailers].key = grpc_slice_from_static_string("duo-error");
        c->trailers[c->n_trailers].value = grpc_slice_from_copied_string(v);
        c->n_trailers++;
    }
    for (size_t i = 0; i < c->info.n_trailers && c->n_trailers < DUO_CALL_MAX_TRAILERS + 1; i++) {
        c->trailers[c->n_trailers].key = grpc_slice_from_copied_string(c->info.trailers[i].key);
        c->trailers[c->n_trailers].value = grpc_slice_from_copied_string(c->info.trailers[i].value);
        c->n_trailers++;
    }

    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (resp) {
        c->resp = resp; /* must live until the batch completes */
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->resp;
    }
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.trailing_metadata_count = c->n_trailers;
    ops[n].data.send_status_from_server.trailing_metadata = c->n_trailers ? c->trailers : NULL;
    if (detail && *detail) {
        c->status_msg = grpc_slice_from_copied_string(detail);
        c->has_status_msg = 1;
        ops[n].data.send_status_from_server.status_details = &c->status_msg;
    }
    n++;
    if (!c->early_close) {
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    }

    if (code == GRPC_STATUS_OK)
        atomic_fetch_add(&s->st_ok, 1);
    else if (code == GRPC_STATUS_UNIMPLEMENTED)
        atomic_fetch_add(&s->st_unimpl, 1);
    else if (code == GRPC_STATUS_DEADLINE_EXCEEDED)
        atomic_fetch_add(&s->st_deadline, 1);
    else
        atomic_fetch_add(&s->st_failed, 1);

    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_finish, NULL);
    if (e != GRPC_CALL_OK) {
        gpr_log(GPR_ERROR, "reply failed: %s", grpc_call_error_to_string(e));
        ctx_unref(c);
    }
}

/* A call answered without the handler: the app hears of it first. */
static void tell_refused(call_ctx *c, int duo_err, const char *path) {
    if (c->srv->refused) c->srv->refused(c->srv->app, c->method, path, duo_err, c->info.peer);
}

static void finish_error(call_ctx *c, int duo_err, const char *detail) {
    const char *msg = (detail && *detail) ? detail : duo_strerror(duo_err);
    finish(c, (grpc_status_code)duo_err_grpc_status(duo_err), msg, NULL, duo_err);
}

static grpc_byte_buffer *bb_from_bytes(const uint8_t *p, size_t n) {
    grpc_slice sl = grpc_slice_malloc(n);
    if (n) memcpy(GRPC_SLICE_START_PTR(sl), p, n);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    return bb;
}

/* Destroy callback of a response slice made from a handler's buffer. */
static void wipe_free(void *p, size_t n) {
    duo_memzero(p, n);
    free(p);
}

/* Flattens a received buffer. *out is malloc'ed (NULL when empty). */
static int bb_flatten(uint8_t **out, size_t *out_len, grpc_byte_buffer *bb) {
    *out = NULL;
    *out_len = 0;
    if (!bb) return DUO_OK; /* no message: an empty request */
    size_t len = grpc_byte_buffer_length(bb);
    if (len == 0) return DUO_OK;
    if (len > DUO_SERVER_MAX_MSG_DEFAULT * 16) return DUO_E_MSG_TOO_LARGE;
    uint8_t *buf = malloc(len);
    if (!buf) return DUO_E_NOMEM;
    grpc_byte_buffer_reader r;
    if (!grpc_byte_buffer_reader_init(&r, bb)) {
        free(buf);
        return DUO_E_DECODE;
    }
    size_t off = 0;
    grpc_slice *sp; /* peek: borrowed, no ref */
    while (grpc_byte_buffer_reader_peek(&r, &sp)) {
        size_t l = GRPC_SLICE_LENGTH(*sp);
        if (off + l > len) break;
        memcpy(buf + off, GRPC_SLICE_START_PTR(*sp), l);
        off += l;
    }
    grpc_byte_buffer_reader_destroy(&r);
    *out = buf;
    *out_len = off;
    return DUO_OK;
}

/* --------------------------------------------------------- handlers */

static void handle_health(call_ctx *c) {
    duo_server *s = c->srv;
    uint8_t *req = NULL;
    size_t req_len = 0;
    int r = bb_flatten(&req, &req_len, c->req);
    if (r != DUO_OK) {
        finish_error(c, r, "health: unreadable request");
        return;
    }
    Grpc__Health__V1__HealthCheckRequest *hr =
        grpc__health__v1__health_check_request__unpack(NULL, req_len, req ? req : (const uint8_t *)"");
    free(req);
    if (!hr) {
        finish_error(c, DUO_E_DECODE, "health: request is not a HealthCheckRequest");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    int known = hr->service == NULL || hr->service[0] == '\0' || strcmp(hr->service, s->service->name) == 0;
    grpc__health__v1__health_check_request__free_unpacked(hr, NULL);
    if (!known) {
        finish(c, GRPC_STATUS_NOT_FOUND, "unknown service name", NULL, DUO_E_NOT_FOUND);
        return;
    }
    resp.status = atomic_load(&s->draining) ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                                            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    size_t n = grpc__health__v1__health_check_response__get_packed_size(&resp);
    grpc_slice sl = grpc_slice_malloc(n);
    grpc__health__v1__health_check_response__pack(&resp, GRPC_SLICE_START_PTR(sl));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&sl, 1);
    grpc_slice_unref(sl);
    finish(c, GRPC_STATUS_OK, NULL, bb, 0);
}

/* Runs on a worker thread, or on a polling thread (run_inline). */
static void run_call(call_ctx *c) {
    duo_server *s = c->srv;
    if (duo_call_info_expired(&c->info)) {
        tell_refused(c, DUO_E_TIMEOUT, c->info.method);
        finish_error(c, DUO_E_TIMEOUT,
                     "deadline exceeded before the request was handled; retry with a longer deadline");
        return;
    }
    uint8_t *req = NULL, *resp = NULL;
    size_t req_len = 0, resp_len = 0;
    int r = bb_flatten(&req, &req_len, c->req);
    if (r == DUO_OK) {
        /* The gRPC buffer is no longer needed; drop it early. */
        grpc_byte_buffer_destroy(c->req);
        c->req = NULL;
        r = s->handler(s->app, c->method, req ? req : (const uint8_t *)"", req_len, &resp, &resp_len, &c->info);
    }
    if (req) {
        duo_memzero(req, req_len);
        free(req);
    }
    if (r == DUO_OK) {
        grpc_byte_buffer *bb;
        if (resp && resp_len) {
            /* No copy: gRPC owns resp from here and wipes and frees it when
             * the last reference to the slice goes (after the send). */
            grpc_slice sl = grpc_slice_new_with_len(resp, resp_len, wipe_free);
            bb = grpc_raw_byte_buffer_create(&sl, 1);
            grpc_slice_unref(sl);
        } else {
            free(resp);
            bb = bb_from_bytes(NULL, 0);
        }
        finish(c, GRPC_STATUS_OK, NULL, bb, 0);
    } else {
        if (resp) {
            duo_memzero(resp, resp_len);
            free(resp);
        }
        finish_error(c, r, c->info.detail);
    }
}

static void *worker_main(void *arg) {
    duo_server *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->qhead && !s->wquit) {
            s->idle++;
            pthread_cond_wait(&s->wcv, &s->mu);
            s->idle--;
        }
        call_ctx *c = s->qhead;
        if (!c) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->qhead = c->next;
        if (!s->qhead) s->qtail = NULL;
        s->qlen--;
        pthread_mutex_unlock(&s->mu);
        c->next = NULL;
        run_call(c);
    }
    return NULL;
}

static int enqueue(duo_server *s, call_ctx *c) {
    pthread_mutex_lock(&s->mu);
    if (s->qlen >= s->max_queue || s->wquit) {
        pthread_mutex_unlock(&s->mu);
        return DUO_E_UNAVAILABLE;
    }
    if (s->qtail)
        s->qtail->next = c;
    else
        s->qhead = c;
    s->qtail = c;
    s->qlen++;
    int wake = s->idle > 0;
    pthread_mutex_unlock(&s->mu);
    /* Signalled after the unlock: a worker woken while the mutex is still
     * held would at once block on it again (one more sleep and wake-up per
     * call). No lost wake-up: an idle worker re-checks qhead under mu before
     * it waits, and one that is not idle takes the queue head when it is done. */
    if (wake) pthread_cond_signal(&s->wcv);
    return DUO_OK;
}

/* A short method on an idle server runs here, on the polling thread that
 * received it: handing it to a worker costs a wake-up of the worker and,
 * for the reply, one of this thread, tens of microseconds of CPU each on a
 * VM, per call. "Idle" (every worker waiting, nothing queued, no other call
 * inline, and this thread found its queue empty since it last ran one:
 * `burst`, see cq_main) keeps the concurrency: under load, and for the calls
 * that arrived while one ran here, calls go to the workers as before, so a
 * burst is not served one by one on this thread. Returns 1 if the call ran
 * (and was answered). */
static int run_inline(duo_server *s, call_ctx *c, int burst) {
    if (burst || c->method < 0 || c->method >= 64 || !(s->inline_methods & ((uint64_t)1 << c->method))) return 0;
    pthread_mutex_lock(&s->mu);
    int idle = s->qhead == NULL && s->idle == s->n_wk_thr && s->inline_n == 0 && !s->wquit;
    if (idle) s->inline_n++;
    pthread_mutex_unlock(&s->mu);
    if (!idle) return 0;
    atomic_fetch_add(&s->st_inlined, 1);
    run_call(c);
    pthread_mutex_lock(&s->mu);
    s->inline_n--;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

static void start_early_close(call_ctx *c) {
    atomic_fetch_add(&c->refs, 1);
    c->early_close = 1;
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &c->cancelled;
    if (grpc_call_start_batch(c->call, &op, 1, &c->t_close, NULL) != GRPC_CALL_OK) {
        c->early_close = 0;
        ctx_unref(c);
    }
}

/* The verified client certificate's SHA-256 (over its DER), from the
 * call's auth context (gRPC gives the leaf as PEM). */
static void fill_peer_cert(call_ctx *c) {
    grpc_auth_context *ac = grpc_call_auth_context(c->call);
    if (!ac) return;
    grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ac, GRPC_X509_PEM_CERT_PROPERTY_NAME);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    BIO *b = p && p->value_length > 0 ? BIO_new_mem_buf(p->value, (int)p->value_length) : NULL;
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    unsigned char *der = NULL;
    int n = x ? i2d_X509(x, &der) : -1;
    if (n > 0) {
        SHA256(der, (size_t)n, c->info.peer_cert_sha256);
        c->info.has_peer_cert = 1;
    }
    OPENSSL_free(der);
    X509_free(x);
    BIO_free(b);
    grpc_auth_context_release(ac);
}

static void fill_peer(call_ctx *c) {
    char *peer = grpc_call_get_peer(c->call);
    if (peer) {
        snprintf(c->info.peer, sizeof c->info.peer, "%s", peer);
        gpr_free(peer);
    }
    if (c->srv->client_auth) fill_peer_cert(c);
}

/* *inlined: this thread ran a call inline and has not found its queue empty
 * since (cq_main); set here when it runs one. */
static void dispatch(duo_server *s, grpc_event ev, int *inlined) {
    tag_t *t = ev.tag;
    call_ctx *c = t->ctx;
    switch (t->kind) {
        case EV_SHUTDOWN:
            pthread_mutex_lock(&s->mu);
            s->shutdown_done = 1;
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return;
        case EV_NEW:
            if (!ev.success) { /* server shutting down: the request was never filled */
                ctx_free(c);
                return;
            }
            ctx_accept(c);
            arm(s, c->cq_idx, c->method); /* re-arm first */
            c->info.method = s->paths[c->method];
            fill_peer(c);
            if (c->method == s->health_idx) {
                handle_health(c);
                return;
            }
            if (ctx_is_past_deadline(c)) {
                tell_refused(c, DUO_E_TIMEOUT, c->info.method);
                finish_error(c, DUO_E_TIMEOUT, "deadline exceeded before the request was handled");
                return;
            }
            start_early_close(c);
            if (run_inline(s, c, *inlined)) {
                *inlined = 1;
                return;
            }
            if (enqueue(s, c) != DUO_OK) {
                tell_refused(c, DUO_E_UNAVAILABLE, c->info.method);
                finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "server busy; retry later", NULL, DUO_E_UNAVAILABLE);
            }
            return;
        case EV_GENERIC_NEW: {
            if (!ev.success) {
                ctx_free(c);
                return;
            }
            ctx_accept(c);
            arm(s, c->cq_idx, -1);
            char *m = grpc_slice_to_c_string(c->details.method);
            char msg[256];
            snprintf(msg, sizeof msg, "unknown method %.200s", m ? m : "?");
            fill_peer(c);
            tell_refused(c, DUO_E_UNSUPPORTED, m ? m : "?");
            gpr_free(m);
            finish(c, GRPC_STATUS_UNIMPLEMENTED, msg, NULL, 0);
            return;
        }
        case EV_CLOSE:
            if (c->cancelled) {
                atomic_store(&c->cancel_seen, 1);
                atomic_fetch_add(&s->st_cancelled, 1);
            }
            ctx_unref(c);
            return;
        case EV_FINISH:
            if (!c->early_close && c->cancelled) atomic_fetch_add(&s->st_cancelled, 1);
            ctx_unref(c);
            return;
    }
}

typedef struct {
    duo_server *s;
    grpc_completion_queue *cq;
} cq_arg;

static void *cq_main(void *arg) {
    cq_arg a = *(cq_arg *)arg;
    free(arg);
    int inlined = 0;
    for (;;) {
        /* After a call ran inline, look without waiting first: what is
         * already queued arrived meanwhile (a burst) and goes to the workers;
         * once the queue is found empty this thread is idle again. */
        grpc_event ev = grpc_completion_queue_next(
            a.cq, inlined ? gpr_time_0(GPR_CLOCK_MONOTONIC) : gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
        if (ev.type == GRPC_QUEUE_TIMEOUT) {
            inlined = 0;
            continue;
        }
        dispatch(a.s, ev, &inlined);
    }
    return NULL;
}

/* ---------------------------------------------------------- lifecycle */

static void free_paths(duo_server *s) {
    if (s->paths)
        for (size_t i = 0; i < s->n_paths; i++) free(s->paths[i]);
    free(s->paths);
    free(s->mhandles);
    s->paths = NULL;
    s->mhandles = NULL;
}

static void server_free_mem(duo_server *s) {
    free_paths(s);
    free(s->cqs);
    free(s->cq_thr);
    free(s->wk_thr);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->wcv);
    if (s->grpc_inited) grpc_shutdown();
    duo__server_tls_free(s->tls);
    free(s);
}

int duo_server_start(duo_server **out, char *err, size_t err_cap, const duo_server_config *cfg) {
    if (out) *out = NULL;
    if (!out || !cfg || !cfg->listen || !cfg->service || !cfg->handler) {
        set_err(err, err_cap, "server: incomplete configuration");
        return DUO_E_INVALID_ARG;
    }
    if (!cfg->insecure && (!cfg->tls_cert_pem || !cfg->tls_key_pem)) {
        set_err(err, err_cap, "server: TLS needs a certificate and a key (or pass --insecure)");
        return DUO_E_INVALID_ARG;
    }
    duo_server *s = calloc(1, sizeof *s);
    if (!s) return DUO_E_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->wcv, NULL);
    s->ncq = cfg->cq_count ? cfg->cq_count : 2;
    s->cq_threads = cfg->cq_threads ? cfg->cq_threads : 2;
    s->nworkers = cfg->workers ? cfg->workers : 4;
    s->max_queue = cfg->max_queue ? cfg->max_queue : 1024;
    s->inline_methods = cfg->inline_methods;
    s->service = cfg->service;
    s->handler = cfg->handler;
    s->refused = cfg->refused;
    s->app = cfg->app;
    s->shutdown_tag = (tag_t){EV_SHUTDOWN, NULL};
    size_t maxmsg = cfg->max_message ? cfg->max_message : DUO_SERVER_MAX_MSG_DEFAULT;
    if (maxmsg > INT32_MAX) maxmsg = INT32_MAX;

    grpc_init();
    s->grpc_inited = 1;

    grpc_arg args[4];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = (int)maxmsg;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = (int)maxmsg;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_MAX_CONCURRENT_STREAMS;
    args[2].value.integer = 256;
    /* No SO_REUSEPORT: a second daemon on the same port must fail, not
     * silently share the traffic. */
    args[3].type = GRPC_ARG_INTEGER;
    args[3].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
    args[3].value.integer = 0;
    grpc_channel_args cargs = {4, args};
    s->server = grpc_server_create(&cargs, NULL);

    /* Method paths from the service descriptor, plus the health service. */
    s->n_paths = cfg->service->n_methods + 1;
    s->paths = calloc(s->n_paths, sizeof *s->paths);
    s->mhandles = calloc(s->n_paths, sizeof *s->mhandles);
    if (!s->paths || !s->mhandles) goto nomem;
    for (size_t i = 0; i < cfg->service->n_methods; i++) {
        const char *mn = cfg->service->methods[i].name;
        size_t len = strlen(cfg->service->name) + strlen(mn) + 3;
        s->paths[i] = malloc(len);
        if (!s->paths[i]) goto nomem;
        snprintf(s->paths[i], len, "/%s/%s", cfg->service->name, mn);
    }
    s->health_idx = (int)cfg->service->n_methods;
    s->paths[s->health_idx] = strdup(HEALTH_PATH);
    if (!s->paths[s->health_idx]) goto nomem;
    for (size_t i = 0; i < s->n_paths; i++) {
        s->mhandles[i] =
            grpc_server_register_method(s->server, s->paths[i], NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
        if (!s->mhandles[i]) {
            set_err(err, err_cap, "server: cannot register method %s (duplicate?)", s->paths[i]);
            goto fail_unstarted;
        }
    }

    s->cqs = calloc(s->ncq, sizeof *s->cqs);
    if (!s->cqs) goto nomem;
    for (unsigned i = 0; i < s->ncq; i++) {
        s->cqs[i] = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s->server, s->cqs[i], NULL);
    }

    grpc_server_credentials *creds = NULL;
    if (cfg->insecure) {
        creds = grpc_insecure_server_credentials_create();
    } else if (duo__server_tls_new(&s->tls, cfg->tls_cert_pem, cfg->tls_key_pem) == DUO_OK &&
               (!cfg->client_ca_pem || duo__server_tls_client_ca(s->tls, cfg->client_ca_pem) == DUO_OK)) {
        /* Asked at every handshake, so duo_server_reload_tls() can swap it. */
        s->client_auth = cfg->client_ca_pem != NULL;
        creds = duo__server_tls_credentials(s->tls);
    }
    if (!creds) {
        set_err(err, err_cap, "server: cannot build TLS credentials from the certificate and key");
        goto fail_unstarted_cqs;
    }
    s->port = grpc_server_add_http2_port(s->server, cfg->listen, creds);
    grpc_server_credentials_release(creds);
    if (s->port == 0) {
        set_err(err, err_cap, "cannot listen on %s: address in use, not local, or malformed (expected ADDR:PORT)",
                cfg->listen);
        goto fail_unstarted_cqs;
    }
    grpc_server_start(s->server);

    /* Pre-arm requests on every CQ, then start the pollers and the workers. */
    for (unsigned q = 0; q < s->ncq; q++) {
        for (size_t m = 0; m < s->n_paths; m++)
            for (int k = 0; k < PREARM_PER_METHOD; k++) arm(s, q, (int)m);
        for (int k = 0; k < PREARM_GENERIC; k++) arm(s, q, -1);
    }
    s->cq_thr = calloc((size_t)s->ncq * s->cq_threads, sizeof *s->cq_thr);
    s->wk_thr = calloc(s->nworkers, sizeof *s->wk_thr);
    if (!s->cq_thr || !s->wk_thr) goto fail_started;
    for (unsigned w = 0; w < s->nworkers; w++) {
        if (pthread_create(&s->wk_thr[w], NULL, worker_main, s) != 0) goto fail_started;
        s->n_wk_thr++;
    }
    for (unsigned q = 0; q < s->ncq; q++) {
        for (unsigned t = 0; t < s->cq_threads; t++) {
            cq_arg *a = malloc(sizeof *a);
            if (!a) goto fail_started;
            a->s = s;
            a->cq = s->cqs[q];
            if (pthread_create(&s->cq_thr[s->n_cq_thr], NULL, cq_main, a) != 0) {
                free(a);
                goto fail_started;
            }
            s->n_cq_thr++;
        }
    }
    *out = s;
    return DUO_OK;

fail_started:
    set_err(err, err_cap, "server: cannot start threads");
    /* Needs pollers to drain: start one per CQ if none. */
    if (s->n_cq_thr == 0) {
        /* Without pollers the shutdown tag would never be seen; run the drain
         * synchronously on this thread (nothing runs inline here). */
        int no_inline = 1;
        grpc_server_shutdown_and_notify(s->server, s->cqs[0], &s->shutdown_tag);
        grpc_server_cancel_all_calls(s->server);
        for (;;) {
            grpc_event ev = grpc_completion_queue_next(s->cqs[0], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
            if (ev.type != GRPC_OP_COMPLETE) break;
            dispatch(s, ev, &no_inline);
            if (s->shutdown_done) break;
        }
        s->shut = 1;
        grpc_server_destroy(s->server);
        pthread_mutex_lock(&s->mu);
        s->wquit = 1;
        pthread_cond_broadcast(&s->wcv);
        pthread_mutex_unlock(&s->mu);
        for (size_t i = 0; i < s->n_wk_thr; i++) pthread_join(s->wk_thr[i], NULL);
        for (unsigned i = 0; i < s->ncq; i++) {
            grpc_completion_queue_shutdown(s->cqs[i]);
            for (;;) {
                grpc_event ev = grpc_completion_queue_next(s->cqs[i], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
                if (ev.type == GRPC_OP_COMPLETE) dispatch(s, ev, &no_inline);
            }
            grpc_completion_queue_destroy(s->cqs[i]);
        }
        server_free_mem(s);
        return DUO_E_INTERNAL;
    }
    duo_server_shutdown(s, 0);
    server_free_mem(s);
    return DUO_E_INTERNAL;

nomem:
    set_err(err, err_cap, "server: out of memory");
fail_unstarted_cqs:
fail_unstarted:
    /* Never started: destroy directly, then drain and destroy the CQs. */
    grpc_server_destroy(s->server);
    if (s->cqs) {
        for (unsigned i = 0; i < s->ncq; i++) {
            if (!s->cqs[i]) continue;
            grpc_completion_queue_shutdown(s->cqs[i]);
            for (;;) {
                grpc_event ev = grpc_completion_queue_next(s->cqs[i], gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
                if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
            }
            grpc_completion_queue_destroy(s->cqs[i]);
        }
    }
    {
        int rc = (s->port == 0 && s->cqs) ? DUO_E_UNAVAILABLE : DUO_E_INTERNAL;
        server_free_mem(s);
        return rc;
    }
}

int duo_server_port(const duo_server *srv) { return srv ? srv->port : 0; }

void duo_server_set_draining(duo_server *srv) {
    if (srv) atomic_store(&srv->draining, 1);
}

static void timespec_add_ms(struct timespec *ts, unsigned ms) {
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void duo_server_shutdown(duo_server *s, unsigned grace_ms) {
    if (!s || s->shut) return;
    s->shut = 1;
    atomic_store(&s->draining, 1);
    atomic_store(&s->shutting_down, 1);

    /* 1. Stop accepting; in-flight calls continue. */
    grpc_server_shutdown_and_notify(s->server, s->cqs[0], &s->shutdown_tag);

    /* 2. Wait for the in-flight calls (the notify tag), at most grace_ms;
     *    then cancel what is left. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    timespec_add_ms(&until, grace_ms);
    pthread_mutex_lock(&s->mu);
    while (!s->shutdown_done) {
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) break;
    }
    int done = s->shutdown_done;
    pthread_mutex_unlock(&s->mu);
    if (!done) grpc_server_cancel_all_calls(s->server);

    /* 3. The notify tag, and every accepted call context freed (pitfall P3:
     *    a handler may still hold a call and start its final batch). */
    pthread_mutex_lock(&s->mu);
    while (!s->shutdown_done || atomic_load(&s->live) > 0) pthread_cond_wait(&s->cv, &s->mu);
    s->wquit = 1;
    pthread_cond_broadcast(&s->wcv);
    pthread_mutex_unlock(&s->mu);

    /* 4. Destroy the server, stop the workers, shut down and join the CQs. */
    grpc_server_destroy(s->server);
    s->server = NULL;
    for (size_t i = 0; i < s->n_wk_thr; i++) pthread_join(s->wk_thr[i], NULL);
    s->n_wk_thr = 0;
    for (unsigned i = 0; i < s->ncq; i++) grpc_completion_queue_shutdown(s->cqs[i]);
    for (size_t i = 0; i < s->n_cq_thr; i++) pthread_join(s->cq_thr[i], NULL);
    s->n_cq_thr = 0;
    for (unsigned i = 0; i < s->ncq; i++) grpc_completion_queue_destroy(s->cqs[i]);
}

void duo_server_free(duo_server *srv) {
    if (!srv) return;
    duo_server_shutdown(srv, 0);
    server_free_mem(srv);
}

void duo_server_get_stats(const duo_server *s, duo_server_stats *out) {
    if (!s || !out) return;
    duo_server *m = (duo_server *)s;
    out->calls = atomic_load(&m->st_calls);
    out->ok = atomic_load(&m->st_ok);
    out->failed = atomic_load(&m->st_failed);
    out->unimplemented = atomic_load(&m->st_unimpl);
    out->deadline_exceeded = atomic_load(&m->st_deadline);
    out->cancelled = atomic_load(&m->st_cancelled);
    out->inlined = atomic_load(&m->st_inlined);
}

int duo_server_reload_tls(duo_server *s, const char *cert_pem, const char *key_pem) {
    if (!s || !cert_pem || !key_pem) return DUO_E_INVALID_ARG;
    if (!s->tls) return DUO_E_UNSUPPORTED; /* plaintext: nothing to reload */
    return duo__server_tls_set(s->tls, cert_pem, key_pem);
}
