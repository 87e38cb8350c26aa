/* duosign device library: documents: a presentation code for one of the
 * citizen's documents (docs/DOCUMENTS.md). */
#include <string.h>

#include "device_internal.h"
#include "duosign/mem.h"

int duo_device_presentation_code(duo_device_ctx *ctx, const char *doc_type, duo_device_presentation *out) {
    int r;
    duo_presentation_code_req req;
    duo_presentation_code_resp resp;
    uint8_t mi[32];

    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (out == NULL) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    memset(out, 0, sizeof *out);
    memset(&req, 0, sizeof req);
    memset(&resp, 0, sizeof resp);
    if (!duo_wire_doc_type_ok(doc_type)) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    memcpy(req.doc_type, doc_type, strlen(doc_type) + 1);
    if ((r = duo__dev_fill_mac_req(ctx, req.key_id, req.device_nonce)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_presentation_code(mi, &req)) != DUO_OK) goto out;
    if ((r = duo_mac_compute(req.mac, ctx->key->device_secret, mi)) != DUO_OK) goto out;
    DUO__RPC(ctx, "PresentationCode", duo_wire_build_presentation_code_req, &req, duo_wire_parse_presentation_code_resp,
             &resp, r, out);
    memcpy(out->code, resp.code, sizeof out->code);
    memcpy(out->barcode, resp.barcode, sizeof out->barcode);
    out->issued_at = resp.issued_at;
    out->expires_at = resp.expires_at;
out:
    duo_memzero(mi, sizeof mi);
    duo_memzero(&resp, sizeof resp);
    return duo__dev_finish(ctx, r);
}
