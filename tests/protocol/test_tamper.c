/* Tampering with every field of every message of enrolment and signing:
 * bit flips, swapped valid points, zero and out-of-range scalars, truncated
 * spans, replays, cross-session messages and calls out of order. Each case
 * has one expected error, and no key (cloud take_key fails) and no signature
 * come out. */
#include "b2b.h"

enum { K_FLIP, K_FLIP_LOW, K_SWAP, K_ZERO, K_Z_ZERO, K_Z_Q, K_Z_FF, K_TRUNC, K_BIG, K_PREFIX };

typedef struct tcase {
    const char *name;
    int step;  /* message tampered */
    int field; /* index into the message's fields (see field_of) */
    int kind;
    int expect; /* expected error; 0: computed by the hook */
    int at;     /* step where the error must surface */
} tcase;

typedef struct tctx {
    const tcase *c;
    int expect; /* filled by the hook when the case depends on the bytes */
    uint8_t scratch[1024];
    const duo_paillier_priv *sk; /* for ciphertext edge values */
} tctx;

static const uint8_t Q_BYTES[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48,
                                    0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};

/* The field's bytes: fixed arrays or spans. */
static void field_of(int enroll, int step, void *msg, int field, uint8_t **p, size_t *len, duo_span **span) {
    *span = NULL;
#define F(arr) (*p = (uint8_t *)(arr), *len = sizeof(arr))
#define S(sp) (*span = &(sp), *p = (uint8_t *)(uintptr_t)(sp).ptr, *len = (sp).len)
    if (enroll) {
        switch (step) {
            case B2B_E_START_REQ: {
                duo_enroll_start_req *m = msg;
                if (field == 0)
                    F(m->device_nonce);
                else
                    F(m->token);
                break;
            }
            case B2B_E_START_RESP: {
                duo_enroll_start_resp *m = msg;
                if (field == 0)
                    F(m->key_id);
                else if (field == 1)
                    F(m->cloud_nonce);
                else
                    F(m->q1_commitment);
                break;
            }
            case B2B_E_SHARE_REQ: {
                duo_enroll_key_share_req *m = msg;
                if (field == 0)
                    F(m->sid);
                else if (field == 1)
                    F(m->q2);
                else
                    F(m->q2_proof);
                break;
            }
            case B2B_E_SHARE_RESP: {
                duo_enroll_key_share_resp *m = msg;
                switch (field) {
                    case 0:
                        F(m->q1);
                        break;
                    case 1:
                        F(m->q1_proof);
                        break;
                    case 2:
                        F(m->q1_opening);
                        break;
                    case 3:
                        S(m->paillier_n);
                        break;
                    case 4:
                        S(m->ckey);
                        break;
                    case 5:
                        S(m->proof_ln);
                        break;
                    case 6:
                        S(m->proof_mod);
                        break;
                    default:
                        S(m->proof_range);
                        break;
                }
                break;
            }
            case B2B_E_PDL_REQ: {
                duo_enroll_pdl_challenge_req *m = msg;
                if (field == 0)
                    F(m->sid);
                else if (field == 1)
                    S(m->c_prime);
                else
                    F(m->ab_commitment);
                break;
            }
            case B2B_E_PDL_RESP: {
                duo_enroll_pdl_challenge_resp *m = msg;
                F(m->alpha_commitment);
                break;
            }
            case B2B_E_OPEN_REQ: {
                duo_enroll_pdl_open_req *m = msg;
                if (field == 0)
                    F(m->sid);
                else if (field == 1)
                    F(m->a);
                else if (field == 2)
                    F(m->b);
                else
                    F(m->ab_opening);
                break;
            }
            case B2B_E_OPEN_RESP: {
                duo_enroll_pdl_open_resp *m = msg;
                if (field == 0)
                    F(m->alpha_point);
                else
                    F(m->alpha_opening);
                break;
            }
            default: {
                duo_enroll_confirm_req *m = msg;
                if (field == 0)
                    F(m->sid);
                else if (field == 1)
                    F(m->public_key);
                else
                    F(m->mac);
                break;
            }
        }
    } else {
        switch (step) {
            case B2B_S_START_REQ: {
                duo_sign_start_req *m = msg;
                switch (field) {
                    case 0:
                        F(m->key_id);
                        break;
                    case 1:
                        F(m->device_nonce);
                        break;
                    case 2:
                        F(m->digest);
                        break;
                    case 3:
                        F(m->r2_commitment);
                        break;
                    default:
                        F(m->mac);
                        break;
                }
                break;
            }
            case B2B_S_START_RESP: {
                duo_sign_start_resp *m = msg;
                if (field == 0)
                    F(m->cloud_nonce);
                else if (field == 1)
                    F(m->r1);
                else
                    F(m->r1_proof);
                break;
            }
            case B2B_S_FINISH_REQ: {
                duo_sign_finish_req *m = msg;
                switch (field) {
                    case 0:
                        F(m->sid);
                        break;
                    case 1:
                        F(m->r2);
                        break;
                    case 2:
                        F(m->r2_proof);
                        break;
                    case 3:
                        F(m->r2_opening);
                        break;
                    case 4:
                        F(m->pin_proof);
                        break;
                    case 5:
                        S(m->c3);
                        break;
                    default:
                        F(m->mac);
                        break;
                }
                break;
            }
            default: {
                duo_sign_finish_resp *m = msg;
                if (field == 0)
                    F(m->signature);
                else
                    F(m->rotate_seed);
                break;
            }
        }
    }
#undef F
#undef S
}

