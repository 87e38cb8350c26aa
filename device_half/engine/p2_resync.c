/* duosign P2: the PIN proof of the resynchronisation after a restore of the
 * cloud's store (duosign/resync.h, docs/SECURITY.md 1.10). */
#include <string.h>

#include "duosign/mem.h"
#include "duosign/resync.h"
#include "p2_internal.h"

/* x2 = x2' + KDF(PIN): a wrong PIN proves another point, which the cloud
 * counts as a wrong PIN (as in SignFinish). x2 is wiped on every path. */
int duo_p2_resync_proof(const duo_ec *ec, uint8_t proof[DUO_DLOG_PROOF_BYTES], const duo_p2_key *key,
                        const uint8_t *pin, size_t pin_len, const duo_binding *bind, const duo_rng *rng) {
    duo_scalar x2;
    duo_point x2g;
    duo_dlog_proof pok;
    int r;
    if (ec == NULL || proof == NULL || key == NULL || pin == NULL || bind == NULL) return DUO_E_INVALID_ARG;
    memset(proof, 0, DUO_DLOG_PROOF_BYTES);
    if ((r = duo__p2_pin_unmask(ec, &x2, &key->x2_masked, pin, pin_len, key->pin_salt)) != DUO_OK) goto out;
    if ((r = duo_point_mul_base(ec, &x2g, &x2)) != DUO_OK) goto out;
    duo__declassify(&x2g, sizeof x2g); /* the cloud holds Q2; a wrong PIN's point is in the proof anyway */
    if ((r = duo_dlog_prove(ec, &pok, &x2, &x2g, bind, DUO_RESYNC_PURPOSE, rng)) != DUO_OK) goto out;
    duo_dlog_proof_serialize(ec, proof, &pok);
out:
    duo_memzero(&x2, sizeof x2);
    duo_memzero(&pok, sizeof pok);
    return r;
}
