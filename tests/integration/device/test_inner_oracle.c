/* Issue 12's oracle test: no offline PIN test from recorded traffic.
 *
 * A real duosign-cloud, the device library over gRPC + TLS. The transport
 * is wrapped to record every request and response exactly as the gRPC layer
 * carries them (what a TLS-terminating proxy or a request log sees), through
 * an enrolment and several signatures. Then the thief takes the phone's
 * state (x2' = x2 - KDF(PIN), the salt, Q) and tries each PIN of a small
 * space with every known way to test a guess:
 *   A. verify SignFinish's PIN proof against X2 = (x2' + KDF(guess))*G;
 *   B. compare X2 with EnrollKeyShare's Q2;
 *   C. Q1 (EnrollKeyShare's response) + X2 == Q;
 *   D. the PDL values: a*(Q - X2) + b*G == alpha*G (EnrollPdlOpen);
 *   E. X2 or Q - X2 anywhere in any recorded byte string.
 * Without the inner channel's keys every one of them is impossible (the
 * plain messages do not even parse) and no guess matches. The same test,
 * given the session keys (the device's ephemerals, recorded from its RNG),
 * opens every record and finds the PIN with each of A-D: so the first half
 * cannot pass by accident.
 *
 * Usage: test_inner_oracle PATH/TO/duosign-cloud */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>

#include "blob.h"
#include "duo_it.h"
#include "duosign/curve.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"
#include "duosign/dlog_proof.h"
#include "duosign/mem.h"
#include "duosign/inner_channel.h"
#include "duosign/transcript.h"
#include "p2.h"
#include "p2_internal.h"
#include "test_harness.h"
#include "wire.h"

#define PIN "24680"
#define GUESS_FIRST 24640 /* guesses 24640..24699: 60 PINs, the true one among them */
#define GUESSES 60
#define SIGNATURES 3
#define MAX_REC 64
#define MAX_RNG 4096

typedef struct {
    char method[48];
    uint8_t *req, *resp;
    size_t req_len, resp_len;
} rec_call;

static rec_call g_rec[MAX_REC];
static size_t g_nrec;
static uint8_t g_rng32[MAX_RNG][32]; /* every 32-byte draw of the device's RNG */
static size_t g_nrng;

static duo_grpc_transport *g_t;

/* The hostile relay (test_tamper): before forwarding a request of these
 * methods it sends altered copies first; tallies of what came back. */
typedef struct {
    int on;
    int calls, ok, wrong_pin, auth, replay, unknown, malformed, static_key, version, other;
    int other_code;
} tamper_tally;
static tamper_tally g_tt;

static void tally(int r) {
    g_tt.calls++;
    if (r == DUO_OK)
        g_tt.ok++;
    else if (r == DUO_E_WRONG_PIN)
        g_tt.wrong_pin++;
    else if (r == DUO_E_CHANNEL_AUTH)
        g_tt.auth++;
    else if (r == DUO_E_CHANNEL_REPLAY)
        g_tt.replay++;
    else if (r == DUO_E_CHANNEL_UNKNOWN)
        g_tt.unknown++;
    else if (r == DUO_E_CHANNEL_MALFORMED)
        g_tt.malformed++;
    else if (r == DUO_E_CHANNEL_STATIC_KEY)
        g_tt.static_key++;
    else if (r == DUO_E_UNSUPPORTED)
        g_tt.version++; /* channel_version altered */
    else {
        g_tt.other++;
        g_tt.other_code = r;
    }
}

static int send_raw(const char *method, const uint8_t *req, size_t len) {
    uint8_t *resp = NULL;
    size_t rl = 0;
    char msg[256];
    int r = duo_grpc_transport_call(g_t, method, req, len, &resp, &rl, msg, sizeof msg);
    if (resp) duo_grpc_transport_free_resp(g_t, resp, rl);
    return r;
}

/* Every byte after the envelope's marker flipped, each copy sent alone;
 * then the record on another method's path. */
