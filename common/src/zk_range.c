/* L_P, range proof v2 (zk_paillier.h; docs/PROTOCOL.md "Range proof v2"):
 * ckey = Enc(x; rho) with x in (-l, 2l), l = floor(q/3), through a Pedersen
 * commitment over P-521 (pedersen521.h). Replaces Lindell 2017's appendix-A
 * proof, whose 256 Paillier encryptions made it 205 KB and ~1.1 s of the
 * cloud's CPU (issue 22).
 *
 * Prover (x in [0, l), rho the encryption randomness of ckey):
 *   C = Com(x; r), r uniform mod n (n: P-521's order).
 *   Equality of the two plaintexts, one sigma protocol with a 128-bit
 *   challenge e: alpha uniform in [0, 2^464), beta uniform in Z*_N, gamma
 *   uniform mod n; A = Enc(alpha; beta), B = Com(alpha; gamma);
 *   z = alpha + e x (integers), w = beta rho^e mod N, v = gamma + e r mod n.
 *   Range of the committed x, Lindell's cut-and-choose moved onto the
 *   commitments: per repetition k a fresh 32-byte seed expands to u in
 *   [0, l), s1, s2 mod n and a swap bit; c1 = Com(u + l; s1),
 *   c2 = Com(u; s2), sent as (c_a, c_b) = swap ? (c2, c1) : (c1, c2).
 *   Challenge bit 0: the seed (opens both). Bit 1: j (position of the used
 *   commitment), z_k = x + w_j in [l, 2l), t_k = r + s_j mod n.
 * T = RANGE_DOMAIN || binding || bits || N || bn "q" || bn "ckey" ||
 *     bytes "C" || "B" || "A" || 128 x bytes "c" (c_a || c_b);
 *     32 challenge bytes "e": bytes 0..15 the repetition bits (bit k mod 8 of
 *     byte k / 8), bytes 16..31 e (big-endian).
 * Verifier: Enc(z mod N; w) = A ckey^e mod N^2, z < 2^465, and the
 *   commitment equations B + e C = Com(z; v), c_a = Com(.), c_b = Com(.)
 *   (bit 0), C + c_j = Com(z_k; t_k) with z_k in [l, 2l) (bit 1), all in one
 *   random linear combination (one multi-scalar multiplication).
 *
 * Completeness, zero knowledge and soundness (2^-128 per hash query for
 * each part, the combination 2^-128 per verification, binding: discrete log
 * in P-521) are argued in docs/PROTOCOL.md.
 *
 * Wire layout (NB = bits/8), all big-endian, fixed length:
 *   C (67) || B (67) || A (2 NB) || z (59) || w (NB) || v (66) ||
 *   128 x [ c_a (67) || c_b (67) || j (1) || f1 (32) || f2 (66) ]
 *   bit 0: j = 0, f1 = seed, f2 = 0.  bit 1: j in {0, 1}, f1 = z_k, f2 = t_k.
 *
 * Everything that depends on neither x nor the session (the seeds and their
 * commitments, alpha, beta^N, gamma, B, r, and ckey's rho^N) is made ahead
 * of time by duo_zk_range_precomp_new, in the cloud's background pool. */
#include "duosign/zk_paillier.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "duosign/mem.h"
#include "paillier_internal.h"
#include "pedersen521.h"
#include "zk_paillier_internal.h"
#include "zk_range_internal.h"

/* l = floor(n_P256 / 3), the same for every curve (both orders are 256-bit
 * primes; P-256's is the smaller): the pool precomputes the commitments to
 * u + l before it knows the enrolment's curve. 2l < q holds for both, which
 * is what the proof's |x| < q needs; duo_zk_range_bound checks it. */
static const char L_BASE_HEX[] = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";

int duo__zkr_bound_l(BIGNUM *l) {
    return BN_hex2bn(&l, L_BASE_HEX) != 0 && BN_div_word(l, 3) != (BN_ULONG)-1 ? DUO_OK : DUO_E_INTERNAL;
}

int duo_zk_range_bound(const duo_ec *ec, BIGNUM *l) {
    int r;
    if (ec == NULL || l == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo__zkr_bound_l(l)) != DUO_OK) return r;
    /* 2l < q: the curve's order is not below P-256's. */
    {
        BIGNUM *l2 = BN_new();
        int ok = l2 != NULL && BN_lshift1(l2, l) && BN_cmp(l2, duo_ec_order(ec)) < 0;
        BN_free(l2);
        if (!ok) return DUO_E_INTERNAL;
    }
    return DUO_OK;
}

