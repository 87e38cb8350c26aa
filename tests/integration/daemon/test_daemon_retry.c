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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon_client.h"

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
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
        uint8_t *b = NULL, *o = NULL;
        size_t bl = 0, ol = 0;
        DUO_REQUIRE(build_revoke(&dv, code, &b, &bl) == 0);
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
    duo_p2_sign_params sp = {
        .ec = g_ec, .key = dv->key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = digest};
    if (duo_p2_sign_new(s, &sp) != DUO_OK || duo_p2_sign_start(*s, &m0) != DUO_OK) return -1;
    return duo_wire_build_sign_start_req(b, bl, &m0) == DUO_OK ? 0 : -1;
}

/* One handler thread. After a Refresh the cloud holds a pending secret, so
 * the device's next request promotes it: a store write, which waits for the
 * lock this test holds; meanwhile the handler thread is busy. */
static void busy_sign_start(client *c2, device *dv, int cancel) {
    rpc_result res;
    DUO_REQUIRE(dev_refresh(c2, dv, &res, NULL, NULL) == 0);
    uint8_t d[32], *b = NULL, *sb = NULL;
    size_t bl = 0, sbl = 0;
    duo_p2_sign *s = NULL;
    digest_of(d, cancel ? "cancel" : "deadline", 0);
    DUO_REQUIRE(sign_start_bytes(dv, d, &b, &bl, &s) == 0);
    /* A Status call, queued behind it. */
    DUO_REQUIRE(build_status(dv, NULL, &sb, &sbl) == 0);

    sqlite3 *db = db_lock();
    DUO_REQUIRE(db != NULL);
    duo_test_call a1, a2;
    DUO_REQUIRE(duo_test_call_start(&a1, c2->ch, NULL, M("SignStart"), b, bl, cancel ? 60000 : 1000) == 0);
    msleep(400); /* the handler is running, waiting for the database */
    if (!cancel) {
        DUO_REQUIRE(duo_test_call_start(&a2, c2->ch, NULL, M("Status"), sb, sbl, 400) == 0);
        DUO_CHECK(duo_test_call_finish(&a2, &res, NULL, NULL) == GRPC_STATUS_DEADLINE_EXCEEDED);
        DUO_CHECK(duo_test_call_finish(&a1, &res, NULL, NULL) == GRPC_STATUS_DEADLINE_EXCEEDED);
    } else {
        duo_test_call_cancel(&a1);
        DUO_CHECK(duo_test_call_finish(&a1, &res, NULL, NULL) == GRPC_STATUS_CANCELLED);
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
    if (sr.start_st != 0)
        fprintf(stderr, "#   SignStart after the %s: duo-error %d\n", cancel ? "cancel" : "deadline", sr.res.duo_err);
    duo_p2_sign_free(s);
    free(b);
    free(sb);
}

static void test_deadline_and_cancel(void) {
    device dv;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-2003") == 0);
    daemon_t d2;
    DUO_REQUIRE(daemon_swap_out(&g_d, &g_c, &d2, "--workers 1 --prime-pool 1") == 0);
    client c2;
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    msleep(1500); /* past the maintenance timer's first run (it writes too) */
    busy_sign_start(&c2, &dv, 0);
    busy_sign_start(&c2, &dv, 1);
    client_close(&c2);
    DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
    device_free(&dv);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-retry", &g_d, &g_c);
    if (rc != 0) return rc;
    DUO_RUN(test_confirm_after_restart);
    DUO_RUN(test_confirm_repeated);
    DUO_RUN(test_deadline_and_cancel);
    return it_finish(&g_d, &g_c);
}
