/* Hash-chained audit log: canonical encoding, hashing and the chain walk.
 * Storage lives in the backends (keystore_sqlite.c). See audit.h. */
#include "audit.h"

#include <string.h>

#include <openssl/evp.h>

#include "duosign/mem.h"

#define AUDIT_LABEL "duosign.audit.v1"

static int kind_ok(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > DUO_AUDIT_KIND_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return 0;
    }
    return 1;
}

int duo_audit_event_check(const duo_audit_event *ev) {
    if (ev == NULL || ev->kind == NULL || !kind_ok(ev->kind)) return DUO_E_INVALID_ARG;
    if (ev->citizen_id != NULL && strlen(ev->citizen_id) > DUO_CITIZEN_ID_MAX) return DUO_E_INVALID_ARG;
    if (ev->detail != NULL && strlen(ev->detail) > DUO_AUDIT_DETAIL_MAX) return DUO_E_INVALID_ARG;
    return DUO_OK;
}

static int upd_lp(EVP_MD_CTX *md, const void *p, size_t len) {
    uint8_t l[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    if (EVP_DigestUpdate(md, l, 4) != 1) return 0;
    return len == 0 || EVP_DigestUpdate(md, p, len) == 1;
}

static void be64(uint8_t out[8], uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(v >> (56 - 8 * i));
}

int duo_audit_entry_hash(uint8_t out[DUO_AUDIT_HASH_LEN], const duo_audit_entry *e) {
    int r = DUO_E_INTERNAL;
    EVP_MD_CTX *md = NULL;
    uint8_t seq[8], tm[8];
    unsigned int len = 0;

    if (out == NULL || e == NULL) return DUO_E_INVALID_ARG;
    be64(seq, e->seq);
    be64(tm, (uint64_t)e->time);
    if ((md = EVP_MD_CTX_new()) == NULL) goto out;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 || !upd_lp(md, AUDIT_LABEL, sizeof AUDIT_LABEL - 1) ||
        EVP_DigestUpdate(md, seq, 8) != 1 || EVP_DigestUpdate(md, tm, 8) != 1 ||
        !upd_lp(md, e->kind, strlen(e->kind)) || !upd_lp(md, e->key_id, e->has_key_id ? sizeof e->key_id : 0) ||
        !upd_lp(md, e->citizen_id, strlen(e->citizen_id)) || !upd_lp(md, e->detail, strlen(e->detail)) ||
        EVP_DigestUpdate(md, e->prev_hash, DUO_AUDIT_HASH_LEN) != 1 || EVP_DigestFinal_ex(md, out, &len) != 1 ||
        len != DUO_AUDIT_HASH_LEN)
        goto out;
    r = DUO_OK;
out:
    EVP_MD_CTX_free(md);
    return r;
}

int duo_audit_entry_make(duo_audit_entry *e, uint64_t seq, int64_t time, const duo_audit_event *ev,
                         const uint8_t prev[DUO_AUDIT_HASH_LEN]) {
    int r;
    if (e == NULL || prev == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo_audit_event_check(ev)) != DUO_OK) return r;
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->time = time;
    memcpy(e->kind, ev->kind, strlen(ev->kind));
    if (ev->key_id != NULL) {
        e->has_key_id = 1;
        memcpy(e->key_id, ev->key_id, sizeof e->key_id);
    }
    if (ev->citizen_id != NULL) memcpy(e->citizen_id, ev->citizen_id, strlen(ev->citizen_id));
    if (ev->detail != NULL) memcpy(e->detail, ev->detail, strlen(ev->detail));
    memcpy(e->prev_hash, prev, DUO_AUDIT_HASH_LEN);
    return duo_audit_entry_hash(e->hash, e);
}

void duo_audit_verifier_init(duo_audit_verifier *v) {
    memset(v, 0, sizeof *v);
    v->next_seq = 1;
}

static int fail(duo_audit_verifier *v, uint64_t seq) {
    if (!v->failed) {
        v->failed = 1;
        v->bad_seq = seq;
    }
    return DUO_E_STATE_CORRUPT;
}

/* Chain values are public; duo_ct_eq is used only to keep memcmp out of the tree. */
int duo_audit_verifier_feed(duo_audit_verifier *v, const duo_audit_entry *e) {
    uint8_t h[DUO_AUDIT_HASH_LEN];
    if (v == NULL || e == NULL) return DUO_E_INVALID_ARG;
    if (v->failed) return DUO_E_STATE_CORRUPT;
    if (e->seq != v->next_seq) return fail(v, e->seq > v->next_seq ? v->next_seq : e->seq);
    if (!duo_ct_eq(e->prev_hash, v->prev, sizeof h)) return fail(v, e->seq);
    if (duo_audit_entry_hash(h, e) != DUO_OK) return DUO_E_INTERNAL;
    if (!duo_ct_eq(h, e->hash, sizeof h)) return fail(v, e->seq);
    memcpy(v->prev, h, sizeof h);
    v->next_seq++;
    return DUO_OK;
}

int duo_audit_verifier_finish(duo_audit_verifier *v, uint64_t head_count, const uint8_t head[DUO_AUDIT_HASH_LEN]) {
    uint64_t walked;
    if (v == NULL || head == NULL) return DUO_E_INVALID_ARG;
    if (v->failed) return DUO_E_STATE_CORRUPT;
    walked = v->next_seq - 1;
    if (walked < head_count) return fail(v, v->next_seq);    /* tail deleted */
    if (walked > head_count) return fail(v, head_count + 1); /* appended behind our back */
    if (!duo_ct_eq(v->prev, head, DUO_AUDIT_HASH_LEN)) return fail(v, walked == 0 ? 1 : walked);
    return DUO_OK;
}
