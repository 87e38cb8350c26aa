/* The store of a data directory (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kekref.h"

/* Loads the data directory's KEKs (kekref.h): current, and a rotation's next. */
static int load_keks(duo_kek keks[2], int *n, char *err, size_t err_cap, const char *dir) {
    duo_kek_refs refs;
    char kerr[768] = "";
    int r = duo_kek_refs_read(&refs, kerr, sizeof kerr, dir);
    *n = 0;
    if (r == DUO_OK && (r = duo_kek_slot_load(&keks[0], kerr, sizeof kerr, dir, &refs.current)) == DUO_OK) *n = 1;
    if (r == DUO_OK && refs.has_next && (r = duo_kek_slot_load(&keks[1], kerr, sizeof kerr, dir, &refs.next)) == DUO_OK)
        *n = 2;
    if (r != DUO_OK) {
        snprintf(err, err_cap, "cannot load the key-encryption key of %s: %s", dir, kerr[0] ? kerr : duo_strerror(r));
        duo_kek_clear(&keks[0]);
        duo_kek_clear(&keks[1]);
    }
    return r;
}

int duo_datadir_open_store(duo_keystore **out, char *err, size_t err_cap, const char *dir, int create,
                           pthread_mutex_t *write_mu, int busy_ms) {
    duo_keystore_config kcfg;
    memset(&kcfg, 0, sizeof kcfg);
    kcfg.write_mu = write_mu;
    kcfg.busy_timeout_ms = busy_ms;
    return duo_datadir_open_store_cfg(out, err, err_cap, dir, create, &kcfg);
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
    int r = load_keks(keks, &n_keks, err, err_cap, dir);
    if (r != DUO_OK) return r;
    snprintf(path, sizeof path, "%s/" DUO_FILE_DB, dir);
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
    *out = ks;
    return DUO_OK;
}
