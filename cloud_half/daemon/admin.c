/* duosign-cloud: what the admin commands share: option parsing, messages,
 * opening the data directory's store. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "keystore.h"

#define PROG "duosign-cloud"

/* ------------------------------------------------------ argument helper */

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i. */
int duo__opt_val(int argc, char **argv, int *i, const char *name, const char **val) {
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

int duo__is_help(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

void duo__unknown_arg(const char *cmd, const char *a) {
    fprintf(stderr, PROG " %s: unknown argument '%s' (try '" PROG " %s --help')\n", cmd, a, cmd);
    exit(DUO_EXIT_USAGE);
}

void duo__need(const char *cmd, const char *opt, const char *val) {
    if (!val || !*val) {
        fprintf(stderr, PROG " %s: %s is required (try '" PROG " %s --help')\n", cmd, opt, cmd);
        exit(DUO_EXIT_USAGE);
    }
}

int duo__fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return DUO_EXIT_FAIL;
}

/* ------------------------------------------------------------- store */

duo_keystore *duo__open_or_die(const char *dir) {
    char err[DUO_ERRMSG_MAX];
    duo_keystore *ks;
    int r = duo_datadir_open_store(&ks, err, sizeof err, dir, 0, NULL, 0);
    if (r != DUO_OK) {
        fprintf(stderr, PROG ": %s\n", err);
        /* A rolled-back store has its own exit code (errors.h). */
        exit(r == DUO_E_STORE_ROLLED_BACK ? duo_err_exit_code(r) : DUO_EXIT_FAIL);
    }
    return ks;
}
