/* duosign-cloud: the inner channel's open sessions (channels.h).
 *
 * Entries live in one array of cap slots, found by channel id through a hash
 * index and kept in insertion order on a list. Every entry gets the same
 * lifetime (ttl_s) when it is put, so insertion order is expiry order: the
 * expired entries and, when the table is full, the oldest one are at the
 * head of that list. Take and put are O(1); the table used to be scanned
 * whole on every put (10000 slots of ~450 bytes: megabytes of memory walked
 * twice per signature, issue 22). Channel ids come out of the handshake's
 * key derivation (HKDF over the cloud's fresh ephemeral), so a device cannot
 * choose them to crowd one hash bucket. */
#include "channels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"

#define NIL SIZE_MAX

typedef struct {
    int used;
    int64_t expires;
    size_t prev, next; /* insertion order (used), or the free list (next only) */
    size_t hnext;      /* the next entry of the same hash bucket */
    duo_channel ch;    /* SECRET */
} entry;

struct duo_channels {
    pthread_mutex_t mu; /* guards everything below */
    size_t cap;
    unsigned ttl_s;
    entry *e;
    size_t *bucket; /* nb heads of hash chains (NIL: empty) */
    size_t nb;      /* a power of two >= cap */
    size_t head, tail, free_head, n;
};

int duo__channels_new(duo_channels **out, size_t cap, unsigned ttl_s) {
    duo_channels *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return DUO_E_NOMEM;
    t->cap = cap ? cap : 1;
    t->ttl_s = ttl_s ? ttl_s : 60;
    for (t->nb = 1; t->nb < t->cap; t->nb <<= 1) {
    }
    t->e = calloc(t->cap, sizeof *t->e);
    t->bucket = malloc(t->nb * sizeof *t->bucket);
    if (!t->e || !t->bucket) {
        free(t->e);
        free(t->bucket);
        free(t);
        return DUO_E_NOMEM;
    }
    for (size_t i = 0; i < t->nb; i++) t->bucket[i] = NIL;
    for (size_t i = 0; i < t->cap; i++) t->e[i].next = i + 1 < t->cap ? i + 1 : NIL;
    t->free_head = 0;
    t->head = t->tail = NIL;
    pthread_mutex_init(&t->mu, NULL);
    *out = t;
    return DUO_OK;
}

void duo__channels_free(duo_channels *t) {
    if (!t) return;
    duo_memzero(t->e, t->cap * sizeof *t->e);
    free(t->e);
    free(t->bucket);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Channel ids are uniformly random (see the top): their first bytes are the
 * hash. */
static size_t bucket_of(const duo_channels *t, const uint8_t id[DUO_CH_ID_BYTES]) {
    uint64_t h = 0;
    memcpy(&h, id, sizeof h < DUO_CH_ID_BYTES ? sizeof h : DUO_CH_ID_BYTES);
    return (size_t)(h & (t->nb - 1));
}

/* Unlinks entry i from its bucket and the order list, wipes it and frees
 * its slot. */
static void drop(duo_channels *t, size_t i) {
    entry *e = &t->e[i];
    size_t *p = &t->bucket[bucket_of(t, e->ch.channel_id)];
    while (*p != i) p = &t->e[*p].hnext; /* i is on this chain */
    *p = e->hnext;
    if (e->prev != NIL)
        t->e[e->prev].next = e->next;
    else
        t->head = e->next;
    if (e->next != NIL)
        t->e[e->next].prev = e->prev;
    else
        t->tail = e->prev;
    duo_memzero(e, sizeof *e);
    e->next = t->free_head;
    t->free_head = i;
    t->n--;
}

/* Drops the expired entries at the head of the order list (all of them
 * unless the clock stepped back; take checks its entry's time itself). */
static void expire(duo_channels *t, int64_t now_s) {
    while (t->head != NIL && t->e[t->head].expires <= now_s) drop(t, t->head);
}

int duo__channels_take(duo_channels *t, duo_channel *ch, const uint8_t id[DUO_CH_ID_BYTES], int64_t now_s) {
    int r = DUO_E_CHANNEL_UNKNOWN;
    pthread_mutex_lock(&t->mu);
    expire(t, now_s);
    for (size_t i = t->bucket[bucket_of(t, id)]; i != NIL; i = t->e[i].hnext) {
        if (!duo_ct_eq(t->e[i].ch.channel_id, id, DUO_CH_ID_BYTES)) continue;
        if (t->e[i].expires > now_s) { /* behind the head if the clock stepped back */
            *ch = t->e[i].ch;
            r = DUO_OK;
        }
        drop(t, i);
        break;
    }
    pthread_mutex_unlock(&t->mu);
    return r;
}

void duo__channels_put(duo_channels *t, duo_channel *ch, int64_t now_s) {
    pthread_mutex_lock(&t->mu);
    expire(t, now_s);
    if (t->free_head == NIL) drop(t, t->head); /* full: the oldest session goes */
    size_t i = t->free_head;
    entry *e = &t->e[i];
    t->free_head = e->next;
    e->used = 1;
    e->expires = now_s + (int64_t)t->ttl_s;
    e->ch = *ch;
    size_t b = bucket_of(t, e->ch.channel_id);
    e->hnext = t->bucket[b];
    t->bucket[b] = i;
    e->prev = t->tail;
    e->next = NIL;
    if (t->tail != NIL)
        t->e[t->tail].next = i;
    else
        t->head = i;
    t->tail = i;
    t->n++;
    pthread_mutex_unlock(&t->mu);
    duo_ch_clear(ch);
}

size_t duo__channels_count(duo_channels *t) {
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    pthread_mutex_unlock(&t->mu);
    return n;
}
