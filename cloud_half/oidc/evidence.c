/* duosign-oidc: the citizen's two-party signature over the login challenge
 * (oidc.h). Checked before a code is issued, kept with the ID token's jti
 * (ostore.h os_audit_login), so each login is provable later with the
 * certificate, the challenge and the server random alone. The signed
 * structure is the cloud's (common rp_digest.h, duo_rp_auth_digest), never
 * a copy of it here. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "duosign/rp_digest.h"
#include "oidc.h"

/* ECDSA (r || s) over a 32-byte digest under the certificate's key. */
static int sig_ok(X509 *cert, const uint8_t sig[64], const uint8_t digest[32]) {
    EVP_PKEY *pk = X509_get0_pubkey(cert);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int dl = 0, ok = 0;
    EVP_PKEY_CTX *vc = NULL;
    if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC || es == NULL || r == NULL || s == NULL ||
        ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    if ((dl = i2d_ECDSA_SIG(es, &der)) <= 0 || (vc = EVP_PKEY_CTX_new(pk, NULL)) == NULL ||
        EVP_PKEY_verify_init(vc) != 1)
        goto out;
    ok = EVP_PKEY_verify(vc, der, (size_t)dl, digest, 32) == 1;
out:
    EVP_PKEY_CTX_free(vc);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    return ok;
}

int evidence_check(const oidc_ctx *c, const os_txn *t, const rp_session *s, char *name, size_t name_cap) {
    const unsigned char *p = s->certificate;
    X509 *cert = d2i_X509(NULL, &p, (long)s->certificate_len);
    uint8_t want[32];
    int r = DUO_E_DECODE;
    name[0] = '\0';
    if (cert == NULL || p != s->certificate + s->certificate_len) goto out;
    /* First: the signed digest is this login's structure, so a signature
     * made for another login or another RP is refused before anything else. */
    r = DUO_E_OIDC_LOGIN_DIGEST;
    if (s->server_random_len != DUO_RP_SERVER_RANDOM_BYTES ||
        duo_rp_auth_digest(want, c->rp_name, t->challenge, sizeof t->challenge, s->server_random, t->verification_code,
                           t->display_text) != DUO_OK ||
        memcmp(want, s->signed_digest, 32) != 0)
        goto out;
    r = DUO_E_BAD_SIGNATURE;
    if (!sig_ok(cert, s->signature, s->signed_digest)) goto out;
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, (int)name_cap);
    r = DUO_OK;
out:
    X509_free(cert);
    return r;
}
