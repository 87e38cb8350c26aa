/* Back-to-back driver for the P1 (cloud) and P2 (device) engines, header-only
 * (every tests/protocol/test_*.c is its own binary).
 *
 * An enrolment or signing run is a list of steps; each step takes the message
 * one side produced, optionally lets a hook tamper with it (or, in wire mode,
 * serialises it with duo_wire_build_* and parses it back), and hands it to the
 * other side. The run stops at the first error and reports the step at which
 * it happened, so a test can say "flipping X in message k gives error E when
 * message j is processed".
 *
 * The driver also plays the cloud's caller: with check_mac set it verifies
 * the sign requests' MACs against the cloud's copy of the device secret
 * (the engine leaves that to policy code). */
#ifndef DUO_TEST_B2B_H
#define DUO_TEST_B2B_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>

#include "det_rng.h"
#include "duosign/commit.h"
#include "duosign/dlog_proof.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"
#include "duosign/zk_paillier.h"
#include "p1.h"
#include "p2.h"
#include "test_harness.h"
#include "wire.h"

/* Enrolment steps: the message produced, delivered to the other side. */
enum {
    B2B_E_START_REQ = 0, /* P2 -> P1 */
    B2B_E_START_RESP,    /* P1 -> P2 */
    B2B_E_SHARE_REQ,     /* P2 -> P1 */
    B2B_E_SHARE_RESP,    /* P1 -> P2 */
    B2B_E_PDL_REQ,       /* P2 -> P1 */
    B2B_E_PDL_RESP,      /* P1 -> P2 */
    B2B_E_OPEN_REQ,      /* P2 -> P1 */
    B2B_E_OPEN_RESP,     /* P1 -> P2 */
    B2B_E_CONFIRM_REQ,   /* P2 -> P1 */
    B2B_E_TAKE,          /* both take their keys */
    B2B_E_STEPS
};
/* Signing steps. */
enum { B2B_S_START_REQ = 0, B2B_S_START_RESP, B2B_S_FINISH_REQ, B2B_S_FINISH_RESP, B2B_S_STEPS };

/* A hook sees the message produced at `step` before delivery and may change it. */
typedef void (*b2b_hook)(void *ctx, int step, void *msg);

static inline double b2b_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline double b2b_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
static inline int b2b_quick(void) {
    const char *q = getenv("DUO_TEST_QUICK");
    return q != NULL && q[0] != '\0' && q[0] != '0';
}

/* ---- shared fixtures: one curve context and one set of primes per size ---- */
typedef struct b2b_env {
    duo_ec *ec;
    BIGNUM *p[2], *q[2]; /* [0]: 2048, [1]: 3072 */
} b2b_env;

static b2b_env b2b_g;

/* The curve every protocol test runs on: DUO_TEST_CURVE (p256, secp256k1;
 * tests/CMakeLists.txt registers each protocol test once per curve),
 * secp256k1 when unset. */
static inline duo_curve b2b_curve(void) {
    const char *name = getenv("DUO_TEST_CURVE");
    duo_curve c = DUO_CURVE_SECP256K1;
    if (name != NULL && name[0] != '\0' && duo_curve_parse(name, &c) != DUO_OK) {
        fprintf(stderr, "DUO_TEST_CURVE=%s: unknown curve\n", name);
        exit(2);
    }
    return c;
}

static inline const duo_ec *b2b_ec(void) {
    if (b2b_g.ec == NULL) {
        if (duo_ec_new(&b2b_g.ec, b2b_curve(), NULL) != DUO_OK) {
            fprintf(stderr, "duo_ec_new failed\n");
            exit(2);
        }
        fprintf(stderr, "# curve %s\n", duo_curve_name(duo_ec_curve(b2b_g.ec)));
    }
    return b2b_g.ec;
}

/* A fresh Paillier private key of `bits`, built from primes generated once
 * per test binary (keygen is the slow part; the engines take ownership). */