static void tamper_battery(const char *method, const uint8_t *req, size_t len) {
    uint8_t *copy = malloc(len);
    for (size_t i = 2; i < len; i++) {
        memcpy(copy, req, len);
        copy[i] ^= 0x01;
        int rr = send_raw(method, copy, len);
        if (getenv("ORACLE_DEBUG")) fprintf(stderr, "%s byte %zu/%zu: %s\n", method, i, len, duo_err_name(rr));
        tally(rr);
    }
    const char *other = strstr(method, "SignFinish") ? "/duosign.v1.DuoSign/SignStart" : "/duosign.v1.DuoSign/Status";
    tally(send_raw(other, req, len));
    free(copy);
}

/* ------------------------------------------------------------ recording */

static int rec_transport(void *user, const char *method, const uint8_t *req, size_t req_len, uint8_t **resp,
                         size_t *resp_len, char *errmsg, size_t cap) {
    if (g_tt.on && (strstr(method, "/SignStart") || strstr(method, "/SignFinish")))
        tamper_battery(method, req, req_len);
    int r = duo_grpc_transport_call(user, method, req, req_len, resp, resp_len, errmsg, cap);
    if (g_tt.on && r == DUO_OK && strstr(method, "/SignFinish")) {
        /* The genuine record replayed: its session is closed. */
        int rr = send_raw(method, req, req_len);
        g_tt.replay += rr == DUO_E_CHANNEL_UNKNOWN;
        g_tt.calls++;
    }
    if (g_tt.on) return r;
    if (g_nrec < MAX_REC) {
        rec_call *c = &g_rec[g_nrec++];
        const char *slash = strrchr(method, '/');
        snprintf(c->method, sizeof c->method, "%s", slash ? slash + 1 : method);
        c->req = malloc(req_len + 1);
        memcpy(c->req, req, req_len);
        c->req_len = req_len;
        if (r == DUO_OK && *resp_len) {
            c->resp = malloc(*resp_len);
            memcpy(c->resp, *resp, *resp_len);
            c->resp_len = *resp_len;
        }
    }
    return r;
}

static int rec_rng(void *user, uint8_t *out, size_t len) {
    (void)user;
    if (RAND_bytes(out, (int)len) != 1) return 1;
    if (len == 32 && g_nrng < MAX_RNG) memcpy(g_rng32[g_nrng++], out, 32);
    return 0;
}

/* ------------------------------------------------------------ the thief */

/* What the thief knows of the key: the phone's state, parsed. */
typedef struct {
    const duo_ec *ec;
    duo_scalar x2_masked;
    uint8_t salt[16];
    duo_point q;
} phone;

/* The plain messages an attack needs (from the records, when they open). */
typedef struct {
    int have_ks_req, have_ks_resp, have_pdl, n_finish;
    duo_enroll_key_share_req ks_req;
    duo_enroll_key_share_resp ks_resp;
    duo_enroll_pdl_open_req pdl_req;
    duo_enroll_pdl_open_resp pdl_resp;
    duo_sign_finish_req finish[SIGNATURES];
} plain;

/* Parses the records as the plain protocol would: with the channel, every
 * one is a Sealed envelope and none parses. */
static void parse_plain(plain *p, const char *method, const uint8_t *req, size_t rql, const uint8_t *resp, size_t rsl) {
    if (strcmp(method, "EnrollKeyShare") == 0) {
        if (duo_wire_parse_enroll_key_share_req(&p->ks_req, req, rql) == DUO_OK) p->have_ks_req = 1;
        if (resp && duo_wire_parse_enroll_key_share_resp(&p->ks_resp, resp, rsl) == DUO_OK) p->have_ks_resp = 1;
    } else if (strcmp(method, "EnrollPdlOpen") == 0) {
        if (duo_wire_parse_enroll_pdl_open_req(&p->pdl_req, req, rql) == DUO_OK && resp &&
            duo_wire_parse_enroll_pdl_open_resp(&p->pdl_resp, resp, rsl) == DUO_OK)
            p->have_pdl = 1;
    } else if (strcmp(method, "SignFinish") == 0 && p->n_finish < SIGNATURES) {
        if (duo_wire_parse_sign_finish_req(&p->finish[p->n_finish], req, rql) == DUO_OK) p->n_finish++;
    }
}

