/* duosign-cloud's relying-party commands (docs/RELYING_PARTIES.md):
 *
 *   rp add    --data DIR --name NAME --out-dir OUT   issue a client certificate
 *   rp add    --data DIR --name NAME --cert FILE     register an existing one
 *   rp list   --data DIR
 *   rp remove --data DIR --name NAME
 *
 * The X.509 work is cloud_half/ca/rp_ca.c's, the rows the store's
 * (rpstore.h); here are arguments, files and messages. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "daemon.h"
#include "duosign/mem.h"
#include "rp_ca.h"

#define PROG "duosign-cloud"
#define RP_FILE_MAX 65536

static const char *usage_text =
    "usage: " PROG " rp add    --data DIR --name NAME --out-dir OUT\n"
    "       " PROG " rp add    --data DIR --name NAME --cert FILE\n"
    "       " PROG " rp list   --data DIR\n"
    "       " PROG " rp remove --data DIR --name NAME\n\n"
    "Relying parties call the RelyingParty service (serve --rp-listen) with a TLS client\n"
    "certificate and nothing else. 'rp add --out-dir' issues one from the RP CA this store\n"
    "keeps (made on first use, its key sealed under the KEK) and writes OUT/client.pem,\n"
    "OUT/client.key (0600) and OUT/server-ca.pem (the CA of the daemon's TLS certificate).\n"
    "'rp add --cert FILE' registers a self-signed certificate the RP made itself (the\n"
    "daemon trusts it from its next start or SIGHUP). NAME (1..64 characters of UTF-8, no\n"
    "control characters) is what citizens' devices show as who is asking.\n"
    "A removed RP is refused at once; its name and certificate are never reused.\n";

/* Writes text to dir/name with mode (0600 for a key). */
static int write_file(const char *dir, const char *name, const char *text, mode_t mode) {
    char path[DUO_PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return duo__fail("cannot create %s: %s%s", path, strerror(errno),
                         errno == EEXIST ? " (choose an empty --out-dir)" : "");
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w <= 0) {
            close(fd);
            return duo__fail("cannot write %s: %s", path, strerror(errno));
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) return duo__fail("cannot write %s: %s", path, strerror(errno));
    return DUO_EXIT_OK;
}

static int rp_fail(int r, const char *name) {
    if (r == DUO_E_RP_EXISTS || r == DUO_E_RP_NOT_FOUND) {
        fprintf(stderr, PROG " rp: %s '%s'\n",
                r == DUO_E_RP_EXISTS ? "a relying party with this name or certificate is already registered (or "
                                       "was, and was removed):"
                                     : "no registered relying party named",
                name);
        return duo_err_exit_code(r);
    }
    if (r == DUO_E_RP_NAME) {
        fprintf(stderr, PROG " rp: --name must be 1..64 bytes of UTF-8 without control characters\n");
        return DUO_EXIT_USAGE;
    }
    if (r == DUO_E_UNSUPPORTED)
        return duo__fail("this store's backend has no relying-party tables yet (PostgreSQL: docs/STORE.md)");
    return duo__fail("%s", duo_strerror(r));
}

/* The certificate at path (PEM or DER), which must be self-signed. */
static int read_self_signed(uint8_t *der, size_t cap, size_t *len, const char *path) {
    char *buf = NULL, err[DUO_ERRMSG_MAX] = "";
    size_t n = 0;
    int r = duo__read_file(&buf, &n, path, RP_FILE_MAX, err, sizeof err);
    if (r != DUO_OK) return duo__fail("%s", err[0] ? err : duo_strerror(r));
    BIO *b = BIO_new_mem_buf(buf, (int)n);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (x == NULL) {
        const unsigned char *p = (const unsigned char *)buf;
        x = d2i_X509(NULL, &p, (long)n);
    }
    BIO_free(b);
    free(buf);
    int rc = DUO_EXIT_OK, dl;
    unsigned char *p = der;
    if (x == NULL) {
        fprintf(stderr, PROG " rp add: %s is not an X.509 certificate (PEM or DER)\n", path);
        rc = DUO_EXIT_USAGE;
    } else if (X509_check_issued(x, x) != X509_V_OK || X509_verify(x, X509_get0_pubkey(x)) != 1) {
        fprintf(stderr,
                PROG " rp add: %s is not self-signed; bring a self-signed certificate, or let '" PROG
                     " rp add --out-dir' issue one\n",
                path);
        rc = DUO_EXIT_USAGE;
    } else if ((dl = i2d_X509(x, NULL)) <= 0 || (size_t)dl > cap || i2d_X509(x, &p) != dl) {
        rc = duo__fail("%s: certificate larger than %zu bytes", path, cap);
    } else {
        *len = (size_t)dl;
    }
    X509_free(x);
    return rc;
}

