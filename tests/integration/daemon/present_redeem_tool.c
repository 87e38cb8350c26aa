/* Test tool: redeems a presentation code the way the RelyingParty service's
 * RedeemPresentation does (cloud_half/daemon/present.h: limits, form, the
 * store's one-transaction redemption, audit), on a data directory's store,
 * for the relying party named on the command line. It stands in for
 * `duosign-rp redeem` until the RP service is merged (docs/DOCUMENTS.md).
 * Usage: present_redeem_tool DATA_DIR RP_NAME CODE DOC_TYPE [N]
 * Prints the document and "issued_at N"; exits with the error table's code.
 * With N (docs/DOCUMENTS.md's guessing figure): N attempts with the limits
 * off, then "attempts/s" (every refusal is a rolled-back transaction and an
 * audit entry, as in the daemon). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
    long n = argc == 6 ? strtol(argv[5], NULL, 10) : 1;
    if ((argc != 5 && argc != 6) || doc == NULL || n < 1) {
        fprintf(stderr, "usage: present_redeem_tool DATA_DIR RP_NAME CODE DOC_TYPE [N]\n");
        return 2;
    }
    if ((r = duo_datadir_open_store(&ks, err, sizeof err, argv[1], 0, NULL, 0)) != DUO_OK) {
        fprintf(stderr, "open: %s\n", err);
        return duo_err_exit_code(r);
    }
    duo_redeem_limit_config off = {1e9, 1e9, 1e12, 1e9, NULL, NULL};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((r = duo__redeem_limit_new(&lim, argc == 6 ? &off : NULL)) == DUO_OK)
        for (long i = 0; i < n; i++)
            r = duo__present_redeem(ks, lim, argv[2], argv[3], argv[4], doc, &row, why, sizeof why);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (argc == 6) {
        double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("%ld attempts in %.2f s: %.0f attempts/s\n", n, s, (double)n / s);
    }
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
