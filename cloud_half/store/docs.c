/* The citizen documents' and presentation codes' part of the key store:
 * argument checks, the store's clock, then the backend's ops. See
 * docstore.h. */
#include "docstore.h"

#include <stdio.h>
#include <string.h>

#include "keystore_internal.h"

int duo_doc_name_ok(const char *s, size_t max) {
    size_t n = s == NULL ? 0 : strnlen(s, max + 1);
    if (n == 0 || n > max) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_')) return 0;
    return 1;
}

int duo_doc_value_ok(const char *v) {
    size_t n = v == NULL ? DUO_DOC_ATTR_VALUE_MAX + 1 : strnlen(v, DUO_DOC_ATTR_VALUE_MAX + 1);
    if (n > DUO_DOC_ATTR_VALUE_MAX) return 0;
    for (size_t i = 0; i < n; i++) /* control characters would break the stored lines and the logs */
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) return 0;
    return 1;
}

static int citizen_ok(const char *c) {
    size_t n = c == NULL ? 0 : strnlen(c, DUO_CITIZEN_ID_MAX + 1);
    return n > 0 && n <= DUO_CITIZEN_ID_MAX && duo__citizen_name_ok(c);
}

static int have_doc_ops(const duo_keystore *ks) { return ks->be.ops->doc_set != NULL; }

static int row_ok(const duo_doc_row *row) {
    if (!citizen_ok(row->citizen_id) || !duo_doc_name_ok(row->doc_type, DUO_DOC_TYPE_MAX) ||
        row->n_attrs > DUO_DOC_ATTRS_MAX || row->photo_len > DUO_DOC_PHOTO_MAX)
        return DUO_E_INVALID_ARG;
    for (size_t i = 0; i < row->n_attrs; i++) {
        if (!duo_doc_name_ok(row->attrs[i].name, DUO_DOC_ATTR_NAME_MAX) || !duo_doc_value_ok(row->attrs[i].value))
            return DUO_E_DOC_ATTR;
        for (size_t j = 0; j < i; j++)
            if (strcmp(row->attrs[i].name, row->attrs[j].name) == 0) return DUO_E_DOC_ATTR;
    }
    return DUO_OK;
}

int duo_keystore_doc_set(duo_keystore *ks, const duo_doc_row *row, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || row == NULL) return DUO_E_INVALID_ARG;
    if ((r = row_ok(row)) != DUO_OK) return r;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    r = ks->be.ops->doc_set(ks->be.impl, row, ev, duo__ks_now(ks));
    return duo__ks_written(ks, r);
}

int duo_keystore_doc_get(duo_keystore *ks, duo_doc_row *row, const char *citizen_id, const char *doc_type) {
    if (ks == NULL || row == NULL || !citizen_ok(citizen_id) || !duo_doc_name_ok(doc_type, DUO_DOC_TYPE_MAX))
        return DUO_E_INVALID_ARG;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    memset(row, 0, sizeof *row);
    return ks->be.ops->doc_get(ks->be.impl, row, citizen_id, doc_type);
}

int duo_keystore_doc_list(duo_keystore *ks, const char *citizen_id, duo_doc_cb cb, void *data) {
    if (ks == NULL || cb == NULL || (citizen_id != NULL && !citizen_ok(citizen_id))) return DUO_E_INVALID_ARG;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    return ks->be.ops->doc_list(ks->be.impl, citizen_id, cb, data);
}

int duo_keystore_doc_remove(duo_keystore *ks, const char *citizen_id, const char *doc_type, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || !citizen_ok(citizen_id) || !duo_doc_name_ok(doc_type, DUO_DOC_TYPE_MAX)) return DUO_E_INVALID_ARG;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    r = ks->be.ops->doc_remove(ks->be.impl, citizen_id, doc_type, ev, duo__ks_now(ks));
    return duo__ks_written(ks, r);
}

int duo_keystore_code_insert(duo_keystore *ks, duo_code_row *row, const duo_audit_event *ev) {
    int r;
    if (ks == NULL || row == NULL || !citizen_ok(row->citizen_id) || !duo_doc_name_ok(row->doc_type, DUO_DOC_TYPE_MAX))
        return DUO_E_INVALID_ARG;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    if (ev != NULL && (r = duo_audit_event_check(ev)) != DUO_OK) return r;
    row->issued_at = duo__ks_now(ks);
    row->expires_at = row->issued_at + DUO_CODE_TTL_S;
    r = ks->be.ops->code_insert(ks->be.impl, row, ev, row->issued_at);
    return duo__ks_written(ks, r);
}