size_t duo_zk_range_bytes(unsigned bits) {
    size_t nb = duo__zk_nbytes(bits);
    return nb == 0 ? 0 : HDR_BYTES(nb) + (size_t)REPS * REP_BYTES;
}

/* ------------------------------------------- constant-time byte strings */

static uint32_t ct_add_be(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len) {
    uint32_t c = 0;
    size_t i = len;
    while (i-- > 0) {
        c += (uint32_t)a[i] + b[i];
        out[i] = (uint8_t)c;
        c >>= 8;
    }
    return c;
}

static uint32_t ct_sub_be(uint8_t *out, const uint8_t *a, const uint8_t *b, size_t len) {
    uint32_t borrow = 0;
    size_t i = len;
    while (i-- > 0) {
        uint32_t d = (uint32_t)a[i] - b[i] - borrow;
        out[i] = (uint8_t)d;
        borrow = (d >> 8) & 1u;
    }
    return borrow;
}

/* out = a + b mod m for a, b < m; constant time. */
static void ct_addmod_be(uint8_t *out, const uint8_t *a, const uint8_t *b, const uint8_t *m, uint8_t *scratch,
                         size_t len) {
    uint32_t carry = ct_add_be(out, a, b, len);
    uint32_t borrow = ct_sub_be(scratch, out, m, len);
    duo_ct_cmov(out, scratch, len, (int)(carry | (borrow ^ 1u)));
}

/* ------------------------------------------------------- repetitions */

/* label's bytes from the seed's transcript, reduced mod m (bias <= 2^-128). */
static int seed_value(BIGNUM *out, const duo_transcript *t, const char *label, const BIGNUM *m, BN_CTX *ctx) {
    uint8_t buf[SCB + 16u];
    size_t len = (size_t)BN_num_bytes(m) + 16u;
    int r;
    if (len > sizeof buf) return DUO_E_INTERNAL;
    if ((r = duo_transcript_challenge(t, label, buf, len)) == DUO_OK) {
        r = BN_bin2bn(buf, (int)len, out) != NULL && BN_nnmod(out, out, m, ctx) ? DUO_OK : DUO_E_INTERNAL;
    }
    duo_memzero(buf, sizeof buf);
    return r;
}

int duo__zkr_rep_expand(rep_open *o, const uint8_t seed[SB], const BIGNUM *l, BN_CTX *ctx) {
    duo_transcript t = {NULL, 0};
    uint8_t sw = 0;
    int r = duo_transcript_init(&t, SEED_DOMAIN);
    if (r != DUO_OK) return r;
    duo_transcript_bytes(&t, "seed", seed, SB);
    if ((r = seed_value(o->u, &t, "u", l, ctx)) == DUO_OK &&
        (r = seed_value(o->s1, &t, "s1", duo__ped_order(), ctx)) == DUO_OK &&
        (r = seed_value(o->s2, &t, "s2", duo__ped_order(), ctx)) == DUO_OK)
        r = duo_transcript_challenge(&t, "swap", &sw, 1);
    o->swap = sw & 1;
    duo_transcript_free(&t);
    return r;
}

int duo__zkr_rep_open_init(rep_open *o) {
    o->u = BN_secure_new();
    o->s1 = BN_secure_new();
    o->s2 = BN_secure_new();
    o->swap = 0;
    if (o->u == NULL || o->s1 == NULL || o->s2 == NULL) return DUO_E_NOMEM;
    duo__zk_bn_secret(o->u);
    duo__zk_bn_secret(o->s1);
    duo__zk_bn_secret(o->s2);
    return DUO_OK;
}

void duo__zkr_rep_open_free(rep_open *o) {
    BN_clear_free(o->u);
    BN_clear_free(o->s1);
    BN_clear_free(o->s2);
    o->u = o->s1 = o->s2 = NULL;
}

/* ------------------------------------------- precomputed randomness */

/* One wiped, mlock()ed block (duo_secbuf). Secret: everything but the
 * commitments c and B, which become public when sent. */
typedef struct pc_data {
    uint8_t rho[NB_MAX], rhon[2u * NB_MAX];   /* ckey's pair */
    uint8_t beta[NB_MAX], betan[2u * NB_MAX]; /* A's randomness */
    uint8_t alpha[ALPHA_BYTES], gamma[SCB], r[SCB];
    uint8_t b[PB];
    struct {
        uint8_t seed[SB];
        uint8_t c[2u * PB]; /* c_a || c_b */
    } rep[REPS];
} pc_data;

