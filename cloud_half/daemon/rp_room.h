/* duosign-cloud: the relying parties' requests, in memory (a room like
 * sessions.h, with its own lock; docs/RELYING_PARTIES.md).
 *
 * A request is made by an RP (StartAuthentication / StartSignature), is
 * WAITING for the citizen's device, is SIGNING while one approval (a
 * two-party signature bound to it by SignStartRequest.request_id) runs, and
 * is COMPLETE with an end result. It expires ttl_s after its start (its
 * result is then TIMEOUT) and a complete one is erased result_ttl_s after it
 * completed. An RP sees only its own requests (by its certificate's
 * SHA-256); a device only its citizen's. Creation is idempotent per
 * (RP, RP request id). Limits: open requests per RP and per citizen.
 *
 * The clock is injected (duo_rp_clock_fn): the daemon's is the wall clock
 * plus an offset a test may move (DUOSIGN_TEST_CLOCK_FILE, serve.c), so
 * expiry is tested without sleeping. Waiters (GetSession, WaitRequests) wake
 * on every change and at their own deadline on the monotonic clock.
 *
 * Nothing here is secret (the digests, texts and signatures are what the
 * RP and the device see); the RP's challenge is not secret either. */
#ifndef DUOSIGN_CLOUD_RP_ROOM_H
#define DUOSIGN_CLOUD_RP_ROOM_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/rp_digest.h"
#include "keystore.h" /* DUO_CERT_DER_MAX, DUO_CITIZEN_ID_MAX */

#define DUO_RP_ID_BYTES 16
#define DUO_RP_REQUEST_ID_MAX 64
#define DUO_RP_LINK_MAX 80
#define DUO_RP_PENDING_MAX 16 /* requests one WaitRequests returns */

typedef int64_t (*duo_rp_clock_fn)(void);

enum { DUO_RPQ_AUTH = 1, DUO_RPQ_SIGN = 2 };                             /* = PendingRequest.Kind */
enum { DUO_RPQ_WAITING = 1, DUO_RPQ_SIGNING = 2, DUO_RPQ_COMPLETE = 3 }; /* states */
/* End results: GetSessionResponse.EndResult's numbers. */
enum {
    DUO_RPR_NONE = 0,
    DUO_RPR_OK = 1,
    DUO_RPR_USER_REFUSED = 2,
    DUO_RPR_TIMEOUT = 3,
    DUO_RPR_ACCOUNT_UNUSABLE = 4,
    DUO_RPR_PIN_LOCKED = 5,
    DUO_RPR_CANCELLED = 6
};

/* What a new request carries (checked by the handler before). */
typedef struct duo_rp_start {
    uint8_t rp_fp[32];
    char rp_name[DUO_RP_NAME_MAX + 1];
    char rp_request_id[DUO_RP_REQUEST_ID_MAX + 1];
    int kind;
    char citizen[DUO_CITIZEN_ID_MAX + 1]; /* "" : anonymous (a link is made) */
    uint8_t challenge[DUO_RP_CHALLENGE_MAX];
    size_t challenge_len;
    uint8_t rp_digest[64]; /* StartSignature: as the RP gave it */
    size_t rp_digest_len;
    int hash_alg;
    char display_text[DUO_RP_DISPLAY_TEXT_MAX + 1];
} duo_rp_start;

/* A copy of one request, for an answer. */
typedef struct duo_rp_view {
    uint8_t id[DUO_RP_ID_BYTES];
    int kind, state, result;
    char rp_name[DUO_RP_NAME_MAX + 1];
    char citizen[DUO_CITIZEN_ID_MAX + 1];
    char display_text[DUO_RP_DISPLAY_TEXT_MAX + 1];
    char code[5];
    char link[DUO_RP_LINK_MAX + 1];
    uint8_t digest[32]; /* what the key signs */
    uint8_t server_random[DUO_RP_SERVER_RANDOM_BYTES];
    int64_t expires_at;
    uint8_t signature[64];
    uint8_t cert[DUO_CERT_DER_MAX];
    size_t cert_len;
} duo_rp_view;

typedef struct duo_rp_room duo_rp_room;

/* ttl_s: a request's life (0: 120); result_ttl_s: a result's (0: 300);
 * max_per_rp / max_per_citizen: open (not complete) requests (0: 1000 / 5). */
