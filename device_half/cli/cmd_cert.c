/* duosign CLI: the key's certificate: `duosign csr` (a PKCS#10 request
 * signed by both halves), `duosign cert` (print, --in store, --fetch), the
 * certificate an enrolment with a role asks for, and finding the key's own
 * certificate for sign --format cms. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "atomic.h"
#include "cli.h"
#include "duosign/device_x509.h"

/* The key's certificate is public: it is kept beside the state file, not in
 * it (the state's format is the library's), as STATE.cert.pem. */
int cert_path(const opts *o, char *buf, size_t cap) {
    if ((size_t)snprintf(buf, cap, "%s.cert.pem", o->state) >= cap) {
        fprintf(stderr, "%s: the state file name is too long\n", prog);
        return EX_USAGE_;
    }
    return EX_OK_;
}

/* The key's certificate: the one kept in the state (issued in enrolment,
 * fetched, or stored by cert --in), else the file an older duosign kept
 * beside the state. Returns EX_OK_ and *out, or an exit code. */
static int load_file_cert(session *s, const char *path, X509 **out);
int load_own_cert(session *s, const char *path, X509 **out) {
    const uint8_t *der = NULL;
    size_t len = 0;
    if (duo_device_certificate(s->ctx, &der, &len) == DUO_OK) {
        const uint8_t *p = der;
        *out = d2i_X509(NULL, &p, (long)len); /* checked against the key when it was kept */
        return *out != NULL ? EX_OK_ : EX_OTHER;
    }
    return load_file_cert(s, path, out);
}

/* Reads a PEM certificate and checks that its key is the state's key.
 * Returns EX_OK_ and *out (free with X509_free), or an exit code. */
static int load_file_cert(session *s, const char *path, X509 **out) {
    char pem[DUO_DEVICE_PUBKEY_PEM_MAX];
    size_t pem_len = sizeof pem;
    BIO *b = NULL;
    EVP_PKEY *mine = NULL;
    X509 *x = NULL;
    FILE *f = fopen(path, "r");
    int ex = EX_INPUT;

    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "%s: no certificate in the state, nor '%s': %s (duosign cert --fetch, or --in CERT.pem)\n",
                prog, path, strerror(errno));
        return duo_err_exit_code(DUO_E_NO_CERT);
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        fprintf(stderr, "%s: '%s' is not a PEM certificate\n", prog, path);
        goto out;
    }
    if (duo_device_pubkey_pem(s->ctx, pem, &pem_len) != DUO_OK || (b = BIO_new_mem_buf(pem, (int)pem_len)) == NULL ||
        (mine = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) == NULL) {
        ex = EX_OTHER;
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(x), mine) != 1) {
        fprintf(stderr, "%s: the certificate '%s' is for another key than this state's\n", prog, path);
        goto out;
    }
    *out = x;
    x = NULL;
    ex = EX_OK_;
out:
    X509_free(x);
    EVP_PKEY_free(mine);
    BIO_free(b);
    return ex;
}

typedef struct csr_job {
    const char *cn;
    uint8_t *der;
    size_t len;
} csr_job;

/* The request is signed with the CSR purpose: the cloud is shown its info
 * and signs only a request for this key. */
static int build_csr(void *arg, cli_signer *cs) {
    csr_job *j = arg;
    uint8_t q[DUO_DEVICE_PUBKEY_BYTES], *info = NULL;
    size_t info_len = 0;
    duo_csr_subject subj = {.common_name = j->cn};
    const char *curve = duo_device_curve_name(duo_device_curve(cs->s->ctx));
    int r = duo_device_pubkey(cs->s->ctx, q);
    if (r != DUO_OK) return r;
    if ((r = duo_csr_info(&info, &info_len, curve, q, sizeof q, &subj)) != DUO_OK) return r;
    cs->info = info;
    cs->info_len = info_len;
    r = duo_csr_build(&j->der, &j->len, curve, q, sizeof q, &subj, cli_sign_digest, cs);
    cs->info = NULL;
    duo_x509_free(info);
    return r;
}

/* After an enrolment with a role: the key's request, signed by both halves
 * (CSR purpose, the PIN just typed), then IssueCertificate; the
 * certificate goes into the state. Without a CA at the cloud the key stays
 * usable and `cert --fetch` picks one up later. */
