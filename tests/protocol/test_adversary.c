/* Malicious cloud, malicious device, PIN masking and the exhaustive state
 * tables of the four sessions. */
#include "b2b.h"
#include "p2_internal.h"

/* ================= malicious cloud ================= */
typedef struct mc {
    int mode;
    uint8_t buf[1024];
    duo_paillier_priv *sk; /* the test's copy of the cloud's key */
    const duo_p2_enroll *p2;
    int j;
} mc;

static void mc_hook(void *ctx, int step, void *msg) {
    mc *t = ctx;
    if (step == B2B_E_START_REQ && t->mode == 0) {
        ((duo_enroll_start_req *)msg)->paillier_bits = 2048; /* cloud ignores the device's size */
    }
    if (step != B2B_E_SHARE_RESP) return;
    duo_enroll_key_share_resp *m = msg;
    if (t->mode == 1) {
        /* An odd multiple of 65521 (largest prime below 2^16) of 2048 bits. */
        BIGNUM *n = BN_bin2bn(m->paillier_n.ptr, (int)m->paillier_n.len, NULL), *rem = BN_new();
        BN_CTX *bc = BN_CTX_new();
        BN_set_word(rem, 2 * 65521);
        BN_mod(rem, n, rem, bc);
        BN_sub(n, n, rem);
        BN_add_word(n, 65521);
        BN_bn2binpad(n, t->buf, 256);
        m->paillier_n.ptr = t->buf;
        BN_free(n);
        BN_free(rem);
        BN_CTX_free(bc);
    } else if (t->mode == 2) {
        /* N = p*q with p = 1 mod 4: not a Blum integer (proofs from the real key). */
        BIGNUM *p = BN_new(), *q = BN_new(), *n = BN_new(), *add = BN_new(), *rem = BN_new();
        BN_CTX *bc = BN_CTX_new();
        BN_set_word(add, 4);
        BN_set_word(rem, 1);
        do {
            BN_generate_prime_ex(p, 1024, 0, add, rem, NULL);
            BN_set_word(rem, 3);
            BN_generate_prime_ex(q, 1024, 0, add, rem, NULL);
            BN_set_word(rem, 1);
            BN_mul(n, p, q, bc);
        } while (BN_num_bits(n) != 2048);
        BN_bn2binpad(n, t->buf, 256);
        m->paillier_n.ptr = t->buf;
        BN_free(p);
        BN_free(q);
        BN_free(n);
        BN_free(add);
        BN_free(rem);
        BN_CTX_free(bc);
    } else if (t->mode == 3) {
        /* ckey = Enc(x1 + j*q) with a range proof made by the honest prover. */
        const duo_paillier_pub *pk = duo_paillier_priv_pub(t->sk);
        BIGNUM *c = BN_new(), *x = BN_new(), *r = BN_new(), *rn = BN_new(), *c2 = BN_new();
        duo_binding bind;
        BN_CTX *bc = BN_CTX_new();
        size_t ctlen = duo_paillier_ciphertext_bytes(pk);
        if (duo_paillier_ciphertext_parse(pk, c, m->ckey.ptr, m->ckey.len) != DUO_OK ||
            duo_paillier_decrypt(t->sk, x, c) != DUO_OK)
            abort();
        {
            BIGNUM *jq = BN_dup(duo_ec_order(b2b_ec()));
            BN_mul_word(jq, (BN_ULONG)t->j);
            BN_add(x, x, jq);
            BN_free(jq);
        }
        if (duo_paillier_random_unit(pk, r, NULL) != DUO_OK || duo_paillier_rn_from_r(pk, rn, r) != DUO_OK ||
            duo_paillier_encrypt(pk, c2, x, rn) != DUO_OK)
            abort();
        memcpy(bind.sid, duo_p2_enroll_sid(t->p2), 32);
        bind.role = DUO_ROLE_CLOUD;
        if (duo_paillier_ciphertext_serialize(pk, (uint8_t *)(uintptr_t)m->ckey.ptr, ctlen, c2) != DUO_OK) abort();
        /* The prover may refuse a false statement; if it produces a proof, it must not verify. */
        t->j = duo_zk_range_prove(b2b_ec(), t->sk, &bind, c2, x, r, NULL, (uint8_t *)(uintptr_t)m->proof_range.ptr,
                                  m->proof_range.len) == DUO_OK
                   ? 100 + t->j
                   : t->j;
        BN_free(c);
        BN_free(x);
        BN_free(r);
        BN_free(rn);
        BN_free(c2);
        BN_CTX_free(bc);
    } else if (t->mode == 4) {
        /* Forged PoK(x1): a proof for Q1 bound to another session, with a
         * matching commitment sent in round 1 (patched below). */
    }
}

