/* The store of a data directory (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mark.h"

static int open_store(duo_keystore **out, char *err, size_t err_cap, const char *dir, int create,
                      pthread_mutex_t *write_mu, int busy_ms, int marked) {
    char path[DUO_PATH_MAX], mark[DUO_PATH_MAX];
    duo_kek kek;
    duo_keystore *ks = NULL;
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, err_cap, "data directory %s does not exist; create it with 'duosign-cloud init --data %s'", dir,
                 dir);
        return DUO_E_IO;
    }
    snprintf(path, sizeof path, "%s/" DUO_FILE_KEK, dir);
    char kerr[512] = "";
    int r = duo_kek_load_file(&kek, kerr, sizeof kerr, path);
    if (r != DUO_OK) {
        snprintf(err, err_cap, "cannot load the key-encryption key %s: %s", path, kerr[0] ? kerr : duo_strerror(r));
        return r;
    }
    snprintf(path, sizeof path, "%s/" DUO_FILE_DB, dir);
    if (!create && access(path, F_OK) != 0) {
        duo_kek_clear(&kek);
        snprintf(err, err_cap, "key database %s is missing; the data directory is incomplete", path);
        return DUO_E_IO;
    }
    duo_keystore_config kcfg;
    memset(&kcfg, 0, sizeof kcfg);
    kcfg.write_mu = write_mu;
    kcfg.busy_timeout_ms = busy_ms;
    snprintf(mark, sizeof mark, "%s/" DUO_FILE_MARK, dir);
    if (marked) kcfg.mark_path = mark;
    r = duo_keystore_open(&ks, duo_keystore_driver_find(DUO_DATADIR_DRIVER), path, &kek, &kcfg);
    duo_kek_clear(&kek);
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
    if (marked && (r = duo_datadir_mark_check(ks, err, err_cap, dir)) != DUO_OK) {
        duo_keystore_free(ks);
        return r;
    }
    *out = ks;
    return DUO_OK;
}

int duo_datadir_open_store(duo_keystore **out, char *err, size_t err_cap, const char *dir, int create,
                           pthread_mutex_t *write_mu, int busy_ms) {
    return open_store(out, err, err_cap, dir, create, write_mu, busy_ms, 1);
}

int duo_datadir_open_store_unmarked(duo_keystore **out, char *err, size_t err_cap, const char *dir) {
    return open_store(out, err, err_cap, dir, 0, NULL, 0, 0);
}

int duo_datadir_mark_check(duo_keystore *ks, char *err, size_t err_cap, const char *dir) {
    char path[DUO_PATH_MAX];
    duo_mark_rec m;
    uint64_t have = 0;
    int exists = 0, r;
    snprintf(path, sizeof path, "%s/" DUO_FILE_MARK, dir);
    if ((r = duo_mark_read(path, &m, &exists)) != DUO_OK) {
        snprintf(err, err_cap,
                 "the high-water mark %s is unreadable (%s); check the disk, then 'duosign-cloud restore --data %s "
                 "--in FILE' from a known-good backup",
                 path, duo_strerror(r), dir);
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
    if (r == DUO_E_STORE_ROLLED_BACK) {
        snprintf(err, err_cap,
                 "the key database in %s is OLDER than its high-water mark (the store has %llu audit entries, the mark "
                 "says %llu were acknowledged, or the chain differs there): a restored or copied database, or a lost "
                 "or truncated WAL. Serving it would lock out every citizen who signed since. If you restored it on "
                 "purpose, run 'duosign-cloud restore --data %s --in BACKUP' (it marks the store as restored and lets "
                 "devices resynchronise once); otherwise find the newer database",
                 dir, (unsigned long long)have, (unsigned long long)m.seq, dir);
        return r;
    }
    if (r != DUO_OK) snprintf(err, err_cap, "cannot check the high-water mark %s: %s", path, duo_strerror(r));
    return r;
}
