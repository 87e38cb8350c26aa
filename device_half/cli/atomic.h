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

#endif
