/* Internal: the key store object, shared by keystore.c and certs.c (the
 * issuing CA's and the certificates' part of the store). */
#ifndef DUOSIGN_STORE_KEYSTORE_INTERNAL_H
#define DUOSIGN_STORE_KEYSTORE_INTERNAL_H

#include "keystore.h"

struct duo_keystore {
    duo_keystore_backend be;
    duo_kek kek;
    duo_keystore_config cfg;
};

/* The store's clock (config, else time(NULL)). */
int64_t duo__ks_now(const duo_keystore *ks);

/* 1 if name is a citizen's name the store accepts: at most
 * DUO_CITIZEN_NAME_MAX bytes, no control characters (UTF-8 passes). "" is
 * accepted (no name). */
int duo__citizen_name_ok(const char *name);

#endif
