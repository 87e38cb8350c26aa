/* The inner channel with several nodes on one PostgreSQL (issues 12 and
 * 20): the device library over gRPC + TLS, two real duosign-cloud nodes on
 * one real PostgreSQL (run through tests/integration/pg/pg_env.sh), every
 * SignStart sent to node A and every SignFinish to node B. The channel of a
 * signature lives in the node that opened it, the signing session in the
 * store: B does not know A's channel and refuses the sealed round 2 before
 * anything runs (DUO_E_CHANNEL_UNKNOWN); the device sends it again in a
 * channel of its own, B opens it, takes the session from the store and the
 * signature verifies with OpenSSL. Checked: every signature verifies, B
 * refused exactly one record per signature and then answered it, nothing
 * was counted against the PIN, and the key's audit has one signature each.
 *
 * usage: test_pg_channel_nodes PATH/TO/duosign-cloud   (under pg_env.sh) */
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#include "duo_it.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"
#include "duosign/errors.h"
#include "test_harness.h"

#define PIN "48291"
#define SIGNATURES 4
#define DAEMON_ARGS "--paillier-bits 2048 --prime-pool 1"

static const char *g_bin;
static char g_parent[256], g_dir_a[300], g_dir_b[300], g_addr_a[64], g_addr_b[64];
static char *g_ca;
static size_t g_ca_len;
static duo_it_daemon g_a, g_b;
static duo_grpc_transport *g_ta, *g_tb;
static int g_b_unknown, g_b_ok; /* SignFinish answers from node B */

/* The balancer: round 2 of a signature always reaches the other node. */
static int route(void *user, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len,
                 char *errmsg, size_t cap) {
    (void)user;
    int to_b = strstr(method, "/SignFinish") != NULL;
    int r = duo_grpc_transport_call(to_b ? g_tb : g_ta, method, req, req_len, resp, resp_len, errmsg, cap);
    if (to_b) {
        g_b_unknown += r == DUO_E_CHANNEL_UNKNOWN;
        g_b_ok += r == DUO_OK;
    }
    return r;
}

static int save(duo_device_ctx *c) {
    uint8_t *b = NULL;
    size_t n = 0;
    int r = duo_device_state_export(c, &b, &n);
    if (r == DUO_OK) r = duo_device_state_persisted(c);
    duo_device_blob_free(b, n);
    return r;
}

static int enrol(duo_device_ctx *c) {
    char tok[256], code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    if (duo_it_run_cmd(tok, sizeof tok, "'%s' token issue --data '%s' --citizen PG-CH-1 --ttl 3600 2>/dev/null", g_bin,
                       g_dir_a) != 0)
        return DUO_E_IO;
    tok[strcspn(tok, "\r\n")] = '\0';
    int r = duo_device_enroll(c, g_addr_a, (const uint8_t *)tok, strlen(tok), (const uint8_t *)PIN, strlen(PIN), 2048);
    if (r == DUO_OK && (r = save(c)) == DUO_OK) r = duo_device_enroll_confirm(c, code, sizeof code);
    if (r == DUO_OK) r = save(c);
    if (r != DUO_OK) fprintf(stderr, "# enrolment: %s (%s)\n", duo_err_name(r), duo_device_errmsg(c));
    return r;
}

