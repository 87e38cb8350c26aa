/* Wire layer (common/wire): roundtrip of every message, length tampering of
 * every field, malformed and oversize input, MAC inputs, MAC check, secret
 * rotation.
 *
 * Unknown fields: protobuf semantics apply. A field number the .proto does
 * not define is skipped by protobuf-c and never reaches the C struct, so a
 * newer peer may add fields; test_unknown_fields_ignored pins this. MACs are
 * computed over the parsed logical fields, never the protobuf bytes, so an
 * unknown field cannot be used to smuggle MAC-covered data either. */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "duosign.pb-c.h"
#include "duosign/mem.h"
#include "test_harness.h"
#include "wire.h"

static void fill(void *p, size_t n, unsigned seed) {
    uint8_t *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        b[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
    }
}

static void hex2bin(uint8_t *out, const char *hex, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned v = 0;
        int j;
        for (j = 0; j < 2; j++) {
            char c = hex[2 * i + (size_t)j];
            v = v * 16u + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (uint8_t)v;
    }
}

/* ------------------------------------------------------------ valid structs */
static void make_enroll_start_req(duo_enroll_start_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    m->token_len = 20;
    fill(m->token, m->token_len, s);
    fill(m->device_nonce, sizeof m->device_nonce, s + 1);
    m->paillier_bits = 2048;
    m->curve = (s & 1) ? DUO_CURVE_P256 : DUO_CURVE_SECP256K1;
}
static void make_enroll_start_resp(duo_enroll_start_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->key_id, sizeof m->key_id, s);
    fill(m->cloud_nonce, sizeof m->cloud_nonce, s + 1);
    fill(m->q1_commitment, sizeof m->q1_commitment, s + 2);
}
static void make_enroll_key_share_req(duo_enroll_key_share_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->sid, sizeof m->sid, s);
    fill(m->q2, sizeof m->q2, s + 1);
    fill(m->q2_proof, sizeof m->q2_proof, s + 2);
}
/* Spans owned by a malloc'd buf, as a builder-side caller fills them. */
static void make_enroll_key_share_resp(duo_enroll_key_share_resp *m, unsigned s) {
    static const size_t lens[5] = {256, 512, 300, 400, 200};
    duo_span *spans[5];
    size_t i, off = 0;
    memset(m, 0, sizeof *m);
    spans[0] = &m->paillier_n;
    spans[1] = &m->ckey;
    spans[2] = &m->proof_ln;
    spans[3] = &m->proof_mod;
    spans[4] = &m->proof_range;
    fill(m->q1, sizeof m->q1, s);
    fill(m->q1_proof, sizeof m->q1_proof, s + 1);
    fill(m->q1_opening, sizeof m->q1_opening, s + 2);
    m->buf = malloc(256 + 512 + 300 + 400 + 200);
    for (i = 0; i < 5; i++) {
        fill(m->buf + off, lens[i], s + 3 + (unsigned)i);
        spans[i]->ptr = m->buf + off;
        spans[i]->len = lens[i];
        off += lens[i];
    }
}
static void make_enroll_pdl_challenge_req(duo_enroll_pdl_challenge_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->sid, sizeof m->sid, s);
    fill(m->ab_commitment, sizeof m->ab_commitment, s + 1);
    m->buf = malloc(512);
    fill(m->buf, 512, s + 2);
    m->c_prime.ptr = m->buf;
    m->c_prime.len = 512;
}
static void make_enroll_pdl_challenge_resp(duo_enroll_pdl_challenge_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->alpha_commitment, sizeof m->alpha_commitment, s);
}
static void make_enroll_pdl_open_req(duo_enroll_pdl_open_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->sid, sizeof m->sid, s);
    fill(m->a, sizeof m->a, s + 1);
    fill(m->b, sizeof m->b, s + 2);
    fill(m->ab_opening, sizeof m->ab_opening, s + 3);
}
static void make_enroll_pdl_open_resp(duo_enroll_pdl_open_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->alpha_point, sizeof m->alpha_point, s);
    fill(m->alpha_opening, sizeof m->alpha_opening, s + 1);
}
static void make_enroll_confirm_req(duo_enroll_confirm_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->sid, sizeof m->sid, s);
    fill(m->public_key, sizeof m->public_key, s + 1);
    fill(m->mac, sizeof m->mac, s + 2);
}
static void make_enroll_confirm_resp(duo_enroll_confirm_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    (void)s;
    strcpy(m->revocation_code, "ABCD-EFGH-2345-6789");
}
static void make_sign_start_req(duo_sign_start_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->key_id, sizeof m->key_id, s);
    fill(m->device_nonce, sizeof m->device_nonce, s + 1);
    fill(m->digest, sizeof m->digest, s + 2);
    fill(m->r2_commitment, sizeof m->r2_commitment, s + 3);
    fill(m->mac, sizeof m->mac, s + 4);
}
static void make_issue_cert_req(duo_issue_cert_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->key_id, sizeof m->key_id, s);
    fill(m->device_nonce, sizeof m->device_nonce, s + 1);
    fill(m->mac, sizeof m->mac, s + 2); /* csr empty: a fetch */
}
static void make_issue_cert_resp(duo_issue_cert_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    m->certificate_len = 300;
    fill(m->certificate, m->certificate_len, s);
}
static void make_sign_start_resp(duo_sign_start_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->cloud_nonce, sizeof m->cloud_nonce, s);
    fill(m->r1, sizeof m->r1, s + 1);
    fill(m->r1_proof, sizeof m->r1_proof, s + 2);
}
static void make_sign_finish_req(duo_sign_finish_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->sid, sizeof m->sid, s);
    fill(m->r2, sizeof m->r2, s + 1);
    fill(m->r2_proof, sizeof m->r2_proof, s + 2);
    fill(m->r2_opening, sizeof m->r2_opening, s + 3);
    fill(m->pin_proof, sizeof m->pin_proof, s + 4);
    fill(m->mac, sizeof m->mac, s + 5);
    m->buf = malloc(512);
    fill(m->buf, 512, s + 6);
    m->c3.ptr = m->buf;
    m->c3.len = 512;
}
static void make_sign_finish_resp(duo_sign_finish_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->signature, sizeof m->signature, s);
    fill(m->rotate_seed, sizeof m->rotate_seed, s + 1);
}
static void make_refresh_req(duo_refresh_req *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->key_id, sizeof m->key_id, s);
    fill(m->device_nonce, sizeof m->device_nonce, s + 1);
    fill(m->mac, sizeof m->mac, s + 2);
}
static void make_refresh_resp(duo_refresh_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    fill(m->rotate_seed, sizeof m->rotate_seed, s);
}
static void make_revoke_req(duo_revoke_req *m, unsigned s) { /* device revocation (MAC) */
    memset(m, 0, sizeof *m);
    fill(m->key_id, sizeof m->key_id, s);
    fill(m->device_nonce, sizeof m->device_nonce, s + 1);
    m->has_mac = 1;
    fill(m->mac, sizeof m->mac, s + 2);
}
static void make_revoke_code_req(duo_revoke_req *m, unsigned s) { /* with the one-time code */
    memset(m, 0, sizeof *m);
    fill(m->key_id, sizeof m->key_id, s);
    fill(m->device_nonce, sizeof m->device_nonce, s + 1);
    m->has_mac = 0;
    strcpy(m->revocation_code, "ABCD-EFGH-2345-6789");
}
static void make_status_req(duo_status_req *m, unsigned s) { make_refresh_req(m, s); }
static void make_status_resp(duo_status_resp *m, unsigned s) {
    memset(m, 0, sizeof *m);
    m->state = DUO_KEY_STATE_LOCKED;
    m->pin_attempts_left = 2;
    m->locked_until = 1700000000;
    fill(m->public_key, sizeof m->public_key, s);
}

