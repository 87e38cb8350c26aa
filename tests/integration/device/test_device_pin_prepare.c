/* The prepared PIN of the device library (duo_device_pin_prepare), end to
 * end against a real duosign-cloud over gRPC + TLS:
 *  - argument and state errors (no key, NULL/empty/long PIN, pin NULL with a
 *    length);
 *  - a prepared signature verifies (OpenSSL);
 *  - one shot: a second pin-NULL signature fails with DUO_E_MISUSE, sends
 *    nothing (the cloud's attempt counter is unchanged) and changes nothing
 *    in the state (not dirty, same exported bytes);
 *  - a prepared wrong PIN gives DUO_E_WRONG_PIN and costs one attempt, like
 *    a typed one; a typed PIN wipes a prepared one; _clear wipes it;
 *  - change-pin wipes it; the new PIN prepares and signs, the old one is a
 *    wrong PIN;
 *  - it never travels in the state blob.
 *
 * Usage: test_device_pin_prepare PATH/TO/duosign-cloud */
#define _GNU_SOURCE
#include <openssl/sha.h>
#include <stdlib.h>

#include "duo_it.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"
#include "test_harness.h"

#define PIN "24680"
#define PIN2 "86420"

static const char *g_bin;
static char g_parent[256], g_dir[300], g_addr[64];
static char *g_ca;
static size_t g_ca_len;
static duo_it_daemon g_d;

static duo_device_ctx *g_ctx;
static duo_grpc_transport *g_t;
static uint8_t *g_blob; /* what the app stored last */
static size_t g_blob_len;
static uint8_t g_pub[33];

static int store(void) {
    uint8_t *b = NULL;
    size_t n = 0;
    if (duo_device_state_export(g_ctx, &b, &n) != DUO_OK) return -1;
    duo_device_blob_free(g_blob, g_blob_len);
    g_blob = b;
    g_blob_len = n;
    return duo_device_state_persisted(g_ctx) == DUO_OK ? 0 : -1;
}

/* Signs SHA-256(text); on success checks it with OpenSSL and stores the
 * state. pin NULL: the prepared PIN. */
static int sign_text(const char *text, const char *pin) {
    uint8_t dg[32], sig[64];
    SHA256((const unsigned char *)text, strlen(text), dg);
    int r = duo_device_sign(g_ctx, sig, dg, (const uint8_t *)pin, pin ? strlen(pin) : 0);
    if (r != DUO_OK) return r;
    if (!duo_it_openssl_verify(g_pub, dg, sig)) return DUO_E_BAD_SIGNATURE;
    return store() == 0 ? DUO_OK : DUO_E_INTERNAL;
}

static uint32_t attempts_left(void) {
    duo_device_status_info info;
    if (duo_device_status(g_ctx, &info) != DUO_OK) return 9999;
    return info.pin_attempts_left;
}

/* The state did not change: not dirty, and an export gives the stored bytes. */
static int state_unchanged(void) {
    uint8_t *b = NULL;
    size_t n = 0;
    int same;
    if (duo_device_state_dirty(g_ctx)) return 0;
    if (duo_device_state_export(g_ctx, &b, &n) != DUO_OK) return 0;
    same = n == g_blob_len && memcmp(b, g_blob, n) == 0;
    duo_device_blob_free(b, n);
    return same;
}

static void test_offline_args(void) {
    duo_device_ctx *c = NULL;
    uint8_t sig[64], dg[32] = {1}, long_pin[DUO_DEVICE_PIN_MAX + 1];
    memset(long_pin, '5', sizeof long_pin);
    DUO_EXPECT_ERR(duo_device_pin_prepare(NULL, (const uint8_t *)PIN, 5), DUO_E_INVALID_ARG);
    DUO_CHECK(!duo_device_pin_prepared(NULL));
    duo_device_pin_prepare_clear(NULL); /* no-op */
    DUO_CHECK_OK(duo_device_ctx_new(&c));
    DUO_REQUIRE(c != NULL);
    /* no key */
    DUO_EXPECT_ERR(duo_device_pin_prepare(c, (const uint8_t *)PIN, 5), DUO_E_MISUSE);
    DUO_CHECK(!duo_device_pin_prepared(c));
    DUO_EXPECT_ERR(duo_device_sign(c, sig, dg, NULL, 0), DUO_E_MISUSE);
    duo_device_ctx_free(c);
    /* with the key: bad PINs */
    DUO_EXPECT_ERR(duo_device_pin_prepare(g_ctx, NULL, 5), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, 0), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_pin_prepare(g_ctx, long_pin, sizeof long_pin), DUO_E_INVALID_ARG);
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    /* pin NULL with a length; a PIN with length 0 */
    DUO_EXPECT_ERR(duo_device_sign(g_ctx, sig, dg, NULL, 5), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_device_sign(g_ctx, sig, dg, (const uint8_t *)PIN, 0), DUO_E_INVALID_ARG);
    /* a failed prepare leaves nothing prepared, also not an earlier one */
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK(duo_device_pin_prepared(g_ctx));
    DUO_EXPECT_ERR(duo_device_pin_prepare(g_ctx, NULL, 0), DUO_E_INVALID_ARG);
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    /* _clear */
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    duo_device_pin_prepare_clear(g_ctx);
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    DUO_EXPECT_ERR(duo_device_sign(g_ctx, sig, dg, NULL, 0), DUO_E_MISUSE);
    DUO_CHECK(state_unchanged());
}

