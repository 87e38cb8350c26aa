/* duosign-cloud: drawing, parsing and redeeming presentation codes
 * (present.h). */
#include "present.h"

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "daemon.h"
#include "duosign/mem.h"
#include "duosign/rng.h"
#include "wire.h"

/* 12 uniform digits: bytes >= 250 are drawn again (250 = 25 * 10). */
static int random_digits(char out[12]) {
    uint8_t b[32];
    int n = 0, r;
    while (n < 12) {
        if ((r = duo_rng_bytes(NULL, b, sizeof b)) != DUO_OK) return r;
        for (size_t i = 0; i < sizeof b && n < 12; i++)
            if (b[i] < 250) out[n++] = (char)('0' + b[i] % 10);
    }
    duo_memzero(b, sizeof b);
    return DUO_OK;
}

static void hash_form(uint8_t out[32], const char *s) { SHA256((const unsigned char *)s, strlen(s), out); }

int duo__present_draw(duo_present_code *out) {
    int r;
    memset(out, 0, sizeof *out);
    if ((r = duo__random_code(out->text, sizeof out->text, DUO_CODE_RAW_BYTES, 0)) != DUO_OK) return r;
    for (char *c = out->text; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    if ((r = random_digits(out->barcode)) != DUO_OK) return r;
    out->barcode[12] = duo_wire_ean13_check(out->barcode);
    out->barcode[13] = '\0';
    hash_form(out->text_hash, out->text);
    hash_form(out->barcode_hash, out->barcode);
    return DUO_OK;
}

int duo__present_parse(uint8_t hash[32], int *by_barcode, const char *in) {
    char norm[DUO_CODE_TEXT_LEN + 1];
    size_t n = 0, digits = 0;
    if (in == NULL || strnlen(in, 128) >= 128) return DUO_E_CODE_UNKNOWN;
    for (const char *c = in; *c; c++) {
        char ch = *c;
        if (ch == ' ' || ch == '-') continue;
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '2' && ch <= '7') || (ch >= '0' && ch <= '9')))
            return DUO_E_CODE_UNKNOWN;
        if (n == DUO_CODE_TEXT_LEN) return DUO_E_CODE_UNKNOWN;
        digits += ch >= '0' && ch <= '9';
        norm[n++] = ch;
    }
    norm[n] = '\0';
    if (n == DUO_BARCODE_DIGITS && digits == n) {
        if (duo_wire_ean13_check(norm) != norm[12]) return DUO_E_CODE_UNKNOWN; /* a misread scan */
        *by_barcode = 1;
    } else if (n == DUO_CODE_TEXT_LEN && strspn(norm, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == n) {
        *by_barcode = 0;
    } else {
        return DUO_E_CODE_UNKNOWN;
    }
    hash_form(hash, norm);
    return DUO_OK;
}

static void audit_refusal(duo_keystore *ks, const char *rp, const char *doc_type, const duo_code_row *row, int r) {
    char detail[DUO_AUDIT_DETAIL_MAX + 1];
    snprintf(detail, sizeof detail, "relying party %s was refused a presentation code for %s: %s", rp, doc_type,
             duo_err_name(r));
    duo_audit_event ev = {.kind = "code.redeem.refused",
                          .key_id = row->citizen_id[0] ? row->key_id : NULL,
                          .citizen_id = row->citizen_id[0] ? row->citizen_id : NULL,
                          .detail = detail};
    if (duo_keystore_audit_append(ks, NULL, &ev) != DUO_OK) { /* the refusal is what the caller gets */
    }
}

static const char *refusal_text(int r) {
    switch (r) {
        case DUO_E_CODE_UNKNOWN:
            return "no such presentation code (mistyped, never issued, or purged)";
        case DUO_E_CODE_EXPIRED:
            return "the presentation code expired (codes live 180 s); ask the citizen for a new one";
        case DUO_E_CODE_USED:
            return "the presentation code was already redeemed (single use)";
        case DUO_E_CODE_DOC_MISMATCH:
            return "the presentation code is for another document type";
        case DUO_E_KEY_NOT_ACTIVE:
            return "the citizen's key is no longer active (revoked, suspended or locked)";
        case DUO_E_DOC_NOT_FOUND:
            return "the document was removed from the registry";
        default:
            return duo_strerror(r);
    }
}

int duo__present_redeem(duo_keystore *ks, duo_redeem_limit *lim, const char *rp, const char *code, const char *doc_type,
                        duo_doc_row *doc, duo_code_row *row, char *why, size_t why_cap) {
    uint8_t hash[32];
    int by_barcode = 0, r;
    memset(row, 0, sizeof *row);
    if (why != NULL && why_cap > 0) why[0] = '\0';
    if (!duo_doc_name_ok(doc_type, DUO_DOC_TYPE_MAX)) {
        if (why != NULL) snprintf(why, why_cap, "doc_type must be 1..%d of [a-z0-9_]", DUO_DOC_TYPE_MAX);
        return DUO_E_BAD_FIELD;
    }
    if ((r = duo__redeem_limit_take(lim, rp)) != DUO_OK) {
        if (why != NULL)
            snprintf(why, why_cap, "relying party %s redeems too fast or guessed too often; slow down", rp);
        return r;
    }
    r = duo__present_parse(hash, &by_barcode, code);
    if (r == DUO_OK) r = duo_keystore_code_redeem(ks, doc, row, hash, by_barcode, doc_type, rp);
    if (r == DUO_E_CODE_UNKNOWN) duo__redeem_limit_miss(lim, rp);
    if (r != DUO_OK) {
        audit_refusal(ks, rp, doc_type, row, r);
        if (why != NULL) snprintf(why, why_cap, "%s", refusal_text(r));
    }
    return r;
}