struct duo_zk_range_precomp {
    size_t nb;
    BIGNUM *n;      /* the modulus it was made for (public) */
    int has_enc;    /* made with ckey's pair */
    int enc_used;   /* ckey's pair taken */
    int proof_used; /* the rest consumed */
    duo_secbuf buf; /* pc_data */
};

static pc_data *pc_d(const duo_zk_range_precomp *pc) { return (pc_data *)(void *)pc->buf.data; }

static int pc_same_key(const duo_zk_range_precomp *pc, const duo_paillier_priv *sk) {
    return BN_cmp(pc->n, duo_paillier_pub_n(duo_paillier_priv_pub(sk))) == 0;
}

/* r uniform in Z*_N and rn = r^N mod N^2, written as nb || 2 nb bytes. */
static int random_rn_fixed(const duo_paillier_priv *sk, uint8_t *rb, uint8_t *rnb, size_t nb, const duo_rng *rng) {
    int ret = DUO_E_NOMEM, i;
    const BIGNUM *n = duo_paillier_pub_n(duo_paillier_priv_pub(sk));
    BIGNUM *r = BN_secure_new(), *rn = BN_secure_new();
    if (r == NULL || rn == NULL) goto out;
    duo__zk_bn_secret(r);
    duo__zk_bn_secret(rn);
    /* duo_paillier_rn_from_r_priv rejects non-units (DUO_E_INVALID_ARG):
     * retry rather than pay for a gcd per draw. */
    for (i = 0; i < 8; i++) {
        if ((ret = duo_bn_random_below(r, n, rng)) != DUO_OK) goto out;
        ret = duo_paillier_rn_from_r_priv(sk, rn, r);
        if (ret != DUO_E_INVALID_ARG) break;
    }
    if (ret == DUO_OK && ((ret = duo__zk_write_fixed(rb, nb, r)) == DUO_OK))
        ret = duo__zk_write_fixed(rnb, 2u * nb, rn);
out:
    BN_clear_free(r);
    BN_clear_free(rn);
    return ret;
}

/* Uniform mod n as SCB bytes. */
static int random_mod_n(uint8_t out[SCB], const duo_rng *rng) {
    uint8_t nb[SCB];
    if (BN_bn2binpad(duo__ped_order(), nb, SCB) != (int)SCB) return DUO_E_INTERNAL;
    return duo_random_below_be(out, nb, SCB, rng);
}

/* Commitment of (m, s) given as big-endian strings, encoded into out. */
static int commit_bytes(uint8_t out[PB], const BIGNUM *m, const BIGNUM *s, BN_CTX *ctx) {
    int r;
    EC_POINT *p = EC_POINT_new(duo__ped_group());
    if (p == NULL) return DUO_E_NOMEM;
    if ((r = duo__ped_commit(p, m, s, ctx)) == DUO_OK) r = duo__ped_point_encode(out, p, ctx);
    EC_POINT_clear_free(p);
    return r;
}

/* The seed's two commitments, (c_a, c_b) in wire order. */
static int rep_commit(uint8_t c[2u * PB], const rep_open *o, const BIGNUM *l, BIGNUM *w1, BN_CTX *ctx) {
    uint8_t c1[PB], c2[PB];
    int r;
    if (!BN_add(w1, o->u, l)) return DUO_E_INTERNAL;
    if ((r = commit_bytes(c1, w1, o->s1, ctx)) != DUO_OK || (r = commit_bytes(c2, o->u, o->s2, ctx)) != DUO_OK)
        return r;
    memcpy(c, c1, PB);
    memcpy(c + PB, c2, PB);
    duo_ct_cmov(c, c2, PB, o->swap);
    duo_ct_cmov(c + PB, c1, PB, o->swap);
    return DUO_OK;
}

