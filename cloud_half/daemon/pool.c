/* duosign-cloud: the Paillier / range-proof precomputation pool (pool.h). */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/errors.h"

struct duo_pool {
    uv_loop_t *loop;
    unsigned bits, target;
    pthread_mutex_t mu; /* guards entries, n, inflight, stop */
    duo_pool_entry entries[DUO_POOL_MAX];
    size_t n;
    unsigned inflight;
    int stop;
    uv_async_t refill; /* wakes the loop thread to start refills */
    int open;          /* refill is initialised and not closed */
};

typedef struct pool_job {
    uv_work_t work;
    duo_pool *pool;
    duo_pool_entry e;
} pool_job;

static void entry_clear(duo_pool_entry *e) {
    duo_paillier_priv_free(e->key);
    duo_zk_range_precomp_free(e->precomp);
    e->key = NULL;
    e->precomp = NULL;
}

static void kick(duo_pool *p);

static void work_cb(uv_work_t *w) {
    pool_job *j = w->data;
    if (duo_paillier_keygen(&j->e.key, j->pool->bits) != DUO_OK ||
        duo_zk_range_precomp_new(&j->e.precomp, j->e.key, NULL) != DUO_OK)
        entry_clear(&j->e);
}

static void after_cb(uv_work_t *w, int status) {
    pool_job *j = w->data;
    duo_pool *p = j->pool;
    (void)status;
    pthread_mutex_lock(&p->mu);
    p->inflight--;
    if (j->e.key && !p->stop && p->n < DUO_POOL_MAX) {
        p->entries[p->n++] = j->e;
        memset(&j->e, 0, sizeof j->e);
    }
    pthread_mutex_unlock(&p->mu);
    entry_clear(&j->e);
    free(j);
    kick(p);
}

/* Loop thread. */
static void kick(duo_pool *p) {
    for (;;) {
        pthread_mutex_lock(&p->mu);
        int go = !p->stop && p->n + p->inflight < p->target && p->inflight < DUO_POOL_INFLIGHT_MAX;
        if (go) p->inflight++;
        pthread_mutex_unlock(&p->mu);
        if (!go) return;
        pool_job *j = calloc(1, sizeof *j);
        if (j) {
            j->pool = p;
            j->work.data = j;
        }
        if (!j || uv_queue_work(p->loop, &j->work, work_cb, after_cb) != 0) {
            free(j);
            pthread_mutex_lock(&p->mu);
            p->inflight--;
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
}

static void on_refill(uv_async_t *h) { kick(h->data); }

int duo__pool_new(duo_pool **out, uv_loop_t *loop, unsigned bits, unsigned target) {
    duo_pool *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p) return DUO_E_NOMEM;
    p->loop = loop;
    p->bits = bits;
    p->target = target > DUO_POOL_MAX ? DUO_POOL_MAX : target == 0 ? 1 : target;
    pthread_mutex_init(&p->mu, NULL);
    uv_async_init(loop, &p->refill, on_refill);
    p->refill.data = p;
    p->open = 1;
    *out = p;
    return DUO_OK;
}

/* Starts the first refills; separate from _new so that the owner starts them
 * once everything else is in place, as before the split. */
void duo__pool_start(duo_pool *p) { kick(p); }

duo_pool_entry duo__pool_take(duo_pool *p) {
    duo_pool_entry e = {NULL, NULL};
    pthread_mutex_lock(&p->mu);
    if (p->n > 0) {
        e = p->entries[--p->n];
        memset(&p->entries[p->n], 0, sizeof p->entries[p->n]);
    }
    int stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (!stop && p->open) uv_async_send(&p->refill);
    return e;
}

void duo__pool_return(duo_pool *p, duo_pool_entry *e) {
    if (e->key != NULL) {
        pthread_mutex_lock(&p->mu);
        if (!p->stop && p->n < DUO_POOL_MAX) {
            p->entries[p->n++] = *e;
            e->key = NULL;
            e->precomp = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    entry_clear(e);
}

size_t duo__pool_ready(duo_pool *p) {
    pthread_mutex_lock(&p->mu);
    size_t n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void duo__pool_stop(duo_pool *p) {
    if (!p || !p->open) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_mutex_unlock(&p->mu);
    p->open = 0;
    uv_close((uv_handle_t *)&p->refill, NULL);
}

void duo__pool_free(duo_pool *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n; i++) entry_clear(&p->entries[i]);
    p->n = 0;
    pthread_mutex_destroy(&p->mu);
    free(p);
}
