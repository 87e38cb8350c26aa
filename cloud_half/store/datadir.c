/* The store of a data directory (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "duosign/mem.h"
#include "kekref.h"
#include "mark.h"

static const char *store_override; /* serve --store URL; set before any open */

void duo_datadir_override_store(const char *url) { store_override = url; }

int duo_store_url_ok(const char *url) {
    return url != NULL && strlen(url) < DUO_STORE_URL_MAX &&
           (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) &&
           strpbrk(url, "\n\r") == NULL;
}

int duo_datadir_set_store_url(char *err, size_t err_cap, const char *dir, const char *url) {
    char path[DUO_PATH_MAX];
    if (!duo_store_url_ok(url)) {
        snprintf(err, err_cap, "the store must be a PostgreSQL URL, postgresql://USER@HOST:PORT/DATABASE");
        return DUO_E_INVALID_ARG;
    }
    snprintf(path, sizeof path, "%s/" DUO_FILE_STORE_URL, dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    size_t len = strlen(url);
    int ok = fd >= 0 && write(fd, url, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (!ok) {
        snprintf(err, err_cap, "cannot write %s: %s", path, strerror(errno));
        return DUO_E_IO;
    }
    return DUO_OK;
}

int duo_datadir_store_location(const char **drv, char *loc, size_t cap, char *err, size_t err_cap, const char *dir) {
    char path[DUO_PATH_MAX];
    if (store_override != NULL) {
        *drv = "postgresql";
        snprintf(loc, cap, "%s", store_override);
        return DUO_OK;
    }
    snprintf(path, sizeof path, "%s/" DUO_FILE_STORE_URL, dir);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        *drv = DUO_DATADIR_DRIVER;
        snprintf(loc, cap, "%s/" DUO_FILE_DB, dir);
        return DUO_OK;
    }
    char url[DUO_STORE_URL_MAX + 2] = "";
    int ok = fgets(url, sizeof url, f) != NULL;
    fclose(f);
    url[strcspn(url, "\n")] = '\0';
    if (!ok || !duo_store_url_ok(url) || strlen(url) >= cap) {
        snprintf(err, err_cap, "%s does not hold a PostgreSQL URL (postgresql://...); write the store's URL there",
                 path);
        return DUO_E_STATE_CORRUPT;
    }
    *drv = "postgresql";
    memcpy(loc, url, strlen(url) + 1);
    duo_memzero(url, sizeof url); /* may hold a password */
    return DUO_OK;
}

int duo_datadir_open_store(duo_keystore **out, char *err, size_t err_cap, const char *dir, int create,
                           pthread_mutex_t *write_mu, int busy_ms) {
    duo_keystore_config kcfg;
    memset(&kcfg, 0, sizeof kcfg);
    kcfg.write_mu = write_mu;
    kcfg.busy_timeout_ms = busy_ms;
    char mark[DUO_PATH_MAX];
    snprintf(mark, sizeof mark, "%s/" DUO_FILE_MARK, dir);
    kcfg.mark_path = mark; /* copied by the store */
    return duo_datadir_open_store_cfg(out, err, err_cap, dir, create, &kcfg);
}

/* A data directory whose store is PostgreSQL: the KEKs from the directory,
 * the database at url. The URL is never printed (it may hold a password). */
static int open_pg(duo_keystore **out, char *err, size_t err_cap, const char *dir, char *url,
                   const duo_keystore_config *kcfg) {
    duo_kek keks[2];
    int n_keks = 0;
    duo_keystore *ks = NULL;
    memset(keks, 0, sizeof keks);
    int r = duo_kek_load_dir(keks, &n_keks, err, err_cap, dir);
    if (r != DUO_OK) return r; /* err says which KEK */
    r = duo_keystore_open(&ks, duo_keystore_driver_find("postgresql"), url, &keks[0], kcfg);
    if (r == DUO_OK && n_keks == 2 && (r = duo_keystore_kek_add(ks, &keks[1])) != DUO_OK) {
        duo_keystore_free(ks);
        ks = NULL;
    }
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    duo_memzero(url, strlen(url));
    /* With a mark (duo_datadir_open_store): a store older than this node's
     * mark (a point-in-time recovery, another database) is refused. */
    if (r == DUO_OK && kcfg->mark_path != NULL && (r = duo_datadir_mark_check(ks, err, err_cap, dir)) != DUO_OK) {
        duo_keystore_free(ks);
        return r;
    }
    if (r == DUO_OK) {
        *out = ks;
        return DUO_OK;
    }
    snprintf(err, err_cap,
             "cannot open the PostgreSQL store of %s: %s (is the server reachable, the URL in %s/" DUO_FILE_STORE_URL
             " or --store right, the database created?)",
             dir, duo_strerror(r), dir);
    return r;
}

int duo_datadir_open_store_cfg(duo_keystore **out, char *err, size_t err_cap, const char *dir, int create,
                               const duo_keystore_config *kcfg) {
    char path[DUO_PATH_MAX];
    duo_kek keks[2];
    int n_keks = 0;
    duo_keystore *ks = NULL;
    *out = NULL;
    struct stat st;
    memset(keks, 0, sizeof keks);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_cap, "data directory %s does not exist; create it with 'duosign-cloud init --data %s'", dir,
                 dir);
        return DUO_E_IO;
    }
    const char *drv = NULL;
    int r = duo_datadir_store_location(&drv, path, sizeof path, err, err_cap, dir);
    if (r != DUO_OK) return r;
    if (strcmp(drv, DUO_DATADIR_DRIVER) != 0) return open_pg(out, err, err_cap, dir, path, kcfg);
    if ((r = duo_kek_load_dir(keks, &n_keks, err, err_cap, dir)) != DUO_OK) return r;
    if (!create && access(path, F_OK) != 0) {
        duo_kek_clear(&keks[0]);
        duo_kek_clear(&keks[1]);
        snprintf(err, err_cap, "key database %s is missing; the data directory is incomplete", path);
        return DUO_E_IO;
    }
    r = duo_keystore_open(&ks, duo_keystore_driver_find(DUO_DATADIR_DRIVER), path, &keks[0], kcfg);
    if (r == DUO_OK && n_keks == 2 && (r = duo_keystore_kek_add(ks, &keks[1])) != DUO_OK) {
        duo_keystore_free(ks);
        ks = NULL;
    }
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    if (r == DUO_E_STATE_CORRUPT) {
        snprintf(err, err_cap,
                 "the key database %s failed its integrity check (SQLite reports it damaged); restore it from a "
                 "backup",
                 path);
        return r;
    }
    if (r != DUO_OK && access(dir, W_OK) != 0) {
        snprintf(err, err_cap,
                 "cannot open the key database %s: the data directory %s is not writable (%s); SQLite needs to "
                 "create its -wal and -shm files there",
                 path, dir, strerror(errno));
        return r;
    }
    if (r != DUO_OK) {
        snprintf(err, err_cap, "cannot open the key database %s: %s", path, duo_strerror(r));
        return r;
    }
    /* With a mark (duo_datadir_open_store): a store older than it is refused. */
    if (kcfg->mark_path != NULL && (r = duo_datadir_mark_check(ks, err, err_cap, dir)) != DUO_OK) {
        duo_keystore_free(ks);
        return r;
    }
    *out = ks;
    return DUO_OK;
}

