/* duosign-cloud: signing sessions kept in a shared store (sign_shared.h).
 *
 * The state the store keeps (plaintext, sealed by the key store):
 *   engine state (DUO_P1_SIGN_STATE_BYTES: k1 and round 1's transcript)
 *   || device secret that authenticated round 1 (SECRET) || digest
 *   || citizen id (the rest, 0..DUO_CITIZEN_ID_MAX bytes). */
#include "sign_shared.h"

#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"

#define STATE_FIXED (DUO_P1_SIGN_STATE_BYTES + DUO_DEVICE_SECRET_BYTES + DUO_DIGEST_BYTES)
#define STATE_MAX (STATE_FIXED + DUO_CITIZEN_ID_MAX)

_Static_assert(STATE_MAX <= DUO_SIGN_SESS_STATE_MAX, "a signing session's state fits the store's column");

int duo__sign_shared_put(duo_rpc *c, duo_sess *x) {
    uint8_t st[STATE_MAX];
    size_t cl = strlen(x->citizen);
    int r = DUO_E_INTERNAL;
    if (cl > DUO_CITIZEN_ID_MAX) goto out;
    if ((r = duo_p1_sign_export(x->sg, st)) != DUO_OK) goto out;
    memcpy(st + DUO_P1_SIGN_STATE_BYTES, x->secret, DUO_DEVICE_SECRET_BYTES);
    memcpy(st + DUO_P1_SIGN_STATE_BYTES + DUO_DEVICE_SECRET_BYTES, x->digest, DUO_DIGEST_BYTES);
    memcpy(st + STATE_FIXED, x->citizen, cl);
    r = duo_keystore_sign_session_put(c->ks, x->key_id, duo_p1_sign_sid(x->sg), st, STATE_FIXED + cl,
                                      c->cfg->session_ttl_s);
    if (r == DUO_E_SESSION_BUSY) {
        DETAIL(c->info, "another signing request for this key is being handled; retry in a moment");
        duo__trailer_i64(c->info, "duo-retry-after", DUO_SIGN_TAKE_HOLD_S);
    }
out:
    duo_memzero(st, sizeof st);
    return r;
}

/* Splits a stored state into x (everything but the engine session). */
static int state_unpack(duo_sess *x, const uint8_t *st, size_t n) {
    if (n < STATE_FIXED || n > STATE_MAX) return DUO_E_STATE_CORRUPT;
    memcpy(x->secret, st + DUO_P1_SIGN_STATE_BYTES, DUO_DEVICE_SECRET_BYTES);
    memcpy(x->digest, st + DUO_P1_SIGN_STATE_BYTES + DUO_DEVICE_SECRET_BYTES, DUO_DIGEST_BYTES);
    memcpy(x->citizen, st + STATE_FIXED, n - STATE_FIXED);
    x->citizen[n - STATE_FIXED] = '\0';
    return memchr(x->citizen, '\0', n - STATE_FIXED) == NULL ? DUO_OK : DUO_E_STATE_CORRUPT;
}

/* The key of a taken session, built through this node's cache. */
static int load_key(duo_rpc *c, duo_sess *x, int *curve) {
    duo_key_info ki;
    duo_key_secrets *sec = duo_secure_malloc(sizeof *sec);
    int r;
    if (!sec) return DUO_E_NOMEM;
    if ((r = duo__policy_key_load(c->ks, &ki, sec, x->key_id, c->info)) != DUO_OK) goto out;
    if (ki.state != DUO_KEY_STATE_ACTIVE && ki.state != DUO_KEY_STATE_LOCKED) {
        r = duo__policy_final_err(&ki, c->info); /* the store's sign_commit would refuse it too */
        if (r == DUO_OK) r = DUO_E_KEY_NOT_ACTIVE;
        goto out;
    }
    *curve = ki.curve;
    if ((r = duo__keycache_get(c->keys, &x->kc, &ki, sec)) != DUO_OK)
        DETAIL(c->info, "the stored key failed its integrity check; contact the operator");
out:
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}

int duo__sign_shared_take(duo_rpc *c, duo_sess **out, const uint8_t sid[DUO_SID_BYTES]) {
    uint8_t st[DUO_SIGN_SESS_STATE_MAX];
    size_t n = 0;
    int curve = 0;
    duo_sess *x = calloc(1, sizeof *x);
    int r;
    *out = NULL;
    if (!x) return DUO_E_NOMEM;
    x->kind = DUO_SESS_SIGN;
    x->busy = 1;
    r = duo_keystore_sign_session_take(c->ks, x->key_id, st, sizeof st, &n, sid);
    if (r == DUO_OK) { /* taken: from here on every path ends it in the store */
        memcpy(x->sid, sid, DUO_SID_BYTES);
        x->has_sid = 1;
    }
    if (r == DUO_E_NOT_FOUND) {
        DETAIL(c->info, "no such session (unknown session id, or it expired long ago); start again");
        goto out;
    }
    if (r == DUO_E_PROTO_STATE || r == DUO_E_SESSION_SUPERSEDED || r == DUO_E_SESSION_EXPIRED) {
        duo__sessions_reason_detail(c->info, r, c->cfg->session_ttl_s);
        goto out;
    }
    if (r != DUO_OK) {
        if (r == DUO_E_STATE_CORRUPT) DETAIL(c->info, "the stored signing session failed its integrity check");
        goto out;
    }
    duo__call_key(c->info, x->key_id);
    if ((r = state_unpack(x, st, n)) != DUO_OK) {
        DETAIL(c->info, "the stored signing session failed its integrity check");
        goto out;
    }
    if ((r = load_key(c, x, &curve)) != DUO_OK) goto out;
    if ((r = duo_p1_sign_import(&x->sg, c->ec[curve], NULL, duo__keycache_key(x->kc), st)) != DUO_OK) {
        DETAIL(c->info, "the stored signing session does not belong to its key");
        goto out;
    }
    *out = x;
    x = NULL;
out:
    duo_memzero(st, sizeof st);
    if (x) { /* taken but unusable: it is spent all the same */
        if (x->has_sid)
            duo__sign_shared_end(c, x);
        else
            free(x);
    }
    return r;
}

void duo__sign_shared_end(duo_rpc *c, duo_sess *x) {
    if (!x) return;
    if (x->has_sid && duo_keystore_sign_session_end(c->ks, x->sid) != DUO_OK) {
        /* stays "taken": refused all the same, and purged with the others */
    }
    duo_p1_sign_free(x->sg); /* before the key it borrows */
    duo__keycache_put(x->kc);
    duo_memzero(x->secret, sizeof x->secret);
    free(x);
}
