/* Shared by the wire fuzz targets and the seed generator: one table entry per
 * wire message (parse, build, free, semantic equality, MAC input) plus
 * deterministic sample messages.
 *
 * Test code only; header-only so each fuzz binary stays one translation unit
 * plus the libraries. */
#ifndef DUO_FUZZ_WIRE_MSGS_H
#define DUO_FUZZ_WIRE_MSGS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "duosign.pb-c.h"
#include "wire.h"

/* Every message struct fits in this (aligned) storage. */
typedef union {
    duo_enroll_start_req enroll_start_req;
    duo_enroll_start_resp enroll_start_resp;
    duo_enroll_key_share_req enroll_key_share_req;
    duo_enroll_key_share_resp enroll_key_share_resp;
    duo_enroll_pdl_challenge_req enroll_pdl_challenge_req;
    duo_enroll_pdl_challenge_resp enroll_pdl_challenge_resp;
    duo_enroll_pdl_open_req enroll_pdl_open_req;
    duo_enroll_pdl_open_resp enroll_pdl_open_resp;
    duo_enroll_confirm_req enroll_confirm_req;
    duo_enroll_confirm_resp enroll_confirm_resp;
    duo_sign_start_req sign_start_req;
    duo_sign_start_resp sign_start_resp;
    duo_sign_finish_req sign_finish_req;
    duo_sign_finish_resp sign_finish_resp;
    duo_refresh_req refresh_req;
    duo_refresh_resp refresh_resp;
    duo_revoke_req revoke_req;
    duo_status_req status_req;
    duo_status_resp status_resp;
    duo_issue_cert_req issue_cert_req;
    duo_issue_cert_resp issue_cert_resp;
    duo_presentation_code_req presentation_code_req;
    duo_presentation_code_resp presentation_code_resp;
    duo_resync_req resync_req;
} fz_any;

typedef struct {
    const char *name; /* message name; the fuzz target is fuzz_wire_<name> */
    size_t size;      /* sizeof the C struct; 0 for the empty RevokeResponse */
    int (*parse)(void *out, const uint8_t *in, size_t n);
    int (*build)(uint8_t **out, size_t *n, const void *m);
    void (*free_)(void *m);
    int (*eq)(const void *a, const void *b);
    int (*mac_input)(uint8_t out[32], const void *m); /* NULL if not MACed */
    /* Fills a valid sample; variant selects sizes/options. Returns 0 when
     * variant is past the last one. */
    int (*sample)(void *m, unsigned variant);
    const ProtobufCMessageDescriptor *desc; /* generated protobuf-c descriptor */
} fz_entry;

static inline void fz_fill(void *p, size_t n, unsigned seed) {
    uint8_t *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        b[i] = (uint8_t)(seed * 131u + i * 17u + 3u);
    }
}