static void apply(tctx *t, int enroll, int step, void *msg) {
    uint8_t *p;
    size_t len;
    duo_span *span;
    const tcase *c = t->c;

    if (step != c->step) return;
    field_of(enroll, step, msg, c->field, &p, &len, &span);
    switch (c->kind) {
        case K_FLIP:
            b2b_flip(p, len, len * 4 + 3);
            break; /* a middle bit */
        case K_FLIP_LOW:
            p[len - 1] ^= 1;
            break;
        case K_PREFIX:
            p[0] ^= 1;
            break; /* 02 <-> 03: the negated point */
        case K_SWAP:
            b2b_other_point(p, 7);
            break;
        case K_ZERO:
            memset(p, 0, len);
            break;
        case K_Z_ZERO:
            memset(p + 33, 0, 32);
            break;
        case K_Z_Q:
            memcpy(p + 33, Q_BYTES, 32);
            break;
        case K_Z_FF:
            memset(p + 33, 0xff, 32);
            break;
        case K_BIG:
            memset(p, 0xff, len);
            break;
        case K_TRUNC:
            span->len -= 1;
            break;
    }
    if (c->expect == 0) {
        /* Point fields whose flip may or may not leave a valid point. */
        if (len == 33)
            t->expect = b2b_point_err(p, DUO_E_BAD_PROOF);
        else if (span != NULL && enroll && c->field == 3) {
            duo_paillier_pub *pk = NULL;
            t->expect =
                duo_paillier_pub_parse(&pk, span->ptr, span->len, 2048) == DUO_OK ? DUO_E_BAD_PROOF : DUO_E_BAD_MODULUS;
            duo_paillier_pub_free(pk);
        }
    }
}

static void enroll_hook(void *ctx, int step, void *msg) { apply(ctx, 1, step, msg); }
static void sign_hook(void *ctx, int step, void *msg) { apply(ctx, 0, step, msg); }