/* ------------------------------------------------------------ equality */
static int span_eq(duo_span a, duo_span b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
/* Structs without pointers: both sides were zeroed before the fields were
 * written, so comparing all bytes (padding included) is exact. */
#define EQ_PLAIN(M) \
    static int eq_##M(const duo_##M *a, const duo_##M *b) { return memcmp(a, b, sizeof *a) == 0; }
EQ_PLAIN(enroll_start_req)
EQ_PLAIN(enroll_start_resp)
EQ_PLAIN(enroll_key_share_req)
EQ_PLAIN(enroll_pdl_challenge_resp)
EQ_PLAIN(enroll_pdl_open_req)
EQ_PLAIN(enroll_pdl_open_resp)
EQ_PLAIN(enroll_confirm_req)
EQ_PLAIN(enroll_confirm_resp)
EQ_PLAIN(sign_start_req)
EQ_PLAIN(sign_start_resp)
EQ_PLAIN(sign_finish_resp)
EQ_PLAIN(refresh_req)
EQ_PLAIN(refresh_resp)
EQ_PLAIN(revoke_req)
EQ_PLAIN(status_req)
EQ_PLAIN(status_resp)
EQ_PLAIN(issue_cert_req)
EQ_PLAIN(issue_cert_resp)

static int eq_enroll_key_share_resp(const duo_enroll_key_share_resp *a, const duo_enroll_key_share_resp *b) {
    return memcmp(a->q1, b->q1, sizeof a->q1) == 0 && memcmp(a->q1_proof, b->q1_proof, sizeof a->q1_proof) == 0 &&
           memcmp(a->q1_opening, b->q1_opening, sizeof a->q1_opening) == 0 && span_eq(a->paillier_n, b->paillier_n) &&
           span_eq(a->ckey, b->ckey) && span_eq(a->proof_ln, b->proof_ln) && span_eq(a->proof_mod, b->proof_mod) &&
           span_eq(a->proof_range, b->proof_range);
}
static int eq_enroll_pdl_challenge_req(const duo_enroll_pdl_challenge_req *a, const duo_enroll_pdl_challenge_req *b) {
    return memcmp(a->sid, b->sid, sizeof a->sid) == 0 &&
           memcmp(a->ab_commitment, b->ab_commitment, sizeof a->ab_commitment) == 0 && span_eq(a->c_prime, b->c_prime);
}
static int eq_sign_finish_req(const duo_sign_finish_req *a, const duo_sign_finish_req *b) {
    return memcmp(a->sid, b->sid, sizeof a->sid) == 0 && memcmp(a->r2, b->r2, sizeof a->r2) == 0 &&
           memcmp(a->r2_proof, b->r2_proof, sizeof a->r2_proof) == 0 &&
           memcmp(a->r2_opening, b->r2_opening, sizeof a->r2_opening) == 0 &&
           memcmp(a->pin_proof, b->pin_proof, sizeof a->pin_proof) == 0 && span_eq(a->c3, b->c3) &&
           memcmp(a->mac, b->mac, sizeof a->mac) == 0;
}

/* ------------------------------------------------------------ free helpers */
#define FREE_NOOP(M) \
    static void free_##M(duo_##M *m) { (void)m; }
FREE_NOOP(enroll_start_req)
FREE_NOOP(enroll_start_resp)
FREE_NOOP(enroll_key_share_req)
FREE_NOOP(enroll_pdl_challenge_resp)
FREE_NOOP(enroll_pdl_open_req)
FREE_NOOP(enroll_pdl_open_resp)
FREE_NOOP(enroll_confirm_req)
FREE_NOOP(enroll_confirm_resp)
FREE_NOOP(sign_start_req)
FREE_NOOP(sign_start_resp)
FREE_NOOP(sign_finish_resp)
FREE_NOOP(refresh_req)
FREE_NOOP(refresh_resp)
FREE_NOOP(revoke_req)
FREE_NOOP(status_req)
FREE_NOOP(status_resp)
FREE_NOOP(issue_cert_req)
FREE_NOOP(issue_cert_resp)
static void free_enroll_key_share_resp(duo_enroll_key_share_resp *m) { duo_wire_free_enroll_key_share_resp(m); }
static void free_enroll_pdl_challenge_req(duo_enroll_pdl_challenge_req *m) {
    duo_wire_free_enroll_pdl_challenge_req(m);
}
static void free_sign_finish_req(duo_sign_finish_req *m) { duo_wire_free_sign_finish_req(m); }

/* Per message M: enc_M (valid encoding), pf_M (parse, free, return code),
 * rt_M (build -> parse -> equal). */
#define PER_MSG(M, MAKE)                                  \
    static int enc_##M(uint8_t **e, size_t *n) {          \
        duo_##M s;                                        \
        int r;                                            \
        MAKE(&s, 1);                                      \
        r = duo_wire_build_##M(e, n, &s);                 \
        free_##M(&s);                                     \
        return r;                                         \
    }                                                     \
    static int pf_##M(const uint8_t *in, size_t n) {      \
        duo_##M s;                                        \
        int r = duo_wire_parse_##M(&s, in, n);            \
        free_##M(&s);                                     \
        return r;                                         \
    }                                                     \
    static void rt_##M(void) {                            \
        duo_##M a, b;                                     \
        uint8_t *e = NULL;                                \
        size_t n = 0;                                     \
        unsigned seed;                                    \
        for (seed = 1; seed < 4; seed++) {                \
            MAKE(&a, seed);                               \
            DUO_CHECK_OK(duo_wire_build_##M(&e, &n, &a)); \
            DUO_CHECK(e != NULL && n > 0);                \
            DUO_CHECK_OK(duo_wire_parse_##M(&b, e, n));   \
            DUO_CHECK(eq_##M(&a, &b));                    \
            free(e);                                      \
            e = NULL;                                     \
            free_##M(&a);                                 \
            free_##M(&b);                                 \
        }                                                 \
    }

PER_MSG(enroll_start_req, make_enroll_start_req)
PER_MSG(enroll_start_resp, make_enroll_start_resp)
PER_MSG(enroll_key_share_req, make_enroll_key_share_req)
PER_MSG(enroll_key_share_resp, make_enroll_key_share_resp)
PER_MSG(enroll_pdl_challenge_req, make_enroll_pdl_challenge_req)
PER_MSG(enroll_pdl_challenge_resp, make_enroll_pdl_challenge_resp)
PER_MSG(enroll_pdl_open_req, make_enroll_pdl_open_req)
PER_MSG(enroll_pdl_open_resp, make_enroll_pdl_open_resp)
PER_MSG(enroll_confirm_req, make_enroll_confirm_req)
PER_MSG(enroll_confirm_resp, make_enroll_confirm_resp)
PER_MSG(sign_start_req, make_sign_start_req)
PER_MSG(issue_cert_req, make_issue_cert_req)
PER_MSG(issue_cert_resp, make_issue_cert_resp)
PER_MSG(sign_start_resp, make_sign_start_resp)
PER_MSG(sign_finish_req, make_sign_finish_req)
PER_MSG(sign_finish_resp, make_sign_finish_resp)
PER_MSG(refresh_req, make_refresh_req)
PER_MSG(refresh_resp, make_refresh_resp)
PER_MSG(revoke_req, make_revoke_req)
PER_MSG(status_req, make_status_req)
PER_MSG(status_resp, make_status_resp)

/* Revoke by code and the empty RevokeResponse need their own wrappers. */
static int enc_revoke_code_req(uint8_t **e, size_t *n) {
    duo_revoke_req s;
    make_revoke_code_req(&s, 1);
    return duo_wire_build_revoke_req(e, n, &s);
}
static int pf_revoke_resp(const uint8_t *in, size_t n) { return duo_wire_parse_revoke_resp(in, n); }
static int enc_revoke_resp(uint8_t **e, size_t *n) { return duo_wire_build_revoke_resp(e, n); }

typedef struct {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    int (*enc)(uint8_t **e, size_t *n);
    int (*pf)(const uint8_t *in, size_t n);
} msg_case;

#define CASE(M, D) \
    { #M, &duosign__v1__##D##__descriptor, enc_##M, pf_##M }
static const msg_case cases[] = {
    CASE(enroll_start_req, enroll_start_request),
    CASE(enroll_start_resp, enroll_start_response),
    CASE(enroll_key_share_req, enroll_key_share_request),
    CASE(enroll_key_share_resp, enroll_key_share_response),
    CASE(enroll_pdl_challenge_req, enroll_pdl_challenge_request),
    CASE(enroll_pdl_challenge_resp, enroll_pdl_challenge_response),
    CASE(enroll_pdl_open_req, enroll_pdl_open_request),
    CASE(enroll_pdl_open_resp, enroll_pdl_open_response),
    CASE(enroll_confirm_req, enroll_confirm_request),
    CASE(enroll_confirm_resp, enroll_confirm_response),
    CASE(sign_start_req, sign_start_request),
    CASE(sign_start_resp, sign_start_response),
    CASE(sign_finish_req, sign_finish_request),
    CASE(sign_finish_resp, sign_finish_response),
    CASE(refresh_req, refresh_request),
    CASE(refresh_resp, refresh_response),
    CASE(revoke_req, revoke_request),
    {"revoke_code_req", &duosign__v1__revoke_request__descriptor, enc_revoke_code_req, pf_revoke_req},
    {"revoke_resp", &duosign__v1__revoke_response__descriptor, enc_revoke_resp, pf_revoke_resp},
    CASE(status_req, status_request),
    CASE(status_resp, status_response),
    CASE(issue_cert_req, issue_certificate_request),
    CASE(issue_cert_resp, issue_certificate_response),
};
#define NCASES (sizeof cases / sizeof cases[0])

/* Variable-size fields: any non-empty length is accepted by the parser. */
static int is_var_field(const char *name) {
    static const char *const var[] = {"token",       "paillier_n", "ckey", "proof_ln",   "proof_mod",
                                      "proof_range", "c_prime",    "c3",   "certificate"};
    size_t i;
    for (i = 0; i < sizeof var / sizeof var[0]; i++) {
        if (strcmp(name, var[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The bytes field f of message pm (protobuf-c keeps field offsets in the
 * descriptor; the member is suitably aligned). */
static ProtobufCBinaryData *field_bd(ProtobufCMessage *pm, const ProtobufCFieldDescriptor *f) {
    return (ProtobufCBinaryData *)(void *)((char *)pm + f->offset);
}

/* Packs pm with field f set to len bytes (scratch content), parses it with c
 * and returns the parser's result. The field is restored. */
static int parse_with_field_len(const msg_case *c, ProtobufCMessage *pm, const ProtobufCFieldDescriptor *f,
                                size_t len) {
    ProtobufCBinaryData *bd = field_bd(pm, f);
    ProtobufCBinaryData saved = *bd;
    uint8_t *scratch = malloc(len + 1), *enc;
    size_t n;
    int r;

    memset(scratch, 0x5a, len + 1);
    bd->data = scratch;
    bd->len = len;
    n = protobuf_c_message_get_packed_size(pm);
    enc = malloc(n + 1);
    protobuf_c_message_pack(pm, enc);
    r = c->pf(enc, n);
    free(enc);
    free(scratch);
    *bd = saved;
    return r;
}

/* Every fixed-size bytes field of every message at length-1, length+1 and 0
 * (absent) is DUO_E_BAD_FIELD; every variable-size field empty is
 * DUO_E_BAD_FIELD and any other length parses. */
static void test_tamper_lengths(void) {
    size_t ci, fi;
    for (ci = 0; ci < NCASES; ci++) {
        const msg_case *c = &cases[ci];
        uint8_t *e = NULL;
        size_t n = 0;
        ProtobufCMessage *pm;
        DUO_CHECK_OK(c->enc(&e, &n));
        DUO_CHECK_OK(c->pf(e, n));
        pm = protobuf_c_message_unpack(c->desc, NULL, n, e);
        DUO_REQUIRE(pm != NULL);
        for (fi = 0; fi < c->desc->n_fields; fi++) {
            const ProtobufCFieldDescriptor *f = &c->desc->fields[fi];
            size_t len;
            if (f->type != PROTOBUF_C_TYPE_BYTES) {
                continue;
            }
            len = field_bd(pm, f)->len;
            if (is_var_field(f->name)) {
                DUO_EXPECT_ERR(parse_with_field_len(c, pm, f, 0), DUO_E_BAD_FIELD);
                DUO_CHECK_OK(parse_with_field_len(c, pm, f, 1));
                DUO_CHECK_OK(parse_with_field_len(c, pm, f, strcmp(f->name, "token") == 0 ? DUO_TOKEN_MAX : len + 1));
                if (strcmp(f->name, "token") == 0) {
                    DUO_EXPECT_ERR(parse_with_field_len(c, pm, f, DUO_TOKEN_MAX + 1), DUO_E_BAD_FIELD);
                }
            } else if (len == 0 && (strcmp(f->name, "csr_info") == 0 || strcmp(f->name, "login_challenge") == 0)) {
                /* A purpose's extra field: absent without that purpose, and
                 * present without it is refused (docs/PROTOCOL.md). */
                DUO_EXPECT_ERR(parse_with_field_len(c, pm, f, 32), DUO_E_BAD_FIELD);
            } else if (len == 0 && strcmp(f->name, "csr") == 0) {
                DUO_CHECK_OK(parse_with_field_len(c, pm, f, 300)); /* empty csr: a fetch; any csr parses */
                DUO_EXPECT_ERR(parse_with_field_len(c, pm, f, DUO_WIRE_CSR_MAX + 1), DUO_E_BAD_FIELD);
            } else if (len == 0) {
                /* Revoke by code: mac absent; adding one makes both present. */
                DUO_CHECK(strcmp(f->name, "mac") == 0 && strcmp(c->name, "revoke_code_req") == 0);
                DUO_EXPECT_ERR(parse_with_field_len(c, pm, f, DUO_MAC_BYTES), DUO_E_BAD_FIELD);
            } else {
                int r1 = parse_with_field_len(c, pm, f, len - 1);
                int r2 = parse_with_field_len(c, pm, f, len + 1);
                int r0 = parse_with_field_len(c, pm, f, 0);
                DUO_CHECK_OK(parse_with_field_len(c, pm, f, len)); /* the harness itself is sound */
                if (r1 != DUO_E_BAD_FIELD || r2 != DUO_E_BAD_FIELD || r0 != DUO_E_BAD_FIELD) {
                    fprintf(stderr, "  %s.%s: len-1 %s, len+1 %s, empty %s\n", c->name, f->name, duo_err_name(r1),
                            duo_err_name(r2), duo_err_name(r0));
                }
                DUO_EXPECT_ERR(r1, DUO_E_BAD_FIELD);
                DUO_EXPECT_ERR(r2, DUO_E_BAD_FIELD);
                DUO_EXPECT_ERR(r0, DUO_E_BAD_FIELD);
            }
        }
        protobuf_c_message_free_unpacked(pm, NULL);
        free(e);
    }
}

/* Non-bytes fields: paillier_bits, revocation codes, key state. */
static void test_scalar_fields(void) {
    duo_enroll_start_req sr;
    duo_enroll_confirm_resp cr;
    duo_revoke_req rv;
    duo_status_resp st;
    uint8_t *e = NULL;
    size_t n = 0;
    static const uint32_t bad_bits[] = {0, 1024, 2047, 2049, 3071, 4096, 0xffffffffu};
    size_t i;

    make_enroll_start_req(&sr, 1);
    for (i = 0; i < sizeof bad_bits / sizeof bad_bits[0]; i++) {
        Duosign__V1__EnrollStartRequest m = DUOSIGN__V1__ENROLL_START_REQUEST__INIT;
        m.token.data = sr.token;
        m.token.len = sr.token_len;
        m.device_nonce.data = sr.device_nonce;
        m.device_nonce.len = sizeof sr.device_nonce;
        m.paillier_bits = bad_bits[i];
        n = protobuf_c_message_get_packed_size(&m.base);
        e = malloc(n);
        protobuf_c_message_pack(&m.base, e);
        DUO_EXPECT_ERR(pf_enroll_start_req(e, n), DUO_E_BAD_FIELD);
        free(e);
        sr.paillier_bits = bad_bits[i];
        DUO_EXPECT_ERR(duo_wire_build_enroll_start_req(&e, &n, &sr), DUO_E_INVALID_ARG);
        DUO_CHECK(e == NULL && n == 0);
    }
    sr.paillier_bits = 3072;
    DUO_CHECK_OK(duo_wire_build_enroll_start_req(&e, &n, &sr));
    DUO_CHECK_OK(pf_enroll_start_req(e, n));
    free(e);
    /* The curve: absent (a device from before curves) reads as secp256k1;
     * a number this build does not know is a bad field on parse and an
     * invalid argument on build. */
    {
        static const uint32_t curves[] = {0, 1, 2, 3, 99, 0xffffffffu};
        for (i = 0; i < sizeof curves / sizeof curves[0]; i++) {
            Duosign__V1__EnrollStartRequest m = DUOSIGN__V1__ENROLL_START_REQUEST__INIT;
            duo_enroll_start_req got;
            m.token.data = sr.token;
            m.token.len = sr.token_len;
            m.device_nonce.data = sr.device_nonce;
            m.device_nonce.len = sizeof sr.device_nonce;
            m.paillier_bits = 2048;
            m.curve = (Duosign__V1__Curve)curves[i];
            n = protobuf_c_message_get_packed_size(&m.base);
            e = malloc(n);
            protobuf_c_message_pack(&m.base, e);
            if (curves[i] <= 2) {
                DUO_CHECK_OK(duo_wire_parse_enroll_start_req(&got, e, n));
                DUO_CHECK(got.curve == (duo_curve)curves[i]); /* as sent: absent stays UNSPECIFIED */
            } else {
                DUO_EXPECT_ERR(duo_wire_parse_enroll_start_req(&got, e, n), DUO_E_BAD_FIELD);
                DUO_CHECK(got.paillier_bits == 0); /* nothing half-parsed */
            }
            free(e);
        }
        sr.curve = (duo_curve)3;
        DUO_EXPECT_ERR(duo_wire_build_enroll_start_req(&e, &n, &sr), DUO_E_INVALID_ARG);
        sr.curve = DUO_CURVE_P256;
    }
    sr.token_len = 0;
    DUO_EXPECT_ERR(duo_wire_build_enroll_start_req(&e, &n, &sr), DUO_E_INVALID_ARG);
    sr.token_len = DUO_TOKEN_MAX + 1;
    DUO_EXPECT_ERR(duo_wire_build_enroll_start_req(&e, &n, &sr), DUO_E_INVALID_ARG);

    /* Revocation codes, through the protobuf-c struct. */
    {
        static const char *const bad[] = {"abc\x01", "tab\there", "\x7f", "caf\xc3\xa9",
                                          "0123456789012345678901234567890123456789012345678901234567890123X"};
        static const char *const good[] = {"A", "with space", "~!@#$%^&*()_+",
                                           "0123456789012345678901234567890123456789012345678901234567890123"};
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            Duosign__V1__EnrollConfirmResponse m = DUOSIGN__V1__ENROLL_CONFIRM_RESPONSE__INIT;
            m.revocation_code = (char *)(uintptr_t)bad[i];
            n = protobuf_c_message_get_packed_size(&m.base);
            e = malloc(n + 1);
            protobuf_c_message_pack(&m.base, e);
            DUO_EXPECT_ERR(duo_wire_parse_enroll_confirm_resp(&cr, e, n), DUO_E_BAD_FIELD);
            free(e);
        }
        for (i = 0; i < sizeof good / sizeof good[0]; i++) {
            Duosign__V1__EnrollConfirmResponse m = DUOSIGN__V1__ENROLL_CONFIRM_RESPONSE__INIT;
            m.revocation_code = (char *)(uintptr_t)good[i];
            n = protobuf_c_message_get_packed_size(&m.base);
            e = malloc(n + 1);
            protobuf_c_message_pack(&m.base, e);
            DUO_CHECK_OK(duo_wire_parse_enroll_confirm_resp(&cr, e, n));
            DUO_CHECK(strcmp(cr.revocation_code, good[i]) == 0);
            free(e);
        }
        /* Empty: a repeated confirmation, the code is not shown again. */
        memset(&cr, 0, sizeof cr);
        DUO_CHECK_OK(duo_wire_build_enroll_confirm_resp(&e, &n, &cr));
        memset(&cr, 'x', sizeof cr);
        DUO_CHECK_OK(duo_wire_parse_enroll_confirm_resp(&cr, e, n));
        DUO_CHECK(cr.revocation_code[0] == '\0');
        free(e);
        e = NULL;
        /* Builder refuses what the parser would reject. */
        memset(cr.revocation_code, 'A', sizeof cr.revocation_code); /* unterminated */
        DUO_EXPECT_ERR(duo_wire_build_enroll_confirm_resp(&e, &n, &cr), DUO_E_INVALID_ARG);
        strcpy(cr.revocation_code, "bad\n");
        DUO_EXPECT_ERR(duo_wire_build_enroll_confirm_resp(&e, &n, &cr), DUO_E_INVALID_ARG);
    }

    /* Revoke: exactly one of mac / code. */
    {
        Duosign__V1__RevokeRequest m = DUOSIGN__V1__REVOKE_REQUEST__INIT;
        uint8_t kid[DUO_KEY_ID_BYTES], nonce[DUO_NONCE_BYTES], mac[DUO_MAC_BYTES];
        fill(kid, sizeof kid, 1);
        fill(nonce, sizeof nonce, 2);
        fill(mac, sizeof mac, 3);
        m.key_id.data = kid;
        m.key_id.len = sizeof kid;
        m.device_nonce.data = nonce;
        m.device_nonce.len = sizeof nonce;
        /* neither */
        n = protobuf_c_message_get_packed_size(&m.base);
        e = malloc(n);
        protobuf_c_message_pack(&m.base, e);
        DUO_EXPECT_ERR(duo_wire_parse_revoke_req(&rv, e, n), DUO_E_BAD_FIELD);
        free(e);
        /* both */
        m.mac.data = mac;
        m.mac.len = sizeof mac;
        m.revocation_code = (char *)(uintptr_t) "CODE";
        n = protobuf_c_message_get_packed_size(&m.base);
        e = malloc(n);
        protobuf_c_message_pack(&m.base, e);
        DUO_EXPECT_ERR(duo_wire_parse_revoke_req(&rv, e, n), DUO_E_BAD_FIELD);
        free(e);
        /* code only, but invalid */
        m.mac.len = 0;
        m.mac.data = NULL;
        m.revocation_code = (char *)(uintptr_t) "bad\x1f";
        n = protobuf_c_message_get_packed_size(&m.base);
        e = malloc(n);
        protobuf_c_message_pack(&m.base, e);
        DUO_EXPECT_ERR(duo_wire_parse_revoke_req(&rv, e, n), DUO_E_BAD_FIELD);
        free(e);
        /* code only, valid: roundtrips with has_mac == 0 */
        m.revocation_code = (char *)(uintptr_t) "CODE-1234";
        n = protobuf_c_message_get_packed_size(&m.base);
        e = malloc(n);
        protobuf_c_message_pack(&m.base, e);
        DUO_CHECK_OK(duo_wire_parse_revoke_req(&rv, e, n));
        DUO_CHECK(rv.has_mac == 0 && strcmp(rv.revocation_code, "CODE-1234") == 0);
        free(e);
        DUO_CHECK_OK(duo_wire_build_revoke_req(&e, &n, &rv));
        {
            duo_revoke_req rv2;
            DUO_CHECK_OK(duo_wire_parse_revoke_req(&rv2, e, n));
            DUO_CHECK(eq_revoke_req(&rv, &rv2));
        }
        free(e);
        /* builder misuse */
        make_revoke_req(&rv, 1);
        strcpy(rv.revocation_code, "X");
        DUO_EXPECT_ERR(duo_wire_build_revoke_req(&e, &n, &rv), DUO_E_INVALID_ARG);
        make_revoke_req(&rv, 1);
        rv.has_mac = 2;
        DUO_EXPECT_ERR(duo_wire_build_revoke_req(&e, &n, &rv), DUO_E_INVALID_ARG);
        make_revoke_code_req(&rv, 1);
        rv.revocation_code[0] = '\0';
        DUO_EXPECT_ERR(duo_wire_build_revoke_req(&e, &n, &rv), DUO_E_INVALID_ARG);
    }

    /* Revocation by code and citizen id, without the key id (issue 13
     * item 6): citizen_id only with a code and without key_id; the nonce
     * 32 bytes as in every request (an absent one would not re-encode to the
     * same bytes: fuzz_wire_revoke_req found it); printable, 1..64. */
    {
        Duosign__V1__RevokeRequest m = DUOSIGN__V1__REVOKE_REQUEST__INIT;
        uint8_t kid[16], nonce[32], mac[32];
        duo_revoke_req rv2;
        char long_id[66];
        memset(long_id, 'c', 65);
        long_id[65] = '\0';
        fill(kid, sizeof kid, 1);
        fill(nonce, sizeof nonce, 2);
        fill(mac, sizeof mac, 3);
#define PACK_PARSE(expect)                                              \
    do {                                                                \
        n = protobuf_c_message_get_packed_size(&m.base);                \
        e = malloc(n);                                                  \
        protobuf_c_message_pack(&m.base, e);                            \
        DUO_EXPECT_ERR(duo_wire_parse_revoke_req(&rv, e, n), (expect)); \
        free(e);                                                        \
        e = NULL;                                                       \
    } while (0)
        m.citizen_id = (char *)(uintptr_t) "citizen-42";
        m.revocation_code = (char *)(uintptr_t) "abcd-efgh";
        PACK_PARSE(DUO_E_BAD_FIELD); /* no nonce */
        m.device_nonce.data = nonce;
        m.device_nonce.len = sizeof nonce;
        PACK_PARSE(DUO_OK); /* no key id, a nonce */
        DUO_CHECK(rv.by_citizen == 1 && rv.has_mac == 0 && strcmp(rv.citizen_id, "citizen-42") == 0 &&
                  strcmp(rv.revocation_code, "abcd-efgh") == 0 && duo_ct_is_zero(rv.key_id, sizeof rv.key_id));
        DUO_CHECK_OK(duo_wire_build_revoke_req(&e, &n, &rv));
        DUO_CHECK_OK(duo_wire_parse_revoke_req(&rv2, e, n));
        DUO_CHECK(eq_revoke_req(&rv, &rv2));
        free(e);
        e = NULL;
        m.device_nonce.len = 31;
        PACK_PARSE(DUO_E_BAD_FIELD);
        m.device_nonce.len = sizeof nonce;
        m.key_id.data = kid; /* key id and citizen id: ambiguous */
        m.key_id.len = sizeof kid;
        PACK_PARSE(DUO_E_BAD_FIELD);
        m.key_id.len = 0;
        m.key_id.data = NULL;
        m.revocation_code = NULL; /* citizen id with a MAC: never */
        m.mac.data = mac;
        m.mac.len = sizeof mac;
        PACK_PARSE(DUO_E_BAD_FIELD);
        m.mac.len = 0;
        m.mac.data = NULL;
        PACK_PARSE(DUO_E_BAD_FIELD); /* citizen id alone */
        m.revocation_code = (char *)(uintptr_t) "abcd-efgh";
        m.citizen_id = (char *)(uintptr_t) "bad\x01id";
        PACK_PARSE(DUO_E_BAD_FIELD);
        m.citizen_id = long_id;
        PACK_PARSE(DUO_E_BAD_FIELD);
        long_id[64] = '\0';
        PACK_PARSE(DUO_OK); /* 64 is the maximum */
#undef PACK_PARSE
        /* builder: by_citizen is never with a MAC, needs a valid id */
        rv.has_mac = 1;
        rv.revocation_code[0] = '\0';
        DUO_EXPECT_ERR(duo_wire_build_revoke_req(&e, &n, &rv), DUO_E_INVALID_ARG);
        make_revoke_code_req(&rv, 1);
        rv.by_citizen = 1;
        DUO_EXPECT_ERR(duo_wire_build_revoke_req(&e, &n, &rv), DUO_E_INVALID_ARG); /* empty citizen id */
        strcpy(rv.citizen_id, "someone");
        DUO_CHECK_OK(duo_wire_build_revoke_req(&e, &n, &rv));
        DUO_CHECK_OK(duo_wire_parse_revoke_req(&rv2, e, n));
        DUO_CHECK(rv2.by_citizen == 1 && strcmp(rv2.citizen_id, "someone") == 0 &&
                  duo_ct_is_zero(rv2.key_id, sizeof rv2.key_id));
        free(e);
    }

    /* Status state in the enum; every value of it roundtrips. */
    {
        static const int bad_states[] = {6, 7, 100, -1};
        Duosign__V1__StatusResponse m = DUOSIGN__V1__STATUS_RESPONSE__INIT;
        uint8_t q[33];
        int s;
        fill(q, sizeof q, 4);
        m.public_key.data = q;
        m.public_key.len = sizeof q;
        for (i = 0; i < sizeof bad_states / sizeof bad_states[0]; i++) {
            m.state = (Duosign__V1__StatusResponse__KeyState)bad_states[i];
            n = protobuf_c_message_get_packed_size(&m.base);
            e = malloc(n);
            protobuf_c_message_pack(&m.base, e);
            DUO_EXPECT_ERR(duo_wire_parse_status_resp(&st, e, n), DUO_E_BAD_FIELD);
            free(e);
        }
        for (s = DUO_KEY_STATE_UNSPECIFIED; s <= DUO_KEY_STATE_REVOKED; s++) {
            duo_status_resp st2;
            make_status_resp(&st, 1);
            st.state = (duo_key_state)s;
            st.locked_until = -5;
            st.pin_attempts_left = 0xffffffffu;
            DUO_CHECK_OK(duo_wire_build_status_resp(&e, &n, &st));
            DUO_CHECK_OK(duo_wire_parse_status_resp(&st2, e, n));
            DUO_CHECK(eq_status_resp(&st, &st2));
            free(e);
        }
        make_status_resp(&st, 1);
        st.state = (duo_key_state)6;
        DUO_EXPECT_ERR(duo_wire_build_status_resp(&e, &n, &st), DUO_E_INVALID_ARG);
    }
}

static void test_roundtrip(void) {
    uint8_t *e = (uint8_t *)"x";
    size_t n = 7;
    rt_enroll_start_req();
    rt_enroll_start_resp();
    rt_enroll_key_share_req();
    rt_enroll_key_share_resp();
    rt_enroll_pdl_challenge_req();
    rt_enroll_pdl_challenge_resp();
    rt_enroll_pdl_open_req();
    rt_enroll_pdl_open_resp();
    rt_enroll_confirm_req();
    rt_enroll_confirm_resp();
    rt_sign_start_req();
    rt_sign_start_resp();
    rt_sign_finish_req();
    rt_sign_finish_resp();
    rt_refresh_req();
    rt_refresh_resp();
    rt_revoke_req();
    rt_status_req();
    rt_status_resp();
    rt_issue_cert_req();
    rt_issue_cert_resp();
    /* Empty RevokeResponse: zero bytes, non-NULL buffer. */
    DUO_CHECK_OK(duo_wire_build_revoke_resp(&e, &n));
    DUO_CHECK(e != NULL && n == 0);
    DUO_CHECK_OK(duo_wire_parse_revoke_resp(e, n));
    DUO_CHECK_OK(duo_wire_parse_revoke_resp(NULL, 0));
    free(e);
}

/* Spans own their bytes: the parsed struct stays valid after the input is
 * gone, and builders refuse empty spans. */
static void test_spans(void) {
    duo_sign_finish_req a, b;
    uint8_t *e = NULL;
    size_t n = 0;
    make_sign_finish_req(&a, 9);
    DUO_CHECK_OK(duo_wire_build_sign_finish_req(&e, &n, &a));
    DUO_CHECK_OK(duo_wire_parse_sign_finish_req(&b, e, n));
    DUO_CHECK(b.buf != NULL && b.c3.ptr == b.buf);
    memset(e, 0, n);
    free(e);
    DUO_CHECK(eq_sign_finish_req(&a, &b));
    duo_wire_free_sign_finish_req(&b);
    DUO_CHECK(b.buf == NULL && b.c3.ptr == NULL && b.c3.len == 0);
    duo_wire_free_sign_finish_req(&b); /* twice is fine */
    duo_wire_free_sign_finish_req(NULL);
    duo_wire_free_enroll_key_share_resp(NULL);
    duo_wire_free_enroll_pdl_challenge_req(NULL);

    a.c3.len = 0;
    DUO_EXPECT_ERR(duo_wire_build_sign_finish_req(&e, &n, &a), DUO_E_INVALID_ARG);
    a.c3.len = 512;
    a.c3.ptr = NULL;
    DUO_EXPECT_ERR(duo_wire_build_sign_finish_req(&e, &n, &a), DUO_E_INVALID_ARG);
    duo_wire_free_sign_finish_req(&a);
}

/* Malformed protobuf is DUO_E_DECODE for every message type. */
static void test_garbage(void) {
    static const uint8_t g1[] = {0x0a, 0x05, 0x01}; /* length runs past the end */
    static const uint8_t g2[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0xff}; /* overlong varint tag */
    static const uint8_t g3[] = {0x0f};                         /* wire type 7 */
    static const uint8_t g4[] = {0x00, 0x00};                   /* field number 0 */
    static const uint8_t g5[] = {0x0b, 0x0c};                   /* groups (deprecated) */
    static const uint8_t g6[] = {0x08, 0x01};                   /* field 1 (bytes) as a varint */
    struct {
        const uint8_t *p;
        size_t n;
    } g[] = {{g1, sizeof g1}, {g2, sizeof g2}, {g3, sizeof g3}, {g4, sizeof g4}, {g5, sizeof g5}};
    size_t ci, gi;
    for (ci = 0; ci < NCASES; ci++) {
        uint8_t *e = NULL;
        size_t n = 0;
        for (gi = 0; gi < sizeof g / sizeof g[0]; gi++) {
            int r = cases[ci].pf(g[gi].p, g[gi].n);
            if (r != DUO_E_DECODE) {
                fprintf(stderr, "  %s garbage %zu: %s\n", cases[ci].name, gi, duo_err_name(r));
            }
            DUO_EXPECT_ERR(r, DUO_E_DECODE);
        }
        /* A valid encoding cut short. */
        DUO_CHECK_OK(cases[ci].enc(&e, &n));
        if (n > 0) {
            DUO_EXPECT_ERR(cases[ci].pf(e, n - 1), DUO_E_DECODE);
        }
        free(e);
    }
    /* A bytes field sent with the varint wire type. */
    DUO_EXPECT_ERR(pf_sign_start_req(g6, sizeof g6), DUO_E_DECODE);
    DUO_EXPECT_ERR(pf_enroll_key_share_resp(g6, sizeof g6), DUO_E_DECODE);
    /* Empty input: a message with every field absent -> BAD_FIELD. */
    DUO_EXPECT_ERR(pf_sign_start_req(NULL, 0), DUO_E_BAD_FIELD);
    DUO_EXPECT_ERR(pf_sign_start_req(NULL, 5), DUO_E_INVALID_ARG);
}

static void test_oversize(void) {
    size_t big = (size_t)DUO_WIRE_MAX_MSG + 1;
    uint8_t *buf = calloc(1, big);
    size_t ci;
    DUO_REQUIRE(buf != NULL);
    for (ci = 0; ci < NCASES; ci++) {
        DUO_EXPECT_ERR(cases[ci].pf(buf, big), DUO_E_MSG_TOO_LARGE);
        /* exactly at the cap is decoded (and these zeros are invalid) */
        DUO_EXPECT_ERR(cases[ci].pf(buf, big - 1), DUO_E_DECODE);
    }
    free(buf);
    /* Builders refuse to produce an over-cap message. */
    {
        duo_sign_finish_req s;
        uint8_t *e = NULL;
        size_t n = 0;
        make_sign_finish_req(&s, 1);
        free(s.buf);
        s.buf = calloc(1, DUO_WIRE_MAX_MSG);
        s.c3.ptr = s.buf;
        s.c3.len = DUO_WIRE_MAX_MSG;
        DUO_EXPECT_ERR(duo_wire_build_sign_finish_req(&e, &n, &s), DUO_E_MSG_TOO_LARGE);
        DUO_CHECK(e == NULL);
        s.c3.len = DUO_WIRE_MAX_MSG + 1;
        DUO_EXPECT_ERR(duo_wire_build_sign_finish_req(&e, &n, &s), DUO_E_INVALID_ARG);
        duo_wire_free_sign_finish_req(&s);
    }
}

/* protobuf semantics: unknown fields are skipped, the struct is unchanged. */
static void test_unknown_fields_ignored(void) {
    static const uint8_t unknown[] = {0x78, 0x01,                       /* field 15, varint 1 */
                                      0xa2, 0x06, 0x02, 0xde, 0xad,     /* field 100, 2 bytes */
                                      0x8d, 0x01, 1,    2,    3,    4}; /* field 17, fixed32 */
    duo_sign_start_req a, b;
    uint8_t *e = NULL, *e2;
    size_t n = 0, ci;
    make_sign_start_req(&a, 3);
    DUO_CHECK_OK(duo_wire_build_sign_start_req(&e, &n, &a));
    e2 = malloc(n + 2 * sizeof unknown);
    memcpy(e2, unknown, sizeof unknown); /* before and after the known fields */
    memcpy(e2 + sizeof unknown, e, n);
    memcpy(e2 + sizeof unknown + n, unknown, sizeof unknown);
    DUO_CHECK_OK(duo_wire_parse_sign_start_req(&b, e2, n + 2 * sizeof unknown));
    DUO_CHECK(eq_sign_start_req(&a, &b));
    free(e2);
    free(e);
    /* Same for every message type (appended). */
    for (ci = 0; ci < NCASES; ci++) {
        DUO_CHECK_OK(cases[ci].enc(&e, &n));
        e2 = malloc(n + sizeof unknown);
        memcpy(e2, e, n);
        memcpy(e2 + n, unknown, sizeof unknown);
        DUO_CHECK_OK(cases[ci].pf(e2, n + sizeof unknown));
        free(e2);
        free(e);
    }
}

static void test_null_args(void) {
    duo_refresh_req r;
    uint8_t *e = NULL;
    size_t n = 0;
    uint8_t d[32] = {0};
    make_refresh_req(&r, 1);
    DUO_EXPECT_ERR(duo_wire_parse_refresh_req(NULL, d, 1), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_wire_build_refresh_req(NULL, &n, &r), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_wire_build_refresh_req(&e, NULL, &r), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_wire_build_refresh_req(&e, &n, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_wire_mac_input_refresh(NULL, &r), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_wire_mac_input_refresh(d, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_mac_compute(d, NULL, d), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_mac_check(d, d, NULL), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_secret_rotate(d, d, NULL, d), DUO_E_INVALID_ARG);
}

/* ------------------------------------------------------------ MAC inputs */
/* Flips each byte of [p, p+len) one at a time and checks the MAC input
 * changes (and returns to base when restored). */
#define CHECK_FIELD_BOUND(FN, MSG, FIELD_PTR, FIELD_LEN)    \
    do {                                                    \
        uint8_t *fp_ = (uint8_t *)(FIELD_PTR);              \
        size_t fl_ = (FIELD_LEN), k_;                       \
        uint8_t base_[32], got_[32];                        \
        DUO_CHECK_OK(FN(base_, (MSG)));                     \
        for (k_ = 0; k_ < fl_; k_ += (fl_ > 40 ? 37 : 1)) { \
            fp_[k_] ^= 0x01;                                \
            DUO_CHECK_OK(FN(got_, (MSG)));                  \
            DUO_CHECK(memcmp(base_, got_, 32) != 0);        \
            fp_[k_] ^= 0x01;                                \
        }                                                   \
        fp_[fl_ - 1] ^= 0x80;                               \
        DUO_CHECK_OK(FN(got_, (MSG)));                      \
        DUO_CHECK(memcmp(base_, got_, 32) != 0);            \
        fp_[fl_ - 1] ^= 0x80;                               \
        DUO_CHECK_OK(FN(got_, (MSG)));                      \
        DUO_CHECK(memcmp(base_, got_, 32) == 0);            \
    } while (0)

/* The mac itself is not part of its own input. */
#define CHECK_MAC_EXCLUDED(FN, MSG)           \
    do {                                      \
        uint8_t b1_[32], b2_[32];             \
        DUO_CHECK_OK(FN(b1_, (MSG)));         \
        (MSG)->mac[0] ^= 0xff;                \
        DUO_CHECK_OK(FN(b2_, (MSG)));         \
        (MSG)->mac[0] ^= 0xff;                \
        DUO_CHECK(memcmp(b1_, b2_, 32) == 0); \
    } while (0)

static void test_mac_inputs(void) {
    duo_enroll_confirm_req ec;
    duo_sign_start_req ss;
    duo_sign_finish_req sf;
    duo_refresh_req rf;
    duo_revoke_req rv;
    duo_status_req st;
    uint8_t a[32], b[32];

    make_enroll_confirm_req(&ec, 1);
    CHECK_FIELD_BOUND(duo_wire_mac_input_enroll_confirm, &ec, ec.sid, sizeof ec.sid);
    CHECK_FIELD_BOUND(duo_wire_mac_input_enroll_confirm, &ec, ec.public_key, sizeof ec.public_key);
    CHECK_MAC_EXCLUDED(duo_wire_mac_input_enroll_confirm, &ec);

    make_sign_start_req(&ss, 2);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_start, &ss, ss.key_id, sizeof ss.key_id);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_start, &ss, ss.device_nonce, sizeof ss.device_nonce);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_start, &ss, ss.digest, sizeof ss.digest);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_start, &ss, ss.r2_commitment, sizeof ss.r2_commitment);
    CHECK_MAC_EXCLUDED(duo_wire_mac_input_sign_start, &ss);

    make_sign_finish_req(&sf, 3);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_finish, &sf, sf.sid, sizeof sf.sid);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_finish, &sf, sf.r2, sizeof sf.r2);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_finish, &sf, sf.r2_proof, sizeof sf.r2_proof);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_finish, &sf, sf.r2_opening, sizeof sf.r2_opening);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_finish, &sf, sf.pin_proof, sizeof sf.pin_proof);
    CHECK_FIELD_BOUND(duo_wire_mac_input_sign_finish, &sf, sf.buf, sf.c3.len);
    CHECK_MAC_EXCLUDED(duo_wire_mac_input_sign_finish, &sf);
    /* c3's length is bound too (a prefix is a different input). */
    DUO_CHECK_OK(duo_wire_mac_input_sign_finish(a, &sf));
    sf.c3.len--;
    DUO_CHECK_OK(duo_wire_mac_input_sign_finish(b, &sf));
    DUO_CHECK(memcmp(a, b, 32) != 0);
    sf.c3.len++;
    duo_wire_free_sign_finish_req(&sf);

    make_refresh_req(&rf, 4);
    CHECK_FIELD_BOUND(duo_wire_mac_input_refresh, &rf, rf.key_id, sizeof rf.key_id);
    CHECK_FIELD_BOUND(duo_wire_mac_input_refresh, &rf, rf.device_nonce, sizeof rf.device_nonce);
    CHECK_MAC_EXCLUDED(duo_wire_mac_input_refresh, &rf);

    make_status_req(&st, 5);
    CHECK_FIELD_BOUND(duo_wire_mac_input_status, &st, st.key_id, sizeof st.key_id);
    CHECK_FIELD_BOUND(duo_wire_mac_input_status, &st, st.device_nonce, sizeof st.device_nonce);
    CHECK_MAC_EXCLUDED(duo_wire_mac_input_status, &st);

    make_revoke_req(&rv, 6);
    CHECK_FIELD_BOUND(duo_wire_mac_input_revoke, &rv, rv.key_id, sizeof rv.key_id);
    CHECK_FIELD_BOUND(duo_wire_mac_input_revoke, &rv, rv.device_nonce, sizeof rv.device_nonce);
    CHECK_MAC_EXCLUDED(duo_wire_mac_input_revoke, &rv);
    make_revoke_code_req(&rv, 6);
    CHECK_FIELD_BOUND(duo_wire_mac_input_revoke, &rv, rv.revocation_code, strlen(rv.revocation_code));
    memset(rv.revocation_code, 'A', sizeof rv.revocation_code); /* unterminated */
    DUO_EXPECT_ERR(duo_wire_mac_input_revoke(a, &rv), DUO_E_INVALID_ARG);

    /* Domain separation: same struct, different method -> different input. */
    make_refresh_req(&rf, 7);
    DUO_CHECK_OK(duo_wire_mac_input_refresh(a, &rf));
    DUO_CHECK_OK(duo_wire_mac_input_status(b, &rf));
    DUO_CHECK(memcmp(a, b, 32) != 0);
    make_revoke_req(&rv, 7);
    memcpy(rv.key_id, rf.key_id, sizeof rv.key_id);
    memcpy(rv.device_nonce, rf.device_nonce, sizeof rv.device_nonce);
    DUO_CHECK_OK(duo_wire_mac_input_revoke(b, &rv));
    DUO_CHECK(memcmp(a, b, 32) != 0);
}

