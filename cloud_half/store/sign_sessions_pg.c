/* The PostgreSQL backend's signing sessions (schema v6, keystore.h
 * "sign_sess_put"): round 1's sealed state, so that round 2 may run on any
 * node. A session is taken by one UPDATE whose WHERE demands the live state:
 * of two nodes racing on one sid, PostgreSQL lets exactly one row update
 * through (the loser re-reads the row after the winner commits and no longer
 * matches), so k1 is decrypted by one round 2 at most, whatever the nodes do
 * afterwards. */
#include <stdlib.h>
#include <string.h>

#include "duosign/mem.h"
#include "keystore_pg.h"

enum { SESS_LIVE = 0, SESS_TAKEN = 1, SESS_USED = 2, SESS_SUPERSEDED = 3 };

/* Holds the key row for the rest of the transaction: SignStarts of one key on
 * several nodes queue here (key row first, as every write of the key). */
static int lock_key(void *impl, const uint8_t *key_id) {
    PGresult *res;
    duo_pg_params q = {0};
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    int r = duo__pg_exec(impl, &res, "SELECT 1 FROM keys WHERE key_id = $1 FOR UPDATE", &q);
    if (r != DUO_OK) return r;
    r = PQntuples(res) == 1 ? DUO_OK : DUO_E_NOT_FOUND;
    PQclear(res);
    return r;
}

/* DUO_E_SESSION_BUSY while a round 2 of the key may be running somewhere. */
static int check_not_taken(void *impl, const uint8_t *key_id, int64_t now) {
    PGresult *res;
    duo_pg_params q = {0};
    duo__pg_blob(&q, key_id, DUO_KEY_ID_BYTES);
    duo__pg_i64(&q, now);
    duo__pg_i64(&q, now - DUO_SIGN_TAKE_HOLD_S);
    int r = duo__pg_exec(impl, &res,
                         "SELECT 1 FROM sign_sessions WHERE key_id = $1 AND state = 1"
                         " AND expires_at > $2 AND taken_at > $3 LIMIT 1",
                         &q);
    if (r != DUO_OK) return r;
    r = PQntuples(res) == 0 ? DUO_OK : DUO_E_SESSION_BUSY;
    PQclear(res);
    return r;
}

int duo__pg_sign_sess_put(void *impl, const uint8_t *key_id, const uint8_t *sid, const uint8_t *sealed,
                          size_t sealed_len, int64_t expires_at, int64_t now) {
    duo_pg_params sup = {0}, ins = {0};
    PGresult *res;
    int r;
    if ((r = duo__pg_tx_begin(impl)) != DUO_OK) return r;
    if ((r = lock_key(impl, key_id)) != DUO_OK || (r = check_not_taken(impl, key_id, now)) != DUO_OK) goto out;
    /* The key's older live sessions end here (their device never sent round
     * 2, or gave up): one live session per key on all nodes. */
    duo__pg_blob(&sup, key_id, DUO_KEY_ID_BYTES);
    if ((r = duo__pg_exec(impl, &res,
                          "UPDATE sign_sessions SET state = 3, sealed = NULL WHERE key_id = $1 AND state = 0", &sup)) !=
        DUO_OK)
        goto out;
    PQclear(res);
    duo__pg_blob(&ins, sid, 32);
    duo__pg_blob(&ins, key_id, DUO_KEY_ID_BYTES);
    duo__pg_i64(&ins, now);
    duo__pg_i64(&ins, expires_at);
    duo__pg_blob(&ins, sealed, sealed_len);
    if ((r = duo__pg_exec(impl, &res,
                          "INSERT INTO sign_sessions(sid, key_id, state, created_at, expires_at, sealed)"
                          " VALUES($1, $2, 0, $3, $4, $5)",
                          &ins)) != DUO_OK)
        goto out;
    PQclear(res);
out:
    return duo__pg_tx_end(impl, r);
}

/* Why a sid could not be taken: the row's state, or no row. */
static int take_refusal(void *impl, const uint8_t *sid, int64_t now) {
    PGresult *res;
    duo_pg_params q = {0};
    int64_t state = 0, expires = 0;
    duo__pg_blob(&q, sid, 32);
    int r = duo__pg_exec(impl, &res, "SELECT state, expires_at FROM sign_sessions WHERE sid = $1", &q);
    if (r != DUO_OK) return r;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return DUO_E_NOT_FOUND;
    }
    if ((r = duo__pg_col_i64(res, 0, 0, &state)) == DUO_OK) r = duo__pg_col_i64(res, 0, 1, &expires);
    PQclear(res);
    if (r != DUO_OK) return r;
    if (state == SESS_SUPERSEDED) return DUO_E_SESSION_SUPERSEDED;
    if (state == SESS_TAKEN || state == SESS_USED) return DUO_E_PROTO_STATE;
    if (state == SESS_LIVE && expires <= now) return DUO_E_SESSION_EXPIRED;
    return DUO_E_STATE_CORRUPT; /* live and unexpired, yet not taken: the CHECK forbids anything else */
}

int duo__pg_sign_sess_take(void *impl, uint8_t *key_id, uint8_t *sealed, size_t cap, size_t *sealed_len,
                           const uint8_t *sid, int64_t now) {
    PGresult *res;
    duo_pg_params q = {0};
    int r;
    *sealed_len = 0;
    duo__pg_blob(&q, sid, 32);
    duo__pg_i64(&q, now);
    /* RETURNING gives the sealed state in the same statement; the taken row
     * keeps it only until sign_sess_end (or the purge), and can never be
     * taken again. */
    if ((r = duo__pg_exec(impl, &res,
                          "UPDATE sign_sessions SET state = 1, taken_at = $2"
                          " WHERE sid = $1 AND state = 0 AND expires_at > $2 RETURNING key_id, sealed",
                          &q)) != DUO_OK)
        return r;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return take_refusal(impl, sid, now);
    }
    r = duo__pg_col_blob(res, 0, 0, key_id, DUO_KEY_ID_BYTES, DUO_KEY_ID_BYTES, NULL);
    if (r == DUO_OK) r = duo__pg_col_blob(res, 0, 1, sealed, 0, cap, sealed_len);
    if (r == DUO_OK && *sealed_len == 0) r = DUO_E_STATE_CORRUPT;
    PQclear(res);
    if (r != DUO_OK) *sealed_len = 0;
    return r;
}

int duo__pg_sign_sess_end(void *impl, const uint8_t *sid) {
    PGresult *res;
    duo_pg_params q = {0};
    duo__pg_blob(&q, sid, 32);
    int r =
        duo__pg_exec(impl, &res, "UPDATE sign_sessions SET state = 2, sealed = NULL WHERE sid = $1 AND state = 1", &q);
    if (r == DUO_OK) PQclear(res);
    return r;
}

int duo__pg_sign_sess_purge(void *impl, size_t *n, int64_t now) {
    PGresult *res;
    duo_pg_params q = {0};
    *n = 0;
    duo__pg_i64(&q, now - DUO_SIGN_SESS_KEEP_S);
    int r = duo__pg_exec(impl, &res, "DELETE FROM sign_sessions WHERE expires_at < $1", &q);
    if (r != DUO_OK) return r;
    *n = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return DUO_OK;
}