static inline duo_paillier_priv *b2b_paillier(unsigned bits) {
    int i = bits == 3072 ? 1 : 0;
    duo_paillier_priv *sk = NULL;
    if (b2b_g.p[i] == NULL) {
        double t0 = b2b_now();
        if (duo_paillier_keygen(&sk, bits) != DUO_OK) {
            fprintf(stderr, "paillier keygen failed\n");
            exit(2);
        }
        b2b_g.p[i] = BN_dup(duo_paillier_priv_p(sk));
        b2b_g.q[i] = BN_dup(duo_paillier_priv_q(sk));
        duo_paillier_priv_free(sk);
        sk = NULL;
        fprintf(stderr, "# paillier keygen %u bits: %.2f s (once per binary)\n", bits, b2b_now() - t0);
    }
    if (duo_paillier_priv_from_primes(&sk, b2b_g.p[i], b2b_g.q[i], bits) != DUO_OK) {
        fprintf(stderr, "paillier from primes failed\n");
        exit(2);
    }
    return sk;
}

static inline void b2b_env_free(void) {
    int i;
    for (i = 0; i < 2; i++) {
        BN_clear_free(b2b_g.p[i]);
        BN_clear_free(b2b_g.q[i]);
    }
    duo_ec_free(b2b_g.ec);
    memset(&b2b_g, 0, sizeof b2b_g);
}

/* ---- wire round trips (build then parse; the parsed copy replaces msg) ---- */
#define B2B_WIRE_RT(M, msgp, freefn)                                      \
    do {                                                                  \
        uint8_t *b2b_bytes_ = NULL;                                       \
        size_t b2b_len_ = 0;                                              \
        duo_##M b2b_tmp_;                                                 \
        int b2b_r_ = duo_wire_build_##M(&b2b_bytes_, &b2b_len_, (msgp));  \
        if (b2b_r_ == DUO_OK) {                                           \
            memset(&b2b_tmp_, 0, sizeof b2b_tmp_);                        \
            b2b_r_ = duo_wire_parse_##M(&b2b_tmp_, b2b_bytes_, b2b_len_); \
            free(b2b_bytes_);                                             \
        }                                                                 \
        if (b2b_r_ != DUO_OK) {                                           \
            err = b2b_r_;                                                 \
            goto out;                                                     \
        }                                                                 \
        freefn;                                                           \
        *(msgp) = b2b_tmp_;                                               \
    } while (0)
#define B2B_NOFREE(x) ((void)(x))

/* ---- enrolment ---- */
typedef struct b2b_enroll_opts {
    unsigned bits;    /* both sides */
    unsigned p1_bits; /* cloud's configured size if different (0: bits) */
    const char *pin;
    int wire; /* serialise every message */
    b2b_hook hook;
    void *hook_ctx;
    const duo_rng *rng1, *rng2; /* NULL: OpenSSL */
    int stop_after;             /* run steps [0, stop_after) only; 0: all */
} b2b_enroll_opts;

typedef struct b2b_enroll_run {
    duo_p1_enroll *p1;
    duo_p2_enroll *p2;
    duo_enroll_start_req m0;
    duo_enroll_start_resp m1;
    duo_enroll_key_share_req m2;
    duo_enroll_key_share_resp m3;
    duo_enroll_pdl_challenge_req m4;
    duo_enroll_pdl_challenge_resp m5;
    duo_enroll_pdl_open_req m6;
    duo_enroll_pdl_open_resp m7;
    duo_enroll_confirm_req m8;
    duo_p1_key *k1;
    duo_p2_key *k2;
    uint8_t cloud_device_secret[32];
    int fail_step; /* step whose delivery failed, -1 if none */
    double cpu[2]; /* CPU seconds spent in P1, P2 */
} b2b_enroll_run;

static inline void b2b_enroll_run_free(b2b_enroll_run *r) {
    duo_p1_enroll_free(r->p1);
    duo_p2_enroll_free(r->p2);
    duo_wire_free_enroll_key_share_resp(&r->m3);
    duo_wire_free_enroll_pdl_challenge_req(&r->m4);
    duo_p1_key_free(r->k1);
    duo_p2_key_free(r->k2);
    memset(r, 0, sizeof *r);
}

