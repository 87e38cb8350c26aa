/* The data directory's KEK references (kekref.h). */
#include "kekref.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "kek_p11.h"

/* The check value: a fixed plaintext sealed under the KEK with a fixed AAD
 * (key id "duosign.kek", column "kek_check", version = the KEK id). */
#define CHECK_ID "duosign.kek"
#define CHECK_COL "kek_check"
static const uint8_t check_pt[16] = "duosign.kek.chk";

int duo_kek_ref_file_path(char *path, size_t cap, const char *dir, const char *ref) {
    if (strncmp(ref, "file:", 5) != 0) return 0;
    if (ref[5] == '/')
        snprintf(path, cap, "%s", ref + 5);
    else
        snprintf(path, cap, "%s/%s", dir, ref + 5);
    return 1;
}

/* "current ID REF CHECK" -> slot; 0 if malformed. */
static int parse_line(duo_kek_slot *slot, char *line, const char *want) {
    char *save = NULL, *name = strtok_r(line, " \t\n", &save), *id = strtok_r(NULL, " \t\n", &save),
         *ref = strtok_r(NULL, " \t\n", &save), *check = strtok_r(NULL, " \t\n", &save), *end = NULL;
    long len = 0;
    if (name == NULL || strcmp(name, want) != 0 || id == NULL || ref == NULL || check == NULL) return 0;
    unsigned long v = strtoul(id, &end, 10);
    if (*end || id[0] == '-' || v > UINT32_MAX || strlen(ref) >= sizeof slot->ref) return 0;
    memset(slot, 0, sizeof *slot);
    slot->id = (uint32_t)v;
    memcpy(slot->ref, ref, strlen(ref) + 1);
    if (strcmp(check, "-") == 0) return 1;
    unsigned char *buf = OPENSSL_hexstr2buf(check, &len);
    if (buf == NULL || len <= 0 || (size_t)len > sizeof slot->check) {
        OPENSSL_free(buf);
        return 0;
    }
    memcpy(slot->check, buf, (size_t)len);
    slot->check_len = (size_t)len;
    OPENSSL_free(buf);
    return 1;
}

int duo_kek_refs_read(duo_kek_refs *out, char *err, size_t err_cap, const char *dir) {
    char path[PATH_MAX], line[DUO_KEK_REF_MAX + 3 * DUO_KEK_CHECK_MAX + 64];
    int n = 0, r = DUO_OK;
    FILE *fp;
    memset(out, 0, sizeof *out);
    snprintf(path, sizeof path, "%s/" DUO_FILE_KEK_REF, dir);
    if ((fp = fopen(path, "re")) == NULL) {
        if (errno != ENOENT) {
            snprintf(err, err_cap, "cannot read %s: %s", path, strerror(errno));
            return DUO_E_IO;
        }
        snprintf(out->current.ref, sizeof out->current.ref, "file:kek"); /* before kek.ref existed */
        return DUO_OK;
    }
    while (r == DUO_OK && fgets(line, sizeof line, fp) != NULL) {
        if (line[0] == '#' || line[0] == '\n') continue;
        if (n == 0 && parse_line(&out->current, line, "current"))
            n = 1;
        else if (n == 1 && parse_line(&out->next, line, "next"))
            n = out->has_next = 2;
        else
            r = DUO_E_STATE_CORRUPT;
    }
    fclose(fp);
    if (r == DUO_OK && n == 0) r = DUO_E_STATE_CORRUPT;
    if (r != DUO_OK)
        snprintf(err, err_cap, "%s does not parse (lines 'current ID REF CHECK' and optionally 'next ID REF CHECK')",
                 path);
    return r;
}

static int put_slot(FILE *fp, const char *name, const duo_kek_slot *s) {
    char *hex = NULL;
    size_t hl = 0;
    if (s->check_len > 0) {
        hex = malloc(2 * s->check_len + 1);
        if (hex == NULL || OPENSSL_buf2hexstr_ex(hex, 2 * s->check_len + 1, &hl, s->check, s->check_len, '\0') != 1) {
            free(hex);
            return -1;
        }
    }
    int rc = fprintf(fp, "%s %u %s %s\n", name, (unsigned)s->id, s->ref, hex ? hex : "-");
    free(hex);
    return rc < 0 ? -1 : 0;
}

static int ref_ok(const char *ref) { return ref[0] != '\0' && strpbrk(ref, " \t\r\n") == NULL; }

int duo_kek_refs_write(const duo_kek_refs *refs, char *err, size_t err_cap, const char *dir) {
    char path[PATH_MAX], tmp[PATH_MAX];
    int fd, ok;
    FILE *fp;
    if (!ref_ok(refs->current.ref) || (refs->has_next && !ref_ok(refs->next.ref))) {
        snprintf(err, err_cap, "a KEK reference must not be empty or contain white space (percent-encode it)");
        return DUO_E_INVALID_ARG;
    }
    snprintf(path, sizeof path, "%s/" DUO_FILE_KEK_REF, dir);
    snprintf(tmp, sizeof tmp, "%s/" DUO_FILE_KEK_REF ".tmp", dir);
    (void)unlink(tmp); /* a leftover of a crash: never the live file */
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 ||
        (fp = fdopen(fd, "w")) == NULL) {
        snprintf(err, err_cap, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        return DUO_E_IO;
    }
    ok = fprintf(fp, "# duosign key-encryption keys (written by duosign-cloud: do not edit)\n") > 0 &&
         put_slot(fp, "current", &refs->current) == 0 && (!refs->has_next || put_slot(fp, "next", &refs->next) == 0);
    ok = fflush(fp) == 0 && ok && fsync(fileno(fp)) == 0;
    ok = fclose(fp) == 0 && ok;
    if (ok && rename(tmp, path) == 0) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ok = dfd >= 0 && fsync(dfd) == 0;
        if (dfd >= 0) close(dfd);
        if (ok) return DUO_OK;
    }
    snprintf(err, err_cap, "cannot write %s: %s", path, strerror(errno));
    (void)unlink(tmp);
    return DUO_E_IO;
}

