/* A tiny test harness (s2n_test.h / libuv task.h style).
 *
 *   static void test_thing(void) { DUO_CHECK(x == 1); DUO_EXPECT_ERR(f(), DUO_E_BAD_PROOF); }
 *   int main(void) { DUO_RUN(test_thing); return duo_test_finish(); }
 *
 * A failed check prints file:line and the expression and counts a failure;
 * the test function continues so one run shows every broken check. */
#ifndef DUO_TEST_HARNESS_H
#define DUO_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "duosign/errors.h"

extern int duo_test_failures;
extern int duo_test_checks;

void duo_test_fail(const char *file, int line, const char *expr, const char *detail);
int duo_test_finish(void);
/* Seed for randomised tests: $DUO_TEST_SEED or the time; printed once. */
unsigned long duo_test_seed(void);
/* The median of v[0..n) (n >= 1); sorts v in place. For the bench helpers. */
double duo_test_median(double *v, size_t n);

#define DUO_CHECK(cond)                                              \
    do {                                                             \
        duo_test_checks++;                                           \
        if (!(cond)) duo_test_fail(__FILE__, __LINE__, #cond, NULL); \
    } while (0)

#define DUO_CHECK_OK(call)                                                                      \
    do {                                                                                        \
        int duo__r_ = (call);                                                                   \
        duo_test_checks++;                                                                      \
        if (duo__r_ != DUO_OK) duo_test_fail(__FILE__, __LINE__, #call, duo_err_name(duo__r_)); \
    } while (0)

#define DUO_EXPECT_ERR(call, code)                                                                           \
    do {                                                                                                     \
        int duo__r_ = (call);                                                                                \
        duo_test_checks++;                                                                                   \
        if (duo__r_ != (code)) {                                                                             \
            char duo__b_[160];                                                                               \
            snprintf(duo__b_, sizeof duo__b_, "got %s, want %s", duo_err_name(duo__r_), duo_err_name(code)); \
            duo_test_fail(__FILE__, __LINE__, #call, duo__b_);                                               \
        }                                                                                                    \
    } while (0)

/* DUO_CHECK with a printf-style message saying what was seen. */
#define DUO_CHECK_MSG(cond, ...)                               \
    do {                                                       \
        duo_test_checks++;                                     \
        if (!(cond)) {                                         \
            char duo__m_[768];                                 \
            snprintf(duo__m_, sizeof duo__m_, __VA_ARGS__);    \
            duo_test_fail(__FILE__, __LINE__, #cond, duo__m_); \
        }                                                      \
    } while (0)

/* Aborts the current test function on failure (for checks later ones need). */
#define DUO_REQUIRE(cond)                                         \
    do {                                                          \
        duo_test_checks++;                                        \
        if (!(cond)) {                                            \
            duo_test_fail(__FILE__, __LINE__, #cond, "required"); \
            return;                                               \
        }                                                         \
    } while (0)

#define DUO_RUN(fn)                                                                           \
    do {                                                                                      \
        int duo__before_ = duo_test_failures;                                                 \
        fn();                                                                                 \
        fprintf(stderr, "%s %s\n", duo_test_failures == duo__before_ ? "ok  " : "FAIL", #fn); \
    } while (0)

#endif
