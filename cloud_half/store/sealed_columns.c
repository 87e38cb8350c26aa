/* Every sealed column of the database (sealed_columns.h). A new sealed
 * column is one row here: table, column, and the AAD it was sealed with. */
#include "sealed_columns.h"

#include "certstore.h"
#include "rpstore.h"

const duo_sealed_column duo_sealed_columns[] = {
    /* table            column               AAD key id  AAD column              AAD version */
    {"keys", "x1_sealed", "key_id", DUO_SEAL_COL_X1, "secret_version"},
    {"keys", "p_sealed", "key_id", DUO_SEAL_COL_P, "secret_version"},
    {"keys", "q_sealed", "key_id", DUO_SEAL_COL_Q, "secret_version"},
    {"keys", "secret_cur_sealed", "key_id", DUO_SEAL_COL_CUR, "secret_version"},
    {"keys", "secret_pend_sealed", "key_id", DUO_SEAL_COL_PEND, "secret_version"},
    {"retired_secrets", "sealed", "key_id", DUO_SEAL_COL_RETIRED, "n"},
    {"issuing_ca", "key_sealed", "CAST('" DUO_CA_SEAL_ID "' AS BLOB)", DUO_CA_SEAL_COLUMN, "1"},
    {"rp_ca", "key_sealed", "CAST('" DUO_RP_CA_SEAL_ID "' AS BLOB)", DUO_RP_CA_SEAL_COLUMN, "1"},
};

const size_t duo_sealed_columns_count = sizeof duo_sealed_columns / sizeof duo_sealed_columns[0];
