/* Without an issuing CA (init --no-ca) an external CA issues the
 * certificates; the operator imports them here after the key check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"
#include "duosign/curve.h"
#include "duosign/ec_pkey.h"

/* The role a certificate's keyUsage names: nonRepudiation alone -> sign,
 * digitalSignature alone -> auth; 0 when it names both or neither. */
static int role_of(X509 *x) {
    uint32_t ku = X509_get_key_usage(x) & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION);
    return ku == KU_NON_REPUDIATION ? DUO_CERT_ROLE_SIGN : ku == KU_DIGITAL_SIGNATURE ? DUO_CERT_ROLE_AUTH : 0;
}

/* Parses der and checks its key is the stored key; fills row (role: the
 * given one, or the certificate's when 0). */
static int check_cert(duo_cert_row *row, const uint8_t *der, size_t der_len, const duo_key_info *ki) {
    const uint8_t *p = der;
    X509 *x = NULL;
    EVP_PKEY *stored = NULL;
    const ASN1_INTEGER *sn;
    BIGNUM *bn = NULL;
    int r = DUO_E_DECODE, n;
    if (der_len == 0 || der_len > sizeof row->der) return DUO_E_DECODE;
    if ((x = d2i_X509(NULL, &p, (long)der_len)) == NULL || p != der + der_len) goto out;
    if ((r = duo_ec_pkey_from_point(&stored, duo_curve_name(ki->curve), ki->q, sizeof ki->q)) != DUO_OK) goto out;
    if (X509_get0_pubkey(x) == NULL || EVP_PKEY_eq(X509_get0_pubkey(x), stored) != 1) {
        r = DUO_E_CERT_KEY_MISMATCH;
        goto out;
    }
    r = DUO_E_DECODE;
    if ((sn = X509_get0_serialNumber(x)) == NULL || (bn = ASN1_INTEGER_to_BN(sn, NULL)) == NULL || BN_is_negative(bn) ||
        (n = BN_num_bytes(bn)) <= 0 || n > DUO_CERT_SERIAL_MAX)
        goto out;
    row->serial_len = (size_t)BN_bn2bin(bn, row->serial);
    if (duo__ca_time(&row->issued_at, X509_get0_notBefore(x)) != DUO_OK ||
        duo__ca_time(&row->not_after, X509_get0_notAfter(x)) != DUO_OK)
        goto out;
    if (row->role == 0 && (row->role = role_of(x)) == 0) {
        r = DUO_E_INVALID_ARG; /* say which key it is for */
        goto out;
    }
    memcpy(row->der, der, der_len);
    row->der_len = der_len;
    r = DUO_OK;
out:
    BN_free(bn);
    EVP_PKEY_free(stored);
    X509_free(x);
    return r;
}

int duo_ca_import_cert(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int role, const uint8_t *der,
                       size_t der_len) {
    duo_key_info ki;
    duo_cert_row *row;
    char detail[64];
    int r;
    if (ks == NULL || key_id == NULL || der == NULL ||
        (role != 0 && role != DUO_CERT_ROLE_AUTH && role != DUO_CERT_ROLE_SIGN))
        return DUO_E_INVALID_ARG;
    if ((r = duo_keystore_key_get(ks, &ki, NULL, key_id)) != DUO_OK) return r;
    if (ki.state != DUO_KEY_STATE_ACTIVE) return DUO_E_KEY_NOT_ACTIVE;
    if ((row = calloc(1, sizeof *row)) == NULL) return DUO_E_NOMEM;
    row->role = role;
    r = check_cert(row, der, der_len, &ki);
    /* The same rule as issuing: a key with a role takes only its role's
     * certificate (ca_issue.c). */
    if (r == DUO_OK && ki.role != DUO_KEY_ROLE_UNSPECIFIED && row->role != ki.role) r = DUO_E_ROLE_PURPOSE;
    if (r == DUO_OK) {
        memcpy(row->key_id, key_id, DUO_KEY_ID_BYTES);
        row->origin = DUO_CERT_IMPORTED;
        snprintf(detail, sizeof detail, "%s certificate imported", duo_cert_role_name(row->role));
        duo_audit_event ev = {
            .kind = DUO_AUDIT_CERT_IMPORT, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
        r = duo_keystore_cert_insert(ks, row, &ev);
    }
    free(row);
    return r;
}
