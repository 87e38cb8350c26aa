/* The tests' gRPC client: see grpc_client.h. */
#include "grpc_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define CA_MAX (1 << 16)

grpc_channel *duo_test_channel_open(const char *ca_pem_path, int port, const duo_test_channel_opts *opts) {
    FILE *f = fopen(ca_pem_path, "rb");
    if (!f) return NULL;
    char *ca = calloc(1, CA_MAX);
    if (!ca) {
        fclose(f);
        return NULL;
    }
    size_t n = fread(ca, 1, CA_MAX - 1, f);
    fclose(f);
    ca[n] = 0;
    grpc_channel_credentials *cr = grpc_ssl_credentials_create_ex(ca, NULL, NULL, NULL);
    free(ca);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_arg args[3];
    size_t na = 0;
    memset(args, 0, sizeof args);
    if (opts && opts->max_receive > 0) {
        args[na].type = GRPC_ARG_INTEGER;
        args[na].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
        args[na++].value.integer = opts->max_receive;
    }
    if (opts && opts->own_connection > 0) {
        args[na].type = GRPC_ARG_INTEGER;
        args[na].key = (char *)"duo.test.channel";
        args[na++].value.integer = opts->own_connection;
        args[na].type = GRPC_ARG_INTEGER;
        args[na].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
        args[na++].value.integer = 1;
    }
    grpc_channel_args cargs = {na, args};
    grpc_channel *ch = grpc_channel_create(target, cr, na ? &cargs : NULL);
    grpc_channel_credentials_release(cr);
    return ch;
}

int duo_test_call_start(duo_test_call *a, grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                        const uint8_t *req, size_t len, int deadline_ms) {
    memset(a, 0, sizeof *a);
    a->own_cq = cq == NULL;
    a->cq = cq ? cq : grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
    grpc_slice m = grpc_slice_from_copied_string(method);
    a->call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, a->cq, m, NULL, dl, NULL);
    grpc_slice_unref(m);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)req, len);
    a->bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_metadata_array_init(&a->md1);
    grpc_metadata_array_init(&a->md2);
    a->st = GRPC_STATUS_UNKNOWN;
    a->details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = a->bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &a->md1;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &a->rb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &a->md2;
    ops[5].data.recv_status_on_client.status = &a->st;
    ops[5].data.recv_status_on_client.status_details = &a->details;
    a->tag = 1;
    a->started = a->call && grpc_call_start_batch(a->call, ops, 6, &a->tag, NULL) == GRPC_CALL_OK;
    return a->started ? 0 : -1;
}

void duo_test_call_cancel(duo_test_call *a) {
    if (a->call) grpc_call_cancel(a->call, NULL);
}

/* The status message and the daemon's trailers into res. */
static void read_result(const duo_test_call *a, int status, duo_test_rpc_result *res) {
    memset(res, 0, sizeof *res);
    res->status = status;
    res->attempts_left = -1;
    char *d = grpc_slice_to_c_string(a->details);
    snprintf(res->detail, sizeof res->detail, "%s", d);
    gpr_free(d);
    for (size_t i = 0; i < a->md2.count; i++) {
        char *k = grpc_slice_to_c_string(a->md2.metadata[i].key);
        char *v = grpc_slice_to_c_string(a->md2.metadata[i].value);
        if (strcmp(k, "duo-error") == 0) res->duo_err = atoi(v);
        if (strcmp(k, "duo-locked-until") == 0) res->locked_until = atoll(v);
        if (strcmp(k, "duo-attempts-left") == 0) res->attempts_left = atoll(v);
        if (strcmp(k, "duo-retry-after") == 0) res->retry_after = atoll(v);
        gpr_free(k);
        gpr_free(v);
    }
}

int duo_test_call_finish(duo_test_call *a, duo_test_rpc_result *res, uint8_t **resp, size_t *resp_len) {
    int status = -1;
    if (resp) *resp = NULL;
    if (resp_len) *resp_len = 0;
    if (a->started) {
        grpc_event ev = grpc_completion_queue_pluck(a->cq, &a->tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_OP_COMPLETE) status = (int)a->st;
    }
    if (res) read_result(a, status, res);
    if (status == GRPC_STATUS_OK && a->rb && resp && resp_len) {
        grpc_byte_buffer_reader r;
        if (grpc_byte_buffer_reader_init(&r, a->rb)) {
            grpc_slice all = grpc_byte_buffer_reader_readall(&r);
            grpc_byte_buffer_reader_destroy(&r);
            *resp_len = GRPC_SLICE_LENGTH(all);
            *resp = malloc(*resp_len + 1);
            if (*resp)
                memcpy(*resp, GRPC_SLICE_START_PTR(all), *resp_len);
            else
                *resp_len = 0;
            grpc_slice_unref(all);
        }
    }
    if (a->rb) grpc_byte_buffer_destroy(a->rb);
    grpc_byte_buffer_destroy(a->bb);
    grpc_slice_unref(a->details);
    grpc_metadata_array_destroy(&a->md1);
    grpc_metadata_array_destroy(&a->md2);
    if (a->call) grpc_call_unref(a->call);
    if (a->own_cq) {
        grpc_completion_queue_shutdown(a->cq);
        while (grpc_completion_queue_pluck(a->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(a->cq);
    }
    memset(a, 0, sizeof *a);
    return status;
}

int duo_test_unary(grpc_channel *ch, grpc_completion_queue *cq, const char *method, const uint8_t *req, size_t len,
                   int deadline_ms, duo_test_rpc_result *res, uint8_t **resp, size_t *resp_len) {
    duo_test_call a;
    (void)duo_test_call_start(&a, ch, cq, method, req, len, deadline_ms);
    return duo_test_call_finish(&a, res, resp, resp_len);
}
