/* The PostgreSQL backend's certificate tables (schema v4): issuing_ca and
 * certificates, as in certs_sqlite.c. Every write is one transaction of the
 * key store's connection (keystore_pg.h), with its audit entry inside it. */
#include <stdlib.h>
#include <string.h>

#include "keystore_pg.h"

int duo__pg_ca_insert(void *impl, const duo_ca_row *row, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    duo__pg_i64(&q, now);
    duo__pg_blob(&q, row->cert, row->cert_len);
    duo__pg_blob(&q, row->key.data, row->key.len);
    duo__pg_i64(&q, row->cert_days);
    duo__pg_text(&q, row->country);
    duo__pg_text(&q, row->crl_url);
    if ((r = duo__pg_exec(impl, &res,
                          "INSERT INTO issuing_ca(id, created_at, cert, key_sealed, cert_days, country, crl_url)"
                          " VALUES(1, $1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                          &q)) == DUO_OK) {
        if (strcmp(PQcmdTuples(res), "1") != 0) r = DUO_E_EXISTS;
        PQclear(res);
    }
    if (r == DUO_OK) r = duo__pg_audit(impl, ev, now);
    return duo__pg_tx_end(impl, r);
}

int duo__pg_ca_get(void *impl, duo_ca_row *row) {
    PGresult *res;
    int64_t crl = 0, created = 0, days = 0;
    char cc[8], url[DUO_CRL_URL_MAX + 1];
    int r;
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT cert, key_sealed, crl_number, created_at, cert_days, country, crl_url"
                          " FROM issuing_ca WHERE id = 1",
                          NULL)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return DUO_E_NO_CA;
    }
    if ((r = duo__pg_col_blob(res, 0, 0, row->cert, 0, sizeof row->cert, &row->cert_len)) == DUO_OK &&
        (r = duo__pg_col_blob(res, 0, 1, row->key.data, 0, sizeof row->key.data, &row->key.len)) == DUO_OK &&
        (r = duo__pg_col_i64(res, 0, 2, &crl)) == DUO_OK && (r = duo__pg_col_i64(res, 0, 3, &created)) == DUO_OK &&
        (r = duo__pg_col_i64(res, 0, 4, &days)) == DUO_OK && (r = duo__pg_col_text(res, 0, 5, cc, sizeof cc)) == DUO_OK)
        r = duo__pg_col_text(res, 0, 6, url, sizeof url);
    PQclear(res);
    if (r == DUO_OK && (row->cert_len == 0 || row->key.len == 0 || strlen(cc) != 2 || days <= 0 || days > 36500))
        r = DUO_E_STATE_CORRUPT;
    if (r != DUO_OK) return r;
    row->crl_number = (uint64_t)crl;
    row->created_at = created;
    row->cert_days = (uint32_t)days;
    memcpy(row->country, cc, 3);
    memcpy(row->crl_url, url, strlen(url) + 1);
    return DUO_OK;
}

int duo__pg_ca_next_crl(void *impl, uint64_t *number, const duo_audit_event *ev, int64_t now) {
    PGresult *res;
    int64_t n = 0;
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = duo__pg_exec(impl, &res,
                          "UPDATE issuing_ca SET crl_number = crl_number + 1 WHERE id = 1 RETURNING crl_number",
                          NULL)) != DUO_OK)
        goto out;
    r = PQntuples(res) == 1 ? duo__pg_col_i64(res, 0, 0, &n) : DUO_E_NO_CA;
    PQclear(res);
    *number = (uint64_t)n;
    if (r == DUO_OK) r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

int duo__pg_cert_insert(void *impl, const duo_cert_row *c, const duo_audit_event *ev, int64_t now) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = duo__pg_key_active(impl, c->key_id)) != DUO_OK) goto out;
    duo__pg_blob(&q, c->serial, c->serial_len);
    duo__pg_blob(&q, c->key_id, DUO_KEY_ID_BYTES);
    duo__pg_text(&q, c->role == DUO_CERT_ROLE_AUTH ? "auth" : "sign");
    duo__pg_text(&q, c->origin == DUO_CERT_ISSUED ? "issued" : "imported");
    duo__pg_blob(&q, c->der, c->der_len);
    duo__pg_i64(&q, c->issued_at);
    duo__pg_i64(&q, c->not_after);
    if ((r = duo__pg_exec(impl, &res,
                          "INSERT INTO certificates(serial, key_id, role, origin, der, issued_at, not_after)"
                          " VALUES($1, $2, $3, $4, $5, $6, $7)",
                          &q)) != DUO_OK)
        goto out;
    PQclear(res);
    r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

