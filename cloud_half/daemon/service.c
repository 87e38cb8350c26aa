/* duosign-cloud: policy and handlers (see service.h, DESIGN 3.2-3.6).
 *
 * Threads: handlers run on the server's worker threads, concurrently. Shared
 * state is (a) the session table (sess_mu), (b) the store connection pool
 * (ks_mu guards only the free list; workers + 1 connections, so no handler
 * waits for one and no crypto runs under a shared lock), (c) the Paillier
 * pool (pool_mu). Key state lives only in the store; every change goes through
 * one store transaction with its audit entry, guarded by the row version
 * (optimistic concurrency: re-read and retry on DUO_E_CONFLICT).
 *
 * Sessions are in memory, keyed by sid, single-threaded while a handler holds
 * them (busy), expire after session_ttl_s, and leave a tombstone for a while
 * so that late or replayed requests get a precise error (expired / already
 * used / failed) instead of "unknown". */

/* keystore.h and wire.h both define a type named duo_key_state; rename the
 * store's one here (its functions take int states). */
#define duo_key_state duo_store_key_state
#include "keystore.h"
#undef duo_key_state

#include "overlap.h"
#include "service.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "duosign.pb-c.h"
#include "duosign/curve.h"
#include "duosign/mem.h"
#include "duosign/paillier.h"
#include "duosign/rng.h"
#include "duosign/zk_paillier.h"
#include "p1.h"
#include "wire.h"

#define SESS_MAX_DEFAULT 10000 /* live sessions (tombstones are counted apart) */
#define ENROL_PER_PEER_DEFAULT 16
#define START_COUNT_MS (60 * 60 * 1000) /* a token's start count is forgotten after an hour without starts */
#define START_COUNT_MAX 65536
#define SESS_BUCKETS 4096 /* live sessions by sid and by key id; power of two */
#define TOMBSTONE_MS (10 * 60 * 1000)
#define TOMB_BUCKETS 65536 /* power of two */
#define TOMB_MAX 262144    /* ~64 bytes each; beyond it the oldest go first */
#define POOL_MAX 16
#define POOL_INFLIGHT_MAX 1
#define KEYCACHE_MAX 1024
#define PENDING_MAX_AGE_S 3600
#define MAINT_PERIOD_MS 30000
#define RETRIES 8
#define REVOCATION_CODE_BYTES 16 /* 128 bits, 26 base32 chars in groups of 4 */

typedef enum { SESS_ENROL = 1, SESS_SIGN = 2 } sess_kind;

/* A live session: in the live list, in its key's chain (signing) and, once
 * the engine has made its sid, in its sid's chain. When it ends it is freed
 * and, if it had a sid, leaves a tombstone (below). */
typedef struct session {
    struct session *prev, *next; /* live list */
    struct session *sid_next;    /* chain of s->by_sid[bucket(sid)] */
    struct session *key_next;    /* chain of s->by_key[bucket(key_id)], signing only */
    sess_kind kind;
    int has_sid;
    uint8_t sid[DUO_SID_BYTES];
    uint8_t key_id[DUO_KEY_ID_BYTES];
    int64_t created_ms;
    int busy;
    int superseded; /* replaced while busy: ends (DUO_E_SESSION_SUPERSEDED) on release */
    /* enrolment */
    uint8_t token_hash[32]; /* one live enrolment per token: a new start supersedes */
    char peer_host[64];     /* the client's address without its port: a cap per peer */
    uint32_t starts;        /* EnrollStarts on this token so far (start_count) */
    duo_p1_enroll *en;
    uint8_t token[DUO_TOKEN_MAX];
    size_t token_len;
    char citizen[DUO_CITIZEN_ID_MAX + 1]; /* also the signing key's */
    /* signing */
    duo_p1_sign *sg;
    struct kc_item *kc; /* the built key, a reference into the key cache */
    uint8_t secret[32]; /* SECRET: the device secret that authenticated round 1 */
    uint8_t digest[DUO_DIGEST_BYTES];
} session;

/* What a late or repeated request on a finished session is told (its error),
 * kept TOMBSTONE_MS or until TOMB_MAX newer ones push it out; after that the
 * sid is simply unknown (DUO_E_NOT_FOUND), which is just as final. */
typedef struct tombstone {
    struct tombstone *hnext; /* chain of s->tombs[bucket(sid)] */
    struct tombstone *qnext; /* age order, oldest first */
    uint8_t sid[DUO_SID_BYTES];
    sess_kind kind;
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

/* A pool entry: a Paillier key and the randomness of the enrolment that will
 * use it (ckey's and the range proof's r and r^N, duo_zk_range_precomp), made
 * together off the request path. Single use: pool_take hands an entry to one
 * enrolment, which consumes it. */
typedef struct pool_entry {
    duo_paillier_priv *key;
    duo_zk_range_precomp *precomp;
} pool_entry;

static void pool_entry_clear(pool_entry *e) {
    duo_paillier_priv_free(e->key);
    duo_zk_range_precomp_free(e->precomp);
    e->key = NULL;
    e->precomp = NULL;
}

typedef struct pool_job {
    uv_work_t work;
    duo_service *svc;
    pool_entry e;
} pool_job;

struct duo_service {
    duo_service_config cfg;
    char data_dir[DUO_PATH_MAX];
    duo_ec *ec;
    duo_overlap *overlap; /* SignFinish's store write beside its decryption */
    uv_loop_t *loop;

    pthread_mutex_t ks_mu;
    pthread_cond_t ks_cv;
    pthread_mutex_t write_mu; /* the store connections' write transactions queue here */
    duo_keystore **ks_all, **ks_free;
    size_t n_ks, n_free;

    pthread_mutex_t sess_mu; /* guards everything below up to kc_mu */
    session *sessions;       /* live list */
    size_t n_sessions;       /* live */
    size_t n_enrol;          /* live enrolment sessions (at most half of max_sessions) */
    start_count *start_counts;
    size_t n_start_counts;
    session *by_sid[SESS_BUCKETS], *by_key[SESS_BUCKETS];
    tombstone **tombs; /* TOMB_BUCKETS chains */
    tombstone *tomb_head, *tomb_tail;
    size_t n_tombs;

    pthread_mutex_t kc_mu; /* guards kc_slots, kc_n, kc_hand and the use bits */
    struct kc_item *kc_slots[KEYCACHE_MAX];
    size_t kc_n, kc_hand;

    pthread_mutex_t fz_mu;               /* guards fz_ids, fz_n, fz_cap */
    uint8_t (*fz_ids)[DUO_KEY_ID_BYTES]; /* keys whose freeze failed to be stored: refused until it is */
    size_t fz_n, fz_cap;

    pthread_mutex_t pool_mu;
    pool_entry pool[POOL_MAX];
    size_t pool_n;
    unsigned pool_inflight;
    int pool_stop;
    uv_async_t refill_async;
    uv_timer_t sweep_timer, maint_timer;
    int handles_open;
};

/* ------------------------------------------------------------ helpers */

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

#define DETAIL(info, ...) duo_call_info_set_detail((info), __VA_ARGS__)

static void trailer_i64(duo_call_info *info, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    if (duo_call_info_add_trailer(info, key, buf) != DUO_OK) { /* full: the message still says it */
    }
}

/* ---------------------------------------------------- store connections */

static duo_keystore *ks_acquire(duo_service *s) {
    pthread_mutex_lock(&s->ks_mu);
    while (s->n_free == 0) pthread_cond_wait(&s->ks_cv, &s->ks_mu);
    duo_keystore *ks = s->ks_free[--s->n_free];
    pthread_mutex_unlock(&s->ks_mu);
    return ks;
}

static void ks_release(duo_service *s, duo_keystore *ks) {
    pthread_mutex_lock(&s->ks_mu);
    s->ks_free[s->n_free++] = ks;
    pthread_cond_signal(&s->ks_cv);
    pthread_mutex_unlock(&s->ks_mu);
}

/* ------------------------------------------------------- Paillier pool */

static void pool_kick(duo_service *s);

static void pool_work_cb(uv_work_t *w) {
    pool_job *j = w->data;
    if (duo_paillier_keygen(&j->e.key, j->svc->cfg.paillier_bits) != DUO_OK ||
        duo_zk_range_precomp_new(&j->e.precomp, j->e.key, NULL) != DUO_OK)
        pool_entry_clear(&j->e);
}

static void pool_after_cb(uv_work_t *w, int status) {
    pool_job *j = w->data;
    duo_service *s = j->svc;
    (void)status;
    pthread_mutex_lock(&s->pool_mu);
    s->pool_inflight--;
    if (j->e.key && !s->pool_stop && s->pool_n < POOL_MAX) {
        s->pool[s->pool_n++] = j->e;
        memset(&j->e, 0, sizeof j->e);
    }
    pthread_mutex_unlock(&s->pool_mu);
    pool_entry_clear(&j->e);
    free(j);
    pool_kick(s);
}

/* Loop thread. */
static void pool_kick(duo_service *s) {
    for (;;) {
        pthread_mutex_lock(&s->pool_mu);
        int go =
            !s->pool_stop && s->pool_n + s->pool_inflight < s->cfg.prime_pool && s->pool_inflight < POOL_INFLIGHT_MAX;
        if (go) s->pool_inflight++;
        pthread_mutex_unlock(&s->pool_mu);
        if (!go) return;
        pool_job *j = calloc(1, sizeof *j);
        if (j) {
            j->svc = s;
            j->work.data = j;
        }
        if (!j || uv_queue_work(s->loop, &j->work, pool_work_cb, pool_after_cb) != 0) {
            free(j);
            pthread_mutex_lock(&s->pool_mu);
            s->pool_inflight--;
            pthread_mutex_unlock(&s->pool_mu);
            return;
        }
    }
}

static void on_refill(uv_async_t *h) { pool_kick(h->data); }

/* Any thread. An empty entry if the pool is empty (the engine then generates
 * the key and its randomness itself). The entry leaves the pool: the caller
 * owns it and hands it to exactly one enrolment. */
static pool_entry pool_take(duo_service *s) {
    pool_entry e = {NULL, NULL};
    pthread_mutex_lock(&s->pool_mu);
    if (s->pool_n > 0) {
        e = s->pool[--s->pool_n];
        memset(&s->pool[s->pool_n], 0, sizeof s->pool[s->pool_n]);
    }
    int stop = s->pool_stop;
    pthread_mutex_unlock(&s->pool_mu);
    if (!stop && s->handles_open) uv_async_send(&s->refill_async);
    return e;
}

/* Puts an unused entry back (a reclaimed key a start did not need), or wipes it. */
static void pool_return(duo_service *s, pool_entry *e) {
    if (e->key == NULL) {
        pool_entry_clear(e);
        return;
    }
    pthread_mutex_lock(&s->pool_mu);
    if (!s->pool_stop && s->pool_n < POOL_MAX) {
        s->pool[s->pool_n++] = *e;
        e->key = NULL;
        e->precomp = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    pool_entry_clear(e);
}

size_t duo_service_pool_ready(duo_service *s) {
    pthread_mutex_lock(&s->pool_mu);
    size_t n = s->pool_n;
    pthread_mutex_unlock(&s->pool_mu);
    return n;
}

/* ---------------------------------------------------------- key cache */
/* Built duo_p1_key objects (x1, Q, Q2, the Paillier key with its CRT
 * constants and Montgomery contexts), so that a signature does not rebuild
 * them from the stored primes (duo_paillier_priv_from_primes + the x1*G check
 * in duo_p1_key_new) every time. Only this immutable crypto material is
 * cached: the key row (state, lock, counters, device secrets) is still read
 * from the store on every request, and an entry is used only if its tag
 * matches the material read in that request: tag = SHA-256 over the key id,
 * the Paillier size, Q, Q2, x1, p and q as just read and unsealed. (The
 * store's row and secret versions cannot serve as the tag: every signature
 * rotates the device secret, which bumps both.) Bounded (KEYCACHE_MAX,
 * clock replacement). Entries are reference-counted: a signing session holds
 * one for its lifetime (the engine borrows the key), the table another; the
 * key is wiped (duo_p1_key_free) when the last reference goes: after
 * eviction, invalidation (revocation, suspension, a final state seen on
 * load, the maintenance sweep) or shutdown. */
typedef struct kc_item {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t tag[32];
    duo_p1_key *key; /* SECRET */
    atomic_uint refs;
    int used; /* clock bit (kc_mu) */
} kc_item;

static void kc_put(kc_item *it) {
    if (it == NULL) return;
    if (atomic_fetch_sub(&it->refs, 1u) == 1u) {
        duo_p1_key_free(it->key);
        duo_memzero(it, sizeof *it);
        free(it);
    }
}

/* Drops slot i from the table (kc_mu held). */
static void kc_drop_locked(duo_service *s, size_t i) {
    kc_item *it = s->kc_slots[i];
    s->kc_slots[i] = s->kc_slots[--s->kc_n];
    s->kc_slots[s->kc_n] = NULL;
    if (s->kc_hand >= s->kc_n) s->kc_hand = 0;
    kc_put(it);
}

static long kc_find_locked(duo_service *s, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    for (size_t i = 0; i < s->kc_n; i++)
        if (memcmp(s->kc_slots[i]->key_id, key_id, DUO_KEY_ID_BYTES) == 0) return (long)i;
    return -1;
}

/* Wipes the cached key of key_id, if any (revocation, suspension). */
static void kc_forget(duo_service *s, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    pthread_mutex_lock(&s->kc_mu);
    long i = kc_find_locked(s, key_id);
    if (i >= 0) kc_drop_locked(s, (size_t)i);
    pthread_mutex_unlock(&s->kc_mu);
}

static void kc_clear(duo_service *s) {
    pthread_mutex_lock(&s->kc_mu);
    while (s->kc_n > 0) kc_drop_locked(s, s->kc_n - 1);
    pthread_mutex_unlock(&s->kc_mu);
}

static int kc_tag(uint8_t tag[32], const duo_key_info *ki, const duo_key_secrets *sec) {
    int r = DUO_E_INTERNAL;
    uint8_t bits[4] = {(uint8_t)(ki->paillier_bits >> 24), (uint8_t)(ki->paillier_bits >> 16),
                       (uint8_t)(ki->paillier_bits >> 8), (uint8_t)ki->paillier_bits};
    uint8_t pl[2] = {(uint8_t)(sec->p_len >> 8), (uint8_t)sec->p_len};
    uint8_t ql[2] = {(uint8_t)(sec->q_len >> 8), (uint8_t)sec->q_len};
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL) return DUO_E_NOMEM;
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(c, "duosign/keycache", 16) == 1 &&
        EVP_DigestUpdate(c, ki->key_id, DUO_KEY_ID_BYTES) == 1 && EVP_DigestUpdate(c, bits, 4) == 1 &&
        EVP_DigestUpdate(c, ki->q, DUO_KEY_POINT_LEN) == 1 && EVP_DigestUpdate(c, ki->q2, DUO_KEY_POINT_LEN) == 1 &&
        EVP_DigestUpdate(c, sec->x1, sizeof sec->x1) == 1 && EVP_DigestUpdate(c, pl, 2) == 1 &&
        EVP_DigestUpdate(c, sec->p, sec->p_len) == 1 && EVP_DigestUpdate(c, ql, 2) == 1 &&
        EVP_DigestUpdate(c, sec->q, sec->q_len) == 1 && EVP_DigestFinal_ex(c, tag, NULL) == 1)
        r = DUO_OK;
    EVP_MD_CTX_free(c);
    return r;
}

