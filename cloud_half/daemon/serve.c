/* duosign-cloud serve: the libuv main loop around the gRPC server.
 *
 * The loop thread owns signals (graceful drain on SIGTERM/SIGINT), the
 * service's timers and the Paillier pool refills; the gRPC completion-queue
 * threads and the handler workers live in the server module. */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <uv.h>

#include "duosign.pb-c.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"
#include "keystore.h"
#include "server.h"
#include "service.h"

#define PROG "duosign-cloud serve"

static const char *usage_text =
    "usage: duosign-cloud serve --data DIR --listen ADDR:PORT [options]\n\n"
    "Serves duosign.v1.DuoSign and grpc.health.v1.Health over gRPC.\n\n"
    "  --data DIR              data directory made by 'duosign-cloud init'\n"
    "  --listen ADDR:PORT      e.g. 127.0.0.1:7443, [::]:7443; port 0 picks a free port\n"
    "                          (the bound address is printed on stdout)\n"
    "  --insecure              plaintext gRPC (no TLS): for tests behind a TLS proxy only\n"
    "  --tls-cert FILE         server certificate chain (default DIR/server.pem)\n"
    "  --tls-key FILE          its private key (default DIR/server.key)\n"
    "  --paillier-bits N       3072 (default) or 2048\n"
    "  --curves LIST           curves new keys may use, comma-separated: p256,secp256k1 (default both);\n"
    "                          keys already enrolled on another curve still sign\n"
    "  --workers N             handler threads (default 4)\n"
    "  --cq-threads N          gRPC polling threads (default 1: they only move bytes;\n"
    "                          a second one mostly hands the polling back and forth)\n"
    "  --lock-policy SPEC      PIN lockout, default 3:10800,6:86400,9:revoke\n"
    "                          (FAILURES:SECONDS|revoke, durations may use s/m/h/d)\n"
    "  --prime-pool N          Paillier keys kept ready in the background (default 2, at\n"
    "                          least 1): keys are made only there, never on a request;\n"
    "                          an EnrollStart that finds none is told when to retry\n"
    "  --session-ttl SECONDS   enrolment/signing session lifetime (default 60)\n"
    "  --max-enrol-per-peer N  enrolments in progress from one client address (default 16);\n"
    "                          enrolments take at most half of --max-sessions, a new\n"
    "                          EnrollStart on a token replaces that token's older session\n"
    "  --store-busy-ms N       how long a store write waits for another process holding\n"
    "                          the database (default 5000)\n"
    "  --max-sessions N        sessions in progress at once (default 10000; more get\n"
    "                          UNAVAILABLE, retry later); finished ones do not count\n"
    "  --grace SECONDS         on SIGTERM, wait this long for calls in flight (default 10)\n";

typedef struct {
    uv_signal_t sigterm, sigint;
    duo_server *srv;
    duo_service *svc;
    unsigned grace_s;
    int stopping;
} serve_state;

/* One daemon per data directory: the one-live-session-per-key rule (and the
 * key cache, the freeze retries) live in one process's memory, so a second
 * daemon on the same store would allow parallel sessions on one key. An
 * exclusive flock on DIR/serve.lock, held until the process ends (the kernel
 * drops it on any exit, kill -9 included). Returns the descriptor, -1 after
 * saying why. The admin subcommands do not take it. */
static int serve_lock(const char *dir) {
    char path[DUO_PATH_MAX], pid[32] = "";
    snprintf(path, sizeof path, "%s/" DUO_FILE_SERVE_LOCK, dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == ENOENT)
            fprintf(stderr, PROG ": data directory %s does not exist; create it with 'duosign-cloud init --data %s'\n",
                    dir, dir);
        else if (errno == EACCES || errno == EROFS || errno == EPERM)
            fprintf(stderr,
                    PROG ": the data directory %s is not writable (%s); the daemon writes its lock, the key "
                         "database and its -wal and -shm files there\n",
                    dir, strerror(errno));
        else
            fprintf(stderr, PROG ": cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK && pread(fd, pid, sizeof pid - 1, 0) > 0) pid[strcspn(pid, "\n")] = '\0';
        if (e == EWOULDBLOCK)
            fprintf(stderr,
                    PROG ": another duosign-cloud is already serving %s%s%s%s; stop it first (two daemons "
                         "on one store would allow parallel signing sessions on one key)\n",
                    dir, pid[0] ? " (pid " : "", pid, pid[0] ? ")" : "");
        else
            fprintf(stderr, PROG ": cannot lock %s: %s\n", path, strerror(e));
        close(fd);
        return -1;
    }
    int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) { /* the lock is what matters */
    }
    return fd;
}

static void on_signal(uv_signal_t *h, int signum) {
    serve_state *st = h->data;
    if (st->stopping) return;
    st->stopping = 1;
    fprintf(stderr, "duosign-cloud: %s: draining (up to %u s for calls in flight)\n",
            signum == SIGTERM ? "SIGTERM" : "SIGINT", st->grace_s);
    duo_server_shutdown(st->srv, st->grace_s * 1000u);
    duo_service_stop(st->svc);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
}

