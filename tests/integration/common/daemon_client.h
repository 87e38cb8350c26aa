/* duosign integration tests: the daemon process helpers, the gRPC client
 * (tests/support/grpc_client.h, protobuf via common/wire) and a small test
 * device built on the P2 engine, shared by test_daemon_e2e.c,
 * test_daemon_replay.c and test_daemon_retry.c. Header-only (static
 * functions and the tests' globals); include it from one translation unit
 * per test. BITS (the device's Paillier bits) and PIN may be defined
 * before. */
#ifndef DUO_IT_DAEMON_CLIENT_H
#define DUO_IT_DAEMON_CLIENT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <openssl/sha.h>

#include "duo_it.h"
#include "duosign/curve.h"
#include "duosign/rng.h"
#include "grpc_client.h"
#include "p2.h"
#include "test_harness.h"
#include "wire.h"

#define DUO_IT_UNUSED __attribute__((unused))

#ifndef BITS
#define BITS 2048
#endif
#ifndef PIN
#define PIN "4321"
#endif

static const char *g_bin;  /* the duosign-cloud binary */
static char g_dir[256];    /* its data directory */
static char g_parent[256]; /* the temporary directory holding it */
static duo_ec *g_ec;
static int g_enrol_role; /* duo_key_role sent by enrol_rounds (0: none, as before roles) */

/* ------------------------------------------------------------ processes */

/* run_cmd, the daemon process and the OpenSSL check: tests/integration/common/duo_it.h */
#define run_cmd duo_it_run_cmd
typedef duo_it_daemon daemon_t;

static DUO_IT_UNUSED int daemon_start(daemon_t *d, const char *extra) {
    char args[1024];
    snprintf(args, sizeof args, "--paillier-bits %d --prime-pool 2 --grace 5 %s", BITS, extra ? extra : "");
    return duo_it_daemon_start(d, g_bin, g_dir, 0, args);
}

static DUO_IT_UNUSED int daemon_stop(daemon_t *d) { return duo_it_daemon_stop(d); }

static DUO_IT_UNUSED void issue_token(char *tok, size_t cap, const char *citizen, int ttl) {
    int rc =
        run_cmd(tok, cap, "'%s' token issue --data '%s' --citizen %s --ttl %d 2>/dev/null", g_bin, g_dir, citizen, ttl);
    if (rc != 0) tok[0] = '\0';
}

/* ---------------------------------------------------------------- gRPC */

typedef struct {
    grpc_channel *ch;
} client;

/* status, duo_err, detail, locked_until, attempts_left */
typedef duo_test_rpc_result rpc_result;

static DUO_IT_UNUSED int client_open(client *c, int port) {
    char path[512];
    snprintf(path, sizeof path, "%s/ca.pem", g_dir);
    duo_test_channel_opts opts = {.max_receive = 2 << 20};
    c->ch = duo_test_channel_open(path, port, &opts);
    return c->ch ? 0 : -1;
}

static DUO_IT_UNUSED void client_close(client *c) {
    if (c->ch) grpc_channel_destroy(c->ch);
    c->ch = NULL;
}

/* One daemon serves a data directory (serve.lock): to run the same store
 * with other options, stop *d (closing *c) and start d2 with extra... */
static DUO_IT_UNUSED int daemon_swap_out(daemon_t *d, client *c, daemon_t *d2, const char *extra) {
    client_close(c);
    if (daemon_stop(d) != 0) return -1;
    return daemon_start(d2, extra);
}

/* ...and back: stop d2, start *d again and reopen *c. Returns d2's exit
 * status (0: it drained cleanly), -1 if *d did not come back. */
static DUO_IT_UNUSED int daemon_swap_back(daemon_t *d, client *c, daemon_t *d2) {
    int rc = daemon_stop(d2);
    if (daemon_start(d, NULL) != 0 || client_open(c, d->port) != 0) return -1;
    return rc;
}

/* One unary call (120 s deadline). *resp is malloc'ed on OK. A call that
 * does not end OK is logged. */