static void test_malicious_cloud(void) {
    static const int want[] = {DUO_E_BAD_MODULUS, DUO_E_BAD_MODULUS, DUO_E_BAD_PROOF};
    int mode;
    for (mode = 0; mode < 3; mode++) {
        mc t;
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        memset(&t, 0, sizeof t);
        t.mode = mode;
        memset(&eo, 0, sizeof eo);
        eo.bits = mode == 0 ? 3072 : 2048; /* mode 0: device wants 3072, cloud sends 2048 */
        eo.p1_bits = mode == 0 ? 2048 : 0;
        eo.pin = "1111";
        eo.hook = mc_hook;
        eo.hook_ctx = &t;
        DUO_EXPECT_ERR(b2b_enroll(&er, &eo), want[mode]);
        DUO_CHECK(er.fail_step == B2B_E_SHARE_RESP);
        b2b_enroll_run_free(&er);
    }
}

/* ckey = Enc(x1 + j*q), j = 1..3: the range proof must fail. */
typedef struct ckctx {
    mc m;
    b2b_enroll_run *er;
} ckctx;
static void ck_hook(void *ctx, int step, void *msg) {
    ckctx *c = ctx;
    c->m.p2 = c->er->p2;
    mc_hook(&c->m, step, msg);
}

static void test_ckey_out_of_range(void) {
    int j;
    for (j = 1; j <= 3; j++) {
        ckctx c;
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        memset(&c, 0, sizeof c);
        c.m.mode = 3;
        c.m.j = j;
        c.m.sk = b2b_paillier(2048); /* same primes as the cloud's key */
        c.er = &er;
        memset(&eo, 0, sizeof eo);
        eo.bits = 2048;
        eo.pin = "1111";
        eo.hook = ck_hook;
        eo.hook_ctx = &c;
        DUO_EXPECT_ERR(b2b_enroll(&er, &eo), DUO_E_BAD_PROOF);
        DUO_CHECK(er.fail_step == B2B_E_SHARE_RESP);
        duo_paillier_priv_free(c.m.sk);
        b2b_enroll_run_free(&er);
    }
}

/* Wrong PDL opening: the cloud commits to a wrong alpha*G and opens it
 * consistently; and a forged PoK(x1) with a consistent commitment. */
typedef struct pctx {
    int mode;
    b2b_enroll_run *er;
    uint8_t pt[33], rand[32], proof[65];
} pctx;
static void pdl_hook(void *ctx, int step, void *msg) {
    pctx *t = ctx;
    duo_binding bind;
    duo_transcript tr;
    memcpy(bind.sid, duo_p2_enroll_sid(t->er->p2), 32);
    bind.role = DUO_ROLE_CLOUD;
    memset(t->rand, 0x33, 32);
    if (t->mode == 0 && step == B2B_E_PDL_RESP) {
        b2b_other_point(t->pt, 5);
        if (duo_commit_begin(&tr, "pdl-alpha", &bind) != DUO_OK) abort();
        duo_transcript_bytes(&tr, "alphaG", t->pt, 33);
        if (duo_commit_finish(&tr, t->rand, ((duo_enroll_pdl_challenge_resp *)msg)->alpha_commitment) != DUO_OK)
            abort();
    } else if (t->mode == 0 && step == B2B_E_OPEN_RESP) {
        memcpy(((duo_enroll_pdl_open_resp *)msg)->alpha_point, t->pt, 33);
        memcpy(((duo_enroll_pdl_open_resp *)msg)->alpha_opening, t->rand, 32);
    } else if (t->mode == 1 && step == B2B_E_START_RESP) {
        /* Commit now to (Q1', forged proof); sid is known to the device once
         * it processes this message, so compute it the same way. */
        duo_enroll_start_resp *m = msg;
        duo_scalar x;
        duo_point X;
        duo_dlog_proof pf;
        duo_binding other;
        uint8_t sid[32];
        if (duo__sid_enroll(sid, m->key_id, t->er->m0.device_nonce, m->cloud_nonce) != DUO_OK) abort();
        memcpy(bind.sid, sid, 32);
        if (duo_scalar_random(b2b_ec(), &x, NULL) != DUO_OK || duo_point_mul_base(b2b_ec(), &X, &x) != DUO_OK) abort();
        other = bind;
        other.sid[0] ^= 1; /* valid proof, wrong session: a replayed/forged PoK */
        if (duo_dlog_prove(b2b_ec(), &pf, &x, &X, &other, "Q1", NULL) != DUO_OK) abort();
        duo_point_serialize(b2b_ec(), t->pt, &X);
        duo_dlog_proof_serialize(b2b_ec(), t->proof, &pf);
        if (duo_commit_begin(&tr, "Q1", &bind) != DUO_OK) abort();
        duo_transcript_bytes(&tr, "Q1", t->pt, 33);
        duo_transcript_bytes(&tr, "proof", t->proof, 65);
        if (duo_commit_finish(&tr, t->rand, m->q1_commitment) != DUO_OK) abort();
    } else if (t->mode == 1 && step == B2B_E_SHARE_RESP) {
        duo_enroll_key_share_resp *m = msg;
        memcpy(m->q1, t->pt, 33);
        memcpy(m->q1_proof, t->proof, 65);
        memcpy(m->q1_opening, t->rand, 32);
    }
}

