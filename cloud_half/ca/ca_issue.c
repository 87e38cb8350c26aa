/* Issuing a citizen's certificate for a PKCS#10 request (proof of
 * possession) whose key is the stored key. Checks first, then builds:
 * nothing is issued or stored unless every check passed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "duosign/curve.h"
#include "duosign/ec_pkey.h"

/* Parses the request, checks its self-signature and that its key is the
 * stored one. Out: *req (freed by the caller). */
static int check_csr(X509_REQ **req, const uint8_t *csr, size_t csr_len, EVP_PKEY *stored) {
    const uint8_t *p = csr;
    EVP_PKEY *rk;
    if (csr == NULL || csr_len == 0 || csr_len > DUO_CERT_DER_MAX) return DUO_E_CSR_MALFORMED;
    if ((*req = d2i_X509_REQ(NULL, &p, (long)csr_len)) == NULL || p != csr + csr_len) return DUO_E_CSR_MALFORMED;
    if ((rk = X509_REQ_get0_pubkey(*req)) == NULL) return DUO_E_CSR_MALFORMED;
    if (X509_REQ_verify(*req, rk) != 1) return DUO_E_CSR_BAD_SIGNATURE;
    return EVP_PKEY_eq(rk, stored) == 1 ? DUO_OK : DUO_E_CSR_KEY_MISMATCH;
}

