/* duosign P1: enrolment (DESIGN 3.2; Lindell 2017 Protocol 3.1, additive
 * form, P1 side; docs/PROTOCOL.md lists every check and its error).
 *
 * State table (any other call: DUO_E_PROTO_STATE, then sticky failure):
 *   NEW         --start-->          STARTED
 *   STARTED     --key_share-->      SHARED
 *   SHARED      --pdl_challenge-->  CHALLENGED
 *   CHALLENGED  --pdl_open-->       OPENED
 *   OPENED      --confirm-->        CONFIRMED
 *   CONFIRMED   --take_key-->       TAKEN */
#include <stdlib.h>
#include <string.h>

#include "duosign/commit.h"
#include "duosign/dlog_proof.h"
#include "duosign/mem.h"
#include "duosign/zk_paillier.h"
#include "p1_internal.h"

enum { P1E_NEW = 0, P1E_STARTED, P1E_SHARED, P1E_CHALLENGED, P1E_OPENED, P1E_CONFIRMED, P1E_TAKEN, P1E_FAILED };

struct duo_p1_enroll {
    int state;
    const duo_ec *ec;
    const duo_rng *rng;
    unsigned bits;
    duo_paillier_priv *paillier;   /* SECRET */
    duo_zk_range_precomp *precomp; /* SECRET, optional, single use */
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t sid[DUO_SID_BYTES];
    duo_scalar x1; /* SECRET, in [1, floor(q/3)) */
    duo_point q1, q2, q;
    uint8_t q1_bytes[33];
    uint8_t q1_proof[DUO_DLOG_PROOF_BYTES];
    uint8_t q1_rand[DUO_COMMIT_RAND_BYTES];
    uint8_t ab_commitment[32];
    BIGNUM *alpha; /* SECRET until the device's (a, b) check out */
    uint8_t alpha_point[33];
    uint8_t alpha_rand[DUO_COMMIT_RAND_BYTES];
    uint8_t device_secret[32]; /* SECRET */
};

static void p1e_fail(duo_p1_enroll *s) {
    s->state = P1E_FAILED;
    duo_memzero(&s->x1, sizeof s->x1);
    duo_memzero(s->device_secret, sizeof s->device_secret);
    BN_clear_free(s->alpha);
    s->alpha = NULL;
    duo_paillier_priv_free(s->paillier);
    s->paillier = NULL;
    duo_zk_range_precomp_free(s->precomp);
    s->precomp = NULL;
}

static int p1e_enter(duo_p1_enroll *s, int expected) {
    if (s->state == P1E_FAILED) {
        return DUO_E_SESSION_FAILED;
    }
    if (s->state != expected) {
        p1e_fail(s);
        return DUO_E_PROTO_STATE;
    }
    return DUO_OK;
}

static int p1e_leave(duo_p1_enroll *s, int r, int next_state) {
    if (r != DUO_OK) {
        p1e_fail(s);
    } else {
        s->state = next_state;
    }
    return r;
}

int duo_p1_enroll_new(duo_p1_enroll **out, const duo_p1_enroll_params *params) {
    duo_p1_enroll *s = NULL;
    duo_paillier_priv *sk = params != NULL ? params->paillier : NULL;
    duo_zk_range_precomp *pc = params != NULL ? params->range_precomp : NULL;
    int r = DUO_OK;

    if (out != NULL) {
        *out = NULL;
    }
    if (out == NULL || params == NULL || params->ec == NULL) {
        r = DUO_E_INVALID_ARG;
    } else if (!duo_paillier_bits_supported(params->paillier_bits)) {
        r = DUO_E_UNSUPPORTED;
    } else if (sk != NULL && duo_paillier_pub_bits(duo_paillier_priv_pub(sk)) != params->paillier_bits) {
        r = DUO_E_INVALID_ARG;
    } else if (pc != NULL && sk == NULL) {
        r = DUO_E_INVALID_ARG; /* randomness for a key that is not there */
    } else if ((s = calloc(1, sizeof *s)) == NULL) {
        r = DUO_E_NOMEM;
    }
    if (r != DUO_OK) {
        duo_paillier_priv_free(sk);
        duo_zk_range_precomp_free(pc);
        return r;
    }
    s->ec = params->ec;
    s->rng = params->rng;
    s->bits = params->paillier_bits;
    s->paillier = sk;
    s->precomp = pc;
    s->state = P1E_NEW;
    *out = s;
    return DUO_OK;
}

