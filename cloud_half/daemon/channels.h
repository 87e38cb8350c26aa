/* duosign-cloud: the inner channel's open sessions, by channel id (a room
 * with its own lock; service.c's dispatch is its only user).
 *
 * A session is taken out for one call (so two calls never use one channel
 * at once: the second finds it missing, DUO_E_CHANNEL_UNKNOWN) and put back
 * after its response is sealed, when the method continues a session. Entries
 * expire after the session TTL; when the table is full the oldest entry
 * goes. Per node: a second node does not know the channel (docs/PROTOCOL.md,
 * "Inner channel", multi-node). */
#ifndef DUOSIGN_CLOUD_CHANNELS_H
#define DUOSIGN_CLOUD_CHANNELS_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/inner_channel.h"

typedef struct duo_channels duo_channels;

/* Returns DUO_OK or DUO_E_NOMEM. cap: entries kept at most; ttl_s: seconds. */
int duo__channels_new(duo_channels **out, size_t cap, unsigned ttl_s);
void duo__channels_free(duo_channels *t); /* wipes every entry */

/* Takes the session named id out of the table into *ch.
 * Returns DUO_OK; DUO_E_CHANNEL_UNKNOWN (none, expired, or in use). */
int duo__channels_take(duo_channels *t, duo_channel *ch, const uint8_t id[DUO_CH_ID_BYTES], int64_t now_s);
/* Puts a session (back) in; *ch is wiped. */
void duo__channels_put(duo_channels *t, duo_channel *ch, int64_t now_s);
/* Entries held (for tests and metrics). */
size_t duo__channels_count(duo_channels *t);

#endif
