/* libFuzzer target: the issuing CA's check of a PKCS#10 request
 * (duo_ca_issue, cloud_half/ca/ca_issue.c): parse, self-signature, the
 * stored key. A request arrives from the device (the enrolment will carry
 * it), so it is untrusted input.
 *
 * Setup, once: a key store in a temporary directory with an issuing CA (the
 * CA's clock fixed), and a stored public key: the secp256k1 point of the key
 * that signed corpus/fuzz_ca_csr/seed-valid.der.
 * Input: the request's DER.
 * Checks: the result is DUO_OK or one of the CSR errors (never another code,
 * never a crash or leak); DUO_OK only with a certificate that parses, is
 * signed by the CA, and holds the stored key; on failure nothing is output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "ca.h"
#include "duosign/ec_pkey.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1800000000LL

static const uint8_t stored_q[33] = {0x03, 0x8c, 0xa2, 0x8b, 0xc4, 0x1d, 0xb7, 0xc5, 0xf0, 0x75, 0x70,
                                     0xe2, 0xa3, 0x65, 0xcc, 0xce, 0x41, 0x6b, 0x8a, 0x94, 0xa7, 0xa5,
                                     0xe1, 0x3d, 0x70, 0x9b, 0x1f, 0xf9, 0x5a, 0x03, 0x1c, 0xbe, 0xc3};
static duo_ca *g_ca;
static EVP_PKEY *g_stored, *g_ca_pub;

static int64_t fixed_clock(void *data) {
    (void)data;
    return NOW;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char dir[] = "/tmp/duo-fuzz-ca-XXXXXX", path[64];
    duo_kek kek;
    duo_keystore *ks = NULL;
    duo_keystore_config cfg = {.clock = fixed_clock};
    size_t len;
    (void)argc;
    (void)argv;
    memset(&kek, 0, sizeof kek); /* id 0, no token: a file KEK */
    memset(kek.data, 0x5a, sizeof kek.data);
    if (mkdtemp(dir) == NULL) abort();
    snprintf(path, sizeof path, "%s/keys.db", dir);
    if (duo_keystore_open_sqlite(&ks, path, &kek, &cfg) != DUO_OK || duo_ca_create(ks, NULL, NOW) != DUO_OK ||
        duo_ca_load(&g_ca, ks) != DUO_OK)
        abort();
    duo_keystore_free(ks);
    /* the CA stays in memory; the files go */
    snprintf(path, sizeof path, "%s/keys.db", dir), unlink(path);
    snprintf(path, sizeof path, "%s/keys.db-wal", dir), unlink(path);
    snprintf(path, sizeof path, "%s/keys.db-shm", dir), unlink(path);
    rmdir(dir);
    const uint8_t *der = duo_ca_cert_der(g_ca, &len), *p = der;
    X509 *cax = d2i_X509(NULL, &p, (long)len);
    if (cax == NULL || (g_ca_pub = X509_get_pubkey(cax)) == NULL) abort();
    X509_free(cax);
    if (duo_ec_pkey_from_point(&g_stored, "secp256k1", stored_q, sizeof stored_q) != DUO_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t out[DUO_CERT_DER_MAX];
    size_t out_len = 1;
    duo_cert_row row;
    duo_ca_subject who = {.citizen_id = "1234567890", .name = "Fuzz"};
    int r = duo_ca_issue(g_ca, out, sizeof out, &out_len, &row, data, size, "secp256k1", stored_q, sizeof stored_q,
                         &who, DUO_CERT_ROLE_SIGN, NOW);
    if (r != DUO_OK) {
        if (r != DUO_E_CSR_MALFORMED && r != DUO_E_CSR_BAD_SIGNATURE && r != DUO_E_CSR_KEY_MISMATCH) abort();
        if (out_len != 0 || row.der_len != 0) abort();
        return 0;
    }
    const uint8_t *p = out;
    X509 *x = d2i_X509(NULL, &p, (long)out_len);
    if (x == NULL || p != out + out_len || X509_verify(x, g_ca_pub) != 1 ||
        EVP_PKEY_eq(X509_get0_pubkey(x), g_stored) != 1 || row.der_len != out_len)
        abort();
    X509_free(x);
    return 0;
}
