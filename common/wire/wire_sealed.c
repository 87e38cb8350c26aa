/* duosign wire layer: the inner channel's envelope (proto Sealed) <->
 * duo_ch_record, and ChannelKey. Checks every length before the channel
 * sees a field. */
#include <stdlib.h>
#include <string.h>

#include "duosign/inner_channel.h"
#include "wire_internal.h"

int duo_wire_is_sealed(const uint8_t *in, size_t in_len) {
    /* The tag of field 2001 (varint): 2001 << 3 = 16008 = 0x88 0x7d. A plain
     * message's first tag names a field below 128 (one byte < 0x80). */
    return in != NULL && in_len >= 2 && in[0] == 0x88 && in[1] == 0x7d;
}

/* An optional fixed-size bytes field: absent (0 bytes) or exactly n. */
static int opt_fixed(uint8_t *dst, int *has, size_t n, const ProtobufCBinaryData *f) {
    *has = 0;
    if (f->len == 0) return DUO_OK;
    if (f->len != n) return DUO_E_CHANNEL_MALFORMED;
    memcpy(dst, f->data, n);
    *has = 1;
    return DUO_OK;
}

int duo_wire_parse_sealed(duo_ch_record *out, uint8_t **buf, const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    int r;
    memset(out, 0, sizeof *out);
    *buf = NULL;
    if (!duo_wire_is_sealed(in, in_len)) return DUO_E_CHANNEL_MALFORMED;
    if (in_len > DUO_WIRE_MAX_MSG + DUO_WIRE_SEALED_OVERHEAD) return DUO_E_MSG_TOO_LARGE;
    if ((r = duo__wire_unpack(&pm, &duosign__v1__sealed__descriptor, in, in_len)) != DUO_OK) {
        r = r == DUO_E_DECODE ? DUO_E_CHANNEL_MALFORMED : r;
        goto out;
    }
    const Duosign__V1__Sealed *m = (const Duosign__V1__Sealed *)pm;
    /* Strict: a field this version does not know (an altered tag) is refused,
     * never skipped, so no byte of the envelope goes unchecked. */
    if (pm->n_unknown_fields != 0) {
        r = DUO_E_CHANNEL_MALFORMED;
        goto out;
    }
    if (m->channel_version != DUO_WIRE_CHANNEL_VERSION || m->ciphertext.len < DUO_CH_TAG_BYTES ||
        m->ciphertext.len > DUO_WIRE_MAX_MSG + DUO_CH_TAG_BYTES) {
        r = m->channel_version != DUO_WIRE_CHANNEL_VERSION ? DUO_E_UNSUPPORTED : DUO_E_CHANNEL_MALFORMED;
        goto out;
    }
    if ((r = opt_fixed(out->ephemeral, &out->has_ephemeral, DUO_CH_PUB_BYTES, &m->ephemeral)) != DUO_OK ||
        (r = opt_fixed(out->channel_id, &out->has_channel_id, DUO_CH_ID_BYTES, &m->channel_id)) != DUO_OK ||
        (r = opt_fixed(out->key_id, &out->has_key_id, DUO_CH_KEY_ID_BYTES, &m->key_id)) != DUO_OK)
        goto out;
    out->static_id = m->static_key;
    out->counter = m->counter;
    out->rekey = m->rekey ? 1 : 0;
    if (!(*buf = malloc(m->ciphertext.len))) {
        r = DUO_E_NOMEM;
        goto out;
    }
    memcpy(*buf, m->ciphertext.data, m->ciphertext.len);
    out->ct = *buf;
    out->ct_len = m->ciphertext.len;
out:
    if (r != DUO_OK) memset(out, 0, sizeof *out);
    duo__wire_unpacked_free(pm);
    return r;
}

int duo_wire_build_sealed(uint8_t **out, size_t *out_len, const duo_ch_record *rec) {
    if (!rec || !rec->ct || rec->ct_len < DUO_CH_TAG_BYTES) return DUO_E_INVALID_ARG;
    Duosign__V1__Sealed m = DUOSIGN__V1__SEALED__INIT;
    m.channel_version = DUO_WIRE_CHANNEL_VERSION;
    m.static_key = rec->static_id;
    if (rec->has_ephemeral) m.ephemeral = DUO__BD(rec->ephemeral);
    if (rec->has_channel_id) m.channel_id = DUO__BD(rec->channel_id);
    if (rec->has_key_id) m.key_id = DUO__BD(rec->key_id);
    m.counter = rec->counter;
    m.ciphertext = duo__wire_bd(rec->ct, rec->ct_len);
    m.rekey = rec->rekey ? 1 : 0;
    *out = NULL;
    *out_len = 0;
    size_t n = protobuf_c_message_get_packed_size(&m.base);
    if (n > DUO_WIRE_MAX_MSG + DUO_WIRE_SEALED_OVERHEAD) return DUO_E_MSG_TOO_LARGE;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return DUO_E_NOMEM;
    *out_len = protobuf_c_message_pack(&m.base, b);
    *out = b;
    return DUO_OK;
}

int duo_wire_parse_channel_key_resp(uint32_t *number, uint8_t pub[32], const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    int r = duo__wire_unpack(&pm, &duosign__v1__channel_key_response__descriptor, in, in_len);
    if (r != DUO_OK) return r;
    const Duosign__V1__ChannelKeyResponse *m = (const Duosign__V1__ChannelKeyResponse *)pm;
    r = duo__wire_fixed(pub, 32, &m->public_key);
    if (r == DUO_OK) *number = m->key_number;
    duo__wire_unpacked_free(pm);
    return r;
}

int duo_wire_build_channel_key_resp(uint8_t **out, size_t *out_len, uint32_t number, const uint8_t pub[32]) {
    Duosign__V1__ChannelKeyResponse m = DUOSIGN__V1__CHANNEL_KEY_RESPONSE__INIT;
    m.key_number = number;
    m.public_key = duo__wire_bd(pub, 32);
    return duo__wire_pack(out, out_len, &m.base);
}

int duo_wire_parse_channel_key_req(const uint8_t *in, size_t in_len) {
    ProtobufCMessage *pm = NULL;
    int r = duo__wire_unpack(&pm, &duosign__v1__channel_key_request__descriptor, in, in_len);
    duo__wire_unpacked_free(pm);
    return r;
}
