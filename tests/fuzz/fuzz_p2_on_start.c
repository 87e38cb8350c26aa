/* libFuzzer target: the device (P2) consuming EnrollStartResponse after enroll_start (see engine_fuzz.h for the setup).
 * Any response is taken (key id, nonce and commitment are opaque here); the honest one
 * gives exactly the honest key share request. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_START_RESP);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_start_resp resp;
    duo_enroll_key_share_req next;
    duo_p2_enroll *s;
    int r;

    memset(&resp, 0, sizeof resp);
    if (duo_wire_parse_enroll_start_resp(&resp, data, size) != DUO_OK) return 0;
    s = fz_p2e_at(FZ_E_START_RESP);
    r = duo_p2_enroll_on_start(s, &resp, &next);
    if (FZ_EQ(&resp, &fz.e1)) FZ_ASSERT(r == DUO_OK && FZ_EQ(&next, &fz.e2));
    if (r == DUO_OK) {
        FZ_ASSERT(memcmp(next.sid, duo_p2_enroll_sid(s), DUO_SID_BYTES) == 0);
        /* The honest key share opens the honest commitment only: fails cheaply unless honest. */
        if (!FZ_EQ(&resp, &fz.e1)) {
            duo_enroll_pdl_challenge_req pc;
            memset(&pc, 0, sizeof pc);
            FZ_ASSERT(duo_p2_enroll_on_key_share(s, &fz.e3, &pc) != DUO_OK && pc.buf == NULL);
        }
    } else {
        FZ_ASSERT(duo_p2_enroll_on_start(s, &resp, &next) == DUO_E_SESSION_FAILED);
    }
    duo_p2_enroll_free(s);
    return 0;
}
