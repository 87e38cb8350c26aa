/* duosign: the device library (libduosign-device), the phone half of a
 * split-key ECDSA signer (P-256 or secp256k1 keys). This is the only header a mobile app
 * needs (plus duosign/errors.h, which it includes).
 *
 * What it does: with the cloud signer (duosign-cloud) it runs the two-party
 * protocol (Lindell 2017, additive shares; this library is P2) to enrol a
 * key, sign 32-byte digests, change the PIN, rotate the device secret,
 * revoke the key and read its status. The signatures are ordinary ECDSA
 * signatures that any verifier accepts.
 *
 * What it does not do: network I/O, files, clocks, threads. The app supplies
 *  - a transport callback that carries one request to the cloud and returns
 *    the response (libduosign-device-grpc provides one on the gRPC C core,
 *    see duosign/device_grpc.h; an app may use its own HTTP/2 stack);
 *  - storage for the state blob: the library hands out an opaque,
 *    versioned, integrity-checked byte string (duo_device_state_export) that
 *    the app stores durably and gives back later (duo_device_state_import).
 *
 * The PIN never leaves the device and nothing stored can test a PIN guess:
 * the share is masked with a PIN-derived value and a wrong PIN is detected
 * only by the cloud, online, which counts failures (lock, then revoke).
 *
 * Rotating device secret (DESIGN 3.5): every request is MACed with a
 * 32-byte secret that changes after each successful sign, PIN change or
 * refresh. After such an operation the context holds a *pending* next secret
 * and duo_device_state_dirty() returns 1. The app must then
 *   1. call duo_device_state_export() and store the blob durably, then
 *   2. call duo_device_state_persisted().
 * Only after step 2 does the context use the next secret. If the app could
 * not store the blob it simply does not call step 2: the context keeps using
 * the current secret, which the cloud accepts (it drops its pending copy).
 * Never call step 2 without a durable write, and never keep using a context
 * after a durable write without calling step 2: a stored blob whose secret
 * the cloud has retired looks like a cloned device and freezes the key.
 *
 * Backups: keep the state blob OUT of phone backups and device-to-device
 * transfers (Android: exclude the file in android:dataExtractionRules /
 * fullBackupContent, or keep it in noBackupFilesDir; iOS: set
 * NSURLIsExcludedFromBackupKey, or store it in the keychain with a
 * ...ThisDeviceOnly accessibility). A restored backup holds a device
 * secret the cloud has since retired: it is a clone by construction, and
 * its first use freezes the key for good (DUO_E_CLONE_SUSPECTED) for the
 * restored copy and the original alike. A new phone enrols again.
 *
 * PINs: a new PIN (duo_device_enroll, the new PIN of duo_device_change_pin)
 * must be DUO_DEVICE_PIN_MIN..DUO_DEVICE_PIN_MAX bytes; shorter ones are
 * refused with DUO_E_INVALID_ARG before anything is sent. (The design's
 * later two-key change asks PIN1 >= 4 digits and PIN2 >= 5.) A PIN typed to
 * sign is checked only by the cloud, so keys made before the minimum keep
 * working: 1..DUO_DEVICE_PIN_MAX bytes are accepted there.
 *
 * Errors: every fallible function returns DUO_OK (0) or a negative DUO_E_*
 * code from duosign/errors.h; duo_strerror() gives a message and
 * duo_device_errmsg() the server's own message for the last failure.
 *
 * Threads: a duo_device_ctx is single-threaded; use one per thread or lock
 * around it. Different contexts are independent (no global state).
 *
 * Memory: the library allocates with malloc. Buffers it returns say who
 * frees them; secret-bearing ones are wiped on free. */
#ifndef DUOSIGN_DEVICE_H
#define DUOSIGN_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version (semantic versioning). Compare with
 * duo_device_version() at run time to detect a header/library mismatch. */
#define DUOSIGN_DEVICE_VERSION_MAJOR 0
#define DUOSIGN_DEVICE_VERSION_MINOR 1
#define DUOSIGN_DEVICE_VERSION_PATCH 0
#define DUOSIGN_DEVICE_VERSION_STRING "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, e.g. 100 for 0.1.0. */
#define DUOSIGN_DEVICE_VERSION_NUMBER \
    (DUOSIGN_DEVICE_VERSION_MAJOR * 10000 + DUOSIGN_DEVICE_VERSION_MINOR * 100 + DUOSIGN_DEVICE_VERSION_PATCH)

/* Sizes. */
#define DUO_DEVICE_DIGEST_BYTES 32
#define DUO_DEVICE_SIG_BYTES 64 /* r || s, big-endian, low-S */
#define DUO_DEVICE_SIG_DER_MAX 72
#define DUO_DEVICE_PUBKEY_BYTES 33    /* compressed SEC1 */
#define DUO_DEVICE_PUBKEY_PEM_MAX 256 /* PEM SubjectPublicKeyInfo, with NUL */
#define DUO_DEVICE_KEY_ID_BYTES 16
#define DUO_DEVICE_PIN_MIN 4  /* bytes, for a new PIN (see the top) */
#define DUO_DEVICE_PIN_MAX 64 /* bytes */
#define DUO_DEVICE_TOKEN_MAX 128
#define DUO_DEVICE_REVOCATION_CODE_MAX 64 /* characters, without the NUL */
#define DUO_DEVICE_CITIZEN_ID_MAX 64      /* characters, without the NUL */
#define DUO_DEVICE_ADDRESS_MAX 255
#define DUO_DEVICE_APP_DATA_MAX 65536
#define DUO_DEVICE_PRECOMPUTE_MAX 64
#define DUO_DEVICE_WRAP_OVERHEAD_MAX 1024 /* bytes a wrap hook may add */