static inline int fz_span_eq(duo_span a, duo_span b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---- samples ---- */
static inline int fz_sample_enroll_start_req(void *v, unsigned k) {
    duo_enroll_start_req *m = v;
    static const size_t tl[] = {1, 16, 128};
    if (k >= 3) return 0;
    memset(m, 0, sizeof *m);
    m->token_len = tl[k];
    fz_fill(m->token, m->token_len, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    m->paillier_bits = k == 1 ? 3072 : 2048;
    m->curve = k == 1 ? DUO_CURVE_SECP256K1 : DUO_CURVE_P256; /* seeds on both curves */
    return 1;
}
static inline int fz_sample_enroll_start_resp(void *v, unsigned k) {
    duo_enroll_start_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->cloud_nonce, sizeof m->cloud_nonce, k + 1);
    fz_fill(m->q1_commitment, sizeof m->q1_commitment, k + 2);
    return 1;
}
static inline int fz_sample_enroll_key_share_req(void *v, unsigned k) {
    duo_enroll_key_share_req *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->sid, sizeof m->sid, k);
    fz_fill(m->q2, sizeof m->q2, k + 1);
    m->q2[0] = 0x02;
    fz_fill(m->q2_proof, sizeof m->q2_proof, k + 2);
    m->q2_proof[0] = 0x03;
    return 1;
}
static inline int fz_sample_enroll_key_share_resp(void *v, unsigned k) {
    duo_enroll_key_share_resp *m = v;
    /* 2048 and 3072-bit N and ciphertexts; proof sizes are placeholders. */
    size_t nb = k == 0 ? 256 : 384, lens[5];
    duo_span *spans[5];
    size_t i, off = 0;
    if (k >= 2) return 0;
    lens[0] = nb;
    lens[1] = 2 * nb;
    lens[2] = 160;
    lens[3] = 320;
    lens[4] = 96;
    memset(m, 0, sizeof *m);
    spans[0] = &m->paillier_n;
    spans[1] = &m->ckey;
    spans[2] = &m->proof_ln;
    spans[3] = &m->proof_mod;
    spans[4] = &m->proof_range;
    fz_fill(m->q1, sizeof m->q1, k);
    fz_fill(m->q1_proof, sizeof m->q1_proof, k + 1);
    fz_fill(m->q1_opening, sizeof m->q1_opening, k + 2);
    m->buf = malloc(lens[0] + lens[1] + lens[2] + lens[3] + lens[4]);
    if (m->buf == NULL) abort();
    for (i = 0; i < 5; i++) {
        fz_fill(m->buf + off, lens[i], k + 3 + (unsigned)i);
        spans[i]->ptr = m->buf + off;
        spans[i]->len = lens[i];
        off += lens[i];
    }
    return 1;
}
static inline int fz_sample_enroll_pdl_challenge_req(void *v, unsigned k) {
    duo_enroll_pdl_challenge_req *m = v;
    size_t cl = k == 0 ? 512 : 768;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->sid, sizeof m->sid, k);
    fz_fill(m->ab_commitment, sizeof m->ab_commitment, k + 1);
    if ((m->buf = malloc(cl)) == NULL) abort();
    fz_fill(m->buf, cl, k + 2);
    m->c_prime.ptr = m->buf;
    m->c_prime.len = cl;
    return 1;
}
static inline int fz_sample_enroll_pdl_challenge_resp(void *v, unsigned k) {
    duo_enroll_pdl_challenge_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->alpha_commitment, sizeof m->alpha_commitment, k);
    return 1;
}
static inline int fz_sample_enroll_pdl_open_req(void *v, unsigned k) {
    duo_enroll_pdl_open_req *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->sid, sizeof m->sid, k);
    fz_fill(m->a, sizeof m->a, k + 1);
    fz_fill(m->b, sizeof m->b, k + 2);
    fz_fill(m->ab_opening, sizeof m->ab_opening, k + 3);
    return 1;
}
static inline int fz_sample_enroll_pdl_open_resp(void *v, unsigned k) {
    duo_enroll_pdl_open_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->alpha_point, sizeof m->alpha_point, k);
    fz_fill(m->alpha_opening, sizeof m->alpha_opening, k + 1);
    return 1;
}
static inline int fz_sample_enroll_confirm_req(void *v, unsigned k) {
    duo_enroll_confirm_req *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->sid, sizeof m->sid, k);
    fz_fill(m->public_key, sizeof m->public_key, k + 1);
    fz_fill(m->mac, sizeof m->mac, k + 2);
    return 1;
}
static inline int fz_sample_enroll_confirm_resp(void *v, unsigned k) {
    duo_enroll_confirm_resp *m = v;
    static const char *const codes[] = {"ABCD-EFGH-2345-6789", "x",
                                        "0123456789012345678901234567890123456789012345678901234567890123"};
    if (k >= 3) return 0;
    memset(m, 0, sizeof *m);
    strcpy(m->revocation_code, codes[k]);
    return 1;
}
/* Variants 2-4 (issue 16): purposes DOCUMENT, CSR with its info, LOGIN
 * with its challenge. */
