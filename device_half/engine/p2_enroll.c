/* duosign P2: enrolment (DESIGN 3.2; Lindell 2017 Protocol 3.1, additive form,
 * P2 side; docs/PROTOCOL.md lists every check and its error).
 *
 * State table (any other call: DUO_E_PROTO_STATE, then sticky failure):
 *   NEW        --start-->              STARTED
 *   STARTED    --on_start-->           SHARE_SENT
 *   SHARE_SENT --on_key_share-->       PDL_SENT
 *   PDL_SENT   --on_pdl_challenge-->   PDL_OPENED
 *   PDL_OPENED --on_pdl_open-->        DONE
 *   DONE       --take_key (once), confirm (once)--> DONE / CONFIRMED */
#include <stdlib.h>
#include <string.h>

#include "duosign/commit.h"
#include "duosign/dlog_proof.h"
#include "duosign/mem.h"
#include "duosign/zk_paillier.h"
#include "p2_internal.h"

enum { P2E_NEW = 0, P2E_STARTED, P2E_SHARE_SENT, P2E_PDL_SENT, P2E_PDL_OPENED, P2E_DONE, P2E_CONFIRMED, P2E_FAILED };

struct duo_p2_enroll {
    int state;
    const duo_ec *ec;
    const duo_rng *rng;
    unsigned bits;
    uint8_t token[DUO_TOKEN_MAX];
    size_t token_len;
    uint8_t pin[DUO_PIN_MAX]; /* SECRET, wiped once masked */
    size_t pin_len;
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t sid[DUO_SID_BYTES];
    uint8_t q1_commitment[32];
    duo_scalar x2; /* SECRET */
    duo_point q2, q1, q;
    duo_paillier_pub *pk;
    BIGNUM *ckey;
    uint8_t a[32]; /* PDL challenge (secret until opened) */
    uint8_t b[DUO_PDL_B_BYTES];
    uint8_t ab_rand[DUO_COMMIT_RAND_BYTES];
    duo_point qprime; /* a*Q1 + b*G */
    uint8_t alpha_commitment[32];
    uint8_t device_secret[32]; /* SECRET */
    duo_p2_key *key;           /* built at on_pdl_open, handed out by take_key */
    int key_taken;
};

static void p2e_wipe(duo_p2_enroll *s) {
    duo_memzero(s->pin, sizeof s->pin);
    duo_memzero(&s->x2, sizeof s->x2);
    duo_memzero(s->a, sizeof s->a);
    duo_memzero(s->b, sizeof s->b);
    duo_memzero(s->ab_rand, sizeof s->ab_rand);
}

static void p2e_fail(duo_p2_enroll *s) {
    s->state = P2E_FAILED;
    p2e_wipe(s);
    duo_memzero(s->device_secret, sizeof s->device_secret);
    duo_p2_key_free(s->key);
    s->key = NULL;
}

/* The dispatch check of every entry point. */
static int p2e_enter(duo_p2_enroll *s, int expected) {
    if (s->state == P2E_FAILED) {
        return DUO_E_SESSION_FAILED;
    }
    if (s->state != expected) {
        p2e_fail(s);
        return DUO_E_PROTO_STATE;
    }
    return DUO_OK;
}

static int p2e_leave(duo_p2_enroll *s, int r, int next_state) {
    if (r != DUO_OK) {
        p2e_fail(s);
    } else {
        s->state = next_state;
    }
    return r;
}

int duo_p2_enroll_new(duo_p2_enroll **out, const duo_p2_enroll_params *params) {
    duo_p2_enroll *s;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if (params == NULL || params->ec == NULL || params->token == NULL || params->token_len == 0 ||
        params->token_len > DUO_TOKEN_MAX || params->pin == NULL || params->pin_len == 0 ||
        params->pin_len > DUO_PIN_MAX) {
        return DUO_E_INVALID_ARG;
    }
    if (!duo_paillier_bits_supported(params->paillier_bits)) {
        return DUO_E_UNSUPPORTED;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        return DUO_E_NOMEM;
    }
    s->ec = params->ec;
    s->rng = params->rng;
    s->bits = params->paillier_bits;
    memcpy(s->token, params->token, params->token_len);
    s->token_len = params->token_len;
    memcpy(s->pin, params->pin, params->pin_len);
    s->pin_len = params->pin_len;
    s->state = P2E_NEW;
    *out = s;
    return DUO_OK;
}