static void test_bad_pdl_and_pok(void) {
    static const int want[] = {DUO_E_PDL_MISMATCH, DUO_E_BAD_PROOF};
    static const int at[] = {B2B_E_OPEN_RESP, B2B_E_SHARE_RESP};
    int mode;
    for (mode = 0; mode < 2; mode++) {
        pctx t;
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        duo_p2_key *k = NULL;
        memset(&t, 0, sizeof t);
        t.mode = mode;
        t.er = &er;
        memset(&eo, 0, sizeof eo);
        eo.bits = 2048;
        eo.pin = "1111";
        eo.hook = pdl_hook;
        eo.hook_ctx = &t;
        DUO_EXPECT_ERR(b2b_enroll(&er, &eo), want[mode]);
        DUO_CHECK(er.fail_step == at[mode]);
        DUO_CHECK(duo_p2_enroll_take_key(er.p2, &k) != DUO_OK && k == NULL);
        b2b_enroll_run_free(&er);
    }
}

/* A device whose c' decrypts to 0 mod q (Enc(j*q), j = 0, 1, 7): the cloud
 * cannot form alpha*G. It is the device's fault, so the cloud answers
 * PDL_MISMATCH (issue 13 item 12: it used to answer INTERNAL), reveals nothing
 * (no commitment) and the session is failed. */
typedef struct zctx {
    unsigned long j;
    b2b_enroll_run *er;
} zctx;
static void zero_alpha_hook(void *ctx, int step, void *msg) {
    zctx *t = ctx;
    duo_enroll_pdl_challenge_req *m = msg;
    duo_paillier_pub *pk = NULL;
    BIGNUM *pt = BN_new(), *rn = BN_new(), *c = BN_new();
    if (step != B2B_E_PDL_REQ) {
        BN_free(pt);
        BN_free(rn);
        BN_free(c);
        return;
    }
    if (pt == NULL || rn == NULL || c == NULL ||
        duo_paillier_pub_parse(&pk, t->er->m3.paillier_n.ptr, t->er->m3.paillier_n.len, 2048) != DUO_OK ||
        BN_copy(pt, duo_ec_order(b2b_ec())) == NULL || !BN_mul_word(pt, (BN_ULONG)t->j) ||
        duo_paillier_rn(pk, rn, NULL) != DUO_OK || duo_paillier_encrypt(pk, c, pt, rn) != DUO_OK ||
        duo_paillier_ciphertext_serialize(pk, (uint8_t *)(uintptr_t)m->c_prime.ptr, m->c_prime.len, c) != DUO_OK)
        abort();
    duo_paillier_pub_free(pk);
    BN_free(pt);
    BN_free(rn);
    BN_free(c);
}

