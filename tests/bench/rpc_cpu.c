/* duosign-rpc-cpu: daemon CPU per cheap RPC (issue 6, docs/BENCHMARKS.md).
 *
 * Starts `duosign-cloud serve` (fresh data directory, TLS with its
 * development CA, --prime-pool 0 so no background key generation runs), then
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
#include <dirent.h>
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

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

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
                 "exec '%s' serve --data '%s/d' --listen 127.0.0.1:0 --paillier-bits 2048 --prime-pool 0 %s", bin,
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

/* utime+stime in ticks */
static long long proc_ticks(pid_t pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    p += 2; /* field 3 */
    unsigned long long ut = 0, st = 0;
    /* fields 3..13 skipped, 14 utime, 15 stime */
    if (sscanf(p, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
    return (long long)(ut + st);
}

/* sum of the threads' run time (ns) */
static long long proc_sched_ns(pid_t pid) {
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) return -1;
    long long sum = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p2[320];
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f) continue;
        long long run = 0;
        if (fscanf(f, "%lld", &run) == 1) sum += run;
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* ------------------------------------------------------------ client */

static grpc_channel *open_channel(int port) {
    char path[512];
    snprintf(path, sizeof path, "%s/d/ca.pem", g_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *ca = calloc(1, 1 << 16);
    size_t n = fread(ca, 1, (1 << 16) - 1, f);
    fclose(f);
    ca[n] = 0;
    grpc_channel_credentials *cr = grpc_ssl_credentials_create_ex(ca, NULL, NULL, NULL);
    free(ca);
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    /* A distinct arg per channel so each thread gets its own connection. */
    static int salt;
    grpc_arg a;
    memset(&a, 0, sizeof a);
    a.type = GRPC_ARG_INTEGER;
    a.key = (char *)"duo.rpc_cpu.channel";
    a.value.integer = __atomic_add_fetch(&salt, 1, __ATOMIC_RELAXED);
    grpc_arg args[2] = {a};
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL;
    args[1].value.integer = 1;
    grpc_channel_args cargs = {2, args};
    grpc_channel *ch = grpc_channel_create(target, cr, &cargs);
    grpc_channel_credentials_release(cr);
    return ch;
}

/* One unary call; returns the gRPC status (-1: the batch failed). */
static int call_once(grpc_channel *ch, grpc_completion_queue *cq, const char *method, const uint8_t *req,
                     size_t len) {
    gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(30, GPR_TIMESPAN));
    grpc_slice m = grpc_slice_from_static_string(method);
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL, dl, NULL);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)req, len);
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_metadata_array md1, md2;
    grpc_metadata_array_init(&md1);
    grpc_metadata_array_init(&md2);
    grpc_byte_buffer *rb = NULL;
    grpc_status_code st = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &md1;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &rb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &md2;
    ops[5].data.recv_status_on_client.status = &st;
    ops[5].data.recv_status_on_client.status_details = &details;
    int tag = 1, rc = -1;
    if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK) {
        grpc_event ev = grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
        if (ev.type == GRPC_OP_COMPLETE) rc = (int)st;
    }
    if (rb) grpc_byte_buffer_destroy(rb);
    grpc_byte_buffer_destroy(bb);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&md1);
    grpc_metadata_array_destroy(&md2);
    grpc_call_unref(call);
    return rc;
}

typedef struct {
    int port, kind, calls, warm;
    pthread_barrier_t *b1, *b2;
    int bad;
} worker;

static const char *kind_name[2] = {"health", "handler"};
static const char *kind_method[2] = {"/grpc.health.v1.Health/Check", "/duosign.v1.DuoSign/SignFinish"};
static const int kind_status[2] = {GRPC_STATUS_OK, GRPC_STATUS_INVALID_ARGUMENT};

static void *worker_main(void *arg) {
    worker *w = arg;
    grpc_channel *ch = open_channel(w->port);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    static const uint8_t empty[1];
    for (int i = 0; i < w->warm; i++)
        if (call_once(ch, cq, kind_method[w->kind], empty, 0) != kind_status[w->kind]) w->bad++;
    pthread_barrier_wait(w->b1);
    for (int i = 0; i < w->calls; i++)
        if (call_once(ch, cq, kind_method[w->kind], empty, 0) != kind_status[w->kind]) w->bad++;
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

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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
    printf("%-8s %3s %3s %10s %10s %10s %10s\n", "kind", "thr", "rep", "ticks_us", "sched_us", "wall_us",
           "client_us");
    fflush(stdout);
    char json[4096];
    size_t jl = (size_t)snprintf(json, sizeof json, "{\"bench\":\"rpc_cpu\",\"calls\":%d,\"reps\":%d,\"rows\":[",
                                 calls, reps);
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
                long long t0 = proc_ticks(g_pid), s0 = proc_sched_ns(g_pid);
                struct timespec c0, c1;
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
                double w0 = now_s();
                pthread_barrier_wait(&b2);
                double w1 = now_s();
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
                long long t1 = proc_ticks(g_pid), s1 = proc_sched_ns(g_pid);
                for (int i = 0; i < T; i++) {
                    pthread_join(th[i], NULL);
                    bad_total += ws[i].bad;
                }
                pthread_barrier_destroy(&b1);
                pthread_barrier_destroy(&b2);
                double n = (double)per * T;
                tk[r] = (double)(t1 - t0) / hz * 1e6 / n;
                sc[r] = (double)(s1 - s0) / 1e3 / n;
                wl[r] = (w1 - w0) * 1e6 / n;
                cl[r] = ((double)(c1.tv_sec - c0.tv_sec) * 1e9 + (double)(long long)(c1.tv_nsec - c0.tv_nsec)) / 1e3 / n;
                printf("%-8s %3d %3d %10.1f %10.1f %10.1f %10.1f\n", kind_name[kinds[ki]], T, r, tk[r], sc[r], wl[r],
                       cl[r]);
                fflush(stdout);
            }
            double mt = median(tk, reps), ms = median(sc, reps), mw = median(wl, reps), mc = median(cl, reps);
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
