/* duosign-cloud: per relying party limits on redeeming presentation codes
 * (present.h). Two token buckets per relying party: every attempt, and
 * attempts with an unknown code, which only guessing produces in numbers.
 * Relying parties are few (registered by the operator): a small table with
 * a linear search; a full table refuses new names (fails closed). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "present.h"

#define LIMIT_RPS_MAX 256

typedef struct bucket {
    double tokens;
    int64_t at_ms;
} bucket;

typedef struct rp_slot {
    char name[DUO_RP_NAME_MAX + 1];
    bucket all, misses;
} rp_slot;

struct duo_redeem_limit {
    duo_redeem_limit_config cfg;
    pthread_mutex_t mu;
    rp_slot slots[LIMIT_RPS_MAX];
    size_t n;
};

static int64_t mono_ms(void *data) {
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int duo__redeem_limit_new(duo_redeem_limit **out, const duo_redeem_limit_config *cfg) {
    duo_redeem_limit *l;
    duo_redeem_limit_config d = {
        DUO_REDEEM_PER_S, DUO_REDEEM_BURST, DUO_REDEEM_MISSES_PER_H, DUO_REDEEM_MISSES_BURST, NULL, NULL};
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (cfg != NULL) d = *cfg;
    if (!(d.per_s > 0) || !(d.burst >= 1) || !(d.misses_per_h > 0) || !(d.misses_burst >= 1)) return DUO_E_INVALID_ARG;
    if (d.clock_ms == NULL) d.clock_ms = mono_ms;
    if ((l = calloc(1, sizeof *l)) == NULL) return DUO_E_NOMEM;
    l->cfg = d;
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return DUO_OK;
}

void duo__redeem_limit_free(duo_redeem_limit *l) {
    if (l == NULL) return;
    pthread_mutex_destroy(&l->mu);
    free(l);
}

static void refill(bucket *b, int64_t now, double per_ms, double cap) {
    if (now > b->at_ms) b->tokens += (double)(now - b->at_ms) * per_ms;
    if (b->tokens > cap) b->tokens = cap;
    b->at_ms = now;
}

/* The slot of rp, made full when new; NULL when the table is full. */
static rp_slot *slot(duo_redeem_limit *l, const char *rp, int64_t now) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->slots[i].name, rp) == 0) return &l->slots[i];
    if (l->n == LIMIT_RPS_MAX || strlen(rp) > DUO_RP_NAME_MAX) return NULL;
    rp_slot *s = &l->slots[l->n++];
    strcpy(s->name, rp);
    s->all = (bucket){l->cfg.burst, now};
    s->misses = (bucket){l->cfg.misses_burst, now};
    return s;
}

int duo__redeem_limit_take(duo_redeem_limit *l, const char *rp) {
    int r = DUO_E_RATE_LIMITED;
    if (l == NULL || rp == NULL) return DUO_E_INVALID_ARG;
    pthread_mutex_lock(&l->mu);
    int64_t now = l->cfg.clock_ms(l->cfg.clock_data);
    rp_slot *s = slot(l, rp, now);
    if (s != NULL) {
        refill(&s->all, now, l->cfg.per_s / 1000.0, l->cfg.burst);
        refill(&s->misses, now, l->cfg.misses_per_h / 3600000.0, l->cfg.misses_burst);
        if (s->all.tokens >= 1 && s->misses.tokens >= 1) {
            s->all.tokens -= 1;
            r = DUO_OK;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return r;
}

void duo__redeem_limit_miss(duo_redeem_limit *l, const char *rp) {
    if (l == NULL || rp == NULL) return;
    pthread_mutex_lock(&l->mu);
    int64_t now = l->cfg.clock_ms(l->cfg.clock_data);
    rp_slot *s = slot(l, rp, now);
    if (s != NULL) {
        refill(&s->misses, now, l->cfg.misses_per_h / 3600000.0, l->cfg.misses_burst);
        s->misses.tokens = s->misses.tokens >= 1 ? s->misses.tokens - 1 : 0;
    }
    pthread_mutex_unlock(&l->mu);
}
