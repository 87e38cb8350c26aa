/* A small gRPC client for tests and benchmarks that talk to a real
 * duosign-cloud process (gRPC C core, raw bytes: the caller builds and parses
 * the protobuf). Shared by tests/integration/common/daemon_client.h (the
 * daemon's end-to-end tests) and tests/bench/rpc_cpu.c.
 *
 *   grpc_channel *ch = duo_test_channel_open(ca_pem_path, port, NULL);
 *   duo_test_rpc_result res;
 *   uint8_t *resp; size_t resp_len;
 *   int st = duo_test_unary(ch, NULL, "/duosign.v1.DuoSign/Status", req, req_len, 120000, &res, &resp, &resp_len);
 *
 * The call is asynchronous underneath (duo_test_call_start / _cancel /
 * _finish), so a test can keep a call in flight, cancel it or let its
 * deadline pass. Every call waits for the server to be ready
 * (GRPC_INITIAL_METADATA_WAIT_FOR_READY). grpc_init() is the caller's. Built
 * into the duo_testgrpc library (not duo_testsupport: the unit tests do not
 * link gRPC). */
#ifndef DUO_TEST_GRPC_CLIENT_H
#define DUO_TEST_GRPC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <grpc/grpc.h>

/* What a finished call said. */
typedef struct {
    int status;              /* gRPC status; -1: the batch did not start or complete */
    int duo_err;             /* "duo-error" trailer, 0 if none */
    char detail[512];        /* the status message */
    long long locked_until;  /* "duo-locked-until" trailer, 0 if none */
    long long attempts_left; /* "duo-attempts-left" trailer, -1 if none */
    long long retry_after;   /* "duo-retry-after" trailer (seconds), 0 if none */
} duo_test_rpc_result;

typedef struct {
    /* GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH; 0: gRPC's default. */
    int max_receive;
    /* > 0: a channel argument with this value and a local subchannel pool,
     * so that channels opened with distinct values each get their own
     * connection (gRPC shares a connection between identical channels). */
    int own_connection;
} duo_test_channel_opts;

/* A TLS channel to 127.0.0.1:port that trusts the CA in ca_pem_path (the
 * daemon's development CA). opts NULL: all defaults.
 * Returns the channel (caller destroys with grpc_channel_destroy), NULL if
 * the CA cannot be read or the channel not made. */
grpc_channel *duo_test_channel_open(const char *ca_pem_path, int port, const duo_test_channel_opts *opts);

/* One unary call in flight. Opaque to the caller apart from its lifetime:
 * every started call is finished exactly once. */
typedef struct {
    grpc_completion_queue *cq;
    int own_cq; /* cq was created by _start and is destroyed by _finish */
    grpc_call *call;
    grpc_byte_buffer *bb, *rb;
    grpc_metadata_array md1, md2;
    grpc_status_code st;
    grpc_slice details;
    int tag;
    int started;
} duo_test_call;

/* Starts method (e.g. "/duosign.v1.DuoSign/SignStart") with the request
 * bytes req[0..len) and a deadline of deadline_ms from now. cq: a pluck
 * completion queue the caller owns and reuses (one per thread), or NULL for
 * one of the call's own. Returns 0, -1 if the batch did not start (finish
 * the call all the same). */
int duo_test_call_start(duo_test_call *a, grpc_channel *ch, grpc_completion_queue *cq, const char *method,
                        const uint8_t *req, size_t len, int deadline_ms);

/* Cancels a started call (it then finishes with GRPC_STATUS_CANCELLED). */
void duo_test_call_cancel(duo_test_call *a);

/* Waits for the call and releases it. Returns the gRPC status, -1 if the
 * batch did not start or complete.
 * Out: res (may be NULL: only the status is wanted) the status, message and
 *      trailers; *resp / *resp_len (resp may be NULL: the response is
 *      dropped) the response bytes on GRPC_STATUS_OK, malloc'ed (caller
 *      frees), else NULL / 0. */
int duo_test_call_finish(duo_test_call *a, duo_test_rpc_result *res, uint8_t **resp, size_t *resp_len);

/* duo_test_call_start then duo_test_call_finish: one blocking unary call.
 * Same arguments and return value. */
int duo_test_unary(grpc_channel *ch, grpc_completion_queue *cq, const char *method, const uint8_t *req, size_t len,
                   int deadline_ms, duo_test_rpc_result *res, uint8_t **resp, size_t *resp_len);

#endif
