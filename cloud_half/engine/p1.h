/* duosign: the cloud's protocol engine, P1 of Lindell 2017 two-party ECDSA
 * (additive shares; P1 owns the Paillier key and produces the signature).
 * Sans-IO: the functions consume parsed requests (common/wire/wire.h) and
 * fill responses; no sockets, files, clocks or threads. Randomness comes from
 * the duo_rng given at creation.
 *
 * Policy (tokens, MACs against stored secrets, PIN lockout, clone detection,
 * one live session per key) is the caller's job; the engine reports the
 * cryptographic outcome with distinct errors (DUO_E_WRONG_PIN vs
 * DUO_E_PEER_CHEATED) so the caller can apply it.
 *
 * Failure is sticky: after any error a session returns DUO_E_SESSION_FAILED
 * to every call but _free. Calls out of order return DUO_E_PROTO_STATE (and
 * fail the session). A session is single-threaded. */
#ifndef DUOSIGN_P1_H
#define DUOSIGN_P1_H

#include "duosign/curve.h"
#include "duosign/paillier.h"
#include "duosign/zk_paillier.h"
#include "wire.h"

/* ---- the stored key (what the key store persists) ---- */
typedef struct duo_p1_key {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    duo_scalar x1;               /* SECRET: P1's share */
    duo_point q;                 /* public key Q = Q1 + Q2 */
    duo_point q2;                /* device's public share; checks the PIN proof */
    duo_paillier_priv *paillier; /* SECRET: owned */
} duo_p1_key;

/* Builds a key from stored parts, checking x1*G + Q2 == Q and the primes.
 * Takes ownership of `paillier` on success and on failure. */
DUO_WARN_UNUSED_RESULT int duo_p1_key_new(duo_p1_key **out, const duo_ec *ec, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                          const duo_scalar *x1, const duo_point *q, const duo_point *q2,
                                          duo_paillier_priv *paillier);
/* Wipes and frees (NULL-safe). */
void duo_p1_key_free(duo_p1_key *key);

/* Stored bytes <-> key. The key store keeps a P1 key as bytes: x1 (SECRET),
 * Q and Q2 (compressed), the Paillier primes p and q (big-endian, SECRET)
 * and the Paillier size; these two are the only conversions between that
 * form and duo_p1_key.
 *
 * duo_p1_key_parse: builds the key through duo_p1_key_new (so with its
 * x1*G + Q2 == Q check) from the Paillier key rebuilt from p and q.
 * Returns: DUO_OK; DUO_E_NOMEM; DUO_E_STATE_CORRUPT if the bytes do not form
 *          a key (bad scalar or point, primes refused, Q check failed).
 * Out:     *out, freed with duo_p1_key_free. */
DUO_WARN_UNUSED_RESULT int duo_p1_key_parse(duo_p1_key **out, const duo_ec *ec, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                            const uint8_t x1[DUO_SCALAR_BYTES], const uint8_t q[DUO_POINT_BYTES],
                                            const uint8_t q2[DUO_POINT_BYTES], const uint8_t *p, size_t p_len,
                                            const uint8_t *pq, size_t pq_len, unsigned paillier_bits);
/* duo_p1_key_serialize: the bytes of key (the key id is key->key_id).
 * Returns: DUO_OK; DUO_E_INTERNAL if a prime does not fit its buffer.
 * Out:     x1, p/p_len, pq/pq_len: SECRET (the caller wipes them). */
DUO_WARN_UNUSED_RESULT int duo_p1_key_serialize(const duo_ec *ec, uint8_t x1[DUO_SCALAR_BYTES],
                                                uint8_t q[DUO_POINT_BYTES], uint8_t q2[DUO_POINT_BYTES], uint8_t *p,
                                                size_t p_cap, size_t *p_len, uint8_t *pq, size_t pq_cap, size_t *pq_len,
                                                const duo_p1_key *key);

/* ---- enrolment (DESIGN 3.2, four rounds + confirmation) ---- */
typedef struct duo_p1_enroll duo_p1_enroll;

