/* duosign cloud store: the MAC over a key's policy fields.
 *
 * A database writer without the KEK could otherwise set a key's PIN failure
 * count back to 0, lift a lock or move a suspended key back to active. Every
 * key row therefore carries
 *
 *     policy_mac = HMAC-SHA256(K_pol, "duosign.policy.v1" || key_id (16)
 *                  || u32be(state) || u32be(pin_failures)
 *                  || i64be(locked_until) || u64be(secret_version)
 *                  [|| u64be(resync_epoch) || u64be(resync_used)]
 *                  [|| "moved"])
 *     K_pol = HKDF-SHA256(ikm = KEK, salt = "", info = "duosign policy mac v1")
 *
 * computed here, above every backend: a backend stores the 32 bytes beside
 * the row, recomputes them whenever it writes one of these fields (inside the
 * same transaction), and checks them on every read of the row; a mismatch is
 * DUO_E_POLICY_MAC and the row is not used (docs/STORE.md, "Policy MAC").
 * The key id binds the MAC to its row: a MAC copied from another key fails.
 * The "moved" suffix (schema v12, the inner channel's per-key rule) is there
 * only for a moved key, so the MACs of every row written before it stay
 * valid and clearing the flag by hand fails the MAC like any other edit.
 * The resync fields (SQLite schema v11, SECURITY 1.10: they decide whether a
 * device may install its secret with a PIN proof alone) are appended only
 * when one is nonzero, so every row written before them keeps its MAC. */
#ifndef DUOSIGN_STORE_POLICY_MAC_H
#define DUOSIGN_STORE_POLICY_MAC_H

#include <stdint.h>

#include "duosign/errors.h"
#include "duosign/vocab.h"
#include "seal.h"

#define DUO_POLICY_MAC_LEN 32

/* The MAC key. SECRET: wipe with duo_policy_key_clear. */
typedef struct duo_policy_key {
    uint8_t k[32];
} duo_policy_key;

/* The fields a policy MAC covers. */
typedef struct duo_policy_fields {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    int state; /* duo_key_state */
    uint32_t pin_failures;
    int64_t locked_until;
    uint64_t secret_version;
    int moved;             /* 0 or 1 */
    uint64_t resync_epoch; /* open for this restore epoch; 0: none (zero-initialise) */
    uint64_t resync_used;  /* the epoch whose resync was used; 0: none */
} duo_policy_fields;

/* Derives K_pol from the KEK (HKDF-SHA256, OpenSSL).
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_INTERNAL (out wiped). */
DUO_WARN_UNUSED_RESULT int duo_policy_key_derive(duo_policy_key *out, const duo_kek *kek);

void duo_policy_key_clear(duo_policy_key *k);

/* Computes the MAC of f. Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_policy_mac(uint8_t out[DUO_POLICY_MAC_LEN], const duo_policy_key *k,
                                          const duo_policy_fields *f);

/* Checks a stored MAC (mac_len bytes; 0 = missing) in constant time.
 * Returns: DUO_OK; DUO_E_POLICY_MAC (missing, wrong length or mismatch);
 *          DUO_E_INVALID_ARG; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_policy_mac_check(const duo_policy_key *k, const duo_policy_fields *f, const uint8_t *mac,
                                                size_t mac_len);

#endif
