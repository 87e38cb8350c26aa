/* duosign-cloud's certificate commands (docs/CERTIFICATES.md):
 *
 *   init ... [--no-ca] [--ca-name NAME] [--ca-days N] [--cert-days N]
 *            [--country CC] [--crl-url URL]     (the issuing CA, at init)
 *   ca export --data DIR --out FILE              the CA certificate (PEM)
 *   ca show   --data DIR                         the CA and its profile
 *   cert issue  --data DIR --key-id ID --role auth|sign --csr FILE --out FILE
 *   cert import --data DIR --key-id ID [--role auth|sign] --in FILE
 *   cert list   --data DIR [--key-id ID]
 *   crl --data DIR --out FILE [--next-update-hours N]
 *
 * The X.509 work is cloud_half/ca/'s; here are arguments, files and
 * messages. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ca.h"
#include "daemon.h"

#define PROG "duosign-cloud"

#define PKI_FILE_MAX 65536

/* ------------------------------------------------------------ helpers */

static uint32_t parse_count(const char *opt, const char *v, uint32_t max) {
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end || n < 1 || n > (long long)max) {
        fprintf(stderr, PROG ": %s must be a whole number 1..%u\n", opt, max);
        exit(DUO_EXIT_USAGE);
    }
    return (uint32_t)n;
}

int duo__ca_init_opt(int argc, char **argv, int *i, duo_ca_settings *s, int *no_ca) {
    const char *v;
    if (strcmp(argv[*i], "--no-ca") == 0) {
        *no_ca = 1;
    } else if (duo__opt_val(argc, argv, i, "--ca-name", &v)) {
        s->name = v;
    } else if (duo__opt_val(argc, argv, i, "--ca-days", &v)) {
        s->ca_days = parse_count("--ca-days", v, 36500);
    } else if (duo__opt_val(argc, argv, i, "--cert-days", &v)) {
        s->cert_days = parse_count("--cert-days", v, 36500);
    } else if (duo__opt_val(argc, argv, i, "--country", &v)) {
        s->country = v;
    } else if (duo__opt_val(argc, argv, i, "--crl-url", &v)) {
        s->crl_url = v;
    } else {
        return 0;
    }
    return 1;
}

int duo__ca_init(duo_keystore *ks, const duo_ca_settings *s, int no_ca) {
    if (no_ca) {
        printf("  issuing CA          none (--no-ca): import certificates with '" PROG " cert import'\n");
        return DUO_EXIT_OK;
    }
    int r = duo_ca_create(ks, s, (int64_t)time(NULL));
    if (r == DUO_E_INVALID_ARG)
        return duo__fail("the issuing CA's settings are invalid: --ca-name 1..64 bytes, --ca-days and --cert-days "
                         "1..36500, --country two capital letters (UA), --crl-url an http://, https:// or ldap:// "
                         "URL without spaces or commas, at most %d bytes",
                         DUO_CRL_URL_MAX);
    if (r != DUO_OK) return duo__fail("cannot create the issuing CA: %s", duo_strerror(r));
    printf("  issuing CA          P-256, its key sealed under the KEK in the store (export: " PROG " ca export)\n");
    return DUO_EXIT_OK;
}

/* Loads the CA or says why not; NULL on failure. */
static duo_ca *load_ca(duo_keystore *ks) {
    duo_ca *ca = NULL;
    int r = duo_ca_load(&ca, ks);
    if (r == DUO_E_NO_CA)
        duo__fail("this data directory has no issuing CA (it was initialised with --no-ca); certificates come "
                  "from an external CA: '" PROG " cert import'");
    else if (r == DUO_E_CA_MISMATCH)
        duo__fail("the stored issuing CA's private key is not its certificate's key; the store was tampered "
                  "with or damaged");
    else if (r != DUO_OK)
        duo__fail("cannot load the issuing CA: %s", duo_strerror(r));
    return r == DUO_OK ? ca : NULL;
}

/* Writes DER as PEM under label to path (0644: public). */
static int write_pem(const char *path, const char *label, const uint8_t *der, size_t len) {
    FILE *f = fopen(path, "w");
    if (f == NULL) return duo__fail("cannot write %s: %s", path, strerror(errno));
    int ok = PEM_write(f, label, "", der, (long)len) > 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok) return duo__fail("cannot write %s", path);
    return DUO_EXIT_OK;
}

