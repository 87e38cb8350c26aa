/* duosign CLI: `duosign sign`: a document's SHA-256 signed by both halves
 * as der, raw, jws or cms; every file it writes is checked before anything
 * is sent, and a signature that cannot reach --out goes to a fallback file
 * (it cannot be taken back). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "atomic.h"
#include "cli.h"
#include "duosign/device_x509.h"

/* Where a signature goes when --out cannot be written after the cloud made
 * it: next to the state file, named after the time. Returns 0 and the path
 * in buf, or -errno. */
static int write_fallback(const char *state, const char *fmt, const uint8_t *data, size_t len, char *buf, size_t cap) {
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    int r;
    if (gmtime_r(&now, &tm) == NULL || strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm) == 0) {
        snprintf(ts, sizeof ts, "%lld", (long long)now);
    }
    if ((size_t)snprintf(buf, cap, "%s.signature-%s-%ld.%s", state, ts, (long)getpid(), fmt) >= cap) {
        return -ENAMETOOLONG;
    }
    r = duo_cli_write_atomic(buf, data, len, 0644);
    return r;
}

typedef struct cms_job {
    const uint8_t *cert;
    size_t cert_len;
    uint8_t digest[32];
    uint8_t *der;
    size_t len;
} cms_job;

static int build_cms(void *arg, cli_signer *cs) {
    cms_job *j = arg;
    return duo_cms_sign_detached(&j->der, &j->len, j->cert, j->cert_len, j->digest, (int64_t)time(NULL),
                                 cli_sign_digest, cs);
}

/* sign --format cms: the stored certificate is checked before anything is
 * sent; the document's SHA-256 goes into the signed attributes. */
static int sign_cms(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char path[4096], fb[4096];
    uint8_t *doc = NULL, *cert = NULL;
    size_t doc_len = 0;
    X509 *x = NULL;
    cms_job j;
    int r, ex, len;
    memset(&j, 0, sizeof j);
    if ((ex = read_input("document", o->in, &doc, &doc_len, MAX_DOC)) != EX_OK_) goto out;
    if ((r = duo_cli_check_writable(o->out)) != 0 || (r = duo_cli_check_writable(o->state)) != 0) {
        fprintf(stderr, "%s: cannot write the signature or the state: %s (nothing was sent)\n", prog, strerror(-r));
        ex = EX_INPUT;
        goto out;
    }
    if ((ex = cert_path(o, path, sizeof path)) != EX_OK_ || (ex = open_state(&s, o, 1)) != EX_OK_ ||
        (ex = load_own_cert(&s, path, &x)) != EX_OK_)
        goto out;
    if ((len = i2d_X509(x, &cert)) <= 0) {
        ex = EX_OTHER;
        goto out;
    }
    j.cert = cert;
    j.cert_len = (size_t)len;
    SHA256(doc, doc_len, j.digest);
    if ((ex = run_signed(&s, o, build_cms, &j)) != EX_OK_ && j.der == NULL) goto out;
    if ((r = duo_cli_write_atomic(o->out, j.der, j.len, 0644)) != 0) {
        fprintf(stderr, "%s: cannot write the signature to '%s': %s\n", prog, o->out, strerror(-r));
        if (write_fallback(o->state, "p7s", j.der, j.len, fb, sizeof fb) == 0)
            fprintf(stderr, "%s: the signature is saved in '%s' instead\n", prog, fb);
        ex = EX_FALLBACK;
        goto out;
    }
    printf("signed %s (SHA-256 ", o->in);
    print_hex(stdout, j.digest, sizeof j.digest);
    printf(") -> %s (cms, detached CAdES-BES)\n", o->out);
out:
    duo_x509_free(j.der);
    OPENSSL_free(cert);
    X509_free(x);
    free(doc);
    session_close(&s);
    return ex;
}