#define CT DUO_E_BAD_CIPHERTEXT
static const tcase enroll_cases[] = {
    {"start_req.device_nonce flip", B2B_E_START_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_SHARE_REQ},
    {"start_resp.key_id flip", B2B_E_START_RESP, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_SHARE_REQ},
    {"start_resp.cloud_nonce flip", B2B_E_START_RESP, 1, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_SHARE_REQ},
    {"start_resp.q1_commitment flip", B2B_E_START_RESP, 2, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_SHARE_RESP},
    {"share_req.sid flip", B2B_E_SHARE_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_SHARE_REQ},
    {"share_req.q2 flip", B2B_E_SHARE_REQ, 1, K_FLIP, 0, B2B_E_SHARE_REQ},
    {"share_req.q2 negated", B2B_E_SHARE_REQ, 1, K_PREFIX, DUO_E_BAD_PROOF, B2B_E_SHARE_REQ},
    {"share_req.q2 swapped", B2B_E_SHARE_REQ, 1, K_SWAP, DUO_E_BAD_PROOF, B2B_E_SHARE_REQ},
    {"share_req.q2 zero", B2B_E_SHARE_REQ, 1, K_ZERO, DUO_E_BAD_POINT, B2B_E_SHARE_REQ},
    {"share_req.q2_proof flip", B2B_E_SHARE_REQ, 2, K_FLIP, DUO_E_BAD_PROOF, B2B_E_SHARE_REQ},
    {"share_req.q2_proof z=0", B2B_E_SHARE_REQ, 2, K_Z_ZERO, DUO_E_BAD_PROOF, B2B_E_SHARE_REQ},
    {"share_req.q2_proof z=q", B2B_E_SHARE_REQ, 2, K_Z_Q, DUO_E_BAD_PROOF, B2B_E_SHARE_REQ},
    {"share_req.q2_proof z=2^256-1", B2B_E_SHARE_REQ, 2, K_Z_FF, DUO_E_BAD_PROOF, B2B_E_SHARE_REQ},
    {"share_resp.q1 flip", B2B_E_SHARE_RESP, 0, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_SHARE_RESP},
    {"share_resp.q1 swapped", B2B_E_SHARE_RESP, 0, K_SWAP, DUO_E_BAD_COMMITMENT, B2B_E_SHARE_RESP},
    {"share_resp.q1_proof flip", B2B_E_SHARE_RESP, 1, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_SHARE_RESP},
    {"share_resp.q1_opening flip", B2B_E_SHARE_RESP, 2, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_SHARE_RESP},
    {"share_resp.N flip", B2B_E_SHARE_RESP, 3, K_FLIP, 0, B2B_E_SHARE_RESP},
    {"share_resp.N even", B2B_E_SHARE_RESP, 3, K_FLIP_LOW, DUO_E_BAD_MODULUS, B2B_E_SHARE_RESP},
    {"share_resp.N truncated", B2B_E_SHARE_RESP, 3, K_TRUNC, DUO_E_BAD_MODULUS, B2B_E_SHARE_RESP},
    {"share_resp.ckey flip", B2B_E_SHARE_RESP, 4, K_FLIP, DUO_E_BAD_PROOF, B2B_E_SHARE_RESP},
    {"share_resp.ckey zero", B2B_E_SHARE_RESP, 4, K_ZERO, CT, B2B_E_SHARE_RESP},
    {"share_resp.ckey 2^k-1 (>= N^2)", B2B_E_SHARE_RESP, 4, K_BIG, CT, B2B_E_SHARE_RESP},
    {"share_resp.ckey truncated", B2B_E_SHARE_RESP, 4, K_TRUNC, CT, B2B_E_SHARE_RESP},
    {"share_resp.proof_ln flip", B2B_E_SHARE_RESP, 5, K_FLIP, DUO_E_BAD_PROOF, B2B_E_SHARE_RESP},
    {"share_resp.proof_ln truncated", B2B_E_SHARE_RESP, 5, K_TRUNC, DUO_E_BAD_PROOF, B2B_E_SHARE_RESP},
    {"share_resp.proof_mod flip", B2B_E_SHARE_RESP, 6, K_FLIP, DUO_E_BAD_PROOF, B2B_E_SHARE_RESP},
    {"share_resp.proof_range flip", B2B_E_SHARE_RESP, 7, K_FLIP, DUO_E_BAD_PROOF, B2B_E_SHARE_RESP},
    {"share_resp.proof_range low bit", B2B_E_SHARE_RESP, 7, K_FLIP_LOW, DUO_E_BAD_PROOF, B2B_E_SHARE_RESP},
    {"pdl_req.sid flip", B2B_E_PDL_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_PDL_REQ},
    {"pdl_req.c_prime flip", B2B_E_PDL_REQ, 1, K_FLIP, DUO_E_PDL_MISMATCH, B2B_E_OPEN_REQ},
    {"pdl_req.c_prime zero", B2B_E_PDL_REQ, 1, K_ZERO, CT, B2B_E_PDL_REQ},
    {"pdl_req.c_prime 2^k-1", B2B_E_PDL_REQ, 1, K_BIG, CT, B2B_E_PDL_REQ},
    {"pdl_req.ab_commitment flip", B2B_E_PDL_REQ, 2, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_REQ},
    {"pdl_resp.alpha_commitment flip", B2B_E_PDL_RESP, 0, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_RESP},
    {"open_req.sid flip", B2B_E_OPEN_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_OPEN_REQ},
    {"open_req.a flip", B2B_E_OPEN_REQ, 1, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_REQ},
    {"open_req.b flip", B2B_E_OPEN_REQ, 2, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_REQ},
    {"open_req.ab_opening flip", B2B_E_OPEN_REQ, 3, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_REQ},
    {"open_resp.alpha_point flip", B2B_E_OPEN_RESP, 0, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_RESP},
    {"open_resp.alpha_point swapped", B2B_E_OPEN_RESP, 0, K_SWAP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_RESP},
    {"open_resp.alpha_opening flip", B2B_E_OPEN_RESP, 1, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_E_OPEN_RESP},
    {"confirm.sid flip", B2B_E_CONFIRM_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_CONFIRM_REQ},
    {"confirm.public_key flip", B2B_E_CONFIRM_REQ, 1, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_E_CONFIRM_REQ},
    {"confirm.public_key swapped", B2B_E_CONFIRM_REQ, 1, K_SWAP, DUO_E_SESSION_MISMATCH, B2B_E_CONFIRM_REQ},
    {"confirm.mac flip", B2B_E_CONFIRM_REQ, 2, K_FLIP, DUO_E_UNAUTHENTICATED, B2B_E_CONFIRM_REQ},
};