/* The state of a key as the cloud reports it (duo_device_status). */
#define DUO_DEVICE_KEY_PENDING 1
#define DUO_DEVICE_KEY_ACTIVE 2
#define DUO_DEVICE_KEY_LOCKED 3
#define DUO_DEVICE_KEY_SUSPENDED 4
#define DUO_DEVICE_KEY_REVOKED 5

/* Opaque device context: configuration (transport, RNG, wrap hook), at most
 * one key, its rotating secret and any precomputed Paillier factors.
 * Create with duo_device_ctx_new, destroy with duo_device_ctx_free.
 *
 * A citizen's two keys (issue 16: an authentication key, PIN1 of at least 4
 * digits, and a signing key, PIN2 of at least 5) are two contexts, each
 * enrolled with duo_device_set_enroll_role (both from one token) and
 * exported to its own state blob: the operation uses the key of the context
 * it is given. The role and the key's certificate (duo_device_issue_certificate,
 * duo_device_certificate) are part of the state. The PIN rules by role are
 * the application's (the duosign CLI keeps the signing key in FILE and the
 * authentication key in FILE.auth). */
typedef struct duo_device_ctx duo_device_ctx;

/* The transport: sends one unary request to the cloud and returns its
 * response.
 *
 * Returns: DUO_OK with *resp set, or a DUO_E_* code. A transport maps the
 *          server's failures back to duosign codes: when the server sends a
 *          "duo-error" trailing metadata entry (a decimal duosign error
 *          code) that code is returned; otherwise the transport status maps
 *          to DUO_E_UNAVAILABLE (server unreachable), DUO_E_TIMEOUT
 *          (deadline), DUO_E_UNAUTHENTICATED, ... ; anything else is DUO_E_IO.
 * Args:    user:       the pointer given to duo_device_set_transport.
 * Out:     resp:       the response bytes (a serialized protobuf message);
 *                      released by the library with the free_resp callback.
 *          resp_len:   its length.
 *          errmsg:     on failure, a NUL-terminated human-readable message
 *                      (the server's status details, e.g. "wrong PIN, 2
 *                      attempts left"), truncated to errmsg_cap bytes.
 * In:      method:     the full gRPC method path, e.g.
 *                      "/duosign.v1.DuoSign/SignStart".
 *          req:        the request bytes (serialized protobuf message).
 *                      Contains no long-term secret, but treat it as
 *                      sensitive (it carries protocol values).
 *          errmsg_cap: capacity of errmsg (at least 1). */
typedef int (*duo_device_transport_fn)(void *user, const char *method, const uint8_t *req, size_t req_len,
                                       uint8_t **resp, size_t *resp_len, char *errmsg, size_t errmsg_cap);
/* Releases a response returned by the transport. */
typedef void (*duo_device_transport_free_fn)(void *user, uint8_t *resp, size_t resp_len);

/* Randomness: fills out with len bytes; returns 0 on success, nonzero on
 * failure. The default is OpenSSL's RAND_bytes. */
typedef int (*duo_device_rng_fn)(void *user, uint8_t *out, size_t len);

/* Platform wrapping of the state blob (Android Keystore, Secure Enclave).
 * wrap:   encrypts/authenticates in (in_len bytes; SECRET: it holds the
 *         PIN-masked share and the device secret) into out, whose capacity
 *         *out_len is in_len + DUO_DEVICE_WRAP_OVERHEAD_MAX; sets *out_len.
 * unwrap: the inverse; the capacity *out_len is in_len. Returns DUO_OK, or a
 *         code: any failure of unwrap makes duo_device_state_import return
 *         DUO_E_STATE_CORRUPT (a wrap failure is passed through).
 * The default is the identity. The inner blob is always integrity-checked
 * with SHA-256 whatever the hook does. */
typedef int (*duo_device_wrap_fn)(void *user, uint8_t *out, size_t *out_len, const uint8_t *in, size_t in_len);

/* Status of a key (duo_device_status). */
typedef struct duo_device_status_info {
    int state;                  /* DUO_DEVICE_KEY_* */
    uint32_t pin_attempts_left; /* before the next lock */
    int64_t locked_until;       /* unix seconds, 0 if not locked */
    uint8_t public_key[DUO_DEVICE_PUBKEY_BYTES];
} duo_device_status_info;

/* A presentation code for one of the citizen's documents
 * (duo_device_presentation_code). Not secret in the library's sense, but it
 * shows the document to whoever reads it first: display it, do not log it. */
#define DUO_DEVICE_DOC_TYPE_MAX 32 /* bytes of [a-z0-9_] */
#define DUO_DEVICE_CODE_MAX 64
typedef struct duo_device_presentation {
    char code[DUO_DEVICE_CODE_MAX + 1]; /* base32 (A-Z, 2-7): what the QR code carries */
    char barcode[14];                   /* EAN-13: 12 random digits and the check digit */
    int64_t issued_at, expires_at;      /* unix seconds, the cloud's clock */
} duo_device_presentation;

/* ------------------------------------------------------------ version */

/* Returns: the version of the library actually loaded, as
 *          DUOSIGN_DEVICE_VERSION_NUMBER (MAJOR * 10000 + MINOR * 100 + PATCH).
 *          An app built against another header can compare it with the
 *          macro; the major versions must agree. */
DUO_API unsigned long duo_device_version(void);

/* Returns: the same as a static string, e.g. "0.1.0". */
DUO_API const char *duo_device_version_string(void);

/* ------------------------------------------------------------ context */