typedef struct duo_p1_enroll_params {
    const duo_ec *ec;
    const duo_rng *rng;                  /* NULL: OpenSSL */
    unsigned paillier_bits;              /* 2048 or 3072: requests for another size fail */
    duo_paillier_priv *paillier;         /* from the prime pool; the session takes it
                                     (also on failure). NULL: generated in round 2 */
    duo_zk_range_precomp *range_precomp; /* optional, made for `paillier` by the
                                     pool (duo_zk_range_precomp_new): ckey's and
                                     the range proof's randomness. The session
                                     takes it (also on failure) and uses it once.
                                     NULL: computed in round 2. Requires paillier. */
} duo_p1_enroll_params;

DUO_WARN_UNUSED_RESULT int duo_p1_enroll_new(duo_p1_enroll **out, const duo_p1_enroll_params *params);
void duo_p1_enroll_free(duo_p1_enroll *s);

/* Ends a session that has not answered round 2 and hands back its Paillier
 * key and precomputed randomness: round 1 uses neither, so nothing derived
 * from them has left the cloud and another enrolment may use them (a
 * superseded EnrollStart then costs no key). The session fails.
 * Returns: DUO_OK (*key, *precomp: owned by the caller, either may be NULL);
 *          DUO_E_PROTO_STATE once round 2 ran (the key is public then: not
 *          handed back, the session still fails); DUO_E_INVALID_ARG. */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_reclaim(duo_p1_enroll *s, duo_paillier_priv **key,
                                                 duo_zk_range_precomp **precomp);

/* Round 1: draws key id, cloud nonce, x1 in [1, q/3); commits to (Q1, PoK). */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_start(duo_p1_enroll *s, const duo_enroll_start_req *req,
                                               duo_enroll_start_resp *resp);
/* Round 2: verifies PoK(x2); opens Q1; sends N, ckey and the L_N, Pi-mod and
 * range proofs. resp->buf is allocated: free with duo_wire_free_enroll_key_share_resp. */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_key_share(duo_p1_enroll *s, const duo_enroll_key_share_req *req,
                                                   duo_enroll_key_share_resp *resp);
/* Round 3: decrypts alpha from c', commits to alpha*G. A c' that decrypts to
 * 0 mod q (no honest device sends one) gives DUO_E_PDL_MISMATCH. */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_pdl_challenge(duo_p1_enroll *s, const duo_enroll_pdl_challenge_req *req,
                                                       duo_enroll_pdl_challenge_resp *resp);
/* Round 4: checks alpha = a*x1 + b over the integers BEFORE opening alpha*G
 * (DUO_E_PDL_MISMATCH otherwise). */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_pdl_open(duo_p1_enroll *s, const duo_enroll_pdl_open_req *req,
                                                  duo_enroll_pdl_open_resp *resp);
/* Confirmation: checks sid, Q and the MAC under the first device secret. */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_confirm(duo_p1_enroll *s, const duo_enroll_confirm_req *req);
/* The session id (valid after round 1). */
const uint8_t *duo_p1_enroll_sid(const duo_p1_enroll *s);
/* The curve context the enrolment runs on (borrowed from its params). */
const duo_ec *duo_p1_enroll_ec(const duo_p1_enroll *s);
/* After a successful confirm: the key to store, and the first device secret
 * (SECRET, 32 bytes). The caller owns *out. Callable once. */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_take_key(duo_p1_enroll *s, duo_p1_key **out, uint8_t device_secret[32]);

/* After a successful round 4, for a caller that checks the confirmation
 * itself from storage (so it survives a restart and can be repeated): the key
 * and the first device secret H(sid, x1*Q2) (SECRET, 32 bytes), which the
 * confirmation must be MACed with. The caller then checks a confirmation as
 * duo_p1_enroll_confirm does: sid equal, Q equal, MAC
 * (duo_wire_mac_input_enroll_confirm + duo_mac_check) under that secret.
 * The caller owns *out. The session is spent afterwards (confirm fails). */
DUO_WARN_UNUSED_RESULT int duo_p1_enroll_take_opened_key(duo_p1_enroll *s, duo_p1_key **out, uint8_t device_secret[32]);

