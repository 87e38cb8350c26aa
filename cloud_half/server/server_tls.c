/* duosign cloud: the server's TLS certificate, replaceable while serving
 * (server_tls.h). */
#include "server_tls.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/errors.h"
#include "duosign/mem.h"

struct duo_server_tls {
    pthread_mutex_t mu; /* guards cert, key, key_len, fresh */
    char *cert, *key;   /* until gRPC takes them; key: SECRET (the TLS private key), wiped when handed over,
                           replaced or freed */
    size_t key_len;
    int fresh;       /* 1: not handed to gRPC yet */
    char *client_ca; /* NULL: no client certificate asked; else the roots a client's must chain to (kept) */
};

static void key_wipe(duo_server_tls *t) {
    if (t->key) {
        duo_memzero(t->key, t->key_len);
        free(t->key);
    }
    t->key = NULL;
    t->key_len = 0;
}

int duo__server_tls_new(duo_server_tls **out, const char *cert_pem, const char *key_pem) {
    *out = NULL;
    duo_server_tls *t = calloc(1, sizeof *t);
    if (!t) return DUO_E_NOMEM;
    pthread_mutex_init(&t->mu, NULL);
    int r = duo__server_tls_set(t, cert_pem, key_pem);
    if (r != DUO_OK) {
        duo__server_tls_free(t);
        return r;
    }
    *out = t;
    return DUO_OK;
}

int duo__server_tls_set(duo_server_tls *t, const char *cert_pem, const char *key_pem) {
    char *c = strdup(cert_pem), *k = strdup(key_pem);
    if (!c || !k) {
        free(c);
        if (k) {
            duo_memzero(k, strlen(k));
            free(k);
        }
        return DUO_E_NOMEM;
    }
    pthread_mutex_lock(&t->mu);
    free(t->cert);
    key_wipe(t);
    t->cert = c;
    t->key = k;
    t->key_len = strlen(k);
    t->fresh = 1;
    pthread_mutex_unlock(&t->mu);
    return DUO_OK;
}

/* gRPC's fetcher: called at credential creation and at every handshake. */
static grpc_ssl_certificate_config_reload_status fetch(void *user, grpc_ssl_server_certificate_config **config) {
    duo_server_tls *t = user;
    grpc_ssl_certificate_config_reload_status st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    pthread_mutex_lock(&t->mu);
    if (t->fresh) {
        /* grpc_ssl_server_certificate_config_create copies the strings.
         * gRPC insists on root certificates even though no client
         * certificate is requested (they would only verify one): the chain
         * itself, never used. */
        grpc_ssl_pem_key_cert_pair kp = {t->key, t->cert};
        *config = grpc_ssl_server_certificate_config_create(t->client_ca ? t->client_ca : t->cert, &kp, 1);
        if (*config) {
            /* gRPC holds its copy now: ours goes, one copy of the key fewer. */
            t->fresh = 0;
            key_wipe(t);
            free(t->cert);
            t->cert = NULL;
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
        } else {
            st = GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
        }
    }
    pthread_mutex_unlock(&t->mu);
    return st;
}

int duo__server_tls_client_ca(duo_server_tls *t, const char *ca_pem) {
    char *c = strdup(ca_pem);
    if (!c) return DUO_E_NOMEM;
    pthread_mutex_lock(&t->mu);
    free(t->client_ca);
    t->client_ca = c;
    pthread_mutex_unlock(&t->mu);
    return DUO_OK;
}

grpc_server_credentials *duo__server_tls_credentials(duo_server_tls *t) {
    /* With client roots the handshake fails without a client certificate
     * that chains to them: an unauthenticated peer never reaches a handler. */
    grpc_ssl_server_credentials_options *o = grpc_ssl_server_credentials_create_options_using_config_fetcher(
        t->client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        fetch, t);
    if (!o) return NULL;
    return grpc_ssl_server_credentials_create_with_options(o); /* takes o */
}

void duo__server_tls_free(duo_server_tls *t) {
    if (!t) return;
    free(t->cert);
    free(t->client_ca);
    key_wipe(t);
    pthread_mutex_destroy(&t->mu);
    free(t);
}
