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

/* Keys by state (vocab.h duo_key_state: 1..5). */
static int count_cb(void *data, const duo_key_info *k) {
    size_t *n = data;
    n[0]++;
    if (k->state > 0 && k->state <= DUO_KEY_STATE_REVOKED) n[k->state]++;
    return 0;
}

/* Each sealed value opened under the directory's KEK(s). */
static int check_sealed(duo_keystore *ks) {
    duo_kek_census c;
    int r = duo_keystore_kek_census(ks, &c);
    if (r != DUO_OK) {
        printf("sealed values: not checked (%s)\n", duo_strerror(r));
        return r;
    }
    if (c.unopened == 0) {
        printf("sealed values: ok, %zu open under the KEK\n", c.total);
        return DUO_OK;
    }
    printf("sealed values: FAILED: %zu of %zu do not open (%s): edited, or sealed under a KEK this directory lacks\n",
           c.unopened, c.total, duo_strerror(c.first_error));
    return c.first_error != DUO_OK ? c.first_error : DUO_E_STATE_CORRUPT;
}

int duo__cmd_check(int argc, char **argv) {
    const char *dir = NULL, *none = NULL;
    char err[DUO_ERRMSG_MAX], why[320] = "", hh[2 * DUO_AUDIT_HASH_LEN + 1];
    duo_keystore *ks = NULL;
    uint64_t bad = 0, count = 0;
    uint8_t head[DUO_AUDIT_HASH_LEN];
    size_t n[DUO_KEY_STATE_REVOKED + 1] = {0};
    int r, worst = DUO_OK;
    parse(argc, argv, "check", NULL, &dir, &none,
          "usage: " PROG " check --data DIR\n\n"
          "Runs the store's full integrity check (SQLite's integrity_check; on\n"
          "PostgreSQL, which checks its own pages, whether data checksums are on),\n"
          "verifies the audit chain, every key's policy MAC, that every sealed value\n"
          "opens under the KEK, and the store against this directory's high-water\n"
          "mark; counts the keys by state. Read-only (it writes the mark only if\n"
          "there is none yet); safe while the daemon serves.\n"
          "Exit 0 when all pass, else the exit code of the first failure.\n");
    if ((r = duo_datadir_open_store_unmarked(&ks, err, sizeof err, dir)) != DUO_OK) return fail_code(r, err);
    r = duo_keystore_integrity_check(ks, 1, why, sizeof why);
    if (r == DUO_OK)
        printf("integrity (full): %s\n", why[0] ? why : "ok");
    else
        printf("integrity (full): DAMAGED: %s\n", why[0] ? why : duo_strerror(r));
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    r = duo_keystore_audit_verify(ks, &bad, &count, head);
    duo__hex(hh, head, sizeof head);
    if (r == DUO_OK)
        printf("audit chain: ok, %llu entries, head %s\n", (unsigned long long)count, hh);
    else
        printf("audit chain: BROKEN at entry %llu\n", (unsigned long long)bad);
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    r = duo_keystore_key_list(ks, NULL, count_cb, n);
    if (r == DUO_OK)
        printf("policy MACs: ok, %zu keys (%zu active, %zu pending, %zu locked, %zu suspended, %zu revoked)\n", n[0],
               n[DUO_KEY_STATE_ACTIVE], n[DUO_KEY_STATE_PENDING], n[DUO_KEY_STATE_LOCKED], n[DUO_KEY_STATE_SUSPENDED],
               n[DUO_KEY_STATE_REVOKED]);
    else
        printf("policy MACs: FAILED after %zu keys (%s): a key row was edited outside duosign\n", n[0],
               duo_strerror(r));
    if (r != DUO_OK && worst == DUO_OK) worst = r;
    if ((r = check_sealed(ks)) != DUO_OK && worst == DUO_OK) worst = r;
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

static const char restore_help[] = "usage: " PROG " restore --data DIR --in FILE\n"
                                   "       " PROG " restore --data DIR --mark-only\n\n"
                                   "--in FILE (SQLite): installs the backup FILE as the data directory's key\n"
                                   "store. The backup is checked first (integrity, audit chain, policy MACs\n"
                                   "under this directory's KEK); the old keys.db is kept aside as\n"
                                   "keys.db.before-restore-TIME; the store is marked restored (an audit entry\n"
                                   "store.restore with a new epoch, which opens the one-time resynchronisation\n"
                                   "of every active or locked key) and the high-water mark moves to it.\n\n"
                                   "--mark-only (PostgreSQL): after a point-in-time recovery of the database,\n"
                                   "which this node's high-water mark refuses (exit 18): checks the store\n"
                                   "(audit chain, policy MACs under this directory's KEK), records store.restore\n"
                                   "with this node's next epoch, opens the one-time resynchronisation of every\n"
                                   "active or locked key (one already open or used in that epoch is left) and\n"
                                   "moves this node's mark to it. Run it on every node whose start is refused,\n"
                                   "before starting any; on a node whose mark the store is not older than it\n"
                                   "changes nothing. Devices that signed after the recovery target then\n"
                                   "resynchronise once (duosign does it by itself).\n\n"
                                   "The daemon of DIR must be stopped.\n";

static int restore_mark_only(const char *dir) {
    char err[DUO_ERRMSG_MAX] = "", hh[2 * DUO_AUDIT_HASH_LEN + 1];
    duo_mark_rec m;
    int changed = 0, r;
    memset(&m, 0, sizeof m);
    if ((r = duo_datadir_restore_mark_only(dir, err, sizeof err, &m, &changed)) != DUO_OK) return fail_code(r, err);
    duo__hex(hh, m.head, sizeof m.head);
    if (!changed)
        printf("the store of %s is not older than its high-water mark (epoch %llu, %llu audit entries): nothing to "
               "do\n",
               dir, (unsigned long long)m.epoch, (unsigned long long)m.seq);
    else
        printf("recovered PostgreSQL store accepted for %s: epoch %llu, %llu audit entries, head %s\n", dir,
               (unsigned long long)m.epoch, (unsigned long long)m.seq, hh);
    return DUO_EXIT_OK;
}

int duo__cmd_restore(int argc, char **argv) {
    const char *dir = NULL, *in = NULL, *v;
    char err[DUO_ERRMSG_MAX] = "", hh[2 * DUO_AUDIT_HASH_LEN + 1];
    duo_mark_rec m;
    int mark_only = 0, r;
    for (int i = 1; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", restore_help);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--in", &v)) {
            in = v;
        } else if (strcmp(argv[i], "--mark-only") == 0) {
            mark_only = 1;
        } else {
            duo__unknown_arg("restore", argv[i]);
        }
    }
    duo__need("restore", "--data DIR", dir);
    if (mark_only && in != NULL) {
        fprintf(stderr, PROG " restore: --in FILE and --mark-only exclude each other (--in: a SQLite backup file; "
                             "--mark-only: a PostgreSQL store after its own recovery)\n");
        return DUO_EXIT_USAGE;
    }
    if (mark_only) return restore_mark_only(dir);
    duo__need("restore", "--in FILE (or --mark-only for a PostgreSQL store)", in);
    if ((r = duo_datadir_restore(dir, in, err, sizeof err, &m)) != DUO_OK) return fail_code(r, err);
    duo__hex(hh, m.head, sizeof m.head);
    printf("restored %s into %s: epoch %llu, %llu audit entries, head %s\n", in, dir, (unsigned long long)m.epoch,
           (unsigned long long)m.seq, hh);
    return DUO_EXIT_OK;
}
