/* Three signer nodes on one PostgreSQL (issue 20): run through
 * tests/integration/pg/pg_env.sh, which gives DUO_TEST_PG_URL.
 *
 * 1. Signatures hop across nodes: each device signs on node k % 3 (both
 *    rounds on that node: signing sessions are still per node, see the
 *    daemon README), so every signature depends on the device secret the
 *    previous one stored through another node; one node is killed -9 between
 *    signatures and restarted. Every signature is verified by OpenSSL; none is
 *    refused (0 false clone detections); none acknowledged is lost (the next
 *    one, on another node, needs its rotation).
 * 2. Ten wrong PINs at once across the three nodes: every wrong PIN answered
 *    is counted exactly once in the database (the audit has failures #1, #2
 *    and the lock at #3, each once, and as many entries as answers), the key
 *    is locked, and every node refuses it. */
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
    int node;
    pthread_barrier_t *bar;
    int start_st, finish_st, err;
} wrong_job;

static void *wrong_pin(void *arg) {
    wrong_job *j = arg;
    uint8_t d[32];
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    digest_of(d, "wrong", j->node);
    pthread_barrier_wait(j->bar);
    dev_sign(&g_cl[j->node], j->dv, "0000", d, &sr);
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
        jobs[i] = (wrong_job){.dv = &dv, .node = i % NODES, .bar = &bar};
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
    DUO_CHECK(wrong >= 3 && failures + locks == wrong);
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
    for (int i = 1; i < NODES; i++) {
        client_close(&g_cl[i]);
        DUO_CHECK(daemon_stop(&g_d[i]) == 0);
    }
    return it_finish(&g_d[0], &g_cl[0]);
}
