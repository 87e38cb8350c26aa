/* duosign-cloud: the inner channel's static keys in DIR/channel.keys
 * (chkeys.h). Each private key sealed under the data directory's KEK. */
#include "chkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "duosign/mem.h"
#include "kekref.h"
#include "seal.h"

#define SEALED_MAX (DUO_CH_KEY_BYTES + DUO_SEAL_OVERHEAD)
#define LINE_MAX_ (16 + 2 * DUO_CH_PUB_BYTES + 2 * SEALED_MAX + 8)

static int seal_key(const duo_kek *kek, uint8_t *out, size_t *out_len, const duo_ch_static *k) {
    return duo_seal_encrypt(kek, out, SEALED_MAX, out_len, (const uint8_t *)DUO_CHKEY_SEAL_ID,
                            sizeof DUO_CHKEY_SEAL_ID - 1, "channel_key", k->id, k->priv, sizeof k->priv, NULL);
}

/* Opens one line's private key with whichever loaded KEK it names, and
 * checks that it gives the public key written beside it. */
static int open_key(duo_ch_static *k, const duo_kek *keks, int nk, const uint8_t *sealed, size_t sl,
                    const uint8_t pub[32]) {
    uint32_t kid;
    size_t n = 0;
    int r = duo_seal_kek_id(&kid, sealed, sl);
    const duo_kek *kek = NULL;
    for (int i = 0; r == DUO_OK && i < nk; i++)
        if (keks[i].id == kid) kek = &keks[i];
    if (r != DUO_OK) return r;
    if (!kek) return DUO_E_KEK_UNKNOWN;
    r = duo_seal_decrypt(kek, k->priv, sizeof k->priv, &n, (const uint8_t *)DUO_CHKEY_SEAL_ID,
                         sizeof DUO_CHKEY_SEAL_ID - 1, "channel_key", k->id, sealed, sl);
    if (r == DUO_OK && n != sizeof k->priv) r = DUO_E_STATE_CORRUPT;
    if (r == DUO_OK) r = duo_ch_static_public(k);
    if (r == DUO_OK && !duo_ct_eq(k->pub, pub, 32)) r = DUO_E_STATE_CORRUPT;
    if (r != DUO_OK) duo_ch_static_clear(k);
    return r;
}

/* Reads the file into out (sealed values opened). */
static int read_file(duo_chkeys *out, char *err, size_t cap, const char *path, const duo_kek *keks, int nk) {
    FILE *f = fopen(path, "r");
    /* Room for what the sscanf widths below may write (66 and 300 characters
     * and the NUL); the lengths are then checked exactly. */
    char line[LINE_MAX_ + 2], pubhex[67], shex[301];
    int r = DUO_OK, lineno = 0;
    memset(out, 0, sizeof *out);
    if (!f) {
        snprintf(err, cap, "cannot read %s: %s", path, strerror(errno));
        return DUO_E_IO;
    }
    while (r == DUO_OK && fgets(line, sizeof line, f)) {
        unsigned long num;
        uint8_t pub[32], sealed[SEALED_MAX];
        lineno++;
        if (out->n == DUO_CHKEYS_MAX || sscanf(line, "%lu %66s %300s", &num, pubhex, shex) != 3 || num == 0 ||
            num > UINT32_MAX || strlen(pubhex) != 64 || strlen(shex) != 2 * SEALED_MAX ||
            duo__unhex(pub, 32, pubhex) != DUO_OK || duo__unhex(sealed, SEALED_MAX, shex) != DUO_OK ||
            (out->n && num <= out->keys[out->n - 1].id)) {
            r = DUO_E_STATE_CORRUPT;
            break;
        }
        out->keys[out->n].id = (uint32_t)num;
        if ((r = open_key(&out->keys[out->n], keks, nk, sealed, sizeof sealed, pub)) == DUO_OK) out->n++;
    }
    fclose(f);
    if (r == DUO_OK && out->n == 0) r = DUO_E_STATE_CORRUPT;
    if (r != DUO_OK) {
        snprintf(err, cap, "%s line %d: %s (a channel key that does not open under this data directory's KEK)", path,
                 lineno, duo_strerror(r));
        duo__chkeys_clear(out);
    }
    return r;
}