void duo_p2_enroll_free(duo_p2_enroll *s) {
    if (s == NULL) {
        return;
    }
    p2e_wipe(s);
    duo_paillier_pub_free(s->pk);
    BN_free(s->ckey);
    duo_p2_key_free(s->key);
    duo_memzero(s, sizeof *s);
    free(s);
}

const uint8_t *duo_p2_enroll_sid(const duo_p2_enroll *s) { return s == NULL ? NULL : s->sid; }

/* Round 1 request: token and a fresh device nonce. */
int duo_p2_enroll_start(duo_p2_enroll *s, duo_enroll_start_req *req) {
    int r;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2e_enter(s, P2E_NEW)) != DUO_OK) {
        return r;
    }
    if (req == NULL) {
        return p2e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(req, 0, sizeof *req);
    if ((r = duo_rng_bytes(s->rng, s->device_nonce, sizeof s->device_nonce)) != DUO_OK) {
        return p2e_leave(s, r, 0);
    }
    memcpy(req->token, s->token, s->token_len);
    req->token_len = s->token_len;
    memcpy(req->device_nonce, s->device_nonce, sizeof s->device_nonce);
    req->paillier_bits = s->bits;
    req->curve = duo_ec_curve(s->ec);
    return p2e_leave(s, DUO_OK, P2E_STARTED);
}

/* Round 1 response -> round 2 request: sid, x2, Q2, PoK(x2) "Q2". */
int duo_p2_enroll_on_start(duo_p2_enroll *s, const duo_enroll_start_resp *resp, duo_enroll_key_share_req *next) {
    int r = DUO_E_INTERNAL;
    duo_binding bind;
    duo_dlog_proof pok;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2e_enter(s, P2E_STARTED)) != DUO_OK) {
        return r;
    }
    if (resp == NULL || next == NULL) {
        return p2e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(next, 0, sizeof *next);
    memcpy(s->key_id, resp->key_id, sizeof s->key_id);
    memcpy(s->q1_commitment, resp->q1_commitment, sizeof s->q1_commitment);
    if ((r = duo__sid_enroll(s->sid, s->key_id, s->device_nonce, resp->cloud_nonce)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_scalar_random(s->ec, &s->x2, s->rng)) != DUO_OK ||
        (r = duo_point_mul_base(s->ec, &s->q2, &s->x2)) != DUO_OK) {
        goto out;
    }
    memcpy(bind.sid, s->sid, sizeof bind.sid);
    bind.role = DUO_ROLE_DEVICE;
    if ((r = duo_dlog_prove(s->ec, &pok, &s->x2, &s->q2, &bind, "Q2", s->rng)) != DUO_OK) {
        goto out;
    }
    memcpy(next->sid, s->sid, sizeof next->sid);
    duo_point_serialize(s->ec, next->q2, &s->q2);
    duo_dlog_proof_serialize(s->ec, next->q2_proof, &pok);
    r = DUO_OK;
out:
    duo_memzero(&pok, sizeof pok);
    if (r != DUO_OK) {
        memset(next, 0, sizeof *next);
    }
    return p2e_leave(s, r, P2E_SHARE_SENT);
}

/* Round 2 response: every check on the cloud's key material, in order; then
 * the first L_PDL message c' = a (.) ckey (+) Enc(b), commit(a, b). */