int duo_datadir_open_store_unmarked(duo_keystore **out, char *err, size_t err_cap, const char *dir) {
    duo_keystore_config kcfg;
    memset(&kcfg, 0, sizeof kcfg);
    return duo_datadir_open_store_cfg(out, err, err_cap, dir, 0, &kcfg);
}

/* 1 if dir's store is a PostgreSQL database (store.url, or serve --store). */
static int is_pg_dir(const char *dir) {
    char loc[DUO_STORE_URL_MAX + DUO_PATH_MAX], e[8];
    const char *drv = NULL;
    int pg = duo_datadir_store_location(&drv, loc, sizeof loc, e, sizeof e, dir) == DUO_OK &&
             strcmp(drv, DUO_DATADIR_DRIVER) != 0;
    duo_memzero(loc, sizeof loc); /* may hold a password */
    return pg;
}

int duo_datadir_mark_check(duo_keystore *ks, char *err, size_t err_cap, const char *dir) {
    char path[DUO_PATH_MAX];
    duo_mark_rec m;
    uint64_t have = 0;
    int exists = 0, r;
    snprintf(path, sizeof path, "%s/" DUO_FILE_MARK, dir);
    if ((r = duo_mark_read(path, &m, &exists)) != DUO_OK) {
        snprintf(err, err_cap,
                 "the high-water mark %s is unreadable (%s); check the disk, then 'duosign-cloud restore --data %s %s",
                 path, duo_strerror(r), dir,
                 is_pg_dir(dir) ? "--mark-only' (a PostgreSQL store)" : "--in FILE' from a known-good backup");
        return r;
    }
    if (!exists) {
        /* A new data directory, or one from before the mark: it starts at
         * the store's present head (docs/STORE.md). */
        if ((r = duo_keystore_mark_head(ks, &m)) != DUO_OK || (r = duo_mark_advance(path, &m)) != DUO_OK) {
            snprintf(err, err_cap, "cannot write the high-water mark %s: %s", path, duo_strerror(r));
            return r;
        }
        return DUO_OK;
    }
    r = duo_keystore_mark_check(ks, &have, &m);
    if (r == DUO_E_STORE_ROLLED_BACK && is_pg_dir(dir)) {
        snprintf(err, err_cap,
                 "the PostgreSQL store of %s is OLDER than this node's high-water mark (%llu audit entries, mark at "
                 "%llu, or the chain differs there): a point-in-time recovery, or another database; serving it "
                 "would lock out citizens. Check the store.url, or, after a deliberate recovery, accept it: "
                 "duosign-cloud restore --data %s --mark-only",
                 dir, (unsigned long long)have, (unsigned long long)m.seq, dir);
        return r;
    }
    if (r == DUO_E_STORE_ROLLED_BACK) {
        snprintf(err, err_cap,
                 "store in %s is OLDER than its high-water mark (%llu audit entries, mark at %llu, or the chain "
                 "differs there): a restored/copied database or a lost WAL; serving it would lock out citizens. "
                 "Find the newer keys.db, or restore deliberately: duosign-cloud restore --data %s --in BACKUP",
                 dir, (unsigned long long)have, (unsigned long long)m.seq, dir);
        return r;
    }
    if (r != DUO_OK) snprintf(err, err_cap, "cannot check the high-water mark %s: %s", path, duo_strerror(r));
    return r;
}

