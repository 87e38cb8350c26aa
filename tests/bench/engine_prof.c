/* duosign-engine-prof: where the P1 signing engine's CPU goes (issue 6).
 *
 * One enrolment (2048 bits unless --bits 3072), then N back-to-back
 * signatures (tests/protocol/b2b.h, r^N precomputed, MACs checked); for
 * each signature the cloud's CPU (both P1 rounds, thread CPU) and, right
 * after it, one CRT decryption of a fresh ciphertext under the same size
 * (the floor), so the ratio is taken sample by sample in one run. Then the
 * EC primitives the engine calls, each timed over many calls:
 *   dlog_verify (the PIN proof and the R2 proof), dlog_prove (R1's proof),
 *   point_mul (k1*R2, constant time), point_mul_base, scalar_inverse,
 *   ecdsa_verify, point_x_mod_q, and one commitment check (a transcript:
 *   the SHA-256 context set-up and finish every proof and commitment pays).
 * Prints medians in microseconds (and one JSON line). Never asserts a timing.
 *
 * usage: duosign-engine-prof [--bits 2048|3072] [--sign-reps N] [--prim-reps N] [--prim-only] */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>

#include "b2b.h"

static double tcpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define DIE_IF(cond, what)                                       \
    do {                                                         \
        if (cond) {                                              \
            fprintf(stderr, "engine_prof: %s failed\n", (what)); \
            exit(2);                                             \
        }                                                        \
    } while (0)

/* Times `body` reps times; median in microseconds. */
#define PRIM(name, body)                                                                    \
    do {                                                                                    \
        for (int i_ = 0; i_ < prim_reps; i_++) {                                            \
            double t_ = tcpu();                                                             \
            body;                                                                           \
            v[i_] = (tcpu() - t_) * 1e6;                                                    \
        }                                                                                   \
        double m_ = duo_test_median(v, (size_t)prim_reps);                                  \
        printf("prim %-22s %8.2f us\n", (name), m_);                                        \
        jl += (size_t)snprintf(json + jl, sizeof json - jl, ",\"%s_us\":%.2f", (name), m_); \
    } while (0)

