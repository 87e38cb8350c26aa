/* duosign-cloud: the policy over a key (policy.h): key states, request
 * authentication with its replay and clone decisions (DESIGN 3.5, SECURITY
 * 3.2), PIN lockout (DESIGN 3.4) and the freeze. Stateless over the store. */
#include "policy.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"
#include "duosign/rng.h"
#include "events.h"
#include "wire.h"

/* A key row whose policy fields fail their MAC: somebody wrote the database
 * outside duosign (a PIN count set back, a lock lifted). The row is not used
 * (fail closed); the operator is told and the audit chain records it. */
void duo__policy_mac_alarm(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info) {
    duo_audit_event ev = {.kind = DUO_AUDIT_POLICY_MAC,
                          .key_id = key_id,
                          .detail = "policy fields fail their MAC: edited outside duosign; key refused"};
    DETAIL(info, "the stored key's policy fields were edited outside duosign; contact the operator");
    duo__event(DUO_EV_POLICY_MAC, info, key_id, "policy fields fail their MAC; key refused");
    if (duo_keystore_audit_append(ks, NULL, &ev) != DUO_OK)
        duo__event(DUO_EV_STORE_ERROR, info, key_id, "could not audit a policy MAC failure");
}

/* Reads a key; an expired lock is lifted in the store (with its audit). */
int duo__policy_key_load(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                         const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info) {
    /* The request's key, for its log line (before any way out). */
    duo__call_key(info, key_id);
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        int r = duo_keystore_key_get(ks, ki, sec, key_id);
        if (r == DUO_E_NOT_FOUND) {
            DETAIL(info, "unknown key id; enrol first");
            return r;
        }
        if (r == DUO_E_STATE_CORRUPT) {
            DETAIL(info, "the stored key failed its integrity check; contact the operator");
            return r;
        }
        if (r == DUO_E_POLICY_MAC) {
            duo__policy_mac_alarm(ks, key_id, info);
            return r;
        }
        if (r != DUO_OK) return r;
        /* Before anything is counted or written for the key. */
        if ((r = duo__policy_moved_err(ki, info)) != DUO_OK) return r;
        if (ki->state != DUO_KEY_STATE_LOCKED || ki->locked_until > duo__now_s()) return DUO_OK;
        duo_key_policy pol = {
            .state = DUO_KEY_STATE_ACTIVE, .pin_failures = ki->pin_failures, .locked_until = 0, .reason = NULL};
        duo_audit_event ev = {
            .kind = DUO_AUDIT_UNLOCK, .key_id = key_id, .citizen_id = ki->citizen_id, .detail = "lock expired"};
        r = duo_keystore_key_update_policy(ks, key_id, ki->version, &pol, &ev);
        if (r != DUO_OK && r != DUO_E_CONFLICT) return r;
        if (sec) duo_key_secrets_clear(sec);
    }
    return DUO_E_CONFLICT;
}

int duo__policy_moved_err(const duo_key_info *ki, duo_call_info *info) {
    if (!ki->moved || !info->plain) return DUO_OK;
    DETAIL(info, "this key has moved to the inner channel: its plaintext requests are refused; update the app "
                 "(nothing was counted)");
    return DUO_E_CHANNEL_REQUIRED_FOR_KEY;
}

int duo__policy_plain_check(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info) {
    duo_key_info ki;
    if (!info->plain) return DUO_OK;
    int r = duo_keystore_key_get(ks, &ki, NULL, key_id);
    if (r == DUO_E_POLICY_MAC) duo__policy_mac_alarm(ks, key_id, info);
    return r != DUO_OK ? r : duo__policy_moved_err(&ki, info);
}

int duo__policy_mark_moved(duo_keystore *ks, duo_call_info *info) {
    int changed = 0;
    if (!info->key_authed || info->key_moved || info->plain || !info->has_key_id) return DUO_OK;
    duo_audit_event ev = {.kind = DUO_AUDIT_KEY_MOVED,
                          .key_id = info->key_id,
                          .detail = "first request through the inner channel: plaintext requests refused from now on"};
    int r = duo_keystore_key_set_moved(ks, &changed, info->key_id, &ev);
    if (r == DUO_OK) info->key_moved = 1;
    if (r == DUO_E_POLICY_MAC) duo__policy_mac_alarm(ks, info->key_id, info);
    return r;
}

