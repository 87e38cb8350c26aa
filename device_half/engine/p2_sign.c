/* duosign P2: signing (DESIGN 3.3; Lindell 2017 Protocol 3.2, additive form,
 * device commits first; docs/PROTOCOL.md lists every check and its error).
 *
 * The device commits to R2 before the cloud nonce exists, so that commitment
 * is bound to a pre-sid H(key_id, device_nonce, digest); PoK(k2) and the PIN
 * proof, sent in round 2, are bound to the full sid.
 *
 * State table (any other call: DUO_E_PROTO_STATE, then sticky failure):
 *   NEW --start--> STARTED --on_start--> FINISH_SENT --on_finish--> DONE */
#include <stdlib.h>
#include <string.h>

#include "duosign/commit.h"
#include "duosign/dlog_proof.h"
#include "duosign/mem.h"
#include "p2_internal.h"

enum { P2S_NEW = 0, P2S_STARTED, P2S_FINISH_SENT, P2S_DONE, P2S_FAILED };

struct duo_p2_sign {
    int state;
    const duo_ec *ec;
    const duo_rng *rng;
    const duo_p2_key *key;
    uint8_t pin[DUO_PIN_MAX]; /* SECRET (pin_len 0: kdf holds the prepared KDF output) */
    size_t pin_len;
    duo_scalar kdf; /* SECRET: KDF(PIN, salt) made by the caller (duo_p2_pin_kdf) */
    uint8_t digest[DUO_DIGEST_BYTES];
    int purpose;
    const uint8_t *purpose_data; /* borrowed until sign_start */
    size_t purpose_data_len;
    BIGNUM *rn; /* precomputed r^N mod N^2 (secret), single use */
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint8_t presid[32];
    uint8_t sid[DUO_SID_BYTES];
    uint8_t r2_commitment[32];
    uint8_t r2_rand[DUO_COMMIT_RAND_BYTES];
    duo_scalar k2; /* SECRET nonce */
    duo_point r2;
};

/* The purpose and its extra field into the request (before its MAC). */
static int set_purpose(duo_sign_start_req *req, const duo_p2_sign *s) {
    req->purpose = (duo_sign_purpose)s->purpose;
    req->csr_info_len = req->login_challenge_len = 0;
    if (s->purpose == DUO_SIGN_PURPOSE_CSR) {
        if (s->purpose_data_len == 0 || s->purpose_data_len > sizeof req->csr_info) return DUO_E_INVALID_ARG;
        memcpy(req->csr_info, s->purpose_data, s->purpose_data_len);
        req->csr_info_len = s->purpose_data_len;
    } else if (s->purpose == DUO_SIGN_PURPOSE_LOGIN) {
        if (s->purpose_data_len == 0 || s->purpose_data_len > sizeof req->login_challenge) return DUO_E_INVALID_ARG;
        memcpy(req->login_challenge, s->purpose_data, s->purpose_data_len);
        req->login_challenge_len = s->purpose_data_len;
    } else if (s->purpose_data_len != 0) {
        return DUO_E_INVALID_ARG;
    }
    return DUO_OK;
}

static void p2s_wipe(duo_p2_sign *s) {
    duo_memzero(s->pin, sizeof s->pin);
    duo_memzero(&s->kdf, sizeof s->kdf);
    duo_memzero(&s->k2, sizeof s->k2);
    BN_clear_free(s->rn);
    s->rn = NULL;
}

static void p2s_fail(duo_p2_sign *s) {
    s->state = P2S_FAILED;
    p2s_wipe(s);
}

static int p2s_enter(duo_p2_sign *s, int expected) {
    if (s->state == P2S_FAILED) {
        return DUO_E_SESSION_FAILED;
    }
    if (s->state != expected) {
        p2s_fail(s);
        return DUO_E_PROTO_STATE;
    }
    return DUO_OK;
}

static int p2s_leave(duo_p2_sign *s, int r, int next_state) {
    if (r != DUO_OK) {
        p2s_fail(s);
    } else {
        s->state = next_state;
    }
    return r;
}

