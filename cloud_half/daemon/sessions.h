/* duosign-cloud: live sessions and their tombstones (sessions.c).
 *
 * Sessions are in memory, hashed by sid and, for signing, by key id (one live
 * signing session per key, DESIGN 3.3). A handler takes a session
 * exclusively (busy) and releases it; a session expires after its TTL. A
 * finished session is freed at once and leaves a tombstone (sid, kind, error)
 * for DUO_TOMBSTONE_MS (at most DUO_TOMB_MAX, oldest dropped first) so that
 * late or replayed requests get "expired" / "already used" / "failed"
 * rather than "unknown". The session cap counts sessions in progress only.
 *
 * Admission (docs/PROTOCOL.md, "Admission and the key pool"): a signing
 * session replaces an idle one on its key (the caller authenticated the
 * request); one enrolment per token (a new start replaces the old one and
 * takes back its unused Paillier key); enrolments at most half of the cap
 * and at most max_enrol_per_peer per client address.
 *
 * Lock: one mutex inside duo_sessions guards the live list, both hash tables,
 * the tombstones and each session's links, busy flag and sid. The other
 * fields of a duo_sess belong to the handler that took it (busy) and are
 * touched by nobody else until it releases it. Any thread. */
#ifndef DUOSIGN_CLOUD_SESSIONS_H
#define DUOSIGN_CLOUD_SESSIONS_H

#include "daemon.h"
#include "keycache.h"
#include "p1.h"
#include "pool.h"

#define DUO_SESS_MAX_DEFAULT 10000 /* live sessions (tombstones are counted apart) */
#define DUO_TOMBSTONE_MS (10 * 60 * 1000)
#define DUO_TOMB_MAX 262144 /* ~64 bytes each; beyond it the oldest go first */

typedef enum { DUO_SESS_ENROL = 1, DUO_SESS_SIGN = 2 } duo_sess_kind;

typedef struct duo_sessions duo_sessions;

typedef struct duo_sess {
    /* The table's (under its lock). */
    struct duo_sess *prev, *next; /* live list */
    struct duo_sess *sid_next;    /* chain of the sid's bucket */
    struct duo_sess *key_next;    /* chain of the key id's bucket, signing only */
    int busy;
    int superseded; /* replaced while busy: ended (DUO_E_SESSION_SUPERSEDED) on release */
    int has_sid;
    uint8_t sid[DUO_SID_BYTES];
    /* Set at insertion, then read-only (an enrolment's key_id: set by its
     * handler after round 1, and read by nobody else). */
    duo_sess_kind kind;
    uint8_t key_id[DUO_KEY_ID_BYTES];
    int64_t created_ms;
    uint8_t token_hash[32]; /* enrolment: one live session per token */
    char peer_host[64];     /* enrolment: the client's address without its port */
    uint32_t starts;        /* enrolment: EnrollStarts on this token within the hour (audit coalescing) */
    /* The handler's, while it holds the session. Enrolment: */
    duo_p1_enroll *en;
    uint8_t token[DUO_TOKEN_MAX];
    size_t token_len;
    char citizen[DUO_CITIZEN_ID_MAX + 1]; /* also the signing key's */
    int role;                             /* duo_key_role asked for at EnrollStart */
    /* Signing: */
    duo_p1_sign *sg;
    duo_keycache_item *kc;                   /* the built key, a reference into the key cache */
    uint8_t secret[DUO_DEVICE_SECRET_BYTES]; /* SECRET: the device secret that authenticated round 1 */
    uint8_t digest[DUO_DIGEST_BYTES];
} duo_sess;

/* What an enrolment session is admitted on: its token and its client. */
typedef struct duo_enrol_admit {
    uint8_t token_hash[32];
    char peer_host[64];
} duo_enrol_admit;

/* ttl_s: session lifetime; max: sessions in progress at once (0: default);
 * max_enrol_per_peer: enrolments in progress from one client address (0: 16). */
int duo__sessions_new(duo_sessions **out, unsigned ttl_s, unsigned max, unsigned max_enrol_per_peer);
/* Ends every session and tombstone (none may be busy) and frees. NULL: no-op. */
void duo__sessions_free(duo_sessions *ss);

/* Inserts a new busy session. Signing (key_id): an idle session on the same
 * key is replaced (SUPERSEDED), a busy one refuses (DUO_E_SESSION_BUSY with
 * duo-retry-after). Enrolment (ea): an older session on the same token is
 * replaced and, if it had not answered round 2, its Paillier key comes back
 * in *reclaimed (the caller owns it); beyond half the cap or the per-peer
 * cap, DUO_E_SERVER_BUSY with duo-retry-after. DUO_E_SERVER_BUSY when the
 * cap is reached. */
int duo__sessions_insert(duo_sessions *ss, duo_sess **out, duo_sess_kind kind, const uint8_t key_id[DUO_KEY_ID_BYTES],
                         const duo_enrol_admit *ea, duo_pool_entry *reclaimed, duo_call_info *info);
/* Gives a busy session its sid (once the engine made it). */
void duo__sessions_set_sid(duo_sessions *ss, duo_sess *x, const uint8_t *sid);
/* Takes a live session for exclusive use; else the precise error (unknown,
 * other kind, the tombstone's reason, busy, expired) with its message. */
int duo__sessions_take(duo_sessions *ss, duo_sess **out, const uint8_t sid[DUO_SID_BYTES], duo_sess_kind kind,
                       duo_call_info *info);
/* Releases a session; kill_reason != 0 ends it (it is freed, a tombstone
 * remains). The caller must not touch x afterwards. */
void duo__sessions_release(duo_sessions *ss, duo_sess *x, int kill_reason);
/* Sessions in progress now: enrolments and signings (metrics). */
void duo__sessions_counts(duo_sessions *ss, size_t *enrol, size_t *sign);
/* Expires idle sessions and drops old tombstones (the loop's timer). */
void duo__sessions_sweep(duo_sessions *ss);

#endif
