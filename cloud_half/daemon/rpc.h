/* duosign-cloud: what the RPC handlers share (rpc_enroll.c, rpc_sign.c,
 * rpc_key.c) and the method table.
 *
 * A handler parses its request (wire.h), applies the policy (policy.h), runs
 * the P1 engine, persists through the store connection it was given (one
 * transaction per change, with its audit entry) and builds its response. It
 * reaches the service's shared state only through the rooms in duo_rpc, each
 * with its own lock (sessions.h, keycache.h, pool.h); it holds none of those
 * locks itself. */
#ifndef DUOSIGN_CLOUD_RPC_H
#define DUOSIGN_CLOUD_RPC_H

#include "daemon.h"
#include "events.h"
#include "freezes.h"
#include "keycache.h"
#include "keystore.h"
#include "overlap.h"
#include "policy.h"
#include "present.h"
#include "pool.h"
#include "rp_room.h"
#include "rpstore.h"
#include "service.h"
#include "sessions.h"
#include "wire.h"

/* One call: the rooms (shared by all calls), the store connection this call
 * holds for its whole duration, the call's info. */
typedef struct duo_rpc {
    const duo_service_config *cfg;
    const duo_ec *const *ec; /* by duo_curve: ec[key's curve] */
    duo_sessions *sessions;
    duo_keycache *keys;
    duo_pool *pool;
    duo_freezes *freezes; /* keys whose freeze is not stored yet: refused */
    duo_overlap *overlap; /* SignFinish's store write beside its decryption */
    duo_keystore *ks;
    duo_call_info *info;
    duo_rp_room *rp; /* relying parties' requests */
    /* A long poll (GetSession, WaitRequests) gives its store connection back
     * while it waits and takes one again after (duo__rpc_ks_pause/resume). */
    void *svc;
    void (*ks_put)(void *svc, duo_keystore *ks);
    duo_keystore *(*ks_get)(void *svc);
    const duo_rp_row *caller;        /* RelyingParty service: the RP its certificate names (NULL on DuoSign) */
    duo_redeem_limit *redeem;        /* RedeemPresentation's per-RP limits (present.h) */
    const struct duo_chkeys *chkeys; /* the inner channel's static keys */
    int sealed;                      /* 1: the request came through the inner channel */
} duo_rpc;

/* A handler: DUO_OK and a malloc'ed response, or a DUO_E_* code (the
 * message in c->info). */
typedef int (*duo_rpc_fn)(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len);

/* The method table: one row per RPC of duosign.v1.DuoSign, in the order of
 * the proto's service (its index is the wire's DUO_MSG_* and the server's
 * method index; service.c checks the names against the descriptor at start).
 * A new RPC is a row here, its handler in its family's rpc_*.c, and its
 * messages in the proto and the wire layer. */
#define DUO_RPC_METHODS(X)                                                               \
    X(DUO_MSG_ENROLL_START, "EnrollStart", duo__rpc_enroll_start)                        \
    X(DUO_MSG_ENROLL_KEY_SHARE, "EnrollKeyShare", duo__rpc_enroll_key_share)             \
    X(DUO_MSG_ENROLL_PDL_CHALLENGE, "EnrollPdlChallenge", duo__rpc_enroll_pdl_challenge) \
    X(DUO_MSG_ENROLL_PDL_OPEN, "EnrollPdlOpen", duo__rpc_enroll_pdl_open)                \
    X(DUO_MSG_ENROLL_CONFIRM, "EnrollConfirm", duo__rpc_enroll_confirm)                  \
    X(DUO_MSG_SIGN_START, "SignStart", duo__rpc_sign_start)                              \
    X(DUO_MSG_SIGN_FINISH, "SignFinish", duo__rpc_sign_finish)                           \
    X(DUO_MSG_REFRESH, "Refresh", duo__rpc_refresh)                                      \
    X(DUO_MSG_REVOKE, "Revoke", duo__rpc_revoke)                                         \
    X(DUO_MSG_STATUS, "Status", duo__rpc_status)                                         \
    X(DUO_MSG_ISSUE_CERTIFICATE, "IssueCertificate", duo__rpc_issue_certificate)         \
    X(DUO_MSG_WAIT_REQUESTS, "WaitRequests", duo__rpc_wait_requests)                     \
    X(DUO_MSG_REFUSE_REQUEST, "RefuseRequest", duo__rpc_refuse_request)                  \
    X(DUO_MSG_CLAIM_LINK, "ClaimLink", duo__rpc_claim_link)                              \
    X(DUO_MSG_PRESENTATION_CODE, "PresentationCode", duo__rpc_presentation_code)         \
    X(DUO_MSG_CHANNEL_KEY, "ChannelKey", duo__rpc_channel_key)                           \
    X(DUO_MSG_RESYNC, "Resync", duo__rpc_resync)

/* The method table of duosign.v1.RelyingParty (proto/relying_party.proto),
 * one row per RPC in the service's order (checked against its descriptor at
 * start, like DuoSign's): rpc_rp.c, RedeemPresentation rpc_rp_redeem.c. */
#define DUO_RP_METHODS(X)                                               \
    X(DUO_RP_START_AUTH, "StartAuthentication", duo__rpc_rp_start_auth) \
    X(DUO_RP_START_SIGN, "StartSignature", duo__rpc_rp_start_sign)      \
    X(DUO_RP_GET_SESSION, "GetSession", duo__rpc_rp_get_session)        \
    X(DUO_RP_CANCEL, "CancelSession", duo__rpc_rp_cancel)               \
    X(DUO_RP_REDEEM, "RedeemPresentation", duo__rpc_rp_redeem)

enum {
#define DUO_RP_ENUM(index, name, fn) index,
    DUO_RP_METHODS(DUO_RP_ENUM)
#undef DUO_RP_ENUM
        DUO_RP_COUNT
};

#define DUO_RPC_DECLARE(index, name, fn) \
    int fn(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len);
DUO_RPC_METHODS(DUO_RPC_DECLARE)
DUO_RP_METHODS(DUO_RPC_DECLARE)
#undef DUO_RPC_DECLARE

/* Signing purposes (purpose.c). Before the key is read: the digest a CSR or
 * LOGIN purpose defines (DUO_E_PURPOSE_DIGEST). After its MAC is verified:
 * the key's role allows the purpose (DUO_E_ROLE_PURPOSE) and a CSR info
 * holds the key's own point (DUO_E_CSR_MALFORMED, DUO_E_CSR_KEY_MISMATCH).
 * Each sets the call's message on a refusal. */
int duo__purpose_digest_check(const duo_sign_start_req *req, duo_call_info *info);
int duo__purpose_key_check(const duo_sign_start_req *req, const duo_key_info *ki, duo_call_info *info);

static inline void duo__rpc_ks_pause(duo_rpc *c) {
    if (c->ks_put && c->ks) c->ks_put(c->svc, c->ks);
    if (c->ks_put) c->ks = NULL;
}
static inline void duo__rpc_ks_resume(duo_rpc *c) {
    if (c->ks_get && !c->ks) c->ks = c->ks_get(c->svc);
}

/* On r == DUO_OK hands out (out, out_len) as the response; returns r. */
static inline int duo__rpc_respond(uint8_t **resp, size_t *resp_len, int r, uint8_t *out, size_t out_len) {
    if (r != DUO_OK) return r;
    *resp = out;
    *resp_len = out_len;
    return DUO_OK;
}

#endif