static void test_pdl_alpha_zero(void) {
    static const unsigned long js[] = {0, 1, 7};
    size_t i;
    for (i = 0; i < sizeof js / sizeof js[0]; i++) {
        zctx t;
        b2b_enroll_run er;
        b2b_enroll_opts eo;
        duo_enroll_pdl_open_resp o;
        memset(&t, 0, sizeof t);
        t.j = js[i];
        t.er = &er;
        memset(&eo, 0, sizeof eo);
        eo.bits = 2048;
        eo.pin = "1111";
        eo.hook = zero_alpha_hook;
        eo.hook_ctx = &t;
        DUO_EXPECT_ERR(b2b_enroll(&er, &eo), DUO_E_PDL_MISMATCH);
        DUO_CHECK(er.fail_step == B2B_E_PDL_REQ);
        DUO_CHECK(duo_ct_is_zero(er.m5.alpha_commitment, sizeof er.m5.alpha_commitment));
        DUO_CHECK(duo_err_category(DUO_E_PDL_MISMATCH) == DUO_CAT_CRYPTO &&
                  duo_err_grpc_status(DUO_E_PDL_MISMATCH) == 3);
        /* sticky: the session only fails from here on */
        memset(&o, 0, sizeof o);
        DUO_EXPECT_ERR(duo_p1_enroll_pdl_open(er.p1, &er.m6, &o), DUO_E_SESSION_FAILED);
        b2b_enroll_run_free(&er);
    }
}

/* ================= malicious device and PIN ================= */
static b2b_enroll_run g_er;

/* A hand-built device round: valid PIN proof for the real x2, but c3 built
 * from x2 + delta. delta = 0 is the control (must sign). */
static int evil_sign(int delta, uint8_t sig[64]) {
    const duo_ec *ec = b2b_ec();
    const duo_p2_key *k2 = g_er.k2;
    duo_p1_sign *s = NULL;
    duo_sign_start_req req;
    duo_sign_start_resp resp;
    duo_sign_finish_req fin;
    duo_sign_finish_resp fresp;
    duo_scalar k, x2, xw, kinv, m, v, u, t1, one;
    duo_point R2, R1, R, X;
    duo_dlog_proof pf;
    duo_binding bind;
    duo_transcript tr;
    uint8_t presid[32], rand[32], digest[32], buf[512];
    BIGNUM *rho = BN_new(), *q2 = BN_new(), *pt = BN_new(), *ub = BN_new(), *vb = BN_new(), *rn = BN_new(),
           *e1 = BN_new(), *e2 = BN_new(), *c3 = BN_new();
    BN_CTX *bc = BN_CTX_new();
    int rc;

    memset(digest, 0x42, 32);
    memset(&req, 0, sizeof req);
    memset(&fin, 0, sizeof fin);
    if (duo_rng_bytes(NULL, req.device_nonce, 32) != DUO_OK || duo_scalar_random(ec, &k, NULL) != DUO_OK ||
        duo_point_mul_base(ec, &R2, &k) != DUO_OK)
        abort();
    memcpy(req.key_id, k2->key_id, 16);
    memcpy(req.digest, digest, 32);
    if (duo__presid_sign(presid, req.key_id, req.device_nonce, digest) != DUO_OK) abort();
    memcpy(bind.sid, presid, 32);
    bind.role = DUO_ROLE_DEVICE;
    memset(rand, 7, 32);
    duo_point_serialize(ec, fin.r2, &R2);
    if (duo_commit_begin(&tr, "R2", &bind) != DUO_OK) abort();
    duo_transcript_bytes(&tr, "R2", fin.r2, 33);
    if (duo_commit_finish(&tr, rand, req.r2_commitment) != DUO_OK) abort();
    if (duo_p1_sign_new(&s, ec, NULL, g_er.k1) != DUO_OK || duo_p1_sign_start(s, &req, &resp) != DUO_OK) abort();
    if (duo__sid_sign(bind.sid, req.key_id, req.device_nonce, resp.cloud_nonce, digest, req.r2_commitment) != DUO_OK ||
        duo_point_parse(ec, &R1, resp.r1, 33) != DUO_OK || duo_point_mul(ec, &R, &R1, &k) != DUO_OK)
        abort();
    memcpy(fin.sid, bind.sid, 32);
    memcpy(fin.r2_opening, rand, 32);
    /* The real x2 (PIN proof is valid). */
    if (duo__p2_pin_unmask(ec, &x2, &k2->x2_masked, (const uint8_t *)"2468", 4, k2->pin_salt) != DUO_OK ||
        duo_point_mul_base(ec, &X, &x2) != DUO_OK || duo_dlog_prove(ec, &pf, &x2, &X, &bind, "pin", NULL) != DUO_OK)
        abort();
    duo_dlog_proof_serialize(ec, fin.pin_proof, &pf);
    if (duo_dlog_prove(ec, &pf, &k, &R2, &bind, "R2", NULL) != DUO_OK) abort();
    duo_dlog_proof_serialize(ec, fin.r2_proof, &pf);
    xw = x2;
    if (delta) {
        memset(one.b, 0, 32);
        one.b[31] = (uint8_t)delta;
        if (duo_scalar_add(ec, &xw, &x2, &one) != DUO_OK) abort();
    }
    {
        duo_scalar rx;
        if (duo_point_x_mod_q(ec, &rx, &R) != DUO_OK || duo_scalar_reduce32(ec, &m, digest) != DUO_OK ||
            duo_scalar_inverse(ec, &kinv, &k) != DUO_OK || duo_scalar_mul(ec, &v, &kinv, &rx) != DUO_OK ||
            duo_scalar_mul(ec, &t1, &rx, &xw) != DUO_OK || duo_scalar_add(ec, &t1, &t1, &m) != DUO_OK ||
            duo_scalar_mul(ec, &u, &kinv, &t1) != DUO_OK)
            abort();
    }
    BN_sqr(q2, duo_ec_order(ec), bc);
    if (duo_bn_random_below(rho, q2, NULL) != DUO_OK) abort();
    BN_mul(pt, rho, duo_ec_order(ec), bc);
    BN_bin2bn(u.b, 32, ub);
    BN_add(pt, pt, ub);
    BN_bin2bn(v.b, 32, vb);
    if (duo_paillier_rn(k2->paillier, rn, NULL) != DUO_OK || duo_paillier_encrypt(k2->paillier, e1, pt, rn) != DUO_OK ||
        duo_paillier_mul(k2->paillier, e2, k2->ckey, vb) != DUO_OK ||
        duo_paillier_add(k2->paillier, c3, e1, e2) != DUO_OK ||
        duo_paillier_ciphertext_serialize(k2->paillier, buf, duo_paillier_ciphertext_bytes(k2->paillier), c3) != DUO_OK)
        abort();
    fin.c3.ptr = buf;
    fin.c3.len = duo_paillier_ciphertext_bytes(k2->paillier);
    memset(&fresp, 0, sizeof fresp);
    rc = duo_p1_sign_finish(s, &fin, &fresp);
    memcpy(sig, fresp.signature, 64);
    duo_p1_sign_free(s);
    BN_free(rho);
    BN_free(q2);
    BN_free(pt);
    BN_free(ub);
    BN_free(vb);
    BN_free(rn);
    BN_free(e1);
    BN_free(e2);
    BN_free(c3);
    BN_CTX_free(bc);
    return rc;
}

