/* libFuzzer target: the device (P2) consuming SignStartResponse after sign_start (see engine_fuzz.h for the setup).
 * Anything but the honest response must fail (PoK(k1) bound to the sid, R1 on the curve,
 * r != 0); the honest one is skipped (its scrypt PIN proof ran at setup). */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_S_START_RESP);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_sign_start_resp resp;
    duo_sign_finish_req next;
    duo_p2_sign *s;
    int r;

    memset(&resp, 0, sizeof resp);
    if (duo_wire_parse_sign_start_resp(&resp, data, size) != DUO_OK) return 0;
    if (FZ_EQ(&resp, &fz.s1)) return 0;
    s = fz_p2s_at(FZ_S_START_RESP);
    memset(&next, 0xa5, sizeof next);
    r = duo_p2_sign_on_start(s, &resp, &next);
    FZ_ASSERT(r != DUO_OK);
    FZ_ASSERT(next.buf == NULL);
    FZ_ASSERT(duo_p2_sign_on_start(s, &resp, &next) == DUO_E_SESSION_FAILED);
    duo_p2_sign_free(s);
    return 0;
}