static int p1_key_from_store(duo_service *s, duo_p1_key **out, const duo_key_info *ki, const duo_key_secrets *sec);

/* A reference to the built key for the row just read (ki, sec): from the
 * cache if its tag matches, else built and cached. Release with kc_put. */
static int kc_get(duo_service *s, kc_item **out, const duo_key_info *ki, const duo_key_secrets *sec) {
    uint8_t tag[32];
    kc_item *it = NULL;
    int r;
    *out = NULL;
    if ((r = kc_tag(tag, ki, sec)) != DUO_OK) return r;
    pthread_mutex_lock(&s->kc_mu);
    long i = kc_find_locked(s, ki->key_id);
    if (i >= 0) {
        it = s->kc_slots[i];
        if (duo_ct_eq(it->tag, tag, sizeof tag)) {
            atomic_fetch_add(&it->refs, 1u);
            it->used = 1;
        } else {
            kc_drop_locked(s, (size_t)i); /* stale: the stored material differs */
            it = NULL;
        }
    }
    pthread_mutex_unlock(&s->kc_mu);
    if (it != NULL) {
        *out = it;
        duo_memzero(tag, sizeof tag);
        return DUO_OK;
    }
    if ((it = calloc(1, sizeof *it)) == NULL) return DUO_E_NOMEM;
    if ((r = p1_key_from_store(s, &it->key, ki, sec)) != DUO_OK) {
        free(it);
        return r;
    }
    memcpy(it->key_id, ki->key_id, DUO_KEY_ID_BYTES);
    memcpy(it->tag, tag, sizeof tag);
    duo_memzero(tag, sizeof tag);
    atomic_init(&it->refs, 1u); /* the caller's */
    pthread_mutex_lock(&s->kc_mu);
    if (kc_find_locked(s, it->key_id) < 0) { /* else another thread cached it meanwhile: ours stays private */
        if (s->kc_n == KEYCACHE_MAX) {
            /* clock: skip (and clear) recently used entries, evict the first unused one */
            for (;;) {
                if (s->kc_hand >= s->kc_n) s->kc_hand = 0;
                if (!s->kc_slots[s->kc_hand]->used) break;
                s->kc_slots[s->kc_hand]->used = 0;
                s->kc_hand++;
            }
            kc_drop_locked(s, s->kc_hand);
        }
        atomic_fetch_add(&it->refs, 1u); /* the table's */
        s->kc_slots[s->kc_n++] = it;
    }
    pthread_mutex_unlock(&s->kc_mu);
    *out = it;
    return DUO_OK;
}

/* ------------------------------------------------------------ sessions */

/* Frees the engine state of a session (under sess_mu or when unlinked). */
static void sess_clear(session *x) {
    duo_p1_enroll_free(x->en);
    x->en = NULL;
    duo_p1_sign_free(x->sg); /* before the key it borrows */
    x->sg = NULL;
    kc_put(x->kc);
    x->kc = NULL;
    duo_memzero(x->secret, sizeof x->secret);
    duo_memzero(x->token, sizeof x->token);
}

/* Sids and key ids are hash outputs or random: their first bytes spread
 * evenly, and a bucket only narrows the search (the compare that decides is
 * constant-time). */
static size_t bucket_of(const uint8_t *id, size_t n_buckets) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | id[i];
    return (size_t)(v & (n_buckets - 1));
}

static void tomb_free_oldest_locked(duo_service *s) {
    tombstone *t = s->tomb_head;
    tombstone **pp = &s->tombs[bucket_of(t->sid, TOMB_BUCKETS)];
    while (*pp != t) pp = &(*pp)->hnext;
    *pp = t->hnext;
    s->tomb_head = t->qnext;
    if (!s->tomb_head) s->tomb_tail = NULL;
    s->n_tombs--;
    free(t);
}

/* Records how a session with a sid ended. Without memory the tombstone is
 * skipped: the sid then reads as unknown, still a refusal. */
static void tomb_add_locked(duo_service *s, const session *x, int reason, int64_t now) {
    if (!x->has_sid) return;
    if (s->n_tombs >= TOMB_MAX) tomb_free_oldest_locked(s);
    tombstone *t = calloc(1, sizeof *t);
    if (!t) return;
    memcpy(t->sid, x->sid, DUO_SID_BYTES);
    t->kind = x->kind;
    t->reason = reason;
    t->dead_ms = now;
    size_t b = bucket_of(t->sid, TOMB_BUCKETS);
    t->hnext = s->tombs[b];
    s->tombs[b] = t;
    if (s->tomb_tail)
        s->tomb_tail->qnext = t;
    else
        s->tomb_head = t;
    s->tomb_tail = t;
    s->n_tombs++;
}

static const tombstone *tomb_find_locked(const duo_service *s, const uint8_t sid[DUO_SID_BYTES]) {
    const tombstone *t = s->tombs[bucket_of(sid, TOMB_BUCKETS)];
    while (t && !duo_ct_eq(t->sid, sid, DUO_SID_BYTES)) t = t->hnext;
    return t;
}

static void chain_unlink(session **pp, const session *x, int by_key) {
    while (*pp && *pp != x) pp = by_key ? &(*pp)->key_next : &(*pp)->sid_next;
    if (*pp) *pp = by_key ? x->key_next : x->sid_next;
}

/* Takes x out of the live table and frees it; with a reason, a tombstone
 * answers later requests on its sid. */
static void sess_end_locked(duo_service *s, session *x, int reason, int64_t now) {
    if (x->prev)
        x->prev->next = x->next;
    else
        s->sessions = x->next;
    if (x->next) x->next->prev = x->prev;
    if (x->kind == SESS_SIGN) chain_unlink(&s->by_key[bucket_of(x->key_id, SESS_BUCKETS)], x, 1);
    if (x->has_sid) chain_unlink(&s->by_sid[bucket_of(x->sid, SESS_BUCKETS)], x, 0);
    s->n_sessions--;
    if (x->kind == SESS_ENROL) s->n_enrol--;
    if (reason) tomb_add_locked(s, x, reason, now);
    sess_clear(x);
    free(x);
}

static int sess_expired(const duo_service *s, const session *x, int64_t now) {
    return now - x->created_ms > (int64_t)s->cfg.session_ttl_s * 1000;
}

