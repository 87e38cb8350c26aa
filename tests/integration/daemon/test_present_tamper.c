/* PresentationCode against a real daemon, each field of a valid request
 * tampered in turn (key id, device nonce, document type, MAC), a replay of
 * the valid one, an unknown document, a revoked key: each refused with its
 * specific error and nothing stored (no code row, checked in the database).
 *
 * Usage: test_present_tamper PATH/TO/duosign-cloud   (ctest passes it) */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "daemon_client.h"

static daemon_t g_d;
static client g_c;

static int code_rows(void) {
    char path[512];
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    int n = -1;
    snprintf(path, sizeof path, "%s/keys.db", g_dir);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "SELECT count(*) FROM presentation_codes", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

/* A request as the device builds it; tamper after the MAC if asked. */
typedef enum { T_NONE, T_KEY_ID, T_NONCE, T_DOC, T_MAC } tamper;

static int build(const device *dv, const char *doc, tamper t, uint8_t **b, size_t *bl) {
    duo_presentation_code_req q;
    uint8_t mi[32];
    memset(&q, 0, sizeof q);
    memcpy(q.key_id, dv->key->key_id, sizeof q.key_id);
    if (duo_rng_bytes(NULL, q.device_nonce, sizeof q.device_nonce) != DUO_OK) return -1;
    snprintf(q.doc_type, sizeof q.doc_type, "%s", doc);
    if (duo_wire_mac_input_presentation_code(mi, &q) != DUO_OK ||
        duo_mac_compute(q.mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    if (t == T_KEY_ID) q.key_id[0] ^= 1;
    if (t == T_NONCE) q.device_nonce[5] ^= 1;
    if (t == T_DOC) q.doc_type[0] = 'q';
    if (t == T_MAC) q.mac[31] ^= 1;
    return duo_wire_build_presentation_code_req(b, bl, &q) == DUO_OK ? 0 : -1;
}

static int send(const uint8_t *b, size_t bl, rpc_result *res, duo_presentation_code_resp *out) {
    uint8_t *o = NULL;
    size_t ol = 0;
    rpc(&g_c, M("PresentationCode"), b, bl, &o, &ol, res);
    int r = res->status == 0 && out != NULL ? duo_wire_parse_presentation_code_resp(out, o, ol) : 0;
    free(o);
    return r;
}

static void expect(const device *dv, const char *doc, tamper t, int want, const char *what) {
    uint8_t *b = NULL;
    size_t bl = 0;
    rpc_result res;
    int before = code_rows();
    DUO_REQUIRE(build(dv, doc, t, &b, &bl) == 0);
    send(b, bl, &res, NULL);
    DUO_CHECK_MSG(res.duo_err == want, "%s: got %s (%s), want %s", what, duo_err_name(res.duo_err), res.detail,
                  duo_err_name(want));
    DUO_CHECK_MSG(code_rows() == before, "%s: a code was stored", what);
    free(b);
}

static void test_tamper_each_field(void) {
    device dv;
    char out[1024];
    rpc_result res;
    duo_presentation_code_resp pr;
    uint8_t *b = NULL;
    size_t bl = 0;
    DUO_REQUIRE(enrol_new(&g_c, &dv, "UA-3001") == 0);
    DUO_REQUIRE(run_cmd(out, sizeof out, "'%s' citizen set --data '%s' --citizen UA-3001 --doc passport --attr name=X",
                        g_bin, g_dir) == 0);
    expect(&dv, "passport", T_KEY_ID, DUO_E_NOT_FOUND, "key id flipped");
    expect(&dv, "passport", T_NONCE, DUO_E_UNAUTHENTICATED, "nonce flipped");
    expect(&dv, "passport", T_DOC, DUO_E_UNAUTHENTICATED, "document type changed");
    expect(&dv, "passport", T_MAC, DUO_E_UNAUTHENTICATED, "MAC flipped");
    expect(&dv, "driving_licence", T_NONE, DUO_E_DOC_NOT_FOUND, "a document the citizen does not have");
    /* the valid request; then the same bytes again */
    DUO_REQUIRE(build(&dv, "passport", T_NONE, &b, &bl) == 0);
    int before = code_rows();
    DUO_CHECK(send(b, bl, &res, &pr) == 0 && res.status == 0);
    DUO_CHECK(strlen(pr.code) == 32 && strlen(pr.barcode) == 13 && pr.expires_at - pr.issued_at == 180);
    DUO_CHECK(code_rows() == before + 1);
    send(b, bl, &res, NULL);
    DUO_CHECK_MSG(res.duo_err == DUO_E_UNAUTHENTICATED, "replay: %s", duo_err_name(res.duo_err));
    DUO_CHECK(code_rows() == before + 1);
    free(b);
    /* a malformed document type never reaches the key */
    {
        duo_presentation_code_req q;
        memset(&q, 0, sizeof q);
        strcpy(q.doc_type, "passport");
        DUO_REQUIRE(duo_wire_build_presentation_code_req(&b, &bl, &q) == DUO_OK);
        /* "passport" -> "Passport" in the encoded bytes */
        for (size_t i = 0; i + 8 <= bl; i++)
            if (memcmp(b + i, "passport", 8) == 0) b[i] = 'P';
        send(b, bl, &res, NULL);
        DUO_CHECK_MSG(res.duo_err == DUO_E_BAD_FIELD, "bad doc type: %s", duo_err_name(res.duo_err));
        free(b);
    }
    /* revoked: no code */
    {
        char id[33];
        key_hex(id, &dv);
        DUO_REQUIRE(run_cmd(out, sizeof out, "'%s' key revoke --data '%s' %s --reason test 2>&1", g_bin, g_dir, id) ==
                    0);
        expect(&dv, "passport", T_NONE, DUO_E_KEY_REVOKED, "revoked key");
    }
    device_free(&dv);
}

int main(int argc, char **argv) {
    int rc = it_setup(argc, argv, "duo-present", &g_d, &g_c);
    if (rc != 0) return rc;
    DUO_RUN(test_tamper_each_field);
    return it_finish(&g_d, &g_c);
}
