/* duosign-cloud: the Paillier / range-proof precomputation pool (pool.c).
 *
 * Each entry is a Paillier key and the randomness of the enrolment that will
 * use it (ckey's and the range proof's r and r^N, duo_zk_range_precomp),
 * made together on a libuv worker, off the request path (~85 % of the
 * cloud's enrolment CPU). duo__pool_take hands an entry to exactly one
 * enrolment, whose engine session consumes it once and wipes it; an empty
 * pool gives an empty entry (the engine then generates both in round 2).
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

/* Loop thread: a pool that keeps `target` (at most DUO_POOL_MAX) entries of
 * `bits`-bit keys ready once started. */
int duo__pool_new(duo_pool **out, uv_loop_t *loop, unsigned bits, unsigned target);
/* Loop thread: starts the refills. */
void duo__pool_start(duo_pool *p);
/* Any thread: an entry (empty if none is ready); the caller owns it. */
duo_pool_entry duo__pool_take(duo_pool *p);
/* Any thread: entries ready. */
size_t duo__pool_ready(duo_pool *p);
/* Loop thread: no more refills; closes the async handle (uv_run returns once
 * the work in flight ended). */
void duo__pool_stop(duo_pool *p);
/* After uv_run returned: wipes the entries and frees. NULL is a no-op. */
void duo__pool_free(duo_pool *p);

#endif