static void test_enroll_tamper(void) {
    size_t i;
    for (i = 0; i < sizeof enroll_cases / sizeof enroll_cases[0]; i++) {
        const tcase *c = &enroll_cases[i];
        tctx t;
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        duo_p1_key *k = NULL;
        uint8_t ds[32];
        int rc, want;

        memset(&t, 0, sizeof t);
        t.c = c;
        memset(&eo, 0, sizeof eo);
        eo.bits = 2048;
        eo.pin = "0000";
        eo.hook = enroll_hook;
        eo.hook_ctx = &t;
        rc = b2b_enroll(&er, &eo);
        want = c->expect != 0 ? c->expect : t.expect;
        if (rc != want || er.fail_step != c->at) {
            fprintf(stderr, "  case '%s': got %s at step %d, want %s at step %d\n", c->name, duo_err_name(rc),
                    er.fail_step, duo_err_name(want), c->at);
        }
        DUO_CHECK(rc == want);
        DUO_CHECK(er.fail_step == c->at);
        /* No key comes out of the cloud; the failed side is sticky. */
        DUO_CHECK(er.k1 == NULL);
        DUO_CHECK(duo_p1_enroll_take_key(er.p1, &k, ds) != DUO_OK && k == NULL);
        if (c->at < B2B_E_OPEN_RESP) {
            duo_p2_key *dk = NULL;
            DUO_CHECK(duo_p2_enroll_take_key(er.p2, &dk) != DUO_OK && dk == NULL);
        }
        b2b_enroll_run_free(&er);
    }
}

/* Out-of-range (a, b) with a consistent commitment: the cloud checks the
 * opening, then the ranges, then alpha = a*x1 + b. */
typedef struct abctx {
    int mode; /* 0: a = q, 1: b = 2^512-1, 2: b = q^2, 3: a = 0, 4: a + 1 */
    uint8_t a[32], b[64], rand[32];
} abctx;

