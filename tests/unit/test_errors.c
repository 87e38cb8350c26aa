/* The error table: every code has a name, message, category and gRPC status;
 * numbers are unique; unknown codes are handled. */
#include <string.h>

#include "duosign/errors.h"
#include "test_harness.h"

static const int all_codes[] = {
#define X(name, num, cat, grpc, ex, msg) (num),
    DUO_ERROR_MAP(X)
#undef X
};
#define N_CODES (sizeof(all_codes) / sizeof(all_codes[0]))

static void test_codes_unique_and_described(void) {
    size_t i, j;
    for (i = 0; i < N_CODES; i++) {
        DUO_CHECK(duo_err_is_known(all_codes[i]));
        DUO_CHECK(strncmp(duo_err_name(all_codes[i]), "DUO_", 4) == 0);
        DUO_CHECK(strlen(duo_strerror(all_codes[i])) > 3);
        DUO_CHECK(all_codes[i] <= 0);
        for (j = i + 1; j < N_CODES; j++) DUO_CHECK(all_codes[i] != all_codes[j]);
        if (all_codes[i] != DUO_OK) {
            DUO_CHECK(duo_err_category(all_codes[i]) != DUO_CAT_NONE);
            DUO_CHECK(duo_err_grpc_status(all_codes[i]) > 0 && duo_err_grpc_status(all_codes[i]) <= 16);
            DUO_CHECK(duo_err_exit_code(all_codes[i]) >= 1 && duo_err_exit_code(all_codes[i]) <= 28);
            DUO_CHECK(duo_err_exit_code(all_codes[i]) != 2 && duo_err_exit_code(all_codes[i]) != 10);
        }
    }
}

static void test_specific_mappings(void) {
    DUO_CHECK(DUO_OK == 0);
    DUO_CHECK(duo_err_grpc_status(DUO_OK) == 0);
    DUO_CHECK(strcmp(duo_err_name(DUO_E_BAD_PROOF), "DUO_E_BAD_PROOF") == 0);
    DUO_CHECK(duo_err_category(DUO_E_BAD_PROOF) == DUO_CAT_CRYPTO);
    DUO_CHECK(duo_err_category(DUO_E_PROTO_STATE) == DUO_CAT_PROTO);
    DUO_CHECK(duo_err_category(DUO_E_NOMEM) == DUO_CAT_RESOURCE);
    DUO_CHECK(duo_err_grpc_status(DUO_E_UNAUTHENTICATED) == 16);
    DUO_CHECK(duo_err_grpc_status(DUO_E_UNAVAILABLE) == 14);
    DUO_CHECK(duo_err_grpc_status(DUO_E_KEY_LOCKED) == 9);
    DUO_CHECK(duo_err_grpc_status(DUO_E_WRONG_PIN) == 7);
    DUO_CHECK(duo_err_grpc_status(DUO_E_WRONG_PIN) != duo_err_grpc_status(DUO_E_PEER_CHEATED));
}

/* Issue 13 item 5: each of these sends the user somewhere else, so each
 * has its own exit status (docs/CLI.md). */
static void test_exit_codes(void) {
    static const int distinct[] = {
        DUO_E_WRONG_PIN,     DUO_E_KEY_LOCKED,    DUO_E_KEY_REVOKED,     DUO_E_CLONE_SUSPECTED, DUO_E_UNAVAILABLE,
        DUO_E_STATE_CORRUPT, DUO_E_TLS_UNTRUSTED, DUO_E_SERVER_BUSY,     DUO_E_TOKEN_INVALID,   DUO_E_TOKEN_EXPIRED,
        DUO_E_STORE,         DUO_E_INTERNAL,      DUO_E_UNAUTHENTICATED, DUO_E_CURVE_REFUSED};
    size_t i, j;
    DUO_CHECK(duo_err_exit_code(DUO_OK) == 0);
    DUO_CHECK(duo_err_exit_code(-9999) == 1);
    DUO_CHECK(duo_err_exit_code(DUO_E_UNAVAILABLE) == 8 && duo_err_exit_code(DUO_E_TIMEOUT) == 8);
    DUO_CHECK(duo_err_exit_code(DUO_E_STATE_CORRUPT) == 9);
    DUO_CHECK(duo_err_exit_code(DUO_E_BAD_CA) == 3);
    DUO_CHECK(duo_err_exit_code(DUO_E_CODE_USED) == 26 && duo_err_exit_code(DUO_E_DOC_NOT_FOUND) == 26);
    for (i = 0; i < sizeof distinct / sizeof distinct[0]; i++)
        for (j = i + 1; j < sizeof distinct / sizeof distinct[0]; j++)
            DUO_CHECK(duo_err_exit_code(distinct[i]) != duo_err_exit_code(distinct[j]));
}

static void test_unknown_codes(void) {
    DUO_CHECK(!duo_err_is_known(-9999));
    DUO_CHECK(!duo_err_is_known(1));
    DUO_CHECK(strcmp(duo_strerror(-9999), "unknown error") == 0);
    DUO_CHECK(strcmp(duo_err_name(-9999), "DUO_E_UNKNOWN") == 0);
    DUO_CHECK(duo_err_category(-9999) == DUO_CAT_INTERNAL);
    DUO_CHECK(duo_err_grpc_status(-9999) == 2);
}

int main(void) {
    DUO_RUN(test_codes_unique_and_described);
    DUO_RUN(test_specific_mappings);
    DUO_RUN(test_exit_codes);
    DUO_RUN(test_unknown_codes);
    return duo_test_finish();
}
