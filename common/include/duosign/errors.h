/* duosign: the one error table.
 *
 * DUO_ERROR_MAP(X) lists every error once. From it come the enum, duo_strerror(),
 * duo_err_name(), duo_err_category() and duo_err_grpc_status(). Numbers are
 * stable: never renumber, only append. DUO_OK is 0; failures are negative.
 *
 * X(NAME, number, CATEGORY, grpc_status, exit, "message a user can act on")
 * exit: the exit status of the duosign CLI for a command that fails with
 * the code (docs/CLI.md, "Exit codes"; duo_err_exit_code): 1 unless the
 * user has something specific to do.
 * gRPC status numbers: 3 INVALID_ARGUMENT, 4 DEADLINE_EXCEEDED, 5 NOT_FOUND,
 * 6 ALREADY_EXISTS, 7 PERMISSION_DENIED, 8 RESOURCE_EXHAUSTED,
 * 9 FAILED_PRECONDITION, 10 ABORTED, 13 INTERNAL, 14 UNAVAILABLE,
 * 16 UNAUTHENTICATED.
 */
#ifndef DUOSIGN_ERRORS_H
#define DUOSIGN_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define DUO_WARN_UNUSED_RESULT __attribute__((warn_unused_result))
#else
#define DUO_WARN_UNUSED_RESULT
#endif

#if defined(DUO_BUILDING_SHARED) && defined(__GNUC__)
#define DUO_API __attribute__((visibility("default")))
#else
#define DUO_API
#endif

