/* libFuzzer target: the cloud (P1) consuming EnrollKeyShareRequest in state STARTED (see engine_fuzz.h for the setup).
 * A request other than the honest one must fail (it cannot carry a valid PoK of x2 bound
 * to this sid); the honest one is skipped: its Paillier proofs (seconds) ran at setup. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_SHARE_REQ);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_key_share_req req;
    duo_enroll_key_share_resp resp;
    duo_p1_enroll *s;
    int r;

    memset(&req, 0, sizeof req);
    if (duo_wire_parse_enroll_key_share_req(&req, data, size) != DUO_OK) return 0;
    if (FZ_EQ(&req, &fz.e2)) return 0;
    s = fz_p1e_at(FZ_E_SHARE_REQ);
    memset(&resp, 0xa5, sizeof resp);
    r = duo_p1_enroll_key_share(s, &req, &resp);
    FZ_ASSERT(r != DUO_OK);
    FZ_ASSERT(resp.buf == NULL);
    FZ_ASSERT(duo_p1_enroll_key_share(s, &req, &resp) == DUO_E_SESSION_FAILED);
    duo_p1_enroll_free(s);
    return 0;
}
