/* duosign CLI: durable file writes (see atomic.h). */
#include "atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static int dir_of(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t n;
    if (slash == NULL) {
        if (cap < 2) return -ENAMETOOLONG;
        strcpy(dir, ".");
        return 0;
    }
    n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/file" */
    if (n + 1 > cap) return -ENAMETOOLONG;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return 0;
}

int duo_cli_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode) {
    char tmp[PATH_MAX], dir[PATH_MAX];
    int fd = -1, dfd, r;
    size_t off = 0;

    if (path == NULL || (data == NULL && len != 0)) return -EINVAL;
    if ((r = dir_of(path, dir, sizeof dir)) != 0) return r;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) return -ENAMETOOLONG;
    if ((fd = mkstemp(tmp)) < 0) return -errno;
    /* mkstemp creates 0600; set the requested mode explicitly (umask-free). */
    if (fchmod(fd, mode) != 0) goto fail;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) goto fail;
    /* Make the rename itself durable. */
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return -errno;
    r = fsync(dfd) != 0 ? -errno : 0;
    close(dfd);
    return r;
fail:
    r = -errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    return r != 0 ? r : -EIO;
}

int duo_cli_check_writable(const char *path) {
    char tmp[PATH_MAX];
    struct stat st;
    int fd;

    if (path == NULL || path[0] == '\0') return -EINVAL;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return -EISDIR;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) return -ENAMETOOLONG;
    if ((fd = mkstemp(tmp)) < 0) return -errno;
    close(fd);
    unlink(tmp);
    return 0;
}

int duo_cli_read_file(const char *path, uint8_t **out, size_t *out_len, size_t max) {
    int fd, r;
    struct stat st;
    uint8_t *buf = NULL;
    size_t cap = 4096, n = 0;

    *out = NULL;
    *out_len = 0;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) return -errno;
    if (fstat(fd, &st) != 0) {
        r = -errno;
        close(fd);
        return r;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
        close(fd);
        return -EFBIG;
    }
    if ((buf = malloc(cap)) == NULL) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t got;
        if (n == cap) {
            uint8_t *nb;
            if (cap > max) {
                r = -EFBIG;
                goto fail;
            }
            cap *= 2;
            if ((nb = realloc(buf, cap)) == NULL) {
                r = -ENOMEM;
                goto fail;
            }
            buf = nb;
        }
        got = read(fd, buf + n, cap - n);
        if (got < 0) {
            if (errno == EINTR) continue;
            r = -errno;
            goto fail;
        }
        if (got == 0) break;
        n += (size_t)got;
        if (n > max) {
            r = -EFBIG;
            goto fail;
        }
    }
    close(fd);
    *out = buf;
    *out_len = n;
    return 0;
fail:
    close(fd);
    if (buf != NULL) {
        OPENSSL_cleanse(buf, cap);
        free(buf);
    }
    return r;
}

/* 1 if name is base ".tmp." followed by six mkstemp characters, or base
 * ".wipe." and a process id (a cleanup killed between its rename and its
 * unlink). */
static int is_tmp_of(const char *name, const char *base) {
    size_t bl = strlen(base), i;
    if (strncmp(name, base, bl) != 0) return 0;
    if (strncmp(name + bl, ".wipe.", 6) == 0) {
        name += bl + 6;
        if (*name == '\0') return 0;
        for (; *name != '\0'; name++)
            if (*name < '0' || *name > '9') return 0;
        return 1;
    }
    if (strncmp(name + bl, ".tmp.", 5) != 0) return 0;
    name += bl + 5;
    for (i = 0; i < 6; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return 0;
    }
    return name[6] == '\0';
}

/* Overwrites the regular file at p with zeros (best effort: a copy-on-write
 * or log-structured file system may keep the old blocks) and syncs it. */
static int wipe_file(const char *p) {
    static const uint8_t zeros[4096];
    struct stat st;
    off_t off = 0;
    int fd, r = 0;
    if ((fd = open(p, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0) return -errno;
    if (fstat(fd, &st) != 0) {
        r = -errno;
        close(fd);
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    while (off < st.st_size) {
        size_t n = (size_t)(st.st_size - off) < sizeof zeros ? (size_t)(st.st_size - off) : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            r = -errno;
            break;
        }
        off += w;
    }
    if (r == 0 && fsync(fd) != 0) r = -errno;
    close(fd);
    return r;
}

int duo_cli_cleanup_tmp(const char *path, unsigned *removed) {
    char dir[PATH_MAX], victim[PATH_MAX], mine[PATH_MAX];
    const char *base;
    DIR *d;
    struct dirent *e;
    int r, first = 0;
    unsigned n = 0;

    if (removed != NULL) *removed = 0;
    if (path == NULL) return -EINVAL;
    if ((r = dir_of(path, dir, sizeof dir)) != 0) return r;
    base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    if (base[0] == '\0') return -EINVAL;
    if ((d = opendir(dir)) == NULL) return -errno;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (!is_tmp_of(e->d_name, base)) continue;
        if ((size_t)snprintf(victim, sizeof victim, "%s/%s", dir, e->d_name) >= sizeof victim ||
            (size_t)snprintf(mine, sizeof mine, "%s/%s.wipe.%ld", dir, base, (long)getpid()) >= sizeof mine) {
            if (first == 0) first = -ENAMETOOLONG;
            continue;
        }
        /* Take it out of the writer's name first (see atomic.h). */
        if (rename(victim, mine) != 0) {
            if (errno != ENOENT && first == 0) first = -errno; /* ENOENT: its writer renamed it */
            continue;
        }
        if (lstat(mine, &st) == 0 && S_ISREG(st.st_mode) && (r = wipe_file(mine)) != 0 && first == 0) first = r;
        if (unlink(mine) != 0) {
            if (first == 0) first = -errno;
            continue;
        }
        n++;
    }
    closedir(d);
    if (n > 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    if (removed != NULL) *removed = n;
    return first;
}
