/* duosign-rpc-cpu: daemon CPU per cheap RPC (issue 6, docs/BENCHMARKS.md).
 *
 * Starts `duosign-cloud serve` (fresh data directory, TLS with its
 * development CA, --prime-pool 1: the one background key is made before the timed calls), then
 * for each client thread count T sends N cheap unary calls split over T
 * threads (one channel, i.e. one TLS connection, per thread; sequential calls
 * per thread) and reads the daemon's CPU before and after:
 *   - utime+stime from /proc/PID/stat (clock ticks, usually 10 ms);
 *   - the sum of the run times in /proc/PID/task/N/schedstat (nanoseconds, every
 *     daemon thread; threads are long-lived so none is missed).
 * Two kinds of call:
 *   health  grpc.health.v1.Health/Check, answered by the server module on its
 *           completion-queue thread (gRPC + TLS + the adapter);
 *   handler /duosign.v1.DuoSign/SignFinish with an empty body: goes through
 *           the handler path (worker hand-off, store connection taken and
 *           given back) and fails at once with INVALID_ARGUMENT (decode), so
 *           it is the adapter's cost for a real method without the crypto.
 * Prints one line per (kind, threads, repetition) and a median per (kind,
 * threads), then one JSON line. Never asserts a timing. The daemon is stopped
 * (SIGTERM) and the data directory removed on exit.
 *
 * usage: duosign-rpc-cpu --daemon PATH [--calls N] [--threads 1,4]
 *                        [--kinds health,handler] [--reps R] [--daemon-args "..."]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/support/time.h>

#include "grpc_client.h"
#include "test_harness.h"
#include "proc_cpu.h"

#define MAX_THREADS 64
#define MAX_REPS 64

static pid_t g_pid;
static char g_dir[256];

/* ------------------------------------------------------------ daemon */

static void cleanup(void) {
    if (g_pid > 0) {
        kill(g_pid, SIGTERM);
        while (waitpid(g_pid, NULL, 0) < 0 && errno == EINTR) {
        }
        g_pid = 0;
    }
    if (g_dir[0]) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "rpc_cpu: cannot remove %s\n", g_dir);
        g_dir[0] = '\0';
    }
}

static void on_sig(int sig) {
    (void)sig;
    cleanup();
    _exit(2);
}

static int start_daemon(const char *bin, const char *extra, int *port) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' init --data '%s/d' >/dev/null 2>&1", bin, g_dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "rpc_cpu: %s init failed\n", bin);
        return -1;
    }
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        snprintf(cmd, sizeof cmd,
                 "exec '%s' serve --data '%s/d' --listen 127.0.0.1:0 --paillier-bits 2048 --prime-pool 1 %s", bin,
                 g_dir, extra ? extra : "");
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    g_pid = pid;
    FILE *f = fdopen(fds[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof line, f)) {
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    const char *c = strstr(line, "127.0.0.1:");
    *port = c ? atoi(c + 10) : 0;
    return *port > 0 ? 0 : -1;
}

typedef struct {
    int port, kind, calls, warm;
    pthread_barrier_t *b1, *b2;
    int bad;
} worker;

static const char *kind_name[2] = {"health", "handler"};
static const char *kind_method[2] = {"/grpc.health.v1.Health/Check", "/duosign.v1.DuoSign/SignFinish"};
static const int kind_status[2] = {GRPC_STATUS_OK, GRPC_STATUS_INVALID_ARGUMENT};

/* One call of the kind with an empty body and a 30 s deadline, on the
 * thread's channel and completion queue; only its status is wanted (-1: the
 * batch failed). */
