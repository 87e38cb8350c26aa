/* duosign-oidc: its calls to duosign-cloud's RelyingParty service
 * (proto/relying_party.proto) over gRPC with a TLS client certificate, on
 * libduosign-device-grpc's transport (duo_grpc_transport_new_mtls).
 * A channel per call: the login page's long polls run in parallel on the
 * HTTP server's threads, and a transport object is single-threaded. */
#ifndef DUOSIGN_OIDC_RPCLIENT_H
#define DUOSIGN_OIDC_RPCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

typedef struct {
    const char *target; /* duosign-cloud's HOST:PORT */
    char *ca_pem;       /* the cloud's TLS CA */
    char *cert_pem;     /* this provider's RP client certificate */
    char *key_pem;      /* its key (SECRET) */
} rp_config;

enum { RP_RUNNING = 1, RP_COMPLETE = 2 };
/* End results, as GetSessionResponse.EndResult. */
enum { RP_OK = 1, RP_USER_REFUSED, RP_TIMEOUT, RP_ACCOUNT_UNUSABLE, RP_PIN_LOCKED, RP_CANCELLED };

typedef struct {
    char session_id[64];
    char verification_code[8];
    char link[512];
    int64_t expires_at;
} rp_started;

typedef struct {
    int state, result;
    uint8_t signature[64], signed_digest[32], server_random[64];
    size_t server_random_len;
    uint8_t certificate[4096];
    size_t certificate_len;
    char citizen_id[128];
} rp_session;

/* StartAuthentication with no citizen id (the answer's link goes in the QR).
 * Returns: DUO_OK; transport errors (device_grpc.h); DUO_E_BAD_FIELD when
 *          the answer's fields do not fit (no session id, code not 4 digits,
 *          no link). */
DUO_WARN_UNUSED_RESULT int rp_start_auth(const rp_config *c, const char *request_id, const uint8_t challenge[32],
                                         const char *display_text, rp_started *out, char *err, size_t err_cap);

/* GetSession, long poll of at most timeout_ms. Checks the answer's lengths
 * (signature 64, digest 32, server random 32, certificate present) for
 * a COMPLETE/OK session before the caller reads them.
 * Returns: DUO_OK; DUO_E_BAD_FIELD; transport errors. */
DUO_WARN_UNUSED_RESULT int rp_get_session(const rp_config *c, const char *session_id, unsigned timeout_ms,
                                          rp_session *out, char *err, size_t err_cap);

#endif
