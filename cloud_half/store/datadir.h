/* duosign cloud store: the store of a data directory.
 *
 * A data directory (made by `duosign-cloud init`) holds the key-encryption
 * key and the key database; opening its store is the store layer's job, so
 * the daemon's service and the admin commands both come here (neither
 * reaches into the other). */
#ifndef DUOSIGN_STORE_DATADIR_H
#define DUOSIGN_STORE_DATADIR_H

#include <pthread.h>
#include <stddef.h>

#include "keystore.h"

#define DUO_PATH_MAX 4096

/* The store's files in a data directory. */
#define DUO_FILE_KEK "kek" /* 32 random bytes, 0600: the first KEK file */
/* kek.ref (kekref.h) names the KEKs in use; without it, "kek" is the KEK. */
#define DUO_FILE_DB "keys.db" /* the key store and audit log */
/* The backend a data directory's keys.db is opened with (drivers.c). */
#define DUO_DATADIR_DRIVER "sqlite"
/* A data directory whose store is a PostgreSQL database instead (`init
 * --store URL`) records the URL here (0600: it may hold a password). */
#define DUO_FILE_STORE_URL "store.url"
#define DUO_STORE_URL_MAX 1024

/* 1 if url names a PostgreSQL store (postgresql:// or postgres://). */
int duo_store_url_ok(const char *url);

/* Records url (duo_store_url_ok) as the store of data directory dir.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_IO with the reason in err. */
DUO_WARN_UNUSED_RESULT int duo_datadir_set_store_url(char *err, size_t err_cap, const char *dir, const char *url);

/* Where the store of dir is: *drv and loc (cap bytes) from dir/store.url if
 * present (the "postgresql" driver), else "sqlite" and dir/keys.db. A
 * process-wide override (duo_datadir_override_store, `serve --store URL`)
 * wins. Returns: DUO_OK; DUO_E_STATE_CORRUPT (store.url unreadable or not a
 * PostgreSQL URL) with the reason in err. */
DUO_WARN_UNUSED_RESULT int duo_datadir_store_location(const char **drv, char *loc, size_t cap, char *err,
                                                      size_t err_cap, const char *dir);

/* Makes every later open of a data directory's store in this process use
 * url (a PostgreSQL URL) instead of what the directory records. Call once,
 * before any store opens; NULL clears it. */
void duo_datadir_override_store(const char *url);

/* Opens the key store of data directory dir: loads the KEKs dir/kek.ref
 * names (kekref.h; dir/kek without it; a rotation's two), opens dir/keys.db
 * (which must exist unless create != 0), checks it against the high-water
 * mark dir/keys.db.mark (mark.h; DUO_E_STORE_ROLLED_BACK with the fix in err)
 * and moves the mark with every durable audited write. write_mu: shared by the connections
 * of one process (duo_keystore_config), or NULL; busy_ms: how long a write
 * waits for another process holding the database (0: the default, 5 s).
 * Returns: DUO_OK; DUO_E_IO (no such directory, keys.db missing), the errors
 *          of duo_kek_load_file and duo_keystore_open, with an actionable
 *          message in err.
 * Out:  *out, freed with duo_keystore_free. */
DUO_WARN_UNUSED_RESULT int duo_datadir_open_store(duo_keystore **out, char *err, size_t err_cap, const char *dir,
                                                  int create, pthread_mutex_t *write_mu, int busy_ms);

/* The same, without the high-water mark (mark.h): neither checked nor moved.
 * For commands that must open a store the mark refuses: `check`, `backup`,
 * `restore`. Never for serving. */
DUO_WARN_UNUSED_RESULT int duo_datadir_open_store_unmarked(duo_keystore **out, char *err, size_t err_cap,
                                                           const char *dir);

/* Checks the store of dir against dir's high-water mark (writes the mark
 * from the store's head if there is none yet). duo_datadir_open_store does
 * this; `check` calls it on an unmarked store.
 * Returns: DUO_OK; DUO_E_STORE_ROLLED_BACK (message naming the fix in err);
 *          DUO_E_STATE_CORRUPT (unreadable mark); DUO_E_IO; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_datadir_mark_check(duo_keystore *ks, char *err, size_t err_cap, const char *dir);

/* Installs the backup file `in` as dir's store (`duosign-cloud restore`):
 * refuses while a daemon serves dir (its serve.lock: DUO_E_DAEMON_RUNNING),
 * checks a staged copy (full integrity check, audit chain, every key's policy
 * MAC under dir's KEK), appends a store.restore audit entry with the new
 * epoch, moves the old keys.db aside (keys.db.before-restore-TIME), renames
 * the copy in and moves the high-water mark to it (epoch + 1). `in` is not
 * changed. Out: *out (may be NULL): the new mark.
 * Returns: DUO_OK; DUO_E_DAEMON_RUNNING; DUO_E_IO; DUO_E_STORE (not a store);
 *          DUO_E_STATE_CORRUPT; DUO_E_POLICY_MAC (another KEK); with err. */
struct duo_mark_rec;
DUO_WARN_UNUSED_RESULT int duo_datadir_restore(const char *dir, const char *in, char *err, size_t err_cap,
                                               struct duo_mark_rec *out);

/* Accepts dir's PostgreSQL store after a point-in-time recovery
 * (`duosign-cloud restore --mark-only`): refuses while a daemon serves dir
 * (DUO_E_DAEMON_RUNNING) and for a SQLite store (DUO_E_UNSUPPORTED: it
 * restores from a file); if the store is older than dir's high-water mark
 * (or its mark is unreadable; no mark at all: nothing to do), checks it (audit chain, every key's policy
 * MAC under dir's KEK), appends a store.restore audit entry with this node's
 * next epoch and moves the mark to it (*changed = 1). A store not older than
 * the mark is left as it is (*changed = 0, no audit entry). Each node of a
 * store runs it once in its own directory (docs/STORE.md).
 * Out: *out (may be NULL): the node's mark afterwards.
 * Returns: DUO_OK; DUO_E_DAEMON_RUNNING; DUO_E_UNSUPPORTED; DUO_E_IO;
 *          DUO_E_STATE_CORRUPT (audit chain); DUO_E_POLICY_MAC; with err. */
DUO_WARN_UNUSED_RESULT int duo_datadir_restore_mark_only(const char *dir, char *err, size_t err_cap,
                                                         struct duo_mark_rec *out, int *changed);

/* duo_datadir_open_store with a whole store configuration (kek rotation's
 * test hooks). */
DUO_WARN_UNUSED_RESULT int duo_datadir_open_store_cfg(duo_keystore **out, char *err, size_t err_cap, const char *dir,
                                                      int create, const duo_keystore_config *cfg);

#endif
