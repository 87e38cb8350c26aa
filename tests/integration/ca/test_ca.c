/* The issuing CA (cloud_half/ca) and the device builders (csr.c, cms.c) as
 * libraries, with the store's clock and the CA's "now" injected:
 *   - a CSR made by the builder is issued for; the certificate's profile;
 *   - each bad request (wrong key, bad signature, garbage, inactive key,
 *     expired / not yet valid CA) is refused with its error and leaves the
 *     certificates, the audit log and the CRL number unchanged;
 *   - a tampered CA row (another certificate, an edited sealed key), no CA;
 *   - validity never past the CA's; P-256 keys; import checks;
 *   - revocation and the CRL (reasons, numbers, the sweep of frozen keys);
 *   - CMS: the builder's SignedData verifies with OpenSSL's CMS_verify
 *     against the CA and fails for another document; a bad signer is caught. */
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "../store/store_test_util.h"
#include "ca.h"
#include "ca_test_util.h"

#define NOW 1800000000LL

typedef struct {
    store_env e;
    duo_ca *ca;
    EVP_PKEY *key; /* the citizen's key (secp256k1), stored as key kid */
    uint8_t kid[16];
} ca_env;

static int ca_env_open(ca_env *c, uint32_t ca_days) {
    uint8_t q[33];
    int r;
    memset(c, 0, sizeof *c);
    if ((r = env_open(&c->e)) != DUO_OK) return r;
    c->e.now = NOW;
    duo_ca_settings s = {
        .name = "Test CA", .ca_days = ca_days, .cert_days = 365, .country = "UA", .crl_url = "http://crl.test/ca.crl"};
    if ((r = duo_ca_create(c->e.ks, &s, NOW)) != DUO_OK || (r = duo_ca_load(&c->ca, c->e.ks)) != DUO_OK) {
        fprintf(stderr, "ca: %s\n", duo_err_name(r));
        return r;
    }
    memset(c->kid, 0xa1, sizeof c->kid);
    if ((c->key = ct_key_new("secp256k1")) == NULL || ct_key_point(c->key, q) != 0) return DUO_E_INTERNAL;
    r = ct_add_key(c->e.ks, c->kid, "1234567890", "Тарас Шевченко", q, 1);
    if (r != DUO_OK) fprintf(stderr, "ct_add_key: %s\n", duo_err_name(r));
    return r;
}

static void ca_env_close(ca_env *c) {
    duo_ca_free(c->ca);
    EVP_PKEY_free(c->key);
    env_close(&c->e);
}

static int count_cb(void *data, const duo_cert_row *row) {
    (void)row;
    (*(int *)data)++;
    return 0;
}

static int cert_count(duo_keystore *ks) {
    int n = 0;
    return duo_keystore_cert_list(ks, NULL, count_cb, &n) == DUO_OK ? n : -1;
}

static uint64_t audit_n(duo_keystore *ks) {
    uint64_t n = 0;
    return duo_keystore_audit_verify(ks, NULL, &n, NULL) == DUO_OK ? n : UINT64_MAX;
}

static X509 *parse(const uint8_t *der, size_t len) {
    const uint8_t *p = der;
    return d2i_X509(NULL, &p, (long)len);
}

/* The CA's certificate, parsed. */
static X509 *ca_x509(const duo_ca *ca) {
    size_t len = 0;
    const uint8_t *der = duo_ca_cert_der(ca, &len);
    return parse(der, len);
}

static void name_entry(X509 *x, int nid, char *out, size_t cap) {
    X509_NAME *n = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(n, nid, -1);
    unsigned char *u = NULL;
    out[0] = '\0';
    if (i >= 0 && ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i))) >= 0)
        snprintf(out, cap, "%s", u);
    OPENSSL_free(u);
}