static void sess_reason_detail(duo_call_info *info, int reason, unsigned ttl) {
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

static const char *sess_kind_name(sess_kind k) { return k == SESS_ENROL ? "enrolment" : "signing"; }

/* Takes a live session for exclusive use. */
static int sess_take(duo_service *s, session **out, const uint8_t sid[DUO_SID_BYTES], sess_kind kind,
                     duo_call_info *info) {
    int64_t now = mono_ms();
    int r = DUO_OK;
    *out = NULL;
    pthread_mutex_lock(&s->sess_mu);
    session *x = s->by_sid[bucket_of(sid, SESS_BUCKETS)];
    while (x && !duo_ct_eq(x->sid, sid, DUO_SID_BYTES)) x = x->sid_next;
    const tombstone *t = x ? NULL : tomb_find_locked(s, sid);
    if (!x && !t) {
        r = DUO_E_NOT_FOUND;
        DETAIL(info, "no such session (unknown session id, or it expired long ago); start again");
    } else if ((x ? x->kind : t->kind) != kind) {
        r = DUO_E_SESSION_MISMATCH;
        DETAIL(info, "the session id belongs to an %s session", sess_kind_name(x ? x->kind : t->kind));
    } else if (t) {
        r = t->reason;
        sess_reason_detail(info, r, s->cfg.session_ttl_s);
    } else if (x->busy) {
        r = DUO_E_SESSION_BUSY;
        DETAIL(info, "this session is handling another request; retry");
    } else if (sess_expired(s, x, now)) {
        sess_end_locked(s, x, DUO_E_SESSION_EXPIRED, now);
        r = DUO_E_SESSION_EXPIRED;
        sess_reason_detail(info, r, s->cfg.session_ttl_s);
    } else {
        x->busy = 1;
        *out = x;
    }
    pthread_mutex_unlock(&s->sess_mu);
    return r;
}

/* Releases a session; kill_reason != 0 ends it (it is freed, a tombstone
 * remains). The caller must not touch x afterwards. */
static void sess_release(duo_service *s, session *x, int kill_reason) {
    pthread_mutex_lock(&s->sess_mu);
    if (!kill_reason && x->superseded) kill_reason = DUO_E_SESSION_SUPERSEDED;
    if (kill_reason)
        sess_end_locked(s, x, kill_reason, mono_ms());
    else
        x->busy = 0;
    pthread_mutex_unlock(&s->sess_mu);
}

/* What an enrolment session is admitted on: its token and its client. */
typedef struct enrol_admit {
    uint8_t token_hash[32];
    char peer_host[64];
} enrol_admit;

/* The retry hint for a refusal that a finishing session lifts. */
static void busy_retry(const duo_service *s, duo_call_info *info) {
    trailer_i64(info, "duo-retry-after", s->cfg.session_ttl_s);
}

/* Counts a start on a token (sess_mu held): 1 for the first in an hour. */
static uint32_t start_count_bump_locked(duo_service *s, const uint8_t token_hash[32], int64_t now) {
    start_count *c = s->start_counts;
    while (c && memcmp(c->token_hash, token_hash, 32) != 0) c = c->next;
    if (!c) {
        if (s->n_start_counts >= START_COUNT_MAX || !(c = calloc(1, sizeof *c))) return 1;
        memcpy(c->token_hash, token_hash, 32);
        c->next = s->start_counts;
        s->start_counts = c;
        s->n_start_counts++;
    }
    if (c->starts < UINT32_MAX) c->starts++;
    c->last_ms = now;
    return c->starts;
}

/* Enrolment admission (sess_mu held). One live enrolment per token: an older
 * one on the same token is superseded (ended now, or by its handler's release
 * if busy), so repeating EnrollStart on one token holds one session however
 * often it is sent; an idle one that has not answered round 2 gives its
 * Paillier key back in *reclaimed, so a repeat costs no key. Otherwise
 * enrolments take at most half of max_sessions (signing always finds room)
 * and at most max_enrol_per_peer from one client address. */
static int enrol_admit_locked(duo_service *s, const enrol_admit *a, pool_entry *reclaimed, int64_t now,
                              duo_call_info *info) {
    size_t cap = s->cfg.max_sessions / 2 > 0 ? s->cfg.max_sessions / 2 : 1, from_peer = 0;
    session *same = NULL;
    for (session *y = s->sessions; y; y = y->next) {
        if (y->kind != SESS_ENROL || y->superseded) continue;
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
            sess_end_locked(s, same, DUO_E_SESSION_SUPERSEDED, now);
        }
        return DUO_OK;
    }
    if (s->n_enrol >= cap) {
        DETAIL(info, "too many enrolments in progress; retry in %u s", s->cfg.session_ttl_s);
        busy_retry(s, info);
        return DUO_E_SERVER_BUSY;
    }
    if (from_peer >= s->cfg.max_enrol_per_peer) {
        DETAIL(info, "too many enrolments in progress from this address (at most %u); retry in %u s",
               s->cfg.max_enrol_per_peer, s->cfg.session_ttl_s);
        busy_retry(s, info);
        return DUO_E_SERVER_BUSY;
    }
    return DUO_OK;
}

/* Signing admission (sess_mu held): one live session per key (DESIGN 3.3: no
 * parallel sessions). The caller has authenticated this SignStart with the
 * device's MAC, so an idle session on the key is one whose answer the device
 * never saw (or that it gave up): no round 2 reached it, nothing was
 * decrypted, and it is ended at once (tombstone SUPERSEDED) instead of
 * blocking the key for session_ttl_s. A session a handler is working on
 * (busy: its SignStart or SignFinish is running) is never ended here. */
static int sign_admit_locked(duo_service *s, const uint8_t key_id[DUO_KEY_ID_BYTES], int64_t now, duo_call_info *info) {
    session *y = s->by_key[bucket_of(key_id, SESS_BUCKETS)];
    while (y) {
        session *yn = y->key_next;
        if (memcmp(y->key_id, key_id, DUO_KEY_ID_BYTES) != 0) {
            y = yn;
            continue;
        }
        if (!y->busy) {
            sess_end_locked(s, y, sess_expired(s, y, now) ? DUO_E_SESSION_EXPIRED : DUO_E_SESSION_SUPERSEDED, now);
            y = yn;
            continue;
        }
        int64_t left = (y->created_ms + (int64_t)s->cfg.session_ttl_s * 1000 - now + 999) / 1000;
        if (left < 1) left = 1;
        DETAIL(info, "another signing request for this key is being handled; retry in a moment");
        trailer_i64(info, "duo-retry-after", left);
        return DUO_E_SESSION_BUSY;
    }
    return DUO_OK;
}

/* Inserts a new busy session: signing with sign_admit_locked, enrolment with
 * enrol_admit_locked (ea; a superseded session's key comes back in
 * *reclaimed). max_sessions caps both together. */
static int sess_insert(duo_service *s, session **out, sess_kind kind, const uint8_t key_id[DUO_KEY_ID_BYTES],
                       const enrol_admit *ea, pool_entry *reclaimed, duo_call_info *info) {
    int64_t now = mono_ms();
    int r = DUO_OK;
    *out = NULL;
    session *x = calloc(1, sizeof *x);
    if (!x) return DUO_E_NOMEM;
    x->kind = kind;
    x->created_ms = now;
    x->busy = 1;
    if (key_id) memcpy(x->key_id, key_id, DUO_KEY_ID_BYTES);
    pthread_mutex_lock(&s->sess_mu);
    if (kind == SESS_SIGN)
        r = sign_admit_locked(s, key_id, now, info);
    else
        r = enrol_admit_locked(s, ea, reclaimed, now, info);
    if (r == DUO_OK && s->n_sessions >= s->cfg.max_sessions) {
        DETAIL(info, "too many sessions in progress; retry in %u s", s->cfg.session_ttl_s);
        busy_retry(s, info);
        r = DUO_E_SERVER_BUSY;
    }
    if (r != DUO_OK) {
        pthread_mutex_unlock(&s->sess_mu);
        free(x);
        return r;
    }
    if (kind == SESS_SIGN) {
        size_t kb = bucket_of(x->key_id, SESS_BUCKETS);
        x->key_next = s->by_key[kb];
        s->by_key[kb] = x;
    } else {
        memcpy(x->token_hash, ea->token_hash, sizeof x->token_hash);
        snprintf(x->peer_host, sizeof x->peer_host, "%s", ea->peer_host);
        x->starts = start_count_bump_locked(s, ea->token_hash, now);
        s->n_enrol++;
    }
    x->next = s->sessions;
    if (x->next) x->next->prev = x;
    s->sessions = x;
    s->n_sessions++;
    pthread_mutex_unlock(&s->sess_mu);
    *out = x;
    return DUO_OK;
}

static void sess_set_sid(duo_service *s, session *x, const uint8_t *sid) {
    pthread_mutex_lock(&s->sess_mu);
    memcpy(x->sid, sid, DUO_SID_BYTES);
    x->has_sid = 1;
    size_t b = bucket_of(x->sid, SESS_BUCKETS);
    x->sid_next = s->by_sid[b];
    s->by_sid[b] = x;
    pthread_mutex_unlock(&s->sess_mu);
}

/* Loop thread: expire idle live sessions and drop old tombstones; all = at
 * shutdown, everything not in use goes, without tombstones. */
static void sess_sweep(duo_service *s, int all) {
    int64_t now = mono_ms();
    pthread_mutex_lock(&s->sess_mu);
    session *x = s->sessions;
    while (x) {
        session *xn = x->next;
        if (!x->busy && (all || sess_expired(s, x, now))) sess_end_locked(s, x, all ? 0 : DUO_E_SESSION_EXPIRED, now);
        x = xn;
    }
    while (s->tomb_head && (all || now - s->tomb_head->dead_ms > TOMBSTONE_MS)) tomb_free_oldest_locked(s);
    for (start_count **pp = &s->start_counts; *pp;) {
        start_count *c = *pp;
        if (all || now - c->last_ms > START_COUNT_MS) {
            *pp = c->next;
            free(c);
            s->n_start_counts--;
        } else {
            pp = &c->next;
        }
    }
    pthread_mutex_unlock(&s->sess_mu);
}

static void on_sweep(uv_timer_t *t) { sess_sweep(t->data, 0); }

/* ------------------------------------------------------------ key state */

/* Reads a key; an expired lock is lifted in the store (with its audit). */
static int key_load(duo_service *s, duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                    const uint8_t key_id[DUO_KEY_ID_BYTES], duo_call_info *info) {
    (void)s;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        int r = duo_keystore_key_get(ks, ki, sec, key_id);
        if (r == DUO_E_NOT_FOUND) {
            DETAIL(info, "unknown key id; enrol first");
            return r;
        }
        if (r == DUO_E_STATE_CORRUPT) {
            DETAIL(info, "the stored key failed its integrity check; contact the operator");
            return r;
        }
        if (r != DUO_OK) return r;
        if (ki->state != DUO_KEY_LOCKED || ki->locked_until > now_s()) return DUO_OK;
        duo_key_policy pol = {
            .state = DUO_KEY_ACTIVE, .pin_failures = ki->pin_failures, .locked_until = 0, .reason = NULL};
        duo_audit_event ev = {
            .kind = DUO_AUDIT_UNLOCK, .key_id = key_id, .citizen_id = ki->citizen_id, .detail = "lock expired"};
        r = duo_keystore_key_update_policy(ks, key_id, ki->version, &pol, &ev);
        if (r != DUO_OK && r != DUO_E_CONFLICT) return r;
        if (sec) duo_key_secrets_clear(sec);
    }
    return DUO_E_CONFLICT;
}

static int state_final_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->state == DUO_KEY_SUSPENDED) {
        DETAIL(info, "key is frozen: %s; enrol again", ki->reason[0] ? ki->reason : "suspended");
        return DUO_E_KEY_SUSPENDED;
    }
    if (ki->state == DUO_KEY_PENDING) {
        DETAIL(info, "key enrolment was never confirmed; enrol again");
        return DUO_E_PROTO_STATE;
    }
    return DUO_OK;
}

static int locked_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->state != DUO_KEY_LOCKED) return DUO_OK;
    char when[64];
    duo__fmt_time(when, sizeof when, ki->locked_until);
    DETAIL(info, "key is locked until %s after %u wrong PINs in a row; try again after that time", when,
           ki->pin_failures);
    trailer_i64(info, "duo-locked-until", ki->locked_until);
    return DUO_E_KEY_LOCKED;
}

/* Fixes a revoked key's reason text in the message (closing paren). */
static int revoked_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->reason[0])
        DETAIL(info, "key is revoked (%s); enrol again", ki->reason);
    else
        DETAIL(info, "key is revoked; enrol again");
    return DUO_E_KEY_REVOKED;
}

static int final_err(const duo_key_info *ki, duo_call_info *info) {
    if (ki->state == DUO_KEY_REVOKED) return revoked_err(ki, info);
    return state_final_err(ki, info);
}

