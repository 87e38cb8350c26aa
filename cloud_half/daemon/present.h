/* duosign-cloud: presentation codes (issue 19, DESIGN 8.5; docs/DOCUMENTS.md).
 *
 * Drawing a code (present.c): 160 random bits as 32 base32 characters
 * (RFC 4648 alphabet, upper case: QR's compact alphanumeric mode) and an
 * EAN-13 form (12 random digits and the check digit); the store keeps only
 * their SHA-256 (docstore.h).
 *
 * Redeeming one (present.c): the relying party's rate limits (redeem_limit.c),
 * the code's form, then the store's one-transaction redemption; every refusal
 * is audited with the relying party's name, like every redemption. */
#ifndef DUOSIGN_CLOUD_PRESENT_H
#define DUOSIGN_CLOUD_PRESENT_H

#include <stddef.h>
#include <stdint.h>

#include "docstore.h"

#define DUO_CODE_RAW_BYTES 20 /* 160 bits */
#define DUO_CODE_TEXT_LEN 32  /* base32 characters of DUO_CODE_RAW_BYTES */
#define DUO_BARCODE_DIGITS 13 /* EAN-13 */

typedef struct duo_present_code {
    char text[DUO_CODE_TEXT_LEN + 1];
    char barcode[DUO_BARCODE_DIGITS + 1];
    uint8_t text_hash[32], barcode_hash[32];
} duo_present_code;

/* Draws a new code from the system RNG.
 * Returns: DUO_OK; DUO_E_RNG. */
int duo__present_draw(duo_present_code *out);

/* Parses what a verifier typed or scanned: 32 base32 characters (either
 * case; spaces and '-' ignored) or 13 digits whose check digit holds.
 * Returns: DUO_OK (*hash as the store keeps it, *by_barcode); DUO_E_CODE_UNKNOWN
 *          (neither form: it cannot be a code). */
int duo__present_parse(uint8_t hash[32], int *by_barcode, const char *in);

/* Per relying party limits (redeem_limit.c): a token bucket over every
 * attempt and a slower one over attempts with an unknown code (guessing).
 * The clock is injected (milliseconds) so tests control it. Thread-safe (one
 * mutex). */
typedef struct duo_redeem_limit duo_redeem_limit;
typedef struct duo_redeem_limit_config {
    double per_s, burst;               /* every attempt */
    double misses_per_h, misses_burst; /* attempts with an unknown code */
    int64_t (*clock_ms)(void *data);   /* NULL: CLOCK_MONOTONIC */
    void *clock_data;
} duo_redeem_limit_config;
#define DUO_REDEEM_PER_S 10.0
#define DUO_REDEEM_BURST 50.0
#define DUO_REDEEM_MISSES_PER_H 60.0
#define DUO_REDEEM_MISSES_BURST 20.0

/* cfg NULL: the defaults above. Returns: DUO_OK; DUO_E_NOMEM; DUO_E_INVALID_ARG. */
int duo__redeem_limit_new(duo_redeem_limit **out, const duo_redeem_limit_config *cfg);
void duo__redeem_limit_free(duo_redeem_limit *l);
/* Takes one attempt for rp. Returns: DUO_OK; DUO_E_RATE_LIMITED (either
 * bucket empty: nothing is taken). */
int duo__redeem_limit_take(duo_redeem_limit *l, const char *rp);
/* Charges rp one miss (after DUO_E_CODE_UNKNOWN). */
void duo__redeem_limit_miss(duo_redeem_limit *l, const char *rp);

/* Redeems code for relying party rp expecting doc_type: limits, form,
 * the store's redemption (docstore.h), an audit entry for a refusal.
 * Returns: DUO_OK (*doc, *row filled); DUO_E_RATE_LIMITED; DUO_E_BAD_FIELD
 *          (doc_type not a document type); and duo_keystore_code_redeem's
 *          errors (DUO_E_CODE_UNKNOWN for a malformed code too).
 * Out:  why (may be NULL): a message for the relying party. */
int duo__present_redeem(duo_keystore *ks, duo_redeem_limit *lim, const char *rp, const char *code, const char *doc_type,
                        duo_doc_row *doc, duo_code_row *row, char *why, size_t why_cap);

#endif