static void test_malicious_device(void) {
    uint8_t sig[64];
    unsigned long d0 = duo_paillier_priv_decryptions(g_er.k1->paillier);
    uint8_t digest[32];
    memset(digest, 0x42, 32);
    DUO_CHECK_OK(evil_sign(0, sig)); /* control: the hand-built device is correct */
    DUO_CHECK_OK(duo_ecdsa_verify(b2b_ec(), sig, digest, &g_er.k1->q));
    DUO_EXPECT_ERR(evil_sign(1, sig), DUO_E_PEER_CHEATED);
    DUO_CHECK(duo_ct_is_zero(sig, 64));
    DUO_EXPECT_ERR(evil_sign(3, sig), DUO_E_PEER_CHEATED);
    DUO_CHECK(duo_ct_is_zero(sig, 64));
    DUO_CHECK(duo_paillier_priv_decryptions(g_er.k1->paillier) == d0 + 3);
}

static int sign_with(const duo_p2_key *k2, const char *pin) {
    b2b_sign_run sr;
    b2b_sign_opts so;
    uint8_t digest[32] = {3};
    int rc;
    memset(&so, 0, sizeof so);
    so.pin = pin;
    so.digest = digest;
    so.check_mac = 1;
    rc = b2b_sign(&sr, g_er.k1, k2, g_er.cloud_device_secret, &so);
    if (rc != DUO_OK) DUO_CHECK(duo_ct_is_zero(sr.sig, 64) && sr.fail_step == B2B_S_FINISH_REQ);
    b2b_sign_run_free(&sr);
    return rc;
}

