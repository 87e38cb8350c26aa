/* duosign-rp redeem: RedeemPresentation and the document it returns
 * (redeem.h). */
#include "redeem.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "duosign/errors.h"
#include "relying_party.pb-c.h"

#define METHOD "/duosign.v1.RelyingParty/RedeemPresentation"

static void print_doc(const Duosign__V1__RedeemPresentationResponse *m) {
    char tb[64];
    time_t t = (time_t)m->issued_at;
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(tb, sizeof tb, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(tb, sizeof tb, "%lld", (long long)m->issued_at);
    printf("citizen: %s\ndocument: %s\n", m->citizen_id, m->doc_type);
    for (size_t i = 0; i < m->n_attributes; i++) printf("  %s = %s\n", m->attributes[i]->name, m->attributes[i]->value);
    if (m->photo.len) printf("  photo: %zu bytes\n", m->photo.len);
    printf("code made at: %s\n", tb);
}

int duo_rp_redeem(duo_grpc_transport *t, const char *code, const char *doc_type) {
    Duosign__V1__RedeemPresentationRequest q = DUOSIGN__V1__REDEEM_PRESENTATION_REQUEST__INIT;
    Duosign__V1__RedeemPresentationResponse *m;
    char msg[512] = "";
    uint8_t *b, *resp = NULL;
    size_t n, rl = 0;
    int r;
    q.code = (char *)code;
    q.doc_type = (char *)doc_type;
    n = protobuf_c_message_get_packed_size(&q.base);
    if (!(b = malloc(n ? n : 1))) return DUO_E_NOMEM;
    protobuf_c_message_pack(&q.base, b);
    r = duo_grpc_transport_call(t, METHOD, b, n, &resp, &rl, msg, sizeof msg);
    free(b);
    if (r != DUO_OK) {
        fprintf(stderr, "duosign-rp: redeem refused: %s (%s)\n", msg[0] ? msg : duo_strerror(r), duo_err_name(r));
        return r;
    }
    m = duosign__v1__redeem_presentation_response__unpack(NULL, rl, resp ? resp : (const uint8_t *)"");
    duo_grpc_transport_free_resp(t, resp, rl);
    if (!m) return DUO_E_DECODE;
    print_doc(m);
    duosign__v1__redeem_presentation_response__free_unpacked(m, NULL);
    return DUO_OK;
}