/* ---- signing (DESIGN 3.3, two rounds) ---- */
typedef struct duo_p1_sign duo_p1_sign;

/* key is borrowed and must outlive the session. */
DUO_WARN_UNUSED_RESULT int duo_p1_sign_new(duo_p1_sign **out, const duo_ec *ec, const duo_rng *rng,
                                           const duo_p1_key *key);
void duo_p1_sign_free(duo_p1_sign *s);
/* Round 1: stores digest and the commitment to R2; draws k1; answers R1, PoK(k1).
 * The caller has checked the MAC and the key's policy state. */
DUO_WARN_UNUSED_RESULT int duo_p1_sign_start(duo_p1_sign *s, const duo_sign_start_req *req, duo_sign_start_resp *resp);
/* Round 2, in this order: consumes the session (a second call fails);
 * sid; PIN proof against Q2 (DUO_E_WRONG_PIN, nothing decrypted); R2 opening
 * and PoK(k2); c3 validity; CRT decryption; s = k1^-1 s' mod q, low-S;
 * verification under Q (DUO_E_PEER_CHEATED if it fails: the caller freezes the
 * key). k1 is wiped on every path. resp->rotate_seed is fresh randomness. */
DUO_WARN_UNUSED_RESULT int duo_p1_sign_finish(duo_p1_sign *s, const duo_sign_finish_req *req,
                                              duo_sign_finish_resp *resp);
/* duo_p1_sign_finish in two halves, so that a caller can do other work (the
 * daemon: its store write) while the decryption runs.
 * _check: everything up to and including the c3 checks, on the same errors;
 * on success resp->rotate_seed is set and r_out is the signature's r (public:
 * with the digest it names the one low-S signature that can follow).
 * _decrypt: after a successful _check, the rest (DUO_E_PROTO_STATE
 * otherwise); sets resp->signature. k1 is wiped on every path out of either
 * half that ends the session. */
DUO_WARN_UNUSED_RESULT int duo_p1_sign_finish_check(duo_p1_sign *s, const duo_sign_finish_req *req,
                                                    duo_sign_finish_resp *resp, uint8_t r_out[32]);
DUO_WARN_UNUSED_RESULT int duo_p1_sign_finish_decrypt(duo_p1_sign *s, duo_sign_finish_resp *resp);
const uint8_t *duo_p1_sign_sid(const duo_p1_sign *s);

/* Round 1's state, so that round 2 may run on another node (DESIGN 8.6): the
 * key id, the device's nonce, the digest, the R2 commitment, the pre-sid, the
 * sid and the SECRET nonce k1, behind a format byte. */
#define DUO_P1_SIGN_STATE_V1 1
#define DUO_P1_SIGN_STATE_BYTES \
    (1 + DUO_KEY_ID_BYTES + DUO_NONCE_BYTES + DUO_DIGEST_BYTES + 32 + 32 + DUO_SID_BYTES + 32)
/* Exports a session after a successful round 1 and spends it here (k1 wiped;
 * any later call on s fails): one copy of k1 exists, the exported one.
 * Returns: DUO_OK; DUO_E_INVALID_ARG (NULL); DUO_E_PROTO_STATE (not started).
 * Out:  out (SECRET: seal it, then wipe it). */
DUO_WARN_UNUSED_RESULT int duo_p1_sign_export(duo_p1_sign *s, uint8_t out[DUO_P1_SIGN_STATE_BYTES]);
/* Rebuilds an exported session, ready for round 2, on key (borrowed; its key
 * id must be the exported one). Checks before use: the format byte, the key
 * id, the pre-sid recomputed from the fields, k1 in [1, q-1].
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_NOMEM; DUO_E_SESSION_MISMATCH
 *          (another key); DUO_E_STATE_CORRUPT (format, pre-sid or k1).
 * Out:  *out (the caller frees it with duo_p1_sign_free, which wipes k1). */
DUO_WARN_UNUSED_RESULT int duo_p1_sign_import(duo_p1_sign **out, const duo_ec *ec, const duo_rng *rng,
                                              const duo_p1_key *key, const uint8_t in[DUO_P1_SIGN_STATE_BYTES]);

#endif
