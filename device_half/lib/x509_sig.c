/* The one signature a builder needs: digest, callback, check, DER. */
#include "x509_sig.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>

#include "duosign/mem.h"

int duo__x509_curve_ok(EVP_PKEY *pub) {
    char name[64];
    size_t n = 0;
    if (pub == NULL || EVP_PKEY_get_base_id(pub) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &n) != 1)
        return 0;
    return strcmp(name, "prime256v1") == 0 || strcmp(name, "secp256k1") == 0;
}

/* r || s into a DER ECDSA-Sig-Value. */
static int rs_to_der(unsigned char **sig, size_t *sig_len, const uint8_t rs[64]) {
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    int n, ret = DUO_E_NOMEM;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) goto out;
    r = s = NULL; /* es owns them */
    *sig = NULL;
    if ((n = i2d_ECDSA_SIG(es, sig)) <= 0) goto out;
    *sig_len = (size_t)n;
    ret = DUO_OK;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return ret;
}

static int verify(EVP_PKEY *pub, const unsigned char *sig, size_t sig_len, const uint8_t digest[32]) {
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pub, NULL);
    int ok = c != NULL && EVP_PKEY_verify_init(c) == 1 && EVP_PKEY_verify(c, sig, sig_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(c);
    return ok ? DUO_OK : DUO_E_BAD_SIGNATURE;
}

int duo__x509_sign(unsigned char **sig, size_t *sig_len, EVP_PKEY *pub, const unsigned char *tbs, size_t tbs_len,
                   duo_sign_digest_fn sign, void *sign_ctx) {
    uint8_t digest[32], rs[64];
    unsigned int dl = 0;
    int r;
    *sig = NULL;
    *sig_len = 0;
    if (EVP_Digest(tbs, tbs_len, digest, &dl, EVP_sha256(), NULL) != 1 || dl != 32) return DUO_E_INTERNAL;
    memset(rs, 0, sizeof rs);
    if ((r = sign(sign_ctx, digest, rs)) != DUO_OK) return r;
    if ((r = rs_to_der(sig, sig_len, rs)) == DUO_OK && (r = verify(pub, *sig, *sig_len, digest)) != DUO_OK) {
        OPENSSL_free(*sig);
        *sig = NULL;
        *sig_len = 0;
    }
    return r;
}

void duo_x509_free(uint8_t *p) { OPENSSL_free(p); }
