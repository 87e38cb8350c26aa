/* Kills under load (issue 20): three signer nodes on one PostgreSQL (run
 * through tests/integration/pg/pg_env.sh), DUO_KILL_DEVICES (default 32)
 * devices signing at once, each signature's round 1 on one node and its
 * round 2 on the next (sessions kept in the store), while a node chosen at
 * random (seed printed; DUO_KILL_SEED to replay) is killed -9 and restarted
 * on its port, DUO_KILL_KILLS (default 20) times, one kill every
 * KILL_EVERY accepted signatures (paced by signatures, never by time).
 *
 * The devices enrol at once, each on its own node (every node's prime pool
 * works); the kills begin when all are enrolled. Enrolment dominates the
 * run time (a 2048-bit Paillier key per device).
 *
 * A device retries what a dying node broke (UNAVAILABLE, a session lost
 * with its node); anything else is a failure. At the end:
 *  - every accepted signature verifies with OpenSSL, and its r is in the
 *    audit exactly once (0 lost, 0 released twice);
 *  - the audit has no more signatures than were accepted plus round 2s whose
 *    answer was lost with a node;
 *  - 0 false clone detections, 0 PIN failures counted (every PIN was
 *    right), every key active, and every device signs once more on every
 *    node. */
#define PIN "4321"
#include <pthread.h>
#include "daemon_client.h"
#include "pg_nodes.h"

#define NODES 3
#define KILL_EVERY 6
#define SIGS_MAX 512 /* per device */

static client g_cl0;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_accepted; /* under g_mu */
static int g_enrolled; /* under g_mu */
static int g_exited;   /* under g_mu: device threads that ended (a failure ends one early) */
static volatile int g_stop;

static int env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && atoi(v) > 0 ? atoi(v) : dflt;
}

typedef struct {
    int k;
    device dv;
    client cl[NODES];
    uint8_t r[SIGS_MAX][32]; /* r of each accepted signature */
    int n;
    int retried, lost_finish, bad;
    char why[800];
} dev_job;

/* What a dying node may do to a signature: retried. */
static int transient(const sign_run *sr) {
    int e = sr->res.duo_err, st = sr->res.status;
    return st == GRPC_STATUS_UNAVAILABLE || st == GRPC_STATUS_DEADLINE_EXCEEDED || st == GRPC_STATUS_CANCELLED ||
           st == GRPC_STATUS_UNKNOWN || st == -1 || e == DUO_E_SESSION_BUSY || e == DUO_E_NOT_FOUND ||
           e == DUO_E_SERVER_BUSY || e == DUO_E_TIMEOUT || e == DUO_E_STORE ||
           e == DUO_E_SESSION_EXPIRED; /* a device starved of CPU between its rounds */
}

static void dev_loop_body(dev_job *j);

static void *dev_loop(void *arg) {
    dev_loop_body(arg);
    pthread_mutex_lock(&g_mu);
    g_exited++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return NULL;
}

static void dev_loop_body(dev_job *j) {
    char cit[32];
    snprintf(cit, sizeof cit, "KILL%d", j->k);
    for (int n = 0; n < NODES; n++)
        if (client_open(&j->cl[n], g_node_port[n]) != 0) j->bad++;
    /* enrolled on its own node, all devices at once (every node's pool);
     * sent again while no Paillier key is ready there (bounded) */
    int enrolled = -1;
    for (int tries = 0; !j->bad && enrolled != 0 && tries < 100; tries++) {
        if (tries > 0) usleep(500 * 1000);
        enrolled = enrol_new(&j->cl[j->k % NODES], &j->dv, cit);
    }
    if (j->bad || enrolled != 0) {
        snprintf(j->why, sizeof j->why, "enrolment failed");
        j->bad++;
    }
    pthread_mutex_lock(&g_mu);
    g_enrolled++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    if (j->bad) return;
    for (int i = 0; !g_stop && j->n < SIGS_MAX && j->bad == 0; i++) {
        int a = (j->k + i) % NODES, b = (a + 1) % NODES;
        uint8_t d[32];
        sign_run sr;
        memset(&sr, 0, sizeof sr);
        sr.finish_cl = &j->cl[b];
        digest_of(d, "kill", j->k * 100000 + i);
        if (dev_sign(&j->cl[a], &j->dv, PIN, d, &sr) == 0) {
            if (!openssl_verify(&j->dv, d, sr.sig)) {
                snprintf(j->why, sizeof j->why, "signature %d does not verify", i);
                j->bad++;
                break;
            }
            memcpy(j->r[j->n++], sr.sig, 32);
            pthread_mutex_lock(&g_mu);
            g_accepted++;
            pthread_cond_broadcast(&g_cv);
            pthread_mutex_unlock(&g_mu);
            continue;
        }
        if (!transient(&sr)) {
            snprintf(j->why, sizeof j->why, "start %d finish %d err %d: %s", sr.start_st, sr.finish_st, sr.res.duo_err,
                     sr.res.detail);
            j->bad++;
            break;
        }
        j->retried++;
        if (sr.start_st == 0) j->lost_finish++; /* round 2 may have been recorded before its node died */
        usleep(20 * 1000);                      /* a node is down: do not spin on it */
    }
}

/* The whole audit log as text (one `audit list`). */
static char *audit_text(void) {
    char path[400], cmd[1024];
    snprintf(path, sizeof path, "%s/audit.txt", g_parent);
    snprintf(cmd, sizeof cmd, "'%s' audit list --data '%s' > '%s'", g_bin, g_dir, path);
    if (system(cmd) != 0) return NULL;
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = malloc((size_t)n + 1);
    if (t && fread(t, 1, (size_t)n, f) != (size_t)n) {
        free(t);
        t = NULL;
    }
    if (t) t[n] = '\0';
    fclose(f);
    return t;
}

