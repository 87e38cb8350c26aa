/* duosign: the wire layer. Parses and builds every duosign.v1 message
 * (proto/duosign.proto) to and from plain C structs with fixed-size fields,
 * checking every length and encoding before anything else sees the values.
 * Big values that depend on the Paillier size (N, ciphertexts, proofs) stay as
 * byte spans into a heap copy owned by the struct; free with duo_wire_free.
 *
 * Parsing checks only the encoding (lengths, presence, size caps); the
 * engines check the values (on curve, in range, proofs). Errors:
 * DUO_E_MSG_TOO_LARGE (input above DUO_WIRE_MAX_MSG), DUO_E_DECODE (not a
 * valid protobuf message of that type), DUO_E_BAD_FIELD (a field missing or
 * of the wrong length).
 *
 * MAC input: duo_wire_mac_input() gives the SHA-256 transcript digest of a
 * request's logical fields (domain "duosign/v1/mac/<Method>", every field
 * except the mac itself, in field order) that the device MACs with its
 * rotating secret and the cloud checks. */
#ifndef DUOSIGN_WIRE_H
#define DUOSIGN_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"
#include "duosign/curve.h" /* duo_curve_valid */
#include "duosign/vocab.h" /* ids, sizes, duo_key_state, duo_curve */

#define DUO_WIRE_MAX_MSG (1u << 20)
#define DUO_PDL_B_BYTES 64 /* b < q^2, fixed 64-byte big-endian */

/* Message kinds, in protocol order; also the index of the gRPC method in the
 * protobuf-c service descriptor (duosign.v1.DuoSign) for requests. */
typedef enum {
    DUO_MSG_ENROLL_START = 0,
    DUO_MSG_ENROLL_KEY_SHARE,
    DUO_MSG_ENROLL_PDL_CHALLENGE,
    DUO_MSG_ENROLL_PDL_OPEN,
    DUO_MSG_ENROLL_CONFIRM,
    DUO_MSG_SIGN_START,
    DUO_MSG_SIGN_FINISH,
    DUO_MSG_REFRESH,
    DUO_MSG_REVOKE,
    DUO_MSG_STATUS,
    DUO_MSG_ISSUE_CERTIFICATE,
    DUO_MSG_WAIT_REQUESTS, /* relying parties' requests (rpc_requests.c; messages: protobuf-c, MACs below) */
    DUO_MSG_REFUSE_REQUEST,
    DUO_MSG_CLAIM_LINK,
    DUO_MSG_PRESENTATION_CODE,
    DUO_MSG_CHANNEL_KEY,
    DUO_MSG_RESYNC, /* after a restore of the cloud's store (wire_resync.c) */
    DUO_MSG_COUNT
} duo_msg_kind;

/* A span inside a message's owned buffer (not NUL-terminated). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} duo_span;

/* ---- enrolment ---- */
typedef struct {
    uint8_t token[DUO_TOKEN_MAX];
    size_t token_len; /* 1..DUO_TOKEN_MAX */
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint32_t paillier_bits; /* 2048 or 3072 (checked here) */
    duo_curve curve;        /* a curve of this build (else DUO_E_BAD_FIELD), or UNSPECIFIED (absent on the wire:
                        a device from before curves, i.e. secp256k1; kept as sent so the encoding is canonical) */
    duo_key_role role;      /* a duo_key_role (else DUO_E_BAD_FIELD); UNSPECIFIED: a legacy single key */
} duo_enroll_start_req;

typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t cloud_nonce[DUO_NONCE_BYTES];
    uint8_t q1_commitment[32];
} duo_enroll_start_resp;

typedef struct {
    uint8_t sid[DUO_SID_BYTES];
    uint8_t q2[33];
    uint8_t q2_proof[65];
} duo_enroll_key_share_req;

typedef struct {
    uint8_t q1[33];
    uint8_t q1_proof[65];
    uint8_t q1_opening[32];
    /* Variable-size (depend on the modulus size; exact sizes checked by the
     * engine which knows the agreed size). Owned by `buf`. */
    duo_span paillier_n, ckey, proof_ln, proof_mod, proof_range;
    uint8_t *buf;
} duo_enroll_key_share_resp;

typedef struct {
    uint8_t sid[DUO_SID_BYTES];
    duo_span c_prime;
    uint8_t ab_commitment[32];
    uint8_t *buf;
} duo_enroll_pdl_challenge_req;

typedef struct {
    uint8_t alpha_commitment[32];
} duo_enroll_pdl_challenge_resp;

typedef struct {
    uint8_t sid[DUO_SID_BYTES];
    uint8_t a[32];
    uint8_t b[DUO_PDL_B_BYTES];
    uint8_t ab_opening[32];
} duo_enroll_pdl_open_req;

