/* duosign-cloud: retryable enrolment confirmation, deadlines and
 * cancellation, against the real daemon process (TLS on loopback), driven by
 * a small test device built on the P2 engine (as test_daemon_e2e.c).
 *
 *   - the daemon is killed (SIGKILL) between enrolment round 4 and
 *     EnrollConfirm; a new daemon on the same data directory accepts the
 *     confirmation (device.h: "may be retried, also after a restart");
 *   - a confirmation whose reply was lost is repeated: it succeeds again with
 *     an empty revocation code (shown only the first time), is audited, and
 *     stops being accepted once the key has rotated its first secret; a bad
 *     MAC or another public key is still refused;
 *   - with one handler thread kept busy (its SignStart waits for the
 *     database, which this test holds locked), a queued call's deadline
 *     expires (DEADLINE_EXCEEDED) and the daemon serves on afterwards;
 *   - a SignStart whose deadline expires, or which the client cancels, while
 *     its handler runs leaves no live signing session behind: the next
 *     SignStart for the key succeeds at once instead of SESSION_BUSY.
 *
 * Usage: test_daemon_retry PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <openssl/sha.h>
#include <sqlite3.h>

#include "duo_it.h"
#include "duosign/curve.h"
#include "duosign/mem.h"
#include "duosign/rng.h"
#include "p2.h"
#include "test_harness.h"
#include "wire.h"

#define BITS 2048
#define PIN "4321"

static const char *g_bin;
static char g_dir[256];
static char g_parent[256];
static duo_ec *g_ec;

#define run_cmd duo_it_run_cmd
typedef duo_it_daemon daemon_t;

static int daemon_start(daemon_t *d, const char *extra) {
    char args[1024];
    snprintf(args, sizeof args, "--paillier-bits %d --prime-pool 2 --grace 5 %s", BITS, extra ? extra : "");
    return duo_it_daemon_start(d, g_bin, g_dir, 0, args);
}

static void issue_token(char *tok, size_t cap, const char *citizen, int ttl) {
    int rc = run_cmd(tok, cap, "'%s' token issue --data '%s' --citizen %s --ttl %d 2>/dev/null", g_bin, g_dir,
                     citizen, ttl);
    if (rc != 0) tok[0] = '\0';
}

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
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
static void rpc_dl(client *c, const char *method, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
                   rpc_result *res, int deadline_ms) {
    memset(res, 0, sizeof *res);
    res->attempts_left = -1;
    *resp = NULL;
    *resp_len = 0;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
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

static void rpc(client *c, const char *method, const uint8_t *req, size_t len, uint8_t **resp, size_t *resp_len,
                rpc_result *res) {
    rpc_dl(c, method, req, len, resp, resp_len, res, 120000);
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

/* ------------------------------------------------ asynchronous calls */

typedef struct {
    grpc_completion_queue *cq;
    grpc_call *call;
    grpc_byte_buffer *bb, *rb;
    grpc_metadata_array md1, md2;
    grpc_status_code st;
    grpc_slice details;
    int tag;
} acall;

static int acall_start(acall *a, client *c, const char *method, const uint8_t *req, size_t len, int deadline_ms) {
    memset(a, 0, sizeof *a);
    a->cq = grpc_completion_queue_create_for_pluck(NULL);
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(deadline_ms, GPR_TIMESPAN));
    grpc_slice m = grpc_slice_from_copied_string(method);
    a->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, a->cq, m, NULL, dl, NULL);
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
    return grpc_call_start_batch(a->call, ops, 6, &a->tag, NULL) == GRPC_CALL_OK ? 0 : -1;
}

static void acall_cancel(acall *a) { grpc_call_cancel(a->call, NULL); }

