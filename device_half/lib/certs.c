/* duosign device library: the key's X.509 certificate: checking that one
 * certifies this key, keeping it in the state, and asking the cloud's CA
 * for one (IssueCertificate). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "blob.h"
#include "device_internal.h"
#include "duosign/ec_pkey.h"

int duo__dev_cert_matches(int curve, const uint8_t q[33], const uint8_t *der, size_t der_len) {
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    EVP_PKEY *want = NULL;
    int r = DUO_E_DECODE;
    if (x == NULL || p != der + der_len) goto out;
    if ((r = duo_ec_pkey_from_point(&want, duo_curve_name((duo_curve)curve), q, 33)) != DUO_OK) goto out;
    r = X509_get0_pubkey(x) != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), want) == 1 ? DUO_OK : DUO_E_CERT_KEY_MISMATCH;
out:
    EVP_PKEY_free(want);
    X509_free(x);
    return r;
}

int duo_device_set_certificate(duo_device_ctx *ctx, const uint8_t *der, size_t der_len) {
    uint8_t q[33], *copy;
    int r;
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if (ctx->key == NULL) {
        return duo__dev_finish(ctx, DUO_E_MISUSE);
    }
    if (der == NULL || der_len == 0 || der_len > DUO__BLOB_CERT_MAX) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    duo_point_serialize(ctx->ec, q, &ctx->key->q);
    if ((r = duo__dev_cert_matches((int)duo_ec_curve(ctx->ec), q, der, der_len)) != DUO_OK) {
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s",
                 r == DUO_E_CERT_KEY_MISMATCH ? "the certificate is for another key" : "not a DER X.509 certificate");
        return duo__dev_finish(ctx, r);
    }
    if ((copy = malloc(der_len)) == NULL) {
        return duo__dev_finish(ctx, DUO_E_NOMEM);
    }
    memcpy(copy, der, der_len);
    free(ctx->cert);
    ctx->cert = copy;
    ctx->cert_len = der_len;
    duo__dev_mark_dirty(ctx);
    return duo__dev_finish(ctx, DUO_OK);
}

int duo_device_certificate(const duo_device_ctx *ctx, const uint8_t **der, size_t *der_len) {
    if (ctx == NULL || der == NULL || der_len == NULL) return DUO_E_INVALID_ARG;
    *der = NULL;
    *der_len = 0;
    if (ctx->key == NULL || ctx->cert == NULL) return DUO_E_NO_CERT;
    *der = ctx->cert;
    *der_len = ctx->cert_len;
    return DUO_OK;
}

int duo_device_issue_certificate(duo_device_ctx *ctx, const uint8_t *csr, size_t csr_len) {
    duo_issue_cert_req *req = NULL;
    duo_issue_cert_resp *resp = NULL;
    uint8_t mi[32];
    int r;
    if (ctx == NULL) {
        return DUO_E_INVALID_ARG;
    }
    duo__dev_begin(ctx);
    if ((csr == NULL && csr_len != 0) || csr_len > DUO_WIRE_CSR_MAX) {
        return duo__dev_finish(ctx, DUO_E_INVALID_ARG);
    }
    if ((r = duo__dev_need_key(ctx)) != DUO_OK) {
        return duo__dev_finish(ctx, r);
    }
    if ((req = calloc(1, sizeof *req)) == NULL || (resp = calloc(1, sizeof *resp)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = duo__dev_fill_mac_req(ctx, req->key_id, req->device_nonce)) != DUO_OK) goto out;
    if (csr_len > 0) memcpy(req->csr, csr, csr_len);
    req->csr_len = csr_len;
    if ((r = duo_wire_mac_input_issue_cert(mi, req)) != DUO_OK ||
        (r = duo_mac_compute(req->mac, ctx->key->device_secret, mi)) != DUO_OK)
        goto out;
    DUO__RPC(ctx, "IssueCertificate", duo_wire_build_issue_cert_req, req, duo_wire_parse_issue_cert_resp, resp, r, out);
    /* Kept only if it certifies this key (set_certificate checks). */
    free(req);
    req = NULL;
    r = duo_device_set_certificate(ctx, resp->certificate, resp->certificate_len);
    free(resp);
    return r;
out:
    free(req);
    free(resp);
    return duo__dev_finish(ctx, r);
}
