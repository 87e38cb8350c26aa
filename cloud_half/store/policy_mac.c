/* duosign cloud store: the MAC over a key's policy fields (policy_mac.h). */
#include "policy_mac.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include "duosign/mem.h"
#include "kek_p11.h"

static const char mac_label[] = "duosign.policy.v1";
static const char kdf_info[] = "duosign policy mac v1";
static const char moved_label[] = "moved";

void duo_policy_key_clear(duo_policy_key *k) {
    if (k != NULL) duo_memzero(k, sizeof *k);
}

/* The HKDF input: the KEK's bytes, or for a KEK that stays in its PKCS#11
 * token, the token's AES-GCM of 32 zero bytes under a fixed IV and AAD used
 * for nothing else (a PRF of the key that only the token can compute; the
 * sealing IVs are random, so this IV meets no other plaintext). */
static int kdf_input(uint8_t ikm[32], const duo_kek *kek) {
    static const uint8_t iv[12] = "duosign.pmac";
    uint8_t zero[32] = {0}, ct[32 + 16];
    int r;
    if (kek->token == NULL) {
        memcpy(ikm, kek->data, 32);
        return DUO_OK;
    }
    r = duo_p11_gcm(kek->token, 1, iv, (const uint8_t *)kdf_info, sizeof kdf_info - 1, zero, sizeof zero, ct);
    if (r == DUO_OK) memcpy(ikm, ct, 32);
    duo_memzero(ct, sizeof ct);
    return r;
}

int duo_policy_key_derive(duo_policy_key *out, const duo_kek *kek) {
    EVP_KDF *alg = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[4];
    uint8_t ikm[32];
    int r = DUO_E_INTERNAL;
    if (out == NULL || kek == NULL) return DUO_E_INVALID_ARG;
    if ((r = kdf_input(ikm, kek)) != DUO_OK) return r;
    r = DUO_E_INTERNAL;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm, sizeof ikm);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)kdf_info, sizeof kdf_info - 1);
    params[3] = OSSL_PARAM_construct_end();
    if ((alg = EVP_KDF_fetch(NULL, "HKDF", NULL)) == NULL || (kctx = EVP_KDF_CTX_new(alg)) == NULL) goto out;
    if (EVP_KDF_derive(kctx, out->k, sizeof out->k, params) != 1) goto out;
    r = DUO_OK;
out:
    if (r != DUO_OK) duo_policy_key_clear(out);
    duo_memzero(ikm, sizeof ikm);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(alg);
    return r;
}

static void put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

int duo_policy_mac(uint8_t out[DUO_POLICY_MAC_LEN], const duo_policy_key *k, const duo_policy_fields *f) {
    uint8_t msg[sizeof mac_label - 1 + DUO_KEY_ID_BYTES + 4 + 4 + 8 + 8 + 8 + 8 + sizeof moved_label - 1], *p = msg;
    size_t n = sizeof mac_label - 1 + DUO_KEY_ID_BYTES + 4 + 4 + 8 + 8;
    unsigned int len = 0;
    if (out == NULL || k == NULL || f == NULL || f->state < 0 || (f->moved != 0 && f->moved != 1))
        return DUO_E_INVALID_ARG;
    memcpy(p, mac_label, sizeof mac_label - 1);
    p += sizeof mac_label - 1;
    memcpy(p, f->key_id, DUO_KEY_ID_BYTES);
    p += DUO_KEY_ID_BYTES;
    put_be(p, (uint32_t)f->state, 4);
    put_be(p + 4, f->pin_failures, 4);
    put_be(p + 8, (uint64_t)f->locked_until, 8);
    put_be(p + 16, f->secret_version, 8);
    /* Each suffix is there only when its fields are set, so every row
     * written before them keeps its MAC; the four message lengths differ,
     * so no row's message is another's. */
    if (f->resync_epoch != 0 || f->resync_used != 0) { /* schema v11 */
        put_be(msg + n, f->resync_epoch, 8);
        put_be(msg + n + 8, f->resync_used, 8);
        n += 16;
    }
    if (f->moved) { /* schema v12 */
        memcpy(msg + n, moved_label, sizeof moved_label - 1);
        n += sizeof moved_label - 1;
    }
    if (HMAC(EVP_sha256(), k->k, sizeof k->k, msg, n, out, &len) == NULL || len != DUO_POLICY_MAC_LEN)
        return DUO_E_INTERNAL;
    return DUO_OK;
}

int duo_policy_mac_check(const duo_policy_key *k, const duo_policy_fields *f, const uint8_t *mac, size_t mac_len) {
    uint8_t want[DUO_POLICY_MAC_LEN];
    int r;
    if (mac == NULL && mac_len != 0) return DUO_E_INVALID_ARG;
    if ((r = duo_policy_mac(want, k, f)) != DUO_OK) return r;
    /* A missing or short MAC is a mismatch, never "no check". */
    if (mac_len != DUO_POLICY_MAC_LEN || !duo_ct_eq(want, mac, DUO_POLICY_MAC_LEN)) r = DUO_E_POLICY_MAC;
    duo_memzero(want, sizeof want);
    return r;
}
