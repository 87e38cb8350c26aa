/* Internal: the SQLite backend of the key store (keystore_sqlite.c). */
#ifndef DUOSIGN_STORE_KEYSTORE_SQLITE_H
#define DUOSIGN_STORE_KEYSTORE_SQLITE_H

#include "keystore.h"

/* The "sqlite" driver (listed in drivers.c): its open creates or opens the
 * database file at location and fills *out; cfg must not be NULL (hooks,
 * timeout). */
extern const duo_keystore_driver duo__keystore_sqlite_driver;

#endif
