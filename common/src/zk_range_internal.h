/* duosign: what the range proof's prover (zk_range.c) and verifier
 * (zk_range_verify.c) share: the wire layout, the seed expansion of a
 * repetition, the bound l and the Fiat-Shamir challenge. Internal to
 * common/; the proof itself is described at the top of zk_range.c. */
#ifndef DUOSIGN_ZK_RANGE_INTERNAL_H
#define DUOSIGN_ZK_RANGE_INTERNAL_H

#include <stdint.h>

#include <openssl/bn.h>

#include "duosign/zk_paillier.h"
#include "pedersen521.h"
#include "zk_paillier_internal.h"

#define RANGE_DOMAIN "duosign/v2/zk/range" /* v2: Pedersen over P-521 (issue 22) */
#define SEED_DOMAIN "duosign/v2/zk/range/rep"

#define PB DUO_PED_POINT_BYTES   /* 67 */
#define SCB DUO_PED_SCALAR_BYTES /* 66 */
#define SB 32u                   /* u, w, z_k < 2l < 2^256; seeds */
#define ALPHA_BYTES 58u          /* alpha < 2^464 */
#define Z_BYTES 59u              /* z < 2^465 */
#define E_BYTES 16u              /* the equality challenge */
#define REPS DUO_ZK_RANGE_REPS
#define NB_MAX DUO_ZK_NB_MAX

#define HDR_BYTES(nb) (2u * PB + 3u * (nb) + Z_BYTES + SCB)
#define REP_BYTES (2u * PB + 1u + SB + SCB)

/* What a seed expands to. SECRET until the repetition is opened. */
typedef struct rep_open {
    BIGNUM *u, *s1, *s2; /* w2 = u, w1 = u + l; flagged constant-time */
    int swap;            /* 1: (c_a, c_b) = (c2, c1) */
} rep_open;

/* l = floor(n_P256 / 3) (see zk_range.c). */
DUO_WARN_UNUSED_RESULT int duo__zkr_bound_l(BIGNUM *l);
/* o <- the values the 32-byte seed expands to (u < l, s1, s2 < n, swap). */
DUO_WARN_UNUSED_RESULT int duo__zkr_rep_expand(rep_open *o, const uint8_t seed[SB], const BIGNUM *l, BN_CTX *ctx);
/* Allocates o's values (secure, constant-time flagged) / wipes and frees. */
DUO_WARN_UNUSED_RESULT int duo__zkr_rep_open_init(rep_open *o);
void duo__zkr_rep_open_free(rep_open *o);
/* The 32 challenge bytes of a proof whose commitments are in `in`. */
DUO_WARN_UNUSED_RESULT int duo__zkr_challenge(uint8_t ch[32], const duo_ec *ec, const duo_paillier_pub *pk,
                                              const duo_binding *bind, const BIGNUM *ckey, const uint8_t *in);

#endif