static int pc_fill(duo_zk_range_precomp *pc, const duo_paillier_priv *sk, const duo_rng *rng) {
    int r = DUO_E_NOMEM;
    unsigned k;
    pc_data *d = pc_d(pc);
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *l = BN_new(), *a = BN_secure_new(), *g = BN_secure_new(), *w1 = BN_secure_new();
    rep_open o = {NULL, NULL, NULL, 0};
    if (ctx == NULL || l == NULL || a == NULL || g == NULL || w1 == NULL ||
        (r = duo__zkr_rep_open_init(&o)) != DUO_OK) {
        r = DUO_E_NOMEM;
        goto out;
    }
    duo__zk_bn_secret(a);
    duo__zk_bn_secret(g);
    duo__zk_bn_secret(w1);
    if ((r = duo__zkr_bound_l(l)) != DUO_OK) goto out;
    if (pc->has_enc && (r = random_rn_fixed(sk, d->rho, d->rhon, pc->nb, rng)) != DUO_OK) goto out;
    if ((r = random_rn_fixed(sk, d->beta, d->betan, pc->nb, rng)) != DUO_OK ||
        (r = duo_rng_bytes(rng, d->alpha, ALPHA_BYTES)) != DUO_OK || (r = random_mod_n(d->gamma, rng)) != DUO_OK ||
        (r = random_mod_n(d->r, rng)) != DUO_OK)
        goto out;
    r = DUO_E_NOMEM;
    if (BN_bin2bn(d->alpha, ALPHA_BYTES, a) == NULL || BN_bin2bn(d->gamma, SCB, g) == NULL) goto out;
    if ((r = commit_bytes(d->b, a, g, ctx)) != DUO_OK) goto out;
    for (k = 0; k < REPS; k++) {
        if ((r = duo_rng_bytes(rng, d->rep[k].seed, SB)) != DUO_OK ||
            (r = duo__zkr_rep_expand(&o, d->rep[k].seed, l, ctx)) != DUO_OK ||
            (r = rep_commit(d->rep[k].c, &o, l, w1, ctx)) != DUO_OK)
            goto out;
    }
    r = DUO_OK;
out:
    duo__zkr_rep_open_free(&o);
    BN_free(l);
    BN_clear_free(a);
    BN_clear_free(g);
    BN_clear_free(w1);
    BN_CTX_free(ctx);
    return r;
}

static int pc_create(duo_zk_range_precomp **out, const duo_paillier_priv *sk, int with_enc, const duo_rng *rng) {
    int ret;
    size_t nb;
    duo_zk_range_precomp *pc;
    *out = NULL;
    if (duo__ped_group() == NULL) return DUO_E_INTERNAL;
    if ((nb = duo__zk_nbytes(duo_paillier_pub_bits(duo_paillier_priv_pub(sk)))) == 0) return DUO_E_UNSUPPORTED;
    if ((pc = calloc(1, sizeof *pc)) == NULL) return DUO_E_NOMEM;
    pc->nb = nb;
    pc->has_enc = with_enc;
    if ((pc->n = BN_dup(duo_paillier_pub_n(duo_paillier_priv_pub(sk)))) == NULL ||
        (ret = duo_secbuf_alloc(&pc->buf, sizeof(pc_data))) != DUO_OK) {
        duo_zk_range_precomp_free(pc);
        return DUO_E_NOMEM;
    }
    if ((ret = pc_fill(pc, sk, rng)) != DUO_OK) {
        duo_zk_range_precomp_free(pc);
        return ret;
    }
    *out = pc;
    return DUO_OK;
}

int duo_zk_range_precomp_new(duo_zk_range_precomp **out, const duo_paillier_priv *sk, const duo_rng *rng) {
    if (out != NULL) *out = NULL;
    if (out == NULL || sk == NULL) return DUO_E_INVALID_ARG;
    return pc_create(out, sk, 1, rng);
}

void duo_zk_range_precomp_free(duo_zk_range_precomp *pc) {
    if (pc == NULL) return;
    duo_secbuf_free(&pc->buf);
    BN_free(pc->n);
    duo_memzero(pc, sizeof *pc);
    free(pc);
}

int duo_zk_range_precomp_take_enc(duo_zk_range_precomp *pc, const duo_paillier_priv *sk, BIGNUM *r, BIGNUM *rn) {
    int ret = DUO_OK;
    pc_data *d;
    if (pc == NULL || sk == NULL || r == NULL || rn == NULL) return DUO_E_INVALID_ARG;
    if (pc->enc_used || !pc->has_enc) return DUO_E_PROTO_STATE;
    pc->enc_used = 1;
    d = pc_d(pc);
    if (!pc_same_key(pc, sk)) {
        ret = DUO_E_INVALID_ARG;
    } else {
        duo__zk_bn_secret(r);
        duo__zk_bn_secret(rn);
        if (BN_bin2bn(d->rho, (int)pc->nb, r) == NULL || BN_bin2bn(d->rhon, (int)(2u * pc->nb), rn) == NULL)
            ret = DUO_E_NOMEM;
    }
    duo_memzero(d->rho, sizeof d->rho);
    duo_memzero(d->rhon, sizeof d->rhon);
    if (ret != DUO_OK) {
        BN_clear(r);
        BN_clear(rn);
    }
    return ret;
}

/* ------------------------------------------------------------- prover */

