/* The resynchronisation's PIN proof binding (duosign/resync.h) and its
 * request (wire_resync.c): a proof made for one key, nonce, restore epoch
 * and secret verifies for exactly those; a wrong PIN (another x2), a signing
 * session's "pin" proof, any flipped byte and another stored Q2 all fail as
 * a wrong PIN; an unparsable stored Q2 is the store's fault. The request
 * round-trips, refuses a secret of the wrong length and epoch 0, and its MAC
 * input changes with every field. */
#include <stdlib.h>
#include <string.h>

#include "det_rng.h"
#include "duosign/mem.h"
#include "duosign/resync.h"
#include "test_harness.h"
#include "wire.h"

static duo_ec *ec;
static duo_det_rng drng;

typedef struct {
    uint8_t key_id[16], nonce[32], secret[32], q2[33];
    uint64_t epoch;
    duo_scalar x2;
} fixture;

static void fixture_new(fixture *f) {
    duo_point X;
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, f->key_id, sizeof f->key_id));
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, f->nonce, sizeof f->nonce));
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, f->secret, sizeof f->secret));
    f->epoch = 3;
    DUO_CHECK_OK(duo_scalar_random(ec, &f->x2, &drng.rng));
    DUO_CHECK_OK(duo_point_mul_base(ec, &X, &f->x2));
    duo_point_serialize(ec, f->q2, &X);
}

/* A proof of x under the binding of (key_id, nonce, epoch, secret). */
static void prove(uint8_t out[DUO_DLOG_PROOF_BYTES], const duo_scalar *x, const uint8_t *key_id, const uint8_t *nonce,
                  uint64_t epoch, const uint8_t *secret, const char *purpose) {
    duo_binding b;
    duo_point X;
    duo_dlog_proof p;
    DUO_CHECK_OK(duo_resync_binding(&b, key_id, nonce, epoch, secret));
    DUO_CHECK_OK(duo_point_mul_base(ec, &X, x));
    DUO_CHECK_OK(duo_dlog_prove(ec, &p, x, &X, &b, purpose, &drng.rng));
    duo_dlog_proof_serialize(ec, out, &p);
}

static int verify(const fixture *f, const uint8_t *key_id, const uint8_t *nonce, uint64_t epoch, const uint8_t *secret,
                  const uint8_t proof[DUO_DLOG_PROOF_BYTES]) {
    duo_binding b;
    DUO_CHECK_OK(duo_resync_binding(&b, key_id, nonce, epoch, secret));
    return duo_resync_proof_verify(ec, f->q2, &b, proof);
}

static void test_binding(void) {
    fixture f, g;
    uint8_t proof[DUO_DLOG_PROOF_BYTES], other[32], bad[DUO_DLOG_PROOF_BYTES];
    duo_scalar wrong;
    fixture_new(&f);
    fixture_new(&g);
    prove(proof, &f.x2, f.key_id, f.nonce, f.epoch, f.secret, DUO_RESYNC_PURPOSE);
    DUO_CHECK_OK(verify(&f, f.key_id, f.nonce, f.epoch, f.secret, proof));
    /* each bound value changed: another key, nonce, epoch, secret */
    memcpy(other, f.key_id, 16);
    other[0] ^= 1;
    DUO_EXPECT_ERR(verify(&f, other, f.nonce, f.epoch, f.secret, proof), DUO_E_WRONG_PIN);
    memcpy(other, f.nonce, 32);
    other[31] ^= 1;
    DUO_EXPECT_ERR(verify(&f, f.key_id, other, f.epoch, f.secret, proof), DUO_E_WRONG_PIN);
    DUO_EXPECT_ERR(verify(&f, f.key_id, f.nonce, f.epoch + 1, f.secret, proof), DUO_E_WRONG_PIN);
    memcpy(other, f.secret, 32);
    other[5] ^= 1;
    DUO_EXPECT_ERR(verify(&f, f.key_id, f.nonce, f.epoch, other, proof), DUO_E_WRONG_PIN);
    /* another key's Q2 */
    DUO_EXPECT_ERR(verify(&g, f.key_id, f.nonce, f.epoch, f.secret, proof), DUO_E_WRONG_PIN);
    /* a wrong PIN unmasks to another x2 */
    DUO_CHECK_OK(duo_scalar_random(ec, &wrong, &drng.rng));
    prove(bad, &wrong, f.key_id, f.nonce, f.epoch, f.secret, DUO_RESYNC_PURPOSE);
    DUO_EXPECT_ERR(verify(&f, f.key_id, f.nonce, f.epoch, f.secret, bad), DUO_E_WRONG_PIN);
    /* a signing session's PIN proof ("pin") under the same binding */
    prove(bad, &f.x2, f.key_id, f.nonce, f.epoch, f.secret, "pin");
    DUO_EXPECT_ERR(verify(&f, f.key_id, f.nonce, f.epoch, f.secret, bad), DUO_E_WRONG_PIN);
    /* every byte of the proof */
    for (size_t i = 0; i < sizeof proof; i++) {
        memcpy(bad, proof, sizeof proof);
        bad[i] ^= 0x01;
        DUO_EXPECT_ERR(verify(&f, f.key_id, f.nonce, f.epoch, f.secret, bad), DUO_E_WRONG_PIN);
    }
    /* the store's Q2 unparsable: not the device's fault */
    {
        duo_binding b;
        memset(f.q2, 0xff, sizeof f.q2);
        DUO_CHECK_OK(duo_resync_binding(&b, f.key_id, f.nonce, f.epoch, f.secret));
        DUO_EXPECT_ERR(duo_resync_proof_verify(ec, f.q2, &b, proof), DUO_E_STATE_CORRUPT);
        DUO_EXPECT_ERR(duo_resync_binding(&b, f.key_id, f.nonce, 0, f.secret), DUO_E_INVALID_ARG);
    }
    duo_memzero(&f, sizeof f);
    duo_memzero(&wrong, sizeof wrong);
}

