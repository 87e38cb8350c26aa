/* L_P range proof v2, the verifier (zk_range.c describes the proof and the
 * wire layout; docs/PROTOCOL.md "Range proof v2" its soundness). Public
 * inputs only: variable-time arithmetic throughout. */
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "duosign/mem.h"
#include "zk_range_internal.h"

/* ----------------------------------------------------------- verifier */

/* The commitment equations P + c C = Com(m; s), c in {0, 1, e}: checked one
 * by one (batch = 0), or gathered as sum_i k_i (P_i + c_i C - Com(m_i; s_i))
 * = 0 with random 128-bit k_i (batch = 1): a wrong equation survives with
 * probability <= 2^-128 (n is prime: k_i must hit one value). */
typedef struct eqs {
    int batch;
    const duo_rng *rng;
    const EC_POINT *c; /* C */
    size_t cnt;
    const EC_POINT *pts[2u * REPS + 2u];
    BIGNUM *k[2u * REPS + 2u];
    BIGNUM *gs, *hs, *cs; /* -sum k m, -sum k s, sum k c (mod n) */
    BIGNUM *tmp;
    EC_POINT *t1, *t2;
    BN_CTX *ctx;
} eqs;

static int eqs_add(eqs *q, const EC_POINT *pt, const BIGNUM *c, const BIGNUM *m, const BIGNUM *s) {
    const EC_GROUP *g = duo__ped_group();
    const BIGNUM *ord = duo__ped_order();
    if (!q->batch) {
        /* t1 = P + c C, t2 = m G + s H */
        if (EC_POINT_copy(q->t1, pt) != 1) return DUO_E_INTERNAL;
        if (c != NULL &&
            (EC_POINT_mul(g, q->t2, NULL, q->c, c, q->ctx) != 1 || EC_POINT_add(g, q->t1, q->t1, q->t2, q->ctx) != 1))
            return DUO_E_INTERNAL;
        if (EC_POINT_mul(g, q->t2, m, duo__ped_h(), s, q->ctx) != 1) return DUO_E_INTERNAL;
        return EC_POINT_cmp(g, q->t1, q->t2, q->ctx) == 0 ? DUO_OK : DUO_E_BAD_PROOF;
    }
    {
        uint8_t kb[16];
        BIGNUM *k = q->k[q->cnt], *t = q->tmp;
        int r;
        if ((r = duo_rng_bytes(q->rng, kb, sizeof kb)) != DUO_OK) return r;
        if (BN_bin2bn(kb, sizeof kb, k) == NULL) return DUO_E_NOMEM;
        q->pts[q->cnt++] = pt;
        if (c != NULL && (!BN_mod_mul(t, k, c, ord, q->ctx) || !BN_mod_add(q->cs, q->cs, t, ord, q->ctx)))
            return DUO_E_INTERNAL;
        if (!BN_mod_mul(t, k, m, ord, q->ctx) || !BN_mod_sub(q->gs, q->gs, t, ord, q->ctx) ||
            !BN_mod_mul(t, k, s, ord, q->ctx) || !BN_mod_sub(q->hs, q->hs, t, ord, q->ctx))
            return DUO_E_INTERNAL;
        return DUO_OK;
    }
}

static int eqs_finish(eqs *q) {
    if (!q->batch) return DUO_OK;
    q->pts[q->cnt] = q->c;
    if (BN_copy(q->k[q->cnt], q->cs) == NULL) return DUO_E_INTERNAL;
    return duo__ped_msm_is_zero(q->gs, q->hs, q->cnt + 1u, q->pts, (const BIGNUM *const *)q->k, q->ctx);
}

static void eqs_free(eqs *q) {
    size_t i;
    for (i = 0; i < 2u * REPS + 2u; i++) BN_free(q->k[i]);
    BN_free(q->gs);
    BN_free(q->hs);
    BN_free(q->cs);
    BN_free(q->tmp);
    EC_POINT_free(q->t1);
    EC_POINT_free(q->t2);
}

static int eqs_init(eqs *q, int batch, const duo_rng *rng, const EC_POINT *c, BN_CTX *ctx) {
    size_t i;
    memset(q, 0, sizeof *q);
    q->batch = batch;
    q->rng = rng;
    q->c = c;
    q->ctx = ctx;
    for (i = 0; i < 2u * REPS + 2u; i++) {
        if ((q->k[i] = BN_new()) == NULL) return DUO_E_NOMEM;
    }
    if ((q->gs = BN_new()) == NULL || (q->hs = BN_new()) == NULL || (q->cs = BN_new()) == NULL ||
        (q->tmp = BN_new()) == NULL || (q->t1 = EC_POINT_new(duo__ped_group())) == NULL ||
        (q->t2 = EC_POINT_new(duo__ped_group())) == NULL)
        return DUO_E_NOMEM;
    BN_zero(q->gs);
    BN_zero(q->hs);
    BN_zero(q->cs);
    return DUO_OK;
}

