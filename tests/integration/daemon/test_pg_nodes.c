/* Three signer nodes on one PostgreSQL (issue 20): run through
 * tests/integration/pg/pg_env.sh, which gives DUO_TEST_PG_URL.
 *
 * 1. Signatures hop across nodes: each device starts on node k % 3 and
 *    finishes on the next node (signing sessions are kept in the store), so
 *    every signature depends on the device secret the previous one stored
 *    through another node; one node is killed -9 between signatures and
 *    restarted. Every signature is verified by OpenSSL; none is refused (0
 *    false clone detections); none acknowledged is lost (the next one, on
 *    another node, needs its rotation).
 * 2. Ten wrong PINs at once across the three nodes (each sent again while
 *    another's session holds the key): exactly three are counted, the other
 *    seven meet the lock; every wrong PIN answered is counted exactly once in
 *    the database (the audit has failures #1, #2
 *    and the lock at #3, each once, and as many entries as answers), the key
 *    is locked, and every node refuses it.
 * 3. Signing sessions in the store (DESIGN 8.6): round 1 on node A, round 2
 *    on node B for every pair; the round 2 replayed on C (and on A) is
 *    refused as already used and changes nothing; node A killed -9 between
 *    the rounds: round 2 on B still signs; a newer start on another node
 *    supersedes the older session; a stored session edited in the database
 *    (a byte of its sealed state, or another row's state moved in, or its
 *    expiry) is refused with the specific error and the key still signs. */
#define PIN "4321"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "daemon_client.h"

#define NODES 3
#define DEVICES 6
#define ROUNDS 6

static char g_dirs[NODES][300];
static daemon_t g_d[NODES];
static client g_cl[NODES];

static int node_start(int i) {
    char args[256];
    snprintf(args, sizeof args, "--paillier-bits %d --prime-pool 2 --grace 2 --workers 4", BITS);
    if (duo_it_daemon_start(&g_d[i], g_bin, g_dirs[i], 0, args) != 0) return -1;
    return client_open(&g_cl[i], g_d[i].port);
}

static void node_kill9(int i) {
    client_close(&g_cl[i]);
    g_cl[i].ch = NULL;
    kill(g_d[i].pid, SIGKILL);
    waitpid(g_d[i].pid, NULL, 0);
}

static void test_signatures_hop_nodes(void) {
    device dv[DEVICES];
    int good = 0, kills = 0;
    memset(dv, 0, sizeof dv);
    for (int k = 0; k < DEVICES; k++) {
        char cit[32];
        snprintf(cit, sizeof cit, "HOP%d", k);
        DUO_REQUIRE(enrol_new(&g_cl[k % NODES], &dv[k], cit) == 0);
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < DEVICES; k++) {
            int n = (round + k) % NODES;
            uint8_t d[32];
            sign_run sr;
            memset(&sr, 0, sizeof sr);
            sr.finish_cl = &g_cl[(n + 1) % NODES];
            digest_of(d, "hop", round * DEVICES + k);
            int rc = dev_sign(&g_cl[n], &dv[k], PIN, d, &sr);
            if (rc != 0)
                fprintf(stderr, "# device %d round %d node %d: start %d finish %d: %s\n", k, round, n, sr.start_st,
                        sr.finish_st, sr.res.detail);
            DUO_CHECK(rc == 0 && openssl_verify(&dv[k], d, sr.sig));
            good += rc == 0;
        }
        /* a node dies between signatures; the others carry on, it comes back */
        int victim = round % NODES;
        node_kill9(victim);
        kills++;
        DUO_REQUIRE(node_start(victim) == 0);
    }
    DUO_CHECK(good == ROUNDS * DEVICES);
    fprintf(stderr, "# %d signatures across %d nodes, %d kill -9, all verified by OpenSSL\n", good, NODES, kills);
    for (int k = 0; k < DEVICES; k++) device_free(&dv[k]);
}

typedef struct {
    device *dv;
    int node, index;
    pthread_barrier_t *bar;
    int start_st, finish_st, err;
} wrong_job;

