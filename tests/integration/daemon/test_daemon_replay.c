/* duosign-cloud: a replayed request is not a clone (docs/SECURITY.md 3.2,
 * DESIGN 3.5), against the real daemon process (TLS on loopback), driven by a
 * small test device built on the P2 engine (as test_daemon_e2e.c).
 *
 * Anyone who saw a MAC'd request (a TLS-terminating proxy, a request log) can
 * play it again byte for byte. Before the fix, a request MAC'd under a secret
 * that has since retired froze the key as "clone suspected", and one MAC'd
 * under the current secret while a pending one existed superseded the pending
 * secret (the real device was then frozen at its next request). Now:
 *   - every MAC'd request kind (Status, SignStart, Refresh, SignFinish,
 *     Revoke) replayed after the device moved on is refused (UNAUTHENTICATED;
 *     SignFinish: its session is consumed) and the key stays active and keeps
 *     signing; the refusals are audited as "replay.rejected";
 *   - a replay under the CURRENT secret, with and without a pending one, is
 *     refused and changes no secret: the device's pending secret still works;
 *   - a replayed EnrollConfirm stays the idempotent repeat it was, and never
 *     freezes the key once the key has rotated;
 *   - a real clone (a NEW request, fresh nonce, under a retired secret) is
 *     still frozen, also one that reuses an old nonce in a new request.
 *
 * Usage: test_daemon_replay PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon_client.h"

/* ---------------------------------------------------------------- tests */

static daemon_t g_d;
static client g_c;

/* A raw request, as captured: replays it byte for byte. */
static void replay(const char *method, const uint8_t *b, size_t bl, rpc_result *res) {
    uint8_t *o = NULL;
    size_t ol = 0;
    rpc(&g_c, method, b, bl, &o, &ol, res);
    free(o);
}

/* The key's state as `key show` prints it. */
static int key_state_is(const device *dv, const char *state) {
    char id[33], out[2048];
    key_hex(id, dv);
    if (run_cmd(out, sizeof out, "'%s' key show --data '%s' %s 2>&1", g_bin, g_dir, id) != 0) return 0;
    return strstr(out, state) != NULL;
}

static int count_audit(const char *what) {
    char out[1 << 16];
    if (run_cmd(out, sizeof out, "'%s' audit list --data '%s' 2>&1", g_bin, g_dir) != 0) return -1;
    int n = 0;
    for (const char *p = out; (p = strstr(p, what)) != NULL; p += strlen(what)) n++;
    return n;
}

static int is_replay_refusal(const rpc_result *res) {
    return res->status == GRPC_STATUS_UNAUTHENTICATED && res->duo_err == DUO_E_UNAUTHENTICATED &&
           strstr(res->detail, "replayed") != NULL;
}

/* Every MAC'd request kind captured early and replayed after the device moved
 * on (its secrets have rotated several times): refused, key still active. */
