/* duosign: internals shared by the P2 (device) engine files. Not installed. */
#ifndef DUOSIGN_P2_INTERNAL_H
#define DUOSIGN_P2_INTERNAL_H

#include "p2.h"

/* scrypt parameters of the PIN KDF (DESIGN 3.4). */
#define DUO_PIN_KDF_LOG2_N 15
#define DUO_PIN_KDF_R 8u
#define DUO_PIN_KDF_P 1u
#define DUO_PIN_KDF_BYTES 64

/* kdf = scrypt(PIN, salt, N = 2^15, r = 8, p = 1, 64 bytes) reduced mod q
 * (constant-time BIGNUM). DUO_E_INTERNAL if the result is 0 (2^-256). */
DUO_WARN_UNUSED_RESULT int duo__p2_pin_kdf(const duo_ec *ec, duo_scalar *kdf, const uint8_t *pin, size_t pin_len,
                                           const uint8_t salt[DUO_PIN_SALT_BYTES]);
/* masked = x2 - KDF(PIN, salt) mod q. */
DUO_WARN_UNUSED_RESULT int duo__p2_pin_mask(const duo_ec *ec, duo_scalar *masked, const duo_scalar *x2,
                                            const uint8_t *pin, size_t pin_len, const uint8_t salt[DUO_PIN_SALT_BYTES]);
/* x2 = masked + kdf mod q, kdf a KDF output (duo__p2_pin_kdf / duo_p2_pin_kdf).
 * DUO_E_INTERNAL if the sum is 0 (a wrong PIN with KDF(PIN') == -x2', 2^-256). */
DUO_WARN_UNUSED_RESULT int duo__p2_unmask_kdf(const duo_ec *ec, duo_scalar *x2, const duo_scalar *masked,
                                              const duo_scalar *kdf);
/* x2 = masked + KDF(PIN, salt) mod q. Any PIN gives a well-formed scalar. */
DUO_WARN_UNUSED_RESULT int duo__p2_pin_unmask(const duo_ec *ec, duo_scalar *x2, const duo_scalar *masked,
                                              const uint8_t *pin, size_t pin_len,
                                              const uint8_t salt[DUO_PIN_SALT_BYTES]);
#include "session_ids.h"

/* TEST ONLY. 1 if the session's nonce k2 is all zero (never drawn, or wiped
 * after use), else 0 (also for NULL). Lets tests assert that k2 is wiped
 * once c3 is built and on every failure; reveals nothing else about k2. */
int duo__p2_sign_nonce_wiped(const duo_p2_sign *s);

#endif