/* Creates an empty context (no key, no transport).
 *
 * Returns: DUO_OK, DUO_E_NOMEM, DUO_E_RNG, DUO_E_INVALID_ARG (out NULL).
 * Out:     out: the new context; free with duo_device_ctx_free. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_ctx_new(duo_device_ctx **out);

/* Wipes (key share, secrets, precomputed factors) and frees ctx. NULL is a
 * no-op. */
DUO_API void duo_device_ctx_free(duo_device_ctx *ctx);

/* Sets the transport (see duo_device_transport_fn). Needed by every online
 * call. free_resp may be NULL if responses need no release (the library then
 * never frees them).
 * Returns: DUO_OK, DUO_E_INVALID_ARG (ctx or fn NULL). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_transport(duo_device_ctx *ctx, duo_device_transport_fn fn,
                                                            duo_device_transport_free_fn free_resp, void *user);

/* Replaces the random source (tests; platforms with their own CSPRNG).
 * fn NULL restores the default (OpenSSL). The source must be a CSPRNG.
 * Returns: DUO_OK, DUO_E_INVALID_ARG. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_rng(duo_device_ctx *ctx, duo_device_rng_fn fn, void *user);

/* Sets the wrap/unwrap hook pair for state blobs (both NULL: identity).
 * Returns: DUO_OK, DUO_E_INVALID_ARG (exactly one of them NULL). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_blob_wrap(duo_device_ctx *ctx, duo_device_wrap_fn wrap,
                                                            duo_device_wrap_fn unwrap, void *user);

/* The message of the last failed call on ctx: the server's status details
 * when the failure came from the cloud, else duo_strerror(code). Empty
 * string after a success. Valid until the next call on ctx. */
DUO_API const char *duo_device_errmsg(const duo_device_ctx *ctx);

/* ------------------------------------------------------------ enrolment */

/* Enrolment, step 1: runs the four key generation rounds with the cloud,
 * checks every proof of the cloud (Paillier modulus, range, PDL) and leaves
 * the new key in ctx, unconfirmed and marked dirty.
 * The app must then export and durably store the state
 * (duo_device_state_export + duo_device_state_persisted) and call
 * duo_device_enroll_confirm: only the confirmation activates the key.
 *
 * The key's curve is the one chosen with duo_device_set_enroll_curve
 * (default P-256).
 *
 * Returns: DUO_OK; DUO_E_EXISTS if ctx already holds a key; DUO_E_TOKEN_INVALID /
 *          DUO_E_TOKEN_EXPIRED; DUO_E_CURVE_REFUSED if the cloud does not
 *          enrol keys on that curve (nothing is stored; the token is kept); DUO_E_BAD_PROOF / DUO_E_BAD_MODULUS /
 *          DUO_E_PDL_MISMATCH / ... when the cloud misbehaves;
 *          DUO_E_CHANNEL_FINGERPRINT if the token carries the fingerprint of
 *          a channel key (CODE.HEX, duosign/channel_fp.h) and the cloud
 *          presents another (no enrolment request is sent, no key is pinned,
 *          the token is kept); DUO_E_CHANNEL_FP_MALFORMED for a token whose
 *          part after '.' is not 32 lowercase hex digits (nothing is sent);
 *          DUO_E_UNAVAILABLE / DUO_E_TIMEOUT from the transport.
 * Args:    ctx: a context with a transport and no key.
 * In:      server_address: "host:port" stored in the state for later use
 *                          (<= DUO_DEVICE_ADDRESS_MAX characters); the
 *                          library itself never connects to it.
 *          token:          the one-time enrolment token (1..128 bytes), as
 *                          printed by `duosign-cloud token issue`; a token
 *                          without a '.' (from before the fingerprint) is
 *                          still accepted, trusting the TLS alone.
 *          pin:            SECRET, DUO_DEVICE_PIN_MIN..DUO_DEVICE_PIN_MAX
 *                          bytes (shorter: DUO_E_INVALID_ARG, nothing is
 *                          sent); copied and wiped; the caller wipes its
 *                          own copy.
 *          paillier_bits:  required Paillier modulus size: 3072 (default
 *                          when 0) or 2048. The cloud's N must have exactly
 *                          this size. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_enroll(duo_device_ctx *ctx, const char *server_address,
                                                     const uint8_t *token, size_t token_len, const uint8_t *pin,
                                                     size_t pin_len, unsigned paillier_bits);

/* Curves (DESIGN 8.1): a key's curve is chosen at enrolment and kept in
 * its state. The numbers are those of the wire and the state blob. */
#define DUO_DEVICE_CURVE_SECP256K1 1
#define DUO_DEVICE_CURVE_P256 2 /* the default for new keys */

/* Chooses the curve of the next duo_device_enroll on ctx (until then, and
 * after a new context: DUO_DEVICE_CURVE_P256). The cloud may refuse a curve
 * (DUO_E_CURVE_REFUSED from duo_device_enroll).
 * Returns: DUO_OK; DUO_E_UNSUPPORTED for a curve this library does not know;
 *          DUO_E_EXISTS if ctx already holds a key (its curve is fixed). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_enroll_curve(duo_device_ctx *ctx, int curve);
/* Returns: the curve of the key in ctx (DUO_DEVICE_CURVE_*; a state written
 *          before curves is secp256k1), or 0 if ctx holds no key. */
DUO_API int duo_device_curve(const duo_device_ctx *ctx);
/* Returns: a static name for curve ("p256", "secp256k1"), NULL if unknown. */
DUO_API const char *duo_device_curve_name(int curve);

