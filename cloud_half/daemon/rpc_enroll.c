/* duosign-cloud: the enrolment RPCs (DESIGN 3.2): EnrollStart,
 * EnrollKeyShare, EnrollPdlChallenge, EnrollPdlOpen, EnrollConfirm. */
#include "rpc.h"

#include <stdio.h>
#include <string.h>

#include "duosign/mem.h"
#include "duosign/rng.h"

#include <openssl/sha.h>

#define REVOCATION_CODE_BYTES 16 /* 128 bits, 26 base32 chars in groups of 4 */

/* The client's address without its port ("ipv4:127.0.0.1:5000" -> "ipv4:127.0.0.1"). */
static void peer_host(char *out, size_t cap, const char *peer) {
    const char *colon = strrchr(peer, ':');
    size_t n = colon && colon != peer ? (size_t)(colon - peer) : strlen(peer);
    if (n >= cap) n = cap - 1;
    memcpy(out, peer, n);
    out[n] = '\0';
}

/* Seconds until the pool has a key again, roughly (one key and its range-proof
 * randomness on one core): the hint an empty pool answers with. */
static unsigned pool_retry_s(const duo_service_config *cfg) { return cfg->paillier_bits >= 3072 ? 10 : 3; }

/* What an enrolment is admitted on (one live session each): the token, and
 * for a key with a role the token and the role, so the auth and the sign
 * enrolment of one token do not supersede each other. */
static void enrol_admit_hash(uint8_t out[32], const uint8_t *token, size_t token_len, duo_key_role role) {
    uint8_t buf[DUO_TOKEN_MAX + 1];
    size_t n = token_len;
    memcpy(buf, token, token_len); /* token_len <= DUO_TOKEN_MAX (wire.h) */
    if (role != DUO_KEY_ROLE_UNSPECIFIED) buf[n++] = (uint8_t)role;
    SHA256(buf, n, out);
    duo_memzero(buf, sizeof buf);
}

/* Repeated starts on one token are audited at 1, 2, 4, 8, ... starts, so a
 * client repeating EnrollStart writes a logarithmic number of entries. */
static int enrol_start_audit(duo_rpc *c, const duo_sess *x, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    if (x->starts & (x->starts - 1)) return DUO_OK;
    char detail[300];
    if (x->starts == 1)
        snprintf(detail, sizeof detail, "%s", c->info->peer);
    else
        snprintf(detail, sizeof detail,
                 "start #%u on this token (each superseded the last; audited at powers of two); %s", x->starts,
                 c->info->peer);
    duo_audit_event ev = {.kind = DUO_AUDIT_ENROL_START, .key_id = key_id, .citizen_id = x->citizen, .detail = detail};
    return duo_keystore_audit_append(c->ks, NULL, &ev);
}