/* Known answers (computed independently with Python hashlib/hmac from the
 * transcript encoding in transcript.h): pins the MAC and rotation formats. */
static void test_known_answers(void) {
    uint8_t secret[32], ctx[32], seed[32], out[32], want[32], mi[32];
    duo_refresh_req rf;
    size_t i;
    for (i = 0; i < 32; i++) {
        secret[i] = (uint8_t)i;
        ctx[i] = (uint8_t)(32 + i);
        seed[i] = (uint8_t)(64 + i);
    }
    DUO_CHECK_OK(duo_secret_rotate(out, secret, ctx, seed));
    hex2bin(want, "02b7059c72403bf3053d1cc4207bb6a34869bff436c6932fc3adf08df474b62d", 32);
    DUO_CHECK(memcmp(out, want, 32) == 0);

    memset(&rf, 0, sizeof rf);
    for (i = 0; i < 16; i++) {
        rf.key_id[i] = (uint8_t)i;
    }
    for (i = 0; i < 32; i++) {
        rf.device_nonce[i] = (uint8_t)(100 + i);
    }
    DUO_CHECK_OK(duo_wire_mac_input_refresh(mi, &rf));
    hex2bin(want, "1368c2efee97a519c9b6ebf3ffceda3ae14eb7b11b1cc140990c8fe31978defb", 32);
    DUO_CHECK(memcmp(mi, want, 32) == 0);
    DUO_CHECK_OK(duo_mac_compute(out, secret, mi));
    hex2bin(want, "b09f2703879a07052b80e6041dfc980f26e642a3d7920c977c321e4b02fa3d79", 32);
    DUO_CHECK(memcmp(out, want, 32) == 0);
}

