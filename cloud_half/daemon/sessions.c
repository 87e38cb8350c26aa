/* duosign-cloud: live sessions and tombstones (sessions.h). */
#include "sessions.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"

#define SESS_BUCKETS 4096 /* live sessions by sid and by key id; power of two */
#define ENROL_PER_PEER_DEFAULT 16
#define START_COUNT_MS (60 * 60 * 1000) /* a token's start count is forgotten after an hour without starts */
#define START_COUNT_MAX 65536
#define TOMB_BUCKETS 65536 /* power of two */

/* What a late or repeated request on a finished session is told (its error),
 * kept DUO_TOMBSTONE_MS or until DUO_TOMB_MAX newer ones push it out; after
 * that the sid is simply unknown (DUO_E_NOT_FOUND), which is just as final. */
typedef struct tombstone {
    struct tombstone *hnext; /* chain of tombs[bucket(sid)] */
    struct tombstone *qnext; /* age order, oldest first */
    uint8_t sid[DUO_SID_BYTES];
    duo_sess_kind kind;
    int reason;
    int64_t dead_ms;
} tombstone;

/* EnrollStarts per token, for audit coalescing: valid tokens only (counted
 * after the token check), forgotten START_COUNT_MS after the last start. */
typedef struct start_count {
    struct start_count *next;
    uint8_t token_hash[32];
    uint32_t starts;
    int64_t last_ms;
} start_count;

struct duo_sessions {
    unsigned ttl_s, max, max_enrol_per_peer;
    pthread_mutex_t mu; /* guards everything below and the links of every duo_sess */
    duo_sess *live;     /* live list */
    size_t n_live;
    size_t n_enrol; /* live enrolment sessions (at most half of max) */
    start_count *start_counts;
    size_t n_start_counts;
    duo_sess *by_sid[SESS_BUCKETS], *by_key[SESS_BUCKETS];
    tombstone **tombs; /* TOMB_BUCKETS chains */
    tombstone *tomb_head, *tomb_tail;
    size_t n_tombs;
};

int duo__sessions_new(duo_sessions **out, unsigned ttl_s, unsigned max, unsigned max_enrol_per_peer) {
    duo_sessions *ss = calloc(1, sizeof *ss);
    *out = NULL;
    if (!ss || !(ss->tombs = calloc(TOMB_BUCKETS, sizeof *ss->tombs))) {
        free(ss);
        return DUO_E_NOMEM;
    }
    ss->ttl_s = ttl_s;
    ss->max = max ? max : DUO_SESS_MAX_DEFAULT;
    ss->max_enrol_per_peer = max_enrol_per_peer ? max_enrol_per_peer : ENROL_PER_PEER_DEFAULT;
    pthread_mutex_init(&ss->mu, NULL);
    *out = ss;
    return DUO_OK;
}

/* Frees the engine state of a session (under mu or when unlinked). */
static void sess_clear(duo_sess *x) {
    duo_p1_enroll_free(x->en);
    x->en = NULL;
    duo_p1_sign_free(x->sg); /* before the key it borrows */
    x->sg = NULL;
    duo__keycache_put(x->kc);
    x->kc = NULL;
    duo_memzero(x->secret, sizeof x->secret);
    duo_memzero(x->token, sizeof x->token);
}

/* Sids and key ids are hash outputs or random: their first bytes spread
 * evenly, and a bucket only narrows the search. The compare that decides is
 * duo_ct_eq for sids (which authorise a request); key ids are public and
 * compared with memcmp. */
static size_t bucket_of(const uint8_t *id, size_t n_buckets) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | id[i];
    return (size_t)(v & (n_buckets - 1));
}

static void tomb_free_oldest_locked(duo_sessions *ss) {
    tombstone *t = ss->tomb_head;
    tombstone **pp = &ss->tombs[bucket_of(t->sid, TOMB_BUCKETS)];
    while (*pp != t) pp = &(*pp)->hnext;
    *pp = t->hnext;
    ss->tomb_head = t->qnext;
    if (!ss->tomb_head) ss->tomb_tail = NULL;
    ss->n_tombs--;
    free(t);
}

/* Records how a session with a sid ended. Without memory the tombstone is
 * skipped: the sid then reads as unknown, still a refusal. */