#define B2B_TIMED(side, call) (t0_ = b2b_cpu(), rc_ = (call), run->cpu[side] += b2b_cpu() - t0_, rc_)

/* Runs an enrolment; returns DUO_OK or the first error (run->fail_step says
 * where). The sessions stay in run (free with b2b_enroll_run_free). */
static inline int b2b_enroll(b2b_enroll_run *run, const b2b_enroll_opts *o) {
    int err = DUO_OK, rc_;
    double t0_;
    duo_p1_enroll_params pp;
    duo_p2_enroll_params dp;
    int step = 0;
    static const uint8_t token[] = "test-token";
    int last = o->stop_after > 0 ? o->stop_after : B2B_E_STEPS;

    memset(run, 0, sizeof *run);
    run->fail_step = -1;
    memset(&pp, 0, sizeof pp);
    pp.ec = b2b_ec();
    pp.rng = o->rng1;
    pp.paillier_bits = o->p1_bits ? o->p1_bits : o->bits;
    pp.paillier = b2b_paillier(pp.paillier_bits);
    memset(&dp, 0, sizeof dp);
    dp.ec = b2b_ec();
    dp.rng = o->rng2;
    dp.paillier_bits = o->bits;
    dp.token = token;
    dp.token_len = sizeof token - 1;
    dp.pin = (const uint8_t *)o->pin;
    dp.pin_len = strlen(o->pin);
    if ((err = duo_p1_enroll_new(&run->p1, &pp)) != DUO_OK || (err = duo_p2_enroll_new(&run->p2, &dp)) != DUO_OK) {
        goto out;
    }
#define B2B_DELIVER(stp, msg, M, freefn, side, call) \
    step = (stp);                                    \
    if (step >= last) goto out;                      \
    if (o->hook) o->hook(o->hook_ctx, step, (msg));  \
    if (o->wire) B2B_WIRE_RT(M, (msg), freefn);      \
    if ((err = B2B_TIMED(side, call)) != DUO_OK) goto out;

    if ((err = B2B_TIMED(1, duo_p2_enroll_start(run->p2, &run->m0))) != DUO_OK) goto out;
    B2B_DELIVER(B2B_E_START_REQ, &run->m0, enroll_start_req, B2B_NOFREE(0), 0,
                duo_p1_enroll_start(run->p1, &run->m0, &run->m1))
    B2B_DELIVER(B2B_E_START_RESP, &run->m1, enroll_start_resp, B2B_NOFREE(0), 1,
                duo_p2_enroll_on_start(run->p2, &run->m1, &run->m2))
    B2B_DELIVER(B2B_E_SHARE_REQ, &run->m2, enroll_key_share_req, B2B_NOFREE(0), 0,
                duo_p1_enroll_key_share(run->p1, &run->m2, &run->m3))
    B2B_DELIVER(B2B_E_SHARE_RESP, &run->m3, enroll_key_share_resp, duo_wire_free_enroll_key_share_resp(&run->m3), 1,
                duo_p2_enroll_on_key_share(run->p2, &run->m3, &run->m4))
    B2B_DELIVER(B2B_E_PDL_REQ, &run->m4, enroll_pdl_challenge_req, duo_wire_free_enroll_pdl_challenge_req(&run->m4), 0,
                duo_p1_enroll_pdl_challenge(run->p1, &run->m4, &run->m5))
    B2B_DELIVER(B2B_E_PDL_RESP, &run->m5, enroll_pdl_challenge_resp, B2B_NOFREE(0), 1,
                duo_p2_enroll_on_pdl_challenge(run->p2, &run->m5, &run->m6))
    B2B_DELIVER(B2B_E_OPEN_REQ, &run->m6, enroll_pdl_open_req, B2B_NOFREE(0), 0,
                duo_p1_enroll_pdl_open(run->p1, &run->m6, &run->m7))
    B2B_DELIVER(B2B_E_OPEN_RESP, &run->m7, enroll_pdl_open_resp, B2B_NOFREE(0), 1,
                duo_p2_enroll_on_pdl_open(run->p2, &run->m7))
    /* The device stores its key before confirming. */
    if ((err = B2B_TIMED(1, duo_p2_enroll_take_key(run->p2, &run->k2))) != DUO_OK) goto out;
    if ((err = B2B_TIMED(1, duo_p2_enroll_confirm(run->p2, &run->m8))) != DUO_OK) goto out;
    B2B_DELIVER(B2B_E_CONFIRM_REQ, &run->m8, enroll_confirm_req, B2B_NOFREE(0), 0,
                duo_p1_enroll_confirm(run->p1, &run->m8))
    step = B2B_E_TAKE;
    if (step >= last) goto out;
    if ((err = duo_p1_enroll_take_key(run->p1, &run->k1, run->cloud_device_secret)) != DUO_OK) goto out;
    step = B2B_E_STEPS;
#undef B2B_DELIVER
out:
    if (err != DUO_OK) {
        run->fail_step = step;
    }
    return err;
}

