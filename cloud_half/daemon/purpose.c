/* duosign-cloud: what a signing purpose allows (docs/PROTOCOL.md "Signing
 * purposes", DESIGN 8.2). Two steps around the key's authentication:
 * the digest a purpose defines is checked from the request alone before the
 * key is read; the role and the CSR's key after the MAC is verified. Both
 * refuse before any session exists, so nothing is stored on a refusal. */
#include "rpc.h"

#include <openssl/sha.h>

#include "ca.h"
#include "duosign/curve.h"
#include "duosign/login_digest.h"
#include "duosign/mem.h"

int duo__purpose_digest_check(const duo_sign_start_req *req, duo_call_info *info) {
    uint8_t want[32];
    int r = DUO_OK;
    if (req->purpose == DUO_SIGN_PURPOSE_CSR) {
        SHA256(req->csr_info, req->csr_info_len, want);
    } else if (req->purpose == DUO_SIGN_PURPOSE_LOGIN) {
        /* The cloud, not the device, decides what a login signature covers. */
        if ((r = duo_login_digest(want, req->login_challenge, req->login_challenge_len)) != DUO_OK) return r;
    } else {
        return DUO_OK; /* a document: the digest is the citizen's */
    }
    if (!duo_ct_eq(want, req->digest, sizeof want)) {
        DETAIL(info, "the digest is not SHA-256 of the %s the request carries; nothing was signed",
               req->purpose == DUO_SIGN_PURPOSE_CSR ? "certification request info" : "login structure");
        r = DUO_E_PURPOSE_DIGEST;
    }
    duo_memzero(want, sizeof want);
    return r;
}

/* The roles a purpose is allowed on. */
static int role_allows(int role, duo_sign_purpose purpose) {
    switch (purpose) {
        case DUO_SIGN_PURPOSE_UNSPECIFIED:
        case DUO_SIGN_PURPOSE_DOCUMENT:
            return role == DUO_KEY_ROLE_UNSPECIFIED || role == DUO_KEY_ROLE_SIGN;
        case DUO_SIGN_PURPOSE_LOGIN:
            return role == DUO_KEY_ROLE_AUTH;
        case DUO_SIGN_PURPOSE_CSR:
            return 1;
    }
    return 0;
}

int duo__purpose_key_check(const duo_sign_start_req *req, const duo_key_info *ki, duo_call_info *info) {
    int r;
    if (!role_allows(ki->role, req->purpose)) {
        DETAIL(info, "this is %s; it does not sign %s",
               ki->role == DUO_KEY_ROLE_AUTH   ? "an authentication key (logins only)"
               : ki->role == DUO_KEY_ROLE_SIGN ? "a signing key (documents only)"
                                               : "a key without a role (documents only)",
               req->purpose == DUO_SIGN_PURPOSE_LOGIN ? "logins" : "documents");
        return DUO_E_ROLE_PURPOSE;
    }
    if (req->purpose != DUO_SIGN_PURPOSE_CSR) return DUO_OK;
    r = duo_ca_csr_info_check(req->csr_info, req->csr_info_len, duo_curve_name(ki->curve), ki->q, sizeof ki->q);
    if (r == DUO_E_CSR_KEY_MISMATCH)
        DETAIL(info, "the certification request is for another public key; a key signs only its own request");
    else if (r == DUO_E_CSR_MALFORMED)
        DETAIL(info, "the certification request info is not a DER CertificationRequestInfo");
    return r;
}
