/* Test tool: redeems a presentation code the way the RelyingParty service's
 * RedeemPresentation does (cloud_half/daemon/present.h: limits, form, the
 * store's one-transaction redemption, audit), on a data directory's store,
 * for the relying party named on the command line. It stands in for
 * `duosign-rp redeem` until the RP service is merged (docs/DOCUMENTS.md).
 * Usage: present_redeem_tool DATA_DIR RP_NAME CODE DOC_TYPE
 * Prints the document and "issued_at N"; exits with the error table's code. */
#include <stdio.h>
#include <stdlib.h>

#include "datadir.h"
#include "docstore.h"
#include "present.h"

int main(int argc, char **argv) {
    duo_keystore *ks = NULL;
    duo_redeem_limit *lim = NULL;
    duo_doc_row *doc = calloc(1, sizeof *doc);
    duo_code_row row;
    char err[512], why[512];
    int r;
    if (argc != 5 || doc == NULL) {
        fprintf(stderr, "usage: present_redeem_tool DATA_DIR RP_NAME CODE DOC_TYPE\n");
        return 2;
    }
    if ((r = duo_datadir_open_store(&ks, err, sizeof err, argv[1], 0, NULL, 0)) != DUO_OK) {
        fprintf(stderr, "open: %s\n", err);
        return duo_err_exit_code(r);
    }
    if ((r = duo__redeem_limit_new(&lim, NULL)) == DUO_OK)
        r = duo__present_redeem(ks, lim, argv[2], argv[3], argv[4], doc, &row, why, sizeof why);
    if (r == DUO_OK) {
        printf("citizen %s\ndoc %s\n", doc->citizen_id, doc->doc_type);
        for (size_t i = 0; i < doc->n_attrs; i++) printf("%s=%s\n", doc->attrs[i].name, doc->attrs[i].value);
        printf("photo %zu\nissued_at %lld\n", doc->photo_len, (long long)row.issued_at);
    } else {
        fprintf(stderr, "redeem refused: %s (%s)\n", why, duo_err_name(r));
    }
    duo__redeem_limit_free(lim);
    duo_keystore_free(ks);
    free(doc);
    return duo_err_exit_code(r);
}