/* ------------------------------------------------------------- restore */

/* Copies src to a new file dst (0600) and fsyncs it. */
static int copy_file(const char *src, const char *dst) {
    char buf[65536];
    int in, out, r = DUO_OK;
    ssize_t n;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) return errno == EACCES ? DUO_E_PERMISSION : DUO_E_IO;
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0) {
        close(in);
        return DUO_E_IO;
    }
    while ((n = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)n) != n) {
            r = DUO_E_IO;
            break;
        }
    if (n < 0 || fsync(out) != 0) r = DUO_E_IO;
    if (close(out) != 0) r = DUO_E_IO;
    close(in);
    return r;
}

static int sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;
    if (fd < 0) return DUO_E_IO;
    r = fsync(fd) == 0 ? DUO_OK : DUO_E_IO;
    close(fd);
    return r;
}

static int count_cb(void *data, const duo_key_info *k) {
    (void)k;
    (*(size_t *)data)++;
    return 0;
}

/* What is being restored: its name in messages, the remedy when it fails
 * the checks, and how the audit entry describes it. */
typedef struct restore_src {
    const char *name, *remedy, *how, *had;
} restore_src;

/* Checks the staged copy (structure, audit chain, every key's policy MAC:
 * a backup of another data directory fails there, its KEK differs) and, in
 * one transaction, opens the one-time resynchronisation of the new epoch on
 * every active or locked key (SECURITY 1.10) and appends the restore's
 * audit entry. */
