/* libFuzzer target: the cloud (P1) consuming EnrollPdlOpenRequest in state CHALLENGED (see engine_fuzz.h for the setup).
 * Only the honest (a, b, opening) may open alpha*G (else the cloud is a decryption
 * oracle); the response is then the honest one. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_OPEN_REQ);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_pdl_open_req req;
    duo_enroll_pdl_open_resp resp;
    duo_p1_enroll *s;
    int r;

    memset(&req, 0, sizeof req);
    if (duo_wire_parse_enroll_pdl_open_req(&req, data, size) != DUO_OK) return 0;
    s = fz_p1e_at(FZ_E_OPEN_REQ);
    r = duo_p1_enroll_pdl_open(s, &req, &resp);
    FZ_ASSERT((r == DUO_OK) == FZ_EQ(&req, &fz.e6));
    if (r == DUO_OK) {
        FZ_ASSERT(FZ_EQ(&resp, &fz.e7));
    } else {
        FZ_ASSERT(duo_p1_enroll_pdl_open(s, &req, &resp) == DUO_E_SESSION_FAILED);
    }
    duo_p1_enroll_free(s);
    return 0;
}