/* Enrolment, step 2: sends the confirmation (MACed with the first device
 * secret). May be retried, also after a restart from a stored blob, until
 * the enrolment expires on the cloud.
 *
 * Returns: DUO_OK; DUO_E_MISUSE if there is no unconfirmed key or the state
 *          was not persisted first (duo_device_state_persisted);
 *          transport and cloud errors.
 * Out:     revocation_code: NUL-terminated one-time code that revokes the key
 *                           without the device (show it to the citizen once);
 *                           may be NULL to ignore it. Empty ("") when the
 *                           cloud had already accepted an earlier attempt
 *                           whose answer was lost: the code is shown only the
 *                           first time (tell the user so; the key is active).
 * In:      code_cap: capacity of revocation_code (at least
 *                    DUO_DEVICE_REVOCATION_CODE_MAX + 1 when non-NULL).
 * The state becomes dirty (the confirmed flag); store it again. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_enroll_confirm(duo_device_ctx *ctx, char *revocation_code,
                                                             size_t code_cap);

/* Returns: 1 if ctx holds a key, 0 otherwise. */
DUO_API int duo_device_has_key(const duo_device_ctx *ctx);
/* Returns: 1 if the key's enrolment was confirmed, 0 otherwise. */
DUO_API int duo_device_is_confirmed(const duo_device_ctx *ctx);

/* ------------------------------------------------------------ signing */

/* Signs a 32-byte digest with the cloud (two round trips). The PIN is
 * checked by the cloud; the signature is verified under the public key
 * before it is returned. On success the state is dirty (a new device secret
 * is pending): export, store, persisted.
 * If precomputed Paillier factors are available (duo_device_precompute) one
 * is used and discarded.
 * With a PIN, the PIN KDF (scrypt, the bulk of the device's CPU per
 * signature: ~170 ms on a server core, more on a phone) runs inside this
 * call, and any prepared PIN (duo_device_pin_prepare) is wiped unused. With
 * pin NULL and pin_len 0 the prepared PIN is used instead, and wiped by this
 * call whatever its outcome (success, wrong PIN, network failure): one
 * prepared PIN serves one call.
 *
 * Returns: DUO_OK; DUO_E_WRONG_PIN (duo_device_errmsg has the attempts
 *          left; also for a prepared wrong PIN, exactly as for a typed one);
 *          DUO_E_KEY_LOCKED; DUO_E_KEY_REVOKED; DUO_E_KEY_SUSPENDED;
 *          DUO_E_CLONE_SUSPECTED; DUO_E_BAD_PROOF / DUO_E_BAD_SIGNATURE if
 *          the cloud misbehaves; DUO_E_MISUSE without a confirmed key, and
 *          for pin NULL without a prepared PIN (none made, or already used
 *          or wiped) or with one made for another key or PIN salt (the
 *          state changed since): nothing is sent then and the state does not
 *          change; DUO_E_INVALID_ARG for a bad PIN length or pin NULL with
 *          pin_len != 0; transport errors.
 * Out:     sig: r || s (64 bytes, low-S).
 * In:      digest: the 32-byte message digest (e.g. SHA-256 of a document).
 *          pin:    SECRET, 1..DUO_DEVICE_PIN_MAX bytes; wiped copies only.
 *                  NULL (with pin_len 0): use the prepared PIN. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_sign(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                                                   const uint8_t digest[DUO_DEVICE_DIGEST_BYTES], const uint8_t *pin,
                                                   size_t pin_len);

/* ------------------------------------------------------------ roles and purposes (issue 16) */

/* A key's role (DESIGN 8.2), chosen at enrolment and kept in its state; the
 * cloud stores it and allows each role its purposes only. The numbers are
 * those of the wire and the state blob. */
#define DUO_DEVICE_ROLE_NONE 0 /* a key from before roles: documents only */
#define DUO_DEVICE_ROLE_AUTH 1 /* logins (PIN1); certificate keyUsage digitalSignature */
#define DUO_DEVICE_ROLE_SIGN 2 /* documents (PIN2); certificate keyUsage nonRepudiation */

/* Chooses the role of the next duo_device_enroll on ctx (until then, and
 * after a new context: DUO_DEVICE_ROLE_NONE). One enrolment token admits one
 * AUTH and one SIGN enrolment (or one without a role): a second enrolment of
 * a role is refused with DUO_E_TOKEN_ROLE_USED.
 * Returns: DUO_OK; DUO_E_UNSUPPORTED (unknown role); DUO_E_EXISTS (ctx holds
 *          a key: its role is fixed); DUO_E_INVALID_ARG (ctx NULL). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_enroll_role(duo_device_ctx *ctx, int role);
/* Returns: the role of the key in ctx (DUO_DEVICE_ROLE_*; a state written
 *          before roles, and a ctx without a key: DUO_DEVICE_ROLE_NONE). */
DUO_API int duo_device_role(const duo_device_ctx *ctx);

/* The purpose of a signature, sent with it and MACed (docs/PROTOCOL.md
 * "Signing purposes"). duo_device_sign signs a document (purpose DOCUMENT,
 * or none for a key without a role, as before): the cloud refuses it on an
 * AUTH key (DUO_E_ROLE_PURPOSE). The two below are the other purposes. */