/* Reads a PEM (BEGIN label) or DER file into a malloc'ed DER buffer. */
static int read_der(uint8_t **der, size_t *len, const char *path, const char *label) {
    char *buf = NULL, err[DUO_ERRMSG_MAX] = "";
    size_t n = 0;
    int r = duo__read_file(&buf, &n, path, PKI_FILE_MAX, err, sizeof err);
    if (r != DUO_OK) return duo__fail("%s", err[0] ? err : duo_strerror(r));
    if (strstr(buf, "-----BEGIN ") != NULL) {
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        char *name = NULL, *hdr = NULL;
        unsigned char *data = NULL;
        long dl = 0;
        int ok = b != NULL && PEM_read_bio(b, &name, &hdr, &data, &dl) == 1 && strcmp(name, label) == 0;
        BIO_free(b);
        OPENSSL_free(name);
        OPENSSL_free(hdr);
        free(buf);
        if (!ok) {
            OPENSSL_free(data);
            return duo__fail("%s: not a PEM '%s'", path, label);
        }
        *der = malloc((size_t)dl);
        if (*der == NULL) {
            OPENSSL_free(data);
            return duo__fail("out of memory");
        }
        memcpy(*der, data, (size_t)dl);
        OPENSSL_free(data);
        *len = (size_t)dl;
        return DUO_EXIT_OK;
    }
    *der = (uint8_t *)buf;
    *len = n;
    return DUO_EXIT_OK;
}

static int parse_kid(uint8_t id[DUO_KEY_ID_BYTES], const char *cmd, const char *s) {
    if (duo__unhex(id, DUO_KEY_ID_BYTES, s) == DUO_OK) return 1;
    fprintf(stderr, PROG " %s: '%s' is not a key id (32 hex digits; see '" PROG " key list')\n", cmd, s);
    return 0;
}

static int parse_role(const char *cmd, const char *s) {
    int role = duo_cert_role_from_name(s);
    if (role == 0) fprintf(stderr, PROG " %s: --role must be auth or sign, not '%s'\n", cmd, s);
    return role;
}

/* ----------------------------------------------------------------- ca */

static void print_ca(const duo_ca *ca) {
    size_t len;
    const uint8_t *der = duo_ca_cert_der(ca, &len), *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    const duo_ca_row *pr = duo_ca_profile(ca);
    char subj[256] = "?";
    if (x != NULL) X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
    printf("issuing CA:        %s\n", subj);
    if (x != NULL) {
        BIO *out = BIO_new_fp(stdout, BIO_NOCLOSE);
        BIO_printf(out, "valid:             ");
        ASN1_TIME_print(out, X509_get0_notBefore(x));
        BIO_printf(out, " .. ");
        ASN1_TIME_print(out, X509_get0_notAfter(x));
        BIO_printf(out, "\n");
        BIO_free(out);
    }
    printf("certificate days:  %u\n", pr->cert_days);
    printf("serialNumber:      PNO%s-<citizen id>\n", pr->country);
    printf("CRL URL:           %s\n", pr->crl_url);
    printf("CRLs signed:       %llu\n", (unsigned long long)pr->crl_number);
    X509_free(x);
}

int duo__cmd_ca(int argc, char **argv) {
    const char *usage = "usage: " PROG " ca export --data DIR --out FILE   (the issuing CA certificate, PEM)\n"
                        "       " PROG " ca show   --data DIR              (the CA and its issuing profile)\n";
    const char *dir = NULL, *out = NULL, *v;
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("%s", usage);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "export") && strcmp(sub, "show")) duo__unknown_arg("ca", sub);
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (!strcmp(sub, "export") && duo__opt_val(argc, argv, &i, "--out", &v)) {
            out = v;
        } else {
            duo__unknown_arg("ca", argv[i]);
        }
    }
    duo__need("ca", "--data DIR", dir);
    if (!strcmp(sub, "export")) duo__need("ca export", "--out FILE", out);
    duo_keystore *ks = duo__open_or_die(dir);
    duo_ca *ca = load_ca(ks);
    int rc = DUO_EXIT_FAIL;
    if (ca != NULL && !strcmp(sub, "show")) {
        print_ca(ca);
        rc = DUO_EXIT_OK;
    } else if (ca != NULL) {
        size_t len;
        const uint8_t *der = duo_ca_cert_der(ca, &len);
        if ((rc = write_pem(out, "CERTIFICATE", der, len)) == DUO_EXIT_OK)
            printf("issuing CA certificate written to %s\n", out);
    }
    duo_ca_free(ca);
    duo_keystore_free(ks);
    return rc;
}

/* --------------------------------------------------------------- cert */

