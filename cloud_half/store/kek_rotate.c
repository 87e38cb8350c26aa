/* KEK rotation of a data directory (kek_rotate.h). */
#include "kek_rotate.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "datadir.h"

#define DEFAULT_BATCH 64

static void step(const duo_kek_rotate_opts *o, const char *where) {
    if (o->step != NULL) o->step(o->step_data, where);
}

static void before_commit(void *data) { step(data, "commit"); }

/* A new KEK file name in the data directory: kek-ID, or kek-ID-2, ... if a
 * crashed rotation left one behind (a file never recorded in kek.ref is never
 * reused as a KEK). */
static void default_target(char *ref, size_t cap, const char *dir, uint32_t id) {
    char path[PATH_MAX];
    for (unsigned k = 1;; k++) {
        if (k == 1)
            snprintf(ref, cap, "file:kek-%u", (unsigned)id);
        else
            snprintf(ref, cap, "file:kek-%u-%u", (unsigned)id, k);
        if (!duo_kek_ref_file_path(path, sizeof path, dir, ref) || access(path, F_OK) != 0) return;
    }
}

/* Step 1: makes the new KEK and records it as "next". */
static int begin(duo_kek_refs *refs, duo_kek_rotate_report *rep, char *err, size_t cap, const char *dir,
                 const duo_kek_rotate_opts *o) {
    duo_kek kek;
    int r;
    memset(&refs->next, 0, sizeof refs->next);
    refs->next.id = refs->current.id + 1;
    if (o->to != NULL)
        snprintf(refs->next.ref, sizeof refs->next.ref, "%s", o->to);
    else
        default_target(refs->next.ref, sizeof refs->next.ref, dir, refs->next.id);
    if (strcmp(refs->next.ref, refs->current.ref) == 0) {
        snprintf(err, cap, "%s is the current key-encryption key; name a new one", refs->next.ref);
        return DUO_E_INVALID_ARG;
    }
    if (refs->current.check_len == 0) { /* a legacy directory: record the old KEK's check too */
        if ((r = duo_kek_slot_load(&kek, err, cap, dir, &refs->current)) != DUO_OK) return r;
        r = duo_kek_slot_set_check(&refs->current, &kek);
        duo_kek_clear(&kek);
        if (r != DUO_OK) return r;
    }
    r = duo_kek_slot_create(&kek, &refs->next, &rep->to_extractable, err, cap, dir);
    duo_kek_clear(&kek);
    if (r == DUO_E_EXISTS)
        snprintf(err, cap,
                 "%s already exists: a new key-encryption key is never an existing file (it may be an old one); "
                 "name another with --to file:NAME, or remove it",
                 refs->next.ref);
    if (r != DUO_OK) return r;
    step(o, "created");
    refs->has_next = 1;
    if ((r = duo_kek_refs_write(refs, err, cap, dir)) != DUO_OK) return r;
    step(o, "recorded");
    return DUO_OK;
}

/* Step 2: re-seals every value under the new KEK, one batch per transaction. */
static int reseal_all(duo_kek_rotate_report *rep, char *err, size_t cap, const char *dir,
                      const duo_kek_rotate_opts *o) {
    duo_keystore_config cfg;
    duo_keystore *ks = NULL;
    size_t n = 0;
    int r;
    memset(&cfg, 0, sizeof cfg);
    cfg.before_commit = before_commit;
    cfg.hook_data = (void *)o;
    char why[256] = "", detail[2 * DUO_KEK_REF_MAX + 160];
    if ((r = duo_datadir_open_store_cfg(&ks, err, cap, dir, 0, &cfg)) != DUO_OK) return r;
    do {
        r = duo_keystore_reseal(ks, rep->to.id, o->batch ? o->batch : DEFAULT_BATCH, &n, why, sizeof why);
        rep->resealed += n;
    } while (r == DUO_OK && n > 0);

    if (r == DUO_OK) { /* before the switch: a crash here repeats the entry, never loses it */
        snprintf(detail, sizeof detail, "kek rotate: KEK id %u (%s) -> KEK id %u (%s), %zu values re-sealed%s",
                 (unsigned)rep->from.id, rep->from.ref, (unsigned)rep->to.id, rep->to.ref, rep->resealed,
                 rep->resumed ? " (interrupted rotation finished)" : "");
        detail[DUO_AUDIT_DETAIL_MAX] = '\0'; /* two long references are cut */
        duo_audit_event ev = {.kind = DUO_AUDIT_ADMIN, .detail = detail};
        r = duo_keystore_audit_append(ks, NULL, &ev);
    }
    duo_keystore_free(ks);
    if (r != DUO_OK)
        snprintf(err, cap,
                 "re-sealing stopped after %zu values: %s%s%s; every value is still readable (kek.ref names both "
                 "keys): fix the cause and run 'duosign-cloud kek rotate' again to finish",
                 rep->resealed, duo_strerror(r), why[0] ? " at " : "", why);
    return r;
}

int duo_datadir_kek_rotate(duo_kek_rotate_report *rep, char *err, size_t err_cap, const char *dir,
                           const duo_kek_rotate_opts *o) {
    duo_kek_refs refs;
    int r;
    memset(rep, 0, sizeof *rep);
    if (dir == NULL || o == NULL || err == NULL) return DUO_E_INVALID_ARG;
    err[0] = '\0';
    if ((r = duo_kek_refs_read(&refs, err, err_cap, dir)) != DUO_OK) return r;
    rep->from = refs.current;
    if (refs.has_next) {
        if (o->to != NULL && strcmp(o->to, refs.next.ref) != 0) {
            snprintf(err, err_cap,
                     "a rotation to %s (KEK id %u) is in progress; finish it first with 'duosign-cloud kek rotate' "
                     "(without --to or with that --to)",
                     refs.next.ref, (unsigned)refs.next.id);
            return DUO_E_INVALID_ARG;
        }
        rep->resumed = 1;
    } else if ((r = begin(&refs, rep, err, err_cap, dir, o)) != DUO_OK) {
        return r;
    }
    rep->to = refs.next;
    if ((r = reseal_all(rep, err, err_cap, dir, o)) != DUO_OK) return r;
    step(o, "resealed");
    refs.current = refs.next;
    refs.has_next = 0;
    memset(&refs.next, 0, sizeof refs.next);
    if ((r = duo_kek_refs_write(&refs, err, err_cap, dir)) != DUO_OK) return r;
    step(o, "switched");
    return DUO_OK;
}
