/* duosign-cloud: signing sessions kept in a shared store (sign_shared.c),
 * so that SignFinish may reach another node than SignStart (DESIGN 8.6;
 * docs/STORE.md "Signing sessions").
 *
 * On a store that keeps sessions (duo_keystore_sign_sessions_shared:
 * PostgreSQL), SignStart runs round 1 in a session of this node's table (its
 * admission and caps stay per node), then moves round 1's state into the
 * store, sealed, and ends the local session: the store's copy is the only
 * one. SignFinish takes the session from the store (exactly one node ever
 * gets it) into a detached duo_sess that no table knows. On SQLite (one
 * daemon per store) sessions stay in memory: nothing here runs. */
#ifndef DUOSIGN_CLOUD_SIGN_SHARED_H
#define DUOSIGN_CLOUD_SIGN_SHARED_H

#include "rpc.h"

/* Moves the round-1 session x (sg started; secret, digest, citizen set) into
 * the store for c->cfg's session lifetime. x's engine session is spent
 * either way (its k1 wiped); the caller ends x.
 * Returns: DUO_OK; duo_keystore_sign_session_put's errors (with the message
 * of DUO_E_SESSION_BUSY). */
int duo__sign_shared_put(duo_rpc *c, duo_sess *x);
/* Takes the session sid from the store into *out, ready for round 2: the
 * key read (a key no longer usable gets its message), the key built through
 * this node's cache, round 1 rebuilt. Detached: end it with
 * duo__sign_shared_end.
 * Returns: DUO_OK; the refusals of duo_keystore_sign_session_take with the
 * messages of sessions.c; the key's errors. */
int duo__sign_shared_take(duo_rpc *c, duo_sess **out, const uint8_t sid[DUO_SID_BYTES]);
/* Records the session used in the store and frees x (wipes its secrets).
 * NULL: no-op. */
void duo__sign_shared_end(duo_rpc *c, duo_sess *x);

#endif
