/* duosign cloud: threads that run a job beside a handler (overlap.h). */
#include "overlap.h"

#include <pthread.h>
#include <stdlib.h>

#include "duosign/errors.h"

struct duo_overlap {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* a job was queued, or stop */
    pthread_cond_t done_cv; /* a job finished */
    duo_overlap_job *head, *tail;
    int stop;
    unsigned n_threads;
    pthread_t *threads;
};

static void *overlap_main(void *arg) {
    duo_overlap *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (o->head == NULL && !o->stop) pthread_cond_wait(&o->work_cv, &o->mu);
        duo_overlap_job *job = o->head;
        if (job == NULL) break; /* stop, and nothing left queued */
        o->head = job->next_;
        if (o->head == NULL) o->tail = NULL;
        pthread_mutex_unlock(&o->mu);
        job->fn(job->arg);
        pthread_mutex_lock(&o->mu);
        job->done_ = 1;
        /* Broadcast: several handlers may be waiting, each for its own job. */
        pthread_cond_broadcast(&o->done_cv);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

int duo_overlap_new(duo_overlap **out, unsigned threads) {
    duo_overlap *o;
    if (out == NULL) return DUO_E_INVALID_ARG;
    *out = NULL;
    if (threads == 0) return DUO_E_INVALID_ARG;
    if ((o = calloc(1, sizeof *o)) == NULL || (o->threads = calloc(threads, sizeof *o->threads)) == NULL) {
        free(o);
        return DUO_E_NOMEM;
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->work_cv, NULL);
    pthread_cond_init(&o->done_cv, NULL);
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&o->threads[i], NULL, overlap_main, o) != 0) break;
        o->n_threads++;
    }
    if (o->n_threads == 0) {
        duo_overlap_free(o);
        return DUO_E_INTERNAL;
    }
    *out = o;
    return DUO_OK;
}

void duo_overlap_start(duo_overlap *o, duo_overlap_job *job) {
    job->next_ = NULL;
    job->done_ = 0;
    if (o == NULL) {
        job->fn(job->arg);
        job->done_ = 1;
        return;
    }
    pthread_mutex_lock(&o->mu);
    if (o->tail != NULL)
        o->tail->next_ = job;
    else
        o->head = job;
    o->tail = job;
    pthread_cond_signal(&o->work_cv);
    pthread_mutex_unlock(&o->mu);
}

void duo_overlap_wait(duo_overlap *o, duo_overlap_job *job) {
    if (o == NULL) return;
    pthread_mutex_lock(&o->mu);
    while (!job->done_) pthread_cond_wait(&o->done_cv, &o->mu);
    pthread_mutex_unlock(&o->mu);
}

void duo_overlap_free(duo_overlap *o) {
    if (o == NULL) return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_broadcast(&o->work_cv);
    pthread_mutex_unlock(&o->mu);
    for (unsigned i = 0; i < o->n_threads; i++) pthread_join(o->threads[i], NULL);
    pthread_cond_destroy(&o->done_cv);
    pthread_cond_destroy(&o->work_cv);
    pthread_mutex_destroy(&o->mu);
    free(o->threads);
    free(o);
}