int duo_p2_enroll_on_key_share(duo_p2_enroll *s, const duo_enroll_key_share_resp *resp,
                               duo_enroll_pdl_challenge_req *next) {
    int r = DUO_E_INTERNAL;
    duo_binding cbind, dbind;
    duo_transcript t;
    duo_dlog_proof pok;
    duo_scalar a, bq;
    duo_point aq1, bg;
    BIGNUM *a_bn = NULL, *b_bn = NULL, *q2bn = NULL, *tmp = NULL, *eb = NULL, *rn = NULL, *cp = NULL;
    BN_CTX *bnctx = NULL;
    size_t ctlen;
    int tries;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2e_enter(s, P2E_SHARE_SENT)) != DUO_OK) {
        return r;
    }
    if (resp == NULL || next == NULL) {
        return p2e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(next, 0, sizeof *next);
    memcpy(cbind.sid, s->sid, 32);
    cbind.role = DUO_ROLE_CLOUD;
    memcpy(dbind.sid, s->sid, 32);
    dbind.role = DUO_ROLE_DEVICE;

    /* 1. The opening of the round-1 commitment to (Q1, PoK(x1)), over the
     * exact bytes received (compressed points have one encoding). */
    if ((r = duo_commit_begin(&t, "Q1", &cbind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "Q1", resp->q1, sizeof resp->q1);
    duo_transcript_bytes(&t, "proof", resp->q1_proof, sizeof resp->q1_proof);
    if ((r = duo_commit_check(&t, resp->q1_opening, s->q1_commitment)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_COMMITMENT);
        goto out;
    }
    /* 2. Q1 on the curve; 3. PoK(x1) bound to sid, role cloud, "Q1". */
    if ((r = duo_point_parse(s->ec, &s->q1, resp->q1, sizeof resp->q1)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }
    if ((r = duo_dlog_proof_parse(s->ec, &pok, resp->q1_proof, sizeof resp->q1_proof)) != DUO_OK ||
        (r = duo_dlog_verify(s->ec, &pok, &s->q1, &cbind, "Q1")) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    /* 4. N: exactly the agreed size, odd, not prime, not a square, no factor
     * below 2^16. */
    if ((r = duo_paillier_pub_parse(&s->pk, resp->paillier_n.ptr, resp->paillier_n.len, s->bits)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_MODULUS);
        goto out;
    }
    /* 5. L_N (gcd(N, phi(N)) = 1); 6. Pi-mod (Paillier-Blum). */
    if ((r = duo_zk_ln_verify(s->pk, &cbind, resp->proof_ln.ptr, resp->proof_ln.len)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    if ((r = duo_zk_mod_verify(s->pk, &cbind, resp->proof_mod.ptr, resp->proof_mod.len)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    /* 7. ckey: exact length, 0 < c < N^2, gcd(c, N) = 1. */
    if ((s->ckey = BN_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_paillier_ciphertext_parse(s->pk, s->ckey, resp->ckey.ptr, resp->ckey.len)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_CIPHERTEXT);
        goto out;
    }
    /* 8. L_P: ckey encrypts a value in the range (Lindell 2017 appendix A). */
    if ((r = duo_zk_range_verify(s->ec, s->pk, &cbind, s->ckey, resp->proof_range.ptr, resp->proof_range.len)) !=
        DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    /* 9. Q = Q1 + Q2 is not infinity. */
    if ((r = duo_point_add(s->ec, &s->q, &s->q1, &s->q2)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }

    /* L_PDL, first message. a in [1, q), b in [0, q^2) with b != 0 mod q, so
     * that a*Q1 + b*G only involves nonzero scalars (redrawing costs a
     * negligible bias). */
    if ((bnctx = BN_CTX_new()) == NULL || (a_bn = BN_secure_new()) == NULL || (b_bn = BN_secure_new()) == NULL ||
        (q2bn = BN_new()) == NULL || (tmp = BN_secure_new()) == NULL || (eb = BN_new()) == NULL ||
        (rn = BN_secure_new()) == NULL || (cp = BN_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (!BN_sqr(q2bn, duo_ec_order(s->ec), bnctx)) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_scalar_random(s->ec, &a, s->rng)) != DUO_OK) {
        goto out;
    }
    for (tries = 0;; tries++) {
        if (tries == 64) {
            r = DUO_E_RNG;
            goto out;
        }
        if ((r = duo_bn_random_below(b_bn, q2bn, s->rng)) != DUO_OK) {
            goto out;
        }
        r = duo_scalar_from_bn_mod(s->ec, &bq, b_bn);
        if (r == DUO_OK) {
            break;
        }
        if (r != DUO_E_BAD_SCALAR) {
            goto out;
        }
    }
    memcpy(s->a, a.b, 32);
    if (BN_bn2binpad(b_bn, s->b, DUO_PDL_B_BYTES) != DUO_PDL_B_BYTES) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_point_mul(s->ec, &aq1, &s->q1, &a)) != DUO_OK || (r = duo_point_mul_base(s->ec, &bg, &bq)) != DUO_OK) {
        goto out;
    }
    /* a*x1 + b == 0 mod q has probability 1/q. */
    if ((r = duo_point_add(s->ec, &s->qprime, &aq1, &bg)) != DUO_OK) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_scalar_to_bn(&a, a_bn)) != DUO_OK || (r = duo_paillier_mul(s->pk, tmp, s->ckey, a_bn)) != DUO_OK ||
        (r = duo_paillier_rn(s->pk, rn, s->rng)) != DUO_OK ||
        (r = duo_paillier_encrypt(s->pk, eb, b_bn, rn)) != DUO_OK ||
        (r = duo_paillier_add(s->pk, cp, tmp, eb)) != DUO_OK) {
        r = (r == DUO_E_NOMEM || r == DUO_E_RNG) ? r : DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_rng_bytes(s->rng, s->ab_rand, sizeof s->ab_rand)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_commit_begin(&t, "pdl-ab", &dbind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "a", s->a, sizeof s->a);
    duo_transcript_bytes(&t, "b", s->b, sizeof s->b);
    if ((r = duo_commit_finish(&t, s->ab_rand, next->ab_commitment)) != DUO_OK) {
        goto out;
    }
    ctlen = duo_paillier_ciphertext_bytes(s->pk);
    if ((next->buf = malloc(ctlen)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_paillier_ciphertext_serialize(s->pk, next->buf, ctlen, cp)) != DUO_OK) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    next->c_prime.ptr = next->buf;
    next->c_prime.len = ctlen;
    memcpy(next->sid, s->sid, 32);
    r = DUO_OK;
out:
    duo_memzero(&pok, sizeof pok);
    duo_memzero(&a, sizeof a);
    duo_memzero(&bq, sizeof bq);
    BN_clear_free(a_bn);
    BN_clear_free(b_bn);
    BN_free(q2bn);
    BN_clear_free(tmp);
    BN_clear_free(eb);
    BN_clear_free(rn);
    BN_free(cp);
    BN_CTX_free(bnctx);
    if (r != DUO_OK) {
        free(next->buf);
        memset(next, 0, sizeof *next);
    }
    return p2e_leave(s, r, P2E_PDL_SENT);
}

/* Round 3 response: store commit(alpha*G); open (a, b). */
int duo_p2_enroll_on_pdl_challenge(duo_p2_enroll *s, const duo_enroll_pdl_challenge_resp *resp,
                                   duo_enroll_pdl_open_req *next) {
    int r;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2e_enter(s, P2E_PDL_SENT)) != DUO_OK) {
        return r;
    }
    if (resp == NULL || next == NULL) {
        return p2e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memcpy(s->alpha_commitment, resp->alpha_commitment, 32);
    memset(next, 0, sizeof *next);
    memcpy(next->sid, s->sid, 32);
    memcpy(next->a, s->a, 32);
    memcpy(next->b, s->b, DUO_PDL_B_BYTES);
    memcpy(next->ab_opening, s->ab_rand, 32);
    return p2e_leave(s, DUO_OK, P2E_PDL_OPENED);
}

/* Round 4 response: alpha*G must open the commitment and equal a*Q1 + b*G.
 * Then the key: Q, the first device secret, the PIN-masked share. */
int duo_p2_enroll_on_pdl_open(duo_p2_enroll *s, const duo_enroll_pdl_open_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_binding cbind;
    duo_transcript t;
    duo_point alpha_g, shared;
    uint8_t shared_bytes[33];
    duo_p2_key *key = NULL;
    int tries;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2e_enter(s, P2E_PDL_OPENED)) != DUO_OK) {
        return r;
    }
    if (resp == NULL) {
        return p2e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memcpy(cbind.sid, s->sid, 32);
    cbind.role = DUO_ROLE_CLOUD;
    if ((r = duo_commit_begin(&t, "pdl-alpha", &cbind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "alphaG", resp->alpha_point, sizeof resp->alpha_point);
    if ((r = duo_commit_check(&t, resp->alpha_opening, s->alpha_commitment)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_COMMITMENT);
        goto out;
    }
    if ((r = duo_point_parse(s->ec, &alpha_g, resp->alpha_point, sizeof resp->alpha_point)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }
    if (!duo_point_eq_var(s->ec, &alpha_g, &s->qprime)) {
        r = DUO_E_PDL_MISMATCH;
        goto out;
    }
    /* Accepted. Device secret from x2*Q1 (= x1*Q2 at the cloud). */
    if ((r = duo_point_mul(s->ec, &shared, &s->q1, &s->x2)) != DUO_OK) {
        goto out;
    }
    duo_point_serialize(s->ec, shared_bytes, &shared);
    if ((r = duo__device_secret(s->device_secret, s->sid, shared_bytes)) != DUO_OK) {
        goto out;
    }
    if ((key = calloc(1, sizeof *key)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    memcpy(key->key_id, s->key_id, sizeof key->key_id);
    key->q = s->q;
    for (tries = 0; tries < 4; tries++) {
        if ((r = duo_rng_bytes(s->rng, key->pin_salt, sizeof key->pin_salt)) != DUO_OK) {
            goto out;
        }
        if ((r = duo__p2_pin_mask(s->ec, &key->x2_masked, &s->x2, s->pin, s->pin_len, key->pin_salt)) !=
            DUO_E_INTERNAL) {
            break;
        }
    }
    if (r != DUO_OK) {
        goto out;
    }
    memcpy(key->device_secret, s->device_secret, 32);
    key->paillier = s->pk;
    key->ckey = s->ckey;
    s->pk = NULL;
    s->ckey = NULL;
    s->key = key;
    key = NULL;
    r = DUO_OK;
out:
    duo_memzero(shared_bytes, sizeof shared_bytes);
    duo_memzero(&shared, sizeof shared);
    duo_p2_key_free(key);
    /* The PIN, x2 and the PDL values are no longer needed on any path. */
    p2e_wipe(s);
    return p2e_leave(s, r, P2E_DONE);
}

int duo_p2_enroll_take_key(duo_p2_enroll *s, duo_p2_key **out) {
    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if (out != NULL) {
        *out = NULL;
    }
    if (s->state == P2E_FAILED) {
        return DUO_E_SESSION_FAILED;
    }
    if ((s->state != P2E_DONE && s->state != P2E_CONFIRMED) || s->key_taken || s->key == NULL) {
        p2e_fail(s);
        return DUO_E_PROTO_STATE;
    }
    if (out == NULL) {
        p2e_fail(s);
        return DUO_E_INVALID_ARG;
    }
    *out = s->key;
    s->key = NULL;
    s->key_taken = 1;
    return DUO_OK;
}

int duo_p2_enroll_confirm(duo_p2_enroll *s, duo_enroll_confirm_req *req) {
    int r;
    uint8_t mi[32];

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2e_enter(s, P2E_DONE)) != DUO_OK) {
        return r;
    }
    if (req == NULL) {
        return p2e_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(req, 0, sizeof *req);
    memcpy(req->sid, s->sid, 32);
    duo_point_serialize(s->ec, req->public_key, &s->q);
    if ((r = duo_wire_mac_input_enroll_confirm(mi, req)) == DUO_OK) {
        r = duo_mac_compute(req->mac, s->device_secret, mi);
    }
    duo_memzero(mi, sizeof mi);
    if (r != DUO_OK) {
        memset(req, 0, sizeof *req);
        return p2e_leave(s, r, 0);
    }
    duo_memzero(s->device_secret, sizeof s->device_secret);
    return p2e_leave(s, DUO_OK, P2E_CONFIRMED);
}
