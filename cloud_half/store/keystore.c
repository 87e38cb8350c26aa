/* The backend-neutral key store: sealing/opening of secret columns, device
 * secret rotation, token and revocation-code hashing, audit verification.
 * Storage and transactions are the backend's, reached only through
 * duo_keystore_backend_ops; which backends exist is drivers.c's business. */
#include "keystore.h"
#include "keystore_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "duosign/mem.h"
#include "mark.h"
#include "sealed_columns.h"

/* Column names bound into the sealing AAD (sealed_columns.h). */
#define COL_X1 DUO_SEAL_COL_X1
#define COL_P DUO_SEAL_COL_P
#define COL_Q DUO_SEAL_COL_Q
#define COL_CUR DUO_SEAL_COL_CUR
#define COL_PEND DUO_SEAL_COL_PEND
#define COL_RETIRED DUO_SEAL_COL_RETIRED

static const char *const state_names[] = {NULL, "pending", "active", "locked", "suspended", "revoked"};

const char *duo_key_state_name(int state) {
    if (state < DUO_KEY_STATE_PENDING || state > DUO_KEY_STATE_REVOKED) return "unknown";
    return state_names[state];
}

int duo_key_state_from_name(const char *name) {
    if (name == NULL) return 0;
    for (int i = DUO_KEY_STATE_PENDING; i <= DUO_KEY_STATE_REVOKED; i++)
        if (strcmp(name, state_names[i]) == 0) return i;
    return 0;
}

const char *duo_key_role_name(int role) {
    static const char *const names[DUO_KEY_ROLE_COUNT] = {"none", "auth", "sign"};
    return role >= 0 && role < DUO_KEY_ROLE_COUNT ? names[role] : "unknown";
}

void duo_key_secrets_clear(duo_key_secrets *s) {
    if (s != NULL) duo_memzero(s, sizeof *s);
}

