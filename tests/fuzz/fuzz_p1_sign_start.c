/* libFuzzer target: the cloud (P1) consuming SignStartRequest (a new session on the honest key) (see engine_fuzz.h for the setup).
 * Any request is answered (the MAC is the caller's job); the honest one gives the honest
 * response. The honest finish request then yields a signature only for the\n * honest start request, and only the honest signature. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_S_START_REQ);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_sign_start_req req;
    duo_sign_start_resp resp;
    duo_sign_finish_resp fin;
    duo_p1_sign *s = NULL;
    int r;

    memset(&req, 0, sizeof req);
    if (duo_wire_parse_sign_start_req(&req, data, size) != DUO_OK) return 0;
    fz_rng_restore(&fz.rng1, &fz.rng_at[FZ_S_START_REQ]);
    FZ_ASSERT(duo_p1_sign_new(&s, fz.ec, &fz.rng1.rng, fz.k1) == DUO_OK);
    r = duo_p1_sign_start(s, &req, &resp);
    if (FZ_EQ(&req, &fz.s0)) FZ_ASSERT(r == DUO_OK && FZ_EQ(&resp, &fz.s1));
    if (r == DUO_OK) {
        r = duo_p1_sign_finish(s, &fz.s2, &fin);
        if (r == DUO_OK) FZ_ASSERT(memcmp(fin.signature, fz.sig, 64) == 0);
        /* The MAC is not the engine's business: only it may differ. */
        if (r == DUO_OK) FZ_ASSERT(memcmp(&req, &fz.s0, offsetof(duo_sign_start_req, mac)) == 0);
    }
    duo_p1_sign_free(s);
    return 0;
}
