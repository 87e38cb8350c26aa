/* duosign-cloud under the faults outside testing found (issue 13): a real
 * daemon on a loopback port, a test device on the P2 engine.
 *
 *   enrol_flood     one token started over and over holds one live session
 *                   (a new start supersedes the old one), writes a bounded
 *                   number of audit entries, and leaves the service usable;
 *   enrol_caps      enrolments from one peer are capped, and enrolments never
 *                   take the sessions signing needs;
 *   pool_empty      an EnrollStart with no Paillier key ready is answered
 *                   UNAVAILABLE with a retry hint (no key made on a handler
 *                   thread), and signing goes on meanwhile;
 *   stale_start     a lost SignStart answer does not block the key: the
 *                   device's next SignStart replaces the stale session;
 *   second_daemon   a second daemon on the same data directory refuses to start;
 *   store_errors    a store error (the write lock held by another process)
 *                   is logged by the daemon with its reason;
 *   freeze_closed   a cheating device's freeze that cannot be stored still
 *                   refuses the key, and is stored once the store is back;
 *   corrupt_store   a damaged database is refused at start with a clear message;
 *   readonly_dir    a data directory the daemon cannot write is named as such.
 * No assertion depends on timing: waits are bounded retries of a state. */
#define BITS 2048
#include "daemon_client.h"

#include <sqlite3.h>
#include <sys/stat.h>

/* Lines of `audit list` whose kind is `kind` and whose citizen is `citizen`. */
static int audit_count(const char *kind, const char *citizen) {
    char out[64];
    if (run_cmd(out, sizeof out, "'%s' audit list --data '%s' | awk '$5 == \"%s\" && $7 == \"%s\"' | wc -l", g_bin,
                g_dir, kind, citizen) != 0)
        return -1;
    return atoi(out);
}

/* EnrollStart alone with token; on success *m1 is the answer. */
static int enrol_start_only(client *c, const char *token, duo_p2_enroll **en, duo_enroll_start_resp *m1,
                            rpc_result *res) {
    duo_enroll_start_req m0;
    duo_p2_enroll_params ep = {.ec = g_ec,
                               .paillier_bits = BITS,
                               .token = (const uint8_t *)token,
                               .token_len = strlen(token),
                               .pin = (const uint8_t *)PIN,
                               .pin_len = strlen(PIN)};
    *en = NULL;
    if (duo_p2_enroll_new(en, &ep) != DUO_OK || duo_p2_enroll_start(*en, &m0) != DUO_OK) return -1;
    return CALL(c, "EnrollStart", enroll_start_req, &m0, enroll_start_resp, m1, res);
}

/* EnrollKeyShare on a started enrolment. */
static int enrol_key_share(client *c, duo_p2_enroll *en, const duo_enroll_start_resp *m1, rpc_result *res) {
    duo_enroll_key_share_req m2;
    duo_enroll_key_share_resp m3;
    memset(&m3, 0, sizeof m3);
    if (duo_p2_enroll_on_start(en, m1, &m2) != DUO_OK) return -1;
    int st = CALL(c, "EnrollKeyShare", enroll_key_share_req, &m2, enroll_key_share_resp, &m3, res);
    duo_wire_free_enroll_key_share_resp(&m3);
    return st;
}

