/* duosign: the device transport on the gRPC C core (duosign/device_grpc.h).
 *
 * One channel per transport object; each call: one batch (send metadata,
 * message, close; receive metadata, message, status) on the object's pluck
 * completion queue, and the call's own deadline (docs/grpc-c-core.md
 * section 3). The object is single-threaded (device_grpc.h), so the queue
 * and the registered method paths are made once and reused by every call
 * instead of per call; the queue is replaced after any call that did not
 * end with its own completion, so no stale event can reach a later call.
 * The adapter moves bytes and maps errors; it holds no protocol logic. */
#include "duosign/device_grpc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#define DUO_GRPC_MAX_MSG (1 << 20) /* matches DUO_WIRE_MAX_MSG */
#define DUO_GRPC_MAX_REGISTERED 16 /* the service has 10 methods; others go by name */

struct duo_grpc_transport {
    grpc_channel *channel;
    char *target;
    unsigned timeout_ms;
    int tls;
    grpc_completion_queue *cq; /* pluck queue reused by the calls, or NULL */
    struct {
        char *method;
        void *handle; /* grpc_channel_register_call */
    } reg[DUO_GRPC_MAX_REGISTERED];
    size_t nreg;
};

/* gRPC's logger is process-wide (gpr_set_log_function takes no user
 * pointer), so the app's log function is too: set once, before any
 * transport is created (device_grpc.h). The only mutable statics here. */
static duo_grpc_log_fn g_log_fn;
static void *g_log_user;
static int g_log_min = DUO_GRPC_LOG_ERROR;

static void log_adapter(gpr_log_func_args *a) {
    int sev = a->severity == GPR_LOG_SEVERITY_DEBUG  ? DUO_GRPC_LOG_DEBUG
              : a->severity == GPR_LOG_SEVERITY_INFO ? DUO_GRPC_LOG_INFO
                                                     : DUO_GRPC_LOG_ERROR;
    duo_grpc_log_fn fn = g_log_fn;
    if (fn != NULL && sev >= g_log_min) fn(g_log_user, sev, a->file, a->line, a->message);
}

void duo_grpc_set_log(duo_grpc_log_fn fn, void *user, int min_severity) {
    g_log_fn = fn;
    g_log_user = user;
    g_log_min = min_severity < DUO_GRPC_LOG_DEBUG   ? DUO_GRPC_LOG_DEBUG
                : min_severity > DUO_GRPC_LOG_ERROR ? DUO_GRPC_LOG_ERROR
                                                    : min_severity;
    gpr_set_log_verbosity(g_log_min == DUO_GRPC_LOG_DEBUG  ? GPR_LOG_SEVERITY_DEBUG
                          : g_log_min == DUO_GRPC_LOG_INFO ? GPR_LOG_SEVERITY_INFO
                                                           : GPR_LOG_SEVERITY_ERROR);
    /* With fn NULL every line is dropped (the adapter stays installed: gRPC
     * offers no way back to its default stderr logger). */
    gpr_set_log_function(log_adapter);
}

/* 1 if the PEM text holds at least one certificate block. gRPC would
 * otherwise accept anything here and fail at the first call with a
 * connection error and log lines about its internals. */
static int looks_like_pem_cert(const char *pem, size_t len) {
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    const char *b = NULL, *p;
    size_t i;
    for (i = 0; i + sizeof begin - 1 <= len; i++) {
        if (memcmp(pem + i, begin, sizeof begin - 1) == 0) {
            b = pem + i;
            break;
        }
    }
    if (b == NULL) return 0;
    for (p = b; (size_t)(p - pem) + sizeof end - 1 <= len; p++) {
        if (memcmp(p, end, sizeof end - 1) == 0) return 1;
    }
    return 0;
}

/* 1 if a gRPC status detail (no duosign code: the server was never reached)
 * reports a TLS handshake that failed on the certificate: it did not verify
 * under the pinned CA, or does not name the host. gRPC gives no structured
 * reason, so this reads its text (gRPC 1.5x: "Ssl handshake failed: ...
 * certificate verify failed", "Peer name ... is not in peer certificate").
 * A handshake cut short (the daemon died, a reset) names no certificate and
 * stays DUO_E_UNAVAILABLE. */