/* ---- signing ---- */
typedef struct b2b_sign_opts {
    const char *pin;
    const duo_scalar *pin_kdf; /* non-NULL: the prepared KDF(PIN) instead of pin */
    const uint8_t *digest;
    int wire;
    int check_mac; /* the cloud caller's MAC checks */
    b2b_hook hook;
    void *hook_ctx;
    const duo_rng *rng1, *rng2;
    int precompute_rn; /* pass a precomputed r^N */
    int split_finish;  /* the cloud's round 2 as _check then _decrypt (as the daemon does) */
    int stop_after;
} b2b_sign_opts;

typedef struct b2b_sign_run {
    duo_p1_sign *p1;
    duo_p2_sign *p2;
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    uint8_t sig[64];
    int fail_step;
    double cpu[2];
} b2b_sign_run;

static inline void b2b_sign_run_free(b2b_sign_run *r) {
    duo_p1_sign_free(r->p1);
    duo_p2_sign_free(r->p2);
    duo_wire_free_sign_finish_req(&r->m2);
    memset(r, 0, sizeof *r);
}

static inline int b2b_sign(b2b_sign_run *run, const duo_p1_key *k1, const duo_p2_key *k2,
                           const uint8_t cloud_secret[32], const b2b_sign_opts *o) {
    int err = DUO_OK, rc_;
    double t0_;
    duo_p2_sign_params sp;
    int step = 0;
    uint8_t mi[32];
    int last = o->stop_after > 0 ? o->stop_after : B2B_S_STEPS;

    memset(run, 0, sizeof *run);
    run->fail_step = -1;
    memset(&sp, 0, sizeof sp);
    sp.ec = b2b_ec();
    sp.rng = o->rng2;
    sp.key = k2;
    if (o->pin_kdf != NULL) {
        sp.pin_kdf = o->pin_kdf;
    } else {
        sp.pin = (const uint8_t *)o->pin;
        sp.pin_len = strlen(o->pin);
    }
    sp.digest = o->digest;
    if (o->precompute_rn) {
        sp.precomputed_rn = BN_new();
        if (sp.precomputed_rn == NULL || duo_paillier_rn(k2->paillier, sp.precomputed_rn, o->rng2) != DUO_OK) {
            err = DUO_E_INTERNAL;
            goto out;
        }
    }
    if ((err = duo_p2_sign_new(&run->p2, &sp)) != DUO_OK ||
        (err = duo_p1_sign_new(&run->p1, b2b_ec(), o->rng1, k1)) != DUO_OK) {
        goto out;
    }
#define B2B_DELIVER(stp, msg, M, freefn, side, call) \
    step = (stp);                                    \
    if (step >= last) goto out;                      \
    if (o->hook) o->hook(o->hook_ctx, step, (msg));  \
    if (o->wire) B2B_WIRE_RT(M, (msg), freefn);      \
    if ((err = B2B_TIMED(side, call)) != DUO_OK) goto out;

    if ((err = B2B_TIMED(1, duo_p2_sign_start(run->p2, &run->m0))) != DUO_OK) goto out;
    if (o->hook) o->hook(o->hook_ctx, B2B_S_START_REQ, &run->m0);
    step = B2B_S_START_REQ;
    if (o->wire) B2B_WIRE_RT(sign_start_req, &run->m0, B2B_NOFREE(0));
    if (o->check_mac && ((err = duo_wire_mac_input_sign_start(mi, &run->m0)) != DUO_OK ||
                         (err = duo_mac_check(cloud_secret, mi, run->m0.mac)) != DUO_OK)) {
        goto out;
    }
    if ((err = B2B_TIMED(0, duo_p1_sign_start(run->p1, &run->m0, &run->m1))) != DUO_OK) goto out;
    B2B_DELIVER(B2B_S_START_RESP, &run->m1, sign_start_resp, B2B_NOFREE(0), 1,
                duo_p2_sign_on_start(run->p2, &run->m1, &run->m2))
    step = B2B_S_FINISH_REQ;
    if (step >= last) goto out;
    if (o->hook) o->hook(o->hook_ctx, B2B_S_FINISH_REQ, &run->m2);
    if (o->wire) B2B_WIRE_RT(sign_finish_req, &run->m2, duo_wire_free_sign_finish_req(&run->m2));
    if (o->check_mac && ((err = duo_wire_mac_input_sign_finish(mi, &run->m2)) != DUO_OK ||
                         (err = duo_mac_check(cloud_secret, mi, run->m2.mac)) != DUO_OK)) {
        goto out;
    }
    if (o->split_finish) {
        uint8_t rx[32];
        if ((err = B2B_TIMED(0, duo_p1_sign_finish_check(run->p1, &run->m2, &run->m3, rx))) != DUO_OK ||
            (err = B2B_TIMED(0, duo_p1_sign_finish_decrypt(run->p1, &run->m3))) != DUO_OK)
            goto out;
        if (memcmp(rx, run->m3.signature, 32) != 0) { /* _check's r is the signature's */
            err = DUO_E_INTERNAL;
            goto out;
        }
    } else if ((err = B2B_TIMED(0, duo_p1_sign_finish(run->p1, &run->m2, &run->m3))) != DUO_OK) {
        goto out;
    }
    B2B_DELIVER(B2B_S_FINISH_RESP, &run->m3, sign_finish_resp, B2B_NOFREE(0), 1,
                duo_p2_sign_on_finish(run->p2, &run->m3, run->sig))
    step = B2B_S_STEPS;
#undef B2B_DELIVER
out:
    if (err != DUO_OK) {
        run->fail_step = step;
    }
    return err;
}

/* ---- tampering helpers ---- */
static inline void b2b_flip(uint8_t *p, size_t len, size_t bit) { p[(bit / 8) % len] ^= (uint8_t)(1u << (bit % 8)); }

/* A valid point different from the given one: 2*P... simpler: k*G for a fixed k. */
static inline void b2b_other_point(uint8_t out[33], uint8_t seed) {
    duo_scalar k;
    duo_point p;
    memset(k.b, 0, 32);
    k.b[31] = (uint8_t)(seed | 1u);
    k.b[0] = 0x11;
    if (duo_point_mul_base(b2b_ec(), &p, &k) != DUO_OK) abort();
    duo_point_serialize(b2b_ec(), out, &p);
}

/* Expected error for a tampered 33-byte point that is then checked with a
 * proof: BAD_POINT if it no longer parses, else `otherwise`. */
static inline int b2b_point_err(const uint8_t pt[33], int otherwise) {
    duo_point p;
    return duo_point_parse(b2b_ec(), &p, pt, 33) == DUO_OK ? otherwise : DUO_E_BAD_POINT;
}

#endif