/* Moves the key to suspended (final) with an audit entry. */
static int key_freeze(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], const char *kind, const char *reason) {
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        duo_key_info ki;
        int r = duo_keystore_key_get(ks, &ki, NULL, key_id);
        if (r != DUO_OK) return r;
        if (ki.state == DUO_KEY_SUSPENDED || ki.state == DUO_KEY_REVOKED) return DUO_OK;
        duo_key_policy pol = {.state = DUO_KEY_SUSPENDED,
                              .pin_failures = ki.pin_failures,
                              .locked_until = ki.locked_until,
                              .reason = reason};
        duo_audit_event ev = {.kind = kind, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = reason};
        r = duo_keystore_key_update_policy(ks, key_id, ki.version, &pol, &ev);
        if (r != DUO_E_CONFLICT) return r;
    }
    return DUO_E_CONFLICT;
}

/* Freezes that failed to reach the store (a full disk, an I/O error, the
 * database held by another process) are kept here and the key is refused
 * until its freeze is stored: the abort rule fails closed. Retried by every
 * SignStart on the key and by the maintenance timer. In this process's
 * memory only (one daemon per data directory, serve.lock): a restart before
 * the store accepts the write forgets it, which the attack.suspected entry
 * that did not get written cannot tell either; the daemon's log has it. */
static void fz_add(duo_service *s, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    pthread_mutex_lock(&s->fz_mu);
    size_t i = 0;
    while (i < s->fz_n && memcmp(s->fz_ids[i], key_id, DUO_KEY_ID_BYTES) != 0) i++;
    if (i == s->fz_n) {
        if (s->fz_n == s->fz_cap) {
            size_t nc = s->fz_cap ? s->fz_cap * 2 : 8;
            void *p = realloc(s->fz_ids, nc * sizeof *s->fz_ids);
            if (p) {
                s->fz_ids = p;
                s->fz_cap = nc;
            }
        }
        if (s->fz_n < s->fz_cap) memcpy(s->fz_ids[s->fz_n++], key_id, DUO_KEY_ID_BYTES);
    }
    pthread_mutex_unlock(&s->fz_mu);
    fprintf(stderr, "duosign-cloud: freeze of a key after an attack could not be stored; the key is refused until it "
                    "is (retried)\n");
}

static int fz_has(duo_service *s, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    int found = 0;
    pthread_mutex_lock(&s->fz_mu);
    for (size_t i = 0; i < s->fz_n && !found; i++) found = memcmp(s->fz_ids[i], key_id, DUO_KEY_ID_BYTES) == 0;
    pthread_mutex_unlock(&s->fz_mu);
    return found;
}

static void fz_remove(duo_service *s, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    pthread_mutex_lock(&s->fz_mu);
    for (size_t i = 0; i < s->fz_n; i++) {
        if (memcmp(s->fz_ids[i], key_id, DUO_KEY_ID_BYTES) == 0) {
            memcpy(s->fz_ids[i], s->fz_ids[--s->fz_n], DUO_KEY_ID_BYTES);
            break;
        }
    }
    pthread_mutex_unlock(&s->fz_mu);
}

#define ATTACK_REASON \
    "attack suspected: the signature share failed to verify after a valid PIN proof; no signature was released"

/* Stores a pending freeze. Returns DUO_OK once it is stored (or the key is
 * final anyway). */
static int fz_retry(duo_service *s, duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    int r = key_freeze(ks, key_id, DUO_AUDIT_ATTACK, ATTACK_REASON " (stored late: the first write failed)");
    if (r == DUO_OK || r == DUO_E_NOT_FOUND) fz_remove(s, key_id);
    return r;
}

/* ------------------------------------------- device authentication (3.5) */

typedef struct {
    const uint8_t *mac_input;
    const uint8_t *mac;
    uint8_t secret[DUO_DEVICE_SECRET_LEN]; /* SECRET: the retired secret that matched */
} mac_match;

static int retired_match_cb(void *data, const uint8_t secret[DUO_DEVICE_SECRET_LEN]) {
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
static int replay_reject(duo_keystore *ks, const duo_key_info *ki, const uint8_t key_id[DUO_KEY_ID_BYTES],
                         const char *which, duo_call_info *info) {
    char detail[300];
    snprintf(detail, sizeof detail,
             "replayed request refused: this request (its device nonce) was already "
             "accepted under the %s device secret; %s",
             which, info->peer);
    duo_audit_event ev = {.kind = AUDIT_REPLAY, .key_id = key_id, .citizen_id = ki->citizen_id, .detail = detail};
    if (duo_keystore_audit_append(ks, NULL, &ev) != DUO_OK) { /* the refusal is what matters */
    }
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
static int authenticate(duo_service *s, duo_keystore *ks, duo_key_info *ki, duo_key_secrets *sec,
                        const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t mac_input[32],
                        const uint8_t mac[DUO_MAC_BYTES], uint8_t used[32], int *record_later, int defer,
                        duo_call_info *info) {
    if (record_later) *record_later = 0;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
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
            if (r == DUO_E_EXISTS) return replay_reject(ks, ki, key_id, "pending", info);
            if (r == DUO_OK) return DUO_OK; /* ki and sec: the key as written */
        } else if (ok_cur) {
            if (!sec->has_pending) {
                if (record_later) {
                    int seen = 0;
                    if ((r = duo_keystore_nonce_seen(ks, &seen, key_id, sec->current, mac_input, 32)) != DUO_OK)
                        return r;
                    if (seen) return replay_reject(ks, ki, key_id, "current", info);
                    *record_later = 1;
                    memcpy(used, sec->current, 32);
                    return DUO_OK;
                }
                if ((r = commit_defer(ks, defer)) == DUO_OK)
                    r = commit_durable(ks, defer,
                                       duo_keystore_nonce_record(ks, key_id, sec->current, mac_input, 32, NULL));
                if (r == DUO_E_EXISTS) return replay_reject(ks, ki, key_id, "current", info);
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
            if (r == DUO_E_EXISTS) return replay_reject(ks, ki, key_id, "current", info);
            if (r == DUO_OK) return DUO_OK; /* ki and sec: the key as written */
        } else {
            mac_match m = {mac_input, mac, {0}};
            int found = 0, seen = 0;
            r = duo_keystore_secret_find_retired(ks, &found, key_id, retired_match_cb, &m);
            if (r == DUO_OK && found) r = duo_keystore_nonce_seen(ks, &seen, key_id, m.secret, mac_input, 32);
            duo_memzero(m.secret, sizeof m.secret);
            if (r != DUO_OK) return r;
            if (found && seen) return replay_reject(ks, ki, key_id, "retired", info);
            if (found) {
                r = key_freeze(ks, key_id, DUO_AUDIT_CLONE,
                               "clone suspected: a new request was authenticated with a retired device secret");
                DETAIL(info,
                       "a copy of this device was detected (a superseded device secret was used); the key "
                       "is frozen: enrol again%s",
                       r == DUO_OK ? "" : " (freezing failed: contact the operator)");
                return DUO_E_CLONE_SUSPECTED;
            }
            DETAIL(info, "request authentication failed (missing or bad MAC); this does not count as a PIN attempt");
            return DUO_E_UNAUTHENTICATED;
        }
        if (r != DUO_E_CONFLICT) return r;
        duo_key_secrets_clear(sec);
        if ((r = key_load(s, ks, ki, sec, key_id, info)) != DUO_OK) return r;
    }
    return DUO_E_CONFLICT;
}

/* ----------------------------------------------------------- handlers */

typedef struct hctx {
    duo_service *s;
    duo_keystore *ks;
    duo_call_info *info;
} hctx;

static int resp_take(uint8_t **resp, size_t *resp_len, int r, uint8_t *out, size_t out_len) {
    if (r != DUO_OK) return r;
    *resp = out;
    *resp_len = out_len;
    return DUO_OK;
}

/* The client's address without its port ("ipv4:127.0.0.1:5000" -> "ipv4:127.0.0.1"). */
static void peer_host(char *out, size_t cap, const char *peer) {
    const char *colon = strrchr(peer, ':');
    size_t n = colon && colon != peer ? (size_t)(colon - peer) : strlen(peer);
    if (n >= cap) n = cap - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

/* Seconds until the pool has a key again, roughly (one key and its range-proof
 * randomness on one core): the hint an empty pool answers with. */
static unsigned pool_retry_s(const duo_service *s) { return s->cfg.paillier_bits >= 3072 ? 10 : 3; }

/* Repeated starts on one token are audited at 1, 2, 4, 8, ... starts, so a
 * client repeating EnrollStart writes a logarithmic number of entries. */
static int enrol_start_audit(hctx *h, const session *x, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    if (x->starts & (x->starts - 1)) return DUO_OK;
    char detail[300];
    if (x->starts == 1)
        snprintf(detail, sizeof detail, "%s", h->info->peer);
    else
        snprintf(detail, sizeof detail,
                 "start #%u on this token (each superseded the last; audited at powers of two); %s", x->starts,
                 h->info->peer);
    duo_audit_event ev = {.kind = DUO_AUDIT_ENROL_START, .key_id = key_id, .citizen_id = x->citizen, .detail = detail};
    return duo_keystore_audit_append(h->ks, NULL, &ev);
}

static int h_enroll_start(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_service *s = h->s;
    duo_enroll_start_req req;
    duo_enroll_start_resp out;
    duo_p1_enroll *en = NULL;
    session *x = NULL;
    pool_entry pe = {NULL, NULL};
    enrol_admit ea;
    char citizen[DUO_CITIZEN_ID_MAX + 1] = "";
    int r = duo_wire_parse_enroll_start_req(&req, in, in_len);
    if (r != DUO_OK) goto done;
    if (req.paillier_bits != s->cfg.paillier_bits) {
        DETAIL(h->info, "this server uses %u-bit Paillier keys; the device asked for %u", s->cfg.paillier_bits,
               req.paillier_bits);
        r = DUO_E_UNSUPPORTED;
        goto done;
    }
    r = duo_keystore_token_check(h->ks, citizen, req.token, req.token_len);
    if (r == DUO_E_TOKEN_INVALID) {
        DETAIL(h->info, "enrolment token unknown or already used; ask for a new one");
        goto done;
    } else if (r == DUO_E_TOKEN_EXPIRED) {
        DETAIL(h->info, "enrolment token expired; ask for a new one");
        goto done;
    } else if (r != DUO_OK) {
        goto done;
    }
    SHA256(req.token, req.token_len, ea.token_hash);
    peer_host(ea.peer_host, sizeof ea.peer_host, h->info->peer);
    /* Admission before the pool: a refused start takes no key. */
    if ((r = sess_insert(s, &x, SESS_ENROL, NULL, &ea, &pe, h->info)) != DUO_OK) goto done;
    /* Keys are made only in the background pool (bounded), never on a
     * request thread: an empty pool is a retry later, and signing never
     * waits behind prime generation. A superseded session's unused key
     * (reclaimed into pe) comes first. */
    if (pe.key == NULL) pe = pool_take(s);
    if (pe.key == NULL) {
        DETAIL(h->info, "no Paillier key is ready yet (the server makes them in the background); retry in %u s",
               pool_retry_s(s));
        trailer_i64(h->info, "duo-retry-after", pool_retry_s(s));
        r = DUO_E_SERVER_BUSY;
        goto fail_session;
    }
    duo_p1_enroll_params p = {.ec = s->ec,
                              .rng = NULL,
                              .paillier_bits = s->cfg.paillier_bits,
                              .paillier = pe.key,
                              .range_precomp = pe.precomp};
    r = duo_p1_enroll_new(&en, &p);
    pe.key = NULL; /* the engine took them (freed them on failure) */
    pe.precomp = NULL;
    if (r != DUO_OK) goto fail_session;
    if ((r = duo_p1_enroll_start(en, &req, &out)) != DUO_OK) goto fail_session;
    memcpy(x->key_id, out.key_id, DUO_KEY_ID_BYTES);
    x->en = en;
    en = NULL;
    memcpy(x->token, req.token, req.token_len);
    x->token_len = req.token_len;
    snprintf(x->citizen, sizeof x->citizen, "%s", citizen);
    sess_set_sid(s, x, duo_p1_enroll_sid(x->en));
    if ((r = enrol_start_audit(h, x, out.key_id)) != DUO_OK) goto fail_session;
    uint8_t *o = NULL;
    size_t ol = 0;
    r = duo_wire_build_enroll_start_resp(&o, &ol, &out);
    sess_release(s, x, r == DUO_OK ? 0 : DUO_E_SESSION_FAILED);
    r = resp_take(resp, resp_len, r, o, ol);
    goto done;
fail_session:
    sess_release(s, x, DUO_E_SESSION_FAILED);
done:
    pool_return(s, &pe);
    duo_p1_enroll_free(en);
    duo_memzero(&req, sizeof req);
    return r;
}

static int h_enroll_key_share(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_key_share_req req;
    duo_enroll_key_share_resp out;
    memset(&out, 0, sizeof out);
    session *x;
    int r = duo_wire_parse_enroll_key_share_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = sess_take(h->s, &x, req.sid, SESS_ENROL, h->info)) != DUO_OK) return r;
    if (duo_call_info_expired(h->info)) {
        sess_release(h->s, x, 0);
        DETAIL(h->info, "deadline exceeded before key generation; retry with a longer deadline");
        return DUO_E_TIMEOUT;
    }
    r = duo_p1_enroll_key_share(x->en, &req, &out);
    uint8_t *o = NULL;
    size_t ol = 0;
    if (r == DUO_OK) r = duo_wire_build_enroll_key_share_resp(&o, &ol, &out);
    duo_wire_free_enroll_key_share_resp(&out);
    sess_release(h->s, x, r == DUO_OK ? 0 : DUO_E_SESSION_FAILED);
    return resp_take(resp, resp_len, r, o, ol);
}

