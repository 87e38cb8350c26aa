/* duosign-cloud: with serve --inline the signing rounds run on the polling
 * thread of an idle daemon (issue 22; off by default), against the real
 * daemon process (TLS on loopback), driven by the small test device of
 * daemon_client.h:
 *
 *   - signatures made on the polling thread verify with OpenSSL; a wrong PIN
 *     and a bad MAC in SignFinish get their own errors from that path (the
 *     wrong PIN counted, nothing signed), and the key signs on afterwards;
 *   - the daemon's stop line counts the calls run on the polling thread: at
 *     least one with --inline, none without, where signing works the same;
 *   - with --inline --cq-threads 2, a SignStart held up on the store while it runs on
 *     a polling thread (this test holds the database's write lock) does not
 *     stop the daemon: a ChannelKey call is answered by a worker before the
 *     lock is released, and the held SignStart then completes a signature
 *     that verifies.
 *
 * Usage: test_daemon_inline PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon_client.h"

static daemon_t g_d;
static client g_c;

static void msleep(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* n signatures of dv on c, each checked with OpenSSL. Returns how many
 * verified. */
static int sign_n(client *c, device *dv, const char *what, int n) {
    int ok = 0;
    for (int i = 0; i < n; i++) {
        uint8_t d[32];
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        digest_of(d, what, i);
        if (dev_sign(c, dv, PIN, d, &sr) == 0 && openssl_verify(dv, d, sr.sig)) ok++;
    }
    return ok;
}

/* The "N run on the polling thread" count of the daemon's stop line in the
 * log file at path; -1 if there is none. */
static long inlined_at_stop(const char *path) {
    FILE *f = fopen(path, "r");
    char line[1024];
    long n = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "stopped cleanly");
        const char *q = p ? strstr(p, " run on the polling thread") : NULL;
        if (!q) continue;
        while (q > p && q[-1] >= '0' && q[-1] <= '9') q--;
        n = strtol(q, NULL, 10);
    }
    fclose(f);
    return n;
}

/* ------------------------------------------------------------ item 1 */

static void test_inline_signing_and_errors(void) {
    device dv;
    daemon_t d2;
    DUO_REQUIRE(daemon_swap_out(&g_d, &g_c, &d2, "--inline") == 0);
    DUO_REQUIRE(client_open(&g_c, d2.port) == 0);
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-4101") == 0);
    DUO_CHECK(sign_n(&g_c, &dv, "inline", 3) == 3);
    duo_status_resp so;
    rpc_result res;
    DUO_REQUIRE(dev_status(&g_c, &dv, &so, &res) == 0);
    const uint32_t left = so.pin_attempts_left;

    uint8_t d[32];
    sign_run sr;
    digest_of(d, "inline-wrong-pin", 0);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, "0000", d, &sr) != 0 && sr.start_st == 0);
    DUO_CHECK(sr.res.duo_err == DUO_E_WRONG_PIN);

    digest_of(d, "inline-bad-mac", 0);
    memset(&sr, 0, sizeof sr);
    sr.bad_finish_mac = 1;
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0 && sr.start_st == 0);
    DUO_CHECK(sr.res.duo_err == DUO_E_UNAUTHENTICATED);

    /* the wrong PIN was counted once and is reset by the next signature */
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.pin_attempts_left + 1 == left);
    DUO_CHECK(sign_n(&g_c, &dv, "inline-after", 1) == 1);
    DUO_CHECK(dev_status(&g_c, &dv, &so, &res) == 0 && so.pin_attempts_left == left);
    device_free(&dv);
    client_close(&g_c);
    DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
}

/* ------------------------------------------------------------ item 2 */

/* Signs on a daemon started with extra and returns its stop line's count. */
static long inlined_with(const char *extra, const char *log_name, const char *citizen) {
    char args[512], log[400];
    snprintf(log, sizeof log, "%s/%s", g_parent, log_name);
    snprintf(args, sizeof args, "%s --log-file '%s'", extra, log);
    daemon_t d2;
    client c2;
    device dv;
    if (daemon_swap_out(&g_d, &g_c, &d2, args) != 0 || client_open(&c2, d2.port) != 0) return -2;
    int ok = enrol_new(&c2, &dv, citizen) == 0;
    if (ok) {
        DUO_CHECK(sign_n(&c2, &dv, log_name, 3) == 3);
        device_free(&dv);
    }
    client_close(&c2);
    DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
    return ok ? inlined_at_stop(log) : -3;
}

