/* duosign cloud: threads that run a job beside a handler.
 *
 * A handler that has two independent pieces of work (SignFinish: the store
 * write that releases a signature, and the Paillier decryption) hands one to
 * this pool and does the other itself, then waits: its latency is the longer
 * of the two instead of their sum. The CPU spent is the same.
 *
 * Jobs live in the caller's memory (typically its stack) and the caller
 * always waits for its job, so the queue is bounded by the number of handler
 * threads. Without a pool (NULL, or it could not start its threads) a job
 * runs at once on the caller's thread.
 *
 * Lock: one mutex inside duo_overlap guards its job queue and the jobs'
 * done flags. */
#ifndef DUOSIGN_CLOUD_OVERLAP_H
#define DUOSIGN_CLOUD_OVERLAP_H

typedef struct duo_overlap duo_overlap;

typedef struct duo_overlap_job {
    void (*fn)(void *arg);
    void *arg;
    /* Private to the pool. */
    struct duo_overlap_job *next_;
    int done_;
} duo_overlap_job;

/* Starts `threads` threads. Returns DUO_OK, DUO_E_INVALID_ARG (0 threads),
 * DUO_E_NOMEM or DUO_E_INTERNAL (no thread could be started). */
int duo_overlap_new(duo_overlap **out, unsigned threads);
/* Queues job (fn and arg set by the caller); with o == NULL runs it now. */
void duo_overlap_start(duo_overlap *o, duo_overlap_job *job);
/* Returns once job's fn has returned. */
void duo_overlap_wait(duo_overlap *o, duo_overlap_job *job);
/* Runs the jobs still queued, joins the threads, frees. NULL is a no-op. */
void duo_overlap_free(duo_overlap *o);

#endif
