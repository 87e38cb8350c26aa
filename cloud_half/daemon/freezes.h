/* duosign-cloud: freezes that could not be stored yet (freezes.c).
 *
 * Lindell's abort rule fails closed: when a cheating device's freeze cannot
 * be written (a full disk, an I/O error, the database held by another
 * process), the key is kept here and every SignStart on it is refused
 * (DUO_E_KEY_SUSPENDED) until a retry stores the freeze; each such SignStart
 * and the maintenance timer retry it. In this process's memory only (one
 * daemon per data directory, serve.lock): see docs/DECISIONS.md.
 *
 * Lock: one mutex inside duo_freezes guards the list. Any thread. */
#ifndef DUOSIGN_CLOUD_FREEZES_H
#define DUOSIGN_CLOUD_FREEZES_H

#include "daemon.h"
#include "keystore.h"

typedef struct duo_freezes duo_freezes;

int duo__freezes_new(duo_freezes **out);
/* NULL is a no-op. */
void duo__freezes_free(duo_freezes *fz);
/* Remembers key_id (its freeze failed); logs that it did. */
void duo__freezes_add(duo_freezes *fz, const uint8_t key_id[DUO_KEY_ID_BYTES]);
/* 1 if key_id's freeze is still to be stored. */
int duo__freezes_pending(duo_freezes *fz, const uint8_t key_id[DUO_KEY_ID_BYTES]);
/* Tries to store key_id's freeze (audited attack.suspected); forgets it once
 * stored. Returns the store's answer. */
int duo__freezes_retry(duo_freezes *fz, duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES]);
/* Tries every pending one (the maintenance timer). */
void duo__freezes_retry_all(duo_freezes *fz, duo_keystore *ks);

/* The reason a freeze after an invalid signature share records. */
#define DUO_ATTACK_REASON \
    "attack suspected: the signature share failed to verify after a valid PIN proof; no signature was released"

#endif
