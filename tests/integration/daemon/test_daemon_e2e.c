/* End-to-end: the real duosign-cloud daemon on a loopback port with TLS,
 * driven through gRPC (C core client) by a small test device built on the P2
 * engine. Checks (issue 4): enrol; sign many times, every signature verified
 * by OpenSSL; wrong PIN x3 -> locked with the unlock time; a correct PIN
 * resets the count; a copy of an old device state -> clone detected, key
 * frozen; no/bad MAC -> rejected without touching the PIN count; a replayed
 * round 2 -> rejected, no second signature; expired session and token ->
 * clear errors; revocation by the device, by the code and by an admin;
 * refresh; graceful SIGTERM (exit 0).
 *
 * Usage: test_daemon_e2e PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_client.h"

#define BADPIN "0000"

/* ---------------------------------------------------------------- tests */

static daemon_t g_d;
static client g_c;

static void test_enrol_and_sign_many(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1001") == 0);
    DUO_CHECK(strlen(dv.code) >= 20);
    int n = getenv("DUO_E2E_SIGNS") ? atoi(getenv("DUO_E2E_SIGNS")) : 25, good = 0;
    for (int i = 0; i < n; i++) {
        uint8_t d[32];
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        digest_of(d, "document", i);
        if (dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig)) good++;
    }
    DUO_CHECK(good == n);
    fprintf(stderr, "# %d/%d signatures verified by OpenSSL\n", good, n);
    duo_status_resp so;
    rpc_result res;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0);
    DUO_CHECK(so.state == DUO_KEY_STATE_ACTIVE && so.pin_attempts_left == 3);
    /* The token is single use. */
    device dv2;
    char tok[128];
    issue_token(tok, sizeof tok, "UA-1001b", 600);
    DUO_REQUIRE(tok[0]);
    DUO_REQUIRE(enrol(&g_c, tok, &dv2, &res) == 0);
    device_free(&dv2);
    DUO_CHECK(enrol(&g_c, tok, &dv2, &res) == GRPC_STATUS_UNAUTHENTICATED && res.duo_err == DUO_E_TOKEN_INVALID);
    device_free(&dv);
}

static void test_pin_lockout(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1002") == 0);
    uint8_t d[32];
    digest_of(d, "pin", 0);
    sign_run sr;
    /* Two wrong, then a correct PIN resets the count. */
    for (int i = 0; i < 2; i++) {
        memset(&sr, 0, sizeof sr);
        DUO_CHECK(dev_sign(&g_c, &dv, BADPIN, d, &sr) != 0);
        DUO_CHECK(sr.finish_st == GRPC_STATUS_PERMISSION_DENIED && sr.res.duo_err == DUO_E_WRONG_PIN);
        DUO_CHECK(sr.res.attempts_left == 2 - i);
        DUO_CHECK(strstr(sr.res.detail, "left") != NULL);
    }
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    duo_status_resp so;
    rpc_result res;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.pin_attempts_left == 3);
    /* Three wrong in a row: locked, with the unlock time. */
    long long t0 = (long long)time(NULL);
    for (int i = 0; i < 3; i++) {
        memset(&sr, 0, sizeof sr);
        DUO_CHECK(dev_sign(&g_c, &dv, BADPIN, d, &sr) != 0);
        DUO_CHECK(sr.res.duo_err == DUO_E_WRONG_PIN);
    }
    DUO_CHECK(strstr(sr.res.detail, "locked until") != NULL);
    DUO_CHECK(sr.res.locked_until >= t0 + 3 * 3600 - 5 && sr.res.locked_until <= t0 + 3 * 3600 + 60);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0);
    DUO_CHECK(sr.start_st == GRPC_STATUS_FAILED_PRECONDITION && sr.res.duo_err == DUO_E_KEY_LOCKED);
    DUO_CHECK(strstr(sr.res.detail, "locked until") != NULL && sr.res.locked_until > t0);
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_LOCKED && so.locked_until > t0);
    /* An admin unlock clears it. */
    char id[33], out[512];
    key_hex(id, &dv);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' key unlock --data '%s' %s 2>&1", g_bin, g_dir, id) == 0);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    device_free(&dv);
}

