/* duosign: the device's protocol engine, P2 of Lindell 2017 two-party ECDSA
 * (additive shares; P2 holds x2 and ckey = Enc(x1), never the Paillier key).
 * Sans-IO: functions produce requests and consume responses as parsed
 * structs (common/wire/wire.h); no sockets, files, clocks or threads.
 *
 * PIN masking (DESIGN 3.4): the stored share is x2' = x2 - KDF(PIN, salt)
 * mod q, KDF = scrypt (N = 2^15, r = 8, p = 1) with a wide reduction mod q.
 * The key keeps nothing that can test a PIN guess offline (no Q1, no Q2, no
 * checksum): a wrong PIN is detected only by the cloud, online.
 *
 * Failure is sticky: after any error a session returns DUO_E_SESSION_FAILED
 * to every call but _free; calls out of order return DUO_E_PROTO_STATE. */
#ifndef DUOSIGN_P2_H
#define DUOSIGN_P2_H

#include "duosign/curve.h"
#include "duosign/dlog_proof.h"
#include "duosign/paillier.h"
#include "wire.h"

#define DUO_PIN_SALT_BYTES 16
#define DUO_PIN_MAX 64

/* ---- the device's key (the device library serialises it into the state blob) ---- */
typedef struct duo_p2_key {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    duo_scalar x2_masked; /* SECRET: x2 - KDF(PIN, salt) mod q */
    uint8_t pin_salt[DUO_PIN_SALT_BYTES];
    duo_point q;                                    /* public key */
    duo_paillier_pub *paillier;                     /* owned; the cloud's N */
    BIGNUM *ckey;                                   /* owned; Enc(x1) */
    uint8_t device_secret[DUO_DEVICE_SECRET_BYTES]; /* SECRET: rotating MAC secret (DESIGN 3.5) */
} duo_p2_key;

/* Builds a key from its stored bytes (what the device library keeps in its
 * state blob), the device's counterpart of duo_p1_key_parse: x2_masked must
 * be a scalar, Q a valid compressed point (the same Q check: on the curve,
 * not infinity, 33 bytes of 02/03 form), N a modulus of exactly
 * paillier_bits bits passing duo_paillier_pub_parse's checks, ckey a valid
 * ciphertext under N (2*paillier_bits/8 bytes).
 * Returns: DUO_OK; DUO_E_NOMEM; DUO_E_STATE_CORRUPT if the bytes do not form
 *          a key (nothing is built).
 * Out:     *out, freed with duo_p2_key_free.
 * In:      x2_masked and device_secret are SECRET (copied). */
DUO_WARN_UNUSED_RESULT int duo_p2_key_new(duo_p2_key **out, const duo_ec *ec, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                          const uint8_t x2_masked[DUO_SCALAR_BYTES],
                                          const uint8_t pin_salt[DUO_PIN_SALT_BYTES], const uint8_t q[DUO_POINT_BYTES],
                                          unsigned paillier_bits, const uint8_t *n, size_t n_len, const uint8_t *ckey,
                                          size_t ckey_len, const uint8_t device_secret[DUO_DEVICE_SECRET_BYTES]);
void duo_p2_key_free(duo_p2_key *key);
/* Re-masks with a new PIN: unmask with old_pin, mask with new_pin and a
 * fresh salt. The caller must have proven old_pin online first (a sign or
 * status exchange), since nothing here can tell a wrong old PIN. */
DUO_WARN_UNUSED_RESULT int duo_p2_key_change_pin(const duo_ec *ec, duo_p2_key *key, const uint8_t *old_pin,
                                                 size_t old_pin_len, const uint8_t *new_pin, size_t new_pin_len,
                                                 const duo_rng *rng);
/* The PIN KDF alone, KDF(PIN, key->pin_salt) mod q (scrypt, ~170 ms of CPU),
 * so that a caller can run it ahead of a signature and pass the result as
 * duo_p2_sign_params.pin_kdf. Together with key->x2_masked the result IS the
 * share x2: keep it as secret as x2, wipe it after the signature.
 * Nothing here can tell a wrong PIN (the cloud does, online).
 * Returns: DUO_OK; DUO_E_INVALID_ARG (NULL, empty or too long PIN);
 *          DUO_E_NOMEM; DUO_E_INTERNAL. kdf is zeroed on failure.
 * Out:     kdf: SECRET. */
DUO_WARN_UNUSED_RESULT int duo_p2_pin_kdf(const duo_ec *ec, duo_scalar *kdf, const duo_p2_key *key, const uint8_t *pin,
                                          size_t pin_len);

/* The resynchronisation's PIN proof (duosign/resync.h): PoK(x2) "resync"
 * under bind, x2 unmasked with pin (SECRET, wiped here after use).
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_NOMEM; DUO_E_INTERNAL.
 * Out:     proof (A || z; zero on failure). */
DUO_WARN_UNUSED_RESULT int duo_p2_resync_proof(const duo_ec *ec, uint8_t proof[DUO_DLOG_PROOF_BYTES],
                                               const duo_p2_key *key, const uint8_t *pin, size_t pin_len,
                                               const duo_binding *bind, const duo_rng *rng);

