/* AES-256-GCM sealing of secret columns and the KEK file. See seal.h. */
#include "seal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "duosign/mem.h"

#define SEAL_LABEL "duosign.seal"
/* label, format, key id (<= 64), column (<= 64), version: all length-prefixed. */
#define SEAL_AAD_MAX (4 + sizeof SEAL_LABEL - 1 + 4 + 1 + 4 + 64 + 4 + 64 + 4 + 8)

void duo_kek_clear(duo_kek *kek) {
    if (kek != NULL) duo_memzero(kek->data, sizeof kek->data);
}

static size_t put_lp(uint8_t *p, const void *v, size_t len) {
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    if (len > 0) memcpy(p + 4, v, len);
    return 4 + len;
}

/* Builds the AAD; returns its length, or 0 if an input is out of range. */
static size_t build_aad(uint8_t aad[SEAL_AAD_MAX], uint8_t format, const uint8_t *key_id, size_t key_id_len,
                        const char *column, uint64_t version) {
    size_t col_len = strlen(column), n = 0;
    uint8_t v[8];
    if (key_id_len == 0 || key_id_len > 64 || col_len == 0 || col_len > 64) return 0;
    for (int i = 0; i < 8; i++) v[i] = (uint8_t)(version >> (56 - 8 * i));
    n += put_lp(aad + n, SEAL_LABEL, sizeof SEAL_LABEL - 1);
    n += put_lp(aad + n, &format, 1);
    n += put_lp(aad + n, key_id, key_id_len);
    n += put_lp(aad + n, column, col_len);
    n += put_lp(aad + n, v, sizeof v);
    return n;
}

int duo_seal_encrypt(const duo_kek *kek, uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *key_id,
                     size_t key_id_len, const char *column, uint64_t version, const uint8_t *pt, size_t pt_len,
                     const duo_rng *rng) {
    int r = DUO_E_INTERNAL, n = 0;
    uint8_t aad[SEAL_AAD_MAX];
    size_t aad_len;
    EVP_CIPHER_CTX *ctx = NULL;

    if (out_len != NULL) *out_len = 0;
    if (kek == NULL || out == NULL || out_len == NULL || key_id == NULL || column == NULL ||
        (pt == NULL && pt_len > 0) || pt_len > DUO_SEAL_MAX_PLAINTEXT)
        return DUO_E_INVALID_ARG;
    if ((aad_len = build_aad(aad, DUO_SEAL_FORMAT_V1, key_id, key_id_len, column, version)) == 0)
        return DUO_E_INVALID_ARG;
    if (out_cap < pt_len + DUO_SEAL_OVERHEAD) return DUO_E_BUFFER_TOO_SMALL;

    out[0] = DUO_SEAL_FORMAT_V1;
    if ((r = duo_rng_bytes(rng, out + 1, DUO_SEAL_NONCE_LEN)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if ((ctx = EVP_CIPHER_CTX_new()) == NULL) goto out;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, DUO_SEAL_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, kek->data, out + 1) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (pt_len > 0 && EVP_EncryptUpdate(ctx, out + 1 + DUO_SEAL_NONCE_LEN, &n, pt, (int)pt_len) != 1) goto out;
    if (EVP_EncryptFinal_ex(ctx, out + 1 + DUO_SEAL_NONCE_LEN + pt_len, &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, DUO_SEAL_TAG_LEN, out + 1 + DUO_SEAL_NONCE_LEN + pt_len) != 1)
        goto out;
    *out_len = pt_len + DUO_SEAL_OVERHEAD;
    r = DUO_OK;
out:
    EVP_CIPHER_CTX_free(ctx); /* frees (and OpenSSL cleanses) the key schedule */
    if (r != DUO_OK) {
        size_t used = pt_len + DUO_SEAL_OVERHEAD;
        duo_memzero(out, out_cap < used ? out_cap : used);
    }
    return r;
}

int duo_seal_decrypt(const duo_kek *kek, uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *key_id,
                     size_t key_id_len, const char *column, uint64_t version, const uint8_t *sealed,
                     size_t sealed_len) {
    int r = DUO_E_INTERNAL, n = 0;
    uint8_t aad[SEAL_AAD_MAX], tag[DUO_SEAL_TAG_LEN];
    size_t aad_len, ct_len;
    EVP_CIPHER_CTX *ctx = NULL;

    if (out_len != NULL) *out_len = 0;
    if (kek == NULL || out == NULL || out_len == NULL || key_id == NULL || column == NULL || sealed == NULL)
        return DUO_E_INVALID_ARG;
    if ((aad_len = build_aad(aad, DUO_SEAL_FORMAT_V1, key_id, key_id_len, column, version)) == 0)
        return DUO_E_INVALID_ARG;
    /* The format byte is public; an unknown one is an edit (or a newer file). */
    if (sealed_len < DUO_SEAL_OVERHEAD || sealed_len - DUO_SEAL_OVERHEAD > DUO_SEAL_MAX_PLAINTEXT ||
        sealed[0] != DUO_SEAL_FORMAT_V1) {
        duo_memzero(out, out_cap);
        return DUO_E_STATE_CORRUPT;
    }
    ct_len = sealed_len - DUO_SEAL_OVERHEAD;
    if (out_cap < ct_len) {
        duo_memzero(out, out_cap);
        return DUO_E_BUFFER_TOO_SMALL;
    }
    memcpy(tag, sealed + 1 + DUO_SEAL_NONCE_LEN + ct_len, DUO_SEAL_TAG_LEN);

    if ((ctx = EVP_CIPHER_CTX_new()) == NULL) goto out;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, DUO_SEAL_NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, kek->data, sealed + 1) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (ct_len > 0 && EVP_DecryptUpdate(ctx, out, &n, sealed + 1 + DUO_SEAL_NONCE_LEN, (int)ct_len) != 1) goto out;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, DUO_SEAL_TAG_LEN, tag) != 1) goto out;
    /* OpenSSL compares the tag in constant time. */
    if (EVP_DecryptFinal_ex(ctx, out + ct_len, &n) != 1) {
        r = DUO_E_STATE_CORRUPT;
        goto out;
    }
    *out_len = ct_len;
    r = DUO_OK;