/* Signs a login: the digest is not the caller's but the login digest of the
 * challenge (duosign/login_digest.h: SHA-256 over the domain tag
 * "duosign/login/v1" and the length-prefixed challenge), which the cloud
 * recomputes (DUO_E_PURPOSE_DIGEST otherwise). Only an AUTH key signs logins
 * (DUO_E_ROLE_PURPOSE otherwise). Like duo_device_sign otherwise (PIN,
 * prepared PIN with pin NULL, rotation: export, store, persisted).
 * Returns: as duo_device_sign; DUO_E_INVALID_ARG for a challenge outside
 *          16..256 bytes (nothing sent).
 * Out:     sig: r || s over digest; digest: the login digest signed (what a
 *          verifier checks the signature against).
 * In:      challenge: the login challenge (public). pin: as duo_device_sign. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_sign_login(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                                                         uint8_t digest[DUO_DEVICE_DIGEST_BYTES],
                                                         const uint8_t *challenge, size_t challenge_len,
                                                         const uint8_t *pin, size_t pin_len);

/* Signs a certification request of the key: the signature is over SHA-256
 * of info, a DER CertificationRequestInfo (what duo_csr_build_info gives);
 * the cloud signs it only if info holds this key's own public key
 * (DUO_E_CSR_KEY_MISMATCH / DUO_E_CSR_MALFORMED otherwise), so this purpose
 * never signs a document. Any role. Otherwise as duo_device_sign.
 * Returns: as duo_device_sign; DUO_E_INVALID_ARG (info empty or above
 *          4096 bytes).
 * Out:     sig: r || s over SHA-256(info). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_sign_csr_info(duo_device_ctx *ctx, uint8_t sig[DUO_DEVICE_SIG_BYTES],
                                                            const uint8_t *info, size_t info_len, const uint8_t *pin,
                                                            size_t pin_len);

/* ------------------------------------------------------------ certificates (issue 16) */

/* Sends the key's PKCS#10 request (DER; build it with duo_csr_build and
 * duo_device_sign_csr_info as the signer) to the cloud's issuing CA
 * (IssueCertificate, MACed, no PIN, no rotation) and keeps the certificate
 * it returns in ctx, after checking that it certifies this key. With
 * csr_len 0 (csr may be NULL) it fetches the key's newest good certificate
 * instead (one the operator imported later). The state is then dirty (the
 * certificate is part of it): export, store, persisted.
 * Returns: DUO_OK; DUO_E_NO_CA (the cloud has no issuing CA: the key works
 *          without a certificate; fetch later); DUO_E_NO_CERT (fetch: none
 *          yet); DUO_E_CSR_MALFORMED / DUO_E_CSR_BAD_SIGNATURE /
 *          DUO_E_CSR_KEY_MISMATCH; DUO_E_CERT_KEY_MISMATCH / DUO_E_DECODE
 *          (the cloud answered with a certificate for another key, or not a
 *          certificate: nothing kept); DUO_E_MISUSE without a confirmed key;
 *          DUO_E_INVALID_ARG (csr above 8192 bytes); cloud and transport
 *          errors. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_issue_certificate(duo_device_ctx *ctx, const uint8_t *csr,
                                                                size_t csr_len);

/* Keeps a certificate for the key in ctx (and so in its state), replacing
 * any: one the operator issued outside enrolment. It must certify this key.
 * Returns: DUO_OK (the state is dirty); DUO_E_CERT_KEY_MISMATCH; DUO_E_DECODE
 *          (not one DER certificate); DUO_E_MISUSE (no key);
 *          DUO_E_INVALID_ARG (empty, above 16384 bytes).
 * In:      der: copied. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_certificate(duo_device_ctx *ctx, const uint8_t *der, size_t der_len);

/* The key's certificate.
 * Returns: DUO_OK; DUO_E_NO_CERT (none kept, or no key); DUO_E_INVALID_ARG.
 * Out:     der, der_len: borrowed from ctx (public), valid until the next
 *          call that changes ctx's key or certificate. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_certificate(const duo_device_ctx *ctx, const uint8_t **der,
                                                          size_t *der_len);

/* ------------------------------------------------- relying parties' requests
 *
 * A relying party (a bank, a portal) asks the citizen to log in or to sign
 * (docs/RELYING_PARTIES.md). The app learns of it with
 * duo_device_wait_requests (a long poll), shows who asks (rp_name), what
 * (display_text) and the 4-digit verification_code the RP also shows, and
 * then approves with the PIN of the key the request's kind needs
 * (duo_device_approve: the ordinary two-party signature of the request's
 * digest, bound to its id, so the cloud signs that digest and nothing
 * else) or refuses (duo_device_refuse_request). An anonymous login's link,
 * shown by the RP as a QR code, is claimed with duo_device_claim_link on
 * the authentication key's context. Nothing here is secret except the PIN. */
#define DUO_DEVICE_REQUEST_AUTH 1 /* approve with the authentication key */
#define DUO_DEVICE_REQUEST_SIGN 2 /* approve with the signing key */
#define DUO_DEVICE_RP_NAME_MAX 64
#define DUO_DEVICE_DISPLAY_TEXT_MAX 200

typedef struct duo_device_request {
    uint8_t request_id[16];
    int kind;                                           /* DUO_DEVICE_REQUEST_* */
    char rp_name[DUO_DEVICE_RP_NAME_MAX + 1];           /* who asks (registered name) */
    char display_text[DUO_DEVICE_DISPLAY_TEXT_MAX + 1]; /* UTF-8, checked: no control characters but newline */
    char verification_code[5];                          /* 4 digits */
    uint8_t digest[32];                                 /* what the key will sign */
    int64_t expires_at;                                 /* unix seconds */
} duo_device_request;