int duo_keystore_code_redeem(duo_keystore *ks, duo_doc_row *doc, duo_code_row *code, const uint8_t hash[32],
                             int by_barcode, const char *doc_type, const char *rp_name) {
    int r;
    if (ks == NULL || doc == NULL || code == NULL || hash == NULL || !duo_doc_name_ok(doc_type, DUO_DOC_TYPE_MAX) ||
        rp_name == NULL || rp_name[0] == '\0' || strnlen(rp_name, DUO_RP_NAME_MAX + 1) > DUO_RP_NAME_MAX ||
        !duo__citizen_name_ok(rp_name))
        return DUO_E_INVALID_ARG;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    memset(doc, 0, sizeof *doc);
    memset(code, 0, sizeof *code);
    r = ks->be.ops->code_redeem(ks->be.impl, doc, code, hash, by_barcode != 0, doc_type, rp_name, duo__ks_now(ks));
    return duo__ks_written(ks, r);
}

int duo_keystore_code_purge(duo_keystore *ks, size_t *n, int64_t before) {
    if (ks == NULL || n == NULL) return DUO_E_INVALID_ARG;
    *n = 0;
    if (!have_doc_ops(ks)) return DUO_E_UNSUPPORTED;
    return ks->be.ops->code_purge(ks->be.impl, n, before);
}

/* Attributes as the backends store them: "name=value\n" lines. The store
 * admits no '\n' in a value and only [a-z0-9_] in a name, so the lines parse
 * back exactly. */
int duo__doc_attrs_encode(const duo_doc_row *row, char *out, size_t cap) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < row->n_attrs; i++) {
        int n = snprintf(out + used, cap - used, "%s=%s\n", row->attrs[i].name, row->attrs[i].value);
        if (n < 0 || (size_t)n >= cap - used) return DUO_E_INVALID_ARG;
        used += (size_t)n;
    }
    return DUO_OK;
}

/* Parses the stored lines back, checking each as the store checked it on
 * the way in (a row edited outside duosign is corrupt, not trusted). */
int duo__doc_attrs_decode(duo_doc_row *row, const char *t) {
    row->n_attrs = 0;
    while (*t != '\0') {
        const char *eq = strchr(t, '='), *nl = strchr(t, '\n');
        if (eq == NULL || nl == NULL || eq > nl || row->n_attrs == DUO_DOC_ATTRS_MAX) return DUO_E_STATE_CORRUPT;
        duo_doc_attr *a = &row->attrs[row->n_attrs];
        size_t nn = (size_t)(eq - t), vn = (size_t)(nl - eq - 1);
        if (nn > DUO_DOC_ATTR_NAME_MAX || vn > DUO_DOC_ATTR_VALUE_MAX) return DUO_E_STATE_CORRUPT;
        memcpy(a->name, t, nn);
        a->name[nn] = '\0';
        memcpy(a->value, eq + 1, vn);
        a->value[vn] = '\0';
        if (!duo_doc_name_ok(a->name, DUO_DOC_ATTR_NAME_MAX) || !duo_doc_value_ok(a->value)) return DUO_E_STATE_CORRUPT;
        row->n_attrs++;
        t = nl + 1;
    }
    return DUO_OK;
}

int duo__code_redeemable(const duo_code_row *code, int redeemed, const char *doc_type, int64_t now) {
    if (now >= code->expires_at) return DUO_E_CODE_EXPIRED;
    if (redeemed) return DUO_E_CODE_USED;
    if (strcmp(code->doc_type, doc_type) != 0) return DUO_E_CODE_DOC_MISMATCH;
    return DUO_OK;
}

duo_audit_event duo__code_redeem_event(char *detail, size_t cap, const duo_code_row *code, const char *rp_name) {
    snprintf(detail, cap, "presentation code for %s redeemed by relying party %s (issued at %lld)", code->doc_type,
             rp_name, (long long)code->issued_at);
    duo_audit_event ev = {
        .kind = "code.redeem", .key_id = code->key_id, .citizen_id = code->citizen_id, .detail = detail};
    return ev;
}