/* Secret working state of one proof. */
typedef struct prover {
    const duo_paillier_pub *pk;
    const BIGNUM *n;   /* Paillier N */
    const BIGNUM *ord; /* P-521's n */
    size_t nb;
    int checked; /* honest prover: x in [0, l), constant time */
    int raw_z;   /* test only: send the true z_k where none fits */
    BN_CTX *ctx;
    BIGNUM *l, *xs, *rp, *tmp, *tmp2, *e;
    uint8_t xb[SB], lb[SB], l2b[SB], ordb[SCB];
} prover;

/* z = alpha + e x (59 bytes), w = beta rho^e mod N, v = gamma + e r mod n. */
static int prove_equality(prover *p, const pc_data *d, const BIGNUM *rho, const uint8_t eb[E_BYTES], uint8_t *o) {
    uint8_t *oz = o, *ow = oz + Z_BYTES, *ov = ow + p->nb;
    BIGNUM *beta = p->tmp, *w = p->tmp2;
    int r;
    if (p->checked) {
        if ((r = duo_be_muladd(oz, Z_BYTES, eb, E_BYTES, p->xb, SB, d->alpha, ALPHA_BYTES)) != DUO_OK) return r;
    } else {
        /* Test only: the signed x; a z that is negative or too wide is sent
         * truncated, and the equations reject it. */
        if (BN_bin2bn(d->alpha, ALPHA_BYTES, w) == NULL || !BN_mul(beta, p->e, p->xs, p->ctx) || !BN_add(w, w, beta))
            return DUO_E_INTERNAL;
        if (BN_is_negative(w)) BN_zero(w);
        if (BN_num_bits(w) > (int)(8u * Z_BYTES) && !BN_mask_bits(w, (int)(8u * Z_BYTES))) return DUO_E_INTERNAL;
        if ((r = duo__zk_write_fixed(oz, Z_BYTES, w)) != DUO_OK) return r;
    }
    r = DUO_E_INTERNAL;
    if (BN_bin2bn(d->beta, (int)p->nb, beta) == NULL || !BN_mod_exp_mont_consttime(w, rho, p->e, p->n, p->ctx, NULL) ||
        !BN_mod_mul(w, w, beta, p->n, p->ctx) || duo__zk_write_fixed(ow, p->nb, w) != DUO_OK)
        return r;
    if (BN_bin2bn(d->gamma, SCB, beta) == NULL || !BN_mul(w, p->e, p->rp, p->ctx) || !BN_add(w, w, beta) ||
        !BN_nnmod(w, w, p->ord, p->ctx) || duo__zk_write_fixed(ov, SCB, w) != DUO_OK)
        return r;
    return DUO_OK;
}

/* Test only (unchecked prover): z_k and j chosen with branches on the signed
 * x; z_k = l where neither w_j fits. */
static int rep_answer_unchecked(prover *p, const rep_open *ro, uint8_t zb[SB], uint8_t sj[SCB], uint8_t *pos) {
    BIGNUM *z1 = p->tmp, *z2 = p->tmp2;
    int use1, use2;
    BIGNUM *l2 = BN_new();
    if (l2 == NULL || !BN_lshift1(l2, p->l) || !BN_add(z2, p->xs, ro->u) || !BN_add(z1, z2, p->l)) {
        BN_free(l2);
        return DUO_E_INTERNAL;
    }
    use1 = BN_cmp(z1, p->l) >= 0 && BN_cmp(z1, l2) < 0;
    use2 = BN_cmp(z2, p->l) >= 0 && BN_cmp(z2, l2) < 0;
    BN_free(l2);
    if (!use1 && !use2 && p->raw_z) {
        /* the true z_k of a w_j for which it is non-negative and fits */
        use2 = !BN_is_negative(z2) && BN_num_bytes(z2) <= (int)SB;
        if (!use2 && (BN_is_negative(z1) || BN_num_bytes(z1) > (int)SB)) return DUO_E_INVALID_ARG;
    } else if (!use1 && !use2 && BN_copy(z1, p->l) == NULL) {
        return DUO_E_INTERNAL;
    }
    if (!use1 && use2) {
        if (duo__zk_write_fixed(zb, SB, z2) != DUO_OK || duo__zk_write_fixed(sj, SCB, ro->s2) != DUO_OK)
            return DUO_E_INTERNAL;
        *pos = (uint8_t)(1 - ro->swap);
        return DUO_OK;
    }
    if (duo__zk_write_fixed(zb, SB, z1) != DUO_OK || duo__zk_write_fixed(sj, SCB, ro->s1) != DUO_OK)
        return DUO_E_INTERNAL;
    *pos = (uint8_t)ro->swap;
    return DUO_OK;
}