/* Waits up to timeout_ms (the cloud bounds it at 30 s) for requests
 * addressed to the citizen of ctx's key; returns at once if some wait.
 * Every request of the citizen is listed, each with the kind of key it
 * needs. MAC-authenticated like duo_device_status (no PIN).
 * Returns: DUO_OK (*n may be 0: none came); DUO_E_INVALID_ARG;
 *          DUO_E_MISUSE (no confirmed key); DUO_E_RP_WRONG_ROLE (the key has
 *          no certificate); DUO_E_BAD_FIELD (a malformed request from the
 *          cloud: nothing returned); transport and key-state errors.
 * Out:     out[0..*n), at most cap. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_wait_requests(duo_device_ctx *ctx, unsigned timeout_ms,
                                                            duo_device_request *out, size_t cap, size_t *n);
/* Approves req with ctx's key (the kind's key) and the PIN, or the prepared
 * PIN when pin is NULL (as duo_device_sign). On success the RP receives the
 * signature and the key's certificate; sig gets the signature too. The
 * state changes (rotated secret): export it afterwards.
 * Returns: as duo_device_sign, plus DUO_E_RP_REQUEST_CLOSED (answered,
 *          cancelled, or expired, also while the PIN was typed: nothing
 *          signed), DUO_E_RP_WRONG_CITIZEN, DUO_E_RP_WRONG_ROLE (the other
 *          key is needed), DUO_E_RP_SESSION_UNKNOWN.
 * In:      pin: SECRET, not kept. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_approve(duo_device_ctx *ctx, const duo_device_request *req,
                                                      uint8_t sig[DUO_DEVICE_SIG_BYTES], const uint8_t *pin,
                                                      size_t pin_len);
/* Refuses a waiting request (the RP gets USER_REFUSED).
 * Returns: DUO_OK; DUO_E_RP_REQUEST_CLOSED; DUO_E_RP_WRONG_CITIZEN;
 *          DUO_E_RP_SESSION_UNKNOWN; transport and key-state errors. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_refuse_request(duo_device_ctx *ctx, const uint8_t request_id[16]);
/* Claims an anonymous login's link (duosign://claim/...) for the citizen of
 * ctx's key (its authentication key) and returns the request to show and
 * approve. Returns: DUO_OK; DUO_E_RP_LINK (malformed, unknown, expired or
 * already claimed); DUO_E_RP_WRONG_ROLE (not the authentication key);
 * DUO_E_INVALID_ARG; transport and key-state errors. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_claim_link(duo_device_ctx *ctx, const char *link,
                                                         duo_device_request *out);

/* Prepares the PIN for the next duo_device_sign: runs the PIN KDF now, so
 * that the signature itself needs none (it then costs the device about one
 * 256-bit exponentiation mod N^2, with a precomputed Paillier factor). An app
 * calls it as soon as the PIN is typed, e.g. on a worker thread while the
 * document is shown, then signs with pin NULL. Like every call it must not
 * run concurrently with another call on the same ctx.
 *
 * Nothing is checked here (nothing stored can test a PIN, DESIGN 3.4): a
 * wrong PIN is found by the cloud at the signature, as DUO_E_WRONG_PIN,
 * and counts as a failed attempt like a typed wrong PIN.
 *
 * The result is secret: with the stored state it gives the device's share.
 * It is kept in locked, wipe-on-free memory inside ctx, never in the state
 * blob, and serves exactly one signature. It is wiped by the next
 * duo_device_sign (with or without a PIN), by another duo_device_pin_prepare
 * (which replaces it), by duo_device_pin_prepare_clear, by
 * duo_device_change_pin (whatever its outcome) and by duo_device_ctx_free.
 * It is bound to the key and PIN salt it was made for: if they changed, the
 * signature refuses it (DUO_E_MISUSE) without contacting the cloud.
 * Offline: no transport needed.
 *
 * Returns: DUO_OK; DUO_E_INVALID_ARG (pin NULL, empty or longer than
 *          DUO_DEVICE_PIN_MAX); DUO_E_MISUSE without a confirmed key;
 *          DUO_E_NOMEM; DUO_E_INTERNAL. On failure nothing is prepared
 *          (an earlier prepared PIN is wiped too).
 * In:      pin: SECRET, 1..DUO_DEVICE_PIN_MAX bytes; not kept (the caller
 *               wipes its own copy). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_pin_prepare(duo_device_ctx *ctx, const uint8_t *pin, size_t pin_len);

/* Wipes a prepared PIN without signing (the user cancelled). No-op if there
 * is none or ctx is NULL. */
DUO_API void duo_device_pin_prepare_clear(duo_device_ctx *ctx);

/* Returns: 1 if ctx holds a prepared PIN for its current key and PIN salt
 * (duo_device_sign with pin NULL will use it), else 0. */
DUO_API int duo_device_pin_prepared(const duo_device_ctx *ctx);

/* Converts r || s to a DER ECDSA-Sig-Value (what `openssl dgst -verify`
 * reads).
 * Returns: DUO_OK, DUO_E_BUFFER_TOO_SMALL, DUO_E_INVALID_ARG.
 * Out:     der: the encoding; der_len: in its capacity
 *          (DUO_DEVICE_SIG_DER_MAX suffices), out its length.
 * In:      sig: r || s. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_sig_to_der(uint8_t *der, size_t *der_len,
                                                         const uint8_t sig[DUO_DEVICE_SIG_BYTES]);

/* Precomputes up to `count` Paillier random factors r^N mod N^2 (one per
 * future signature) so a signature costs one short exponentiation online.
 * Call it when the app is idle; it is CPU-heavy (about 10-40 ms per factor
 * at 3072 bits on a phone core). The factors live in ctx memory only, never
 * in the state blob, are each used once, and are wiped by
 * duo_device_ctx_free. At most DUO_DEVICE_PRECOMPUTE_MAX are kept.
 * Returns: DUO_OK, DUO_E_MISUSE (no key), DUO_E_NOMEM, DUO_E_RNG.
 * Out:     available (may be NULL): how many factors are ready now. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_precompute(duo_device_ctx *ctx, unsigned count, unsigned *available);

/* ------------------------------------------------------------ lifecycle */

