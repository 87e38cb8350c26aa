/* Issue 16, the rest, against a real duosign-cloud: a key's role is bound
 * at the cloud and each signing purpose is checked there (docs/PROTOCOL.md
 * "Signing purposes"); one token admits one auth and one sign key; the
 * IssueCertificate RPC with every field tampered gets its specific error and
 * stores nothing, and a request signed through a CSR-purpose session gets a
 * certificate that OpenSSL verifies against the issuing CA.
 * Usage: test_daemon_purpose PATH/TO/duosign-cloud */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "daemon_client.h"
#include "duosign/ec_pkey.h"
#include "duosign/login_digest.h"

static client g_c;
static daemon_t g_d;

/* The number of certificates the store holds (cert list, one per line). */
static int cert_count(void) {
    char out[8192];
    if (run_cmd(out, sizeof out, "'%s' cert list --data '%s' 2>/dev/null | grep -c '^[0-9a-f]' || true", g_bin, g_dir) <
        0)
        return -1;
    return atoi(out);
}

/* A signature of dv with purpose (and its data) over digest: the SignStart
 * outcome (the duo error, 0 on success of both rounds). */
static int sign_as(device *dv, int purpose, const uint8_t *data, size_t len, const uint8_t digest[32],
                   uint8_t sig[64]) {
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.purpose = purpose;
    sr.purpose_data = data;
    sr.purpose_data_len = len;
    int r = dev_sign(&g_c, dv, PIN, digest, &sr);
    if (r == 0 && sig) memcpy(sig, sr.sig, 64);
    return r == 0 ? 0 : sr.res.duo_err != 0 ? sr.res.duo_err : -1;
}

/* The public key of dv as an EVP_PKEY. */
static EVP_PKEY *dev_pkey(const device *dv) {
    uint8_t q[33];
    EVP_PKEY *k = NULL;
    duo_point_serialize(g_ec, q, &dv->key->q);
    return duo_ec_pkey_from_point(&k, "secp256k1", q, 33) == DUO_OK ? k : NULL;
}

/* An unsigned request for pub (subject CN=t); its info DER in *info. */
static X509_REQ *req_for(EVP_PKEY *pub, uint8_t **info, int *info_len) {
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_REQ_set_version(req, 0);
    X509_REQ_set_subject_name(req, n);
    X509_REQ_set_pubkey(req, pub);
    X509_NAME_free(n);
    *info = NULL;
    *info_len = i2d_re_X509_REQ_tbs(req, info);
    return req;
}

/* dv's PKCS#10, signed by both halves through a CSR-purpose session. */
static int csr_2p(device *dv, uint8_t **der, int *der_len) {
    EVP_PKEY *pub = dev_pkey(dv);
    uint8_t *info = NULL, digest[32], sig[64], *sd = NULL;
    int info_len, sd_len, r = -1;
    X509_REQ *req = req_for(pub, &info, &info_len);
    ECDSA_SIG *es = ECDSA_SIG_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    SHA256(info, (size_t)info_len, digest);
    if (sign_as(dv, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, digest, sig) != 0) goto out;
    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
    sd_len = i2d_ECDSA_SIG(es, &sd);
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL);
    ASN1_BIT_STRING_set(bits, sd, sd_len);
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set1_signature_algo(req, alg);
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    *der = NULL;
    *der_len = i2d_X509_REQ(req, der);
    r = *der_len > 0 && X509_REQ_verify(req, pub) == 1 ? 0 : -1;
out:
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    ECDSA_SIG_free(es);
    OPENSSL_free(sd);
    OPENSSL_free(info);
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    return r;
}

/* IssueCertificate for dv with csr, MACed with its secret; mut (may be NULL)
 * changes the request after the MAC. Returns the duo error (0: OK, the
 * certificate in out). */
