/* duosign CLI: `duosign verify`: a der, raw or compact JWS signature
 * checked locally with OpenSSL only (no duosign code, no network). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"

/* Local verification with OpenSSL only (no duosign code involved). */
static int verify_der(EVP_PKEY *pk, const uint8_t *der, size_t der_len, const uint8_t *msg, size_t msg_len) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = 0;
    if (m != NULL && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk) == 1) {
        ok = EVP_DigestVerify(m, der, der_len, msg, msg_len) == 1;
    }
    EVP_MD_CTX_free(m);
    return ok;
}

static int raw_to_der(const uint8_t raw[64], uint8_t *der, size_t *der_len) {
    return duo_device_sig_to_der(der, der_len, raw) == DUO_OK ? 0 : -1;
}

/* The JWS Protected Header (RFC 7515 section 4), parsed as JSON: an object
 * (RFC 7515 5.2 step 5: valid JSON, no duplicate member names, which
 * jansson rejects with JSON_REJECT_DUPLICATES; nothing after the object),
 * "alg" exactly "ES256K" (RFC 8812), and no "crit" (4.1.11: a recipient
 * must reject extensions it does not understand; this verifier understands
 * none). Returns 0, or -1 with the reason in why. */
static int jws_header_check(const uint8_t *hdr, size_t hdr_len, const char *want, char *why, size_t why_cap) {
    json_error_t jerr;
    json_t *h = json_loadb((const char *)hdr, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *alg, *crit;
    int r = -1;

    if (h == NULL) {
        snprintf(why, why_cap, "the protected header is not valid JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(h)) {
        snprintf(why, why_cap, "the protected header is not a JSON object");
        goto out;
    }
    if ((crit = json_object_get(h, "crit")) != NULL) {
        const char *first = json_is_array(crit) && json_is_string(json_array_get(crit, 0))
                                ? json_string_value(json_array_get(crit, 0))
                                : "?";
        snprintf(why, why_cap,
                 "the protected header marks extensions critical (crit, first \"%s\") this verifier "
                 "does not understand",
                 first);
        goto out;
    }
    alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), want) != 0 || json_string_length(alg) != strlen(want)) {
        snprintf(why, why_cap, "the protected header's alg is %s%s%s, not \"%s\" (the public key's curve)",
                 json_is_string(alg) ? "\"" : "",
                 alg == NULL           ? "missing"
                 : json_is_string(alg) ? json_string_value(alg)
                                       : "not a string",
                 json_is_string(alg) ? "\"" : "", want);
        goto out;
    }
    r = 0;
out:
    json_decref(h);
    return r;
}

/* The DUO_DEVICE_CURVE_* of an EC public key, from its group name; 0 for
 * any other curve. */
static int pubkey_curve(const EVP_PKEY *pk) {
    char name[64] = "";
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, NULL) != 1) return 0;
    if (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0) return DUO_DEVICE_CURVE_P256;
    if (strcmp(name, "secp256k1") == 0) return DUO_DEVICE_CURVE_SECP256K1;
    return 0;
}

int cmd_verify(const opts *o) {
    uint8_t *pem = NULL, *sig = NULL, *doc = NULL, *dec = NULL, *hdr = NULL, *payload = NULL;
    size_t pem_len = 0, sig_len = 0, doc_len = 0, dec_len = 0, hdr_len = 0, payload_len = 0;
    const char *fmt = o->format ? o->format : "der";
    EVP_PKEY *pk = NULL;
    BIO *bio = NULL;
    uint8_t der[DUO_DEVICE_SIG_DER_MAX];
    size_t der_len = sizeof der;
    int ex, ok = 0, curve;

    if (!require(o->pubkey, "--pubkey pub.pem") || !require(o->sig, "--sig SIG") || !require(o->in, "--in DOC")) {
        return EX_USAGE_;
    }
    if ((ex = read_input("public key", o->pubkey, &pem, &pem_len, MAX_SMALL)) != EX_OK_) goto out;
    if ((ex = read_input("signature", o->sig, &sig, &sig_len, MAX_DOC)) != EX_OK_) goto out;
    if ((ex = read_input("document", o->in, &doc, &doc_len, MAX_DOC)) != EX_OK_) goto out;
    if ((bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL ||
        (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL || !EVP_PKEY_is_a(pk, "EC")) {
        fprintf(stderr, "%s: '%s' is not a PEM EC public key\n", prog, o->pubkey);
        ex = EX_INPUT;
        goto out;
    }
    if ((curve = pubkey_curve(pk)) == 0) {
        fprintf(stderr, "%s: '%s' is an EC key on a curve duosign does not use (P-256 and secp256k1 only)\n", prog,
                o->pubkey);
        ex = EX_INPUT;
        goto out;
    }
    if (strcmp(fmt, "der") == 0) {
        ok = verify_der(pk, sig, sig_len, doc, doc_len);
    } else if (strcmp(fmt, "raw") == 0) {
        ok = sig_len == 64 && raw_to_der(sig, der, &der_len) == 0 && verify_der(pk, der, der_len, doc, doc_len);
    } else {
        /* Compact JWS: header.payload.signature (RFC 7515 section 7.1). */
        char *d1, *d2, *text;
        size_t n = sig_len;
        while (n > 0 && (sig[n - 1] == '\n' || sig[n - 1] == '\r')) n--;
        if ((text = malloc(n + 1)) == NULL) {
            ex = EX_OTHER;
            goto out;
        }
        memcpy(text, sig, n);
        text[n] = '\0';
        d1 = strchr(text, '.');
        d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        if (d1 && d2 && strchr(d2 + 1, '.') == NULL && strlen(text) == n &&
            b64url_decode(text, (size_t)(d1 - text), &hdr, &hdr_len) == 0 &&
            b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &payload, &payload_len) == 0 &&
            b64url_decode(d2 + 1, strlen(d2 + 1), &dec, &dec_len) == 0) {
            /* The header must be a JSON object naming the alg of the
             * key's curve, with no critical extension; the payload must be
             * DOC. */
            char why[256];
            int alg_ok = jws_header_check(hdr, hdr_len, jws_alg_of(curve), why, sizeof why) == 0;
            if (!alg_ok) fprintf(stderr, "%s: %s\n", prog, why);
            ok = alg_ok && payload_len == doc_len && memcmp(payload, doc, doc_len) == 0 && dec_len == 64 &&
                 raw_to_der(dec, der, &der_len) == 0 &&
                 verify_der(pk, der, der_len, (const uint8_t *)text, (size_t)(d2 - text));
        }
        free(text);
    }
    if (ok) {
        printf("signature OK (%s, %s)\n", fmt, o->in);
        ex = EX_OK_;
    } else {
        fprintf(stderr, "%s: signature INVALID for '%s' (%s)\n", prog, o->in, fmt);
        ex = EX_OTHER;
    }
out:
    BIO_free(bio);
    EVP_PKEY_free(pk);
    free(pem);
    free(sig);
    free(doc);
    free(dec);
    free(hdr);
    free(payload);
    return ex;
}
