/* duosign: internal helpers of paillier.c shared with zk_paillier.c. Not part
 * of the public API; nothing outside common/ and tests/ may include it. */
#ifndef DUOSIGN_PAILLIER_INTERNAL_H
#define DUOSIGN_PAILLIER_INTERNAL_H

#include <openssl/bn.h>

#include "duosign/errors.h"

/* *coprime = 1 if a mod n != 0 and gcd(a, n) = 1, else 0, for an odd n > 1 of
 * at most 3072 bits and any a >= 0. PUBLIC a and n only: variable time (the
 * binary gcd of duo_paillier_ciphertext_check, ~10x faster than OpenSSL's
 * constant-time BN_gcd). DUO_E_INVALID_ARG for an even, negative or too large
 * n or a negative a. */
DUO_WARN_UNUSED_RESULT int duo__coprime_var(int *coprime, const BIGNUM *a, const BIGNUM *n, BN_CTX *ctx);

#endif