static void test_issue_profile(void) {
    ca_env c;
    uint8_t *csr = NULL, cert[DUO_CERT_DER_MAX];
    size_t csr_len = 0, cert_len = 0;
    duo_cert_row row;
    char buf[256];
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK);
    DUO_REQUIRE(ct_csr(&csr, &csr_len, c.key, "secp256k1", "ignored by the CA") == DUO_OK);
    DUO_CHECK_OK(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, &row, c.kid, DUO_CERT_ROLE_SIGN, csr,
                                      csr_len, NOW + 60));
    DUO_CHECK(cert_count(c.e.ks) == 1);
    DUO_CHECK(row.serial_len >= 15 && row.serial_len <= 16 && row.role == DUO_CERT_ROLE_SIGN);
    size_t ca_len = 0;
    const uint8_t *ca_der = duo_ca_cert_der(c.ca, &ca_len);
    X509 *x = parse(cert, cert_len), *cax = parse(ca_der, ca_len);
    DUO_REQUIRE(x != NULL && cax != NULL);
    DUO_CHECK(X509_get_version(x) == 2);
    name_entry(x, NID_commonName, buf, sizeof buf);
    DUO_CHECK_MSG(strcmp(buf, "Тарас Шевченко") == 0, "CN %s", buf);
    name_entry(x, NID_serialNumber, buf, sizeof buf);
    DUO_CHECK_MSG(strcmp(buf, "PNOUA-1234567890") == 0, "serialNumber %s", buf);
    name_entry(x, NID_countryName, buf, sizeof buf);
    DUO_CHECK(strcmp(buf, "UA") == 0);
    /* keyUsage nonRepudiation only, critical; CA:FALSE critical; SKI, AKI, CDP */
    DUO_CHECK(X509_get_key_usage(x) == KU_NON_REPUDIATION);
    DUO_CHECK(X509_EXTENSION_get_critical(X509_get_ext(x, X509_get_ext_by_NID(x, NID_key_usage, -1))) == 1);
    DUO_CHECK(X509_EXTENSION_get_critical(X509_get_ext(x, X509_get_ext_by_NID(x, NID_basic_constraints, -1))) == 1);
    DUO_CHECK(X509_check_ca(x) == 0);
    DUO_CHECK(X509_get0_subject_key_id(x) != NULL);
    DUO_CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(cax)) == 0);
    DUO_CHECK(X509_get_ext_by_NID(x, NID_crl_distribution_points, -1) >= 0);
    DUO_CHECK(X509_check_issued(cax, x) == X509_V_OK);
    DUO_CHECK(X509_verify(x, X509_get0_pubkey(cax)) == 1);
    DUO_CHECK(EVP_PKEY_eq(X509_get0_pubkey(x), c.key) == 1);
    DUO_CHECK(row.issued_at == NOW + 60 && row.not_after == NOW + 60 + 365 * 86400LL);
    /* the serial is positive and at most 17 DER content bytes */
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    DUO_CHECK(bn != NULL && !BN_is_negative(bn) && BN_num_bytes(bn) <= 16);
    BN_free(bn);
    X509_free(x);
    /* role auth: digitalSignature only */
    DUO_CHECK_OK(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, &row, c.kid, DUO_CERT_ROLE_AUTH, csr,
                                      csr_len, NOW + 61));
    x = parse(cert, cert_len);
    DUO_CHECK(x != NULL && X509_get_key_usage(x) == KU_DIGITAL_SIGNATURE);
    X509_free(x);
    X509_free(cax);
    duo_x509_free(csr);
    ca_env_close(&c);
}

