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
#include "relying_party.pb-c.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"
#include "keystore.h"
#include "log.h"
#include "metrics.h"
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
    "  --kek REF               refuse to start unless REF (file:NAME or pkcs11:URI) is the\n"
    "                          data directory's key-encryption key (DIR/kek.ref names it;\n"
    "                          a token's PIN: pin-source=FILE in the URI or $DUOSIGN_KEK_PIN)\n"
    "  --store URL             the key store is this PostgreSQL database (postgresql://...)\n"
    "                          instead of the one the data directory records\n"
    "  --paillier-bits N       3072 (default) or 2048\n"
    "  --curves LIST           curves new keys may use, comma-separated: p256,secp256k1 (default both);\n"
    "                          keys already enrolled on another curve still sign\n"
    "  --workers N             handler threads (default 4)\n"
    "  --cq-threads N          gRPC polling threads (default 1: they only move bytes;\n"
    "                          a second one mostly hands the polling back and forth)\n"
    "  --inline                an idle daemon runs SignStart and SignFinish on the polling\n"
    "                          thread (two thread wake-ups less per call; off by default:\n"
    "                          with slow disk flushes it cut throughput, docs/BENCHMARKS.md)\n"
    "  --lock-policy SPEC      PIN lockout, default 3:10800,6:86400,9:revoke\n"
    "                          (FAILURES:SECONDS|revoke, durations may use s/m/h/d)\n"
    "  --prime-pool N          Paillier keys kept ready in the background (default 2, at\n"
    "                          least 1): keys are made only there, never on a request;\n"
    "                          an EnrollStart that finds none is told when to retry\n"
    "  --session-ttl SECONDS   enrolment/signing session lifetime (default 60)\n"
    "  --max-enrol-per-peer N  enrolments in progress from one client address (default 16);\n"
    "                          enrolments take at most half of --max-sessions, a new\n"
    "                          EnrollStart on a token replaces that token's older session\n"
    "  --require-channel       refuse plain requests (every RPC but ChannelKey must come\n"
    "                          through the inner channel): once no device of the\n"
    "                          population runs a state from before the channel\n"
    "  --store-busy-ms N       how long a store write waits for another process holding\n"
    "                          the database (default 5000)\n"
    "  --max-sessions N        sessions in progress at once (default 10000; more get\n"
    "                          UNAVAILABLE, retry later); finished ones do not count\n"
    "  --grace SECONDS         on SIGTERM, wait this long for calls in flight (default 10)\n"
    "  --log-format text|json  one line per request and security event (default text)\n"
    "  --log-file FILE         append the log there (default stderr); SIGHUP reopens it\n"
    "  --log-level LEVEL       debug, info (default), warn or error\n"
    "  --rp-listen ADDR:PORT   also serve duosign.v1.RelyingParty there: TLS with the same server\n"
    "                          certificate, and a client certificate of a registered relying\n"
    "                          party required ('duosign-cloud rp add'; docs/RELYING_PARTIES.md)\n"
    "  --rp-session-ttl SECONDS  a relying party's request lives this long (default 120)\n"
    "  --rp-max-per-citizen N  open relying-party requests to one citizen (default 5)\n"
    "  --rp-max-per-rp N       open requests of one relying party (default 1000)\n"
    "  --metrics-listen ADDR:PORT  Prometheus metrics at http://ADDR:PORT/metrics (plain HTTP,\n"
    "                          its own port; keep it on a private address)\n\n"
    "Signals: SIGTERM/SIGINT drain and stop; SIGHUP re-reads the TLS certificate and key\n"
    "(new connections get them, open ones stay) and reopens the log file.\n";

typedef struct {
    uv_signal_t sigterm, sigint, sighup;
    duo_server *srv;
    duo_server *rp_srv; /* --rp-listen: the RelyingParty service (NULL without) */
    duo_service *svc;
    unsigned grace_s;
    int stopping;
    const char *cert_path, *key_path; /* NULL with --insecure */
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
    duo_log_event(DUO_LOG_INFO, "daemon.stop", NULL, NULL, "%s: draining (up to %u s for calls in flight)",
                  signum == SIGTERM ? "SIGTERM" : "SIGINT", st->grace_s);
    if (st->rp_srv) duo_server_shutdown(st->rp_srv, st->grace_s * 1000u);
    duo_server_shutdown(st->srv, st->grace_s * 1000u);
    duo_service_stop(st->svc);
    uv_close((uv_handle_t *)&st->sigterm, NULL);
    uv_close((uv_handle_t *)&st->sigint, NULL);
    uv_close((uv_handle_t *)&st->sighup, NULL);
}

