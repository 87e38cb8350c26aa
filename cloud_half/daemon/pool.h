/* duosign-cloud: the Paillier / range-proof precomputation pool (pool.c).
 *
 * Each entry is a Paillier key and the randomness of the enrolment that will
 * use it (ckey's r and r^N and the range proof's seeds and P-521
 * commitments, duo_zk_range_precomp), made together on a libuv worker, off
 * the request path (the key's primes and ~64 ms of precomputation at 2048
 * bits: about half of the cloud's enrolment CPU since range proof v2). duo__pool_take hands an entry to exactly one
 * enrolment, whose engine session consumes it once and wipes it. Keys are
 * made only here, never on a request thread: an empty pool gives an empty
 * entry and the enrolment is told to retry (DUO_E_SERVER_BUSY).
 *
 * Lock: one mutex inside duo_pool guards the entries, the in-flight count and
 * the stop flag. Refills are started on the loop thread (an async handle
 * wakes it); take and ready are for any thread. */
#ifndef DUOSIGN_CLOUD_POOL_H
#define DUOSIGN_CLOUD_POOL_H

#include <uv.h>

#include "duosign/paillier.h"
#include "duosign/zk_paillier.h"

#define DUO_POOL_MAX 16
#define DUO_POOL_INFLIGHT_MAX 1

typedef struct duo_pool duo_pool;

typedef struct duo_pool_entry {
    duo_paillier_priv *key;
    duo_zk_range_precomp *precomp;
} duo_pool_entry;

/* Loop thread: a pool that keeps `target` (1 to DUO_POOL_MAX; 0 is taken as
 * 1, since keys are made only here) entries of `bits`-bit keys ready once
 * started. */
int duo__pool_new(duo_pool **out, uv_loop_t *loop, unsigned bits, unsigned target);
/* Loop thread: starts the refills. */
void duo__pool_start(duo_pool *p);
/* Any thread: an entry (empty if none is ready); the caller owns it. */
duo_pool_entry duo__pool_take(duo_pool *p);
/* Any thread: puts back an entry nobody used (a key a superseded enrolment
 * handed back that the start did not need), or wipes it if the pool is full
 * or stopping. *e is emptied either way. */
void duo__pool_return(duo_pool *p, duo_pool_entry *e);
/* Any thread: entries ready. */
size_t duo__pool_ready(duo_pool *p);
/* Loop thread: no more refills; closes the async handle (uv_run returns once
 * the work in flight ended). */
void duo__pool_stop(duo_pool *p);
/* After uv_run returned: wipes the entries and frees. NULL is a no-op. */
void duo__pool_free(duo_pool *p);

#endif