int duo_kek_slot_set_check(duo_kek_slot *slot, const duo_kek *kek) {
    return duo_seal_encrypt(kek, slot->check, sizeof slot->check, &slot->check_len, (const uint8_t *)CHECK_ID,
                            sizeof CHECK_ID - 1, CHECK_COL, slot->id, check_pt, sizeof check_pt, NULL);
}

static int check_verify(const duo_kek_slot *slot, const duo_kek *kek) {
    uint8_t pt[sizeof check_pt];
    size_t n = 0;
    if (slot->check_len == 0) return DUO_OK; /* legacy: nothing recorded */
    int r = duo_seal_decrypt(kek, pt, sizeof pt, &n, (const uint8_t *)CHECK_ID, sizeof CHECK_ID - 1, CHECK_COL,
                             slot->id, slot->check, slot->check_len);
    if (r == DUO_E_STATE_CORRUPT || r == DUO_E_KEK_UNKNOWN || r == DUO_E_BUFFER_TOO_SMALL) return DUO_E_KEK_WRONG;
    return r;
}

/* Loads (create == 0) or makes (create != 0) the KEK a slot names, with the
 * slot's id. */
static int ref_open(duo_kek *kek, int *extractable, char *err, size_t err_cap, const char *dir,
                    const duo_kek_slot *slot, int create) {
    char path[PATH_MAX];
    const duo_p11_key *k = NULL;
    int r;
    duo_kek_clear(kek);
    if (duo_kek_ref_file_path(path, sizeof path, dir, slot->ref)) {
        r = create ? duo_kek_create_file(kek, err, err_cap, path, NULL) : duo_kek_load_file(kek, err, err_cap, path);
    } else if (duo_p11_is_uri(slot->ref)) {
        if ((r = duo_p11_key_open(&k, extractable, err, err_cap, slot->ref, create)) == DUO_OK) kek->token = k;
    } else {
        snprintf(err, err_cap, "KEK reference '%s' is neither file:PATH nor pkcs11:URI", slot->ref);
        return DUO_E_INVALID_ARG;
    }
    if (r == DUO_OK) kek->id = slot->id;
    return r;
}

int duo_kek_slot_load(duo_kek *kek, char *err, size_t err_cap, const char *dir, const duo_kek_slot *slot) {
    int r = ref_open(kek, NULL, err, err_cap, dir, slot, 0);
    if (r != DUO_OK) return r;
    if ((r = check_verify(slot, kek)) == DUO_E_KEK_WRONG)
        snprintf(err, err_cap,
                 "%s is not KEK id %u of this data directory (its check value in " DUO_FILE_KEK_REF
                 " does not open under it)",
                 slot->ref, (unsigned)slot->id);
    else if (r != DUO_OK)
        snprintf(err, err_cap, "cannot use the KEK %s: %s", slot->ref, duo_strerror(r));
    if (r != DUO_OK) duo_kek_clear(kek);
    return r;
}

int duo_kek_slot_create(duo_kek *kek, duo_kek_slot *slot, int *extractable, char *err, size_t err_cap,
                        const char *dir) {
    int r;
    duo_kek_clear(kek);
    if (extractable != NULL) *extractable = 0;
    if (!ref_ok(slot->ref)) {
        snprintf(err, err_cap, "a KEK reference must not be empty or contain white space (percent-encode it)");
        return DUO_E_INVALID_ARG;
    }
    if ((r = ref_open(kek, extractable, err, err_cap, dir, slot, 1)) != DUO_OK) return r;
    if ((r = duo_kek_slot_set_check(slot, kek)) != DUO_OK) {
        snprintf(err, err_cap, "cannot seal with the new KEK %s: %s", slot->ref, duo_strerror(r));
        duo_kek_clear(kek);
    }
    return r;
}

int duo_kek_load_dir(duo_kek keks[2], int *n, char *err, size_t err_cap, const char *dir) {
    duo_kek_refs refs;
    char kerr[768] = "";
    int r = duo_kek_refs_read(&refs, kerr, sizeof kerr, dir);
    *n = 0;
    if (r == DUO_OK && (r = duo_kek_slot_load(&keks[0], kerr, sizeof kerr, dir, &refs.current)) == DUO_OK) *n = 1;
    if (r == DUO_OK && refs.has_next && (r = duo_kek_slot_load(&keks[1], kerr, sizeof kerr, dir, &refs.next)) == DUO_OK)
        *n = 2;
    if (r != DUO_OK) {
        snprintf(err, err_cap, "cannot load the key-encryption key of %s: %s", dir, kerr[0] ? kerr : duo_strerror(r));
        duo_kek_clear(&keks[0]);
        duo_kek_clear(&keks[1]);
        *n = 0;
    }
    return r;
}
