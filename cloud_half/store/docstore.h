/* duosign cloud store: the citizen document registry and the presentation
 * codes (schema v10, issue 19; docs/DOCUMENTS.md).
 *
 * A document is one row per (citizen id, document type): the attributes the
 * operator set (name=value pairs) and an optional photo. Nothing here is
 * secret in the store's sense (no sealed column): it is what the citizen
 * shows a verifier anyway.
 *
 * A presentation code is stored only as SHA-256 hashes of its two forms (the
 * base32 text and the 13 barcode digits), bound to the key that asked for it,
 * the citizen and the document type, with its issue and expiry times from the
 * store's clock. Redeeming it is one write transaction whose UPDATE is
 * conditional on "not redeemed yet", so of two concurrent redeemers exactly
 * one wins (the other gets DUO_E_CODE_USED). Redeemed and expired rows stay
 * until duo_keystore_code_purge removes them, so a late second try gets the
 * specific error, not "unknown".
 *
 * Thread-safety: as keystore.h (one duo_keystore per thread). */
#ifndef DUOSIGN_STORE_DOCSTORE_H
#define DUOSIGN_STORE_DOCSTORE_H

#include "keystore.h"

#define DUO_DOC_TYPE_MAX 32        /* [a-z0-9_], 1..32 bytes */
#define DUO_DOC_ATTR_NAME_MAX 32   /* [a-z0-9_], 1..32 bytes */
#define DUO_DOC_ATTR_VALUE_MAX 256 /* UTF-8, no control characters */
#define DUO_DOC_ATTRS_MAX 32
#define DUO_DOC_PHOTO_MAX 65536 /* bytes, as the operator gave them */
#define DUO_RP_NAME_MAX 64      /* the redeemer's name as audited */
#define DUO_CODE_TTL_S 180      /* a presentation code lives three minutes */

typedef struct duo_doc_attr {
    char name[DUO_DOC_ATTR_NAME_MAX + 1];
    char value[DUO_DOC_ATTR_VALUE_MAX + 1];
} duo_doc_attr;

/* One document (about 75 KiB: allocate it, do not put it on the stack). */
typedef struct duo_doc_row {
    char citizen_id[DUO_CITIZEN_ID_MAX + 1];
    char doc_type[DUO_DOC_TYPE_MAX + 1];
    duo_doc_attr attrs[DUO_DOC_ATTRS_MAX];
    size_t n_attrs;
    uint8_t photo[DUO_DOC_PHOTO_MAX];
    size_t photo_len; /* 0: no photo */
    int64_t created_at, updated_at;
} duo_doc_row;

/* A presentation code as the backend stores it (hashes only). */
typedef struct duo_code_row {
    uint8_t code_hash[32];    /* SHA-256 of the base32 text */
    uint8_t barcode_hash[32]; /* SHA-256 of the 13 digits */
    uint8_t key_id[DUO_KEY_ID_BYTES];
    char citizen_id[DUO_CITIZEN_ID_MAX + 1];
    char doc_type[DUO_DOC_TYPE_MAX + 1];
    int64_t issued_at, expires_at; /* set by the store from its clock */
} duo_code_row;

typedef int (*duo_doc_cb)(void *data, const duo_doc_row *row);

/* Returns: 1 if s is a document type, or an attribute name, the store
 * accepts ([a-z0-9_], 1..max bytes). */
int duo_doc_name_ok(const char *s, size_t max);
/* Returns: 1 if v is an attribute value the store accepts (at most
 * DUO_DOC_ATTR_VALUE_MAX bytes, no control characters; "" allowed). */
int duo_doc_value_ok(const char *v);

/* Sets (inserts or replaces) a document, in one transaction with ev.
 * Returns: DUO_OK; DUO_E_DOC_ATTR (a name or value the store refuses, or the
 *          same name twice); DUO_E_INVALID_ARG (citizen id, document type,
 *          counts); DUO_E_UNSUPPORTED (backend without documents); DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_doc_set(duo_keystore *ks, const duo_doc_row *row, const duo_audit_event *ev);

/* Reads one document into *row.
 * Returns: DUO_OK; DUO_E_DOC_NOT_FOUND; DUO_E_STATE_CORRUPT; DUO_E_INVALID_ARG;
 *          DUO_E_UNSUPPORTED; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_doc_get(duo_keystore *ks, duo_doc_row *row, const char *citizen_id,
                                                const char *doc_type);

/* Calls cb for each document of citizen_id (NULL: of everyone), by citizen
 * then type; a nonzero return from cb stops the walk and is returned. */
