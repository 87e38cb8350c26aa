/* duosign wire layer: request MACs and device-secret rotation.
 *
 * MAC input (wire.h): SHA-256 transcript (common/include/duosign/transcript.h)
 * with domain "duosign/v1/mac/<Method>", then one duo_transcript_bytes item
 * per request field in .proto field order, labelled with the .proto field
 * name, excluding the mac itself. Variable-size fields (c3) and the revocation
 * code (its bytes without the NUL; empty when the device revokes with a MAC)
 * are appended with their actual length, which the transcript encoding
 * length-prefixes.
 *
 * MAC: HMAC-SHA256(secret, mac_input), compared in constant time.
 *
 * Rotation: next = HMAC-SHA256(secret, u32be(17) || "duosign/v1/rotate" ||
 * context(32) || seed(32)); the label is length-prefixed, context and seed are
 * fixed-size, so the input is unambiguous. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "duosign/mem.h"
#include "duosign/transcript.h"
#include "wire_internal.h"

#define DUO__ROTATE_LABEL "duosign/v1/rotate"

/* out = HMAC-SHA256(key, parts[0] || ... || parts[n-1]). */
static int duo__hmac_sha256(uint8_t out[32], const uint8_t key[32], const uint8_t *const parts[], const size_t lens[],
                            size_t n) {
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    char digest[] = "SHA256";
    size_t i, outl = 0;
    int r = DUO_E_INTERNAL;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
        goto out;
    }
    if ((ctx = EVP_MAC_CTX_new(mac)) == NULL) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if (EVP_MAC_init(ctx, key, 32, params) != 1) {
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (EVP_MAC_update(ctx, parts[i], lens[i]) != 1) {
            goto out;
        }
    }
    if (EVP_MAC_final(ctx, out, &outl, 32) != 1 || outl != 32) {
        goto out;
    }
    r = DUO_OK;
out:
    if (r != DUO_OK) {
        duo_memzero(out, 32);
    }
    EVP_MAC_CTX_free(ctx); /* cleanses the keyed state */
    EVP_MAC_free(mac);
    return r;
}

int duo_mac_compute(uint8_t out[DUO_MAC_BYTES], const uint8_t secret[32], const uint8_t mac_input[32]) {
    const uint8_t *parts[1];
    size_t lens[1] = {32};

    if (out == NULL || secret == NULL || mac_input == NULL) {
        return DUO_E_INVALID_ARG;
    }
    parts[0] = mac_input;
    return duo__hmac_sha256(out, secret, parts, lens, 1);
}

int duo_mac_check(const uint8_t secret[32], const uint8_t mac_input[32], const uint8_t mac[DUO_MAC_BYTES]) {
    uint8_t expect[DUO_MAC_BYTES];
    int r;

    if (secret == NULL || mac_input == NULL || mac == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_mac_compute(expect, secret, mac_input)) != DUO_OK) {
        goto out;
    }
    /* Constant time: the result depends on every byte, never on where the
     * first difference is. */
    r = duo_ct_eq(expect, mac, DUO_MAC_BYTES) ? DUO_OK : DUO_E_UNAUTHENTICATED;
out:
    duo_memzero(expect, sizeof expect);
    return r;
}

int duo_secret_rotate(uint8_t next[32], const uint8_t secret[32], const uint8_t context[32], const uint8_t seed[32]) {
    static const uint8_t label_len[4] = {0, 0, 0, (uint8_t)(sizeof(DUO__ROTATE_LABEL) - 1)};
    const uint8_t *parts[4];
    size_t lens[4] = {4, sizeof(DUO__ROTATE_LABEL) - 1, 32, 32};

    if (next == NULL || secret == NULL || context == NULL || seed == NULL) {
        return DUO_E_INVALID_ARG;
    }
    parts[0] = label_len;
    parts[1] = (const uint8_t *)DUO__ROTATE_LABEL;
    parts[2] = context;
    parts[3] = seed;
    /* next may alias secret: HMAC reads the key at init, writes out at final. */
    return duo__hmac_sha256(next, secret, parts, lens, 4);
}

/* ---- MAC inputs ---- */
static int duo__mac_finish(duo_transcript *t, uint8_t out[32]) {
    int r = duo_transcript_digest(t, out);
    duo_transcript_free(t);
    if (r != DUO_OK) {
        duo_memzero(out, 32);
    }
    return r;
}

int duo_wire_mac_input_enroll_confirm(uint8_t out[32], const duo_enroll_confirm_req *m) {
    duo_transcript t;
    int r;

    if (out == NULL || m == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, "duosign/v1/mac/EnrollConfirm")) != DUO_OK) {
        return r;
    }
    duo_transcript_bytes(&t, "sid", m->sid, sizeof m->sid);
    duo_transcript_bytes(&t, "public_key", m->public_key, sizeof m->public_key);
    return duo__mac_finish(&t, out);
}

