/* libFuzzer target template for one wire message, built once per message as
 * fuzz_wire_<message> with -DDUO_FUZZ_MSG=<message> (tests/fuzz/CMakeLists.txt).
 *
 * Properties checked on every input:
 *   - parse returns DUO_OK or one of the documented encoding errors
 *     (MSG_TOO_LARGE, DECODE, BAD_FIELD; NOMEM tolerated);
 *   - a failed parse leaves the output struct all zero (nothing half-filled,
 *     no secret bytes left behind);
 *   - roundtrip: a parsed message builds, the build parses again to an equal
 *     struct, and building that gives byte-identical output (canonical);
 *   - differential: that output equals what plain protobuf-c gives when it
 *     decodes the same input and re-encodes it without unknown fields, so
 *     the wire layer neither drops, truncates nor alters an accepted field;
 *   - the MAC input of a parsed request can be computed.
 * Sanitizers (address, undefined) catch memory errors and leaks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire_msgs.h"

#ifndef DUO_FUZZ_MSG
#error "define DUO_FUZZ_MSG=<message>, e.g. -DDUO_FUZZ_MSG=sign_start_req"
#endif
#define FZ_CAT_(a, b) a##b
#define FZ_CAT(a, b) FZ_CAT_(a, b)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_fail(const char *what, int r) {
    fprintf(stderr, "fuzz_wire_%s: %s (%s)\n", fz_wire_table[FZ_CAT(FZ_MSG_, DUO_FUZZ_MSG)].name, what,
            duo_err_name(r));
    abort();
}

static int fz_all_zero(const void *p, size_t n) {
    const uint8_t *b = p;
    size_t i;
    uint8_t acc = 0;
    for (i = 0; i < n; i++) {
        acc |= b[i];
    }
    return acc == 0;
}

/* Plain protobuf-c: decode `data`, drop unknown fields, re-encode. The
 * encoding is canonical (fields in number order, proto3 defaults omitted), as
 * is the wire builder's. Returns a malloc'd buffer, or NULL if protobuf-c
 * rejects the input. */
static uint8_t *fz_reference_encoding(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t size,
                                      size_t *out_len) {
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, size, data);
    unsigned n_unknown;
    uint8_t *out;
    if (m == NULL) {
        return NULL;
    }
    n_unknown = m->n_unknown_fields;
    m->n_unknown_fields = 0;
    *out_len = protobuf_c_message_get_packed_size(m);
    if ((out = malloc(*out_len + 1)) == NULL) {
        abort();
    }
    protobuf_c_message_pack(m, out);
    m->n_unknown_fields = n_unknown;
    protobuf_c_message_free_unpacked(m, NULL);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const fz_entry *e = &fz_wire_table[FZ_CAT(FZ_MSG_, DUO_FUZZ_MSG)];
    fz_any a, b;
    uint8_t *enc1 = NULL, *enc2 = NULL;
    size_t n1 = 0, n2 = 0;
    uint8_t mi[32];
    int r;

    memset(&a, 0xa5, sizeof a);
    r = e->parse(&a, data, size);
    if (r != DUO_OK) {
        if (r != DUO_E_DECODE && r != DUO_E_BAD_FIELD && r != DUO_E_MSG_TOO_LARGE && r != DUO_E_NOMEM) {
            fz_fail("unexpected parse error", r);
        }
        if (!fz_all_zero(&a, e->size)) {
            fz_fail("failed parse left bytes in the output", r);
        }
        return 0;
    }
    if ((r = e->build(&enc1, &n1, &a)) != DUO_OK) {
        fz_fail("parsed message does not build", r);
    }
    if ((r = e->parse(&b, enc1, n1)) != DUO_OK) {
        fz_fail("built message does not parse", r);
    }
    if (!e->eq(&a, &b)) {
        fz_fail("roundtrip changed the message", DUO_OK);
    }
    if ((r = e->build(&enc2, &n2, &b)) != DUO_OK) {
        fz_fail("re-parsed message does not build", r);
    }
    if (n1 != n2 || memcmp(enc1, enc2, n1) != 0) {
        fz_fail("encoding is not canonical", DUO_OK);
    }
    {
        size_t nref = 0;
        uint8_t *ref = fz_reference_encoding(e->desc, data, size, &nref);
        if (ref == NULL) {
            fz_fail("protobuf-c rejects what the wire layer accepted", DUO_OK);
        }
        if (nref != n1 || memcmp(ref, enc1, n1) != 0) {
            fz_fail("wire layer output differs from protobuf-c's re-encoding", DUO_OK);
        }
        free(ref);
    }
    if (e->mac_input != NULL && (r = e->mac_input(mi, &a)) != DUO_OK) {
        fz_fail("mac input failed", r);
    }
    free(enc1);
    free(enc2);
    e->free_(&a);
    e->free_(&b);
    return 0;
}
