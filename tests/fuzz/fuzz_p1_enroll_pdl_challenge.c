/* libFuzzer target: the cloud (P1) consuming EnrollPdlChallengeRequest in state SHARED (see engine_fuzz.h for the setup).
 * Any valid ciphertext is decrypted and committed to; the honest request gives exactly
 * the honest response; a wrong sid fails. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_PDL_REQ);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_pdl_challenge_req req;
    duo_enroll_pdl_challenge_resp resp;
    duo_p1_enroll *s;
    duo_enroll_pdl_open_resp open_resp;
    int r, honest;

    memset(&req, 0, sizeof req);
    if (duo_wire_parse_enroll_pdl_challenge_req(&req, data, size) != DUO_OK) return 0;
    honest = fz_eq_pdl_challenge_req(&req, &fz.e4);
    s = fz_p1e_at(FZ_E_PDL_REQ);
    r = duo_p1_enroll_pdl_challenge(s, &req, &resp);
    if (honest) FZ_ASSERT(r == DUO_OK && FZ_EQ(&resp, &fz.e5));
    if (r == DUO_OK) {
        FZ_ASSERT(memcmp(req.sid, fz.e4.sid, DUO_SID_BYTES) == 0);
        /* The honest opening only opens the honest (a, b) commitment. */
        r = duo_p1_enroll_pdl_open(s, &fz.e6, &open_resp);
        /* c' may differ from the honest one in its encryption randomness:
         * round 4 checked that it decrypts to a*x1 + b for the committed
         * (a, b), so only the commitment must be the honest one. */
        if (r == DUO_OK) FZ_ASSERT(memcmp(req.ab_commitment, fz.e4.ab_commitment, 32) == 0);
    } else {
        FZ_ASSERT(duo_p1_enroll_pdl_challenge(s, &req, &resp) == DUO_E_SESSION_FAILED);
    }
    duo_p1_enroll_free(s);
    duo_wire_free_enroll_pdl_challenge_req(&req);
    return 0;
}
