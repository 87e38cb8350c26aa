/* Schnorr proof of knowledge of x with X = x*G (Fiat-Shamir).
 *   A = k*G
 *   e = challenge(transcript("duosign/v1/dlog", sid, role,
 *                            BYTES "purpose", POINT "X", POINT "A"), "e") mod q
 *   z = k + e*x mod q
 * Verify: z*G == A + e*X.
 * x and k are handled only by libsecp256k1's constant-time routines
 * (pubkey_create, seckey tweak add/mul); e, A, z and X are public. */
#include "duosign/dlog_proof.h"

#include <string.h>

#include "duosign/mem.h"

#define DUO__DLOG_DOMAIN "duosign/v1/dlog"

/* e = H(domain, bind, purpose, X, A) mod q. DUO_E_BAD_SCALAR if e == 0. */
static int duo__dlog_challenge(const duo_ec *ec, duo_scalar *e, const duo_point *X, const duo_point *A,
                               const duo_binding *bind, const char *purpose) {
    duo_transcript t;
    uint8_t h[32];
    int r;

    if ((r = duo_transcript_init(&t, DUO__DLOG_DOMAIN)) != DUO_OK) {
        return r;
    }
    duo_transcript_binding(&t, bind);
    duo_transcript_bytes(&t, "purpose", (const uint8_t *)purpose, strlen(purpose));
    duo_transcript_point(&t, ec, "X", X);
    duo_transcript_point(&t, ec, "A", A);
    r = duo_transcript_challenge(&t, "e", h, sizeof h);
    duo_transcript_free(&t);
    if (r == DUO_OK) {
        r = duo_scalar_reduce32(ec, e, h);
    }
    return r;
}

int duo_dlog_prove(const duo_ec *ec, duo_dlog_proof *out, const duo_scalar *x, const duo_point *X,
                   const duo_binding *bind, const char *purpose, const duo_rng *rng) {
    int r = DUO_E_INTERNAL;
    duo_scalar k, e, ex, z;
    duo_point A, xg;
    int attempt;

    if (ec == NULL || out == NULL || x == NULL || X == NULL || bind == NULL || purpose == NULL) {
        return DUO_E_INVALID_ARG;
    }
    memset(out, 0, sizeof *out);
    /* Refuse to prove a false statement (X must be x*G). Both points are
     * public once equal. */
    if ((r = duo_point_mul_base(ec, &xg, x)) != DUO_OK) {
        goto out;
    }
    duo__declassify(&xg, sizeof xg); /* = X, public, or the call fails */
    if (!duo_point_eq_var(ec, &xg, X)) {
        r = DUO_E_INVALID_ARG;
        goto out;
    }
    /* e == 0 or z == 0 happen with probability ~2^-256; retry with a fresh
     * nonce rather than emit a proof the verifier would reject. */
    for (attempt = 0; attempt < 4; attempt++) {
        if ((r = duo_scalar_random(ec, &k, rng)) != DUO_OK) {
            goto out;
        }
        if ((r = duo_point_mul_base(ec, &A, &k)) != DUO_OK) {
            goto out;
        }
        duo__declassify(&A, sizeof A); /* the commitment is sent */
        r = duo__dlog_challenge(ec, &e, X, &A, bind, purpose);
        if (r == DUO_E_BAD_SCALAR) {
            continue;
        }
        if (r != DUO_OK) {
            goto out;
        }
        if ((r = duo_scalar_mul(ec, &ex, x, &e)) != DUO_OK) {
            goto out;
        }
        r = duo_scalar_add(ec, &z, &k, &ex);
        if (r == DUO_E_BAD_SCALAR) {
            continue;
        }
        if (r != DUO_OK) {
            goto out;
        }
        out->a = A;
        out->z = z;
        duo__declassify(&out->z, sizeof out->z); /* the response is sent */
        r = DUO_OK;
        goto out;
    }
    r = DUO_E_INTERNAL;
out:
    duo_memzero(&k, sizeof k);
    duo_memzero(&ex, sizeof ex);
    duo_memzero(&z, sizeof z);
    duo_memzero(&e, sizeof e);
    return r;
}

int duo_dlog_verify(const duo_ec *ec, const duo_dlog_proof *proof, const duo_point *X, const duo_binding *bind,
                    const char *purpose) {
    duo_scalar e;
    duo_point zg, ex, rhs;
    int r;

    if (ec == NULL || proof == NULL || X == NULL || bind == NULL || purpose == NULL) {
        return DUO_E_INVALID_ARG;
    }
    r = duo__dlog_challenge(ec, &e, X, &proof->a, bind, purpose);
    if (r == DUO_E_BAD_SCALAR) {
        return DUO_E_BAD_PROOF;
    }
    if (r != DUO_OK) {
        return r;
    }
    /* z*G fails for z == 0 or z >= q; A + e*X fails if it is infinity. */
    if (duo_point_mul_base(ec, &zg, &proof->z) != DUO_OK || duo_point_mul(ec, &ex, X, &e) != DUO_OK ||
        duo_point_add(ec, &rhs, &proof->a, &ex) != DUO_OK || !duo_point_eq_var(ec, &zg, &rhs)) {
        return DUO_E_BAD_PROOF;
    }
    return DUO_OK;
}

void duo_dlog_proof_serialize(const duo_ec *ec, uint8_t out[DUO_DLOG_PROOF_BYTES], const duo_dlog_proof *p) {
    duo_point_serialize(ec, out, &p->a);
    memcpy(out + DUO_POINT_BYTES, p->z.b, DUO_SCALAR_BYTES);
}

int duo_dlog_proof_parse(const duo_ec *ec, duo_dlog_proof *out, const uint8_t *in, size_t in_len) {
    int r;

    if (ec == NULL || out == NULL || (in == NULL && in_len != 0)) {
        return DUO_E_INVALID_ARG;
    }
    if (in_len != DUO_DLOG_PROOF_BYTES) {
        return DUO_E_BAD_FIELD;
    }
    if ((r = duo_point_parse(ec, &out->a, in, DUO_POINT_BYTES)) != DUO_OK) {
        return r;
    }
    return duo_scalar_parse(ec, &out->z, in + DUO_POINT_BYTES);
}
