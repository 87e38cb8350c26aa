#include "test_harness.h"

#include <time.h>

int duo_test_failures = 0;
int duo_test_checks = 0;

void duo_test_fail(const char *file, int line, const char *expr, const char *detail) {
    duo_test_failures++;
    fprintf(stderr, "%s:%d: check failed: %s%s%s\n", file, line, expr, detail ? ": " : "", detail ? detail : "");
}

int duo_test_finish(void) {
    fprintf(stderr, "%d checks, %d failures\n", duo_test_checks, duo_test_failures);
    return duo_test_failures == 0 ? 0 : 1;
}

unsigned long duo_test_seed(void) {
    static unsigned long seed;
    static int have;
    if (!have) {
        const char *env = getenv("DUO_TEST_SEED");
        seed = env != NULL ? strtoul(env, NULL, 0) : (unsigned long)time(NULL);
        have = 1;
        fprintf(stderr, "DUO_TEST_SEED=%lu\n", seed);
    }
    return seed;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double duo_test_median(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