static DUO_IT_UNUSED void rpc(client *c, const char *method, const uint8_t *req, size_t len, uint8_t **resp,
                              size_t *resp_len, rpc_result *res) {
    int st = duo_test_unary(c->ch, NULL, method, req, len, 120000, res, resp, resp_len);
    if (st != GRPC_STATUS_OK)
        fprintf(stderr, "#   %s -> status %d duo-error %d: %s\n", method, st, res->duo_err, res->detail);
}

#define M(name) "/duosign.v1.DuoSign/" name

/* Sends the request bytes b[0..bl) to method name and parses the response
 * into *respp with parse (duo_wire_parse_*). Returns the gRPC status (0 = OK
 * and parsed, -2 the response does not parse). */
#define CALL_BYTES(cl, name, b, bl, parse, respp, res)                           \
    ({                                                                           \
        uint8_t *cb_o_ = NULL;                                                   \
        size_t cb_ol_ = 0;                                                       \
        rpc((cl), M(name), (b), (bl), &cb_o_, &cb_ol_, (res));                   \
        int cb_st_ = (res)->status;                                              \
        if (cb_st_ == 0 && parse((respp), cb_o_, cb_ol_) != DUO_OK) cb_st_ = -2; \
        free(cb_o_);                                                             \
        cb_st_;                                                                  \
    })

/* Builds M_req, calls, parses M_resp. Returns the gRPC status (0 = OK and
 * parsed, -1 the request does not build, -2 the response does not parse). */
