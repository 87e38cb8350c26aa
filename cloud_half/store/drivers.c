/* The key store's backends, in one table: the only place that names them.
 * A new backend (PostgreSQL) is its own file with a duo_keystore_driver and
 * one row here; keystore.c and its callers do not change. */
#include <string.h>

#include "keystore.h"
#include "keystore_pg.h"
#include "keystore_sqlite.h"

static const duo_keystore_driver *const drivers[] = {
    &duo__keystore_sqlite_driver,
    &duo__keystore_pg_driver,
};

const duo_keystore_driver *duo_keystore_driver_find(const char *name) {
    if (name == NULL) return NULL;
    for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++)
        if (strcmp(drivers[i]->name, name) == 0) return drivers[i];
    return NULL;
}