static int count_of(const char *text, const char *needle) {
    int c = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++) c++;
    return c;
}

static void test_kills_under_load(void) {
    int devices = env_int("DUO_KILL_DEVICES", 32), kills = env_int("DUO_KILL_KILLS", 20);
    unsigned seed = (unsigned)env_int("DUO_KILL_SEED", (int)getpid());
    dev_job *jobs = calloc((size_t)devices, sizeof *jobs);
    pthread_t *th = calloc((size_t)devices, sizeof *th);
    DUO_REQUIRE(jobs && th);
    fprintf(stderr, "# %d devices, %d kills, seed %u (DUO_KILL_SEED)\n", devices, kills, seed);
    srand(seed);
    for (int k = 0; k < devices; k++) {
        jobs[k].k = k;
        DUO_REQUIRE(pthread_create(&th[k], NULL, dev_loop, &jobs[k]) == 0);
    }
    /* the kills begin once every device is enrolled (an enrolment's rounds
     * stay on their node: enrolment sessions are per node) */
    pthread_mutex_lock(&g_mu);
    while (g_enrolled < devices) pthread_cond_wait(&g_cv, &g_mu);
    g_accepted = 0;
    pthread_mutex_unlock(&g_mu);
    for (int done = 0; done < kills; done++) {
        pthread_mutex_lock(&g_mu);
        while (g_accepted < (done + 1) * KILL_EVERY && g_exited < devices) pthread_cond_wait(&g_cv, &g_mu);
        pthread_mutex_unlock(&g_mu);
        int victim = rand() % NODES;
        pg_node_kill9(victim);
        DUO_REQUIRE(pg_node_start(victim) == 0);
    }
    pthread_mutex_lock(&g_mu); /* a last stretch with every node up */
    while (g_accepted < (kills + 1) * KILL_EVERY && g_exited < devices) pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    g_stop = 1;
    int accepted = 0, retried = 0, lost = 0, bad = 0;
    for (int k = 0; k < devices; k++) {
        pthread_join(th[k], NULL);
        accepted += jobs[k].n;
        retried += jobs[k].retried;
        lost += jobs[k].lost_finish;
        if (jobs[k].bad) fprintf(stderr, "# device %d: %s\n", k, jobs[k].why);
        bad += jobs[k].bad;
    }
    DUO_CHECK(bad == 0);
    /* the audit: each accepted r once; no more signatures than accepted plus
     * the round 2s whose answers died with their node; no PIN failure */
    char *audit = audit_text();
    DUO_REQUIRE(audit != NULL);
    int missing = 0, twice = 0;
    for (int k = 0; k < devices; k++)
        for (int s = 0; s < jobs[k].n; s++) {
            char needle[80] = "r=";
            for (int b = 0; b < 32; b++) snprintf(needle + 2 + 2 * b, 3, "%02x", jobs[k].r[s][b]);
            int c = count_of(audit, needle);
            missing += c == 0;
            twice += c > 1;
        }
    int signed_in_audit = count_of(audit, "round 2 accepted");
    fprintf(stderr,
            "# %d signatures accepted and verified, %d retried attempts (%d after round 1), %d kill -9; audit: %d "
            "signatures, %d accepted ones missing, %d twice\n",
            accepted, retried, lost, kills, signed_in_audit, missing, twice);
    DUO_CHECK(missing == 0 && twice == 0);
    DUO_CHECK(signed_in_audit >= accepted && signed_in_audit <= accepted + lost);
    DUO_CHECK(count_of(audit, " pin.failure ") == 0 && count_of(audit, " key.lock ") == 0);
    free(audit);
    /* no false clone detection: every key active, every device signs on
     * every node */
    for (int k = 0; k < devices && bad == 0; k++) {
        duo_status_resp so;
        rpc_result res;
        DUO_CHECK(dev_status(&jobs[k].cl[k % NODES], &jobs[k].dv, &so, &res) == 0 && so.state == DUO_KEY_STATE_ACTIVE);
        for (int n = 0; n < NODES; n++) {
            uint8_t d[32];
            sign_run sr;
            memset(&sr, 0, sizeof sr);
            sr.finish_cl = &jobs[k].cl[(n + 1) % NODES];
            digest_of(d, "kill-after", k * NODES + n);
            int rc = dev_sign(&jobs[k].cl[n], &jobs[k].dv, PIN, d, &sr);
            if (rc != 0) fprintf(stderr, "# device %d after the run, node %d: %s\n", k, n, sr.res.detail);
            DUO_CHECK(rc == 0 && openssl_verify(&jobs[k].dv, d, sr.sig));
        }
        for (int n = 0; n < NODES; n++) client_close(&jobs[k].cl[n]);
        device_free(&jobs[k].dv);
    }
    free(jobs);
    free(th);
}

int main(int argc, char **argv) {
    if (getenv("DUO_TEST_PG_URL") == NULL) {
        fprintf(stderr, "DUO_TEST_PG_URL is not set: run through tests/integration/pg/pg_env.sh\n");
        return 1;
    }
    int rc = it_setup(argc, argv, "duo-pg-kills", &g_node[0], &g_cl0);
    if (rc != 0) return rc;
    client_close(&g_cl0);
    if (pg_nodes_up(NODES, "--paillier-bits 2048 --prime-pool 2 --grace 2 --workers 4 --session-ttl 300") != 0 ||
        client_open(&g_cl0, g_node_port[0]) != 0)
        return 1;
    DUO_RUN(test_kills_under_load);
    DUO_CHECK(pg_nodes_down(NODES) == 0);
    return it_finish(&g_node[0], &g_cl0); /* node 0, perhaps restarted */
}