static void test_mac_check(void) {
    uint8_t secret[32], input[32], mac[32];
    size_t i;
    int bit;
    fill(secret, sizeof secret, 11);
    fill(input, sizeof input, 12);
    DUO_CHECK_OK(duo_mac_compute(mac, secret, input));
    DUO_CHECK_OK(duo_mac_check(secret, input, mac));
    for (i = 0; i < DUO_MAC_BYTES; i++) {
        for (bit = 0; bit < 8; bit++) {
            mac[i] ^= (uint8_t)(1u << bit);
            DUO_EXPECT_ERR(duo_mac_check(secret, input, mac), DUO_E_UNAUTHENTICATED);
            mac[i] ^= (uint8_t)(1u << bit);
        }
    }
    secret[31] ^= 1;
    DUO_EXPECT_ERR(duo_mac_check(secret, input, mac), DUO_E_UNAUTHENTICATED);
    secret[31] ^= 1;
    input[0] ^= 0x80;
    DUO_EXPECT_ERR(duo_mac_check(secret, input, mac), DUO_E_UNAUTHENTICATED);
    input[0] ^= 0x80;
    DUO_CHECK_OK(duo_mac_check(secret, input, mac));
}

static void test_rotate(void) {
    uint8_t secret[32], ctx[32], seed[32], a[32], b[32], c[32];
    uint8_t *inputs[3];
    size_t w, i;
    int bit;
    fill(secret, 32, 21);
    fill(ctx, 32, 22);
    fill(seed, 32, 23);
    DUO_CHECK_OK(duo_secret_rotate(a, secret, ctx, seed));
    DUO_CHECK_OK(duo_secret_rotate(b, secret, ctx, seed));
    DUO_CHECK(memcmp(a, b, 32) == 0);
    DUO_CHECK(memcmp(a, secret, 32) != 0);
    inputs[0] = secret;
    inputs[1] = ctx;
    inputs[2] = seed;
    for (w = 0; w < 3; w++) {
        for (i = 0; i < 32; i++) {
            for (bit = 0; bit < 8; bit++) {
                inputs[w][i] ^= (uint8_t)(1u << bit);
                DUO_CHECK_OK(duo_secret_rotate(c, secret, ctx, seed));
                DUO_CHECK(memcmp(a, c, 32) != 0);
                inputs[w][i] ^= (uint8_t)(1u << bit);
            }
        }
    }
    /* Swapping context and seed changes the result. */
    DUO_CHECK_OK(duo_secret_rotate(c, secret, seed, ctx));
    DUO_CHECK(memcmp(a, c, 32) != 0);
    /* In place (next aliases secret) gives the same value. */
    memcpy(c, secret, 32);
    DUO_CHECK_OK(duo_secret_rotate(c, c, ctx, seed));
    DUO_CHECK(memcmp(a, c, 32) == 0);
}