/* Which senders of the ten have their answer: after the first burst, a
 * sender whose session was superseded (or found the key busy) sends again
 * only once every lower-numbered sender is answered, so the retries run one
 * at a time and end (racing retries would supersede each other forever). */
static pthread_mutex_t g_ans_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_ans_cv = PTHREAD_COND_INITIALIZER;
static int g_answered[16];

static void wait_turn(int index) {
    pthread_mutex_lock(&g_ans_mu);
    for (;;) {
        int first = 0;
        while (first < index && g_answered[first]) first++;
        if (first == index) break;
        pthread_cond_wait(&g_ans_cv, &g_ans_mu);
    }
    pthread_mutex_unlock(&g_ans_mu);
}

static void answered(int index) {
    pthread_mutex_lock(&g_ans_mu);
    g_answered[index] = 1;
    pthread_cond_broadcast(&g_ans_cv);
    pthread_mutex_unlock(&g_ans_mu);
}

static void *wrong_pin(void *arg) {
    wrong_job *j = arg;
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "wrong", j->node);
    pthread_barrier_wait(j->bar);
    /* One live signing session per key on all nodes (DESIGN 3.3, 8.6): a
     * racing start supersedes another's session, or finds it busy. Each
     * request is sent again until it gets an answer on its PIN (bounded). */
    for (int tries = 0; tries < 200; tries++) {
        if (tries > 0) wait_turn(j->index);
        if (sr.res.duo_err == DUO_E_SESSION_BUSY) usleep(50 * 1000); /* a round 2 is running: let it end */
        memset(&sr, 0, sizeof sr);
        dev_sign(&g_cl[j->node], j->dv, "0000", d, &sr);
        if (sr.res.duo_err != DUO_E_SESSION_SUPERSEDED && sr.res.duo_err != DUO_E_SESSION_BUSY) break;
    }
    answered(j->index);
    j->start_st = sr.start_st;
    j->finish_st = sr.finish_st;
    j->err = sr.res.duo_err;
    return NULL;
}

/* Audit entries of kind for the key (audit list output). */
static int audit_count_kind(const char *kh, const char *kind, const char *detail) {
    char out[64];
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' audit list --data '%s' | grep -F '%s' | grep -F ' %s ' | grep -cF '%s'", g_bin,
             g_dirs[0], kh, kind, detail ? detail : "");
    run_cmd(out, sizeof out, "%s", cmd);
    return atoi(out);
}

static void test_wrong_pins_at_once(void) {
    enum { N = 10 };
    device dv;
    wrong_job jobs[N];
    pthread_t th[N];
    pthread_barrier_t bar;
    char kh[33];
    int wrong = 0, locked = 0;
    DUO_REQUIRE(enrol_new(&g_cl[0], &dv, "WRONG1") == 0);
    key_hex(kh, &dv);
    pthread_barrier_init(&bar, NULL, N);
    for (int i = 0; i < N; i++) {
        jobs[i] = (wrong_job){.dv = &dv, .node = i % NODES, .index = i, .bar = &bar};
        DUO_REQUIRE(pthread_create(&th[i], NULL, wrong_pin, &jobs[i]) == 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].finish_st == GRPC_STATUS_PERMISSION_DENIED && jobs[i].err == DUO_E_WRONG_PIN) wrong++;
        if (jobs[i].err == DUO_E_KEY_LOCKED) locked++;
        fprintf(stderr, "# wrong PIN %d on node %d: start %d finish %d err %d\n", i, jobs[i].node, jobs[i].start_st,
                jobs[i].finish_st, jobs[i].err);
    }
    pthread_barrier_destroy(&bar);
    /* every answered wrong PIN counted once, in order, the lock at #3 */
    int failures = audit_count_kind(kh, "pin.failure", NULL);
    int locks = audit_count_kind(kh, "key.lock", NULL);
    fprintf(stderr, "# %d wrong PINs answered, %d refused as locked; audit: %d failures, %d locks\n", wrong, locked,
            failures, locks);
    DUO_CHECK(wrong == 3 && locked == N - wrong && failures + locks == wrong);
    DUO_CHECK(audit_count_kind(kh, "pin.failure", "wrong PIN #1") == 1);
    DUO_CHECK(audit_count_kind(kh, "pin.failure", "wrong PIN #2") == 1);
    DUO_CHECK(audit_count_kind(kh, "key.lock", "wrong PIN #3:") == 1);
    /* the lock holds on every node, with the right PIN too */
    for (int n = 0; n < NODES; n++) {
        uint8_t d[32];
        sign_run sr;
        duo_status_resp so;
        rpc_result res;
        memset(&sr, 0, sizeof sr);
        digest_of(d, "after-lock", n);
        DUO_CHECK(dev_sign(&g_cl[n], &dv, PIN, d, &sr) != 0 && sr.res.duo_err == DUO_E_KEY_LOCKED);
        DUO_CHECK(dev_status(&g_cl[n], &dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_LOCKED);
    }
    device_free(&dv);
}

