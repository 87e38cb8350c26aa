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
#include "kek_p11.h"

#define SEAL_LABEL "duosign.seal"
/* label, format, KEK id, key id (<= 64), column (<= 64), version: all length-prefixed. */
#define SEAL_AAD_MAX (4 + sizeof SEAL_LABEL - 1 + 4 + 1 + 4 + 4 + 4 + 64 + 4 + 64 + 4 + 8)

void duo_kek_clear(duo_kek *kek) {
    if (kek != NULL) duo_memzero(kek, sizeof *kek);
}

static size_t put_lp(uint8_t *p, const void *v, size_t len) {
    p[0] = (uint8_t)(len >> 24);
    p[1] = (uint8_t)(len >> 16);
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    if (len > 0) memcpy(p + 4, v, len);
    return 4 + len;
}

static void put_u32(uint8_t p[4], uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Builds the AAD (format 1 has no KEK id in it); returns its length, or 0 if
 * an input is out of range. */
static size_t build_aad(uint8_t aad[SEAL_AAD_MAX], uint8_t format, uint32_t kek_id, const uint8_t *key_id,
                        size_t key_id_len, const char *column, uint64_t version) {
    size_t col_len = strlen(column), n = 0;
    uint8_t v[8], kid[4];
    if (key_id_len == 0 || key_id_len > 64 || col_len == 0 || col_len > 64) return 0;
    for (int i = 0; i < 8; i++) v[i] = (uint8_t)(version >> (56 - 8 * i));
    put_u32(kid, kek_id);
    n += put_lp(aad + n, SEAL_LABEL, sizeof SEAL_LABEL - 1);
    n += put_lp(aad + n, &format, 1);
    if (format != DUO_SEAL_FORMAT_V1) n += put_lp(aad + n, kid, sizeof kid);
    n += put_lp(aad + n, key_id, key_id_len);
    n += put_lp(aad + n, column, col_len);
    n += put_lp(aad + n, v, sizeof v);
    return n;
}

/* AES-256-GCM with the KEK held in memory: out = ciphertext || tag when
 * sealing, the plaintext when opening (in = ciphertext || tag). */
static int gcm_openssl(const duo_kek *kek, int seal, const uint8_t *iv, const uint8_t *aad, size_t aad_len,
                       const uint8_t *in, size_t in_len, uint8_t *out) {
    int r = DUO_E_INTERNAL, n = 0;
    size_t ct_len = seal ? in_len : in_len - DUO_SEAL_TAG_LEN;
    uint8_t tag[DUO_SEAL_TAG_LEN];
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return DUO_E_INTERNAL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, DUO_SEAL_NONCE_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(ctx, NULL, NULL, kek->data, iv, seal) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto out;
    if (ct_len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)ct_len) != 1) goto out;
    if (seal) {
        if (EVP_CipherFinal_ex(ctx, out + ct_len, &n) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, DUO_SEAL_TAG_LEN, out + ct_len) != 1)
            goto out;
    } else {
        memcpy(tag, in + ct_len, DUO_SEAL_TAG_LEN);
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, DUO_SEAL_TAG_LEN, tag) != 1) goto out;
        /* OpenSSL compares the tag in constant time. */
        if (EVP_CipherFinal_ex(ctx, out + ct_len, &n) != 1) {
            r = DUO_E_STATE_CORRUPT;
            goto out;
        }
    }
    r = DUO_OK;
out:
    EVP_CIPHER_CTX_free(ctx); /* frees (and OpenSSL cleanses) the key schedule */
    return r;
}

/* GCM wherever the KEK lives: in memory, or inside its PKCS#11 token. */
static int gcm(const duo_kek *kek, int seal, const uint8_t *iv, const uint8_t *aad, size_t aad_len, const uint8_t *in,
               size_t in_len, uint8_t *out) {
    if (kek->token != NULL) return duo_p11_gcm(kek->token, seal, iv, aad, aad_len, in, in_len, out);
    return gcm_openssl(kek, seal, iv, aad, aad_len, in, in_len, out);
}