int duo_p2_sign_new(duo_p2_sign **out, const duo_p2_sign_params *params) {
    duo_p2_sign *s;
    BIGNUM *rn = params != NULL ? params->precomputed_rn : NULL;
    duo_scalar kdf;
    int has_pin, has_kdf;

    memset(&kdf, 0, sizeof kdf);

    if (out == NULL) {
        BN_clear_free(rn);
        return DUO_E_INVALID_ARG;
    }
    *out = NULL;
    if (params == NULL || params->ec == NULL || params->key == NULL || params->key->paillier == NULL ||
        params->key->ckey == NULL || params->digest == NULL || params->purpose < 0 ||
        params->purpose >= DUO_SIGN_PURPOSE_COUNT || (params->purpose_data == NULL && params->purpose_data_len != 0)) {
        BN_clear_free(rn);
        return DUO_E_INVALID_ARG;
    }
    /* Exactly one source of the PIN: the PIN itself (the KDF runs in
     * on_start) or the KDF output the caller derived beforehand. */
    has_pin = params->pin != NULL || params->pin_len != 0;
    has_kdf = params->pin_kdf != NULL;
    if (has_pin == has_kdf ||
        (has_pin && (params->pin == NULL || params->pin_len == 0 || params->pin_len > DUO_PIN_MAX))) {
        BN_clear_free(rn);
        return DUO_E_INVALID_ARG;
    }
    /* A prepared value is a KDF output: in [1, q-1] (checked in constant time). */
    if (has_kdf && duo_scalar_parse(params->ec, &kdf, params->pin_kdf->b) != DUO_OK) {
        duo_memzero(&kdf, sizeof kdf);
        BN_clear_free(rn);
        return DUO_E_INVALID_ARG;
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        duo_memzero(&kdf, sizeof kdf);
        BN_clear_free(rn);
        return DUO_E_NOMEM;
    }
    s->ec = params->ec;
    s->rng = params->rng;
    s->key = params->key;
    if (has_pin) {
        memcpy(s->pin, params->pin, params->pin_len);
        s->pin_len = params->pin_len;
    } else {
        s->kdf = kdf;
        duo_memzero(&kdf, sizeof kdf);
    }
    memcpy(s->digest, params->digest, DUO_DIGEST_BYTES);
    s->purpose = params->purpose;
    s->purpose_data = params->purpose_data;
    s->purpose_data_len = params->purpose_data_len;
    s->rn = rn;
    s->state = P2S_NEW;
    *out = s;
    return DUO_OK;
}

void duo_p2_sign_free(duo_p2_sign *s) {
    if (s == NULL) {
        return;
    }
    p2s_wipe(s);
    duo_memzero(s, sizeof *s);
    free(s);
}

const uint8_t *duo_p2_sign_sid(const duo_p2_sign *s) { return s == NULL ? NULL : s->sid; }

int duo__p2_sign_nonce_wiped(const duo_p2_sign *s) { return s != NULL && duo_ct_is_zero(s->k2.b, sizeof s->k2.b); }

/* Round 1: device nonce, k2, R2, commit(R2) under the pre-sid, MAC. */
int duo_p2_sign_start(duo_p2_sign *s, duo_sign_start_req *req) {
    int r = DUO_E_INTERNAL;
    duo_binding bind;
    duo_transcript t;
    uint8_t r2b[33], mi[32];

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2s_enter(s, P2S_NEW)) != DUO_OK) {
        return r;
    }
    if (req == NULL) {
        return p2s_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(req, 0, sizeof *req);
    if ((r = duo_rng_bytes(s->rng, s->device_nonce, sizeof s->device_nonce)) != DUO_OK ||
        (r = duo__presid_sign(s->presid, s->key->key_id, s->device_nonce, s->digest)) != DUO_OK) {
        goto out;
    }
    if ((r = duo_scalar_random(s->ec, &s->k2, s->rng)) != DUO_OK ||
        (r = duo_point_mul_base(s->ec, &s->r2, &s->k2)) != DUO_OK) {
        goto out;
    }
    /* R2 is sent in round 2 (here only its hiding commitment): declassified
     * for the ctime test; only point encoding runs on it before then. */
    duo__declassify(&s->r2, sizeof s->r2);
    duo__declassify(s->device_nonce, sizeof s->device_nonce); /* sent */
    duo_point_serialize(s->ec, r2b, &s->r2);
    memcpy(bind.sid, s->presid, 32);
    bind.role = DUO_ROLE_DEVICE;
    if ((r = duo_rng_bytes(s->rng, s->r2_rand, sizeof s->r2_rand)) != DUO_OK ||
        (r = duo_commit_begin(&t, "R2", &bind)) != DUO_OK) {
        goto out;
    }
    duo_transcript_bytes(&t, "R2", r2b, sizeof r2b);
    if ((r = duo_commit_finish(&t, s->r2_rand, s->r2_commitment)) != DUO_OK) {
        goto out;
    }
    memcpy(req->key_id, s->key->key_id, DUO_KEY_ID_BYTES);
    memcpy(req->device_nonce, s->device_nonce, DUO_NONCE_BYTES);
    memcpy(req->digest, s->digest, DUO_DIGEST_BYTES);
    memcpy(req->r2_commitment, s->r2_commitment, 32);
    if ((r = set_purpose(req, s)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_sign_start(mi, req)) != DUO_OK ||
        (r = duo_mac_compute(req->mac, s->key->device_secret, mi)) != DUO_OK) {
        goto out;
    }
    r = DUO_OK;
out:
    if (r != DUO_OK) {
        memset(req, 0, sizeof *req);
    }
    return p2s_leave(s, r, P2S_STARTED);
}

