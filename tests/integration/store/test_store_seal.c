/* Sealing of secret columns (AES-256-GCM, AAD-bound) and the KEK file. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "duosign/mem.h"
#include "seal.h"
#include "store_test_util.h"

static const uint8_t kid_a[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t kid_b[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17};

static void test_kek(duo_kek *k, uint8_t b) {
    memset(k, 0, sizeof *k);
    memset(k->data, b, sizeof k->data);
}

static void test_seal_roundtrip(void) {
    static const size_t lens[] = {0, 1, 16, 32, 192, 256, DUO_SEAL_MAX_PLAINTEXT};
    duo_kek kek;
    uint8_t pt[DUO_SEAL_MAX_PLAINTEXT], out[DUO_SEAL_MAX_PLAINTEXT], sealed[DUO_SEAL_MAX_PLAINTEXT + DUO_SEAL_OVERHEAD];
    size_t n, m;
    test_kek(&kek, 7);
    for (size_t i = 0; i < sizeof pt; i++) pt[i] = (uint8_t)(i * 31 + 5);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        DUO_CHECK_OK(duo_seal_encrypt(&kek, sealed, sizeof sealed, &n, kid_a, 16, "x1", 3, pt, lens[i], NULL));
        DUO_CHECK(n == lens[i] + DUO_SEAL_OVERHEAD);
        DUO_CHECK(sealed[0] == DUO_SEAL_FORMAT_V2);
        DUO_CHECK_OK(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "x1", 3, sealed, n));
        DUO_CHECK(m == lens[i]);
        DUO_CHECK(duo_ct_eq(out, pt, lens[i]));
        /* the plaintext does not appear in the sealed value */
        if (lens[i] >= 16) DUO_CHECK(!duo_ct_eq(sealed + DUO_SEAL_HEADER_LEN + DUO_SEAL_NONCE_LEN, pt, 16));
    }
}

static void test_seal_nonce_fresh(void) {
    duo_kek kek;
    uint8_t pt[32] = {0}, s1[32 + DUO_SEAL_OVERHEAD], s2[32 + DUO_SEAL_OVERHEAD];
    size_t n1, n2;
    test_kek(&kek, 1);
    DUO_CHECK_OK(duo_seal_encrypt(&kek, s1, sizeof s1, &n1, kid_a, 16, "x1", 1, pt, 32, NULL));
    DUO_CHECK_OK(duo_seal_encrypt(&kek, s2, sizeof s2, &n2, kid_a, 16, "x1", 1, pt, 32, NULL));
    DUO_CHECK(n1 == n2);
    DUO_CHECK(!duo_ct_eq(s1 + DUO_SEAL_HEADER_LEN, s2 + DUO_SEAL_HEADER_LEN, DUO_SEAL_NONCE_LEN));
    DUO_CHECK(!duo_ct_eq(s1, s2, n1));
}

/* Flipping any bit of any byte (format, KEK id, nonce, ciphertext, tag) fails. */
static void test_seal_tamper_every_byte(void) {
    duo_kek kek;
    uint8_t pt[40], s[40 + DUO_SEAL_OVERHEAD], t[sizeof s + 1], out[64];
    size_t n, m = 99;
    test_kek(&kek, 3);
    memset(pt, 0xab, sizeof pt);
    DUO_REQUIRE(duo_seal_encrypt(&kek, s, sizeof s, &n, kid_a, 16, "paillier_p", 9, pt, sizeof pt, NULL) == DUO_OK);
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(t, s, n);
            t[i] ^= (uint8_t)(1u << bit);
            memset(out, 0x55, sizeof out);
            /* the KEK id bytes name another KEK: said so before any decryption */
            DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "paillier_p", 9, t, n),
                           i >= 1 && i < DUO_SEAL_HEADER_LEN ? DUO_E_KEK_UNKNOWN : DUO_E_STATE_CORRUPT);
            DUO_CHECK(m == 0);
            DUO_CHECK(duo_ct_is_zero(out, sizeof out)); /* nothing released */
        }
    }
    /* truncated, extended, empty */
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "paillier_p", 9, s, n - 1),
                   DUO_E_STATE_CORRUPT);
    memcpy(t, s, n);
    t[n] = 0;
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "paillier_p", 9, t, n + 1),
                   DUO_E_STATE_CORRUPT);
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "paillier_p", 9, s, DUO_SEAL_OVERHEAD - 1),
                   DUO_E_STATE_CORRUPT);
    /* untouched still opens */
    DUO_CHECK_OK(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "paillier_p", 9, s, n));
}

