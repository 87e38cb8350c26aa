/* duosign-mark-cost: what the high-water mark (cloud_half/store/mark.h) adds
 * to a durable audited write, the one write per signature that moves it
 * (SignFinish; SignStart's write is deferred and does not). Runs N durable
 * audit appends on a fresh store without the mark, then N with it, in a
 * directory on the disk under test, and prints the median per write of each
 * and the difference (docs/BENCHMARKS.md). Never asserts a timing.
 * Usage: duosign-mark-cost [--dir DIR] [--n N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keystore.h"
#include "mark.h"
#include "test_harness.h"

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* Median microseconds per durable audited write, with or without the mark. */
static double run(const char *dir, int n, int marked) {
    char db[4200], mark[4200];
    duo_kek kek;
    duo_keystore *ks = NULL;
    duo_keystore_config cfg;
    duo_audit_event ev = {.kind = DUO_AUDIT_SIGN, .citizen_id = "BENCH", .detail = "bench"};
    double *v = calloc((size_t)n, sizeof *v), med;
    snprintf(db, sizeof db, "%s/bench-%d.db", dir, marked);
    snprintf(mark, sizeof mark, "%s/bench-%d.db.mark", dir, marked);
    memset(&kek, 0, sizeof kek);
    memset(kek.data, 7, sizeof kek.data);
    memset(&cfg, 0, sizeof cfg);
    if (marked) cfg.mark_path = mark;
    if (v == NULL || duo_keystore_open_sqlite(&ks, db, &kek, &cfg) != DUO_OK) {
        fprintf(stderr, "cannot open a store in %s\n", dir);
        exit(1);
    }
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (duo_keystore_audit_append(ks, NULL, &ev) != DUO_OK) {
            fprintf(stderr, "append failed\n");
            exit(1);
        }
        v[i] = now_us() - t0;
    }
    duo_keystore_free(ks);
    med = duo_test_median(v, (size_t)n);
    free(v);
    char f[4300];
    const char *sfx[] = {"", "-wal", "-shm", ".mark", ".mark.lock"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(f, sizeof f, "%s%s", db, sfx[i]);
        unlink(f);
    }
    return med;
}

int main(int argc, char **argv) {
    const char *dir = ".";
    int n = 200;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            dir = argv[++i];
        } else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: duosign-mark-cost [--dir DIR] [--n N]\n");
            return 1;
        }
    }
    if (n < 1) n = 1;
    double a = run(dir, n, 0), b = run(dir, n, 1);
    printf("durable audited write, median of %d: without mark %.0f us, with mark %.0f us, mark adds %.0f us\n", n, a, b,
           b - a);
    return 0;
}