/* Subject: C, serialNumber = PNO<CC>-<id> (ETSI EN 319 412-1 5.1.3), CN. */
static int set_subject(X509 *x, const duo_ca *ca, const duo_ca_subject *who) {
    X509_NAME *n = X509_get_subject_name(x);
    const char *cn = who->name != NULL && who->name[0] ? who->name : who->citizen_id;
    char sn[8 + DUO_CITIZEN_ID_MAX];
    snprintf(sn, sizeof sn, "PNO%s-%s", ca->profile.country, who->citizen_id);
    /* serialNumber is a PrintableString: an id outside that alphabet is refused here */
    if (X509_NAME_add_entry_by_txt(n, "C", MBSTRING_ASC, (const unsigned char *)ca->profile.country, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_NID(n, NID_serialNumber, MBSTRING_ASC, (const unsigned char *)sn, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1)
        return DUO_E_INVALID_ARG;
    return DUO_OK;
}

static int set_extensions(X509 *x, const duo_ca *ca, int role) {
    char cdp[16 + DUO_CRL_URL_MAX];
    int r;
    snprintf(cdp, sizeof cdp, "URI:%s", ca->profile.crl_url);
    if ((r = duo__ca_add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE")) != DUO_OK ||
        (r = duo__ca_add_ext(x, ca->cert, NID_key_usage,
                             role == DUO_CERT_ROLE_AUTH ? "critical,digitalSignature" : "critical,nonRepudiation")) !=
            DUO_OK ||
        (r = duo__ca_add_ext(x, ca->cert, NID_subject_key_identifier, "hash")) != DUO_OK ||
        (r = duo__ca_add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always")) != DUO_OK ||
        (r = duo__ca_add_ext(x, ca->cert, NID_crl_distribution_points, cdp)) != DUO_OK)
        return r;
    return DUO_OK;
}

/* Builds and signs the certificate; row gets serial and validity. */
static int build(X509 **out, const duo_ca *ca, EVP_PKEY *pub, const duo_ca_subject *who, int role, int64_t now,
                 duo_cert_row *row) {
    X509 *x = X509_new();
    int64_t not_after = now + (int64_t)ca->profile.cert_days * 86400;
    int r = DUO_E_INTERNAL;
    if (not_after > ca->not_after) not_after = ca->not_after; /* never beyond the CA */
    if (x == NULL || X509_set_version(x, 2) != 1) goto out;
    if ((r = duo__ca_random_serial(x, row->serial, &row->serial_len)) != DUO_OK) goto out;
    if ((r = set_subject(x, ca, who)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if (X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 || X509_set_pubkey(x, pub) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)now) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) == NULL)
        goto out;
    if ((r = set_extensions(x, ca, role)) != DUO_OK) goto out;
    r = X509_sign(x, ca->key, EVP_sha256()) > 0 ? DUO_OK : DUO_E_INTERNAL;
    row->issued_at = now;
    row->not_after = not_after;
out:
    if (r == DUO_OK)
        *out = x;
    else
        X509_free(x);
    return r;
}

static int subject_ok(const duo_ca_subject *who) {
    size_t n;
    if (who == NULL || who->citizen_id == NULL) return 0;
    n = strlen(who->citizen_id);
    return n > 0 && n <= DUO_CITIZEN_ID_MAX && (who->name == NULL || strlen(who->name) <= 64);
}

int duo_ca_issue(const duo_ca *ca, uint8_t *out, size_t out_cap, size_t *out_len, duo_cert_row *row, const uint8_t *csr,
                 size_t csr_len, const char *curve, const uint8_t *point, size_t point_len, const duo_ca_subject *who,
                 int role, int64_t now) {
    duo_cert_row tmp;
    EVP_PKEY *stored = NULL;
    X509_REQ *req = NULL;
    X509 *x = NULL;
    int r;
    if (out_len != NULL) *out_len = 0;
    if (row == NULL) row = &tmp;
    memset(row, 0, sizeof *row);
    if (ca == NULL || out == NULL || out_len == NULL || !subject_ok(who) ||
        (role != DUO_CERT_ROLE_AUTH && role != DUO_CERT_ROLE_SIGN))
        return DUO_E_INVALID_ARG;
    if ((r = duo__ca_check_valid(ca, now)) != DUO_OK) return r;
    if ((r = duo_ec_pkey_from_point(&stored, curve, point, point_len)) != DUO_OK) return r;
    if ((r = check_csr(&req, csr, csr_len, stored)) != DUO_OK) goto out;
    if ((r = build(&x, ca, stored, who, role, now, row)) != DUO_OK) goto out;
    if ((r = duo__ca_x509_der(x, out, out_cap, out_len)) != DUO_OK) goto out;
    if (*out_len > sizeof row->der) {
        r = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    memcpy(row->der, out, *out_len);
    row->der_len = *out_len;
    row->role = role;
    row->origin = DUO_CERT_ISSUED;
out:
    if (r != DUO_OK) {
        memset(row, 0, sizeof *row);
        *out_len = 0;
    }
    X509_free(x);
    X509_REQ_free(req);
    EVP_PKEY_free(stored);
    return r;
}

int duo_ca_issue_for_key(const duo_ca *ca, duo_keystore *ks, uint8_t *out, size_t out_cap, size_t *out_len,
                         duo_cert_row *row, const uint8_t key_id[DUO_KEY_ID_BYTES], int role, const uint8_t *csr,
                         size_t csr_len, int64_t now) {
    duo_key_info ki;
    duo_cert_row *c;
    char name[DUO_CITIZEN_NAME_MAX + 1], detail[96];
    int r;
    if (out_len != NULL) *out_len = 0;
    if (ca == NULL || ks == NULL || key_id == NULL) return DUO_E_INVALID_ARG;
    if ((r = duo_keystore_key_get(ks, &ki, NULL, key_id)) != DUO_OK) return r;
    if (ki.state != DUO_KEY_STATE_ACTIVE) return DUO_E_KEY_NOT_ACTIVE;
    /* A key enrolled with a role is certified for that role only: an auth
     * key's login signatures must never verify under a nonRepudiation
     * certificate (docs/PROTOCOL.md, key roles). A legacy key without a
     * role takes either certificate but answers no relying party. */
    if (ki.role != DUO_KEY_ROLE_UNSPECIFIED && ki.role != role) return DUO_E_ROLE_PURPOSE;
    if ((r = duo_keystore_key_citizen_name(ks, name, key_id)) != DUO_OK) return r;
    if ((c = calloc(1, sizeof *c)) == NULL) return DUO_E_NOMEM;
    duo_ca_subject who = {.citizen_id = ki.citizen_id, .name = name};
    r = duo_ca_issue(ca, out, out_cap, out_len, c, csr, csr_len, duo_curve_name(ki.curve), ki.q, sizeof ki.q, &who,
                     role, now);
    if (r == DUO_OK) {
        memcpy(c->key_id, key_id, DUO_KEY_ID_BYTES);
        snprintf(detail, sizeof detail, "%s certificate issued, %zu-byte serial", duo_cert_role_name(role),
                 c->serial_len);
        duo_audit_event ev = {
            .kind = DUO_AUDIT_CERT_ISSUE, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
        r = duo_keystore_cert_insert(ks, c, &ev);
    }
    if (r == DUO_OK && row != NULL) *row = *c;
    if (r != DUO_OK && out_len != NULL) *out_len = 0;
    free(c);
    return r;
}