static int load_tls(char **cert, char **key, size_t *key_len, const char *cpath, const char *kpath, int *read_ok,
                    char *err, size_t cap);

/* SIGHUP: the log file reopened (after logrotate moved it), then the TLS
 * certificate and key read again from their paths, checked, and handed to
 * the server for new handshakes; connections already open keep theirs. A
 * bad new pair is refused and the old one stays. */
static void on_hup(uv_signal_t *h, int signum) {
    (void)signum;
    serve_state *st = h->data;
    char err[DUO_ERRMSG_MAX] = "";
    if (duo_log_reopen(err, sizeof err) != DUO_OK)
        duo_log_event(DUO_LOG_ERROR, "daemon.reload", NULL, NULL, "SIGHUP: %s; logging on to the old file", err);
    else
        duo_log_event(DUO_LOG_INFO, "daemon.reload", NULL, NULL, "SIGHUP: log reopened");
    if (!st->cert_path) return;
    char *cert = NULL, *key = NULL;
    size_t key_len = 0;
    int read_ok = 0;
    int r = load_tls(&cert, &key, &key_len, st->cert_path, st->key_path, &read_ok, err, sizeof err);
    if (r == DUO_OK) r = duo_server_reload_tls(st->srv, cert, key);
    if (r == DUO_OK && st->rp_srv) r = duo_server_reload_tls(st->rp_srv, cert, key);
    if (r == DUO_OK)
        duo_log_event(DUO_LOG_INFO, "daemon.reload", NULL, NULL,
                      "SIGHUP: TLS certificate %s and key reloaded; new connections use them", st->cert_path);
    else
        duo_log_event(DUO_LOG_ERROR, "daemon.reload", NULL, NULL, "SIGHUP: TLS not reloaded, the old pair stays: %s",
                      err[0] ? err : duo_strerror(r));
    free(cert);
    if (key) {
        duo_memzero(key, key_len);
        free(key);
    }
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

/* Reads and checks the certificate chain and key (at start and on SIGHUP).
 * DUO_OK, else an error with the reason in err and *read_ok saying whether
 * the files were read (then the check failed); *cert and *key (SECRET) are
 * the caller's to free and wipe either way. */
static int load_tls(char **cert, char **key, size_t *key_len, const char *cpath, const char *kpath, int *read_ok,
                    char *err, size_t cap) {
    *read_ok = 0;
    int r = duo__read_file(cert, NULL, cpath, 1u << 20, err, cap);
    if (r == DUO_OK) r = duo__read_file(key, key_len, kpath, 1u << 20, err, cap);
    if (r != DUO_OK) return r;
    *read_ok = 1;
    return duo__pki_check(*cert, *key, cpath, kpath, err, cap);
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

/* --rp-listen: the RelyingParty service on its own port, TLS with the
 * server's certificate and a client certificate required that chains to
 * the RP trust roots (the RP CA, and certificates brought with rp add
 * --cert); the handler then maps it to a registered RP. */
static int start_rp(serve_state *st, const char *rp_listen, const char *cert, const char *key, unsigned cq_threads,
                    unsigned workers, char *err, size_t cap) {
    const char *c = strrchr(rp_listen, ':');
    if (!c || c == rp_listen || !c[1]) {
        snprintf(err, cap, "--rp-listen '%s' must be ADDR:PORT, e.g. 127.0.0.1:7444", rp_listen);
        return DUO_E_INVALID_ARG;
    }
    char *roots = NULL;
    int r = duo_service_rp_roots(st->svc, &roots);
    if (r == DUO_E_NO_CA) {
        snprintf(err, cap, "--rp-listen: no relying party is registered yet; 'duosign-cloud rp add' first");
        return r;
    }
    if (r != DUO_OK) {
        snprintf(err, cap, "--rp-listen: cannot read the relying parties' trust roots: %s", duo_strerror(r));
        return r;
    }
    duo_server_config rcfg = {.listen = rp_listen,
                              .tls_cert_pem = cert,
                              .tls_key_pem = key,
                              .client_ca_pem = roots,
                              .service = &duosign__v1__relying_party__descriptor,
                              .handler = duo_service_rp_handler(),
                              .app = st->svc,
                              .cq_count = 1,
                              .cq_threads = cq_threads,
                              /* long polls (GetSession) hold a worker each while they wait */
                              .workers = workers < 32 ? 32 : workers};
    r = duo_server_start(&st->rp_srv, err, cap, &rcfg);
    free(roots);
    return r;
}

int duo__cmd_serve(int argc, char **argv) {
    const char *dir = NULL, *listen = NULL, *cert_path = NULL, *key_path = NULL, *kek_ref = NULL, *v;
    const char *log_file = NULL, *metrics_listen = NULL, *rp_listen = NULL;
    unsigned rp_ttl = 0, rp_per_citizen = 0, rp_per_rp = 0;
    int fail_exit = DUO_EXIT_FAIL; /* a rolled-back store: its own code */
    duo_log_format log_fmt = DUO_LOG_TEXT;
    duo_log_level log_min = DUO_LOG_INFO;
    int insecure = 0;
    unsigned bits = DUO_PAILLIER_BITS_DEFAULT, workers = 4, cq_threads = 1, pool = 2, ttl = 60, grace = 10,
             max_sessions = 0, enrol_per_peer = 0, busy_ms = 0, curves = DUO_CURVES_ALL;
    int require_channel = 0, inline_sign = 0;
    duo_lock_policy lock;
    duo__lock_policy_default(&lock);
    char err[DUO_ERRMSG_MAX] = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage_text, stdout);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--listen", &v)) {
            listen = v;
        } else if (strcmp(a, "--insecure") == 0) {
            insecure = 1;
        } else if (duo__opt_val(argc, argv, &i, "--tls-cert", &v)) {
            cert_path = v;
        } else if (duo__opt_val(argc, argv, &i, "--tls-key", &v)) {
            key_path = v;
        } else if (duo__opt_val(argc, argv, &i, "--kek", &v)) {
            kek_ref = v;
        } else if (duo__opt_val(argc, argv, &i, "--store", &v)) {
            if (!duo_store_url_ok(v)) {
                fprintf(stderr, PROG ": --store must be a PostgreSQL URL, postgresql://USER@HOST:PORT/DATABASE\n");
                return DUO_EXIT_USAGE;
            }
            duo_datadir_override_store(v);
        } else if (duo__opt_val(argc, argv, &i, "--paillier-bits", &v)) {
            bits = num("--paillier-bits", v, 0, 1u << 20);
            if (!duo_paillier_bits_supported(bits)) {
                fprintf(stderr, PROG ": --paillier-bits must be 3072 or 2048\n");
                return DUO_EXIT_USAGE;
            }
        } else if (duo__opt_val(argc, argv, &i, "--curves", &v)) {
            if ((curves = parse_curves(v)) == 0) {
                fprintf(stderr, PROG ": --curves takes a comma-separated list of p256 and secp256k1, got '%s'\n", v);
                return DUO_EXIT_USAGE;
            }
        } else if (duo__opt_val(argc, argv, &i, "--workers", &v)) {
            workers = num("--workers", v, 1, 256);
        } else if (duo__opt_val(argc, argv, &i, "--cq-threads", &v)) {
            cq_threads = num("--cq-threads", v, 1, 64);
        } else if (duo__opt_val(argc, argv, &i, "--prime-pool", &v)) {
            pool = num("--prime-pool", v, 1, 16);
        } else if (strcmp(argv[i], "--require-channel") == 0) {
            require_channel = 1;
        } else if (strcmp(argv[i], "--inline") == 0) {
            inline_sign = 1;
        } else if (duo__opt_val(argc, argv, &i, "--max-enrol-per-peer", &v)) {
            enrol_per_peer = num("--max-enrol-per-peer", v, 1, 1000000);
        } else if (duo__opt_val(argc, argv, &i, "--store-busy-ms", &v)) {
            busy_ms = num("--store-busy-ms", v, 1, 600000);
        } else if (duo__opt_val(argc, argv, &i, "--session-ttl", &v)) {
            ttl = num("--session-ttl", v, 1, 3600);
        } else if (duo__opt_val(argc, argv, &i, "--max-sessions", &v)) {
            max_sessions = num("--max-sessions", v, 1, 1000000);
        } else if (duo__opt_val(argc, argv, &i, "--grace", &v)) {
            grace = num("--grace", v, 0, 3600);
        } else if (duo__opt_val(argc, argv, &i, "--log-format", &v)) {
            if (duo_log_format_parse(&log_fmt, v) != 0) {
                fprintf(stderr, PROG ": --log-format must be text or json (got '%s')\n", v);
                return DUO_EXIT_USAGE;
            }
        } else if (duo__opt_val(argc, argv, &i, "--log-level", &v)) {
            if (duo_log_level_parse(&log_min, v) != 0) {
                fprintf(stderr, PROG ": --log-level must be debug, info, warn or error (got '%s')\n", v);
                return DUO_EXIT_USAGE;
            }
        } else if (duo__opt_val(argc, argv, &i, "--log-file", &v)) {
            log_file = v;
        } else if (duo__opt_val(argc, argv, &i, "--metrics-listen", &v)) {
            metrics_listen = v;
            if (!duo_metrics_listen_ok(v)) {
                fprintf(stderr,
                        PROG ": --metrics-listen '%s' must be ADDR:PORT with a numeric address, e.g. "
                             "127.0.0.1:9464 or [::1]:9464\n",
                        v);
                return DUO_EXIT_USAGE;
            }
        } else if (duo__opt_val(argc, argv, &i, "--rp-listen", &v)) {
            rp_listen = v;
        } else if (duo__opt_val(argc, argv, &i, "--rp-session-ttl", &v)) {
            rp_ttl = num("--rp-session-ttl", v, 1, 3600);
        } else if (duo__opt_val(argc, argv, &i, "--rp-max-per-citizen", &v)) {
            rp_per_citizen = num("--rp-max-per-citizen", v, 1, 1000);
        } else if (duo__opt_val(argc, argv, &i, "--rp-max-per-rp", &v)) {
            rp_per_rp = num("--rp-max-per-rp", v, 1, 1000000);
        } else if (duo__opt_val(argc, argv, &i, "--lock-policy", &v)) {
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
    if (rp_listen && insecure) {
        fprintf(stderr, PROG ": --rp-listen needs TLS (relying parties authenticate by client certificate); "
                             "drop --insecure\n");
        return DUO_EXIT_USAGE;
    }
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || !colon[1]) {
        fprintf(stderr, PROG ": --listen '%s' must be ADDR:PORT, e.g. 127.0.0.1:7443\n", listen);
        return DUO_EXIT_USAGE;
    }

    /* The log first: SQLite's and gRPC's lines go there from now on
     * (before any store opens or gRPC starts). */
    if (duo_log_open(log_file, log_fmt, log_min, err, sizeof err) != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        return DUO_EXIT_FAIL;
    }
    int lock_fd = serve_lock(dir);
    if (lock_fd < 0) return DUO_EXIT_FAIL;
    if (kek_ref != NULL && duo__kek_expect(dir, kek_ref, err, sizeof err) != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        return DUO_EXIT_FAIL;
    }

    char *cert = NULL, *key = NULL;
    size_t key_len = 0;
    char cpath[DUO_PATH_MAX], kpath[DUO_PATH_MAX];
    if (!insecure) {
        snprintf(cpath, sizeof cpath, "%s", cert_path ? cert_path : "");
        snprintf(kpath, sizeof kpath, "%s", key_path ? key_path : "");
        if (!cert_path) snprintf(cpath, sizeof cpath, "%s/" DUO_FILE_CERT, dir);
        if (!key_path) snprintf(kpath, sizeof kpath, "%s/" DUO_FILE_KEY, dir);
        int read_ok = 0;
        if (load_tls(&cert, &key, &key_len, cpath, kpath, &read_ok, err, sizeof err) != DUO_OK) {
            if (!read_ok) /* Plaintext is not a fix for a missing certificate. */
                fprintf(stderr,
                        PROG ": TLS: %s; 'duosign-cloud init --data DIR' creates a data directory with a server "
                             "certificate and key (" DUO_FILE_CERT ", " DUO_FILE_KEY "), or pass --tls-cert FILE and "
                             "--tls-key FILE\n",
                        err);
            else
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
    st.cert_path = insecure ? NULL : cpath;
    st.key_path = insecure ? NULL : kpath;
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
                               .rp_ttl_s = rp_ttl,
                               .rp_max_per_citizen = rp_per_citizen,
                               .rp_max_per_rp = rp_per_rp,
                               .require_channel = require_channel,
                               .loop = &loop};
    int r = duo_service_new(&st.svc, err, sizeof err, &scfg);
    if (r != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err[0] ? err : duo_strerror(r));
        if (r == DUO_E_STORE_ROLLED_BACK) fail_exit = duo_err_exit_code(r); /* errors.h */
        goto fail_loop;
    }
    duo_server_config cfg = {.listen = listen,
                             .insecure = insecure,
                             .tls_cert_pem = cert,
                             .tls_key_pem = key,
                             .service = &duosign__v1__duo_sign__descriptor,
                             .handler = duo_service_handler(),
                             .refused = duo_service_refused(),
                             .app = st.svc,
                             .cq_count = 1,
                             .cq_threads = cq_threads,
                             .workers = workers,
                             .inline_methods = inline_sign ? duo_service_inline_methods() : 0};
    r = duo_server_start(&st.srv, err, sizeof err, &cfg);
    if (r == DUO_OK && rp_listen) r = start_rp(&st, rp_listen, cert, key, cq_threads, workers, err, sizeof err);
    free_key(&key, key_len);
    free(cert);
    cert = NULL;
    if (r != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err[0] ? err : duo_strerror(r));
        duo_server_free(st.srv);
        duo_service_stop(st.svc);
        uv_run(&loop, UV_RUN_DEFAULT);
        duo_service_free(st.svc);
        goto fail_loop;
    }
    duo_metrics_http *mh = NULL;
    duo_service_metrics_methods();
    if (metrics_listen &&
        duo_metrics_http_start(&mh, metrics_listen, duo_service_metrics_gauges, st.svc, err, sizeof err) != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        duo_server_free(st.rp_srv);
        duo_server_shutdown(st.srv, 0);
        duo_service_stop(st.svc);
        uv_run(&loop, UV_RUN_DEFAULT);
        duo_service_free(st.svc);
        duo_server_free(st.srv);
        uv_loop_close(&loop);
        return DUO_EXIT_FAIL;
    }
    uv_signal_init(&loop, &st.sigterm);
    uv_signal_init(&loop, &st.sigint);
    uv_signal_init(&loop, &st.sighup);
    st.sigterm.data = st.sigint.data = st.sighup.data = &st;
    uv_signal_start(&st.sigterm, on_signal, SIGTERM);
    uv_signal_start(&st.sigint, on_signal, SIGINT);
    uv_signal_start(&st.sighup, on_hup, SIGHUP);

    char mline[160] = "";
    if (mh) {
        const char *mc = strrchr(metrics_listen, ':');
        snprintf(mline, sizeof mline, ", metrics on http://%.*s:%d/metrics", (int)(mc - metrics_listen), metrics_listen,
                 duo_metrics_http_port(mh));
    }
    if (st.rp_srv) {
        const char *rc = strrchr(rp_listen, ':');
        snprintf(mline + strlen(mline), sizeof mline - strlen(mline), ", relying parties on %.*s:%d",
                 (int)(rc - rp_listen), rp_listen, duo_server_port(st.rp_srv));
    }
    printf("listening on %.*s:%d (%s, paillier %u bits)%s\n", (int)(colon - listen), listen, duo_server_port(st.srv),
           insecure ? "plaintext, --insecure" : "TLS", bits, mline);
    fflush(stdout);
    duo_log_event(DUO_LOG_INFO, "daemon.start", NULL, NULL, "duosign-cloud %s serving %s on %.*s:%d (%s)%s",
                  DUOSIGN_VERSION, dir, (int)(colon - listen), listen, duo_server_port(st.srv),
                  insecure ? "plaintext" : "TLS", mline);

    uv_run(&loop, UV_RUN_DEFAULT);
    duo_metrics_http_stop(mh); /* after the drain: the last scrape sees it */

    duo_server_stats stats;
    duo_server_get_stats(st.srv, &stats);
    duo_service_free(st.svc);
    duo_server_free(st.rp_srv);
    duo_server_free(st.srv);
    if (uv_loop_close(&loop) != 0)
        duo_log_event(DUO_LOG_WARN, "daemon.stop", NULL, NULL, "event loop closed with open handles");
    duo_log_event(DUO_LOG_INFO, "daemon.stop", NULL, NULL,
                  "stopped cleanly: %llu calls, %llu ok, %llu failed, %llu unimplemented, %llu "
                  "deadline exceeded, %llu cancelled, %llu run on the polling thread",
                  (unsigned long long)stats.calls, (unsigned long long)stats.ok, (unsigned long long)stats.failed,
                  (unsigned long long)stats.unimplemented, (unsigned long long)stats.deadline_exceeded,
                  (unsigned long long)stats.cancelled, (unsigned long long)stats.inlined);
    duo_log_close();
    return DUO_EXIT_OK;

fail_loop:
    uv_loop_close(&loop);
fail_tls:
    free(cert);
    free_key(&key, key_len);
    return fail_exit;
}