static void test_enrol_flood(client *c) {
    char tok[128];
    issue_token(tok, sizeof tok, "flood", 600);
    DUO_REQUIRE(tok[0]);
    enum { STARTS = 40 };
    duo_p2_enroll *first = NULL, *en = NULL;
    duo_enroll_start_resp m1_first, m1;
    rpc_result res;
    /* Pool entries are taken one per start; wait for the pool between starts
     * as a client following the retry hint would. */
    for (int i = 0; i < STARTS; i++) {
        int st;
        for (int tries = 0; tries < 600; tries++) {
            duo_p2_enroll_free(en);
            st = enrol_start_only(c, tok, &en, &m1, &res);
            if (!(st == GRPC_STATUS_UNAVAILABLE && res.retry_after > 0)) break;
            sleep(1);
        }
        DUO_CHECK_MSG(st == 0, "start %d: status %d %s", i, st, res.detail);
        if (i == 0) {
            first = en;
            en = NULL;
            m1_first = m1;
        }
    }
    /* The first session was superseded: its next round is refused as such. */
    int st = enrol_key_share(c, first, &m1_first, &res);
    DUO_CHECK_MSG(st == GRPC_STATUS_FAILED_PRECONDITION && res.duo_err == DUO_E_SESSION_SUPERSEDED,
                  "superseded round 2: status %d duo %d %s", st, res.duo_err, res.detail);
    /* The latest one goes on. */
    st = enrol_key_share(c, en, &m1, &res);
    DUO_CHECK_MSG(st == 0, "latest round 2: status %d %s", st, res.detail);
    /* Audit: repeats coalesced (a power-of-two count), not one entry per call. */
    int n = audit_count("enrol.start", "flood");
    DUO_CHECK_MSG(n >= 1 && n <= 8, "enrol.start entries for %d starts: %d", STARTS, n);
    duo_p2_enroll_free(first);
    duo_p2_enroll_free(en);
    /* The service is still usable: another citizen enrols and signs. */
    device dv;
    DUO_REQUIRE(enrol_new(c, &dv, "after-flood") == 0);
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    uint8_t d[32];
    digest_of(d, "after flood", 0);
    DUO_CHECK(dev_sign(c, &dv, PIN, d, &sr) == 0);
    DUO_CHECK(openssl_verify(&dv, d, sr.sig));
    device_free(&dv);
}

/* A daemon with room for 6 sessions, 2 enrolments per peer: enrolments stop
 * at the peer's cap, and a signature still finds a session. */
static void test_enrol_caps(void) {
    daemon_t d2;
    client c2;
    DUO_REQUIRE(daemon_start(&d2, "--max-sessions 6 --max-enrol-per-peer 2 --prime-pool 4") == 0);
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    device dv;
    DUO_REQUIRE(enrol_new(&c2, &dv, "caps-signer") == 0);
    duo_p2_enroll *en[3] = {NULL, NULL, NULL};
    duo_enroll_start_resp m1;
    rpc_result res;
    for (int i = 0; i < 3; i++) {
        char tok[128], who[32];
        snprintf(who, sizeof who, "caps%d", i);
        issue_token(tok, sizeof tok, who, 600);
        int st;
        for (int tries = 0; tries < 600; tries++) {
            duo_p2_enroll_free(en[i]);
            st = enrol_start_only(&c2, tok, &en[i], &m1, &res);
            if (!(st == GRPC_STATUS_UNAVAILABLE && res.duo_err == DUO_E_SERVER_BUSY && strstr(res.detail, "Paillier")))
                break;
            sleep(1);
        }
        if (i < 2) {
            DUO_CHECK_MSG(st == 0, "enrolment %d: status %d %s", i, st, res.detail);
        } else {
            DUO_CHECK_MSG(st == GRPC_STATUS_UNAVAILABLE && res.duo_err == DUO_E_SERVER_BUSY &&
                              strstr(res.detail, "from this address") && res.retry_after > 0,
                          "third enrolment from one peer: status %d duo %d %s", st, res.duo_err, res.detail);
        }
    }
    /* Signing is not starved by the enrolments in progress. */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    uint8_t d[32];
    digest_of(d, "caps", 0);
    DUO_CHECK_MSG(dev_sign(&c2, &dv, PIN, d, &sr) == 0, "sign beside enrolments: %s", sr.res.detail);
    for (int i = 0; i < 3; i++) duo_p2_enroll_free(en[i]);
    device_free(&dv);
    client_close(&c2);
    DUO_CHECK(daemon_stop(&d2) == 0);
}