int duo_p1_enroll_reclaim(duo_p1_enroll *s, duo_paillier_priv **key, duo_zk_range_precomp **precomp) {
    if (key != NULL) *key = NULL;
    if (precomp != NULL) *precomp = NULL;
    if (s == NULL || key == NULL || precomp == NULL) return DUO_E_INVALID_ARG;
    int r = DUO_E_PROTO_STATE;
    if (s->state == P1E_NEW || s->state == P1E_STARTED) {
        *key = s->paillier;
        *precomp = s->precomp;
        s->paillier = NULL;
        s->precomp = NULL;
        r = DUO_OK;
    }
    p1e_fail(s);
    return r;
}

void duo_p1_enroll_free(duo_p1_enroll *s) {
    if (s == NULL) {
        return;
    }
    p1e_fail(s);
    duo_memzero(s, sizeof *s);
    free(s);
}

const uint8_t *duo_p1_enroll_sid(const duo_p1_enroll *s) { return s == NULL ? NULL : s->sid; }

const duo_ec *duo_p1_enroll_ec(const duo_p1_enroll *s) { return s == NULL ? NULL : s->ec; }

/* Round 1: key id, cloud nonce, sid; x1 uniform in [1, l), l = floor(q/3)
 * (the range proof's completeness bound); commit(Q1, PoK(x1)). */
