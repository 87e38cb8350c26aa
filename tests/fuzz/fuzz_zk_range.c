/* libFuzzer target: the range proof's verifier (zk_range.c, issue 22).
 *
 * At start-up: a 2048-bit Paillier key, ckey = Enc(x) with x in [0, l) and
 * one honest proof, which verifies. Input: a patch to that proof, read as
 * 3-byte records (big-endian 16-bit offset mod the proof's length, one
 * byte xored in there). The property: every patched proof that differs from
 * the honest one is refused with DUO_E_BAD_PROOF (the length, N and ckey are
 * right, so no other error may appear), whatever field was hit: points,
 * ciphertext, the equality's answers, seeds, positions, z_k, t_k. Patches
 * that reach the commitment equations cost a verification (~50 ms). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>

#include "duosign/curve.h"
#include "duosign/paillier.h"
#include "duosign/zk_paillier.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static duo_ec *g_ec;
static duo_paillier_priv *g_sk;
static BIGNUM *g_ckey;
static duo_binding g_bind;
static uint8_t *g_proof, *g_work;
static size_t g_len;

static void die(const char *what) {
    fprintf(stderr, "fuzz_zk_range: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    BIGNUM *x = BN_new(), *l = BN_new(), *r = BN_new(), *rn = BN_new();
    const duo_paillier_pub *pk;
    (void)argc;
    (void)argv;
    memset(&g_bind, 0x5a, sizeof g_bind);
    g_bind.role = DUO_ROLE_CLOUD;
    if (x == NULL || l == NULL || r == NULL || rn == NULL || (g_ckey = BN_new()) == NULL) die("alloc");
    if (duo_ec_new(&g_ec, DUO_CURVE_P256, NULL) != DUO_OK || duo_paillier_keygen(&g_sk, 2048) != DUO_OK) die("setup");
    pk = duo_paillier_priv_pub(g_sk);
    g_len = duo_zk_range_bytes(2048);
    if ((g_proof = malloc(g_len)) == NULL || (g_work = malloc(g_len)) == NULL) die("alloc");
    if (duo_zk_range_bound(g_ec, l) != DUO_OK || duo_bn_random_below(x, l, NULL) != DUO_OK ||
        duo_paillier_random_unit(pk, r, NULL) != DUO_OK || duo_paillier_rn_from_r(pk, rn, r) != DUO_OK ||
        duo_paillier_encrypt(pk, g_ckey, x, rn) != DUO_OK)
        die("ckey");
    if (duo_zk_range_prove(g_ec, g_sk, &g_bind, g_ckey, x, r, NULL, g_proof, g_len) != DUO_OK ||
        duo_zk_range_verify(g_ec, pk, &g_bind, g_ckey, g_proof, g_len) != DUO_OK)
        die("the honest proof does not verify");
    BN_clear_free(x);
    BN_free(l);
    BN_clear_free(r);
    BN_clear_free(rn);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t i;
    int r;
    memcpy(g_work, g_proof, g_len);
    for (i = 0; i + 3 <= size; i += 3) {
        size_t off = (((size_t)data[i] << 8) | data[i + 1]) % g_len;
        g_work[off] ^= data[i + 2];
    }
    if (memcmp(g_work, g_proof, g_len) == 0) return 0;
    r = duo_zk_range_verify(g_ec, duo_paillier_priv_pub(g_sk), &g_bind, g_ckey, g_work, g_len);
    if (r != DUO_E_BAD_PROOF) {
        fprintf(stderr, "fuzz_zk_range: a patched proof gave %s\n", duo_err_name(r));
        abort();
    }
    return 0;
}