#define DUO_ERROR_MAP(X)                                                                                             \
    X(OK, 0, NONE, 0, 0, "success")                                                                                  \
    /* usage and resources */                                                                                        \
    X(E_MISUSE, -1, USAGE, 13, 1, "API misuse (a bug in the caller)")                                                \
    X(E_INVALID_ARG, -2, USAGE, 3, 1, "invalid argument")                                                            \
    X(E_NOMEM, -3, RESOURCE, 8, 1, "out of memory")                                                                  \
    X(E_INTERNAL, -4, INTERNAL, 13, 1, "internal error")                                                             \
    X(E_RNG, -5, INTERNAL, 13, 1, "random number generator failed")                                                  \
    X(E_BUFFER_TOO_SMALL, -6, USAGE, 3, 1, "output buffer too small")                                                \
    X(E_UNSUPPORTED, -7, USAGE, 3, 1, "unsupported parameter or version")                                            \
    /* protocol: malformed or unexpected messages */                                                                 \
    X(E_DECODE, -10, PROTO, 3, 1, "message could not be decoded")                                                    \
    X(E_PROTO_STATE, -11, PROTO, 9, 1, "message not expected in this protocol state")                                \
    X(E_MSG_TOO_LARGE, -12, PROTO, 8, 1, "message exceeds the size limit")                                           \
    X(E_BAD_FIELD, -13, PROTO, 3, 1, "message field has the wrong length or value")                                  \
    X(E_SESSION_FAILED, -14, PROTO, 9, 1, "session already failed; start a new one")                                 \
    X(E_SESSION_MISMATCH, -15, PROTO, 3, 1, "message belongs to another session or key")                             \
    X(E_SESSION_SUPERSEDED, -16, PROTO, 9, 1, "session replaced by a newer start; continue that one")                \
    /* cryptographic checks on values received from the peer */                                                      \
    X(E_BAD_POINT, -20, CRYPTO, 3, 1, "invalid curve point")                                                         \
    X(E_BAD_SCALAR, -21, CRYPTO, 3, 1, "scalar out of range")                                                        \
    X(E_BAD_PROOF, -22, CRYPTO, 3, 1, "zero-knowledge proof failed to verify")                                       \
    X(E_BAD_COMMITMENT, -23, CRYPTO, 3, 1, "commitment opening does not match")                                      \
    X(E_BAD_CIPHERTEXT, -24, CRYPTO, 3, 1, "invalid Paillier ciphertext")                                            \
    X(E_BAD_MODULUS, -25, CRYPTO, 3, 1, "Paillier modulus rejected")                                                 \
    X(E_BAD_SIGNATURE, -26, CRYPTO, 3, 1, "signature does not verify")                                               \
    X(E_PDL_MISMATCH, -27, CRYPTO, 3, 1, "PDL check failed: peer's values are inconsistent")                         \
    X(E_WRONG_PIN, -30, AUTH, 7, 4, "wrong PIN")                                                                     \
    X(E_PEER_CHEATED, -31, CRYPTO, 10, 1, "peer sent a malformed signature share; the key is frozen")                \
    /* policy (cloud) */                                                                                             \
    X(E_KEY_LOCKED, -40, POLICY, 9, 5, "key is locked after too many wrong PINs; wait")                              \
    X(E_KEY_REVOKED, -41, POLICY, 9, 6, "key is revoked; enrol again")                                               \
    X(E_KEY_SUSPENDED, -42, POLICY, 9, 6, "key is suspended after an attack; enrol again")                           \
    X(E_CLONE_SUSPECTED, -43, POLICY, 7, 7, "a copy of this device was detected; the key is frozen")                 \
    X(E_UNAUTHENTICATED, -44, AUTH, 16, 16, "request authentication failed")                                         \
    X(E_TOKEN_INVALID, -45, AUTH, 16, 13, "enrolment token unknown or already used")                                 \
    X(E_TOKEN_EXPIRED, -46, AUTH, 16, 14, "enrolment token expired; ask for a new one")                              \
    X(E_SESSION_BUSY, -47, POLICY, 10, 1, "another session is active for this key; retry")                           \
    X(E_SESSION_EXPIRED, -48, POLICY, 9, 1, "session expired; start again")                                          \
    X(E_NOT_FOUND, -49, POLICY, 5, 1, "no such key or session")                                                      \
    /* I/O and storage */                                                                                            \
    X(E_IO, -50, IO, 13, 1, "input/output error")                                                                    \
    X(E_UNAVAILABLE, -51, IO, 14, 8, "server unreachable; check the address and network")                            \
    X(E_TIMEOUT, -52, IO, 4, 8, "operation timed out")                                                               \
    X(E_STATE_CORRUPT, -53, IO, 3, 9, "stored state is corrupted or truncated")                                      \
    X(E_STORE, -54, IO, 13, 15, "key store error")                                                                   \
    X(E_PERMISSION, -55, IO, 7, 1, "permission denied")                                                              \
    X(E_EXISTS, -56, USAGE, 6, 1, "already exists")                                                                  \
    X(E_CONFLICT, -57, IO, 10, 1, "stored record changed concurrently; retry")                                       \
    /* the client side of the transport (-60..): what the user must do differs */                                    \
    X(E_TLS_UNTRUSTED, -60, IO, 14, 11,                                                                              \
      "TLS handshake failed: the server's certificate is not trusted by the pinned CA")                              \
    X(E_SERVER_BUSY, -61, IO, 14, 12, "server busy (sessions full or no key ready); retry later")                    \
    X(E_BAD_CA, -62, USAGE, 3, 3, "the CA certificate file is not a PEM certificate")                                \
    /* key roles, signing purposes, certificates in enrolment (-64..-69; issue 16, docs/PROTOCOL.md) */              \
    X(E_ROLE_PURPOSE, -64, POLICY, 9, 19,                                                                            \
      "this key's role does not sign for that purpose (auth key: logins; sign key: documents)")                      \
    X(E_PURPOSE_DIGEST, -65, CRYPTO, 3, 1,                                                                           \
      "the digest is not the one the signing purpose defines (CSR info or login challenge)")                         \
    X(E_TOKEN_ROLE_USED, -66, AUTH, 16, 13, "this enrolment token has already enrolled a key of that role")          \
    X(E_NO_CERT, -67, POLICY, 5, 20, "no certificate for this key yet; ask the operator, then cert --fetch")         \
    /* certificates and the issuing CA (-70..; docs/CERTIFICATES.md) */                                              \
    X(E_CSR_MALFORMED, -70, CRYPTO, 3, 1, "certificate request could not be parsed")                                 \
    X(E_CSR_BAD_SIGNATURE, -71, CRYPTO, 3, 1, "certificate request is not signed by its own key")                    \
    X(E_CSR_KEY_MISMATCH, -72, CRYPTO, 3, 1, "certificate request's key is not the stored key")                      \
    X(E_KEY_NOT_ACTIVE, -73, POLICY, 9, 1, "key is not active; no certificate for it")                               \
    X(E_CA_EXPIRED, -74, POLICY, 9, 1, "the issuing CA certificate has expired or is not yet valid")                 \
    X(E_CA_MISMATCH, -75, INTERNAL, 13, 1, "the issuing CA's certificate and private key differ")                    \
    X(E_NO_CA, -76, POLICY, 9, 1, "no issuing CA in this store (made with --no-ca)")                                 \
    X(E_CERT_KEY_MISMATCH, -77, CRYPTO, 3, 1, "certificate's public key is not the stored key")                      \
    /* the cloud's key-encryption key (-80..): operator errors at start or rotation */                               \
    X(E_KEK_UNAVAILABLE, -80, IO, 14, 1,                                                                             \
      "the key-encryption key cannot be reached (PKCS#11 module, token or key object missing)")                      \
    X(E_KEK_PIN, -81, AUTH, 16, 1, "the PKCS#11 token refused the PIN of the key-encryption key")                    \
    X(E_KEK_UNKNOWN, -82, IO, 13, 9,                                                                                 \
      "a value is sealed under a key-encryption key this data directory no longer names")                            \
    X(E_KEK_WRONG, -83, IO, 13, 9, "the key-encryption key is not the one this data directory was sealed with")      \
    /* curves (issue 15) */                                                                                          \
    X(E_CURVE_REFUSED, -63, POLICY, 9, 17, "the server does not enrol keys on this curve; choose another --curve")   \
    /* the store's own safety checks (-90..; docs/STORE.md) */                                                       \
    X(E_POLICY_MAC, -90, IO, 13, 15, "a key's stored policy fields fail their MAC (edited outside duosign)")         \
    X(E_STORE_ROLLED_BACK, -91, IO, 13, 18,                                                                          \
      "store is older than its high-water mark (restored or WAL lost); see duosign-cloud restore")                   \
    X(E_DAEMON_RUNNING, -92, USAGE, 9, 1, "the daemon is running on this data directory; stop it first")             \
    /* the end-to-end inner channel (-110..; issue 12, docs/PROTOCOL.md "Inner channel") */                          \
    X(E_CHANNEL_AUTH, -110, CRYPTO, 3, 1,                                                                            \
      "inner channel record failed authentication (altered, or moved to another method, key or session)")            \
    X(E_CHANNEL_REPLAY, -111, PROTO, 3, 1, "inner channel record replayed or out of order")                          \
    X(E_CHANNEL_UNKNOWN, -112, PROTO, 9, 1, "inner channel session unknown or expired; start again")                 \
    X(E_CHANNEL_STATIC_KEY, -113, AUTH, 9, 22,                                                                       \
      "the cloud no longer holds the channel key this device pinned (retired); it must be pinned again")             \
    X(E_CHANNEL_REQUIRED, -114, POLICY, 9, 22,                                                                       \
      "this server refuses plaintext requests (serve --require-channel); update the app")                            \
    X(E_CHANNEL_MALFORMED, -115, PROTO, 3, 1, "inner channel envelope malformed")                                    \
    X(E_CHANNEL_REQUIRED_FOR_KEY, -116, POLICY, 9, 22,                                                               \
      "this key has moved to the inner channel; its plaintext requests are refused (update the app)")                \
    X(E_CHANNEL_FINGERPRINT, -117, AUTH, 16, 22,                                                                     \
      "the cloud's channel key does not match the enrolment token's fingerprint (wrong server or token)")            \
    X(E_CHANNEL_FP_MALFORMED, -118, USAGE, 3, 22,                                                                    \
      "the enrolment token's channel-key fingerprint is malformed (after its '.': 32 hex digits); copy it again")    \
    /* relying parties (-120..-139; docs/RELYING_PARTIES.md) */                                                      \
    X(E_RP_UNKNOWN, -120, AUTH, 16, 1, "the relying party's client certificate is not registered (or removed)")      \
    X(E_RP_EXISTS, -121, USAGE, 6, 23, "a relying party with this name or certificate is already registered")        \
    X(E_RP_NOT_FOUND, -122, USAGE, 5, 23, "no such relying party")                                                   \
    X(E_RP_DISPLAY_TEXT, -123, USAGE, 3, 1, "display text is empty, longer than 200 bytes or not UTF-8")             \
    X(E_RP_CHALLENGE, -124, USAGE, 3, 1, "the relying party's challenge must be 32 to 64 bytes")                     \
    X(E_RP_DIGEST, -125, USAGE, 3, 1, "the digest's length does not match its hash algorithm")                       \
    X(E_RP_REQUEST_ID, -126, USAGE, 3, 1, "request id must be 1..64 printable ASCII characters")                     \
    X(E_RP_IDEMPOTENCY, -127, USAGE, 6, 1, "this request id was used with different fields")                         \
    X(E_RP_SESSION_UNKNOWN, -128, POLICY, 5, 24, "no such relying-party session (unknown, another RP's, or erased)") \
    X(E_RP_TOO_MANY, -129, RESOURCE, 8, 25, "too many open requests for this relying party or citizen; retry later") \
    X(E_RP_REQUEST_CLOSED, -130, POLICY, 9, 24, "the request is no longer waiting (answered, cancelled or expired)") \
    X(E_RP_WRONG_CITIZEN, -131, AUTH, 7, 1, "the request is addressed to another citizen")                           \
    X(E_RP_WRONG_ROLE, -132, POLICY, 9, 1, "the request needs the citizen's other key (auth or sign)")               \
    X(E_RP_CITIZEN_ID, -133, USAGE, 3, 1, "citizen id must be 1..64 printable ASCII characters")                     \
    X(E_RP_NAME, -134, USAGE, 3, 1, "relying party name must be 1..64 printable characters")                         \
    X(E_RP_LINK, -135, USAGE, 3, 24, "the link is malformed, unknown, expired or already claimed")                   \
    X(E_RP_UNIMPLEMENTED, -136, USAGE, 12, 1, "this relying-party call is not implemented by this daemon")           \
    /* citizen documents and presentation codes (issue 19, -140..-149) */                                            \
    X(E_DOC_NOT_FOUND, -140, POLICY, 5, 26, "the citizen has no document of this type in the registry")              \
    X(E_DOC_ATTR, -141, USAGE, 3, 3, "document attribute is malformed (name=value, see docs/DOCUMENTS.md)")          \
    X(E_CODE_UNKNOWN, -142, POLICY, 5, 26, "no such presentation code (mistyped, or never issued)")                  \
    X(E_CODE_EXPIRED, -143, POLICY, 9, 26, "presentation code expired (they live 180 s); ask for a new one")         \
    X(E_CODE_USED, -144, POLICY, 9, 26, "presentation code was already redeemed (single use)")                       \
    X(E_CODE_DOC_MISMATCH, -145, POLICY, 9, 26, "presentation code is for another document type")                    \
    X(E_RATE_LIMITED, -146, POLICY, 8, 12, "too many redemptions from this relying party; slow down")                \
    X(E_CODE_RENDER, -147, INTERNAL, 13, 1, "the code could not be drawn (QR encoding or PNG writing failed)")       \
    /* duosign-oidc (issue 18; docs/OIDC.md) */                                                                      \
    X(E_OIDC_NO_STORE, -150, USAGE, 9, 27, "this directory holds no duosign-oidc store; run duosign-oidc init")      \
    X(E_OIDC_REDIRECT_URI, -151, USAGE, 3, 1,                                                                        \
      "a redirect URI must be absolute https (http only for localhost), without a fragment")                         \
    X(E_OIDC_CLIENT_UNKNOWN, -152, USAGE, 5, 1, "no such OIDC client")                                               \
    X(E_OIDC_NO_TLS, -153, USAGE, 3, 1, "HTTPS needs --tls-cert and --tls-key (or --insecure-http behind a proxy)")  \
    X(E_OIDC_LOGIN_DIGEST, -154, CRYPTO, 3, 1, "the signer's login signature is not over this login's challenge")    \
    /* resynchronisation after a restore of the cloud's store (issue 20, -155..-159; SECURITY 1.10) */               \
    X(E_RESYNC_POSSIBLE, -155, AUTH, 16, 28,                                                                         \
      "the cloud's store was restored: this device may resynchronise once with its PIN (duosign resync)")            \
    X(E_RESYNC_NOT_OPEN, -156, POLICY, 9, 28,                                                                        \
      "no resynchronisation is open for this key (no restore since); enrol the device again")                        \
    X(E_RESYNC_USED, -157, POLICY, 9, 28,                                                                            \
      "this key already resynchronised after the restore; if this device did not, revoke the key and enrol again")   \
    X(E_RESYNC_EPOCH, -158, PROTO, 3, 28,                                                                            \
      "the resynchronisation names another restore epoch than the cloud's; run duosign resync again")                \
    X(E_RESYNC_MAC, -159, AUTH, 3, 28,                                                                               \
      "the resynchronisation request was altered on the way (its MAC does not verify); retry")

