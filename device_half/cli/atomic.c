/* duosign CLI: durable file writes (see atomic.h). */
#include "atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
        explicit_bzero(buf, cap);
        free(buf);
    }
    return r;
}