static int issue(device *dv, const uint8_t *csr, size_t csr_len, void (*mut)(duo_issue_cert_req *),
                 duo_issue_cert_resp *out) {
    duo_issue_cert_req *q = calloc(1, sizeof *q);
    rpc_result res;
    uint8_t mi[32];
    int st;
    memcpy(q->key_id, dv->key->key_id, 16);
    RAND_bytes(q->device_nonce, 32);
    if (csr_len) memcpy(q->csr, csr, csr_len);
    q->csr_len = csr_len;
    if (duo_wire_mac_input_issue_cert(mi, q) != DUO_OK || duo_mac_compute(q->mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    if (mut) mut(q);
    memset(&res, 0, sizeof res);
    st = CALL(&g_c, "IssueCertificate", issue_cert_req, q, issue_cert_resp, out, &res);
    free(q);
    return st == 0 ? 0 : res.duo_err != 0 ? res.duo_err : -1;
}
static void mut_key_id(duo_issue_cert_req *q) { q->key_id[0] ^= 1; }
static void mut_nonce(duo_issue_cert_req *q) { q->device_nonce[0] ^= 1; }
static void mut_csr(duo_issue_cert_req *q) { q->csr[q->csr_len - 1] ^= 1; }
static void mut_mac(duo_issue_cert_req *q) { q->mac[0] ^= 1; }
static void mut_csr_drop(duo_issue_cert_req *q) { q->csr_len = 0; }

static void test_all(void) {
    char tok[128], tok2[128];
    device auth, sign, third, legacy;
    rpc_result res;
    uint8_t digest[32], sig[64], chal[32];
    memset(&third, 0, sizeof third);

    /* ---- one token, one auth and one sign key, no third */
    issue_token(tok, sizeof tok, "4242", 600);
    g_enrol_role = DUO_KEY_ROLE_AUTH;
    DUO_REQUIRE(enrol(&g_c, tok, &auth, &res) == 0);
    DUO_CHECK(enrol(&g_c, tok, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_ROLE_USED); /* auth again */
    g_enrol_role = DUO_KEY_ROLE_UNSPECIFIED; /* a legacy key on a half-used token */
    DUO_CHECK(enrol(&g_c, tok, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_ROLE_USED);
    g_enrol_role = DUO_KEY_ROLE_SIGN;
    DUO_REQUIRE(enrol(&g_c, tok, &sign, &res) == 0);
    DUO_CHECK(enrol(&g_c, tok, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_INVALID); /* spent */
    /* a legacy enrolment takes a token whole: no role after it */
    issue_token(tok2, sizeof tok2, "4343", 600);
    g_enrol_role = DUO_KEY_ROLE_UNSPECIFIED;
    DUO_REQUIRE(enrol(&g_c, tok2, &legacy, &res) == 0);
    g_enrol_role = DUO_KEY_ROLE_SIGN;
    DUO_CHECK(enrol(&g_c, tok2, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_INVALID);
    g_enrol_role = DUO_KEY_ROLE_UNSPECIFIED;

    /* ---- roles and purposes: each refusal specific, before any session */
    digest_of(digest, "a contract", 1);
    DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_DOCUMENT, NULL, 0, digest, NULL), DUO_E_ROLE_PURPOSE);
    DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0, digest, NULL), DUO_E_ROLE_PURPOSE);
    RAND_bytes(chal, sizeof chal);
    uint8_t login[32];
    DUO_REQUIRE(duo_login_digest(login, chal, sizeof chal) == DUO_OK);
    DUO_EXPECT_ERR(sign_as(&sign, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, NULL), DUO_E_ROLE_PURPOSE);
    DUO_EXPECT_ERR(sign_as(&legacy, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, NULL), DUO_E_ROLE_PURPOSE);
    /* a login whose digest is not the cloud's: a document hash passed as a login */
    DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, digest, NULL), DUO_E_PURPOSE_DIGEST);
    /* refusals changed nothing: every key still signs what its role allows */
    DUO_CHECK(sign_as(&auth, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, sig) == 0);
    DUO_CHECK(openssl_verify(&auth, login, sig) == 1);
    DUO_CHECK(sign_as(&sign, DUO_SIGN_PURPOSE_DOCUMENT, NULL, 0, digest, sig) == 0);
    DUO_CHECK(openssl_verify(&sign, digest, sig) == 1);
    DUO_CHECK(sign_as(&legacy, DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0, digest, sig) == 0);
    {
        duo_status_resp st;
        DUO_CHECK(dev_status(&g_c, &auth, &st, &res) == 0 && st.state == DUO_KEY_STATE_ACTIVE);
    }

    /* ---- the CSR purpose signs only the key's own request info */
    {
        EVP_PKEY *other = EVP_EC_gen("P-256"), *spub = dev_pkey(&sign);
        uint8_t *info = NULL, h[32];
        int info_len;
        X509_REQ *r1 = req_for(other, &info, &info_len);
        SHA256(info, (size_t)info_len, h);
        DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, h, NULL), DUO_E_CSR_KEY_MISMATCH);
        OPENSSL_free(info);
        X509_REQ_free(r1);
        r1 = req_for(spub, &info, &info_len); /* the sign key's info, from the auth key */
        SHA256(info, (size_t)info_len, h);
        DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, h, NULL), DUO_E_CSR_KEY_MISMATCH);
        /* the right info but a document's digest */
        DUO_EXPECT_ERR(sign_as(&sign, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, digest, NULL),
                       DUO_E_PURPOSE_DIGEST);
        uint8_t junk[40];
        memset(junk, 0x30, sizeof junk);
        SHA256(junk, sizeof junk, h);
        DUO_EXPECT_ERR(sign_as(&sign, DUO_SIGN_PURPOSE_CSR, junk, sizeof junk, h, NULL), DUO_E_CSR_MALFORMED);
        OPENSSL_free(info);
        X509_REQ_free(r1);
        EVP_PKEY_free(other);
        EVP_PKEY_free(spub);
    }

    /* ---- IssueCertificate: each field tampered, its error, nothing stored */
    {
        uint8_t *csr = NULL;
        int csr_len = 0, n0 = cert_count();
        duo_issue_cert_resp *out = calloc(1, sizeof *out);
        DUO_REQUIRE(csr_2p(&sign, &csr, &csr_len) == 0);
        DUO_CHECK(n0 == 0);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_key_id, out), DUO_E_NOT_FOUND);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_nonce, out), DUO_E_UNAUTHENTICATED);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_csr, out), DUO_E_UNAUTHENTICATED);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_mac, out), DUO_E_UNAUTHENTICATED);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_csr_drop, out), DUO_E_UNAUTHENTICATED);
        /* MACed, but not the key's request */
        DUO_EXPECT_ERR(issue(&auth, csr, (size_t)csr_len, NULL, out), DUO_E_CSR_KEY_MISMATCH);
        uint8_t junk[64];
        memset(junk, 0x30, sizeof junk);
        DUO_EXPECT_ERR(issue(&sign, junk, sizeof junk, NULL, out), DUO_E_CSR_MALFORMED);
        {
            /* the key's public key, signed by another key: no proof of possession */
            EVP_PKEY *other = EVP_EC_gen("P-256"), *spub = dev_pkey(&sign);
            uint8_t *info = NULL, *bad = NULL;
            int info_len, bad_len;
            X509_REQ *r = req_for(spub, &info, &info_len);
            X509_REQ_sign(r, other, EVP_sha256());
            X509_REQ_set_pubkey(r, spub);
            bad_len = i2d_X509_REQ(r, &bad);
            DUO_EXPECT_ERR(issue(&sign, bad, (size_t)bad_len, NULL, out), DUO_E_CSR_BAD_SIGNATURE);
            OPENSSL_free(bad);
            OPENSSL_free(info);
            X509_REQ_free(r);
            EVP_PKEY_free(other);
            EVP_PKEY_free(spub);
        }
        DUO_EXPECT_ERR(issue(&sign, NULL, 0, NULL, out), DUO_E_NO_CERT); /* fetch: none yet */
        DUO_CHECK(cert_count() == n0);
        /* the genuine request: a certificate for the sign key */
        DUO_CHECK(issue(&sign, csr, (size_t)csr_len, NULL, out) == 0);
        DUO_CHECK(cert_count() == n0 + 1);
        {
            const uint8_t *p = out->certificate;
            X509 *x = d2i_X509(NULL, &p, (long)out->certificate_len);
            EVP_PKEY *spub = dev_pkey(&sign);
            DUO_CHECK(x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), spub) == 1);
            DUO_CHECK(x != NULL && (X509_get_key_usage(x) & KU_NON_REPUDIATION));
            EVP_PKEY_free(spub);
            X509_free(x);
        }
        duo_issue_cert_resp *again = calloc(1, sizeof *again);
        DUO_CHECK(issue(&sign, NULL, 0, NULL, again) == 0); /* fetch: the same one */
        DUO_CHECK(again->certificate_len == out->certificate_len &&
                  memcmp(again->certificate, out->certificate, out->certificate_len) == 0);
        free(again);
        OPENSSL_free(csr);
        free(out);
    }

    device_free(&auth);
    device_free(&sign);
    device_free(&legacy);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-purpose", &g_d, &g_c);
    if (rc) return rc;
    test_all();
    return it_finish(&g_d, &g_c);
}