/* Writes every key (sealed under the current KEK) atomically. */
static int write_file(const duo_chkeys *k, char *err, size_t cap, const char *dir, const duo_kek *kek) {
    char path[DUO_PATH_MAX], tmp[DUO_PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/" DUO_FILE_CHKEYS, dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    int r = f ? DUO_OK : DUO_E_IO;
    for (size_t i = 0; r == DUO_OK && i < k->n; i++) {
        uint8_t sealed[SEALED_MAX];
        size_t sl = 0;
        char pubhex[65], shex[2 * SEALED_MAX + 1];
        if ((r = seal_key(kek, sealed, &sl, &k->keys[i])) != DUO_OK) break;
        duo__hex(pubhex, k->keys[i].pub, 32);
        duo__hex(shex, sealed, sl);
        if (fprintf(f, "%u %s %s\n", (unsigned)k->keys[i].id, pubhex, shex) < 0) r = DUO_E_IO;
    }
    if (f && (fflush(f) != 0 || fsync(fileno(f)) != 0) && r == DUO_OK) r = DUO_E_IO;
    if (f)
        fclose(f);
    else if (fd >= 0)
        close(fd);
    if (r == DUO_OK && rename(tmp, path) != 0) r = DUO_E_IO;
    if (r != DUO_OK) {
        unlink(tmp);
        snprintf(err, cap, "cannot write %s: %s", path, duo_strerror(r));
    }
    return r;
}

/* Loads (or with create, makes) the keys; keks stay loaded for a rewrite. */
static int load_with(duo_chkeys *out, duo_kek keks[2], int *nk, char *err, size_t cap, const char *dir, int create) {
    char path[DUO_PATH_MAX];
    int r = duo_kek_load_dir(keks, nk, err, cap, dir);
    if (r != DUO_OK) return r;
    snprintf(path, sizeof path, "%s/" DUO_FILE_CHKEYS, dir);
    if (create && access(path, F_OK) != 0 && errno == ENOENT) {
        memset(out, 0, sizeof *out);
        if ((r = duo_ch_static_generate(&out->keys[0], 1)) != DUO_OK) return r;
        out->n = 1;
        r = write_file(out, err, cap, dir, &keks[0]);
        if (r != DUO_OK) duo__chkeys_clear(out);
        return r;
    }
    return read_file(out, err, cap, path, keks, *nk);
}

int duo__chkeys_load(duo_chkeys *out, char *err, size_t cap, const char *dir, int create) {
    duo_kek keks[2];
    int nk = 0;
    int r = load_with(out, keks, &nk, err, cap, dir, create);
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    return r;
}

int duo__chkeys_rotate(uint32_t *number, char *err, size_t cap, const char *dir) {
    duo_kek keks[2];
    duo_chkeys k;
    int nk = 0;
    int r = load_with(&k, keks, &nk, err, cap, dir, 0);
    if (r == DUO_OK && k.n == DUO_CHKEYS_MAX) {
        snprintf(err, cap, "%d channel keys are kept already: retire an old one first", DUO_CHKEYS_MAX);
        r = DUO_E_EXISTS;
    }
    if (r == DUO_OK && (r = duo_ch_static_generate(&k.keys[k.n], k.keys[k.n - 1].id + 1)) == DUO_OK) {
        *number = k.keys[k.n].id;
        k.n++;
        r = write_file(&k, err, cap, dir, &keks[0]);
    }
    duo__chkeys_clear(&k);
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    return r;
}

int duo__chkeys_retire(uint32_t number, char *err, size_t cap, const char *dir) {
    duo_kek keks[2];
    duo_chkeys k;
    int nk = 0;
    int r = load_with(&k, keks, &nk, err, cap, dir, 0);
    size_t at = k.n;
    for (size_t i = 0; r == DUO_OK && i < k.n; i++)
        if (k.keys[i].id == number) at = i;
    if (r == DUO_OK && at == k.n) {
        snprintf(err, cap, "no channel key %u in %s", (unsigned)number, dir);
        r = DUO_E_NOT_FOUND;
    } else if (r == DUO_OK && at == k.n - 1) {
        snprintf(err, cap, "channel key %u is the current one; rotate first", (unsigned)number);
        r = DUO_E_INVALID_ARG;
    }
    if (r == DUO_OK) {
        duo_ch_static_clear(&k.keys[at]);
        memmove(&k.keys[at], &k.keys[at + 1], (k.n - at - 1) * sizeof k.keys[0]);
        k.n--;
        r = write_file(&k, err, cap, dir, &keks[0]);
    }
    duo__chkeys_clear(&k);
    duo_kek_clear(&keks[0]);
    duo_kek_clear(&keks[1]);
    return r;
}

int duo__chkeys_reseal(char *err, size_t cap, const char *dir, const duo_kek_slot *old) {
    duo_kek keks[3];
    duo_chkeys k;
    char path[DUO_PATH_MAX], kerr[768] = "";
    int nk = 0;
    snprintf(path, sizeof path, "%s/" DUO_FILE_CHKEYS, dir);
    if (access(path, F_OK) != 0) return DUO_OK; /* none yet: serve makes it */
    memset(keks, 0, sizeof keks);
    int r = duo_kek_load_dir(keks, &nk, err, cap, dir);
    if (r == DUO_OK && old && (r = duo_kek_slot_load(&keks[nk], kerr, sizeof kerr, dir, old)) == DUO_OK) nk++;
    if (r != DUO_OK && !err[0]) snprintf(err, cap, "cannot load the old key-encryption key: %s", kerr);
    if (r == DUO_OK && (r = read_file(&k, err, cap, path, keks, nk)) == DUO_OK) {
        r = write_file(&k, err, cap, dir, &keks[0]);
        duo__chkeys_clear(&k);
    }
    for (int i = 0; i < 3; i++) duo_kek_clear(&keks[i]);
    return r;
}

const duo_ch_static *duo__chkeys_find(const duo_chkeys *k, uint32_t number) {
    for (size_t i = 0; k && i < k->n; i++)
        if (k->keys[i].id == number) return &k->keys[i];
    return NULL;
}

const duo_ch_static *duo__chkeys_current(const duo_chkeys *k) { return k && k->n ? &k->keys[k->n - 1] : NULL; }

void duo__chkeys_clear(duo_chkeys *k) {
    if (k) duo_memzero(k, sizeof *k);
}