int main(int argc, char **argv) {
    unsigned bits = 2048;
    int sign_reps = 40, prim_reps = 2000, prim_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--bits") && i + 1 < argc)
            bits = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sign-reps") && i + 1 < argc)
            sign_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prim-reps") && i + 1 < argc)
            prim_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prim-only"))
            prim_only = 1;
        else {
            fprintf(stderr, "usage: %s [--bits 2048|3072] [--sign-reps N] [--prim-reps N] [--prim-only]\n", argv[0]);
            return 2;
        }
    }
    if (sign_reps < 1 || prim_reps < 1) return 2;
    const duo_ec *ec = b2b_ec();
    char json[2048];
    size_t jl = (size_t)snprintf(json, sizeof json, "{\"bench\":\"engine_prof\",\"bits\":%u", bits);
    int nv = sign_reps > prim_reps ? sign_reps : prim_reps;
    double *v = calloc((size_t)nv, sizeof *v), *vd = calloc((size_t)nv, sizeof *vd),
           *vr = calloc((size_t)nv, sizeof *vr);
    DIE_IF(!v || !vd || !vr, "calloc");

    if (!prim_only) {
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        memset(&eo, 0, sizeof eo);
        eo.bits = bits;
        eo.pin = "4321";
        DIE_IF(b2b_enroll(&er, &eo) != DUO_OK, "enrolment");
        duo_paillier_priv *sk = b2b_paillier(bits);
        const duo_paillier_pub *pk = duo_paillier_priv_pub(sk);
        BIGNUM *m = BN_new(), *c = BN_new(), *rn = BN_new(), *out = BN_new();
        DIE_IF(!m || !c || !rn || !out, "BN_new");
        for (int i = -2; i < sign_reps; i++) {
            b2b_sign_run run;
            uint8_t dg[32];
            DIE_IF(duo_rng_bytes(NULL, dg, sizeof dg) != DUO_OK, "rng");
            b2b_sign_opts o = {.pin = "4321", .digest = dg, .check_mac = 1, .precompute_rn = 1};
            DIE_IF(b2b_sign(&run, er.k1, er.k2, er.cloud_device_secret, &o) != DUO_OK, "signature");
            /* the floor, right after: one CRT decryption of a fresh ciphertext */
            DIE_IF(duo_bn_random_below(m, duo_paillier_pub_n(pk), NULL) != DUO_OK ||
                       duo_paillier_rn(pk, rn, NULL) != DUO_OK || duo_paillier_encrypt(pk, c, m, rn) != DUO_OK,
                   "encrypt");
            double t = tcpu();
            DIE_IF(duo_paillier_decrypt(sk, out, c) != DUO_OK, "decrypt");
            double d = tcpu() - t;
            if (i >= 0) {
                v[i] = run.cpu[0] * 1e3;
                vd[i] = d * 1e3;
                vr[i] = run.cpu[0] / d;
            }
            b2b_sign_run_free(&run);
        }
        size_t n = (size_t)sign_reps;
        double mc = duo_test_median(v, n), md = duo_test_median(vd, n), mr = duo_test_median(vr, n);
        printf("b2b sign cloud CPU %.3f ms, CRT decryption %.3f ms, ratio of medians %.3f, median of ratios %.3f "
               "(%d signatures, %u bits)\n",
               mc, md, mc / md, mr, sign_reps, bits);
        jl += (size_t)snprintf(json + jl, sizeof json - jl,
                               ",\"cloud_cpu_ms\":%.4f,\"crt_decrypt_ms\":%.4f,\"ratio\":%.4f,\"ratio_med\":%.4f", mc,
                               md, mc / md, mr);
        BN_free(m);
        BN_free(c);
        BN_free(rn);
        BN_free(out);
        duo_paillier_priv_free(sk);
        b2b_enroll_run_free(&er);
    }

    /* EC primitives on random inputs */
    duo_scalar x, k, e, inv;
    duo_point X, A, P;
    duo_binding bind;
    duo_dlog_proof pf;
    uint8_t dg[32], sig[64];
    memset(&bind, 7, sizeof bind);
    bind.role = DUO_ROLE_DEVICE;
    DIE_IF(duo_scalar_random(ec, &x, NULL) != DUO_OK || duo_point_mul_base(ec, &X, &x) != DUO_OK, "key");
    DIE_IF(duo_scalar_random(ec, &k, NULL) != DUO_OK || duo_point_mul_base(ec, &P, &k) != DUO_OK, "point");
    DIE_IF(duo_dlog_prove(ec, &pf, &x, &X, &bind, "pin", NULL) != DUO_OK, "prove");
    int bad = 0;
    PRIM("dlog_verify", bad |= duo_dlog_verify(ec, &pf, &X, &bind, "pin") != DUO_OK);
    PRIM("dlog_prove", bad |= duo_dlog_prove(ec, &pf, &x, &X, &bind, "R1", NULL) != DUO_OK);
    PRIM("point_mul", bad |= duo_point_mul(ec, &A, &P, &k) != DUO_OK);
    PRIM("point_mul_base", bad |= duo_point_mul_base(ec, &A, &k) != DUO_OK);
    PRIM("scalar_inverse", bad |= duo_scalar_inverse(ec, &inv, &k) != DUO_OK);
    PRIM("point_x_mod_q", bad |= duo_point_x_mod_q(ec, &e, &P) != DUO_OK);
    /* a commitment check as in SignFinish (R2 under the pre-sid): one transcript */
    {
        uint8_t rnd[DUO_COMMIT_RAND_BYTES], cm[32], pt[33];
        memset(rnd, 3, sizeof rnd);
        memset(cm, 5, sizeof cm);
        duo_point_serialize(ec, pt, &P);
        PRIM("commit_check", {
            duo_transcript t;
            if (duo_commit_begin(&t, "R2", &bind) != DUO_OK) bad = 1;
            duo_transcript_bytes(&t, "R2", pt, sizeof pt);
            if (duo_commit_check(&t, rnd, cm) == DUO_OK) bad = 1; /* a mismatch: only the time matters */
        });
    }
    /* an ECDSA signature under X: s = k^-1 (m + r x) */
    {
        duo_scalar r, mm, t1, t2;
        DIE_IF(duo_rng_bytes(NULL, dg, 32) != DUO_OK || duo_scalar_reduce32(ec, &mm, dg) != DUO_OK ||
                   duo_point_x_mod_q(ec, &r, &P) != DUO_OK || duo_scalar_mul(ec, &t1, &r, &x) != DUO_OK ||
                   duo_scalar_add(ec, &t2, &t1, &mm) != DUO_OK || duo_scalar_inverse(ec, &inv, &k) != DUO_OK ||
                   duo_scalar_mul(ec, &t1, &inv, &t2) != DUO_OK,
               "ecdsa");
        memcpy(sig, r.b, 32);
        memcpy(sig + 32, t1.b, 32);
        DIE_IF(duo_ecdsa_normalize(ec, sig) != DUO_OK, "normalize");
        PRIM("ecdsa_verify", bad |= duo_ecdsa_verify(ec, sig, dg, &X) != DUO_OK);
    }
    DIE_IF(bad, "a primitive");
    snprintf(json + jl, sizeof json - jl, "}");
    printf("%s\n", json);
    free(v);
    free(vd);
    free(vr);
    b2b_env_free();
    return 0;
}
