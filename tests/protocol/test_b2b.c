/* Back-to-back enrolment and signing between the P1 and P2 engines:
 * >= 1000 signatures at 2048 bits and 20 at 3072, on the curve of
 * DUO_TEST_CURVE, each verified independently by OpenSSL EVP (DER signature,
 * PEM SubjectPublicKeyInfo written and read back) and by the curve's own
 * verifier (libsecp256k1; for P-256 duo_ecdsa_verify, OpenSSL's ECDSA with
 * low S required); one run through the wire
 * encoding. DUO_TEST_QUICK=1 (sanitizer builds) reduces the counts. */
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "b2b.h"

/* Q as an OpenSSL key, through a PEM SubjectPublicKeyInfo round trip. */
static EVP_PKEY *pem_pubkey(const duo_p2_key *k) {
    uint8_t q[33];
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL, *back = NULL;
    BIO *bio = NULL;

    duo_point_serialize(b2b_ec(), q, &k->q);
    if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, duo_ec_group_name(b2b_ec()), 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, q, sizeof q) ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        goto out;
    }
    if ((bio = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
        goto out;
    }
    back = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
out:
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return back;
}

static int openssl_verify(EVP_PKEY *pkey, const uint8_t sig[64], const uint8_t digest[32]) {
    uint8_t der[DUO_ECDSA_DER_MAX];
    size_t der_len = sizeof der;
    EVP_PKEY_CTX *ctx;
    int ok;

    if (duo_ecdsa_to_der(b2b_ec(), der, &der_len, sig) != DUO_OK) return 0;
    if ((ctx = EVP_PKEY_CTX_new(pkey, NULL)) == NULL) return 0;
    ok = EVP_PKEY_verify_init(ctx) == 1 && EVP_PKEY_verify(ctx, der, der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    return ok;
}

static int secp_verify(const duo_p2_key *k, const uint8_t sig[64], const uint8_t digest[32]) {
    secp256k1_ecdsa_signature s;
    const secp256k1_context *ctx = duo_ec_secp(b2b_ec());
    if (ctx == NULL) {
        return duo_ecdsa_verify(b2b_ec(), sig, digest, &k->q) == DUO_OK;
    }
    if (!secp256k1_ecdsa_signature_parse_compact(ctx, &s, sig)) return 0;
    return secp256k1_ecdsa_verify(ctx, &s, digest, &k->q.p) == 1;
}

/* The two halves of the cloud's round 2 only in order, each once: anything
 * else fails the session for good (and wipes k1). */
static void split_finish_misuse(const b2b_enroll_run *er) {
    b2b_sign_opts so;
    b2b_sign_run sr;
    uint8_t digest[32] = {1}, rx[32];
    memset(&so, 0, sizeof so);
    so.pin = "123456";
    so.digest = digest;
    so.stop_after = B2B_S_FINISH_REQ; /* round 2 built by the device, not delivered */
    /* decrypt first */
    DUO_CHECK_OK(b2b_sign(&sr, er->k1, er->k2, er->cloud_device_secret, &so));
    DUO_EXPECT_ERR(duo_p1_sign_finish_decrypt(sr.p1, &sr.m3), DUO_E_PROTO_STATE);
    DUO_EXPECT_ERR(duo_p1_sign_finish_check(sr.p1, &sr.m2, &sr.m3, rx), DUO_E_SESSION_FAILED);
    b2b_sign_run_free(&sr);
    /* check twice */
    DUO_CHECK_OK(b2b_sign(&sr, er->k1, er->k2, er->cloud_device_secret, &so));
    DUO_CHECK_OK(duo_p1_sign_finish_check(sr.p1, &sr.m2, &sr.m3, rx));
    DUO_EXPECT_ERR(duo_p1_sign_finish_check(sr.p1, &sr.m2, &sr.m3, rx), DUO_E_PROTO_STATE);
    DUO_EXPECT_ERR(duo_p1_sign_finish_decrypt(sr.p1, &sr.m3), DUO_E_SESSION_FAILED);
    b2b_sign_run_free(&sr);
    /* in order, then a second decrypt */
    DUO_CHECK_OK(b2b_sign(&sr, er->k1, er->k2, er->cloud_device_secret, &so));
    DUO_CHECK_OK(duo_p1_sign_finish_check(sr.p1, &sr.m2, &sr.m3, rx));
    DUO_CHECK_OK(duo_p1_sign_finish_decrypt(sr.p1, &sr.m3));
    DUO_CHECK(memcmp(rx, sr.m3.signature, 32) == 0);
    DUO_CHECK(secp_verify(er->k2, sr.m3.signature, digest));
    DUO_EXPECT_ERR(duo_p1_sign_finish_decrypt(sr.p1, &sr.m3), DUO_E_PROTO_STATE);
    b2b_sign_run_free(&sr);
}

static void run_many(unsigned bits, int count, int wire) {
    b2b_enroll_run er;
    b2b_enroll_opts eo;
    b2b_sign_opts so;
    b2b_sign_run sr;
    EVP_PKEY *pkey = NULL;
    double p1_cpu = 0, p2_cpu = 0, t0;
    int i, ok = 0;
    uint8_t digest[32], q1b[33], q2b[33];
    duo_point q;

    duo_paillier_priv_free(b2b_paillier(bits)); /* keygen outside the timings */
    memset(&eo, 0, sizeof eo);
    eo.bits = bits;
    eo.pin = "123456";
    eo.wire = wire;
    t0 = b2b_now();
    DUO_CHECK_OK(b2b_enroll(&er, &eo));
    fprintf(stderr, "# enrol %u bits%s: wall %.3f s, CPU P1 %.3f s (prime pool warm), P2 %.3f s\n", bits,
            wire ? " (wire)" : "", b2b_now() - t0, er.cpu[0], er.cpu[1]);
    DUO_REQUIRE(er.k1 != NULL && er.k2 != NULL);
    /* Both sides hold the same public key and device secret. */
    duo_point_serialize(b2b_ec(), q1b, &er.k1->q);
    duo_point_serialize(b2b_ec(), q2b, &er.k2->q);
    DUO_CHECK(memcmp(q1b, q2b, 33) == 0);
    DUO_CHECK(memcmp(er.cloud_device_secret, er.k2->device_secret, 32) == 0);
    DUO_CHECK(memcmp(er.k1->key_id, er.k2->key_id, 16) == 0);
    DUO_CHECK(duo_paillier_pub_bits(er.k2->paillier) == bits);
    /* Q = x1*G + Q2 holds at the cloud. */
    DUO_CHECK_OK(duo_point_mul_base(b2b_ec(), &q, &er.k1->x1));
    DUO_CHECK_OK(duo_point_add(b2b_ec(), &q, &q, &er.k1->q2));
    DUO_CHECK(duo_point_eq_var(b2b_ec(), &q, &er.k1->q));
    pkey = pem_pubkey(er.k2);
    DUO_REQUIRE(pkey != NULL);

    for (i = 0; i < count; i++) {
        DUO_REQUIRE(duo_rng_bytes(NULL, digest, 32) == DUO_OK);
        if (i == 0) memset(digest, 0, 32);                            /* m = 0 */
        if (i == 1) BN_bn2binpad(duo_ec_order(b2b_ec()), digest, 32); /* m = q = 0 mod q */
        if (i == 2) memset(digest, 0xff, 32);
        memset(&so, 0, sizeof so);
        so.pin = "123456";
        so.digest = digest;
        so.wire = wire;
        so.check_mac = 1;
        so.precompute_rn = (i % 2) == 1;
        so.split_finish = (i % 3) == 2;
        if (b2b_sign(&sr, er.k1, er.k2, er.cloud_device_secret, &so) == DUO_OK) {
            int a = secp_verify(er.k2, sr.sig, digest), b = openssl_verify(pkey, sr.sig, digest);
            DUO_CHECK(a);
            DUO_CHECK(b);
            DUO_CHECK(memcmp(sr.sig, sr.m3.signature, 64) == 0);
            ok += a && b;
        } else {
            DUO_CHECK(!"sign failed");
            fprintf(stderr, "sign %d failed at step %d\n", i, sr.fail_step);
        }
        p1_cpu += sr.cpu[0];
        p2_cpu += sr.cpu[1];
        b2b_sign_run_free(&sr);
    }
    DUO_CHECK(ok == count);
    if (wire) split_finish_misuse(&er);
    fprintf(stderr,
            "# sign %u bits%s: %d/%d signatures verified by %s's verifier and OpenSSL; CPU per signature P1 %.2f ms, "
            "P2 %.2f ms (P2 includes scrypt N=2^15)\n",
            bits, wire ? " (wire)" : "", ok, count, duo_curve_name(duo_ec_curve(b2b_ec())), 1e3 * p1_cpu / count,
            1e3 * p2_cpu / count);
    EVP_PKEY_free(pkey);
    b2b_enroll_run_free(&er);
}

static void test_sign_2048_many(void) { run_many(2048, b2b_quick() ? 30 : 1000, 0); }
static void test_sign_3072(void) { run_many(3072, b2b_quick() ? 3 : 20, 0); }
static void test_wire_2048(void) { run_many(2048, b2b_quick() ? 3 : 10, 1); }

/* A cloud configured for 2048 refuses a 3072 request (and vice versa). */
static void test_unsupported_size(void) {
    b2b_enroll_run er;
    b2b_enroll_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.bits = 3072;
    eo.p1_bits = 2048;
    eo.pin = "1";
    DUO_EXPECT_ERR(b2b_enroll(&er, &eo), DUO_E_UNSUPPORTED);
    DUO_CHECK(er.fail_step == B2B_E_START_REQ);
    b2b_enroll_run_free(&er);
}

/* The EnrollStart's curve must be the cloud engine's: the other curve, or
 * none (a device from before curves: secp256k1) on a P-256 run, is refused
 * at the start with DUO_E_CURVE_REFUSED, before any key work. */
static duo_curve g_forced_curve;
static void force_curve(void *ctx, int step, void *msg) {
    (void)ctx;
    if (step == B2B_E_START_REQ) ((duo_enroll_start_req *)msg)->curve = g_forced_curve;
}
static void test_curve_mismatch(void) {
    duo_curve mine = duo_ec_curve(b2b_ec());
    duo_curve other = mine == DUO_CURVE_P256 ? DUO_CURVE_SECP256K1 : DUO_CURVE_P256;
    b2b_enroll_run er;
    b2b_enroll_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.bits = 2048;
    eo.pin = "1";
    eo.hook = force_curve;
    eo.stop_after = B2B_E_START_REQ + 1;
    g_forced_curve = other;
    DUO_EXPECT_ERR(b2b_enroll(&er, &eo), DUO_E_CURVE_REFUSED);
    DUO_CHECK(er.fail_step == B2B_E_START_REQ);
    b2b_enroll_run_free(&er);
    g_forced_curve = DUO_CURVE_UNSPECIFIED;
    int r = b2b_enroll(&er, &eo);
    DUO_CHECK(r == (mine == DUO_CURVE_SECP256K1 ? DUO_OK : DUO_E_CURVE_REFUSED));
    b2b_enroll_run_free(&er);
}

int main(void) {
    DUO_RUN(test_unsupported_size);
    DUO_RUN(test_curve_mismatch);
    DUO_RUN(test_wire_2048);
    DUO_RUN(test_sign_2048_many);
    DUO_RUN(test_sign_3072);
    b2b_env_free();
    return duo_test_finish();
}