static int call_once(grpc_channel *ch, grpc_completion_queue *cq, int kind) {
    static const uint8_t empty[1];
    return duo_test_unary(ch, cq, kind_method[kind], empty, 0, 30000, NULL, NULL, NULL);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    char ca[512];
    snprintf(ca, sizeof ca, "%s/d/ca.pem", g_dir);
    /* A distinct channel argument per thread: a connection of its own. */
    static int salt;
    duo_test_channel_opts opts = {.own_connection = __atomic_add_fetch(&salt, 1, __ATOMIC_RELAXED)};
    grpc_channel *ch = duo_test_channel_open(ca, w->port, &opts);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    for (int i = 0; i < w->warm; i++)
        if (call_once(ch, cq, w->kind) != kind_status[w->kind]) w->bad++;
    pthread_barrier_wait(w->b1);
    for (int i = 0; i < w->calls; i++)
        if (call_once(ch, cq, w->kind) != kind_status[w->kind]) w->bad++;
    pthread_barrier_wait(w->b2);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    return NULL;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    const char *bin = NULL, *threads_s = "1,4", *kinds_s = "health,handler", *extra = "";
    int calls = 4000, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--daemon") && i + 1 < argc)
            bin = argv[++i];
        else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            calls = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads_s = argv[++i];
        else if (!strcmp(argv[i], "--kinds") && i + 1 < argc)
            kinds_s = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--daemon-args") && i + 1 < argc)
            extra = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s --daemon PATH [--calls N] [--threads 1,4] [--kinds health,handler] [--reps R] "
                    "[--daemon-args \"...\"]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!bin || calls < 1 || reps < 1 || reps > MAX_REPS) {
        fprintf(stderr, "rpc_cpu: --daemon PATH is required (calls >= 1, 1 <= reps <= %d)\n", MAX_REPS);
        return 2;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/duosign-rpccpu-XXXXXX");
    if (!mkdtemp(g_dir)) {
        g_dir[0] = '\0';
        return 1;
    }
    atexit(cleanup);
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    signal(SIGPIPE, SIG_IGN);
    int port = 0;
    if (start_daemon(bin, extra, &port) != 0) {
        fprintf(stderr, "rpc_cpu: daemon did not start\n");
        return 1;
    }
    /* The daemon makes its one pool key at start: wait until it is idle (under
     * 5 ms of CPU in 500 ms, at most 2 minutes) so that key is not counted. */
    for (int i = 0; i < 240; i++) {
        duo_test_proc_cpu a, b;
        if (duo_test_proc_cpu_read(g_pid, &a) != 0) break;
        usleep(500000);
        if (duo_test_proc_cpu_read(g_pid, &b) != 0 || b.sched_ns - a.sched_ns < 5000000) break;
    }
    grpc_init();
    double hz = (double)sysconf(_SC_CLK_TCK);
    int nthr[16], nn = 0;
    for (const char *p = threads_s; *p && nn < 16;) {
        int t = atoi(p);
        if (t >= 1 && t <= MAX_THREADS) nthr[nn++] = t;
        p = strchr(p, ',');
        if (!p) break;
        p++;
    }
    int kinds[2], nk = 0;
    if (strstr(kinds_s, "health")) kinds[nk++] = 0;
    if (strstr(kinds_s, "handler")) kinds[nk++] = 1;
    printf("# daemon pid %d port %d; %d calls per run, %d reps; CPU per call in microseconds\n", (int)g_pid, port,
           calls, reps);
    printf("%-8s %3s %3s %10s %10s %10s %10s\n", "kind", "thr", "rep", "ticks_us", "sched_us", "wall_us", "client_us");
    fflush(stdout);
    char json[4096];
    size_t jl =
        (size_t)snprintf(json, sizeof json, "{\"bench\":\"rpc_cpu\",\"calls\":%d,\"reps\":%d,\"rows\":[", calls, reps);
    int first = 1, bad_total = 0;
    for (int ki = 0; ki < nk; ki++) {
        for (int ti = 0; ti < nn; ti++) {
            int T = nthr[ti];
            double tk[MAX_REPS], sc[MAX_REPS], wl[MAX_REPS], cl[MAX_REPS];
            for (int r = 0; r < reps; r++) {
                worker ws[MAX_THREADS];
                pthread_t th[MAX_THREADS];
                pthread_barrier_t b1, b2;
                pthread_barrier_init(&b1, NULL, (unsigned)T + 1);
                pthread_barrier_init(&b2, NULL, (unsigned)T + 1);
                int per = (calls + T - 1) / T;
                for (int i = 0; i < T; i++) {
                    ws[i] = (worker){port, kinds[ki], per, 50, &b1, &b2, 0};
                    pthread_create(&th[i], NULL, worker_main, &ws[i]);
                }
                pthread_barrier_wait(&b1);
                duo_test_proc_cpu p0, p1;
                (void)duo_test_proc_cpu_read(g_pid, &p0);
                struct timespec c0, c1;
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
                double w0 = now_s();
                pthread_barrier_wait(&b2);
                double w1 = now_s();
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
                (void)duo_test_proc_cpu_read(g_pid, &p1);
                for (int i = 0; i < T; i++) {
                    pthread_join(th[i], NULL);
                    bad_total += ws[i].bad;
                }
                pthread_barrier_destroy(&b1);
                pthread_barrier_destroy(&b2);
                double n = (double)per * T;
                tk[r] = (double)(p1.ticks - p0.ticks) / hz * 1e6 / n;
                sc[r] = (double)(p1.sched_ns - p0.sched_ns) / 1e3 / n;
                wl[r] = (w1 - w0) * 1e6 / n;
                cl[r] =
                    ((double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(long long)(c1.tv_nsec - c0.tv_nsec)) / 1e3 / n;
                printf("%-8s %3d %3d %10.1f %10.1f %10.1f %10.1f\n", kind_name[kinds[ki]], T, r, tk[r], sc[r], wl[r],
                       cl[r]);
                fflush(stdout);
            }
            size_t n = (size_t)reps;
            double mt = duo_test_median(tk, n), ms = duo_test_median(sc, n), mw = duo_test_median(wl, n),
                   mc = duo_test_median(cl, n);
            printf("%-8s %3d med %10.1f %10.1f %10.1f %10.1f\n", kind_name[kinds[ki]], T, mt, ms, mw, mc);
            if (jl < sizeof json)
                jl += (size_t)snprintf(json + jl, sizeof json - jl,
                                       "%s{\"kind\":\"%s\",\"threads\":%d,\"daemon_ticks_us\":%.1f,"
                                       "\"daemon_sched_us\":%.1f,\"wall_us\":%.1f,\"client_us\":%.1f}",
                                       first ? "" : ",", kind_name[kinds[ki]], T, mt, ms, mw, mc);
            first = 0;
        }
    }
    if (jl < sizeof json) snprintf(json + jl, sizeof json - jl, "],\"unexpected_status\":%d}", bad_total);
    printf("%s\n", json);
    grpc_shutdown();
    cleanup();
    if (bad_total) fprintf(stderr, "rpc_cpu: %d calls returned an unexpected status\n", bad_total);
    return bad_total ? 1 : 0;
}