int duo__policy_state_final_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->state == DUO_KEY_STATE_SUSPENDED) {
        DETAIL(info, "key is frozen: %s; enrol again", ki->reason[0] ? ki->reason : "suspended");
        return DUO_E_KEY_SUSPENDED;
    }
    if (ki->state == DUO_KEY_STATE_PENDING) {
        DETAIL(info, "key enrolment was never confirmed; enrol again");
        return DUO_E_PROTO_STATE;
    }
    return DUO_OK;
}

int duo__policy_locked_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->state != DUO_KEY_STATE_LOCKED) return DUO_OK;
    char when[64];
    duo__fmt_time(when, sizeof when, ki->locked_until);
    DETAIL(info, "key is locked until %s after %u wrong PINs in a row; try again after that time", when,
           ki->pin_failures);
    duo__trailer_i64(info, "duo-locked-until", ki->locked_until);
    return DUO_E_KEY_LOCKED;
}

/* Fixes a revoked key's reason text in the message (closing paren). */
int duo__policy_revoked_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->reason[0])
        DETAIL(info, "key is revoked (%s); enrol again", ki->reason);
    else
        DETAIL(info, "key is revoked; enrol again");
    return DUO_E_KEY_REVOKED;
}

int duo__policy_final_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->state == DUO_KEY_STATE_REVOKED) return duo__policy_revoked_err(ki, info);
    return duo__policy_state_final_err(ki, info);
}

/* Moves the key to suspended (final) with an audit entry. */
int duo__policy_freeze(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], const char *kind, const char *reason) {
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        duo_key_info ki;
        int r = duo_keystore_key_get(ks, &ki, NULL, key_id);
        if (r != DUO_OK) return r;
        if (ki.state == DUO_KEY_STATE_SUSPENDED || ki.state == DUO_KEY_STATE_REVOKED) return DUO_OK;
        duo_key_policy pol = {.state = DUO_KEY_STATE_SUSPENDED,
                              .pin_failures = ki.pin_failures,
                              .locked_until = ki.locked_until,
                              .reason = reason};
        duo_audit_event ev = {.kind = kind, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = reason};
        r = duo_keystore_key_update_policy(ks, key_id, ki.version, &pol, &ev);
        /* a clone or an attack: the key may be in other hands (docs/CERTIFICATES.md) */
        if (r == DUO_OK) duo__certs_follow_key(ks, key_id, DUO_CRL_REASON_KEY_COMPROMISE);
        if (r != DUO_E_CONFLICT) return r;
    }
    return DUO_E_CONFLICT;
}

/* ------------------------------------------- device authentication (3.5) */

typedef struct {
    const uint8_t *mac_input;
    const uint8_t *mac;
    uint8_t secret[DUO_DEVICE_SECRET_BYTES]; /* SECRET: the retired secret that matched */
} mac_match;

static int retired_match_cb(void *data, const uint8_t secret[DUO_DEVICE_SECRET_BYTES]) {
    mac_match *m = data;
    if (duo_mac_check(secret, m->mac_input, m->mac) != DUO_OK) return 0;
    memcpy(m->secret, secret, sizeof m->secret);
    return 1;
}

#define AUDIT_REPLAY "replay.rejected"

/* A replay (DESIGN 3.5, SECURITY 3.2): a valid MAC under a device secret that
 * already accepted this very request (same MAC input, which covers the device
 * nonce), i.e. an exact old request played again.
 * Refused as unauthenticated and audited; it changes no secret, freezes
 * nothing and is not a PIN attempt. */