int duo_seal_kek_id(uint32_t *id, const uint8_t *sealed, size_t sealed_len) {
    if (id == NULL || sealed == NULL) return DUO_E_INVALID_ARG;
    *id = 0;
    if (sealed_len >= DUO_SEAL_OVERHEAD_V1 && sealed[0] == DUO_SEAL_FORMAT_V1) return DUO_OK;
    if (sealed_len < DUO_SEAL_OVERHEAD || sealed[0] != DUO_SEAL_FORMAT_V2) return DUO_E_STATE_CORRUPT;
    *id = (uint32_t)sealed[1] << 24 | (uint32_t)sealed[2] << 16 | (uint32_t)sealed[3] << 8 | sealed[4];
    return DUO_OK;
}

int duo_seal_encrypt(const duo_kek *kek, uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *key_id,
                     size_t key_id_len, const char *column, uint64_t version, const uint8_t *pt, size_t pt_len,
                     const duo_rng *rng) {
    int r = DUO_E_INTERNAL;
    uint8_t aad[SEAL_AAD_MAX];
    size_t aad_len;

    if (out_len != NULL) *out_len = 0;
    if (kek == NULL || out == NULL || out_len == NULL || key_id == NULL || column == NULL ||
        (pt == NULL && pt_len > 0) || pt_len > DUO_SEAL_MAX_PLAINTEXT)
        return DUO_E_INVALID_ARG;
    if ((aad_len = build_aad(aad, DUO_SEAL_FORMAT_V2, kek->id, key_id, key_id_len, column, version)) == 0)
        return DUO_E_INVALID_ARG;
    if (out_cap < pt_len + DUO_SEAL_OVERHEAD) return DUO_E_BUFFER_TOO_SMALL;

    out[0] = DUO_SEAL_FORMAT_V2;
    put_u32(out + 1, kek->id);
    if ((r = duo_rng_bytes(rng, out + DUO_SEAL_HEADER_LEN, DUO_SEAL_NONCE_LEN)) != DUO_OK) goto out;
    r = gcm(kek, 1, out + DUO_SEAL_HEADER_LEN, aad, aad_len, pt, pt_len,
            out + DUO_SEAL_HEADER_LEN + DUO_SEAL_NONCE_LEN);
    if (r == DUO_OK) *out_len = pt_len + DUO_SEAL_OVERHEAD;
out:
    if (r != DUO_OK) {
        size_t used = pt_len + DUO_SEAL_OVERHEAD;
        duo_memzero(out, out_cap < used ? out_cap : used);
    }
    return r;
}

int duo_seal_decrypt(const duo_kek *kek, uint8_t *out, size_t out_cap, size_t *out_len, const uint8_t *key_id,
                     size_t key_id_len, const char *column, uint64_t version, const uint8_t *sealed,
                     size_t sealed_len) {
    int r;
    uint8_t aad[SEAL_AAD_MAX];
    size_t aad_len, hdr, ct_len;
    uint32_t id = 0;

    if (out_len != NULL) *out_len = 0;
    if (kek == NULL || out == NULL || out_len == NULL || key_id == NULL || column == NULL || sealed == NULL)
        return DUO_E_INVALID_ARG;
    /* The format byte and KEK id are public; an unknown format is an edit (or
     * a newer file). */
    if ((r = duo_seal_kek_id(&id, sealed, sealed_len)) != DUO_OK) goto fail;
    hdr = sealed[0] == DUO_SEAL_FORMAT_V1 ? 1 : DUO_SEAL_HEADER_LEN;
    ct_len = sealed_len - hdr - DUO_SEAL_NONCE_LEN - DUO_SEAL_TAG_LEN;
    if ((aad_len = build_aad(aad, sealed[0], id, key_id, key_id_len, column, version)) == 0) {
        r = DUO_E_INVALID_ARG;
        goto fail;
    }
    r = DUO_E_STATE_CORRUPT;
    if (ct_len > DUO_SEAL_MAX_PLAINTEXT) goto fail;
    r = DUO_E_KEK_UNKNOWN;
    if (id != kek->id) goto fail;
    r = DUO_E_BUFFER_TOO_SMALL;
    if (out_cap < ct_len) goto fail;
    r = gcm(kek, 0, sealed + hdr, aad, aad_len, sealed + hdr + DUO_SEAL_NONCE_LEN, ct_len + DUO_SEAL_TAG_LEN, out);
    if (r != DUO_OK) goto fail;
    *out_len = ct_len;
    return DUO_OK;
fail:
    duo_memzero(out, out_cap);
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
    if (kek != NULL) {
        duo_kek_clear(kek); /* id 0, no token: the caller names its id */
        memcpy(kek->data, k.data, sizeof k.data);
    }
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