/* A daemon whose pool holds one key: the first EnrollStart takes it, the
 * next finds none ready and is told to come back, without a key made on the
 * request thread. */
static void test_pool_empty(void) {
    daemon_t d2;
    client c2;
    DUO_REQUIRE(daemon_start(&d2, "--prime-pool 1") == 0);
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    device dv;
    DUO_REQUIRE(enrol_new(&c2, &dv, "pool-signer") == 0); /* waits for the pool through the retry hint */
    char ta[128];
    issue_token(ta, sizeof ta, "pool-a", 600);
    enum { TAKERS = 8 };
    duo_p2_enroll *ea = NULL, *eb[TAKERS] = {NULL};
    duo_enroll_start_resp m1;
    rpc_result res;
    int st = -1;
    /* Take the ready key (wait for it if the refill after the first enrolment still runs). */
    for (int tries = 0; tries < 600; tries++) {
        duo_p2_enroll_free(ea);
        st = enrol_start_only(&c2, ta, &ea, &m1, &res);
        if (!(st == GRPC_STATUS_UNAVAILABLE && res.retry_after > 0)) break;
        sleep(1);
    }
    DUO_CHECK_MSG(st == 0, "first start: %d %s", st, res.detail);
    /* The pool is empty now: the refill (prime generation) has just begun.
     * Should a refill win the race with the next call anyway, that start
     * takes the new key too and the next token tries again: the machine's
     * speed decides how many tries, not whether the check holds. */
    for (int i = 0; i < TAKERS; i++) {
        char tb[128], who[32];
        snprintf(who, sizeof who, "pool-b%d", i);
        issue_token(tb, sizeof tb, who, 600);
        st = enrol_start_only(&c2, tb, &eb[i], &m1, &res);
        if (st != 0) break;
    }
    DUO_CHECK_MSG(st == GRPC_STATUS_UNAVAILABLE && res.duo_err == DUO_E_SERVER_BUSY && res.retry_after > 0 &&
                      strstr(res.detail, "retry"),
                  "start with the pool empty: status %d duo %d retry-after %lld %s", st, res.duo_err, res.retry_after,
                  res.detail);
    /* Signing does not wait for key generation. */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    uint8_t d[32];
    digest_of(d, "pool", 0);
    DUO_CHECK(dev_sign(&c2, &dv, PIN, d, &sr) == 0);
    duo_p2_enroll_free(ea);
    for (int i = 0; i < TAKERS; i++) duo_p2_enroll_free(eb[i]);
    device_free(&dv);
    client_close(&c2);
    DUO_CHECK(daemon_stop(&d2) == 0);
}

static void test_stale_start(client *c) {
    device dv;
    DUO_REQUIRE(enrol_new(c, &dv, "stale") == 0);
    uint8_t d[32];
    digest_of(d, "stale", 0);
    /* SignStart whose answer the device never sees; round 2 kept for a late finish below. */
    duo_p2_sign *s1 = NULL;
    duo_sign_finish_req m2;
    rpc_result res;
    DUO_REQUIRE(dev_sign_open(c, &dv, d, &s1, &m2, &res) == 0);
    /* The device starts again at once: not SESSION_BUSY. */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    DUO_CHECK_MSG(dev_sign(c, &dv, PIN, d, &sr) == 0, "second start: %d/%d duo %d %s", sr.start_st, sr.finish_st,
                  sr.res.duo_err, sr.res.detail);
    DUO_CHECK(openssl_verify(&dv, d, sr.sig));
    /* The stale session's round 2 is refused as superseded. */
    duo_sign_finish_resp m3;
    int st = CALL(c, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &res);
    DUO_CHECK_MSG(st != 0 && res.duo_err == DUO_E_SESSION_SUPERSEDED, "stale finish: %d duo %d %s", st, res.duo_err,
                  res.detail);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s1);
    /* The key still signs. */
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(c, &dv, PIN, d, &sr) == 0);
    device_free(&dv);
}