static int issue_fail(int r, const char *kid) {
    switch (r) {
        case DUO_E_CSR_MALFORMED:
            return duo__fail("the request is not a PKCS#10 certificate request (DER or PEM)");
        case DUO_E_CSR_BAD_SIGNATURE:
            return duo__fail("the request's signature does not verify under its own key (no proof of possession)");
        case DUO_E_CSR_KEY_MISMATCH:
            return duo__fail("the request's key is not the stored public key of %s", kid);
        case DUO_E_KEY_NOT_ACTIVE:
            return duo__fail("key %s is not active: no certificate for it", kid);
        case DUO_E_NOT_FOUND:
            return duo__fail("no key %s (see '" PROG " key list')", kid);
        case DUO_E_CA_EXPIRED:
            return duo__fail("the issuing CA certificate has expired (or is not yet valid): nothing issued");
        case DUO_E_ROLE_PURPOSE:
            return duo__fail(
                "key %s was enrolled for the other role: --role must be its role (see '" PROG " key list')", kid);
        case DUO_E_INVALID_ARG:
            return duo__fail("the key's citizen id or name cannot go into a certificate subject "
                             "(serialNumber takes A-Z a-z 0-9 space ' ( ) + , - . / : = ?)");
        default:
            return duo__fail("cannot issue the certificate: %s", duo_strerror(r));
    }
}

static int cert_issue(duo_keystore *ks, const char *kid_s, int role, const char *csr_path, const char *out) {
    uint8_t kid[DUO_KEY_ID_BYTES], *csr = NULL, cert[DUO_CERT_DER_MAX];
    size_t csr_len = 0, cert_len = 0;
    if (!parse_kid(kid, "cert issue", kid_s)) return DUO_EXIT_USAGE;
    if (read_der(&csr, &csr_len, csr_path, "CERTIFICATE REQUEST") != DUO_EXIT_OK) return DUO_EXIT_FAIL;
    duo_ca *ca = load_ca(ks);
    int rc = DUO_EXIT_FAIL;
    if (ca != NULL) {
        int r = duo_ca_issue_for_key(ca, ks, cert, sizeof cert, &cert_len, NULL, kid, role, csr, csr_len,
                                     (int64_t)time(NULL));
        if (r != DUO_OK)
            rc = issue_fail(r, kid_s);
        else if ((rc = write_pem(out, "CERTIFICATE", cert, cert_len)) == DUO_EXIT_OK)
            printf("%s certificate for key %s written to %s\n", duo_cert_role_name(role), kid_s, out);
    }
    duo_ca_free(ca);
    free(csr);
    return rc;
}

static int cert_import(duo_keystore *ks, const char *kid_s, int role, const char *in) {
    uint8_t kid[DUO_KEY_ID_BYTES], *der = NULL;
    size_t len = 0;
    if (!parse_kid(kid, "cert import", kid_s)) return DUO_EXIT_USAGE;
    if (read_der(&der, &len, in, "CERTIFICATE") != DUO_EXIT_OK) return DUO_EXIT_FAIL;
    int r = duo_ca_import_cert(ks, kid, role, der, len);
    free(der);
    switch (r) {
        case DUO_OK:
            printf("certificate imported for key %s\n", kid_s);
            return DUO_EXIT_OK;
        case DUO_E_INVALID_ARG:
            return duo__fail("the certificate's keyUsage does not say auth (digitalSignature) or sign "
                             "(nonRepudiation): give --role");
        case DUO_E_DECODE:
            return duo__fail("%s is not an X.509 certificate (DER or PEM)", in);
        case DUO_E_CERT_KEY_MISMATCH:
            return duo__fail("the certificate's public key is not the stored public key of %s: not imported", kid_s);
        case DUO_E_EXISTS:
            return duo__fail("a certificate with this serial number is already stored");
        default:
            return issue_fail(r, kid_s);
    }
}

static int list_cb(void *data, const duo_cert_row *c) {
    char kid[2 * DUO_KEY_ID_BYTES + 1], serial[2 * DUO_CERT_SERIAL_MAX + 1], until[64];
    (void)data;
    duo__hex(kid, c->key_id, DUO_KEY_ID_BYTES);
    duo__hex(serial, c->serial, c->serial_len);
    duo__fmt_time(until, sizeof until, c->not_after);
    printf("%s  %s  %-4s  %-8s  %s", kid, serial, duo_cert_role_name(c->role),
           c->origin == DUO_CERT_ISSUED ? "issued" : "imported", c->revoked ? "revoked" : "good");
    if (c->revoked) printf(" (reason %d)", c->reason);
    printf("  until %s\n", until);
    return 0;
}

