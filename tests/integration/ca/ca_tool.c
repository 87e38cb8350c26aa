/* A helper for test_ca_cli.sh: what the device and an enrolment would do,
 * with an ordinary OpenSSL key in place of the two-party signer.
 *
 *   ca_tool addkey DIR KEY.pem CITIZEN TOKEN KEYID   a key with KEY's public point,
 *                                                   activated with TOKEN (as enrolment does)
 *   ca_tool freeze DIR KEYID                        the key suspended (a clone), certificates untouched
 *   ca_tool csr KEY.pem CURVE CN OUT                 a PKCS#10 request (DER) from the builder
 *   ca_tool cms KEY.pem CERT.pem DOC OUT             a detached CMS (DER) from the builder */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "ca_test_util.h"
#include "datadir.h"

static EVP_PKEY *load_key(const char *path) {
    FILE *f = fopen(path, "r");
    EVP_PKEY *k = f != NULL ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f != NULL) fclose(f);
    if (k == NULL) fprintf(stderr, "ca_tool: cannot read the key %s\n", path);
    return k;
}

static int write_file(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    int ok = f != NULL && fwrite(p, 1, n, f) == n;
    if (f != NULL && fclose(f) != 0) ok = 0;
    return ok ? 0 : 1;
}

static int unhex(uint8_t *out, size_t n, const char *s) {
    if (strlen(s) != 2 * n) return -1;
    for (size_t i = 0; i < n; i++)
        if (sscanf(s + 2 * i, "%2hhx", &out[i]) != 1) return -1;
    return 0;
}

static duo_keystore *open_dir(const char *dir) {
    duo_keystore *ks = NULL;
    char err[512] = "";
    if (duo_datadir_open_store(&ks, err, sizeof err, dir, 0, NULL, 0) != DUO_OK) {
        fprintf(stderr, "ca_tool: %s\n", err);
        return NULL;
    }
    return ks;
}

static int addkey(char **a) {
    EVP_PKEY *k = load_key(a[1]);
    uint8_t q[33], kid[16];
    duo_keystore *ks;
    duo_key_info ki;
    duo_key_secrets s;
    int r;
    if (k == NULL || ct_key_point(k, q) != 0 || unhex(kid, 16, a[4]) != 0 || (ks = open_dir(a[0])) == NULL) return 1;
    memset(&ki, 0, sizeof ki);
    memset(&s, 0, sizeof s);
    memcpy(ki.key_id, kid, 16);
    snprintf(ki.citizen_id, sizeof ki.citizen_id, "%s", a[2]);
    ki.paillier_bits = 2048;
    memcpy(ki.q, q, 33);
    memcpy(ki.q2, q, 33);
    memset(s.x1, 1, sizeof s.x1);
    s.p_len = s.q_len = 128;
    memset(s.p, 2, 128);
    memset(s.q, 3, 128);
    memset(s.current, 4, sizeof s.current);
    if ((r = duo_keystore_key_insert_pending(ks, &ki, &s, NULL)) == DUO_OK)
        r = duo_keystore_key_activate(ks, kid, (const uint8_t *)a[3], strlen(a[3]),
                                      (const uint8_t *)"revocation-code-0123", 20, NULL);
    if (r != DUO_OK) fprintf(stderr, "ca_tool addkey: %s\n", duo_strerror(r));
    duo_keystore_free(ks);
    EVP_PKEY_free(k);
    return r == DUO_OK ? 0 : 1;
}

static int freeze(char **a) {
    uint8_t kid[16];
    duo_keystore *ks;
    duo_key_info ki;
    int r = DUO_E_INVALID_ARG;
    if (unhex(kid, 16, a[1]) != 0 || (ks = open_dir(a[0])) == NULL) return 1;
    if ((r = duo_keystore_key_get(ks, &ki, NULL, kid)) == DUO_OK) {
        duo_key_policy pol = {.state = DUO_KEY_STATE_SUSPENDED, .reason = "clone (test)"};
        r = duo_keystore_key_update_policy(ks, kid, ki.version, &pol, NULL);
    }
    duo_keystore_free(ks);
    return r == DUO_OK ? 0 : 1;
}

static int csr(char **a) {
    EVP_PKEY *k = load_key(a[0]);
    uint8_t *der = NULL;
    size_t n = 0;
    int r = k != NULL ? ct_csr(&der, &n, k, a[1], a[2]) : DUO_E_IO;
    int rc = r == DUO_OK ? write_file(a[3], der, n) : 1;
    if (r != DUO_OK) fprintf(stderr, "ca_tool csr: %s\n", duo_strerror(r));
    duo_x509_free(der);
    EVP_PKEY_free(k);
    return rc;
}

static int cms(char **a) {
    EVP_PKEY *k = load_key(a[0]);
    FILE *f = fopen(a[1], "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    uint8_t *cert = NULL, *out = NULL, digest[32], buf[4096];
    size_t n = 0, got;
    int len = x != NULL ? i2d_X509(x, &cert) : -1, r = DUO_E_IO, rc = 1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    FILE *doc = fopen(a[2], "rb");
    if (f != NULL) fclose(f);
    if (k != NULL && len > 0 && doc != NULL && md != NULL && EVP_DigestInit(md, EVP_sha256()) == 1) {
        while ((got = fread(buf, 1, sizeof buf, doc)) > 0) EVP_DigestUpdate(md, buf, got);
        if (EVP_DigestFinal(md, digest, NULL) == 1)
            r = duo_cms_sign_detached(&out, &n, cert, (size_t)len, digest, (int64_t)time(NULL), ct_sign, k);
    }
    if (r == DUO_OK) rc = write_file(a[3], out, n);
    if (r != DUO_OK) fprintf(stderr, "ca_tool cms: %s\n", duo_strerror(r));
    if (doc != NULL) fclose(doc);
    EVP_MD_CTX_free(md);
    duo_x509_free(out);
    OPENSSL_free(cert);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "addkey") == 0) return addkey(argv + 2);
    if (argc == 4 && strcmp(argv[1], "freeze") == 0) return freeze(argv + 2);
    if (argc == 6 && strcmp(argv[1], "csr") == 0) return csr(argv + 2);
    if (argc == 6 && strcmp(argv[1], "cms") == 0) return cms(argv + 2);
    fprintf(stderr, "usage: see the top of ca_tool.c\n");
    return 2;
}