static int opt(int argc, char **argv, int *i, const char *name, const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, PROG ": %s needs a value\n", name);
        exit(DUO_EXIT_USAGE);
    }
    *val = argv[++*i];
    return 1;
}

static unsigned num(const char *name, const char *v, unsigned lo, unsigned hi) {
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, PROG ": %s must be a number in %u..%u (got '%s')\n", name, lo, hi, v);
        exit(DUO_EXIT_USAGE);
    }
    return (unsigned)x;
}

/* The TLS private key's buffer (SECRET): wiped whole (the file may hold NUL
 * bytes, so not by strlen) and freed, on every path. */
static void free_key(char **key, size_t len) {
    if (*key) {
        duo_memzero(*key, len);
        free(*key);
        *key = NULL;
    }
}

/* "p256,secp256k1" -> a duo_service_config.curves mask; 0 for an empty
 * list, an empty item or an unknown name. */
static unsigned parse_curves(const char *list) {
    char buf[64];
    unsigned mask = 0;
    if (strlen(list) >= sizeof buf) return 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        duo_curve c;
        if (duo_curve_parse(tok, &c) != DUO_OK) return 0;
        mask |= 1u << c;
    }
    /* strtok_r skips empty items: "p256,,secp256k1" or ",p256" is a typo */
    if (list[0] == ',' || list[strlen(list) - 1] == ',' || strstr(list, ",,") != NULL) return 0;
    return mask;
}