static void ab_hook(void *ctx, int step, void *msg) {
    abctx *t = ctx;
    if (step == B2B_E_PDL_REQ) {
        duo_enroll_pdl_challenge_req *m = msg;
        duo_transcript tr;
        duo_binding bind;
        /* Commit to the tampered (a, b) now; the values are chosen below. */
        memcpy(bind.sid, m->sid, 32);
        bind.role = DUO_ROLE_DEVICE;
        memset(t->rand, 0x5a, 32);
        memset(t->a, 0x01, 32);
        memset(t->b, 0x01, 64);
        if (t->mode == 0) memcpy(t->a, Q_BYTES, 32);
        if (t->mode == 1) memset(t->b, 0xff, 64);
        if (t->mode == 2) {
            BIGNUM *q = BN_bin2bn(Q_BYTES, 32, NULL), *q2 = BN_new();
            BN_CTX *bc = BN_CTX_new();
            BN_sqr(q2, q, bc);
            BN_bn2binpad(q2, t->b, 64);
            BN_free(q);
            BN_free(q2);
            BN_CTX_free(bc);
        }
        if (t->mode == 3) memset(t->a, 0, 32);
        if (duo_commit_begin(&tr, "pdl-ab", &bind) != DUO_OK) abort();
        duo_transcript_bytes(&tr, "a", t->a, 32);
        duo_transcript_bytes(&tr, "b", t->b, 64);
        if (duo_commit_finish(&tr, t->rand, m->ab_commitment) != DUO_OK) abort();
    } else if (step == B2B_E_OPEN_REQ) {
        duo_enroll_pdl_open_req *m = msg;
        if (t->mode == 4) {
            /* The real (a, b) but a + 1: consistent commitment over it. */
            return;
        }
        memcpy(m->a, t->a, 32);
        memcpy(m->b, t->b, 64);
        memcpy(m->ab_opening, t->rand, 32);
    }
}

static void test_pdl_ranges(void) {
    static const int want[] = {DUO_E_BAD_SCALAR, DUO_E_BAD_SCALAR, DUO_E_BAD_SCALAR, DUO_E_PDL_MISMATCH};
    int mode;
    for (mode = 0; mode < 4; mode++) {
        abctx t;
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        memset(&t, 0, sizeof t);
        t.mode = mode;
        memset(&eo, 0, sizeof eo);
        eo.bits = 2048;
        eo.pin = "0000";
        eo.hook = ab_hook;
        eo.hook_ctx = &t;
        DUO_EXPECT_ERR(b2b_enroll(&er, &eo), want[mode]);
        DUO_CHECK(er.fail_step == B2B_E_OPEN_REQ);
        /* Nothing revealed: the cloud never filled alpha*G. */
        DUO_CHECK(duo_ct_is_zero(er.m7.alpha_point, 33));
        b2b_enroll_run_free(&er);
    }
}

/* ---- signing ---- */
static b2b_enroll_run g_er;

static const tcase sign_cases[] = {
    {"sign_start.key_id flip", B2B_S_START_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_S_START_REQ},
    {"sign_start.device_nonce flip", B2B_S_START_REQ, 1, K_FLIP, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"sign_start.digest flip", B2B_S_START_REQ, 2, K_FLIP, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"sign_start.r2_commitment flip", B2B_S_START_REQ, 3, K_FLIP, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.cloud_nonce flip", B2B_S_START_RESP, 0, K_FLIP, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.r1 flip", B2B_S_START_RESP, 1, K_FLIP, 0, B2B_S_START_RESP},
    {"start_resp.r1 negated", B2B_S_START_RESP, 1, K_PREFIX, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.r1 swapped", B2B_S_START_RESP, 1, K_SWAP, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.r1 zero", B2B_S_START_RESP, 1, K_ZERO, DUO_E_BAD_POINT, B2B_S_START_RESP},
    {"start_resp.r1_proof flip", B2B_S_START_RESP, 2, K_FLIP, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.r1_proof z=0", B2B_S_START_RESP, 2, K_Z_ZERO, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.r1_proof z=q", B2B_S_START_RESP, 2, K_Z_Q, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"start_resp.r1_proof z=2^256-1", B2B_S_START_RESP, 2, K_Z_FF, DUO_E_BAD_PROOF, B2B_S_START_RESP},
    {"finish.sid flip", B2B_S_FINISH_REQ, 0, K_FLIP, DUO_E_SESSION_MISMATCH, B2B_S_FINISH_REQ},
    {"finish.r2 flip", B2B_S_FINISH_REQ, 1, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_S_FINISH_REQ},
    {"finish.r2 swapped", B2B_S_FINISH_REQ, 1, K_SWAP, DUO_E_BAD_COMMITMENT, B2B_S_FINISH_REQ},
    {"finish.r2_proof flip", B2B_S_FINISH_REQ, 2, K_FLIP, DUO_E_BAD_PROOF, B2B_S_FINISH_REQ},
    {"finish.r2_proof z=0", B2B_S_FINISH_REQ, 2, K_Z_ZERO, DUO_E_BAD_PROOF, B2B_S_FINISH_REQ},
    {"finish.r2_proof z=q", B2B_S_FINISH_REQ, 2, K_Z_Q, DUO_E_BAD_PROOF, B2B_S_FINISH_REQ},
    {"finish.r2_opening flip", B2B_S_FINISH_REQ, 3, K_FLIP, DUO_E_BAD_COMMITMENT, B2B_S_FINISH_REQ},
    {"finish.pin_proof flip", B2B_S_FINISH_REQ, 4, K_FLIP, DUO_E_WRONG_PIN, B2B_S_FINISH_REQ},
    {"finish.pin_proof z=0", B2B_S_FINISH_REQ, 4, K_Z_ZERO, DUO_E_WRONG_PIN, B2B_S_FINISH_REQ},
    {"finish.pin_proof z=2^256-1", B2B_S_FINISH_REQ, 4, K_Z_FF, DUO_E_WRONG_PIN, B2B_S_FINISH_REQ},
    {"finish.c3 flip", B2B_S_FINISH_REQ, 5, K_FLIP, DUO_E_PEER_CHEATED, B2B_S_FINISH_REQ},
    {"finish.c3 zero", B2B_S_FINISH_REQ, 5, K_ZERO, CT, B2B_S_FINISH_REQ},
    {"finish.c3 2^k-1", B2B_S_FINISH_REQ, 5, K_BIG, CT, B2B_S_FINISH_REQ},
    {"finish.c3 truncated", B2B_S_FINISH_REQ, 5, K_TRUNC, CT, B2B_S_FINISH_REQ},
    {"finish_resp.signature flip", B2B_S_FINISH_RESP, 0, K_FLIP, DUO_E_BAD_SIGNATURE, B2B_S_FINISH_RESP},
    {"finish_resp.signature zero", B2B_S_FINISH_RESP, 0, K_ZERO, DUO_E_BAD_SIGNATURE, B2B_S_FINISH_RESP},
};

