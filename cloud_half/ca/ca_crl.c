/* Revocation: a key's certificates follow the key's state, and the CA signs
 * CRLs of what it issued and revoked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca_internal.h"

int duo_ca_revoke_key_certs(duo_keystore *ks, const uint8_t key_id[DUO_KEY_ID_BYTES], int reason) {
    char detail[96];
    size_t n = 0;
    snprintf(detail, sizeof detail, "certificates revoked, CRL reason %d", reason);
    duo_audit_event ev = {.kind = DUO_AUDIT_CERT_REVOKE, .key_id = key_id, .detail = detail};
    return duo_keystore_cert_revoke_key(ks, &n, key_id, reason, &ev);
}

int duo_ca_reason_for_state(int state) {
    if (state == DUO_KEY_STATE_SUSPENDED) return DUO_CRL_REASON_KEY_COMPROMISE;
    return state == DUO_KEY_STATE_REVOKED ? DUO_CRL_REASON_CESSATION : 0;
}

/* A key that is revoked or suspended whose certificates are still good (the
 * daemon's revocation of them failed after the key's change): revoke them
 * now, so a CRL never misses a dead key. */
static int sweep_cb(void *data, const duo_cert_row *c) {
    duo_keystore *ks = data;
    duo_key_info ki;
    int r, reason;
    if (c->revoked) return DUO_OK;
    if ((r = duo_keystore_key_get(ks, &ki, NULL, c->key_id)) != DUO_OK) return r;
    if ((reason = duo_ca_reason_for_state(ki.state)) == 0) return DUO_OK;
    return duo_ca_revoke_key_certs(ks, c->key_id, reason);
}

typedef struct {
    X509_CRL *crl;
    int64_t now;
    int err;
} crl_walk;

static int add_revoked(X509_CRL *crl, const duo_cert_row *c) {
    X509_REVOKED *rv = X509_REVOKED_new();
    BIGNUM *bn = BN_bin2bn(c->serial, (int)c->serial_len, NULL);
    ASN1_INTEGER *serial = bn != NULL ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)c->revoked_at);
    ASN1_ENUMERATED *why = ASN1_ENUMERATED_new();
    int r = DUO_E_INTERNAL;
    if (rv == NULL || serial == NULL || when == NULL || why == NULL || X509_REVOKED_set_serialNumber(rv, serial) != 1 ||
        X509_REVOKED_set_revocationDate(rv, when) != 1 || ASN1_ENUMERATED_set(why, c->reason) != 1 ||
        X509_REVOKED_add1_ext_i2d(rv, NID_crl_reason, why, 0, 0) != 1 || X509_CRL_add0_revoked(crl, rv) != 1)
        goto out;
    rv = NULL; /* the CRL owns it */
    r = DUO_OK;
out:
    X509_REVOKED_free(rv);
    ASN1_ENUMERATED_free(why);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return r;
}

/* Lists this CA's revoked certificates that have not expired (an expired
 * one needs no entry: RFC 5280 3.3). */
static int list_cb(void *data, const duo_cert_row *c) {
    crl_walk *w = data;
    if (!c->revoked || c->origin != DUO_CERT_ISSUED || c->not_after < w->now) return 0;
    return (w->err = add_revoked(w->crl, c)) != DUO_OK;
}

static int crl_header(X509_CRL *crl, const duo_ca *ca, uint64_t number, uint32_t hours, int64_t now) {
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)now), *t2 = ASN1_TIME_set(NULL, (time_t)(now + hours * 3600LL));
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509_EXTENSION *aki = NULL;
    int r = DUO_E_INTERNAL;
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    if (t1 == NULL || t2 == NULL || num == NULL || X509_CRL_set_version(crl, 1) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 || X509_CRL_set1_lastUpdate(crl, t1) != 1 ||
        X509_CRL_set1_nextUpdate(crl, t2) != 1 || ASN1_INTEGER_set_uint64(num, number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1 ||
        (aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) == NULL ||
        X509_CRL_add_ext(crl, aki, -1) != 1)
        goto out;
    r = DUO_OK;
out:
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t2);
    ASN1_TIME_free(t1);
    return r;
}

int duo_ca_crl(const duo_ca *ca, duo_keystore *ks, uint8_t *out, size_t out_cap, size_t *out_len,
               uint32_t next_update_hours, int64_t now) {
    crl_walk w = {.crl = NULL, .now = now, .err = DUO_OK};
    uint64_t number = 0;
    uint8_t *p = out;
    char detail[64];
    int r, n;
    if (out_len != NULL) *out_len = 0;
    if (ca == NULL || ks == NULL || out == NULL || out_len == NULL || next_update_hours == 0 ||
        next_update_hours > 8760)
        return DUO_E_INVALID_ARG;
    if ((r = duo__ca_check_valid(ca, now)) != DUO_OK) return r;
    if ((r = duo_keystore_cert_list(ks, NULL, sweep_cb, ks)) != DUO_OK) return r;
    if ((w.crl = X509_CRL_new()) == NULL) return DUO_E_NOMEM;
    if ((r = duo_keystore_cert_list(ks, NULL, list_cb, &w)) != DUO_OK) {
        r = w.err != DUO_OK ? w.err : r;
        goto out;
    }
    snprintf(detail, sizeof detail, "CRL signed, next update in %u h", next_update_hours);
    duo_audit_event ev = {.kind = DUO_AUDIT_CRL, .detail = detail};
    if ((r = duo_keystore_ca_next_crl(ks, &number, &ev)) != DUO_OK) goto out;
    if ((r = crl_header(w.crl, ca, number, next_update_hours, now)) != DUO_OK) goto out;
    r = DUO_E_INTERNAL;
    if (X509_CRL_sort(w.crl) != 1 || X509_CRL_sign(w.crl, ca->key, EVP_sha256()) <= 0) goto out;
    if ((n = i2d_X509_CRL(w.crl, NULL)) <= 0) goto out;
    if ((size_t)n > out_cap) {
        r = DUO_E_BUFFER_TOO_SMALL;
        goto out;
    }
    if (i2d_X509_CRL(w.crl, &p) != n) goto out;
    *out_len = (size_t)n;
    r = DUO_OK;
out:
    X509_CRL_free(w.crl);
    return r;
}
