/* duosign: the end-to-end inner channel (inner_channel.h). OpenSSL
 * primitives only: X25519 through EVP_PKEY, HKDF-SHA256 through EVP_KDF,
 * AES-256-GCM through EVP_CIPHER. The key schedule:
 *   h0  = SHA-256(PROTO || static_id || S || e)
 *   es  = X25519(e, S)
 *   ck  = HKDF-Extract(salt = h0, es)
 *   k0  = HKDF-Expand(ck, "duosign/v1/inner/k0", 32)       request 0
 *   h   = SHA-256(h0 || e_c)
 *   ee  = X25519(e, e_c)
 *   k_d2c || k_c2d || channel_id = HKDF(salt = h, ck || ee, "duosign/v1/inner/keys")
 * Record nonce: direction (4 bytes) || counter (8 bytes, big-endian); each
 * key seals one direction, so a (key, nonce) pair is never used twice. */
#include "duosign/inner_channel.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "duosign/mem.h"

#define PROTO_NAME "duosign/v1/inner/NK/X25519/AESGCM/SHA256"
#define AAD_TAG "duosign/v1/inner/rec"
#define AAD_MAX (sizeof AAD_TAG + 32 + 1 + 1 + DUO_CH_METHOD_MAX + 1 + DUO_CH_KEY_ID_BYTES + DUO_CH_ID_BYTES + 8)

/* ------------------------------------------------------------- primitives */

static int sha256_parts(uint8_t out[32], const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl,
                        const void *d, size_t dl) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    unsigned int n = 0;
    int ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(m, a, al) == 1 &&
             (bl == 0 || EVP_DigestUpdate(m, b, bl) == 1) && (cl == 0 || EVP_DigestUpdate(m, c, cl) == 1) &&
             (dl == 0 || EVP_DigestUpdate(m, d, dl) == 1) && EVP_DigestFinal_ex(m, out, &n) == 1 && n == 32;
    EVP_MD_CTX_free(m);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

/* HKDF-SHA256 in the given mode (EXTRACT_ONLY or EXPAND_ONLY or both). */
static int hkdf(uint8_t *out, size_t out_len, int mode, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                size_t ikm_len, const char *info) {
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM p[6], *q = p;
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len) *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    if (info) *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    *q = OSSL_PARAM_construct_end();
    int ok = kc && EVP_KDF_derive(kc, out, out_len, p) == 1;
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

/* X25519(priv, peer) into out; pub is priv's public key. The key is
 * imported with its public half: given the private half alone OpenSSL
 * computes the public one, a whole scalar multiplication (~29 us here)
 * spent again on every exchange (issue 22). A pub that does not match priv
 * changes nothing: the exchange uses priv and peer only. A low-order peer
 * point gives the all-zero secret, which OpenSSL refuses:
 * DUO_E_CHANNEL_AUTH. */
static int x25519(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32], const uint8_t peer[32]) {
    OSSL_PARAM kp[] = {OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, (void *)priv, 32),
                       OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)pub, 32),
                       OSSL_PARAM_construct_end()};
    EVP_PKEY_CTX *ic = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    EVP_PKEY *mine = NULL;
    if (ic && EVP_PKEY_fromdata_init(ic) == 1 && EVP_PKEY_fromdata(ic, &mine, EVP_PKEY_KEYPAIR, kp) != 1) mine = NULL;
    EVP_PKEY_CTX_free(ic);
    EVP_PKEY *theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, 32);
    EVP_PKEY_CTX *pc = mine ? EVP_PKEY_CTX_new(mine, NULL) : NULL;
    size_t n = 32;
    int r = DUO_E_INTERNAL;
    if (!pc || !theirs || EVP_PKEY_derive_init(pc) != 1 || EVP_PKEY_derive_set_peer(pc, theirs) != 1) goto out;
    r = (EVP_PKEY_derive(pc, out, &n) == 1 && n == 32 && !duo_ct_is_zero(out, 32)) ? DUO_OK : DUO_E_CHANNEL_AUTH;
out:
    if (r != DUO_OK) duo_memzero(out, 32);
    EVP_PKEY_CTX_free(pc);
    EVP_PKEY_free(mine); /* clears its private half */
    EVP_PKEY_free(theirs);
    return r;
}