static void test_sign_tamper(void) {
    size_t i;
    for (i = 0; i < sizeof sign_cases / sizeof sign_cases[0]; i++) {
        const tcase *c = &sign_cases[i];
        tctx t;
        b2b_sign_run sr;
        b2b_sign_opts so;
        uint8_t digest[32];
        unsigned long dec0 = duo_paillier_priv_decryptions(g_er.k1->paillier);
        int rc, want;

        memset(&t, 0, sizeof t);
        t.c = c;
        memset(digest, (int)i, 32);
        memset(&so, 0, sizeof so);
        so.pin = "0000";
        so.digest = digest;
        so.hook = sign_hook;
        so.hook_ctx = &t;
        rc = b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so);
        want = c->expect != 0 ? c->expect : t.expect;
        if (rc != want || sr.fail_step != c->at) {
            fprintf(stderr, "  case '%s': got %s at step %d, want %s at step %d\n", c->name, duo_err_name(rc),
                    sr.fail_step, duo_err_name(want), c->at);
        }
        DUO_CHECK(rc == want);
        DUO_CHECK(sr.fail_step == c->at);
        DUO_CHECK(duo_ct_is_zero(sr.sig, 64));
        if (c->at < B2B_S_FINISH_RESP) DUO_CHECK(duo_ct_is_zero(sr.m3.signature, 64));
        /* Everything the cloud rejects before c3 is never decrypted. */
        if (c->step <= B2B_S_FINISH_REQ && c->expect != DUO_E_PEER_CHEATED && c->field != 5)
            DUO_CHECK(duo_paillier_priv_decryptions(g_er.k1->paillier) == dec0);
        b2b_sign_run_free(&sr);
    }
}

