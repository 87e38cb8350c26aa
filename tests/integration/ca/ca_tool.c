/* A helper for test_ca_cli.sh: what the device and an enrolment would do,
 * with an ordinary OpenSSL key in place of the two-party signer.
 *
 *   ca_tool addkey DIR KEY.pem CITIZEN TOKEN KEYID   a key with KEY's public point,
 *                                                   activated with TOKEN (as enrolment does)
 *   ca_tool freeze DIR KEYID                        the key suspended (a clone), certificates untouched
 *   ca_tool csr KEY.pem CURVE CN OUT                 a PKCS#10 request (DER) from the builder
 *   ca_tool cms KEY.pem CERT.pem DOC OUT             a detached CMS (DER) from the builder
 * and the same two signed by the two-party protocol (a duosign state file, its
 * PIN, the cloud's TLS CA; the state is saved after each signature):
 *   ca_tool csr2p STATE PINFILE CA.pem CN OUT
 *   ca_tool cms2p STATE PINFILE CA.pem CERT.pem DOC OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "ca_test_util.h"
#include "datadir.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"

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

/* ------------------------------------------------ the two-party signer */

typedef struct {
    duo_device_ctx *ctx;
    duo_grpc_transport *tr;
    const char *state_path;
    char pin[64];
    size_t pin_len;
} twop;

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
        *len = (size_t)n;
    } else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The state after a signature: written (tmp + rename), then acknowledged. */
static int save_state(twop *t) {
    uint8_t *blob = NULL;
    size_t len = 0;
    char tmp[4096];
    int r = duo_device_state_export(t->ctx, &blob, &len);
    snprintf(tmp, sizeof tmp, "%s.tmp", t->state_path);
    if (r == DUO_OK) r = write_file(tmp, blob, len) == 0 && rename(tmp, t->state_path) == 0 ? DUO_OK : DUO_E_IO;
    if (r == DUO_OK) r = duo_device_state_persisted(t->ctx);
    duo_device_blob_free(blob, len);
    return r;
}

static int sign2p(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]) {
    twop *t = ctx;
    int r = duo_device_sign(t->ctx, sig_rs, digest, (const uint8_t *)t->pin, t->pin_len);
    if (r != DUO_OK)
        fprintf(stderr, "ca_tool: two-party signature: %s (%s)\n", duo_strerror(r), duo_device_errmsg(t->ctx));
    if (r == DUO_OK && duo_device_state_dirty(t->ctx)) r = save_state(t);
    return r;
}

static int twop_open(twop *t, const char *state, const char *pin_file, const char *ca_file) {
    size_t blob_len = 0, ca_len = 0, pl = 0;
    uint8_t *blob = slurp(state, &blob_len), *ca = slurp(ca_file, &ca_len), *pin = slurp(pin_file, &pl);
    int r = DUO_E_IO;
    memset(t, 0, sizeof *t);
    t->state_path = state;
    if (blob != NULL && ca != NULL && pin != NULL && (r = duo_device_ctx_new(&t->ctx)) == DUO_OK &&
        (r = duo_device_state_import(t->ctx, blob, blob_len)) == DUO_OK &&
        (r = duo_grpc_transport_new(&t->tr, duo_device_server_address(t->ctx), (const char *)ca, ca_len, 60000)) ==
            DUO_OK)
        r = duo_device_set_transport(t->ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, t->tr);
    while (pl > 0 && (pin[pl - 1] == '\n' || pin[pl - 1] == '\r')) pl--;
    if (pin != NULL && pl < sizeof t->pin) {
        memcpy(t->pin, pin, pl);
        t->pin_len = pl;
    }
    if (r != DUO_OK) fprintf(stderr, "ca_tool: cannot open %s: %s\n", state, duo_strerror(r));
    free(blob);
    free(ca);
    free(pin);
    return r;
}

static void twop_close(twop *t) {
    duo_device_ctx_free(t->ctx);
    duo_grpc_transport_free(t->tr);
    memset(t->pin, 0, sizeof t->pin);
}

static int csr2p(char **a) {
    twop t;
    uint8_t q[DUO_DEVICE_PUBKEY_BYTES], *der = NULL;
    size_t n = 0;
    duo_csr_subject subj = {.common_name = a[3]};
    int r = twop_open(&t, a[0], a[1], a[2]), rc = 1;
    if (r == DUO_OK && (r = duo_device_pubkey(t.ctx, q)) == DUO_OK &&
        (r = duo_csr_build(&der, &n, duo_device_curve_name(duo_device_curve(t.ctx)), q, sizeof q, &subj, sign2p, &t)) ==
            DUO_OK)
        rc = write_file(a[4], der, n);
    if (r != DUO_OK) fprintf(stderr, "ca_tool csr2p: %s\n", duo_strerror(r));
    duo_x509_free(der);
    twop_close(&t);
    return rc;
}

static int cms2p(char **a) {
    twop t;
    FILE *f = fopen(a[3], "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    uint8_t *cert = NULL, *doc = NULL, *out = NULL, digest[32];
    size_t doc_len = 0, n = 0;
    int len = x != NULL ? i2d_X509(x, &cert) : -1, rc = 1, r;
    if (f != NULL) fclose(f);
    r = twop_open(&t, a[0], a[1], a[2]);
    if (r == DUO_OK && (len <= 0 || (doc = slurp(a[4], &doc_len)) == NULL ||
                        EVP_Digest(doc, doc_len, digest, NULL, EVP_sha256(), NULL) != 1))
        r = DUO_E_IO;
    if (r == DUO_OK &&
        (r = duo_cms_sign_detached(&out, &n, cert, (size_t)len, digest, (int64_t)time(NULL), sign2p, &t)) == DUO_OK)
        rc = write_file(a[5], out, n);
    if (r != DUO_OK) fprintf(stderr, "ca_tool cms2p: %s\n", duo_strerror(r));
    duo_x509_free(out);
    free(doc);
    OPENSSL_free(cert);
    X509_free(x);
    twop_close(&t);
    return rc;
}

int main(int argc, char **argv) {
    if (argc == 7 && strcmp(argv[1], "csr2p") == 0) return csr2p(argv + 2);
    if (argc == 8 && strcmp(argv[1], "cms2p") == 0) return cms2p(argv + 2);
    if (argc == 7 && strcmp(argv[1], "addkey") == 0) return addkey(argv + 2);
    if (argc == 4 && strcmp(argv[1], "freeze") == 0) return freeze(argv + 2);
    if (argc == 6 && strcmp(argv[1], "csr") == 0) return csr(argv + 2);
    if (argc == 6 && strcmp(argv[1], "cms") == 0) return cms(argv + 2);
    fprintf(stderr, "usage: see the top of ca_tool.c\n");
    return 2;
}