static void test_prepared_sign_one_shot(void) {
    uint8_t sig[64], dg[32] = {2};
    uint32_t left;
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK(duo_device_pin_prepared(g_ctx));
    /* preparing changes nothing in the state */
    DUO_CHECK(state_unchanged());
    DUO_CHECK_OK(sign_text("prepared 1", NULL));
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    /* one shot: refused locally, nothing sent, nothing changed */
    left = attempts_left();
    DUO_CHECK(left != 9999);
    memset(sig, 0x77, sizeof sig);
    DUO_EXPECT_ERR(duo_device_sign(g_ctx, sig, dg, NULL, 0), DUO_E_MISUSE);
    DUO_CHECK(strstr(duo_device_errmsg(g_ctx), "prepared") != NULL);
    {
        uint8_t acc = 0;
        for (size_t i = 0; i < sizeof sig; i++) acc |= sig[i];
        DUO_CHECK(acc == 0); /* zeroed on failure */
    }
    DUO_CHECK(state_unchanged());
    DUO_CHECK(attempts_left() == left);
    /* the typed PIN still signs; then again a prepared one */
    DUO_CHECK_OK(sign_text("typed", PIN));
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK_OK(sign_text("prepared 2", NULL));
}

static void test_typed_pin_wipes_prepared(void) {
    uint8_t sig[64], dg[32] = {3};
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK_OK(sign_text("typed, with one prepared", PIN));
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    DUO_EXPECT_ERR(duo_device_sign(g_ctx, sig, dg, NULL, 0), DUO_E_MISUSE);
    DUO_CHECK(state_unchanged());
}

static void test_wrong_prepared_pin(void) {
    uint32_t left = attempts_left();
    DUO_REQUIRE(left != 9999 && left >= 2);
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)"13579", 5));
    DUO_EXPECT_ERR(sign_text("wrong prepared", NULL), DUO_E_WRONG_PIN);
    DUO_CHECK(!duo_device_pin_prepared(g_ctx)); /* used up */
    DUO_CHECK(attempts_left() == left - 1);
    /* exactly like a typed wrong PIN */
    DUO_EXPECT_ERR(sign_text("wrong typed", "13579"), DUO_E_WRONG_PIN);
    DUO_CHECK(attempts_left() == left - 2);
    /* a correct (prepared) PIN resets the count */
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK_OK(sign_text("right prepared", NULL));
    DUO_CHECK(attempts_left() == left);
}

static void test_change_pin_wipes(void) {
    uint8_t sig[64], dg[32] = {4};
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    /* a refused change-pin (bad new PIN) wipes it too */
    DUO_EXPECT_ERR(duo_device_change_pin(g_ctx, (const uint8_t *)PIN, strlen(PIN), NULL, 0), DUO_E_INVALID_ARG);
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK_OK(duo_device_change_pin(g_ctx, (const uint8_t *)PIN, strlen(PIN), (const uint8_t *)PIN2, strlen(PIN2)));
    DUO_CHECK(store() == 0);
    DUO_CHECK(!duo_device_pin_prepared(g_ctx));
    DUO_EXPECT_ERR(duo_device_sign(g_ctx, sig, dg, NULL, 0), DUO_E_MISUSE);
    DUO_CHECK(state_unchanged());
    /* the new PIN prepares and signs; the old one is now a wrong PIN */
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN2, strlen(PIN2)));
    DUO_CHECK_OK(sign_text("new PIN, prepared", NULL));
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)));
    DUO_EXPECT_ERR(sign_text("old PIN, prepared", NULL), DUO_E_WRONG_PIN);
    DUO_CHECK_OK(sign_text("new PIN, typed", PIN2));
}