int duo_p1_enroll_start(duo_p1_enroll *s, const duo_enroll_start_req *req, duo_enroll_start_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_binding bind;
    duo_dlog_proof pok;
    duo_transcript t;
    BIGNUM *l = NULL, *x = NULL;
    uint8_t xb[32];
    int tries;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1e_enter(s, P1E_NEW)) != DUO_OK) {
        return r;
    }
    if (req == NULL || resp == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(resp, 0, sizeof *resp);
    /* The cloud serves exactly its configured modulus size. */
    if (req->paillier_bits != s->bits) {
        r = DUO_E_UNSUPPORTED;
        goto out;
    }
    /* ... and the curve of its context (the daemon picks the context by
     * the request; 0 is a request from before curves: secp256k1) */
    if ((req->curve == DUO_CURVE_UNSPECIFIED ? DUO_CURVE_SECP256K1 : req->curve) != duo_ec_curve(s->ec)) {
        r = DUO_E_CURVE_REFUSED;
        goto out;
    }
    if ((r = duo_rng_bytes(s->rng, s->key_id, sizeof s->key_id)) != DUO_OK ||
        (r = duo_rng_bytes(s->rng, resp->cloud_nonce, sizeof resp->cloud_nonce)) != DUO_OK) {
        goto out;
    }
    if ((r = duo__sid_enroll(s->sid, s->key_id, req->device_nonce, resp->cloud_nonce)) != DUO_OK) {
        goto out;
    }
    if ((l = BN_new()) == NULL || (x = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_zk_range_bound(s->ec, l)) != DUO_OK) {
        goto out;
    }
    for (tries = 0;; tries++) {
        if (tries == 64) {
            r = DUO_E_RNG;
            goto out;
        }
        if ((r = duo_bn_random_below(x, l, s->rng)) != DUO_OK) {
            goto out;
        }
        if (!BN_is_zero(x)) {
            break;
        }
    }
    if (BN_bn2binpad(x, xb, 32) != 32 || (r = duo_scalar_parse(s->ec, &s->x1, xb)) != DUO_OK) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_point_mul_base(s->ec, &s->q1, &s->x1)) != DUO_OK) {
        goto out;
    }
    memcpy(bind.sid, s->sid, 32);
    bind.role = DUO_ROLE_CLOUD;
    if ((r = duo_dlog_prove(s->ec, &pok, &s->x1, &s->q1, &bind, "Q1", s->rng)) != DUO_OK) {
        goto out;
    }
    duo_point_serialize(s->ec, s->q1_bytes, &s->q1);
    duo_dlog_proof_serialize(s->ec, s->q1_proof, &pok);
    if ((r = duo_rng_bytes(s->rng, s->q1_rand, sizeof s->q1_rand)) != DUO_OK ||
        (r = duo_commit_begin(&t, "Q1", &bind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "Q1", s->q1_bytes, sizeof s->q1_bytes);
    duo_transcript_bytes(&t, "proof", s->q1_proof, sizeof s->q1_proof);
    if ((r = duo_commit_finish(&t, s->q1_rand, resp->q1_commitment)) != DUO_OK) {
        goto out;
    }
    memcpy(resp->key_id, s->key_id, sizeof s->key_id);
    r = DUO_OK;
out:
    duo_memzero(xb, sizeof xb);
    duo_memzero(&pok, sizeof pok);
    BN_free(l);
    BN_clear_free(x);
    if (r != DUO_OK) {
        memset(resp, 0, sizeof *resp);
    }
    return p1e_leave(s, r, P1E_STARTED);
}

/* Round 2: check Q2 and PoK(x2); Q = Q1 + Q2; Paillier key; ckey = Enc(x1; r);
 * L_N, Pi-mod and range proofs; open the round-1 commitment. */
int duo_p1_enroll_key_share(duo_p1_enroll *s, const duo_enroll_key_share_req *req, duo_enroll_key_share_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_binding cbind, dbind;
    duo_dlog_proof pok;
    const duo_paillier_pub *pk;
    BIGNUM *x = NULL, *rr = NULL, *rn = NULL, *ckey = NULL;
    size_t nlen, ctlen, lnlen, modlen, rglen, off;
    uint8_t *buf = NULL;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1e_enter(s, P1E_STARTED)) != DUO_OK) {
        return r;
    }
    if (req == NULL || resp == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(resp, 0, sizeof *resp);
    if (!duo_ct_eq(req->sid, s->sid, 32)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    memcpy(cbind.sid, s->sid, 32);
    cbind.role = DUO_ROLE_CLOUD;
    memcpy(dbind.sid, s->sid, 32);
    dbind.role = DUO_ROLE_DEVICE;
    if ((r = duo_point_parse(s->ec, &s->q2, req->q2, sizeof req->q2)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }
    if ((r = duo_dlog_proof_parse(s->ec, &pok, req->q2_proof, sizeof req->q2_proof)) != DUO_OK ||
        (r = duo_dlog_verify(s->ec, &pok, &s->q2, &dbind, "Q2")) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    if ((r = duo_point_add(s->ec, &s->q, &s->q1, &s->q2)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }
    if (s->paillier == NULL && (r = duo_paillier_keygen(&s->paillier, s->bits)) != DUO_OK) {
        goto out;
    }
    pk = duo_paillier_priv_pub(s->paillier);
    if ((x = BN_secure_new()) == NULL || (rr = BN_secure_new()) == NULL || (rn = BN_secure_new()) == NULL ||
        (ckey = BN_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(rr, BN_FLG_CONSTTIME);
    if ((r = duo_scalar_to_bn(&s->x1, x)) != DUO_OK) {
        goto out;
    }
    if (s->precomp != NULL) {
        /* The pool's randomness (made for this key, single use). */
        r = duo_zk_range_precomp_take_enc(s->precomp, s->paillier, rr, rn);
    } else if ((r = duo_paillier_random_unit(pk, rr, s->rng)) == DUO_OK) {
        r = duo_paillier_rn_from_r_priv(s->paillier, rn, rr);
    }
    if (r != DUO_OK || (r = duo_paillier_encrypt(pk, ckey, x, rn)) != DUO_OK) {
        goto out;
    }
    nlen = s->bits / 8;
    ctlen = duo_paillier_ciphertext_bytes(pk);
    lnlen = duo_zk_ln_bytes(s->bits);
    modlen = duo_zk_mod_bytes(s->bits);
    rglen = duo_zk_range_bytes(s->bits);
    if ((buf = malloc(nlen + ctlen + lnlen + modlen + rglen)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    off = 0;
    if ((r = duo_paillier_pub_serialize(pk, buf + off, nlen)) != DUO_OK) {
        goto out;
    }
    resp->paillier_n.ptr = buf + off;
    resp->paillier_n.len = nlen;
    off += nlen;
    if ((r = duo_paillier_ciphertext_serialize(pk, buf + off, ctlen, ckey)) != DUO_OK) {
        goto out;
    }
    resp->ckey.ptr = buf + off;
    resp->ckey.len = ctlen;
    off += ctlen;
    if ((r = duo_zk_ln_prove(s->paillier, &cbind, buf + off, lnlen)) != DUO_OK) {
        goto out;
    }
    resp->proof_ln.ptr = buf + off;
    resp->proof_ln.len = lnlen;
    off += lnlen;
    if ((r = duo_zk_mod_prove(s->paillier, &cbind, s->rng, buf + off, modlen)) != DUO_OK) {
        goto out;
    }
    resp->proof_mod.ptr = buf + off;
    resp->proof_mod.len = modlen;
    off += modlen;
    if (s->precomp != NULL) {
        r = duo_zk_range_prove_precomp(s->ec, s->paillier, &cbind, ckey, x, rr, s->rng, s->precomp, buf + off, rglen);
        duo_zk_range_precomp_free(s->precomp); /* spent */
        s->precomp = NULL;
    } else {
        r = duo_zk_range_prove(s->ec, s->paillier, &cbind, ckey, x, rr, s->rng, buf + off, rglen);
    }
    if (r != DUO_OK) {
        goto out;
    }
    resp->proof_range.ptr = buf + off;
    resp->proof_range.len = rglen;
    memcpy(resp->q1, s->q1_bytes, 33);
    memcpy(resp->q1_proof, s->q1_proof, sizeof resp->q1_proof);
    memcpy(resp->q1_opening, s->q1_rand, 32);
    resp->buf = buf;
    buf = NULL;
    r = DUO_OK;
out:
    duo_memzero(&pok, sizeof pok);
    free(buf);
    BN_clear_free(x);
    BN_clear_free(rr);
    BN_clear_free(rn);
    BN_free(ckey);
    if (r != DUO_OK) {
        memset(resp, 0, sizeof *resp);
    }
    return p1e_leave(s, r, P1E_SHARED);
}

/* Round 3 (L_PDL): alpha = Dec(c'), kept secret; commit(alpha*G). */
int duo_p1_enroll_pdl_challenge(duo_p1_enroll *s, const duo_enroll_pdl_challenge_req *req,
                                duo_enroll_pdl_challenge_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_binding cbind;
    duo_transcript t;
    const duo_paillier_pub *pk;
    BIGNUM *c = NULL;
    duo_scalar am;
    duo_point ag;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1e_enter(s, P1E_SHARED)) != DUO_OK) {
        return r;
    }
    if (req == NULL || resp == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(resp, 0, sizeof *resp);
    if (!duo_ct_eq(req->sid, s->sid, 32)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    pk = duo_paillier_priv_pub(s->paillier);
    if ((c = BN_new()) == NULL || (s->alpha = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(s->alpha, BN_FLG_CONSTTIME);
    if ((r = duo_paillier_ciphertext_parse(pk, c, req->c_prime.ptr, req->c_prime.len)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_CIPHERTEXT);
        goto out;
    }
    memcpy(s->ab_commitment, req->ab_commitment, 32);
    if ((r = duo_paillier_decrypt(s->paillier, s->alpha, c)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_CIPHERTEXT);
        goto out;
    }
    /* alpha = 0 mod q would make alpha*G infinity: only a device that cheats
     * (or probability 1/q) gets there; nothing is revealed. It is the peer's
     * fault: its c' matches no (a, b) the protocol allows (issue 13 item 12:
     * this used to answer INTERNAL). */
    if ((r = duo_scalar_from_bn_mod(s->ec, &am, s->alpha)) != DUO_OK) {
        r = (r == DUO_E_BAD_SCALAR) ? DUO_E_PDL_MISMATCH : r;
        goto out;
    }
    if ((r = duo_point_mul_base(s->ec, &ag, &am)) != DUO_OK) {
        goto out;
    }
    duo_point_serialize(s->ec, s->alpha_point, &ag);
    memcpy(cbind.sid, s->sid, 32);
    cbind.role = DUO_ROLE_CLOUD;
    if ((r = duo_rng_bytes(s->rng, s->alpha_rand, sizeof s->alpha_rand)) != DUO_OK ||
        (r = duo_commit_begin(&t, "pdl-alpha", &cbind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "alphaG", s->alpha_point, sizeof s->alpha_point);
    if ((r = duo_commit_finish(&t, s->alpha_rand, resp->alpha_commitment)) != DUO_OK) {
        goto out;
    }
    r = DUO_OK;
out:
    duo_memzero(&am, sizeof am);
    BN_free(c);
    if (r != DUO_OK) {
        memset(resp, 0, sizeof *resp);
    }
    return p1e_leave(s, r, P1E_CHALLENGED);
}

/* Round 4 (L_PDL): check the (a, b) opening, a < q, b < q^2, and
 * alpha == a*x1 + b over the integers BEFORE opening alpha*G (without this
 * check the cloud would be a decryption oracle in the exponent). */
int duo_p1_enroll_pdl_open(duo_p1_enroll *s, const duo_enroll_pdl_open_req *req, duo_enroll_pdl_open_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_binding dbind;
    duo_transcript t;
    BN_CTX *bnctx = NULL;
    BIGNUM *a = NULL, *b = NULL, *q2 = NULL, *x = NULL, *e = NULL;
    uint8_t *e1 = NULL, *e2 = NULL;
    size_t nlen;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1e_enter(s, P1E_CHALLENGED)) != DUO_OK) {
        return r;
    }
    if (req == NULL || resp == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(resp, 0, sizeof *resp);
    if (!duo_ct_eq(req->sid, s->sid, 32)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    memcpy(dbind.sid, s->sid, 32);
    dbind.role = DUO_ROLE_DEVICE;
    if ((r = duo_commit_begin(&t, "pdl-ab", &dbind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "a", req->a, sizeof req->a);
    duo_transcript_bytes(&t, "b", req->b, sizeof req->b);
    if ((r = duo_commit_check(&t, req->ab_opening, s->ab_commitment)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_COMMITMENT);
        goto out;
    }
    if ((bnctx = BN_CTX_secure_new()) == NULL || (a = BN_new()) == NULL || (b = BN_new()) == NULL ||
        (q2 = BN_new()) == NULL || (x = BN_secure_new()) == NULL || (e = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (BN_bin2bn(req->a, sizeof req->a, a) == NULL || BN_bin2bn(req->b, sizeof req->b, b) == NULL ||
        !BN_sqr(q2, duo_ec_order(s->ec), bnctx)) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (BN_cmp(a, duo_ec_order(s->ec)) >= 0 || BN_cmp(b, q2) >= 0) {
        r = DUO_E_BAD_SCALAR;
        goto out;
    }
    /* e = a*x1 + b (< q^2 + q*q/3 << N: no reduction). */
    BN_set_flags(x, BN_FLG_CONSTTIME);
    BN_set_flags(e, BN_FLG_CONSTTIME);
    if ((r = duo_scalar_to_bn(&s->x1, x)) != DUO_OK) {
        goto out;
    }
    if (!BN_mul(e, a, x, bnctx) || !BN_add(e, e, b)) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    /* Compare as fixed-length strings in constant time. */
    nlen = (size_t)BN_num_bytes(duo_paillier_pub_n(duo_paillier_priv_pub(s->paillier)));
    if ((e1 = duo_secure_malloc(nlen)) == NULL || (e2 = duo_secure_malloc(nlen)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (BN_bn2binpad(e, e1, (int)nlen) < 0 || BN_bn2binpad(s->alpha, e2, (int)nlen) < 0) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if (!duo_ct_eq(e1, e2, nlen)) {
        r = DUO_E_PDL_MISMATCH;
        goto out;
    }
    memcpy(resp->alpha_point, s->alpha_point, 33);
    memcpy(resp->alpha_opening, s->alpha_rand, 32);
    r = DUO_OK;
out:
    duo_secure_free(e1);
    duo_secure_free(e2);
    BN_clear_free(s->alpha);
    s->alpha = NULL;
    BN_free(a);
    BN_free(b);
    BN_free(q2);
    BN_clear_free(x);
    BN_clear_free(e);
    BN_CTX_free(bnctx);
    if (r != DUO_OK) {
        memset(resp, 0, sizeof *resp);
    }
    return p1e_leave(s, r, P1E_OPENED);
}

/* Confirmation: sid, Q, and the MAC under the first device secret, derived
 * from x1*Q2 (the device derives it from x2*Q1). */
int duo_p1_enroll_confirm(duo_p1_enroll *s, const duo_enroll_confirm_req *req) {
    int r = DUO_E_INTERNAL;
    duo_point shared;
    uint8_t shared_bytes[33], qb[33], mi[32];

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1e_enter(s, P1E_OPENED)) != DUO_OK) {
        return r;
    }
    if (req == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    if (!duo_ct_eq(req->sid, s->sid, 32)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    duo_point_serialize(s->ec, qb, &s->q);
    if (!duo_ct_eq(req->public_key, qb, 33)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    if ((r = duo_point_mul(s->ec, &shared, &s->q2, &s->x1)) != DUO_OK) {
        goto out;
    }
    duo_point_serialize(s->ec, shared_bytes, &shared);
    if ((r = duo__device_secret(s->device_secret, s->sid, shared_bytes)) != DUO_OK ||
        (r = duo_wire_mac_input_enroll_confirm(mi, req)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_mac_check(s->device_secret, mi, req->mac)) != DUO_OK) {
        r = DUO_E_UNAUTHENTICATED;
        goto out;
    }
    r = DUO_OK;
out:
    duo_memzero(&shared, sizeof shared);
    duo_memzero(shared_bytes, sizeof shared_bytes);
    return p1e_leave(s, r, P1E_CONFIRMED);
}

int duo_p1_enroll_take_key(duo_p1_enroll *s, duo_p1_key **out, uint8_t device_secret[32]) {
    int r;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (out != NULL) {
        *out = NULL;
    }
    if ((r = p1e_enter(s, P1E_CONFIRMED)) != DUO_OK) {
        return r;
    }
    if (out == NULL || device_secret == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    r = duo_p1_key_new(out, s->ec, s->key_id, &s->x1, &s->q, &s->q2, s->paillier);
    s->paillier = NULL; /* taken on success and on failure */
    if (r == DUO_OK) {
        memcpy(device_secret, s->device_secret, 32);
    }
    duo_memzero(&s->x1, sizeof s->x1);
    duo_memzero(s->device_secret, sizeof s->device_secret);
    return p1e_leave(s, r, P1E_TAKEN);
}

int duo_p1_enroll_take_opened_key(duo_p1_enroll *s, duo_p1_key **out, uint8_t device_secret[32]) {
    int r;
    duo_point shared;
    uint8_t shared_bytes[33];

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (out != NULL) {
        *out = NULL;
    }
    if ((r = p1e_enter(s, P1E_OPENED)) != DUO_OK) {
        return r;
    }
    if (out == NULL || device_secret == NULL) {
        return p1e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    /* The same derivation as duo_p1_enroll_confirm. */
    if ((r = duo_point_mul(s->ec, &shared, &s->q2, &s->x1)) == DUO_OK) {
        duo_point_serialize(s->ec, shared_bytes, &shared);
        r = duo__device_secret(s->device_secret, s->sid, shared_bytes);
    }
    duo_memzero(&shared, sizeof shared);
    duo_memzero(shared_bytes, sizeof shared_bytes);
    if (r != DUO_OK) {
        return p1e_leave(s, r, 0);
    }
    r = duo_p1_key_new(out, s->ec, s->key_id, &s->x1, &s->q, &s->q2, s->paillier);
    s->paillier = NULL; /* taken on success and on failure */
    if (r == DUO_OK) {
        memcpy(device_secret, s->device_secret, 32);
    }
    duo_memzero(&s->x1, sizeof s->x1);
    duo_memzero(s->device_secret, sizeof s->device_secret);
    return p1e_leave(s, r, P1E_TAKEN);
}