static void test_mac_rejected_no_pin_count(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1003") == 0);
    uint8_t d[32], saved[32];
    digest_of(d, "mac", 0);
    sign_run sr;
    /* Bad MAC on round 1: a stranger's request. */
    memcpy(saved, dv.key->device_secret, 32);
    dv.key->device_secret[5] ^= 0x40;
    for (int i = 0; i < 4; i++) {
        memset(&sr, 0, sizeof sr);
        DUO_CHECK(dev_sign(&g_c, &dv, BADPIN, d, &sr) != 0);
        DUO_CHECK(sr.start_st == GRPC_STATUS_UNAUTHENTICATED && sr.res.duo_err == DUO_E_UNAUTHENTICATED);
    }
    memcpy(dv.key->device_secret, saved, 32);
    /* Bad MAC on round 2 (with a wrong PIN inside): rejected before the PIN check. */
    memset(&sr, 0, sizeof sr);
    sr.bad_finish_mac = 1;
    DUO_CHECK(dev_sign(&g_c, &dv, BADPIN, d, &sr) != 0);
    DUO_CHECK(sr.start_st == 0 && sr.finish_st == GRPC_STATUS_UNAUTHENTICATED &&
              sr.res.duo_err == DUO_E_UNAUTHENTICATED);
    /* Missing MAC: a raw SignStart without the field. */
    {
        uint8_t raw[200];
        size_t n = 0;
        raw[n++] = 0x0a, raw[n++] = 16;
        memcpy(raw + n, dv.key->key_id, 16), n += 16;
        raw[n++] = 0x12, raw[n++] = 32, memset(raw + n, 1, 32), n += 32;
        raw[n++] = 0x1a, raw[n++] = 32, memcpy(raw + n, d, 32), n += 32;
        raw[n++] = 0x22, raw[n++] = 32, memset(raw + n, 2, 32), n += 32;
        uint8_t *o = NULL;
        size_t ol = 0;
        rpc_result res;
        rpc(&g_c, M("SignStart"), raw, n, &o, &ol, &res);
        free(o);
        DUO_CHECK(res.status == GRPC_STATUS_INVALID_ARGUMENT || res.status == GRPC_STATUS_UNAUTHENTICATED);
    }
    duo_status_resp so;
    rpc_result res;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE && so.pin_attempts_left == 3);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    device_free(&dv);
}

static void test_replay_round2(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1004") == 0);
    uint8_t d[32];
    digest_of(d, "replay", 0);
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.keep_finish = 1;
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    DUO_REQUIRE(sr.finish_bytes != NULL);
    uint8_t *o = NULL;
    size_t ol = 0;
    rpc_result res;
    rpc(&g_c, M("SignFinish"), sr.finish_bytes, sr.finish_len, &o, &ol, &res);
    DUO_CHECK(res.status != GRPC_STATUS_OK && o == NULL);
    DUO_CHECK(res.duo_err == DUO_E_PROTO_STATE && strstr(res.detail, "already used") != NULL);
    free(o);
    free(sr.finish_bytes);
    /* Still usable. */
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    device_free(&dv);
}

static void test_clone_detected(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1005") == 0);
    uint8_t d[32], old_secret[32];
    digest_of(d, "clone", 0);
    memcpy(old_secret, dv.key->device_secret, 32); /* the copy of the device state */
    sign_run sr;
    for (int i = 0; i < 2; i++) {
        memset(&sr, 0, sizeof sr);
        DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    }
    uint8_t real_secret[32];
    memcpy(real_secret, dv.key->device_secret, 32);
    memcpy(dv.key->device_secret, old_secret, 32); /* the clone acts */
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0);
    DUO_CHECK(sr.start_st == GRPC_STATUS_PERMISSION_DENIED && sr.res.duo_err == DUO_E_CLONE_SUSPECTED);
    memcpy(dv.key->device_secret, real_secret, 32); /* the real device is frozen too */
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0);
    DUO_CHECK(sr.res.duo_err == DUO_E_KEY_SUSPENDED && strstr(sr.res.detail, "clone") != NULL);
    char id[33], out[1024];
    key_hex(id, &dv);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' key show --data '%s' %s", g_bin, g_dir, id) == 0);
    DUO_CHECK(strstr(out, "suspended") != NULL);
    device_free(&dv);
}