/* Each bad request: its error, nothing stored, nothing audited. */
static void test_issue_refusals(void) {
    ca_env c;
    uint8_t *good = NULL, *other = NULL, *bad = NULL, cert[DUO_CERT_DER_MAX], pending[16], q[33];
    size_t good_len = 0, other_len = 0, cert_len = 0;
    EVP_PKEY *stranger = ct_key_new("secp256k1");
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK && stranger != NULL);
    DUO_REQUIRE(ct_csr(&good, &good_len, c.key, "secp256k1", "x") == DUO_OK);
    DUO_REQUIRE(ct_csr(&other, &other_len, stranger, "secp256k1", "x") == DUO_OK);
    memset(pending, 0xb2, sizeof pending);
    DUO_REQUIRE(ct_key_point(c.key, q) == 0);
    DUO_REQUIRE(ct_add_key(c.e.ks, pending, "555", NULL, q, 0) == DUO_OK);
    DUO_REQUIRE((bad = malloc(good_len + 1)) != NULL);
    uint64_t audit0 = audit_n(c.e.ks);

    struct {
        const char *what;
        const uint8_t *kid;
        int tamper; /* 0 none, 1 last byte (signature), 2 a byte of the key, 3 truncate, 4 trailing byte, 5 garbage */
        int use_other;
        int64_t now;
        int want;
    } cases[] = {
        {"CSR of another key", c.kid, 0, 1, NOW, DUO_E_CSR_KEY_MISMATCH},
        {"signature byte changed", c.kid, 1, 0, NOW, DUO_E_CSR_BAD_SIGNATURE},
        {"subject byte changed", c.kid, 2, 0, NOW, DUO_E_CSR_BAD_SIGNATURE},
        {"truncated", c.kid, 3, 0, NOW, DUO_E_CSR_MALFORMED},
        {"trailing byte", c.kid, 4, 0, NOW, DUO_E_CSR_MALFORMED},
        {"garbage", c.kid, 5, 0, NOW, DUO_E_CSR_MALFORMED},
        {"key pending", pending, 0, 0, NOW, DUO_E_KEY_NOT_ACTIVE},
        {"CA not yet valid", c.kid, 0, 0, NOW - 1, DUO_E_CA_EXPIRED},
        {"CA expired", c.kid, 0, 0, NOW + 3651LL * 86400, DUO_E_CA_EXPIRED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint8_t *src = cases[i].use_other ? other : good;
        size_t len = cases[i].use_other ? other_len : good_len;
        memcpy(bad, src, len);
        switch (cases[i].tamper) {
            case 1:
                bad[len - 1] ^= 0x01;
                break;
            case 2: /* the CN's value: id-at-commonName (55 04 03), UTF8String, length */
                for (size_t j = 0; j + 5 < len; j++)
                    if (bad[j] == 0x55 && bad[j + 1] == 0x04 && bad[j + 2] == 0x03) {
                        bad[j + 5] ^= 0x01;
                        break;
                    }
                break;
            case 3:
                len -= 3;
                break;
            case 4:
                bad[len++] = 0;
                break;
            case 5:
                memset(bad, 0x30, len);
                break;
        }
        int r = duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, NULL, cases[i].kid, DUO_CERT_ROLE_SIGN,
                                     bad, len, cases[i].now);
        DUO_CHECK_MSG(r == cases[i].want, "%s: got %s, want %s", cases[i].what, duo_err_name(r),
                      duo_err_name(cases[i].want));
        DUO_CHECK(cert_len == 0);
        DUO_CHECK_MSG(cert_count(c.e.ks) == 0, "%s stored a certificate", cases[i].what);
        DUO_CHECK_MSG(audit_n(c.e.ks) == audit0, "%s wrote the audit log", cases[i].what);
    }
    /* a suspended or revoked key gets no certificate either */
    duo_key_info ki;
    DUO_REQUIRE(duo_keystore_key_get(c.e.ks, &ki, NULL, c.kid) == DUO_OK);
    duo_key_policy pol = {.state = DUO_KEY_STATE_SUSPENDED, .reason = "test"};
    DUO_REQUIRE(duo_keystore_key_update_policy(c.e.ks, c.kid, ki.version, &pol, NULL) == DUO_OK);
    DUO_EXPECT_ERR(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, NULL, c.kid, DUO_CERT_ROLE_SIGN,
                                        good, good_len, NOW),
                   DUO_E_KEY_NOT_ACTIVE);
    uint8_t unknown[16] = {0};
    DUO_EXPECT_ERR(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, NULL, unknown, DUO_CERT_ROLE_SIGN,
                                        good, good_len, NOW),
                   DUO_E_NOT_FOUND);
    DUO_CHECK(cert_count(c.e.ks) == 0);
    free(bad);
    duo_x509_free(good);
    duo_x509_free(other);
    EVP_PKEY_free(stranger);
    ca_env_close(&c);
}

