/* duosign-cloud: Lindell's abort rule at the daemon (docs/PROTOCOL.md
 * "WRONG_PIN vs PEER_CHEATED"; issue 13, "protocol checks without a test").
 *
 * A device that knows the PIN (its PIN proof verifies) and sends a c3 whose
 * signature does not verify can only be malicious (Broken Record,
 * CVE-2023-33242): the daemon must answer PEER_CHEATED, release no
 * signature, and leave the key `suspended`, so that the next signing attempt
 * of the real device (right PIN) gets KEY_SUSPENDED. A wrong PIN, by
 * contrast, is only a PIN attempt: the key stays active and signs again.
 *
 * The malicious device is the real P2 engine whose SignFinish request is
 * changed after the fact: c3 -> c3 (+) Enc(1) (still a valid ciphertext, so
 * the cloud decrypts it; s' is off by one), with the request MAC recomputed
 * under the device's current secret (so it passes the caller's checks).
 *
 * Usage: test_daemon_abort PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>

#include "daemon_client.h"
#include "duosign/mem.h"

static daemon_t g_d;
static client g_c;

/* The key's state as `key show` prints it. */
static int key_state_is(const device *dv, const char *state) {
    char id[33], out[2048];
    key_hex(id, dv);
    if (run_cmd(out, sizeof out, "'%s' key show --data '%s' %s 2>&1", g_bin, g_dir, id) != 0) return 0;
    return strstr(out, state) != NULL;
}

/* One signature by a device with the right PIN whose c3 is c3 (+) Enc(1),
 * MAC recomputed. Returns the SignFinish gRPC status (-1 local failure);
 * res gets the outcome, sig_out the response's signature if any. */
static int evil_sign(device *dv, const uint8_t digest[32], rpc_result *res, uint8_t sig_out[64]) {
    duo_p2_sign *s = NULL;
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    const duo_paillier_pub *pk = dv->key->paillier;
    BIGNUM *c = BN_new(), *one = BN_new(), *rn = BN_new(), *e1 = BN_new();
    uint8_t mi[32], *b = NULL;
    size_t bl = 0;
    int st = -1;

    memset(&m2, 0, sizeof m2);
    memset(&m3, 0, sizeof m3);
    memset(sig_out, 0, 64);
    duo_p2_sign_params sp = {
        .ec = g_ec, .key = dv->key, .pin = (const uint8_t *)PIN, .pin_len = strlen(PIN), .digest = digest};
    if (!c || !one || !rn || !e1 || duo_p2_sign_new(&s, &sp) != DUO_OK || duo_p2_sign_start(s, &m0) != DUO_OK) goto out;
    if (CALL(&g_c, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, res) != 0) goto out;
    if (duo_p2_sign_on_start(s, &m1, &m2) != DUO_OK) goto out;
    /* c3 := c3 (+) Enc(1; fresh r), in place (same length) */
    if (BN_bin2bn(m2.c3.ptr, (int)m2.c3.len, c) == NULL || !BN_one(one) || duo_paillier_rn(pk, rn, NULL) != DUO_OK ||
        duo_paillier_encrypt(pk, e1, one, rn) != DUO_OK || duo_paillier_add(pk, c, c, e1) != DUO_OK ||
        duo_paillier_ciphertext_serialize(pk, (uint8_t *)(uintptr_t)m2.c3.ptr, m2.c3.len, c) != DUO_OK)
        goto out;
    /* a valid MAC under the device's current secret */
    if (duo_wire_mac_input_sign_finish(mi, &m2) != DUO_OK ||
        duo_mac_compute(m2.mac, dv->key->device_secret, mi) != DUO_OK)
        goto out;
    if (duo_wire_build_sign_finish_req(&b, &bl, &m2) != DUO_OK) goto out;
    st = CALL_BYTES(&g_c, "SignFinish", b, bl, duo_wire_parse_sign_finish_resp, &m3, res);
    if (st == 0) memcpy(sig_out, m3.signature, 64);
out:
    free(b);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    BN_free(c);
    BN_free(one);
    BN_free(rn);
    BN_free(e1);
    return st;
}

static void test_bad_c3_suspends(void) {
    device dv;
    sign_run sr;
    rpc_result res;
    uint8_t d[32], sig[64];
    duo_status_resp status;

    DUO_REQUIRE(enrol_new(&g_c, &dv, "abort1") == 0);
    /* control: the key signs */
    digest_of(d, "abort rule", 0);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    DUO_CHECK(openssl_verify(&dv, d, sr.sig) == 1);
    /* a wrong PIN is a PIN attempt, not an attack: still active, still signs */
    digest_of(d, "abort rule", 1);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, "0000", d, &sr) != 0 && sr.res.duo_err == DUO_E_WRONG_PIN);
    DUO_CHECK(key_state_is(&dv, "active"));
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) == 0);
    /* the malicious device: right PIN, bad c3 */
    digest_of(d, "abort rule", 2);
    memset(&res, 0, sizeof res);
    DUO_CHECK(evil_sign(&dv, d, &res, sig) != 0);
    DUO_CHECK(res.duo_err == DUO_E_PEER_CHEATED);
    DUO_CHECK(duo_ct_is_zero(sig, sizeof sig));
    DUO_CHECK(key_state_is(&dv, "suspended"));
    memset(&status, 0, sizeof status);
    memset(&res, 0, sizeof res);
    if (dev_status(&g_c, &dv, &status, &res) == 0) {
        DUO_CHECK(status.state == DUO_KEY_STATE_SUSPENDED);
    } else {
        DUO_CHECK(res.duo_err == DUO_E_KEY_SUSPENDED);
    }
    /* the real device, right PIN: refused, the key stays suspended */
    digest_of(d, "abort rule", 3);
    memset(&sr, 0, sizeof sr);
    DUO_CHECK(dev_sign(&g_c, &dv, PIN, d, &sr) != 0);
    DUO_CHECK(sr.res.duo_err == DUO_E_KEY_SUSPENDED);
    DUO_CHECK(key_state_is(&dv, "suspended"));
    device_free(&dv);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-abort", &g_d, &g_c);
    if (rc != 0) return rc;
    DUO_RUN(test_bad_c3_suspends);
    return it_finish(&g_d, &g_c);
}