static void test_refresh(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1006") == 0);
    rpc_result res;
    uint8_t d[32], before[32];
    memcpy(before, dv.key->device_secret, 32);
    DUO_CHECK(dev_refresh(&g_c, &dv, &res, NULL, NULL) == 0);
    DUO_CHECK(dev_refresh(&g_c, &dv, &res, NULL, NULL) == 0);
    digest_of(d, "refresh", 0);
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    /* A dormant clone with the pre-refresh secret surfaces. */
    memcpy(dv.key->device_secret, before, 32);
    duo_status_resp so;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == GRPC_STATUS_PERMISSION_DENIED &&
              res.duo_err == DUO_E_CLONE_SUSPECTED);
    device_free(&dv);
}

static void test_revocation(void) {
    rpc_result res;
    uint8_t d[32];
    digest_of(d, "revoke", 0);
    sign_run sr;
    duo_status_resp so;
    /* 1. by the device (MAC, no PIN) */
    device a;
    DUO_REQUIRE(enrol_new(&g_c, &a, "UA-1007") == 0);
    DUO_CHECK(dev_revoke(&g_c, &a, NULL, &res) == 0);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &a, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_REVOKED);
    DUO_CHECK(dev_status(&g_c, &a, &so, &res) == 0 && so.state == DUO_KEY_STATE_REVOKED);
    device_free(&a);
    /* 2. with the one-time code (a wrong one first) */
    device b;
    DUO_REQUIRE(enrol_new(&g_c, &b, "UA-1008") == 0);
    DUO_CHECK(dev_revoke(&g_c, &b, "aaaa-bbbb-cccc-dddd-eeee-ffff-gg", &res) == GRPC_STATUS_UNAUTHENTICATED);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &b, PIN, d, &sr) == 0);
    DUO_CHECK(dev_revoke(&g_c, &b, b.code, &res) == 0);
    DUO_CHECK(dev_revoke(&g_c, &b, b.code, &res) != 0 && res.duo_err == DUO_E_KEY_REVOKED);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &b, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_REVOKED);
    device_free(&b);
    /* 3. by an administrator */
    device c;
    DUO_REQUIRE(enrol_new(&g_c, &c, "UA-1009") == 0);
    char id[33], out[512];
    key_hex(id, &c);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' key revoke --data '%s' %s --reason lost 2>&1", g_bin, g_dir, id) == 0);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &c, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_REVOKED);
    DUO_CHECK(strstr(sr.res.detail, "revoked") != NULL);
    device_free(&c);
}

static void test_expired_token(void) {
    char tok[128];
    rpc_result res;
    device dv;
    issue_token(tok, sizeof tok, "UA-1010", 1);
    DUO_REQUIRE(tok[0]);
    sleep(2);
    DUO_CHECK(enrol(&g_c, tok, &dv, &res) == GRPC_STATUS_UNAUTHENTICATED);
    DUO_CHECK(res.duo_err == DUO_E_TOKEN_EXPIRED && strstr(res.detail, "expired") != NULL);
    DUO_CHECK(enrol(&g_c, "no-such-token", &dv, &res) == GRPC_STATUS_UNAUTHENTICATED &&
              res.duo_err == DUO_E_TOKEN_INVALID);
}

/* The same data directory served with 2-second sessions. */
static void test_expired_session(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-1011") == 0);
    daemon_t d2;
    DUO_REQUIRE(daemon_swap_out(&g_d, &g_c, &d2, "--session-ttl 2 --prime-pool 1") == 0);
    client c2;
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    duo_p2_sign *s = NULL;
    uint8_t dg[32];
    digest_of(dg, "expire", 0);
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    memset(&m2, 0, sizeof m2);
    rpc_result res;
    duo_p2_sign_params sp = {
        .ec = g_ec, .key = dv.key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = dg};
    DUO_CHECK(duo_p2_sign_new(&s, &sp) == DUO_OK && duo_p2_sign_start(s, &m0) == DUO_OK);
    DUO_CHECK(CALL(&c2, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, &res) == 0);
    /* (A second SignStart would replace this session: test_daemon_hardening.) */
    DUO_CHECK(duo_p2_sign_on_start(s, &m1, &m2) == DUO_OK);
    sleep(3);
    DUO_CHECK(CALL(&c2, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &res) ==
              GRPC_STATUS_FAILED_PRECONDITION);
    DUO_CHECK(res.duo_err == DUO_E_SESSION_EXPIRED && strstr(res.detail, "expired") != NULL);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    client_close(&c2);
    DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
    device_free(&dv);
}

