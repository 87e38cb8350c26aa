/* The relying parties' part of the key store: sealing of the RP CA key above
 * the backend, argument checks, then the backend's ops. See rpstore.h. */
#include "rpstore.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "duosign/mem.h"
#include "duosign/rp_digest.h"
#include "keystore_internal.h"

#define RP_CA_SEAL_VERSION 1

static int have_rp_ops(const duo_keystore *ks) { return ks->be.ops->rp_insert != NULL; }

int duo_rp_name_ok(const char *name) {
    /* The display-text rule (UTF-8, no control characters) with the name's
     * length, and no newline: a name is one line on the device. */
    return name != NULL && strlen(name) <= DUO_RP_ROW_NAME_MAX && strchr(name, '\n') == NULL &&
           duo_rp_display_text_ok(name);
}

int duo_keystore_rp_ca_create(duo_keystore *ks, const uint8_t *cert, size_t cert_len, const uint8_t *key_der,
                              size_t key_len, const duo_audit_event *ev) {
    duo_ca_row *row;
    int r;
    if (ks == NULL || cert == NULL || key_der == NULL || cert_len == 0 || cert_len > DUO_CERT_DER_MAX || key_len == 0 ||
        key_len > DUO_CA_KEY_MAX)
        return DUO_E_INVALID_ARG;
    if (!have_rp_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((row = calloc(1, sizeof *row)) == NULL) return DUO_E_NOMEM;
    memcpy(row->cert, cert, cert_len);
    row->cert_len = cert_len;
    r = duo_seal_encrypt(&ks->kek, row->key.data, sizeof row->key.data, &row->key.len,
                         (const uint8_t *)DUO_RP_CA_SEAL_ID, strlen(DUO_RP_CA_SEAL_ID), DUO_RP_CA_SEAL_COLUMN,
                         RP_CA_SEAL_VERSION, key_der, key_len, ks->cfg.rng);
    if (r == DUO_OK) r = ks->be.ops->rp_ca_insert(ks->be.impl, row, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    duo_memzero(row, sizeof *row);
    free(row);
    return r;
}

int duo_keystore_rp_ca_get(duo_keystore *ks, uint8_t *cert, size_t cert_cap, size_t *cert_len, uint8_t *key,
                           size_t key_cap, size_t *key_len) {
    duo_ca_row *row = NULL;
    int r;
    if (cert_len != NULL) *cert_len = 0;
    if (key_len != NULL) *key_len = 0;
    if (ks == NULL || cert == NULL || cert_len == NULL || (key != NULL && key_len == NULL)) return DUO_E_INVALID_ARG;
    if (!have_rp_ops(ks)) return DUO_E_UNSUPPORTED;
    if ((row = calloc(1, sizeof *row)) == NULL) return DUO_E_NOMEM;
    if ((r = ks->be.ops->rp_ca_get(ks->be.impl, row)) != DUO_OK) goto out;
    if (row->cert_len > cert_cap) {
        r = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    if (key != NULL &&
        (r = duo__ks_open_any(ks, key, key_cap, key_len, (const uint8_t *)DUO_RP_CA_SEAL_ID, strlen(DUO_RP_CA_SEAL_ID),
                              DUO_RP_CA_SEAL_COLUMN, RP_CA_SEAL_VERSION, row->key.data, row->key.len)) != DUO_OK)
        goto out;
    memcpy(cert, row->cert, row->cert_len);
    *cert_len = row->cert_len;
out:
    if (r != DUO_OK && key != NULL) duo_memzero(key, key_cap);
    duo_memzero(row, sizeof *row);
    free(row);
    return r;
}

int duo_keystore_rp_add(duo_keystore *ks, const duo_rp_row *row, const duo_audit_event *ev) {
    duo_rp_row *w;
    int r;
    if (ks == NULL || row == NULL || row->cert_len == 0 || row->cert_len > DUO_CERT_DER_MAX) return DUO_E_INVALID_ARG;
    if (!duo_rp_name_ok(row->name)) return DUO_E_RP_NAME;
    if (!have_rp_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((w = malloc(sizeof *w)) == NULL) return DUO_E_NOMEM;
    *w = *row;
    SHA256(w->cert, w->cert_len, w->cert_sha256);
    r = duo__ks_written(ks, ks->be.ops->rp_insert(ks->be.impl, w, ev, duo__ks_now(ks)));
    free(w);
    return r;
}

int duo_keystore_rp_remove(duo_keystore *ks, const char *name, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || name == NULL) return DUO_E_INVALID_ARG;
    if (!have_rp_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    return duo__ks_written(ks, ks->be.ops->rp_remove(ks->be.impl, name, ev, duo__ks_now(ks)));
}

int duo_keystore_rp_by_cert(duo_keystore *ks, const uint8_t cert_sha256[32], duo_rp_row *row) {
    if (ks == NULL || cert_sha256 == NULL || row == NULL) return DUO_E_INVALID_ARG;
    if (!have_rp_ops(ks)) return DUO_E_UNSUPPORTED;
    return ks->be.ops->rp_by_cert(ks->be.impl, cert_sha256, row);
}

int duo_keystore_rp_list(duo_keystore *ks, duo_rp_cb cb, void *data) {
    if (ks == NULL || cb == NULL) return DUO_E_INVALID_ARG;
    if (!have_rp_ops(ks)) return DUO_E_UNSUPPORTED;
    return ks->be.ops->rp_list(ks->be.impl, cb, data);
}