/* A fresh X25519 key pair. */
static int keypair(uint8_t priv[32], uint8_t pub[32], const duo_rng *rng) {
    int r = duo_rng_bytes(rng, priv, 32);
    if (r != DUO_OK) return r;
    EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
    size_t n = 32;
    r = (k && EVP_PKEY_get_raw_public_key(k, pub, &n) == 1 && n == 32) ? DUO_OK : DUO_E_INTERNAL;
    EVP_PKEY_free(k);
    if (r != DUO_OK) duo_memzero(priv, 32);
    return r;
}

/* AES-256-GCM one shot; enc = 1 seals (out: pt_len + tag), 0 opens. */
static int gcm(uint8_t *out, int enc, const uint8_t key[32], const uint8_t nonce[12], const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t in_len) {
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    size_t body = enc ? in_len : in_len - DUO_CH_TAG_BYTES;
    int n = 0, r = DUO_E_INTERNAL;
    if (!c || in_len > (size_t)INT32_MAX || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce, enc) != 1)
        goto out;
    if (EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1) goto out;
    if (body && EVP_CipherUpdate(c, out, &n, in, (int)body) != 1) goto out;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, DUO_CH_TAG_BYTES, (void *)(in + body)) != 1) goto out;
    if (EVP_CipherFinal_ex(c, out + body, &n) != 1) {
        r = enc ? DUO_E_INTERNAL : DUO_E_CHANNEL_AUTH;
        goto out;
    }
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, DUO_CH_TAG_BYTES, out + body) != 1) goto out;
    r = DUO_OK;
out:
    if (r != DUO_OK) duo_memzero(out, body);
    EVP_CIPHER_CTX_free(c);
    return r;
}

/* ------------------------------------------------------------ key schedule */

