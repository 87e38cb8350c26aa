/* duosign-cloud: a citizen's key for a relying party's request (rp_keys.h). */
#include "rp_keys.h"

#include <string.h>

#include "duosign/mem.h"

typedef struct {
    uint8_t *cert;
    size_t *cert_len;
    int64_t best;
    int found;
} cert_find;

/* The newest good certificate of the key (what the RP verifies with). */
static int cert_cb(void *data, const duo_cert_row *row) {
    cert_find *f = data;
    if (row->revoked || row->issued_at < f->best) return 0;
    f->best = row->issued_at;
    f->found = 1;
    if (f->cert && row->der_len <= DUO_CERT_DER_MAX) {
        memcpy(f->cert, row->der, row->der_len);
        *f->cert_len = row->der_len;
    }
    return 0;
}

/* keys.role (schema v7) as a request kind; 0 for a key without a role. */
static int kind_of_role(int role) {
    return role == DUO_KEY_ROLE_AUTH ? DUO_RPQ_AUTH : role == DUO_KEY_ROLE_SIGN ? DUO_RPQ_SIGN : 0;
}

/* The key's kind is its role; it answers only with a good certificate. */
static int key_kind(duo_keystore *ks, const duo_key_info *ki, int *kind, uint8_t *cert, size_t *cert_len) {
    cert_find f = {.cert = cert, .cert_len = cert_len, .best = INT64_MIN, .found = 0};
    if (kind_of_role(ki->role) == 0) return DUO_E_NOT_FOUND;
    int r = duo_keystore_cert_list(ks, ki->key_id, cert_cb, &f);
    if (r != DUO_OK && r != DUO_E_UNSUPPORTED) return r;
    if (!f.found) return DUO_E_NOT_FOUND;
    *kind = kind_of_role(ki->role);
    return DUO_OK;
}

int duo__rp_key_role(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int *kind, uint8_t *cert,
                     size_t *cert_len) {
    duo_key_info ki;
    int r = duo_keystore_key_get(ks, &ki, NULL, key_id);
    if (r == DUO_OK) r = key_kind(ks, &ki, kind, cert, cert_len);
    duo_memzero(&ki, sizeof ki);
    return r;
}

typedef struct {
    duo_keystore *ks;
    int kind, found;
} citizen_find;

static int key_cb(void *data, const duo_key_info *ki) {
    citizen_find *c = data;
    int kind = 0;
    if (ki->state != DUO_KEY_STATE_ACTIVE) return 0;
    if (key_kind(c->ks, ki, &kind, NULL, NULL) == DUO_OK && kind == c->kind) c->found = 1;
    return c->found;
}

int duo__rp_citizen_usable(duo_keystore *ks, const char *citizen, int kind) {
    citizen_find c = {.ks = ks, .kind = kind, .found = 0};
    int r = duo_keystore_key_list(ks, citizen, key_cb, &c);
    return (r == DUO_OK || r == 1) && c.found;
}
