/* duosign CLI: reading input files (bounded), writing outputs atomically
 * (atomic.h), and printing hex and times, with the user told which file
 * failed and why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "atomic.h"
#include "cli.h"

void wipe_free(uint8_t *p, size_t n) {
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

int read_input(const char *what, const char *path, uint8_t **out, size_t *len, size_t max) {
    int r = duo_cli_read_file(path, out, len, max);
    if (r != 0) {
        fprintf(stderr, "%s: cannot read %s '%s': %s\n", prog, what, path, strerror(-r));
        return EX_INPUT;
    }
    return EX_OK_;
}

/* Reads a CA file and checks that it holds PEM certificates (OpenSSL), so
 * that a wrong file is one clear line (exit 3), not a connection error. */
int read_ca(const char *path, uint8_t **out, size_t *len) {
    int ex = read_input("CA certificate", path, out, len, MAX_SMALL);
    BIO *bio;
    X509 *x = NULL;
    if (ex != EX_OK_) return ex;
    if ((bio = BIO_new_mem_buf(*out, (int)*len)) != NULL) x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (x == NULL) {
        fprintf(stderr, "%s: CA certificate '%s' is not a PEM certificate (-----BEGIN CERTIFICATE-----)\n", prog, path);
        free(*out);
        *out = NULL;
        *len = 0;
        return EX_INPUT;
    }
    X509_free(x);
    return EX_OK_;
}

int write_output(const char *what, const char *path, const uint8_t *data, size_t len, mode_t mode) {
    int r = duo_cli_write_atomic(path, data, len, mode);
    if (r != 0) {
        fprintf(stderr, "%s: cannot write %s '%s': %s\n", prog, what, path, strerror(-r));
        return EX_OTHER;
    }
    return EX_OK_;
}

void fmt_time(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        snprintf(buf, cap, "%lld", (long long)t);
    }
}

void print_hex(FILE *f, const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) fprintf(f, "%02x", p[i]);
}
