/* duosign-oidc: the citizen's two-party signature over the login challenge
 * (oidc.h). Checked before a code is issued, kept with the ID token's jti
 * (ostore.h os_audit_login), so each login is provable later with the
 * certificate, the challenge and the server random alone. */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "oidc.h"

#define LOGIN_TAG "duosign.v1.login" /* DESIGN 8.3: the domain tag of an authentication */

static void lp(EVP_MD_CTX *h, const void *p, size_t n) {
    uint8_t l[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    EVP_DigestUpdate(h, l, 4);
    EVP_DigestUpdate(h, p, n);
}

void evidence_login_digest(uint8_t out[32], const char *rp_name, const uint8_t *challenge, size_t challenge_len,
                           const uint8_t *server_random, size_t sr_len, const char *vc, const char *display_text) {
    EVP_MD_CTX *h = EVP_MD_CTX_new();
    unsigned n = 0;
    memset(out, 0, 32); /* a failure leaves a digest nothing signs */
    if (h == NULL || EVP_DigestInit_ex(h, EVP_sha256(), NULL) != 1) goto out;
    lp(h, LOGIN_TAG, strlen(LOGIN_TAG));
    lp(h, rp_name, strlen(rp_name));
    lp(h, challenge, challenge_len);
    lp(h, server_random, sr_len);
    lp(h, vc, strlen(vc));
    lp(h, display_text, strlen(display_text));
    if (EVP_DigestFinal_ex(h, out, &n) != 1) memset(out, 0, 32);
out:
    EVP_MD_CTX_free(h);
}

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
    evidence_login_digest(want, c->rp_name, t->challenge, sizeof t->challenge, s->server_random, s->server_random_len,
                          t->verification_code, t->display_text);
    r = DUO_E_OIDC_LOGIN_DIGEST;
    if (memcmp(want, s->signed_digest, 32) != 0) goto out;
    r = DUO_E_BAD_SIGNATURE;
    if (!sig_ok(cert, s->signature, s->signed_digest)) goto out;
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, (int)name_cap);
    r = DUO_OK;
out:
    X509_free(cert);
    return r;
}
