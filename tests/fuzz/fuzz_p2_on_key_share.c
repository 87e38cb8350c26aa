/* libFuzzer target: the device (P2) consuming EnrollKeyShareResponse after on_start (see engine_fuzz.h for the setup).
 * Anything but the honest response must fail (Q1 opening, PoK(x1), N checks, L_N,
 * Pi-mod, ckey range proof); the honest one is skipped: its proofs were
 * verified at setup (hundreds of ms). Inputs that get past the cheap checks
 * run the real proof verification (slow execs are expected there). */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_SHARE_RESP);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_key_share_resp resp;
    duo_enroll_pdl_challenge_req next;
    duo_p2_enroll *s;
    int r;

    memset(&resp, 0, sizeof resp);
    if (duo_wire_parse_enroll_key_share_resp(&resp, data, size) != DUO_OK) return 0;
    if (fz_eq_key_share_resp(&resp, &fz.e3)) {
        duo_wire_free_enroll_key_share_resp(&resp);
        return 0;
    }
    s = fz_p2e_at(FZ_E_SHARE_RESP);
    memset(&next, 0xa5, sizeof next);
    r = duo_p2_enroll_on_key_share(s, &resp, &next);
    FZ_ASSERT(r != DUO_OK);
    FZ_ASSERT(next.buf == NULL);
    FZ_ASSERT(duo_p2_enroll_on_key_share(s, &resp, &next) == DUO_E_SESSION_FAILED);
    duo_p2_enroll_free(s);
    duo_wire_free_enroll_key_share_resp(&resp);
    return 0;
}