/* Waits for the call; returns its gRPC status. */
static int acall_finish(acall *a, char *detail, size_t cap) {
    grpc_completion_queue_pluck(a->cq, &a->tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    int st = (int)a->st;
    if (detail) {
        char *d = grpc_slice_to_c_string(a->details);
        snprintf(detail, cap, "%s", d);
        gpr_free(d);
    }
    if (a->rb) grpc_byte_buffer_destroy(a->rb);
    grpc_byte_buffer_destroy(a->bb);
    grpc_slice_unref(a->details);
    grpc_metadata_array_destroy(&a->md1);
    grpc_metadata_array_destroy(&a->md2);
    grpc_call_unref(a->call);
    grpc_completion_queue_shutdown(a->cq);
    while (grpc_completion_queue_pluck(a->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(a->cq);
    return st;
}

/* -------------------------------------------------------- the device */

typedef struct {
    duo_p2_key *key;
    char code[80];
    uint8_t *confirm; /* the EnrollConfirm request as sent (for repeats) */
    size_t confirm_len;
} device;

static void device_free(device *dv) {
    duo_p2_key_free(dv->key);
    dv->key = NULL;
    free(dv->confirm);
    dv->confirm = NULL;
}

/* Enrolment rounds 1-4; leaves the confirmation request in dv->confirm. */
static int enrol_rounds(client *c, const char *token, device *dv, rpc_result *res) {
    duo_p2_enroll *en = NULL;
    duo_enroll_start_req m0;
    duo_enroll_start_resp m1;
    duo_enroll_key_share_req m2;
    duo_enroll_key_share_resp m3;
    duo_enroll_pdl_challenge_req m4;
    duo_enroll_pdl_challenge_resp m5;
    duo_enroll_pdl_open_req m6;
    duo_enroll_pdl_open_resp m7;
    duo_enroll_confirm_req m8;
    memset(&m3, 0, sizeof m3);
    memset(&m4, 0, sizeof m4);
    memset(dv, 0, sizeof *dv);
    int st = -1;
    duo_p2_enroll_params ep = {.ec = g_ec, .paillier_bits = BITS, .token = (const uint8_t *)token,
                               .token_len = strlen(token), .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN)};
    if (duo_p2_enroll_new(&en, &ep) != DUO_OK || duo_p2_enroll_start(en, &m0) != DUO_OK) goto out;
    if ((st = CALL(c, "EnrollStart", enroll_start_req, &m0, enroll_start_resp, &m1, res)) != 0) goto out;
    st = -1;
    if (duo_p2_enroll_on_start(en, &m1, &m2) != DUO_OK) goto out;
    if ((st = CALL(c, "EnrollKeyShare", enroll_key_share_req, &m2, enroll_key_share_resp, &m3, res)) != 0) goto out;
    st = -1;
    if (duo_p2_enroll_on_key_share(en, &m3, &m4) != DUO_OK) goto out;
    if ((st = CALL(c, "EnrollPdlChallenge", enroll_pdl_challenge_req, &m4, enroll_pdl_challenge_resp, &m5, res)) != 0)
        goto out;
    st = -1;
    if (duo_p2_enroll_on_pdl_challenge(en, &m5, &m6) != DUO_OK) goto out;
    if ((st = CALL(c, "EnrollPdlOpen", enroll_pdl_open_req, &m6, enroll_pdl_open_resp, &m7, res)) != 0) goto out;
    st = -1;
    if (duo_p2_enroll_on_pdl_open(en, &m7) != DUO_OK || duo_p2_enroll_take_key(en, &dv->key) != DUO_OK ||
        duo_p2_enroll_confirm(en, &m8) != DUO_OK ||
        duo_wire_build_enroll_confirm_req(&dv->confirm, &dv->confirm_len, &m8) != DUO_OK)
        goto out;
    st = 0;
out:
    duo_wire_free_enroll_key_share_resp(&m3);
    duo_wire_free_enroll_pdl_challenge_req(&m4);
    duo_p2_enroll_free(en);
    if (st != 0) device_free(dv);
    return st;
}

/* Sends (or repeats) the confirmation. Returns the gRPC status; code gets the
 * revocation code on success. */
static int confirm(client *c, const uint8_t *req, size_t len, char *code, size_t cap, rpc_result *res) {
    uint8_t *o = NULL;
    size_t ol = 0;
    duo_enroll_confirm_resp m;
    rpc(c, M("EnrollConfirm"), req, len, &o, &ol, res);
    int st = res->status;
    if (st == 0) {
        if (duo_wire_parse_enroll_confirm_resp(&m, o, ol) != DUO_OK) st = -2;
        else snprintf(code, cap, "%s", m.revocation_code);
    }
    free(o);
    return st;
}

static int enrol_new(client *c, device *dv, const char *citizen) {
    char tok[128];
    rpc_result res;
    issue_token(tok, sizeof tok, citizen, 600);
    if (!tok[0] || enrol_rounds(c, tok, dv, &res) != 0) return -1;
    return confirm(c, dv->confirm, dv->confirm_len, dv->code, sizeof dv->code, &res);
}

typedef struct {
    int start_st, finish_st; /* gRPC statuses (-1 local failure) */
    rpc_result res;          /* of the failing (or last) call */
    uint8_t sig[64];
    uint8_t *finish_bytes; /* the round-2 request as sent (for replays); caller frees */
    size_t finish_len;
    int keep_finish;
    int bad_finish_mac; /* flip the SignFinish MAC */
} sign_run;

static int dev_sign(client *c, device *dv, const char *pin, const uint8_t digest[32], sign_run *sr) {
    duo_p2_sign *s = NULL;
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    memset(&m2, 0, sizeof m2);
    sr->start_st = sr->finish_st = -1;
    duo_p2_sign_params sp = {.ec = g_ec, .key = dv->key, .pin = (const uint8_t *)pin, .pin_len = strlen(pin),
                             .digest = digest};
    if (duo_p2_sign_new(&s, &sp) != DUO_OK || duo_p2_sign_start(s, &m0) != DUO_OK) goto out;
    if ((sr->start_st = CALL(c, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, &sr->res)) != 0) goto out;
    if (duo_p2_sign_on_start(s, &m1, &m2) != DUO_OK) goto out;
    if (sr->bad_finish_mac) m2.mac[0] ^= 1;
    {
        uint8_t *b = NULL, *o = NULL;
        size_t bl = 0, ol = 0;
        if (duo_wire_build_sign_finish_req(&b, &bl, &m2) != DUO_OK) goto out;
        rpc(c, M("SignFinish"), b, bl, &o, &ol, &sr->res);
        sr->finish_st = sr->res.status;
        if (sr->keep_finish) {
            sr->finish_bytes = b;
            sr->finish_len = bl;
        } else {
            free(b);
        }
        if (sr->finish_st == 0 && duo_wire_parse_sign_finish_resp(&m3, o, ol) != DUO_OK) sr->finish_st = -2;
        free(o);
    }
    if (sr->finish_st != 0) goto out;
    if (duo_p2_sign_on_finish(s, &m3, sr->sig) != DUO_OK) {
        sr->finish_st = -3;
        goto out;
    }
    /* The device rotates its secret after each signature (DESIGN 3.5). */
    uint8_t next[32];
    if (duo_secret_rotate(next, dv->key->device_secret, duo_p2_sign_sid(s), m3.rotate_seed) != DUO_OK) {
        sr->finish_st = -4;
        goto out;
    }
    memcpy(dv->key->device_secret, next, 32);
out:
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    return sr->start_st == 0 && sr->finish_st == 0 ? 0 : -1;
}

static int dev_status(client *c, device *dv, duo_status_resp *out, rpc_result *res) {
    duo_status_req q;
    uint8_t mi[32];
    memcpy(q.key_id, dv->key->key_id, 16);
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK || duo_wire_mac_input_status(mi, &q) != DUO_OK ||
        duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    return CALL(c, "Status", status_req, &q, status_resp, out, res);
}

static int dev_refresh(client *c, device *dv, rpc_result *res) {
    duo_refresh_req q;
    duo_refresh_resp r;
    uint8_t mi[32], next[32];
    memcpy(q.key_id, dv->key->key_id, 16);
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK || duo_wire_mac_input_refresh(mi, &q) != DUO_OK ||
        duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    int st = CALL(c, "Refresh", refresh_req, &q, refresh_resp, &r, res);
    if (st != 0) return st;
    if (duo_secret_rotate(next, dv->key->device_secret, q.device_nonce, r.rotate_seed) != DUO_OK) return -1;
    memcpy(dv->key->device_secret, next, 32);
    return 0;
}

static int openssl_verify(const device *dv, const uint8_t digest[32], const uint8_t sig[64]) {
    uint8_t pub[33];
    duo_point_serialize(g_ec, pub, &dv->key->q);
    return duo_it_openssl_verify(pub, digest, sig);
}

static void digest_of(uint8_t d[32], const char *text, int i) {
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s #%d", text, i);
    SHA256((const unsigned char *)buf, (size_t)n, d);
}

static void key_hex(char out[33], const device *dv) {
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", dv->key->key_id[i]);
}

/* Number of audit entries of a kind for a key (from `audit list`). */
static int audit_count(const char *kind, const device *dv) {
    char id[33], out[64];
    key_hex(id, dv);
    if (run_cmd(out, sizeof out, "'%s' audit list --data '%s' | grep -F '%s' | grep -F -c '%s'", g_bin, g_dir, kind,
                id) < 0)
        return -1;
    return atoi(out);
}

static daemon_t g_d;
static client g_c;

static int restart_main(int crash) {
    client_close(&g_c);
    if (crash)
        duo_it_daemon_kill(&g_d);
    else if (duo_it_daemon_stop(&g_d) != 0)
        return -1;
    if (daemon_start(&g_d, NULL) != 0) return -1;
    return client_open(&g_c, g_d.port);
}

/* ------------------------------------------------------------ item 1 */

static void test_confirm_after_restart(void) {
    char tok[128], code[80], out[1024], id[33];
    rpc_result res;
    device dv;
    issue_token(tok, sizeof tok, "UA-2001", 600);
    DUO_REQUIRE(tok[0]);
    DUO_REQUIRE(enrol_rounds(&g_c, tok, &dv, &res) == 0);
    /* The daemon crashes between round 4 and the confirmation. */
    DUO_REQUIRE(restart_main(1) == 0);
    key_hex(id, &dv);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' key show --data '%s' %s", g_bin, g_dir, id) == 0);
    DUO_CHECK(strstr(out, "pending") != NULL);
    DUO_CHECK(confirm(&g_c, dv.confirm, dv.confirm_len, code, sizeof code, &res) == 0);
    DUO_CHECK(strlen(code) >= 20);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' key show --data '%s' %s", g_bin, g_dir, id) == 0);
    DUO_CHECK(strstr(out, "active") != NULL);
    DUO_CHECK(audit_count("enrol.done", &dv) == 1);
    /* The key works, and the code revokes it later (below). */
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "after restart", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    /* The token was consumed by the confirmation. */
    device dv2;
    DUO_CHECK(enrol_rounds(&g_c, tok, &dv2, &res) == GRPC_STATUS_UNAUTHENTICATED && res.duo_err == DUO_E_TOKEN_INVALID);
    /* Revocation with the code shown after the restart. */
    {
        duo_revoke_req q;
        memset(&q, 0, sizeof q);
        memcpy(q.key_id, dv.key->key_id, 16);
        DUO_REQUIRE(duo_rng_bytes(NULL, q.device_nonce, 32) == DUO_OK);
        snprintf(q.revocation_code, sizeof q.revocation_code, "%.*s", (int)(sizeof q.revocation_code - 1), code);
        uint8_t *b = NULL, *o = NULL;
        size_t bl = 0, ol = 0;
        DUO_REQUIRE(duo_wire_build_revoke_req(&b, &bl, &q) == DUO_OK);
        rpc(&g_c, M("Revoke"), b, bl, &o, &ol, &res);
        DUO_CHECK(res.status == 0);
        free(b);
        free(o);
    }
    device_free(&dv);
}

static void test_confirm_repeated(void) {
    rpc_result res;
    device dv;
    char code[80];
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2002") == 0);
    DUO_CHECK(strlen(dv.code) >= 20);
    /* The reply was lost: the device sends the same confirmation again. */
    memset(code, 'x', sizeof code);
    code[sizeof code - 1] = '\0';
    DUO_CHECK(confirm(&g_c, dv.confirm, dv.confirm_len, code, sizeof code, &res) == 0);
    DUO_CHECK(code[0] == '\0'); /* the code is shown only the first time */
    DUO_CHECK(confirm(&g_c, dv.confirm, dv.confirm_len, code, sizeof code, &res) == 0 && code[0] == '\0');
    DUO_CHECK(audit_count("enrol.confirm_repeated", &dv) == 2);
    DUO_CHECK(audit_count("enrol.done", &dv) == 1);
    /* Also across a restart. */
    DUO_REQUIRE(restart_main(0) == 0);
    DUO_CHECK(confirm(&g_c, dv.confirm, dv.confirm_len, code, sizeof code, &res) == 0 && code[0] == '\0');
    /* A wrong MAC or another public key is still refused. */
    {
        duo_enroll_confirm_req q;
        uint8_t *b = NULL;
        size_t bl = 0;
        DUO_REQUIRE(duo_wire_parse_enroll_confirm_req(&q, dv.confirm, dv.confirm_len) == DUO_OK);
        q.mac[0] ^= 1;
        DUO_REQUIRE(duo_wire_build_enroll_confirm_req(&b, &bl, &q) == DUO_OK);
        DUO_CHECK(confirm(&g_c, b, bl, code, sizeof code, &res) == GRPC_STATUS_UNAUTHENTICATED &&
                  res.duo_err == DUO_E_UNAUTHENTICATED);
        free(b);
        q.mac[0] ^= 1;
        q.public_key[5] ^= 1;
        DUO_REQUIRE(duo_wire_build_enroll_confirm_req(&b, &bl, &q) == DUO_OK);
        DUO_CHECK(confirm(&g_c, b, bl, code, sizeof code, &res) != 0 && res.duo_err == DUO_E_SESSION_MISMATCH);
        free(b);
        q.public_key[5] ^= 1;
        q.sid[0] ^= 1; /* no such enrolment */
        DUO_REQUIRE(duo_wire_build_enroll_confirm_req(&b, &bl, &q) == DUO_OK);
        DUO_CHECK(confirm(&g_c, b, bl, code, sizeof code, &res) != 0 && res.duo_err == DUO_E_NOT_FOUND);
        free(b);
    }
    /* Once the key has been used (its first secret rotated), a repeat is
     * refused: the device knows the enrolment went through. */
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "repeat", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    DUO_CHECK(confirm(&g_c, dv.confirm, dv.confirm_len, code, sizeof code, &res) == GRPC_STATUS_FAILED_PRECONDITION &&
              res.duo_err == DUO_E_PROTO_STATE);
    duo_status_resp so;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE);
    device_free(&dv);
}

/* ------------------------------------------------------------ item 3 */

/* Holds the database write lock from this process (the daemon's writers wait
 * in SQLite's busy handler, 5 s by default). */
static sqlite3 *db_lock(void) {
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/keys.db", g_dir);
    if (sqlite3_open(path, &db) != SQLITE_OK) return NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static void db_unlock(sqlite3 *db) {
    if (sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK) fprintf(stderr, "# rollback failed\n");
    sqlite3_close(db);
}

/* A SignStart request MACed with the device's current secret. */
static int sign_start_bytes(device *dv, const uint8_t digest[32], uint8_t **b, size_t *bl, duo_p2_sign **s) {
    duo_sign_start_req m0;
    duo_p2_sign_params sp = {.ec = g_ec, .key = dv->key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN),
                             .digest = digest};
    if (duo_p2_sign_new(s, &sp) != DUO_OK || duo_p2_sign_start(*s, &m0) != DUO_OK) return -1;
    return duo_wire_build_sign_start_req(b, bl, &m0) == DUO_OK ? 0 : -1;
}

/* One handler thread. After a Refresh the cloud holds a pending secret, so
 * the device's next request promotes it: a store write, which waits for the
 * lock this test holds; meanwhile the handler thread is busy. */
static void busy_sign_start(client *c2, device *dv, int cancel) {
    rpc_result res;
    DUO_REQUIRE(dev_refresh(c2, dv, &res) == 0);
    uint8_t d[32], *b = NULL, *sb = NULL;
    size_t bl = 0, sbl = 0;
    duo_p2_sign *s = NULL;
    digest_of(d, cancel ? "cancel" : "deadline", 0);
    DUO_REQUIRE(sign_start_bytes(dv, d, &b, &bl, &s) == 0);
    /* A Status call, queued behind it. */
    duo_status_req q;
    uint8_t mi[32];
    memcpy(q.key_id, dv->key->key_id, 16);
    DUO_REQUIRE(duo_rng_bytes(NULL, q.device_nonce, 32) == DUO_OK && duo_wire_mac_input_status(mi, &q) == DUO_OK &&
                duo_mac_compute(q.mac, dv->key->device_secret, mi) == DUO_OK &&
                duo_wire_build_status_req(&sb, &sbl, &q) == DUO_OK);

    sqlite3 *db = db_lock();
    DUO_REQUIRE(db != NULL);
    acall a1, a2;
    char detail[512];
    DUO_REQUIRE(acall_start(&a1, c2, M("SignStart"), b, bl, cancel ? 60000 : 1000) == 0);
    msleep(400); /* the handler is running, waiting for the database */
    if (!cancel) {
        DUO_REQUIRE(acall_start(&a2, c2, M("Status"), sb, sbl, 400) == 0);
        DUO_CHECK(acall_finish(&a2, detail, sizeof detail) == GRPC_STATUS_DEADLINE_EXCEEDED);
        DUO_CHECK(acall_finish(&a1, detail, sizeof detail) == GRPC_STATUS_DEADLINE_EXCEEDED);
    } else {
        acall_cancel(&a1);
        DUO_CHECK(acall_finish(&a1, detail, sizeof detail) == GRPC_STATUS_CANCELLED);
    }
    msleep(cancel ? 1000 : 300); /* the lock is held about 1.7 s in all */
    db_unlock(db);
    msleep(500); /* the handler finishes */
    /* The daemon serves on. */
    duo_status_resp so;
    DUO_CHECK(dev_status(c2, dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE);
    /* No signing session was left behind: signing works at once (not
     * SESSION_BUSY for the next 60 s). */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(c2, dv, PIN, d, &sr) == 0 && openssl_verify(dv, d, sr.sig));
    if (sr.start_st != 0) fprintf(stderr, "#   SignStart after the %s: duo-error %d\n", cancel ? "cancel" : "deadline", sr.res.duo_err);
    duo_p2_sign_free(s);
    free(b);
    free(sb);
}

static void test_deadline_and_cancel(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2003") == 0);
    daemon_t d2;
    DUO_REQUIRE(daemon_start(&d2, "--workers 1 --prime-pool 0") == 0);
    client c2;
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    msleep(1500); /* past the maintenance timer's first run (it writes too) */
    busy_sign_start(&c2, &dv, 0);
    busy_sign_start(&c2, &dv, 1);
    client_close(&c2);
    DUO_CHECK(duo_it_daemon_stop(&d2) == 0);
    device_free(&dv);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    snprintf(g_dir, sizeof g_dir, "/tmp/duo-retry-XXXXXX");
    if (!mkdtemp(g_dir)) return 2;
    snprintf(g_parent, sizeof g_parent, "%s", g_dir);
    strcat(g_dir, "/data");
    char out[1024];
    if (run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir) != 0) {
        fprintf(stderr, "init failed: %s\n", out);
        return 1;
    }
    if (duo_ec_new(&g_ec, NULL) != DUO_OK) return 2;
    grpc_init();
    if (daemon_start(&g_d, NULL) != 0 || client_open(&g_c, g_d.port) != 0) {
        fprintf(stderr, "cannot start the daemon\n");
        return 1;
    }
    DUO_RUN(test_confirm_after_restart);
    DUO_RUN(test_confirm_repeated);
    DUO_RUN(test_deadline_and_cancel);
    client_close(&g_c);
    DUO_CHECK(duo_it_daemon_stop(&g_d) == 0);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' audit verify --data '%s' 2>&1", g_bin, g_dir) == 0);
    fprintf(stderr, "# %s\n", out);
    grpc_shutdown();
    duo_ec_free(g_ec);
    if (!getenv("DUO_E2E_KEEP")) run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