out:
    EVP_CIPHER_CTX_free(ctx);
    if (r != DUO_OK) duo_memzero(out, out_cap);
    return r;
}

static void set_err(char *err, size_t err_cap, const char *fmt, ...) {
    va_list ap;
    if (err == NULL || err_cap == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

/* fsync()s the directory holding path, so the new directory entry is durable. */
static int fsync_parent(const char *path) {
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    size_t len;
    int fd, rc;
    if (slash == NULL) {
        dir[0] = '.';
        len = 1;
    } else {
        len = slash == path ? 1 : (size_t)(slash - path);
        if (len >= sizeof dir) return -1;
        memcpy(dir, path, len);
    }
    dir[len] = '\0';
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

int duo_kek_create_file(duo_kek *kek, char *err, size_t err_cap, const char *path, const duo_rng *rng) {
    int r = DUO_E_INTERNAL, fd = -1, created = 0;
    duo_kek k;
    size_t off = 0;

    set_err(err, err_cap, "%s", "");
    if (path == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo_rng_bytes(rng, k.data, sizeof k.data)) != DUO_OK) {
        set_err(err, err_cap, "%s: random number generator failed", path);
        goto out;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR);
    if (fd < 0) {
        r = errno == EEXIST ? DUO_E_EXISTS : DUO_E_IO;
        set_err(err, err_cap, "%s: cannot create key-encryption key file: %s", path, strerror(errno));
        goto out;
    }
    created = 1;
    /* The umask may only have narrowed the mode; make it exactly 0600. */
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) goto io;
    while (off < sizeof k.data) {
        ssize_t w = write(fd, k.data + off, sizeof k.data - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) goto io;
        off += (size_t)w;
    }
    if (fsync(fd) != 0) goto io;
    if (close(fd) != 0) {
        fd = -1;
        goto io;
    }
    fd = -1;
    if (fsync_parent(path) != 0) goto io;
    if (kek != NULL) memcpy(kek->data, k.data, sizeof k.data);
    r = DUO_OK;
    goto out;
io:
    r = DUO_E_IO;
    set_err(err, err_cap, "%s: cannot write key-encryption key file: %s", path, strerror(errno));
out:
    if (fd >= 0) close(fd);
    if (r != DUO_OK && created) unlink(path); /* never leave a half-written KEK */
    duo_memzero(&k, sizeof k);
    return r;
}

int duo_kek_load_file(duo_kek *kek, char *err, size_t err_cap, const char *path) {
    int r = DUO_E_INTERNAL, fd = -1;
    struct stat st;
    uint8_t buf[DUO_KEK_LEN + 1];
    size_t off = 0;

    set_err(err, err_cap, "%s", "");
    if (kek == NULL || path == NULL) return DUO_E_INVALID_ARG;
    duo_kek_clear(kek);
    if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        r = DUO_E_IO;
        set_err(err, err_cap, "%s: cannot open key-encryption key file: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        r = DUO_E_IO;
        set_err(err, err_cap, "%s: stat failed: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = DUO_E_STATE_CORRUPT;
        set_err(err, err_cap, "%s: key-encryption key is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        r = DUO_E_PERMISSION;
        set_err(err, err_cap,
                "%s: key-encryption key file is accessible by group or others (mode %03o); "
                "run: chmod 600 %s",
                path, (unsigned)(st.st_mode & 0777), path);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        r = DUO_E_PERMISSION;
        set_err(err, err_cap, "%s: key-encryption key file is owned by uid %u, not by us (%u)", path,
                (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    /* Read one byte more than expected so a longer file is caught even if it
     * grew after fstat(). */
    for (;;) {
        ssize_t n = read(fd, buf + off, sizeof buf - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r = DUO_E_IO;
            set_err(err, err_cap, "%s: read failed: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        off += (size_t)n;
        if (off == sizeof buf) break;
    }
    if (off != DUO_KEK_LEN) {
        r = DUO_E_STATE_CORRUPT;
        set_err(err, err_cap, "%s: key-encryption key file must be exactly %d bytes, found %s%zu", path, DUO_KEK_LEN,
                off > DUO_KEK_LEN ? "more than " : "", off > DUO_KEK_LEN ? (size_t)DUO_KEK_LEN : off);
        goto out;
    }
    memcpy(kek->data, buf, DUO_KEK_LEN);
    r = DUO_OK;
out:
    if (fd >= 0) close(fd);
    duo_memzero(buf, sizeof buf);
    if (r != DUO_OK) duo_kek_clear(kek);
    return r;
}