int duo_store_sha256(uint8_t out[32], const uint8_t *in, size_t len) {
    unsigned int n = 0;
    if (out == NULL || (in == NULL && len > 0)) return DUO_E_INVALID_ARG;
    if (EVP_Digest(in, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) return DUO_E_INTERNAL;
    return DUO_OK;
}

int64_t duo__ks_now(const duo_keystore *ks) {
    if (ks->cfg.clock != NULL) return ks->cfg.clock(ks->cfg.clock_data);
    return (int64_t)time(NULL);
}

int duo_keystore_new(duo_keystore **out, const duo_keystore_backend *be, const duo_kek *kek,
                     const duo_keystore_config *cfg) {
    duo_keystore *ks;
    if (out != NULL) *out = NULL;
    if (be == NULL || be->ops == NULL) return DUO_E_INVALID_ARG;
    if (out == NULL || kek == NULL) {
        be->ops->close(be->impl);
        return DUO_E_INVALID_ARG;
    }
    if ((ks = calloc(1, sizeof *ks)) == NULL) {
        be->ops->close(be->impl);
        return DUO_E_NOMEM;
    }
    ks->be = *be;
    ks->kek = *kek;
    if (cfg != NULL) ks->cfg = *cfg;
    ks->cfg.policy_key = NULL; /* the backend's copy only */
    if (ks->cfg.mark_path != NULL) {
        if (strlen(ks->cfg.mark_path) >= sizeof ks->mark_path) {
            duo_keystore_free(ks);
            return DUO_E_INVALID_ARG;
        }
        memcpy(ks->mark_path, ks->cfg.mark_path, strlen(ks->cfg.mark_path) + 1);
        ks->cfg.mark_path = ks->mark_path;
    }
    *out = ks;
    return DUO_OK;
}

int duo_keystore_open(duo_keystore **out, const duo_keystore_driver *drv, const char *location, const duo_kek *kek,
                      const duo_keystore_config *cfg) {
    duo_keystore_backend be;
    duo_keystore_config c;
    duo_policy_key pk;
    int r;
    if (out != NULL) *out = NULL;
    if (out == NULL || drv == NULL || location == NULL || kek == NULL) return DUO_E_INVALID_ARG;
    memset(&c, 0, sizeof c);
    if (cfg != NULL) c = *cfg;
    if ((r = duo_policy_key_derive(&pk, kek)) != DUO_OK) return r;
    c.policy_key = &pk; /* the backend copies it */
    r = drv->open(&be, location, &c);
    duo_policy_key_clear(&pk);
    c.policy_key = NULL;
    if (r != DUO_OK) return r;
    return duo_keystore_new(out, &be, kek, &c);
}

void duo_keystore_free(duo_keystore *ks) {
    if (ks == NULL) return;
    ks->be.ops->close(ks->be.impl);
    duo_memzero(ks, sizeof *ks);
    free(ks);
}

/* ------------------------------------------------------------ sealing */

/* The KEK a sealed value names, or NULL. */
static const duo_kek *kek_for(const duo_keystore *ks, uint32_t id) {
    if (ks->kek.id == id) return &ks->kek;
    for (size_t i = 0; i < ks->n_others; i++)
        if (ks->others[i].id == id) return &ks->others[i];
    return NULL;
}

/* duo_seal_decrypt with the KEK the value names (keystore_internal.h). */
int duo__ks_open_any(const duo_keystore *ks, uint8_t *out, size_t cap, size_t *n, const uint8_t *aad_id,
                     size_t aad_id_len, const char *col, uint64_t version, const uint8_t *sealed, size_t sealed_len) {
    uint32_t id = 0;
    const duo_kek *kek;
    int r = duo_seal_kek_id(&id, sealed, sealed_len);
    if (r != DUO_OK) return r;
    if ((kek = kek_for(ks, id)) == NULL) return DUO_E_KEK_UNKNOWN;
    return duo_seal_decrypt(kek, out, cap, n, aad_id, aad_id_len, col, version, sealed, sealed_len);
}

static int seal_col(const duo_keystore *ks, duo_sealed_col *c, const uint8_t *key_id, const char *col, uint64_t version,
                    const uint8_t *pt, size_t pt_len) {
    return duo_seal_encrypt(&ks->kek, c->data, sizeof c->data, &c->len, key_id, DUO_KEY_ID_BYTES, col, version, pt,
                            pt_len, ks->cfg.rng);
}

/* Opens c into out, which must then hold exactly want bytes (or 1..want if
 * exact is 0). */
static int open_col(const duo_keystore *ks, uint8_t *out, size_t cap, size_t *got, const uint8_t *key_id,
                    const char *col, uint64_t version, const duo_sealed_col *c, size_t want, int exact) {
    size_t n = 0;
    int r = duo__ks_open_any(ks, out, cap, &n, key_id, DUO_KEY_ID_BYTES, col, version, c->data, c->len);
    if (r == DUO_E_BUFFER_TOO_SMALL) r = DUO_E_STATE_CORRUPT;
    if (r != DUO_OK) return r;
    if ((exact && n != want) || n == 0 || n > want) {
        duo_memzero(out, cap);
        return DUO_E_STATE_CORRUPT;
    }
    if (got != NULL) *got = n;
    return DUO_OK;
}

static int seal_all(const duo_keystore *ks, duo_key_sealed *s, const uint8_t *key_id, uint64_t version,
                    const duo_key_secrets *sec) {
    int r;
    memset(s, 0, sizeof *s);
    if ((r = seal_col(ks, &s->x1, key_id, COL_X1, version, sec->x1, sizeof sec->x1)) != DUO_OK ||
        (r = seal_col(ks, &s->p, key_id, COL_P, version, sec->p, sec->p_len)) != DUO_OK ||
        (r = seal_col(ks, &s->q, key_id, COL_Q, version, sec->q, sec->q_len)) != DUO_OK ||
        (r = seal_col(ks, &s->current, key_id, COL_CUR, version, sec->current, sizeof sec->current)) != DUO_OK)
        return r;
    if (sec->has_pending &&
        (r = seal_col(ks, &s->pending, key_id, COL_PEND, version, sec->pending, sizeof sec->pending)) != DUO_OK)
        return r;
    return DUO_OK;
}

static int open_all(const duo_keystore *ks, duo_key_secrets *sec, const duo_key_info *info, const duo_key_sealed *s) {
    int r;
    const uint8_t *id = info->key_id;
    uint64_t v = info->secret_version;
    memset(sec, 0, sizeof *sec);
    if (info->state == DUO_KEY_STATE_REVOKED) return DUO_OK; /* secrets destroyed */
    if ((r = open_col(ks, sec->x1, sizeof sec->x1, NULL, id, COL_X1, v, &s->x1, DUO_SCALAR_BYTES, 1)) != DUO_OK ||
        (r = open_col(ks, sec->p, sizeof sec->p, &sec->p_len, id, COL_P, v, &s->p, DUO_KEY_PRIME_MAX, 0)) != DUO_OK ||
        (r = open_col(ks, sec->q, sizeof sec->q, &sec->q_len, id, COL_Q, v, &s->q, DUO_KEY_PRIME_MAX, 0)) != DUO_OK ||
        (r = open_col(ks, sec->current, sizeof sec->current, NULL, id, COL_CUR, v, &s->current, DUO_DEVICE_SECRET_BYTES,
                      1)) != DUO_OK)
        goto out;
    if (info->has_pending_secret) {
        if ((r = open_col(ks, sec->pending, sizeof sec->pending, NULL, id, COL_PEND, v, &s->pending,
                          DUO_DEVICE_SECRET_BYTES, 1)) != DUO_OK)
            goto out;
        sec->has_pending = 1;
    }
out:
    if (r != DUO_OK) duo_key_secrets_clear(sec);
    return r;
}

int duo_keystore_kek_add(duo_keystore *ks, const duo_kek *kek) {
    if (ks == NULL || kek == NULL) return DUO_E_INVALID_ARG;
    if (kek_for(ks, kek->id) != NULL) return DUO_E_EXISTS;
    if (ks->n_others >= sizeof ks->others / sizeof ks->others[0]) return DUO_E_INVALID_ARG;
    /* Its policy MAC key too: the rotation's target writes MACs from now. */
    duo_policy_key pk;
    int r = duo_policy_key_derive(&pk, kek);
    if (r == DUO_OK && ks->be.ops->policy_key_add != NULL) r = ks->be.ops->policy_key_add(ks->be.impl, &pk);
    duo_policy_key_clear(&pk);
    if (r != DUO_OK) return r;
    ks->others[ks->n_others++] = *kek;
    return DUO_OK;
}

typedef struct reseal_ctx {
    const duo_keystore *ks;
    const duo_kek *target;
    char *why; /* names the value that failed (may be NULL) */
    size_t why_cap;
} reseal_ctx;

/* "keys.x1_sealed of key 0101..." for an error message (public data only). */
static void name_value(char *why, size_t cap, const duo_sealed_column *col, const duo_sealed_value *v) {
    static const char hex[] = "0123456789abcdef";
    char id[2 * sizeof v->aad_id + 1];
    size_t i;
    if (why == NULL || cap == 0) return;
    for (i = 0; i < v->aad_id_len && i < sizeof v->aad_id; i++) {
        id[2 * i] = hex[v->aad_id[i] >> 4];
        id[2 * i + 1] = hex[v->aad_id[i] & 15];
    }
    id[2 * i] = '\0';
    snprintf(why, cap, "%s.%s of %s, version %llu", col->table, col->column, id, (unsigned long long)v->aad_version);
}

/* Opens v->in with the KEK it names and seals it again under the target,
 * same AAD. The plaintext lives only in a guarded buffer. */
static int reseal_cb(void *data, const duo_sealed_column *col, duo_sealed_value *v) {
    const reseal_ctx *c = data;
    uint8_t *pt = duo_secure_malloc(DUO_SEALED_MAX);
    size_t n = 0;
    int r;
    if (pt == NULL) return DUO_E_NOMEM;
    r = duo__ks_open_any(c->ks, pt, DUO_SEALED_MAX, &n, v->aad_id, v->aad_id_len, col->aad_column, v->aad_version,
                         v->in.data, v->in.len);
    if (r == DUO_OK)
        r = duo_seal_encrypt(c->target, v->out.data, sizeof v->out.data, &v->out.len, v->aad_id, v->aad_id_len,
                             col->aad_column, v->aad_version, pt, n, c->ks->cfg.rng);
    duo_memzero(pt, DUO_SEALED_MAX);
    duo_secure_free(pt);
    if (r != DUO_OK) name_value(c->why, c->why_cap, col, v);
    return r;
}

int duo_keystore_reseal(duo_keystore *ks, uint32_t target_id, size_t max, size_t *n, char *why, size_t why_cap) {
    uint8_t skip[DUO_SEAL_HEADER_LEN];
    reseal_ctx c;
    int r = DUO_OK;
    if (n != NULL) *n = 0;
    if (ks == NULL || n == NULL || max == 0) return DUO_E_INVALID_ARG;
    if (ks->be.ops->sealed_walk == NULL) return DUO_E_UNSUPPORTED;
    if ((c.target = kek_for(ks, target_id)) == NULL) return DUO_E_NOT_FOUND;
    c.ks = ks;
    c.why = why;
    c.why_cap = why_cap;
    if (why != NULL && why_cap > 0) why[0] = '\0';
    /* Values already under the target start with these bytes (seal.h). */
    skip[0] = DUO_SEAL_FORMAT_V2;
    for (int i = 0; i < 4; i++) skip[1 + i] = (uint8_t)(target_id >> (24 - 8 * i));
    for (size_t i = 0; i < duo_sealed_columns_count && *n == 0 && r == DUO_OK; i++)
        r = ks->be.ops->sealed_walk(ks->be.impl, &duo_sealed_columns[i], skip, sizeof skip, max, 1, reseal_cb, &c, n);
    /* Nothing left to re-seal: the policy MACs (keyed from the KEK,
     * policy_mac.h) move to the newest KEK too, before any switch. */
    if (r == DUO_OK && *n == 0 && ks->be.ops->policy_remac != NULL) {
        size_t m = 0;
        r = duo_keystore_policy_remac(ks, &m);
        if (r != DUO_OK && why != NULL && why_cap > 0)
            snprintf(why, why_cap, "the policy MAC of a key row (edited outside duosign?)");
    }
    if (r != DUO_OK) *n = 0;
    return r;
}

typedef struct census_ctx {
    const duo_keystore *ks;
    duo_kek_census *c;
} census_ctx;

static int census_cb(void *data, const duo_sealed_column *col, duo_sealed_value *v) {
    const census_ctx *cc = data;
    duo_kek_census *c = cc->c;
    uint8_t *pt = duo_secure_malloc(DUO_SEALED_MAX);
    size_t n = 0, i;
    uint32_t id = 0;
    int r;
    if (pt == NULL) return DUO_E_NOMEM;
    r = duo__ks_open_any(cc->ks, pt, DUO_SEALED_MAX, &n, v->aad_id, v->aad_id_len, col->aad_column, v->aad_version,
                         v->in.data, v->in.len);
    duo_memzero(pt, DUO_SEALED_MAX);
    duo_secure_free(pt);
    c->total++;
    if (r != DUO_OK) {
        if (c->unopened++ == 0) c->first_error = r;
        return DUO_OK;
    }
    if (duo_seal_kek_id(&id, v->in.data, v->in.len) != DUO_OK) return DUO_E_INTERNAL; /* it opened */
    for (i = 0; i < c->n_ids && c->ids[i] != id; i++) continue;
    if (i == c->n_ids && c->n_ids < DUO_KEK_CENSUS_IDS) c->ids[c->n_ids++] = id;
    if (i < DUO_KEK_CENSUS_IDS) c->counts[i]++;
    return DUO_OK;
}

int duo_keystore_kek_census(duo_keystore *ks, duo_kek_census *out) {
    size_t n = 0;
    int r = DUO_OK;
    if (out != NULL) memset(out, 0, sizeof *out);
    if (ks == NULL || out == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->sealed_walk == NULL) return DUO_E_UNSUPPORTED;
    census_ctx cc = {ks, out};
    for (size_t i = 0; i < duo_sealed_columns_count && r == DUO_OK; i++)
        r = ks->be.ops->sealed_walk(ks->be.impl, &duo_sealed_columns[i], NULL, 0, 0, 0, census_cb, &cc, &n);
    return r;
}

/* ------------------------------------------------------------ keys */

static int citizen_ok(const char *c) {
    size_t n;
    if (c == NULL) return 0;
    n = strlen(c);
    return n > 0 && n <= DUO_CITIZEN_ID_MAX;
}

int duo_keystore_key_insert_pending(duo_keystore *ks, const duo_key_info *info, const duo_key_secrets *sec,
                                    const duo_audit_event *ev) {
    duo_key_info k;
    duo_key_sealed s;
    int r;
    if (ks == NULL || info == NULL || sec == NULL || !citizen_ok(info->citizen_id) ||
        (info->curve != 0 && !duo_curve_valid(info->curve)) || info->role < 0 || info->role >= DUO_KEY_ROLE_COUNT ||
        sec->p_len == 0 || sec->p_len > DUO_KEY_PRIME_MAX || sec->q_len == 0 || sec->q_len > DUO_KEY_PRIME_MAX ||
        sec->has_pending)
        return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    memset(&k, 0, sizeof k);
    memcpy(k.key_id, info->key_id, sizeof k.key_id);
    memcpy(k.citizen_id, info->citizen_id, strlen(info->citizen_id));
    k.state = DUO_KEY_STATE_PENDING;
    k.paillier_bits = info->paillier_bits;
    k.curve = info->curve != 0 ? info->curve : DUO_CURVE_SECP256K1; /* callers before curves */
    k.role = info->role;
    k.moved = info->moved != 0; /* enrolled through the inner channel: moved at birth */
    memcpy(k.q, info->q, sizeof k.q);
    memcpy(k.q2, info->q2, sizeof k.q2);
    k.version = 1;
    k.secret_version = 1;
    if ((r = seal_all(ks, &s, k.key_id, k.secret_version, sec)) == DUO_OK)
        r = ks->be.ops->key_insert(ks->be.impl, &k, &s, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    duo_memzero(&s, sizeof s);
    return r;
}

static int hash_secret_input(uint8_t out[32], const uint8_t *in, size_t len);

int duo_keystore_key_insert_enrolment(duo_keystore *ks, const duo_key_info *info, const duo_key_secrets *sec,
                                      const uint8_t sid[32], const uint8_t *token, size_t token_len,
                                      const duo_audit_event *ev) {
    duo_key_info k;
    duo_key_sealed s;
    uint8_t th[32];
    int r;
    if (ks == NULL || info == NULL || sec == NULL || sid == NULL || !citizen_ok(info->citizen_id) ||
        (info->curve != 0 && !duo_curve_valid(info->curve)) || info->role < 0 || info->role >= DUO_KEY_ROLE_COUNT ||
        sec->p_len == 0 || sec->p_len > DUO_KEY_PRIME_MAX || sec->q_len == 0 || sec->q_len > DUO_KEY_PRIME_MAX ||
        sec->has_pending)
        return DUO_E_INVALID_ARG;
    if (ks->be.ops->enrol_insert == NULL) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((r = hash_secret_input(th, token, token_len)) != DUO_OK) return r;
    memset(&k, 0, sizeof k);
    memcpy(k.key_id, info->key_id, sizeof k.key_id);
    memcpy(k.citizen_id, info->citizen_id, strlen(info->citizen_id));
    k.state = DUO_KEY_STATE_PENDING;
    k.paillier_bits = info->paillier_bits;
    k.curve = info->curve != 0 ? info->curve : DUO_CURVE_SECP256K1; /* callers before curves */
    k.role = info->role;
    k.moved = info->moved != 0; /* enrolled through the inner channel: moved at birth */
    memcpy(k.q, info->q, sizeof k.q);
    memcpy(k.q2, info->q2, sizeof k.q2);
    k.version = 1;
    k.secret_version = 1;
    if ((r = seal_all(ks, &s, k.key_id, k.secret_version, sec)) == DUO_OK)
        r = ks->be.ops->enrol_insert(ks->be.impl, &k, &s, sid, th, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    duo_memzero(&s, sizeof s);
    duo_memzero(th, sizeof th);
    return r;
}

int duo_keystore_enrolment_key(duo_keystore *ks, uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t sid[32]) {
    uint8_t th[32];
    int r;
    if (ks == NULL || key_id == NULL || sid == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->enrol_get == NULL) return DUO_E_UNSUPPORTED;
    r = ks->be.ops->enrol_get(ks->be.impl, key_id, th, sid);
    duo_memzero(th, sizeof th);
    return r;
}

int duo_keystore_enrolment_activate(duo_keystore *ks, const uint8_t sid[32], const uint8_t *revocation_code,
                                    size_t revocation_code_len, const duo_audit_event *ev) {
    uint8_t key_id[DUO_KEY_ID_BYTES], th[32], rh[32];
    int r;
    if (ks == NULL || sid == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->enrol_get == NULL) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((r = hash_secret_input(rh, revocation_code, revocation_code_len)) != DUO_OK) goto out;
    if ((r = ks->be.ops->enrol_get(ks->be.impl, key_id, th, sid)) != DUO_OK) goto out;
    r = ks->be.ops->key_activate(ks->be.impl, key_id, th, rh, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
out:
    duo_memzero(th, sizeof th);
    duo_memzero(rh, sizeof rh);
    return r;
}

int duo_keystore_key_get(duo_keystore *ks, duo_key_info *info, duo_key_secrets *sec,
                         const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    duo_key_sealed *s = NULL;
    int r;
    if (sec != NULL) duo_key_secrets_clear(sec);
    if (ks == NULL || info == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if (sec == NULL) return ks->be.ops->key_get(ks->be.impl, info, NULL, key_id);
    if ((s = calloc(1, sizeof *s)) == NULL) return DUO_E_NOMEM;
    if ((r = ks->be.ops->key_get(ks->be.impl, info, s, key_id)) == DUO_OK) r = open_all(ks, sec, info, s);
    free(s); /* sealed bytes are not secret */
    return r;
}

int duo_keystore_key_list(duo_keystore *ks, const char *citizen_id, duo_key_info_cb cb, void *data) {
    if (ks == NULL || cb == NULL) return DUO_E_INVALID_ARG;
    return ks->be.ops->key_list(ks->be.impl, citizen_id, cb, data);
}

static int hash_secret_input(uint8_t out[32], const uint8_t *in, size_t len) {
    if (in == NULL || len == 0 || len > DUO_TOKEN_MAX) return DUO_E_INVALID_ARG;
    return duo_store_sha256(out, in, len);
}

int duo_keystore_key_activate(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t *token,
                              size_t token_len, const uint8_t *revocation_code, size_t revocation_code_len,
                              const duo_audit_event *ev) {
    uint8_t th[32], rh[32];
    int r;
    if (ks == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((r = hash_secret_input(th, token, token_len)) != DUO_OK ||
        (r = hash_secret_input(rh, revocation_code, revocation_code_len)) != DUO_OK)
        goto out;
    r = ks->be.ops->key_activate(ks->be.impl, key_id, th, rh, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
out:
    duo_memzero(th, sizeof th);
    duo_memzero(rh, sizeof rh);
    return r;
}

int duo_keystore_key_update_policy(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], uint64_t expect_version,
                                   const duo_key_policy *pol, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || key_id == NULL || pol == NULL || pol->state < DUO_KEY_STATE_PENDING ||
        pol->state > DUO_KEY_STATE_REVOKED || (pol->reason != NULL && strlen(pol->reason) > DUO_REASON_MAX))
        return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    return duo__ks_written(
        ks, ks->be.ops->key_update_policy(ks->be.impl, key_id, expect_version, pol, ev, duo__ks_now(ks)));
}

int duo_keystore_key_set_moved(duo_keystore *ks, int *changed, const uint8_t key_id[DUO_KEY_ID_BYTES],
                               const duo_audit_event *ev) {
    int r, ch = 0;
    if (ks == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->key_set_moved == NULL) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    r = duo__ks_written(ks, ks->be.ops->key_set_moved(ks->be.impl, &ch, key_id, ev, duo__ks_now(ks)));
    if (changed != NULL) *changed = r == DUO_OK && ch;
    return r;
}

static int seen_hashes(duo_seen_nonce *n, const uint8_t *secret, const uint8_t *nonce, size_t nonce_len) {
    int r;
    if (secret == NULL || nonce == NULL || nonce_len == 0) return DUO_E_INVALID_ARG;
    if ((r = duo_store_sha256(n->secret_hash, secret, DUO_DEVICE_SECRET_BYTES)) != DUO_OK) return r;
    return duo_store_sha256(n->nonce_hash, nonce, nonce_len);
}

int duo_keystore_nonce_record(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES],
                              const uint8_t secret[DUO_DEVICE_SECRET_BYTES], const uint8_t *nonce, size_t nonce_len,
                              const duo_audit_event *ev) {
    duo_seen_nonce n;
    int r;
    if (ks == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((r = seen_hashes(&n, secret, nonce, nonce_len)) != DUO_OK) return r;
    return duo__ks_written(ks, ks->be.ops->nonce_record(ks->be.impl, key_id, &n, ev, duo__ks_now(ks)));
}

int duo_keystore_commit_mode(duo_keystore *ks, int mode) {
    int r;
    if (ks == NULL || (mode != DUO_COMMIT_DEFERRED && mode != DUO_COMMIT_DURABLE)) return DUO_E_INVALID_ARG;
    if (ks->be.ops->commit_mode == NULL) return DUO_OK; /* always durable */
    r = ks->be.ops->commit_mode(ks->be.impl, mode == DUO_COMMIT_DURABLE);
    if (r == DUO_OK) ks->deferred = mode == DUO_COMMIT_DEFERRED;
    return r;
}

/* After a write: a durable commit that moved the audit chain moves the mark
 * (mark.h) before the caller can acknowledge anything. A deferred commit
 * does not (an OS crash may lose it; the next durable one covers it). A
 * failure to write the mark fails the call, so that nothing is acknowledged
 * beyond the mark (the write itself stays committed). */
int duo__ks_written(duo_keystore *ks, int r) {
    duo_mark_rec m;
    int r2;
    if (r != DUO_OK || ks->cfg.mark_path == NULL || ks->deferred) return r;
    memset(&m, 0, sizeof m);
    if ((r2 = ks->be.ops->audit_head(ks->be.impl, &m.seq, m.head)) != DUO_OK) return r2;
    if (m.seq <= ks->marked_seq) return DUO_OK; /* nothing new from this connection */
    if ((r2 = duo_mark_advance(ks->cfg.mark_path, &m)) != DUO_OK) return r2;
    ks->marked_seq = m.seq;
    return DUO_OK;
}

int duo_keystore_integrity_check(duo_keystore *ks, int full, char *why, size_t why_cap) {
    if (ks == NULL || why == NULL || why_cap == 0) return DUO_E_INVALID_ARG;
    why[0] = '\0';
    if (ks->be.ops->integrity_check == NULL) return DUO_OK;
    return ks->be.ops->integrity_check(ks->be.impl, full, why, why_cap);
}

int duo_keystore_nonce_seen(duo_keystore *ks, int *seen, const uint8_t key_id[DUO_KEY_ID_BYTES],
                            const uint8_t secret[DUO_DEVICE_SECRET_BYTES], const uint8_t *nonce, size_t nonce_len) {
    duo_seen_nonce n;
    int r;
    if (seen != NULL) *seen = 0;
    if (ks == NULL || seen == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if ((r = seen_hashes(&n, secret, nonce, nonce_len)) != DUO_OK) return r;
    return ks->be.ops->nonce_seen(ks->be.impl, seen, key_id, &n);
}

int duo_keystore_secret_rotate(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], uint64_t expect_version,
                               int promote, const uint8_t *next, const duo_audit_event *ev) {
    return duo_keystore_secret_rotate_seen(ks, key_id, expect_version, promote, next, NULL, NULL, 0, ev, NULL, NULL);
}

/* A rotation to plan from the row read in the write transaction. */
typedef struct rotate_plan {
    const duo_keystore *ks;
    const uint8_t *key_id;
    int check_version; /* 1: the row must still be at expect_version */
    uint64_t expect_version;
    int promote;         /* pending -> current */
    const uint8_t *next; /* the new pending, or NULL */
    int sign;            /* duo_keystore_sign_commit's state rules */
    int64_t now;
    const duo_audit_event *reset_ev, *ev;
    duo_key_secrets *sec; /* SECRET scratch: the secrets as written */
} rotate_plan;

/* Retires one secret: record n (its AAD version) of the key's retired list. */
static int plan_retire(const rotate_plan *p, duo_key_rotation *rot, const uint8_t *secret) {
    duo_retired_rec *rec = &rot->retire[rot->n_retire];
    int r;
    rec->n = rot->info.retired_count + rot->n_retire + 1;
    if ((r = duo_store_sha256(rec->hash, secret, DUO_DEVICE_SECRET_BYTES)) != DUO_OK ||
        (r = seal_col(p->ks, &rec->sealed, p->key_id, COL_RETIRED, rec->n, secret, DUO_DEVICE_SECRET_BYTES)) != DUO_OK)
        return r;
    rot->n_retire++;
    return DUO_OK;
}

/* SignFinish's rules on the policy fields: no signature for a pending key or
 * one still locked; a correct PIN clears the count and an expired lock. */
static int plan_sign_policy(const rotate_plan *p, duo_key_rotation *rot) {
    const duo_key_info *info = &rot->info;
    if (info->state == DUO_KEY_STATE_PENDING) return DUO_E_PROTO_STATE;
    if (info->state == DUO_KEY_STATE_LOCKED && info->locked_until > p->now) return DUO_E_KEY_LOCKED;
    if (info->pin_failures != 0 || info->state != DUO_KEY_STATE_ACTIVE) {
        rot->state = DUO_KEY_STATE_ACTIVE;
        rot->pin_failures = 0;
        rot->locked_until = 0;
        rot->events[0] = p->reset_ev;
    }
    return DUO_OK;
}

/* The retired records are sealed under their own number, so a retired
 * secret cannot be moved into a live column or another slot. */
static int plan_rotation(void *data, duo_key_rotation *rot) {
    const rotate_plan *p = data;
    duo_key_secrets *sec = p->sec;
    int r;
    if (p->check_version && rot->info.version != p->expect_version) return DUO_E_CONFLICT;
    rot->state = rot->info.state;
    rot->pin_failures = rot->info.pin_failures;
    rot->locked_until = rot->info.locked_until;
    if (p->sign && (r = plan_sign_policy(p, rot)) != DUO_OK) return r;
    rot->events[1] = p->ev;
    if ((r = open_all(p->ks, sec, &rot->info, &rot->sealed)) != DUO_OK) return r;
    if (p->promote) {
        if (!sec->has_pending) return DUO_E_PROTO_STATE;
        if ((r = plan_retire(p, rot, sec->current)) != DUO_OK) return r;
        memcpy(sec->current, sec->pending, sizeof sec->current);
        duo_memzero(sec->pending, sizeof sec->pending);
        sec->has_pending = 0;
    }
    if (p->next != NULL) {
        /* superseded: if it shows up later, it is a clone */
        if (sec->has_pending && (r = plan_retire(p, rot, sec->pending)) != DUO_OK) return r;
        memcpy(sec->pending, p->next, sizeof sec->pending);
        sec->has_pending = 1;
    }
    rot->next_secret_version = rot->info.secret_version + 1;
    return seal_all(p->ks, &rot->next, p->key_id, rot->next_secret_version, sec);
}

/* ---- the resynchronisation (SECURITY 1.10) ---- */

int duo_key_resync_state(const duo_key_info *info, uint64_t epoch) {
    if (info->resync_epoch == 0) return info->resync_used != 0 ? DUO_E_RESYNC_USED : DUO_E_RESYNC_NOT_OPEN;
    return info->resync_epoch == epoch ? DUO_OK : DUO_E_RESYNC_EPOCH;
}

typedef struct resync_plan {
    rotate_plan base; /* ks, key_id, expect_version, ev, sec, now */
    uint64_t epoch;
    const uint8_t *secret;
} resync_plan;

/* The device's secret becomes the current one; what the store held retires
 * (a device still holding it is a copy). A correct PIN clears the count as
 * a signature does; a lock still running refuses. */
static int plan_resync(void *data, duo_key_rotation *rot) {
    const resync_plan *rp = data;
    const rotate_plan *p = &rp->base;
    duo_key_secrets *sec = p->sec;
    int r;
    if (rot->info.version != p->expect_version) return DUO_E_CONFLICT;
    if ((r = duo_key_resync_state(&rot->info, rp->epoch)) != DUO_OK) return r;
    if (rot->info.state == DUO_KEY_STATE_PENDING) return DUO_E_PROTO_STATE;
    if (rot->info.state == DUO_KEY_STATE_LOCKED && rot->info.locked_until > p->now) return DUO_E_KEY_LOCKED;
    rot->state = DUO_KEY_STATE_ACTIVE;
    rot->pin_failures = 0;
    rot->locked_until = 0;
    rot->resync_close = rp->epoch;
    rot->events[1] = p->ev;
    if ((r = open_all(p->ks, sec, &rot->info, &rot->sealed)) != DUO_OK) return r;
    if ((r = plan_retire(p, rot, sec->current)) != DUO_OK) return r;
    if (sec->has_pending && (r = plan_retire(p, rot, sec->pending)) != DUO_OK) return r;
    memcpy(sec->current, rp->secret, sizeof sec->current);
    duo_memzero(sec->pending, sizeof sec->pending);
    sec->has_pending = 0;
    rot->next_secret_version = rot->info.secret_version + 1;
    return seal_all(p->ks, &rot->next, p->key_id, rot->next_secret_version, sec);
}

int duo_keystore_resync_supported(const duo_keystore *ks) { return ks != NULL && ks->be.ops->resync_open != NULL; }

int duo_keystore_resync_open(duo_keystore *ks, uint64_t epoch, size_t *n, const duo_audit_event *ev) {
    size_t k = 0;
    int r;
    if (n != NULL) *n = 0;
    if (ks == NULL || epoch == 0) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if (ks->be.ops->resync_open == NULL) return DUO_E_UNSUPPORTED;
    r = duo__ks_written(ks, ks->be.ops->resync_open(ks->be.impl, epoch, &k, ev, duo__ks_now(ks)));
    if (r == DUO_OK && n != NULL) *n = k;
    return r;
}

/* The row as key_rotate wrote it. */
static void rotated_info(duo_key_info *out, const duo_key_rotation *rot, const duo_key_secrets *sec, int64_t now) {
    *out = rot->info;
    out->state = rot->state;
    out->pin_failures = rot->pin_failures;
    out->locked_until = rot->locked_until;
    out->has_pending_secret = sec->has_pending;
    out->retired_count += rot->n_retire;
    out->secret_version = rot->next_secret_version;
    out->version++;
    out->updated_at = now;
    if (rot->resync_close != 0) {
        out->resync_epoch = 0;
        out->resync_used = rot->resync_close;
    }
}

/* Runs plan p (p->sec and p->now are set here) in one key_rotate. On
 * success info_out / sec_out (each may be NULL) get the key as written; on
 * failure info_read (may be NULL) gets the row as read (zero if none was). */
static int run_rotation_with(duo_keystore *ks, rotate_plan *p, duo_key_rotate_fn plan, void *plan_data,
                             const duo_seen_nonce *seen, duo_key_info *info_out, duo_key_secrets *sec_out,
                             duo_key_info *info_read) {
    duo_key_rotation *rot = calloc(1, sizeof *rot);
    duo_key_secrets *sec = duo_secure_malloc(sizeof *sec);
    int r = DUO_E_NOMEM;
    if (rot != NULL && sec != NULL) {
        memset(sec, 0, sizeof *sec);
        p->sec = sec;
        p->now = duo__ks_now(ks);
        r = ks->be.ops->key_rotate(ks->be.impl, p->key_id, rot, plan, plan_data, seen, p->now);
        r = duo__ks_written(ks, r);
        if (r == DUO_OK && info_out != NULL)
            rotated_info(info_out, rot, sec, p->now);
        else if (r != DUO_OK && info_read != NULL)
            *info_read = rot->info;
        if (r == DUO_OK && sec_out != NULL) *sec_out = *sec;
    }
    if (sec != NULL) {
        duo_key_secrets_clear(sec);
        duo_secure_free(sec);
    }
    free(rot); /* sealed bytes and public fields only */
    return r;
}

static int run_rotation(duo_keystore *ks, rotate_plan *p, const duo_seen_nonce *seen, duo_key_info *info_out,
                        duo_key_secrets *sec_out, duo_key_info *info_read) {
    return run_rotation_with(ks, p, plan_rotation, p, seen, info_out, sec_out, info_read);
}

/* A rotation by another plan whose data starts with p (p->sec, p->now set here). */
static int run_rotation_fn(duo_keystore *ks, rotate_plan *p, duo_key_rotate_fn plan, void *plan_data,
                           duo_key_info *info_out) {
    return run_rotation_with(ks, p, plan, plan_data, NULL, info_out, NULL, NULL);
}

int duo_keystore_secret_rotate_seen(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], uint64_t expect_version,
                                    int promote, const uint8_t *next, const uint8_t *seen_secret, const uint8_t *nonce,
                                    size_t nonce_len, const duo_audit_event *ev, duo_key_info *info_out,
                                    duo_key_secrets *sec_out) {
    duo_seen_nonce seen;
    int has_seen = seen_secret != NULL || nonce != NULL;
    int r;
    if (sec_out != NULL) duo_key_secrets_clear(sec_out);
    if (ks == NULL || key_id == NULL || (!promote && next == NULL)) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if (has_seen && (r = seen_hashes(&seen, seen_secret, nonce, nonce_len)) != DUO_OK) return r;
    rotate_plan p = {.ks = ks,
                     .key_id = key_id,
                     .check_version = 1,
                     .expect_version = expect_version,
                     .promote = promote,
                     .next = next,
                     .ev = ev};
    return run_rotation(ks, &p, has_seen ? &seen : NULL, info_out, sec_out, NULL);
}

int duo_keystore_resync_adopt(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], uint64_t expect_version,
                              uint64_t epoch, const uint8_t secret[DUO_DEVICE_SECRET_BYTES], const duo_audit_event *ev,
                              duo_key_info *info_out) {
    int r;
    if (ks == NULL || key_id == NULL || secret == NULL || epoch == 0) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if (ks->be.ops->resync_open == NULL) return DUO_E_UNSUPPORTED; /* the backend keeps no resync fields */
    resync_plan rp = {
        .base = {.ks = ks, .key_id = key_id, .check_version = 1, .expect_version = expect_version, .ev = ev},
        .epoch = epoch,
        .secret = secret};
    return run_rotation_fn(ks, &rp.base, plan_resync, &rp, info_out);
}

int duo_keystore_sign_commit(duo_keystore *ks, duo_key_info *info, const uint8_t key_id[DUO_KEY_ID_BYTES],
                             const uint8_t next[DUO_DEVICE_SECRET_BYTES], const duo_audit_event *reset_ev,
                             const duo_audit_event *ev) {
    int r;
    if (ks == NULL || info == NULL || key_id == NULL || next == NULL) return DUO_E_INVALID_ARG;
    if ((reset_ev != NULL && (r = duo_audit_event_check(reset_ev)) != DUO_OK) ||
        (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK))
        return r;
    memset(info, 0, sizeof *info);
    rotate_plan p = {.ks = ks, .key_id = key_id, .next = next, .sign = 1, .reset_ev = reset_ev, .ev = ev};
    return run_rotation(ks, &p, NULL, info, NULL, info);
}

struct find_ctx {
    duo_keystore *ks;
    const uint8_t *key_id;
    int (*match)(void *, const uint8_t *);
    void *data;
    int found;
    int err;
};

static int find_cb(void *data, const duo_retired_rec *rec) {
    struct find_ctx *f = data;
    uint8_t secret[DUO_DEVICE_SECRET_BYTES];
    int r = open_col(f->ks, secret, sizeof secret, NULL, f->key_id, COL_RETIRED, rec->n, &rec->sealed,
                     DUO_DEVICE_SECRET_BYTES, 1);
    if (r != DUO_OK) {
        f->err = r;
        return 1;
    }
    if (f->match(f->data, secret)) f->found = 1;
    duo_memzero(secret, sizeof secret);
    return f->found;
}

int duo_keystore_secret_find_retired(duo_keystore *ks, int *found, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                     int (*match)(void *data, const uint8_t secret[DUO_DEVICE_SECRET_BYTES]),
                                     void *data) {
    struct find_ctx f;
    int r;
    if (found != NULL) *found = 0;
    if (ks == NULL || found == NULL || key_id == NULL || match == NULL) return DUO_E_INVALID_ARG;
    memset(&f, 0, sizeof f);
    f.ks = ks;
    f.key_id = key_id;
    f.match = match;
    f.data = data;
    r = ks->be.ops->retired_list(ks->be.impl, key_id, find_cb, &f);
    if (f.err != DUO_OK) return f.err;
    if (r != DUO_OK && r != 1) return r;
    *found = f.found;
    return DUO_OK;
}

struct hash_ctx {
    uint8_t h[32];
    int found;
};

static int hash_cb(void *data, const duo_retired_rec *rec) {
    struct hash_ctx *c = data;
    c->found |= duo_ct_eq(c->h, rec->hash, sizeof c->h);
    return 0; /* walk them all: no early exit on secret-derived data */
}

int duo_keystore_secret_is_retired(duo_keystore *ks, int *found, const uint8_t key_id[DUO_KEY_ID_BYTES],
                                   const uint8_t secret[DUO_DEVICE_SECRET_BYTES]) {
    struct hash_ctx c;
    int r;
    if (found != NULL) *found = 0;
    if (ks == NULL || found == NULL || key_id == NULL || secret == NULL) return DUO_E_INVALID_ARG;
    memset(&c, 0, sizeof c);
    if ((r = duo_store_sha256(c.h, secret, DUO_DEVICE_SECRET_BYTES)) != DUO_OK) return r;
    r = ks->be.ops->retired_list(ks->be.impl, key_id, hash_cb, &c);
    *found = c.found;
    duo_memzero(&c, sizeof c);
    return r;
}

int duo_keystore_key_revoke(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t *revocation_code,
                            size_t revocation_code_len, const char *reason, const duo_audit_event *ev) {
    uint8_t h[32];
    int r;
    if (ks == NULL || key_id == NULL || (reason != NULL && strlen(reason) > DUO_REASON_MAX)) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if (revocation_code != NULL) {
        if (revocation_code_len == 0 || revocation_code_len > DUO_TOKEN_MAX) return DUO_E_UNAUTHENTICATED;
        if ((r = duo_store_sha256(h, revocation_code, revocation_code_len)) != DUO_OK) return r;
    }
    r = ks->be.ops->key_revoke(ks->be.impl, key_id, revocation_code != NULL ? h : NULL, reason != NULL ? reason : "",
                               ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    duo_memzero(h, sizeof h);
    return r;
}

int duo_keystore_purge_pending(duo_keystore *ks, size_t *n_purged, int64_t max_age, const duo_audit_event *ev) {
    int r;
    int64_t now;
    if (n_purged != NULL) *n_purged = 0;
    if (ks == NULL || n_purged == NULL || max_age < 0) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    now = duo__ks_now(ks);
    return duo__ks_written(ks, ks->be.ops->purge_pending(ks->be.impl, n_purged, now - max_age, ev, now));
}

/* ------------------------------------------------------------ tokens */

int duo_keystore_token_insert(duo_keystore *ks, const uint8_t *token, size_t token_len, const char *citizen_id,
                              int64_t ttl, const duo_audit_event *ev) {
    return duo_keystore_token_insert_named(ks, token, token_len, citizen_id, NULL, ttl, ev);
}

int duo_keystore_token_insert_named(duo_keystore *ks, const uint8_t *token, size_t token_len, const char *citizen_id,
                                    const char *citizen_name, int64_t ttl, const duo_audit_event *ev) {
    uint8_t h[32];
    int r;
    int64_t now;
    if (citizen_name == NULL) citizen_name = "";
    if (ks == NULL || !citizen_ok(citizen_id) || ttl <= 0 || token_len < 16 || !duo__citizen_name_ok(citizen_name))
        return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if ((r = hash_secret_input(h, token, token_len)) != DUO_OK) return r;
    now = duo__ks_now(ks);
    r = ks->be.ops->token_insert(ks->be.impl, h, citizen_id, citizen_name, now + ttl, ev, now);
    r = duo__ks_written(ks, r);
    duo_memzero(h, sizeof h);
    return r;
}

int duo_keystore_token_check(duo_keystore *ks, char citizen_id[DUO_CITIZEN_ID_MAX + 1], const uint8_t *token,
                             size_t token_len) {
    return duo_keystore_token_check_role(ks, citizen_id, token, token_len, -1);
}

int duo_keystore_token_check_role(duo_keystore *ks, char citizen_id[DUO_CITIZEN_ID_MAX + 1], const uint8_t *token,
                                  size_t token_len, int role) {
    uint8_t h[32];
    int r;
    if (citizen_id != NULL) citizen_id[0] = '\0';
    if (ks == NULL || citizen_id == NULL || role >= DUO_KEY_ROLE_COUNT) return DUO_E_INVALID_ARG;
    if (token == NULL || token_len == 0 || token_len > DUO_TOKEN_MAX) return DUO_E_TOKEN_INVALID;
    if ((r = duo_store_sha256(h, token, token_len)) != DUO_OK) return r;
    r = ks->be.ops->token_check(ks->be.impl, citizen_id, h, role < 0 ? -1 : role, duo__ks_now(ks));
    duo_memzero(h, sizeof h);
    return r;
}

int duo_keystore_token_consume(duo_keystore *ks, char citizen_id[DUO_CITIZEN_ID_MAX + 1], const uint8_t *token,
                               size_t token_len, const duo_audit_event *ev) {
    uint8_t h[32];
    int r;
    if (citizen_id != NULL) citizen_id[0] = '\0';
    if (ks == NULL || citizen_id == NULL) return DUO_E_INVALID_ARG;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    if (token == NULL || token_len == 0 || token_len > DUO_TOKEN_MAX) return DUO_E_TOKEN_INVALID;
    if ((r = duo_store_sha256(h, token, token_len)) != DUO_OK) return r;
    r = ks->be.ops->token_consume(ks->be.impl, citizen_id, h, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    duo_memzero(h, sizeof h);
    return r;
}

/* ------------------------------------------------------------ audit */

int duo_keystore_audit_append(duo_keystore *ks, uint64_t *seq, const duo_audit_event *ev) {
    uint64_t s = 0;
    int r;
    if (seq != NULL) *seq = 0;
    if (ks == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo_audit_event_check(ev)) != DUO_OK) return r;
    r = ks->be.ops->audit_append(ks->be.impl, &s, ev, duo__ks_now(ks));
    r = duo__ks_written(ks, r);
    if (r == DUO_OK && seq != NULL) *seq = s;
    return r;
}

int duo_keystore_audit_list(duo_keystore *ks, uint64_t from_seq, duo_audit_entry_cb cb, void *data) {
    if (ks == NULL || cb == NULL) return DUO_E_INVALID_ARG;
    return ks->be.ops->audit_list(ks->be.impl, from_seq, cb, data);
}

static int verify_cb(void *data, const duo_audit_entry *e) {
    duo_audit_verifier *v = data;
    return duo_audit_verifier_feed(v, e) == DUO_OK ? 0 : 1;
}

int duo_keystore_audit_verify(duo_keystore *ks, uint64_t *bad_seq, uint64_t *count, uint8_t head[DUO_AUDIT_HASH_LEN]) {
    duo_audit_verifier v;
    uint64_t hc = 0;
    uint8_t hh[DUO_AUDIT_HASH_LEN];
    int r, r2;
    if (bad_seq != NULL) *bad_seq = 0;
    if (count != NULL) *count = 0;
    if (ks == NULL) return DUO_E_INVALID_ARG;
    duo_audit_verifier_init(&v);
    /* Head and entries from one snapshot, so a concurrent append is not
     * mistaken for tampering. */
    if ((r = ks->be.ops->read_snapshot(ks->be.impl, 1)) != DUO_OK) return r;
    r = ks->be.ops->audit_head(ks->be.impl, &hc, hh);
    if (r == DUO_OK) {
        r = ks->be.ops->audit_list(ks->be.impl, 1, verify_cb, &v);
        if (r == 1) r = DUO_OK; /* stopped early: v->failed says why */
    }
    r2 = ks->be.ops->read_snapshot(ks->be.impl, 0);
    if (r == DUO_OK) r = r2;
    if (r != DUO_OK) return r;
    if (!v.failed) r = duo_audit_verifier_finish(&v, hc, hh);
    if (v.failed) {
        if (bad_seq != NULL) *bad_seq = v.bad_seq;
        return DUO_E_STATE_CORRUPT;
    }
    if (r != DUO_OK) return r;
    if (count != NULL) *count = hc;
    if (head != NULL) memcpy(head, hh, sizeof hh);
    return DUO_OK;
}

/* ------------------------------------------------------------ high-water mark */

typedef struct mark_probe {
    uint64_t seq;
    int found, match;
    const uint8_t *head;
} mark_probe;

static int mark_probe_cb(void *data, const duo_audit_entry *e) {
    mark_probe *p = data;
    p->found = e->seq == p->seq;
    p->match = p->found && duo_ct_eq(e->hash, p->head, DUO_AUDIT_HASH_LEN);
    return 1; /* the first entry is the one */
}

int duo_keystore_mark_check(duo_keystore *ks, uint64_t *store_seq, const duo_mark_rec *mark) {
    uint64_t count = 0;
    uint8_t head[DUO_AUDIT_HASH_LEN];
    mark_probe p = {.seq = mark != NULL ? mark->seq : 0, .head = mark != NULL ? mark->head : NULL};
    int r;
    if (store_seq != NULL) *store_seq = 0;
    if (ks == NULL || mark == NULL) return DUO_E_INVALID_ARG;
    if ((r = ks->be.ops->audit_head(ks->be.impl, &count, head)) != DUO_OK) return r;
    if (store_seq != NULL) *store_seq = count;
    if (count < mark->seq) return DUO_E_STORE_ROLLED_BACK;
    if (mark->seq == 0) return DUO_OK;
    r = ks->be.ops->audit_list(ks->be.impl, mark->seq, mark_probe_cb, &p);
    if (r != DUO_OK && r != 1) return r;
    /* Missing or different entry at the mark: another history (a copy that
     * went on without us, or an edited chain). */
    return p.match ? DUO_OK : DUO_E_STORE_ROLLED_BACK;
}

int duo_keystore_mark_head(duo_keystore *ks, duo_mark_rec *rec) {
    if (ks == NULL || rec == NULL) return DUO_E_INVALID_ARG;
    return ks->be.ops->audit_head(ks->be.impl, &rec->seq, rec->head);
}

int duo_keystore_backup(duo_keystore *ks, const char *path) {
    if (ks == NULL || path == NULL || *path == '\0') return DUO_E_INVALID_ARG;
    if (ks->be.ops->backup_to == NULL) return DUO_E_UNSUPPORTED;
    return ks->be.ops->backup_to(ks->be.impl, path);
}

int duo_keystore_policy_remac(duo_keystore *ks, size_t *n) {
    size_t dummy;
    if (ks == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->policy_remac == NULL) return DUO_E_UNSUPPORTED;
    return duo__ks_written(ks, ks->be.ops->policy_remac(ks->be.impl, n != NULL ? n : &dummy));
}

/* ------------------------------------------------ signing sessions in the store */

#define SIGN_SESS_COLUMN "sign_sessions.state"

/* The AAD's id: key id || sid, so a sealed state opens only on its own row. */
static void sign_sess_aad(uint8_t aad[DUO_KEY_ID_BYTES + 32], const uint8_t *key_id, const uint8_t *sid) {
    memcpy(aad, key_id, DUO_KEY_ID_BYTES);
    memcpy(aad + DUO_KEY_ID_BYTES, sid, 32);
}

int duo_keystore_sign_sessions_shared(const duo_keystore *ks) {
    return ks != NULL && ks->be.ops->sign_sess_put != NULL && ks->be.ops->sign_sess_take != NULL;
}

int duo_keystore_sign_session_put(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], const uint8_t sid[32],
                                  const uint8_t *state, size_t len, unsigned ttl_s) {
    uint8_t aad[DUO_KEY_ID_BYTES + 32], sealed[DUO_SIGN_SESS_SEALED_MAX];
    size_t n = 0;
    int r;
    if (ks == NULL || key_id == NULL || sid == NULL || state == NULL || len == 0 || len > DUO_SIGN_SESS_STATE_MAX ||
        ttl_s == 0)
        return DUO_E_INVALID_ARG;
    if (!duo_keystore_sign_sessions_shared(ks)) return DUO_E_UNSUPPORTED;
    sign_sess_aad(aad, key_id, sid);
    if ((r = duo_seal_encrypt(&ks->kek, sealed, sizeof sealed, &n, aad, sizeof aad, SIGN_SESS_COLUMN, 0, state, len,
                              ks->cfg.rng)) != DUO_OK)
        return r;
    int64_t now = duo__ks_now(ks);
    return ks->be.ops->sign_sess_put(ks->be.impl, key_id, sid, sealed, n, now + (int64_t)ttl_s, now);
}

int duo_keystore_sign_session_take(duo_keystore *ks, uint8_t key_id[DUO_KEY_ID_BYTES], uint8_t *state, size_t cap,
                                   size_t *len, const uint8_t sid[32]) {
    uint8_t aad[DUO_KEY_ID_BYTES + 32], sealed[DUO_SIGN_SESS_SEALED_MAX];
    size_t n = 0;
    int r;
    if (len != NULL) *len = 0;
    if (ks == NULL || key_id == NULL || state == NULL || len == NULL || sid == NULL) return DUO_E_INVALID_ARG;
    if (!duo_keystore_sign_sessions_shared(ks)) return DUO_E_UNSUPPORTED;
    if ((r = ks->be.ops->sign_sess_take(ks->be.impl, key_id, sealed, sizeof sealed, &n, sid, duo__ks_now(ks))) !=
        DUO_OK)
        return r;
    sign_sess_aad(aad, key_id, sid);
    r = duo__ks_open_any(ks, state, cap, len, aad, sizeof aad, SIGN_SESS_COLUMN, 0, sealed, n);
    if (r == DUO_E_KEK_UNKNOWN) r = DUO_E_STATE_CORRUPT;
    if (r != DUO_OK) {
        *len = 0;
        /* Taken but unusable: spent all the same, so that it no longer
         * holds its key (DUO_SIGN_TAKE_HOLD_S); the refusal stands either way. */
        if (duo_keystore_sign_session_end(ks, sid) != DUO_OK) {
        }
    }
    return r;
}

int duo_keystore_sign_session_end(duo_keystore *ks, const uint8_t sid[32]) {
    if (ks == NULL || sid == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->sign_sess_end == NULL) return DUO_E_UNSUPPORTED;
    return ks->be.ops->sign_sess_end(ks->be.impl, sid);
}

int duo_keystore_sign_session_purge(duo_keystore *ks, size_t *n) {
    size_t dummy;
    if (ks == NULL) return DUO_E_INVALID_ARG;
    if (ks->be.ops->sign_sess_purge == NULL) return DUO_E_UNSUPPORTED;
    return ks->be.ops->sign_sess_purge(ks->be.impl, n != NULL ? n : &dummy, duo__ks_now(ks));
}
