/* Shared setup for the engine fuzz targets (fuzz_p1_*.c, fuzz_p2_*.c).
 *
 * LLVMFuzzerInitialize runs one honest, deterministic enrolment and one
 * honest signature (det_rng seeds 1 for the cloud, 2 for the device; the
 * FIXED 2048-bit Paillier key below, so no keygen) and keeps:
 *   - every honest message, as a parsed struct and as wire bytes;
 *   - a snapshot (deep copy) of each engine session in every state, with
 *     the state of its random source, so a target gets a fresh session just
 *     before the fuzzed message in microseconds (the rounds that precede it
 *     include Paillier proofs and scrypt: far too slow to replay per input).
 * To take a deep copy the engines' private structs are needed: this header
 * compiles p1_enroll.c, p2_enroll.c and p2_sign.c into the target (the same
 * sources as the libraries; the linker then does not pull those objects
 * from the archives). The copy functions below must follow any new owned
 * pointer in those structs.
 *
 * Seeds: DUO_FUZZ_DUMP_SEED=<file> <target> writes the honest message the
 * target consumes to <file> and exits (tests/fuzz/README.md).
 * Curve: the session runs on secp256k1, or on P-256 with DUO_FUZZ_CURVE=p256
 * (the committed seed_honest files are secp256k1's). */
#ifndef DUO_ENGINE_FUZZ_H
#define DUO_ENGINE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "det_rng.h"
#include "duosign/curve.h"
#include "duosign/paillier.h"
#include "p1.h"
#include "p2.h"
#include "wire.h"

/* The engines' private structs (see top). */
#include "p1_enroll.c"
#include "p2_enroll.c"
#include "p2_sign.c"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed 2048-bit Paillier key (Blum primes, from duo_paillier_keygen). Test only. */
static const char fz_p_hex[] = "E370B8B8D2B811FD7AFC0D3394A5CDDE7C647B20ACEA73A750525537B9D651FDC00B04BA240EAB85D133277"
                               "878D92CC5EEE944B7167845D2A7C6F81620C6961CFB8F33C6628BC27DA49328846BE1EFFAE0CD49FCFE0682"
                               "2189C3C644F3F48EA9ADE328B53070E04AB4B59A99906C3C3209C9E79D4F4793199EACF85A9C70C68B";
static const char fz_q_hex[] = "E44F32AB00387F98D787B19428E699538EAF216ED037CA353CA73619EBA3D9C75725EF125C3CCB840D2C42E"
                               "6DB24503308E71779A6C89C25E4F77AB12D8730B5C43A1767A74E474756265032499BEF170374BCA48680BA"
                               "9C1AD7F39B8941CA9A0E6DF4EFEA30AFBBE1917BF38F25734C03CE2F096B06651095156F5921EA74D3";
static const char fz_pin[] = "1234";
static const uint8_t fz_token[] = "fuzz-token";
static const uint8_t fz_digest[32] = {0x64, 0x75, 0x6f, 0x73, 0x69, 0x67, 0x6e, 0x2d, 0x66, 0x75, 0x7a, 0x7a};

/* Honest messages, in protocol order. */
enum {
    FZ_E_START_REQ = 0,
    FZ_E_START_RESP,
    FZ_E_SHARE_REQ,
    FZ_E_SHARE_RESP,
    FZ_E_PDL_REQ,
    FZ_E_PDL_RESP,
    FZ_E_OPEN_REQ,
    FZ_E_OPEN_RESP,
    FZ_E_CONFIRM_REQ,
    FZ_S_START_REQ,
    FZ_S_START_RESP,
    FZ_S_FINISH_REQ,
    FZ_S_FINISH_RESP,
    FZ_NMSG
};
/* Session snapshots: the session just before it consumes message i. */
typedef struct fz_state {
    duo_ec *ec;
    BIGNUM *p, *q;
    duo_det_rng rng1, rng2; /* the live sources every session points to */
    duo_enroll_start_req e0;
    duo_enroll_start_resp e1;
    duo_enroll_key_share_req e2;
    duo_enroll_key_share_resp e3;
    duo_enroll_pdl_challenge_req e4;
    duo_enroll_pdl_challenge_resp e5;
    duo_enroll_pdl_open_req e6;
    duo_enroll_pdl_open_resp e7;
    duo_enroll_confirm_req e8;
    duo_sign_start_req s0;
    duo_sign_start_resp s1;
    duo_sign_finish_req s2;
    duo_sign_finish_resp s3;
    uint8_t sig[64]; /* the honest signature */
    uint8_t *bytes[FZ_NMSG];
    size_t len[FZ_NMSG];
    duo_p1_enroll *p1e[FZ_NMSG]; /* P1 before consuming request i */
    duo_p2_enroll *p2e[FZ_NMSG]; /* P2 before consuming response i */
    duo_p2_sign *p2s[FZ_NMSG];
    duo_det_rng rng_at[FZ_NMSG]; /* the consuming side's source at that point */
    duo_p1_key *k1;
    duo_p2_key *k2;
    uint8_t cloud_secret[32];
} fz_state;

