/* duosign: Schnorr proof of knowledge of a discrete log, X = x*G,
 * non-interactive (Fiat-Shamir over the canonical transcript), bound to a
 * duo_binding and a purpose string ("Q1", "Q2", "k1", "k2", "pin", ...).
 *
 * Proof: A = k*G, e = H(domain, bind, purpose, X, A) mod q, z = k + e*x mod q. */
#ifndef DUOSIGN_DLOG_PROOF_H
#define DUOSIGN_DLOG_PROOF_H

#include "duosign/curve.h"
#include "duosign/transcript.h"

#define DUO_DLOG_PROOF_BYTES (DUO_POINT_BYTES + DUO_SCALAR_BYTES) /* A || z */

typedef struct duo_dlog_proof {
    duo_point a;
    duo_scalar z;
} duo_dlog_proof;

/* Proves knowledge of x with X = x*G. x is secret; the nonce is wiped. */
DUO_WARN_UNUSED_RESULT int duo_dlog_prove(const duo_ec *ec, duo_dlog_proof *out, const duo_scalar *x,
                                          const duo_point *X, const duo_binding *bind, const char *purpose,
                                          const duo_rng *rng);
/* DUO_OK or DUO_E_BAD_PROOF. */
DUO_WARN_UNUSED_RESULT int duo_dlog_verify(const duo_ec *ec, const duo_dlog_proof *proof, const duo_point *X,
                                           const duo_binding *bind, const char *purpose);
void duo_dlog_proof_serialize(const duo_ec *ec, uint8_t out[DUO_DLOG_PROOF_BYTES], const duo_dlog_proof *p);
/* Parses A || z: DUO_E_BAD_FIELD for a wrong length, DUO_E_BAD_POINT /
 * DUO_E_BAD_SCALAR for invalid parts. */
DUO_WARN_UNUSED_RESULT int duo_dlog_proof_parse(const duo_ec *ec, duo_dlog_proof *out, const uint8_t *in,
                                                size_t in_len);

#endif
