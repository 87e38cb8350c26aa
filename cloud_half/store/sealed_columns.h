/* duosign cloud store: every sealed column of the database, in one table.
 *
 * `duosign-cloud kek rotate` re-seals each listed column of every row under
 * the new key-encryption key and `kek status` opens them all; nothing else
 * needs to know where secrets live. A table that gets a sealed column adds
 * ONE row to duo_sealed_columns (sealed_columns.c), naming how the value's
 * AAD (seal.h) is found in its row. Re-sealing keeps the AAD and the
 * plaintext and changes only the KEK id and the ciphertext.
 *
 * Thread-safety: constant data. */
#ifndef DUOSIGN_STORE_SEALED_COLUMNS_H
#define DUOSIGN_STORE_SEALED_COLUMNS_H

#include <stddef.h>

/* AAD column names (fixed forever: existing databases stop opening if one
 * changes). */
#define DUO_SEAL_COL_X1 "x1"
#define DUO_SEAL_COL_P "paillier_p"
#define DUO_SEAL_COL_Q "paillier_q"
#define DUO_SEAL_COL_CUR "device_secret_current"
#define DUO_SEAL_COL_PEND "device_secret_pending"
#define DUO_SEAL_COL_RETIRED "retired_secret"

typedef struct duo_sealed_column {
    const char *table;       /* SQL table; it must have a rowid */
    const char *column;      /* SQL column holding the sealed value (NULL: none) */
    const char *aad_id;      /* SQL expression in the row: the AAD key id (1..64-byte blob) */
    const char *aad_column;  /* the AAD column name the value is sealed with */
    const char *aad_version; /* SQL expression in the row: the AAD version (integer) */
} duo_sealed_column;

extern const duo_sealed_column duo_sealed_columns[];
extern const size_t duo_sealed_columns_count;

#endif
