/* duosign-cloud: the inner channel's open sessions (channels.h). A small
 * array: the table holds sessions between the rounds of one enrolment or
 * signature, bounded by cap. */
#include "channels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"

typedef struct {
    int used;
    int64_t expires;
    duo_channel ch; /* SECRET */
} entry;

struct duo_channels {
    pthread_mutex_t mu;
    size_t cap;
    unsigned ttl_s;
    entry *e;
};

int duo__channels_new(duo_channels **out, size_t cap, unsigned ttl_s) {
    duo_channels *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t || !(t->e = calloc(cap ? cap : 1, sizeof *t->e))) {
        free(t);
        return DUO_E_NOMEM;
    }
    t->cap = cap ? cap : 1;
    t->ttl_s = ttl_s ? ttl_s : 60;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return DUO_OK;
}

void duo__channels_free(duo_channels *t) {
    if (!t) return;
    duo_memzero(t->e, t->cap * sizeof *t->e);
    free(t->e);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static void drop(entry *e) { duo_memzero(e, sizeof *e); }

int duo__channels_take(duo_channels *t, duo_channel *ch, const uint8_t id[DUO_CH_ID_BYTES], int64_t now_s) {
    int r = DUO_E_CHANNEL_UNKNOWN;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->e[i];
        if (!e->used || !duo_ct_eq(e->ch.channel_id, id, DUO_CH_ID_BYTES)) continue;
        if (e->expires > now_s) {
            *ch = e->ch;
            r = DUO_OK;
        }
        drop(e);
        break;
    }
    pthread_mutex_unlock(&t->mu);
    return r;
}

void duo__channels_put(duo_channels *t, duo_channel *ch, int64_t now_s) {
    pthread_mutex_lock(&t->mu);
    size_t slot = t->cap, oldest = 0;
    for (size_t i = 0; i < t->cap; i++) {
        entry *e = &t->e[i];
        if (e->used && e->expires <= now_s) drop(e);
        if (!e->used && slot == t->cap) slot = i;
        if (e->used && e->expires < t->e[oldest].expires) oldest = i;
    }
    if (slot == t->cap) { /* full: the oldest session goes */
        slot = oldest;
        drop(&t->e[slot]);
    }
    t->e[slot].used = 1;
    t->e[slot].expires = now_s + (int64_t)t->ttl_s;
    t->e[slot].ch = *ch;
    pthread_mutex_unlock(&t->mu);
    duo_ch_clear(ch);
}

size_t duo__channels_count(duo_channels *t) {
    size_t n = 0;
    pthread_mutex_lock(&t->mu);
    for (size_t i = 0; i < t->cap; i++) n += t->e[i].used != 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}
