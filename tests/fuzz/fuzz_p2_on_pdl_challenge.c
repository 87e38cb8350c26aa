/* libFuzzer target: the device (P2) consuming EnrollPdlChallengeResponse after on_key_share (see engine_fuzz.h for the setup).
 * Any commitment is taken; the honest one gives exactly the honest open request; the
 * honest opening then checks out only against the honest commitment. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_PDL_RESP);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_pdl_challenge_resp resp;
    duo_enroll_pdl_open_req next;
    duo_p2_enroll *s;
    int r;

    memset(&resp, 0, sizeof resp);
    if (duo_wire_parse_enroll_pdl_challenge_resp(&resp, data, size) != DUO_OK) return 0;
    s = fz_p2e_at(FZ_E_PDL_RESP);
    r = duo_p2_enroll_on_pdl_challenge(s, &resp, &next);
    if (FZ_EQ(&resp, &fz.e5)) FZ_ASSERT(r == DUO_OK && FZ_EQ(&next, &fz.e6));
    if (r == DUO_OK) {
        /* Cheap unless the commitment is the honest one (then scrypt masks x2). */
        if (!FZ_EQ(&resp, &fz.e5)) FZ_ASSERT(duo_p2_enroll_on_pdl_open(s, &fz.e7) != DUO_OK);
    } else {
        FZ_ASSERT(duo_p2_enroll_on_pdl_challenge(s, &resp, &next) == DUO_E_SESSION_FAILED);
    }
    duo_p2_enroll_free(s);
    return 0;
}