static int h_enroll_pdl_challenge(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_pdl_challenge_req req;
    duo_enroll_pdl_challenge_resp out;
    session *x;
    int r = duo_wire_parse_enroll_pdl_challenge_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = sess_take(h->s, &x, req.sid, SESS_ENROL, h->info)) != DUO_OK) {
        duo_wire_free_enroll_pdl_challenge_req(&req);
        return r;
    }
    r = duo_p1_enroll_pdl_challenge(x->en, &req, &out);
    duo_wire_free_enroll_pdl_challenge_req(&req);
    uint8_t *o = NULL;
    size_t ol = 0;
    if (r == DUO_OK) r = duo_wire_build_enroll_pdl_challenge_resp(&o, &ol, &out);
    sess_release(h->s, x, r == DUO_OK ? 0 : DUO_E_SESSION_FAILED);
    return resp_take(resp, resp_len, r, o, ol);
}

static int bn_out(uint8_t *out, size_t cap, size_t *len, const BIGNUM *bn) {
    int n = BN_num_bytes(bn);
    if (n <= 0 || (size_t)n > cap) return DUO_E_INTERNAL;
    if (BN_bn2bin(bn, out) != n) return DUO_E_INTERNAL;
    *len = (size_t)n;
    return DUO_OK;
}

/* After a successful round 4: stores the key as pending together with its
 * enrolment record (sid, token), so the confirmation is checked from the
 * store alone: it survives a daemon restart and can be repeated. */
static int enrol_persist(hctx *h, session *x) {
    duo_service *s = h->s;
    duo_p1_key *key = NULL;
    uint8_t devsec[32];
    duo_key_secrets *sec = NULL;
    duo_key_info ki;
    int r = duo_p1_enroll_take_opened_key(x->en, &key, devsec);
    if (r != DUO_OK) goto out;
    memset(&ki, 0, sizeof ki);
    memcpy(ki.key_id, key->key_id, DUO_KEY_ID_LEN);
    snprintf(ki.citizen_id, sizeof ki.citizen_id, "%s", x->citizen);
    ki.paillier_bits = s->cfg.paillier_bits;
    duo_point_serialize(s->ec, ki.q, &key->q);
    duo_point_serialize(s->ec, ki.q2, &key->q2);
    if (!(sec = duo_secure_malloc(sizeof *sec))) {
        r = DUO_E_NOMEM;
        goto out;
    }
    memset(sec, 0, sizeof *sec);
    memcpy(sec->x1, key->x1.b, 32);
    memcpy(sec->current, devsec, 32);
    if ((r = bn_out(sec->p, sizeof sec->p, &sec->p_len, duo_paillier_priv_p(key->paillier))) != DUO_OK ||
        (r = bn_out(sec->q, sizeof sec->q, &sec->q_len, duo_paillier_priv_q(key->paillier))) != DUO_OK)
        goto out;
    r = duo_keystore_key_insert_enrolment(h->ks, &ki, sec, x->sid, x->token, x->token_len, NULL);
out:
    duo_p1_key_free(key);
    duo_memzero(devsec, sizeof devsec);
    if (sec) {
        duo_key_secrets_clear(sec);
        duo_secure_free(sec);
    }
    return r;
}

static int h_enroll_pdl_open(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_pdl_open_req req;
    duo_enroll_pdl_open_resp out;
    session *x;
    int r = duo_wire_parse_enroll_pdl_open_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = sess_take(h->s, &x, req.sid, SESS_ENROL, h->info)) != DUO_OK) return r;
    r = duo_p1_enroll_pdl_open(x->en, &req, &out);
    if (r == DUO_E_PDL_MISMATCH) {
        duo_audit_event ev = {.kind = DUO_AUDIT_ATTACK,
                              .key_id = x->key_id,
                              .citizen_id = x->citizen,
                              .detail = "enrolment PDL check failed: inconsistent device values"};
        if (duo_keystore_audit_append(h->ks, NULL, &ev) != DUO_OK) { /* the error below is what matters */
        }
        DETAIL(h->info, "enrolment aborted: the device's proof values are inconsistent");
    }
    if (r == DUO_OK) r = enrol_persist(h, x);
    uint8_t *o = NULL;
    size_t ol = 0;
    if (r == DUO_OK) r = duo_wire_build_enroll_pdl_open_resp(&o, &ol, &out);
    /* Done with the in-memory session either way: the confirmation is
     * checked from the store (h_enroll_confirm). */
    sess_release(h->s, x, r == DUO_OK ? DUO_E_PROTO_STATE : DUO_E_SESSION_FAILED);
    return resp_take(resp, resp_len, r, o, ol);
}

#define AUDIT_ENROL_REPEAT "enrol.confirm_repeated"

/* The confirmation, checked from the store alone (the pending row and its
 * enrolment record were written by round 4), exactly as
 * duo_p1_enroll_confirm checks it: the sid (the record is found by it), Q
 * (constant-time), and the MAC under the first device secret. So it works
 * after a daemon restart, and a repeated confirmation (reply lost) of a key
 * that is already active succeeds again, idempotently, while the key still
 * has its first secret (never rotated): the revocation code cannot be shown
 * again, so the answer carries an empty one. */
static int h_enroll_confirm(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_service *s = h->s;
    duo_enroll_confirm_req req;
    duo_enroll_confirm_resp out;
    memset(&out, 0, sizeof out);
    uint8_t key_id[DUO_KEY_ID_LEN], mi[32];
    duo_key_info ki;
    duo_key_secrets *sec = NULL;
    int r = duo_wire_parse_enroll_confirm_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_enroll_confirm(mi, &req)) != DUO_OK) return r;
    r = duo_keystore_enrolment_key(h->ks, key_id, req.sid);
    if (r == DUO_E_NOT_FOUND) {
        /* Say what we know from the in-memory sessions, if anything. */
        session *x = NULL;
        duo_call_info tmp;
        memset(&tmp, 0, sizeof tmp);
        int sr = sess_take(s, &x, req.sid, SESS_ENROL, &tmp);
        if (sr == DUO_OK) {
            sess_release(s, x, 0);
            DETAIL(h->info, "this enrolment has not completed its four rounds; it cannot be confirmed yet");
            return DUO_E_PROTO_STATE;
        }
        if (sr != DUO_E_NOT_FOUND) {
            snprintf(h->info->detail, sizeof h->info->detail, "%s", tmp.detail);
            return sr;
        }
        DETAIL(h->info, "no such enrolment (unknown session id, or abandoned and purged); enrol again");
        return DUO_E_NOT_FOUND;
    }
    if (r != DUO_OK) return r;
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        if ((r = duo_keystore_key_get(h->ks, &ki, sec, key_id)) != DUO_OK) {
            if (r == DUO_E_NOT_FOUND)
                DETAIL(h->info, "no such enrolment (abandoned and purged); enrol again");
            else if (r == DUO_E_STATE_CORRUPT)
                DETAIL(h->info, "the stored key failed its integrity check; contact the operator");
            goto out;
        }
        if (ki.state != DUO_KEY_PENDING && ki.state != DUO_KEY_ACTIVE && ki.state != DUO_KEY_LOCKED) {
            r = final_err(&ki, h->info);
            goto out;
        }
        if (!duo_ct_eq(req.public_key, ki.q, DUO_KEY_POINT_LEN)) {
            DETAIL(h->info, "enrolment confirmation rejected: bad MAC or public key; start again");
            r = DUO_E_SESSION_MISMATCH;
            goto out;
        }
        if (ki.state != DUO_KEY_PENDING && (ki.secret_version != 1 || ki.has_pending_secret)) {
            /* Not the first secret any more: the device has used the key
             * since, so it already knows the confirmation went through. */
            DETAIL(h->info, "this enrolment was confirmed and the key has been used since; nothing to confirm");
            r = DUO_E_PROTO_STATE;
            goto out;
        }
        /* While secret_version == 1 and no pending secret, current is the
         * first device secret H(sid, x1*Q2) stored by round 4. */
        if (duo_mac_check(sec->current, mi, req.mac) != DUO_OK) {
            DETAIL(h->info, "enrolment confirmation rejected: bad MAC or public key; start again");
            r = DUO_E_UNAUTHENTICATED;
            goto out;
        }
        if (ki.state != DUO_KEY_PENDING) {
            char detail[300];
            snprintf(detail, sizeof detail,
                     "repeated confirmation of an active key (reply lost?): accepted, revocation code not shown "
                     "again; %s",
                     h->info->peer);
            duo_audit_event ev = {
                .kind = AUDIT_ENROL_REPEAT, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
            if ((r = duo_keystore_audit_append(h->ks, NULL, &ev)) != DUO_OK) goto out;
            out.revocation_code[0] = '\0';
            break;
        }
        if ((r = duo__random_code(out.revocation_code, sizeof out.revocation_code, REVOCATION_CODE_BYTES, 4)) != DUO_OK)
            goto out;
        char detail[160];
        snprintf(detail, sizeof detail, "key active; paillier %u bits; %s", ki.paillier_bits, h->info->peer);
        duo_audit_event ev = {
            .kind = DUO_AUDIT_ENROL_DONE, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
        r = duo_keystore_enrolment_activate(h->ks, req.sid, (const uint8_t *)out.revocation_code,
                                            strlen(out.revocation_code), &ev);
        if (r == DUO_E_PROTO_STATE) { /* activated meanwhile by a concurrent copy of this request */
            duo_memzero(&out, sizeof out);
            r = DUO_E_CONFLICT;
            continue;
        }
        if (r == DUO_E_TOKEN_INVALID)
            DETAIL(h->info, "enrolment token was used meanwhile (by another enrolment); ask for a new one");
        else if (r == DUO_E_TOKEN_EXPIRED)
            DETAIL(h->info, "enrolment token expired during enrolment; ask for a new one");
        break;
    }
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_enroll_confirm_resp(&o, &ol, &out);
        if (r == DUO_OK) {
            *resp = o;
            *resp_len = ol;
        }
    }
