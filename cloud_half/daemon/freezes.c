/* duosign-cloud: freezes that could not be stored yet (freezes.h). */
#include "freezes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy.h"

struct duo_freezes {
    pthread_mutex_t mu; /* guards ids, n, cap */
    uint8_t (*ids)[DUO_KEY_ID_BYTES];
    size_t n, cap;
};

int duo__freezes_new(duo_freezes **out) {
    duo_freezes *fz = calloc(1, sizeof *fz);
    *out = NULL;
    if (!fz) return DUO_E_NOMEM;
    pthread_mutex_init(&fz->mu, NULL);
    *out = fz;
    return DUO_OK;
}

void duo__freezes_free(duo_freezes *fz) {
    if (!fz) return;
    pthread_mutex_destroy(&fz->mu);
    free(fz->ids);
    free(fz);
}

static long find_locked(const duo_freezes *fz, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    for (size_t i = 0; i < fz->n; i++)
        if (memcmp(fz->ids[i], key_id, DUO_KEY_ID_BYTES) == 0) return (long)i;
    return -1;
}

void duo__freezes_add(duo_freezes *fz, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    pthread_mutex_lock(&fz->mu);
    if (find_locked(fz, key_id) < 0) {
        if (fz->n == fz->cap) {
            size_t nc = fz->cap ? fz->cap * 2 : 8;
            void *p = realloc(fz->ids, nc * sizeof *fz->ids);
            if (p) {
                fz->ids = p;
                fz->cap = nc;
            }
        }
        if (fz->n < fz->cap) memcpy(fz->ids[fz->n++], key_id, DUO_KEY_ID_BYTES);
    }
    pthread_mutex_unlock(&fz->mu);
    duo_log_event(DUO_LOG_ERROR, "key.freeze_pending", NULL, key_id,
                  "the freeze after an attack could not be stored; the key is refused until it is (retried)");
}

int duo__freezes_pending(duo_freezes *fz, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    pthread_mutex_lock(&fz->mu);
    int found = find_locked(fz, key_id) >= 0;
    pthread_mutex_unlock(&fz->mu);
    return found;
}

int duo__freezes_retry(duo_freezes *fz, duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    int r =
        duo__policy_freeze(ks, key_id, DUO_AUDIT_ATTACK, DUO_ATTACK_REASON " (stored late: the first write failed)");
    if (r == DUO_OK || r == DUO_E_NOT_FOUND) {
        pthread_mutex_lock(&fz->mu);
        long i = find_locked(fz, key_id);
        if (i >= 0) memcpy(fz->ids[i], fz->ids[--fz->n], DUO_KEY_ID_BYTES);
        pthread_mutex_unlock(&fz->mu);
    }
    return r;
}

void duo__freezes_retry_all(duo_freezes *fz, duo_keystore *ks) {
    uint8_t(*ids)[DUO_KEY_ID_BYTES] = NULL;
    size_t n = 0;
    pthread_mutex_lock(&fz->mu);
    if (fz->n > 0 && (ids = malloc(fz->n * sizeof *ids)) != NULL) {
        n = fz->n;
        memcpy(ids, fz->ids, n * sizeof *ids);
    }
    pthread_mutex_unlock(&fz->mu);
    for (size_t i = 0; i < n; i++) (void)duo__freezes_retry(fz, ks, ids[i]);
    free(ids);
}