int duo__policy_replay_reject(duo_keystore *ks, const duo_key_info *ki, const uint8_t key_id[DUO_KEY_ID_BYTES],
                              const char *which, duo_call_info *info) {
    char detail[300];
    snprintf(detail, sizeof detail,
             "replayed request refused: this request (its device nonce) was already "
             "accepted under the %s device secret; %s",
             which, info->peer);
    duo_audit_event ev = {.kind = AUDIT_REPLAY, .key_id = key_id, .citizen_id = ki->citizen_id, .detail = detail};
    if (duo_keystore_audit_append(ks, NULL, &ev) != DUO_OK) { /* the refusal is what matters */
    }
    duo__event(DUO_EV_REPLAY, info, key_id, "replayed request refused (already accepted under the %s device secret)",
               which);
    DETAIL(info, "replayed request refused (this exact request was already used; each request is accepted "
                 "once); this does not count as a PIN attempt");
    return DUO_E_UNAUTHENTICATED;
}

/* SignStart's own writes (the promotion of the device's new secret, or the
 * record of its request) are deferred commits (duo_keystore_commit_mode):
 * SignFinish's durable write follows within the session and makes them
 * durable too (one log), and losing them to a power failure in between is
 * harmless: the device, which rotates only on a signature, sends its next
 * request under the same secret and it is promoted or recorded then
 * (docs/STORE.md, "Deferred commits"). This saves one fsync per signature.
 * commit_durable switches back and passes r through (or the switch's error). */
static int commit_defer(duo_keystore *ks, int defer) {
    return defer ? duo_keystore_commit_mode(ks, DUO_COMMIT_DEFERRED) : DUO_OK;
}

static int commit_durable(duo_keystore *ks, int defer, int r) {
    if (!defer) return r;
    int r2 = duo_keystore_commit_mode(ks, DUO_COMMIT_DURABLE);
    return r != DUO_OK ? r : r2;
}

/* Checks a request MAC against the key's device secrets (DESIGN 3.5), then
 * the request against those already accepted under the secret that matched
 * (SECURITY 3.2: a replay is an exact old request, a clone makes new ones).
 * "The request" is its MAC input, the transcript digest that covers the
 * device nonce, so a copy that reuses an old nonce in a different request is
 * still a new request (a clone under a retired secret):
 *   pending  -> promote it (the old current retires);
 *   current  -> if a pending exists, the device did not persist it: it is
 *               superseded (retired, by rotating to an unknowable value);
 *   retired  -> a clone: freeze the key, audit, DUO_E_CLONE_SUSPECTED;
 *   any of these with a request already accepted under that secret -> a replay:
 *               DUO_E_UNAUTHENTICATED, audited, no rotation, no freeze;
 *   none     -> DUO_E_UNAUTHENTICATED (never a PIN attempt).
 * SHA-256 of the MAC input is recorded per key and per secret
 * (duo_keystore_nonce_record) in the same transaction as the rotation; with no
 * rotation it gets its own transaction, unless record_later is non-NULL: then
 * *record_later = 1 tells the caller to record it (under `used`) in its own
 * write (duo_keystore_secret_rotate_seen), whose DUO_E_EXISTS is a replay.
 * The record's primary key makes two concurrent copies of one request
 * resolve to one acceptance and one replay.
 * On success `used` is the secret that authenticated and ki/sec are fresh. */
static int authenticate(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                        const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                        const uint8_t mac[DUO_MAC_BYTES], uint8_t used[32], int *record_later, int defer,
                        duo_call_info *info);

int duo__policy_authenticate(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                             const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                             const uint8_t mac[DUO_MAC_BYTES], uint8_t used[32], int *record_later, int defer,
                             duo_call_info *info) {
    int r = authenticate(ks, ki, sec, key_id, mac_input, mac, used, record_later, defer, info);
    if (r == DUO_OK) { /* the key sealed_call may mark moved (duo__policy_mark_moved) */
        duo__call_key(info, key_id);
        info->key_authed = 1;
        info->key_moved = ki->moved;
    }
    return r;
}

