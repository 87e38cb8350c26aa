/* The issuing CA's and the certificates' part of the key store: sealing of
 * the CA key above the backend, argument checks, then the backend's ops.
 * See certstore.h. */
#include "certstore.h"

#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "keystore_internal.h"

#define CA_SEAL_VERSION 1

int duo__citizen_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n > DUO_CITIZEN_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) /* control characters would break the subject and the logs */
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return 0;
    return 1;
}

static int have_cert_ops(const duo_keystore *ks) { return ks->be.ops->ca_insert != NULL; }

static int profile_ok(const duo_ca_row *p) {
    size_t n = strnlen(p->crl_url, sizeof p->crl_url);
    return p->cert_days > 0 && p->cert_days <= 36500 && strnlen(p->country, sizeof p->country) == 2 &&
           p->country[0] >= 'A' && p->country[0] <= 'Z' && p->country[1] >= 'A' && p->country[1] <= 'Z' && n > 0 &&
           n <= DUO_CRL_URL_MAX;
}

int duo_keystore_ca_create(duo_keystore *ks, const uint8_t *cert, size_t cert_len, const uint8_t *key_der,
                           size_t key_len, const duo_ca_row *profile, const duo_audit_event *ev) {
    duo_ca_row *row;
    int r;
    if (ks == NULL || cert == NULL || key_der == NULL || profile == NULL || cert_len == 0 ||
        cert_len > DUO_CERT_DER_MAX || key_len == 0 || key_len > DUO_CA_KEY_MAX || !profile_ok(profile))
        return DUO_E_INVALID_ARG;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((row = calloc(1, sizeof *row)) == NULL) return DUO_E_NOMEM;
    memcpy(row->cert, cert, cert_len);
    row->cert_len = cert_len;
    row->cert_days = profile->cert_days;
    memcpy(row->country, profile->country, sizeof row->country);
    memcpy(row->crl_url, profile->crl_url, sizeof row->crl_url);
    r = duo_seal_encrypt(&ks->kek, row->key.data, sizeof row->key.data, &row->key.len, (const uint8_t *)DUO_CA_SEAL_ID,
                         strlen(DUO_CA_SEAL_ID), DUO_CA_SEAL_COLUMN, CA_SEAL_VERSION, key_der, key_len, ks->cfg.rng);
    if (r == DUO_OK) r = ks->be.ops->ca_insert(ks->be.impl, row, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    duo_memzero(row, sizeof *row);
    free(row);
    return r;
}

int duo_keystore_ca_get(duo_keystore *ks, uint8_t *cert, size_t cert_cap, size_t *cert_len, uint8_t *key,
                        size_t key_cap, size_t *key_len, duo_ca_row *profile) {
    duo_ca_row *row = NULL;
    int r;
    if (cert_len != NULL) *cert_len = 0;
    if (key_len != NULL) *key_len = 0;
    if (ks == NULL || cert == NULL || cert_len == NULL || (key != NULL && key_len == NULL)) return DUO_E_INVALID_ARG;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    if ((row = calloc(1, sizeof *row)) == NULL) return DUO_E_NOMEM;
    if ((r = ks->be.ops->ca_get(ks->be.impl, row)) != DUO_OK) goto out;
    if (row->cert_len > cert_cap) {
        r = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    if (key != NULL &&
        (r = duo__ks_open_any(ks, key, key_cap, key_len, (const uint8_t *)DUO_CA_SEAL_ID, strlen(DUO_CA_SEAL_ID),
                              DUO_CA_SEAL_COLUMN, CA_SEAL_VERSION, row->key.data, row->key.len)) != DUO_OK)
        goto out;
    memcpy(cert, row->cert, row->cert_len);
    *cert_len = row->cert_len;
    if (profile != NULL) {
        memset(profile, 0, sizeof *profile);
        profile->cert_days = row->cert_days;
        memcpy(profile->country, row->country, sizeof profile->country);
        memcpy(profile->crl_url, row->crl_url, sizeof profile->crl_url);
        profile->crl_number = row->crl_number;
        profile->created_at = row->created_at;
    }
out:
    if (r != DUO_OK) {
        duo_memzero(cert, cert_cap);
        if (key != NULL) duo_memzero(key, key_cap);
        if (key_len != NULL) *key_len = 0;
    }
    duo_memzero(row, sizeof *row);
    free(row);
    return r;
}

int duo_keystore_ca_next_crl(duo_keystore *ks, uint64_t *number, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || number == NULL) return DUO_E_INVALID_ARG;
    *number = 0;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    return duo__ks_written(ks, ks->be.ops->ca_next_crl(ks->be.impl, number, ev, duo__ks_now(ks)));
}

int duo_keystore_cert_insert(duo_keystore *ks, const duo_cert_row *row, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || row == NULL || row->serial_len == 0 || row->serial_len > DUO_CERT_SERIAL_MAX ||
        row->der_len == 0 || row->der_len > DUO_CERT_DER_MAX ||
        (row->role != DUO_CERT_ROLE_AUTH && row->role != DUO_CERT_ROLE_SIGN) ||
        (row->origin != DUO_CERT_ISSUED && row->origin != DUO_CERT_IMPORTED) || row->revoked)
        return DUO_E_INVALID_ARG;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    return duo__ks_written(ks, ks->be.ops->cert_insert(ks->be.impl, row, ev, duo__ks_now(ks)));
}

int duo_keystore_cert_list(duo_keystore *ks, const uint8_t *key_id, duo_cert_cb cb, void *data) {
    if (ks == NULL || cb == NULL) return DUO_E_INVALID_ARG;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    return ks->be.ops->cert_list(ks->be.impl, key_id, cb, data);
}

int duo_keystore_cert_revoke_key(duo_keystore *ks, size_t *n_revoked, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                 int reason, const duo_audit_event *ev) {
    size_t n = 0;
    int r;
    if (n_revoked != NULL) *n_revoked = 0;
    if (ks == NULL || key_id == NULL || reason < 0 || reason > 10) return DUO_E_INVALID_ARG;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    r = ks->be.ops->cert_revoke_key(ks->be.impl, &n, key_id, reason, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    if (r == DUO_OK && n_revoked != NULL) *n_revoked = n;
    return r;
}

int duo_keystore_key_citizen_name(duo_keystore *ks, char name[DUO_CITIZEN_NAME_MAX + 1],
                                  const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    if (name != NULL) name[0] = '\0';
    if (ks == NULL || name == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if (!have_cert_ops(ks)) return DUO_E_UNSUPPORTED;
    return ks->be.ops->key_name_get(ks->be.impl, name, key_id);
}

const char *duo_cert_role_name(int role) {
    return role == DUO_CERT_ROLE_AUTH ? "auth" : role == DUO_CERT_ROLE_SIGN ? "sign" : "unknown";
}

int duo_cert_role_from_name(const char *name) {
    if (name == NULL) return 0;
    if (strcmp(name, "auth") == 0) return DUO_CERT_ROLE_AUTH;
    if (strcmp(name, "sign") == 0) return DUO_CERT_ROLE_SIGN;
    return 0;
}
