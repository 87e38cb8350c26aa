/* duosign-pg-nodes-bench: signing throughput with one node and with three
 * on one PostgreSQL (issue 20 figures), run through
 * tests/integration/pg/pg_env.sh by scripts/bench.sh --pg.
 *
 *   pg_env.sh duosign-pg-nodes-bench PATH/TO/duosign-cloud NODES [DEVICES [SIGS]]
 *
 * DEVICES devices (default 8, enrolled first, not timed) each sign SIGS
 * times (default 8) at once; with three nodes each signature's round 1 goes
 * to one node and its round 2 to the next (sessions in the store), with one
 * node both rounds go to it. Prints one JSON line: nodes, signatures, wall
 * seconds, signatures per second. Never asserts a figure; exits non-zero if
 * a signature fails or does not verify. */
#define PIN "4321"
#include <pthread.h>
#include <time.h>

#include "daemon_client.h"
#include "pg_nodes.h"

typedef struct {
    int k, nodes, sigs, bad;
    device dv;
    client cl[PG_NODES_MAX];
    pthread_barrier_t *bar;
} job;

static void *run(void *arg) {
    job *j = arg;
    pthread_barrier_wait(j->bar);
    for (int i = 0; i < j->sigs; i++) {
        int a = (j->k + i) % j->nodes, b = (a + 1) % j->nodes;
        uint8_t d[32];
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        sr.finish_cl = &j->cl[b];
        digest_of(d, "bench", j->k * 10000 + i);
        if (dev_sign(&j->cl[a], &j->dv, PIN, d, &sr) != 0 || !openssl_verify(&j->dv, d, sr.sig)) {
            fprintf(stderr, "device %d signature %d: %s\n", j->k, i, sr.res.detail);
            j->bad++;
        }
    }
    return NULL;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    client cl0;
    if (argc < 3 || getenv("DUO_TEST_PG_URL") == NULL) {
        fprintf(stderr, "usage (through pg_env.sh): %s DUOSIGN-CLOUD NODES [DEVICES [SIGS]]\n", argv[0]);
        return 2;
    }
    int nodes = atoi(argv[2]), devices = argc > 3 ? atoi(argv[3]) : 8, sigs = argc > 4 ? atoi(argv[4]) : 8;
    if (nodes < 1 || nodes > PG_NODES_MAX || devices < 1 || devices > 256 || sigs < 1) return 2;
    int rc = it_setup(2, argv, "duo-pg-bench", &g_node[0], &cl0);
    if (rc != 0) return rc;
    client_close(&cl0);
    if (pg_nodes_up(nodes, "--paillier-bits 2048 --prime-pool 2 --workers 4 --session-ttl 300") != 0 ||
        client_open(&cl0, g_node_port[0]) != 0)
        return 1;
    job *jobs = calloc((size_t)devices, sizeof *jobs);
    pthread_t *th = calloc((size_t)devices, sizeof *th);
    pthread_barrier_t bar;
    if (!jobs || !th) return 1;
    pthread_barrier_init(&bar, NULL, (unsigned)devices + 1);
    for (int k = 0; k < devices; k++) {
        char cit[32];
        snprintf(cit, sizeof cit, "BENCH%d", k);
        jobs[k] = (job){.k = k, .nodes = nodes, .sigs = sigs, .bar = &bar};
        if (enrol_new(&cl0, &jobs[k].dv, cit) != 0) return 1;
        for (int n = 0; n < nodes; n++)
            if (client_open(&jobs[k].cl[n], g_node_port[n]) != 0) return 1;
        if (pthread_create(&th[k], NULL, run, &jobs[k]) != 0) return 1;
    }
    pthread_barrier_wait(&bar);
    double t0 = now_s();
    int bad = 0;
    for (int k = 0; k < devices; k++) {
        pthread_join(th[k], NULL);
        bad += jobs[k].bad;
    }
    double wall = now_s() - t0;
    int total = devices * sigs;
    printf("{\"bench\": \"pg-nodes\", \"nodes\": %d, \"devices\": %d, \"signatures\": %d, \"failed\": %d, "
           "\"wall_s\": %.3f, \"per_s\": %.3f}\n",
           nodes, devices, total, bad, wall, (total - bad) / wall);
    for (int k = 0; k < devices; k++) {
        for (int n = 0; n < nodes; n++) client_close(&jobs[k].cl[n]);
        device_free(&jobs[k].dv);
    }
    free(jobs);
    free(th);
    pthread_barrier_destroy(&bar);
    if (pg_nodes_down(nodes) != 0) bad++;
    rc = it_finish(&g_node[0], &cl0);
    return bad ? 1 : rc;
}
