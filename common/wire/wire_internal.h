/* duosign wire layer: helpers shared by the per-family parse/build files.
 * Internal (duo__ prefix); not installed. */
#ifndef DUOSIGN_WIRE_INTERNAL_H
#define DUOSIGN_WIRE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "duosign.pb-c.h"
#include "wire.h"

/* Unpacks `in` as a message of type `desc` with the wiping allocator.
 * Returns DUO_E_MSG_TOO_LARGE if in_len > DUO_WIRE_MAX_MSG (checked before
 * anything is decoded), DUO_E_DECODE if protobuf-c rejects the bytes,
 * DUO_E_INVALID_ARG if in is NULL with a non-zero length. *out is set to NULL
 * first; on success the caller releases it with duo__wire_unpacked_free. */
int duo__wire_unpack(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc, const uint8_t *in, size_t in_len);
/* Frees (and wipes: every allocation goes through duo_secure_malloc) a
 * message from duo__wire_unpack. NULL is a no-op. */
void duo__wire_unpacked_free(ProtobufCMessage *m);

/* Copies a fixed-size field: DUO_E_BAD_FIELD unless f->len == n exactly (a
 * missing proto3 field has length 0 and is rejected too). */
int duo__wire_fixed(uint8_t *dst, size_t n, const ProtobufCBinaryData *f);

/* Copies the variable-size fields f[0..n-1] into one malloc'd buffer *buf and
 * points spans[i] at them. Each must be non-empty and at most
 * DUO_WIRE_MAX_MSG bytes (DUO_E_BAD_FIELD). DUO_E_NOMEM on allocation failure.
 * *buf is NULL on failure. */
int duo__wire_spans_copy(uint8_t **buf, duo_span *const spans[], const ProtobufCBinaryData *const f[], size_t n);
/* Wipes every span (each lies in buf by the ownership contract), frees buf.
 * buf NULL: nothing is wiped or freed. */
void duo__wire_spans_free(uint8_t *buf, duo_span *const spans[], size_t n);
/* A builder-side check of a variable-size span: 1..DUO_WIRE_MAX_MSG bytes,
 * non-NULL pointer. Returns 1 if usable. */
int duo__wire_span_ok(const duo_span *s);

/* Validates a revocation code: 1..DUO_REVOCATION_CODE_MAX bytes, each
 * printable ASCII (0x20..0x7e). s may be NULL (rejected). Returns 1 if valid. */
int duo__wire_code_ok(const char *s, size_t max_scan);

/* Read-only view of n bytes for a protobuf-c field (protobuf-c's data pointer
 * is not const; packing never writes through it). */
ProtobufCBinaryData duo__wire_bd(const uint8_t *p, size_t n);
#define DUO__BD(arr) duo__wire_bd((arr), sizeof(arr))
#define DUO__BD_SPAN(s) duo__wire_bd((s).ptr, (s).len)

/* Packs m into a new malloc'd buffer (at least 1 byte allocated, so an empty
 * message still gives a freeable non-NULL pointer). DUO_E_MSG_TOO_LARGE if the
 * encoding would exceed DUO_WIRE_MAX_MSG. */
int duo__wire_pack(uint8_t **out, size_t *out_len, const ProtobufCMessage *m);

/* Fixed-field copy inside a parser using the single-exit `r`/`out:` pattern. */
#define DUO__FIX(dst, field)                                                 \
    do {                                                                     \
        if ((r = duo__wire_fixed((dst), sizeof(dst), &(field))) != DUO_OK) { \
            goto out;                                                        \
        }                                                                    \
    } while (0)

#endif