static void tomb_add_locked(duo_sessions *ss, const duo_sess *x, int reason, int64_t now) {
    if (!x->has_sid) return;
    if (ss->n_tombs >= DUO_TOMB_MAX) tomb_free_oldest_locked(ss);
    tombstone *t = calloc(1, sizeof *t);
    if (!t) return;
    memcpy(t->sid, x->sid, DUO_SID_BYTES);
    t->kind = x->kind;
    t->reason = reason;
    t->dead_ms = now;
    size_t b = bucket_of(t->sid, TOMB_BUCKETS);
    t->hnext = ss->tombs[b];
    ss->tombs[b] = t;
    if (ss->tomb_tail)
        ss->tomb_tail->qnext = t;
    else
        ss->tomb_head = t;
    ss->tomb_tail = t;
    ss->n_tombs++;
}

static const tombstone *tomb_find_locked(const duo_sessions *ss, const uint8_t sid[DUO_SID_BYTES]) {
    const tombstone *t = ss->tombs[bucket_of(sid, TOMB_BUCKETS)];
    while (t && !duo_ct_eq(t->sid, sid, DUO_SID_BYTES)) t = t->hnext;
    return t;
}

static void chain_unlink(duo_sess **pp, const duo_sess *x, int by_key) {
    while (*pp && *pp != x) pp = by_key ? &(*pp)->key_next : &(*pp)->sid_next;
    if (*pp) *pp = by_key ? x->key_next : x->sid_next;
}

/* Takes x out of the live table and frees it; with a reason, a tombstone
 * answers later requests on its sid. */
static void sess_end_locked(duo_sessions *ss, duo_sess *x, int reason, int64_t now) {
    if (x->prev)
        x->prev->next = x->next;
    else
        ss->live = x->next;
    if (x->next) x->next->prev = x->prev;
    if (x->kind == DUO_SESS_SIGN) chain_unlink(&ss->by_key[bucket_of(x->key_id, SESS_BUCKETS)], x, 1);
    if (x->has_sid) chain_unlink(&ss->by_sid[bucket_of(x->sid, SESS_BUCKETS)], x, 0);
    ss->n_live--;
    if (x->kind == DUO_SESS_ENROL) ss->n_enrol--;
    if (reason) tomb_add_locked(ss, x, reason, now);
    sess_clear(x);
    free(x);
}

static int sess_expired(const duo_sessions *ss, const duo_sess *x, int64_t now) {
    return now - x->created_ms > (int64_t)ss->ttl_s * 1000;
}

void duo__sessions_reason_detail(duo_call_info *info, int reason, unsigned ttl) {
    switch (reason) {
        case DUO_E_SESSION_EXPIRED:
            DETAIL(info, "session expired (sessions last %u s); start again", ttl);
            break;
        case DUO_E_PROTO_STATE:
            DETAIL(info, "this session was already used (each round is accepted once); start a new one");
            break;
        case DUO_E_SESSION_SUPERSEDED:
            DETAIL(info, "this session was replaced by a newer start (same device or enrolment token); continue "
                         "the newer one");
            break;
        default:
            DETAIL(info, "this session failed earlier; start a new one");
            break;
    }
}

static const char *sess_kind_name(duo_sess_kind k) { return k == DUO_SESS_ENROL ? "enrolment" : "signing"; }

int duo__sessions_take(duo_sessions *ss, duo_sess **out, const uint8_t sid[DUO_SID_BYTES], duo_sess_kind kind,
                       duo_call_info *info) {
    int64_t now = duo__mono_ms();
    int r = DUO_OK;
    *out = NULL;
    pthread_mutex_lock(&ss->mu);
    duo_sess *x = ss->by_sid[bucket_of(sid, SESS_BUCKETS)];
    while (x && !duo_ct_eq(x->sid, sid, DUO_SID_BYTES)) x = x->sid_next;
    const tombstone *t = x ? NULL : tomb_find_locked(ss, sid);
    if (!x && !t) {
        r = DUO_E_NOT_FOUND;
        DETAIL(info, "no such session (unknown session id, or it expired long ago); start again");
    } else if ((x ? x->kind : t->kind) != kind) {
        r = DUO_E_SESSION_MISMATCH;
        DETAIL(info, "the session id belongs to an %s session", sess_kind_name(x ? x->kind : t->kind));
    } else if (t) {
        r = t->reason;
        duo__sessions_reason_detail(info, r, ss->ttl_s);
    } else if (x->busy) {
        r = DUO_E_SESSION_BUSY;
        DETAIL(info, "this session is handling another request; retry");
    } else if (sess_expired(ss, x, now)) {
        sess_end_locked(ss, x, DUO_E_SESSION_EXPIRED, now);
        r = DUO_E_SESSION_EXPIRED;
        duo__sessions_reason_detail(info, r, ss->ttl_s);
    } else {
        x->busy = 1;
        *out = x;
        duo__call_key(info, x->key_id);
    }
    pthread_mutex_unlock(&ss->mu);
    return r;
}