static void test_pin(void) {
    unsigned long d0 = duo_paillier_priv_decryptions(g_er.k1->paillier);
    duo_scalar x2, m1, m2;
    uint8_t salt2[DUO_PIN_SALT_BYTES];

    DUO_EXPECT_ERR(sign_with(g_er.k2, "1357"), DUO_E_WRONG_PIN);
    DUO_CHECK(duo_paillier_priv_decryptions(g_er.k1->paillier) == d0); /* nothing decrypted */
    DUO_CHECK_OK(sign_with(g_er.k2, "2468"));
    /* The stored share is masked: it differs from x2 (x2*G != Q2), and two
     * salts give two different masks. */
    DUO_CHECK_OK(duo__p2_pin_unmask(b2b_ec(), &x2, &g_er.k2->x2_masked, (const uint8_t *)"2468", 4, g_er.k2->pin_salt));
    {
        duo_point X, Xm;
        DUO_CHECK_OK(duo_point_mul_base(b2b_ec(), &X, &x2));
        DUO_CHECK(duo_point_eq_var(b2b_ec(), &X, &g_er.k1->q2));
        DUO_CHECK_OK(duo_point_mul_base(b2b_ec(), &Xm, &g_er.k2->x2_masked));
        DUO_CHECK(!duo_point_eq_var(b2b_ec(), &Xm, &g_er.k1->q2));
    }
    memcpy(salt2, g_er.k2->pin_salt, sizeof salt2);
    salt2[0] ^= 1;
    DUO_CHECK_OK(duo__p2_pin_mask(b2b_ec(), &m1, &x2, (const uint8_t *)"2468", 4, g_er.k2->pin_salt));
    DUO_CHECK_OK(duo__p2_pin_mask(b2b_ec(), &m2, &x2, (const uint8_t *)"2468", 4, salt2));
    DUO_CHECK(memcmp(m1.b, g_er.k2->x2_masked.b, 32) == 0);
    DUO_CHECK(memcmp(m1.b, m2.b, 32) != 0);
    /* change_pin: new PIN works, old PIN is a wrong PIN at the cloud. */
    {
        uint8_t old_salt[DUO_PIN_SALT_BYTES];
        memcpy(old_salt, g_er.k2->pin_salt, sizeof old_salt);
        DUO_CHECK_OK(
            duo_p2_key_change_pin(b2b_ec(), g_er.k2, (const uint8_t *)"2468", 4, (const uint8_t *)"97531", 5, NULL));
        DUO_CHECK(memcmp(old_salt, g_er.k2->pin_salt, sizeof old_salt) != 0);
        DUO_CHECK(memcmp(m1.b, g_er.k2->x2_masked.b, 32) != 0);
    }
    DUO_CHECK_OK(sign_with(g_er.k2, "97531"));
    d0 = duo_paillier_priv_decryptions(g_er.k1->paillier);
    DUO_EXPECT_ERR(sign_with(g_er.k2, "2468"), DUO_E_WRONG_PIN);
    DUO_CHECK(duo_paillier_priv_decryptions(g_er.k1->paillier) == d0);
    DUO_CHECK_OK(
        duo_p2_key_change_pin(b2b_ec(), g_er.k2, (const uint8_t *)"97531", 5, (const uint8_t *)"2468", 4, NULL));
    DUO_CHECK_OK(sign_with(g_er.k2, "2468"));
}

