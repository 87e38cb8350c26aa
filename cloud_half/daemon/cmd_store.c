/* duosign-cloud check, backup, restore: the store's health and its copies
 * (docs/STORE.md "Backups and restore", the daemon README's procedure). */
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "keystore.h"
#include "mark.h"

#define PROG "duosign-cloud"

/* Parses "--data DIR" and one file option (--out or --in); exits on misuse. */
static void parse(int argc, char **argv, const char *cmd, const char *fopt, const char **dir, const char **file,
                  const char *help) {
    const char *v;
    for (int i = 1; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", help);
            exit(DUO_EXIT_OK);
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            *dir = v;
        } else if (fopt != NULL && duo__opt_val(argc, argv, &i, fopt, &v)) {
            *file = v;
        } else {
            duo__unknown_arg(cmd, argv[i]);
        }
    }
    duo__need(cmd, "--data DIR", *dir);
    if (fopt != NULL) duo__need(cmd, strcmp(fopt, "--out") == 0 ? "--out FILE" : "--in FILE", *file);
}

/* "duosign-cloud: MESSAGE"; the exit code of r from the error table. */
static int fail_code(int r, const char *msg) {
    fprintf(stderr, PROG ": %s\n", msg);
    return duo_err_exit_code(r) > 1 ? duo_err_exit_code(r) : DUO_EXIT_FAIL;
}

static int count_cb(void *data, const duo_key_info *k) {
    (void)k;
    (*(size_t *)data)++;
    return 0;
}

int duo__cmd_check(int argc, char **argv) {
    const char *dir = NULL, *none = NULL;
    char err[DUO_ERRMSG_MAX], why[256], hh[2 * DUO_AUDIT_HASH_LEN + 1];
    duo_keystore *ks = NULL;
    uint64_t bad = 0, count = 0;
    uint8_t head[DUO_AUDIT_HASH_LEN];
    size_t n = 0;
    int r, worst = DUO_OK;
    parse(argc, argv, "check", NULL, &dir, &none,
          "usage: " PROG " check --data DIR\n\n"
          "Runs SQLite's full integrity check, verifies the audit chain, every key's\n"
          "policy MAC and the store against its high-water mark. Read-only (it writes\n"
          "the mark only if there is none yet); safe while the daemon serves.\n"
          "Exit 0 when all pass, else the exit code of the first failure.\n");
    if ((r = duo_datadir_open_store_unmarked(&ks, err, sizeof err, dir)) != DUO_OK) return fail_code(r, err);
    r = duo_keystore_integrity_check(ks, 1, why, sizeof why);
    printf("integrity (full): %s%s%s\n", r == DUO_OK ? "ok" : "DAMAGED: ", r == DUO_OK ? "" : why,
           r == DUO_OK || why[0] ? "" : duo_strerror(r));
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    r = duo_keystore_audit_verify(ks, &bad, &count, head);
    duo__hex(hh, head, sizeof head);
    if (r == DUO_OK)
        printf("audit chain: ok, %llu entries, head %s\n", (unsigned long long)count, hh);
    else
        printf("audit chain: BROKEN at entry %llu\n", (unsigned long long)bad);
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    r = duo_keystore_key_list(ks, NULL, count_cb, &n);
    if (r == DUO_OK)
        printf("policy MACs: ok, %zu keys\n", n);
    else
        printf("policy MACs: FAILED after %zu keys (%s): a key row was edited outside duosign\n", n, duo_strerror(r));
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    r = duo_datadir_mark_check(ks, err, sizeof err, dir);
    if (r == DUO_OK)
        printf("high-water mark: ok\n");
    else
        printf("high-water mark: FAILED: %s\n", err);
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    duo_keystore_free(ks);
    if (worst == DUO_OK) return DUO_EXIT_OK;
    snprintf(err, sizeof err, "check FAILED (%s); see above", duo_strerror(worst));
    return fail_code(worst, err);
}

int duo__cmd_backup(int argc, char **argv) {
    const char *dir = NULL, *out = NULL;
    char err[DUO_ERRMSG_MAX];
    duo_keystore *ks = NULL;
    int r;
    parse(argc, argv, "backup", "--out", &dir, &out,
          "usage: " PROG " backup --data DIR --out FILE\n\n"
          "Writes a consistent copy of the key store to the new file FILE (0600; never\n"
          "overwritten), with SQLite's online backup: safe while the daemon serves.\n"
          "The copy holds sealed secrets only; keep the data directory's kek apart\n"
          "from it. Restore with '" PROG " restore'.\n");
    if ((r = duo_datadir_open_store_unmarked(&ks, err, sizeof err, dir)) != DUO_OK) return fail_code(r, err);
    r = duo_keystore_backup(ks, out);
    duo_keystore_free(ks);
    if (r == DUO_E_EXISTS)
        snprintf(err, sizeof err, "%s exists; backup never overwrites a file", out);
    else if (r != DUO_OK)
        snprintf(err, sizeof err, "cannot write the backup %s: %s", out, duo_strerror(r));
    if (r != DUO_OK) return fail_code(r, err);
    printf("backup written to %s\n", out);
    return DUO_EXIT_OK;
}

int duo__cmd_restore(int argc, char **argv) {
    const char *dir = NULL, *in = NULL;
    char err[DUO_ERRMSG_MAX] = "", hh[2 * DUO_AUDIT_HASH_LEN + 1];
    duo_mark_rec m;
    int r;
    parse(argc, argv, "restore", "--in", &dir, &in,
          "usage: " PROG " restore --data DIR --in FILE\n\n"
          "Installs the backup FILE as the data directory's key store. The daemon must\n"
          "be stopped. The backup is checked first (integrity, audit chain, policy\n"
          "MACs under this directory's KEK); the old keys.db is kept aside as\n"
          "keys.db.before-restore-TIME; the store is marked restored (an audit entry\n"
          "store.restore with a new epoch) and the high-water mark moves to it.\n");
    if ((r = duo_datadir_restore(dir, in, err, sizeof err, &m)) != DUO_OK) return fail_code(r, err);
    duo__hex(hh, m.head, sizeof m.head);
    printf("restored %s into %s: epoch %llu, %llu audit entries, head %s\n", in, dir, (unsigned long long)m.epoch,
           (unsigned long long)m.seq, hh);
    return DUO_EXIT_OK;
}