static void test_round_two_on_the_other_node(void) {
    duo_device_ctx *c = NULL;
    uint8_t dg[32], sig[64], pub[33], id[DUO_DEVICE_KEY_ID_BYTES];
    char hex[2 * DUO_DEVICE_KEY_ID_BYTES + 1], out[8192];
    DUO_REQUIRE(duo_device_ctx_new(&c) == DUO_OK);
    DUO_REQUIRE(duo_device_set_transport(c, route, duo_grpc_transport_free_resp, NULL) == DUO_OK);
    DUO_REQUIRE(enrol(c) == DUO_OK);
    DUO_REQUIRE(duo_device_pubkey(c, pub) == DUO_OK);
    for (int i = 0; i < SIGNATURES; i++) {
        char text[64];
        snprintf(text, sizeof text, "document %d", i);
        SHA256((const uint8_t *)text, strlen(text), dg);
        int r = duo_device_sign(c, sig, dg, (const uint8_t *)PIN, strlen(PIN));
        if (r != DUO_OK) fprintf(stderr, "# sign %d: %s (%s)\n", i, duo_err_name(r), duo_device_errmsg(c));
        DUO_CHECK_OK(r);
        DUO_CHECK_OK(save(c));
        DUO_CHECK(r == DUO_OK && duo_it_openssl_verify(pub, dg, sig));
    }
    fprintf(stderr, "# node B: %d round 2s refused as an unknown channel, %d answered\n", g_b_unknown, g_b_ok);
    DUO_CHECK(g_b_unknown == SIGNATURES); /* each round 2 really reached the node without its channel */
    DUO_CHECK(g_b_ok == SIGNATURES);
    DUO_REQUIRE(duo_device_key_id(c, id) == DUO_OK);
    for (size_t i = 0; i < sizeof id; i++) snprintf(hex + 2 * i, 3, "%02x", id[i]);
    DUO_CHECK(duo_it_run_cmd(out, sizeof out, "'%s' key show --data '%s' %s 2>&1", g_bin, g_dir_b, hex) == 0);
    DUO_CHECK(strstr(out, "active") != NULL);
    const char *pf = strstr(out, "pin failures:");
    DUO_CHECK(pf != NULL && atoi(pf + strlen("pin failures:")) == 0);
    DUO_CHECK(duo_it_run_cmd(out, sizeof out,
                             "'%s' audit list --data '%s' | awk -v k=%s '$5 == \"sign\" && $6 == k' | grep -c .", g_bin,
                             g_dir_a, hex) == 0);
    DUO_CHECK(atoi(out) == SIGNATURES);
    fprintf(stderr, "# audit: %d signatures of the key\n", atoi(out));
    duo_device_ctx_free(c);
}

static int setup(void) {
    char out[2048], path[600];
    const char *pg = getenv("DUO_TEST_PG_URL");
    if (pg == NULL) {
        fprintf(stderr, "run through tests/integration/pg/pg_env.sh (DUO_TEST_PG_URL)\n");
        return -1;
    }
    snprintf(g_parent, sizeof g_parent, "/tmp/duo-pg-channel-XXXXXX");
    if (!mkdtemp(g_parent)) return -1;
    snprintf(g_dir_a, sizeof g_dir_a, "%s/a", g_parent);
    snprintf(g_dir_b, sizeof g_dir_b, "%s/b", g_parent);
    /* Node B serves a copy of A's directory: the same KEK, TLS files,
     * channel keys and store URL (pg_nodes.h does the same). */
    if (duo_it_run_cmd(out, sizeof out, "'%s' init --data '%s' --store '%s' 2>&1", g_bin, g_dir_a, pg) != 0 ||
        duo_it_run_cmd(out, sizeof out, "cp -a '%s' '%s' && rm -f '%s/serve.lock'", g_dir_a, g_dir_b, g_dir_b) != 0) {
        fprintf(stderr, "init: %s\n", out);
        return -1;
    }
    snprintf(path, sizeof path, "%s/ca.pem", g_dir_a);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    g_ca = calloc(1, 1 << 16);
    g_ca_len = fread(g_ca, 1, (1 << 16) - 1, f);
    fclose(f);
    if (duo_it_daemon_start(&g_a, g_bin, g_dir_a, 0, DAEMON_ARGS) != 0 ||
        duo_it_daemon_start(&g_b, g_bin, g_dir_b, 0, DAEMON_ARGS) != 0)
        return -1;
    snprintf(g_addr_a, sizeof g_addr_a, "127.0.0.1:%d", g_a.port);
    snprintf(g_addr_b, sizeof g_addr_b, "127.0.0.1:%d", g_b.port);
    return duo_grpc_transport_new(&g_ta, g_addr_a, g_ca, g_ca_len, 120000) == DUO_OK &&
                   duo_grpc_transport_new(&g_tb, g_addr_b, g_ca, g_ca_len, 120000) == DUO_OK
               ? 0
               : -1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud   (under tests/integration/pg/pg_env.sh)\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    if (setup() != 0) {
        fprintf(stderr, "setup failed\n");
        if (g_a.pid) duo_it_daemon_kill(&g_a);
        if (g_b.pid) duo_it_daemon_kill(&g_b);
        return 1;
    }
    DUO_RUN(test_round_two_on_the_other_node);
    DUO_CHECK(duo_it_daemon_stop(&g_a) == 0);
    DUO_CHECK(duo_it_daemon_stop(&g_b) == 0);
    duo_grpc_transport_free(g_ta);
    duo_grpc_transport_free(g_tb);
    free(g_ca);
    duo_it_run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