/* SignStart on dv through c (dev_sign_open): a live session, the engine
 * state in *s and round 2 ready in *m2. */
static int open_sign_session(client *c, device *dv, duo_p2_sign **s, duo_sign_finish_req *m2, rpc_result *res) {
    uint8_t dg[32];
    digest_of(dg, "cap", 0);
    return dev_sign_open(c, dv, dg, s, m2, res);
}

/* --max-sessions caps the sessions in progress, not the finished ones (they
 * used to stay in the table as tombstones for 10 minutes and count, so about
 * 16 signatures a second sustained filled the default 10000). */
static void test_session_cap(void) {
    device dv[3];
    char cit[32];
    for (int i = 0; i < 3; i++) {
        snprintf(cit, sizeof cit, "UA-1012-%d", i);
        DUO_REQUIRE(enrol_new(&g_c, &dv[i], cit) == 0);
    }
    daemon_t d2;
    DUO_REQUIRE(daemon_swap_out(&g_d, &g_c, &d2, "--max-sessions 2 --prime-pool 1") == 0);
    client c2;
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    uint8_t dg[32];
    /* Five signatures one after the other: five finished sessions. */
    for (int i = 0; i < 5; i++) {
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        digest_of(dg, "cap-seq", i);
        DUO_CHECK(dev_sign(&c2, &dv[0], PIN, dg, &sr) == 0 && openssl_verify(&dv[0], dg, sr.sig));
    }
    /* On a shared PostgreSQL store a signing session lives in the store
     * between the rounds (round 2 may reach another node), one live session
     * per key, purged after expiry: it takes no room in this node's table,
     * so --max-sessions bounds the enrolments and the calls in flight there
     * (cloud_half/daemon/README.md). The table's cap is SQLite's. */
    if (getenv("DUO_TEST_PG_URL") != NULL) {
        client_close(&c2);
        DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
        for (int i = 0; i < 3; i++) device_free(&dv[i]);
        return;
    }
    /* Two in progress fill the table; a third is refused, retryable. */
    duo_p2_sign *s0 = NULL, *s1 = NULL, *s2 = NULL;
    duo_sign_finish_req f0, f1, f2;
    duo_sign_finish_resp m3;
    rpc_result res;
    DUO_CHECK(open_sign_session(&c2, &dv[0], &s0, &f0, &res) == 0);
    DUO_CHECK(open_sign_session(&c2, &dv[1], &s1, &f1, &res) == 0);
    DUO_CHECK(open_sign_session(&c2, &dv[2], &s2, &f2, &res) == GRPC_STATUS_UNAVAILABLE);
    DUO_CHECK(res.duo_err == DUO_E_SERVER_BUSY && strstr(res.detail, "too many sessions") != NULL &&
              res.retry_after > 0);
    duo_p2_sign_free(s2);
    s2 = NULL;
    duo_wire_free_sign_finish_req(&f2);
    /* One finishes: room again. */
    DUO_CHECK(CALL(&c2, "SignFinish", sign_finish_req, &f0, sign_finish_resp, &m3, &res) == 0);
    DUO_CHECK(open_sign_session(&c2, &dv[2], &s2, &f2, &res) == 0);
    duo_wire_free_sign_finish_req(&f0);
    duo_wire_free_sign_finish_req(&f1);
    duo_wire_free_sign_finish_req(&f2);
    duo_p2_sign_free(s0);
    duo_p2_sign_free(s1);
    duo_p2_sign_free(s2);
    client_close(&c2);
    DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
    for (int i = 0; i < 3; i++) device_free(&dv[i]);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-e2e", &g_d, &g_c);
    if (rc != 0) return rc;
    DUO_RUN(test_enrol_and_sign_many);
    DUO_RUN(test_pin_lockout);
    DUO_RUN(test_mac_rejected_no_pin_count);
    DUO_RUN(test_replay_round2);
    DUO_RUN(test_clone_detected);
    DUO_RUN(test_refresh);
    DUO_RUN(test_revocation);
    DUO_RUN(test_expired_token);
    DUO_RUN(test_expired_session);
    DUO_RUN(test_session_cap);
    return it_finish(&g_d, &g_c);
}