static void test_replay_each_kind_after_rotation(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2001") == 0);
    rpc_result res;
    uint8_t d[32];
    uint8_t *st1 = NULL, *rf1 = NULL;
    size_t st1_len = 0, rf1_len = 0;
    int audits_before = count_audit("replay.rejected");
    /* Status under the first secret. */
    DUO_REQUIRE(build_status(&dv, NULL, &st1, &st1_len) == 0);
    replay(M("Status"), st1, st1_len, &res);
    DUO_CHECK(res.status == 0);
    /* A signature: SignStart and SignFinish captured. */
    sign_run sr1;
    memset(&sr1, 0, sizeof sr1);
    sr1.keep_finish = 1;
    sr1.keep_start = 1;
    digest_of(d, "replay-kinds", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr1) == 0 && openssl_verify(&dv, d, sr1.sig));
    DUO_REQUIRE(sr1.start_bytes && sr1.finish_bytes);
    /* A refresh (promotes the signature's secret, makes a pending one). */
    DUO_CHECK(dev_refresh(&g_c, &dv, &res, &rf1, &rf1_len) == 0);
    /* The device moves on: two more signatures and a Status. */
    for (int i = 1; i <= 2; i++) {
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        digest_of(d, "replay-kinds", i);
        DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    }
    duo_status_resp so;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE);

    /* The replays (each MAC'd under a secret that is now retired). */
    replay(M("Status"), st1, st1_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    replay(M("SignStart"), sr1.start_bytes, sr1.start_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    replay(M("Refresh"), rf1, rf1_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    /* SignFinish has no nonce of its own: its session (sid, from the SignStart
     * nonces) was consumed, and it never reaches the secret check. */
    replay(M("SignFinish"), sr1.finish_bytes, sr1.finish_len, &res);
    DUO_CHECK(res.status != 0 && res.duo_err != DUO_E_CLONE_SUSPECTED &&
              (res.duo_err == DUO_E_PROTO_STATE || res.duo_err == DUO_E_NOT_FOUND));
    /* Twice more, for good measure: still refused, still no freeze. */
    replay(M("SignStart"), sr1.start_bytes, sr1.start_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    DUO_CHECK(key_state_is(&dv, "active"));
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE);
    /* No PIN attempt was counted. */
    DUO_CHECK(so.pin_attempts_left >= 3);
    /* The key still signs. */
    {
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        digest_of(d, "replay-kinds", 9);
        DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    }
    DUO_CHECK(count_audit("replay.rejected") == audits_before + 4);

    free(st1);
    free(rf1);
    free(sr1.start_bytes);
    free(sr1.finish_bytes);
    device_free(&dv);
}

/* A genuine clone (a copy of an old device state) is still frozen at its
 * first new request, whether it reuses a nonce it saw or draws a fresh one;
 * replays on the same key before that did not freeze it. */
static void test_clone_still_frozen(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2002") == 0);
    rpc_result res;
    uint8_t d[32], old_secret[32], real_secret[32], *st0 = NULL;
    size_t st0_len = 0;
    memcpy(old_secret, dv.key->device_secret, 32); /* the copy of the device state */
    DUO_REQUIRE(build_status(&dv, NULL, &st0, &st0_len) == 0);
    replay(M("Status"), st0, st0_len, &res);
    DUO_CHECK(res.status == 0);
    for (int i = 0; i < 2; i++) {
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        digest_of(d, "clone", i);
        DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    }
    /* A replay first: refused, not frozen. */
    replay(M("Status"), st0, st0_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    DUO_CHECK(key_state_is(&dv, "active"));
    memcpy(real_secret, dv.key->device_secret, 32);
    memcpy(dv.key->device_secret, old_secret, 32); /* the clone acts */
    /* The clone reuses the nonce of the Status it saw, in a Refresh: a new
     * request (another MAC input), not a replay. */
    {
        duo_status_req q;
        DUO_REQUIRE(duo_wire_parse_status_req(&q, st0, st0_len) == DUO_OK);
        duo_refresh_req rq;
        uint8_t mi[32], *b = NULL;
        size_t bl = 0;
        memcpy(rq.key_id, q.key_id, 16);
        memcpy(rq.device_nonce, q.device_nonce, 32);
        DUO_REQUIRE(duo_wire_mac_input_refresh(mi, &rq) == DUO_OK &&
                    duo_mac_compute(rq.mac, dv.key->device_secret, mi) == DUO_OK &&
                    duo_wire_build_refresh_req(&b, &bl, &rq) == DUO_OK);
        replay(M("Refresh"), b, bl, &res);
        free(b);
        DUO_CHECK(res.status == GRPC_STATUS_PERMISSION_DENIED && res.duo_err == DUO_E_CLONE_SUSPECTED);
    }
    DUO_CHECK(key_state_is(&dv, "suspended"));
    memcpy(dv.key->device_secret, real_secret, 32); /* the real device is frozen too */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_SUSPENDED);
    free(st0);
    device_free(&dv);

    /* And a clone with a fresh nonce, at its SignStart (DESIGN 3.5). */
    device dv2;
    DUO_REQUIRE(enrol_new(&g_c, &dv2, "UA-2003") == 0);
    memcpy(old_secret, dv2.key->device_secret, 32);
    for (int i = 0; i < 2; i++) {
        memset(&sr, 0, sizeof sr);
        digest_of(d, "clone2", i);
        DUO_CHECK(dev_sign(&g_c, &dv2, PIN, d, &sr) == 0);
    }
    memcpy(dv2.key->device_secret, old_secret, 32);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv2, PIN, d, &sr) != 0);
    DUO_CHECK(sr.start_st == GRPC_STATUS_PERMISSION_DENIED && sr.res.duo_err == DUO_E_CLONE_SUSPECTED);
    DUO_CHECK(key_state_is(&dv2, "suspended"));
    device_free(&dv2);
}