/* SignStart's purpose (issue 16): each extra field exactly with its
 * purpose; every accepted request round-trips; the purpose is MACed. */
static void test_sign_purpose(void) {
    duo_sign_start_req a, b;
    uint8_t *e = NULL, m0[32], m1[32];
    size_t n = 0;
    make_sign_start_req(&a, 7);
    DUO_CHECK_OK(duo_wire_mac_input_sign_start(m0, &a));
    a.purpose = DUO_SIGN_PURPOSE_DOCUMENT;
    DUO_CHECK_OK(duo_wire_mac_input_sign_start(m1, &a));
    DUO_CHECK(memcmp(m0, m1, 32) != 0); /* a purpose changes the MAC input */
    a.purpose = DUO_SIGN_PURPOSE_CSR;
    DUO_EXPECT_ERR(duo_wire_build_sign_start_req(&e, &n, &a), DUO_E_INVALID_ARG); /* CSR without info */
    a.csr_info_len = 200;
    fill(a.csr_info, a.csr_info_len, 3);
    DUO_CHECK_OK(duo_wire_build_sign_start_req(&e, &n, &a));
    DUO_CHECK_OK(duo_wire_parse_sign_start_req(&b, e, n));
    DUO_CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(e);
    a.purpose = DUO_SIGN_PURPOSE_LOGIN; /* info with LOGIN: refused */
    DUO_EXPECT_ERR(duo_wire_build_sign_start_req(&e, &n, &a), DUO_E_INVALID_ARG);
    a.csr_info_len = 0;
    memset(a.csr_info, 0, sizeof a.csr_info);
    a.login_challenge_len = DUO_LOGIN_CHALLENGE_MIN - 1;
    fill(a.login_challenge, a.login_challenge_len, 5);
    DUO_EXPECT_ERR(duo_wire_build_sign_start_req(&e, &n, &a), DUO_E_INVALID_ARG);
    a.login_challenge_len = DUO_LOGIN_CHALLENGE_MIN;
    fill(a.login_challenge, a.login_challenge_len, 5);
    DUO_CHECK_OK(duo_wire_build_sign_start_req(&e, &n, &a));
    DUO_CHECK_OK(duo_wire_parse_sign_start_req(&b, e, n));
    DUO_CHECK(memcmp(&a, &b, sizeof a) == 0);
    free(e);
    /* An unknown purpose on the wire: refused. */
    {
        Duosign__V1__SignStartRequest *pm;
        uint8_t enc[512];
        size_t len;
        make_sign_start_req(&a, 7);
        DUO_CHECK_OK(duo_wire_build_sign_start_req(&e, &n, &a));
        pm = duosign__v1__sign_start_request__unpack(NULL, n, e);
        DUO_REQUIRE(pm != NULL);
        pm->purpose = (Duosign__V1__SignPurpose)DUO_SIGN_PURPOSE_COUNT;
        len = duosign__v1__sign_start_request__pack(pm, enc);
        DUO_EXPECT_ERR(duo_wire_parse_sign_start_req(&b, enc, len), DUO_E_BAD_FIELD);
        duosign__v1__sign_start_request__free_unpacked(pm, NULL);
        free(e);
    }
}

int main(void) {
    DUO_RUN(test_roundtrip);
    DUO_RUN(test_sign_purpose);
    DUO_RUN(test_spans);
    DUO_RUN(test_tamper_lengths);
    DUO_RUN(test_scalar_fields);
    DUO_RUN(test_garbage);
    DUO_RUN(test_oversize);
    DUO_RUN(test_unknown_fields_ignored);
    DUO_RUN(test_null_args);
    DUO_RUN(test_mac_inputs);
    DUO_RUN(test_known_answers);
    DUO_RUN(test_mac_check);
    DUO_RUN(test_rotate);
    return duo_test_finish();
}
