/* Issue 12's last two requirements, against a real duosign-cloud (without
 * --require-channel) and the device library over gRPC + TLS:
 *
 * 1. The per-key "moved" flag. A key enrolled plainly (a device from before
 *    the channel: DUOSIGN_TEST_LEGACY_PLAIN) signs plainly; its first
 *    signature through the channel moves it; from then on a genuine plain
 *    request of that key (the same state with the pinned key taken out, so
 *    the library speaks plain, MAC'd under the current secrets) is refused
 *    with DUO_E_CHANNEL_REQUIRED_FOR_KEY, a wrong PIN included, and
 *    `duosign-cloud key show` prints the same row before and after (PIN
 *    failures, row and secret versions, update time). A key enrolled
 *    through the channel is moved at birth.
 * 2. The channel key's fingerprint in the enrolment token: a token naming
 *    another key is refused before any enrolment request
 *    (DUO_E_CHANNEL_FINGERPRINT, nothing pinned, the token still good), a
 *    malformed one too (DUO_E_CHANNEL_FP_MALFORMED), a token without one
 *    (--no-fingerprint) still enrols, and after `channel-key rotate` new
 *    tokens carry the new key's fingerprint.
 *
 * Usage: test_inner_moved PATH/TO/duosign-cloud */
#define _GNU_SOURCE
#include <openssl/sha.h>
#include <stdlib.h>

#include "blob.h"
#include "duo_it.h"
#include "duosign/channel_fp.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"
#include "duosign/mem.h"
#include "test_harness.h"

#define PIN "13579"
#define WRONG_PIN "97531"
#define DAEMON_ARGS "--paillier-bits 2048 --prime-pool 1"

static const char *g_bin;
static char g_parent[256], g_dir[300], g_dir2[300], g_addr[64];
static char *g_ca;
static size_t g_ca_len;
static duo_it_daemon g_d;
static duo_grpc_transport *g_t;

static void legacy(int on) {
    if (on)
        setenv("DUOSIGN_TEST_LEGACY_PLAIN", "1", 1);
    else
        unsetenv("DUOSIGN_TEST_LEGACY_PLAIN");
}

static duo_device_ctx *new_ctx(void) {
    duo_device_ctx *c = NULL;
    if (duo_device_ctx_new(&c) != DUO_OK ||
        duo_device_set_transport(c, duo_grpc_transport_call, duo_grpc_transport_free_resp, g_t) != DUO_OK) {
        duo_device_ctx_free(c);
        return NULL;
    }
    return c;
}

/* `token issue` on dir; extra: more options. */
static int token(char *out, size_t cap, const char *dir, const char *citizen, const char *extra) {
    return duo_it_run_cmd(out, cap, "'%s' token issue --data '%s' --citizen %s --ttl 3600 %s 2>/dev/null", g_bin, dir,
                          citizen, extra ? extra : "") == 0 &&
                   out[0]
               ? 0
               : -1;
}

static int save(duo_device_ctx *c) {
    uint8_t *b = NULL;
    size_t n = 0;
    int r = duo_device_state_export(c, &b, &n);
    if (r == DUO_OK) r = duo_device_state_persisted(c);
    duo_device_blob_free(b, n);
    return r;
}

static int enrol(duo_device_ctx *c, const char *tok) {
    char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    int r = duo_device_enroll(c, g_addr, (const uint8_t *)tok, strlen(tok), (const uint8_t *)PIN, strlen(PIN), 2048);
    if (r == DUO_OK && (r = save(c)) == DUO_OK) r = duo_device_enroll_confirm(c, code, sizeof code);
    if (r == DUO_OK) r = save(c);
    if (r != DUO_OK) fprintf(stderr, "# enrolment: %s (%s)\n", duo_err_name(r), duo_device_errmsg(c));
    return r;
}

static int sign_ok(duo_device_ctx *c, const char *text) {
    uint8_t dg[32], sig[64], pub[33];
    SHA256((const uint8_t *)text, strlen(text), dg);
    int r = duo_device_sign(c, sig, dg, (const uint8_t *)PIN, strlen(PIN));
    if (r != DUO_OK) {
        fprintf(stderr, "# sign: %s (%s)\n", duo_err_name(r), duo_device_errmsg(c));
        return 0;
    }
    return save(c) == DUO_OK && duo_device_pubkey(c, pub) == DUO_OK && duo_it_openssl_verify(pub, dg, sig);
}