out:
    duo_memzero(&out, sizeof out);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* Builds the engine's key from the store's columns. */
static int p1_key_from_store(duo_service *s, duo_p1_key **out, const duo_key_info *ki, const duo_key_secrets *sec) {
    duo_scalar x1;
    duo_point q, q2;
    BIGNUM *p = NULL, *qq = NULL;
    duo_paillier_priv *pk = NULL;
    int r;
    *out = NULL;
    if ((r = duo_scalar_parse(s->ec, &x1, sec->x1)) != DUO_OK) goto out;
    if ((r = duo_point_parse(s->ec, &q, ki->q, DUO_KEY_POINT_LEN)) != DUO_OK ||
        (r = duo_point_parse(s->ec, &q2, ki->q2, DUO_KEY_POINT_LEN)) != DUO_OK)
        goto out;
    p = BN_secure_new();
    qq = BN_secure_new();
    if (!p || !qq) {
        r = DUO_E_NOMEM;
        goto out;
    }
    BN_set_flags(p, BN_FLG_CONSTTIME);
    BN_set_flags(qq, BN_FLG_CONSTTIME);
    if (!BN_bin2bn(sec->p, (int)sec->p_len, p) || !BN_bin2bn(sec->q, (int)sec->q_len, qq)) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo_paillier_priv_from_primes(&pk, p, qq, ki->paillier_bits)) != DUO_OK) goto out;
    r = duo_p1_key_new(out, s->ec, ki->key_id, &x1, &q, &q2, pk);
out:
    if (r != DUO_OK && r != DUO_E_NOMEM) r = DUO_E_STATE_CORRUPT;
    duo_memzero(&x1, sizeof x1);
    BN_clear_free(p);
    BN_clear_free(qq);
    return r;
}

/* Loads, checks final states and authenticates: the common start of every
 * request on an existing key. sec is wiped by the caller. */
static int key_auth(hctx *h, duo_key_info *ki, duo_key_secrets *sec, const uint8_t key_id[DUO_KEY_ID_BYTES],
                    const uint8_t mac_input[32], const uint8_t mac[DUO_MAC_BYTES], uint8_t used[32], int *record_later,
                    int defer) {
    int r = key_load(h->s, h->ks, ki, sec, key_id, h->info);
    if (r != DUO_OK) return r;
    if ((r = final_err(ki, h->info)) != DUO_OK) return r;
    return authenticate(h->s, h->ks, ki, sec, key_id, mac_input, mac, used, record_later, defer, h->info);
}

static int h_sign_start(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_service *s = h->s;
    duo_sign_start_req req;
    duo_sign_start_resp out;
    duo_key_info ki;
    duo_key_secrets *sec = NULL;
    uint8_t mi[32], used[32];
    session *x = NULL;
    kc_item *kc = NULL;
    int r = duo_wire_parse_sign_start_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_sign_start(mi, &req)) != DUO_OK) return r;
    if (fz_has(s, req.key_id)) {
        int fr = fz_retry(s, h->ks, req.key_id);
        DETAIL(h->info, "key is frozen: %s; enrol again%s", ATTACK_REASON,
               fr == DUO_OK ? "" : " (the freeze is not stored yet; the key is refused until it is)");
        return DUO_E_KEY_SUSPENDED;
    }
    sec = duo_secure_malloc(sizeof *sec);
    if (!sec) return DUO_E_NOMEM;
    if ((r = key_auth(h, &ki, sec, req.key_id, mi, req.mac, used, NULL, 1)) != DUO_OK) goto out;
    if ((r = locked_err(&ki, h->info)) != DUO_OK) goto out;
    if ((r = kc_get(s, &kc, &ki, sec)) != DUO_OK) {
        DETAIL(h->info, "the stored key failed its integrity check; contact the operator");
        goto out;
    }
    if ((r = sess_insert(s, &x, SESS_SIGN, req.key_id, NULL, NULL, h->info)) != DUO_OK) goto out;
    x->kc = kc;
    kc = NULL;
    memcpy(x->secret, used, 32);
    memcpy(x->digest, req.digest, 32);
    snprintf(x->citizen, sizeof x->citizen, "%s", ki.citizen_id);
    r = duo_p1_sign_new(&x->sg, s->ec, NULL, x->kc->key);
    if (r == DUO_OK) r = duo_p1_sign_start(x->sg, &req, &out);
    if (r == DUO_OK) {
        sess_set_sid(s, x, duo_p1_sign_sid(x->sg));
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_sign_start_resp(&o, &ol, &out);
        /* Deadline passed or client cancelled while we worked: the device
         * will never see this answer, so do not leave the key's one live
         * session behind (the next SignStart would get SESSION_BUSY until
         * the session expires). A cancel that arrives after this check, while
         * the answer is on its way, still leaves it live until session_ttl_s. */
        if (r == DUO_OK && duo_call_info_expired(h->info)) {
            free(o);
            o = NULL;
            DETAIL(h->info, "deadline exceeded or call cancelled; the signing session was released: start again");
            r = DUO_E_TIMEOUT;
        }
        if (r == DUO_OK) {
            *resp = o;
            *resp_len = ol;
        }
    }
    sess_release(s, x, r == DUO_OK ? 0 : r == DUO_E_TIMEOUT ? DUO_E_SESSION_EXPIRED : DUO_E_SESSION_FAILED);
out:
    kc_put(kc);
    if (r == DUO_E_KEY_REVOKED || r == DUO_E_KEY_SUSPENDED || r == DUO_E_CLONE_SUSPECTED) kc_forget(s, req.key_id);
    duo_memzero(used, sizeof used);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* A wrong PIN: count it, lock or revoke per policy (one transaction each try). */
static int pin_failure(hctx *h, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    duo_service *s = h->s;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        duo_key_info ki;
        int r = duo_keystore_key_get(h->ks, &ki, NULL, key_id);
        if (r != DUO_OK) return r;
        if (ki.state == DUO_KEY_REVOKED || ki.state == DUO_KEY_SUSPENDED) return final_err(&ki, h->info);
        uint32_t nf = ki.pin_failures + 1;
        const duo_lock_step *st = duo__lock_policy_step(&s->cfg.lock, nf);
        duo_key_policy pol = {.state = DUO_KEY_ACTIVE, .pin_failures = nf, .locked_until = 0, .reason = NULL};
        char detail[160];
        const char *kind = DUO_AUDIT_PIN_FAILURE;
        int64_t until = 0;
        if (st && st->seconds == DUO_LOCK_REVOKE) {
            pol.state = DUO_KEY_REVOKED;
            snprintf(detail, sizeof detail, "revoked after %u wrong PINs in a row", nf);
            pol.reason = detail;
            kind = DUO_AUDIT_REVOKE;
        } else if (st) {
            until = now_s() + st->seconds;
            pol.state = DUO_KEY_LOCKED;
            pol.locked_until = until;
            snprintf(detail, sizeof detail, "wrong PIN #%u: locked for %" PRId64 " s", nf, st->seconds);
            kind = DUO_AUDIT_LOCK;
        } else {
            snprintf(detail, sizeof detail, "wrong PIN #%u", nf);
        }
        duo_audit_event ev = {.kind = kind, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
        r = duo_keystore_key_update_policy(h->ks, key_id, ki.version, &pol, &ev);
        if (r == DUO_E_CONFLICT) continue;
        if (r != DUO_OK) return r;
        uint32_t left = duo__lock_policy_left(&s->cfg.lock, nf);
        trailer_i64(h->info, "duo-attempts-left", left);
        if (pol.state == DUO_KEY_REVOKED) {
            kc_forget(s, key_id);
            DETAIL(h->info, "wrong PIN; %u wrong PINs in a row: the key is revoked; enrol again", nf);
        } else if (pol.state == DUO_KEY_LOCKED) {
            char when[64];
            duo__fmt_time(when, sizeof when, until);
            DETAIL(h->info, "wrong PIN; %u wrong PINs in a row: the key is locked until %s", nf, when);
            trailer_i64(h->info, "duo-locked-until", until);
        } else {
            DETAIL(h->info, "wrong PIN; %u attempt%s left before the key is locked", left, left == 1 ? "" : "s");
        }
        return DUO_E_WRONG_PIN;
    }
    return DUO_E_CONFLICT;
}

/* SignFinish's store write (duo_keystore_sign_commit), run beside the
 * decryption: the PIN count reset, the next device secret and the audit of
 * the signature, named by its digest and r (with Q they fix the one low-S
 * signature; docs/DECISIONS.md "The signature's audit entry names r"). */
typedef struct sign_write {
    duo_keystore *ks;
    const session *x;
    const uint8_t *next;
    char detail[256];
    duo_key_info ki; /* the row as read, for the message if refused */
    int r;
} sign_write;

static void sign_write_run(void *arg) {
    sign_write *w = arg;
    const session *x = w->x;
    duo_audit_event reset = {.kind = DUO_AUDIT_PIN_RESET,
                             .key_id = x->key_id,
                             .citizen_id = x->citizen,
                             .detail = "correct PIN: failure count reset"};
    duo_audit_event ev = {.kind = DUO_AUDIT_SIGN, .key_id = x->key_id, .citizen_id = x->citizen, .detail = w->detail};
    w->r = duo_keystore_sign_commit(w->ks, &w->ki, x->key_id, w->next, &reset, &ev);
}

/* The message for a refused sign_write. */
static int sign_write_err(duo_service *s, const sign_write *w, duo_call_info *info) {
    switch (w->r) {
        case DUO_E_KEY_REVOKED:
        case DUO_E_KEY_SUSPENDED:
            kc_forget(s, w->x->key_id);
            return final_err(&w->ki, info);
        case DUO_E_KEY_LOCKED:
            return locked_err(&w->ki, info);
        case DUO_E_PROTO_STATE:
            return state_final_err(&w->ki, info);
        case DUO_E_NOT_FOUND:
            DETAIL(info, "unknown key id; enrol again");
            return w->r;
        case DUO_E_STATE_CORRUPT:
            DETAIL(info, "the stored key failed its integrity check; contact the operator");
            return w->r;
        default:
            return w->r;
    }
}