void duo__sessions_counts(duo_sessions *ss, size_t *enrol, size_t *sign) {
    pthread_mutex_lock(&ss->mu);
    *enrol = ss->n_enrol;
    *sign = ss->n_live - ss->n_enrol;
    pthread_mutex_unlock(&ss->mu);
}

void duo__sessions_release(duo_sessions *ss, duo_sess *x, int kill_reason) {
    pthread_mutex_lock(&ss->mu);
    if (!kill_reason && x->superseded) kill_reason = DUO_E_SESSION_SUPERSEDED;
    if (kill_reason)
        sess_end_locked(ss, x, kill_reason, duo__mono_ms());
    else
        x->busy = 0;
    pthread_mutex_unlock(&ss->mu);
}

/* The retry hint for a refusal that a finishing session lifts. */
static void busy_retry(const duo_sessions *ss, duo_call_info *info) {
    duo__trailer_i64(info, "duo-retry-after", ss->ttl_s);
}

/* Counts a start on a token (mu held): 1 for the first in an hour. */
static uint32_t start_count_bump_locked(duo_sessions *ss, const uint8_t token_hash[32], int64_t now) {
    start_count *c = ss->start_counts;
    while (c && memcmp(c->token_hash, token_hash, 32) != 0) c = c->next;
    if (!c) {
        if (ss->n_start_counts >= START_COUNT_MAX || !(c = calloc(1, sizeof *c))) return 1;
        memcpy(c->token_hash, token_hash, 32);
        c->next = ss->start_counts;
        ss->start_counts = c;
        ss->n_start_counts++;
    }
    if (c->starts < UINT32_MAX) c->starts++;
    c->last_ms = now;
    return c->starts;
}

/* Enrolment admission (mu held). One live enrolment per token: an older one
 * on the same token is superseded (ended now, or by its handler's release if
 * busy), so repeating EnrollStart on one token holds one session however
 * often it is sent; an idle one that has not answered round 2 gives its
 * Paillier key back in *reclaimed, so a repeat costs no key. Otherwise
 * enrolments take at most half of max (signing always finds room) and at
 * most max_enrol_per_peer from one client address. */
static int enrol_admit_locked(duo_sessions *ss, const duo_enrol_admit *a, duo_pool_entry *reclaimed, int64_t now,
                              duo_call_info *info) {
    size_t cap = ss->max / 2 > 0 ? ss->max / 2 : 1, from_peer = 0;
    duo_sess *same = NULL;
    for (duo_sess *y = ss->live; y; y = y->next) {
        if (y->kind != DUO_SESS_ENROL || y->superseded) continue;
        if (memcmp(y->token_hash, a->token_hash, sizeof a->token_hash) == 0)
            same = y;
        else if (strcmp(y->peer_host, a->peer_host) == 0)
            from_peer++;
    }
    if (same) {
        if (same->busy) {
            same->superseded = 1;
        } else {
            if (same->en && duo_p1_enroll_reclaim(same->en, &reclaimed->key, &reclaimed->precomp) != DUO_OK) {
                /* round 2 ran: the key is spent with the session */
            }
            sess_end_locked(ss, same, DUO_E_SESSION_SUPERSEDED, now);
        }
        return DUO_OK;
    }
    if (ss->n_enrol >= cap) {
        DETAIL(info, "too many enrolments in progress; retry in %u s", ss->ttl_s);
        busy_retry(ss, info);
        return DUO_E_SERVER_BUSY;
    }
    if (from_peer >= ss->max_enrol_per_peer) {
        DETAIL(info, "too many enrolments in progress from this address (at most %u); retry in %u s",
               ss->max_enrol_per_peer, ss->ttl_s);
        busy_retry(ss, info);
        return DUO_E_SERVER_BUSY;
    }
    return DUO_OK;
}

/* Signing admission (mu held): one live session per key (DESIGN 3.3: no
 * parallel sessions). The caller has authenticated this SignStart with the
 * device's MAC, so an idle session on the key is one whose answer the device
 * never saw (or that it gave up): no round 2 reached it, nothing was
 * decrypted, and it is ended at once (tombstone SUPERSEDED) instead of
 * blocking the key for ttl_s. A session a handler is working on (busy: its
 * SignStart or SignFinish is running) is never ended here. */
