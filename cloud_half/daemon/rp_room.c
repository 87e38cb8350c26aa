/* duosign-cloud: the relying parties' requests (rp_room.h). A list under one
 * mutex; one condition variable wakes every waiter on any change (waiters
 * re-check their own condition). Linear scans: the room holds at most
 * ROOM_MAX requests and the checks are a few compares each. */
#include "rp_room.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "duosign/rng.h"
#include "duosign/transcript.h"

#define ROOM_MAX 100000
#define LINK_PREFIX "duosign://claim/"

typedef struct req {
    struct req *next;
    duo_rp_view v;
    uint8_t rp_fp[32];
    char rp_request_id[DUO_RP_REQUEST_ID_MAX + 1];
    uint8_t fields_hash[32]; /* the start's fields: idempotency check */
    uint8_t sid[32];         /* the binding signing session while SIGNING */
    int64_t completed_at;
} req;

struct duo_rp_room {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    duo_rp_clock_fn now;
    unsigned ttl_s, result_ttl_s, max_per_rp, max_per_citizen;
    req *head;
    size_t n;
};

int duo__rp_room_new(duo_rp_room **out, duo_rp_clock_fn now, unsigned ttl_s, unsigned result_ttl_s, unsigned max_per_rp,
                     unsigned max_per_citizen) {
    duo_rp_room *r = calloc(1, sizeof *r);
    if (!r) return DUO_E_NOMEM;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->now = now;
    r->ttl_s = ttl_s ? ttl_s : 120;
    r->result_ttl_s = result_ttl_s ? result_ttl_s : 300;
    r->max_per_rp = max_per_rp ? max_per_rp : 1000;
    r->max_per_citizen = max_per_citizen ? max_per_citizen : 5;
    *out = r;
    return DUO_OK;
}