static int h_sign_finish(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_service *s = h->s;
    duo_sign_finish_req req;
    duo_sign_finish_resp out;
    memset(&out, 0, sizeof out);
    session *x;
    uint8_t mi[32], next[32], rx[32];
    int r = duo_wire_parse_sign_finish_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    /* The session is consumed by this request whatever happens (single use). */
    if ((r = sess_take(s, &x, req.sid, SESS_SIGN, h->info)) != DUO_OK) goto out_req;
    if ((r = duo_wire_mac_input_sign_finish(mi, &req)) != DUO_OK) goto out;
    if (duo_mac_check(x->secret, mi, req.mac) != DUO_OK) {
        DETAIL(h->info, "request authentication failed (missing or bad MAC); this does not count as a PIN "
                        "attempt; start a new signature");
        r = DUO_E_UNAUTHENTICATED;
        goto out;
    }
    if (duo_call_info_expired(h->info)) {
        DETAIL(h->info, "deadline exceeded before the signature was computed; start a new signature");
        r = DUO_E_TIMEOUT;
        goto out;
    }
    r = duo_p1_sign_finish_check(x->sg, &req, &out, rx);
    if (r == DUO_E_WRONG_PIN) {
        r = pin_failure(h, x->key_id);
        goto out;
    }
    if (r != DUO_OK) goto out;
    /* The PIN is proven. Store the next device secret, reset the PIN count
     * and audit the signature while the decryption runs; the signature is
     * released only if both succeed (the device rotates on receipt, so the
     * cloud must know the next secret first). The key's state is checked in
     * that write, atomically with it: no signature for a key revoked, frozen
     * or locked since SignStart. */
    if ((r = duo_secret_rotate(next, x->secret, req.sid, out.rotate_seed)) != DUO_OK) goto out;
    sign_write w = {.ks = h->ks, .x = x, .next = next};
    char dh[65], rh[65];
    duo__hex(dh, x->digest, 32);
    duo__hex(rh, rx, 32);
    /* Written before the decryption's outcome is known: it names the round
     * that was accepted, not a signature (a share that fails to verify is
     * audited as attack.suspected, "no signature was released"). */
    snprintf(w.detail, sizeof w.detail, "round 2 accepted (signature released if the share verifies): digest=%s r=%s",
             dh, rh);
    duo_overlap_job job = {.fn = sign_write_run, .arg = &w};
    duo_overlap_start(s->overlap, &job);
    r = duo_p1_sign_finish_decrypt(x->sg, &out);
    duo_overlap_wait(s->overlap, &job);
    if (r == DUO_E_PEER_CHEATED) {
        kc_forget(s, x->key_id);
        int fr = key_freeze(h->ks, x->key_id, DUO_AUDIT_ATTACK, ATTACK_REASON);
        if (fr != DUO_OK) fz_add(s, x->key_id); /* fail closed: no session for this key until it is stored */
        DETAIL(h->info, "the device sent an invalid signature share; the key is frozen: enrol again");
        goto out;
    }
    if (r != DUO_OK) goto out;
    if (w.r != DUO_OK) {
        r = sign_write_err(s, &w, h->info);
        goto out;
    }
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_sign_finish_resp(&o, &ol, &out);
        if (r == DUO_OK) {
            *resp = o;
            *resp_len = ol;
        }
    }
out:
    sess_release(s, x, DUO_E_PROTO_STATE);
out_req:
    duo_wire_free_sign_finish_req(&req);
    duo_memzero(next, sizeof next);
    duo_memzero(&out, sizeof out);
    return r;
}

static int h_refresh(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_refresh_req req;
    duo_refresh_resp out;
    duo_key_info ki;
    uint8_t mi[32], used[32], next[32];
    duo_key_secrets *sec = NULL;
    int record = 0;
    int r = duo_wire_parse_refresh_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_refresh(mi, &req)) != DUO_OK) return r;
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    /* The request is recorded as seen in the rotation's transaction below
     * (record), unless authenticate already wrote it with a promotion. */
    if ((r = key_auth(h, &ki, sec, req.key_id, mi, req.mac, used, &record, 0)) != DUO_OK) goto out;
    if ((r = duo_rng_bytes(NULL, out.rotate_seed, sizeof out.rotate_seed)) != DUO_OK) goto out;
    if ((r = duo_secret_rotate(next, used, req.device_nonce, out.rotate_seed)) != DUO_OK) goto out;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        duo_audit_event ev = {.kind = DUO_AUDIT_SECRET_ROTATE,
                              .key_id = req.key_id,
                              .citizen_id = ki.citizen_id,
                              .detail = "refresh: new pending secret"};
        r = duo_keystore_secret_rotate_seen(h->ks, req.key_id, ki.version, 0, next, record ? used : NULL,
                                            record ? mi : NULL, 32, &ev, NULL, NULL);
        if (r != DUO_E_CONFLICT) break;
        if ((r = duo_keystore_key_get(h->ks, &ki, NULL, req.key_id)) != DUO_OK) break;
    }
    if (r == DUO_E_EXISTS) r = replay_reject(h->ks, &ki, req.key_id, "current", h->info);
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_refresh_resp(&o, &ol, &out);
        if (r == DUO_OK) {
            *resp = o;
            *resp_len = ol;
        }
    }
out:
    duo_memzero(used, sizeof used);
    duo_memzero(next, sizeof next);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

/* Revocation with the one-time code when the phone is lost: the citizen
 * knows the code and their citizen id, not the key id (issue 13 item 6).
 * Each of the citizen's live keys that still has a code is tried with
 * duo_keystore_key_revoke, which checks the code against the stored SHA-256
 * and consumes it. Every refusal (unknown citizen, no such key, wrong or
 * used code) gives the same error and message and writes one audit entry,
 * so the answer does not tell whether the citizen exists; the code has 128
 * bits, so the audit trail, not a counter, is the defence against guessing. */
#define REVOKE_BY_CITIZEN_MAX_KEYS 16
typedef struct {
    uint8_t ids[REVOKE_BY_CITIZEN_MAX_KEYS][DUO_KEY_ID_BYTES];
    size_t n;
} revoke_cands;

static int revoke_cand_cb(void *data, const duo_key_info *ki) {
    revoke_cands *c = data;
    if (ki->state != DUO_KEY_REVOKED && ki->has_revocation_code && c->n < REVOKE_BY_CITIZEN_MAX_KEYS)
        memcpy(c->ids[c->n++], ki->key_id, DUO_KEY_ID_BYTES);
    return 0;
}

static int h_revoke_by_citizen(hctx *h, duo_revoke_req *req, uint8_t **resp, size_t *resp_len) {
    revoke_cands c;
    size_t i;
    int r;
    memset(&c, 0, sizeof c);
    if ((r = duo_keystore_key_list(h->ks, req->citizen_id, revoke_cand_cb, &c)) != DUO_OK) goto out;
    r = DUO_E_UNAUTHENTICATED;
    for (i = 0; i < c.n && r == DUO_E_UNAUTHENTICATED; i++) {
        duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE,
                              .key_id = c.ids[i],
                              .citizen_id = req->citizen_id,
                              .detail = "revoked with the one-time revocation code and the citizen id"};
        r = duo_keystore_key_revoke(h->ks, c.ids[i], (const uint8_t *)req->revocation_code,
                                    strlen(req->revocation_code), "revoked with the revocation code", &ev);
        if (r == DUO_OK) kc_forget(h->s, c.ids[i]);
        if (r == DUO_E_KEY_REVOKED || r == DUO_E_NOT_FOUND) r = DUO_E_UNAUTHENTICATED; /* raced: next key */
    }
    if (r == DUO_E_UNAUTHENTICATED) {
        duo_audit_event ev = {.kind = "key.revoke.refused",
                              .citizen_id = req->citizen_id,
                              .detail = "revocation with a code and a citizen id refused: no live key of that "
                                        "citizen id has this code"};
        if (duo_keystore_audit_append(h->ks, NULL, &ev) != DUO_OK) { /* the refusal is what matters */
        }
        DETAIL(h->info, "revocation refused: this code does not revoke a key of this citizen id (wrong, already "
                        "used, or no such enrolment)");
    }
    if (r == DUO_OK) r = duo_wire_build_revoke_resp(resp, resp_len);
out:
    duo_memzero(req, sizeof *req);
    duo_memzero(&c, sizeof c);
    return r;
}

static int h_revoke(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_revoke_req req;
    duo_key_info ki;
    uint8_t mi[32], used[32];
    duo_key_secrets *sec = NULL;
    int r = duo_wire_parse_revoke_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if (req.by_citizen) return h_revoke_by_citizen(h, &req, resp, resp_len);
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    if ((r = key_load(h->s, h->ks, &ki, sec, req.key_id, h->info)) != DUO_OK) goto out;
    if (ki.state == DUO_KEY_REVOKED) {
        r = revoked_err(&ki, h->info);
        goto out;
    }
    if (req.has_mac) {
        if ((r = duo_wire_mac_input_revoke(mi, &req)) != DUO_OK) goto out;
        if ((r = authenticate(h->s, h->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 0, h->info)) != DUO_OK)
            goto out;
        duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE,
                              .key_id = req.key_id,
                              .citizen_id = ki.citizen_id,
                              .detail = "revoked by the device"};
        r = duo_keystore_key_revoke(h->ks, req.key_id, NULL, 0, "revoked by the device", &ev);
    } else {
        duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE,
                              .key_id = req.key_id,
                              .citizen_id = ki.citizen_id,
                              .detail = "revoked with the one-time revocation code"};
        r = duo_keystore_key_revoke(h->ks, req.key_id, (const uint8_t *)req.revocation_code,
                                    strlen(req.revocation_code), "revoked with the revocation code", &ev);
        if (r == DUO_E_UNAUTHENTICATED)
            DETAIL(h->info, "the revocation code does not match this key (or was already used)");
    }
    if (r == DUO_E_KEY_REVOKED) DETAIL(h->info, "key is already revoked");
    if (r == DUO_OK || r == DUO_E_KEY_REVOKED) kc_forget(h->s, req.key_id);
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_revoke_resp(&o, &ol);
        if (r == DUO_OK) {
            *resp = o;
            *resp_len = ol;
        }
    }
out:
    duo_memzero(used, sizeof used);
    duo_memzero(&req, sizeof req);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

static int h_status(hctx *h, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_status_req req;
    duo_status_resp out;
    memset(&out, 0, sizeof out);
    duo_key_info ki;
    uint8_t mi[32], used[32];
    duo_key_secrets *sec = NULL;
    int r = duo_wire_parse_status_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    if ((r = key_load(h->s, h->ks, &ki, sec, req.key_id, h->info)) != DUO_OK) goto out;
    /* A revoked key has no secrets left to authenticate with; its state is all
     * there is to tell. */
    if (ki.state != DUO_KEY_REVOKED) {
        if ((r = duo_wire_mac_input_status(mi, &req)) != DUO_OK) goto out;
        if ((r = authenticate(h->s, h->ks, &ki, sec, req.key_id, mi, req.mac, used, NULL, 0, h->info)) != DUO_OK)
            goto out;
    }
    out.state = (duo_key_state)ki.state;
    out.pin_attempts_left = (ki.state == DUO_KEY_ACTIVE || ki.state == DUO_KEY_LOCKED)
                                ? duo__lock_policy_left(&h->s->cfg.lock, ki.pin_failures)
                                : 0;
    out.locked_until = ki.state == DUO_KEY_LOCKED ? ki.locked_until : 0;
    memcpy(out.public_key, ki.q, sizeof out.public_key);
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_status_resp(&o, &ol, &out);
        if (r == DUO_OK) {
            *resp = o;
            *resp_len = ol;
        }
    }
out:
    duo_memzero(used, sizeof used);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

typedef int (*hfn)(hctx *, const uint8_t *, size_t, uint8_t **, size_t *);

static const struct {
    const char *name;
    hfn fn;
} method_table[DUO_MSG_COUNT] = {
    [DUO_MSG_ENROLL_START] = {"EnrollStart", h_enroll_start},
    [DUO_MSG_ENROLL_KEY_SHARE] = {"EnrollKeyShare", h_enroll_key_share},
    [DUO_MSG_ENROLL_PDL_CHALLENGE] = {"EnrollPdlChallenge", h_enroll_pdl_challenge},
    [DUO_MSG_ENROLL_PDL_OPEN] = {"EnrollPdlOpen", h_enroll_pdl_open},
    [DUO_MSG_ENROLL_CONFIRM] = {"EnrollConfirm", h_enroll_confirm},
    [DUO_MSG_SIGN_START] = {"SignStart", h_sign_start},
    [DUO_MSG_SIGN_FINISH] = {"SignFinish", h_sign_finish},
    [DUO_MSG_REFRESH] = {"Refresh", h_refresh},
    [DUO_MSG_REVOKE] = {"Revoke", h_revoke},
    [DUO_MSG_STATUS] = {"Status", h_status},
};

