/* duosign-cloud: a citizen's key for a relying party's request (rp_keys.h). */
#include "rp_keys.h"

#include <string.h>

typedef struct {
    int kind;
    uint8_t *cert;
    size_t *cert_len;
    int64_t best;
} role_find;

static int cert_cb(void *data, const duo_cert_row *row) {
    role_find *f = data;
    if (row->revoked || row->issued_at < f->best) return 0;
    f->best = row->issued_at;
    f->kind = row->role == DUO_CERT_ROLE_AUTH ? DUO_RPQ_AUTH : DUO_RPQ_SIGN;
    if (f->cert && row->der_len <= DUO_CERT_DER_MAX) {
        memcpy(f->cert, row->der, row->der_len);
        *f->cert_len = row->der_len;
    }
    return 0;
}

int duo__rp_key_role(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int *kind, uint8_t *cert,
                     size_t *cert_len) {
    role_find f = {.kind = 0, .cert = cert, .cert_len = cert_len, .best = INT64_MIN};
    int r = duo_keystore_cert_list(ks, key_id, cert_cb, &f);
    if (r != DUO_OK && r != DUO_E_UNSUPPORTED) return r;
    if (f.kind == 0) return DUO_E_NOT_FOUND;
    *kind = f.kind;
    return DUO_OK;
}

typedef struct {
    duo_keystore *ks;
    int kind, found;
} citizen_find;

static int key_cb(void *data, const duo_key_info *ki) {
    citizen_find *c = data;
    int kind = 0;
    if (ki->state != DUO_KEY_STATE_ACTIVE) return 0;
    if (duo__rp_key_role(c->ks, ki->key_id, &kind, NULL, NULL) == DUO_OK && kind == c->kind) c->found = 1;
    return c->found;
}

int duo__rp_citizen_usable(duo_keystore *ks, const char *citizen, int kind) {
    citizen_find c = {.ks = ks, .kind = kind, .found = 0};
    int r = duo_keystore_key_list(ks, citizen, key_cb, &c);
    return (r == DUO_OK || r == 1) && c.found;
}