/* A value sealed for (key id, column, version) opens for nothing else. */
static void test_seal_wrong_aad(void) {
    duo_kek kek, other;
    uint8_t pt[32], s[32 + DUO_SEAL_OVERHEAD], out[32];
    size_t n, m;
    test_kek(&kek, 4);
    test_kek(&other, 5);
    memset(pt, 0x11, sizeof pt);
    DUO_REQUIRE(duo_seal_encrypt(&kek, s, sizeof s, &n, kid_a, 16, "device_secret_current", 2, pt, sizeof pt, NULL) ==
                DUO_OK);
    DUO_CHECK_OK(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "device_secret_current", 2, s, n));
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_b, 16, "device_secret_current", 2, s, n),
                   DUO_E_STATE_CORRUPT); /* other row */
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "device_secret_pending", 2, s, n),
                   DUO_E_STATE_CORRUPT); /* other column */
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "device_secret_current", 1, s, n),
                   DUO_E_STATE_CORRUPT); /* older generation */
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 15, "device_secret_current", 2, s, n),
                   DUO_E_STATE_CORRUPT); /* key id prefix */
    DUO_EXPECT_ERR(duo_seal_decrypt(&other, out, sizeof out, &m, kid_a, 16, "device_secret_current", 2, s, n),
                   DUO_E_STATE_CORRUPT); /* other KEK */
    /* length prefixes: moving a byte between key id and column changes the AAD */
    DUO_REQUIRE(duo_seal_encrypt(&kek, s, sizeof s, &n, (const uint8_t *)"ab", 2, "c", 0, pt, sizeof pt, NULL) ==
                DUO_OK);
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, (const uint8_t *)"a", 1, "bc", 0, s, n),
                   DUO_E_STATE_CORRUPT);
}

static void test_seal_args(void) {
    duo_kek kek;
    uint8_t pt[32] = {0}, s[32 + DUO_SEAL_OVERHEAD], out[8];
    size_t n;
    test_kek(&kek, 6);
    DUO_EXPECT_ERR(duo_seal_encrypt(&kek, s, 32 + DUO_SEAL_OVERHEAD - 1, &n, kid_a, 16, "x1", 1, pt, 32, NULL),
                   DUO_E_BUFFER_TOO_SMALL);
    DUO_EXPECT_ERR(duo_seal_encrypt(&kek, s, sizeof s, &n, kid_a, 16, "", 1, pt, 32, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_seal_encrypt(&kek, s, sizeof s, &n, kid_a, 0, "x1", 1, pt, 32, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_seal_encrypt(NULL, s, sizeof s, &n, kid_a, 16, "x1", 1, pt, 32, NULL), DUO_E_INVALID_ARG);
    DUO_REQUIRE(duo_seal_encrypt(&kek, s, sizeof s, &n, kid_a, 16, "x1", 1, pt, 32, NULL) == DUO_OK);
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &n, kid_a, 16, "x1", 1, s, 32 + DUO_SEAL_OVERHEAD),
                   DUO_E_BUFFER_TOO_SMALL);
}

/* Format 1, as written before KEK ids existed (no KEK id in the value or
 * the AAD), built here with OpenSSL alone. */
static size_t seal_v1(uint8_t *out, const duo_kek *kek, const uint8_t *kid, const char *col, uint64_t version,
                      const uint8_t *pt, size_t pt_len) {
    uint8_t aad[256], *p = aad, v[8];
    const char *label = "duosign.seal";
    uint8_t fmt = DUO_SEAL_FORMAT_V1;
    int n = 0;
    struct {
        const void *b;
        size_t len;
    } parts[] = {{label, strlen(label)}, {&fmt, 1}, {kid, 16}, {col, strlen(col)}, {v, 8}};
    for (int i = 0; i < 8; i++) v[i] = (uint8_t)(version >> (56 - 8 * i));
    for (size_t i = 0; i < 5; i++) {
        p[0] = p[1] = 0;
        p[2] = (uint8_t)(parts[i].len >> 8);
        p[3] = (uint8_t)parts[i].len;
        memcpy(p + 4, parts[i].b, parts[i].len);
        p += 4 + parts[i].len;
    }
    out[0] = DUO_SEAL_FORMAT_V1;
    memset(out + 1, 0x42, DUO_SEAL_NONCE_LEN);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    DUO_CHECK(c != NULL && EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek->data, out + 1) == 1 &&
              EVP_EncryptUpdate(c, NULL, &n, aad, (int)(p - aad)) == 1 &&
              EVP_EncryptUpdate(c, out + 1 + DUO_SEAL_NONCE_LEN, &n, pt, (int)pt_len) == 1 &&
              EVP_EncryptFinal_ex(c, out + 1 + DUO_SEAL_NONCE_LEN + pt_len, &n) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + 1 + DUO_SEAL_NONCE_LEN + pt_len) == 1);
    EVP_CIPHER_CTX_free(c);
    return pt_len + DUO_SEAL_OVERHEAD_V1;
}