static int stage_check(duo_keystore *ks, char *err, size_t cap, const restore_src *src, uint64_t epoch,
                       uint64_t mark_seq, duo_mark_rec *head) {
    const char *in = src->name;
    char why[256], detail[DUO_AUDIT_DETAIL_MAX];
    uint64_t bad = 0, count = 0;
    size_t n = 0;
    int r;
    if ((r = duo_keystore_integrity_check(ks, 1, why, sizeof why)) != DUO_OK) {
        snprintf(err, cap, "%s is damaged (%s); %s", in, why[0] ? why : duo_strerror(r), src->remedy);
        return r;
    }
    if ((r = duo_keystore_audit_verify(ks, &bad, &count, NULL)) != DUO_OK) {
        snprintf(err, cap, "the audit chain of %s is broken at entry %llu; %s", in, (unsigned long long)bad,
                 src->remedy);
        return r;
    }
    if ((r = duo_keystore_key_list(ks, NULL, count_cb, &n)) != DUO_OK) {
        snprintf(err, cap,
                 "the keys of %s fail their policy MAC (%s): a backup of another data directory (another KEK) or "
                 "edited",
                 in, duo_strerror(r));
        return r;
    }
    snprintf(detail, sizeof detail,
             "store restored%s: epoch %llu, %s had %llu audit entries and %zu keys, the mark before was at %llu; "
             "each active or locked key may resynchronise once",
             src->how, (unsigned long long)epoch, src->had, (unsigned long long)count, n, (unsigned long long)mark_seq);
    duo_audit_event ev = {.kind = DUO_AUDIT_STORE_RESTORE, .detail = detail};
    if ((r = duo_keystore_resync_open(ks, epoch, NULL, &ev)) != DUO_OK ||
        (r = duo_keystore_mark_head(ks, head)) != DUO_OK) {
        snprintf(err, cap, "cannot record the restore in %s: %s", in, duo_strerror(r));
        return r;
    }
    return DUO_OK;
}

/* Moves name (and its -wal, -shm) aside to name.before-restore-T. */
static void move_aside(const char *db, int64_t t) {
    char a[DUO_PATH_MAX + 64], b[DUO_PATH_MAX + 96];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(a, sizeof a, "%s%s", db, sfx[i]);
        snprintf(b, sizeof b, "%s.before-restore-%lld%s", db, (long long)t, sfx[i]);
        if (rename(a, b) != 0 && errno != ENOENT) unlink(a);
    }
}

/* Takes dir's serve.lock (*lfd; held until closed): no daemon serves dir
 * meanwhile, none starts. */