/* Changes the PIN. A PIN can only be proven online, by signing: this signs
 * the fixed domain-separated digest
 *   SHA-256("duosign/v1/change-pin" || key id || 32 random bytes)
 * with old_pin (the cloud counts a wrong old PIN as a PIN failure and
 * records an ordinary signature), and on success re-masks the share with
 * new_pin and a fresh salt. The state is then dirty: export, store,
 * persisted. Until it is stored the old PIN stays valid on disk; both PINs
 * are valid for the cloud (it never learns either).
 * A prepared PIN (duo_device_pin_prepare) is wiped first, whatever the
 * outcome: the old PIN is the one given here.
 * Returns: as duo_device_sign; DUO_E_INVALID_ARG for an empty or too long
 *          old PIN, or a new PIN shorter than DUO_DEVICE_PIN_MIN or longer
 *          than DUO_DEVICE_PIN_MAX (checked before anything is sent).
 * In:      old_pin: SECRET, 1..DUO_DEVICE_PIN_MAX bytes.
 *          new_pin: SECRET, DUO_DEVICE_PIN_MIN..DUO_DEVICE_PIN_MAX bytes. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_change_pin(duo_device_ctx *ctx, const uint8_t *old_pin,
                                                         size_t old_pin_len, const uint8_t *new_pin,
                                                         size_t new_pin_len);

/* Rotates the device secret without signing (so a dormant clone surfaces at
 * the cloud quickly). No PIN. The state is then dirty.
 * The next secret is HMAC(current, "duosign/v1/rotate" || device nonce of
 * the RefreshRequest || rotate seed).
 * Returns: DUO_OK; DUO_E_CLONE_SUSPECTED; DUO_E_KEY_REVOKED; ...; transport
 *          errors. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_refresh(duo_device_ctx *ctx);

/* Revokes the key at the cloud (MAC, no PIN: the citizen may have forgotten
 * it). Final: the key never signs again. The local state is kept; the app
 * should delete its stored blob.
 * Returns: DUO_OK; cloud and transport errors. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_revoke(duo_device_ctx *ctx);

/* Revokes a key without the device (the phone is lost): with the one-time
 * revocation code shown at enrolment (duo_device_enroll_confirm) and the
 * citizen id the enrolment token was issued for. The key id is not needed:
 * the cloud revokes the citizen's key that this code belongs to. Final, as
 * duo_device_revoke; the code is used up.
 * Needs only a transport: ctx may hold no key (a new context), and a key it
 * holds is neither used nor changed.
 * A refusal does not tell why (wrong or used code, unknown citizen, no such
 * enrolment), so that it does not reveal whether the citizen exists; the
 * cloud records each refusal in its audit log.
 *
 * Returns: DUO_OK; DUO_E_UNAUTHENTICATED (code or citizen id not accepted;
 *          nothing changed); DUO_E_INVALID_ARG (either is empty, longer than
 *          its maximum or not printable ASCII; nothing sent); DUO_E_MISUSE
 *          (no transport); transport errors.
 * In:      citizen_id:      NUL-terminated, 1..DUO_DEVICE_CITIZEN_ID_MAX
 *                           printable ASCII characters.
 *          revocation_code: NUL-terminated, as shown (SECRET until used),
 *                           1..DUO_DEVICE_REVOCATION_CODE_MAX characters. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_revoke_with_code(duo_device_ctx *ctx, const char *citizen_id,
                                                               const char *revocation_code);

/* Reads the key's state from the cloud (MAC, no PIN, no secret rotation).
 * Returns: DUO_OK; cloud and transport errors.
 * Out:     info: state, PIN attempts left, lock expiry, public key. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_status(duo_device_ctx *ctx, duo_device_status_info *info);

/* The one-time resynchronisation after a restore of the cloud's store
 * (docs/SECURITY.md 1.10). A restored store may not know the secret this
 * device holds (it rotated since the backup): its requests then fail with
 * DUO_E_RESYNC_POSSIBLE. This asks (a Status) and, if the cloud says so,
 * sends a Resync: the device's current secret with a PIN proof bound to the
 * key, a fresh nonce, the restore epoch the cloud named and the secret's
 * hash. Nothing in the device state changes (the cloud adopts the device's
 * secret), so nothing needs saving afterwards. Goes through the inner
 * channel like every call. When the cloud says the key already used its
 * resync (DUO_E_RESYNC_USED), the Resync is sent anyway: the cloud refuses
 * it and audits the second attempt.
 * Returns: DUO_OK (*done = 1: resynchronised; 0: nothing to do, the cloud
 *          knows this secret); DUO_E_WRONG_PIN (counted by the cloud as a
 *          signature's wrong PIN; errmsg has the attempts left);
 *          DUO_E_KEY_LOCKED; DUO_E_RESYNC_NOT_OPEN (no restore since),
 *          DUO_E_RESYNC_USED (this key already resynchronised: a copy of the
 *          device?), DUO_E_RESYNC_EPOCH, DUO_E_RESYNC_MAC;
 *          DUO_E_CLONE_SUSPECTED (this device holds a secret the cloud
 *          retired: frozen); the transport's errors; DUO_E_MISUSE (no key).
 * Args:    pin: SECRET, 1..DUO_DEVICE_PIN_MAX bytes (used for the proof, not kept).
 * Out:     done (may be NULL). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_resync(duo_device_ctx *ctx, const uint8_t *pin, size_t pin_len,
                                                     int *done);

/* Asks the cloud for a presentation code for one of the citizen's documents
 * (MAC, no PIN, no secret rotation): single use, valid from issued_at to
 * expires_at (180 s), bound to this key. Ask again when it expires.
 * Returns: DUO_OK; DUO_E_DOC_NOT_FOUND (the registry holds no such document
 *          for the citizen); DUO_E_KEY_REVOKED, DUO_E_KEY_SUSPENDED,
 *          DUO_E_KEY_LOCKED, DUO_E_KEY_NOT_ACTIVE; DUO_E_INVALID_ARG
 *          (doc_type not 1..DUO_DEVICE_DOC_TYPE_MAX of [a-z0-9_]; nothing
 *          sent); DUO_E_MISUSE (no key); DUO_E_BAD_FIELD (the cloud's answer
 *          is malformed); cloud and transport errors.
 * Out:     out (zeroed on failure). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_presentation_code(duo_device_ctx *ctx, const char *doc_type,
                                                                duo_device_presentation *out);
/* The inner channel (issue 12; docs/PROTOCOL.md "Inner channel"): forgets
 * the cloud channel key this context pinned, so that the next online call
 * fetches the cloud's current one over TLS (as at enrolment) and pins it.
 * For a device whose key the operator retired (DUO_E_CHANNEL_STATIC_KEY);
 * call it only then, on the user's say-so: it trusts the TLS path again.
 * Offline. Returns: DUO_OK; DUO_E_INVALID_ARG (ctx NULL). The state becomes
 * dirty (export and persist it) once the new key is pinned. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_channel_unpin(duo_device_ctx *ctx);

/* ------------------------------------------------------------ public key */