typedef struct {
    uint8_t alpha_point[33];
    uint8_t alpha_opening[32];
} duo_enroll_pdl_open_resp;

typedef struct {
    uint8_t sid[DUO_SID_BYTES];
    uint8_t public_key[33];
    uint8_t mac[DUO_MAC_BYTES];
} duo_enroll_confirm_req;

typedef struct {
    char revocation_code[DUO_REVOCATION_CODE_MAX + 1]; /* NUL-terminated */
} duo_enroll_confirm_resp;

/* ---- signing ---- */
typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint8_t digest[DUO_DIGEST_BYTES];
    uint8_t r2_commitment[32];
    uint8_t mac[DUO_MAC_BYTES];
    /* A duo_sign_purpose (else DUO_E_BAD_FIELD). csr_info is present (1..
     * DUO_CSR_INFO_MAX bytes) exactly for CSR, login_challenge
     * (DUO_LOGIN_CHALLENGE_MIN..MAX bytes) exactly for LOGIN without a
     * request_id; otherwise both are absent (DUO_E_BAD_FIELD). A CSR never
     * carries a request_id (DUO_E_BAD_FIELD). */
    duo_sign_purpose purpose;
    uint8_t csr_info[DUO_CSR_INFO_MAX];
    size_t csr_info_len;
    uint8_t login_challenge[DUO_LOGIN_CHALLENGE_MAX];
    size_t login_challenge_len;
    int has_request_id; /* 1: request_id present (exactly 16 bytes on the wire, else DUO_E_BAD_FIELD) */
    uint8_t request_id[16];
} duo_sign_start_req;

typedef struct {
    uint8_t cloud_nonce[DUO_NONCE_BYTES];
    uint8_t r1[33];
    uint8_t r1_proof[65];
} duo_sign_start_resp;

typedef struct {
    uint8_t sid[DUO_SID_BYTES];
    uint8_t r2[33];
    uint8_t r2_proof[65];
    uint8_t r2_opening[32];
    uint8_t pin_proof[65];
    duo_span c3;
    uint8_t mac[DUO_MAC_BYTES];
    uint8_t *buf;
} duo_sign_finish_req;

typedef struct {
    uint8_t signature[64];
    uint8_t rotate_seed[32];
} duo_sign_finish_resp;

/* ---- lifecycle ---- */
typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint8_t mac[DUO_MAC_BYTES];
} duo_refresh_req, duo_status_req;

typedef struct {
    uint8_t rotate_seed[32];
} duo_refresh_resp;

typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES]; /* all zero when by_citizen */
    uint8_t device_nonce[DUO_NONCE_BYTES];
    int has_mac; /* exactly one of mac / revocation_code is present */
    uint8_t mac[DUO_MAC_BYTES];
    char revocation_code[DUO_REVOCATION_CODE_MAX + 1];
    /* by_citizen: the code names its key through the citizen id (key_id
     * absent on the wire); only with a revocation code, never with a MAC. */
    int by_citizen;
    char citizen_id[DUO_CITIZEN_ID_MAX + 1];
} duo_revoke_req;

typedef struct {
    duo_key_state state;
    uint32_t pin_attempts_left;
    int64_t locked_until;
    uint8_t public_key[33];
} duo_status_resp;

/* ---- certificates ---- */
#define DUO_WIRE_CSR_MAX 8192  /* bytes of a PKCS#10 request in IssueCertificate */
#define DUO_WIRE_CERT_MAX 8192 /* bytes of a certificate in its response */
typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint8_t csr[DUO_WIRE_CSR_MAX];
    size_t csr_len; /* 0: fetch the key's certificate */
    uint8_t mac[DUO_MAC_BYTES];
} duo_issue_cert_req;

typedef struct {
    uint8_t certificate[DUO_WIRE_CERT_MAX];
    size_t certificate_len; /* 1..DUO_WIRE_CERT_MAX */
} duo_issue_cert_resp;
/* ---- documents (issue 19) ---- */
#define DUO_WIRE_DOC_TYPE_MAX 32 /* [a-z0-9_], 1..32 bytes */
#define DUO_WIRE_CODE_MIN 26     /* base32 of >= 16 random bytes */
#define DUO_WIRE_CODE_MAX 64
#define DUO_WIRE_BARCODE_DIGITS 13 /* EAN-13 */

/* MAC input: key_id, device_nonce, doc_type (its bytes, length-prefixed). */
typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t device_nonce[DUO_NONCE_BYTES];
    char doc_type[DUO_WIRE_DOC_TYPE_MAX + 1];
    uint8_t mac[DUO_MAC_BYTES];
} duo_presentation_code_req;

