/* duosign cloud store: the high-water mark of the audit chain.
 *
 * A restored backup, a copied database or a lost/truncated WAL rolls the
 * store back silently: acknowledged signatures vanish and the devices that
 * made them hold secrets the store never saw. The mark catches that: a small
 * file beside the database (DUO_FILE_MARK) holding the audit chain's sequence
 * number and head hash, and the store's restore epoch, in two checksummed
 * slots (mark.c); the newest valid slot by (epoch, seq) counts.
 *
 * Order: the key store advances the mark AFTER a durable commit that appended
 * to the audit chain and BEFORE the write returns to its caller (so before
 * any reply): the mark may lag the store (a crash between the two), never
 * lead it, and no acknowledged operation is beyond it. The check at start is
 * therefore "the store's chain must contain the mark's hash at the mark's
 * seq": a store whose head is older, or whose chain forked, is refused.
 * Deferred (non-durable) commits never advance it: an OS crash may lose them
 * and the mark must not then lead.
 *
 * Writing: the slot not holding the newest mark is overwritten and
 * fdatasync()ed (one flush; a torn write spoils only that slot). A
 * process-wide mutex and flock() on DUO_FILE_MARK ".lock" serialise writers
 * (threads and processes); a mark never moves backwards except by
 * duo_mark_write_force (restore, with a higher epoch). See docs/STORE.md
 * "High-water mark". */
#ifndef DUOSIGN_STORE_MARK_H
#define DUOSIGN_STORE_MARK_H

#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "duosign/errors.h"

#define DUO_FILE_MARK "keys.db.mark"

typedef struct duo_mark_rec {
    uint64_t epoch; /* 0 until the first restore; +1 at each */
    uint64_t seq;   /* audit entries covered */
    uint8_t head[DUO_AUDIT_HASH_LEN];
} duo_mark_rec;

/* Reads the mark at path. *exists = 0 (rec zeroed) when there is none.
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT (unreadable contents); DUO_E_IO. */
DUO_WARN_UNUSED_RESULT int duo_mark_read(const char *path, duo_mark_rec *rec, int *exists);

/* Moves the mark at path forward to rec's seq and head if rec->seq is beyond
 * the stored seq (or there is no mark yet); otherwise leaves it. The stored
 * epoch is kept (rec->epoch is ignored). Durable when it returns DUO_OK.
 * Returns: DUO_OK; DUO_E_IO; DUO_E_STATE_CORRUPT (the stored mark unreadable). */
DUO_WARN_UNUSED_RESULT int duo_mark_advance(const char *path, const duo_mark_rec *rec);

/* Writes rec whatever the stored mark says (init, restore). Durable on DUO_OK.
 * Returns: DUO_OK; DUO_E_IO. */
DUO_WARN_UNUSED_RESULT int duo_mark_write_force(const char *path, const duo_mark_rec *rec);

#endif