static inline int fz_sample_sign_start_req(void *v, unsigned k) {
    duo_sign_start_req *m = v;
    if (k >= 5) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    fz_fill(m->digest, sizeof m->digest, k + 2);
    fz_fill(m->r2_commitment, sizeof m->r2_commitment, k + 3);
    fz_fill(m->mac, sizeof m->mac, k + 4);
    if (k == 2) m->purpose = DUO_SIGN_PURPOSE_DOCUMENT;
    if (k == 3) {
        m->purpose = DUO_SIGN_PURPOSE_CSR;
        m->csr_info_len = 180;
        fz_fill(m->csr_info, m->csr_info_len, k + 5);
    }
    if (k == 4) {
        m->purpose = DUO_SIGN_PURPOSE_LOGIN;
        m->login_challenge_len = 32;
        fz_fill(m->login_challenge, m->login_challenge_len, k + 5);
    }
    return 1;
}
/* IssueCertificate: a fetch (no csr) and a request. */
static inline int fz_sample_issue_cert_req(void *v, unsigned k) {
    duo_issue_cert_req *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    fz_fill(m->mac, sizeof m->mac, k + 2);
    m->csr_len = k == 0 ? 0 : 300;
    fz_fill(m->csr, m->csr_len, k + 3);
    return 1;
}
static inline int fz_sample_issue_cert_resp(void *v, unsigned k) {
    duo_issue_cert_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    m->certificate_len = k == 0 ? 1 : 600;
    fz_fill(m->certificate, m->certificate_len, k);
    return 1;
}
static inline int fz_sample_sign_start_resp(void *v, unsigned k) {
    duo_sign_start_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->cloud_nonce, sizeof m->cloud_nonce, k);
    fz_fill(m->r1, sizeof m->r1, k + 1);
    fz_fill(m->r1_proof, sizeof m->r1_proof, k + 2);
    return 1;
}
static inline int fz_sample_sign_finish_req(void *v, unsigned k) {
    duo_sign_finish_req *m = v;
    size_t cl = k == 0 ? 512 : 768;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->sid, sizeof m->sid, k);
    fz_fill(m->r2, sizeof m->r2, k + 1);
    fz_fill(m->r2_proof, sizeof m->r2_proof, k + 2);
    fz_fill(m->r2_opening, sizeof m->r2_opening, k + 3);
    fz_fill(m->pin_proof, sizeof m->pin_proof, k + 4);
    fz_fill(m->mac, sizeof m->mac, k + 5);
    if ((m->buf = malloc(cl)) == NULL) abort();
    fz_fill(m->buf, cl, k + 6);
    m->c3.ptr = m->buf;
    m->c3.len = cl;
    return 1;
}
static inline int fz_sample_sign_finish_resp(void *v, unsigned k) {
    duo_sign_finish_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->signature, sizeof m->signature, k);
    fz_fill(m->rotate_seed, sizeof m->rotate_seed, k + 1);
    return 1;
}
static inline int fz_sample_refresh_req(void *v, unsigned k) {
    duo_refresh_req *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    fz_fill(m->mac, sizeof m->mac, k + 2);
    return 1;
}
static inline int fz_sample_refresh_resp(void *v, unsigned k) {
    duo_refresh_resp *m = v;
    if (k >= 2) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->rotate_seed, sizeof m->rotate_seed, k);
    return 1;
}
static inline int fz_sample_revoke_req(void *v, unsigned k) {
    duo_revoke_req *m = v;
    if (k >= 3) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    if (k == 0) {
        m->has_mac = 1;
        fz_fill(m->mac, sizeof m->mac, k + 2);
    } else {
        m->has_mac = 0;
        strcpy(m->revocation_code, k == 1 ? "ABCD-EFGH-2345-6789" : "~");
    }
    return 1;
}
static inline int fz_sample_status_req(void *v, unsigned k) { return fz_sample_refresh_req(v, k); }
static inline int fz_sample_status_resp(void *v, unsigned k) {
    duo_status_resp *m = v;
    if (k > DUO_KEY_STATE_REVOKED) return 0;
    memset(m, 0, sizeof *m);
    m->state = (duo_key_state)k;
    m->pin_attempts_left = k == DUO_KEY_STATE_LOCKED ? 0 : 3;
    m->locked_until = k == DUO_KEY_STATE_LOCKED ? 1700000000 : 0;
    fz_fill(m->public_key, sizeof m->public_key, k);
    m->public_key[0] = 0x02;
    return 1;
}
static inline int fz_sample_presentation_code_req(void *v, unsigned k) {
    duo_presentation_code_req *m = v;
    static const char *const docs[] = {"passport", "id_card", "a", "driving_licence_2024_category_b_"};
    if (k >= 4) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    strcpy(m->doc_type, docs[k]);
    fz_fill(m->mac, sizeof m->mac, k + 2);
    return 1;
}
static inline int fz_sample_presentation_code_resp(void *v, unsigned k) {
    duo_presentation_code_resp *m = v;
    static const char *const codes[] = {"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "AAAAAAAAAAAAAAAAAAAAAAAAAA",
                                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"};
    if (k >= 3) return 0;
    memset(m, 0, sizeof *m);
    strcpy(m->code, codes[k]);
    memcpy(m->barcode, k == 1 ? "000000000000" : "400638133393", 12);
    m->barcode[12] = duo_wire_ean13_check(m->barcode);
    m->issued_at = 1700000000 + (int64_t)k;
    m->expires_at = m->issued_at + 180;
    return 1;
}

static inline int fz_sample_resync_req(void *v, unsigned k) {
    duo_resync_req *m = v;
    static const uint64_t epochs[] = {1, 2, UINT64_MAX};
    if (k >= 3) return 0;
    memset(m, 0, sizeof *m);
    fz_fill(m->key_id, sizeof m->key_id, k);
    fz_fill(m->device_nonce, sizeof m->device_nonce, k + 1);
    m->epoch = epochs[k];
    fz_fill(m->device_secret, sizeof m->device_secret, k + 2);
    fz_fill(m->pin_proof, sizeof m->pin_proof, k + 3);
    fz_fill(m->mac, sizeof m->mac, k + 4);
    return 1;
}

/* ---- equality and free ---- */
/* Structs without pointers: both sides are zeroed before their fields are
 * written (parsers memset first), so whole-struct comparison is exact. */
#define FZ_PLAIN(M)                                                                                          \
    static inline int fz_eq_##M(const void *a, const void *b) { return memcmp(a, b, sizeof(duo_##M)) == 0; } \
    static inline void fz_free_##M(void *m) { (void)m; }
FZ_PLAIN(enroll_start_req)
FZ_PLAIN(enroll_start_resp)
FZ_PLAIN(enroll_key_share_req)
FZ_PLAIN(enroll_pdl_challenge_resp)
FZ_PLAIN(enroll_pdl_open_req)
FZ_PLAIN(enroll_pdl_open_resp)
FZ_PLAIN(enroll_confirm_req)
FZ_PLAIN(enroll_confirm_resp)
FZ_PLAIN(sign_start_req)
FZ_PLAIN(sign_start_resp)
FZ_PLAIN(sign_finish_resp)
FZ_PLAIN(refresh_req)
FZ_PLAIN(refresh_resp)
FZ_PLAIN(revoke_req)
FZ_PLAIN(status_req)
FZ_PLAIN(status_resp)
FZ_PLAIN(issue_cert_req)
FZ_PLAIN(issue_cert_resp)
FZ_PLAIN(presentation_code_req)
FZ_PLAIN(presentation_code_resp)
FZ_PLAIN(resync_req)
#undef FZ_PLAIN

static inline int fz_eq_enroll_key_share_resp(const void *va, const void *vb) {
    const duo_enroll_key_share_resp *a = va, *b = vb;
    return memcmp(a->q1, b->q1, sizeof a->q1) == 0 && memcmp(a->q1_proof, b->q1_proof, sizeof a->q1_proof) == 0 &&
           memcmp(a->q1_opening, b->q1_opening, sizeof a->q1_opening) == 0 &&
           fz_span_eq(a->paillier_n, b->paillier_n) && fz_span_eq(a->ckey, b->ckey) &&
           fz_span_eq(a->proof_ln, b->proof_ln) && fz_span_eq(a->proof_mod, b->proof_mod) &&
           fz_span_eq(a->proof_range, b->proof_range);
}
static inline void fz_free_enroll_key_share_resp(void *m) { duo_wire_free_enroll_key_share_resp(m); }
static inline int fz_eq_enroll_pdl_challenge_req(const void *va, const void *vb) {
    const duo_enroll_pdl_challenge_req *a = va, *b = vb;
    return memcmp(a->sid, b->sid, sizeof a->sid) == 0 &&
           memcmp(a->ab_commitment, b->ab_commitment, sizeof a->ab_commitment) == 0 &&
           fz_span_eq(a->c_prime, b->c_prime);
}
static inline void fz_free_enroll_pdl_challenge_req(void *m) { duo_wire_free_enroll_pdl_challenge_req(m); }
static inline int fz_eq_sign_finish_req(const void *va, const void *vb) {
    const duo_sign_finish_req *a = va, *b = vb;
    return memcmp(a->sid, b->sid, sizeof a->sid) == 0 && memcmp(a->r2, b->r2, sizeof a->r2) == 0 &&
           memcmp(a->r2_proof, b->r2_proof, sizeof a->r2_proof) == 0 &&
           memcmp(a->r2_opening, b->r2_opening, sizeof a->r2_opening) == 0 &&
           memcmp(a->pin_proof, b->pin_proof, sizeof a->pin_proof) == 0 && fz_span_eq(a->c3, b->c3) &&
           memcmp(a->mac, b->mac, sizeof a->mac) == 0;
}
static inline void fz_free_sign_finish_req(void *m) { duo_wire_free_sign_finish_req(m); }

/* ---- void * adapters ---- */
#define FZ_ADAPT(M)                                                           \
    static inline int fz_parse_##M(void *out, const uint8_t *in, size_t n) {  \
        return duo_wire_parse_##M((duo_##M *)out, in, n);                     \
    }                                                                         \
    static inline int fz_build_##M(uint8_t **out, size_t *n, const void *m) { \
        return duo_wire_build_##M(out, n, (const duo_##M *)m);                \
    }
