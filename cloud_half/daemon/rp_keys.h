/* duosign-cloud: which of a citizen's keys answers a relying party's request.
 *
 * A key's role (authentication or signing) is keys.role (schema v7, branch
 * certs3); an RP gets a signature and the certificate that verifies it, so
 * a key without a role or without a good certificate cannot answer
 * (ACCOUNT_UNUSABLE). The certificate returned is the key's newest good
 * one. */
#ifndef DUOSIGN_CLOUD_RP_KEYS_H
#define DUOSIGN_CLOUD_RP_KEYS_H

#include "certstore.h"
#include "rp_room.h"

/* The role of key_id (DUO_RPQ_AUTH or DUO_RPQ_SIGN, from keys.role) and its
 * newest good certificate. Returns DUO_OK; DUO_E_NOT_FOUND (no such key, no
 * role, or no good certificate); store errors. */
int duo__rp_key_role(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int *kind, uint8_t *cert,
                     size_t *cert_len);

/* 1 if the citizen has an active key of this kind with a good certificate. */
int duo__rp_citizen_usable(duo_keystore *ks, const char *citizen, int kind);

#endif
