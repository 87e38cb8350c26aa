/* Signing secrets that no message shows, asserted on honest runs (issue 13,
 * "protocol checks without a test"): each test here fails if the property is
 * removed from the engines.
 *
 * - k1 and k2 are wiped after use and on failures (test-only accessors
 *   duo__p1_sign_nonce_wiped / duo__p2_sign_nonce_wiped);
 * - k1 is fresh per signature: drawn from the session's RNG (a recording RNG
 *   finds it among its outputs) and different for a replayed SignStart. A k1
 *   that depends only on what the device sends lets a malicious device, which
 *   knows its k2 and k2', solve s k2 = k1^-1 (m + r x), s' k2' = k1^-1 (m + r' x)
 *   for x from two signatures;
 * - c3 = Enc(rho q + u; r) (+) v (.) ckey with rho != 0 and a fresh r: the
 *   test decrypts c3 with the cloud's key (the integer s' = rho q + u + v x1
 *   is >= q^2 only if rho is there) and opens its randomness with the
 *   factors: R = (c3 mod N)^(N^-1 mod phi(N)) = r * r0^v, so r = R r0^-v
 *   (r0 opened from ckey the same way, v = k2^-1 r_sig with k2 found among
 *   the device RNG's outputs). r must not be 1 and must differ between two
 *   signatures. */
#include "b2b.h"
#include "p1_internal.h"
#include "p2_internal.h"

/* ---- a recording RNG: OpenSSL's bytes, every 32-byte draw remembered ---- */
#define REC_MAX 256
typedef struct rec_rng {
    duo_rng rng;
    uint8_t draws[REC_MAX][32];
    size_t n;
} rec_rng;

static int rec_fill(void *data, uint8_t *out, size_t len) {
    rec_rng *r = data;
    if (duo_rng_bytes(NULL, out, len) != DUO_OK) return 1;
    if (len == 32 && r->n < REC_MAX) memcpy(r->draws[r->n++], out, 32);
    return 0;
}

static void rec_init(rec_rng *r) {
    memset(r, 0, sizeof *r);
    r->rng.fill = rec_fill;
    r->rng.data = r;
}

/* Index of the recorded draw d with d*G == P (the nonce behind P), or -1. */
static int rec_find_dlog(const rec_rng *r, const uint8_t p33[33]) {
    size_t i;
    for (i = 0; i < r->n; i++) {
        duo_scalar k;
        duo_point pt;
        uint8_t ser[33];
        memcpy(k.b, r->draws[i], 32);
        if (duo_point_mul_base(b2b_ec(), &pt, &k) != DUO_OK) continue;
        duo_point_serialize(b2b_ec(), ser, &pt);
        if (memcmp(ser, p33, 33) == 0) return (int)i;
    }
    return -1;
}

static b2b_enroll_run g_er;
static const uint8_t g_digest[32] = {0x5a, 1, 2, 3};

static b2b_sign_opts sign_opts(void) {
    b2b_sign_opts so;
    memset(&so, 0, sizeof so);
    so.pin = "2468";
    so.digest = g_digest;
    so.check_mac = 1;
    return so;
}

/* ================= k1, k2 wiped ================= */

static void flip_c3(void *ctx, int step, void *msg) {
    (void)ctx;
    if (step == B2B_S_FINISH_REQ) {
        duo_sign_finish_req *m = msg;
        ((uint8_t *)(uintptr_t)m->c3.ptr)[m->c3.len / 2] ^= 0x10;
    }
}

static void flip_r1_proof(void *ctx, int step, void *msg) {
    (void)ctx;
    if (step == B2B_S_START_RESP) ((duo_sign_start_resp *)msg)->r1_proof[40] ^= 0x01;
}

