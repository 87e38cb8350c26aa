/* duosign-rp redeem (issue 19, docs/DOCUMENTS.md): a verifier redeems a
 * citizen's presentation code once over the RelyingParty service. */
#ifndef DUOSIGN_RP_REDEEM_H
#define DUOSIGN_RP_REDEEM_H

#include "duosign/device_grpc.h"

/* Redeems code (base32 or the 13 barcode digits) for doc_type on t and
 * prints the document (citizen, type, attributes, photo size, when the code
 * was made).
 * Returns: DUO_OK; the service's error (DUO_E_CODE_* , DUO_E_RATE_LIMITED,
 *          ...: the message is printed on stderr); DUO_E_DECODE. */
int duo_rp_redeem(duo_grpc_transport *t, const char *code, const char *doc_type);

#endif