static void test_not_in_blob(void) {
    duo_device_ctx *c = NULL;
    duo_grpc_transport *t = NULL;
    uint8_t sig[64], dg[32] = {5};
    DUO_CHECK_OK(duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN2, strlen(PIN2)));
    DUO_CHECK(state_unchanged()); /* the export holds no prepared PIN */
    /* a restarted app (state from the blob) has nothing prepared */
    DUO_CHECK_OK(duo_device_ctx_new(&c));
    DUO_REQUIRE(c != NULL);
    DUO_CHECK_OK(duo_grpc_transport_new(&t, g_addr, g_ca, g_ca_len, 60000));
    DUO_CHECK_OK(duo_device_set_transport(c, duo_grpc_transport_call, duo_grpc_transport_free_resp, t));
    DUO_CHECK_OK(duo_device_state_import(c, g_blob, g_blob_len));
    DUO_CHECK(!duo_device_pin_prepared(c));
    DUO_EXPECT_ERR(duo_device_sign(c, sig, dg, NULL, 0), DUO_E_MISUSE);
    duo_device_ctx_free(c);
    duo_grpc_transport_free(t);
    /* freeing the context wipes it (nothing to observe but the sanitizers) */
}

static int setup(void) {
    char out[2048], tok[256], code[DUO_DEVICE_REVOCATION_CODE_MAX + 1], path[512];
    snprintf(g_parent, sizeof g_parent, "/tmp/duo-pinprep-XXXXXX");
    if (!mkdtemp(g_parent)) return -1;
    snprintf(g_dir, sizeof g_dir, "%s/data", g_parent);
    if (duo_it_run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir) != 0) {
        fprintf(stderr, "init failed: %s\n", out);
        return -1;
    }
    snprintf(path, sizeof path, "%s/ca.pem", g_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    g_ca = calloc(1, 1 << 16);
    g_ca_len = fread(g_ca, 1, (1 << 16) - 1, f);
    fclose(f);
    if (duo_it_daemon_start(&g_d, g_bin, g_dir, 0, "--paillier-bits 2048 --prime-pool 1") != 0) return -1;
    snprintf(g_addr, sizeof g_addr, "127.0.0.1:%d", g_d.port);
    if (duo_it_run_cmd(tok, sizeof tok, "'%s' token issue --data '%s' --citizen PP-001 --ttl 3600 2>/dev/null", g_bin,
                       g_dir) != 0 ||
        tok[0] == '\0')
        return -1;
    if (duo_device_ctx_new(&g_ctx) != DUO_OK ||
        duo_grpc_transport_new(&g_t, g_addr, g_ca, g_ca_len, 120000) != DUO_OK ||
        duo_device_set_transport(g_ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, g_t) != DUO_OK)
        return -1;
    int r =
        duo_device_enroll(g_ctx, g_addr, (const uint8_t *)tok, strlen(tok), (const uint8_t *)PIN, strlen(PIN), 2048);
    if (r == DUO_OK && (duo_device_pubkey(g_ctx, g_pub) != DUO_OK || store() != 0)) r = DUO_E_INTERNAL;
    /* before the confirmation: no prepared PIN either */
    if (r == DUO_OK && duo_device_pin_prepare(g_ctx, (const uint8_t *)PIN, strlen(PIN)) != DUO_E_MISUSE)
        r = DUO_E_INTERNAL;
    if (r == DUO_OK) r = duo_device_enroll_confirm(g_ctx, code, sizeof code);
    if (r == DUO_OK && store() != 0) r = DUO_E_INTERNAL;
    if (r != DUO_OK) {
        fprintf(stderr, "enrolment failed: %s (%s)\n", duo_err_name(r), duo_device_errmsg(g_ctx));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    int rc;
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    if (setup() != 0) {
        fprintf(stderr, "setup failed\n");
        duo_it_daemon_kill(&g_d);
        return 1;
    }
    DUO_RUN(test_offline_args);
    DUO_RUN(test_prepared_sign_one_shot);
    DUO_RUN(test_typed_pin_wipes_prepared);
    DUO_RUN(test_wrong_prepared_pin);
    DUO_RUN(test_change_pin_wipes);
    DUO_RUN(test_not_in_blob);
    duo_device_ctx_free(g_ctx);
    duo_grpc_transport_free(g_t);
    duo_device_blob_free(g_blob, g_blob_len);
    duo_it_daemon_stop(&g_d);
    duo_it_run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    free(g_ca);
    rc = duo_test_finish();
    return rc;
}
