/* duosign-cloud: development TLS material (init) and TLS file checks (serve).
 *
 * A throwaway EC P-256 CA signs one server certificate for DNS:localhost and
 * IP:127.0.0.1 (serverAuth). The CA private key is not kept: production
 * deployments bring their own certificates (replace server.pem/server.key). */
#include "daemon.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "duosign/mem.h"

static EVP_PKEY *gen_p256(void) { return EVP_EC_gen("P-256"); }

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ex) return 0;
    int ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

static X509 *make_cert(EVP_PKEY *subject_key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, int is_ca,
                       long days) {
    X509 *c = X509_new();
    if (!c) return NULL;
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    int ok = 0;
    if (RAND_bytes(serial, sizeof serial) != 1) goto out;
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    sn = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (!sn || X509_set_version(c, 2) != 1 || X509_set_serialNumber(c, sn) != 1) goto out;
    if (!X509_gmtime_adj(X509_getm_notBefore(c), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(c), 60L * 60 * 24 * days))
        goto out;
    if (X509_set_pubkey(c, subject_key) != 1) goto out;
    X509_NAME *name = X509_get_subject_name(c);
    if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"duosign development", -1, -1, 0) !=
            1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1)
        goto out;
    X509 *iss = issuer ? issuer : c;
    if (X509_set_issuer_name(c, X509_get_subject_name(iss)) != 1) goto out;
    if (is_ca) {
        if (!add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
            !add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign") ||
            !add_ext(c, iss, NID_subject_key_identifier, "hash"))
            goto out;
    } else {
        if (!add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") ||
            !add_ext(c, iss, NID_key_usage, "critical,digitalSignature") ||
            !add_ext(c, iss, NID_ext_key_usage, "serverAuth") ||
            !add_ext(c, iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") ||
            !add_ext(c, iss, NID_subject_key_identifier, "hash") ||
            !add_ext(c, iss, NID_authority_key_identifier, "keyid:always"))
            goto out;
    }
    if (X509_sign(c, issuer_key, EVP_sha256()) <= 0) goto out;
    ok = 1;
out:
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    if (!ok) {
        X509_free(c);
        return NULL;
    }
    return c;
}

/* Writes with O_EXCL and the given mode, fsyncs. */
static int write_pem(const char *path, int mode, X509 *cert, EVP_PKEY *key, char *err, size_t cap) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        snprintf(err, cap, "cannot create %s: %s", path, strerror(errno));
        return DUO_E_IO;
    }
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b != NULL;
    if (ok && cert) ok = PEM_write_bio_X509(b, cert) == 1;
    if (ok && key) ok = PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1;
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(b, &data) : 0;
    ok = ok && n > 0 && write(fd, data, (size_t)n) == (ssize_t)n && fsync(fd) == 0;
    if (b) {
        if (data && n > 0) OPENSSL_cleanse(data, (size_t)n);
        BIO_free(b);
    }
    close(fd);
    if (!ok) {
        snprintf(err, cap, "cannot write %s", path);
        return DUO_E_IO;
    }
    return DUO_OK;
}

int duo__pki_create(const char *dir, char *err, size_t cap) {
    EVP_PKEY *ca_key = gen_p256(), *srv_key = gen_p256();
    X509 *ca = NULL, *srv = NULL;
    int r = DUO_E_INTERNAL;
    char path[DUO_PATH_MAX];
    if (!ca_key || !srv_key) {
        snprintf(err, cap, "cannot generate EC P-256 keys (OpenSSL)");
        goto out;
    }
    ca = make_cert(ca_key, "duosign development CA", NULL, ca_key, 1, 3650);
    srv = ca ? make_cert(srv_key, "localhost", ca, ca_key, 0, 825) : NULL;
    if (!ca || !srv) {
        snprintf(err, cap, "cannot build the development certificates (OpenSSL)");
        goto out;
    }
    snprintf(path, sizeof path, "%s/" DUO_FILE_CA, dir);
    if ((r = write_pem(path, 0644, ca, NULL, err, cap)) != DUO_OK) goto out;
    snprintf(path, sizeof path, "%s/" DUO_FILE_CERT, dir);
    if ((r = write_pem(path, 0644, srv, NULL, err, cap)) != DUO_OK) goto out;
    snprintf(path, sizeof path, "%s/" DUO_FILE_KEY, dir);
    if ((r = write_pem(path, 0600, NULL, srv_key, err, cap)) != DUO_OK) goto out;
    r = DUO_OK;
out:
    X509_free(ca);
    X509_free(srv);
    EVP_PKEY_free(ca_key); /* the CA key is not kept */
    EVP_PKEY_free(srv_key);
    return r;
}

int duo__read_file(char **out, size_t *out_len, const char *path, size_t max, char *err, size_t cap) {
    *out = NULL;
    if (out_len) *out_len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        return errno == EACCES ? DUO_E_PERMISSION : DUO_E_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        snprintf(err, cap, "%s: not a regular file or larger than %zu bytes", path, max);
        close(fd);
        return DUO_E_IO;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return DUO_E_NOMEM;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t k = read(fd, buf + off, n - off);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            break;
        }
        off += (size_t)k;
    }
    close(fd);
    if (off != n) {
        duo_memzero(buf, n); /* it may be part of a private key */
        free(buf);
        snprintf(err, cap, "cannot read %s", path);
        return DUO_E_IO;
    }
    buf[n] = '\0';
    *out = buf;
    if (out_len) *out_len = n;
    return DUO_OK;
}

int duo__pki_check(const char *cert_pem, const char *key_pem, const char *cert_path, const char *key_path, char *err,
                   size_t cap) {
    BIO *bc = BIO_new_mem_buf(cert_pem, -1), *bk = BIO_new_mem_buf(key_pem, -1);
    X509 *c = bc ? PEM_read_bio_X509(bc, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = bk ? PEM_read_bio_PrivateKey(bk, NULL, NULL, NULL) : NULL;
    int r = DUO_OK;
    if (!c) {
        snprintf(err, cap, "%s is not a PEM certificate", cert_path);
        r = DUO_E_STATE_CORRUPT;
    } else if (!k) {
        snprintf(err, cap, "%s is not a PEM private key (encrypted keys are not supported)", key_path);
        r = DUO_E_STATE_CORRUPT;
    } else if (X509_check_private_key(c, k) != 1) {
        snprintf(err, cap, "%s does not match the certificate in %s", key_path, cert_path);
        r = DUO_E_STATE_CORRUPT;
    } else if (X509_cmp_current_time(X509_get0_notAfter(c)) < 0) {
        snprintf(err, cap, "the certificate in %s has expired; replace it (or re-run init in a new directory)",
                 cert_path);
        r = DUO_E_STATE_CORRUPT;
    }
    ERR_clear_error();
    X509_free(c);
    EVP_PKEY_free(k);
    BIO_free(bc);
    BIO_free(bk);
    return r;
}