static int authenticate(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                        const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                        const uint8_t mac[DUO_MAC_BYTES], uint8_t used[32], int *record_later, int defer,
                        duo_call_info *info) {
    if (record_later) *record_later = 0;
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        int ok_pend = sec->has_pending && duo_mac_check(sec->pending, mac_input, mac) == DUO_OK;
        int ok_cur = duo_mac_check(sec->current, mac_input, mac) == DUO_OK;
        int r;
        if (ok_pend) {
            duo_audit_event ev = {.kind = DUO_AUDIT_SECRET_ROTATE,
                                  .key_id = key_id,
                                  .citizen_id = ki->citizen_id,
                                  .detail = "device used its new secret: promoted, the old one retired"};
            memcpy(used, sec->pending, 32);
            if ((r = commit_defer(ks, defer)) == DUO_OK)
                r = commit_durable(ks, defer,
                                   duo_keystore_secret_rotate_seen(ks, key_id, ki->version, 1, NULL, used, mac_input,
                                                                   32, &ev, ki, sec));
            if (r == DUO_E_EXISTS) return duo__policy_replay_reject(ks, ki, key_id, "pending", info);
            if (r == DUO_OK) return DUO_OK; /* ki and sec: the key as written */
        } else if (ok_cur) {
            if (!sec->has_pending) {
                if (record_later) {
                    int seen = 0;
                    if ((r = duo_keystore_nonce_seen(ks, &seen, key_id, sec->current, mac_input, 32)) != DUO_OK)
                        return r;
                    if (seen) return duo__policy_replay_reject(ks, ki, key_id, "current", info);
                    *record_later = 1;
                    memcpy(used, sec->current, 32);
                    return DUO_OK;
                }
                if ((r = commit_defer(ks, defer)) == DUO_OK)
                    r = commit_durable(ks, defer,
                                       duo_keystore_nonce_record(ks, key_id, sec->current, mac_input, 32, NULL));
                if (r == DUO_E_EXISTS) return duo__policy_replay_reject(ks, ki, key_id, "current", info);
                if (r != DUO_OK) return r;
                memcpy(used, sec->current, 32);
                return DUO_OK;
            }
            uint8_t unknowable[32];
            if ((r = duo_rng_bytes(NULL, unknowable, sizeof unknowable)) != DUO_OK) return r;
            duo_audit_event ev = {.kind = DUO_AUDIT_SECRET_ROTATE,
                                  .key_id = key_id,
                                  .citizen_id = ki->citizen_id,
                                  .detail = "device kept its old secret: the pending one is superseded and retired"};
            memcpy(used, sec->current, 32);
            r = duo_keystore_secret_rotate_seen(ks, key_id, ki->version, 0, unknowable, used, mac_input, 32, &ev, ki,
                                                sec);
            duo_memzero(unknowable, sizeof unknowable);
            if (r == DUO_E_EXISTS) return duo__policy_replay_reject(ks, ki, key_id, "current", info);
            if (r == DUO_OK) return DUO_OK; /* ki and sec: the key as written */
        } else {
            mac_match m = {mac_input, mac, {0}};
            int found = 0, seen = 0;
            r = duo_keystore_secret_find_retired(ks, &found, key_id, retired_match_cb, &m);
            if (r == DUO_OK && found) r = duo_keystore_nonce_seen(ks, &seen, key_id, m.secret, mac_input, 32);
            duo_memzero(m.secret, sizeof m.secret);
            if (r != DUO_OK) return r;
            if (found && seen) return duo__policy_replay_reject(ks, ki, key_id, "retired", info);
            if (found) {
                r = duo__policy_freeze(ks, key_id, DUO_AUDIT_CLONE,
                                       "clone suspected: a new request was authenticated with a retired device secret");
                duo__event(DUO_EV_CLONE, info, key_id,
                           "clone suspected: a new request under a retired device secret; key %s",
                           r == DUO_OK ? "frozen" : "NOT frozen (the store failed)");
                DETAIL(info,
                       "a copy of this device was detected (a superseded device secret was used); the key "
                       "is frozen: enrol again%s",
                       r == DUO_OK ? "" : " (freezing failed: contact the operator)");
                return DUO_E_CLONE_SUSPECTED;
            }
            if (ki->resync_epoch != 0) {
                /* After a restore the store may simply not know this device's
                 * secret yet (SECURITY 1.10): say so, count nothing. The
                 * device reads the epoch from the bracket. */
                DETAIL(info,
                       "the cloud's store was restored and does not know this device's secret: resynchronise "
                       "once with the PIN (duosign resync) [resync epoch %llu]",
                       (unsigned long long)ki->resync_epoch);
                return DUO_E_RESYNC_POSSIBLE;
            }
            if (ki->resync_used != 0) {
                /* The one resync of this epoch went to a device holding
                 * another secret: this one is a copy, or the copy did it. */
                DETAIL(info,
                       "this key already resynchronised after the cloud's restore, with another secret than this "
                       "device's (a copy of the device?); this does not count as a PIN attempt [resync epoch %llu]",
                       (unsigned long long)ki->resync_used);
                return DUO_E_RESYNC_USED;
            }
            DETAIL(info, "request authentication failed (missing or bad MAC); this does not count as a PIN attempt");
            return DUO_E_UNAUTHENTICATED;
        }
        if (r != DUO_E_CONFLICT) return r;
        duo_key_secrets_clear(sec);
        if ((r = duo__policy_key_load(ks, ki, sec, key_id, info)) != DUO_OK) return r;
    }
    return DUO_E_CONFLICT;
}

