/* duosign: the end-to-end inner channel between the device and the cloud
 * engines (issue 12; docs/PROTOCOL.md "Inner channel").
 *
 * A Noise-NK-shaped handshake over OpenSSL primitives only: X25519
 * (EVP_PKEY), HKDF-SHA256 (EVP_KDF), AES-256-GCM (EVP). The device knows the
 * cloud's static X25519 key (pinned in its state blob); each protocol session
 * (an enrolment, a signature, one lifecycle call) starts with a fresh device
 * ephemeral e:
 *   request 0   e, es      sealed under a key from DH(e, S)
 *   response 0  e_c, ee    sealed under keys from DH(e, S) and DH(e, e_c)
 *   request n / response n under the session keys (one per direction)
 * The device keeps no key after the session: its ephemeral is wiped once the
 * first response is open, so nothing on the phone decrypts past traffic.
 *
 * Every record's AEAD associated data binds the handshake hash (static key,
 * both ephemerals: the session), the direction, the gRPC method name, the key
 * id (or its absence), the channel id and the record counter. Counters are
 * strict: a record is accepted only with the next counter of its direction,
 * so a replayed or reordered record is refused (DUO_E_CHANNEL_REPLAY) and an
 * altered one, or one moved to another method, key or session, fails its
 * tag (DUO_E_CHANNEL_AUTH). A counter advances only when a record opens.
 *
 * Thread-safety: a duo_channel is used by one thread at a time. */
#ifndef DUOSIGN_INNER_CHANNEL_H
#define DUOSIGN_INNER_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/errors.h"
#include "duosign/rng.h"

#define DUO_CH_PUB_BYTES 32 /* X25519 public key */
#define DUO_CH_KEY_BYTES 32 /* X25519 private key, AEAD keys */
#define DUO_CH_ID_BYTES 16  /* channel id: names a session in the cloud's table */
#define DUO_CH_TAG_BYTES 16 /* AES-256-GCM tag, appended to the ciphertext */
#define DUO_CH_METHOD_MAX 64
#define DUO_CH_KEY_ID_BYTES 16
#define DUO_CH_FP_BYTES 16 /* fingerprint: SHA-256(public key), first 16 bytes */
#define DUO_CH_FP_SEP '.'  /* enrolment token = CODE "." 32 lowercase hex digits of the fingerprint */

/* Record directions (in the AAD and the nonce). */
typedef enum { DUO_CH_D2C = 1, DUO_CH_C2D = 2 } duo_ch_dir;

/* A cloud static key: id (its number, for rotation), public and private
 * halves. priv is SECRET: wipe with duo_ch_static_clear. */
typedef struct duo_ch_static {
    uint32_t id;
    uint8_t pub[DUO_CH_PUB_BYTES];
    uint8_t priv[DUO_CH_KEY_BYTES];
} duo_ch_static;

/* One side's channel state. Every key field is SECRET; duo_ch_clear wipes
 * the whole struct. Treat as opaque outside inner_channel.c. */
typedef struct duo_channel {
    int role;        /* 1 device (initiator), 2 cloud (responder) */
    int established; /* the handshake response has been sealed / opened */
    uint32_t static_id;
    uint8_t static_pub[DUO_CH_PUB_BYTES];
    uint8_t e_priv[DUO_CH_KEY_BYTES]; /* device: its ephemeral until response 0 opens */
    uint8_t e_pub[DUO_CH_PUB_BYTES];  /* device ephemeral (both sides) */
    uint8_t ce_pub[DUO_CH_PUB_BYTES]; /* cloud ephemeral (both sides, once known) */
    uint8_t h[32];                    /* handshake hash */
    uint8_t h0[32];                   /* the hash request 0 was sealed with (before e_c) */
    uint8_t ck[32];                   /* chaining key after es */
    uint8_t k0[DUO_CH_KEY_BYTES];     /* request 0's key (from es) */
    uint8_t k_d2c[DUO_CH_KEY_BYTES], k_c2d[DUO_CH_KEY_BYTES];
    uint8_t channel_id[DUO_CH_ID_BYTES];
    uint64_t n_d2c, n_c2d; /* the next record counter in each direction */
} duo_channel;

