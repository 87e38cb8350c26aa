/* The PostgreSQL backend's walk over one sealed column (kek status, kek
 * rotate; sealed_columns.h), as sq_sealed_walk does it for SQLite. Rows are
 * named by ctid, stable inside the transaction that locked them FOR UPDATE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keystore_pg.h"
#include "sealed_columns.h"

/* The table's SQL expressions are written for SQLite; the one construct
 * PostgreSQL spells differently is the BLOB type (bytea). */
static void pg_expr(char *out, size_t cap, const char *expr) {
    const char *blob = strstr(expr, " AS BLOB)");
    if (blob == NULL)
        snprintf(out, cap, "%s", expr);
    else
        snprintf(out, cap, "%.*s AS bytea)%s", (int)(blob - expr), expr, blob + strlen(" AS BLOB)"));
}

static int walk_row(const PGresult *res, int i, duo_sealed_value *v) {
    int64_t ver = 0;
    int r;
    memset(v, 0, sizeof *v);
    if ((r = duo__pg_col_i64(res, i, 2, &ver)) != DUO_OK ||
        (r = duo__pg_col_blob(res, i, 1, v->aad_id, 0, sizeof v->aad_id, &v->aad_id_len)) != DUO_OK ||
        (r = duo__pg_col_blob(res, i, 3, v->in.data, 0, sizeof v->in.data, &v->in.len)) != DUO_OK)
        return r;
    v->aad_version = (uint64_t)ver;
    return v->aad_id_len > 0 && v->in.len > 0 ? DUO_OK : DUO_E_STATE_CORRUPT;
}

/* fn reseals each value of a write walk; each is written back by ctid. */
static int write_back(void *impl, const PGresult *res, const duo_sealed_column *col, duo_sealed_fn fn, void *data,
                      size_t *n) {
    duo_sealed_value *v = malloc(sizeof *v);
    char sql[256], ctid[64];
    int r = v == NULL ? DUO_E_NOMEM : DUO_OK;
    snprintf(sql, sizeof sql, "UPDATE %s SET %s = $1 WHERE ctid = $2::tid", col->table, col->column);
    for (int i = 0; i < PQntuples(res) && r == DUO_OK; i++) {
        duo_pg_params q = {0};
        int64_t changed;
        PGresult *up;
        if ((r = walk_row(res, i, v)) != DUO_OK || (r = duo__pg_col_text(res, i, 0, ctid, sizeof ctid)) != DUO_OK ||
            (r = fn(data, col, v)) != DUO_OK)
            break;
        duo__pg_blob(&q, v->out.data, v->out.len);
        duo__pg_text(&q, ctid);
        if ((r = duo__pg_exec_dynamic(impl, &up, sql, &q)) != DUO_OK) break;
        changed = strtoll(PQcmdTuples(up), NULL, 10);
        PQclear(up);
        if (changed != 1) r = DUO_E_STORE;
        (*n)++;
    }
    free(v); /* sealed values only */
    return r;
}

int duo__pg_sealed_walk(void *impl, const duo_sealed_column *col, const uint8_t *skip, size_t skip_len, size_t max,
                        int write, duo_sealed_fn fn, void *data, size_t *n) {
    char sql[768], aad_id[160];
    duo_pg_params q = {0};
    PGresult *res = NULL;
    int r, len;
    *n = 0;
    if (col == NULL || col->column == NULL || fn == NULL || (write && max == 0)) return DUO_E_INVALID_ARG;
    pg_expr(aad_id, sizeof aad_id, col->aad_id);
    duo__pg_i64(&q, (int64_t)skip_len);
    duo__pg_blob(&q, skip, skip_len);
    duo__pg_i64(&q, write ? (int64_t)max : INT64_MAX);
    len = snprintf(sql, sizeof sql,
                   "SELECT ctid::text, %s, (%s)::bigint, %s FROM %s WHERE %s IS NOT NULL"
                   " AND ($1 = 0 OR substring(%s from 1 for $1::int) IS DISTINCT FROM $2) LIMIT $3%s",
                   aad_id, col->aad_version, col->column, col->table, col->column, col->column,
                   write ? " FOR UPDATE" : "");
    if (len < 0 || (size_t)len >= sizeof sql) return DUO_E_INVALID_ARG;
    if (write && (r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = duo__pg_exec_dynamic(impl, &res, sql, &q)) != DUO_OK) goto out;
    if (write) {
        r = write_back(impl, res, col, fn, data, n);
    } else {
        duo_sealed_value *v = malloc(sizeof *v);
        if (v == NULL) r = DUO_E_NOMEM;
        for (int i = 0; v != NULL && i < PQntuples(res) && r == DUO_OK; i++)
            if ((r = walk_row(res, i, v)) == DUO_OK && (r = fn(data, col, v)) == DUO_OK) (*n)++;
        free(v);
    }
out:
    PQclear(res);
    if (write) r = duo__pg_tx_end(impl, r);
    if (r != DUO_OK) *n = 0;
    return r;
}
