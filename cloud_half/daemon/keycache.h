/* duosign-cloud: the key cache, built duo_p1_key objects (keycache.c).
 *
 * Building a key from its stored bytes (duo_p1_key_parse: the Paillier key
 * with its CRT constants and Montgomery contexts, the x1*G + Q2 == Q check)
 * costs more than the rest of a signature's bookkeeping, so built keys are
 * kept, up to DUO_KEYCACHE_MAX with clock replacement. Only this immutable
 * material is cached: every request still reads the key row (state, lock,
 * counters, device secrets) from the store, and an entry is used only if its
 * tag, SHA-256 over the key id, the Paillier size, Q, Q2, x1, p and q as read
 * in that request, matches. (The row and secret versions cannot be the tag:
 * every signature rotates the device secret, which bumps both.)
 *
 * Entries are reference-counted: a signing session holds one for its
 * lifetime (the engine borrows the key), the table another; the key is wiped
 * (duo_p1_key_free) when the last reference goes, after eviction, forgetting
 * (revocation, suspension, the maintenance sweep) or the cache's end.
 *
 * Lock: one mutex inside the cache guards its table (slots, count, clock
 * hand, use bits); reference counts are atomic. No function calls out while
 * holding it except duo__keycache_revalidate's callback, which runs without
 * it. Any thread. */
#ifndef DUOSIGN_CLOUD_KEYCACHE_H
#define DUOSIGN_CLOUD_KEYCACHE_H

#include "duosign/curve.h"
#include "keystore.h"
#include "p1.h"

#define DUO_KEYCACHE_MAX 1024

typedef struct duo_keycache duo_keycache;
typedef struct duo_keycache_item duo_keycache_item;

/* ec (by duo_curve, DUO_CURVE_COUNT entries) is borrowed: a key is built
 * with the context of its row's curve. */
int duo__keycache_new(duo_keycache **out, const duo_ec *const *ec);
/* Drops every entry (keys still referenced live until their last put) and
 * frees the cache. NULL is a no-op. */
void duo__keycache_free(duo_keycache *kc);

/* A reference to the built key of the row just read (ki, sec): the cached one
 * if its tag matches, else built and cached. Release with duo__keycache_put.
 * Returns DUO_OK, DUO_E_NOMEM or duo_p1_key_parse's DUO_E_STATE_CORRUPT. */
int duo__keycache_get(duo_keycache *kc, duo_keycache_item **out, const duo_key_info *ki, const duo_key_secrets *sec);
/* The key of an item (valid while the reference is held). */
const duo_p1_key *duo__keycache_key(const duo_keycache_item *it);
/* Releases a reference (NULL is a no-op). */
void duo__keycache_put(duo_keycache_item *it);
/* Wipes the cached key of key_id, if any (revocation, suspension). */
void duo__keycache_forget(duo_keycache *kc, const uint8_t key_id[DUO_KEY_ID_BYTES]);
/* Forgets every cached key for which still_valid(data, key_id) returns 0.
 * The ids are copied under the lock; the callback runs without it. */
void duo__keycache_revalidate(duo_keycache *kc, int (*still_valid)(void *data, const uint8_t key_id[DUO_KEY_ID_BYTES]),
                              void *data);

#endif
