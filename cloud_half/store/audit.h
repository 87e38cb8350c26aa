/* duosign cloud store: the append-only, hash-chained audit log.
 *
 * Entry n (seq = n, numbered 1, 2, 3... without gaps) stores
 *
 *     hash_n = SHA-256( lp("duosign.audit.v1") || u64be(seq) || i64be(time)
 *                       || lp(kind) || lp(key id, 16 bytes or empty)
 *                       || lp(citizen id) || lp(detail) || prev_hash )
 *     prev_hash = hash_{n-1}, 32 zero bytes for entry 1;  lp(x) = u32be(len) || x
 *
 * and a separate head record (count, hash of the last entry) is updated in the
 * same transaction as every append, so deleting the tail is caught too.
 * Entries are appended by the key store inside the transaction of the state
 * change they describe (keystore.h: every write takes an optional event).
 *
 * What the chain proves: any edit, deletion, insertion or reordering made
 * without recomputing every later hash and the head is found, and reported as
 * the first bad seq. Someone who can write the database can recompute the
 * whole chain; anchor the head hash elsewhere (print it with
 * `duosign-cloud audit verify`, ship it to a log host) to catch that too.
 *
 * Never put secrets in an entry: a signature is audited by digest and
 * signature hash, never by document; a PIN never appears. */
#ifndef DUOSIGN_STORE_AUDIT_H
#define DUOSIGN_STORE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"
#include "duosign/vocab.h" /* DUO_CITIZEN_ID_MAX */

#define DUO_AUDIT_HASH_LEN 32
#define DUO_AUDIT_KIND_MAX 32 /* bytes, without the NUL */
#define DUO_AUDIT_DETAIL_MAX 1024

/* Suggested kinds (free text is allowed: [a-z_.] up to DUO_AUDIT_KIND_MAX). */
#define DUO_AUDIT_TOKEN_ISSUED "token.issued"
#define DUO_AUDIT_ENROL_START "enrol.start"
#define DUO_AUDIT_ENROL_DONE "enrol.done"
#define DUO_AUDIT_SIGN "sign"
#define DUO_AUDIT_PIN_FAILURE "pin.failure"
#define DUO_AUDIT_PIN_RESET "pin.reset"
#define DUO_AUDIT_LOCK "key.lock"
#define DUO_AUDIT_UNLOCK "key.unlock"
#define DUO_AUDIT_SECRET_ROTATE "secret.rotate"
#define DUO_AUDIT_CLONE "clone.suspected"
#define DUO_AUDIT_ATTACK "attack.suspected"
#define DUO_AUDIT_REVOKE "key.revoke"
#define DUO_AUDIT_ADMIN "admin"
#define DUO_AUDIT_CA_CREATE "ca.create"
#define DUO_AUDIT_CERT_ISSUE "cert.issue"
#define DUO_AUDIT_CERT_IMPORT "cert.import"
#define DUO_AUDIT_CERT_REVOKE "cert.revoke"
#define DUO_AUDIT_CRL "crl.sign"
#define DUO_AUDIT_POLICY_MAC "key.policy_mac"     /* a row's policy fields fail their MAC */
#define DUO_AUDIT_STORE_RESTORE "store.restore"   /* duosign-cloud restore installed a backup */
#define DUO_AUDIT_SECRET_RESYNC "secret.resync"   /* after a restore: the device's secret adopted (PIN proven) */
#define DUO_AUDIT_RESYNC_REFUSED "resync.refused" /* a second resync of a key in one restore epoch */
#define DUO_AUDIT_KEY_MOVED "key.moved"           /* first request through the inner channel */
#define DUO_AUDIT_RP_ADD "rp.add"                 /* a relying party registered */
#define DUO_AUDIT_RP_REMOVE "rp.remove"           /* a relying party removed */
#define DUO_AUDIT_RP_REQUEST "rp.request"         /* an RP asked: what the device will show */
#define DUO_AUDIT_RP_ANSWER "rp.answer"           /* the citizen approved or refused */
#define DUO_AUDIT_RP_RESULT "rp.result"           /* what the RP was given (end result) */

/* An event to append. All pointers may be NULL except kind; strings are
 * NUL-terminated and at most the _MAX sizes above. Nothing here is secret. */
typedef struct duo_audit_event {
    const char *kind;
    const uint8_t *key_id; /* 16 bytes, or NULL */
    const char *citizen_id;
    const char *detail;
} duo_audit_event;

/* One stored entry, as read back. */
typedef struct duo_audit_entry {
    uint64_t seq;
    int64_t time; /* unix seconds */
    char kind[DUO_AUDIT_KIND_MAX + 1];
    int has_key_id;
    uint8_t key_id[16];
    char citizen_id[DUO_CITIZEN_ID_MAX + 1];
    char detail[DUO_AUDIT_DETAIL_MAX + 1];
    uint8_t prev_hash[DUO_AUDIT_HASH_LEN];
    uint8_t hash[DUO_AUDIT_HASH_LEN];
} duo_audit_entry;

/* Returns: DUO_OK if ev is well-formed (kind present, lengths in range), else
 * DUO_E_INVALID_ARG. */
DUO_WARN_UNUSED_RESULT int duo_audit_event_check(const duo_audit_event *ev);

/* Computes the chain hash of e from every field except e->hash.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_audit_entry_hash(uint8_t out[DUO_AUDIT_HASH_LEN], const duo_audit_entry *e);

/* Fills e (seq, time, fields, prev_hash, hash) for appending ev after a chain
 * whose last hash is prev (32 zero bytes for the first entry).
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_audit_entry_make(duo_audit_entry *e, uint64_t seq, int64_t time,
                                                const duo_audit_event *ev, const uint8_t prev[DUO_AUDIT_HASH_LEN]);

/* Streaming chain verifier, independent of the storage backend: feed entries
 * in seq order, then finish with the stored head. */
typedef struct duo_audit_verifier {
    uint64_t next_seq;
    uint8_t prev[DUO_AUDIT_HASH_LEN];
    uint64_t bad_seq; /* first bad seq once failed, else 0 */
    int failed;
} duo_audit_verifier;

void duo_audit_verifier_init(duo_audit_verifier *v);
/* Returns: DUO_OK, or DUO_E_STATE_CORRUPT (and v->bad_seq set) if e is not the
 * expected next entry: a gap (deleted entry: bad_seq = the missing seq), a
 * prev_hash that does not match, or a hash that does not match its contents.
 * Once failed, stays failed. */
DUO_WARN_UNUSED_RESULT int duo_audit_verifier_feed(duo_audit_verifier *v, const duo_audit_entry *e);
/* Compares the walk with the stored head (count and last hash).
 * Returns: DUO_OK, or DUO_E_STATE_CORRUPT with v->bad_seq = the first seq that
 * is missing (truncated tail) or does not match the head. */
DUO_WARN_UNUSED_RESULT int duo_audit_verifier_finish(duo_audit_verifier *v, uint64_t head_count,
                                                     const uint8_t head[DUO_AUDIT_HASH_LEN]);

#endif
