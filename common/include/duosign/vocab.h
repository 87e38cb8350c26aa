/* duosign: the words every layer shares, defined once.
 *
 * The wire layer (common/wire/wire.h), the engines, the key store
 * (cloud_half/store/keystore.h) and the daemon all speak of key ids, session
 * ids, device secrets and key states; they take the names from here instead
 * of each defining its own. Curve sizes (DUO_POINT_BYTES, DUO_SCALAR_BYTES)
 * are in duosign/curve.h. No I/O, no functions: only names. */
#ifndef DUOSIGN_VOCAB_H
#define DUOSIGN_VOCAB_H

#define DUO_KEY_ID_BYTES 16
#define DUO_NONCE_BYTES 32
#define DUO_SID_BYTES 32
#define DUO_MAC_BYTES 32
#define DUO_DIGEST_BYTES 32
#define DUO_DEVICE_SECRET_BYTES 32 /* the rotating MAC secret (DESIGN 3.5) */
#define DUO_TOKEN_MAX 128          /* enrolment token bytes */
#define DUO_REVOCATION_CODE_MAX 64 /* characters, without the NUL */
#define DUO_CITIZEN_ID_MAX 64      /* bytes, without the NUL */

/* The states of a key, as the wire reports them (proto KeyState, same
 * numbers) and as the key store keeps them (by name, duo_key_state_name).
 * A new state is a new row here, in proto/duosign.proto and in the store's
 * name table and schema CHECK. */
typedef enum duo_key_state {
    DUO_KEY_STATE_UNSPECIFIED = 0,
    DUO_KEY_STATE_PENDING = 1,   /* enrolment under way */
    DUO_KEY_STATE_ACTIVE = 2,    /* signs */
    DUO_KEY_STATE_LOCKED = 3,    /* wrong PINs: until locked_until */
    DUO_KEY_STATE_SUSPENDED = 4, /* clone or attack suspected: final */
    DUO_KEY_STATE_REVOKED = 5    /* final; secrets destroyed */
} duo_key_state;

/* The curve of a key, fixed at enrolment (DESIGN 8.1), on the wire (proto
 * Curve, same numbers), in the store's keys.curve column and in the device
 * state blob. 0 is never stored: rows and blobs written before curves existed
 * read as DUO_CURVE_SECP256K1. A new curve is a row here, in proto, in
 * duo_curve_name and a backend in common/src/curve_*.c. */
typedef enum duo_curve {
    DUO_CURVE_UNSPECIFIED = 0,
    DUO_CURVE_SECP256K1 = 1, /* libsecp256k1; the only curve before issue 15 */
    DUO_CURVE_P256 = 2       /* NIST P-256 / prime256v1, over OpenSSL; the default for new keys */
} duo_curve;
#define DUO_CURVE_DEFAULT DUO_CURVE_P256
#define DUO_CURVE_COUNT 3 /* one past the largest id: arrays indexed by duo_curve */

/* The role of a key (DESIGN 8.2; proto KeyRole, same numbers; keys.role
 * from schema v7; the device state blob v3). 0 is a key enrolled before
 * roles: it signs documents only, like before. */
typedef enum duo_key_role {
    DUO_KEY_ROLE_UNSPECIFIED = 0, /* legacy single key */
    DUO_KEY_ROLE_AUTH = 1,        /* logins; PIN1; certificate keyUsage digitalSignature */
    DUO_KEY_ROLE_SIGN = 2         /* documents; PIN2; certificate keyUsage nonRepudiation */
} duo_key_role;
#define DUO_KEY_ROLE_COUNT 3

/* What a signature is for (proto SignPurpose, same numbers), carried in the
 * SignStart MAC transcript. The cloud allows: DOCUMENT on sign and legacy
 * keys, LOGIN on auth keys, CSR on every key (it checks the digest is
 * SHA-256 of a CertificationRequestInfo holding the key's own point). */
typedef enum duo_sign_purpose {
    DUO_SIGN_PURPOSE_UNSPECIFIED = 0, /* a device from before purposes: a document, legacy keys only */
    DUO_SIGN_PURPOSE_DOCUMENT = 1,
    DUO_SIGN_PURPOSE_LOGIN = 2, /* the cloud computes the digest (duosign/login_digest.h) */
    DUO_SIGN_PURPOSE_CSR = 3    /* the digest is SHA-256 of the CSR info the request carries */
} duo_sign_purpose;
#define DUO_SIGN_PURPOSE_COUNT 4
#define DUO_CSR_INFO_MAX 4096      /* bytes of a CertificationRequestInfo in SignStart */
#define DUO_LOGIN_CHALLENGE_MIN 16 /* bytes of a login challenge in SignStart */
#define DUO_LOGIN_CHALLENGE_MAX 256

#endif