/* Paillier half of the equality: Enc(z mod N; w) = A ckey^e mod N^2. */
static int check_paillier_eq(const duo_paillier_pub *pk, const BIGNUM *ckey, const BIGNUM *a, const BIGNUM *z,
                             const BIGNUM *w, const BIGNUM *e, BN_CTX *ctx) {
    int r = DUO_E_INTERNAL;
    BIGNUM *wn, *zn, *lhs, *rhs;
    BN_CTX_start(ctx);
    wn = BN_CTX_get(ctx);
    zn = BN_CTX_get(ctx);
    lhs = BN_CTX_get(ctx);
    rhs = BN_CTX_get(ctx);
    if (rhs == NULL) goto out;
    if ((r = duo_paillier_rn_from_r(pk, wn, w)) != DUO_OK) {
        r = r == DUO_E_INVALID_ARG ? DUO_E_BAD_PROOF : r; /* w not a unit */
        goto out;
    }
    r = DUO_E_INTERNAL;
    if (!BN_nnmod(zn, z, duo_paillier_pub_n(pk), ctx) || duo_paillier_encrypt(pk, lhs, zn, wn) != DUO_OK ||
        !BN_mod_exp(rhs, ckey, e, duo_paillier_pub_n2(pk), ctx) ||
        !BN_mod_mul(rhs, rhs, a, duo_paillier_pub_n2(pk), ctx))
        goto out;
    r = BN_cmp(lhs, rhs) == 0 ? DUO_OK : DUO_E_BAD_PROOF;
out:
    BN_CTX_end(ctx);
    return r;
}

/* Parsed commitments of a proof. */
typedef struct vparsed {
    EC_POINT *c, *b, *reps[2u * REPS];
    BIGNUM *a;
} vparsed;

static void vparsed_free(vparsed *v) {
    size_t i;
    EC_POINT_free(v->c);
    EC_POINT_free(v->b);
    for (i = 0; i < 2u * REPS; i++) EC_POINT_free(v->reps[i]);
    BN_free(v->a);
}

/* Every point on P-521 and not infinity, A in Z*_{N^2}: else BAD_PROOF. */
static int vparse(vparsed *v, const duo_paillier_pub *pk, const uint8_t *in, size_t nb, BN_CTX *ctx) {
    const EC_GROUP *g = duo__ped_group();
    size_t i;
    int r;
    memset(v, 0, sizeof *v);
    if ((v->c = EC_POINT_new(g)) == NULL || (v->b = EC_POINT_new(g)) == NULL || (v->a = BN_new()) == NULL)
        return DUO_E_NOMEM;
    for (i = 0; i < 2u * REPS; i++) {
        if ((v->reps[i] = EC_POINT_new(g)) == NULL) return DUO_E_NOMEM;
    }
    if ((r = duo__ped_point_decode(v->c, in, ctx)) != DUO_OK ||
        (r = duo__ped_point_decode(v->b, in + PB, ctx)) != DUO_OK)
        goto out;
    if ((r = duo_paillier_ciphertext_parse(pk, v->a, in + 2u * PB, 2u * nb)) != DUO_OK) goto out;
    for (i = 0; i < REPS; i++) {
        const uint8_t *o = in + HDR_BYTES(nb) + i * REP_BYTES;
        if ((r = duo__ped_point_decode(v->reps[2u * i], o, ctx)) != DUO_OK ||
            (r = duo__ped_point_decode(v->reps[2u * i + 1u], o + PB, ctx)) != DUO_OK)
            goto out;
    }
out:
    if (r == DUO_E_BAD_POINT || r == DUO_E_BAD_CIPHERTEXT || r == DUO_E_BAD_FIELD) r = DUO_E_BAD_PROOF;
    return r;
}

/* Repetition k's equations (see top). */
static int verify_rep(eqs *q, const vparsed *v, size_t k, const uint8_t *o, int bit, const BIGNUM *l, rep_open *ro,
                      BIGNUM *w1, BIGNUM *z, BIGNUM *t) {
    const uint8_t *f1 = o + 1, *f2 = o + 1 + SB;
    int r;
    if (bit == 0) {
        if (o[0] != 0 || !duo_ct_is_zero(f2, SCB)) return DUO_E_BAD_PROOF;
        if ((r = duo__zkr_rep_expand(ro, f1, l, q->ctx)) != DUO_OK) return r;
        if (!BN_add(w1, ro->u, l)) return DUO_E_INTERNAL;
        /* c_a, c_b = (c1, c2), or (c2, c1) if swapped */
        if ((r = eqs_add(q, v->reps[2u * k + (size_t)ro->swap], NULL, w1, ro->s1)) != DUO_OK) return r;
        return eqs_add(q, v->reps[2u * k + 1u - (size_t)ro->swap], NULL, ro->u, ro->s2);
    }
    if (o[0] > 1u) return DUO_E_BAD_PROOF;
    /* THE range check: z_k in [l, 2l). With the bit-0 openings it carries
     * the soundness: x = z_k - w_j lies in (-l, 2l). */
    if (!BN_lshift1(w1, l)) return DUO_E_INTERNAL;
    if ((r = duo__zk_read_range(z, f1, SB, l, w1)) != DUO_OK ||
        (r = duo__zk_read_range(t, f2, SCB, NULL, duo__ped_order())) != DUO_OK)
        return r;
    return eqs_add(q, v->reps[2u * k + o[0]], BN_value_one(), z, t);
}