int duo__cmd_cert(int argc, char **argv) {
    const char *usage =
        "usage: " PROG " cert issue  --data DIR --key-id ID --role auth|sign --csr FILE --out FILE\n"
        "       " PROG " cert import --data DIR --key-id ID [--role auth|sign] --in FILE\n"
        "       " PROG " cert list   --data DIR [--key-id ID]\n\n"
        "issue: the issuing CA checks the PKCS#10 request (PEM or DER) against the key's stored public\n"
        "key and writes the certificate (PEM). import: stores a certificate an external CA issued\n"
        "(PEM or DER) after checking its public key is the key's; its role comes from its keyUsage\n"
        "(nonRepudiation: sign, digitalSignature: auth) unless --role says.\n";
    const char *dir = NULL, *kid = NULL, *role_s = NULL, *csr = NULL, *out = NULL, *in = NULL, *v;
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("%s", usage);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "issue") && strcmp(sub, "import") && strcmp(sub, "list")) duo__unknown_arg("cert", sub);
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--key-id", &v)) {
            kid = v;
        } else if (strcmp(sub, "list") && duo__opt_val(argc, argv, &i, "--role", &v)) {
            role_s = v;
        } else if (!strcmp(sub, "issue") && duo__opt_val(argc, argv, &i, "--csr", &v)) {
            csr = v;
        } else if (!strcmp(sub, "issue") && duo__opt_val(argc, argv, &i, "--out", &v)) {
            out = v;
        } else if (!strcmp(sub, "import") && duo__opt_val(argc, argv, &i, "--in", &v)) {
            in = v;
        } else {
            duo__unknown_arg("cert", argv[i]);
        }
    }
    duo__need("cert", "--data DIR", dir);
    int role = 0;
    if (strcmp(sub, "list")) {
        duo__need("cert", "--key-id ID", kid);
        if (!strcmp(sub, "issue")) duo__need("cert issue", "--role auth|sign", role_s);
        if (role_s != NULL && (role = parse_role("cert", role_s)) == 0) return DUO_EXIT_USAGE;
        if (!strcmp(sub, "issue")) {
            duo__need("cert issue", "--csr FILE", csr);
            duo__need("cert issue", "--out FILE", out);
        } else {
            duo__need("cert import", "--in FILE", in);
        }
    }
    uint8_t id[DUO_KEY_ID_BYTES];
    if (!strcmp(sub, "list") && kid != NULL && !parse_kid(id, "cert list", kid)) return DUO_EXIT_USAGE;
    duo_keystore *ks = duo__open_or_die(dir);
    int rc;
    if (!strcmp(sub, "issue")) {
        rc = cert_issue(ks, kid, role, csr, out);
    } else if (!strcmp(sub, "import")) {
        rc = cert_import(ks, kid, role, in);
    } else {
        int r = duo_keystore_cert_list(ks, kid != NULL ? id : NULL, list_cb, NULL);
        rc = r == DUO_OK ? DUO_EXIT_OK : duo__fail("cannot list certificates: %s", duo_strerror(r));
    }
    duo_keystore_free(ks);
    return rc;
}

/* ---------------------------------------------------------------- crl */

int duo__cmd_crl(int argc, char **argv) {
    const char *usage = "usage: " PROG " crl --data DIR --out FILE [--next-update-hours N]\n\n"
                        "Writes a CRL (PEM) signed by the issuing CA: every revoked certificate it issued\n"
                        "that has not expired, with its reason. nextUpdate: now + N hours (default 24,\n"
                        "1..8760). Each CRL takes the next crlNumber.\n";
    const char *dir = NULL, *out = NULL, *v;
    uint32_t hours = 24;
    for (int i = 1; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--out", &v)) {
            out = v;
        } else if (duo__opt_val(argc, argv, &i, "--next-update-hours", &v)) {
            hours = parse_count("--next-update-hours", v, 8760);
        } else {
            duo__unknown_arg("crl", argv[i]);
        }
    }
    duo__need("crl", "--data DIR", dir);
    duo__need("crl", "--out FILE", out);
    duo_keystore *ks = duo__open_or_die(dir);
    duo_ca *ca = load_ca(ks);
    int rc = DUO_EXIT_FAIL;
    if (ca != NULL) {
        uint8_t *der = malloc(1 << 20);
        size_t len = 0;
        int r = der != NULL ? duo_ca_crl(ca, ks, der, 1 << 20, &len, hours, (int64_t)time(NULL)) : DUO_E_NOMEM;
        if (r == DUO_E_CA_EXPIRED)
            rc = duo__fail("the issuing CA certificate has expired: it cannot sign a CRL");
        else if (r != DUO_OK)
            rc = duo__fail("cannot sign the CRL: %s", duo_strerror(r));
        else if ((rc = write_pem(out, "X509 CRL", der, len)) == DUO_EXIT_OK)
            printf("CRL written to %s\n", out);
        free(der);
    }
    duo_ca_free(ca);
    duo_keystore_free(ks);
    return rc;
}

/* ------------------------------------------------- revocation follows */

void duo__certs_follow_key(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int reason) {
    int r = duo_ca_revoke_key_certs(ks, key_id, reason);
    if (r != DUO_OK) {
        char kid[2 * DUO_KEY_ID_BYTES + 1];
        duo__hex(kid, key_id, DUO_KEY_ID_BYTES);
        fprintf(stderr, PROG ": key %s: its certificates could not be marked revoked (%s); the next CRL revokes them\n",
                kid, duo_strerror(r));
    }
}