void duo__rp_room_free(duo_rp_room *r) {
    if (!r) return;
    for (req *q = r->head, *nx; q; q = nx) {
        nx = q->next;
        free(q);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

/* Under mu: completes q with result (no-op if complete). */
static void complete(duo_rp_room *r, req *q, int result) {
    if (q->v.state == DUO_RPQ_COMPLETE) return;
    q->v.state = DUO_RPQ_COMPLETE;
    q->v.result = result;
    q->completed_at = r->now();
    memset(q->sid, 0, sizeof q->sid);
    pthread_cond_broadcast(&r->cv);
}

/* Under mu: expiry and erasure at now. */
static void sweep_locked(duo_rp_room *r) {
    int64_t now = r->now();
    for (req **pp = &r->head; *pp;) {
        req *q = *pp;
        if (q->v.state != DUO_RPQ_COMPLETE && now >= q->v.expires_at) complete(r, q, DUO_RPR_TIMEOUT);
        if (q->v.state == DUO_RPQ_COMPLETE && now >= q->completed_at + (int64_t)r->result_ttl_s) {
            *pp = q->next;
            r->n--;
            OPENSSL_cleanse(q, sizeof *q);
            free(q);
            continue;
        }
        pp = &q->next;
    }
}

void duo__rp_room_sweep(duo_rp_room *r) {
    pthread_mutex_lock(&r->mu);
    sweep_locked(r);
    pthread_mutex_unlock(&r->mu);
}

size_t duo__rp_room_open(duo_rp_room *r) {
    size_t n = 0;
    pthread_mutex_lock(&r->mu);
    for (req *q = r->head; q; q = q->next) n += q->v.state != DUO_RPQ_COMPLETE;
    pthread_mutex_unlock(&r->mu);
    return n;
}

static req *find_id(duo_rp_room *r, const uint8_t id[DUO_RP_ID_BYTES]) {
    for (req *q = r->head; q; q = q->next)
        if (memcmp(q->v.id, id, DUO_RP_ID_BYTES) == 0) return q;
    return NULL;
}

/* The RP's own request with this id (another RP's is not found). */
static req *find_own(duo_rp_room *r, const uint8_t rp_fp[32], const uint8_t id[DUO_RP_ID_BYTES]) {
    req *q = find_id(r, id);
    return q && memcmp(q->rp_fp, rp_fp, 32) == 0 ? q : NULL;
}

/* SHA-256 of the start's fields (a canonical transcript, not the struct). */
static int fields_hash(uint8_t out[32], const duo_rp_start *in) {
    duo_transcript t;
    int rc = duo_transcript_init(&t, "duosign/v1/rp-start");
    if (rc != DUO_OK) return rc;
    duo_transcript_u64(&t, "kind", (uint64_t)in->kind);
    duo_transcript_bytes(&t, "citizen", (const uint8_t *)in->citizen, strlen(in->citizen));
    duo_transcript_bytes(&t, "challenge", in->challenge, in->challenge_len);
    duo_transcript_bytes(&t, "digest", in->rp_digest, in->rp_digest_len);
    duo_transcript_u64(&t, "hash", (uint64_t)in->hash_alg);
    duo_transcript_bytes(&t, "text", (const uint8_t *)in->display_text, strlen(in->display_text));
    rc = duo_transcript_digest(&t, out);
    duo_transcript_free(&t);
    return rc;
}

/* The code, server random, digest to sign and link of a new request. */
static int fill_new(req *q, const duo_rp_start *in) {
    int rc;
    if ((rc = duo_rng_bytes(NULL, q->v.id, DUO_RP_ID_BYTES)) != DUO_OK) return rc;
    if (in->kind == DUO_RPQ_SIGN) {
        /* The key signs a 32-byte digest: ECDSA takes the leftmost 256 bits
         * of a longer hash (SEC1 4.1.3), so a SHA-384/512 signature verifies
         * as such. The code is over the RP's whole digest (Smart-ID v2). */
        memcpy(q->v.digest, in->rp_digest, 32);
        return duo_rp_verification_code(q->v.code, in->rp_digest, in->rp_digest_len);
    }
    /* Authentication: the code comes from the RP's challenge (the RP can
     * show it before we answer), then goes into the signed structure. */
    if ((rc = duo_rng_bytes(NULL, q->v.server_random, sizeof q->v.server_random)) != DUO_OK ||
        (rc = duo_rp_verification_code(q->v.code, in->challenge, in->challenge_len)) != DUO_OK ||
        (rc = duo_rp_auth_digest(q->v.digest, in->rp_name, in->challenge, in->challenge_len, q->v.server_random,
                                 q->v.code, in->display_text)) != DUO_OK)
        return rc;
    if (in->citizen[0] == '\0') {
        uint8_t tok[20];
        static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        if ((rc = duo_rng_bytes(NULL, tok, sizeof tok)) != DUO_OK) return rc;
        size_t o = (size_t)snprintf(q->v.link, sizeof q->v.link, "%s", LINK_PREFIX);
        for (size_t i = 0; i < sizeof tok * 8 / 5; i++) {
            size_t bit = i * 5;
            unsigned v =
                ((unsigned)tok[bit / 8] << 8 | (bit / 8 + 1 < sizeof tok ? tok[bit / 8 + 1] : 0)) >> (11 - bit % 8) &
                31u;
            q->v.link[o++] = b32[v];
        }
        q->v.link[o] = '\0';
    }
    return DUO_OK;
}

int duo__rp_room_start(duo_rp_room *r, const duo_rp_start *in, duo_rp_view *out, int *created) {
    uint8_t fh[32];
    int rc = fields_hash(fh, in);
    *created = 0;
    if (rc != DUO_OK) return rc;
    pthread_mutex_lock(&r->mu);
    sweep_locked(r);
    size_t per_rp = 0, per_cit = 0;
    for (req *q = r->head; q; q = q->next) {
        if (memcmp(q->rp_fp, in->rp_fp, 32) == 0 && strcmp(q->rp_request_id, in->rp_request_id) == 0) {
            rc = memcmp(q->fields_hash, fh, 32) == 0 ? DUO_OK : DUO_E_RP_IDEMPOTENCY;
            if (rc == DUO_OK) *out = q->v;
            goto out;
        }
        if (q->v.state == DUO_RPQ_COMPLETE) continue;
        per_rp += memcmp(q->rp_fp, in->rp_fp, 32) == 0;
        per_cit += in->citizen[0] && strcmp(q->v.citizen, in->citizen) == 0;
    }
    if (per_rp >= r->max_per_rp || per_cit >= r->max_per_citizen || r->n >= ROOM_MAX) {
        rc = DUO_E_RP_TOO_MANY;
        goto out;
    }
    req *q = calloc(1, sizeof *q);
    if (!q) {
        rc = DUO_E_NOMEM;
        goto out;
    }
    memcpy(q->rp_fp, in->rp_fp, 32);
    memcpy(q->fields_hash, fh, 32);
    snprintf(q->rp_request_id, sizeof q->rp_request_id, "%s", in->rp_request_id);
    q->v.kind = in->kind;
    q->v.state = DUO_RPQ_WAITING;
    snprintf(q->v.rp_name, sizeof q->v.rp_name, "%s", in->rp_name);
    snprintf(q->v.citizen, sizeof q->v.citizen, "%s", in->citizen);
    snprintf(q->v.display_text, sizeof q->v.display_text, "%s", in->display_text);
    q->v.expires_at = r->now() + (int64_t)r->ttl_s;
    if ((rc = fill_new(q, in)) != DUO_OK) {
        free(q);
        goto out;
    }
    q->next = r->head;
    r->head = q;
    r->n++;
    *out = q->v;
    *created = 1;
    pthread_cond_broadcast(&r->cv);
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* Under mu: waits on cv until deadline_ms (monotonic) or a broadcast. */
static int wait_until(duo_rp_room *r, const struct timespec *deadline) {
    return pthread_cond_timedwait(&r->cv, &r->mu, deadline) == ETIMEDOUT;
}

static struct timespec deadline_in(unsigned ms) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* The waits also wake once a second, so an expiry by the (injected) clock is
 * seen without any other change. */
static struct timespec next_wake(const struct timespec *deadline) {
    struct timespec one = deadline_in(1000);
    return (one.tv_sec < deadline->tv_sec || (one.tv_sec == deadline->tv_sec && one.tv_nsec < deadline->tv_nsec))
               ? one
               : *deadline;
}

static int past(const struct timespec *d) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

int duo__rp_room_get(duo_rp_room *r, const uint8_t rp_fp[32], const uint8_t id[DUO_RP_ID_BYTES], unsigned timeout_ms,
                     duo_rp_view *out) {
    struct timespec dl = deadline_in(timeout_ms);
    int rc = DUO_E_RP_SESSION_UNKNOWN;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        sweep_locked(r);
        req *q = find_own(r, rp_fp, id);
        if (!q) break;
        if (q->v.state == DUO_RPQ_COMPLETE || past(&dl)) {
            *out = q->v;
            rc = DUO_OK;
            break;
        }
        struct timespec w = next_wake(&dl);
        wait_until(r, &w);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int duo__rp_room_cancel(duo_rp_room *r, const uint8_t rp_fp[32], const uint8_t id[DUO_RP_ID_BYTES]) {
    pthread_mutex_lock(&r->mu);
    sweep_locked(r);
    req *q = find_own(r, rp_fp, id);
    if (q) complete(r, q, DUO_RPR_CANCELLED);
    pthread_mutex_unlock(&r->mu);
    return q ? DUO_OK : DUO_E_RP_SESSION_UNKNOWN;
}

int duo__rp_room_pending(duo_rp_room *r, const char *citizen, unsigned timeout_ms, duo_rp_view *out, size_t cap,
                         size_t *n) {
    struct timespec dl = deadline_in(timeout_ms);
    *n = 0;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        sweep_locked(r);
        for (req *q = r->head; q && *n < cap; q = q->next)
            if (q->v.state == DUO_RPQ_WAITING && q->v.citizen[0] && strcmp(q->v.citizen, citizen) == 0)
                out[(*n)++] = q->v;
        if (*n > 0 || past(&dl)) break;
        struct timespec w = next_wake(&dl);
        wait_until(r, &w);
    }
    pthread_mutex_unlock(&r->mu);
    return DUO_OK;
}

/* Under mu: the citizen's request, or why not. */
static int citizen_req(duo_rp_room *r, req **out, const char *citizen, const uint8_t id[DUO_RP_ID_BYTES]) {
    sweep_locked(r);
    req *q = find_id(r, id);
    if (!q) return DUO_E_RP_SESSION_UNKNOWN;
    if (strcmp(q->v.citizen, citizen) != 0) return DUO_E_RP_WRONG_CITIZEN;
    *out = q;
    return DUO_OK;
}

int duo__rp_room_refuse(duo_rp_room *r, const char *citizen, const uint8_t id[DUO_RP_ID_BYTES]) {
    req *q = NULL;
    pthread_mutex_lock(&r->mu);
    int rc = citizen_req(r, &q, citizen, id);
    if (rc == DUO_OK && q->v.state != DUO_RPQ_WAITING) rc = DUO_E_RP_REQUEST_CLOSED;
    if (rc == DUO_OK) complete(r, q, DUO_RPR_USER_REFUSED);
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int duo__rp_room_claim(duo_rp_room *r, const char *link, const char *citizen, duo_rp_view *out) {
    int rc = DUO_E_RP_LINK;
    if (strncmp(link, LINK_PREFIX, strlen(LINK_PREFIX)) != 0 || strlen(link) > DUO_RP_LINK_MAX) return rc;
    pthread_mutex_lock(&r->mu);
    sweep_locked(r);
    for (req *q = r->head; q; q = q->next) {
        if (!q->v.link[0] || strcmp(q->v.link, link) != 0) continue;
        if (q->v.state == DUO_RPQ_WAITING && q->v.citizen[0] == '\0') {
            snprintf(q->v.citizen, sizeof q->v.citizen, "%s", citizen);
            *out = q->v;
            rc = DUO_OK;
            pthread_cond_broadcast(&r->cv);
        }
        break;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int duo__rp_room_bind(duo_rp_room *r, const char *citizen, int kind, const uint8_t id[DUO_RP_ID_BYTES],
                      const uint8_t digest[32], const uint8_t sid[32]) {
    req *q = NULL;
    pthread_mutex_lock(&r->mu);
    int rc = citizen_req(r, &q, citizen, id);
    if (rc == DUO_OK && q->v.state != DUO_RPQ_WAITING) rc = DUO_E_RP_REQUEST_CLOSED;
    if (rc == DUO_OK && q->v.kind != kind) rc = DUO_E_RP_WRONG_ROLE;
    if (rc == DUO_OK && CRYPTO_memcmp(q->v.digest, digest, 32) != 0) rc = DUO_E_RP_DIGEST;
    if (rc == DUO_OK) {
        q->v.state = DUO_RPQ_SIGNING;
        memcpy(q->sid, sid, 32);
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

int duo__rp_room_check(duo_rp_room *r, const uint8_t id[DUO_RP_ID_BYTES], const uint8_t sid[32]) {
    pthread_mutex_lock(&r->mu);
    sweep_locked(r);
    req *q = find_id(r, id);
    int rc = q && q->v.state == DUO_RPQ_SIGNING && memcmp(q->sid, sid, 32) == 0 ? DUO_OK : DUO_E_RP_REQUEST_CLOSED;
    pthread_mutex_unlock(&r->mu);
    return rc;
}

void duo__rp_room_finish(duo_rp_room *r, const uint8_t id[DUO_RP_ID_BYTES], const uint8_t sid[32], int result,
                         const uint8_t signature[64], const uint8_t *cert, size_t cert_len) {
    pthread_mutex_lock(&r->mu);
    req *q = find_id(r, id);
    if (q && q->v.state == DUO_RPQ_SIGNING && memcmp(q->sid, sid, 32) == 0) {
        if (result == DUO_RPR_NONE) {
            q->v.state = DUO_RPQ_WAITING;
            memset(q->sid, 0, sizeof q->sid);
            pthread_cond_broadcast(&r->cv);
        } else {
            if (result == DUO_RPR_OK) {
                memcpy(q->v.signature, signature, 64);
                if (cert && cert_len <= sizeof q->v.cert) {
                    memcpy(q->v.cert, cert, cert_len);
                    q->v.cert_len = cert_len;
                }
            }
            complete(r, q, result);
        }
    }
    pthread_mutex_unlock(&r->mu);
}

void duo__rp_room_unusable(duo_rp_room *r, const uint8_t id[DUO_RP_ID_BYTES]) {
    pthread_mutex_lock(&r->mu);
    req *q = find_id(r, id);
    if (q) complete(r, q, DUO_RPR_ACCOUNT_UNUSABLE);
    pthread_mutex_unlock(&r->mu);
}
