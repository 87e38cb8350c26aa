/* Crash consistency (issue 7, item 1): devices enrol and sign against a real
 * duosign-cloud while a killer thread SIGKILLs the daemon at random moments
 * and restarts it on the same data directory and port.
 *
 * Each device is the public device library over gRPC/TLS with an in-memory
 * "durable" blob; after any failure it restarts from that blob only (like a
 * phone app killed with the daemon's connection). A device signs a few times
 * (sometimes refreshes or asks for its status), then retires and a new one
 * enrols, so enrolments and signatures both get cut by the kills.
 *
 * Afterwards: every enrolment the daemon acknowledged (EnrollConfirm OK) is
 * present, active, with its full PIN budget, and signs (OpenSSL verifies);
 * none is locked or frozen; no clone was ever suspected; `audit verify`
 * passes. Printed: operations, kills, acknowledged, lost (must be 0).
 *
 * Usage: test_crash_consistency PATH/TO/duosign-cloud
 * Env:   DUO_CRASH_KILLS (default 20), DUO_CRASH_DEVICES (parallel devices,
 *        default 3), DUO_TEST_SEED, DUO_REL_KEEP=1 keeps the data dir. */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>

#include "duo_it.h"
#include "rel_device.h"
#include "test_harness.h"

#define PIN "2580"
#define MAX_DEVS 4096
#define SIGNS_PER_DEVICE 4

static const char *g_bin;
static char g_dir[300], g_parent[256];
static const char *g_serve_args = "--paillier-bits 2048 --prime-pool 2 --grace 1 --workers 4";

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile int g_stop;
static duo_it_daemon g_d;
static int g_port;

/* Counters (under g_mu). */
static long n_ops, n_ops_ok, n_ops_cut, n_enrol_try, n_unconfirmed, n_kills;
static long n_bad;           /* unexpected outcomes: a bug */
static long n_events;        /* operations finished (either way), for the killer */
static double op_ms_sum = 0; /* duration of successful operations */
static long op_ms_n = 0;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}
static rel_dev *g_acked[MAX_DEVS];
static int g_nacked;
static char g_orphans[MAX_DEVS][33]; /* enrolment step 1 done, never acknowledged */
static int g_norphans;
static int g_citizen_seq;

static void bad(const char *what, int r, const rel_dev *d) {
    pthread_mutex_lock(&g_mu);
    n_bad++;
    pthread_mutex_unlock(&g_mu);
    fprintf(stderr, "# UNEXPECTED %s on key %s: %s (%s)\n", what, d ? d->key_hex : "-", duo_err_name(r),
            d && d->ctx ? duo_device_errmsg(d->ctx) : "");
}

static unsigned rnd(unsigned *seed, unsigned n) { return (unsigned)(rand_r(seed) % n); }