/* ================= exhaustive state tables ================= */
/* Calls each entry point with zeroed messages: the state check comes first. */
static int p1e_call(duo_p1_enroll *s, int c) {
    static duo_enroll_start_req a;
    static duo_enroll_start_resp b;
    static duo_enroll_key_share_req cc;
    static duo_enroll_key_share_resp d;
    static duo_enroll_pdl_challenge_req e;
    static duo_enroll_pdl_challenge_resp f;
    static duo_enroll_pdl_open_req g;
    static duo_enroll_pdl_open_resp h;
    static duo_enroll_confirm_req i;
    duo_p1_key *k = NULL;
    uint8_t ds[32];
    int r;
    a.paillier_bits = 2048;
    switch (c) {
        case 0:
            return duo_p1_enroll_start(s, &a, &b);
        case 1:
            return duo_p1_enroll_key_share(s, &cc, &d);
        case 2:
            return duo_p1_enroll_pdl_challenge(s, &e, &f);
        case 3:
            return duo_p1_enroll_pdl_open(s, &g, &h);
        case 4:
            return duo_p1_enroll_confirm(s, &i);
        default:
            r = duo_p1_enroll_take_key(s, &k, ds);
            duo_p1_key_free(k);
            return r;
    }
}
static int p2e_call(duo_p2_enroll *s, int c) {
    static duo_enroll_start_req a;
    static duo_enroll_start_resp b;
    static duo_enroll_key_share_req cc;
    static duo_enroll_key_share_resp d;
    static duo_enroll_pdl_challenge_req e;
    static duo_enroll_pdl_challenge_resp f;
    static duo_enroll_pdl_open_req g;
    static duo_enroll_pdl_open_resp h;
    static duo_enroll_confirm_req i;
    duo_p2_key *k = NULL;
    int r;
    switch (c) {
        case 0:
            return duo_p2_enroll_start(s, &a);
        case 1:
            return duo_p2_enroll_on_start(s, &b, &cc);
        case 2:
            r = duo_p2_enroll_on_key_share(s, &d, &e);
            duo_wire_free_enroll_pdl_challenge_req(&e);
            return r;
        case 3:
            return duo_p2_enroll_on_pdl_challenge(s, &f, &g);
        case 4:
            return duo_p2_enroll_on_pdl_open(s, &h);
        case 5:
            r = duo_p2_enroll_take_key(s, &k);
            duo_p2_key_free(k);
            return r;
        default:
            return duo_p2_enroll_confirm(s, &i);
    }
}

/* P1 enrolment: states NEW, STARTED, SHARED, CHALLENGED, OPENED, CONFIRMED,
 * TAKEN; call k (start, key_share, pdl_challenge, pdl_open, confirm,
 * take_key) is legal only in state k. */
static void test_state_enroll(void) {
    static const int stops[] = {0, 1, 3, 5, 7, 9, B2B_E_STEPS};
    int st, c;
    for (st = 0; st < 7; st++) {
        for (c = 0; c < 6; c++) {
            b2b_enroll_run er;
            if (c == st) continue;
            if (b2b_quick() && st >= 2 && c != 0) continue;
            if (stops[st] == 0) {
                duo_p1_enroll_params pp = {b2b_ec(), NULL, 2048, NULL, NULL};
                memset(&er, 0, sizeof er);
                DUO_CHECK_OK(duo_p1_enroll_new(&er.p1, &pp));
            } else {
                DUO_CHECK(b2b_enroll(&er, &(b2b_enroll_opts){.bits = 2048, .pin = "1", .stop_after = stops[st]}) ==
                          DUO_OK);
            }
            DUO_EXPECT_ERR(p1e_call(er.p1, c), DUO_E_PROTO_STATE);
            for (int c2 = 0; c2 < 6; c2++) DUO_EXPECT_ERR(p1e_call(er.p1, c2), DUO_E_SESSION_FAILED);
            b2b_enroll_run_free(&er);
        }
    }
}

/* P2 enrolment: legal call per state; everything else PROTO_STATE, then sticky. */
static void test_state_enroll_p2(void) {
    /* stop_after -> P2 state: 0 calls -> NEW; stop 1 -> STARTED; 2 -> SHARE_SENT;
     * 4 -> PDL_SENT; 6 -> PDL_OPENED; 8 -> DONE (key taken, confirmed: the
     * driver takes and confirms before delivering message 8). */
    static const int stops[] = {0, 1, 2, 4, 6, 8};
    static const int legal[] = {0, 1, 2, 3, 4, -1};
    int i, c;
    for (i = 0; i < 6; i++) {
        for (c = 0; c < 7; c++) {
            b2b_enroll_run er;
            if (c == legal[i]) continue;
            if (b2b_quick() && i >= 3 && c != 0) continue;
            if (stops[i] == 0) {
                duo_p2_enroll_params dp = {b2b_ec(), NULL, 2048, (const uint8_t *)"t", 1, (const uint8_t *)"1", 1};
                memset(&er, 0, sizeof er);
                DUO_CHECK_OK(duo_p2_enroll_new(&er.p2, &dp));
            } else {
                DUO_CHECK(b2b_enroll(&er, &(b2b_enroll_opts){.bits = 2048, .pin = "1", .stop_after = stops[i]}) ==
                          DUO_OK);
            }
            DUO_EXPECT_ERR(p2e_call(er.p2, c), DUO_E_PROTO_STATE);
            for (int c2 = 0; c2 < 7; c2++) DUO_EXPECT_ERR(p2e_call(er.p2, c2), DUO_E_SESSION_FAILED);
            b2b_enroll_run_free(&er);
        }
    }
}