static void plain_free(plain *p) {
    if (p->have_ks_resp) duo_wire_free_enroll_key_share_resp(&p->ks_resp);
    for (int i = 0; i < p->n_finish; i++) duo_wire_free_sign_finish_req(&p->finish[i]);
}

static int point_is(const duo_ec *ec, const duo_point *a, const uint8_t bytes[33]) {
    uint8_t s[33];
    duo_point_serialize(ec, s, a);
    return memcmp(s, bytes, 33) == 0;
}

/* Counts of guesses each attack accepted; found_* the guess. */
typedef struct {
    int a, b, c, d, e;
    long found_a, found_b, found_c, found_d;
} hits;

static void try_guess(const phone *ph, const plain *p, long guess, hits *h) {
    char pin[16];
    duo_scalar x2, qx2neg, s;
    duo_point x2g, q1, t1, t2;
    uint8_t x2b[33], q1b[33];
    snprintf(pin, sizeof pin, "%ld", guess);
    if (duo__p2_pin_unmask(ph->ec, &x2, &ph->x2_masked, (const uint8_t *)pin, strlen(pin), ph->salt) != DUO_OK ||
        duo_point_mul_base(ph->ec, &x2g, &x2) != DUO_OK)
        return;
    duo_point_serialize(ph->ec, x2b, &x2g);
    /* Q1 = Q - X2 */
    if (duo_scalar_negate(ph->ec, &qx2neg, &x2) != DUO_OK || duo_point_mul_base(ph->ec, &t1, &qx2neg) != DUO_OK ||
        duo_point_add(ph->ec, &q1, &ph->q, &t1) != DUO_OK)
        return;
    duo_point_serialize(ph->ec, q1b, &q1);
    /* A: the PIN proof of every recorded signature. */
    for (int i = 0; i < p->n_finish; i++) {
        duo_dlog_proof pr;
        duo_binding bind;
        memcpy(bind.sid, p->finish[i].sid, 32);
        bind.role = DUO_ROLE_DEVICE;
        if (duo_dlog_proof_parse(ph->ec, &pr, p->finish[i].pin_proof, 65) == DUO_OK &&
            duo_dlog_verify(ph->ec, &pr, &x2g, &bind, "pin") == DUO_OK) {
            h->a++;
            h->found_a = guess;
            break;
        }
    }
    /* B: Q2 as sent at enrolment. */
    if (p->have_ks_req && memcmp(p->ks_req.q2, x2b, 33) == 0) {
        h->b++;
        h->found_b = guess;
    }
    /* C: the cloud's Q1 plus X2 is the public key. */
    if (p->have_ks_resp && memcmp(p->ks_resp.q1, q1b, 33) == 0) {
        h->c++;
        h->found_c = guess;
    }
    /* D: alpha*G = a*Q1 + b*G with Q1 = Q - X2. */
    if (p->have_pdl) {
        duo_scalar a, b;
        uint8_t bred[32];
        BIGNUM *bn = BN_bin2bn(p->pdl_req.b, DUO_PDL_B_BYTES, NULL);
        int ok = bn && duo_scalar_from_bn_mod(ph->ec, &b, bn) == DUO_OK &&
                 duo_scalar_reduce32(ph->ec, &a, p->pdl_req.a) == DUO_OK;
        BN_free(bn);
        (void)bred;
        if (ok && duo_point_mul(ph->ec, &t1, &q1, &a) == DUO_OK && duo_point_mul_base(ph->ec, &t2, &b) == DUO_OK &&
            duo_point_add(ph->ec, &t1, &t1, &t2) == DUO_OK && point_is(ph->ec, &t1, p->pdl_resp.alpha_point)) {
            h->d++;
            h->found_d = guess;
        }
    }
    /* E: the guess's X2 or Q1 anywhere in the recorded bytes. */
    for (size_t i = 0; i < g_nrec; i++) {
        const rec_call *c = &g_rec[i];
        if (memmem(c->req, c->req_len, x2b, 33) || memmem(c->req, c->req_len, q1b, 33) ||
            (c->resp && (memmem(c->resp, c->resp_len, x2b, 33) || memmem(c->resp, c->resp_len, q1b, 33))))
            h->e++;
    }
    duo_memzero(&x2, sizeof x2);
    duo_memzero(&s, sizeof s);
}