/* ---- 3. signing sessions in the store ---- */

/* Round 2 of an opened session (dev_sign_open) on client c; on success the
 * device rotates its secret and sig holds the signature. Returns the gRPC
 * status (res: the error). Frees s and m2. */
static int finish_on(client *c, device *dv, duo_p2_sign *s, duo_sign_finish_req *m2, uint8_t sig[64], rpc_result *res) {
    duo_sign_finish_resp m3;
    uint8_t next[32];
    int st = CALL(c, "SignFinish", sign_finish_req, m2, sign_finish_resp, &m3, res);
    if (st == 0 && (duo_p2_sign_on_finish(s, &m3, sig) != DUO_OK ||
                    duo_secret_rotate(next, dv->key->device_secret, duo_p2_sign_sid(s), m3.rotate_seed) != DUO_OK))
        st = -3;
    if (st == 0) memcpy(dv->key->device_secret, next, 32);
    duo_wire_free_sign_finish_req(m2);
    duo_p2_sign_free(s);
    return st;
}

/* One full signature starting on node a and finishing on node b. */
static int sign_across(device *dv, int a, int b, const char *what, int i) {
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.finish_cl = &g_cl[b];
    digest_of(d, what, i);
    if (dev_sign(&g_cl[a], dv, PIN, d, &sr) != 0) {
        fprintf(stderr, "# %s %d: start %d finish %d: %s\n", what, i, sr.start_st, sr.finish_st, sr.res.detail);
        return -1;
    }
    return openssl_verify(dv, d, sr.sig) ? 0 : -1;
}

static void test_round2_on_another_node(void) {
    device dv;
    char kh[33];
    DUO_REQUIRE(enrol_new(&g_cl[0], &dv, "XNODE1") == 0);
    key_hex(kh, &dv);
    int pairs = 0;
    for (int a = 0; a < NODES; a++)
        for (int b = 0; b < NODES; b++) {
            if (a == b) continue;
            uint8_t d[32];
            sign_run sr;
            rpc_result res;
            memset(&sr, 0, sizeof sr);
            sr.finish_cl = &g_cl[b];
            sr.keep_finish = 1;
            digest_of(d, "xnode", a * NODES + b);
            DUO_REQUIRE(dev_sign(&g_cl[a], &dv, PIN, d, &sr) == 0);
            DUO_CHECK(openssl_verify(&dv, d, sr.sig));
            /* the same round 2 replayed on the third node and on the first */
            int c = 3 - a - b;
            for (int k = 0; k < 2; k++) {
                uint8_t *o = NULL;
                size_t ol = 0;
                memset(&res, 0, sizeof res);
                rpc(&g_cl[k == 0 ? c : a], M("SignFinish"), sr.finish_bytes, sr.finish_len, &o, &ol, &res);
                free(o);
                DUO_CHECK(res.status != 0 && res.duo_err == DUO_E_PROTO_STATE);
            }
            free(sr.finish_bytes);
            pairs++;
        }
    /* the replays changed nothing: the device still signs, and the audit
     * has one signature per pair */
    DUO_CHECK(sign_across(&dv, 2, 0, "xnode-after", 0) == 0);
    DUO_CHECK(audit_count_kind(kh, "sign", "round 2 accepted") == pairs + 1);
    DUO_CHECK(audit_count_kind(kh, "pin.failure", NULL) == 0);
    device_free(&dv);
}