static void test_nonces_wiped(void) {
    b2b_sign_run sr;
    b2b_sign_opts so;
    duo_sign_finish_resp fr;
    duo_sign_start_req sq;
    uint8_t sig[64];
    int split;

    /* honest run, both ways of finishing at the cloud */
    for (split = 0; split < 2; split++) {
        so = sign_opts();
        so.split_finish = split;
        DUO_CHECK_OK(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
        DUO_CHECK(duo__p1_sign_nonce_wiped(sr.p1));
        DUO_CHECK(duo__p2_sign_nonce_wiped(sr.p2));
        b2b_sign_run_free(&sr);
    }
    /* the accessors see live nonces: P2 after start, P1 after its start */
    so = sign_opts();
    so.stop_after = B2B_S_START_RESP;
    DUO_CHECK_OK(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
    DUO_CHECK(!duo__p1_sign_nonce_wiped(sr.p1));
    DUO_CHECK(!duo__p2_sign_nonce_wiped(sr.p2));
    /* a call in the wrong state fails both sessions: both nonces wiped */
    memset(&fr, 0, sizeof fr);
    memset(&sq, 0, sizeof sq);
    DUO_EXPECT_ERR(duo_p2_sign_on_finish(sr.p2, &fr, sig), DUO_E_PROTO_STATE);
    DUO_CHECK(duo__p2_sign_nonce_wiped(sr.p2));
    DUO_EXPECT_ERR(duo_p1_sign_start(sr.p1, &sq, &sr.m1), DUO_E_PROTO_STATE);
    DUO_CHECK(duo__p1_sign_nonce_wiped(sr.p1));
    b2b_sign_run_free(&sr);
    /* P2 has wiped k2 as soon as c3 is built (before the cloud answers) */
    so = sign_opts();
    so.stop_after = B2B_S_FINISH_REQ;
    DUO_CHECK_OK(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
    DUO_CHECK(duo__p2_sign_nonce_wiped(sr.p2));
    DUO_CHECK(!duo__p1_sign_nonce_wiped(sr.p1));
    b2b_sign_run_free(&sr);
    /* failures at the cloud: wrong PIN (before any decryption) and a bad c3
     * (after it): k1 wiped either way */
    so = sign_opts();
    so.pin = "0000";
    DUO_EXPECT_ERR(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so), DUO_E_WRONG_PIN);
    DUO_CHECK(duo__p1_sign_nonce_wiped(sr.p1));
    DUO_CHECK(duo__p2_sign_nonce_wiped(sr.p2));
    b2b_sign_run_free(&sr);
    so = sign_opts();
    so.check_mac = 0; /* the engine itself must see the bad c3 */
    so.hook = flip_c3;
    {
        int rc = b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so);
        DUO_CHECK(rc == DUO_E_PEER_CHEATED || rc == DUO_E_BAD_CIPHERTEXT);
    }
    DUO_CHECK(sr.fail_step == B2B_S_FINISH_REQ);
    DUO_CHECK(duo__p1_sign_nonce_wiped(sr.p1));
    b2b_sign_run_free(&sr);
    /* failure at the device: a bad PoK(k1) */
    so = sign_opts();
    so.hook = flip_r1_proof;
    DUO_EXPECT_ERR(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so), DUO_E_BAD_PROOF);
    DUO_CHECK(duo__p2_sign_nonce_wiped(sr.p2));
    b2b_sign_run_free(&sr);
}

/* ================= k1 fresh per signature ================= */

static void test_k1_fresh(void) {
    rec_rng rec;
    duo_p2_sign *p2 = NULL;
    duo_p1_sign *a = NULL, *b = NULL;
    duo_sign_start_req req;
    duo_sign_start_resp ra, rb;
    duo_p2_sign_params sp;
    int ia, ib;

    memset(&sp, 0, sizeof sp);
    sp.ec = b2b_ec();
    sp.key = g_er.k2;
    sp.pin = (const uint8_t *)"2468";
    sp.pin_len = 4;
    sp.digest = g_digest;
    DUO_REQUIRE(duo_p2_sign_new(&p2, &sp) == DUO_OK);
    DUO_CHECK_OK(duo_p2_sign_start(p2, &req));
    /* One SignStart request (a device may replay it byte for byte) opens two
     * cloud sessions: their R1 must differ. */
    rec_init(&rec);
    DUO_CHECK_OK(duo_p1_sign_new(&a, b2b_ec(), &rec.rng, g_er.k1));
    DUO_CHECK_OK(duo_p1_sign_new(&b, b2b_ec(), &rec.rng, g_er.k1));
    DUO_CHECK_OK(duo_p1_sign_start(a, &req, &ra));
    DUO_CHECK_OK(duo_p1_sign_start(b, &req, &rb));
    DUO_CHECK(memcmp(ra.r1, rb.r1, 33) != 0);
    /* and each k1 is a draw from the session's RNG (not derived from the
     * request, the key or the cloud nonce) */
    ia = rec_find_dlog(&rec, ra.r1);
    ib = rec_find_dlog(&rec, rb.r1);
    DUO_CHECK(ia >= 0 && ib >= 0 && ia != ib);
    duo_p1_sign_free(a);
    duo_p1_sign_free(b);
    duo_p2_sign_free(p2);
}

/* ================= c3: rho != 0 and a fresh r ================= */

typedef struct c3cap {
    uint8_t c3[2 * 384];
    size_t c3_len;
    uint8_t r2[33];
} c3cap;

static void cap_hook(void *ctx, int step, void *msg) {
    c3cap *c = ctx;
    if (step == B2B_S_FINISH_REQ) {
        const duo_sign_finish_req *m = msg;
        if (m->c3.len > sizeof c->c3) abort();
        memcpy(c->c3, m->c3.ptr, m->c3.len);
        c->c3_len = m->c3.len;
        memcpy(c->r2, m->r2, 33);
    }
}

/* out = the randomness R of a ciphertext c = (1 + N)^m R^N mod N^2, opened
 * with the factorisation: R = (c mod N)^(N^-1 mod phi(N)) mod N. */
static int open_rand(BIGNUM *out, const duo_paillier_priv *sk, const BIGNUM *c, BN_CTX *ctx) {
    const BIGNUM *n = duo_paillier_pub_n(duo_paillier_priv_pub(sk));
    BIGNUM *d = BN_new(), *cn = BN_new();
    int ok = d && cn && BN_mod_inverse(d, n, duo_paillier_priv_phi(sk), ctx) && BN_nnmod(cn, c, n, ctx) &&
             BN_mod_exp(out, cn, d, n, ctx);
    BN_free(d);
    BN_free(cn);
    return ok;
}