static void run_guesses(const phone *ph, const plain *p, hits *h) {
    memset(h, 0, sizeof *h);
    for (long g = GUESS_FIRST; g < GUESS_FIRST + GUESSES; g++) try_guess(ph, p, g, h);
}

/* ------------------------------------------------- given the channel keys */

static int fixed_rng(void *data, uint8_t *out, size_t len) {
    if (len != 32) return 1;
    memcpy(out, data, 32);
    return 0;
}

/* The device ephemeral behind a request 0: the recorded RNG draw whose
 * X25519 public key it is. */
static int find_ephemeral(uint8_t priv[32], const uint8_t pub[32]) {
    for (size_t i = 0; i < g_nrng; i++) {
        EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, g_rng32[i], 32);
        uint8_t p[32];
        size_t n = 32;
        int ok = k && EVP_PKEY_get_raw_public_key(k, p, &n) == 1 && memcmp(p, pub, 32) == 0;
        EVP_PKEY_free(k);
        if (ok) {
            memcpy(priv, g_rng32[i], 32);
            return 1;
        }
    }
    return 0;
}

/* Opens every record with the session keys and parses the plain messages. */
static int open_all(plain *p, uint32_t static_id, const uint8_t static_pub[32]) {
    duo_channel chans[MAX_REC];
    size_t nch = 0;
    int opened = 0;
    for (size_t i = 0; i < g_nrec; i++) {
        rec_call *c = &g_rec[i];
        duo_ch_record rq, rs;
        uint8_t *b1 = NULL, *b2 = NULL, *pq = NULL, *ps = NULL;
        size_t lq = 0, ls = 0;
        if (!c->resp || duo_wire_parse_sealed(&rq, &b1, c->req, c->req_len) != DUO_OK) continue;
        if (duo_wire_parse_sealed(&rs, &b2, c->resp, c->resp_len) != DUO_OK) {
            free(b1);
            continue;
        }
        duo_channel *ch = NULL;
        if (rq.has_ephemeral) {
            uint8_t e[32];
            duo_rng fx = {fixed_rng, e};
            if (find_ephemeral(e, rq.ephemeral) &&
                duo_ch_device_begin(&chans[nch], static_id, static_pub, &fx) == DUO_OK) {
                chans[nch].n_d2c = 1; /* request 0 was sealed */
                ch = &chans[nch++];
            }
        } else {
            for (size_t j = 0; j < nch; j++)
                if (chans[j].established && memcmp(chans[j].channel_id, rq.channel_id, 16) == 0) ch = &chans[j];
        }
        if (ch && duo_ch_open(ch, &ps, &ls, c->method, &rs) == DUO_OK &&
            duo_ch_peek(ch, DUO_CH_D2C, &pq, &lq, c->method, &rq) == DUO_OK) {
            parse_plain(p, c->method, pq, lq, ps, ls);
            opened++;
        }
        free(pq);
        free(ps);
        free(b1);
        free(b2);
    }
    for (size_t j = 0; j < nch; j++) duo_ch_clear(&chans[j]);
    return opened;
}

/* ------------------------------------------------------------ the test */

static const char *g_bin;
static char g_parent[256], g_dir[300], g_addr[64];
static duo_it_daemon g_d;
static uint8_t *g_blob;
static size_t g_blob_len;

static int export_state(duo_device_ctx *ctx) {
    duo_device_blob_free(g_blob, g_blob_len);
    g_blob = NULL;
    return duo_device_state_export(ctx, &g_blob, &g_blob_len) == DUO_OK && duo_device_state_persisted(ctx) == DUO_OK
               ? 0
               : -1;
}

static duo_device_ctx *g_ctx;
static uint8_t g_pub[33];