/* Loads, checks final states and authenticates: the common start of every
 * request on an existing key. sec is wiped by the caller. */
int duo__policy_key_auth(duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                         const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                         const uint8_t mac[DUO_MAC_BYTES], uint8_t used[DUO_DEVICE_SECRET_BYTES], int *record_later,
                         int defer, duo_call_info *info) {
    int r = duo__policy_key_load(ks, ki, sec, key_id, info);
    if (r != DUO_OK) return r;
    if ((r = duo__policy_final_err(ki, info)) != DUO_OK) return r;
    return duo__policy_authenticate(ks, ki, sec, key_id, mac_input, mac, used, record_later, defer, info);
}

/* A wrong PIN: count it, lock or revoke per policy (one transaction each try). */
int duo__policy_pin_failure(duo_keystore *ks, const duo_lock_policy *lock, const uint8_t key_id[DUO_KEY_ID_BYTES],
                            int *revoked, duo_call_info *info) {
    *revoked = 0;
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        duo_key_info ki;
        int r = duo_keystore_key_get(ks, &ki, NULL, key_id);
        if (r != DUO_OK) return r;
        if (ki.state == DUO_KEY_STATE_REVOKED || ki.state == DUO_KEY_STATE_SUSPENDED)
            return duo__policy_final_err(&ki, info);
        uint32_t nf = ki.pin_failures + 1;
        const duo_lock_step *st = duo__lock_policy_step(lock, nf);
        duo_key_policy pol = {.state = DUO_KEY_STATE_ACTIVE, .pin_failures = nf, .locked_until = 0, .reason = NULL};
        char detail[160];
        const char *kind = DUO_AUDIT_PIN_FAILURE;
        int64_t until = 0;
        if (st && st->seconds == DUO_LOCK_REVOKE) {
            pol.state = DUO_KEY_STATE_REVOKED;
            snprintf(detail, sizeof detail, "revoked after %u wrong PINs in a row", nf);
            pol.reason = detail;
            kind = DUO_AUDIT_REVOKE;
        } else if (st) {
            until = duo__now_s() + st->seconds;
            pol.state = DUO_KEY_STATE_LOCKED;
            pol.locked_until = until;
            snprintf(detail, sizeof detail, "wrong PIN #%u: locked for %" PRId64 " s", nf, st->seconds);
            kind = DUO_AUDIT_LOCK;
        } else {
            snprintf(detail, sizeof detail, "wrong PIN #%u", nf);
        }
        duo_audit_event ev = {.kind = kind, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
        r = duo_keystore_key_update_policy(ks, key_id, ki.version, &pol, &ev);
        if (r == DUO_E_CONFLICT) continue;
        if (r != DUO_OK) return r;
        uint32_t left = duo__lock_policy_left(lock, nf);
        duo__trailer_i64(info, "duo-attempts-left", left);
        duo__event(DUO_EV_PIN_WRONG, info, key_id, "%s", detail);
        if (pol.state == DUO_KEY_STATE_LOCKED) duo__event(DUO_EV_PIN_LOCKOUT, info, key_id, "%s", detail);
        if (pol.state == DUO_KEY_STATE_REVOKED) duo__event(DUO_EV_REVOKED, info, key_id, "%s", detail);
        if (pol.state == DUO_KEY_STATE_REVOKED) {
            *revoked = 1;
            /* wrong PINs until revoked: someone else may hold the device */
            duo__certs_follow_key(ks, key_id, DUO_CRL_REASON_KEY_COMPROMISE);
            DETAIL(info, "wrong PIN; %u wrong PINs in a row: the key is revoked; enrol again", nf);
        } else if (pol.state == DUO_KEY_STATE_LOCKED) {
            char when[64];
            duo__fmt_time(when, sizeof when, until);
            DETAIL(info, "wrong PIN; %u wrong PINs in a row: the key is locked until %s", nf, when);
            duo__trailer_i64(info, "duo-locked-until", until);
        } else {
            DETAIL(info, "wrong PIN; %u attempt%s left before the key is locked", left, left == 1 ? "" : "s");
        }
        return DUO_E_WRONG_PIN;
    }
    return DUO_E_CONFLICT;
}

