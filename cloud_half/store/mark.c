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

#include <openssl/sha.h>

#define MARK_PATH_MAX 4096

/* Threads of one process; flock() orders processes. */
static pthread_mutex_t mark_mu = PTHREAD_MUTEX_INITIALIZER;

/* The file: two slots of SLOT bytes, each one line
 *     duosign-mark v1 epoch=E seq=N head=<64 hex> sum=<16 hex>\n
 * padded with NULs; sum = the first 8 bytes of SHA-256 of the text before
 * " sum=". A write overwrites the slot NOT holding the newest mark and
 * fdatasync()s: one flush, no rename, no directory sync (the file exists and
 * keeps its size). A torn write damages only that slot; the other still holds
 * the previous mark, which lags (safe). The newest valid slot by (epoch, seq)
 * is the mark. */
#define SLOT 192

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int unhex(uint8_t *out, const char *hex, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static void sum8(uint8_t out[8], const char *t, size_t n) {
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)t, n, h);
    memcpy(out, h, 8);
}

/* Formats rec into one slot (SLOT bytes, NUL padded). */
static void format_slot(char slot[SLOT], const duo_mark_rec *rec) {
    uint8_t sum[8];
    int n;
    memset(slot, 0, SLOT);
    n = snprintf(slot, SLOT, "duosign-mark v1 epoch=%" PRIu64 " seq=%" PRIu64 " head=", rec->epoch, rec->seq);
    for (size_t i = 0; i < DUO_AUDIT_HASH_LEN; i++) n += snprintf(slot + n, SLOT - (size_t)n, "%02x", rec->head[i]);
    sum8(sum, slot, (size_t)n);
    n += snprintf(slot + n, SLOT - (size_t)n, " sum=");
    for (size_t i = 0; i < 8; i++) n += snprintf(slot + n, SLOT - (size_t)n, "%02x", sum[i]);
    snprintf(slot + n, SLOT - (size_t)n, "\n");
}

/* 0 and rec filled if slot holds a valid mark. */
static int parse_slot(const char *slot, duo_mark_rec *rec) {
    char t[SLOT + 1], hex[2 * DUO_AUDIT_HASH_LEN + 1], sh[17];
    unsigned long long e, s;
    uint8_t sum[8], want[8];
    int used = 0;
    const char *p;
    memcpy(t, slot, SLOT);
    t[SLOT] = '\0';
    if (sscanf(t, "duosign-mark v1 epoch=%llu seq=%llu head=%64s sum=%16s%n", &e, &s, hex, sh, &used) != 4 ||
        strlen(hex) != 2 * DUO_AUDIT_HASH_LEN || strlen(sh) != 16 || t[used] != '\n' ||
        (p = strstr(t, " sum=")) == NULL)
        return -1;
    if (unhex(rec->head, hex, DUO_AUDIT_HASH_LEN) != 0 || unhex(sum, sh, 8) != 0) return -1;
    sum8(want, t, (size_t)(p - t));
    if (memcmp(sum, want, 8) != 0) return -1;
    rec->epoch = e;
    rec->seq = s;
    return 0;
}

static int newer(const duo_mark_rec *a, const duo_mark_rec *b) {
    return a->epoch > b->epoch || (a->epoch == b->epoch && a->seq > b->seq);
}

/* Reads both slots from fd: *which = the newest valid slot (-1: none). */
static int read_slots(int fd, duo_mark_rec *rec, int *which) {
    char buf[2 * SLOT];
    duo_mark_rec r[2];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    int ok[2];
    if (n < 0) return DUO_E_IO;
    memset(rec, 0, sizeof *rec);
    memset(buf + n, 0, sizeof buf - (size_t)n);
    for (int i = 0; i < 2; i++) ok[i] = parse_slot(buf + i * SLOT, &r[i]) == 0;
    *which = ok[0] && (!ok[1] || !newer(&r[1], &r[0])) ? 0 : ok[1] ? 1 : -1;
    if (*which >= 0) *rec = r[*which];
    /* A file with content but no valid slot is damaged, not absent. */
    return *which < 0 && n > 0 ? DUO_E_STATE_CORRUPT : DUO_OK;
}

int duo_mark_read(const char *path, duo_mark_rec *rec, int *exists) {
    int fd, which = -1, r;
    if (path == NULL || rec == NULL || exists == NULL) return DUO_E_INVALID_ARG;
    memset(rec, 0, sizeof *rec);
    *exists = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) return errno == ENOENT ? DUO_OK : DUO_E_IO;
    r = read_slots(fd, rec, &which);
    close(fd);
    *exists = r == DUO_OK && which >= 0;
    return r;
}

/* fsync of the directory holding path, so a newly created file is durable. */
static int sync_dir(const char *path) {
    char d[MARK_PATH_MAX];
    int fd, r;
    snprintf(d, sizeof d, "%s", path);
    if ((fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return DUO_E_IO;
    r = fsync(fd) == 0 ? DUO_OK : DUO_E_IO;
    close(fd);
    return r;
}

/* Writes rec into slot `slot` of fd and flushes it. */
static int write_slot(int fd, int slot, const duo_mark_rec *rec) {
    char buf[SLOT];
    format_slot(buf, rec);
    if (pwrite(fd, buf, SLOT, (off_t)slot * SLOT) != SLOT) return DUO_E_IO;
    return fdatasync(fd) == 0 ? DUO_OK : DUO_E_IO;
}

/* Under the process mutex and the lock file: writes rec into the slot not
 * holding the newest mark if force, or if rec is beyond it (epoch kept). */
static int locked(const char *path, const duo_mark_rec *rec, int force) {
    char lk[MARK_PATH_MAX + 8];
    duo_mark_rec cur, next;
    int lfd, fd = -1, which = -1, created = 0, r;
    struct stat st;
    if (path == NULL || rec == NULL) return DUO_E_INVALID_ARG;
    if (snprintf(lk, sizeof lk, "%s.lock", path) >= (int)sizeof lk) return DUO_E_INVALID_ARG;
    pthread_mutex_lock(&mark_mu);
    if ((lfd = open(lk, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0) {
        pthread_mutex_unlock(&mark_mu);
        return DUO_E_IO;
    }
    if (flock(lfd, LOCK_EX) != 0) {
        r = DUO_E_IO;
        goto out;
    }
    created = stat(path, &st) != 0;
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR)) < 0) {
        r = DUO_E_IO;
        goto out;
    }
    r = read_slots(fd, &cur, &which);
    if (r == DUO_E_STATE_CORRUPT && force) r = DUO_OK; /* restore replaces a damaged mark */
    if (r != DUO_OK) goto out;
    next = *rec;
    if (!force) {
        /* Never backwards: a thread that committed earlier but got here
         * later leaves the newer mark alone. The epoch is the file's. */
        if (which >= 0 && rec->seq <= cur.seq) goto out;
        next.epoch = which >= 0 ? cur.epoch : 0;
    }
    if ((r = write_slot(fd, which == 0 ? 1 : 0, &next)) == DUO_OK && force)
        r = write_slot(fd, which == 0 ? 0 : 1, &next);
    if (r == DUO_OK && created) r = sync_dir(path);
out:
    if (fd >= 0) close(fd);
    close(lfd); /* releases the flock */
    pthread_mutex_unlock(&mark_mu);
    return r;
}

int duo_mark_advance(const char *path, const duo_mark_rec *rec) { return locked(path, rec, 0); }

int duo_mark_write_force(const char *path, const duo_mark_rec *rec) { return locked(path, rec, 1); }
