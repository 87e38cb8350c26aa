/* duosign integration tests: the daemon process helpers and the small gRPC
 * client (plain C core, protobuf via common/wire) shared by test_daemon_e2e.c
 * and test_daemon_replay.c. Header-only; the including file defines BITS and
 * the globals g_bin (daemon binary) and g_dir (data directory) first. */
#ifndef DUO_IT_DAEMON_CLIENT_H
#define DUO_IT_DAEMON_CLIENT_H

/* ------------------------------------------------------------ processes */

/* run_cmd, the daemon process and the OpenSSL check: tests/integration/common/duo_it.h */
#define run_cmd duo_it_run_cmd
typedef duo_it_daemon daemon_t;

static int daemon_start(daemon_t *d, const char *extra) {
    char args[1024];
    snprintf(args, sizeof args, "--paillier-bits %d --prime-pool 2 --grace 5 %s", BITS, extra ? extra : "");
    return duo_it_daemon_start(d, g_bin, g_dir, 0, args);
}

static int daemon_stop(daemon_t *d) { return duo_it_daemon_stop(d); }

static void issue_token(char *tok, size_t cap, const char *citizen, int ttl) {
    int rc = run_cmd(tok, cap, "'%s' token issue --data '%s' --citizen %s --ttl %d 2>/dev/null", g_bin, g_dir,
                     citizen, ttl);
    if (rc != 0) tok[0] = '\0';
}

/* ---------------------------------------------------------------- gRPC */

typedef struct {
    grpc_channel *ch;
} client;

typedef struct {
    int status;  /* gRPC status */
    int duo_err; /* "duo-error" trailer, 0 if none */
    char detail[512];
    long long locked_until; /* "duo-locked-until" trailer */
    long long attempts_left;
} rpc_result;

static int client_open(client *c, int port) {
    char *ca = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/ca.pem", g_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    ca = calloc(1, 1 << 16);
    size_t n = fread(ca, 1, (1 << 16) - 1, f);
    fclose(f);
    ca[n] = 0;
    grpc_channel_credentials *cr = grpc_ssl_credentials_create_ex(ca, NULL, NULL, NULL);
    free(ca);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_arg args[1];
    memset(args, 0, sizeof args);
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = 2 << 20;
    grpc_channel_args ca_ = {1, args};
    c->ch = grpc_channel_create(target, cr, &ca_);
    grpc_channel_credentials_release(cr);
    return c->ch ? 0 : -1;
}

static void client_close(client *c) {
    if (c->ch) grpc_channel_destroy(c->ch);
    c->ch = NULL;
}

/* One unary call. *resp is malloc'ed on OK. */
static void rpc(client *c, const char *method, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
                rpc_result *res) {
    memset(res, 0, sizeof *res);
    res->attempts_left = -1;
    *resp = NULL;
    *resp_len = 0;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(120, GPR_TIMESPAN));
    grpc_slice m = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL, dl, NULL);
    grpc_slice_unref(m);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)req, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_metadata_array md1, md2;
    grpc_metadata_array_init(&md1);
    grpc_metadata_array_init(&md2);
    grpc_byte_buffer *rb = NULL;
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md1;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &md2;
    ops[5].data.recv_status_on_client.status = &st;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag = 1;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK)
        grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    res->status = (int)st;
    char *d = grpc_slice_to_c_string(details);
    snprintf(res->detail, sizeof res->detail, "%s", d);
    gpr_free(d);
    for (size_t i = 0; i < md2.count; i++) {
        char *k = grpc_slice_to_c_string(md2.metadata[i].key);
        char *v = grpc_slice_to_c_string(md2.metadata[i].value);
        if (strcmp(k, "duo-error") == 0) res->duo_err = atoi(v);
        if (strcmp(k, "duo-locked-until") == 0) res->locked_until = atoll(v);
        if (strcmp(k, "duo-attempts-left") == 0) res->attempts_left = atoll(v);
        gpr_free(k);
        gpr_free(v);
    }
    if (st == GRPC_STATUS_OK && rb) {
        grpc_byte_buffer_reader r;
        grpc_byte_buffer_reader_init(&r, rb);
        grpc_slice all = grpc_byte_buffer_reader_readall(&r);
        grpc_byte_buffer_reader_destroy(&r);
        *resp_len = GRPC_SLICE_LENGTH(all);
        *resp = malloc(*resp_len + 1);
        memcpy(*resp, GRPC_SLICE_START_PTR(all), *resp_len);
        grpc_slice_unref(all);
    }
    if (rb) grpc_byte_buffer_destroy(rb);
    grpc_byte_buffer_destroy(bb);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md1);
    grpc_metadata_array_destroy(&md2);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    if (st != GRPC_STATUS_OK) fprintf(stderr, "#   %s -> status %d duo-error %d: %s\n", method, (int)st, res->duo_err, res->detail);
}

#define M(name) "/duosign.v1.DuoSign/" name

/* Builds M_req, calls, parses M_resp. Returns the gRPC status (0 = OK and parsed). */
#define CALL(cl, name, reqtype, reqp, resptype, respp, res)                                  \
    ({                                                                                       \
        uint8_t *b_ = NULL, *o_ = NULL;                                                      \
        size_t bl_ = 0, ol_ = 0;                                                             \
        int st_ = -1;                                                                        \
        if (duo_wire_build_##reqtype(&b_, &bl_, (reqp)) == DUO_OK) {                         \
            rpc((cl), M(name), b_, bl_, &o_, &ol_, (res));                                   \
            st_ = (res)->status;                                                             \
            if (st_ == 0 && duo_wire_parse_##resptype((respp), o_, ol_) != DUO_OK) st_ = -2; \
        }                                                                                    \
        free(b_);                                                                            \
        free(o_);                                                                            \
        st_;                                                                                 \
    })

/* -------------------------------------------------------- the device */

typedef struct {
    duo_p2_key *key;
    char code[80];
} device;


#endif