int enrol_certificate(session *s, const opts *o, const char *pin, size_t pin_len) {
    csr_job j = {"duosign key", NULL, 0};
    cli_signer cs = {s, o, pin, pin_len, DUO_OK, EX_OK_, NULL, 0};
    int r = build_csr(&j, &cs), ex;
    if (cs.r != DUO_OK) {
        ex = report(s, "signing the certificate request", cs.r);
        goto out;
    }
    if (r != DUO_OK || cs.save_ex != EX_OK_) {
        fprintf(stderr, "%s: the certificate request failed: %s\n", prog, duo_strerror(r));
        ex = r != DUO_OK ? exit_for(r) : cs.save_ex;
        goto out;
    }
    r = duo_device_issue_certificate(s->ctx, j.der, j.len);
    if (r == DUO_E_NO_CA) {
        printf("no certificate: the server has no issuing CA; the key works without one. When the operator has "
               "imported it: duosign cert --fetch --state %s\n",
               o->state);
        ex = EX_OK_;
        goto out;
    }
    if (r != DUO_OK) {
        ex = report(s, "certificate issuance", r);
        goto out;
    }
    if ((ex = save_state(s, o->state)) == EX_OK_)
        printf("certificate issued (%s key) and kept in %s\n", o->role == DUO_DEVICE_ROLE_AUTH ? "auth" : "sign",
               o->state);
out:
    duo_x509_free(j.der);
    return ex;
}

/* duosign csr: a PKCS#10 request (DER) for an external CA or for
 * `duosign-cloud cert issue --csr`; the subject is a placeholder (the CA
 * certifies its own record of the citizen). */
int cmd_csr(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    csr_job j = {o->name != NULL ? o->name : "duosign key", NULL, 0};
    int r, ex;
    if (!require(o->state, "--state FILE") || !require(o->out, "--out REQ.der")) return EX_USAGE_;
    if (strlen(j.cn) == 0 || strlen(j.cn) > 64) {
        usage_err("%s", "--name must be 1 to 64 bytes");
        return EX_USAGE_;
    }
    if ((r = duo_cli_check_writable(o->out)) != 0) {
        fprintf(stderr, "%s: cannot write the request to '%s': %s (nothing was sent)\n", prog, o->out, strerror(-r));
        return EX_INPUT;
    }
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((ex = run_signed(&s, o, build_csr, &j)) != EX_OK_) goto out;
    if ((ex = write_output("request", o->out, j.der, j.len, 0644)) == EX_OK_)
        printf("certificate request (PKCS#10, DER) -> %s\n", o->out);
out:
    duo_x509_free(j.der);
    session_close(&s);
    return ex;
}

/* duosign cert: prints the stored certificate, or with --in stores one. */
int cmd_cert(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char path[4096];
    X509 *x = NULL;
    BIO *b = NULL;
    BUF_MEM *mem = NULL;
    int ex;
    if (!require(o->state, "--state FILE")) return EX_USAGE_;
    if (o->in != NULL && o->fetch) {
        usage_err("%s", "cert takes --in CERT.pem or --fetch, not both");
        return EX_USAGE_;
    }
    if ((ex = cert_path(o, path, sizeof path)) != EX_OK_ || (ex = open_state(&s, o, o->fetch)) != EX_OK_) goto out;
    if (o->fetch) {
        int r = duo_device_issue_certificate(s.ctx, NULL, 0);
        if (r != DUO_OK) {
            ex = report(&s, "fetching the certificate", r);
            goto out;
        }
        if ((ex = save_state(&s, o->state)) == EX_OK_) printf("certificate fetched and kept in %s\n", o->state);
        goto out;
    }
    if ((ex = o->in != NULL ? load_file_cert(&s, o->in, &x) : load_own_cert(&s, path, &x)) != EX_OK_) goto out;
    if (o->in != NULL) {
        uint8_t *der = NULL;
        int len = i2d_X509(x, &der), r;
        r = len > 0 ? duo_device_set_certificate(s.ctx, der, (size_t)len) : DUO_E_NOMEM;
        OPENSSL_free(der);
        if (r != DUO_OK) {
            ex = report(&s, "storing the certificate", r);
            goto out;
        }
        if ((ex = save_state(&s, o->state)) == EX_OK_) printf("certificate stored in %s\n", o->state);
        goto out;
    }
    if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, x) != 1) {
        ex = EX_OTHER;
        goto out;
    }
    BIO_get_mem_ptr(b, &mem);
    fwrite(mem->data, 1, mem->length, stdout);
out:
    BIO_free(b);
    X509_free(x);
    session_close(&s);
    return ex;
}