/* One honest signature; returns in s_int the decryption of c3 and in fresh
 * the opened fresh factor r of its randomness. */
static void sign_and_open(int precompute, BIGNUM *s_int, BIGNUM *fresh) {
    const duo_paillier_priv *sk = g_er.k1->paillier;
    const BIGNUM *n = duo_paillier_pub_n(duo_paillier_priv_pub(sk));
    const BIGNUM *q = duo_ec_order(b2b_ec());
    rec_rng rec;
    c3cap cap;
    b2b_sign_run sr;
    b2b_sign_opts so;
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *c3 = BN_new(), *big_r = BN_new(), *r0 = BN_new(), *v = BN_new(), *k2 = BN_new(), *rs = BN_new(),
           *t = BN_new();
    int ik2;

    DUO_REQUIRE(ctx && c3 && big_r && r0 && v && k2 && rs && t);
    rec_init(&rec);
    memset(&cap, 0, sizeof cap);
    so = sign_opts();
    so.rng2 = &rec.rng;
    so.precompute_rn = precompute;
    so.hook = cap_hook;
    so.hook_ctx = &cap;
    DUO_CHECK_OK(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
    DUO_REQUIRE(cap.c3_len == duo_paillier_ciphertext_bytes(duo_paillier_priv_pub(sk)));
    DUO_CHECK(BN_bin2bn(cap.c3, (int)cap.c3_len, c3) != NULL);
    DUO_CHECK_OK(duo_paillier_decrypt(sk, s_int, c3));
    /* v = k2^-1 r_sig mod q, k2 found among the device's draws */
    ik2 = rec_find_dlog(&rec, cap.r2);
    DUO_REQUIRE(ik2 >= 0);
    DUO_CHECK(BN_bin2bn(rec.draws[ik2], 32, k2) && BN_bin2bn(sr.sig, 32, rs) && BN_mod_inverse(v, k2, q, ctx) &&
              BN_mod_mul(v, v, rs, q, ctx));
    /* R = r * r0^v: r = R * r0^-v mod N */
    DUO_CHECK(open_rand(big_r, sk, c3, ctx) && open_rand(r0, sk, g_er.k2->ckey, ctx));
    DUO_CHECK(BN_mod_exp(t, r0, v, n, ctx) && BN_mod_inverse(t, t, n, ctx) && BN_mod_mul(fresh, big_r, t, n, ctx));
    /* sanity of the opening: c3 == Enc(s_int; R) */
    {
        BIGNUM *rn = BN_new(), *cc = BN_new();
        DUO_CHECK(rn && cc && duo_paillier_rn_from_r(duo_paillier_priv_pub(sk), rn, big_r) == DUO_OK &&
                  duo_paillier_encrypt(duo_paillier_priv_pub(sk), cc, s_int, rn) == DUO_OK && BN_cmp(cc, c3) == 0);
        BN_free(rn);
        BN_free(cc);
    }
    b2b_sign_run_free(&sr);
    BN_free(c3);
    BN_free(big_r);
    BN_free(r0);
    BN_free(v);
    BN_free(k2);
    BN_free(rs);
    BN_free(t);
    BN_CTX_free(ctx);
}

static void test_c3_rho_and_fresh_r(void) {
    const BIGNUM *q = duo_ec_order(b2b_ec());
    BN_CTX *ctx = BN_CTX_new();
    BIGNUM *q2 = BN_new(), *s[4], *r[4];
    int i, j;
    DUO_REQUIRE(ctx && q2 && BN_sqr(q2, q, ctx));
    for (i = 0; i < 4; i++) {
        s[i] = BN_new();
        r[i] = BN_new();
        DUO_REQUIRE(s[i] && r[i]);
        /* two with a fresh r^N computed in the session, two precomputed */
        sign_and_open(i >= 2, s[i], r[i]);
        /* s' = rho q + u + v x1 with u, v < q and x1 < q/3: without rho it
         * would be < q^2; with rho uniform in [0, q^2) it is >= q^2 except
         * with probability 1/q */
        DUO_CHECK(BN_cmp(s[i], q2) >= 0);
        DUO_CHECK(!BN_is_one(r[i]));
    }
    for (i = 0; i < 4; i++) {
        for (j = i + 1; j < 4; j++) DUO_CHECK(BN_cmp(r[i], r[j]) != 0);
    }
    for (i = 0; i < 4; i++) {
        BN_free(s[i]);
        BN_free(r[i]);
    }
    BN_free(q2);
    BN_CTX_free(ctx);
}

int main(void) {
    b2b_enroll_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.bits = 2048;
    eo.pin = "2468";
    if (b2b_enroll(&g_er, &eo) != DUO_OK) {
        fprintf(stderr, "honest enrolment failed\n");
        return 1;
    }
    DUO_RUN(test_nonces_wiped);
    DUO_RUN(test_k1_fresh);
    DUO_RUN(test_c3_rho_and_fresh_r);
    b2b_enroll_run_free(&g_er);
    b2b_env_free();
    return duo_test_finish();
}