/* The honest answer, branch-free in x, u, s_j and swap: z1 = x + u + l is
 * used if below 2l, else z2 = x + u (then in [l, 2l): completeness). */
static int rep_answer(prover *p, const rep_open *ro, uint8_t zb[SB], uint8_t sj[SCB], uint8_t *pos) {
    uint8_t ub[SB], z1[SB], z2[SB], scr[SB], s1[SCB];
    int use1, r = DUO_E_INTERNAL;
    if (duo__zk_write_fixed(ub, SB, ro->u) != DUO_OK || duo__zk_write_fixed(s1, SCB, ro->s1) != DUO_OK ||
        duo__zk_write_fixed(sj, SCB, ro->s2) != DUO_OK)
        goto out;
    (void)ct_add_be(z2, p->xb, ub, SB); /* < 2l < 2^256 */
    (void)ct_add_be(z1, z2, p->lb, SB); /* < 3l < 2^256 */
    use1 = (int)ct_sub_be(scr, z1, p->l2b, SB);
    memcpy(zb, z2, SB);
    duo_ct_cmov(zb, z1, SB, use1);
    duo_ct_cmov(sj, s1, SCB, use1);
    /* c1 sits at position swap, c2 at 1 - swap. The position is public. */
    *pos = (uint8_t)((unsigned)ro->swap ^ (unsigned)(1 - use1));
    duo__declassify(pos, 1);
    r = DUO_OK;
out:
    duo_memzero(ub, sizeof ub);
    duo_memzero(z1, sizeof z1);
    duo_memzero(z2, sizeof z2);
    duo_memzero(s1, sizeof s1);
    duo_memzero(scr, sizeof scr);
    return r;
}

static int prove_reps(prover *p, const pc_data *d, const uint8_t bits[REPS / 8], uint8_t *reps) {
    unsigned k;
    int r;
    uint8_t rb[SCB], sj[SCB], scr[SCB];
    rep_open ro = {NULL, NULL, NULL, 0};
    if ((r = duo__zkr_rep_open_init(&ro)) != DUO_OK) goto out;
    if ((r = duo__zk_write_fixed(rb, SCB, p->rp)) != DUO_OK) goto out;
    for (k = 0; k < REPS; k++) {
        uint8_t *o = reps + (size_t)k * REP_BYTES + 2u * PB;
        if (((bits[k >> 3] >> (k & 7u)) & 1u) == 0) {
            o[0] = 0;
            memcpy(o + 1, d->rep[k].seed, SB);
            continue;
        }
        if ((r = duo__zkr_rep_expand(&ro, d->rep[k].seed, p->l, p->ctx)) != DUO_OK) goto out;
        r = p->checked ? rep_answer(p, &ro, o + 1, sj, o) : rep_answer_unchecked(p, &ro, o + 1, sj, o);
        if (r != DUO_OK) goto out;
        ct_addmod_be(o + 1 + SB, rb, sj, p->ordb, scr, SCB); /* t_k = r + s_j mod n */
    }
    r = DUO_OK;
out:
    duo__zkr_rep_open_free(&ro);
    duo_memzero(rb, sizeof rb);
    duo_memzero(sj, sizeof sj);
    duo_memzero(scr, sizeof scr);
    return r;
}

static void prover_free(prover *p) {
    BN_free(p->l);
    BN_clear_free(p->xs);
    BN_clear_free(p->rp);
    BN_clear_free(p->tmp);
    BN_clear_free(p->tmp2);
    BN_free(p->e);
    BN_CTX_free(p->ctx);
    duo_memzero(p, sizeof *p);
}

