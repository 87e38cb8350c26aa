/* Internal: the SQLite backend of the key store (keystore_sqlite.c). */
#ifndef DUOSIGN_STORE_KEYSTORE_SQLITE_H
#define DUOSIGN_STORE_KEYSTORE_SQLITE_H

#include "keystore.h"

/* Opens the database and fills *out. cfg must not be NULL (hooks, timeout). */
int duo__keystore_sqlite_open(duo_keystore_backend *out, const char *path, const duo_keystore_config *cfg);

#endif
