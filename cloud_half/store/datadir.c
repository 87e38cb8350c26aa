/* The store of a data directory (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int duo_datadir_open_store(duo_keystore **out, char *err, size_t err_cap, const char *dir, int create,
                           pthread_mutex_t *write_mu, int busy_ms) {
    char path[DUO_PATH_MAX];
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
    *out = ks;
    return DUO_OK;
}
