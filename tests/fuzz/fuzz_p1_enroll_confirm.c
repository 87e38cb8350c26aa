/* libFuzzer target: the cloud (P1) consuming EnrollConfirmRequest in state OPENED (see engine_fuzz.h for the setup).
 * Succeeds exactly for the honest request (sid, Q, MAC under the first device secret);
 * the key taken then is the honest one. */
#include "engine_fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init(FZ_E_CONFIRM_REQ);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_enroll_confirm_req req;
    duo_p1_enroll *s;
    duo_p1_key *k = NULL;
    uint8_t secret[32], qb[33];
    int r;

    memset(&req, 0, sizeof req);
    if (duo_wire_parse_enroll_confirm_req(&req, data, size) != DUO_OK) return 0;
    s = fz_p1e_at(FZ_E_CONFIRM_REQ);
    r = duo_p1_enroll_confirm(s, &req);
    FZ_ASSERT((r == DUO_OK) == FZ_EQ(&req, &fz.e8));
    if (r == DUO_OK) {
        FZ_ASSERT(duo_p1_enroll_take_key(s, &k, secret) == DUO_OK);
        duo_point_serialize(fz.ec, qb, &k->q);
        FZ_ASSERT(memcmp(qb, fz.e8.public_key, 33) == 0 && memcmp(secret, fz.cloud_secret, 32) == 0);
        duo_p1_key_free(k);
    } else {
        FZ_ASSERT(duo_p1_enroll_take_key(s, &k, secret) == DUO_E_SESSION_FAILED && k == NULL);
    }
    duo_p1_enroll_free(s);
    return 0;
}