/* Parsed only if code is DUO_WIRE_CODE_MIN..MAX characters of A-Z2-7, the
 * barcode 13 digits whose EAN-13 check digit holds, and
 * 0 < issued_at < expires_at. */
typedef struct {
    char code[DUO_WIRE_CODE_MAX + 1];
    char barcode[DUO_WIRE_BARCODE_DIGITS + 1];
    int64_t issued_at, expires_at;
} duo_presentation_code_resp;

/* ---- resynchronisation after a restore (issue 20; wire_resync.c) ----
 * Every field is required with its exact size (DUO_E_BAD_FIELD), epoch > 0.
 * device_secret is SECRET: wipe the struct after use. */
#define DUO_RESYNC_PROOF_BYTES 65 /* the PIN proof, A || z */
typedef struct {
    uint8_t key_id[DUO_KEY_ID_BYTES];
    uint8_t device_nonce[DUO_NONCE_BYTES];
    uint64_t epoch;
    uint8_t device_secret[DUO_DEVICE_SECRET_BYTES];
    uint8_t pin_proof[DUO_RESYNC_PROOF_BYTES];
    uint8_t mac[DUO_MAC_BYTES];
} duo_resync_req;

/* ---- functions ----
 * For each message M above:
 *   int duo_wire_parse_M(M *out, const uint8_t *in, size_t in_len);
 *   int duo_wire_build_M(uint8_t **out, size_t *out_len, const M *msg);
 * build allocates *out with malloc (caller frees; wipe first if it carried a
 * secret-derived value). Messages with a `buf` member own heap memory after a
 * successful parse (or when filled by a builder) and must be released with
 * the matching duo_wire_free_M (NULL-safe, wipes). */
#define DUO_WIRE_DECLARE(M)                                                                        \
    DUO_WARN_UNUSED_RESULT int duo_wire_parse_##M(duo_##M *out, const uint8_t *in, size_t in_len); \
    DUO_WARN_UNUSED_RESULT int duo_wire_build_##M(uint8_t **out, size_t *out_len, const duo_##M *msg);

DUO_WIRE_DECLARE(enroll_start_req)
DUO_WIRE_DECLARE(enroll_start_resp)
DUO_WIRE_DECLARE(enroll_key_share_req)
DUO_WIRE_DECLARE(enroll_key_share_resp)
DUO_WIRE_DECLARE(enroll_pdl_challenge_req)
DUO_WIRE_DECLARE(enroll_pdl_challenge_resp)
DUO_WIRE_DECLARE(enroll_pdl_open_req)
DUO_WIRE_DECLARE(enroll_pdl_open_resp)
DUO_WIRE_DECLARE(enroll_confirm_req)
DUO_WIRE_DECLARE(enroll_confirm_resp)
DUO_WIRE_DECLARE(sign_start_req)
DUO_WIRE_DECLARE(sign_start_resp)
DUO_WIRE_DECLARE(sign_finish_req)
DUO_WIRE_DECLARE(sign_finish_resp)
DUO_WIRE_DECLARE(refresh_req)
DUO_WIRE_DECLARE(refresh_resp)
DUO_WIRE_DECLARE(revoke_req)
DUO_WIRE_DECLARE(status_req)
DUO_WIRE_DECLARE(status_resp)
DUO_WIRE_DECLARE(issue_cert_req)
DUO_WIRE_DECLARE(issue_cert_resp)
DUO_WIRE_DECLARE(presentation_code_req)
DUO_WIRE_DECLARE(presentation_code_resp)
DUO_WIRE_DECLARE(resync_req)

void duo_wire_free_enroll_key_share_resp(duo_enroll_key_share_resp *m);
void duo_wire_free_enroll_pdl_challenge_req(duo_enroll_pdl_challenge_req *m);
void duo_wire_free_sign_finish_req(duo_sign_finish_req *m);

/* ResyncResponse is empty: build/parse only check the encoding. */
DUO_WARN_UNUSED_RESULT int duo_wire_build_resync_resp(uint8_t **out, size_t *out_len);
DUO_WARN_UNUSED_RESULT int duo_wire_parse_resync_resp(const uint8_t *in, size_t in_len);

/* RevokeResponse is empty: build/parse only check the encoding. */
DUO_WARN_UNUSED_RESULT int duo_wire_build_revoke_resp(uint8_t **out, size_t *out_len);
DUO_WARN_UNUSED_RESULT int duo_wire_parse_revoke_resp(const uint8_t *in, size_t in_len);

