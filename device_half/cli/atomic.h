/* duosign CLI: durable file writes. */
#ifndef DUOSIGN_CLI_ATOMIC_H
#define DUOSIGN_CLI_ATOMIC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Writes data to path atomically and durably: a temporary file in the same
 * directory (created with `mode`), write, fsync, rename over path, fsync of
 * the directory. Readers see the old file or the new one, never a mix; after
 * a crash at any point path holds one of them whole.
 * Returns: 0, or -errno (the temporary file is removed on failure). */
int duo_cli_write_atomic(const char *path, const uint8_t *data, size_t len, mode_t mode);

/* Reads a whole regular file (at most max bytes) into a malloc'd buffer.
 * Returns: 0, -errno, or -EFBIG when larger than max. */
int duo_cli_read_file(const char *path, uint8_t **out, size_t *out_len, size_t max);

/* Checks, without changing anything, that duo_cli_write_atomic(path, ...)
 * can succeed: path is not a directory and a temporary file can be created
 * (and is removed at once) in its directory. Run before an operation that
 * cannot be undone (a signature at the cloud, an enrolment).
 * Returns: 0, or -errno (-EISDIR, -ENOENT for a missing directory, -EACCES,
 *          -EROFS, -ENOSPC, ...). */
int duo_cli_check_writable(const char *path);

/* Removes what a process killed inside duo_cli_write_atomic(path, ...) left
 * behind: the files named "<path>.tmp.XXXXXX" (exactly mkstemp's six
 * characters) in path's directory. A state file's temporary copy holds the
 * next device secret, so each one is first renamed to a private name (an
 * atomic step: a concurrent writer's rename of that temporary then fails and
 * its write is not acknowledged, instead of installing a file being
 * wiped), then overwritten with zeros, synced and unlinked. Symbolic links
 * and non-regular files are unlinked without being opened.
 * Out: removed (may be NULL): how many were removed.
 * Returns: 0, or -errno of the first failure (the others are still tried). */
int duo_cli_cleanup_tmp(const char *path, unsigned *removed);

#endif