int duo__rp_room_new(duo_rp_room **out, duo_rp_clock_fn now, unsigned ttl_s, unsigned result_ttl_s, unsigned max_per_rp,
                     unsigned max_per_citizen);
void duo__rp_room_free(duo_rp_room *room);

/* A new request (or, for the same RP and request id with the same fields,
 * the one already made: *created 0). Computes the code, the server random,
 * the digest to sign and the link.
 * Returns DUO_OK; DUO_E_RP_IDEMPOTENCY (same id, other fields);
 * DUO_E_RP_TOO_MANY; DUO_E_RNG; DUO_E_NOMEM; DUO_E_INTERNAL. */
int duo__rp_room_start(duo_rp_room *room, const duo_rp_start *in, duo_rp_view *out, int *created);

/* The RP's request id's session, waiting up to timeout_ms for it to complete.
 * Returns DUO_OK; DUO_E_RP_SESSION_UNKNOWN (unknown, erased, or another
 * RP's: the same answer). */
int duo__rp_room_get(duo_rp_room *room, const uint8_t rp_fp[32], const uint8_t id[DUO_RP_ID_BYTES], unsigned timeout_ms,
                     duo_rp_view *out);
/* Cancels an open request (result CANCELLED). A complete one stays as it
 * is (DUO_OK). Returns DUO_OK; DUO_E_RP_SESSION_UNKNOWN. */
int duo__rp_room_cancel(duo_rp_room *room, const uint8_t rp_fp[32], const uint8_t id[DUO_RP_ID_BYTES]);

/* The citizen's WAITING requests (up to cap), waiting up to timeout_ms for
 * one to appear. */
int duo__rp_room_pending(duo_rp_room *room, const char *citizen, unsigned timeout_ms, duo_rp_view *out, size_t cap,
                         size_t *n);
/* The citizen refuses a WAITING request (result USER_REFUSED).
 * Returns DUO_OK; DUO_E_RP_SESSION_UNKNOWN; DUO_E_RP_WRONG_CITIZEN;
 * DUO_E_RP_REQUEST_CLOSED. */
int duo__rp_room_refuse(duo_rp_room *room, const char *citizen, const uint8_t id[DUO_RP_ID_BYTES]);
/* An anonymous login's link claimed by a citizen's device: the request
 * becomes theirs. Returns DUO_OK; DUO_E_RP_LINK (malformed, unknown, expired,
 * claimed). */
int duo__rp_room_claim(duo_rp_room *room, const char *link, const char *citizen, duo_rp_view *out);

/* SignStart with a request id: the request must be the citizen's, WAITING,
 * of kind (the key's role), with this digest; it becomes SIGNING, bound to
 * the signing session sid. Returns DUO_OK; DUO_E_RP_SESSION_UNKNOWN;
 * DUO_E_RP_WRONG_CITIZEN; DUO_E_RP_WRONG_ROLE; DUO_E_RP_REQUEST_CLOSED;
 * DUO_E_RP_DIGEST (the digest is not the request's). */
int duo__rp_room_bind(duo_rp_room *room, const char *citizen, int kind, const uint8_t id[DUO_RP_ID_BYTES],
                      const uint8_t digest[32], const uint8_t sid[32]);
/* SignFinish of a bound session: still SIGNING for this sid and not
 * expired? Returns DUO_OK or DUO_E_RP_REQUEST_CLOSED (then nothing may be
 * signed). */
int duo__rp_room_check(duo_rp_room *room, const uint8_t id[DUO_RP_ID_BYTES], const uint8_t sid[32]);
/* Ends the approval: result OK with the signature and certificate, or
 * another end result (PIN_LOCKED), or DUO_RPR_NONE: back to WAITING (a
 * wrong PIN: the citizen may try again while the request lives). */
void duo__rp_room_finish(duo_rp_room *room, const uint8_t id[DUO_RP_ID_BYTES], const uint8_t sid[32], int result,
                         const uint8_t signature[64], const uint8_t *cert, size_t cert_len);
/* Completes a request with ACCOUNT_UNUSABLE (no usable key of its role). */
void duo__rp_room_unusable(duo_rp_room *room, const uint8_t id[DUO_RP_ID_BYTES]);

/* Expires requests past their time and erases results past theirs. */
void duo__rp_room_sweep(duo_rp_room *room);
/* Open requests (metrics, tests). */
size_t duo__rp_room_open(duo_rp_room *room);

#endif