static int is_tls_failure(const char *det) {
    static const char *const marks[] = {"certificate verify failed", "CERTIFICATE_VERIFY_FAILED",
                                        "is not in peer certificate"};
    size_t i;
    if (det == NULL) return 0;
    for (i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        if (strstr(det, marks[i]) != NULL) return 1;
    }
    return 0;
}

static void cq_destroy(grpc_completion_queue *cq) {
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
}

/* The registered-call handle of method (registered on first use: gRPC then
 * keeps the path's slice and metadata for the channel's life), or NULL when
 * the table is full or the copy fails (the caller creates the call by name). */
static void *registered_method(duo_grpc_transport *t, const char *method) {
    size_t i;
    for (i = 0; i < t->nreg; i++) {
        if (strcmp(t->reg[i].method, method) == 0) {
            return t->reg[i].handle;
        }
    }
    if (t->nreg == DUO_GRPC_MAX_REGISTERED || (t->reg[t->nreg].method = strdup(method)) == NULL) {
        return NULL;
    }
    t->reg[t->nreg].handle = grpc_channel_register_call(t->channel, t->reg[t->nreg].method, NULL, NULL);
    if (t->reg[t->nreg].handle == NULL) {
        free(t->reg[t->nreg].method);
        t->reg[t->nreg].method = NULL;
        return NULL;
    }
    return t->reg[t->nreg++].handle;
}

int duo_grpc_transport_new(duo_grpc_transport **out, const char *target, const char *ca_pem, size_t ca_pem_len,
                           unsigned timeout_ms) {
    return duo_grpc_transport_new_mtls(out, target, ca_pem, ca_pem_len, NULL, NULL, timeout_ms);
}

int duo_grpc_transport_new_mtls(duo_grpc_transport **out, const char *target, const char *ca_pem, size_t ca_pem_len,
                                const char *client_cert_pem, const char *client_key_pem, unsigned timeout_ms) {
    duo_grpc_transport *t;
    grpc_channel_credentials *cr;
    char *ca = NULL;
    grpc_arg args[3];
    grpc_channel_args ch_args;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if (target == NULL || target[0] == '\0' || (ca_pem == NULL && ca_pem_len != 0) ||
        (ca_pem != NULL && ca_pem_len == 0)) {
        return DUO_E_INVALID_ARG;
    }
    if (ca_pem != NULL && !looks_like_pem_cert(ca_pem, ca_pem_len)) {
        return DUO_E_BAD_CA;
    }
    if ((client_cert_pem == NULL) != (client_key_pem == NULL) || (client_cert_pem != NULL && ca_pem == NULL)) {
        return DUO_E_INVALID_ARG; /* a client certificate needs its key, and TLS */
    }
    if ((t = calloc(1, sizeof *t)) == NULL) {
        return DUO_E_NOMEM;
    }
    if ((t->target = strdup(target)) == NULL) {
        free(t);
        return DUO_E_NOMEM;
    }
    t->timeout_ms = timeout_ms ? timeout_ms : DUO_GRPC_DEFAULT_TIMEOUT_MS;
    grpc_init();
    if (ca_pem != NULL) {
        /* The CA text must be NUL-terminated for gRPC. */
        if ((ca = malloc(ca_pem_len + 1)) == NULL) {
            goto nomem;
        }
        memcpy(ca, ca_pem, ca_pem_len);
        ca[ca_pem_len] = '\0';
        grpc_ssl_pem_key_cert_pair kp = {client_key_pem, client_cert_pem};
        cr = grpc_ssl_credentials_create(ca, client_cert_pem ? &kp : NULL, NULL, NULL);
        free(ca);
        t->tls = 1;
    } else {
        cr = grpc_insecure_credentials_create();
    }
    if (cr == NULL) {
        goto fail;
    }
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = DUO_GRPC_MAX_MSG;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_ENABLE_RETRIES;
    args[1].value.integer = 0; /* the protocol decides retries, not the channel */
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_ENABLE_CHANNELZ;
    args[2].value.integer = 0; /* no per-message channelz accounting: nothing reads it */
    ch_args.num_args = 3;
    ch_args.args = args;
    t->channel = grpc_channel_create(target, cr, &ch_args);
    grpc_channel_credentials_release(cr);
    if (t->channel == NULL) {
        goto fail;
    }
    *out = t;
    return DUO_OK;
nomem:
    free(t->target);
    free(t);
    grpc_shutdown();
    return DUO_E_NOMEM;
fail:
    free(t->target);
    free(t);
    grpc_shutdown();
    return DUO_E_INTERNAL;
}

