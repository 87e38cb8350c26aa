/* duosign: a transport for libduosign-device on the gRPC C core
 * (libduosign-device-grpc). Apps with their own HTTP/2 or gRPC stack do not
 * need it: any function of type duo_device_transport_fn will do.
 *
 *   duo_grpc_transport *t;
 *   duo_grpc_transport_new(&t, "signer.example:443", ca_pem, ca_pem_len, 0);
 *   duo_device_set_transport(ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, t);
 *   ...
 *   duo_device_ctx_free(ctx);
 *   duo_grpc_transport_free(t);
 *
 * One channel per transport object; calls are unary and blocking, one at a
 * time per object (a transport object is single-threaded, like the context
 * it serves). grpc_init()/grpc_shutdown() are called by _new/_free (they are
 * reference counted inside gRPC). */
#ifndef DUOSIGN_DEVICE_GRPC_H
#define DUOSIGN_DEVICE_GRPC_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/device.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DUO_GRPC_DEFAULT_TIMEOUT_MS 30000u

typedef struct duo_grpc_transport duo_grpc_transport;

/* Creates a transport to target ("host:port").
 *
 * Returns: DUO_OK, DUO_E_INVALID_ARG, DUO_E_NOMEM, DUO_E_BAD_CA (ca_pem
 *          holds no "-----BEGIN CERTIFICATE-----" ... "-----END
 *          CERTIFICATE-----" block), DUO_E_INTERNAL (gRPC refused the
 *          channel or credentials).
 * Out:     out: free with duo_grpc_transport_free (after the last call).
 * In:      target:     "host:port"; the server certificate must name host
 *                      (IP or DNS SAN).
 *          ca_pem:     the pinned CA certificate(s), PEM, the only roots
 *                      trusted for this server (copied). NULL: plaintext
 *                      (tests only: no confidentiality, no server identity).
 *          ca_pem_len: its length (the text need not be NUL-terminated).
 *          timeout_ms: per-call deadline; 0 means DUO_GRPC_DEFAULT_TIMEOUT_MS. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_grpc_transport_new(duo_grpc_transport **out, const char *target,
                                                          const char *ca_pem, size_t ca_pem_len, unsigned timeout_ms);
/* As duo_grpc_transport_new, presenting a TLS client certificate: how a
 * relying party (duosign-rp, docs/RELYING_PARTIES.md) authenticates to the
 * RelyingParty service. client_cert_pem and client_key_pem (NUL-terminated
 * PEM; the key SECRET, copied by gRPC: the caller wipes its own) are both
 * given or both NULL (then it is duo_grpc_transport_new); ca_pem is required
 * with them. Returns as duo_grpc_transport_new. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_grpc_transport_new_mtls(duo_grpc_transport **out, const char *target,
                                                               const char *ca_pem, size_t ca_pem_len,
                                                               const char *client_cert_pem, const char *client_key_pem,
                                                               unsigned timeout_ms);

/* Closes the channel and frees t. NULL is a no-op. */
DUO_API void duo_grpc_transport_free(duo_grpc_transport *t);

/* A duo_device_transport_fn: user is the duo_grpc_transport.
 * Error mapping: a "duo-error" trailing metadata entry (decimal duosign
 * code) wins, except that the server's DUO_E_UNAVAILABLE (it answered, so
 * it is reachable, but refuses work for now: session cap, full queue)
 * becomes DUO_E_SERVER_BUSY ("server at HOST:PORT is busy: ..."; retry
 * later); else UNAVAILABLE after a failed TLS handshake (the certificate
 * does not verify under the pinned CA or does not name the host) ->
 * DUO_E_TLS_UNTRUSTED; other UNAVAILABLE -> DUO_E_UNAVAILABLE ("server
 * unreachable at HOST:PORT: ..."), DEADLINE_EXCEEDED -> DUO_E_TIMEOUT, UNAUTHENTICATED ->
 * DUO_E_UNAUTHENTICATED, PERMISSION_DENIED -> DUO_E_PERMISSION,
 * RESOURCE_EXHAUSTED -> DUO_E_MSG_TOO_LARGE, NOT_FOUND -> DUO_E_NOT_FOUND,
 * UNIMPLEMENTED -> DUO_E_UNSUPPORTED, others -> DUO_E_IO. errmsg gets the
 * status details. */
DUO_API int duo_grpc_transport_call(void *user, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                                    size_t *resp_len, char *errmsg, size_t errmsg_cap);

/* gRPC core's own log lines (connection failures, TLS errors, ...), which
 * gRPC otherwise writes to stderr. */
#define DUO_GRPC_LOG_DEBUG 0
#define DUO_GRPC_LOG_INFO 1
#define DUO_GRPC_LOG_ERROR 2
typedef void (*duo_grpc_log_fn)(void *user, int severity, const char *file, int line, const char *message);

/* Routes gRPC core's log lines of at least min_severity (DUO_GRPC_LOG_*) to
 * fn(user, severity, file, line, message); fn NULL drops them all. gRPC's
 * logger is process-wide, so this setting is too: call it once, before the
 * first duo_grpc_transport_new, not concurrently with any call. */
DUO_API void duo_grpc_set_log(duo_grpc_log_fn fn, void *user, int min_severity);

/* A duo_device_transport_free_fn for responses of duo_grpc_transport_call. */
DUO_API void duo_grpc_transport_free_resp(void *user, uint8_t *resp, size_t resp_len);

#ifdef __cplusplus
}
#endif
#endif
