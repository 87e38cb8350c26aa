/* duosign-cloud: which of a citizen's keys answers a relying party's request.
 *
 * A key's role (authentication or signing) is, on this branch, the role of
 * its good certificate (certificates.role, schema v4): an RP gets a
 * signature and the certificate that verifies it, so an uncertified key
 * cannot answer (ACCOUNT_UNUSABLE). When keys.role (schema v7, branch
 * certs3) is merged, key_role reads it instead and the certificate stays
 * what is returned. */
#ifndef DUOSIGN_CLOUD_RP_KEYS_H
#define DUOSIGN_CLOUD_RP_KEYS_H

#include "certstore.h"
#include "rp_room.h"

/* The role of key_id (DUO_RPQ_AUTH or DUO_RPQ_SIGN) and its newest good
 * certificate. Returns DUO_OK; DUO_E_NOT_FOUND (no good certificate). */
int duo__rp_key_role(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int *kind, uint8_t *cert,
                     size_t *cert_len);

/* 1 if the citizen has an active key of this kind with a good certificate. */
int duo__rp_citizen_usable(duo_keystore *ks, const char *citizen, int kind);

#endif