/* Every single-byte change of a good request is refused with a CSR error and
 * stores nothing: no byte of it can be altered unnoticed. */
static void test_csr_every_byte(void) {
    ca_env c;
    uint8_t *good = NULL, *bad, cert[DUO_CERT_DER_MAX];
    size_t len = 0, cert_len = 0;
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK);
    DUO_REQUIRE(ct_csr(&good, &len, c.key, "secp256k1", "Taras") == DUO_OK);
    DUO_REQUIRE((bad = malloc(len)) != NULL);
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, good, len);
        bad[i] ^= (uint8_t)(1u << (i % 8));
        int r = duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, NULL, c.kid, DUO_CERT_ROLE_SIGN, bad,
                                     len, NOW);
        DUO_CHECK_MSG(r == DUO_E_CSR_MALFORMED || r == DUO_E_CSR_BAD_SIGNATURE || r == DUO_E_CSR_KEY_MISMATCH ||
                          r == DUO_E_BAD_POINT,
                      "byte %zu of %zu changed: %s", i, len, duo_err_name(r));
    }
    DUO_CHECK(cert_count(c.e.ks) == 0);
    free(bad);
    duo_x509_free(good);
    ca_env_close(&c);
}

/* Validity never past the CA's; a P-256 key; a CSR's key on the wrong curve. */
static void test_validity_and_curves(void) {
    ca_env c;
    uint8_t *csr = NULL, cert[DUO_CERT_DER_MAX], q[33];
    size_t csr_len = 0, cert_len = 0;
    duo_cert_row row;
    DUO_REQUIRE(ca_env_open(&c, 10) == DUO_OK); /* CA for 10 days, certificates for 365 */
    DUO_REQUIRE(ct_csr(&csr, &csr_len, c.key, "secp256k1", "x") == DUO_OK);
    DUO_CHECK_OK(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, &row, c.kid, DUO_CERT_ROLE_AUTH, csr,
                                      csr_len, NOW + 86400));
    DUO_CHECK(row.not_after == NOW + 10 * 86400LL);
    duo_x509_free(csr);

    EVP_PKEY *p256 = ct_key_new("P-256");
    DUO_REQUIRE(p256 != NULL && ct_key_point(p256, q) == 0);
    DUO_REQUIRE(ct_csr(&csr, &csr_len, p256, "P-256", "x") == DUO_OK);
    duo_ca_subject who = {.citizen_id = "42", .name = "Леся Українка"};
    DUO_CHECK_OK(duo_ca_issue(c.ca, cert, sizeof cert, &cert_len, &row, csr, csr_len, "P-256", q, 33, &who,
                              DUO_CERT_ROLE_SIGN, NOW));
    X509 *x = parse(cert, cert_len);
    DUO_CHECK(x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), p256) == 1);
    X509_free(x);
    /* the same point read on the other curve is another key (or none) */
    int r = duo_ca_issue(c.ca, cert, sizeof cert, &cert_len, &row, csr, csr_len, "secp256k1", q, 33, &who,
                         DUO_CERT_ROLE_SIGN, NOW);
    DUO_CHECK(r == DUO_E_CSR_KEY_MISMATCH || r == DUO_E_BAD_POINT);
    DUO_EXPECT_ERR(duo_ca_issue(c.ca, cert, sizeof cert, &cert_len, &row, csr, csr_len, "secp384r1", q, 33, &who,
                                DUO_CERT_ROLE_SIGN, NOW),
                   DUO_E_UNSUPPORTED);
    duo_ca_subject bad_id = {.citizen_id = "a*b", .name = NULL}; /* '*' is not PrintableString */
    DUO_EXPECT_ERR(duo_ca_issue(c.ca, cert, sizeof cert, &cert_len, &row, csr, csr_len, "P-256", q, 33, &bad_id,
                                DUO_CERT_ROLE_SIGN, NOW),
                   DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_ca_issue(c.ca, cert, sizeof cert, &cert_len, &row, csr, csr_len, "P-256", q, 33, &who, 7, NOW),
                   DUO_E_INVALID_ARG);
    duo_x509_free(csr);
    EVP_PKEY_free(p256);
    ca_env_close(&c);
}

