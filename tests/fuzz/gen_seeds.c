/* Writes the committed seed corpora: <outdir>/fuzz_wire_<message>/seed_<k>
 * for every sample of every message (built with the wire builders), plus one
 * copy of the first sample with unknown fields appended.
 *
 *   cmake --build build --target duo_fuzz_gen_seeds
 *   build/bin/duo_fuzz_gen_seeds tests/fuzz/corpus
 *
 * Deterministic: rerunning gives identical files. Crash reproducers kept as
 * regression seeds (crash-*, found by scripts/fuzz.sh) are not touched. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wire_msgs.h"

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n) {
    char path[1024];
    FILE *f;
    int len = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= sizeof path) {
        fprintf(stderr, "gen_seeds: path too long: %s/%s\n", dir, name);
        return -1;
    }
    if ((f = fopen(path, "wb")) == NULL) {
        perror(path);
        return -1;
    }
    if (n > 0 && fwrite(p, 1, n, f) != n) {
        perror(path);
        fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    /* field 15 varint 1; field 100 length-delimited 2 bytes */
    static const uint8_t unknown[] = {0x78, 0x01, 0xa2, 0x06, 0x02, 0xde, 0xad};
    size_t i;
    int total = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[1], 0777) != 0 && errno != EEXIST) {
        perror(argv[1]);
        return 1;
    }
    for (i = 0; i < FZ_MSG_COUNT; i++) {
        const fz_entry *e = &fz_wire_table[i];
        char dir[1024], name[64];
        unsigned k;
        snprintf(dir, sizeof dir, "%s/fuzz_wire_%s", argv[1], e->name);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            perror(dir);
            return 1;
        }
        for (k = 0;; k++) {
            fz_any m;
            uint8_t *enc = NULL;
            size_t n = 0;
            int r;
            if (!e->sample(&m, k)) {
                break;
            }
            if ((r = e->build(&enc, &n, &m)) != DUO_OK) {
                fprintf(stderr, "%s sample %u: %s\n", e->name, k, duo_err_name(r));
                return 1;
            }
            snprintf(name, sizeof name, "seed_%u", k);
            if (write_file(dir, name, enc, n) != 0) {
                return 1;
            }
            total++;
            if (k == 0) {
                uint8_t *x = malloc(n + sizeof unknown);
                if (x == NULL) {
                    return 1;
                }
                memcpy(x, enc, n);
                memcpy(x + n, unknown, sizeof unknown);
                if (write_file(dir, "seed_unknown_fields", x, n + sizeof unknown) != 0) {
                    return 1;
                }
                free(x);
                total++;
            }
            free(enc);
            e->free_(&m);
        }
    }
    printf("wrote %d seeds for %d messages under %s\n", total, (int)FZ_MSG_COUNT, argv[1]);
    return 0;
}
