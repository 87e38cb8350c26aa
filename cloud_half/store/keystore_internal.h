/* Internal: the key store object, shared by keystore.c and certs.c (the
 * issuing CA's and the certificates' part of the store). */
#ifndef DUOSIGN_STORE_KEYSTORE_INTERNAL_H
#define DUOSIGN_STORE_KEYSTORE_INTERNAL_H

#include "keystore.h"

struct duo_keystore {
    duo_keystore_backend be;
    duo_kek kek;                           /* seals; opens values naming its id */
    duo_kek others[DUO_KEYSTORE_KEKS - 1]; /* open only (a rotation's other KEK) */
    size_t n_others;
    duo_keystore_config cfg;
    int deferred;         /* duo_keystore_commit_mode(DEFERRED) in force */
    uint64_t marked_seq;  /* the audit seq this connection last put in the mark */
    char mark_path[4096]; /* cfg.mark_path points here */
};

/* Returns r; when r is DUO_OK and the commit was durable, first moves the
 * high-water mark (mark.h) to the audit head (its error then). */
int duo__ks_written(duo_keystore *ks, int r);
/* duo_seal_decrypt with whichever of the store's KEKs the value names (a
 * half-finished rotation leaves values under both): DUO_E_KEK_UNKNOWN if
 * none. */
int duo__ks_open_any(const duo_keystore *ks, uint8_t *out, size_t cap, size_t *n, const uint8_t *aad_id,
                     size_t aad_id_len, const char *col, uint64_t version, const uint8_t *sealed, size_t sealed_len);

/* The store's clock (config, else time(NULL)). */
int64_t duo__ks_now(const duo_keystore *ks);

/* 1 if name is a citizen's name the store accepts: at most
 * DUO_CITIZEN_NAME_MAX bytes, no control characters (UTF-8 passes). "" is
 * accepted (no name). */
int duo__citizen_name_ok(const char *name);

#endif