/* The CA row: one only; another certificate in it; an edited sealed key; none. */
static void test_ca_store(void) {
    ca_env c, d;
    duo_ca *ca = NULL;
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK);
    DUO_REQUIRE(ca_env_open(&d, 3650) == DUO_OK);
    DUO_EXPECT_ERR(duo_ca_create(c.e.ks, NULL, NOW), DUO_E_EXISTS);
    duo_ca_settings bad[] = {{.name = ""},           {.country = "ua"},         {.country = "UKR"},
                             {.crl_url = "ftp://x"}, {.crl_url = "http://a,b"}, {.crl_url = "http://a b"},
                             {.ca_days = 40000}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        DUO_EXPECT_ERR(duo_ca_create(d.e.ks, &bad[i], NOW), DUO_E_INVALID_ARG);

    /* the certificate of another CA beside this CA's key */
    size_t len;
    const uint8_t *other = duo_ca_cert_der(d.ca, &len);
    char sql[2 * DUO_CERT_DER_MAX + 80], *p = sql;
    p += sprintf(p, "UPDATE issuing_ca SET cert = x'");
    for (size_t i = 0; i < len; i++) p += sprintf(p, "%02x", other[i]);
    sprintf(p, "'");
    DUO_REQUIRE(env_sql(&c.e, sql) == SQLITE_OK);
    DUO_EXPECT_ERR(duo_ca_load(&ca, c.e.ks), DUO_E_CA_MISMATCH);
    DUO_CHECK(ca == NULL);
    /* an edited sealed key does not open */
    DUO_REQUIRE(env_sql(&d.e, "UPDATE issuing_ca SET key_sealed = substr(key_sealed, 1, 20) || x'00' || "
                              "substr(key_sealed, 22)") == SQLITE_OK);
    DUO_EXPECT_ERR(duo_ca_load(&ca, d.e.ks), DUO_E_STATE_CORRUPT);
    ca_env_close(&c);
    ca_env_close(&d);
    /* no CA (init --no-ca) */
    store_env e;
    DUO_REQUIRE(env_open(&e) == DUO_OK);
    DUO_EXPECT_ERR(duo_ca_load(&ca, e.ks), DUO_E_NO_CA);
    uint64_t n;
    DUO_EXPECT_ERR(duo_keystore_ca_next_crl(e.ks, &n, NULL), DUO_E_NO_CA);
    env_close(&e);
}

/* An externally issued certificate: its key must be the stored key. */
static void test_import(void) {
    ca_env c, ext;
    uint8_t *csr = NULL, cert[DUO_CERT_DER_MAX], q[33];
    size_t csr_len = 0, cert_len = 0;
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK);
    DUO_REQUIRE(ca_env_open(&ext, 3650) == DUO_OK); /* the "external" CA */
    DUO_REQUIRE(ct_key_point(c.key, q) == 0);
    DUO_REQUIRE(ct_csr(&csr, &csr_len, c.key, "secp256k1", "x") == DUO_OK);
    duo_ca_subject who = {.citizen_id = "1234567890", .name = "T"};
    DUO_REQUIRE(duo_ca_issue(ext.ca, cert, sizeof cert, &cert_len, NULL, csr, csr_len, "secp256k1", q, 33, &who,
                             DUO_CERT_ROLE_SIGN, NOW) == DUO_OK);
    uint64_t a0 = audit_n(c.e.ks);
    /* for another stored key: refused */
    uint8_t k2[16], q2[33];
    memset(k2, 0xc3, sizeof k2);
    DUO_REQUIRE(ct_key_point(ext.key, q2) == 0 && ct_add_key(c.e.ks, k2, "777", NULL, q2, 1) == DUO_OK);
    a0 = audit_n(c.e.ks);
    DUO_EXPECT_ERR(duo_ca_import_cert(c.e.ks, k2, DUO_CERT_ROLE_SIGN, cert, cert_len), DUO_E_CERT_KEY_MISMATCH);
    uint8_t garbage[40];
    memset(garbage, 0x30, sizeof garbage);
    DUO_EXPECT_ERR(duo_ca_import_cert(c.e.ks, c.kid, DUO_CERT_ROLE_SIGN, garbage, sizeof garbage), DUO_E_DECODE);
    DUO_EXPECT_ERR(duo_ca_import_cert(c.e.ks, c.kid, DUO_CERT_ROLE_SIGN, cert, cert_len - 1), DUO_E_DECODE);
    DUO_CHECK(cert_count(c.e.ks) == 0 && audit_n(c.e.ks) == a0);
    DUO_CHECK_OK(duo_ca_import_cert(c.e.ks, c.kid, DUO_CERT_ROLE_SIGN, cert, cert_len));
    DUO_EXPECT_ERR(duo_ca_import_cert(c.e.ks, c.kid, DUO_CERT_ROLE_SIGN, cert, cert_len), DUO_E_EXISTS);
    DUO_CHECK(cert_count(c.e.ks) == 1);
    duo_x509_free(csr);
    ca_env_close(&ext);
    ca_env_close(&c);
}