/* With the caller's MAC checks on, any change to a request is unauthenticated. */
static void test_sign_mac(void) {
    static const int fields[][2] = {{B2B_S_START_REQ, 0},  {B2B_S_START_REQ, 1},  {B2B_S_START_REQ, 2},
                                    {B2B_S_START_REQ, 3},  {B2B_S_START_REQ, 4},  {B2B_S_FINISH_REQ, 0},
                                    {B2B_S_FINISH_REQ, 1}, {B2B_S_FINISH_REQ, 2}, {B2B_S_FINISH_REQ, 3},
                                    {B2B_S_FINISH_REQ, 4}, {B2B_S_FINISH_REQ, 5}, {B2B_S_FINISH_REQ, 6}};
    size_t i;
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        tcase c = {"mac", fields[i][0], fields[i][1], K_FLIP, DUO_E_UNAUTHENTICATED, fields[i][0]};
        tctx t;
        b2b_sign_run sr;
        b2b_sign_opts so;
        uint8_t digest[32] = {1};
        memset(&t, 0, sizeof t);
        t.c = &c;
        memset(&so, 0, sizeof so);
        so.pin = "0000";
        so.digest = digest;
        so.hook = sign_hook;
        so.hook_ctx = &t;
        so.check_mac = 1;
        DUO_EXPECT_ERR(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so), DUO_E_UNAUTHENTICATED);
        DUO_CHECK(sr.fail_step == fields[i][0]);
        b2b_sign_run_free(&sr);
    }
}

/* Replay of the finish request, cross-session finish, calls out of order. */
static void test_sign_replay_cross(void) {
    b2b_sign_run a, b;
    b2b_sign_opts so;
    uint8_t digest[32] = {9};
    duo_sign_finish_resp resp;
    unsigned long dec0;

    memset(&so, 0, sizeof so);
    so.pin = "0000";
    so.digest = digest;
    DUO_CHECK_OK(b2b_sign(&a, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
    /* Replay: the same finish request again. */
    dec0 = duo_paillier_priv_decryptions(g_er.k1->paillier);
    memset(&resp, 0, sizeof resp);
    DUO_EXPECT_ERR(duo_p1_sign_finish(a.p1, &a.m2, &resp), DUO_E_PROTO_STATE);
    DUO_CHECK(duo_ct_is_zero(resp.signature, 64));
    DUO_EXPECT_ERR(duo_p1_sign_finish(a.p1, &a.m2, &resp), DUO_E_SESSION_FAILED);
    DUO_CHECK(duo_paillier_priv_decryptions(g_er.k1->paillier) == dec0);

    /* Cross-session: b's finish request fed to a fresh session c. */
    so.stop_after = B2B_S_FINISH_REQ; /* produce b.m2 but do not deliver it */
    {
        b2b_sign_run c;
        duo_sign_finish_resp r2;
        b2b_sign_opts so2 = so;
        DUO_CHECK_OK(b2b_sign(&b, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
        DUO_CHECK_OK(b2b_sign(&c, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so2));
        dec0 = duo_paillier_priv_decryptions(g_er.k1->paillier);
        DUO_EXPECT_ERR(duo_p1_sign_finish(c.p1, &b.m2, &r2), DUO_E_SESSION_MISMATCH);
        DUO_CHECK(duo_ct_is_zero(r2.signature, 64));
        DUO_CHECK(duo_paillier_priv_decryptions(g_er.k1->paillier) == dec0);
        /* ... and c is consumed: even its own request is refused now. */
        DUO_EXPECT_ERR(duo_p1_sign_finish(c.p1, &c.m2, &r2), DUO_E_SESSION_FAILED);
        b2b_sign_run_free(&c);
    }
    /* Out of order: finish before start on a new cloud session. */
    {
        duo_p1_sign *s = NULL;
        duo_sign_start_resp sresp;
        DUO_CHECK_OK(duo_p1_sign_new(&s, b2b_ec(), NULL, g_er.k1));
        DUO_EXPECT_ERR(duo_p1_sign_finish(s, &b.m2, &resp), DUO_E_PROTO_STATE);
        DUO_EXPECT_ERR(duo_p1_sign_start(s, &b.m0, &sresp), DUO_E_SESSION_FAILED);
        duo_p1_sign_free(s);
    }
    b2b_sign_run_free(&a);
    b2b_sign_run_free(&b);
}

int main(void) {
    b2b_enroll_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.bits = 2048;
    eo.pin = "0000";
    if (b2b_enroll(&g_er, &eo) != DUO_OK) {
        fprintf(stderr, "honest enrolment failed\n");
        return 1;
    }
    DUO_RUN(test_sign_tamper);
    DUO_RUN(test_sign_mac);
    DUO_RUN(test_sign_replay_cross);
    DUO_RUN(test_pdl_ranges);
    DUO_RUN(test_enroll_tamper);
    b2b_enroll_run_free(&g_er);
    b2b_env_free();
    return duo_test_finish();
}