int duo__cmd_serve(int argc, char **argv) {
    const char *dir = NULL, *listen = NULL, *cert_path = NULL, *key_path = NULL, *v;
    int insecure = 0;
    unsigned bits = DUO_PAILLIER_BITS_DEFAULT, workers = 4, cq_threads = 1, pool = 2, ttl = 60, grace = 10,
             max_sessions = 0, enrol_per_peer = 0, busy_ms = 0, curves = DUO_CURVES_ALL;
    duo_lock_policy lock;
    duo__lock_policy_default(&lock);
    char err[DUO_ERRMSG_MAX] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return DUO_EXIT_OK;
        } else if (opt(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (opt(argc, argv, &i, "--listen", &v)) {
            listen = v;
        } else if (strcmp(a, "--insecure") == 0) {
            insecure = 1;
        } else if (opt(argc, argv, &i, "--tls-cert", &v)) {
            cert_path = v;
        } else if (opt(argc, argv, &i, "--tls-key", &v)) {
            key_path = v;
        } else if (opt(argc, argv, &i, "--paillier-bits", &v)) {
            bits = num("--paillier-bits", v, 0, 1u << 20);
            if (!duo_paillier_bits_supported(bits)) {
                fprintf(stderr, PROG ": --paillier-bits must be 3072 or 2048\n");
                return DUO_EXIT_USAGE;
            }
        } else if (opt(argc, argv, &i, "--curves", &v)) {
            if ((curves = parse_curves(v)) == 0) {
                fprintf(stderr, PROG ": --curves takes a comma-separated list of p256 and secp256k1, got '%s'\n", v);
                return DUO_EXIT_USAGE;
            }
        } else if (opt(argc, argv, &i, "--workers", &v)) {
            workers = num("--workers", v, 1, 256);
        } else if (opt(argc, argv, &i, "--cq-threads", &v)) {
            cq_threads = num("--cq-threads", v, 1, 64);
        } else if (opt(argc, argv, &i, "--prime-pool", &v)) {
            pool = num("--prime-pool", v, 1, 16);
        } else if (opt(argc, argv, &i, "--max-enrol-per-peer", &v)) {
            enrol_per_peer = num("--max-enrol-per-peer", v, 1, 1000000);
        } else if (opt(argc, argv, &i, "--store-busy-ms", &v)) {
            busy_ms = num("--store-busy-ms", v, 1, 600000);
        } else if (opt(argc, argv, &i, "--session-ttl", &v)) {
            ttl = num("--session-ttl", v, 1, 3600);
        } else if (opt(argc, argv, &i, "--max-sessions", &v)) {
            max_sessions = num("--max-sessions", v, 1, 1000000);
        } else if (opt(argc, argv, &i, "--grace", &v)) {
            grace = num("--grace", v, 0, 3600);
        } else if (opt(argc, argv, &i, "--lock-policy", &v)) {
            if (duo__lock_policy_parse(&lock, v, err, sizeof err) != DUO_OK) {
                fprintf(stderr, PROG ": %s\n", err);
                return DUO_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, PROG ": unknown argument '%s' (try --help)\n", a);
            return DUO_EXIT_USAGE;
        }
    }
    if (!dir || !listen) {
        fprintf(stderr, PROG ": --data DIR and --listen ADDR:PORT are required (try --help)\n");
        return DUO_EXIT_USAGE;
    }
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) {
        fprintf(stderr, PROG ": --listen '%s' must be ADDR:PORT, e.g. 127.0.0.1:7443\n", listen);
        return DUO_EXIT_USAGE;
    }

    /* SQLite's reasons for store errors go to our log (before any store opens). */
    if (duo_keystore_sqlite_log_errors("duosign-cloud") != DUO_OK)
        fprintf(stderr, PROG ": warning: store errors will be logged without SQLite's reason\n");
    int lock_fd = serve_lock(dir);
    if (lock_fd < 0) return DUO_EXIT_FAIL;

    char *cert = NULL, *key = NULL;
    size_t key_len = 0;
    char cpath[DUO_PATH_MAX], kpath[DUO_PATH_MAX];
    if (!insecure) {
        snprintf(cpath, sizeof cpath, "%s", cert_path ? cert_path : "");
        snprintf(kpath, sizeof kpath, "%s", key_path ? key_path : "");
        if (!cert_path) snprintf(cpath, sizeof cpath, "%s/" DUO_FILE_CERT, dir);
        if (!key_path) snprintf(kpath, sizeof kpath, "%s/" DUO_FILE_KEY, dir);
        if (duo__read_file(&cert, NULL, cpath, 1u << 20, err, sizeof err) != DUO_OK ||
            duo__read_file(&key, &key_len, kpath, 1u << 20, err, sizeof err) != DUO_OK) {
            /* Plaintext is not a fix for a missing certificate. */
            fprintf(stderr,
                    PROG ": TLS: %s; 'duosign-cloud init --data DIR' creates a data directory with a server "
                         "certificate and key (" DUO_FILE_CERT ", " DUO_FILE_KEY "), or pass --tls-cert FILE and "
                         "--tls-key FILE\n",
                    err);
            goto fail_tls;
        }
        if (duo__pki_check(cert, key, cpath, kpath, err, sizeof err) != DUO_OK) {
            fprintf(stderr, PROG ": TLS: %s; pass a matching, current --tls-cert FILE and --tls-key FILE\n", err);
            goto fail_tls;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, PROG ": cannot start the event loop\n");
        goto fail_tls;
    }
    serve_state st;
    memset(&st, 0, sizeof st);
    st.grace_s = grace;
    duo_service_config scfg = {.data_dir = dir,
                               .paillier_bits = bits,
                               .workers = workers,
                               .lock = lock,
                               .session_ttl_s = ttl,
                               .max_sessions = max_sessions,
                               .prime_pool = pool,
                               .max_enrol_per_peer = enrol_per_peer,
                               .store_busy_ms = busy_ms,
                               .curves = curves,
                               .loop = &loop};
    int r = duo_service_new(&st.svc, err, sizeof err, &scfg);
    if (r != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err[0] ? err : duo_strerror(r));
        goto fail_loop;
    }
    duo_server_config cfg = {.listen = listen,
                             .insecure = insecure,
                             .tls_cert_pem = cert,
                             .tls_key_pem = key,
                             .service = &duosign__v1__duo_sign__descriptor,
                             .handler = duo_service_handler(),
                             .app = st.svc,
                             .cq_count = 1,
                             .cq_threads = cq_threads,
                             .workers = workers};
    r = duo_server_start(&st.srv, err, sizeof err, &cfg);
    free_key(&key, key_len);
    free(cert);
    cert = NULL;
    if (r != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err[0] ? err : duo_strerror(r));
        duo_service_stop(st.svc);
        uv_run(&loop, UV_RUN_DEFAULT);
        duo_service_free(st.svc);
        goto fail_loop;
    }
    uv_signal_init(&loop, &st.sigterm);
    uv_signal_init(&loop, &st.sigint);
    st.sigterm.data = st.sigint.data = &st;
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    uv_signal_start(&st.sigint, on_signal, SIGINT);

    printf("listening on %.*s:%d (%s, paillier %u bits)\n", (int)(colon - listen), listen, duo_server_port(st.srv),
           insecure ? "plaintext, --insecure" : "TLS", bits);
    fflush(stdout);

    uv_run(&loop, UV_RUN_DEFAULT);

    duo_server_stats stats;
    duo_server_get_stats(st.srv, &stats);
    duo_service_free(st.svc);
    duo_server_free(st.srv);
    if (uv_loop_close(&loop) != 0) fprintf(stderr, "duosign-cloud: warning: event loop closed with open handles\n");
    fprintf(stderr,
            "duosign-cloud: stopped cleanly: %llu calls, %llu ok, %llu failed, %llu unimplemented, %llu "
            "deadline exceeded, %llu cancelled\n",
            (unsigned long long)stats.calls, (unsigned long long)stats.ok, (unsigned long long)stats.failed,
            (unsigned long long)stats.unimplemented, (unsigned long long)stats.deadline_exceeded,
            (unsigned long long)stats.cancelled);
    return DUO_EXIT_OK;

fail_loop:
    uv_loop_close(&loop);
fail_tls:
    free(cert);
    free_key(&key, key_len);
    return DUO_EXIT_FAIL;
}
