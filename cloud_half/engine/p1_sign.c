/* duosign P1: signing (DESIGN 3.3; Lindell 2017 Protocol 3.2, additive form,
 * device commits first; docs/PROTOCOL.md lists every check and its error).
 *
 * State table (any other call: DUO_E_PROTO_STATE, then sticky failure):
 *   NEW      --start-->   STARTED
 *   STARTED  --finish-->  CONSUMED (on success: DONE)
 * finish marks the session consumed before looking at the request, so a
 * replayed or concurrent second finish can never reach the decryption. */
#include <stdlib.h>
#include <string.h>

#include "duosign/commit.h"
#include "duosign/dlog_proof.h"
#include "duosign/mem.h"
#include "p1_internal.h"

enum { P1S_NEW = 0, P1S_STARTED, P1S_CONSUMED, P1S_CHECKED, P1S_DONE, P1S_FAILED };

struct duo_p1_sign {
    int state;
    const duo_ec *ec;
    const duo_rng *rng;
    const duo_p1_key *key;
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint8_t digest[DUO_DIGEST_BYTES];
    uint8_t r2_commitment[32];
    uint8_t presid[32];
    uint8_t sid[DUO_SID_BYTES];
    duo_scalar k1; /* SECRET nonce: wiped on every path out of finish */
    /* Between the two halves of round 2 (P1S_CHECKED): */
    duo_scalar rx; /* r = x(R) mod q (public: half of the signature) */
    BIGNUM *c3;    /* the checked ciphertext (public) */
};

static void p1s_fail(duo_p1_sign *s) {
    s->state = P1S_FAILED;
    duo_memzero(&s->k1, sizeof s->k1);
    BN_free(s->c3);
    s->c3 = NULL;
}

static int p1s_enter(duo_p1_sign *s, int expected) {
    if (s->state == P1S_FAILED) {
        return DUO_E_SESSION_FAILED;
    }
    if (s->state != expected) {
        p1s_fail(s);
        return DUO_E_PROTO_STATE;
    }
    return DUO_OK;
}

int duo_p1_sign_new(duo_p1_sign **out, const duo_ec *ec, const duo_rng *rng, const duo_p1_key *key) {
    duo_p1_sign *s;

    if (out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if (ec == NULL || key == NULL || key->paillier == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        return DUO_E_NOMEM;
    }
    s->ec = ec;
    s->rng = rng;
    s->key = key;
    s->state = P1S_NEW;
    *out = s;
    return DUO_OK;
}

void duo_p1_sign_free(duo_p1_sign *s) {
    if (s == NULL) {
        return;
    }
    BN_free(s->c3);
    duo_memzero(s, sizeof *s);
    free(s);
}

const uint8_t *duo_p1_sign_sid(const duo_p1_sign *s) { return s == NULL ? NULL : s->sid; }

int duo__p1_sign_nonce_wiped(const duo_p1_sign *s) { return s != NULL && duo_ct_is_zero(s->k1.b, sizeof s->k1.b); }

/* Round 1: store digest and commit(R2); cloud nonce, sid; k1, R1, PoK(k1) "R1". */
int duo_p1_sign_start(duo_p1_sign *s, const duo_sign_start_req *req, duo_sign_start_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_binding bind;
    duo_dlog_proof pok;
    duo_point r1;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1s_enter(s, P1S_NEW)) != DUO_OK) {
        return r;
    }
    if (req == NULL || resp == NULL) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    memset(resp, 0, sizeof *resp);
    if (!duo_ct_eq(req->key_id, s->key->key_id, DUO_KEY_ID_BYTES)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    memcpy(s->device_nonce, req->device_nonce, sizeof s->device_nonce);
    memcpy(s->digest, req->digest, sizeof s->digest);
    memcpy(s->r2_commitment, req->r2_commitment, sizeof s->r2_commitment);
    if ((r = duo__presid_sign(s->presid, req->key_id, req->device_nonce, req->digest)) != DUO_OK ||
        (r = duo_rng_bytes(s->rng, resp->cloud_nonce, sizeof resp->cloud_nonce)) != DUO_OK ||
        (r = duo__sid_sign(s->sid, req->key_id, req->device_nonce, resp->cloud_nonce, req->digest,
                           req->r2_commitment)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_scalar_random(s->ec, &s->k1, s->rng)) != DUO_OK ||
        (r = duo_point_mul_base(s->ec, &r1, &s->k1)) != DUO_OK) {
        goto out;
    }
    memcpy(bind.sid, s->sid, 32);
    bind.role = DUO_ROLE_CLOUD;
    if ((r = duo_dlog_prove(s->ec, &pok, &s->k1, &r1, &bind, "R1", s->rng)) != DUO_OK) {
        goto out;
    }
    duo_point_serialize(s->ec, resp->r1, &r1);
    duo_dlog_proof_serialize(s->ec, resp->r1_proof, &pok);
    r = DUO_OK;
out:
    duo_memzero(&pok, sizeof pok);
    if (r != DUO_OK) {
        if (resp != NULL) {
            memset(resp, 0, sizeof *resp);
        }
        p1s_fail(s);
    } else {
        s->state = P1S_STARTED;
    }
    return r;
}