/* MAC inputs (see top). */
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_enroll_confirm(uint8_t out[32], const duo_enroll_confirm_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_sign_start(uint8_t out[32], const duo_sign_start_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_sign_finish(uint8_t out[32], const duo_sign_finish_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_refresh(uint8_t out[32], const duo_refresh_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_revoke(uint8_t out[32], const duo_revoke_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_status(uint8_t out[32], const duo_status_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_issue_cert(uint8_t out[32], const duo_issue_cert_req *m);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_presentation_code(uint8_t out[32], const duo_presentation_code_req *m);
/* Resync: key_id, device_nonce, epoch (u64), SHA-256(device_secret), pin_proof. */
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_resync(uint8_t out[32], const duo_resync_req *m);
/* Returns: 1 if s is a document type ([a-z0-9_], 1..DUO_WIRE_DOC_TYPE_MAX). */
int duo_wire_doc_type_ok(const char *s);
/* Returns: the EAN-13 check digit ('0'..'9') of 12 digits. */
char duo_wire_ean13_check(const char digits[12]);

/* The relying-party requests of the device (WaitRequests, RefuseRequest,
 * ClaimLink): their messages are used through protobuf-c directly; their MAC
 * inputs are here so the device and the cloud share one definition. Domain
 * "duosign/v1/mac/<Method>", then key_id, device_nonce and the method's
 * field (timeout_ms as u64, request_id 16 bytes, link as bytes). */
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_wait_requests(uint8_t out[32], const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                            const uint8_t nonce[DUO_NONCE_BYTES], uint32_t timeout_ms);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_refuse_request(uint8_t out[32], const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                             const uint8_t nonce[DUO_NONCE_BYTES],
                                                             const uint8_t request_id[16]);
DUO_WARN_UNUSED_RESULT int duo_wire_mac_input_claim_link(uint8_t out[32], const uint8_t key_id[DUO_KEY_ID_BYTES],
                                                         const uint8_t nonce[DUO_NONCE_BYTES], const char *link);

/* ---- the inner channel's envelope (wire_sealed.c; proto Sealed) ---- */
#define DUO_WIRE_CHANNEL_VERSION 1
#define DUO_WIRE_SEALED_OVERHEAD 256 /* envelope fields around the ciphertext, at most */
struct duo_ch_record;
/* 1 if in starts like a Sealed envelope (the tag of channel_version, which
 * no plain message starts with), else 0. */
int duo_wire_is_sealed(const uint8_t *in, size_t in_len);
/* Parses a Sealed envelope into *out; out->ct points into *buf (malloc'ed,
 * the caller frees it).
 * Returns: DUO_OK; DUO_E_CHANNEL_MALFORMED (not an envelope, a field of the
 *          wrong length, ciphertext shorter than a tag); DUO_E_UNSUPPORTED
 *          (another channel_version); DUO_E_MSG_TOO_LARGE; DUO_E_NOMEM. */
DUO_WARN_UNUSED_RESULT int duo_wire_parse_sealed(struct duo_ch_record *out, uint8_t **buf, const uint8_t *in,
                                                 size_t in_len);
/* Builds the envelope of rec (malloc'ed *out). */
DUO_WARN_UNUSED_RESULT int duo_wire_build_sealed(uint8_t **out, size_t *out_len, const struct duo_ch_record *rec);
/* ChannelKey: the request is empty; the response names the key's number and
 * its 32-byte X25519 public key (DUO_E_BAD_FIELD otherwise). */
DUO_WARN_UNUSED_RESULT int duo_wire_parse_channel_key_req(const uint8_t *in, size_t in_len);
DUO_WARN_UNUSED_RESULT int duo_wire_parse_channel_key_resp(uint32_t *number, uint8_t pub[32], const uint8_t *in,
                                                           size_t in_len);
DUO_WARN_UNUSED_RESULT int duo_wire_build_channel_key_resp(uint8_t **out, size_t *out_len, uint32_t number,
                                                           const uint8_t pub[32]);

/* HMAC-SHA256(secret, mac_input). */
DUO_WARN_UNUSED_RESULT int duo_mac_compute(uint8_t out[DUO_MAC_BYTES], const uint8_t secret[32],
                                           const uint8_t mac_input[32]);
/* Constant-time check: DUO_OK or DUO_E_UNAUTHENTICATED. */
DUO_WARN_UNUSED_RESULT int duo_mac_check(const uint8_t secret[32], const uint8_t mac_input[32],
                                         const uint8_t mac[DUO_MAC_BYTES]);
/* The next rotating secret: HMAC-SHA256(secret, "duosign/v1/rotate" || sid_or_nonce || seed). */
DUO_WARN_UNUSED_RESULT int duo_secret_rotate(uint8_t next[32], const uint8_t secret[32], const uint8_t context[32],
                                             const uint8_t seed[32]);

#endif