static fz_state fz;

#define FZ_CHECK(cond)                                                                            \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "engine fuzz setup failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* A property violation: a crash libFuzzer records. */
#define FZ_ASSERT(cond)                                                    \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "engine fuzz property violated: %s\n", #cond); \
            __builtin_trap();                                              \
        }                                                                  \
    } while (0)

static inline void fz_rng_restore(duo_det_rng *live, const duo_det_rng *saved) {
    *live = *saved;
    live->rng.data = live;
}

static inline duo_paillier_priv *fz_paillier(void) {
    duo_paillier_priv *sk = NULL;
    FZ_CHECK(duo_paillier_priv_from_primes(&sk, fz.p, fz.q, 2048) == DUO_OK);
    return sk;
}

/* ---- deep copies of sessions ---- */
static inline duo_p1_enroll *fz_p1e_copy(const duo_p1_enroll *s) {
    duo_p1_enroll *c = malloc(sizeof *c);
    FZ_CHECK(c != NULL);
    memcpy(c, s, sizeof *c);
    c->paillier = s->paillier != NULL ? fz_paillier() : NULL;
    c->alpha = NULL;
    if (s->alpha != NULL) {
        FZ_CHECK((c->alpha = BN_secure_new()) != NULL && BN_copy(c->alpha, s->alpha) != NULL);
        BN_set_flags(c->alpha, BN_FLG_CONSTTIME);
    }
    return c;
}

static inline duo_p2_enroll *fz_p2e_copy(const duo_p2_enroll *s) {
    duo_p2_enroll *c = malloc(sizeof *c);
    FZ_CHECK(c != NULL && s->key == NULL);
    memcpy(c, s, sizeof *c);
    c->pk = NULL;
    c->ckey = NULL;
    if (s->pk != NULL) FZ_CHECK(duo_paillier_pub_dup(&c->pk, s->pk) == DUO_OK);
    if (s->ckey != NULL) FZ_CHECK((c->ckey = BN_dup(s->ckey)) != NULL);
    return c;
}

static inline duo_p2_sign *fz_p2s_copy(const duo_p2_sign *s) {
    duo_p2_sign *c = malloc(sizeof *c);
    FZ_CHECK(c != NULL);
    memcpy(c, s, sizeof *c);
    c->rn = NULL;
    if (s->rn != NULL) FZ_CHECK((c->rn = BN_dup(s->rn)) != NULL);
    return c;
}

/* A fresh session just before message i, with its random source restored. */
static inline duo_p1_enroll *fz_p1e_at(int i) {
    fz_rng_restore(&fz.rng1, &fz.rng_at[i]);
    return fz_p1e_copy(fz.p1e[i]);
}
static inline duo_p2_enroll *fz_p2e_at(int i) {
    fz_rng_restore(&fz.rng2, &fz.rng_at[i]);
    return fz_p2e_copy(fz.p2e[i]);
}
static inline duo_p2_sign *fz_p2s_at(int i) {
    fz_rng_restore(&fz.rng2, &fz.rng_at[i]);
    return fz_p2s_copy(fz.p2s[i]);
}
/* A P1 signing session in state STARTED on the honest request (cheap: EC only). */
static inline duo_p1_sign *fz_p1s_started(void) {
    duo_p1_sign *s = NULL;
    duo_sign_start_resp resp;
    fz_rng_restore(&fz.rng1, &fz.rng_at[FZ_S_START_REQ]);
    FZ_CHECK(duo_p1_sign_new(&s, fz.ec, &fz.rng1.rng, fz.k1) == DUO_OK);
    FZ_CHECK(duo_p1_sign_start(s, &fz.s0, &resp) == DUO_OK);
    FZ_CHECK(memcmp(&resp, &fz.s1, sizeof resp) == 0);
    return s;
}

