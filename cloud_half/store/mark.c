/* duosign cloud store: the high-water mark file (mark.h). */
#include "mark.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARK_PATH_MAX 4096
#define MARK_TEXT_MAX 160

/* Threads of one process; flock() orders processes. */
static pthread_mutex_t mark_mu = PTHREAD_MUTEX_INITIALIZER;

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int parse(const char *t, duo_mark_rec *rec) {
    char hex[2 * DUO_AUDIT_HASH_LEN + 1];
    unsigned long long e, s;
    int used = 0;
    if (sscanf(t, "duosign-mark v1 epoch=%llu seq=%llu head=%64s%n", &e, &s, hex, &used) != 3 ||
        strlen(hex) != 2 * DUO_AUDIT_HASH_LEN || strcmp(t + used, "\n") != 0)
        return DUO_E_STATE_CORRUPT;
    for (size_t i = 0; i < DUO_AUDIT_HASH_LEN; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return DUO_E_STATE_CORRUPT;
        rec->head[i] = (uint8_t)(hi << 4 | lo);
    }
    rec->epoch = e;
    rec->seq = s;
    return DUO_OK;
}

int duo_mark_read(const char *path, duo_mark_rec *rec, int *exists) {
    char t[MARK_TEXT_MAX + 1];
    ssize_t n;
    int fd;
    if (path == NULL || rec == NULL || exists == NULL) return DUO_E_INVALID_ARG;
    memset(rec, 0, sizeof *rec);
    *exists = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) return errno == ENOENT ? DUO_OK : DUO_E_IO;
    n = read(fd, t, MARK_TEXT_MAX);
    close(fd);
    if (n < 0) return DUO_E_IO;
    t[n] = '\0';
    *exists = 1;
    return parse(t, rec);
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path) {
    char d[MARK_PATH_MAX];
    int fd, r;
    snprintf(d, sizeof d, "%s", path);
    if ((fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return DUO_E_IO;
    r = fsync(fd) == 0 ? DUO_OK : DUO_E_IO;
    close(fd);
    return r;
}

static int write_atomic(const char *path, const duo_mark_rec *rec) {
    char tmp[MARK_PATH_MAX + 8], t[MARK_TEXT_MAX];
    int fd, n, r = DUO_E_IO;
    n = snprintf(t, sizeof t, "duosign-mark v1 epoch=%" PRIu64 " seq=%" PRIu64 " head=", rec->epoch, rec->seq);
    for (size_t i = 0; i < DUO_AUDIT_HASH_LEN; i++) n += snprintf(t + n, sizeof t - (size_t)n, "%02x", rec->head[i]);
    n += snprintf(t + n, sizeof t - (size_t)n, "\n");
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return DUO_E_INVALID_ARG;
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0) return DUO_E_IO;
    if (write(fd, t, (size_t)n) == n && fsync(fd) == 0) r = DUO_OK;
    if (close(fd) != 0) r = DUO_E_IO;
    if (r == DUO_OK && rename(tmp, path) != 0) r = DUO_E_IO;
    if (r == DUO_OK) r = sync_dir(path);
    if (r != DUO_OK) unlink(tmp);
    return r;
}

/* Runs under the process mutex and the lock file: fn(path, rec). */
static int locked(const char *path, const duo_mark_rec *rec, int force) {
    char lk[MARK_PATH_MAX + 8];
    duo_mark_rec cur;
    int fd, exists = 0, r;
    if (path == NULL || rec == NULL) return DUO_E_INVALID_ARG;
    if (snprintf(lk, sizeof lk, "%s.lock", path) >= (int)sizeof lk) return DUO_E_INVALID_ARG;
    pthread_mutex_lock(&mark_mu);
    if ((fd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0) {
        pthread_mutex_unlock(&mark_mu);
        return DUO_E_IO;
    }
    if (flock(fd, LOCK_EX) != 0) {
        r = DUO_E_IO;
    } else if (force) {
        r = write_atomic(path, rec);
    } else if ((r = duo_mark_read(path, &cur, &exists)) == DUO_OK && (!exists || rec->seq > cur.seq)) {
        /* Never backwards: a thread that committed earlier but got here
         * later leaves the newer mark alone. The epoch is the file's. */
        duo_mark_rec next = *rec;
        next.epoch = cur.epoch;
        r = write_atomic(path, &next);
    }
    close(fd); /* releases the flock */
    pthread_mutex_unlock(&mark_mu);
    return r;
}

int duo_mark_advance(const char *path, const duo_mark_rec *rec) { return locked(path, rec, 0); }

int duo_mark_write_force(const char *path, const duo_mark_rec *rec) { return locked(path, rec, 1); }