/* ------------------------------------------------------ lockout steps */

void duo__lock_policy_default(duo_lock_policy *p) {
    memset(p, 0, sizeof *p);
    p->steps[0] = (duo_lock_step){3, 3 * 3600};
    p->steps[1] = (duo_lock_step){6, 24 * 3600};
    p->steps[2] = (duo_lock_step){9, DUO_LOCK_REVOKE};
    p->n = 3;
}

int duo__lock_policy_parse(duo_lock_policy *p, const char *s, char *err, size_t cap) {
    duo_lock_policy tmp;
    memset(&tmp, 0, sizeof tmp);
    const char *q = s;
    if (!s || !*s) goto bad;
    while (*q) {
        if (tmp.n == DUO_LOCK_STEPS_MAX) goto bad;
        char *end;
        unsigned long f = strtoul(q, &end, 10);
        if (end == q || *end != ':' || f == 0 || f > 1000) goto bad;
        q = end + 1;
        int64_t secs;
        if (strncmp(q, "revoke", 6) == 0) {
            secs = DUO_LOCK_REVOKE;
            q += 6;
        } else {
            unsigned long long v = strtoull(q, &end, 10);
            if (end == q || v == 0) goto bad;
            unsigned long long mul = 1;
            if (*end == 's')
                end++;
            else if (*end == 'm') {
                mul = 60;
                end++;
            } else if (*end == 'h') {
                mul = 3600;
                end++;
            } else if (*end == 'd') {
                mul = 86400;
                end++;
            }
            if (v > 100ULL * 365 * 86400 / mul) goto bad;
            secs = (int64_t)(v * mul);
            q = end;
        }
        if (tmp.n > 0 && (f <= tmp.steps[tmp.n - 1].failures || tmp.steps[tmp.n - 1].seconds == DUO_LOCK_REVOKE))
            goto bad;
        tmp.steps[tmp.n++] = (duo_lock_step){(uint32_t)f, secs};
        if (*q == ',') {
            q++;
            if (!*q) goto bad;
        } else if (*q) {
            goto bad;
        }
    }
    *p = tmp;
    return DUO_OK;
bad:
    snprintf(err, cap,
             "bad --lock-policy '%s': expected FAILURES:DURATION[,...] with increasing FAILURES, "
             "DURATION in seconds (or with s/m/h/d) or 'revoke' (last), e.g. 3:10800,6:86400,9:revoke",
             s ? s : "");
    return DUO_E_INVALID_ARG;
}

const duo_lock_step *duo__lock_policy_step(const duo_lock_policy *p, uint32_t failures) {
    for (size_t i = 0; i < p->n; i++)
        if (p->steps[i].failures == failures) return &p->steps[i];
    return NULL;
}

uint32_t duo__lock_policy_left(const duo_lock_policy *p, uint32_t failures) {
    for (size_t i = 0; i < p->n; i++)
        if (p->steps[i].failures > failures) return p->steps[i].failures - failures;
    return 0;
}