static void be32(uint8_t o[4], uint32_t v) {
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void be64(uint8_t o[8], uint64_t v) {
    for (int i = 0; i < 8; i++) o[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* h0, ck and k0 from es (both sides). */
static int schedule_es(duo_channel *ch, const uint8_t es[32]) {
    uint8_t sid[4];
    be32(sid, ch->static_id);
    int r = sha256_parts(ch->h, PROTO_NAME, sizeof PROTO_NAME - 1, sid, 4, ch->static_pub, 32, ch->e_pub, 32);
    if (r == DUO_OK) memcpy(ch->h0, ch->h, 32);
    if (r == DUO_OK) r = hkdf(ch->ck, 32, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ch->h, 32, es, 32, NULL);
    if (r == DUO_OK) r = hkdf(ch->k0, 32, EVP_KDF_HKDF_MODE_EXPAND_ONLY, NULL, 0, ch->ck, 32, "duosign/v1/inner/k0");
    return r;
}

/* The session keys and channel id from ee (both sides, once e_c is known). */
static int schedule_ee(duo_channel *ch, const uint8_t ee[32]) {
    uint8_t ikm[64], okm[2 * DUO_CH_KEY_BYTES + DUO_CH_ID_BYTES];
    int r = sha256_parts(ch->h, ch->h, 32, ch->ce_pub, 32, NULL, 0, NULL, 0);
    memcpy(ikm, ch->ck, 32);
    memcpy(ikm + 32, ee, 32);
    if (r == DUO_OK)
        r = hkdf(okm, sizeof okm, EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ch->h, 32, ikm, 64, "duosign/v1/inner/keys");
    if (r == DUO_OK) {
        memcpy(ch->k_d2c, okm, 32);
        memcpy(ch->k_c2d, okm + 32, 32);
        memcpy(ch->channel_id, okm + 64, DUO_CH_ID_BYTES);
        ch->established = 1;
    }
    duo_memzero(ikm, sizeof ikm);
    duo_memzero(okm, sizeof okm);
    return r;
}

/* The associated data of one record. Lengths are fixed or prefixed, so two
 * different tuples never give the same bytes. */
static int build_aad(uint8_t *aad, size_t *aad_len, const duo_channel *ch, duo_ch_dir dir, const char *method,
                     const duo_ch_record *rec) {
    size_t ml = method ? strlen(method) : 0, n = 0;
    if (ml == 0 || ml > DUO_CH_METHOD_MAX) return DUO_E_INVALID_ARG;
    memcpy(aad + n, AAD_TAG, sizeof AAD_TAG);
    n += sizeof AAD_TAG;
    memcpy(aad + n, ch->h, 32);
    n += 32;
    aad[n++] = (uint8_t)dir;
    aad[n++] = (uint8_t)ml;
    memcpy(aad + n, method, ml);
    n += ml;
    aad[n++] = rec->has_key_id ? 1 : 0;
    if (rec->has_key_id)
        memcpy(aad + n, rec->key_id, DUO_CH_KEY_ID_BYTES);
    else
        memset(aad + n, 0, DUO_CH_KEY_ID_BYTES);
    n += DUO_CH_KEY_ID_BYTES;
    memcpy(aad + n, ch->established ? ch->channel_id : (const uint8_t[DUO_CH_ID_BYTES]){0}, DUO_CH_ID_BYTES);
    n += DUO_CH_ID_BYTES;
    be64(aad + n, rec->counter);
    n += 8;
    *aad_len = n;
    return DUO_OK;
}

static void make_nonce(uint8_t nonce[12], duo_ch_dir dir, uint64_t counter) {
    be32(nonce, (uint32_t)dir);
    be64(nonce + 4, counter);
}

/* ------------------------------------------------------------------ keys */

int duo_ch_static_generate(duo_ch_static *out, uint32_t id) {
    if (!out) return DUO_E_INVALID_ARG;
    out->id = id;
    return keypair(out->priv, out->pub, NULL);
}

int duo_ch_static_public(duo_ch_static *k) {
    if (!k) return DUO_E_INVALID_ARG;
    EVP_PKEY *p = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, k->priv, 32);
    size_t n = 32;
    int ok = p && EVP_PKEY_get_raw_public_key(p, k->pub, &n) == 1 && n == 32;
    EVP_PKEY_free(p);
    return ok ? DUO_OK : DUO_E_INTERNAL;
}

void duo_ch_static_clear(duo_ch_static *k) {
    if (k) duo_memzero(k, sizeof *k);
}

void duo_ch_clear(duo_channel *ch) {
    if (ch) duo_memzero(ch, sizeof *ch);
}

/* ------------------------------------------------------------- handshake */

int duo_ch_device_begin(duo_channel *ch, uint32_t static_id, const uint8_t static_pub[DUO_CH_PUB_BYTES],
                        const duo_rng *rng) {
    if (!ch || !static_pub) return DUO_E_INVALID_ARG;
    uint8_t es[32];
    duo_ch_clear(ch);
    ch->role = 1;
    ch->static_id = static_id;
    memcpy(ch->static_pub, static_pub, 32);
    int r = keypair(ch->e_priv, ch->e_pub, rng);
    if (r == DUO_OK) {
        r = x25519(es, ch->e_priv, ch->e_pub, static_pub);
        if (r == DUO_E_CHANNEL_AUTH) r = DUO_E_CHANNEL_STATIC_KEY;
    }
    if (r == DUO_OK) r = schedule_es(ch, es);
    duo_memzero(es, sizeof es);
    if (r != DUO_OK) duo_ch_clear(ch);
    return r;
}

int duo_ch_cloud_accept(duo_channel *ch, const duo_ch_static *sk, const duo_ch_record *rec) {
    if (!ch || !sk || !rec) return DUO_E_INVALID_ARG;
    if (!rec->has_ephemeral || rec->has_channel_id || rec->counter != 0) return DUO_E_CHANNEL_MALFORMED;
    if (rec->static_id != sk->id) return DUO_E_CHANNEL_STATIC_KEY;
    uint8_t es[32];
    duo_ch_clear(ch);
    ch->role = 2;
    ch->static_id = sk->id;
    memcpy(ch->static_pub, sk->pub, 32);
    memcpy(ch->e_pub, rec->ephemeral, 32);
    int r = x25519(es, sk->priv, sk->pub, rec->ephemeral);
    if (r == DUO_OK) r = schedule_es(ch, es);
    duo_memzero(es, sizeof es);
    if (r != DUO_OK) duo_ch_clear(ch);
    return r;
}

/* Cloud, before response 0: its ephemeral and the session keys. The
 * ephemeral's private half lives only in this function. */
static int cloud_respond(duo_channel *ch, const duo_rng *rng) {
    uint8_t ce[32], ee[32];
    int r = keypair(ce, ch->ce_pub, rng);
    if (r == DUO_OK) r = x25519(ee, ce, ch->ce_pub, ch->e_pub);
    if (r == DUO_OK) r = schedule_ee(ch, ee);
    duo_memzero(ce, sizeof ce);
    duo_memzero(ee, sizeof ee);
    return r;
}

/* Device, on response 0: ee from its ephemeral, then the ephemeral goes. */
static int device_finish(duo_channel *ch, const uint8_t ce_pub[32]) {
    uint8_t ee[32];
    duo_channel saved = *ch;
    memcpy(ch->ce_pub, ce_pub, 32);
    int r = x25519(ee, ch->e_priv, ch->e_pub, ce_pub);
    if (r == DUO_OK) r = schedule_ee(ch, ee);
    duo_memzero(ee, sizeof ee);
    if (r != DUO_OK) *ch = saved; /* a forged response 0 leaves the session as it was */
    duo_memzero(&saved, sizeof saved);
    return r;
}

/* ----------------------------------------------------------- records */

int duo_ch_seal(duo_channel *ch, duo_ch_record *rec, uint8_t **ct, const char *method, const uint8_t *key_id,
                const uint8_t *pt, size_t pt_len, const duo_rng *rng) {
    if (!ch || !rec || !ct || (!pt && pt_len) || (ch->role != 1 && ch->role != 2)) return DUO_E_INVALID_ARG;
    *ct = NULL;
    memset(rec, 0, sizeof *rec);
    duo_ch_dir dir = ch->role == 1 ? DUO_CH_D2C : DUO_CH_C2D;
    const uint8_t *key;
    int r;
    if (ch->role == 1) {
        /* Request 0 before the handshake; then only after response 0. */
        if (!ch->established && ch->n_d2c != 0) return DUO_E_PROTO_STATE;
        if (!ch->established) {
            rec->static_id = ch->static_id; /* request 0 only: the cloud picks its key by it */
            rec->has_ephemeral = 1;
            memcpy(rec->ephemeral, ch->e_pub, 32);
        } else {
            rec->has_channel_id = 1;
            memcpy(rec->channel_id, ch->channel_id, DUO_CH_ID_BYTES);
        }
        rec->counter = ch->n_d2c;
        key = ch->established ? ch->k_d2c : ch->k0;
    } else {
        if (!ch->established) {
            if ((r = cloud_respond(ch, rng)) != DUO_OK) return r;
            rec->has_ephemeral = 1;
            memcpy(rec->ephemeral, ch->ce_pub, 32);
            rec->has_channel_id = 1;
            memcpy(rec->channel_id, ch->channel_id, DUO_CH_ID_BYTES);
        }
        rec->counter = ch->n_c2d;
        key = ch->k_c2d;
    }
    if (key_id) {
        rec->has_key_id = 1;
        memcpy(rec->key_id, key_id, DUO_CH_KEY_ID_BYTES);
    }
    uint8_t aad[AAD_MAX], nonce[12];
    size_t aad_len;
    if ((r = build_aad(aad, &aad_len, ch, dir, method, rec)) != DUO_OK) return r;
    make_nonce(nonce, dir, rec->counter);
    uint8_t *out = malloc(pt_len + DUO_CH_TAG_BYTES);
    if (!out) return DUO_E_NOMEM;
    if ((r = gcm(out, 1, key, nonce, aad, aad_len, pt, pt_len)) != DUO_OK) {
        free(out);
        return r;
    }
    if (dir == DUO_CH_D2C)
        ch->n_d2c++;
    else
        ch->n_c2d++;
    *ct = out;
    rec->ct = out;
    rec->ct_len = pt_len + DUO_CH_TAG_BYTES;
    return DUO_OK;
}

/* The outer fields a record of this direction and stage must carry. */
static int check_shape(const duo_channel *ch, const duo_ch_record *rec) {
    if (!rec->ct || rec->ct_len < DUO_CH_TAG_BYTES) return DUO_E_CHANNEL_MALFORMED;
    if (ch->role == 2) { /* cloud opens requests: no outer field without a use */
        if (rec->rekey || (ch->established && rec->static_id != 0)) return DUO_E_CHANNEL_MALFORMED;
        if (!ch->established) return rec->has_ephemeral && !rec->has_channel_id ? DUO_OK : DUO_E_CHANNEL_MALFORMED;
        if (rec->has_ephemeral || !rec->has_channel_id) return DUO_E_CHANNEL_MALFORMED;
        return duo_ct_eq(rec->channel_id, ch->channel_id, DUO_CH_ID_BYTES) ? DUO_OK : DUO_E_CHANNEL_UNKNOWN;
    }
    if (!ch->established) return rec->has_ephemeral && rec->has_channel_id ? DUO_OK : DUO_E_CHANNEL_MALFORMED;
    return rec->has_ephemeral ? DUO_E_CHANNEL_MALFORMED : DUO_OK;
}

int duo_ch_open(duo_channel *ch, uint8_t **pt, size_t *pt_len, const char *method, const duo_ch_record *rec) {
    if (!ch || !pt || !pt_len || !rec || (ch->role != 1 && ch->role != 2)) return DUO_E_INVALID_ARG;
    *pt = NULL;
    *pt_len = 0;
    int r = check_shape(ch, rec);
    if (r != DUO_OK) return r;
    duo_ch_dir dir = ch->role == 2 ? DUO_CH_D2C : DUO_CH_C2D;
    uint64_t expect = dir == DUO_CH_D2C ? ch->n_d2c : ch->n_c2d;
    if (rec->counter != expect) return DUO_E_CHANNEL_REPLAY;
    if (ch->role == 2 && !ch->established && ch->n_d2c != 0) return DUO_E_CHANNEL_REPLAY;
    duo_channel work = *ch;
    if (ch->role == 1 && !ch->established) {
        /* Response 0: the cloud's ephemeral completes the handshake. The
         * channel id it names must be the one the keys give. */
        if ((r = device_finish(&work, rec->ephemeral)) != DUO_OK) goto out;
        if (!duo_ct_eq(work.channel_id, rec->channel_id, DUO_CH_ID_BYTES)) {
            r = DUO_E_CHANNEL_AUTH;
            goto out;
        }
    }
    const uint8_t *key = dir == DUO_CH_C2D ? work.k_c2d : work.established ? work.k_d2c : work.k0;
    uint8_t aad[AAD_MAX], nonce[12];
    size_t aad_len;
    if ((r = build_aad(aad, &aad_len, &work, dir, method, rec)) != DUO_OK) goto out;
    make_nonce(nonce, dir, rec->counter);
    size_t n = rec->ct_len - DUO_CH_TAG_BYTES;
    uint8_t *out = malloc(n ? n : 1);
    if (!out) {
        r = DUO_E_NOMEM;
        goto out;
    }
    if ((r = gcm(out, 0, key, nonce, aad, aad_len, rec->ct, rec->ct_len)) != DUO_OK) {
        free(out);
        goto out;
    }
    if (dir == DUO_CH_D2C)
        work.n_d2c++;
    else
        work.n_c2d++;
    if (ch->role == 1 && work.established) duo_memzero(work.e_priv, sizeof work.e_priv);
    *ch = work;
    *pt = out;
    *pt_len = n;
out:
    duo_memzero(&work, sizeof work);
    return r;
}

int duo_ch_peek(const duo_channel *ch, duo_ch_dir dir, uint8_t **pt, size_t *pt_len, const char *method,
                const duo_ch_record *rec) {
    if (!ch || !pt || !pt_len || !rec || !ch->established) return DUO_E_INVALID_ARG;
    *pt = NULL;
    *pt_len = 0;
    if (!rec->ct || rec->ct_len < DUO_CH_TAG_BYTES) return DUO_E_CHANNEL_MALFORMED;
    duo_channel work = *ch;
    int first = dir == DUO_CH_D2C && rec->has_ephemeral;
    if (first) { /* request 0 was sealed before the cloud's ephemeral and the channel id */
        work.established = 0;
        memcpy(work.h, work.h0, 32);
    }
    const uint8_t *key = dir == DUO_CH_C2D ? work.k_c2d : first ? work.k0 : work.k_d2c;
    uint8_t aad[AAD_MAX], nonce[12];
    size_t aad_len, n = rec->ct_len - DUO_CH_TAG_BYTES;
    uint8_t *out = NULL;
    int r = build_aad(aad, &aad_len, &work, dir, method, rec);
    if (r == DUO_OK && !(out = malloc(n ? n : 1))) r = DUO_E_NOMEM;
    make_nonce(nonce, dir, rec->counter);
    if (r == DUO_OK && (r = gcm(out, 0, key, nonce, aad, aad_len, rec->ct, rec->ct_len)) == DUO_OK) {
        *pt = out;
        *pt_len = n;
        out = NULL;
    }
    free(out);
    duo_memzero(&work, sizeof work);
    return r;
}