/* Values sealed before KEK rotation existed still open, as KEK id 0. */
static void test_seal_legacy_v1(void) {
    duo_kek kek;
    uint8_t pt[32], s[32 + DUO_SEAL_OVERHEAD_V1], t[sizeof s], out[32];
    size_t n, m = 7;
    uint32_t id = 99;
    test_kek(&kek, 9);
    memset(pt, 0x5a, sizeof pt);
    n = seal_v1(s, &kek, kid_a, "x1", 4, pt, sizeof pt);
    DUO_CHECK_OK(duo_seal_kek_id(&id, s, n));
    DUO_CHECK(id == 0);
    DUO_CHECK_OK(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "x1", 4, s, n));
    DUO_CHECK(m == sizeof pt && duo_ct_eq(out, pt, sizeof pt));
    /* every byte still protected */
    for (size_t i = 0; i < n; i++) {
        memcpy(t, s, n);
        t[i] ^= 0x10;
        DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "x1", 4, t, n), DUO_E_STATE_CORRUPT);
        DUO_CHECK(duo_ct_is_zero(out, sizeof out));
    }
    /* a KEK with another id does not open it */
    kek.id = 1;
    DUO_EXPECT_ERR(duo_seal_decrypt(&kek, out, sizeof out, &m, kid_a, 16, "x1", 4, s, n), DUO_E_KEK_UNKNOWN);
}

/* The KEK id is bound into the AAD: relabelling a value for another KEK id
 * (with the same key bytes) fails; the id reads back without opening. */
static void test_seal_kek_id(void) {
    duo_kek a, b;
    uint8_t pt[16] = {1}, s[16 + DUO_SEAL_OVERHEAD], out[16];
    size_t n, m;
    uint32_t id = 0;
    test_kek(&a, 8);
    test_kek(&b, 8);
    a.id = 0x01020304;
    b.id = 0x01020305;
    DUO_REQUIRE(duo_seal_encrypt(&a, s, sizeof s, &n, kid_a, 16, "x1", 1, pt, sizeof pt, NULL) == DUO_OK);
    DUO_CHECK_OK(duo_seal_kek_id(&id, s, n));
    DUO_CHECK(id == 0x01020304);
    DUO_CHECK(s[0] == DUO_SEAL_FORMAT_V2 && s[1] == 1 && s[2] == 2 && s[3] == 3 && s[4] == 4);
    DUO_EXPECT_ERR(duo_seal_decrypt(&b, out, sizeof out, &m, kid_a, 16, "x1", 1, s, n), DUO_E_KEK_UNKNOWN);
    s[4] = 5; /* now names b, whose bytes are the same */
    DUO_EXPECT_ERR(duo_seal_decrypt(&b, out, sizeof out, &m, kid_a, 16, "x1", 1, s, n), DUO_E_STATE_CORRUPT);
    s[0] = 3; /* an unknown format */
    DUO_EXPECT_ERR(duo_seal_kek_id(&id, s, n), DUO_E_STATE_CORRUPT);
    DUO_EXPECT_ERR(duo_seal_kek_id(&id, s, 3), DUO_E_STATE_CORRUPT);
}