/* Enrols and signs SIGNATURES times, recording everything. */
static int record_session(void) {
    char out[2048], tok[256], path[512], code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    char *ca = calloc(1, 1 << 16);
    size_t ca_len;
    duo_device_ctx *ctx = NULL;
    int r = -1;
    snprintf(g_parent, sizeof g_parent, "/tmp/duo-oracle-XXXXXX");
    if (!mkdtemp(g_parent)) return -1;
    snprintf(g_dir, sizeof g_dir, "%s/data", g_parent);
    if (duo_it_run_cmd(out, sizeof out, "'%s' init --data '%s' 2>&1", g_bin, g_dir) != 0) return -1;
    snprintf(path, sizeof path, "%s/ca.pem", g_dir);
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    ca_len = fread(ca, 1, (1 << 16) - 1, f);
    fclose(f);
    if (duo_it_daemon_start(&g_d, g_bin, g_dir, 0, "--paillier-bits 2048 --prime-pool 1 --require-channel") != 0)
        goto out;
    snprintf(g_addr, sizeof g_addr, "127.0.0.1:%d", g_d.port);
    if (duo_it_run_cmd(tok, sizeof tok, "'%s' token issue --data '%s' --citizen OR-001 --ttl 3600 2>/dev/null", g_bin,
                       g_dir) != 0 ||
        tok[0] == '\0')
        goto out;
    if (duo_device_ctx_new(&ctx) != DUO_OK || duo_grpc_transport_new(&g_t, g_addr, ca, ca_len, 120000) != DUO_OK ||
        duo_device_set_transport(ctx, rec_transport, duo_grpc_transport_free_resp, g_t) != DUO_OK ||
        duo_device_set_rng(ctx, rec_rng, NULL) != DUO_OK)
        goto out;
    int e = duo_device_enroll(ctx, g_addr, (const uint8_t *)tok, strlen(tok), (const uint8_t *)PIN, strlen(PIN), 2048);
    if (e == DUO_OK && export_state(ctx) == 0) e = duo_device_enroll_confirm(ctx, code, sizeof code);
    if (e != DUO_OK || export_state(ctx) != 0) {
        fprintf(stderr, "enrolment failed: %s (%s)\n", duo_err_name(e), duo_device_errmsg(ctx));
        goto out;
    }
    uint8_t pub[33];
    if (duo_device_pubkey(ctx, pub) != DUO_OK) goto out;
    for (int i = 0; i < SIGNATURES; i++) {
        uint8_t dg[32], sig[64];
        char text[32];
        snprintf(text, sizeof text, "document %d", i);
        SHA256((const uint8_t *)text, strlen(text), dg);
        if ((e = duo_device_sign(ctx, sig, dg, (const uint8_t *)PIN, strlen(PIN))) != DUO_OK ||
            !duo_it_openssl_verify(pub, dg, sig) || export_state(ctx) != 0) {
            fprintf(stderr, "signature %d failed: %s\n", i, duo_err_name(e));
            goto out;
        }
    }
    memcpy(g_pub, pub, sizeof pub);
    g_ctx = ctx;
    ctx = NULL;
    r = 0;
out:
    duo_device_ctx_free(ctx);
    free(ca);
    return r;
}

static phone g_phone;
static duo_ec *g_ec;
static duo__blob_fields g_f;

static int take_phone(void) {
    if (duo__blob_decode(&g_f, g_blob, g_blob_len) != DUO_OK || !g_f.has_chkey) return -1;
    if (duo_ec_new(&g_ec, (duo_curve)g_f.curve, NULL) != DUO_OK) return -1;
    g_phone.ec = g_ec;
    memcpy(g_phone.salt, g_f.pin_salt, 16);
    return duo_scalar_parse(g_ec, &g_phone.x2_masked, g_f.x2_masked) == DUO_OK &&
                   duo_point_parse(g_ec, &g_phone.q, g_f.q, 33) == DUO_OK
               ? 0
               : -1;
}