enum {
#define DUO__ERR_ENUM(name, num, cat, grpc, ex, msg) DUO_##name = (num),
    DUO_ERROR_MAP(DUO__ERR_ENUM)
#undef DUO__ERR_ENUM
};

/* Error categories: callers decide retries and status mapping on these. */
typedef enum {
    DUO_CAT_NONE = 0,
    DUO_CAT_USAGE,
    DUO_CAT_PROTO,
    DUO_CAT_CRYPTO,
    DUO_CAT_AUTH,
    DUO_CAT_POLICY,
    DUO_CAT_IO,
    DUO_CAT_RESOURCE,
    DUO_CAT_INTERNAL
} duo_err_category_t;

/* Returns: a static, human-readable message; "unknown error" for unknown codes. */
DUO_API const char *duo_strerror(int err);
/* Returns: the symbolic name ("DUO_E_BAD_PROOF"); "DUO_E_UNKNOWN" if unknown. */
DUO_API const char *duo_err_name(int err);
/* Returns: the category of err; DUO_CAT_INTERNAL for unknown codes. */
DUO_API duo_err_category_t duo_err_category(int err);
/* Returns: the gRPC status code (0..16) the servers send for err; 2 (UNKNOWN)
 * for unknown codes. */
DUO_API int duo_err_grpc_status(int err);
/* Returns: the duosign CLI's exit status for a command failing with err
 * (docs/CLI.md): 0 for DUO_OK, 1 for unknown codes and those with no
 * specific action. */
DUO_API int duo_err_exit_code(int err);
/* Returns: 1 if err is a known code, else 0. */
DUO_API int duo_err_is_known(int err);

#ifdef __cplusplus
}
#endif
#endif
