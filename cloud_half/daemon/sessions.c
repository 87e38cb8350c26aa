/* duosign-cloud: live sessions and tombstones (sessions.h). */
#include "sessions.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"

#define SESS_BUCKETS 4096  /* live sessions by sid and by key id; power of two */
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

struct duo_sessions {
    unsigned ttl_s, max;
    pthread_mutex_t mu; /* guards everything below and the links of every duo_sess */
    duo_sess *live;     /* live list */
    size_t n_live;
    duo_sess *by_sid[SESS_BUCKETS], *by_key[SESS_BUCKETS];
    tombstone **tombs; /* TOMB_BUCKETS chains */
    tombstone *tomb_head, *tomb_tail;
    size_t n_tombs;
};

int duo__sessions_new(duo_sessions **out, unsigned ttl_s, unsigned max) {
    duo_sessions *ss = calloc(1, sizeof *ss);
    *out = NULL;
    if (!ss || !(ss->tombs = calloc(TOMB_BUCKETS, sizeof *ss->tombs))) {
        free(ss);
        return DUO_E_NOMEM;
    }
    ss->ttl_s = ttl_s;
    ss->max = max ? max : DUO_SESS_MAX_DEFAULT;
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
    if (reason) tomb_add_locked(ss, x, reason, now);
    sess_clear(x);
    free(x);
}

static int sess_expired(const duo_sessions *ss, const duo_sess *x, int64_t now) {
    return now - x->created_ms > (int64_t)ss->ttl_s * 1000;
}

static void sess_reason_detail(duo_call_info *info, int reason, unsigned ttl) {
    switch (reason) {
        case DUO_E_SESSION_EXPIRED:
            DETAIL(info, "session expired (sessions last %u s); start again", ttl);
            break;
        case DUO_E_PROTO_STATE:
            DETAIL(info, "this session was already used (each round is accepted once); start a new one");
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
        sess_reason_detail(info, r, ss->ttl_s);
    } else if (x->busy) {
        r = DUO_E_SESSION_BUSY;
        DETAIL(info, "this session is handling another request; retry");
    } else if (sess_expired(ss, x, now)) {
        sess_end_locked(ss, x, DUO_E_SESSION_EXPIRED, now);
        r = DUO_E_SESSION_EXPIRED;
        sess_reason_detail(info, r, ss->ttl_s);
    } else {
        x->busy = 1;
        *out = x;
    }
    pthread_mutex_unlock(&ss->mu);
    return r;
}

void duo__sessions_release(duo_sessions *ss, duo_sess *x, int kill_reason) {
    pthread_mutex_lock(&ss->mu);
    if (kill_reason)
        sess_end_locked(ss, x, kill_reason, duo__mono_ms());
    else
        x->busy = 0;
    pthread_mutex_unlock(&ss->mu);
}

int duo__sessions_insert(duo_sessions *ss, duo_sess **out, duo_sess_kind kind, const uint8_t key_id[DUO_KEY_ID_BYTES],
                         duo_call_info *info) {
    int64_t now = duo__mono_ms();
    *out = NULL;
    duo_sess *x = calloc(1, sizeof *x);
    if (!x) return DUO_E_NOMEM;
    x->kind = kind;
    x->created_ms = now;
    x->busy = 1;
    if (key_id) memcpy(x->key_id, key_id, DUO_KEY_ID_BYTES);
    pthread_mutex_lock(&ss->mu);
    if (ss->n_live >= ss->max) {
        pthread_mutex_unlock(&ss->mu);
        free(x);
        DETAIL(info, "too many sessions in progress; retry in a minute");
        return DUO_E_UNAVAILABLE;
    }
    size_t kb = bucket_of(x->key_id, SESS_BUCKETS);
    if (kind == DUO_SESS_SIGN) {
        duo_sess *y = ss->by_key[kb];
        while (y) {
            duo_sess *yn = y->key_next;
            if (memcmp(y->key_id, key_id, DUO_KEY_ID_BYTES) != 0) {
                y = yn;
                continue;
            }
            if (!y->busy && sess_expired(ss, y, now)) {
                sess_end_locked(ss, y, DUO_E_SESSION_EXPIRED, now);
                y = yn;
                continue;
            }
            pthread_mutex_unlock(&ss->mu);
            free(x);
            int64_t left = (y->created_ms + (int64_t)ss->ttl_s * 1000 - now + 999) / 1000;
            DETAIL(info, "another signing session is active for this key; finish it or retry in %" PRId64 " s", left);
            duo__trailer_i64(info, "duo-retry-after", left);
            return DUO_E_SESSION_BUSY;
        }
        x->key_next = ss->by_key[kb];
        ss->by_key[kb] = x;
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
