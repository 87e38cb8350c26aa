/* duosign-cloud: RelyingParty.RedeemPresentation (issue 19,
 * proto/relying_party.proto, docs/DOCUMENTS.md). The caller is the
 * registered RP its client certificate names (c->caller); the redemption
 * itself is present.c's: the RP's limits, the code's form, the store's one
 * transaction (exactly once), an audit entry naming the RP for a redemption
 * and for every refusal. The answer carries the document and the time the
 * code was made. */
#include <stdio.h>
#include <string.h>

#include "docstore.h"
#include "present.h"
#include "relying_party.pb-c.h"
#include "rpc.h"

static int answer(const duo_doc_row *doc, const duo_code_row *row, uint8_t **resp, size_t *resp_len) {
    Duosign__V1__RedeemPresentationResponse m = DUOSIGN__V1__REDEEM_PRESENTATION_RESPONSE__INIT;
    Duosign__V1__DocumentAttribute attrs[DUO_DOC_ATTRS_MAX], *ptrs[DUO_DOC_ATTRS_MAX];
    for (size_t i = 0; i < doc->n_attrs; i++) {
        duosign__v1__document_attribute__init(&attrs[i]);
        attrs[i].name = (char *)(uintptr_t)doc->attrs[i].name;
        attrs[i].value = (char *)(uintptr_t)doc->attrs[i].value;
        ptrs[i] = &attrs[i];
    }
    m.citizen_id = (char *)(uintptr_t)doc->citizen_id;
    m.doc_type = (char *)(uintptr_t)doc->doc_type;
    m.n_attributes = doc->n_attrs;
    m.attributes = ptrs;
    m.photo.data = (uint8_t *)(uintptr_t)doc->photo;
    m.photo.len = doc->photo_len;
    m.issued_at = row->issued_at;
    size_t n = protobuf_c_message_get_packed_size(&m.base);
    uint8_t *o = malloc(n ? n : 1);
    if (!o) return DUO_E_NOMEM;
    protobuf_c_message_pack(&m.base, o);
    *resp = o;
    *resp_len = n;
    return DUO_OK;
}

int duo__rpc_rp_redeem(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    ProtobufCMessage *pm = NULL;
    duo_doc_row *doc = NULL;
    duo_code_row row;
    char why[256];
    int r;
    if (in_len > DUO_WIRE_MAX_MSG) return DUO_E_MSG_TOO_LARGE;
    if (!(pm = protobuf_c_message_unpack(&duosign__v1__redeem_presentation_request__descriptor, NULL, in_len, in)))
        return DUO_E_DECODE;
    const Duosign__V1__RedeemPresentationRequest *m = (const void *)pm;
    if (!(doc = malloc(sizeof *doc))) {
        r = DUO_E_NOMEM;
        goto out;
    }
    r = duo__present_redeem(c->ks, c->redeem, c->caller->name, m->code, m->doc_type, doc, &row, why, sizeof why);
    if (r != DUO_OK) {
        DETAIL(c->info, "%s", why);
        goto out;
    }
    r = answer(doc, &row, resp, resp_len);
out:
    protobuf_c_message_free_unpacked(pm, NULL);
    free(doc);
    return r;
}