int duo_wire_mac_input_sign_start(uint8_t out[32], const duo_sign_start_req *m) {
    duo_transcript t;
    int r;

    if (out == NULL || m == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, "duosign/v1/mac/SignStart")) != DUO_OK) {
        return r;
    }
    duo_transcript_bytes(&t, "key_id", m->key_id, sizeof m->key_id);
    duo_transcript_bytes(&t, "device_nonce", m->device_nonce, sizeof m->device_nonce);
    duo_transcript_bytes(&t, "digest", m->digest, sizeof m->digest);
    duo_transcript_bytes(&t, "r2_commitment", m->r2_commitment, sizeof m->r2_commitment);
    /* A device from before purposes MACs the four fields above only; a
     * purpose, once set, is bound with its extra field, so a document
     * request cannot be replayed as a login or a CSR, or the reverse. */
    if (m->purpose != DUO_SIGN_PURPOSE_UNSPECIFIED) {
        uint8_t p = (uint8_t)m->purpose;
        duo_transcript_bytes(&t, "purpose", &p, 1);
        duo_transcript_bytes(&t, "csr_info", m->csr_info, m->csr_info_len);
        duo_transcript_bytes(&t, "login_challenge", m->login_challenge, m->login_challenge_len);
    }
    return duo__mac_finish(&t, out);
}

int duo_wire_mac_input_sign_finish(uint8_t out[32], const duo_sign_finish_req *m) {
    duo_transcript t;
    int r;

    if (out == NULL || m == NULL || (m->c3.ptr == NULL && m->c3.len != 0)) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, "duosign/v1/mac/SignFinish")) != DUO_OK) {
        return r;
    }
    duo_transcript_bytes(&t, "sid", m->sid, sizeof m->sid);
    duo_transcript_bytes(&t, "r2", m->r2, sizeof m->r2);
    duo_transcript_bytes(&t, "r2_proof", m->r2_proof, sizeof m->r2_proof);
    duo_transcript_bytes(&t, "r2_opening", m->r2_opening, sizeof m->r2_opening);
    duo_transcript_bytes(&t, "pin_proof", m->pin_proof, sizeof m->pin_proof);
    duo_transcript_bytes(&t, "c3", m->c3.ptr, m->c3.len);
    return duo__mac_finish(&t, out);
}

/* Refresh and Status share a C type; the domain keeps their MACs apart. */
static int duo__mac_input_kid_nonce(uint8_t out[32], const char *domain, const duo_refresh_req *m) {
    duo_transcript t;
    int r;

    if (out == NULL || m == NULL) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, domain)) != DUO_OK) {
        return r;
    }
    duo_transcript_bytes(&t, "key_id", m->key_id, sizeof m->key_id);
    duo_transcript_bytes(&t, "device_nonce", m->device_nonce, sizeof m->device_nonce);
    return duo__mac_finish(&t, out);
}

int duo_wire_mac_input_refresh(uint8_t out[32], const duo_refresh_req *m) {
    return duo__mac_input_kid_nonce(out, "duosign/v1/mac/Refresh", m);
}

int duo_wire_mac_input_status(uint8_t out[32], const duo_status_req *m) {
    return duo__mac_input_kid_nonce(out, "duosign/v1/mac/Status", m);
}

int duo_wire_mac_input_revoke(uint8_t out[32], const duo_revoke_req *m) {
    duo_transcript t;
    size_t code_len;
    int r;

    if (out == NULL || m == NULL) {
        return DUO_E_INVALID_ARG;
    }
    /* Bounded: the array may not be NUL-terminated in a malformed struct. */
    code_len = strnlen(m->revocation_code, sizeof m->revocation_code);
    if (code_len > DUO_REVOCATION_CODE_MAX) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, "duosign/v1/mac/Revoke")) != DUO_OK) {
        return r;
    }
    duo_transcript_bytes(&t, "key_id", m->key_id, sizeof m->key_id);
    duo_transcript_bytes(&t, "device_nonce", m->device_nonce, sizeof m->device_nonce);
    duo_transcript_bytes(&t, "revocation_code", (const uint8_t *)m->revocation_code, code_len);
    return duo__mac_finish(&t, out);
}

int duo_wire_mac_input_issue_cert(uint8_t out[32], const duo_issue_cert_req *m) {
    duo_transcript t;
    int r;

    if (out == NULL || m == NULL || m->csr_len > sizeof m->csr) {
        return DUO_E_INVALID_ARG;
    }
    if ((r = duo_transcript_init(&t, "duosign/v1/mac/IssueCertificate")) != DUO_OK) {
        return r;
    }
    duo_transcript_bytes(&t, "key_id", m->key_id, sizeof m->key_id);
    duo_transcript_bytes(&t, "device_nonce", m->device_nonce, sizeof m->device_nonce);
    duo_transcript_bytes(&t, "csr", m->csr, m->csr_len);
    return duo__mac_finish(&t, out);
}
