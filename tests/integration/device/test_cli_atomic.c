/* The CLI's atomic, durable file write: new file, overwrite, mode, no
 * temporary files left behind, failures leave the old file intact. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic.h"
#include "test_harness.h"

static char dir[256];

static int count_entries(void) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL) return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    }
    closedir(d);
    return n;
}

static void test_write_and_overwrite(void) {
    char path[400];
    struct stat st;
    uint8_t *data = NULL;
    size_t len = 0;

    snprintf(path, sizeof path, "%s/state.bin", dir);
    umask(022);
    DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"first", 5, 0600) == 0);
    DUO_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    DUO_CHECK(duo_cli_read_file(path, &data, &len, 1 << 20) == 0 && len == 5 && memcmp(data, "first", 5) == 0);
    free(data);
    DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"second!", 7, 0600) == 0);
    DUO_CHECK(duo_cli_read_file(path, &data, &len, 1 << 20) == 0 && len == 7 && memcmp(data, "second!", 7) == 0);
    free(data);
    DUO_CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    DUO_CHECK(count_entries() == 1); /* no temporary file left */
    /* Empty content is fine. */
    DUO_CHECK(duo_cli_write_atomic(path, NULL, 0, 0644) == 0);
    DUO_CHECK(stat(path, &st) == 0 && st.st_size == 0 && (st.st_mode & 0777) == 0644);
    unlink(path);
}

static void test_failures(void) {
    char path[700], ro[400], target[400];
    uint8_t *data = NULL;
    size_t len = 0;

    snprintf(path, sizeof path, "%s/missing-dir/state.bin", dir);
    DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"x", 1, 0600) == -ENOENT);
    DUO_CHECK(count_entries() == 0);
    /* Target is a directory: rename fails, the temporary is removed. */
    snprintf(target, sizeof target, "%s/adir", dir);
    DUO_CHECK(mkdir(target, 0700) == 0);
    DUO_CHECK(duo_cli_write_atomic(target, (const uint8_t *)"x", 1, 0600) != 0);
    DUO_CHECK(count_entries() == 1);
    rmdir(target);
    /* Read-only directory (skipped as root, who can write anyway). */
    if (geteuid() != 0) {
        snprintf(ro, sizeof ro, "%s/ro", dir);
        DUO_CHECK(mkdir(ro, 0700) == 0);
        snprintf(path, sizeof path, "%s/state.bin", ro);
        DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"old", 3, 0600) == 0);
        DUO_CHECK(chmod(ro, 0500) == 0);
        DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"new", 3, 0600) == -EACCES);
        DUO_CHECK(duo_cli_read_file(path, &data, &len, 16) == 0 && len == 3 && memcmp(data, "old", 3) == 0);
        free(data);
        chmod(ro, 0700);
        unlink(path);
        rmdir(ro);
    }
    /* Reading: missing file, size cap. */
    snprintf(path, sizeof path, "%s/nope", dir);
    DUO_CHECK(duo_cli_read_file(path, &data, &len, 16) == -ENOENT);
    snprintf(path, sizeof path, "%s/big", dir);
    DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"0123456789abcdefXYZ", 19, 0600) == 0);
    DUO_CHECK(duo_cli_read_file(path, &data, &len, 16) == -EFBIG);
    unlink(path);
}

/* Item 9 of issue 13: what a process killed while saving left behind is
 * wiped and removed; other files are not touched. */
static void test_cleanup_tmp(void) {
    char path[400], p[600];
    static const char *leftovers[] = {"state.bin.tmp.AbC123", "state.bin.tmp.zz9Z0q", "state.bin.wipe.4242"};
    static const char *keep[] = {"state.bin.tmp.ABC", "state.bin.tmp.AbC1234", "other.bin.tmp.AbC123", "state.bin.bak"};
    unsigned n = 99;
    size_t i;
    struct stat st;

    snprintf(path, sizeof path, "%s/state.bin", dir);
    DUO_CHECK(duo_cli_write_atomic(path, (const uint8_t *)"state", 5, 0600) == 0);
    for (i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, leftovers[i]);
        DUO_CHECK(duo_cli_write_atomic(p, (const uint8_t *)"next secret", 11, 0600) == 0);
    }
    for (i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, keep[i]);
        DUO_CHECK(duo_cli_write_atomic(p, (const uint8_t *)"keep", 4, 0600) == 0);
    }
    DUO_CHECK(duo_cli_cleanup_tmp(path, &n) == 0);
    DUO_CHECK(n == 3);
    for (i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, leftovers[i]);
        DUO_CHECK(stat(p, &st) != 0 && errno == ENOENT);
    }
    for (i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, keep[i]);
        DUO_CHECK(stat(p, &st) == 0);
        unlink(p);
    }
    DUO_CHECK(stat(path, &st) == 0 && st.st_size == 5); /* the state itself stays */
    DUO_CHECK(count_entries() == 1);
    /* Nothing to do: 0 removed. A relative name works too (cwd = dir). */
    DUO_CHECK(duo_cli_cleanup_tmp(path, &n) == 0 && n == 0);
    unlink(path);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/duo-atomic-XXXXXX");
    if (mkdtemp(dir) == NULL) return 1;
    DUO_RUN(test_write_and_overwrite);
    DUO_RUN(test_failures);
    DUO_RUN(test_cleanup_tmp);
    rmdir(dir);
    return duo_test_finish();
}