/* ---- enrolment ---- */
typedef struct duo_p2_enroll duo_p2_enroll;

typedef struct duo_p2_enroll_params {
    const duo_ec *ec;
    const duo_rng *rng;     /* NULL: OpenSSL */
    unsigned paillier_bits; /* required modulus size: 3072 (default) or 2048 */
    const uint8_t *token;   /* enrolment token, 1..DUO_TOKEN_MAX bytes (copied) */
    size_t token_len;
    const uint8_t *pin; /* SECRET, 1..DUO_PIN_MAX bytes (used to mask, then wiped) */
    size_t pin_len;
} duo_p2_enroll_params;

DUO_WARN_UNUSED_RESULT int duo_p2_enroll_new(duo_p2_enroll **out, const duo_p2_enroll_params *params);
void duo_p2_enroll_free(duo_p2_enroll *s);
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_start(duo_p2_enroll *s, duo_enroll_start_req *req);
/* Draws x2, sends Q2 + PoK(x2) bound to sid. */
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_on_start(duo_p2_enroll *s, const duo_enroll_start_resp *resp,
                                                  duo_enroll_key_share_req *next);
/* Checks the opening of Q1 and PoK(x1); N (exact size, odd, small factors,
 * L_N, Pi-mod); ckey valid and in range (L_P); then starts L_PDL.
 * next->buf is allocated: free with duo_wire_free_enroll_pdl_challenge_req. */
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_on_key_share(duo_p2_enroll *s, const duo_enroll_key_share_resp *resp,
                                                      duo_enroll_pdl_challenge_req *next);
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_on_pdl_challenge(duo_p2_enroll *s, const duo_enroll_pdl_challenge_resp *resp,
                                                          duo_enroll_pdl_open_req *next);
/* Checks alpha*G = a*Q1 + b*G; computes Q; masks x2 with the PIN. */
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_on_pdl_open(duo_p2_enroll *s, const duo_enroll_pdl_open_resp *resp);
/* The key to store (caller owns). Store it durably BEFORE sending the confirm. */
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_take_key(duo_p2_enroll *s, duo_p2_key **out);
/* The confirmation request (MAC under the first device secret). */
DUO_WARN_UNUSED_RESULT int duo_p2_enroll_confirm(duo_p2_enroll *s, duo_enroll_confirm_req *req);
/* The session id (valid after on_start). Added for tests and logging. */
const uint8_t *duo_p2_enroll_sid(const duo_p2_enroll *s);

/* ---- signing ---- */
typedef struct duo_p2_sign duo_p2_sign;

typedef struct duo_p2_sign_params {
    const duo_ec *ec;
    const duo_rng *rng;    /* NULL: OpenSSL */
    const duo_p2_key *key; /* borrowed; must outlive the session */
    /* Exactly one of pin and pin_kdf (both or neither: DUO_E_INVALID_ARG). */
    const uint8_t *pin; /* SECRET (copied, wiped at free); the KDF runs in on_start */
    size_t pin_len;
    const uint8_t *digest;     /* 32 bytes */
    BIGNUM *precomputed_rn;    /* optional r^N mod N^2, taken (used once, freed); NULL: computed */
    const duo_scalar *pin_kdf; /* SECRET, instead of pin: duo_p2_pin_kdf(key, PIN) made beforehand
                                     * (copied, wiped at free): no KDF on the signing path */
    /* The purpose (duo_sign_purpose; 0: a request from before purposes) and
     * its one extra field, sent in SignStart and MACed with it: the CSR
     * info for CSR, the login challenge for LOGIN, none otherwise (borrowed
     * until duo_p2_sign_start). The wire layer checks the pairing. */
    int purpose;
    const uint8_t *purpose_data;
    size_t purpose_data_len;
    const uint8_t *request_id; /* NULL, or the 16-byte id of the relying party's request this signature
                                  approves (SignStartRequest.request_id, under the MAC) */
} duo_p2_sign_params;

DUO_WARN_UNUSED_RESULT int duo_p2_sign_new(duo_p2_sign **out, const duo_p2_sign_params *params);
void duo_p2_sign_free(duo_p2_sign *s);
/* Commits to R2 and MACs the request with key->device_secret. */
DUO_WARN_UNUSED_RESULT int duo_p2_sign_start(duo_p2_sign *s, duo_sign_start_req *req);
/* Verifies PoK(k1); R = k2*R1, r != 0; sends the R2 opening, PoK(k2), the PIN
 * proof and c3. next->buf is allocated: free with duo_wire_free_sign_finish_req. */
DUO_WARN_UNUSED_RESULT int duo_p2_sign_on_start(duo_p2_sign *s, const duo_sign_start_resp *resp,
                                                duo_sign_finish_req *next);
/* Verifies the final signature under Q (DUO_E_BAD_SIGNATURE otherwise). */
DUO_WARN_UNUSED_RESULT int duo_p2_sign_on_finish(duo_p2_sign *s, const duo_sign_finish_resp *resp, uint8_t sig[64]);
const uint8_t *duo_p2_sign_sid(const duo_p2_sign *s);

#endif