/* Returns: DUO_OK, DUO_E_MISUSE (no key).
 * Out:     out: the public key Q, 33 bytes compressed SEC1. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_pubkey(const duo_device_ctx *ctx, uint8_t out[DUO_DEVICE_PUBKEY_BYTES]);

/* The public key as a PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----",
 * id-ecPublicKey, the key's named curve: prime256v1 or secp256k1, uncompressed
 * point), NUL-terminated.
 * Returns: DUO_OK, DUO_E_MISUSE (no key), DUO_E_BUFFER_TOO_SMALL.
 * Out:     pem: the text; pem_len: in the capacity of pem
 *          (DUO_DEVICE_PUBKEY_PEM_MAX suffices), out the length without NUL. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_pubkey_pem(const duo_device_ctx *ctx, char *pem, size_t *pem_len);

/* Returns: DUO_OK, DUO_E_MISUSE (no key).
 * Out:     out: the 16-byte key id assigned by the cloud. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_key_id(const duo_device_ctx *ctx, uint8_t out[DUO_DEVICE_KEY_ID_BYTES]);

/* Returns: the server address stored with the key ("host:port"), or NULL if
 * ctx holds no key. Owned by ctx. */
DUO_API const char *duo_device_server_address(const duo_device_ctx *ctx);

/* ------------------------------------------------------------ state blob */

/* Serializes the key and its secrets into an opaque blob: magic "DUOS",
 * version 1, SHA-256 over everything, then the wrap hook if set. If a new
 * device secret is pending, the blob holds it.
 * Returns: DUO_OK, DUO_E_MISUSE (no key), DUO_E_NOMEM, the wrap hook's error.
 * Out:     blob: SECRET bytes (PIN-masked share, device secret); free with
 *          duo_device_blob_free (wipes). blob_len: its length. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_state_export(duo_device_ctx *ctx, uint8_t **blob, size_t *blob_len);

/* Tells ctx that the blob last exported was stored durably: a pending device
 * secret becomes the one in use, and the state is no longer dirty. Call it
 * only after the durable write succeeded (see the top of this file).
 * Returns: DUO_OK, DUO_E_MISUSE (no key or nothing exported). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_state_persisted(duo_device_ctx *ctx);

/* Returns: 1 if ctx holds changes (a new key, a pending secret, a new PIN
 * mask, app data) that are not stored yet, else 0. */
DUO_API int duo_device_state_dirty(const duo_device_ctx *ctx);

/* Loads a blob made by duo_device_state_export (after the unwrap hook).
 * A blob that is truncated, altered in any byte, of another version or
 * unwrappable is refused whole: ctx is left unchanged.
 * Returns: DUO_OK, DUO_E_STATE_CORRUPT, DUO_E_EXISTS (ctx already has a
 *          key), DUO_E_NOMEM.
 * In:      blob: SECRET bytes; the caller keeps and wipes its copy. */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_state_import(duo_device_ctx *ctx, const uint8_t *blob, size_t blob_len);

/* Wipes and frees a blob from duo_device_state_export. NULL is a no-op. */
DUO_API void duo_device_blob_free(uint8_t *blob, size_t blob_len);

/* Application bytes stored inside the state blob, integrity-protected with
 * it (e.g. the CLI keeps the pinned CA certificate there). Not secret.
 * set: copies data (<= DUO_DEVICE_APP_DATA_MAX bytes; len 0 clears); marks the
 *      state dirty. Returns DUO_OK, DUO_E_MISUSE (no key), DUO_E_INVALID_ARG,
 *      DUO_E_NOMEM.
 * get: *data points into ctx (valid until the next call that changes it),
 *      *len its length (0 if none). Returns DUO_OK, DUO_E_MISUSE (no key). */
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_set_app_data(duo_device_ctx *ctx, const uint8_t *data, size_t len);
DUO_API DUO_WARN_UNUSED_RESULT int duo_device_app_data(const duo_device_ctx *ctx, const uint8_t **data, size_t *len);

/* Method paths the library passes to the transport. */
#define DUO_DEVICE_METHOD_PREFIX "/duosign.v1.DuoSign/"

#ifdef __cplusplus
}
#endif
#endif