static void test_second_daemon(void) {
    char out[2048];
    int rc =
        run_cmd(out, sizeof out, "'%s' serve --data '%s' --listen 127.0.0.1:0 --paillier-bits 2048 2>&1", g_bin, g_dir);
    DUO_CHECK_MSG(rc != 0 && strstr(out, "already serving"), "second daemon: exit %d: %.600s", rc, out);
}

/* Holds SQLite's write lock on the daemon's database from this process. */
static sqlite3 *hold_write_lock(void) {
    char path[512];
    sqlite3 *db = NULL;
    snprintf(path, sizeof path, "%s/keys.db", g_dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) return NULL;
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

/* The state `key show` prints for dv's key. */
static void key_state(char *out, size_t cap, const device *dv) {
    char id[33];
    key_hex(id, dv);
    if (run_cmd(out, cap, "'%s' key show --data '%s' %s 2>&1 | grep -i '^ *state'", g_bin, g_dir, id) != 0)
        snprintf(out, cap, "?");
}

/* Lindell's abort rule, failing closed: a device with the right PIN sends a
 * bad c3 while the store refuses writes (another process holds it). The
 * freeze cannot be stored, yet the key signs nothing afterwards, and the
 * freeze is stored on the next attempt. */
static void test_freeze_closed(client *c) {
    device dv;
    DUO_REQUIRE(enrol_new(c, &dv, "freeze-closed") == 0);
    uint8_t d[32];
    digest_of(d, "freeze", 0);
    duo_p2_sign *s = NULL;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    rpc_result res;
    DUO_REQUIRE(dev_sign_open(c, &dv, d, &s, &m2, &res) == 0);
    uint8_t mi[32];
    ((uint8_t *)m2.c3.ptr)[m2.c3.len - 1] ^= 1;
    DUO_REQUIRE(duo_wire_mac_input_sign_finish(mi, &m2) == DUO_OK &&
                duo_mac_compute(m2.mac, dv.key->device_secret, mi) == DUO_OK);
    sqlite3 *db = hold_write_lock();
    DUO_REQUIRE(db != NULL);
    int st = CALL(c, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &res);
    DUO_CHECK_MSG(st != 0 && res.duo_err == DUO_E_PEER_CHEATED, "cheating finish: %d duo %d %s", st, res.duo_err,
                  res.detail);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    /* The store works again; the key must not sign. */
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    DUO_CHECK_MSG(dev_sign(c, &dv, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_SUSPENDED,
                  "signing after a failed freeze: %d/%d duo %d %s", sr.start_st, sr.finish_st, sr.res.duo_err,
                  sr.res.detail);
    char state[256];
    key_state(state, sizeof state, &dv);
    DUO_CHECK_MSG(strstr(state, "suspended") != NULL, "stored state after the retry: %s", state);
    DUO_CHECK(audit_count("attack.suspected", "freeze-closed") == 1);
    device_free(&dv);
}

static void test_store_errors(const char *log) {
    daemon_t d2;
    client c2;
    char args[600];
    snprintf(args, sizeof args, "--store-busy-ms 200 2>>'%s'", log);
    DUO_REQUIRE(daemon_start(&d2, args) == 0);
    DUO_REQUIRE(client_open(&c2, d2.port) == 0);
    device dv;
    DUO_REQUIRE(enrol_new(&c2, &dv, "store-err") == 0);
    sqlite3 *db = hold_write_lock();
    DUO_REQUIRE(db != NULL);
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    uint8_t d[32];
    digest_of(d, "store", 0);
    DUO_CHECK(dev_sign(&c2, &dv, PIN, d, &sr) != 0);
    DUO_CHECK_MSG((sr.res.duo_err == DUO_E_STORE || sr.res.duo_err == DUO_E_TIMEOUT) &&
                      strstr(sr.res.detail, "storage"),
                  "signing with the store locked: duo %d %s", sr.res.duo_err, sr.res.detail);
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
    /* The operator sees the reason in the daemon's log. */
    char out[1024];
    DUO_CHECK_MSG(run_cmd(out, sizeof out, "grep -c 'store error.*database is locked' '%s'", log) == 0 &&
                      atoi(out) >= 1,
                  "store error lines in the log: %.600s", out);
    /* And the device recovers once the store is back. */
    for (int tries = 0; tries < 3; tries++) {
        memset(&sr, 0, sizeof sr);
        if (dev_sign(&c2, &dv, PIN, d, &sr) == 0) break;
    }
    DUO_CHECK(sr.start_st == 0 && sr.finish_st == 0);
    device_free(&dv);
    test_freeze_closed(&c2);
    client_close(&c2);
    DUO_CHECK(daemon_stop(&d2) == 0);
}

/* Copies the data directory to a sibling and returns its path in dst. */
static int copy_data(char *dst, size_t cap, const char *name) {
    snprintf(dst, cap, "%s/%s", g_parent, name);
    return run_cmd(NULL, 0, "rm -rf '%s' && cp -a '%s' '%s'", dst, g_dir, dst);
}

static void test_corrupt_store(void) {
    char dir[512], out[2048];
    DUO_REQUIRE(copy_data(dir, sizeof dir, "corrupt") == 0);
    /* A page in the middle of the key table overwritten, as a bad sector would. */
    DUO_REQUIRE(run_cmd(NULL, 0,
                        "printf '%%4096s' | tr ' ' '\\377' | dd of='%s/keys.db' bs=4096 seek=3 conv=notrunc "
                        "2>/dev/null",
                        dir) == 0);
    int rc =
        run_cmd(out, sizeof out, "'%s' serve --data '%s' --listen 127.0.0.1:0 --paillier-bits 2048 2>&1", g_bin, dir);
    DUO_CHECK_MSG(rc != 0 && strstr(out, "integrity check"), "damaged store: exit %d: %.600s", rc, out);
}

static void test_readonly_dir(void) {
    char dir[512], out[2048];
    DUO_REQUIRE(copy_data(dir, sizeof dir, "readonly") == 0);
    /* Root ignores permission bits: run the daemon as nobody then. */
    const char *as = "";
    if (geteuid() == 0) {
        DUO_REQUIRE(run_cmd(NULL, 0, "chown -R nobody '%s' && chmod 755 '%s'", dir, g_parent) == 0);
        as = "setpriv --reuid=nobody --regid=nogroup --clear-groups ";
    }
    DUO_REQUIRE(run_cmd(NULL, 0, "rm -f '%s'/keys.db-wal '%s'/keys.db-shm; chmod 500 '%s'", dir, dir, dir) == 0);
    int rc = run_cmd(out, sizeof out, "%s'%s' serve --data '%s' --listen 127.0.0.1:0 --paillier-bits 2048 2>&1", as,
                     g_bin, dir);
    DUO_CHECK_MSG(rc != 0 && strstr(out, "not writable"), "read-only data directory: exit %d: %.600s", rc, out);
    run_cmd(NULL, 0, "chmod 700 '%s'", dir);
}

int main(int argc, char **argv) {
    daemon_t d;
    client c;
    int rc = it_setup(argc, argv, "duo-hardening", &d, &c);
    if (rc != 0) return rc;
    char log[512];
    snprintf(log, sizeof log, "%s/daemon.log", g_parent);
    test_second_daemon();
    test_enrol_flood(&c);
    test_stale_start(&c);
    client_close(&c);
    DUO_CHECK(daemon_stop(&d) == 0);
    test_enrol_caps();
    test_pool_empty();
    test_store_errors(log);
    test_corrupt_store();
    test_readonly_dir();
    if (daemon_start(&d, NULL) != 0 || client_open(&c, d.port) != 0) {
        fprintf(stderr, "cannot restart the daemon\n");
        return 1;
    }
    return it_finish(&d, &c);
}
