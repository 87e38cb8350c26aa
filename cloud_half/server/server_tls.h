/* duosign cloud: the server's TLS certificate, replaceable while serving.
 *
 * gRPC asks a certificate-config fetcher at every new TLS handshake; this
 * one hands over a new certificate and key once duo__server_tls_set() has
 * stored them, and "unchanged" otherwise. Connections already open keep the
 * session they negotiated; only new handshakes see the new certificate.
 * Private to the server module (server.c); the public call is
 * duo_server_reload_tls() in server.h. */
#ifndef DUOSIGN_CLOUD_SERVER_TLS_H
#define DUOSIGN_CLOUD_SERVER_TLS_H

#include <grpc/grpc_security.h>

typedef struct duo_server_tls duo_server_tls;

/* Creates the holder with the first certificate chain and key (PEM; copied).
 * Returns DUO_OK, DUO_E_NOMEM. */
int duo__server_tls_new(duo_server_tls **out, const char *cert_pem, const char *key_pem);
/* Asks every client for a certificate that chains to ca_pem (PEM, one or
 * more certificates; copied); call before duo__server_tls_credentials.
 * Returns DUO_OK, DUO_E_NOMEM. */
int duo__server_tls_client_ca(duo_server_tls *tls, const char *ca_pem);
/* Server credentials that ask tls at every handshake (NULL on failure).
 * tls must outlive the server. */
grpc_server_credentials *duo__server_tls_credentials(duo_server_tls *tls);
/* Stores a new certificate chain and key (copied; the old copy of the key
 * is wiped); the next handshake takes them. Thread-safe.
 * Returns DUO_OK, DUO_E_NOMEM. */
int duo__server_tls_set(duo_server_tls *tls, const char *cert_pem, const char *key_pem);
/* Wipes the key copy and frees. NULL is a no-op. */
void duo__server_tls_free(duo_server_tls *tls);

#endif