static int sign_admit_locked(duo_sessions *ss, const uint8_t key_id[DUO_KEY_ID_BYTES], int64_t now,
                             duo_call_info *info) {
    duo_sess *y = ss->by_key[bucket_of(key_id, SESS_BUCKETS)];
    while (y) {
        duo_sess *yn = y->key_next;
        if (memcmp(y->key_id, key_id, DUO_KEY_ID_BYTES) != 0) {
            y = yn;
            continue;
        }
        if (!y->busy) {
            sess_end_locked(ss, y, sess_expired(ss, y, now) ? DUO_E_SESSION_EXPIRED : DUO_E_SESSION_SUPERSEDED, now);
            y = yn;
            continue;
        }
        int64_t left = (y->created_ms + (int64_t)ss->ttl_s * 1000 - now + 999) / 1000;
        if (left < 1) left = 1;
        DETAIL(info, "another signing request for this key is being handled; retry in a moment");
        duo__trailer_i64(info, "duo-retry-after", left);
        return DUO_E_SESSION_BUSY;
    }
    return DUO_OK;
}

int duo__sessions_insert(duo_sessions *ss, duo_sess **out, duo_sess_kind kind, const uint8_t key_id[DUO_KEY_ID_BYTES],
                         const duo_enrol_admit *ea, duo_pool_entry *reclaimed, duo_call_info *info) {
    int64_t now = duo__mono_ms();
    int r;
    *out = NULL;
    if (kind == DUO_SESS_ENROL && (ea == NULL || reclaimed == NULL)) return DUO_E_INVALID_ARG;
    duo_sess *x = calloc(1, sizeof *x);
    if (!x) return DUO_E_NOMEM;
    x->kind = kind;
    x->created_ms = now;
    x->busy = 1;
    if (key_id) {
        memcpy(x->key_id, key_id, DUO_KEY_ID_BYTES);
        duo__call_key(info, key_id);
    }
    pthread_mutex_lock(&ss->mu);
    if (kind == DUO_SESS_SIGN)
        r = sign_admit_locked(ss, key_id, now, info);
    else
        r = enrol_admit_locked(ss, ea, reclaimed, now, info);
    if (r == DUO_OK && ss->n_live >= ss->max) {
        DETAIL(info, "too many sessions in progress; retry in %u s", ss->ttl_s);
        busy_retry(ss, info);
        r = DUO_E_SERVER_BUSY;
    }
    if (r != DUO_OK) {
        pthread_mutex_unlock(&ss->mu);
        free(x);
        return r;
    }
    if (kind == DUO_SESS_SIGN) {
        size_t kb = bucket_of(x->key_id, SESS_BUCKETS);
        x->key_next = ss->by_key[kb];
        ss->by_key[kb] = x;
    } else {
        memcpy(x->token_hash, ea->token_hash, sizeof x->token_hash);
        snprintf(x->peer_host, sizeof x->peer_host, "%s", ea->peer_host);
        x->starts = start_count_bump_locked(ss, ea->token_hash, now);
        ss->n_enrol++;
    }
    x->next = ss->live;
    if (x->next) x->next->prev = x;
    ss->live = x;
    ss->n_live++;
    pthread_mutex_unlock(&ss->mu);
    *out = x;
    return DUO_OK;
}

void duo__sessions_set_sid(duo_sessions *ss, duo_sess *x, const uint8_t *sid) {
    pthread_mutex_lock(&ss->mu);
    memcpy(x->sid, sid, DUO_SID_BYTES);
    x->has_sid = 1;
    size_t b = bucket_of(x->sid, SESS_BUCKETS);
    x->sid_next = ss->by_sid[b];
    ss->by_sid[b] = x;
    pthread_mutex_unlock(&ss->mu);
}

/* Expires idle live sessions and drops old tombstones; all = at the end,
 * everything not in use goes, without tombstones. */
static void sweep(duo_sessions *ss, int all) {
    int64_t now = duo__mono_ms();
    pthread_mutex_lock(&ss->mu);
    duo_sess *x = ss->live;
    while (x) {
        duo_sess *xn = x->next;
        if (!x->busy && (all || sess_expired(ss, x, now))) sess_end_locked(ss, x, all ? 0 : DUO_E_SESSION_EXPIRED, now);
        x = xn;
    }
    while (ss->tomb_head && (all || now - ss->tomb_head->dead_ms > DUO_TOMBSTONE_MS)) tomb_free_oldest_locked(ss);
    for (start_count **pp = &ss->start_counts; *pp;) {
        start_count *c = *pp;
        if (all || now - c->last_ms > START_COUNT_MS) {
            *pp = c->next;
            free(c);
            ss->n_start_counts--;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&ss->mu);
}

void duo__sessions_sweep(duo_sessions *ss) { sweep(ss, 0); }

void duo__sessions_free(duo_sessions *ss) {
    if (!ss) return;
    sweep(ss, 1); /* sessions drop their key references first */
    free(ss->tombs);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}