static void test_recorded_everything(void) {
    size_t sealed = 0;
    int seen_finish = 0, seen_ks = 0, seen_pdl = 0;
    for (size_t i = 0; i < g_nrec; i++) {
        if (strcmp(g_rec[i].method, "ChannelKey") == 0) continue; /* first contact: public key only */
        sealed +=
            duo_wire_is_sealed(g_rec[i].req, g_rec[i].req_len) && duo_wire_is_sealed(g_rec[i].resp, g_rec[i].resp_len);
        seen_finish += strcmp(g_rec[i].method, "SignFinish") == 0;
        seen_ks += strcmp(g_rec[i].method, "EnrollKeyShare") == 0;
        seen_pdl += strcmp(g_rec[i].method, "EnrollPdlOpen") == 0;
    }
    /* 1 ChannelKey, 5 enrolment rounds, 2 per signature. */
    DUO_CHECK_MSG(g_nrec == 1 + 5 + 2 * SIGNATURES, "recorded %zu calls", g_nrec);
    DUO_CHECK(sealed == g_nrec - 1);
    DUO_CHECK(seen_finish == SIGNATURES && seen_ks == 1 && seen_pdl == 1);
}

static void test_thief_without_keys(void) {
    plain p;
    hits h;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < g_nrec; i++)
        parse_plain(&p, g_rec[i].method, g_rec[i].req, g_rec[i].req_len, g_rec[i].resp, g_rec[i].resp_len);
    /* Nothing parses as the plain protocol: no proof, no Q2, Q1 or PDL value. */
    DUO_CHECK(p.n_finish == 0 && !p.have_ks_req && !p.have_ks_resp && !p.have_pdl);
    run_guesses(&g_phone, &p, &h);
    DUO_CHECK_MSG(h.a == 0 && h.b == 0 && h.c == 0 && h.d == 0 && h.e == 0, "hits a%d b%d c%d d%d e%d", h.a, h.b, h.c,
                  h.d, h.e);
    plain_free(&p);
}

static void test_thief_with_channel_keys(void) {
    plain p;
    hits h;
    memset(&p, 0, sizeof p);
    int opened = open_all(&p, g_f.chkey_number, g_f.chkey_pub);
    DUO_CHECK_MSG(opened == (int)g_nrec - 1, "opened %d of %zu", opened, g_nrec - 1);
    DUO_CHECK(p.n_finish == SIGNATURES && p.have_ks_req && p.have_ks_resp && p.have_pdl);
    run_guesses(&g_phone, &p, &h);
    long want = atol(PIN);
    DUO_CHECK_MSG(h.a == 1 && h.found_a == want, "PIN proof: %d hits, %ld", h.a, h.found_a);
    DUO_CHECK_MSG(h.b == 1 && h.found_b == want, "Q2: %d hits", h.b);
    DUO_CHECK_MSG(h.c == 1 && h.found_c == want, "Q1: %d hits", h.c);
    DUO_CHECK_MSG(h.d == 1 && h.found_d == want, "PDL: %d hits", h.d);
    DUO_CHECK(h.e == 0); /* still ciphertext on the wire */
    plain_free(&p);
}

/* A hostile relay alters every byte of a signature's records, replays and
 * moves them: each copy is refused with an inner-channel error, nothing is
 * charged to the PIN counter, and the genuine records still make a valid
 * signature. */
static void test_tamper(void) {
    duo_device_status_info before, after;
    uint8_t dg[32] = {7}, sig[64];
    DUO_REQUIRE(duo_device_status(g_ctx, &before) == DUO_OK);
    memset(&g_tt, 0, sizeof g_tt);
    g_tt.on = 1;
    int r = duo_device_sign(g_ctx, sig, dg, (const uint8_t *)PIN, strlen(PIN));
    g_tt.on = 0;
    DUO_CHECK_OK(r);
    DUO_CHECK(r == DUO_OK && duo_it_openssl_verify(g_pub, dg, sig));
    DUO_CHECK_MSG(g_tt.ok == 0 && g_tt.wrong_pin == 0 && g_tt.other == 0, "ok %d wrong_pin %d other %d (%s)", g_tt.ok,
                  g_tt.wrong_pin, g_tt.other, duo_err_name(g_tt.other_code));
    /* Most bytes are ciphertext (a failed tag); header bytes give their own
     * errors: another static key number, channel id or counter, a field of
     * the wrong length. */
    DUO_CHECK(g_tt.version == 2);
    DUO_CHECK_MSG(g_tt.auth > 500 && g_tt.static_key >= 1 && g_tt.unknown >= 1 && g_tt.replay >= 2 &&
                      g_tt.malformed >= 1,
                  "auth %d static %d unknown %d replay %d malformed %d of %d", g_tt.auth, g_tt.static_key, g_tt.unknown,
                  g_tt.replay, g_tt.malformed, g_tt.calls);
    DUO_REQUIRE(duo_device_status(g_ctx, &after) == DUO_OK);
    DUO_CHECK(after.pin_attempts_left == before.pin_attempts_left && after.state == before.state);
}