static void test_state_sign(void) {
    /* P1: NEW (start legal), STARTED (finish legal), DONE (nothing legal). */
    static const int stops[] = {1, 2, 0};
    int i, c;
    uint8_t digest[32] = {5};
    for (i = 0; i < 3; i++) {
        for (c = 0; c < 2; c++) {
            b2b_sign_run sr;
            b2b_sign_opts so;
            duo_sign_start_req a;
            duo_sign_start_resp b;
            duo_sign_finish_req f;
            duo_sign_finish_resp g;
            if (c == i) continue;
            memset(&so, 0, sizeof so);
            so.pin = "2468";
            so.digest = digest;
            so.stop_after = stops[i] == 1 ? B2B_S_START_RESP : (stops[i] == 2 ? B2B_S_FINISH_REQ : 0);
            memset(&a, 0, sizeof a);
            memset(&f, 0, sizeof f);
            if (i == 0) {
                memset(&sr, 0, sizeof sr);
                DUO_CHECK_OK(duo_p1_sign_new(&sr.p1, b2b_ec(), NULL, g_er.k1));
            } else {
                DUO_CHECK_OK(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
            }
            DUO_EXPECT_ERR(c == 0 ? duo_p1_sign_start(sr.p1, &a, &b) : duo_p1_sign_finish(sr.p1, &f, &g),
                           DUO_E_PROTO_STATE);
            DUO_EXPECT_ERR(duo_p1_sign_start(sr.p1, &a, &b), DUO_E_SESSION_FAILED);
            DUO_EXPECT_ERR(duo_p1_sign_finish(sr.p1, &f, &g), DUO_E_SESSION_FAILED);
            b2b_sign_run_free(&sr);
        }
    }
    /* P2: NEW, STARTED, FINISH_SENT, DONE with calls start, on_start, on_finish. */
    {
        static const int p2stops[] = {-1, B2B_S_START_RESP, B2B_S_FINISH_RESP, 0};
        for (i = 0; i < 4; i++) {
            for (c = 0; c < 3; c++) {
                b2b_sign_run sr;
                b2b_sign_opts so;
                duo_sign_start_req a;
                duo_sign_start_resp b;
                duo_sign_finish_req f;
                duo_sign_finish_resp g;
                uint8_t sig[64];
                if (c == i) continue;
                memset(&so, 0, sizeof so);
                so.pin = "2468";
                so.digest = digest;
                so.stop_after = p2stops[i] < 0 ? 0 : p2stops[i];
                memset(&b, 0, sizeof b);
                memset(&g, 0, sizeof g);
                if (i == 0) {
                    duo_p2_sign_params sp = {b2b_ec(), NULL, g_er.k2, (const uint8_t *)"2468", 4, digest, NULL, NULL,
                                             0,        NULL, 0};
                    memset(&sr, 0, sizeof sr);
                    DUO_CHECK_OK(duo_p2_sign_new(&sr.p2, &sp));
                } else {
                    DUO_CHECK_OK(b2b_sign(&sr, g_er.k1, g_er.k2, g_er.cloud_device_secret, &so));
                }
#define P2CALL(x)                                     \
    ((x) == 0   ? duo_p2_sign_start(sr.p2, &a)        \
     : (x) == 1 ? duo_p2_sign_on_start(sr.p2, &b, &f) \
                : duo_p2_sign_on_finish(sr.p2, &g, sig))
                memset(&f, 0, sizeof f);
                DUO_EXPECT_ERR(P2CALL(c), DUO_E_PROTO_STATE);
                for (int c2 = 0; c2 < 3; c2++) DUO_EXPECT_ERR(P2CALL(c2), DUO_E_SESSION_FAILED);
#undef P2CALL
                b2b_sign_run_free(&sr);
            }
        }
    }
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
    DUO_RUN(test_malicious_device);
    DUO_RUN(test_pin);
    DUO_RUN(test_state_sign);
    DUO_RUN(test_malicious_cloud);
    DUO_RUN(test_ckey_out_of_range);
    DUO_RUN(test_bad_pdl_and_pok);
    DUO_RUN(test_pdl_alpha_zero);
    DUO_RUN(test_state_enroll_p2);
    DUO_RUN(test_state_enroll);
    b2b_enroll_run_free(&g_er);
    b2b_env_free();
    return duo_test_finish();
}
