/* A simulated phone for the reliability tests: the public device library
 * (duosign/device.h) with the gRPC transport (duosign/device_grpc.h), and a
 * byte buffer standing for the app's durable storage. The only thing that
 * survives a "device restart" (rel_dev_reload) is that stored blob, exactly
 * as on a phone that is killed and opened again. Header-only. */
#ifndef DUO_REL_DEVICE_H
#define DUO_REL_DEVICE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "duo_it.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"

typedef struct {
    duo_device_ctx *ctx;
    duo_grpc_transport *t;
    uint8_t *blob; /* the durable copy (what the app stored) */
    size_t blob_len;
    uint8_t key_id[16];
    uint8_t pub[33];
    char key_hex[33];
    char citizen[48];
    int acked; /* the cloud acknowledged the enrolment (confirm returned OK) */
    int signs; /* signatures verified */
} rel_dev;

static char *rel_ca_pem;
static size_t rel_ca_len;
static char rel_addr[64];
static unsigned rel_timeout_ms = 20000;

static __attribute__((unused)) int rel_load_ca(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/ca.pem", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    rel_ca_pem = calloc(1, 1 << 16);
    rel_ca_len = fread(rel_ca_pem, 1, (1 << 16) - 1, f);
    fclose(f);
    return rel_ca_len > 0 ? 0 : -1;
}

static void rel_dev_close(rel_dev *d) {
    duo_device_ctx_free(d->ctx);
    d->ctx = NULL;
    duo_grpc_transport_free(d->t);
    d->t = NULL;
}

/* A fresh context and channel (no key). */
static int rel_dev_open(rel_dev *d) {
    rel_dev_close(d);
    if (duo_device_ctx_new(&d->ctx) != DUO_OK) return -1;
    if (duo_grpc_transport_new(&d->t, rel_addr, rel_ca_pem, rel_ca_len, rel_timeout_ms) != DUO_OK) return -1;
    if (duo_device_set_transport(d->ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, d->t) != DUO_OK)
        return -1;
    return 0;
}

/* The app restarts: a new context from the stored blob only. */
static __attribute__((unused)) int rel_dev_reload(rel_dev *d) {
    if (rel_dev_open(d) != 0) return -1;
    return d->blob && duo_device_state_import(d->ctx, d->blob, d->blob_len) == DUO_OK ? 0 : -1;
}

/* Export, "write durably" (replace the stored blob), then tell the library. */
static int rel_dev_store(rel_dev *d) {
    uint8_t *b = NULL;
    size_t n = 0;
    if (duo_device_state_export(d->ctx, &b, &n) != DUO_OK) return -1;
    duo_device_blob_free(d->blob, d->blob_len);
    d->blob = b;
    d->blob_len = n;
    return duo_device_state_persisted(d->ctx) == DUO_OK ? 0 : -1;
}

static __attribute__((unused)) void rel_dev_free(rel_dev *d) {
    rel_dev_close(d);
    duo_device_blob_free(d->blob, d->blob_len);
    d->blob = NULL;
    d->blob_len = 0;
}

static void rel_hex(char *out, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* After a successful enrolment step 1: remember key id and public key. */
static __attribute__((unused)) int rel_dev_note_key(rel_dev *d) {
    if (duo_device_key_id(d->ctx, d->key_id) != DUO_OK || duo_device_pubkey(d->ctx, d->pub) != DUO_OK) return -1;
    rel_hex(d->key_hex, d->key_id, 16);
    return 0;
}

/* Signs SHA-256(text) and checks the result with OpenSSL. Returns the
 * library's code; DUO_E_BAD_SIGNATURE if OpenSSL rejects it (never
 * expected). On success the new state is stored. */
static __attribute__((unused)) int rel_dev_sign(rel_dev *d, const char *text, size_t pin_len, const char *pin) {
    uint8_t dg[32], sig[64];
    SHA256((const unsigned char *)text, strlen(text), dg);
    int r = duo_device_sign(d->ctx, sig, dg, (const uint8_t *)pin, pin_len);
    if (r != DUO_OK) return r;
    if (!duo_it_openssl_verify(d->pub, dg, sig)) return DUO_E_BAD_SIGNATURE;
    if (rel_dev_store(d) != 0) return DUO_E_INTERNAL;
    d->signs++;
    return DUO_OK;
}

/* Errors a crash of the daemon may legitimately cause for a request in
 * flight: the transport failed, or the session died with the process. A
 * daemon that is stopping refuses queued calls with "server busy; retry
 * later", which the gRPC transport reports as DUO_E_SERVER_BUSY. */
static __attribute__((unused)) int rel_crash_err(int r) {
    return r == DUO_E_UNAVAILABLE || r == DUO_E_SERVER_BUSY || r == DUO_E_TIMEOUT || r == DUO_E_IO ||
           r == DUO_E_NOT_FOUND || r == DUO_E_SESSION_EXPIRED || r == DUO_E_SESSION_FAILED || r == DUO_E_PROTO_STATE ||
           /* the inner channel's session died with the daemon (round 2 after a restart): start again */
           r == DUO_E_CHANNEL_UNKNOWN;
}

#endif