void duo_grpc_transport_free(duo_grpc_transport *t) {
    size_t i;
    if (t == NULL) {
        return;
    }
    if (t->cq != NULL) {
        cq_destroy(t->cq);
    }
    if (t->channel != NULL) {
        grpc_channel_destroy(t->channel); /* with it the registered calls */
    }
    for (i = 0; i < t->nreg; i++) {
        free(t->reg[i].method);
    }
    free(t->target);
    free(t);
    grpc_shutdown();
}

void duo_grpc_transport_free_resp(void *user, uint8_t *resp, size_t resp_len) {
    (void)user;
    if (resp != NULL) {
        memset(resp, 0, resp_len);
        free(resp);
    }
}

static int status_to_duo(grpc_status_code st) {
    switch (st) {
        case GRPC_STATUS_OK:
            return DUO_OK;
        case GRPC_STATUS_UNAVAILABLE:
            return DUO_E_UNAVAILABLE;
        case GRPC_STATUS_DEADLINE_EXCEEDED:
            return DUO_E_TIMEOUT;
        case GRPC_STATUS_UNAUTHENTICATED:
            return DUO_E_UNAUTHENTICATED;
        case GRPC_STATUS_PERMISSION_DENIED:
            return DUO_E_PERMISSION;
        case GRPC_STATUS_RESOURCE_EXHAUSTED:
            return DUO_E_MSG_TOO_LARGE;
        case GRPC_STATUS_NOT_FOUND:
            return DUO_E_NOT_FOUND;
        case GRPC_STATUS_UNIMPLEMENTED:
            return DUO_E_UNSUPPORTED;
        case GRPC_STATUS_INVALID_ARGUMENT:
            return DUO_E_DECODE;
        default:
            return DUO_E_IO;
    }
}

/* The server's duosign code from the "duo-error" trailing metadata, or 0. */
static int duo_error_from_md(const grpc_metadata_array *md) {
    size_t i;
    for (i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (grpc_slice_str_cmp(m->key, "duo-error") == 0) {
            char buf[16];
            size_t n = GRPC_SLICE_LENGTH(m->value);
            char *end = NULL;
            long v;
            if (n == 0 || n >= sizeof buf) {
                return 0;
            }
            memcpy(buf, GRPC_SLICE_START_PTR(m->value), n);
            buf[n] = '\0';
            errno = 0;
            v = strtol(buf, &end, 10);
            if (errno != 0 || end == buf || *end != '\0' || v >= 0 || v < INT_MIN || !duo_err_is_known((int)v)) {
                return 0;
            }
            return (int)v;
        }
    }
    return 0;
}

static void set_msg(char *errmsg, size_t cap, const char *msg) {
    if (errmsg != NULL && cap > 0) {
        snprintf(errmsg, cap, "%s", msg);
    }
}

/* The server's "duo-retry-after" trailer in seconds, or 0. */
static long retry_after_from_md(const grpc_metadata_array *md) {
    for (size_t i = 0; i < md->count; i++) {
        const grpc_metadata *m = &md->metadata[i];
        if (grpc_slice_str_cmp(m->key, "duo-retry-after") != 0) continue;
        char buf[16];
        size_t n = GRPC_SLICE_LENGTH(m->value);
        if (n == 0 || n >= sizeof buf) return 0;
        memcpy(buf, GRPC_SLICE_START_PTR(m->value), n);
        buf[n] = '\0';
        char *end = NULL;
        errno = 0;
        long v = strtol(buf, &end, 10);
        return errno == 0 && end != buf && *end == '\0' && v > 0 && v <= 3600 ? v : 0;
    }
    return 0;
}