/* Input checks and the secret values prepared for the proof. */
static int prover_init(prover *p, const duo_paillier_priv *sk, const BIGNUM *x, const BIGNUM *rho, int checked,
                       const pc_data *d) {
    int r = DUO_E_NOMEM;
    memset(p, 0, sizeof *p);
    p->pk = duo_paillier_priv_pub(sk);
    p->n = duo_paillier_pub_n(p->pk);
    p->ord = duo__ped_order();
    p->nb = duo__zk_nbytes(duo_paillier_pub_bits(p->pk));
    p->checked = checked;
    if ((p->ctx = BN_CTX_secure_new()) == NULL || (p->l = BN_new()) == NULL || (p->xs = BN_secure_new()) == NULL ||
        (p->rp = BN_secure_new()) == NULL || (p->tmp = BN_secure_new()) == NULL ||
        (p->tmp2 = BN_secure_new()) == NULL || (p->e = BN_new()) == NULL)
        return r;
    duo__zk_bn_secret(p->xs);
    duo__zk_bn_secret(p->rp);
    duo__zk_bn_secret(p->tmp);
    duo__zk_bn_secret(p->tmp2);
    if ((r = duo__zkr_bound_l(p->l)) != DUO_OK) return r;
    /* Refuses misuse only (an honest caller always passes); the x < l test
     * reveals nothing else. */
    r = DUO_E_INVALID_ARG;
    if (BN_is_negative(x) || BN_cmp(x, p->n) >= 0 || (checked && BN_cmp(x, p->l) >= 0)) return r;
    if (BN_is_negative(rho) || BN_is_zero(rho) || BN_cmp(rho, p->n) >= 0) return r;
    r = DUO_E_INTERNAL;
    if (BN_copy(p->xs, x) == NULL) return r;
    if (!checked && BN_rshift1(p->tmp, p->n) && BN_cmp(x, p->tmp) > 0 && !BN_sub(p->xs, x, p->n)) return r;
    if (BN_bin2bn(d->r, SCB, p->rp) == NULL || BN_bn2binpad(p->ord, p->ordb, SCB) != (int)SCB ||
        BN_bn2binpad(p->l, p->lb, SB) != (int)SB || !BN_lshift1(p->tmp, p->l) ||
        BN_bn2binpad(p->tmp, p->l2b, SB) != (int)SB)
        return r;
    if (checked && BN_bn2binpad(x, p->xb, SB) != (int)SB) return r;
    return DUO_OK;
}