static int rp_add(duo_keystore *ks, const char *data, const char *name, const char *cert_path, const char *out) {
    duo_rp_row *row = calloc(1, sizeof *row);
    char *cert_pem = NULL, *key_pem = NULL, detail[160];
    int rc = DUO_EXIT_FAIL, r = DUO_OK;
    if (row == NULL) return duo__fail("out of memory");
    if (!duo_rp_name_ok(name)) {
        free(row);
        return rp_fail(DUO_E_RP_NAME, name);
    }
    snprintf(row->name, sizeof row->name, "%s", name);
    if (cert_path != NULL) {
        if ((rc = read_self_signed(row->cert, sizeof row->cert, &row->cert_len, cert_path)) != DUO_EXIT_OK) goto out;
        rc = DUO_EXIT_FAIL;
    } else {
        if (mkdir(out, 0700) != 0 && errno != EEXIST) {
            rc = duo__fail("cannot create --out-dir %s: %s", out, strerror(errno));
            goto out;
        }
        if ((r = duo_rp_ca_ensure(ks, (int64_t)time(NULL))) != DUO_OK ||
            (r = duo_rp_ca_issue(ks, name, (int64_t)time(NULL), row->cert, sizeof row->cert, &row->cert_len, &cert_pem,
                                 &key_pem)) != DUO_OK) {
            rc = rp_fail(r, name);
            goto out;
        }
        row->issued = 1;
    }
    uint8_t fp[32];
    char fph[65];
    duo_rp_cert_fingerprint(fp, row->cert, row->cert_len);
    duo__hex(fph, fp, 32);
    snprintf(detail, sizeof detail, "relying party registered, certificate sha256 %s (%s)", fph,
             row->issued ? "issued by the RP CA" : "self-signed, brought with --cert");
    duo_audit_event ev = {.kind = DUO_AUDIT_RP_ADD, .citizen_id = NULL, .detail = detail};
    if ((r = duo_keystore_rp_add(ks, row, &ev)) != DUO_OK) {
        rc = rp_fail(r, name);
        goto out;
    }
    /* Registered first, files second: a failed write leaves a registered RP
     * whose key is lost, which 'rp remove' and a new name fix; the other
     * order could leave a working key for an RP that is not registered. */
    if (out != NULL) {
        char src[DUO_PATH_MAX], *ca = NULL, err[DUO_ERRMSG_MAX];
        size_t n = 0;
        snprintf(src, sizeof src, "%s/" DUO_FILE_CA, data);
        if ((rc = write_file(out, "client.pem", cert_pem, 0644)) != DUO_EXIT_OK ||
            (rc = write_file(out, "client.key", key_pem, 0600)) != DUO_EXIT_OK)
            goto out;
        if (duo__read_file(&ca, &n, src, RP_FILE_MAX, err, sizeof err) == DUO_OK) {
            rc = write_file(out, "server-ca.pem", ca, 0644);
            free(ca);
            if (rc != DUO_EXIT_OK) goto out;
        }
        printf("relying party '%s' registered; its client certificate and key are in %s "
               "(client.pem, client.key, server-ca.pem)\n",
               name, out);
    } else {
        printf("relying party '%s' registered (self-signed certificate; the daemon trusts it from its next start "
               "or SIGHUP)\n",
               name);
    }
    printf("certificate sha256 %s\n", fph);
    rc = DUO_EXIT_OK;
out:
    free(cert_pem);
    if (key_pem != NULL) {
        duo_memzero(key_pem, strlen(key_pem));
        free(key_pem);
    }
    free(row);
    return rc;
}

static int list_cb(void *data, const duo_rp_row *row) {
    (void)data;
    char fph[65], when[32], gone[32] = "";
    duo__hex(fph, row->cert_sha256, 32);
    duo__fmt_time(when, sizeof when, row->created_at);
    if (row->removed_at) duo__fmt_time(gone, sizeof gone, row->removed_at);
    printf("%-24s %s  %-7s  added %s%s%s\n", row->name, fph, row->issued ? "issued" : "brought", when,
           row->removed_at ? "  REMOVED " : "", gone);
    return 0;
}

int duo__cmd_rp(int argc, char **argv) {
    const char *dir = NULL, *name = NULL, *cert = NULL, *out = NULL, *v;
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("%s", usage_text);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "add") && strcmp(sub, "list") && strcmp(sub, "remove")) duo__unknown_arg("rp", sub);
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage_text);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (strcmp(sub, "list") && duo__opt_val(argc, argv, &i, "--name", &v)) {
            name = v;
        } else if (!strcmp(sub, "add") && duo__opt_val(argc, argv, &i, "--cert", &v)) {
            cert = v;
        } else if (!strcmp(sub, "add") && duo__opt_val(argc, argv, &i, "--out-dir", &v)) {
            out = v;
        } else {
            duo__unknown_arg("rp", argv[i]);
        }
    }
    duo__need("rp", "--data DIR", dir);
    if (strcmp(sub, "list")) duo__need("rp", "--name NAME", name);
    if (!strcmp(sub, "add") && (cert == NULL) == (out == NULL)) {
        fprintf(stderr, PROG " rp add: give exactly one of --out-dir OUT (issue a certificate) and --cert FILE\n");
        return DUO_EXIT_USAGE;
    }
    duo_keystore *ks = duo__open_or_die(dir);
    int rc;
    if (!strcmp(sub, "add")) {
        rc = rp_add(ks, dir, name, cert, out);
    } else if (!strcmp(sub, "remove")) {
        duo_audit_event ev = {.kind = DUO_AUDIT_RP_REMOVE, .detail = "relying party removed"};
        int r = duo_keystore_rp_remove(ks, name, &ev);
        rc = r == DUO_OK ? DUO_EXIT_OK : rp_fail(r, name);
        if (r == DUO_OK) printf("relying party '%s' removed: its certificate is refused from now on\n", name);
    } else {
        int r = duo_keystore_rp_list(ks, list_cb, NULL);
        rc = r == DUO_OK ? DUO_EXIT_OK : rp_fail(r, "");
    }
    duo_keystore_free(ks);
    return rc;
}
