/* libFuzzer target: the cloud (P1) consuming SignFinishRequest in state STARTED (honest start) (see engine_fuzz.h for the setup).
 * A signature comes out only for the honest request (up to its MAC, the caller's job),
 * and it is the honest signature; any other request fails and consumes the session. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_S_FINISH_REQ);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_sign_finish_req req;
    duo_sign_finish_resp resp;
    duo_p1_sign *s;
    int r;

    memset(&req, 0, sizeof req);
    if (duo_wire_parse_sign_finish_req(&req, data, size) != DUO_OK) return 0;
    s = fz_p1s_started();
    r = duo_p1_sign_finish(s, &req, &resp);
    if (fz_eq_sign_finish_req_nomac(&req, &fz.s2)) FZ_ASSERT(r == DUO_OK);
    if (r == DUO_OK) {
        /* c3 may differ from the honest one only in its encryption
         * randomness (or by multiples of q in the plaintext, which only the
         * device can choose): the decrypted s must then give the honest
         * signature. Every other field must be the honest one. */
        FZ_ASSERT(fz_eq_sign_finish_req_noc3(&req, &fz.s2));
        FZ_ASSERT(memcmp(resp.signature, fz.sig, 64) == 0);
    }
    FZ_ASSERT(duo_p1_sign_finish(s, &fz.s2, &resp) != DUO_OK); /* consumed */
    duo_p1_sign_free(s);
    duo_wire_free_sign_finish_req(&req);
    return 0;
}