static X509_CRL *crl_of(ca_env *c, int64_t now) {
    uint8_t buf[16384];
    size_t len = 0;
    const uint8_t *p = buf;
    if (duo_ca_crl(c->ca, c->e.ks, buf, sizeof buf, &len, 24, now) != DUO_OK) return NULL;
    return d2i_X509_CRL(NULL, &p, (long)len);
}

static int crl_reason(X509_CRL *crl, const duo_cert_row *row) {
    BIGNUM *bn = BN_bin2bn(row->serial, (int)row->serial_len, NULL);
    ASN1_INTEGER *sn = BN_to_ASN1_INTEGER(bn, NULL);
    X509_REVOKED *rv = NULL;
    int reason = -1;
    if (X509_CRL_get0_by_serial(crl, &rv, sn) == 1) {
        ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(rv, NID_crl_reason, NULL, NULL);
        reason = e != NULL ? (int)ASN1_ENUMERATED_get(e) : -2;
        ASN1_ENUMERATED_free(e);
    }
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    return reason;
}

static long crl_number(X509_CRL *crl) {
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    long v = n != NULL ? ASN1_INTEGER_get(n) : -1;
    ASN1_INTEGER_free(n);
    return v;
}

static void test_revoke_and_crl(void) {
    ca_env c;
    uint8_t *csr = NULL, cert[DUO_CERT_DER_MAX], k2[16], q[33];
    size_t csr_len = 0, cert_len = 0;
    duo_cert_row r1, r2;
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK);
    DUO_REQUIRE(ct_csr(&csr, &csr_len, c.key, "secp256k1", "x") == DUO_OK);
    DUO_REQUIRE(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, &r1, c.kid, DUO_CERT_ROLE_SIGN, csr,
                                     csr_len, NOW) == DUO_OK);
    duo_x509_free(csr);
    /* a second key of another citizen */
    EVP_PKEY *k2key = ct_key_new("secp256k1");
    memset(k2, 0xc3, sizeof k2);
    DUO_REQUIRE(k2key != NULL && ct_key_point(k2key, q) == 0 && ct_add_key(c.e.ks, k2, "777", "B", q, 1) == DUO_OK);
    DUO_REQUIRE(ct_csr(&csr, &csr_len, k2key, "secp256k1", "x") == DUO_OK);
    DUO_REQUIRE(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, &r2, k2, DUO_CERT_ROLE_AUTH, csr,
                                     csr_len, NOW) == DUO_OK);
    duo_x509_free(csr);

    X509_CRL *crl = crl_of(&c, NOW + 10);
    DUO_REQUIRE(crl != NULL);
    DUO_CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0 && crl_number(crl) == 1);
    size_t len;
    X509 *cax = ca_x509(c.ca);
    DUO_CHECK(X509_CRL_verify(crl, X509_get0_pubkey(cax)) == 1);
    X509_CRL_free(crl);

    /* the citizen revokes key 1: cessationOfOperation */
    DUO_REQUIRE(duo_keystore_key_revoke(c.e.ks, c.kid, NULL, 0, "test", NULL) == DUO_OK);
    DUO_CHECK_OK(duo_ca_revoke_key_certs(c.e.ks, c.kid, DUO_CRL_REASON_CESSATION));
    DUO_CHECK_OK(duo_ca_revoke_key_certs(c.e.ks, c.kid, DUO_CRL_REASON_KEY_COMPROMISE)); /* no-op: already */
    /* key 2 frozen (clone) without its certificates following (a failed
     * write): the CRL's sweep revokes them as keyCompromise */
    duo_key_info ki;
    DUO_REQUIRE(duo_keystore_key_get(c.e.ks, &ki, NULL, k2) == DUO_OK);
    duo_key_policy pol = {.state = DUO_KEY_STATE_SUSPENDED, .reason = "clone"};
    DUO_REQUIRE(duo_keystore_key_update_policy(c.e.ks, k2, ki.version, &pol, NULL) == DUO_OK);
    c.e.now = NOW + 20;
    crl = crl_of(&c, NOW + 20);
    DUO_REQUIRE(crl != NULL);
    DUO_CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) == 2 && crl_number(crl) == 2);
    DUO_CHECK(crl_reason(crl, &r1) == DUO_CRL_REASON_CESSATION);
    DUO_CHECK(crl_reason(crl, &r2) == DUO_CRL_REASON_KEY_COMPROMISE);
    DUO_CHECK(X509_CRL_verify(crl, X509_get0_pubkey(cax)) == 1);
    DUO_CHECK(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) >= 0);
    X509_CRL_free(crl);
    /* an expired certificate leaves the CRL; an expired CA signs none */
    crl = crl_of(&c, NOW + 366 * 86400LL);
    DUO_REQUIRE(crl != NULL);
    DUO_CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0);
    X509_CRL_free(crl);
    uint8_t buf[4096];
    DUO_EXPECT_ERR(duo_ca_crl(c.ca, c.e.ks, buf, sizeof buf, &len, 24, NOW + 3651LL * 86400), DUO_E_CA_EXPIRED);
    DUO_EXPECT_ERR(duo_ca_crl(c.ca, c.e.ks, buf, sizeof buf, &len, 0, NOW), DUO_E_INVALID_ARG);
    X509_free(cax);
    EVP_PKEY_free(k2key);
    ca_env_close(&c);
}