static int call_once(duo_grpc_transport *t, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                     size_t *resp_len, char *errmsg, size_t errmsg_cap, long *retry_after) {
    grpc_call *call = NULL;
    void *handle;
    grpc_op ops[6], *op;
    grpc_metadata_array md_init, md_trail;
    grpc_byte_buffer *send_bb = NULL, *recv_bb = NULL;
    grpc_status_code status = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_slice req_slice, method_slice;
    grpc_call_error ce;
    grpc_event ev;
    gpr_timespec deadline;
    char *det = NULL;
    int r = DUO_E_INTERNAL, tag = 0, completed = 0;

    if (resp != NULL) *resp = NULL;
    if (resp_len != NULL) *resp_len = 0;
    if (errmsg != NULL && errmsg_cap > 0) errmsg[0] = '\0';
    if (t == NULL || method == NULL || (req == NULL && req_len != 0) || resp == NULL || resp_len == NULL) {
        return DUO_E_INVALID_ARG;
    }
    grpc_metadata_array_init(&md_init);
    grpc_metadata_array_init(&md_trail);
    if (t->cq == NULL && (t->cq = grpc_completion_queue_create_for_pluck(NULL)) == NULL) goto out;
    deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis((int64_t)t->timeout_ms, GPR_TIMESPAN));
    if ((handle = registered_method(t, method)) != NULL) {
        call = grpc_channel_create_registered_call(t->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, handle, deadline,
                                                   NULL);
    } else {
        method_slice = grpc_slice_from_copied_string(method);
        call = grpc_channel_create_call(t->channel, NULL, GRPC_PROPAGATE_DEFAULTS, t->cq, method_slice, NULL, deadline,
                                        NULL);
        grpc_slice_unref(method_slice);
    }
    if (call == NULL) goto out;

    req_slice = grpc_slice_from_copied_buffer((const char *)req, req_len);
    send_bb = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_slice_unref(req_slice);
    if (send_bb == NULL) goto out;

    memset(ops, 0, sizeof ops);
    op = ops;
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    op->data.send_initial_metadata.count = 0;
    op++;
    op->op = GRPC_OP_SEND_MESSAGE;
    op->data.send_message.send_message = send_bb;
    op++;
    op->op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    op++;
    op->op = GRPC_OP_RECV_INITIAL_METADATA;
    op->data.recv_initial_metadata.recv_initial_metadata = &md_init;
    op++;
    op->op = GRPC_OP_RECV_MESSAGE;
    op->data.recv_message.recv_message = &recv_bb;
    op++;
    op->op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op->data.recv_status_on_client.trailing_metadata = &md_trail;
    op->data.recv_status_on_client.status = &status;
    op->data.recv_status_on_client.status_details = &details;
    op++;
    ce = grpc_call_start_batch(call, ops, (size_t)(op - ops), &tag, NULL);
    if (ce != GRPC_CALL_OK) {
        completed = 1; /* no batch started: nothing will be queued */
        goto out;
    }
    /* The call's deadline ends the wait. */
    ev = grpc_completion_queue_pluck(t->cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type != GRPC_OP_COMPLETE) goto out;
    completed = 1;

    if (status != GRPC_STATUS_OK) {
        int code = duo_error_from_md(&md_trail);
        *retry_after = retry_after_from_md(&md_trail);
        det = grpc_slice_to_c_string(details);
        if (code == DUO_E_UNAVAILABLE || code == DUO_E_SERVER_BUSY) {
            /* The server answered, so it is reachable: it is refusing work
             * for now (session cap, full queue, empty key pool). */
            r = DUO_E_SERVER_BUSY;
            if (errmsg != NULL && errmsg_cap > 0) {
                snprintf(errmsg, errmsg_cap, "server at %s is busy: %s", t->target,
                         det && det[0] ? det : "retry later");
            }
        } else if (code != 0) {
            r = code;
            set_msg(errmsg, errmsg_cap, det && det[0] ? det : duo_strerror(code));
        } else if (status == GRPC_STATUS_UNAVAILABLE && t->tls && is_tls_failure(det)) {
            r = DUO_E_TLS_UNTRUSTED;
            if (errmsg != NULL && errmsg_cap > 0) {
                snprintf(errmsg, errmsg_cap,
                         "TLS handshake with %s failed: its certificate is not trusted by the pinned CA (%s)",
                         t->target, det);
            }
        } else if (status == GRPC_STATUS_UNAVAILABLE) {
            r = DUO_E_UNAVAILABLE;
            if (errmsg != NULL && errmsg_cap > 0) {
                snprintf(errmsg, errmsg_cap, "server unreachable at %s%s%s", t->target, det && det[0] ? ": " : "",
                         det ? det : "");
            }
        } else if (status == GRPC_STATUS_DEADLINE_EXCEEDED) {
            r = DUO_E_TIMEOUT;
            if (errmsg != NULL && errmsg_cap > 0) {
                snprintf(errmsg, errmsg_cap, "no answer from %s within %u ms", t->target, t->timeout_ms);
            }
        } else {
            r = status_to_duo(status);
            if (errmsg != NULL && errmsg_cap > 0) {
                snprintf(errmsg, errmsg_cap, "%s (gRPC status %d)", det && det[0] ? det : duo_strerror(r), (int)status);
            }
        }
        goto out;
    }
    if (recv_bb == NULL) {
        /* OK with no message: an empty response (e.g. RevokeResponse). */
        r = DUO_OK;
        goto out;
    }
    {
        grpc_byte_buffer_reader rd;
        grpc_slice all;
        size_t n;
        if (!grpc_byte_buffer_reader_init(&rd, recv_bb)) goto out;
        all = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        n = GRPC_SLICE_LENGTH(all);
        if ((*resp = malloc(n ? n : 1)) == NULL) {
            grpc_slice_unref(all);
            r = DUO_E_NOMEM;
            goto out;
        }
        memcpy(*resp, GRPC_SLICE_START_PTR(all), n);
        *resp_len = n;
        grpc_slice_unref(all);
    }
    r = DUO_OK;