int duo__rpc_enroll_start(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_start_req req;
    duo_enroll_start_resp out;
    duo_p1_enroll *en = NULL;
    duo_sess *x = NULL;
    duo_pool_entry pe = {NULL, NULL};
    duo_enrol_admit ea;
    char citizen[DUO_CITIZEN_ID_MAX + 1] = "";
    int r = duo_wire_parse_enroll_start_req(&req, in, in_len);
    if (r != DUO_OK) goto done;
    if (req.paillier_bits != c->cfg->paillier_bits) {
        DETAIL(c->info, "this server uses %u-bit Paillier keys; the device asked for %u", c->cfg->paillier_bits,
               req.paillier_bits);
        r = DUO_E_UNSUPPORTED;
        goto done;
    }
    if (req.curve == DUO_CURVE_UNSPECIFIED) req.curve = DUO_CURVE_SECP256K1; /* a device from before curves */
    if (!(c->cfg->curves & (1u << req.curve))) {
        DETAIL(c->info, "this server does not enrol %s keys (its operator restricted the curves)",
               duo_curve_name(req.curve));
        r = DUO_E_CURVE_REFUSED;
        goto done;
    }
    r = duo_keystore_token_check_role(c->ks, citizen, req.token, req.token_len, (int)req.role);
    if (r == DUO_E_TOKEN_ROLE_USED) {
        DETAIL(c->info,
               "this token has already enrolled %s; it admits one auth and one sign key (or one key "
               "without a role)",
               req.role == DUO_KEY_ROLE_AUTH   ? "an auth key"
               : req.role == DUO_KEY_ROLE_SIGN ? "a sign key"
                                               : "a key of a role");
        goto done;
    } else if (r == DUO_E_TOKEN_INVALID) {
        DETAIL(c->info, "enrolment token unknown or already used; ask for a new one");
        goto done;
    } else if (r == DUO_E_TOKEN_EXPIRED) {
        DETAIL(c->info, "enrolment token expired; ask for a new one");
        goto done;
    } else if (r != DUO_OK) {
        goto done;
    }
    enrol_admit_hash(ea.token_hash, req.token, req.token_len, req.role);
    peer_host(ea.peer_host, sizeof ea.peer_host, c->info->peer);
    /* Admission before the pool: a refused start takes no key. */
    if ((r = duo__sessions_insert(c->sessions, &x, DUO_SESS_ENROL, NULL, &ea, &pe, c->info)) != DUO_OK) goto done;
    /* Keys are made only in the background pool (bounded), never on a
     * request thread: an empty pool is a retry later, and signing never
     * waits behind prime generation. A superseded session's unused key
     * (reclaimed into pe) comes first. */
    if (pe.key == NULL) pe = duo__pool_take(c->pool);
    if (pe.key == NULL) {
        DETAIL(c->info, "no Paillier key is ready yet (the server makes them in the background); retry in %u s",
               pool_retry_s(c->cfg));
        duo__trailer_i64(c->info, "duo-retry-after", pool_retry_s(c->cfg));
        r = DUO_E_SERVER_BUSY;
        goto fail_session;
    }
    duo_p1_enroll_params p = {.ec = c->ec[req.curve],
                              .rng = NULL,
                              .paillier_bits = c->cfg->paillier_bits,
                              .paillier = pe.key,
                              .range_precomp = pe.precomp};
    r = duo_p1_enroll_new(&en, &p);
    pe.key = NULL; /* the engine took them (freed them on failure) */
    pe.precomp = NULL;
    if (r != DUO_OK) goto fail_session;
    if ((r = duo_p1_enroll_start(en, &req, &out)) != DUO_OK) goto fail_session;
    memcpy(x->key_id, out.key_id, DUO_KEY_ID_BYTES);
    x->en = en;
    en = NULL;
    memcpy(x->token, req.token, req.token_len);
    x->token_len = req.token_len;
    x->role = (int)req.role;
    snprintf(x->citizen, sizeof x->citizen, "%s", citizen);
    duo__sessions_set_sid(c->sessions, x, duo_p1_enroll_sid(x->en));
    if ((r = enrol_start_audit(c, x, out.key_id)) != DUO_OK) goto fail_session;
    uint8_t *o = NULL;
    size_t ol = 0;
    r = duo_wire_build_enroll_start_resp(&o, &ol, &out);
    duo__sessions_release(c->sessions, x, r == DUO_OK ? 0 : DUO_E_SESSION_FAILED);
    r = duo__rpc_respond(resp, resp_len, r, o, ol);
    goto done;
fail_session:
    duo__sessions_release(c->sessions, x, DUO_E_SESSION_FAILED);
done:
    duo__pool_return(c->pool, &pe);
    duo_p1_enroll_free(en);
    duo_memzero(&req, sizeof req);
    return r;
}

int duo__rpc_enroll_key_share(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_key_share_req req;
    duo_enroll_key_share_resp out;
    memset(&out, 0, sizeof out);
    duo_sess *x;
    int r = duo_wire_parse_enroll_key_share_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo__sessions_take(c->sessions, &x, req.sid, DUO_SESS_ENROL, c->info)) != DUO_OK) return r;
    if (duo_call_info_expired(c->info)) {
        duo__sessions_release(c->sessions, x, 0);
        DETAIL(c->info, "deadline exceeded before key generation; retry with a longer deadline");
        return DUO_E_TIMEOUT;
    }
    r = duo_p1_enroll_key_share(x->en, &req, &out);
    uint8_t *o = NULL;
    size_t ol = 0;
    if (r == DUO_OK) r = duo_wire_build_enroll_key_share_resp(&o, &ol, &out);
    duo_wire_free_enroll_key_share_resp(&out);
    duo__sessions_release(c->sessions, x, r == DUO_OK ? 0 : DUO_E_SESSION_FAILED);
    return duo__rpc_respond(resp, resp_len, r, o, ol);
}

int duo__rpc_enroll_pdl_challenge(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_pdl_challenge_req req;
    duo_enroll_pdl_challenge_resp out;
    duo_sess *x;
    int r = duo_wire_parse_enroll_pdl_challenge_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo__sessions_take(c->sessions, &x, req.sid, DUO_SESS_ENROL, c->info)) != DUO_OK) {
        duo_wire_free_enroll_pdl_challenge_req(&req);
        return r;
    }
    r = duo_p1_enroll_pdl_challenge(x->en, &req, &out);
    duo_wire_free_enroll_pdl_challenge_req(&req);
    uint8_t *o = NULL;
    size_t ol = 0;
    if (r == DUO_OK) r = duo_wire_build_enroll_pdl_challenge_resp(&o, &ol, &out);
    duo__sessions_release(c->sessions, x, r == DUO_OK ? 0 : DUO_E_SESSION_FAILED);
    return duo__rpc_respond(resp, resp_len, r, o, ol);
}

