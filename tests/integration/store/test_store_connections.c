/* Regression test for commit 8274b1d: several store connections in one
 * process, and another process (the admin CLI) using the same database.
 *
 * duo__keystore_sqlite_open() used to open() and close() an existing database
 * file before SQLite opened it. close() drops every POSIX (fcntl) lock this
 * process holds on that file, including the SHARED locks of the connections
 * already open, while SQLite still believes it holds them. Another process
 * closing its connection then got the EXCLUSIVE lock, concluded it was the
 * last user, checkpointed and deleted the WAL under us: later writes went to
 * the unlinked WAL and were lost.
 *
 * The test: connections A and B; open a third, C (the old code dropped A's
 * and B's locks here); write through A; close C; a child process (this
 * binary, re-executed) opens the store, reads and closes like the admin CLI;
 * then the WAL must still exist, and a write through B after that must be
 * visible to yet another process. The daemon relies on this: it keeps one
 * connection per handler thread (cloud_half/daemon/service.c).
 *
 * Also: a deferred commit (duo_keystore_commit_mode, SignStart's writes) is
 * not lost when the process is killed right after it: only an OS crash or a
 * power failure before the next durable commit could lose it.
 *
 * And: connections that share a write mutex (duo_keystore_config.write_mu,
 * as the daemon's do) queue on it, not on SQLite's lock: with a 1 ms busy
 * timeout, two threads writing flat out through two connections never see
 * a busy error. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "store_test_util.h"

/* Child mode: argv = [self, "--child", db, kek, token_hex_or_-] */
static int child_main(char **argv) {
    duo_kek kek;
    duo_keystore *ks = NULL;
    char err[256], cit[DUO_CITIZEN_ID_MAX + 1];
    int rc = 0;
    if (duo_kek_load_file(&kek, err, sizeof err, argv[3]) != DUO_OK) return 10;
    if (duo_keystore_open_sqlite(&ks, argv[2], &kek, NULL) != DUO_OK) return 11;
    if (strcmp(argv[4], "-") != 0) {
        /* The token must be there (the parent's store clock is in 2023, so
         * with the real clock here it reads as expired: still found). */
        int r = duo_keystore_token_check(ks, cit, (const uint8_t *)argv[4], strlen(argv[4]));
        if (r != DUO_OK && r != DUO_E_TOKEN_EXPIRED) rc = 12;
    }
    duo_keystore_free(ks); /* a last-connection close would checkpoint and delete the WAL */
    duo_kek_clear(&kek);
    return rc;
}

/* Crash mode: argv = [self, "--crash-write", db, kek, token]: one deferred
 * commit, then SIGKILL with the connection open (no close, no checkpoint). */
static int crash_write_main(char **argv) {
    duo_kek kek;
    duo_keystore *ks = NULL;
    char err[256];
    if (duo_kek_load_file(&kek, err, sizeof err, argv[3]) != DUO_OK) return 10;
    if (duo_keystore_open_sqlite(&ks, argv[2], &kek, NULL) != DUO_OK) return 11;
    if (duo_keystore_commit_mode(ks, DUO_COMMIT_DEFERRED) != DUO_OK) return 12;
    if (duo_keystore_token_insert(ks, (const uint8_t *)argv[4], strlen(argv[4]), "CRASH", 600, NULL) != DUO_OK)
        return 13;
    kill(getpid(), SIGKILL);
    return 14;
}

static const char *g_self;

static int run_child(const store_env *e, const char *token) {
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execl(g_self, g_self, "--child", e->db, e->kek_path, token, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int wal_exists(const store_env *e) {
    char p[PATH_MAX + 8];
    struct stat st;
    snprintf(p, sizeof p, "%s-wal", e->db);
    return stat(p, &st) == 0;
}

static void test_third_connection_keeps_locks(void) {
    store_env e;
    duo_keystore *b = NULL, *c = NULL;
    DUO_REQUIRE(env_open(&e) == DUO_OK); /* A = e.ks */
    DUO_REQUIRE(env_open_ks(&e, &b) == DUO_OK);
    DUO_REQUIRE(wal_exists(&e));
    DUO_REQUIRE(env_open_ks(&e, &c) == DUO_OK); /* the old code dropped A's and B's locks here */
    const char *ta = "token-through-connection-A-0001";
    const char *tb = "token-through-connection-B-0002";
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, (const uint8_t *)ta, strlen(ta), "CONN-A", 600, NULL));
    duo_keystore_free(c);
    c = NULL;
    DUO_CHECK(wal_exists(&e));
    /* Another process comes and goes (the admin CLI). */
    DUO_CHECK(run_child(&e, ta) == 0);
    DUO_CHECK(wal_exists(&e)); /* still ours: nobody checkpointed and deleted it under A and B */
    /* A write after that must reach the real WAL, not an unlinked one. */
    DUO_CHECK_OK(duo_keystore_token_insert(b, (const uint8_t *)tb, strlen(tb), "CONN-B", 600, NULL));
    DUO_CHECK(run_child(&e, tb) == 0);
    DUO_CHECK(run_child(&e, ta) == 0);
    /* And both survive every connection closing (the last close checkpoints). */
    duo_keystore_free(b);
    b = NULL;
    duo_keystore_free(e.ks);
    e.ks = NULL;
    DUO_CHECK(run_child(&e, ta) == 0);
    DUO_CHECK(run_child(&e, tb) == 0);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    uint64_t bad = 0, n = 0;
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, &bad, &n, NULL));
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_CHECK(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && strcmp((const char *)sqlite3_column_text(q, 0), "ok") == 0);
        sqlite3_finalize(q);
        DUO_CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 2);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    env_close(&e);
}