out:
    if (r == DUO_E_INTERNAL && errmsg != NULL && errmsg_cap > 0 && errmsg[0] == '\0') {
        snprintf(errmsg, errmsg_cap, "gRPC call to %s failed locally", t->target);
    }
    if (det != NULL) gpr_free(det);
    grpc_slice_unref(details);
    if (send_bb != NULL) grpc_byte_buffer_destroy(send_bb);
    if (recv_bb != NULL) grpc_byte_buffer_destroy(recv_bb);
    grpc_metadata_array_destroy(&md_init);
    grpc_metadata_array_destroy(&md_trail);
    if (call != NULL) grpc_call_unref(call);
    if (!completed && t->cq != NULL) {
        /* The batch may still complete later: drain and replace the queue
         * (as the per-call queue used to be) so that no later call can
         * pluck this call's event (its tag is a stack address). */
        cq_destroy(t->cq);
        t->cq = NULL;
    }
    return r;
}

/* EnrollStart is the one call to repeat on the transport's own: it carries no
 * MAC and no nonce the cloud records, and a repeat replaces the cloud's
 * earlier session on the same token. A cloud whose key pool is empty (or
 * whose enrolment slots are full) answers DUO_E_SERVER_BUSY with the seconds
 * to wait; wait them, up to ENROL_WAIT_MAX_S in all, instead of failing the
 * enrolment. Every other call is returned as it ended. */
#define ENROL_WAIT_MAX_S 180
#define ENROL_WAIT_STEP_MAX_S 30

int duo_grpc_transport_call(void *user, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                            size_t *resp_len, char *errmsg, size_t errmsg_cap) {
    duo_grpc_transport *t = user;
    size_t ml = method != NULL ? strlen(method) : 0;
    int repeatable = ml >= 11 && strcmp(method + ml - 11, "EnrollStart") == 0;
    long waited = 0;
    for (;;) {
        long after = 0;
        int r = call_once(t, method, req, req_len, resp, resp_len, errmsg, errmsg_cap, &after);
        if (!repeatable || r != DUO_E_SERVER_BUSY || after <= 0) return r;
        if (after > ENROL_WAIT_STEP_MAX_S) after = ENROL_WAIT_STEP_MAX_S;
        if (waited + after > ENROL_WAIT_MAX_S) return r;
        sleep((unsigned)after);
        waited += after;
    }
}