static void test_kill_between_rounds(void) {
    device dv;
    duo_p2_sign *s = NULL;
    duo_sign_finish_req m2;
    rpc_result res;
    uint8_t d[32], sig[64];
    DUO_REQUIRE(enrol_new(&g_cl[1], &dv, "XKILL1") == 0);
    for (int victim = 0; victim < NODES; victim++) {
        int other = (victim + 1) % NODES;
        digest_of(d, "xkill", victim);
        DUO_REQUIRE(dev_sign_open(&g_cl[victim], &dv, d, &s, &m2, &res) == 0);
        node_kill9(victim);
        DUO_CHECK(finish_on(&g_cl[other], &dv, s, &m2, sig, &res) == 0 && openssl_verify(&dv, d, sig));
        DUO_REQUIRE(node_start(victim) == 0);
    }
    DUO_CHECK(sign_across(&dv, 0, 2, "xkill-after", 0) == 0);
    device_free(&dv);
}

static void test_newer_start_supersedes(void) {
    device dv;
    duo_p2_sign *s1 = NULL, *s2 = NULL;
    duo_sign_finish_req m2a, m2b;
    rpc_result res;
    uint8_t d[32], sig[64];
    DUO_REQUIRE(enrol_new(&g_cl[2], &dv, "XSUP1") == 0);
    digest_of(d, "xsup", 1);
    DUO_REQUIRE(dev_sign_open(&g_cl[0], &dv, d, &s1, &m2a, &res) == 0);
    digest_of(d, "xsup", 2);
    DUO_REQUIRE(dev_sign_open(&g_cl[1], &dv, d, &s2, &m2b, &res) == 0);
    memset(&res, 0, sizeof res);
    DUO_CHECK(finish_on(&g_cl[2], &dv, s1, &m2a, sig, &res) != 0 && res.duo_err == DUO_E_SESSION_SUPERSEDED);
    DUO_CHECK(finish_on(&g_cl[2], &dv, s2, &m2b, sig, &res) == 0 && openssl_verify(&dv, d, sig));
    device_free(&dv);
}

/* Runs SQL on the test database (psql). */
static int sql(const char *stmt) {
    return run_cmd(NULL, 0, "psql '%s' -qAtX -v ON_ERROR_STOP=1 -c \"%s\" >/dev/null", getenv("DUO_TEST_PG_URL"), stmt);
}

enum { EDIT_BYTE, EDIT_MOVED, EDIT_EXPIRY };

/* The SQL of one edit of the row of sid (hex); other: another row's sid. */
static void edit_sql(char *stmt, size_t cap, int edit, const char *sid, const char *other) {
    if (edit == EDIT_BYTE)
        snprintf(stmt, cap,
                 "UPDATE sign_sessions SET sealed = set_byte(sealed, 40, get_byte(sealed, 40) # 1)"
                 " WHERE sid = decode('%s', 'hex')",
                 sid);
    else if (edit == EDIT_MOVED)
        snprintf(stmt, cap,
                 "UPDATE sign_sessions SET sealed = (SELECT sealed FROM sign_sessions WHERE sid = decode('%s', 'hex'))"
                 " WHERE sid = decode('%s', 'hex')",
                 other, sid);
    else
        snprintf(stmt, cap, "UPDATE sign_sessions SET expires_at = 1 WHERE sid = decode('%s', 'hex')", sid);
}

/* A session opened on node 0, its row edited, round 2 on node 1: refused
 * with want, and the key signs on afterwards (nothing was counted or
 * rotated). */