#define CALL(cl, name, reqtype, reqp, resptype, respp, res)                             \
    ({                                                                                  \
        uint8_t *b_ = NULL;                                                             \
        size_t bl_ = 0;                                                                 \
        int st_ = -1;                                                                   \
        if (duo_wire_build_##reqtype(&b_, &bl_, (reqp)) == DUO_OK)                      \
            st_ = CALL_BYTES(cl, name, b_, bl_, duo_wire_parse_##resptype, respp, res); \
        free(b_);                                                                       \
        st_;                                                                            \
    })

/* -------------------------------------------------------- the device */

typedef struct {
    duo_p2_key *key;
    char code[80];    /* the revocation code shown at the confirmation */
    uint8_t *confirm; /* the EnrollConfirm request as sent (for repeats and replays) */
    size_t confirm_len;
} device;

static DUO_IT_UNUSED void device_free(device *dv) {
    duo_p2_key_free(dv->key);
    dv->key = NULL;
    free(dv->confirm);
    dv->confirm = NULL;
}

/* Enrolment rounds 1-4 with token and PIN; leaves the confirmation request,
 * not sent, in dv->confirm. Returns the gRPC status of the failing round, -1
 * on a local failure, 0. */
static DUO_IT_UNUSED int enrol_rounds(client *c, const char *token, device *dv, rpc_result *res) {
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
    duo_p2_enroll_params ep = {.ec = g_ec,
                               .paillier_bits = BITS,
                               .token = (const uint8_t *)token,
                               .token_len = strlen(token),
                               .pin = (const uint8_t *)PIN,
                               .pin_len = strlen(PIN)};
    if (duo_p2_enroll_new(&en, &ep) != DUO_OK || duo_p2_enroll_start(en, &m0) != DUO_OK) goto out;
    m0.role = (duo_key_role)g_enrol_role;
    /* A server whose key pool is empty says when to come back (no key is
     * made on a request thread); follow it, as the CLI does. */
    for (int tries = 0; tries < 600; tries++) {
        st = CALL(c, "EnrollStart", enroll_start_req, &m0, enroll_start_resp, &m1, res);
        if (!(st == GRPC_STATUS_UNAVAILABLE && res->duo_err == DUO_E_SERVER_BUSY && res->retry_after > 0)) break;
        sleep(1);
    }
    if (st != 0) goto out;
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

/* Sends (or repeats) the confirmation req[0..len). Returns the gRPC status;
 * code gets the revocation code on success. */
static DUO_IT_UNUSED int confirm(client *c, const uint8_t *req, size_t len, char *code, size_t cap, rpc_result *res) {
    duo_enroll_confirm_resp m;
    int st = CALL_BYTES(c, "EnrollConfirm", req, len, duo_wire_parse_enroll_confirm_resp, &m, res);
    if (st == 0) snprintf(code, cap, "%s", m.revocation_code);
    return st;
}

/* The whole enrolment: rounds 1-4 and the confirmation (its request kept in
 * dv->confirm, the revocation code in dv->code). Returns the gRPC status of
 * the failing call, -1 on a local failure, 0; on failure dv holds nothing. */
static DUO_IT_UNUSED int enrol(client *c, const char *token, device *dv, rpc_result *res) {
    int st = enrol_rounds(c, token, dv, res);
    if (st != 0) return st;
    st = confirm(c, dv->confirm, dv->confirm_len, dv->code, sizeof dv->code, res);
    if (st != 0) device_free(dv);
    return st;
}

/* A fresh token for citizen, then the whole enrolment. */
static DUO_IT_UNUSED int enrol_new(client *c, device *dv, const char *citizen) {
    char tok[128];
    rpc_result res;
    issue_token(tok, sizeof tok, citizen, 600);
    if (!tok[0]) return -1;
    return enrol(c, tok, dv, &res);
}

/* One signature's options and outcome; zero it, set the options, call
 * dev_sign. */
typedef struct {
    int start_st, finish_st; /* gRPC statuses (-1 local failure) */
    rpc_result res;          /* of the failing (or last) call */
    uint8_t sig[64];
    int keep_start;       /* keep the SignStart request as sent in start_bytes */
    int keep_finish;      /* keep the SignFinish request as sent in finish_bytes */
    uint8_t *start_bytes; /* for replays; caller frees */
    size_t start_len;
    uint8_t *finish_bytes; /* for replays; caller frees */
    size_t finish_len;
    int bad_finish_mac; /* flip the SignFinish MAC */
    int flip_c3;        /* a cheating device: c3 changed after the PIN proof, MAC made anew */
    int purpose;        /* duo_sign_purpose and its extra field (issue 16) */
    const uint8_t *purpose_data;
    size_t purpose_data_len;
} sign_run;

/* Signs digest with pin: SignStart, SignFinish, and on success the device
 * rotates its secret. Returns 0 if both rounds succeeded, -1 otherwise (sr
 * says which and why). */
static DUO_IT_UNUSED int dev_sign(client *c, device *dv, const char *pin, const uint8_t digest[32], sign_run *sr) {
    duo_p2_sign *s = NULL;
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    memset(&m2, 0, sizeof m2);
    sr->start_st = sr->finish_st = -1;
    duo_p2_sign_params sp = {.ec = g_ec,
                             .key = dv->key,
                             .pin = (const uint8_t *)pin,
                             .pin_len = strlen(pin),
                             .digest = digest,
                             .purpose = sr->purpose,
                             .purpose_data = sr->purpose_data,
                             .purpose_data_len = sr->purpose_data_len};
    if (duo_p2_sign_new(&s, &sp) != DUO_OK || duo_p2_sign_start(s, &m0) != DUO_OK) goto out;
    if (sr->keep_start && duo_wire_build_sign_start_req(&sr->start_bytes, &sr->start_len, &m0) != DUO_OK) goto out;
    if ((sr->start_st = CALL(c, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, &sr->res)) != 0) goto out;
    if (duo_p2_sign_on_start(s, &m1, &m2) != DUO_OK) goto out;
    if (sr->flip_c3) {
        uint8_t mi[32];
        ((uint8_t *)m2.c3.ptr)[m2.c3.len - 1] ^= 1; /* points into m2.buf, which dev_sign owns */
        if (duo_wire_mac_input_sign_finish(mi, &m2) != DUO_OK ||
            duo_mac_compute(m2.mac, dv->key->device_secret, mi) != DUO_OK)
            goto out;
    }
    if (sr->bad_finish_mac) m2.mac[0] ^= 1;
    {
        uint8_t *b = NULL;
        size_t bl = 0;
        if (duo_wire_build_sign_finish_req(&b, &bl, &m2) != DUO_OK) goto out;
        sr->finish_st = CALL_BYTES(c, "SignFinish", b, bl, duo_wire_parse_sign_finish_resp, &m3, &sr->res);
        if (sr->keep_finish) {
            sr->finish_bytes = b;
            sr->finish_len = bl;
        } else {
            free(b);
        }
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

/* SignStart alone on dv for digest: a live session at the cloud, the engine
 * state in *s (the caller frees it) and round 2 ready in *m2 (the caller
 * frees it with duo_wire_free_sign_finish_req), not sent. Returns the gRPC
 * status of SignStart, -1 on a local failure, 0. */
static DUO_IT_UNUSED int dev_sign_open(client *c, device *dv, const uint8_t digest[32], duo_p2_sign **s,
                                       duo_sign_finish_req *m2, rpc_result *res) {
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    memset(m2, 0, sizeof *m2);
    *s = NULL;
    duo_p2_sign_params sp = {
        .ec = g_ec, .key = dv->key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = digest};
    if (duo_p2_sign_new(s, &sp) != DUO_OK || duo_p2_sign_start(*s, &m0) != DUO_OK) return -1;
    int st = CALL(c, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, res);
    if (st != 0) return st;
    return duo_p2_sign_on_start(*s, &m1, m2) == DUO_OK ? 0 : -1;
}

/* Builds (does not send) a Status request MAC'd with the device's current
 * secret; nonce NULL: a fresh one. Returns 0 or -1. */
static DUO_IT_UNUSED int build_status(device *dv, const uint8_t *nonce, uint8_t **b, size_t *bl) {
    duo_status_req q;
    uint8_t mi[32];
    memcpy(q.key_id, dv->key->key_id, 16);
    if (nonce)
        memcpy(q.device_nonce, nonce, 32);
    else if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK)
        return -1;
    if (duo_wire_mac_input_status(mi, &q) != DUO_OK || duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    return duo_wire_build_status_req(b, bl, &q) == DUO_OK ? 0 : -1;
}

/* A Status call as the device makes it. Returns the gRPC status (-1 local
 * failure, -2 the response does not parse). */
static DUO_IT_UNUSED int dev_status(client *c, device *dv, duo_status_resp *out, rpc_result *res) {
    uint8_t *b = NULL;
    size_t bl = 0;
    if (build_status(dv, NULL, &b, &bl) != 0) return -1;
    int st = CALL_BYTES(c, "Status", b, bl, duo_wire_parse_status_resp, out, res);
    free(b);
    return st;
}

/* A Refresh as the device sends it; on success the device rotates its
 * secret. keep non-NULL: the request bytes are left in *keep / *keep_len
 * (caller frees). Returns the gRPC status (-1 local failure). */
static DUO_IT_UNUSED int dev_refresh(client *c, device *dv, rpc_result *res, uint8_t **keep, size_t *keep_len) {
    duo_refresh_req q;
    duo_refresh_resp r;
    uint8_t mi[32], next[32], *b = NULL;
    size_t bl = 0;
    memcpy(q.key_id, dv->key->key_id, 16);
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK || duo_wire_mac_input_refresh(mi, &q) != DUO_OK ||
        duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK ||
        duo_wire_build_refresh_req(&b, &bl, &q) != DUO_OK)
        return -1;
    int st = CALL_BYTES(c, "Refresh", b, bl, duo_wire_parse_refresh_resp, &r, res);
    if (keep) {
        *keep = b;
        *keep_len = bl;
    } else {
        free(b);
    }
    if (st != 0) return st;
    if (duo_secret_rotate(next, dv->key->device_secret, q.device_nonce, r.rotate_seed) != DUO_OK) return -1;
    memcpy(dv->key->device_secret, next, 32);
    return 0;
}

/* Builds (does not send) a Revoke request: with the one-time code, or, code
 * NULL, by the device (MAC'd with its current secret). Returns 0 or -1. */
static DUO_IT_UNUSED int build_revoke(device *dv, const char *code, uint8_t **b, size_t *bl) {
    duo_revoke_req q;
    uint8_t mi[32];
    memset(&q, 0, sizeof q);
    memcpy(q.key_id, dv->key->key_id, 16);
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK) return -1;
    if (code) {
        snprintf(q.revocation_code, sizeof q.revocation_code, "%s", code);
    } else {
        q.has_mac = 1;
        if (duo_wire_mac_input_revoke(mi, &q) != DUO_OK || duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
            return -1;
    }
    return duo_wire_build_revoke_req(b, bl, &q) == DUO_OK ? 0 : -1;
}

/* Revokes the key (see build_revoke). Returns the gRPC status (-1 local failure). */
static DUO_IT_UNUSED int dev_revoke(client *c, device *dv, const char *code, rpc_result *res) {
    uint8_t *b = NULL, *o = NULL;
    size_t bl = 0, ol = 0;
    if (build_revoke(dv, code, &b, &bl) != 0) return -1;
    rpc(c, M("Revoke"), b, bl, &o, &ol, res);
    free(b);
    free(o);
    return res->status;
}

/* OpenSSL verification of r||s over digest under the device's public key. */
static DUO_IT_UNUSED int openssl_verify(const device *dv, const uint8_t digest[32], const uint8_t sig[64]) {
    uint8_t pub[33];
    duo_point_serialize(g_ec, pub, &dv->key->q);
    return duo_it_openssl_verify(pub, digest, sig);
}

/* SHA-256 of "text #i". */
static DUO_IT_UNUSED void digest_of(uint8_t d[32], const char *text, int i) {
    char buf[128];
    int n = snprintf(buf, sizeof buf, "%s #%d", text, i);
    SHA256((const unsigned char *)buf, (size_t)n, d);
}

/* The key id in hex, as the admin commands take it. */
static DUO_IT_UNUSED void key_hex(char out[33], const device *dv) {
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", dv->key->key_id[i]);
}

/* ------------------------------------------------------- the test run */

/* main()'s set-up: argv[1] is the daemon binary; a fresh data directory
 * /tmp/NAME-XXXXXX/data made by `duosign-cloud init`, the curve context,
 * gRPC, the daemon d and a client c to it. Returns 0, else the exit code for
 * main (the reason printed). */
static DUO_IT_UNUSED int it_setup(int argc, char **argv, const char *name, daemon_t *d, client *c) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    snprintf(g_dir, sizeof g_dir, "/tmp/%s-XXXXXX", name);
    if (!mkdtemp(g_dir)) return 2;
    snprintf(g_parent, sizeof g_parent, "%s", g_dir);
    strcat(g_dir, "/data");
    char out[1024];
    /* Run through tests/integration/pg/pg_env.sh: the store is that PostgreSQL. */
    const char *pg = getenv("DUO_TEST_PG_URL");
    if (run_cmd(out, sizeof out, "'%s' init --data '%s'%s%s%s 2>&1", g_bin, g_dir, pg ? " --store '" : "", pg ? pg : "",
                pg ? "'" : "") != 0) {
        fprintf(stderr, "init failed: %s\n", out);
        return 1;
    }
    if (duo_ec_new(&g_ec, DUO_CURVE_SECP256K1, NULL) != DUO_OK) return 2;
    grpc_init();
    if (daemon_start(d, NULL) != 0 || client_open(c, d->port) != 0) {
        fprintf(stderr, "cannot start the daemon\n");
        return 1;
    }
    return 0;
}

/* main()'s end: closes c, stops d (it must drain and exit 0), verifies the
 * audit chain, removes the data directory unless $DUO_E2E_KEEP is set.
 * Returns duo_test_finish(). */
static DUO_IT_UNUSED int it_finish(daemon_t *d, client *c) {
    char out[1024];
    client_close(c);
    int rc = daemon_stop(d);
    DUO_CHECK(rc == 0);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' audit verify --data '%s' 2>&1", g_bin, g_dir) == 0);
    fprintf(stderr, "# %s\n", out);
    grpc_shutdown();
    duo_ec_free(g_ec);
    if (!getenv("DUO_E2E_KEEP")) run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}

#endif