#define FZ_MAC(M, F)                                               \
    static inline int fz_mac_##M(uint8_t out[32], const void *m) { \
        return duo_wire_mac_input_##F(out, (const duo_##M *)m);    \
    }
FZ_ADAPT(enroll_start_req)
FZ_ADAPT(enroll_start_resp)
FZ_ADAPT(enroll_key_share_req)
FZ_ADAPT(enroll_key_share_resp)
FZ_ADAPT(enroll_pdl_challenge_req)
FZ_ADAPT(enroll_pdl_challenge_resp)
FZ_ADAPT(enroll_pdl_open_req)
FZ_ADAPT(enroll_pdl_open_resp)
FZ_ADAPT(enroll_confirm_req)
FZ_ADAPT(enroll_confirm_resp)
FZ_ADAPT(sign_start_req)
FZ_ADAPT(sign_start_resp)
FZ_ADAPT(sign_finish_req)
FZ_ADAPT(sign_finish_resp)
FZ_ADAPT(refresh_req)
FZ_ADAPT(refresh_resp)
FZ_ADAPT(revoke_req)
FZ_ADAPT(status_req)
FZ_ADAPT(status_resp)
FZ_ADAPT(issue_cert_req)
FZ_ADAPT(issue_cert_resp)
FZ_ADAPT(presentation_code_req)
FZ_ADAPT(presentation_code_resp)
FZ_ADAPT(resync_req)
FZ_MAC(enroll_confirm_req, enroll_confirm)
FZ_MAC(sign_start_req, sign_start)
FZ_MAC(sign_finish_req, sign_finish)
FZ_MAC(refresh_req, refresh)
FZ_MAC(revoke_req, revoke)
FZ_MAC(status_req, status)
FZ_MAC(issue_cert_req, issue_cert)
FZ_MAC(presentation_code_req, presentation_code)
FZ_MAC(resync_req, resync)