static void test_request(void) {
    duo_resync_req req, back;
    uint8_t *buf = NULL, mi[32], mi2[32];
    size_t len = 0;
    memset(&req, 0, sizeof req);
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, req.key_id, sizeof req.key_id));
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, req.device_nonce, sizeof req.device_nonce));
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, req.device_secret, sizeof req.device_secret));
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, req.pin_proof, sizeof req.pin_proof));
    DUO_CHECK_OK(duo_rng_bytes(&drng.rng, req.mac, sizeof req.mac));
    req.epoch = 2;
    DUO_CHECK_OK(duo_wire_build_resync_req(&buf, &len, &req));
    DUO_CHECK_OK(duo_wire_parse_resync_req(&back, buf, len));
    DUO_CHECK(memcmp(&req, &back, sizeof req) == 0);
    /* the secret one byte short on the wire (field 4: tag 0x22, length 32) */
    for (size_t i = 0; i + 34 <= len; i++)
        if (buf[i] == 0x22 && buf[i + 1] == 0x20 && memcmp(buf + i + 2, req.device_secret, 32) == 0) {
            buf[i + 1] = 0x1f;
            memmove(buf + i + 33, buf + i + 34, len - i - 34);
            DUO_EXPECT_ERR(duo_wire_parse_resync_req(&back, buf, len - 1), DUO_E_BAD_FIELD);
            break;
        }
    free(buf);
    req.epoch = 0;
    DUO_EXPECT_ERR(duo_wire_build_resync_req(&buf, &len, &req), DUO_E_INVALID_ARG);
    req.epoch = 2;
    /* the MAC input covers every field but the MAC */
    DUO_CHECK_OK(duo_wire_mac_input_resync(mi, &req));
    back = req;
    back.mac[0] ^= 1;
    DUO_CHECK_OK(duo_wire_mac_input_resync(mi2, &back));
    DUO_CHECK(memcmp(mi, mi2, 32) == 0);
    for (int field = 0; field < 5; field++) {
        back = req;
        if (field == 0) back.key_id[0] ^= 1;
        if (field == 1) back.device_nonce[0] ^= 1;
        if (field == 2) back.epoch++;
        if (field == 3) back.device_secret[0] ^= 1;
        if (field == 4) back.pin_proof[0] ^= 1;
        DUO_CHECK_OK(duo_wire_mac_input_resync(mi2, &back));
        DUO_CHECK(memcmp(mi, mi2, 32) != 0);
    }
    duo_memzero(&req, sizeof req);
    duo_memzero(&back, sizeof back);
}

int main(void) {
    duo_det_rng_init(&drng, (uint64_t)duo_test_seed());
    if (duo_ec_new(&ec, DUO_CURVE_SECP256K1, NULL) != DUO_OK) return 1;
    DUO_RUN(test_binding);
    DUO_RUN(test_request);
    duo_ec_free(ec);
    return duo_test_finish();
}