static int dispatch(void *app, int mi, const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len,
                    duo_call_info *info) {
    duo_service *s = app;
    if (mi < 0 || mi >= DUO_MSG_COUNT) return DUO_E_UNSUPPORTED;
    hctx h = {s, ks_acquire(s), info};
    /* A handler may have left its connection in deferred-commit mode if
     * switching back failed: never run one on it (no-op when durable). */
    int r = duo_keystore_commit_mode(h.ks, DUO_COMMIT_DURABLE);
    if (r == DUO_OK) r = method_table[mi].fn(&h, req, req_len, resp, resp_len);
    ks_release(s, h.ks);
    if (r == DUO_E_DECODE || r == DUO_E_BAD_FIELD || r == DUO_E_MSG_TOO_LARGE) {
        if (!info->detail[0]) DETAIL(info, "malformed %s request: %s", method_table[mi].name, duo_strerror(r));
    } else if (!info->detail[0] && (r == DUO_E_STORE || r == DUO_E_CONFLICT || r == DUO_E_IO || r == DUO_E_PERMISSION ||
                                    r == DUO_E_TIMEOUT || r == DUO_E_NOMEM)) {
        /* Without a message from the handler these come from the store (a
         * full disk, an I/O error, another process holding the database):
         * the operator gets the reason (SQLite's report just before, see
         * duo_keystore_sqlite_log_errors), the citizen a retry. */
        fprintf(stderr, "duosign-cloud: %s: store error %s (%s)\n", method_table[mi].name, duo_err_name(r),
                duo_strerror(r));
        DETAIL(info, "the signer's storage failed (%s); retry later", duo_strerror(r));
    }
    return r;
}

static const duo_server_handler_fn handler_table[DUO_MSG_COUNT] = {
    dispatch, dispatch, dispatch, dispatch, dispatch, dispatch, dispatch, dispatch, dispatch, dispatch,
};

const duo_server_handler_fn *duo_service_handlers(void) { return handler_table; }

/* ------------------------------------------------------ maintenance */

typedef struct {
    uint8_t (*ids)[DUO_KEY_ID_LEN];
    size_t n, cap;
} idlist;

static int collect_locked_cb(void *data, const duo_key_info *ki) {
    idlist *l = data;
    if (ki->state != DUO_KEY_LOCKED || ki->locked_until > now_s()) return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->ids, nc * sizeof *l->ids);
        if (!p) return 1;
        l->ids = p;
        l->cap = nc;
    }
    memcpy(l->ids[l->n++], ki->key_id, DUO_KEY_ID_LEN);
    return 0;
}

/* Loop thread: lifts expired locks (audited) and deletes abandoned enrolments. */
static void on_maint(uv_timer_t *t) {
    duo_service *s = t->data;
    duo_keystore *ks = ks_acquire(s);
    idlist l = {0};
    if (duo_keystore_key_list(ks, NULL, collect_locked_cb, &l) == DUO_OK) {
        for (size_t i = 0; i < l.n; i++) {
            duo_key_info ki;
            duo_call_info dummy;
            memset(&dummy, 0, sizeof dummy);
            if (key_load(s, ks, &ki, NULL, l.ids[i], &dummy) != DUO_OK) { /* retried next period */
            }
        }
    }
    free(l.ids);
    /* Freezes that failed to be stored. */
    {
        uint8_t(*ids)[DUO_KEY_ID_BYTES] = NULL;
        size_t nid = 0;
        pthread_mutex_lock(&s->fz_mu);
        if (s->fz_n > 0 && (ids = malloc(s->fz_n * sizeof *ids)) != NULL) {
            nid = s->fz_n;
            memcpy(ids, s->fz_ids, nid * sizeof *ids);
        }
        pthread_mutex_unlock(&s->fz_mu);
        for (size_t i = 0; i < nid; i++) (void)fz_retry(s, ks, ids[i]);
        free(ids);
    }
    /* Key cache: wipe the keys that left the active/locked states by a path
     * that did not say so here (a freeze for a clone seen by Refresh or
     * Status, a revocation by the admin CLI in another process). */
    {
        uint8_t(*ids)[DUO_KEY_ID_BYTES] = NULL;
        size_t nid = 0;
        pthread_mutex_lock(&s->kc_mu);
        if (s->kc_n > 0 && (ids = malloc(s->kc_n * sizeof *ids)) != NULL) {
            for (nid = 0; nid < s->kc_n; nid++) memcpy(ids[nid], s->kc_slots[nid]->key_id, DUO_KEY_ID_BYTES);
        }
        pthread_mutex_unlock(&s->kc_mu);
        for (size_t i = 0; i < nid; i++) {
            duo_key_info ki;
            int gr = duo_keystore_key_get(ks, &ki, NULL, ids[i]);
            if (gr == DUO_E_NOT_FOUND || gr == DUO_E_STATE_CORRUPT ||
                (gr == DUO_OK && ki.state != DUO_KEY_ACTIVE && ki.state != DUO_KEY_LOCKED))
                kc_forget(s, ids[i]);
        }
        free(ids);
    }
    size_t n = 0;
    duo_audit_event ev = {.kind = DUO_AUDIT_ADMIN, .detail = "abandoned enrolments purged"};
    if (duo_keystore_purge_pending(ks, &n, PENDING_MAX_AGE_S, &ev) != DUO_OK) { /* retried next period */
    }
    ks_release(s, ks);
}

/* ------------------------------------------------------- lifecycle */

static int check_descriptor(char *err, size_t cap) {
    const ProtobufCServiceDescriptor *d = &duosign__v1__duo_sign__descriptor;
    if (d->n_methods != DUO_MSG_COUNT) goto bad;
    for (unsigned i = 0; i < d->n_methods; i++)
        if (strcmp(d->methods[i].name, method_table[i].name) != 0) goto bad;
    return DUO_OK;
bad:
    snprintf(err, cap, "internal: the DuoSign service descriptor does not match the handler table");
    return DUO_E_INTERNAL;
}

int duo_service_new(duo_service **out, char *err, size_t cap, const duo_service_config *cfg) {
    *out = NULL;
    int r = check_descriptor(err, cap);
    if (r != DUO_OK) return r;
    if (!duo_paillier_bits_supported(cfg->paillier_bits)) {
        snprintf(err, cap, "unsupported Paillier size %u (use 3072 or 2048)", cfg->paillier_bits);
        return DUO_E_INVALID_ARG;
    }
    duo_service *s = calloc(1, sizeof *s);
    if (!s) return DUO_E_NOMEM;
    s->cfg = *cfg;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", cfg->data_dir);
    s->cfg.data_dir = s->data_dir;
    if (s->cfg.session_ttl_s == 0) s->cfg.session_ttl_s = 60;
    if (s->cfg.max_sessions == 0) s->cfg.max_sessions = SESS_MAX_DEFAULT;
    if (s->cfg.prime_pool > POOL_MAX) s->cfg.prime_pool = POOL_MAX;
    if (s->cfg.prime_pool == 0) s->cfg.prime_pool = 1; /* keys are made only in the pool */
    if (s->cfg.max_enrol_per_peer == 0) s->cfg.max_enrol_per_peer = ENROL_PER_PEER_DEFAULT;
    s->loop = cfg->loop;
    pthread_mutex_init(&s->ks_mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_cond_init(&s->ks_cv, NULL);
    pthread_mutex_init(&s->sess_mu, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_mutex_init(&s->fz_mu, NULL);
    pthread_mutex_init(&s->kc_mu, NULL);
    if ((r = duo_ec_new(&s->ec, NULL)) != DUO_OK) {
        snprintf(err, cap, "cannot create the curve context: %s", duo_strerror(r));
        goto fail;
    }
    /* One store connection per handler thread, plus one for the loop thread
     * (maintenance timer): a handler takes a connection for its whole call
     * and never waits for one, so the heavy crypto of different keys
     * (Paillier decryption in SignFinish, PDL decryption, proofs and prime
     * generation in enrolment) runs in parallel on all cores; ks_mu only
     * guards the free list. SQLite serialises the writers (BEGIN IMMEDIATE,
     * busy timeout) and WAL lets the readers run beside them. This needs the
     * store fix of 8274b1d (duo__keystore_sqlite_open() no longer open()s and
     * close()s an existing database file, which dropped this process's POSIX
     * locks and let another process delete the WAL under us; regression test:
     * tests/integration/store/test_store_connections.c). */
    s->n_ks = (cfg->workers > 0 ? cfg->workers : 4) + 1;
    s->ks_all = calloc(s->n_ks, sizeof *s->ks_all);
    s->ks_free = calloc(s->n_ks, sizeof *s->ks_free);
    s->tombs = calloc(TOMB_BUCKETS, sizeof *s->tombs);
    if (!s->ks_all || !s->ks_free || !s->tombs) {
        r = DUO_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < s->n_ks; i++) {
        void *ks;
        if ((r = duo__open_store(&ks, cfg->data_dir, 0, &s->write_mu, (int)cfg->store_busy_ms, err, cap)) != DUO_OK)
            goto fail;
        s->ks_all[i] = ks;
        s->ks_free[s->n_free++] = ks;
    }
    /* A damaged page in the tables behind replay and clone decisions would
     * otherwise go unnoticed until it decided wrongly: refuse to serve it. */
    {
        char why[256];
        if ((r = duo_keystore_integrity_check(s->ks_all[0], 0, why, sizeof why)) != DUO_OK) {
            snprintf(err, cap,
                     "the key database in %s failed SQLite's integrity check (%s); the daemon does not serve a "
                     "damaged store: restore it from a backup (then 'duosign-cloud audit verify')",
                     cfg->data_dir, why[0] ? why : duo_strerror(r));
            goto fail;
        }
    }
    /* One side thread per handler thread (overlap.h); without them the
     * write runs before the decryption, which is only slower. */
    if (duo_overlap_new(&s->overlap, (unsigned)(s->n_ks - 1)) != DUO_OK) s->overlap = NULL;
    uv_async_init(s->loop, &s->refill_async, on_refill);
    s->refill_async.data = s;
    uv_timer_init(s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_init(s->loop, &s->maint_timer);
    s->maint_timer.data = s;
    s->handles_open = 1;
    uv_timer_start(&s->sweep_timer, on_sweep, 1000, 1000);
    uv_timer_start(&s->maint_timer, on_maint, 1000, MAINT_PERIOD_MS);
    pool_kick(s);
    *out = s;
    return DUO_OK;
fail:
    duo_service_free(s);
    return r;
}

void duo_service_stop(duo_service *s) {
    if (!s || !s->handles_open) return;
    pthread_mutex_lock(&s->pool_mu);
    s->pool_stop = 1;
    pthread_mutex_unlock(&s->pool_mu);
    s->handles_open = 0;
    uv_timer_stop(&s->sweep_timer);
    uv_timer_stop(&s->maint_timer);
    uv_close((uv_handle_t *)&s->sweep_timer, NULL);
    uv_close((uv_handle_t *)&s->maint_timer, NULL);
    uv_close((uv_handle_t *)&s->refill_async, NULL);
}

void duo_service_free(duo_service *s) {
    if (!s) return;
    sess_sweep(s, 1); /* sessions drop their key references first */
    kc_clear(s);
    duo_overlap_free(s->overlap);
    for (size_t i = 0; i < s->pool_n; i++) pool_entry_clear(&s->pool[i]);
    s->pool_n = 0;
    if (s->ks_all)
        for (size_t i = 0; i < s->n_ks; i++) duo_keystore_free(s->ks_all[i]);
    free(s->ks_all);
    free(s->ks_free);
    free(s->tombs);
    duo_ec_free(s->ec);
    pthread_mutex_destroy(&s->ks_mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_cond_destroy(&s->ks_cv);
    pthread_mutex_destroy(&s->sess_mu);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_mutex_destroy(&s->kc_mu);
    pthread_mutex_destroy(&s->fz_mu);
    free(s->fz_ids);
    free(s);
}