DUO_WARN_UNUSED_RESULT int duo_keystore_doc_list(duo_keystore *ks, const char *citizen_id, duo_doc_cb cb, void *data);

/* Removes a document and its unredeemed codes, in one transaction with ev.
 * Returns: DUO_OK; DUO_E_DOC_NOT_FOUND; DUO_E_INVALID_ARG; DUO_E_UNSUPPORTED;
 *          DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_doc_remove(duo_keystore *ks, const char *citizen_id, const char *doc_type,
                                                   const duo_audit_event *ev);

/* Stores a new code for row->key_id's citizen and row->doc_type, valid
 * DUO_CODE_TTL_S from now (the store's clock), in one transaction with ev
 * that also checks the key is active and the citizen has the document.
 * Returns: DUO_OK (row->issued_at and row->expires_at set); DUO_E_DOC_NOT_FOUND;
 *          DUO_E_KEY_NOT_ACTIVE; DUO_E_NOT_FOUND (no such key); DUO_E_EXISTS
 *          (a hash collides: draw again); DUO_E_POLICY_MAC; DUO_E_INVALID_ARG;
 *          DUO_E_UNSUPPORTED; DUO_E_STORE. Nothing is stored on failure. */
DUO_WARN_UNUSED_RESULT int duo_keystore_code_insert(duo_keystore *ks, duo_code_row *row, const duo_audit_event *ev);

/* Redeems a code once: hash is the SHA-256 of the base32 text (by_barcode 0)
 * or of the 13 digits (1). In one write transaction: the code must exist, be
 * unexpired at the store's clock, not be redeemed, be for doc_type, and its
 * key must still be active; then it is marked redeemed by rp_name (a
 * conditional UPDATE: exactly one of concurrent redeemers wins) and the
 * audit entry "code.redeem" names rp_name.
 * Returns: DUO_OK; DUO_E_CODE_UNKNOWN; DUO_E_CODE_EXPIRED; DUO_E_CODE_USED;
 *          DUO_E_CODE_DOC_MISMATCH; DUO_E_KEY_NOT_ACTIVE (the key was revoked,
 *          suspended or locked since); DUO_E_DOC_NOT_FOUND (the document was
 *          removed since); DUO_E_INVALID_ARG; DUO_E_UNSUPPORTED; DUO_E_STORE.
 *          On failure nothing is written.
 * Out:  doc (the document), code (the code's row: key, citizen, issued_at). */
DUO_WARN_UNUSED_RESULT int duo_keystore_code_redeem(duo_keystore *ks, duo_doc_row *doc, duo_code_row *code,
                                                    const uint8_t hash[32], int by_barcode, const char *doc_type,
                                                    const char *rp_name);

/* Deletes the codes (redeemed or not) whose expiry is before `before`.
 * Returns: DUO_OK (*n deleted); DUO_E_UNSUPPORTED; DUO_E_STORE. */
DUO_WARN_UNUSED_RESULT int duo_keystore_code_purge(duo_keystore *ks, size_t *n, int64_t before);

/* Internal, for the backends (docs.c): the attributes as stored text,
 * "name=value\n" per attribute, at most DUO_DOC_ATTRS_TEXT_MAX bytes with the
 * NUL. decode checks every line as the store checked it on the way in
 * (DUO_E_STATE_CORRUPT otherwise). */
#define DUO_DOC_ATTRS_TEXT_MAX (DUO_DOC_ATTRS_MAX * (DUO_DOC_ATTR_NAME_MAX + DUO_DOC_ATTR_VALUE_MAX + 2) + 1)
int duo__doc_attrs_encode(const duo_doc_row *row, char *out, size_t cap);
int duo__doc_attrs_decode(duo_doc_row *row, const char *t);

/* For the backends' code_redeem, inside its transaction: whether the code
 * read back may be redeemed for doc_type at now (DUO_OK, or
 * DUO_E_CODE_EXPIRED / DUO_E_CODE_USED / DUO_E_CODE_DOC_MISMATCH in that
 * order: a dead code first, then one for the wrong document), and the
 * audit entry of a redemption (detail is the caller's buffer of at least
 * DUO_AUDIT_DETAIL_MAX + 1 bytes). */
int duo__code_redeemable(const duo_code_row *code, int redeemed, const char *doc_type, int64_t now);
duo_audit_event duo__code_redeem_event(char *detail, size_t cap, const duo_code_row *code, const char *rp_name);

#endif
