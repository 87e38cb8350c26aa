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
#define BADPIN "0000"

static const char *g_bin;
static char g_dir[256];
static char g_parent[256];
static duo_ec *g_ec;

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

static int dev_revoke(client *c, device *dv, const char *code, rpc_result *res) {
    duo_revoke_req q;
    memset(&q, 0, sizeof q);
    uint8_t mi[32];
    memcpy(q.key_id, dv->key->key_id, 16);
    if (duo_rng_bytes(NULL, q.device_nonce, 32) != DUO_OK) return -1;
    if (code) {
        snprintf(q.revocation_code, sizeof q.revocation_code, "%s", code);
    } else {
        q.has_mac = 1;
        if (duo_wire_mac_input_revoke(mi, &q) != DUO_OK || duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
            return -1;
    }
    uint8_t *b = NULL, *o = NULL;
    size_t bl = 0, ol = 0;
    if (duo_wire_build_revoke_req(&b, &bl, &q) != DUO_OK) return -1;
    rpc(c, M("Revoke"), b, bl, &o, &ol, res);
    free(b);
    free(o);
    return res->status;
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

static void test_enrol_and_sign_many(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&dv, "UA-1001") == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-1002") == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-1003") == 0);
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
    DUO_CHECK(sr.start_st == 0 && sr.finish_st == GRPC_STATUS_UNAUTHENTICATED && sr.res.duo_err == DUO_E_UNAUTHENTICATED);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-1004") == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-1005") == 0);
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
    DUO_REQUIRE(enrol_new(&dv, "UA-1006") == 0);
    rpc_result res;
    uint8_t d[32], before[32];
    memcpy(before, dv.key->device_secret, 32);
    DUO_CHECK(dev_refresh(&g_c, &dv, &res) == 0);
    DUO_CHECK(dev_refresh(&g_c, &dv, &res) == 0);
    digest_of(d, "refresh", 0);
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0 && openssl_verify(&dv, d, sr.sig));
    /* A dormant clone with the pre-refresh secret surfaces. */
    memcpy(dv.key->device_secret, before, 32);
    duo_status_resp so;
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == GRPC_STATUS_PERMISSION_DENIED && res.duo_err == DUO_E_CLONE_SUSPECTED);
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
    DUO_REQUIRE(enrol_new(&a, "UA-1007") == 0);
    DUO_CHECK(dev_revoke(&g_c, &a, NULL, &res) == 0);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &a, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_REVOKED);
    DUO_CHECK(dev_status(&g_c, &a, &so, &res) == 0 && so.state == DUO_KEY_STATE_REVOKED);
    device_free(&a);
    /* 2. with the one-time code (a wrong one first) */
    device b;
    DUO_REQUIRE(enrol_new(&b, "UA-1008") == 0);
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
    DUO_REQUIRE(enrol_new(&c, "UA-1009") == 0);
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

/* A second daemon on the same data directory with 2-second sessions. */
static void test_expired_session(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&dv, "UA-1011") == 0);
    daemon_t d2;
    DUO_REQUIRE(daemon_start(&d2, "--session-ttl 2 --prime-pool 0") == 0);
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
    duo_p2_sign_params sp = {.ec = g_ec, .key = dv.key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = dg};
    DUO_CHECK(duo_p2_sign_new(&s, &sp) == DUO_OK && duo_p2_sign_start(s, &m0) == DUO_OK);
    DUO_CHECK(CALL(&c2, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, &res) == 0);
    /* One live session per key. */
    {
        device same = dv;
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        DUO_CHECK(dev_sign(&c2, &same, PIN, dg, &sr) != 0 && sr.res.duo_err == DUO_E_SESSION_BUSY);
    }
    DUO_CHECK(duo_p2_sign_on_start(s, &m1, &m2) == DUO_OK);
    sleep(3);
    DUO_CHECK(CALL(&c2, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &res) == GRPC_STATUS_FAILED_PRECONDITION);
    DUO_CHECK(res.duo_err == DUO_E_SESSION_EXPIRED && strstr(res.detail, "expired") != NULL);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    client_close(&c2);
    DUO_CHECK(daemon_stop(&d2) == 0);
    device_free(&dv);
}

/* SignStart on dv through c: a live session, the engine state in *s and
 * round 2 ready in *m2. */
static int open_sign_session(client *c, device *dv, duo_p2_sign **s, duo_sign_finish_req *m2, rpc_result *res) {
    uint8_t dg[32];
    digest_of(dg, "cap", 0);
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    memset(m2, 0, sizeof *m2);
    duo_p2_sign_params sp = {.ec = g_ec, .key = dv->key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = dg};
    if (duo_p2_sign_new(s, &sp) != DUO_OK || duo_p2_sign_start(*s, &m0) != DUO_OK) return -1;
    int st = CALL(c, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, res);
    if (st != 0) return st;
    return duo_p2_sign_on_start(*s, &m1, m2) == DUO_OK ? 0 : -1;
}

/* --max-sessions caps the sessions in progress, not the finished ones (they
 * used to stay in the table as tombstones for 10 minutes and count, so about
 * 16 signatures a second sustained filled the default 10000). */
static void test_session_cap(void) {
    device dv[3];
    char cit[32];
    for (int i = 0; i < 3; i++) {
        snprintf(cit, sizeof cit, "UA-1012-%d", i);
        DUO_REQUIRE(enrol_new(&dv[i], cit) == 0);
    }
    daemon_t d2;
    DUO_REQUIRE(daemon_start(&d2, "--max-sessions 2 --prime-pool 0") == 0);
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
    /* Two in progress fill the table; a third is refused, retryable. */
    duo_p2_sign *s0 = NULL, *s1 = NULL, *s2 = NULL;
    duo_sign_finish_req f0, f1, f2;
    duo_sign_finish_resp m3;
    rpc_result res;
    DUO_CHECK(open_sign_session(&c2, &dv[0], &s0, &f0, &res) == 0);
    DUO_CHECK(open_sign_session(&c2, &dv[1], &s1, &f1, &res) == 0);
    DUO_CHECK(open_sign_session(&c2, &dv[2], &s2, &f2, &res) == GRPC_STATUS_UNAVAILABLE);
    DUO_CHECK(res.duo_err == DUO_E_UNAVAILABLE && strstr(res.detail, "too many sessions") != NULL);
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
    DUO_CHECK(daemon_stop(&d2) == 0);
    for (int i = 0; i < 3; i++) device_free(&dv[i]);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    snprintf(g_dir, sizeof g_dir, "/tmp/duo-e2e-XXXXXX");
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
    client_close(&g_c);
    int rc = daemon_stop(&g_d);
    DUO_CHECK(rc == 0);
    DUO_CHECK(run_cmd(out, sizeof out, "'%s' audit verify --data '%s' 2>&1", g_bin, g_dir) == 0);
    fprintf(stderr, "# %s\n", out);
    grpc_shutdown();
    duo_ec_free(g_ec);
    if (!getenv("DUO_E2E_KEEP")) run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