/* After a successful round 4: stores the key as pending together with its
 * enrolment record (sid, token), so the confirmation is checked from the
 * store alone: it survives a daemon restart and can be repeated. */
static int enrol_persist(duo_rpc *c, duo_sess *x) {
    duo_p1_key *key = NULL;
    uint8_t devsec[32];
    duo_key_secrets *sec = NULL;
    duo_key_info ki;
    int r = duo_p1_enroll_take_opened_key(x->en, &key, devsec);
    if (r != DUO_OK) goto out;
    memset(&ki, 0, sizeof ki);
    memcpy(ki.key_id, key->key_id, DUO_KEY_ID_BYTES);
    snprintf(ki.citizen_id, sizeof ki.citizen_id, "%s", x->citizen);
    ki.paillier_bits = c->cfg->paillier_bits;
    ki.curve = duo_ec_curve(duo_p1_enroll_ec(x->en));
    ki.role = x->role;
    ki.moved = c->sealed; /* enrolled through the inner channel: moved at birth */
    if (!(sec = duo_secure_malloc(sizeof *sec))) {
        r = DUO_E_NOMEM;
        goto out;
    }
    memset(sec, 0, sizeof *sec);
    memcpy(sec->current, devsec, sizeof sec->current);
    if ((r = duo_p1_key_serialize(duo_p1_enroll_ec(x->en), sec->x1, ki.q, ki.q2, sec->p, sizeof sec->p, &sec->p_len,
                                  sec->q, sizeof sec->q, &sec->q_len, key)) != DUO_OK)
        goto out;
    r = duo_keystore_key_insert_enrolment(c->ks, &ki, sec, x->sid, x->token, x->token_len, NULL);
out:
    duo_p1_key_free(key);
    duo_memzero(devsec, sizeof devsec);
    if (sec) {
        duo_key_secrets_clear(sec);
        duo_secure_free(sec);
    }
    return r;
}

int duo__rpc_enroll_pdl_open(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_pdl_open_req req;
    duo_enroll_pdl_open_resp out;
    duo_sess *x;
    int r = duo_wire_parse_enroll_pdl_open_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo__sessions_take(c->sessions, &x, req.sid, DUO_SESS_ENROL, c->info)) != DUO_OK) return r;
    r = duo_p1_enroll_pdl_open(x->en, &req, &out);
    if (r == DUO_E_PDL_MISMATCH) {
        duo_audit_event ev = {.kind = DUO_AUDIT_ATTACK,
                              .key_id = x->key_id,
                              .citizen_id = x->citizen,
                              .detail = "enrolment PDL check failed: inconsistent device values"};
        if (duo_keystore_audit_append(c->ks, NULL, &ev) != DUO_OK) { /* the error below is what matters */
        }
        duo__event(DUO_EV_ATTACK, c->info, x->key_id, "enrolment aborted: inconsistent PDL values from the device");
        DETAIL(c->info, "enrolment aborted: the device's proof values are inconsistent");
    }
    if (r == DUO_OK) r = enrol_persist(c, x);
    uint8_t *o = NULL;
    size_t ol = 0;
    if (r == DUO_OK) r = duo_wire_build_enroll_pdl_open_resp(&o, &ol, &out);
    /* Done with the in-memory session either way: the confirmation is
     * checked from the store (duo__rpc_enroll_confirm). */
    duo__sessions_release(c->sessions, x, r == DUO_OK ? DUO_E_PROTO_STATE : DUO_E_SESSION_FAILED);
    return duo__rpc_respond(resp, resp_len, r, o, ol);
}

#define AUDIT_ENROL_REPEAT "enrol.confirm_repeated"

/* The confirmation, checked from the store alone (the pending row and its
 * enrolment record were written by round 4), exactly as
 * duo_p1_enroll_confirm checks it: the sid (the record is found by it), Q
 * (constant-time), and the MAC under the first device secret. So it works
 * after a daemon restart, and a repeated confirmation (reply lost) of a key
 * that is already active succeeds again, idempotently, while the key still
 * has its first secret (never rotated): the revocation code cannot be shown
 * again, so the answer carries an empty one. */
