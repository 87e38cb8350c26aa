/* duosign cloud store: rotating a data directory's key-encryption key.
 *
 * duo_datadir_kek_rotate re-seals every sealed value of the store
 * (sealed_columns.h) under a new KEK, crash-safe at every instant:
 *
 *   1. the new KEK is made (a new file, or the token's key) and recorded in
 *      kek.ref as "next" beside "current" (an atomic replace);
 *   2. the values are re-sealed in batches, one write transaction each; every
 *      value names its KEK id, and the store opens both ids;
 *   3. when no value names another KEK, kek.ref is replaced by "current" =
 *      the new KEK alone.
 *
 * A crash at any point leaves each value under the old or the new KEK, both
 * named in kek.ref, so the daemon still opens everything (it seals under the
 * old one until the switch); running the rotation again resumes it (same
 * target) and completes. The caller keeps the daemon off the data directory
 * (`duosign-cloud kek rotate` holds serve.lock).
 *
 * Thread-safety: one rotation per data directory at a time (the caller's lock). */
#ifndef DUOSIGN_STORE_KEK_ROTATE_H
#define DUOSIGN_STORE_KEK_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include "kekref.h"

typedef struct duo_kek_rotate_opts {
    const char *to; /* the new KEK's reference (kekref.h); NULL: a new file kek-ID in the data directory */
    size_t batch;   /* values per transaction; 0: 64 */
    /* TESTING ONLY (may be NULL): called at each point where a crash is
     * possible: "created", "recorded", "commit" (before each batch's COMMIT),
     * "resealed", "switched". */
    void (*step)(void *data, const char *where);
    void *step_data;
} duo_kek_rotate_opts;

typedef struct duo_kek_rotate_report {
    duo_kek_slot from, to; /* public references */
    int resumed;           /* an interrupted rotation was finished */
    int to_extractable;    /* the new token key can leave its token in plain form */
    size_t resealed;       /* values re-sealed by this run */
} duo_kek_rotate_report;

/* Rotates (or finishes rotating) the KEK of data directory dir.
 * Returns: DUO_OK; DUO_E_INVALID_ARG (o->to names the current KEK, or another
 *          target than the rotation in progress, or is malformed);
 *          DUO_E_EXISTS (o->to is an existing file); the errors of kekref.h
 *          and duo_keystore_reseal, with what to do in err.
 * Out:  *rep (also on failure: what was known). */
DUO_WARN_UNUSED_RESULT int duo_datadir_kek_rotate(duo_kek_rotate_report *rep, char *err, size_t err_cap,
                                                  const char *dir, const duo_kek_rotate_opts *o);

#endif
