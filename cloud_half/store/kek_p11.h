/* duosign cloud store: a key-encryption key inside a PKCS#11 token.
 *
 * The KEK is an AES-256 secret key object in a token, created with
 * CKA_SENSITIVE = TRUE and CKA_EXTRACTABLE = FALSE, so a token that honours
 * them never lets it out in plain form. Sealing and opening run inside the
 * token with CKM_AES_GCM: the same AEAD, nonce and AAD as a KEK file
 * (seal.h), so a sealed value looks the same wherever its KEK lives and the
 * AAD still binds row, column, version and KEK id (AES key wrap would bind
 * none of them). See docs/STORE.md.
 *
 * The key is named by an RFC 7512 PKCS#11 URI:
 *
 *   pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so&pin-source=/path/to/pinfile
 *
 * Path attributes: token (required), object (required), slot-id, type
 * (secret-key only). Query attributes: module-path (required), pin-source
 * (a file holding the user PIN; "file:" prefix allowed). Without pin-source
 * the PIN comes from the environment variable DUOSIGN_KEK_PIN. pin-value is
 * refused: a PIN in the URI would be stored in the data directory's kek.ref
 * and shown on command lines.
 *
 * Handles are process-wide: the module is loaded and initialised once
 * (CKF_OS_LOCKING_OK), the session logged in once per URI, and the handle
 * lives until the process ends; a duo_kek only points at it.
 *
 * Thread-safety: duo_p11_key_open and duo_p11_gcm may be called from any
 * thread; operations on one key are serialised by its mutex. Not usable
 * across fork(). */
#ifndef DUOSIGN_STORE_KEK_P11_H
#define DUOSIGN_STORE_KEK_P11_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

#define DUO_P11_PIN_ENV "DUOSIGN_KEK_PIN"

typedef struct duo_p11_key duo_p11_key;

/* Returns: 1 if ref starts with "pkcs11:", else 0. */
int duo_p11_is_uri(const char *ref);

/* Opens the AES key named by uri; create != 0 generates it in the token when
 * no key has that label (non-extractable, sensitive, a token object).
 * Returns: DUO_OK; DUO_E_INVALID_ARG (malformed URI, pin-value given);
 *          DUO_E_KEK_UNAVAILABLE (module not loadable, no such token or key,
 *          the key is not an AES-256 key usable for encrypt and decrypt);
 *          DUO_E_KEK_PIN (no PIN given, or the token refused it).
 * Out:  *out: a process-wide handle (never freed); *extractable (may be NULL):
 *       1 if the token lets the key out in plain form; err: what to fix. */
DUO_WARN_UNUSED_RESULT int duo_p11_key_open(const duo_p11_key **out, int *extractable, char *err, size_t err_cap,
                                            const char *uri, int create);

/* AES-256-GCM in the token, 96-bit iv, 128-bit tag. seal != 0: out =
 * ciphertext || tag of in (in_len bytes). seal == 0: in = ciphertext || tag,
 * out = the plaintext (in_len - 16 bytes; SECRET).
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT (tag mismatch);
 *          DUO_E_KEK_UNAVAILABLE (any other token failure). */
DUO_WARN_UNUSED_RESULT int duo_p11_gcm(const duo_p11_key *k, int seal, const uint8_t *iv, const uint8_t *aad,
                                       size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out);

#endif
