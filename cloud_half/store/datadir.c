/* The store of a data directory (datadir.h). */
#include "datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "duosign/mem.h"
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
    int r = load_keks(keks, &n_keks, err, err_cap, dir);
    if (r != DUO_OK) return r; /* err says which KEK */
    r = duo_keystore_open(&ks, duo_keystore_driver_find("postgresql"), url, &keks[0], kcfg);
    if (r == DUO_OK && n_keks == 2 && (r = duo_keystore_kek_add(ks, &keks[1])) != DUO_OK) {
        duo_keystore_free(ks);
        ks = NULL;
    }
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    duo_memzero(url, strlen(url));
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
    if ((r = load_keks(keks, &n_keks, err, err_cap, dir)) != DUO_OK) return r;
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
