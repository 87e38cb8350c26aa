/* duosign-cloud: the policy over a key (policy.c): its states, request
 * authentication (DESIGN 3.5: MAC under the device secrets, promotion and
 * supersession of secrets, replay vs clone, SECURITY 3.2), PIN lockout
 * (DESIGN 3.4) and the freeze.
 *
 * Stateless: everything it decides is read from and written to the store,
 * through the connection the caller holds, one transaction per decision
 * with its audit entry, retried on DUO_E_CONFLICT (optimistic concurrency on
 * the row version). No lock of its own. The messages of refusals go to the
 * call's info. */
#ifndef DUOSIGN_CLOUD_POLICY_H
#define DUOSIGN_CLOUD_POLICY_H

#include "daemon.h"
#include "keystore.h"

#define DUO_POLICY_RETRIES 8

/* ---- PIN lockout steps ---- */
#define DUO_LOCK_STEPS_MAX 8
#define DUO_LOCK_REVOKE (-1)
typedef struct duo_lock_step {
    uint32_t failures; /* consecutive wrong PINs that trigger this step */
    int64_t seconds;   /* lock duration, or DUO_LOCK_REVOKE */
} duo_lock_step;
typedef struct duo_lock_policy {
    duo_lock_step steps[DUO_LOCK_STEPS_MAX];
    size_t n; /* increasing failures; the last one may revoke */
} duo_lock_policy;

/* The default: 3:10800,6:86400,9:revoke. */
void duo__lock_policy_default(duo_lock_policy *p);
/* Parses "3:10800,6:86400,9:revoke" (seconds, or suffix s/m/h/d). */
int duo__lock_policy_parse(duo_lock_policy *p, const char *s, char *err, size_t cap);
/* The step reached exactly at `failures`, or NULL. */
const duo_lock_step *duo__lock_policy_step(const duo_lock_policy *p, uint32_t failures);
/* Wrong PINs left before the next step (0 if none). */
uint32_t duo__lock_policy_left(const duo_lock_policy *p, uint32_t failures);

/* ---- key states ---- */
/* Reports a key row whose policy fields fail their MAC (DUO_E_POLICY_MAC):
 * the call's detail, the key.policy_mac event, an audit entry. */
void duo__policy_mac_alarm(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info);

/* Reads a key (sec may be NULL); an expired lock is lifted in the store
 * (with its audit). Unknown or corrupt keys get their message. */
int duo__policy_key_load(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                         const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info);
/* The inner channel's per-key rule (docs/PROTOCOL.md "Inner channel"):
 * DUO_E_CHANNEL_REQUIRED_FOR_KEY with its message for a moved key's plain
 * request (info->plain), else DUO_OK. duo__policy_key_load applies it before
 * anything else; duo__policy_plain_check reads the key for a handler that
 * does not load it (SignFinish on a session of this node). */
int duo__policy_moved_err(const duo_key_info *ki, duo_call_info *info);
int duo__policy_plain_check(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info);
/* After a handler succeeded inside the channel: the key whose request MAC
 * verified (info->key_authed) and is not moved yet is marked moved, durably,
 * with its audit entry, before the response leaves. DUO_OK if nothing to do. */
int duo__policy_mark_moved(duo_keystore *ks, duo_call_info *info);
/* DUO_OK, or the error and message of a final state (revoked, suspended) or
 * of an unconfirmed (pending) key. */
int duo__policy_final_err(const duo_key_info *ki, duo_call_info *info);
/* As duo__policy_final_err without the revoked case. */
int duo__policy_state_final_err(const duo_key_info *ki, duo_call_info *info);
/* DUO_E_KEY_REVOKED with its message (and reason). */
int duo__policy_revoked_err(const duo_key_info *ki, duo_call_info *info);
/* DUO_OK, or DUO_E_KEY_LOCKED with its message and duo-locked-until. */
int duo__policy_locked_err(const duo_key_info *ki, duo_call_info *info);
/* Moves the key to suspended (final) with an audit entry of kind. */
int duo__policy_freeze(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], const char *kind, const char *reason);

/* ---- request authentication ---- */
/* Checks a request MAC against the key's device secrets and the request
 * against those already accepted (see policy.c for the decisions). On
 * success `used` is the secret that authenticated and ki/sec are fresh.
 * record_later (may be NULL) and defer: see policy.c. */
int duo__policy_authenticate(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                             const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                             const uint8_t mac[DUO_MAC_BYTES], uint8_t used[DUO_DEVICE_SECRET_BYTES], int *record_later,
                             int defer, duo_call_info *info);
/* Load, final states, authenticate: the common start of every request on an
 * existing key. sec is wiped by the caller. */
int duo__policy_key_auth(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                         const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                         const uint8_t mac[DUO_MAC_BYTES], uint8_t used[DUO_DEVICE_SECRET_BYTES], int *record_later,
                         int defer, duo_call_info *info);
/* A replay, refused: audited, DUO_E_UNAUTHENTICATED with its message; `which`
 * names the secret ("pending", "current", "retired"). */
int duo__policy_replay_reject(duo_keystore *ks, const duo_key_info *ki, const uint8_t key_id[DUO_KEY_ID_BYTES],
                              const char *which, duo_call_info *info);

/* ---- PIN lockout ---- */
/* A wrong PIN: counts it, locks or revokes per lock (one transaction each
 * try). Returns DUO_E_WRONG_PIN with its message and trailers (or the error
 * that stopped it); *revoked = 1 if this revoked the key. */
int duo__policy_pin_failure(duo_keystore *ks, const duo_lock_policy *lock, const uint8_t key_id[DUO_KEY_ID_BYTES],
                            int *revoked, duo_call_info *info);

#endif