/* out[0..HDR) = C || B || A (the rest of the header is the equality answer). */
static int prove_commit(prover *p, const pc_data *d, uint8_t *out) {
    int r = DUO_E_INTERNAL;
    BIGNUM *alpha = BN_secure_new(), *betan = BN_secure_new(), *a = BN_new();
    if (alpha == NULL || betan == NULL || a == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    duo__zk_bn_secret(alpha);
    duo__zk_bn_secret(betan);
    /* C = Com(x mod n; r); x mod n is x itself for the honest prover. */
    if (!BN_nnmod(p->tmp, p->xs, p->ord, p->ctx) || (r = commit_bytes(out, p->tmp, p->rp, p->ctx)) != DUO_OK) goto out;
    memcpy(out + PB, d->b, PB);
    r = DUO_E_INTERNAL;
    if (BN_bin2bn(d->alpha, ALPHA_BYTES, alpha) == NULL || BN_bin2bn(d->betan, (int)(2u * p->nb), betan) == NULL)
        goto out;
    if ((r = duo_paillier_encrypt(p->pk, a, alpha, betan)) != DUO_OK ||
        (r = duo_paillier_ciphertext_serialize(p->pk, out + 2u * PB, 2u * p->nb, a)) != DUO_OK)
        goto out;
    r = DUO_OK;
out:
    BN_clear_free(alpha);
    BN_clear_free(betan);
    BN_free(a);
    return r;
}

/* The transcript's 32 challenge bytes for a proof whose commitments are in. */
int duo__zkr_challenge(uint8_t ch[32], const duo_ec *ec, const duo_paillier_pub *pk, const duo_binding *bind,
                       const BIGNUM *ckey, const uint8_t *in) {
    size_t nb = duo__zk_nbytes(duo_paillier_pub_bits(pk)), k;
    const uint8_t *reps = in + HDR_BYTES(nb);
    duo_transcript t = {NULL, 0};
    int r = duo__zk_start(&t, RANGE_DOMAIN, bind, duo_paillier_pub_n(pk), duo_paillier_pub_bits(pk));
    if (r != DUO_OK) return r;
    duo_transcript_bn(&t, "q", duo_ec_order(ec));
    duo_transcript_bn(&t, "ckey", ckey);
    duo_transcript_bytes(&t, "C", in, PB);
    duo_transcript_bytes(&t, "B", in + PB, PB);
    duo_transcript_bytes(&t, "A", in + 2u * PB, 2u * nb);
    for (k = 0; k < REPS; k++) duo_transcript_bytes(&t, "c", reps + k * REP_BYTES, 2u * PB);
    r = duo_transcript_challenge(&t, "e", ch, 32);
    duo_transcript_free(&t);
    return r;
}

/* mode: MODE_HONEST, or one of the test-only provers. */
#define MODE_HONEST 1
#define MODE_UNCHECKED 0
#define MODE_RAW_Z 2

static int range_prove_impl(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind, const BIGNUM *ckey,
                            const BIGNUM *x, const BIGNUM *rho, int mode, const duo_zk_range_precomp *pc, uint8_t *out,
                            size_t out_len) {
    int r;
    unsigned k;
    prover p;
    uint8_t ch[32];
    const pc_data *d = pc_d(pc);
    size_t nb;
    if (out_len != duo_zk_range_bytes(duo_paillier_pub_bits(duo_paillier_priv_pub(sk)))) return DUO_E_BUFFER_TOO_SMALL;
    if (duo_paillier_ciphertext_check(duo_paillier_priv_pub(sk), ckey) != DUO_OK) return DUO_E_INVALID_ARG;
    memset(out, 0, out_len);
    if ((r = prover_init(&p, sk, x, rho, mode == MODE_HONEST, d)) != DUO_OK) goto out;
    p.raw_z = mode == MODE_RAW_Z;
    nb = p.nb;
    for (k = 0; k < REPS; k++) memcpy(out + HDR_BYTES(nb) + (size_t)k * REP_BYTES, d->rep[k].c, 2u * PB);
    if ((r = prove_commit(&p, d, out)) != DUO_OK) goto out;
    if ((r = duo__zkr_challenge(ch, ec, p.pk, bind, ckey, out)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if (BN_bin2bn(ch + 16, E_BYTES, p.e) == NULL) goto out;
    if ((r = prove_equality(&p, d, rho, ch + 16, out + 2u * PB + 2u * nb)) != DUO_OK) goto out;
    r = prove_reps(&p, d, ch, out + HDR_BYTES(nb));
out:
    prover_free(&p);
    if (r != DUO_OK) duo_memzero(out, out_len);
    return r;
}

/* A proof with fresh randomness: the precomputation made inline. */
static int prove_fresh(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind, const BIGNUM *ckey,
                       const BIGNUM *x, const BIGNUM *rho, const duo_rng *rng, int mode, uint8_t *out, size_t out_len) {
    int r;
    duo_zk_range_precomp *pc = NULL;
    if (ec == NULL || sk == NULL || bind == NULL || ckey == NULL || x == NULL || rho == NULL || out == NULL)
        return DUO_E_INVALID_ARG;
    if ((r = pc_create(&pc, sk, 0, rng)) != DUO_OK) return r;
    r = range_prove_impl(ec, sk, bind, ckey, x, rho, mode, pc, out, out_len);
    duo_zk_range_precomp_free(pc);
    return r;
}

int duo_zk_range_prove(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind, const BIGNUM *ckey,
                       const BIGNUM *x, const BIGNUM *r, const duo_rng *rng, uint8_t *out, size_t out_len) {
    return prove_fresh(ec, sk, bind, ckey, x, r, rng, MODE_HONEST, out, out_len);
}

int duo__zk_range_prove_unchecked(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                                  const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng,
                                  uint8_t *out, size_t out_len) {
    return prove_fresh(ec, sk, bind, ckey, x, r, rng, MODE_UNCHECKED, out, out_len);
}

int duo__zk_range_prove_raw_z(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                              const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng, uint8_t *out,
                              size_t out_len) {
    return prove_fresh(ec, sk, bind, ckey, x, r, rng, MODE_RAW_Z, out, out_len);
}

int duo_zk_range_prove_precomp(const duo_ec *ec, const duo_paillier_priv *sk, const duo_binding *bind,
                               const BIGNUM *ckey, const BIGNUM *x, const BIGNUM *r, const duo_rng *rng,
                               duo_zk_range_precomp *pc, uint8_t *out, size_t out_len) {
    int ret;
    (void)rng; /* all randomness is in pc */
    if (pc == NULL) return DUO_E_INVALID_ARG;
    if (pc->proof_used) return DUO_E_PROTO_STATE;
    /* Spent from here on, whatever happens: a seed or alpha answered under
     * two challenges would reveal x. */
    pc->proof_used = 1;
    if (ec == NULL || sk == NULL || bind == NULL || ckey == NULL || x == NULL || r == NULL || out == NULL ||
        !pc_same_key(pc, sk)) {
        ret = DUO_E_INVALID_ARG;
    } else {
        ret = range_prove_impl(ec, sk, bind, ckey, x, r, MODE_HONEST, pc, out, out_len);
    }
    duo_memzero(pc_d(pc)->beta, offsetof(pc_data, rep) + sizeof pc_d(pc)->rep - offsetof(pc_data, beta));
    return ret;
}
