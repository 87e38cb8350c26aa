/* duosign cloud store: which key-encryption keys a data directory uses.
 *
 * DIR/kek.ref names the data directory's KEKs by reference, never by value:
 *
 *     current ID REF CHECK
 *     next ID REF CHECK          (only while a rotation is in progress)
 *
 * ID: the KEK id written into every sealed value (seal.h); REF: "file:NAME"
 * (a 32-byte KEK file; NAME relative to DIR unless absolute) or an RFC 7512
 * "pkcs11:..." URI (kek_p11.h); CHECK: hex of a value sealed under that KEK
 * (fixed AAD and plaintext), so loading the wrong file or token object is
 * reported as such instead of as a corrupt store. The file is replaced
 * atomically (write to a temporary, fsync, rename, fsync the directory), so
 * a crash leaves either the old or the new contents.
 *
 * A data directory without kek.ref (made before KEK rotation existed) has one
 * KEK: "current 0 file:kek" with no check.
 *
 * Thread-safety: reentrant; the files are the caller's to serialise (kek
 * rotation holds the data directory's serve.lock). */
#ifndef DUOSIGN_STORE_KEKREF_H
#define DUOSIGN_STORE_KEKREF_H

#include <stddef.h>
#include <stdint.h>

#include "seal.h"

#define DUO_FILE_KEK_REF "kek.ref"
#define DUO_KEK_REF_MAX 1024
#define DUO_KEK_CHECK_MAX 64

/* One KEK of a data directory, by reference. Not secret. */
typedef struct duo_kek_slot {
    uint32_t id;
    char ref[DUO_KEK_REF_MAX];
    uint8_t check[DUO_KEK_CHECK_MAX];
    size_t check_len; /* 0: none recorded (a legacy data directory) */
} duo_kek_slot;

typedef struct duo_kek_refs {
    duo_kek_slot current; /* seals; opens values naming its id */
    int has_next;
    duo_kek_slot next; /* a rotation's target: opens values naming its id */
} duo_kek_refs;

/* Reads DIR/kek.ref (or the legacy default when it does not exist).
 * Returns: DUO_OK; DUO_E_STATE_CORRUPT (a line that does not parse);
 *          DUO_E_IO. Out: *out; err: what is wrong. */
DUO_WARN_UNUSED_RESULT int duo_kek_refs_read(duo_kek_refs *out, char *err, size_t err_cap, const char *dir);

/* Replaces DIR/kek.ref atomically (mode 0600, fsync'd file and directory).
 * Returns: DUO_OK; DUO_E_INVALID_ARG (a REF with white space); DUO_E_IO. */
DUO_WARN_UNUSED_RESULT int duo_kek_refs_write(const duo_kek_refs *refs, char *err, size_t err_cap, const char *dir);

/* Loads the KEK a slot names: a file (duo_kek_load_file's checks) or a
 * token key (duo_p11_key_open), sets kek->id and verifies the recorded check.
 * Returns: DUO_OK; DUO_E_KEK_WRONG (the check does not open: another key);
 *          the errors of duo_kek_load_file and duo_p11_key_open.
 * Out:  kek (SECRET for a file KEK; wipe with duo_kek_clear); err. */
DUO_WARN_UNUSED_RESULT int duo_kek_slot_load(duo_kek *kek, char *err, size_t err_cap, const char *dir,
                                             const duo_kek_slot *slot);

/* Loads the data directory's KEKs as kek.ref names them: keks[0] the
 * current one (it seals), keks[1] a rotation's next when there is one.
 * Returns: DUO_OK (*n = 1 or 2); the errors of duo_kek_refs_read and
 *          duo_kek_slot_load (err: "cannot load the key-encryption key of
 *          DIR: ..."; both keks wiped, *n = 0).
 * Out:  keks (SECRET; wipe each with duo_kek_clear), *n, err. */
DUO_WARN_UNUSED_RESULT int duo_kek_load_dir(duo_kek keks[2], int *n, char *err, size_t err_cap, const char *dir);

/* Makes a new KEK for slot->ref and id: a new file (never an existing one:
 * DUO_E_EXISTS), or the token's key with that label (generated if absent,
 * used as it is if present: token keys are often provisioned by the HSM's
 * own tools); fills slot->check.
 * Out:  kek (SECRET), slot->check; *extractable (may be NULL): 1 if a token
 *       key can leave the token in plain form. */
DUO_WARN_UNUSED_RESULT int duo_kek_slot_create(duo_kek *kek, duo_kek_slot *slot, int *extractable, char *err,
                                               size_t err_cap, const char *dir);

/* Computes slot->check for a loaded kek (with kek->id == slot->id). */
DUO_WARN_UNUSED_RESULT int duo_kek_slot_set_check(duo_kek_slot *slot, const duo_kek *kek);

/* Resolves a "file:" reference to a path (relative to dir unless absolute).
 * Returns: 1 if ref is a file reference (path filled), 0 otherwise. */
int duo_kek_ref_file_path(char *path, size_t cap, const char *dir, const char *ref);

#endif
