/* duosign wire layer: unpack with a wiping allocator, field copies, pack.
 *
 * Every protobuf-c allocation made while decoding goes through
 * duo_secure_malloc, which keeps the size in a header so that the matching
 * free can wipe (STYLE.md section 6): decoded requests carry nonces, MACs and
 * commitment openings, and we never leave copies of them in freed heap. */
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "wire_internal.h"

static void *duo__wire_alloc(void *allocator_data, size_t size) {
    (void)allocator_data;
    return duo_secure_malloc(size);
}

static void duo__wire_free(void *allocator_data, void *pointer) {
    (void)allocator_data;
    duo_secure_free(pointer);
}

/* Built per call: no mutable statics (STYLE.md section 3). */
static ProtobufCAllocator duo__wire_allocator(void) {
    ProtobufCAllocator a;
    a.alloc = duo__wire_alloc;
    a.free = duo__wire_free;
    a.allocator_data = NULL;
    return a;
}

int duo__wire_unpack(ProtobufCMessage **out, const ProtobufCMessageDescriptor *desc, const uint8_t *in, size_t in_len) {
    static const uint8_t empty[1] = {0};
    ProtobufCAllocator a = duo__wire_allocator();
    ProtobufCMessage *m;

    *out = NULL;
    if (in_len > DUO_WIRE_MAX_MSG) {
        return DUO_E_MSG_TOO_LARGE;
    }
    if (in == NULL) {
        if (in_len != 0) {
            return DUO_E_INVALID_ARG;
        }
        in = empty;
    }
    m = protobuf_c_message_unpack(desc, &a, in_len, in);
    if (m == NULL) {
        /* protobuf-c returns NULL both for malformed input and for an
         * allocation failure; it cannot tell us which, so DECODE. */
        return DUO_E_DECODE;
    }
    *out = m;
    return DUO_OK;
}

void duo__wire_unpacked_free(ProtobufCMessage *m) {
    ProtobufCAllocator a = duo__wire_allocator();
    if (m == NULL) {
        return;
    }
    protobuf_c_message_free_unpacked(m, &a);
}

int duo__wire_fixed(uint8_t *dst, size_t n, const ProtobufCBinaryData *f) {
    if (f->len != n || f->data == NULL) {
        return DUO_E_BAD_FIELD;
    }
    memcpy(dst, f->data, n);
    return DUO_OK;
}

int duo__wire_spans_copy(uint8_t **buf, duo_span *const spans[], const ProtobufCBinaryData *const f[], size_t n) {
    size_t i, total = 0, off = 0;
    uint8_t *b;

    *buf = NULL;
    for (i = 0; i < n; i++) {
        if (f[i]->len == 0 || f[i]->data == NULL || f[i]->len > DUO_WIRE_MAX_MSG) {
            return DUO_E_BAD_FIELD;
        }
        total += f[i]->len; /* n <= 5 fields of <= 1 MiB: cannot overflow */
    }
    if ((b = malloc(total)) == NULL) {
        return DUO_E_NOMEM;
    }
    for (i = 0; i < n; i++) {
        memcpy(b + off, f[i]->data, f[i]->len);
        spans[i]->ptr = b + off;
        spans[i]->len = f[i]->len;
        off += f[i]->len;
    }
    *buf = b;
    return DUO_OK;
}

void duo__wire_spans_free(uint8_t *buf, duo_span *const spans[], size_t n) {
    size_t i;
    if (buf == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        if (spans[i]->ptr != NULL) {
            /* The span lies inside buf, which we own and may write. */
            duo_memzero((uint8_t *)(uintptr_t)spans[i]->ptr, spans[i]->len);
        }
    }
    free(buf);
}

int duo__wire_span_ok(const duo_span *s) { return s->ptr != NULL && s->len >= 1 && s->len <= DUO_WIRE_MAX_MSG; }

int duo__wire_code_ok(const char *s, size_t max_scan) {
    size_t i;
    if (s == NULL) {
        return 0;
    }
    for (i = 0; i < max_scan && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e) {
            return 0;
        }
    }
    /* i == max_scan means no terminator within the limit: too long. */
    return i >= 1 && i <= DUO_REVOCATION_CODE_MAX && i < max_scan;
}

ProtobufCBinaryData duo__wire_bd(const uint8_t *p, size_t n) {
    ProtobufCBinaryData bd;
    bd.len = n;
    bd.data = (uint8_t *)(uintptr_t)p;
    return bd;
}

int duo__wire_pack(uint8_t **out, size_t *out_len, const ProtobufCMessage *m) {
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *b;

    if (n > DUO_WIRE_MAX_MSG) {
        return DUO_E_MSG_TOO_LARGE;
    }
    if ((b = malloc(n == 0 ? 1 : n)) == NULL) {
        return DUO_E_NOMEM;
    }
    if (protobuf_c_message_pack(m, b) != n) {
        duo_memzero(b, n);
        free(b);
        return DUO_E_INTERNAL;
    }
    *out = b;
    *out_len = n;
    return DUO_OK;
}