/* `key show` of the context's key (the whole row as the operator sees it). */
static int key_show(char *out, size_t cap, duo_device_ctx *c) {
    uint8_t id[DUO_DEVICE_KEY_ID_BYTES];
    char hex[2 * DUO_DEVICE_KEY_ID_BYTES + 1];
    if (duo_device_key_id(c, id) != DUO_OK) return -1;
    for (size_t i = 0; i < sizeof id; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    return duo_it_run_cmd(out, cap, "'%s' key show --data '%s' %s 2>&1", g_bin, g_dir, hex);
}

/* The same key state with the pinned channel key taken out: with
 * DUOSIGN_TEST_LEGACY_PLAIN the library speaks plain for it, MAC'd under the
 * current device secrets (a genuine plain request of that key). */
static duo_device_ctx *plain_copy(duo_device_ctx *c) {
    uint8_t *b = NULL, *old = NULL;
    size_t n = 0, old_len = 0;
    duo__blob_fields f;
    duo_device_ctx *p = NULL;
    if (duo_device_state_export(c, &b, &n) != DUO_OK) return NULL;
    if (duo__blob_decode(&f, b, n) == DUO_OK) {
        f.has_chkey = 0;
        if (duo__blob_encode(&old, &old_len, &f) == DUO_OK && (p = new_ctx()) != NULL &&
            duo_device_state_import(p, old, old_len) != DUO_OK) {
            duo_device_ctx_free(p);
            p = NULL;
        }
    }
    duo_memzero(&f, sizeof f);
    duo_device_blob_free(b, n);
    duo_secure_free(old);
    return p;
}

static int count_keys(void) {
    char out[8192];
    if (duo_it_run_cmd(out, sizeof out, "'%s' key list --data '%s' 2>/dev/null | grep -c .", g_bin, g_dir) < 0)
        return -1;
    return atoi(out);
}

/* ------------------------------------------------------------ 1. moved */

static void test_plain_key_moves(void) {
    char tok[128], before[4096], after[4096];
    duo_device_ctx *a = new_ctx(), *p = NULL;
    DUO_REQUIRE(a != NULL && token(tok, sizeof tok, g_dir, "MV-001", NULL) == 0);
    /* A device from before the channel: enrols and signs plainly. */
    legacy(1);
    DUO_REQUIRE(enrol(a, tok) == DUO_OK);
    DUO_CHECK(sign_ok(a, "plain 1"));
    DUO_CHECK(sign_ok(a, "plain 2"));
    legacy(0);
    DUO_REQUIRE(key_show(before, sizeof before, a) == 0);
    DUO_CHECK_MSG(strstr(before, "inner channel:   not moved") != NULL, "%.600s", before);
    /* The app updated: its first call pins the channel key, the signature
     * goes through the channel and moves the key. */
    DUO_CHECK(sign_ok(a, "sealed 1"));
    DUO_REQUIRE(key_show(before, sizeof before, a) == 0);
    DUO_CHECK_MSG(strstr(before, "inner channel:   moved") != NULL, "%.600s", before);
    /* A genuine plain request of the moved key: refused before anything is
     * counted or stored, whatever the PIN, on every keyed RPC. */
    DUO_REQUIRE((p = plain_copy(a)) != NULL);
    legacy(1);
    uint8_t dg[32] = {1}, sig[64];
    duo_device_status_info st;
    DUO_EXPECT_ERR(duo_device_sign(p, sig, dg, (const uint8_t *)PIN, strlen(PIN)), DUO_E_CHANNEL_REQUIRED_FOR_KEY);
    DUO_CHECK(strstr(duo_device_errmsg(p), "moved to the inner channel") != NULL);
    DUO_EXPECT_ERR(duo_device_sign(p, sig, dg, (const uint8_t *)WRONG_PIN, strlen(WRONG_PIN)),
                   DUO_E_CHANNEL_REQUIRED_FOR_KEY);
    DUO_EXPECT_ERR(duo_device_status(p, &st), DUO_E_CHANNEL_REQUIRED_FOR_KEY);
    DUO_EXPECT_ERR(duo_device_refresh(p), DUO_E_CHANNEL_REQUIRED_FOR_KEY);
    legacy(0);
    DUO_REQUIRE(key_show(after, sizeof after, a) == 0);
    DUO_CHECK_MSG(strcmp(before, after) == 0, "the row changed:\n%.350s\n---\n%.350s", before, after);
    DUO_CHECK(strstr(after, "pin failures:    0") != NULL);
    DUO_CHECK(duo_err_exit_code(DUO_E_CHANNEL_REQUIRED_FOR_KEY) == 22);
    /* The moved device itself is unaffected. */
    DUO_CHECK(sign_ok(a, "sealed 2"));
    DUO_CHECK_OK(duo_device_status(a, &st));
    DUO_CHECK(st.pin_attempts_left > 0 && st.state == DUO_DEVICE_KEY_ACTIVE);
    duo_device_ctx_free(p);
    duo_device_ctx_free(a);
}

static void test_channel_enrolment_moved_at_birth(void) {
    char tok[128], show[4096];
    duo_device_ctx *b = new_ctx(), *p = NULL;
    duo_device_status_info st;
    DUO_REQUIRE(b != NULL && token(tok, sizeof tok, g_dir, "MV-002", NULL) == 0);
    DUO_REQUIRE(enrol(b, tok) == DUO_OK);
    DUO_REQUIRE(key_show(show, sizeof show, b) == 0);
    DUO_CHECK_MSG(strstr(show, "inner channel:   moved") != NULL, "%.600s", show);
    DUO_REQUIRE((p = plain_copy(b)) != NULL);
    legacy(1);
    DUO_EXPECT_ERR(duo_device_status(p, &st), DUO_E_CHANNEL_REQUIRED_FOR_KEY);
    legacy(0);
    DUO_CHECK(sign_ok(b, "born moved"));
    duo_device_ctx_free(p);
    duo_device_ctx_free(b);
}

/* ------------------------------------------------------ 2. fingerprint */

/* The fingerprint part of a token ("" if none). */
static const char *fp_of(const char *tok) {
    const char *dot = strchr(tok, DUO_CH_FP_SEP);
    return dot ? dot + 1 : "";
}

static void test_token_fingerprint(void) {
    char tok[128], other[128], forged[160], bare[128];
    int keys = count_keys();
    DUO_REQUIRE(keys > 0);
    DUO_REQUIRE(token(tok, sizeof tok, g_dir, "MV-003", NULL) == 0);
    DUO_REQUIRE(token(other, sizeof other, g_dir2, "MV-003", NULL) == 0);
    DUO_CHECK(strlen(fp_of(tok)) == DUO_CH_FP_HEX && strlen(fp_of(other)) == DUO_CH_FP_HEX);
    DUO_CHECK(strcmp(fp_of(tok), fp_of(other)) != 0);
    /* This token's code with the fingerprint of another deployment's key. */
    snprintf(forged, sizeof forged, "%.*s.%s", (int)(strchr(tok, '.') - tok), tok, fp_of(other));
    duo_device_ctx *e = new_ctx();
    DUO_REQUIRE(e != NULL);
    DUO_EXPECT_ERR(
        duo_device_enroll(e, g_addr, (const uint8_t *)forged, strlen(forged), (const uint8_t *)PIN, strlen(PIN), 2048),
        DUO_E_CHANNEL_FINGERPRINT);
    DUO_CHECK(strstr(duo_device_errmsg(e), "not the one the enrolment token names") != NULL);
    DUO_CHECK(duo_err_exit_code(DUO_E_CHANNEL_FINGERPRINT) == 22);
    DUO_CHECK(!duo_device_has_key(e));
    DUO_CHECK(count_keys() == keys); /* no enrolment request reached the cloud */
    /* Malformed fingerprints: refused before anything is sent. */
    static const char *bad[] = {".", "0123", "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdeg",
                                "0123456789abcdef0123456789abcdef0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(forged, sizeof forged, "%.*s.%s", (int)(strchr(tok, '.') - tok), tok, bad[i]);
        DUO_EXPECT_ERR(duo_device_enroll(e, g_addr, (const uint8_t *)forged, strlen(forged), (const uint8_t *)PIN,
                                         strlen(PIN), 2048),
                       DUO_E_CHANNEL_FP_MALFORMED);
    }
    DUO_EXPECT_ERR(duo_device_enroll(e, g_addr, (const uint8_t *)".x", 2, (const uint8_t *)PIN, strlen(PIN), 2048),
                   DUO_E_CHANNEL_FP_MALFORMED);
    DUO_CHECK(count_keys() == keys);
    /* The genuine token was not spent: the same context enrols with it. */
    DUO_CHECK_OK(enrol(e, tok));
    DUO_CHECK(sign_ok(e, "fingerprint checked"));
    duo_device_ctx_free(e);
    /* A token without a fingerprint (from before it) still enrols. */
    DUO_REQUIRE(token(bare, sizeof bare, g_dir, "MV-004", "--no-fingerprint") == 0);
    DUO_CHECK(strchr(bare, '.') == NULL && strlen(bare) == 32);
    duo_device_ctx *n = new_ctx();
    DUO_REQUIRE(n != NULL);
    DUO_CHECK_OK(enrol(n, bare));
    DUO_CHECK(sign_ok(n, "no fingerprint"));
    duo_device_ctx_free(n);
}

/* The current key's fingerprint as `channel-key list` prints it. */
static int current_fp(char out[DUO_CH_FP_HEX + 1]) {
    char line[512];
    if (duo_it_run_cmd(line, sizeof line, "'%s' channel-key list --data '%s' | grep ' current$'", g_bin, g_dir) != 0)
        return -1;
    const char *f = strstr(line, "fingerprint ");
    if (!f || strlen(f) < 12 + DUO_CH_FP_HEX) return -1;
    memcpy(out, f + 12, DUO_CH_FP_HEX);
    out[DUO_CH_FP_HEX] = '\0';
    return 0;
}

static void test_rotation_fingerprint(void) {
    char tok1[128], tok2[128], fp1[DUO_CH_FP_HEX + 1], fp2[DUO_CH_FP_HEX + 1], out[1024];
    DUO_REQUIRE(current_fp(fp1) == 0);
    DUO_REQUIRE(token(tok1, sizeof tok1, g_dir, "MV-005", NULL) == 0);
    DUO_CHECK(strcmp(fp_of(tok1), fp1) == 0);
    DUO_REQUIRE(duo_it_run_cmd(out, sizeof out, "'%s' channel-key rotate --data '%s' 2>&1", g_bin, g_dir) == 0);
    DUO_REQUIRE(current_fp(fp2) == 0);
    DUO_CHECK(strcmp(fp1, fp2) != 0);
    DUO_REQUIRE(token(tok2, sizeof tok2, g_dir, "MV-006", NULL) == 0);
    DUO_CHECK_MSG(strcmp(fp_of(tok2), fp2) == 0, "%s vs %s", fp_of(tok2), fp2);
    /* Restarted on the new key: the new token enrols; the one issued before
     * the rotation names the old key and is refused (docs/SECURITY.md 1.6.1:
     * issue it again). */
    duo_it_daemon_stop(&g_d);
    DUO_REQUIRE(duo_it_daemon_start(&g_d, g_bin, g_dir, g_d.port, DAEMON_ARGS) == 0);
    duo_device_ctx *c = new_ctx();
    DUO_REQUIRE(c != NULL);
    DUO_EXPECT_ERR(
        duo_device_enroll(c, g_addr, (const uint8_t *)tok1, strlen(tok1), (const uint8_t *)PIN, strlen(PIN), 2048),
        DUO_E_CHANNEL_FINGERPRINT);
    DUO_CHECK_OK(enrol(c, tok2));
    DUO_CHECK(sign_ok(c, "after rotation"));
    duo_device_ctx_free(c);
}

static int setup(void) {
    char out[2048], path[512];
    snprintf(g_parent, sizeof g_parent, "/tmp/duo-moved-XXXXXX");
    if (!mkdtemp(g_parent)) return -1;
    snprintf(g_dir, sizeof g_dir, "%s/data", g_parent);
    snprintf(g_dir2, sizeof g_dir2, "%s/other", g_parent);
    if (duo_it_run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir) != 0 ||
        duo_it_run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir2) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/ca.pem", g_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    g_ca = calloc(1, 1 << 16);
    g_ca_len = fread(g_ca, 1, (1 << 16) - 1, f);
    fclose(f);
    if (duo_it_daemon_start(&g_d, g_bin, g_dir, 0, DAEMON_ARGS) != 0) return -1;
    snprintf(g_addr, sizeof g_addr, "127.0.0.1:%d", g_d.port);
    return duo_grpc_transport_new(&g_t, g_addr, g_ca, g_ca_len, 120000) == DUO_OK ? 0 : -1;
}

int main(int argc, char **argv) {
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
    DUO_RUN(test_plain_key_moves);
    DUO_RUN(test_channel_enrolment_moved_at_birth);
    DUO_RUN(test_token_fingerprint);
    DUO_RUN(test_rotation_fingerprint);
    duo_it_daemon_stop(&g_d);
    duo_grpc_transport_free(g_t);
    free(g_ca);
    duo_it_run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