int duo__rpc_enroll_confirm(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_enroll_confirm_req req;
    duo_enroll_confirm_resp out;
    memset(&out, 0, sizeof out);
    uint8_t key_id[DUO_KEY_ID_BYTES], mi[32];
    duo_key_info ki;
    duo_key_secrets *sec = NULL;
    int r = duo_wire_parse_enroll_confirm_req(&req, in, in_len);
    if (r != DUO_OK) return r;
    if ((r = duo_wire_mac_input_enroll_confirm(mi, &req)) != DUO_OK) return r;
    r = duo_keystore_enrolment_key(c->ks, key_id, req.sid);
    if (r == DUO_E_NOT_FOUND) {
        /* Say what we know from the in-memory sessions, if anything. */
        duo_sess *x = NULL;
        duo_call_info tmp;
        memset(&tmp, 0, sizeof tmp);
        int sr = duo__sessions_take(c->sessions, &x, req.sid, DUO_SESS_ENROL, &tmp);
        if (sr == DUO_OK) {
            duo__sessions_release(c->sessions, x, 0);
            DETAIL(c->info, "this enrolment has not completed its four rounds; it cannot be confirmed yet");
            return DUO_E_PROTO_STATE;
        }
        if (sr != DUO_E_NOT_FOUND) {
            snprintf(c->info->detail, sizeof c->info->detail, "%s", tmp.detail);
            return sr;
        }
        DETAIL(c->info, "no such enrolment (unknown session id, or abandoned and purged); enrol again");
        return DUO_E_NOT_FOUND;
    }
    if (r != DUO_OK) return r;
    duo__call_key(c->info, key_id);
    if (!(sec = duo_secure_malloc(sizeof *sec))) return DUO_E_NOMEM;
    for (int attempt = 0; attempt < DUO_POLICY_RETRIES; attempt++) {
        if ((r = duo_keystore_key_get(c->ks, &ki, sec, key_id)) != DUO_OK) {
            if (r == DUO_E_NOT_FOUND)
                DETAIL(c->info, "no such enrolment (abandoned and purged); enrol again");
            else if (r == DUO_E_STATE_CORRUPT)
                DETAIL(c->info, "the stored key failed its integrity check; contact the operator");
            goto out;
        }
        if (ki.state != DUO_KEY_STATE_PENDING && ki.state != DUO_KEY_STATE_ACTIVE && ki.state != DUO_KEY_STATE_LOCKED) {
            r = duo__policy_final_err(&ki, c->info);
            goto out;
        }
        if (!duo_ct_eq(req.public_key, ki.q, DUO_POINT_BYTES)) {
            DETAIL(c->info, "enrolment confirmation rejected: bad MAC or public key; start again");
            r = DUO_E_SESSION_MISMATCH;
            goto out;
        }
        if (ki.state != DUO_KEY_STATE_PENDING && (ki.secret_version != 1 || ki.has_pending_secret)) {
            /* Not the first secret any more: the device has used the key
             * since, so it already knows the confirmation went through. */
            DETAIL(c->info, "this enrolment was confirmed and the key has been used since; nothing to confirm");
            r = DUO_E_PROTO_STATE;
            goto out;
        }
        /* While secret_version == 1 and no pending secret, current is the
         * first device secret H(sid, x1*Q2) stored by round 4. */
        if (duo_mac_check(sec->current, mi, req.mac) != DUO_OK) {
            DETAIL(c->info, "enrolment confirmation rejected: bad MAC or public key; start again");
            r = DUO_E_UNAUTHENTICATED;
            goto out;
        }
        if (ki.state != DUO_KEY_STATE_PENDING) {
            char detail[300];
            snprintf(detail, sizeof detail,
                     "repeated confirmation of an active key (reply lost?): accepted, revocation code not shown "
                     "again; %s",
                     c->info->peer);
            duo_audit_event ev = {
                .kind = AUDIT_ENROL_REPEAT, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
            if ((r = duo_keystore_audit_append(c->ks, NULL, &ev)) != DUO_OK) goto out;
            out.revocation_code[0] = '\0';
            break;
        }
        if ((r = duo__random_code(out.revocation_code, sizeof out.revocation_code, REVOCATION_CODE_BYTES, 4)) != DUO_OK)
            goto out;
        char detail[160];
        snprintf(detail, sizeof detail, "key active; paillier %u bits; %s", ki.paillier_bits, c->info->peer);
        duo_audit_event ev = {
            .kind = DUO_AUDIT_ENROL_DONE, .key_id = key_id, .citizen_id = ki.citizen_id, .detail = detail};
        r = duo_keystore_enrolment_activate(c->ks, req.sid, (const uint8_t *)out.revocation_code,
                                            strlen(out.revocation_code), &ev);
        if (r == DUO_E_PROTO_STATE) { /* activated meanwhile by a concurrent copy of this request */
            duo_memzero(&out, sizeof out);
            r = DUO_E_CONFLICT;
            continue;
        }
        if (r == DUO_E_TOKEN_INVALID)
            DETAIL(c->info, "enrolment token was used meanwhile (by another enrolment); ask for a new one");
        else if (r == DUO_E_TOKEN_EXPIRED)
            DETAIL(c->info, "enrolment token expired during enrolment; ask for a new one");
        break;
    }
    if (r != DUO_OK) goto out;
    {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_enroll_confirm_resp(&o, &ol, &out);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(&out, sizeof out);
    duo_key_secrets_clear(sec);
    duo_secure_free(sec);
    return r;
}
