/* libFuzzer target: the device (P2) consuming SignFinishResponse after on_start (see engine_fuzz.h for the setup).
 * A signature comes out only if it is the honest one (valid, low-S, under Q, on the
 * digest); the rotate seed is opaque to the engine. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_S_FINISH_RESP);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_sign_finish_resp resp;
    duo_p2_sign *s;
    uint8_t sig[64];
    int r;

    memset(&resp, 0, sizeof resp);
    if (duo_wire_parse_sign_finish_resp(&resp, data, size) != DUO_OK) return 0;
    s = fz_p2s_at(FZ_S_FINISH_RESP);
    memset(sig, 0, sizeof sig);
    r = duo_p2_sign_on_finish(s, &resp, sig);
    FZ_ASSERT((r == DUO_OK) == (memcmp(resp.signature, fz.sig, 64) == 0));
    if (r == DUO_OK) FZ_ASSERT(memcmp(sig, fz.sig, 64) == 0);
    FZ_ASSERT(duo_p2_sign_on_finish(s, &resp, sig) != DUO_OK);
    duo_p2_sign_free(s);
    return 0;
}
