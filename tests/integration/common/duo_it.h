/* Helpers shared by the C integration tests that drive a real duosign-cloud
 * process (tests/integration/daemon/, tests/integration/reliability/):
 * shell commands, starting/stopping/killing the daemon on a loopback port,
 * its resident memory, and an OpenSSL check of a signature that shares no
 * code with duosign. Header-only (static functions); include it from one
 * translation unit per test. */
#ifndef DUO_IT_H
#define DUO_IT_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

/* Runs a shell command; its stdout (trailing newlines cut) goes to out.
 * Returns the exit status, -1 if it did not exit normally. */
static int duo_it_run_cmd(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4), unused));
static int duo_it_run_cmd(char *out, size_t cap, const char *fmt, ...) {
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = 0;
    if (out && cap) {
        n = fread(out, 1, cap - 1, p);
        out[n] = '\0';
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
        char buf[512];
        while (fread(buf, 1, sizeof buf, p) > 0) {
        }
    } else {
        char buf[512];
        while (fread(buf, 1, sizeof buf, p) > 0) {
        }
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct {
    pid_t pid;
    int port;
} duo_it_daemon;

/* Starts `BIN serve --data DIR --listen 127.0.0.1:PORT ARGS` (port 0: any
 * free port) and waits for its "listening on 127.0.0.1:PORT" line.
 * Returns 0 with d->pid and d->port set, -1 if it did not come up. */
static __attribute__((unused)) int duo_it_daemon_start(duo_it_daemon *d, const char *bin, const char *dir, int port,
                                                       const char *args) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        char cmd[2048];
        snprintf(cmd, sizeof cmd, "exec '%s' serve --data '%s' --listen 127.0.0.1:%d %s", bin, dir, port,
                 args ? args : "");
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256] = "";
    if (!f || !fgets(line, sizeof line, f)) {
        if (f)
            fclose(f);
        else
            close(fds[0]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    fclose(f);
    const char *c = strstr(line, "127.0.0.1:");
    d->pid = pid;
    d->port = c ? atoi(c + 10) : 0;
    fprintf(stderr, "# daemon pid %d: %s", (int)pid, line);
    if (d->port <= 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        d->pid = 0;
        return -1;
    }
    return 0;
}

/* SIGTERM (graceful drain) and wait. Returns the exit status (128+signal). */
static __attribute__((unused)) int duo_it_daemon_stop(duo_it_daemon *d) {
    if (d->pid <= 0) return -1;
    kill(d->pid, SIGTERM);
    int st = 0;
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR) {
    }
    d->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* SIGKILL (a crash) and reap. */
static __attribute__((unused)) void duo_it_daemon_kill(duo_it_daemon *d) {
    if (d->pid <= 0) return;
    kill(d->pid, SIGKILL);
    while (waitpid(d->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    d->pid = 0;
}

/* VmRSS of a process in KiB from /proc/PID/status, -1 if unknown. */
static __attribute__((unused)) long duo_it_vmrss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = atol(line + 6);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* OpenSSL (no duosign code) verifies the ECDSA signature r||s over digest
 * under the compressed public key pub on the curve named group
 * ("secp256k1", "prime256v1"). Returns 1 if valid. */
static __attribute__((unused)) int duo_it_openssl_verify_on(const char *group, const uint8_t pub[33],
                                                            const uint8_t digest[32], const uint8_t sig[64]) {
    uint8_t der[80], *pder = der;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    int der_len = -1;
    if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
        r = s = NULL;
        der_len = i2d_ECDSA_SIG(es, &pder);
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    if (der_len <= 0 || der_len > (int)sizeof der) return 0;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *fctx = NULL, *vctx = NULL;
    EVP_PKEY *pk = NULL;
    int ok = bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) == 1 &&
             OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 33) == 1 &&
             (params = OSSL_PARAM_BLD_to_param(bld)) != NULL;
    ok = ok && (fctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL && EVP_PKEY_fromdata_init(fctx) == 1 &&
         EVP_PKEY_fromdata(fctx, &pk, EVP_PKEY_PUBLIC_KEY, params) == 1;
    ok = ok && (vctx = EVP_PKEY_CTX_new(pk, NULL)) != NULL && EVP_PKEY_verify_init(vctx) == 1 &&
         EVP_PKEY_verify(vctx, der, (size_t)der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(vctx);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(fctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return ok;
}

/* The same on the key's curve, whichever it is (the device library makes
 * P-256 keys by default, the engine-level clients secp256k1 ones): a
 * signature verifies under at most one of them but for negligible chance. */
static __attribute__((unused)) int duo_it_openssl_verify(const uint8_t pub[33], const uint8_t digest[32],
                                                         const uint8_t sig[64]) {
    return duo_it_openssl_verify_on("prime256v1", pub, digest, sig) ||
           duo_it_openssl_verify_on("secp256k1", pub, digest, sig);
}

#endif
