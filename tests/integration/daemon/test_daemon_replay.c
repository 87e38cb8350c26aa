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
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>

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
static uint8_t *g_confirm; /* the last EnrollConfirm request as sent */
static size_t g_confirm_len;

#include "daemon_client.h"
static int enrol(client *c, const char *token, device *dv, rpc_result *res) {
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
    duo_enroll_confirm_resp m9;
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
        duo_p2_enroll_confirm(en, &m8) != DUO_OK)
        goto out;
    free(g_confirm);
    g_confirm = NULL;
    if (duo_wire_build_enroll_confirm_req(&g_confirm, &g_confirm_len, &m8) != DUO_OK) goto out;
    if ((st = CALL(c, "EnrollConfirm", enroll_confirm_req, &m8, enroll_confirm_resp, &m9, res)) != 0) goto out;
    snprintf(dv->code, sizeof dv->code, "%s", m9.revocation_code);
out:
    duo_wire_free_enroll_key_share_resp(&m3);
    duo_wire_free_enroll_pdl_challenge_req(&m4);
    duo_p2_enroll_free(en);
    if (st != 0) {
        duo_p2_key_free(dv->key);
        dv->key = NULL;
    }
    return st;
}

typedef struct {
    int start_st, finish_st; /* gRPC statuses (-1 local failure) */
    rpc_result res;          /* of the failing (or last) call */
    uint8_t sig[64];
    uint8_t *finish_bytes; /* the round-2 request as sent (for replays); caller frees */
    size_t finish_len;
    int keep_finish;    /* also keeps the SignStart request as sent */
    uint8_t *start_bytes; /* caller frees */
    size_t start_len;
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
    if (sr->keep_finish && duo_wire_build_sign_start_req(&sr->start_bytes, &sr->start_len, &m0) != DUO_OK) goto out;
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

static void device_free(device *dv) {
    duo_p2_key_free(dv->key);
    dv->key = NULL;
}

/* OpenSSL verification of r||s over digest under the device's public key. */
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

/* ---------------------------------------------------------------- tests */

static daemon_t g_d;
static client g_c;

static int enrol_new(device *dv, const char *citizen) {
    char tok[128];
    rpc_result res;
    issue_token(tok, sizeof tok, citizen, 600);
    if (!tok[0]) return -1;
    return enrol(&g_c, tok, dv, &res);
}

/* A raw request, as captured: replays it byte for byte. */
static void replay(const char *method, const uint8_t *b, size_t bl, rpc_result *res) {
    uint8_t *o = NULL;
    size_t ol = 0;
    rpc(&g_c, method, b, bl, &o, &ol, res);
    free(o);
}

/* Builds (does not send) a Status, Refresh or device Revoke request MAC'd
 * with the device's current secret; nonce NULL: a fresh one. */
static int build_status(device *dv, const uint8_t *nonce, uint8_t **b, size_t *bl) {
    duo_status_req q;
    uint8_t mi[32];
    memcpy(q.key_id, dv->key->key_id, 16);
    if (nonce) memcpy(q.device_nonce, nonce, 32);
    else if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK) return -1;
    if (duo_wire_mac_input_status(mi, &q) != DUO_OK || duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    return duo_wire_build_status_req(b, bl, &q) == DUO_OK ? 0 : -1;
}

/* A Refresh as the device sends it; on success the device rotates. The
 * request bytes are kept in *b. */
static int refresh_keep(device *dv, uint8_t **b, size_t *bl, rpc_result *res) {
    duo_refresh_req q;
    duo_refresh_resp r;
    uint8_t mi[32], next[32], *o = NULL;
    size_t ol = 0;
    memcpy(q.key_id, dv->key->key_id, 16);
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK || duo_wire_mac_input_refresh(mi, &q) != DUO_OK ||
        duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK || duo_wire_build_refresh_req(b, bl, &q) != DUO_OK)
        return -1;
    rpc(&g_c, M("Refresh"), *b, *bl, &o, &ol, res);
    int st = res->status;
    if (st == 0 && duo_wire_parse_refresh_resp(&r, o, ol) != DUO_OK) st = -2;
    free(o);
    if (st != 0) return st;
    if (duo_secret_rotate(next, dv->key->device_secret, q.device_nonce, r.rotate_seed) != DUO_OK) return -1;
    memcpy(dv->key->device_secret, next, 32);
    return 0;
}

static int build_revoke(device *dv, uint8_t **b, size_t *bl) {
    duo_revoke_req q;
    uint8_t mi[32];
    memset(&q, 0, sizeof q);
    memcpy(q.key_id, dv->key->key_id, 16);
    q.has_mac = 1;
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK || duo_wire_mac_input_revoke(mi, &q) != DUO_OK ||
        duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    return duo_wire_build_revoke_req(b, bl, &q) == DUO_OK ? 0 : -1;
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
    DUO_REQUIRE(enrol_new(&dv, "UA-2001") == 0);
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
    digest_of(d, "replay-kinds", 0);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr1) == 0 && openssl_verify(&dv, d, sr1.sig));
    DUO_REQUIRE(sr1.start_bytes && sr1.finish_bytes);
    /* A refresh (promotes the signature's secret, makes a pending one). */
    DUO_CHECK(refresh_keep(&dv, &rf1, &rf1_len, &res) == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-2002") == 0);
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
    DUO_REQUIRE(enrol_new(&dv2, "UA-2003") == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-2004") == 0);
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
    DUO_CHECK(refresh_keep(&dv, &rf, &rf_len, &res) == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-2005") == 0);
    DUO_REQUIRE(g_confirm != NULL);
    uint8_t *conf = g_confirm;
    size_t conf_len = g_confirm_len;
    g_confirm = NULL;
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
    free(conf);
    /* Revoke by the device, then its replay. */
    uint8_t *rv = NULL;
    size_t rv_len = 0;
    DUO_REQUIRE(build_revoke(&dv, &rv, &rv_len) == 0);
    replay(M("Revoke"), rv, rv_len, &res);
    DUO_CHECK(res.status == 0);
    replay(M("Revoke"), rv, rv_len, &res);
    DUO_CHECK(res.status != 0 && res.duo_err == DUO_E_KEY_REVOKED);
    DUO_CHECK(key_state_is(&dv, "revoked") && !key_state_is(&dv, "suspended"));
    free(rv);
    device_free(&dv);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    snprintf(g_dir, sizeof g_dir, "/tmp/duo-replay-XXXXXX");
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
    DUO_RUN(test_replay_each_kind_after_rotation);
    DUO_RUN(test_clone_still_frozen);
    DUO_RUN(test_replay_current_secret);
    DUO_RUN(test_confirm_and_revoke);
    client_close(&g_c);
    int rc = daemon_stop(&g_d);
    DUO_CHECK(rc == 0);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' audit verify --data '%s' 2>&1", g_bin, g_dir) == 0);
    fprintf(stderr, "# %s\n", out);
    free(g_confirm);
    grpc_shutdown();
    duo_ec_free(g_ec);
    if (!getenv("DUO_E2E_KEEP")) run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