/* ---- equality of parsed messages (structs with spans compare the bytes) ---- */
static inline int fz_span_eq(duo_span a, duo_span b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
static inline int fz_eq_key_share_resp(const duo_enroll_key_share_resp *a, const duo_enroll_key_share_resp *b) {
    return memcmp(a->q1, b->q1, sizeof a->q1) == 0 && memcmp(a->q1_proof, b->q1_proof, sizeof a->q1_proof) == 0 &&
           memcmp(a->q1_opening, b->q1_opening, sizeof a->q1_opening) == 0 &&
           fz_span_eq(a->paillier_n, b->paillier_n) && fz_span_eq(a->ckey, b->ckey) &&
           fz_span_eq(a->proof_ln, b->proof_ln) && fz_span_eq(a->proof_mod, b->proof_mod) &&
           fz_span_eq(a->proof_range, b->proof_range);
}
static inline int fz_eq_pdl_challenge_req(const duo_enroll_pdl_challenge_req *a,
                                          const duo_enroll_pdl_challenge_req *b) {
    return memcmp(a->sid, b->sid, sizeof a->sid) == 0 && fz_span_eq(a->c_prime, b->c_prime) &&
           memcmp(a->ab_commitment, b->ab_commitment, sizeof a->ab_commitment) == 0;
}
/* Every field but the MAC (which the caller, not the engine, checks) and c3. */
static inline int fz_eq_sign_finish_req_noc3(const duo_sign_finish_req *a, const duo_sign_finish_req *b) {
    return memcmp(a->sid, b->sid, sizeof a->sid) == 0 && memcmp(a->r2, b->r2, sizeof a->r2) == 0 &&
           memcmp(a->r2_proof, b->r2_proof, sizeof a->r2_proof) == 0 &&
           memcmp(a->r2_opening, b->r2_opening, sizeof a->r2_opening) == 0 &&
           memcmp(a->pin_proof, b->pin_proof, sizeof a->pin_proof) == 0;
}
/* Every field but the MAC. */
static inline int fz_eq_sign_finish_req_nomac(const duo_sign_finish_req *a, const duo_sign_finish_req *b) {
    return fz_eq_sign_finish_req_noc3(a, b) && fz_span_eq(a->c3, b->c3);
}
#define FZ_EQ(a, b) (memcmp((a), (b), sizeof *(a)) == 0) /* structs of byte arrays only */

/* ---- the honest run ---- */
#define FZ_KEEP(i, M, msgp)                                                       \
    do {                                                                          \
        FZ_CHECK(duo_wire_build_##M(&fz.bytes[i], &fz.len[i], (msgp)) == DUO_OK); \
    } while (0)

static inline void fz_dump_seed(int which) {
    const char *path = getenv("DUO_FUZZ_DUMP_SEED");
    FILE *f;
    if (path == NULL || path[0] == '\0') return;
    FZ_CHECK((f = fopen(path, "wb")) != NULL);
    FZ_CHECK(fwrite(fz.bytes[which], 1, fz.len[which], f) == fz.len[which]);
    FZ_CHECK(fclose(f) == 0);
    fprintf(stderr, "wrote %zu bytes to %s\n", fz.len[which], path);
    exit(0);
}

static inline void fz_cleanup(void) {
    int i;
    for (i = 0; i < FZ_NMSG; i++) {
        duo_p1_enroll_free(fz.p1e[i]);
        duo_p2_enroll_free(fz.p2e[i]);
        duo_p2_sign_free(fz.p2s[i]);
        free(fz.bytes[i]);
    }
    duo_wire_free_enroll_key_share_resp(&fz.e3);
    duo_wire_free_enroll_pdl_challenge_req(&fz.e4);
    duo_wire_free_sign_finish_req(&fz.s2);
    duo_p1_key_free(fz.k1);
    duo_p2_key_free(fz.k2);
    BN_clear_free(fz.p);
    BN_clear_free(fz.q);
    duo_ec_free(fz.ec);
    memset(&fz, 0, sizeof fz);
}

/* Runs the honest protocol once;  is the message this target fuzzes. */
static inline void fz_init(int which) {
    duo_p1_enroll_params pp;
    duo_p2_enroll_params dp;
    duo_p1_enroll *p1 = NULL;
    duo_p2_enroll *p2 = NULL;
    duo_p1_sign *p1s = NULL;
    duo_p2_sign *p2s = NULL;
    duo_p2_sign_params sp;
    uint8_t qb[33], qb2[33];

    memset(&fz, 0, sizeof fz);
    duo_curve curve = DUO_CURVE_SECP256K1;
    const char *cname = getenv("DUO_FUZZ_CURVE");
    FZ_CHECK(cname == NULL || cname[0] == '\0' || duo_curve_parse(cname, &curve) == DUO_OK);
    FZ_CHECK(duo_ec_new(&fz.ec, curve, NULL) == DUO_OK);
    FZ_CHECK(BN_hex2bn(&fz.p, fz_p_hex) > 0 && BN_hex2bn(&fz.q, fz_q_hex) > 0);
    duo_det_rng_init(&fz.rng1, 1);
    duo_det_rng_init(&fz.rng2, 2);

    memset(&pp, 0, sizeof pp);
    pp.ec = fz.ec;
    pp.rng = &fz.rng1.rng;
    pp.paillier_bits = 2048;
    pp.paillier = fz_paillier();
    memset(&dp, 0, sizeof dp);
    dp.ec = fz.ec;
    dp.rng = &fz.rng2.rng;
    dp.paillier_bits = 2048;
    dp.token = fz_token;
    dp.token_len = sizeof fz_token - 1;
    dp.pin = (const uint8_t *)fz_pin;
    dp.pin_len = sizeof fz_pin - 1;
    FZ_CHECK(duo_p1_enroll_new(&p1, &pp) == DUO_OK);
    FZ_CHECK(duo_p2_enroll_new(&p2, &dp) == DUO_OK);

#define FZ_SNAP_P1(i) (fz.rng_at[i] = fz.rng1, fz.p1e[i] = fz_p1e_copy(p1))
#define FZ_SNAP_P2(i) (fz.rng_at[i] = fz.rng2, fz.p2e[i] = fz_p2e_copy(p2))
    FZ_CHECK(duo_p2_enroll_start(p2, &fz.e0) == DUO_OK);
    FZ_KEEP(FZ_E_START_REQ, enroll_start_req, &fz.e0);
    FZ_SNAP_P1(FZ_E_START_REQ);
    FZ_CHECK(duo_p1_enroll_start(p1, &fz.e0, &fz.e1) == DUO_OK);
    FZ_KEEP(FZ_E_START_RESP, enroll_start_resp, &fz.e1);
    FZ_SNAP_P2(FZ_E_START_RESP);
    FZ_CHECK(duo_p2_enroll_on_start(p2, &fz.e1, &fz.e2) == DUO_OK);
    FZ_KEEP(FZ_E_SHARE_REQ, enroll_key_share_req, &fz.e2);
    FZ_SNAP_P1(FZ_E_SHARE_REQ);
    FZ_CHECK(duo_p1_enroll_key_share(p1, &fz.e2, &fz.e3) == DUO_OK);
    FZ_KEEP(FZ_E_SHARE_RESP, enroll_key_share_resp, &fz.e3);
    FZ_SNAP_P2(FZ_E_SHARE_RESP);
    FZ_CHECK(duo_p2_enroll_on_key_share(p2, &fz.e3, &fz.e4) == DUO_OK);
    FZ_KEEP(FZ_E_PDL_REQ, enroll_pdl_challenge_req, &fz.e4);
    FZ_SNAP_P1(FZ_E_PDL_REQ);
    FZ_CHECK(duo_p1_enroll_pdl_challenge(p1, &fz.e4, &fz.e5) == DUO_OK);
    FZ_KEEP(FZ_E_PDL_RESP, enroll_pdl_challenge_resp, &fz.e5);
    FZ_SNAP_P2(FZ_E_PDL_RESP);
    FZ_CHECK(duo_p2_enroll_on_pdl_challenge(p2, &fz.e5, &fz.e6) == DUO_OK);
    FZ_KEEP(FZ_E_OPEN_REQ, enroll_pdl_open_req, &fz.e6);
    FZ_SNAP_P1(FZ_E_OPEN_REQ);
    FZ_CHECK(duo_p1_enroll_pdl_open(p1, &fz.e6, &fz.e7) == DUO_OK);
    FZ_KEEP(FZ_E_OPEN_RESP, enroll_pdl_open_resp, &fz.e7);
    FZ_SNAP_P2(FZ_E_OPEN_RESP);
    FZ_CHECK(duo_p2_enroll_on_pdl_open(p2, &fz.e7) == DUO_OK);
    FZ_CHECK(duo_p2_enroll_take_key(p2, &fz.k2) == DUO_OK);
    FZ_CHECK(duo_p2_enroll_confirm(p2, &fz.e8) == DUO_OK);
    FZ_KEEP(FZ_E_CONFIRM_REQ, enroll_confirm_req, &fz.e8);
    FZ_SNAP_P1(FZ_E_CONFIRM_REQ);
    FZ_CHECK(duo_p1_enroll_confirm(p1, &fz.e8) == DUO_OK);
    FZ_CHECK(duo_p1_enroll_take_key(p1, &fz.k1, fz.cloud_secret) == DUO_OK);
    duo_point_serialize(fz.ec, qb, &fz.k1->q);
    duo_point_serialize(fz.ec, qb2, &fz.k2->q);
    FZ_CHECK(memcmp(qb, qb2, 33) == 0);
    duo_p1_enroll_free(p1);
    duo_p2_enroll_free(p2);

    /* One honest signature. */
    memset(&sp, 0, sizeof sp);
    sp.ec = fz.ec;
    sp.rng = &fz.rng2.rng;
    sp.key = fz.k2;
    sp.pin = (const uint8_t *)fz_pin;
    sp.pin_len = sizeof fz_pin - 1;
    sp.digest = fz_digest;
    FZ_CHECK(duo_p2_sign_new(&p2s, &sp) == DUO_OK);
    FZ_CHECK(duo_p2_sign_start(p2s, &fz.s0) == DUO_OK);
    FZ_KEEP(FZ_S_START_REQ, sign_start_req, &fz.s0);
    fz.rng_at[FZ_S_START_REQ] = fz.rng1;
    FZ_CHECK(duo_p1_sign_new(&p1s, fz.ec, &fz.rng1.rng, fz.k1) == DUO_OK);
    FZ_CHECK(duo_p1_sign_start(p1s, &fz.s0, &fz.s1) == DUO_OK);
    FZ_KEEP(FZ_S_START_RESP, sign_start_resp, &fz.s1);
    fz.rng_at[FZ_S_START_RESP] = fz.rng2;
    fz.p2s[FZ_S_START_RESP] = fz_p2s_copy(p2s);
    FZ_CHECK(duo_p2_sign_on_start(p2s, &fz.s1, &fz.s2) == DUO_OK);
    FZ_KEEP(FZ_S_FINISH_REQ, sign_finish_req, &fz.s2);
    FZ_CHECK(duo_p1_sign_finish(p1s, &fz.s2, &fz.s3) == DUO_OK);
    FZ_KEEP(FZ_S_FINISH_RESP, sign_finish_resp, &fz.s3);
    fz.rng_at[FZ_S_FINISH_RESP] = fz.rng2;
    fz.p2s[FZ_S_FINISH_RESP] = fz_p2s_copy(p2s);
    FZ_CHECK(duo_p2_sign_on_finish(p2s, &fz.s3, fz.sig) == DUO_OK);
    FZ_CHECK(memcmp(fz.sig, fz.s3.signature, 64) == 0);
    duo_p1_sign_free(p1s);
    duo_p2_sign_free(p2s);
    /* The P1 signing session is rebuilt per input (fz_p1s_started) from this source. */
    {
        duo_p1_sign *chk = fz_p1s_started();
        duo_p1_sign_free(chk);
    }
#undef FZ_SNAP_P1
#undef FZ_SNAP_P2
    fz_dump_seed(which);
    atexit(fz_cleanup);
}

#endif