static int read_cert(const PGresult *res, int i, duo_cert_row *c) {
    char role[8], origin[12], status[12];
    int64_t v[4];
    size_t kid = 0;
    int r;
    memset(c, 0, sizeof *c);
    if ((r = duo__pg_col_blob(res, i, 0, c->serial, 0, sizeof c->serial, &c->serial_len)) != DUO_OK ||
        (r = duo__pg_col_blob(res, i, 1, c->key_id, 0, sizeof c->key_id, &kid)) != DUO_OK ||
        (r = duo__pg_col_text(res, i, 2, role, sizeof role)) != DUO_OK ||
        (r = duo__pg_col_text(res, i, 3, origin, sizeof origin)) != DUO_OK ||
        (r = duo__pg_col_blob(res, i, 4, c->der, 0, sizeof c->der, &c->der_len)) != DUO_OK ||
        (r = duo__pg_col_text(res, i, 7, status, sizeof status)) != DUO_OK)
        return r;
    for (int k = 0; k < 4; k++)
        if ((r = duo__pg_col_i64(res, i, (k < 2 ? 5 : 6) + k, &v[k])) != DUO_OK) return r;
    if (kid != DUO_KEY_ID_BYTES || c->serial_len == 0 || c->der_len == 0) return DUO_E_STATE_CORRUPT;
    c->role = strcmp(role, "auth") == 0 ? DUO_CERT_ROLE_AUTH : DUO_CERT_ROLE_SIGN;
    c->origin = strcmp(origin, "issued") == 0 ? DUO_CERT_ISSUED : DUO_CERT_IMPORTED;
    c->issued_at = v[0];
    c->not_after = v[1];
    c->revoked = strcmp(status, "revoked") == 0;
    c->revoked_at = v[2];
    c->reason = (int)v[3];
    return DUO_OK;
}

int duo__pg_cert_list(void *impl, const uint8_t *key_id, duo_cert_cb cb, void *data) {
    duo_pg_params q = {0};
    PGresult *res;
    duo_cert_row *c;
    int r;
    if ((c = malloc(sizeof *c)) == NULL) return DUO_E_NOMEM;
    duo__pg_blob(&q, key_id, key_id != NULL ? DUO_KEY_ID_BYTES : 0);
    if ((r = duo__pg_exec(impl, &res,
                          "SELECT serial, key_id, role, origin, der, issued_at, not_after, status, revoked_at, reason"
                          " FROM certificates WHERE $1::bytea IS NULL OR key_id = $1 ORDER BY issued_at, id",
                          &q)) != DUO_OK)
        goto out;
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++)
        if ((r = read_cert(res, i, c)) == DUO_OK) r = cb(data, c);
    PQclear(res);
out:
    free(c);
    return r;
}

int duo__pg_cert_revoke_key(void *impl, size_t *n, const uint8_t *key_id, int reason, const duo_audit_event *ev,
                            int64_t now) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    *n = 0;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_i64(&q, now);
    duo__pg_i64(&q, reason);
    if ((r = duo__pg_exec(impl, &res,
                          "UPDATE certificates SET status = 'revoked', revoked_at = $2, reason = $3"
                          " WHERE key_id = $1 AND status = 'good'",
                          &q)) != DUO_OK)
        goto out;
    *n = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (*n > 0) r = duo__pg_audit(impl, ev, now);
out:
    return duo__pg_tx_end(impl, r);
}

int duo__pg_key_name_get(void *impl, char *name, const uint8_t *key_id) {
    duo_pg_params q = {0};
    PGresult *res;
    int r;
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(impl, &res, "SELECT citizen_name FROM keys WHERE key_id = $1", &q)) != DUO_OK) return r;
    r = PQntuples(res) == 1 ? duo__pg_col_text(res, 0, 0, name, DUO_CITIZEN_NAME_MAX + 1) : DUO_E_NOT_FOUND;
    PQclear(res);
    return r;
}
