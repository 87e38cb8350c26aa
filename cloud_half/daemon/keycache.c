/* duosign-cloud: the key cache (keycache.h). */
#include "keycache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "duosign/mem.h"

struct duo_keycache_item {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t tag[32];
    duo_p1_key *key; /* SECRET */
    atomic_uint refs;
    int used; /* clock bit (mu) */
};

struct duo_keycache {
    const duo_ec *const *ec; /* by duo_curve */
    pthread_mutex_t mu;      /* guards slots, n, hand and the use bits */
    duo_keycache_item *slots[DUO_KEYCACHE_MAX];
    size_t n, hand;
};

int duo__keycache_new(duo_keycache **out, const duo_ec *const *ec) {
    duo_keycache *kc = calloc(1, sizeof *kc);
    *out = NULL;
    if (!kc) return DUO_E_NOMEM;
    kc->ec = ec;
    pthread_mutex_init(&kc->mu, NULL);
    *out = kc;
    return DUO_OK;
}

const duo_p1_key *duo__keycache_key(const duo_keycache_item *it) { return it->key; }

void duo__keycache_put(duo_keycache_item *it) {
    if (it == NULL) return;
    if (atomic_fetch_sub(&it->refs, 1u) == 1u) {
        duo_p1_key_free(it->key);
        duo_memzero(it, sizeof *it);
        free(it);
    }
}

/* Drops slot i from the table (mu held). */
static void drop_locked(duo_keycache *kc, size_t i) {
    duo_keycache_item *it = kc->slots[i];
    kc->slots[i] = kc->slots[--kc->n];
    kc->slots[kc->n] = NULL;
    if (kc->hand >= kc->n) kc->hand = 0;
    duo__keycache_put(it);
}

static long find_locked(duo_keycache *kc, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    for (size_t i = 0; i < kc->n; i++)
        if (memcmp(kc->slots[i]->key_id, key_id, DUO_KEY_ID_BYTES) == 0) return (long)i;
    return -1;
}

void duo__keycache_forget(duo_keycache *kc, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    pthread_mutex_lock(&kc->mu);
    long i = find_locked(kc, key_id);
    if (i >= 0) drop_locked(kc, (size_t)i);
    pthread_mutex_unlock(&kc->mu);
}

void duo__keycache_free(duo_keycache *kc) {
    if (!kc) return;
    pthread_mutex_lock(&kc->mu);
    while (kc->n > 0) drop_locked(kc, kc->n - 1);
    pthread_mutex_unlock(&kc->mu);
    pthread_mutex_destroy(&kc->mu);
    free(kc);
}

void duo__keycache_revalidate(duo_keycache *kc, int (*still_valid)(void *data, const uint8_t key_id[DUO_KEY_ID_BYTES]),
                              void *data) {
    uint8_t(*ids)[DUO_KEY_ID_BYTES] = NULL;
    size_t nid = 0;
    pthread_mutex_lock(&kc->mu);
    if (kc->n > 0 && (ids = malloc(kc->n * sizeof *ids)) != NULL) {
        for (nid = 0; nid < kc->n; nid++) memcpy(ids[nid], kc->slots[nid]->key_id, DUO_KEY_ID_BYTES);
    }
    pthread_mutex_unlock(&kc->mu);
    for (size_t i = 0; i < nid; i++)
        if (!still_valid(data, ids[i])) duo__keycache_forget(kc, ids[i]);
    free(ids);
}

static int tag_of(uint8_t tag[32], const duo_key_info *ki, const duo_key_secrets *sec) {
    int r = DUO_E_INTERNAL;
    uint8_t bits[4] = {(uint8_t)(ki->paillier_bits >> 24), (uint8_t)(ki->paillier_bits >> 16),
                       (uint8_t)(ki->paillier_bits >> 8), (uint8_t)ki->paillier_bits};
    uint8_t pl[2] = {(uint8_t)(sec->p_len >> 8), (uint8_t)sec->p_len};
    uint8_t curve = (uint8_t)ki->curve;
    uint8_t ql[2] = {(uint8_t)(sec->q_len >> 8), (uint8_t)sec->q_len};
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (c == NULL) return DUO_E_NOMEM;
    if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(c, "duosign/keycache", 16) == 1 &&
        EVP_DigestUpdate(c, ki->key_id, DUO_KEY_ID_BYTES) == 1 && EVP_DigestUpdate(c, bits, 4) == 1 &&
        EVP_DigestUpdate(c, &curve, 1) == 1 && EVP_DigestUpdate(c, ki->q, DUO_POINT_BYTES) == 1 &&
        EVP_DigestUpdate(c, ki->q2, DUO_POINT_BYTES) == 1 && EVP_DigestUpdate(c, sec->x1, sizeof sec->x1) == 1 &&
        EVP_DigestUpdate(c, pl, 2) == 1 && EVP_DigestUpdate(c, sec->p, sec->p_len) == 1 &&
        EVP_DigestUpdate(c, ql, 2) == 1 && EVP_DigestUpdate(c, sec->q, sec->q_len) == 1 &&
        EVP_DigestFinal_ex(c, tag, NULL) == 1)
        r = DUO_OK;
    EVP_MD_CTX_free(c);
    return r;
}

int duo__keycache_get(duo_keycache *kc, duo_keycache_item **out, const duo_key_info *ki, const duo_key_secrets *sec) {
    uint8_t tag[32];
    duo_keycache_item *it = NULL;
    int r;
    *out = NULL;
    if ((r = tag_of(tag, ki, sec)) != DUO_OK) return r;
    pthread_mutex_lock(&kc->mu);
    long i = find_locked(kc, ki->key_id);
    if (i >= 0) {
        it = kc->slots[i];
        if (duo_ct_eq(it->tag, tag, sizeof tag)) {
            atomic_fetch_add(&it->refs, 1u);
            it->used = 1;
        } else {
            drop_locked(kc, (size_t)i); /* stale: the stored material differs */
            it = NULL;
        }
    }
    pthread_mutex_unlock(&kc->mu);
    if (it != NULL) {
        *out = it;
        duo_memzero(tag, sizeof tag);
        return DUO_OK;
    }
    if (!duo_curve_valid(ki->curve)) return DUO_E_STATE_CORRUPT;
    if ((it = calloc(1, sizeof *it)) == NULL) return DUO_E_NOMEM;
    if ((r = duo_p1_key_parse(&it->key, kc->ec[ki->curve], ki->key_id, sec->x1, ki->q, ki->q2, sec->p, sec->p_len,
                              sec->q, sec->q_len, ki->paillier_bits)) != DUO_OK) {
        free(it);
        return r;
    }
    memcpy(it->key_id, ki->key_id, DUO_KEY_ID_BYTES);
    memcpy(it->tag, tag, sizeof tag);
    duo_memzero(tag, sizeof tag);
    atomic_init(&it->refs, 1u); /* the caller's */
    pthread_mutex_lock(&kc->mu);
    if (find_locked(kc, it->key_id) < 0) { /* else another thread cached it meanwhile: ours stays private */
        if (kc->n == DUO_KEYCACHE_MAX) {
            /* clock: skip (and clear) recently used entries, evict the first unused one */
            for (;;) {
                if (kc->hand >= kc->n) kc->hand = 0;
                if (!kc->slots[kc->hand]->used) break;
                kc->slots[kc->hand]->used = 0;
                kc->hand++;
            }
            drop_locked(kc, kc->hand);
        }
        atomic_fetch_add(&it->refs, 1u); /* the table's */
        kc->slots[kc->n++] = it;
    }
    pthread_mutex_unlock(&kc->mu);
    *out = it;
    return DUO_OK;
}