static int write_file(const char *path, const uint8_t *b, size_t n, mode_t mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0) return -1;
    if (write(fd, b, n) != (ssize_t)n) {
        close(fd);
        return -1;
    }
    if (fchmod(fd, mode) != 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static void test_kek_file(void) {
    store_env e;
    duo_kek k1, k2;
    struct stat st;
    char err[512], p[PATH_MAX + 16];
    uint8_t buf[40];
    DUO_REQUIRE(env_mkdir(&e) == 0);

    DUO_CHECK_OK(duo_kek_create_file(&k1, err, sizeof err, e.kek_path, NULL));
    DUO_REQUIRE(stat(e.kek_path, &st) == 0);
    DUO_CHECK((st.st_mode & 0777) == 0600);
    DUO_CHECK(st.st_size == DUO_KEK_LEN);
    DUO_CHECK(!duo_ct_is_zero(k1.data, sizeof k1.data));
    DUO_CHECK_OK(duo_kek_load_file(&k2, err, sizeof err, e.kek_path));
    DUO_CHECK(duo_ct_eq(k1.data, k2.data, sizeof k1.data));

    /* never overwritten */
    DUO_EXPECT_ERR(duo_kek_create_file(&k2, err, sizeof err, e.kek_path, NULL), DUO_E_EXISTS);
    DUO_CHECK_OK(duo_kek_load_file(&k2, err, sizeof err, e.kek_path));
    DUO_CHECK(duo_ct_eq(k1.data, k2.data, sizeof k1.data));

    /* group- or world-accessible: refused with a message naming the fix */
    static const mode_t bad[] = {0640, 0604, 0660, 0644, 0602, 0610};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        DUO_REQUIRE(chmod(e.kek_path, bad[i]) == 0);
        err[0] = '\0';
        DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, e.kek_path), DUO_E_PERMISSION);
        DUO_CHECK(strstr(err, "chmod 600") != NULL);
        DUO_CHECK(duo_ct_is_zero(k2.data, sizeof k2.data));
    }
    DUO_REQUIRE(chmod(e.kek_path, 0400) == 0);
    DUO_CHECK_OK(duo_kek_load_file(&k2, err, sizeof err, e.kek_path));

    /* wrong sizes */
    memset(buf, 9, sizeof buf);
    snprintf(p, sizeof p, "%s/short", e.dir);
    DUO_REQUIRE(write_file(p, buf, 31, 0600) == 0);
    DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, p), DUO_E_STATE_CORRUPT);
    DUO_CHECK(strstr(err, "exactly 32 bytes") != NULL);
    unlink(p);
    snprintf(p, sizeof p, "%s/long", e.dir);
    DUO_REQUIRE(write_file(p, buf, 33, 0600) == 0);
    DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, p), DUO_E_STATE_CORRUPT);
    unlink(p);
    snprintf(p, sizeof p, "%s/empty", e.dir);
    DUO_REQUIRE(write_file(p, buf, 0, 0600) == 0);
    DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, p), DUO_E_STATE_CORRUPT);
    unlink(p);

    /* missing, symlink, directory */
    snprintf(p, sizeof p, "%s/missing", e.dir);
    DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, p), DUO_E_IO);
    DUO_CHECK(strlen(err) > 0);
    snprintf(p, sizeof p, "%s/link", e.dir);
    DUO_REQUIRE(symlink(e.kek_path, p) == 0);
    DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, p), DUO_E_IO);
    DUO_EXPECT_ERR(duo_kek_create_file(&k2, err, sizeof err, p, NULL), DUO_E_EXISTS);
    unlink(p);
    DUO_EXPECT_ERR(duo_kek_load_file(&k2, err, sizeof err, e.dir), DUO_E_STATE_CORRUPT);

    /* created 0600 whatever the umask */
    mode_t old = umask(0);
    snprintf(p, sizeof p, "%s/kek2", e.dir);
    DUO_CHECK_OK(duo_kek_create_file(NULL, err, sizeof err, p, NULL));
    umask(old);
    DUO_REQUIRE(stat(p, &st) == 0);
    DUO_CHECK((st.st_mode & 0777) == 0600);
    unlink(p);

    duo_kek_clear(&k1);
    duo_kek_clear(&k2);
    env_close(&e);
}

int main(void) {
    DUO_RUN(test_seal_roundtrip);
    DUO_RUN(test_seal_nonce_fresh);
    DUO_RUN(test_seal_tamper_every_byte);
    DUO_RUN(test_seal_wrong_aad);
    DUO_RUN(test_seal_args);
    DUO_RUN(test_seal_legacy_v1);
    DUO_RUN(test_seal_kek_id);
    DUO_RUN(test_kek_file);
    return duo_test_finish();
}