/* Round 2, in exactly this order (DESIGN 3.3): consume; sid; PIN proof
 * (before any decryption); R2 opening and PoK(k2); R, r; c3 (all in
 * duo_p1_sign_finish_check); Dec; s; low-S; verify under Q
 * (duo_p1_sign_finish_decrypt). */
int duo_p1_sign_finish_check(duo_p1_sign *s, const duo_sign_finish_req *req, duo_sign_finish_resp *resp,
                             uint8_t r_out[32]) {
    int r = DUO_E_INTERNAL;
    duo_binding pbind, dbind;
    duo_transcript t;
    duo_dlog_proof pin_proof, k2_proof;
    duo_point r2, big_r;
    const duo_paillier_pub *pk;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1s_enter(s, P1S_STARTED)) != DUO_OK) {
        return r;
    }
    /* 0. Single use: from here on the session can never finish again. */
    s->state = P1S_CONSUMED;
    if (req == NULL || resp == NULL || r_out == NULL) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    memset(resp, 0, sizeof *resp);
    /* 1. sid. */
    if (!duo_ct_eq(req->sid, s->sid, 32)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    memcpy(dbind.sid, s->sid, 32);
    dbind.role = DUO_ROLE_DEVICE;
    /* 2. The PIN proof: PoK of the dlog of the stored Q2, bound to sid. A
     * wrong PIN unmasks to another x2 whose proof fails here, before any
     * Paillier decryption. Any failure (unparsable or not verifying) counts
     * as a wrong PIN; the request was MAC-authenticated by the caller. */
    pbind = dbind;
    if (duo_dlog_proof_parse(s->ec, &pin_proof, req->pin_proof, sizeof req->pin_proof) != DUO_OK ||
        duo_dlog_verify(s->ec, &pin_proof, &s->key->q2, &pbind, "pin") != DUO_OK) {
        r = DUO_E_WRONG_PIN;
        goto out;
    }
    /* 3. R2 opens the round-1 commitment (bound to the pre-sid), is a valid
     * point, and PoK(k2) "R2" verifies under the full sid. */
    memcpy(pbind.sid, s->presid, 32);
    if ((r = duo_commit_begin(&t, "R2", &pbind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "R2", req->r2, sizeof req->r2);
    if ((r = duo_commit_check(&t, req->r2_opening, s->r2_commitment)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_COMMITMENT);
        goto out;
    }
    if ((r = duo_point_parse(s->ec, &r2, req->r2, sizeof req->r2)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }
    if ((r = duo_dlog_proof_parse(s->ec, &k2_proof, req->r2_proof, sizeof req->r2_proof)) != DUO_OK ||
        (r = duo_dlog_verify(s->ec, &k2_proof, &r2, &dbind, "R2")) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    /* 4. R = k1*R2, r = x(R) mod q != 0. */
    if ((r = duo_point_mul(s->ec, &big_r, &r2, &s->k1)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_point_x_mod_q(s->ec, &s->rx, &big_r)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_SCALAR);
        goto out;
    }
    /* 5. c3: exact length and 0 < c3 < N^2 here. gcd(c3, N) = 1 is left to
     * the decryption, which rejects c3 with p | c3 or q | c3 (the same
     * condition for N = pq) with DUO_E_BAD_CIPHERTEXT before counting or
     * computing anything: duo_paillier_ciphertext_parse would check it with
     * a 2048-bit modular inverse first, paid twice on every signature. */
    pk = duo_paillier_priv_pub(s->key->paillier);
    if (req->c3.ptr == NULL || req->c3.len != duo_paillier_ciphertext_bytes(pk)) {
        r = DUO_E_BAD_CIPHERTEXT;
        goto out;
    }
    if ((s->c3 = BN_bin2bn(req->c3.ptr, (int)req->c3.len, NULL)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (BN_is_zero(s->c3) || BN_cmp(s->c3, duo_paillier_pub_n2(pk)) >= 0) {
        r = DUO_E_BAD_CIPHERTEXT;
        goto out;
    }
    /* The seed of the next device secret, released with the signature. */
    if ((r = duo_rng_bytes(s->rng, resp->rotate_seed, sizeof resp->rotate_seed)) != DUO_OK) {
        goto out;
    }
    memcpy(r_out, s->rx.b, 32);
    r = DUO_OK;
out:
    if (r != DUO_OK) {
        if (resp != NULL) {
            memset(resp, 0, sizeof *resp);
        }
        p1s_fail(s);
    } else {
        s->state = P1S_CHECKED;
    }
    return r;
}

int duo_p1_sign_finish_decrypt(duo_p1_sign *s, duo_sign_finish_resp *resp) {
    int r = DUO_E_INTERNAL;
    duo_scalar sp, k1inv, sc;
    BIGNUM *m = NULL;
    uint8_t sig[64];

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1s_enter(s, P1S_CHECKED)) != DUO_OK) {
        return r;
    }
    if (resp == NULL) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    if ((m = BN_secure_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(m, BN_FLG_CONSTTIME);
    /* 6. s' = Dec(c3) (CRT, constant time; rejects gcd(c3, N) != 1);
     * s = k1^-1 s' mod q. */
    if ((r = duo_paillier_decrypt(s->key->paillier, m, s->c3)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_CIPHERTEXT);
        goto out;
    }
    if ((r = duo_scalar_from_bn_mod(s->ec, &sp, m)) != DUO_OK) {
        /* s' = 0 mod q: s would be 0. After a valid PIN proof this is a
         * malformed share (or probability 1/q). */
        r = (r == DUO_E_BAD_SCALAR) ? DUO_E_PEER_CHEATED : r;
        goto out;
    }
    if ((r = duo_scalar_inverse(s->ec, &k1inv, &s->k1)) != DUO_OK ||
        (r = duo_scalar_mul(s->ec, &sc, &k1inv, &sp)) != DUO_OK) {
        goto out;
    }
    memcpy(sig, s->rx.b, 32);
    memcpy(sig + 32, sc.b, 32);
    /* 7. low-S, then 8. verify under Q: a failure after a valid PIN proof
     * means a malicious device (Lindell's abort rule; the caller freezes the
     * key). The signature never leaves the engine in that case. */
    if ((r = duo_ecdsa_normalize(s->ec, sig)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_PEER_CHEATED);
        goto out;
    }
    if (duo_ecdsa_verify(s->ec, sig, s->digest, &s->key->q) != DUO_OK) {
        r = DUO_E_PEER_CHEATED;
        goto out;
    }
    memcpy(resp->signature, sig, 64);
    r = DUO_OK;
out:
    duo_memzero(&k1inv, sizeof k1inv);
    duo_memzero(&sp, sizeof sp);
    duo_memzero(&sc, sizeof sc);
    duo_memzero(sig, sizeof sig);
    BN_clear_free(m);
    if (r != DUO_OK && resp != NULL) {
        memset(resp, 0, sizeof *resp);
    }
    p1s_fail(s); /* wipes k1 and frees c3 on every path */
    if (r == DUO_OK) {
        s->state = P1S_DONE;
    }
    return r;
}

int duo_p1_sign_finish(duo_p1_sign *s, const duo_sign_finish_req *req, duo_sign_finish_resp *resp) {
    uint8_t rx[32];
    int r = duo_p1_sign_finish_check(s, req, resp, rx);
    if (r == DUO_OK) {
        r = duo_p1_sign_finish_decrypt(s, resp);
    }
    return r;
}

/* ---- round 1's state for another node (DESIGN 8.6) ---- */

int duo_p1_sign_export(duo_p1_sign *s, uint8_t out[DUO_P1_SIGN_STATE_BYTES]) {
    uint8_t *p = out;
    int r;

    if (s == NULL || out == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p1s_enter(s, P1S_STARTED)) != DUO_OK) {
        return r;
    }
    *p++ = DUO_P1_SIGN_STATE_V1;
    memcpy(p, s->key->key_id, DUO_KEY_ID_BYTES);
    p += DUO_KEY_ID_BYTES;
    memcpy(p, s->device_nonce, DUO_NONCE_BYTES);
    p += DUO_NONCE_BYTES;
    memcpy(p, s->digest, DUO_DIGEST_BYTES);
    p += DUO_DIGEST_BYTES;
    memcpy(p, s->r2_commitment, 32);
    p += 32;
    memcpy(p, s->presid, 32);
    p += 32;
    memcpy(p, s->sid, DUO_SID_BYTES);
    p += DUO_SID_BYTES;
    memcpy(p, s->k1.b, 32);
    p1s_fail(s); /* the exported copy is the only one: this one can never finish */
    return DUO_OK;
}

int duo_p1_sign_import(duo_p1_sign **out, const duo_ec *ec, const duo_rng *rng, const duo_p1_key *key,
                       const uint8_t in[DUO_P1_SIGN_STATE_BYTES]) {
    duo_p1_sign *s = NULL;
    const uint8_t *p = in;
    uint8_t presid[32];
    int r;

    if (out != NULL) {
        *out = NULL;
    }
    if (in == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_p1_sign_new(&s, ec, rng, key)) != DUO_OK) {
        return r;
    }
    if (*p++ != DUO_P1_SIGN_STATE_V1) {
        r = DUO_E_STATE_CORRUPT;
        goto out;
    }
    if (!duo_ct_eq(p, key->key_id, DUO_KEY_ID_BYTES)) {
        r = DUO_E_SESSION_MISMATCH;
        goto out;
    }
    p += DUO_KEY_ID_BYTES;
    memcpy(s->device_nonce, p, DUO_NONCE_BYTES);
    p += DUO_NONCE_BYTES;
    memcpy(s->digest, p, DUO_DIGEST_BYTES);
    p += DUO_DIGEST_BYTES;
    memcpy(s->r2_commitment, p, 32);
    p += 32;
    memcpy(s->presid, p, 32);
    p += 32;
    memcpy(s->sid, p, DUO_SID_BYTES);
    p += DUO_SID_BYTES;
    /* The pre-sid follows from fields already read: a state whose fields do
     * not belong together is refused before k1 is touched. */
    if ((r = duo__presid_sign(presid, key->key_id, s->device_nonce, s->digest)) != DUO_OK) {
        goto out;
    }
    if (!duo_ct_eq(presid, s->presid, 32) || duo_scalar_parse(ec, &s->k1, p) != DUO_OK) {
        r = DUO_E_STATE_CORRUPT;
        goto out;
    }
    s->state = P1S_STARTED;
    *out = s;
    s = NULL;
    r = DUO_OK;
out:
    duo_p1_sign_free(s); /* wipes k1 */
    return r;
}