/* Replays under the CURRENT secret change no secret: with a pending secret
 * (the replay used to supersede it, and the real device was then frozen at
 * its next request) and without. */
static void test_replay_current_secret(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2004") == 0);
    rpc_result res;
    uint8_t d[32], *st = NULL, *rf = NULL, *st2 = NULL;
    size_t st_len = 0, rf_len = 0, st2_len = 0;
    duo_status_resp so;
    /* No pending secret: a replayed Status is refused. */
    DUO_REQUIRE(build_status(&dv, NULL, &st, &st_len) == 0);
    replay(M("Status"), st, st_len, &res);
    DUO_CHECK(res.status == 0);
    replay(M("Status"), st, st_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    /* A pending secret exists (the device signed; the cloud has not seen the
     * new secret yet): replays of requests under the current secret... */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.keep_finish = 1;
    sr.keep_start = 1;
    digest_of(d, "current", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    replay(M("Status"), st, st_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    replay(M("SignStart"), sr.start_bytes, sr.start_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    /* ...did not supersede the pending secret: the device uses it. */
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE);
    /* A Refresh makes a pending secret; its replay (under the now current
     * secret) neither supersedes it nor makes another. */
    DUO_CHECK(dev_refresh(&g_c, &dv, &res, &rf, &rf_len) == 0);
    replay(M("Refresh"), rf, rf_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    /* A Status under the pending secret promotes it; replayed, it is refused
     * (it is then MAC'd under the current secret). */
    DUO_REQUIRE(build_status(&dv, NULL, &st2, &st2_len) == 0);
    replay(M("Status"), st2, st2_len, &res);
    DUO_CHECK(res.status == 0);
    replay(M("Status"), st2, st2_len, &res);
    DUO_CHECK(is_replay_refusal(&res));
    {
        sign_run s2;
        memset(&s2, 0, sizeof s2);
        digest_of(d, "current", 1);
        DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &s2) == 0 && openssl_verify(&dv, d, s2.sig));
    }
    DUO_CHECK(key_state_is(&dv, "active"));
    free(st);
    free(st2);
    free(rf);
    free(sr.start_bytes);
    free(sr.finish_bytes);
    device_free(&dv);
}

/* The retryable enrolment confirmation: a repeat is still accepted while the
 * key has its first secret (a Status in between records a request but does
 * not rotate), and once the key has rotated a replay is refused without a
 * freeze. A replayed device Revoke of a revoked key changes nothing. */
static void test_confirm_and_revoke(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2005") == 0);
    DUO_REQUIRE(dv.confirm != NULL);
    const uint8_t *conf = dv.confirm;
    size_t conf_len = dv.confirm_len;
    rpc_result res;
    duo_status_resp so;
    uint8_t d[32];
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0);
    replay(M("EnrollConfirm"), conf, conf_len, &res);
    DUO_CHECK(res.status == 0);
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "confirm", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0);
    replay(M("EnrollConfirm"), conf, conf_len, &res);
    DUO_CHECK(res.status != 0 && res.duo_err == DUO_E_PROTO_STATE);
    DUO_CHECK(key_state_is(&dv, "active"));
    /* Revoke by the device, then its replay. */
    uint8_t *rv = NULL;
    size_t rv_len = 0;
    DUO_REQUIRE(build_revoke(&dv, NULL, &rv, &rv_len) == 0);
    replay(M("Revoke"), rv, rv_len, &res);
    DUO_CHECK(res.status == 0);
    replay(M("Revoke"), rv, rv_len, &res);
    DUO_CHECK(res.status != 0 && res.duo_err == DUO_E_KEY_REVOKED);
    DUO_CHECK(key_state_is(&dv, "revoked") && !key_state_is(&dv, "suspended"));
    free(rv);
    device_free(&dv);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-replay", &g_d, &g_c);
    if (rc != 0) return rc;
    DUO_RUN(test_replay_each_kind_after_rotation);
    DUO_RUN(test_clone_still_frozen);
    DUO_RUN(test_replay_current_secret);
    DUO_RUN(test_confirm_and_revoke);
    return it_finish(&g_d, &g_c);
}