/* A signer that returns a signature of another digest. */
static int wrong_sign(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]) {
    uint8_t d[32];
    memcpy(d, digest, 32);
    d[0] ^= 1;
    return ct_sign(ctx, d, sig_rs);
}

static int failing_sign(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]) {
    (void)ctx;
    (void)digest;
    (void)sig_rs;
    return DUO_E_WRONG_PIN;
}

static int cms_verifies(const uint8_t *p7s, size_t len, X509 *cax, const char *doc) {
    const uint8_t *p = p7s;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    X509_STORE *st = X509_STORE_new();
    BIO *in = BIO_new_mem_buf(doc, (int)strlen(doc));
    ERR_clear_error();
    if (st != NULL) X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(st), (time_t)(NOW + 10)); /* the test's clock */
    int ok = cms != NULL && st != NULL && X509_STORE_add_cert(st, cax) == 1 &&
             CMS_verify(cms, NULL, st, in, NULL, CMS_BINARY) == 1;
    if (!ok && getenv("DUO_TEST_VERBOSE") != NULL) ERR_print_errors_fp(stderr);
    BIO_free(in);
    X509_STORE_free(st);
    CMS_ContentInfo_free(cms);
    return ok;
}

static void test_cms(void) {
    ca_env c;
    uint8_t *csr = NULL, *p7s = NULL, cert[DUO_CERT_DER_MAX], digest[32];
    size_t csr_len = 0, cert_len = 0, p7s_len = 0;
    unsigned int dl;
    const char *doc = "a document the citizen signs\n";
    DUO_REQUIRE(ca_env_open(&c, 3650) == DUO_OK);
    DUO_REQUIRE(ct_csr(&csr, &csr_len, c.key, "secp256k1", "x") == DUO_OK);
    DUO_REQUIRE(duo_ca_issue_for_key(c.ca, c.e.ks, cert, sizeof cert, &cert_len, NULL, c.kid, DUO_CERT_ROLE_SIGN, csr,
                                     csr_len, NOW) == DUO_OK);
    DUO_REQUIRE(EVP_Digest(doc, strlen(doc), digest, &dl, EVP_sha256(), NULL) == 1);
    DUO_CHECK_OK(duo_cms_sign_detached(&p7s, &p7s_len, cert, cert_len, digest, NOW + 5, ct_sign, c.key));
    X509 *cax = ca_x509(c.ca);
    DUO_CHECK(cms_verifies(p7s, p7s_len, cax, doc));
    DUO_CHECK(!cms_verifies(p7s, p7s_len, cax, "a document the citizen signs.\n"));
    /* the signed attributes: signingCertificateV2 and signingTime present */
    const uint8_t *p = p7s;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)p7s_len);
    DUO_REQUIRE(cms != NULL);
    CMS_SignerInfo *si = sk_CMS_SignerInfo_value(CMS_get0_SignerInfos(cms), 0);
    DUO_CHECK(CMS_signed_get_attr_by_NID(si, NID_id_smime_aa_signingCertificateV2, -1) >= 0);
    DUO_CHECK(CMS_signed_get_attr_by_NID(si, NID_pkcs9_signingTime, -1) >= 0);
    DUO_CHECK(CMS_signed_get_attr_by_NID(si, NID_pkcs9_contentType, -1) >= 0);
    DUO_CHECK(*CMS_get0_content(cms) == NULL); /* detached */
    CMS_ContentInfo_free(cms);
    duo_x509_free(p7s);
    /* a signer that signs something else, or fails */
    DUO_EXPECT_ERR(duo_cms_sign_detached(&p7s, &p7s_len, cert, cert_len, digest, NOW, wrong_sign, c.key),
                   DUO_E_BAD_SIGNATURE);
    DUO_CHECK(p7s == NULL && p7s_len == 0);
    DUO_EXPECT_ERR(duo_cms_sign_detached(&p7s, &p7s_len, cert, cert_len, digest, NOW, failing_sign, c.key),
                   DUO_E_WRONG_PIN);
    DUO_EXPECT_ERR(duo_cms_sign_detached(&p7s, &p7s_len, cert, cert_len - 1, digest, NOW, ct_sign, c.key),
                   DUO_E_DECODE);
    uint8_t q[33], *r = NULL;
    size_t rl = 0;
    duo_csr_subject subj = {.common_name = "x"}, none = {0}, bad_sn = {.serial_number = "PNO*"};
    DUO_REQUIRE(ct_key_point(c.key, q) == 0);
    DUO_EXPECT_ERR(duo_csr_build(&r, &rl, "secp256k1", q, 33, &subj, wrong_sign, c.key), DUO_E_BAD_SIGNATURE);
    DUO_EXPECT_ERR(duo_csr_build(&r, &rl, "secp256k1", q, 33, &none, ct_sign, c.key), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_csr_build(&r, &rl, "secp256k1", q, 33, &bad_sn, ct_sign, c.key), DUO_E_INVALID_ARG);
    q[0] = 0x05;
    DUO_EXPECT_ERR(duo_csr_build(&r, &rl, "secp256k1", q, 33, &subj, ct_sign, c.key), DUO_E_BAD_POINT);
    DUO_CHECK(r == NULL);
    X509_free(cax);
    duo_x509_free(csr);
    ca_env_close(&c);
}

int main(void) {
    DUO_RUN(test_issue_profile);
    DUO_RUN(test_issue_refusals);
    DUO_RUN(test_csr_every_byte);
    DUO_RUN(test_validity_and_curves);
    DUO_RUN(test_ca_store);
    DUO_RUN(test_import);
    DUO_RUN(test_revoke_and_crl);
    DUO_RUN(test_cms);
    return duo_test_finish();
}