static void msleep(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* One enrolment (a new token each time). Returns an acknowledged device or
 * NULL. Tokens are issued with the admin CLI while the daemon runs (or not). */
static rel_dev *enrol_one(unsigned *seed) {
    char tok[128] = "", cit[48];
    pthread_mutex_lock(&g_mu);
    snprintf(cit, sizeof cit, "EE-%05d", ++g_citizen_seq);
    n_enrol_try++;
    pthread_mutex_unlock(&g_mu);
    if (duo_it_run_cmd(tok, sizeof tok, "'%s' token issue --data '%s' --citizen %s --ttl 3600 2>/dev/null", g_bin,
                       g_dir, cit) != 0 ||
        !tok[0]) {
        fprintf(stderr, "# token issue failed for %s\n", cit);
        return NULL;
    }
    rel_dev *d = calloc(1, sizeof *d);
    snprintf(d->citizen, sizeof d->citizen, "%s", cit);
    int r = DUO_E_INTERNAL;
    if (rel_dev_open(d) != 0) goto fail;
    r = duo_device_enroll(d->ctx, rel_addr, (const uint8_t *)tok, strlen(tok), (const uint8_t *)PIN, strlen(PIN), 2048);
    if (r != DUO_OK) {
        /* Cut by a kill (the token may now be spent: enrolment sessions live
         * in memory; a new token is needed, nothing was acknowledged). */
        if (!rel_crash_err(r) && r != DUO_E_TOKEN_INVALID) bad("enrol", r, d);
        if (getenv("DUO_REL_VERBOSE"))
            fprintf(stderr, "# enrol %s: %s (%s)\n", cit, duo_err_name(r), duo_device_errmsg(d->ctx));
        goto fail;
    }
    if (rel_dev_note_key(d) != 0 || rel_dev_store(d) != 0) {
        bad("enrol store", DUO_E_INTERNAL, d);
        goto fail;
    }
    /* Confirm; retried (also across a restart of the device) a few times. */
    for (int attempt = 0; attempt < 4 && !g_stop; attempt++) {
        char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
        r = duo_device_enroll_confirm(d->ctx, code, sizeof code);
        if (r == DUO_OK) {
            if (rel_dev_store(d) != 0) {
                bad("confirm store", DUO_E_INTERNAL, d);
                goto fail;
            }
            d->acked = 1;
            return d;
        }
        if (getenv("DUO_REL_VERBOSE"))
            fprintf(stderr, "# confirm %s: %s (%s)\n", cit, duo_err_name(r), duo_device_errmsg(d->ctx));
        msleep(100 + rnd(seed, 200));
        if (rel_dev_reload(d) != 0) break;
    }
    pthread_mutex_lock(&g_mu);
    n_unconfirmed++;
    if (g_norphans < MAX_DEVS) snprintf(g_orphans[g_norphans++], 33, "%s", d->key_hex);
    pthread_mutex_unlock(&g_mu);
fail:
    rel_dev_free(d);
    free(d);
    return NULL;
}

/* One operation on an acknowledged device. */
static void device_op(rel_dev *d, unsigned *seed, int i) {
    unsigned what = rnd(seed, 10);
    int r;
    double t0 = now_ms();
    char text[96];
    if (what < 7) {
        snprintf(text, sizeof text, "crash doc %s #%d", d->key_hex, i);
        r = rel_dev_sign(d, text, strlen(PIN), PIN);
    } else if (what < 9) {
        r = duo_device_refresh(d->ctx);
        if (r == DUO_OK && rel_dev_store(d) != 0) r = DUO_E_INTERNAL;
    } else {
        duo_device_status_info st;
        r = duo_device_status(d->ctx, &st);
        if (r == DUO_OK && (st.state != DUO_DEVICE_KEY_ACTIVE || st.pin_attempts_left != 3))
            bad("status (not active with 3 attempts)", st.state, d);
    }
    pthread_mutex_lock(&g_mu);
    n_ops++;
    n_events++;
    if (r == DUO_OK && what < 7) {
        op_ms_sum += now_ms() - t0;
        op_ms_n++;
    }
    if (r == DUO_OK)
        n_ops_ok++;
    else if (rel_crash_err(r))
        n_ops_cut++;
    pthread_mutex_unlock(&g_mu);
    if (r != DUO_OK) {
        if (!rel_crash_err(r)) bad(what < 7 ? "sign" : what < 9 ? "refresh" : "status", r, d);
        /* The phone app restarts from what it stored. */
        if (rel_dev_reload(d) != 0) bad("reload", DUO_E_INTERNAL, d);
        msleep(20 + rnd(seed, 80));
    }
}

static void *device_thread(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (!g_stop) {
        rel_dev *d = enrol_one(&seed);
        if (!d) {
            msleep(50 + rnd(&seed, 100));
            continue;
        }
        pthread_mutex_lock(&g_mu);
        if (g_nacked < MAX_DEVS) g_acked[g_nacked++] = d;
        n_events++;
        pthread_mutex_unlock(&g_mu);
        int target = SIGNS_PER_DEVICE + (int)rnd(&seed, 3);
        for (int i = 0; !g_stop && d->signs < target && i < 40; i++) device_op(d, &seed, i);
        rel_dev_close(d); /* retired: only its stored blob remains */
    }
    return NULL;
}

static int daemon_restart(void) {
    for (int i = 0; i < 50; i++) {
        if (duo_it_daemon_start(&g_d, g_bin, g_dir, g_port, g_serve_args) == 0) return 0;
        msleep(100); /* the port may still be held for a moment */
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    int kills = getenv("DUO_CRASH_KILLS") ? atoi(getenv("DUO_CRASH_KILLS")) : 20;
    int ndev = getenv("DUO_CRASH_DEVICES") ? atoi(getenv("DUO_CRASH_DEVICES")) : 3;
    if (ndev < 1 || ndev > 64) ndev = 3;
    unsigned seed = (unsigned)duo_test_seed();
    snprintf(g_parent, sizeof g_parent, "/tmp/duo-crash-XXXXXX");
    if (!mkdtemp(g_parent)) return 2;
    snprintf(g_dir, sizeof g_dir, "%s/data", g_parent);
    char out[4096];
    if (duo_it_run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir) != 0) {
        fprintf(stderr, "init failed: %s\n", out);
        return 1;
    }
    if (rel_load_ca(g_dir) != 0) return 1;
    if (duo_it_daemon_start(&g_d, g_bin, g_dir, 0, g_serve_args) != 0) {
        fprintf(stderr, "cannot start the daemon\n");
        return 1;
    }
    g_port = g_d.port;
    snprintf(rel_addr, sizeof rel_addr, "127.0.0.1:%d", g_port);

    pthread_t th[64];
    for (int i = 0; i < ndev; i++)
        pthread_create(&th[i], NULL, device_thread, (void *)(uintptr_t)(seed + 7919u * (unsigned)i));

    /* The killer. Each kill waits for progress since the last restart (an
     * operation finished; every third kill also an acknowledged enrolment),
     * then strikes after a random delay within ~1.5 signatures, so kills land
     * inside enrolments and signatures alike whatever the machine's speed.
     * Each restart is on the same port. */
    int restart_failed = 0, stalled = 0;
    for (int k = 0; k < kills; k++) {
        pthread_mutex_lock(&g_mu);
        long ev0 = n_events, ack0 = g_nacked;
        pthread_mutex_unlock(&g_mu);
        double t_wait = now_ms();
        for (;;) {
            pthread_mutex_lock(&g_mu);
            int ready = n_events > ev0 && (k % 3 != 0 || g_nacked > ack0);
            pthread_mutex_unlock(&g_mu);
            if (ready) break;
            if (now_ms() - t_wait > 120000) {
                stalled = 1;
                break;
            }
            msleep(10);
        }
        if (stalled) break;
        pthread_mutex_lock(&g_mu);
        double avg = op_ms_n ? op_ms_sum / (double)op_ms_n : 500;
        pthread_mutex_unlock(&g_mu);
        msleep(rnd(&seed, (unsigned)(avg * 1.5) + 1));
        duo_it_daemon_kill(&g_d);
        n_kills++;
        msleep(rnd(&seed, 300));
        if (daemon_restart() != 0) {
            restart_failed = 1;
            break;
        }
    }
    DUO_CHECK(!stalled);
    msleep(1500); /* a little calm: in-flight work finishes on the last daemon */
    g_stop = 1;
    for (int i = 0; i < ndev; i++) pthread_join(th[i], NULL);
    DUO_CHECK(!restart_failed);

    /* ---- the check, on the last daemon (itself restarted after a kill) */
    long lost = 0, checked = 0;
    for (int i = 0; i < g_nacked; i++) {
        rel_dev *d = g_acked[i];
        int ok = rel_dev_reload(d) == 0;
        duo_device_status_info st;
        int r = ok ? duo_device_status(d->ctx, &st) : DUO_E_STATE_CORRUPT;
        if (r != DUO_OK || st.state != DUO_DEVICE_KEY_ACTIVE || st.pin_attempts_left != 3) {
            fprintf(stderr, "# LOST/DAMAGED key %s (%s): status %s state %d attempts %u: %s\n", d->key_hex, d->citizen,
                    duo_err_name(r), r == DUO_OK ? st.state : -1, r == DUO_OK ? st.pin_attempts_left : 0,
                    d->ctx ? duo_device_errmsg(d->ctx) : "");
            ok = 0;
        }
        if (ok) {
            r = rel_dev_sign(d, "after the crashes", strlen(PIN), PIN);
            if (r != DUO_OK) {
                fprintf(stderr, "# key %s cannot sign after the crashes: %s (%s)\n", d->key_hex, duo_err_name(r),
                        duo_device_errmsg(d->ctx));
                ok = 0;
            }
        }
        if (ok) {
            /* The admin view agrees: active, no PIN failures. */
            if (duo_it_run_cmd(out, sizeof out, "'%s' key show --data '%s' %s 2>&1", g_bin, g_dir, d->key_hex) != 0 ||
                !strstr(out, "active") || strstr(out, "suspended") || strstr(out, "locked until")) {
                fprintf(stderr, "# key show %s:\n%s\n", d->key_hex, out);
                ok = 0;
            }
        }
        checked++;
        if (!ok) lost++;
        rel_dev_free(d);
        free(d);
    }
    DUO_CHECK(lost == 0);
    DUO_CHECK(n_bad == 0);
    DUO_CHECK(g_nacked >= kills / 3); /* the run did enrol under fire */

    /* Enrolments cut before their acknowledgement: the cloud may hold them
     * (pending, purged after an hour, or active if only the reply was lost);
     * never suspended. Informational. */
    int orphan_active = 0;
    for (int i = 0; i < g_norphans; i++) {
        if (duo_it_run_cmd(out, sizeof out, "'%s' key show --data '%s' %s 2>&1", g_bin, g_dir, g_orphans[i]) == 0) {
            if (strstr(out, "active")) orphan_active++;
            DUO_CHECK(strstr(out, "suspended") == NULL && strstr(out, "revoked") == NULL);
        }
    }

    DUO_CHECK(duo_it_daemon_stop(&g_d) == 0);
    int arc = duo_it_run_cmd(out, sizeof out, "'%s' audit verify --data '%s' 2>&1", g_bin, g_dir);
    fprintf(stderr, "# %s\n", out);
    DUO_CHECK(arc == 0);
    /* No clone was ever suspected, nothing was frozen or locked. */
    char cnt[64];
    DUO_CHECK(duo_it_run_cmd(cnt, sizeof cnt, "'%s' audit list --data '%s' | grep -ciE 'clone|suspend|lock' ", g_bin,
                             g_dir) <= 1);
    DUO_CHECK(atoi(cnt) == 0);
    if (atoi(cnt) != 0)
        duo_it_run_cmd(NULL, 0, "'%s' audit list --data '%s' | grep -iE 'clone|suspend|lock' >&2", g_bin, g_dir);

    printf("crash consistency: operations %ld (ok %ld, cut by a kill %ld), enrolments tried %ld, kills %ld, "
           "acknowledged %d, checked %ld, lost %ld, unexpected %ld; enrolments never acknowledged %ld "
           "(of which active on the cloud %d)\n",
           n_ops + n_enrol_try, n_ops_ok, n_ops_cut, n_enrol_try, n_kills, g_nacked, checked, lost, n_bad,
           n_unconfirmed, orphan_active);
    fflush(stdout);
    if (!getenv("DUO_REL_KEEP"))
        duo_it_run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    else
        fprintf(stderr, "# kept %s\n", g_parent);
    free(rel_ca_pem);
    return duo_test_finish();
}