/* Round 1 response -> round 2 request. */
int duo_p2_sign_on_start(duo_p2_sign *s, const duo_sign_start_resp *resp, duo_sign_finish_req *next) {
    int r = DUO_E_INTERNAL;
    duo_binding cbind, dbind;
    duo_dlog_proof pok;
    duo_point r1, big_r, x2g;
    duo_scalar rx, x2, k2inv, m, v, u, t1;
    const duo_paillier_pub *pk;
    BN_CTX *bnctx = NULL;
    BIGNUM *q2 = NULL, *rho = NULL, *pt = NULL, *u_bn = NULL, *v_bn = NULL, *rn = NULL, *e1 = NULL, *e2 = NULL,
           *c3 = NULL;
    size_t ctlen;
    uint8_t mi[32], q2b[64], qb[32], rhob[64], ptb[96];
    int m_zero;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2s_enter(s, P2S_STARTED)) != DUO_OK) {
        return r;
    }
    if (resp == NULL || next == NULL) {
        return p2s_leave(s, DUO_E_INVALID_ARG, 0);
    }
    memset(next, 0, sizeof *next);
    memset(&u, 0, sizeof u);
    if ((r = duo__sid_sign(s->sid, s->key->key_id, s->device_nonce, resp->cloud_nonce, s->digest, s->r2_commitment)) !=
        DUO_OK) {
        goto out;
    }
    memcpy(cbind.sid, s->sid, 32);
    cbind.role = DUO_ROLE_CLOUD;
    memcpy(dbind.sid, s->sid, 32);
    dbind.role = DUO_ROLE_DEVICE;
    /* R1 valid, PoK(k1) "R1" under sid. */
    if ((r = duo_point_parse(s->ec, &r1, resp->r1, sizeof resp->r1)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_POINT);
        goto out;
    }
    if ((r = duo_dlog_proof_parse(s->ec, &pok, resp->r1_proof, sizeof resp->r1_proof)) != DUO_OK ||
        (r = duo_dlog_verify(s->ec, &pok, &r1, &cbind, "R1")) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_PROOF);
        goto out;
    }
    /* R = k2*R1, r = x(R) mod q != 0. */
    if ((r = duo_point_mul(s->ec, &big_r, &r1, &s->k2)) != DUO_OK) {
        goto out;
    }
    duo__declassify(&big_r, sizeof big_r); /* R: its x is the signature's r */
    if ((r = duo_point_x_mod_q(s->ec, &rx, &big_r)) != DUO_OK) {
        r = duo__map_peer_error(r, DUO_E_BAD_SCALAR);
        goto out;
    }
    /* x2 = x2' + KDF(PIN). A wrong PIN gives another x2, so the PIN proof
     * below proves the wrong X and the cloud answers DUO_E_WRONG_PIN. */
    if (s->pin_len != 0) {
        r = duo__p2_pin_unmask(s->ec, &x2, &s->key->x2_masked, s->pin, s->pin_len, s->key->pin_salt);
    } else {
        r = duo__p2_unmask_kdf(s->ec, &x2, &s->key->x2_masked, &s->kdf); /* prepared: no KDF here */
    }
    duo_memzero(s->pin, sizeof s->pin);
    duo_memzero(&s->kdf, sizeof s->kdf);
    if (r != DUO_OK) {
        goto out;
    }
    if ((r = duo_point_mul_base(s->ec, &x2g, &x2)) != DUO_OK) {
        goto out;
    }
    /* X2 = x2*G: the cloud holds X2 from enrolment (a wrong PIN gives another
     * point, which the PIN proof shows the cloud anyway). */
    duo__declassify(&x2g, sizeof x2g);
    if ((r = duo_dlog_prove(s->ec, &pok, &x2, &x2g, &dbind, "pin", s->rng)) != DUO_OK) {
        goto out;
    }
    duo_dlog_proof_serialize(s->ec, next->pin_proof, &pok);
    if ((r = duo_dlog_prove(s->ec, &pok, &s->k2, &s->r2, &dbind, "R2", s->rng)) != DUO_OK) {
        goto out;
    }
    duo_dlog_proof_serialize(s->ec, next->r2_proof, &pok);
    /* m = digest mod q (may be 0); v = k2^-1 r; u = k2^-1 (m + r x2). */
    m_zero = duo_scalar_reduce32(s->ec, &m, s->digest) != DUO_OK; /* public */
    if ((r = duo_scalar_inverse(s->ec, &k2inv, &s->k2)) != DUO_OK ||
        (r = duo_scalar_mul(s->ec, &v, &k2inv, &rx)) != DUO_OK ||
        (r = duo_scalar_mul(s->ec, &t1, &rx, &x2)) != DUO_OK) {
        goto out;
    }
    if (!m_zero) {
        /* m + r*x2 == 0 mod q (probability 1/q): then u = 0. */
        if ((r = duo_scalar_add(s->ec, &t1, &t1, &m)) != DUO_OK) {
            if (r != DUO_E_BAD_SCALAR) {
                goto out;
            }
            memset(&t1, 0, sizeof t1);
        }
    }
    /* u = 0 (probability 1/q) makes s = 0: the signature is refused, public. */
    int t1_zero = duo_ct_is_zero(t1.b, 32);
    duo__declassify(&t1_zero, sizeof t1_zero);
    if (!t1_zero && (r = duo_scalar_mul(s->ec, &u, &k2inv, &t1)) != DUO_OK) {
        goto out;
    }
    /* c3 = Enc(rho*q + u; FRESH rn) (+) v (.) ckey, rho uniform in [0, q^2).
     * The fresh factor is essential (DESIGN 3.3): without it c3 would carry
     * ckey's randomness to the power v, which the cloud knows how to undo. */
    pk = s->key->paillier;
    if ((bnctx = BN_CTX_secure_new()) == NULL || (q2 = BN_new()) == NULL || (rho = BN_secure_new()) == NULL ||
        (pt = BN_secure_new()) == NULL || (u_bn = BN_secure_new()) == NULL || (v_bn = BN_secure_new()) == NULL ||
        (e1 = BN_secure_new()) == NULL || (e2 = BN_secure_new()) == NULL || (c3 = BN_new()) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(pt, BN_FLG_CONSTTIME);
    BN_set_flags(u_bn, BN_FLG_CONSTTIME);
    /* Fixed width, no BIGNUM on the secrets rho and u (docs/SECURITY.md 3.1):
     * rho uniform in [0, q^2) as 64 bytes, pt = rho*q + u < q^3 + q < 2^768 as
     * 96 bytes, then the fixed-width encryption. */
    if (!BN_sqr(q2, duo_ec_order(s->ec), bnctx) || BN_bn2binpad(q2, q2b, sizeof q2b) != (int)sizeof q2b ||
        BN_bn2binpad(duo_ec_order(s->ec), qb, sizeof qb) != (int)sizeof qb) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = duo_random_below_be(rhob, q2b, sizeof rhob, s->rng)) != DUO_OK ||
        (r = duo_be_muladd(ptb, sizeof ptb, rhob, sizeof rhob, qb, sizeof qb, u.b, sizeof u.b)) != DUO_OK) {
        goto out;
    }
    if (s->rn != NULL) {
        rn = s->rn; /* precomputed: used here once, then freed */
        s->rn = NULL;
    } else {
        if ((rn = BN_secure_new()) == NULL) {
            r = DUO_E_NOMEM;
            goto out;
        }
        if ((r = duo_paillier_rn(pk, rn, s->rng)) != DUO_OK) {
            goto out;
        }
    }
    /* e1 and e2 stay secret (e2 = ckey^v gives v to the key owner); only
     * their product c3 is sent. */
    if ((r = duo_paillier_encrypt_fixed(pk, e1, ptb, sizeof ptb, rn)) != DUO_OK ||
        (r = duo_scalar_to_bn(&v, v_bn)) != DUO_OK || (r = duo_paillier_mul(pk, e2, s->key->ckey, v_bn)) != DUO_OK ||
        (r = duo_paillier_add_secret(pk, c3, e1, e2)) != DUO_OK) {
        goto out;
    }
    ctlen = duo_paillier_ciphertext_bytes(pk);
    if ((next->buf = malloc(ctlen)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    /* BN_bn2binpad is constant-time in the value; the bytes are what is sent.
     * Then the full check on the PUBLIC c3, parsed back from those bytes:
     * 0 < c3 < N^2 and gcd(c3, N) = 1. c3 mod N = r^N * ckey^v mod N and ckey
     * is a checked unit, so this is exactly the unit test of the encryption
     * randomness r that is no longer run on the secret r (duo_paillier_rn). */
    if (BN_bn2binpad(c3, next->buf, (int)ctlen) != (int)ctlen) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    duo__declassify(next->buf, ctlen);
    if ((r = duo_paillier_ciphertext_parse(pk, c3, next->buf, ctlen)) != DUO_OK) {
        r = r == DUO_E_BAD_CIPHERTEXT ? DUO_E_RNG : r; /* r shared a factor with N */
        goto out;
    }
    next->c3.ptr = next->buf;
    next->c3.len = ctlen;
    memcpy(next->sid, s->sid, 32);
    duo_point_serialize(s->ec, next->r2, &s->r2);
    memcpy(next->r2_opening, s->r2_rand, 32);
    if ((r = duo_wire_mac_input_sign_finish(mi, next)) != DUO_OK ||
        (r = duo_mac_compute(next->mac, s->key->device_secret, mi)) != DUO_OK) {
        goto out;
    }
    r = DUO_OK;
out:
    duo_memzero(&s->k2, sizeof s->k2);
    duo_memzero(s->pin, sizeof s->pin);
    duo_memzero(&s->kdf, sizeof s->kdf);
    duo_memzero(&x2, sizeof x2);
    duo_memzero(&k2inv, sizeof k2inv);
    duo_memzero(&v, sizeof v);
    duo_memzero(&u, sizeof u);
    duo_memzero(&t1, sizeof t1);
    duo_memzero(&pok, sizeof pok);
    duo_memzero(rhob, sizeof rhob);
    duo_memzero(ptb, sizeof ptb);
    BN_free(q2);
    BN_clear_free(rho);
    BN_clear_free(pt);
    BN_clear_free(u_bn);
    BN_clear_free(v_bn);
    BN_clear_free(rn);
    BN_clear_free(e1);
    BN_clear_free(e2);
    BN_free(c3);
    BN_CTX_free(bnctx);
    if (r != DUO_OK) {
        free(next->buf);
        memset(next, 0, sizeof *next);
    }
    return p2s_leave(s, r, P2S_FINISH_SENT);
}

/* Round 2 response: the signature must verify under Q. */
int duo_p2_sign_on_finish(duo_p2_sign *s, const duo_sign_finish_resp *resp, uint8_t sig[64]) {
    int r;

    if (s == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = p2s_enter(s, P2S_FINISH_SENT)) != DUO_OK) {
        return r;
    }
    if (resp == NULL || sig == NULL) {
        return p2s_leave(s, DUO_E_INVALID_ARG, 0);
    }
    if (duo_ecdsa_verify(s->ec, resp->signature, s->digest, &s->key->q) != DUO_OK) {
        memset(sig, 0, 64);
        return p2s_leave(s, DUO_E_BAD_SIGNATURE, 0);
    }
    memcpy(sig, resp->signature, 64);
    return p2s_leave(s, DUO_OK, P2S_DONE);
}