/* An outer record: what travels outside the ciphertext (proto Sealed). */
typedef struct duo_ch_record {
    uint32_t static_id; /* request 0: the cloud static key it was sealed to */
    int has_ephemeral;  /* request 0 (device e), response 0 (cloud e) */
    uint8_t ephemeral[DUO_CH_PUB_BYTES];
    int has_channel_id; /* requests n >= 1; response 0 (assigns it) */
    uint8_t channel_id[DUO_CH_ID_BYTES];
    int has_key_id; /* routing: the key the request concerns */
    uint8_t key_id[DUO_CH_KEY_ID_BYTES];
    uint64_t counter;  /* record counter in its direction */
    const uint8_t *ct; /* ciphertext || tag */
    size_t ct_len;
    int rekey; /* responses: a hint, not authenticated (it only makes the device ask ChannelKey, sealed) */
} duo_ch_record;

/* Makes a fresh static key (for `duosign-cloud init` and rotation).
 * Returns: DUO_OK; DUO_E_RNG; DUO_E_INTERNAL. Out: *out (priv SECRET). */
DUO_WARN_UNUSED_RESULT int duo_ch_static_generate(duo_ch_static *out, uint32_t id);
/* Recomputes pub from priv (after unsealing). Returns DUO_OK; DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_ch_static_public(duo_ch_static *k);
void duo_ch_static_clear(duo_ch_static *k);

/* Device: starts a session to the pinned static key (fresh ephemeral from
 * rng; NULL: the default RNG).
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_RNG; DUO_E_CHANNEL_STATIC_KEY (the
 *          pinned key is a low-order point: DH gives zero); DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_ch_device_begin(duo_channel *ch, uint32_t static_id,
                                               const uint8_t static_pub[DUO_CH_PUB_BYTES], const duo_rng *rng);

/* Cloud: accepts request 0's outer fields with the static key it names
 * (the caller picks it by rec->static_id). Derives request 0's key only;
 * duo_ch_open then checks the record.
 * Returns: DUO_OK; DUO_E_CHANNEL_MALFORMED (no ephemeral, or a channel id);
 *          DUO_E_CHANNEL_STATIC_KEY (rec->static_id is not sk->id);
 *          DUO_E_CHANNEL_AUTH (a low-order ephemeral); DUO_E_INTERNAL. */
DUO_WARN_UNUSED_RESULT int duo_ch_cloud_accept(duo_channel *ch, const duo_ch_static *sk, const duo_ch_record *rec);

/* Seals one record of this side's direction: fills rec (outer fields) and
 * writes the ciphertext to *ct (malloc'ed, pt_len + DUO_CH_TAG_BYTES; rec->ct
 * points at it; the caller frees). The cloud's first seal is response 0: it
 * makes the cloud ephemeral (rng) and the session keys. key_id may be NULL.
 * Returns: DUO_OK; DUO_E_INVALID_ARG; DUO_E_PROTO_STATE (the device sealing
 *          again before response 0 opened); DUO_E_NOMEM; DUO_E_RNG;
 *          DUO_E_INTERNAL. On success the direction's counter advances. */
DUO_WARN_UNUSED_RESULT int duo_ch_seal(duo_channel *ch, duo_ch_record *rec, uint8_t **ct, const char *method,
                                       const uint8_t *key_id, const uint8_t *pt, size_t pt_len, const duo_rng *rng);

/* Opens one record of the peer's direction. method and the record's key id
 * are bound (a record moved to another method or key fails its tag).
 * Returns: DUO_OK with *pt (malloc'ed, *pt_len bytes: SECRET-bearing, wipe and
 *          free); DUO_E_CHANNEL_REPLAY (counter not the next one);
 *          DUO_E_CHANNEL_AUTH (tag fails: altered, or another method, key,
 *          session or static key); DUO_E_CHANNEL_MALFORMED (outer fields
 *          missing or unexpected, ciphertext shorter than a tag);
 *          DUO_E_NOMEM; DUO_E_INTERNAL. Nothing changes on failure. */
DUO_WARN_UNUSED_RESULT int duo_ch_open(duo_channel *ch, uint8_t **pt, size_t *pt_len, const char *method,
                                       const duo_ch_record *rec);

/* Wipes the state. NULL-safe. */
void duo_ch_clear(duo_channel *ch);

/* For a holder of a session's keys (the oracle test, "given the channel
 * keys"): opens a record of either direction of an established session
 * without checking or advancing its counters; request 0 (a record with an
 * ephemeral) under its own key. Never used by the device or the cloud.
 * Returns as duo_ch_open. */
DUO_WARN_UNUSED_RESULT int duo_ch_peek(const duo_channel *ch, duo_ch_dir dir, uint8_t **pt, size_t *pt_len,
                                       const char *method, const duo_ch_record *rec);

#endif