int duo__zk_range_verify_ex(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind, const BIGNUM *ckey,
                            const uint8_t *in, size_t in_len, int batch, const duo_rng *rng) {
    int r;
    unsigned bits;
    size_t nb, k;
    uint8_t ch[32];
    BN_CTX *ctx = NULL;
    vparsed v;
    eqs q;
    rep_open ro = {NULL, NULL, NULL, 0};
    BIGNUM *l = NULL, *e = NULL, *z = NULL, *w = NULL, *vv = NULL, *w1 = NULL, *t = NULL;
    const uint8_t *hz, *hw, *hv;

    if (ec == NULL || pk == NULL || bind == NULL || ckey == NULL || in == NULL) return DUO_E_INVALID_ARG;
    bits = duo_paillier_pub_bits(pk);
    if ((nb = duo__zk_nbytes(bits)) == 0) return DUO_E_UNSUPPORTED;
    if (in_len != duo_zk_range_bytes(bits)) return DUO_E_BAD_FIELD;
    if ((r = duo_paillier_pub_modulus_check(pk)) != DUO_OK) return r;
    if ((r = duo_paillier_ciphertext_check(pk, ckey)) != DUO_OK) return r;
    if (duo__ped_group() == NULL) return DUO_E_INTERNAL;
    memset(&v, 0, sizeof v);
    memset(&q, 0, sizeof q);
    r = DUO_E_NOMEM;
    if ((ctx = BN_CTX_new()) == NULL || (l = BN_new()) == NULL || (e = BN_new()) == NULL || (z = BN_new()) == NULL ||
        (w = BN_new()) == NULL || (vv = BN_new()) == NULL || (w1 = BN_new()) == NULL || (t = BN_new()) == NULL ||
        duo__zkr_rep_open_init(&ro) != DUO_OK)
        goto out;
    if ((r = duo_zk_range_bound(ec, l)) != DUO_OK) goto out;
    if ((r = vparse(&v, pk, in, nb, ctx)) != DUO_OK) goto out;
    if ((r = eqs_init(&q, batch, rng, v.c, ctx)) != DUO_OK) goto out;
    if ((r = duo__zkr_challenge(ch, ec, pk, bind, ckey, in)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if (BN_bin2bn(ch + 16, E_BYTES, e) == NULL) goto out;

    /* Equality: z < 2^465, w in [1, N), v < n; then both equations. */
    hz = in + 2u * PB + 2u * nb;
    hw = hz + Z_BYTES;
    hv = hw + nb;
    r = DUO_E_BAD_PROOF;
    if (hz[0] > 1u) goto out; /* 59 bytes: bits 465.. must be zero */
    if ((r = duo__zk_read_range(z, hz, Z_BYTES, NULL, NULL)) != DUO_OK ||
        (r = duo__zk_read_range(w, hw, nb, BN_value_one(), duo_paillier_pub_n(pk))) != DUO_OK ||
        (r = duo__zk_read_range(vv, hv, SCB, NULL, duo__ped_order())) != DUO_OK)
        goto out;
    if ((r = check_paillier_eq(pk, ckey, v.a, z, w, e, ctx)) != DUO_OK) goto out;
    if ((r = eqs_add(&q, v.b, e, z, vv)) != DUO_OK) goto out;

    for (k = 0; k < REPS; k++) {
        const uint8_t *o = in + HDR_BYTES(nb) + k * REP_BYTES + 2u * PB;
        int bit = (ch[k >> 3] >> (k & 7u)) & 1;
        r = verify_rep(&q, &v, k, o, bit, l, &ro, w1, z, t);
        if (r != DUO_OK) goto out;
    }
    r = eqs_finish(&q);
out:
    vparsed_free(&v);
    eqs_free(&q);
    duo__zkr_rep_open_free(&ro);
    BN_free(l);
    BN_free(e);
    BN_free(z);
    BN_free(w);
    BN_free(vv);
    BN_free(w1);
    BN_free(t);
    BN_CTX_free(ctx);
    return r;
}

int duo_zk_range_verify_rng(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind, const BIGNUM *ckey,
                            const uint8_t *in, size_t in_len, const duo_rng *rng) {
    return duo__zk_range_verify_ex(ec, pk, bind, ckey, in, in_len, 1, rng);
}

int duo_zk_range_verify(const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind, const BIGNUM *ckey,
                        const uint8_t *in, size_t in_len) {
    return duo__zk_range_verify_ex(ec, pk, bind, ckey, in, in_len, 1, NULL);
}
