/* duosign-kek-bench: what sealing and KEK rotation cost (docs/BENCHMARKS.md).
 *
 *   duosign-kek-bench [--keys N] [--uri PKCS11_URI]
 *
 * Fills a temporary store with N synthetic keys (every sealed column and a
 * retired secret each: 6 values per key), then times: opening every value
 * under a file KEK (kek status's walk), a rotation file -> file (batches of
 * 64 values per transaction, as kek rotate), and with --uri the same under a
 * PKCS#11 token KEK (file -> token, then opening under the token). Prints
 * figures; asserts nothing about speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kekref.h"
#include "keystore.h"
#include "../store/store_test_util.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fill(duo_keystore *ks, unsigned n) {
    duo_key_info k;
    duo_key_secrets s;
    uint8_t next[DUO_DEVICE_SECRET_BYTES];
    for (unsigned i = 0; i < n; i++) {
        make_key(&k, &s, 1, "bench");
        memcpy(k.key_id, &i, sizeof i);
        memset(next, (int)i, sizeof next);
        if (duo_keystore_key_insert_pending(ks, &k, &s, NULL) != DUO_OK ||
            duo_keystore_secret_rotate(ks, k.key_id, 1, 0, next, NULL) != DUO_OK ||
            duo_keystore_secret_rotate(ks, k.key_id, 2, 1, NULL, NULL) != DUO_OK ||
            duo_keystore_secret_rotate(ks, k.key_id, 3, 0, next, NULL) != DUO_OK)
            return 1;
    }
    duo_key_secrets_clear(&s);
    return 0;
}

static int census(duo_keystore *ks, const char *what, size_t *total) {
    duo_kek_census c;
    double t = now_s();
    if (duo_keystore_kek_census(ks, &c) != DUO_OK || c.unopened != 0) return 1;
    t = now_s() - t;
    printf("open every value (%s): %zu values in %.3f s = %.1f us/value\n", what, c.total, t,
           t * 1e6 / (double)c.total);
    *total = c.total;
    return 0;
}

static int rotate(duo_keystore *ks, uint32_t to, const char *what) {
    size_t n = 0, total = 0, batches = 0;
    double t = now_s();
    do {
        if (duo_keystore_reseal(ks, to, 64, &n, NULL, 0) != DUO_OK) return 1;
        total += n;
        batches++;
    } while (n > 0);
    t = now_s() - t;
    printf("rotate %s: %zu values in %zu transactions, %.3f s = %.0f values/s\n", what, total, batches - 1, t,
           (double)total / t);
    return 0;
}

int main(int argc, char **argv) {
    unsigned keys = 2000;
    const char *uri = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            keys = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--uri") == 0 && i + 1 < argc)
            uri = argv[++i];
        else {
            fprintf(stderr, "usage: duosign-kek-bench [--keys N] [--uri PKCS11_URI]\n");
            return 2;
        }
    }
    store_env e;
    duo_keystore_config cfg;
    duo_keystore *ks = NULL;
    char err[1024];
    size_t total = 0;
    if (env_open(&e) != DUO_OK) return 1;
    double t = now_s();
    if (fill(e.ks, keys) != 0) return 1;
    printf("%u keys stored (each: insert + 3 rotations, all columns sealed each time) in %.2f s\n", keys, now_s() - t);
    if (census(e.ks, "file KEK", &total) != 0) return 1;
    duo_kek_slot b = {.id = 1};
    duo_kek kb, kt;
    snprintf(b.ref, sizeof b.ref, "file:kek-1");
    if (duo_kek_slot_create(&kb, &b, NULL, err, sizeof err, e.dir) != DUO_OK || duo_keystore_kek_add(e.ks, &kb) != 0 ||
        rotate(e.ks, 1, "file -> file") != 0)
        return 1;
    if (uri != NULL) {
        duo_kek_slot tok = {.id = 2};
        snprintf(tok.ref, sizeof tok.ref, "%s", uri);
        env_cfg(&e, &cfg);
        if (duo_kek_slot_create(&kt, &tok, NULL, err, sizeof err, e.dir) != DUO_OK) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        if (duo_keystore_open_sqlite(&ks, e.db, &kb, &cfg) != DUO_OK || duo_keystore_kek_add(ks, &kt) != DUO_OK ||
            rotate(ks, 2, "file -> PKCS#11 token") != 0)
            return 1;
        duo_keystore_free(ks);
        if (duo_keystore_open_sqlite(&ks, e.db, &kt, &cfg) != DUO_OK || census(ks, "token KEK", &total) != 0) return 1;
        duo_keystore_free(ks);
    }
    duo_kek_clear(&kb);
    env_close(&e);
    return 0;
}