int cmd_sign(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t *doc = NULL, digest[32], sig[64], der[DUO_DEVICE_SIG_DER_MAX];
    size_t doc_len = 0, der_len = sizeof der, pin_len = 0, out_len = 0;
    char pin[DUO_DEVICE_PIN_MAX + 2];
    char *si = NULL, *sig64 = NULL, *jws = NULL;
    const uint8_t *out_data = NULL;
    const char *fmt = o->format ? o->format : "der";
    int r, ex, save_ex;

    if (!require(o->state, "--state FILE") || !require(o->in, "--in DOC") || !require(o->out, "--out SIG")) {
        return EX_USAGE_;
    }
    if (strcmp(fmt, "cms") == 0) return sign_cms(o);
    if ((ex = read_input("document", o->in, &doc, &doc_len, MAX_DOC)) != EX_OK_) goto out;
    /* A signature made by the cloud cannot be taken back, and it rotates
     * the device secret: check every file this command writes before
     * anything is sent (issue 13 item 4). */
    if ((r = duo_cli_check_writable(o->out)) != 0) {
        fprintf(stderr, "%s: cannot write the signature to '%s': %s (nothing was sent; the state is unchanged)\n", prog,
                o->out, strerror(-r));
        ex = EX_INPUT;
        goto out;
    }
    if ((r = duo_cli_check_writable(o->state)) != 0) {
        fprintf(stderr, "%s: cannot write the state file '%s': %s (nothing was sent)\n", prog, o->state, strerror(-r));
        ex = EX_INPUT;
        goto out;
    }
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if (strcmp(fmt, "jws") == 0) {
        if ((si = jws_signing_input(jws_alg_of(duo_device_curve(s.ctx)), doc, doc_len)) == NULL) {
            ex = EX_OTHER;
            goto out;
        }
        SHA256((const uint8_t *)si, strlen(si), digest);
    } else {
        SHA256(doc, doc_len, digest);
    }
    if ((ex = get_pin(o, 0, 0, pin, sizeof pin, &pin_len)) != EX_OK_) goto out;
    r = duo_device_sign(s.ctx, sig, digest, (const uint8_t *)pin, pin_len);
    if (r == DUO_E_RESYNC_POSSIBLE && (r = duo_cli_resync(&s, pin, pin_len)) == DUO_OK) /* then once more */
        r = duo_device_sign(s.ctx, sig, digest, (const uint8_t *)pin, pin_len);
    OPENSSL_cleanse(pin, sizeof pin);
    if (r != DUO_OK) {
        ex = report(&s, "signing", r);
        goto out;
    }
    if (getenv("DUOSIGN_TEST_CRASH_BEFORE_SAVE") != NULL) {
        /* Test hook: die like kill -9 between the new secret and the write. */
        raise(SIGKILL);
    }
    /* The new device secret must be stored before anything else. */
    save_ex = save_state(&s, o->state);
    if (save_ex != EX_OK_) {
        fprintf(stderr, "%s: warning: the state was not updated; the old one stays valid\n", prog);
    }
    /* From here on the signature exists: it must reach a file, or stdout. */
    if (strcmp(fmt, "der") == 0) {
        if (duo_device_sig_to_der(der, &der_len, sig) != DUO_OK) der_len = 0;
        out_data = der;
        out_len = der_len;
    } else if (strcmp(fmt, "raw") == 0) {
        out_data = sig;
        out_len = sizeof sig;
    } else if ((sig64 = b64url_encode(sig, sizeof sig)) != NULL &&
               (jws = malloc(strlen(si) + strlen(sig64) + 2)) != NULL) {
        sprintf(jws, "%s.%s", si, sig64);
        out_data = (const uint8_t *)jws;
        out_len = strlen(jws);
    }
    if (out_len == 0) {
        /* Cannot happen short of malloc failing; keep the signature anyway. */
        fprintf(stderr, "%s: cannot encode the signature as %s; here it is as r || s (hex): ", prog, fmt);
        print_hex(stderr, sig, sizeof sig);
        fprintf(stderr, "\n");
        ex = EX_FALLBACK;
        goto out;
    }
    /* Test hook: the output write fails after the signature (disk full). */
    r = getenv("DUOSIGN_TEST_FAIL_OUTPUT") != NULL ? -ENOSPC : duo_cli_write_atomic(o->out, out_data, out_len, 0644);
    if (r != 0) {
        char fb[4096];
        int fr;
        fprintf(stderr, "%s: cannot write the signature to '%s': %s\n", prog, o->out, strerror(-r));
        fr = write_fallback(o->state, fmt, out_data, out_len, fb, sizeof fb);
        if (fr == 0) {
            fprintf(stderr, "%s: the signature is saved in '%s' instead (%s)%s\n", prog, fb, fmt,
                    save_ex == EX_OK_ ? "; the state file is saved: do not sign again to recover it" : "");
        } else {
            fprintf(stderr, "%s: nor in '%s': %s; the signature (%s, hex) is: ", prog, fb, strerror(-fr), fmt);
            print_hex(stderr, out_data, out_len);
            fprintf(stderr, "\n");
        }
        ex = EX_FALLBACK;
        goto out;
    }
    printf("signed %s (SHA-256 ", o->in);
    print_hex(stdout, digest, sizeof digest);
    printf(") -> %s (%s)\n", o->out, fmt);
    ex = save_ex;
out:
    OPENSSL_cleanse(pin, sizeof pin);
    free(doc);
    free(si);
    free(sig64);
    free(jws);
    session_close(&s);
    return ex;
}