/* A state from before the channel (the same key written as v1/v2, no pinned
 * key) works after one online step: its first call fetches and pins the
 * channel key, seals, and leaves the state dirty; saved, it is v4. */
static void test_upgrade_old_blob(void) {
    duo__blob_fields f;
    uint8_t *old = NULL, *now = NULL;
    size_t old_len = 0, now_len = 0;
    duo_device_ctx *c = NULL;
    duo_device_status_info info;
    DUO_REQUIRE(duo__blob_decode(&f, g_blob, g_blob_len) == DUO_OK);
    f.has_chkey = 0;
    DUO_REQUIRE(duo__blob_encode(&old, &old_len, &f) == DUO_OK);
    DUO_CHECK(old[5] == 1 || old[5] == 2); /* version 1 or 2 */
    DUO_REQUIRE(duo_device_ctx_new(&c) == DUO_OK);
    DUO_CHECK_OK(duo_device_state_import(c, old, old_len));
    DUO_CHECK_OK(duo_device_set_transport(c, duo_grpc_transport_call, duo_grpc_transport_free_resp, g_t));
    DUO_CHECK(!duo_device_state_dirty(c));
    DUO_CHECK_OK(duo_device_status(c, &info)); /* through the channel: the daemon refuses plain requests */
    DUO_CHECK(info.state == DUO_DEVICE_KEY_ACTIVE);
    DUO_CHECK(duo_device_state_dirty(c));
    DUO_CHECK_OK(duo_device_state_export(c, &now, &now_len));
    DUO_REQUIRE(duo__blob_decode(&f, now, now_len) == DUO_OK);
    DUO_CHECK(f.has_chkey && f.chkey_number == g_f.chkey_number && memcmp(f.chkey_pub, g_f.chkey_pub, 32) == 0);
    DUO_CHECK(now[5] == 4);
    duo_device_blob_free(now, now_len);
    duo_device_ctx_free(c);
    duo_secure_free(old);
}

static int restart_daemon(void) {
    duo_it_daemon_stop(&g_d);
    if (duo_it_daemon_start(&g_d, g_bin, g_dir, g_d.port, "--paillier-bits 2048 --prime-pool 1 --require-channel") != 0)
        return -1;
    return 0;
}

/* Rotation (docs/SECURITY.md 1.6.1): after `channel-key rotate` and a
 * restart, the device still on key 1 signs, is told to move, and its next
 * call pins key 2 (asked sealed under key 1); after `retire 1` a state
 * still pinned to key 1 is refused with DUO_E_CHANNEL_STATIC_KEY. */