static void test_deferred_commit_survives_process_kill(void) {
    store_env e;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_CHECK(duo_keystore_commit_mode(e.ks, 7) == DUO_E_INVALID_ARG);
    DUO_CHECK(duo_keystore_commit_mode(NULL, DUO_COMMIT_DURABLE) == DUO_E_INVALID_ARG);
    /* Through this process's own connection, deferred then durable again. */
    const char *t1 = "token-deferred-commit-0001";
    const char *t2 = "token-after-switch-back-0002";
    DUO_CHECK_OK(duo_keystore_commit_mode(e.ks, DUO_COMMIT_DEFERRED));
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, (const uint8_t *)t1, strlen(t1), "DEFER", 600, NULL));
    DUO_CHECK_OK(duo_keystore_commit_mode(e.ks, DUO_COMMIT_DURABLE));
    DUO_CHECK_OK(duo_keystore_token_insert(e.ks, (const uint8_t *)t2, strlen(t2), "DEFER", 600, NULL));
    DUO_CHECK(run_child(&e, t1) == 0 && run_child(&e, t2) == 0);
    /* A process killed right after a deferred commit (and with it the last
     * other connection closed first, so nothing of ours holds the WAL open
     * for it): the write is there. */
    duo_keystore_free(e.ks);
    e.ks = NULL;
    const char *t3 = "token-written-then-killed-0003";
    pid_t pid = fork();
    DUO_REQUIRE(pid >= 0);
    if (pid == 0) {
        execl(g_self, g_self, "--crash-write", e.db, e.kek_path, t3, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    DUO_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    DUO_CHECK(run_child(&e, t3) == 0);
    DUO_REQUIRE(env_open_ks(&e, &e.ks) == DUO_OK);
    uint64_t bad = 0, n = 0;
    DUO_CHECK_OK(duo_keystore_audit_verify(e.ks, &bad, &n, NULL));
    env_close(&e);
}

typedef struct {
    duo_keystore *ks;
    int id, failures, first_err;
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    for (int i = 0; i < 150; i++) {
        char tok[64];
        int n = snprintf(tok, sizeof tok, "token-writer-%d-%04d-padding", w->id, i);
        int r = duo_keystore_token_insert(w->ks, (const uint8_t *)tok, (size_t)n, "WRITER", 600, NULL);
        if (r != DUO_OK && w->failures++ == 0) w->first_err = r;
    }
    return NULL;
}

static void test_shared_write_mutex(void) {
    store_env e;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    writer w[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        duo_keystore_config cfg;
        env_cfg(&e, &cfg);
        cfg.busy_timeout_ms = 1;
        cfg.write_mu = &mu;
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        DUO_REQUIRE(duo_keystore_open_sqlite(&w[i].ks, e.db, &e.kek, &cfg) == DUO_OK);
    }
    for (int i = 0; i < 2; i++) DUO_REQUIRE(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        if (w[i].failures)
            fprintf(stderr, "# writer %d: %d failures, first %s\n", i, w[i].failures, duo_err_name(w[i].first_err));
        DUO_CHECK(w[i].failures == 0);
        duo_keystore_free(w[i].ks);
    }
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        DUO_REQUIRE(sqlite3_open(e.db, &db) == SQLITE_OK);
        DUO_CHECK(sqlite3_prepare_v2(db, "SELECT count(*) FROM tokens", -1, &q, NULL) == SQLITE_OK);
        DUO_CHECK(sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == 300);
        sqlite3_finalize(q);
        sqlite3_close(db);
    }
    pthread_mutex_destroy(&mu);
    env_close(&e);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "--child") == 0) return child_main(argv);
    if (argc == 5 && strcmp(argv[1], "--crash-write") == 0) return crash_write_main(argv);
    g_self = "/proc/self/exe";
    static char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        g_self = self;
    }
    DUO_RUN(test_third_connection_keeps_locks);
    DUO_RUN(test_deferred_commit_survives_process_kill);
    DUO_RUN(test_shared_write_mutex);
    return duo_test_finish();
}
