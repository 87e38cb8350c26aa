/* libFuzzer target: the device (P2) consuming EnrollPdlOpenResponse after on_pdl_challenge (see engine_fuzz.h for the setup).
 * Anything but the honest response must fail (alpha*G opening, alpha*G = a*Q1 + b*G)
 * and leave no key; the honest one is skipped (scrypt ran at setup). */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_OPEN_RESP);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_pdl_open_resp resp;
    duo_p2_enroll *s;
    duo_p2_key *k = NULL;
    int r;

    memset(&resp, 0, sizeof resp);
    if (duo_wire_parse_enroll_pdl_open_resp(&resp, data, size) != DUO_OK) return 0;
    if (FZ_EQ(&resp, &fz.e7)) return 0;
    s = fz_p2e_at(FZ_E_OPEN_RESP);
    r = duo_p2_enroll_on_pdl_open(s, &resp);
    FZ_ASSERT(r != DUO_OK);
    FZ_ASSERT(duo_p2_enroll_take_key(s, &k) != DUO_OK && k == NULL);
    duo_p2_enroll_free(s);
    return 0;
}