/* RevokeResponse: no struct. */
static inline int fz_parse_revoke_resp(void *out, const uint8_t *in, size_t n) {
    (void)out;
    return duo_wire_parse_revoke_resp(in, n);
}
static inline int fz_build_revoke_resp(uint8_t **out, size_t *n, const void *m) {
    (void)m;
    return duo_wire_build_revoke_resp(out, n);
}
static inline void fz_free_revoke_resp(void *m) { (void)m; }
static inline int fz_eq_revoke_resp(const void *a, const void *b) {
    (void)a;
    (void)b;
    return 1;
}
static inline int fz_sample_revoke_resp(void *m, unsigned k) {
    (void)m;
    return k == 0;
}

/* X(name, struct size, mac function or NULL, protobuf-c descriptor prefix)
 * in enum order. */
#define FZ_WIRE_MESSAGES(X)                                                                                  \
    X(enroll_start_req, sizeof(duo_enroll_start_req), NULL, enroll_start_request)                            \
    X(enroll_start_resp, sizeof(duo_enroll_start_resp), NULL, enroll_start_response)                         \
    X(enroll_key_share_req, sizeof(duo_enroll_key_share_req), NULL, enroll_key_share_request)                \
    X(enroll_key_share_resp, sizeof(duo_enroll_key_share_resp), NULL, enroll_key_share_response)             \
    X(enroll_pdl_challenge_req, sizeof(duo_enroll_pdl_challenge_req), NULL, enroll_pdl_challenge_request)    \
    X(enroll_pdl_challenge_resp, sizeof(duo_enroll_pdl_challenge_resp), NULL, enroll_pdl_challenge_response) \
    X(enroll_pdl_open_req, sizeof(duo_enroll_pdl_open_req), NULL, enroll_pdl_open_request)                   \
    X(enroll_pdl_open_resp, sizeof(duo_enroll_pdl_open_resp), NULL, enroll_pdl_open_response)                \
    X(enroll_confirm_req, sizeof(duo_enroll_confirm_req), fz_mac_enroll_confirm_req, enroll_confirm_request) \
    X(enroll_confirm_resp, sizeof(duo_enroll_confirm_resp), NULL, enroll_confirm_response)                   \
    X(sign_start_req, sizeof(duo_sign_start_req), fz_mac_sign_start_req, sign_start_request)                 \
    X(sign_start_resp, sizeof(duo_sign_start_resp), NULL, sign_start_response)                               \
    X(sign_finish_req, sizeof(duo_sign_finish_req), fz_mac_sign_finish_req, sign_finish_request)             \
    X(sign_finish_resp, sizeof(duo_sign_finish_resp), NULL, sign_finish_response)                            \
    X(refresh_req, sizeof(duo_refresh_req), fz_mac_refresh_req, refresh_request)                             \
    X(refresh_resp, sizeof(duo_refresh_resp), NULL, refresh_response)                                        \
    X(revoke_req, sizeof(duo_revoke_req), fz_mac_revoke_req, revoke_request)                                 \
    X(revoke_resp, 0, NULL, revoke_response)                                                                 \
    X(status_req, sizeof(duo_status_req), fz_mac_status_req, status_request)                                 \
    X(status_resp, sizeof(duo_status_resp), NULL, status_response)                                           \
    X(issue_cert_req, sizeof(duo_issue_cert_req), fz_mac_issue_cert_req, issue_certificate_request)          \
    X(issue_cert_resp, sizeof(duo_issue_cert_resp), NULL, issue_certificate_response)                        \
    X(presentation_code_req, sizeof(duo_presentation_code_req), fz_mac_presentation_code_req,                \
      presentation_code_request)                                                                             \
    X(presentation_code_resp, sizeof(duo_presentation_code_resp), NULL, presentation_code_response)          \
    X(resync_req, sizeof(duo_resync_req), fz_mac_resync_req, resync_request)

enum {
#define FZ_ENUM(M, S, MAC, D) FZ_MSG_##M,
    FZ_WIRE_MESSAGES(FZ_ENUM)
#undef FZ_ENUM
        FZ_MSG_COUNT
};

static const fz_entry fz_wire_table[FZ_MSG_COUNT] = {
#define FZ_ROW(M, S, MAC, D) \
    {#M, S, fz_parse_##M, fz_build_##M, fz_free_##M, fz_eq_##M, MAC, fz_sample_##M, &duosign__v1__##D##__descriptor},
    FZ_WIRE_MESSAGES(FZ_ROW)
#undef FZ_ROW
};

#endif