static int lock_dir(int *lfd, char *err, size_t err_cap, const char *dir, const char *why) {
    char lock[DUO_PATH_MAX];
    snprintf(lock, sizeof lock, "%s/serve.lock", dir);
    if ((*lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        snprintf(err, err_cap, "data directory %s does not exist or is not writable (%s)", dir, strerror(errno));
        return DUO_E_IO;
    }
    if (flock(*lfd, LOCK_EX | LOCK_NB) != 0) {
        close(*lfd);
        snprintf(err, err_cap, "a duosign-cloud daemon is serving %s; stop it first (%s)", dir, why);
        return DUO_E_DAEMON_RUNNING;
    }
    return DUO_OK;
}

int duo_datadir_restore(const char *dir, const char *in, char *err, size_t err_cap, duo_mark_rec *out) {
    char stage[DUO_PATH_MAX], db[DUO_PATH_MAX], mark[DUO_PATH_MAX];
    duo_mark_rec old, head;
    duo_keystore *ks = NULL;
    duo_keystore_config kcfg;
    duo_kek keks[2];
    int lfd, exists = 0, n_keks = 0, r;
    struct stat st;
    memset(keks, 0, sizeof keks);
    if (stat(in, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_cap, "backup file %s does not exist or is not a file", in);
        return DUO_E_IO;
    }
    snprintf(stage, sizeof stage, "%s/" DUO_FILE_DB ".restoring", dir);
    snprintf(db, sizeof db, "%s/" DUO_FILE_DB, dir);
    snprintf(mark, sizeof mark, "%s/" DUO_FILE_MARK, dir);
    if ((r = lock_dir(&lfd, err, err_cap, dir, "restore replaces its store")) != DUO_OK) return r;
    if ((r = duo_kek_load_dir(keks, &n_keks, err, err_cap, dir)) != DUO_OK) goto out;
    if ((r = duo_mark_read(mark, &old, &exists)) != DUO_OK && r != DUO_E_STATE_CORRUPT) {
        snprintf(err, err_cap, "cannot read the high-water mark %s: %s", mark, duo_strerror(r));
        goto out;
    }
    unlink(stage); /* a stale one from an interrupted restore */
    if ((r = copy_file(in, stage)) != DUO_OK) {
        snprintf(err, err_cap, "cannot copy %s to %s: %s", in, stage, duo_strerror(r));
        goto out;
    }
    memset(&kcfg, 0, sizeof kcfg);
    r = duo_keystore_open(&ks, duo_keystore_driver_find(DUO_DATADIR_DRIVER), stage, &keks[0], &kcfg);
    if (r == DUO_OK && n_keks == 2) r = duo_keystore_kek_add(ks, &keks[1]);
    if (r != DUO_OK) {
        snprintf(err, err_cap, "%s is not a duosign key store of this data directory (%s)", in, duo_strerror(r));
        goto out;
    }
    head.epoch = old.epoch + 1;
    restore_src src = {in, "choose another backup", "", "backup"};
    if ((r = stage_check(ks, err, err_cap, &src, head.epoch, old.seq, &head)) != DUO_OK) goto out;
    duo_keystore_free(ks); /* checkpoints: one file again */
    ks = NULL;
    move_aside(db, (int64_t)time(NULL));
    if (rename(stage, db) != 0 || (r = sync_dir(dir)) != DUO_OK) {
        r = DUO_E_IO;
        snprintf(err, err_cap, "cannot install the restored store as %s: %s", db, strerror(errno));
        goto out;
    }
    if ((r = duo_mark_write_force(mark, &head)) != DUO_OK) {
        snprintf(err, err_cap, "the store is restored but the mark %s could not be written (%s); run restore again",
                 mark, duo_strerror(r));
        goto out;
    }
    if (out != NULL) *out = head;
out:
    duo_keystore_free(ks);
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    if (r != DUO_OK) {
        char f[DUO_PATH_MAX + 8];
        const char *sfx[] = {"", "-wal", "-shm"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(f, sizeof f, "%s%s", stage, sfx[i]);
            unlink(f);
        }
    }
    close(lfd);
    return r;
}

/* ------------------------------------------------- restore --mark-only */

int duo_datadir_restore_mark_only(const char *dir, char *err, size_t err_cap, duo_mark_rec *out, int *changed) {
    char mark[DUO_PATH_MAX];
    duo_mark_rec old, head;
    duo_keystore *ks = NULL;
    int lfd, exists = 0, corrupt = 0, r;
    *changed = 0;
    memset(&old, 0, sizeof old);
    memset(&head, 0, sizeof head);
    if ((r = lock_dir(&lfd, err, err_cap, dir, "its mark moves")) != DUO_OK) return r;
    if (!is_pg_dir(dir)) {
        snprintf(err, err_cap,
                 "the store of %s is SQLite: restore it from a backup file with 'duosign-cloud restore --data %s "
                 "--in FILE' (--mark-only is for a PostgreSQL store recovered by PostgreSQL itself)",
                 dir, dir);
        r = DUO_E_UNSUPPORTED;
        goto out;
    }
    snprintf(mark, sizeof mark, "%s/" DUO_FILE_MARK, dir);
    if ((r = duo_mark_read(mark, &old, &exists)) == DUO_E_STATE_CORRUPT) {
        memset(&old, 0, sizeof old); /* unreadable: replaced, as restore --in does */
        corrupt = 1;
    } else if (r != DUO_OK) {
        snprintf(err, err_cap, "cannot read the high-water mark %s: %s", mark, duo_strerror(r));
        goto out;
    }
    if ((r = duo_datadir_open_store_unmarked(&ks, err, err_cap, dir)) != DUO_OK) goto out;
    /* A store not older than this node's mark needs nothing: no audit entry,
     * the mark as it is (a second run, or a node the recovery did not pass).
     * No mark at all: the node's next start writes it from the store. */
    if (!exists && !corrupt) {
        r = DUO_OK;
        goto out;
    }
    if (!corrupt && (r = duo_keystore_mark_check(ks, NULL, &old)) != DUO_E_STORE_ROLLED_BACK) {
        if (r != DUO_OK) snprintf(err, err_cap, "cannot check the high-water mark %s: %s", mark, duo_strerror(r));
        if (r == DUO_OK && out != NULL) *out = old;
        goto out;
    }
    head.epoch = old.epoch + 1;
    restore_src src = {"the PostgreSQL store", "recover to another point in time", " (PostgreSQL recovery, mark-only)",
                       "the recovered database"};
    if ((r = stage_check(ks, err, err_cap, &src, head.epoch, old.seq, &head)) != DUO_OK) goto out;
    if ((r = duo_mark_write_force(mark, &head)) != DUO_OK) {
        snprintf(err, err_cap,
                 "the restore is recorded in the store but the mark %s could not be written (%s); run --mark-only "
                 "again",
                 mark, duo_strerror(r));
        goto out;
    }
    *changed = 1;
    if (out != NULL) *out = head;
out:
    duo_keystore_free(ks);
    close(lfd);
    return r;
}