static void test_inline_counted_and_off(void) {
    long on = inlined_with("--inline", "inline-on.log", "UA-4102");
    long off = inlined_with("", "inline-off.log", "UA-4103");
    fprintf(stderr, "#   calls run on the polling thread: %ld with --inline, %ld by default\n", on, off);
    /* 3 signatures are 6 signing calls; one may find a worker still busy
     * with the previous call (its reply can reach the client first) */
    DUO_CHECK(on >= 1 && on <= 6);
    DUO_CHECK(off == 0);
}

/* ------------------------------------------------------------ item 3 */

/* Holds the database write lock from this process. */
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

/* After a signature the cloud holds the device's next secret as pending, so
 * the next SignStart promotes it: a store write, which waits for the lock
 * this test holds, on the polling thread that took the call. */
static void test_held_inline_call(void) {
    daemon_t d2;
    client c2;
    device dv;
    DUO_REQUIRE(daemon_swap_out(&g_d, &g_c, &d2, "--inline --cq-threads 2 --workers 2 --store-busy-ms 120000") == 0);
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    DUO_REQUIRE(enrol_new(&c2, &dv, "UA-4104") == 0);
    DUO_REQUIRE(sign_n(&c2, &dv, "held-before", 1) == 1);
    msleep(1500); /* past the maintenance timer's first run (it writes too) */

    uint8_t d[32], *b = NULL, *o = NULL;
    size_t bl = 0, ol = 0;
    duo_p2_sign *s = NULL;
    duo_sign_start_req m0;
    digest_of(d, "held", 0);
    duo_p2_sign_params sp = {
        .ec = g_ec, .key = dv.key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = d};
    DUO_REQUIRE(duo_p2_sign_new(&s, &sp) == DUO_OK && duo_p2_sign_start(s, &m0) == DUO_OK);
    DUO_REQUIRE(duo_wire_build_sign_start_req(&b, &bl, &m0) == DUO_OK);

    sqlite3 *db = db_lock();
    DUO_REQUIRE(db != NULL);
    duo_test_call a1;
    rpc_result res;
    DUO_REQUIRE(duo_test_call_start(&a1, c2.ch, NULL, M("SignStart"), b, bl, 120000) == 0);
    msleep(500); /* the SignStart is running, waiting for the database */
    /* ChannelKey (no store write) is answered meanwhile, through the other
     * polling thread and a worker; the lock is held until it is. */
    uint8_t *ko = NULL;
    size_t kol = 0;
    int kst = duo_test_unary(c2.ch, NULL, M("ChannelKey"), (const uint8_t *)"", 0, 60000, &res, &ko, &kol);
    DUO_CHECK(kst == GRPC_STATUS_OK && kol > 0);
    free(ko);
    db_unlock(db);

    /* the held SignStart completes, and its session signs */
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    memset(&m2, 0, sizeof m2);
    int st = duo_test_call_finish(&a1, &res, &o, &ol);
    DUO_CHECK(st == GRPC_STATUS_OK && duo_wire_parse_sign_start_resp(&m1, o, ol) == DUO_OK);
    if (st == GRPC_STATUS_OK && duo_p2_sign_on_start(s, &m1, &m2) == DUO_OK) {
        uint8_t sig[64], next[32];
        DUO_CHECK(CALL(&c2, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &res) == 0);
        DUO_CHECK(duo_p2_sign_on_finish(s, &m3, sig) == DUO_OK && openssl_verify(&dv, d, sig));
        DUO_CHECK(duo_secret_rotate(next, dv.key->device_secret, duo_p2_sign_sid(s), m3.rotate_seed) == DUO_OK);
        memcpy(dv.key->device_secret, next, 32);
        DUO_CHECK(sign_n(&c2, &dv, "held-after", 1) == 1);
    }
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    free(o);
    free(b);
    device_free(&dv);
    client_close(&c2);
    DUO_CHECK(daemon_swap_back(&g_d, &g_c, &d2) == 0);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-inline", &g_d, &g_c);
    if (rc != 0) return rc;
    DUO_RUN(test_inline_signing_and_errors);
    DUO_RUN(test_inline_counted_and_off);
    DUO_RUN(test_held_inline_call);
    return it_finish(&g_d, &g_c);
}