static void test_rotation(void) {
    char out[1024];
    uint8_t dg[32] = {9}, sig[64], *b = NULL;
    size_t n = 0;
    duo__blob_fields f;
    duo_device_status_info info;
    DUO_REQUIRE(duo_it_run_cmd(out, sizeof out, "'%s' channel-key rotate --data '%s' 2>&1", g_bin, g_dir) == 0);
    DUO_REQUIRE(restart_daemon() == 0);
    DUO_CHECK_OK(duo_device_sign(g_ctx, sig, dg, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK(duo_it_openssl_verify(g_pub, dg, sig));
    DUO_REQUIRE(export_state(g_ctx) == 0);
    DUO_CHECK_OK(duo_device_status(g_ctx, &info)); /* fetches key 2 first */
    DUO_CHECK(duo_device_state_dirty(g_ctx));
    DUO_REQUIRE(duo_device_state_export(g_ctx, &b, &n) == DUO_OK);
    DUO_REQUIRE(duo__blob_decode(&f, b, n) == DUO_OK);
    DUO_CHECK(f.has_chkey && f.chkey_number == 2 && memcmp(f.chkey_pub, g_f.chkey_pub, 32) != 0);
    duo_device_blob_free(b, n);
    /* retire key 1: the old state (pinned to 1) is refused, specifically */
    DUO_CHECK(duo_it_run_cmd(out, sizeof out, "'%s' channel-key retire 2 --data '%s' 2>&1", g_bin, g_dir) != 0);
    DUO_REQUIRE(duo_it_run_cmd(out, sizeof out, "'%s' channel-key retire 1 --data '%s' 2>&1", g_bin, g_dir) == 0);
    DUO_REQUIRE(restart_daemon() == 0);
    duo_device_ctx *c = NULL;
    DUO_REQUIRE(duo_device_ctx_new(&c) == DUO_OK);
    DUO_CHECK_OK(duo_device_state_import(c, g_blob, g_blob_len));
    DUO_CHECK_OK(duo_device_set_transport(c, duo_grpc_transport_call, duo_grpc_transport_free_resp, g_t));
    DUO_EXPECT_ERR(duo_device_status(c, &info), DUO_E_CHANNEL_STATIC_KEY);
    DUO_CHECK(duo_err_exit_code(DUO_E_CHANNEL_STATIC_KEY) == 22);
    /* the user's way out: unpin, and the next call pins the current key */
    DUO_EXPECT_ERR(duo_device_channel_unpin(NULL), DUO_E_INVALID_ARG);
    DUO_CHECK_OK(duo_device_channel_unpin(c));
    DUO_CHECK_OK(duo_device_status(c, &info));
    DUO_CHECK(duo_device_state_dirty(c));
    duo_device_ctx_free(c);
    DUO_CHECK_OK(duo_device_status(g_ctx, &info)); /* the moved device is fine */
}

/* serve --require-channel (this daemon's): a plain request is refused
 * before anything parses it; the plain ChannelKey (first contact) is not. */
static void test_plain_refused(void) {
    duo_status_req q;
    uint8_t *b = NULL;
    size_t n = 0;
    memset(&q, 0, sizeof q);
    q.key_id[0] = 1;
    DUO_REQUIRE(duo_wire_build_status_req(&b, &n, &q) == DUO_OK);
    DUO_EXPECT_ERR(send_raw("/duosign.v1.DuoSign/Status", b, n), DUO_E_CHANNEL_REQUIRED);
    DUO_EXPECT_ERR(send_raw("/duosign.v1.DuoSign/SignFinish", b, n), DUO_E_CHANNEL_REQUIRED);
    DUO_CHECK_OK(send_raw("/duosign.v1.DuoSign/ChannelKey", (const uint8_t *)"", 0));
    free(b);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/duosign-cloud\n", argv[0]);
        return 2;
    }
    g_bin = argv[1];
    if (record_session() != 0 || take_phone() != 0) {
        fprintf(stderr, "setup failed\n");
        duo_it_daemon_kill(&g_d);
        return 1;
    }
    DUO_RUN(test_recorded_everything);
    DUO_RUN(test_thief_without_keys);
    DUO_RUN(test_thief_with_channel_keys);
    DUO_RUN(test_tamper);
    DUO_RUN(test_plain_refused);
    DUO_RUN(test_upgrade_old_blob);
    DUO_RUN(test_rotation);
    duo_device_ctx_free(g_ctx);
    duo_it_daemon_stop(&g_d);
    for (size_t i = 0; i < g_nrec; i++) {
        free(g_rec[i].req);
        free(g_rec[i].resp);
    }
    duo_grpc_transport_free(g_t);
    duo_device_blob_free(g_blob, g_blob_len);
    duo_ec_free(g_ec);
    duo_it_run_cmd(NULL, 0, "rm -rf '%s'", g_parent);
    return duo_test_finish();
}