static void tampered_case(device *dv, int edit, const char *other, int want, int i) {
    duo_p2_sign *s = NULL;
    duo_sign_finish_req m2;
    rpc_result res;
    uint8_t d[32], sig[64];
    char hex[65], stmt[1024];
    digest_of(d, "xtamper", i);
    DUO_REQUIRE(dev_sign_open(&g_cl[0], dv, d, &s, &m2, &res) == 0);
    for (int k = 0; k < 32; k++) snprintf(hex + 2 * k, 3, "%02x", m2.sid[k]);
    edit_sql(stmt, sizeof stmt, edit, hex, other);
    DUO_REQUIRE(sql(stmt) == 0);
    memset(&res, 0, sizeof res);
    DUO_CHECK(finish_on(&g_cl[1], dv, s, &m2, sig, &res) != 0);
    if (res.duo_err != want) fprintf(stderr, "# tamper %d: got %d (%s), want %d\n", i, res.duo_err, res.detail, want);
    DUO_CHECK(res.duo_err == want);
    DUO_CHECK(sign_across(dv, 2, 1, "xtamper-after", i) == 0);
}

static void test_stored_session_tampered(void) {
    device dv, other;
    duo_p2_sign *s = NULL;
    duo_sign_finish_req m2;
    rpc_result res;
    uint8_t d[32];
    char ohex[65], kh[33];
    DUO_REQUIRE(enrol_new(&g_cl[0], &dv, "XTAMP1") == 0);
    DUO_REQUIRE(enrol_new(&g_cl[0], &other, "XTAMP2") == 0);
    key_hex(kh, &dv);
    /* a byte of the sealed state */
    tampered_case(&dv, EDIT_BYTE, NULL, DUO_E_STATE_CORRUPT, 0);
    /* another live session's sealed state moved into this row (AAD: key id || sid) */
    digest_of(d, "xtamper-other", 0);
    DUO_REQUIRE(dev_sign_open(&g_cl[2], &other, d, &s, &m2, &res) == 0);
    for (int k = 0; k < 32; k++) snprintf(ohex + 2 * k, 3, "%02x", m2.sid[k]);
    tampered_case(&dv, EDIT_MOVED, ohex, DUO_E_STATE_CORRUPT, 1);
    /* its expiry moved into the past */
    tampered_case(&dv, EDIT_EXPIRY, NULL, DUO_E_SESSION_EXPIRED, 2);
    /* the other device's session was untouched: it still finishes, anywhere */
    uint8_t sig[64];
    DUO_CHECK(finish_on(&g_cl[1], &other, s, &m2, sig, &res) == 0 && openssl_verify(&other, d, sig));
    DUO_CHECK(audit_count_kind(kh, "pin.failure", NULL) == 0);
    device_free(&dv);
    device_free(&other);
}

int main(int argc, char **argv) {
    if (getenv("DUO_TEST_PG_URL") == NULL) {
        fprintf(stderr, "DUO_TEST_PG_URL is not set: run through tests/integration/pg/pg_env.sh\n");
        return 1;
    }
    int rc = it_setup(argc, argv, "duo-pg-nodes", &g_d[0], &g_cl[0]);
    if (rc != 0) return rc;
    /* nodes 1 and 2: their own data directories with the same KEK, TLS files
     * and store URL (a copy of node 0's) */
    snprintf(g_dirs[0], sizeof g_dirs[0], "%s", g_dir);
    for (int i = 1; i < NODES; i++) {
        snprintf(g_dirs[i], sizeof g_dirs[i], "%s%d", g_dir, i);
        if (run_cmd(NULL, 0, "cp -a '%s' '%s' && rm -f '%s/serve.lock'", g_dir, g_dirs[i], g_dirs[i]) != 0 ||
            node_start(i) != 0) {
            fprintf(stderr, "cannot start node %d\n", i);
            return 1;
        }
    }
    DUO_RUN(test_signatures_hop_nodes);
    DUO_RUN(test_wrong_pins_at_once);
    DUO_RUN(test_round2_on_another_node);
    DUO_RUN(test_kill_between_rounds);
    DUO_RUN(test_newer_start_supersedes);
    DUO_RUN(test_stored_session_tampered);
    for (int i = 1; i < NODES; i++) {
        client_close(&g_cl[i]);
        DUO_CHECK(daemon_stop(&g_d[i]) == 0);
    }
    return it_finish(&g_d[0], &g_cl[0]);
}
