/* duosign cloud store: sealing of secret columns under the key-encryption key.
 *
 * A sealed value (format 2) is
 *
 *     format (1 byte, = DUO_SEAL_FORMAT_V2) || KEK id (u32be) || nonce (12 random
 *     bytes) || AES-256-GCM ciphertext (same length as the plaintext) || tag (16 bytes)
 *
 * and the GCM additional data binds the KEK id and where the value lives, so
 * a sealed value copied to another row, another column or another generation,
 * or given another KEK id, fails to open:
 *
 *     AAD = lp("duosign.seal") || lp(format byte) || lp(u32be(KEK id)) || lp(key id)
 *           || lp(column) || lp(u64be(version))          lp(x) = u32be(len(x)) || x
 *
 * Format 1 (written before KEK rotation existed) has no KEK id byte string
 * and no lp(KEK id) in its AAD; it is read as KEK id 0 (the data directory's
 * first KEK) and never written any more.
 *
 * The KEK id tells which key of the data directory's ring (kekref.h) opens a
 * value, so a rotation interrupted half way leaves every value readable: each
 * names its KEK. The KEK is either 32 bytes in memory (a KEK file) or an AES
 * key inside a PKCS#11 token (kek_p11.h): then GCM runs in the token and the
 * format is the same.
 *
 * Nonces are random: 2^32 seals under one KEK keep the collision chance below
 * 2^-32 (NIST SP 800-38D 8.3); a KEK seals a few values per operation, far less.
 * See docs/STORE.md.
 *
 * Thread-safety: every function is reentrant; a duo_kek may be shared read-only. */
#ifndef DUOSIGN_STORE_SEAL_H
#define DUOSIGN_STORE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"
#include "duosign/rng.h"

#define DUO_KEK_LEN 32
#define DUO_SEAL_FORMAT_V1 1 /* legacy: no KEK id (read as KEK id 0) */
#define DUO_SEAL_FORMAT_V2 2 /* carries the KEK id: the only format written */
#define DUO_SEAL_KEK_ID_LEN 4
#define DUO_SEAL_NONCE_LEN 12
#define DUO_SEAL_TAG_LEN 16
#define DUO_SEAL_HEADER_LEN (1 + DUO_SEAL_KEK_ID_LEN) /* format byte and KEK id */
#define DUO_SEAL_OVERHEAD (DUO_SEAL_HEADER_LEN + DUO_SEAL_NONCE_LEN + DUO_SEAL_TAG_LEN)
#define DUO_SEAL_OVERHEAD_V1 (1 + DUO_SEAL_NONCE_LEN + DUO_SEAL_TAG_LEN)
/* Largest plaintext accepted (the biggest column is a Paillier prime). */
#define DUO_SEAL_MAX_PLAINTEXT 4096

struct duo_p11_key;

/* The key-encryption key. SECRET: do not copy it around; wipe it with
 * duo_kek_clear() when done. Zero-initialise it before filling data by hand.
 * id: the KEK id written into every value it seals (0 for a data directory's
 * first KEK). token: NULL for a KEK held in data; otherwise the AES key
 * object in a PKCS#11 token (kek_p11.h: a process-wide handle, not owned by
 * the duo_kek, so copying the struct is fine) and data is unused. */
typedef struct duo_kek {
    uint32_t id;
    const struct duo_p11_key *token;
    uint8_t data[DUO_KEK_LEN];
} duo_kek;

/* Reads the KEK id a sealed value names (format 1: 0) without opening it.
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT (too short, unknown format);
 *          DUO_E_INVALID_ARG. */
DUO_WARN_UNUSED_RESULT int duo_seal_kek_id(uint32_t *id, const uint8_t *sealed, size_t sealed_len);

/* Wipes a KEK (duo_memzero; a token handle is dropped, not closed). NULL is a
 * no-op. */
void duo_kek_clear(duo_kek *kek);

/* Seals a secret value.
 * Returns: DUO_OK; DUO_E_INVALID_ARG (NULL, empty column, plaintext too large);
 *          DUO_E_BUFFER_TOO_SMALL (out_cap < pt_len + DUO_SEAL_OVERHEAD);
 *          DUO_E_RNG; DUO_E_INTERNAL (OpenSSL failure).
 * Out:  out[0..*out_len) the sealed value (format 2, kek->id), *out_len =
 *       pt_len + DUO_SEAL_OVERHEAD.
 * In:   kek (secret); key_id/key_id_len, column (NUL-terminated), version: the
 *       AAD; pt/pt_len: the secret plaintext; rng: NULL for the default. */
DUO_WARN_UNUSED_RESULT int duo_seal_encrypt(const duo_kek *kek, uint8_t *out, size_t out_cap, size_t *out_len,
                                            const uint8_t *key_id, size_t key_id_len, const char *column,
                                            uint64_t version, const uint8_t *pt, size_t pt_len, const duo_rng *rng);

/* Opens a sealed value.
 * Opens format 2 and format 1 (legacy) values.
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT if the value is too short, has an
 *          unknown format byte, was edited in any byte, or was sealed with
 *          another key id, column, version or KEK; DUO_E_KEK_UNKNOWN if it
 *          names another KEK id than kek->id (pick the KEK with
 *          duo_seal_kek_id); DUO_E_KEK_UNAVAILABLE (token error);
 *          DUO_E_BUFFER_TOO_SMALL; DUO_E_INVALID_ARG; DUO_E_INTERNAL.
 * Out:  out[0..*out_len) the plaintext (secret). On failure out[0..out_cap) is
 *       wiped and *out_len = 0. */
DUO_WARN_UNUSED_RESULT int duo_seal_decrypt(const duo_kek *kek, uint8_t *out, size_t out_cap, size_t *out_len,
                                            const uint8_t *key_id, size_t key_id_len, const char *column,
                                            uint64_t version, const uint8_t *sealed, size_t sealed_len);

/* Creates a new KEK file at path with fresh random bytes: O_CREAT|O_EXCL,
 * mode 0600, written, fsync()ed, then the directory fsync()ed.
 * Returns: DUO_OK; DUO_E_EXISTS if path exists (never overwritten); DUO_E_IO;
 *          DUO_E_RNG.
 * Out:  kek (secret; may be NULL if the caller only wants the file);
 *       err/err_cap: a NUL-terminated message on failure (may be NULL). */
DUO_WARN_UNUSED_RESULT int duo_kek_create_file(duo_kek *kek, char *err, size_t err_cap, const char *path,
                                               const duo_rng *rng);

/* Loads a KEK file. Refuses (with a message naming the problem) a file that is
 * not a regular file, is a symlink, is readable or writable by group or others
 * (fix: chmod 600), is owned by another user than the caller or root, or is not
 * exactly DUO_KEK_LEN bytes.
 * Returns: DUO_OK; DUO_E_PERMISSION (mode or owner); DUO_E_STATE_CORRUPT (size,
 *          not a regular file); DUO_E_IO (missing, unreadable).
 * Out:  kek (secret, wiped on failure); err/err_cap as above. */
DUO_WARN_UNUSED_RESULT int duo_kek_load_file(duo_kek *kek, char *err, size_t err_cap, const char *path);

#endif
