/* The P2 engine with a PIN KDF output made ahead of the signature
 * (duo_p2_pin_kdf + duo_p2_sign_params.pin_kdf, the engine side of
 * duo_device_pin_prepare): it signs exactly like the PIN; a KDF output of a
 * wrong PIN gives DUO_E_WRONG_PIN at the cloud; exactly one of pin and
 * pin_kdf is accepted; out-of-range values are refused; nothing is left in
 * the output of a failed derivation. Both engines back to back. */
#include "b2b.h"
#include "p2_internal.h"

#define PIN "2468"

static b2b_enroll_run g_er;

static duo_p2_sign_params params(const uint8_t *dg, const char *pin, const duo_scalar *kdf) {
    duo_p2_sign_params sp;
    memset(&sp, 0, sizeof sp);
    sp.ec = b2b_ec();
    sp.key = g_er.k2;
    sp.pin = (const uint8_t *)pin;
    sp.pin_len = pin ? strlen(pin) : 0;
    sp.pin_kdf = kdf;
    sp.digest = dg;
    return sp;
}

/* One signature with both engines; returns the first error. */
static int sign_with(const duo_p2_sign_params *sp, uint8_t sig[64]) {
    duo_p1_sign *p1 = NULL;
    duo_p2_sign *p2 = NULL;
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    int r;

    memset(&m2, 0, sizeof m2);
    if ((r = duo_p2_sign_new(&p2, sp)) != DUO_OK) goto out;
    if ((r = duo_p1_sign_new(&p1, b2b_ec(), NULL, g_er.k1)) != DUO_OK) goto out;
    if ((r = duo_p2_sign_start(p2, &m0)) != DUO_OK) goto out;
    if ((r = duo_p1_sign_start(p1, &m0, &m1)) != DUO_OK) goto out;
    if ((r = duo_p2_sign_on_start(p2, &m1, &m2)) != DUO_OK) goto out;
    if ((r = duo_p1_sign_finish(p1, &m2, &m3)) != DUO_OK) goto out;
    r = duo_p2_sign_on_finish(p2, &m3, sig);
out:
    duo_wire_free_sign_finish_req(&m2);
    duo_p1_sign_free(p1);
    duo_p2_sign_free(p2);
    return r;
}

static void test_kdf_matches_internal(void) {
    duo_scalar a, b;
    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &a, g_er.k2, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK_OK(duo__p2_pin_kdf(b2b_ec(), &b, (const uint8_t *)PIN, strlen(PIN), g_er.k2->pin_salt));
    DUO_CHECK(memcmp(a.b, b.b, 32) == 0);
    /* Another PIN, another value. */
    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &b, g_er.k2, (const uint8_t *)"2469", 4));
    DUO_CHECK(memcmp(a.b, b.b, 32) != 0);
    duo_memzero(&a, sizeof a);
    duo_memzero(&b, sizeof b);
}

static void test_kdf_args(void) {
    duo_scalar k;
    uint8_t long_pin[DUO_PIN_MAX + 1];
    memset(long_pin, '7', sizeof long_pin);
    memset(&k, 0xaa, sizeof k);
    DUO_EXPECT_ERR(duo_p2_pin_kdf(b2b_ec(), &k, g_er.k2, NULL, 4), DUO_E_INVALID_ARG);
    DUO_CHECK(duo_ct_is_zero(k.b, 32)); /* zeroed on failure */
    memset(&k, 0xaa, sizeof k);
    DUO_EXPECT_ERR(duo_p2_pin_kdf(b2b_ec(), &k, g_er.k2, (const uint8_t *)PIN, 0), DUO_E_INVALID_ARG);
    DUO_CHECK(duo_ct_is_zero(k.b, 32));
    memset(&k, 0xaa, sizeof k);
    DUO_EXPECT_ERR(duo_p2_pin_kdf(b2b_ec(), &k, g_er.k2, long_pin, sizeof long_pin), DUO_E_INVALID_ARG);
    DUO_CHECK(duo_ct_is_zero(k.b, 32));
    memset(&k, 0xaa, sizeof k);
    DUO_EXPECT_ERR(duo_p2_pin_kdf(b2b_ec(), &k, NULL, (const uint8_t *)PIN, 4), DUO_E_INVALID_ARG);
    DUO_CHECK(duo_ct_is_zero(k.b, 32));
    DUO_EXPECT_ERR(duo_p2_pin_kdf(NULL, &k, g_er.k2, (const uint8_t *)PIN, 4), DUO_E_INVALID_ARG);
    DUO_EXPECT_ERR(duo_p2_pin_kdf(b2b_ec(), NULL, g_er.k2, (const uint8_t *)PIN, 4), DUO_E_INVALID_ARG);
}

static void test_prepared_signs(void) {
    duo_scalar k;
    uint8_t dg[32], sig[64];
    duo_p2_sign_params sp;
    int i;

    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &k, g_er.k2, (const uint8_t *)PIN, strlen(PIN)));
    for (i = 0; i < 2; i++) {
        memset(dg, 0x31 + i, sizeof dg);
        sp = params(dg, NULL, &k);
        if (i == 1) { /* with a precomputed r^N too */
            sp.precomputed_rn = BN_secure_new();
            DUO_REQUIRE(sp.precomputed_rn != NULL);
            DUO_CHECK_OK(duo_paillier_rn(g_er.k2->paillier, sp.precomputed_rn, NULL));
        }
        DUO_CHECK_OK(sign_with(&sp, sig));
        DUO_CHECK_OK(duo_ecdsa_verify(b2b_ec(), sig, dg, &g_er.k2->q));
    }
    /* The engine copied the value: the caller's copy is untouched (the
     * device library wipes its own). The typed PIN still signs too. */
    sp = params(dg, PIN, NULL);
    DUO_CHECK_OK(sign_with(&sp, sig));
    DUO_CHECK_OK(duo_ecdsa_verify(b2b_ec(), sig, dg, &g_er.k2->q));
    duo_memzero(&k, sizeof k);
}

static void test_wrong_prepared_pin(void) {
    duo_scalar k;
    uint8_t dg[32], sig[64];
    duo_p2_sign_params sp;

    memset(dg, 0x42, sizeof dg);
    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &k, g_er.k2, (const uint8_t *)"1357", 4));
    sp = params(dg, NULL, &k);
    memset(sig, 0x55, sizeof sig);
    DUO_EXPECT_ERR(sign_with(&sp, sig), DUO_E_WRONG_PIN);
    /* Same outcome as the typed wrong PIN. */
    sp = params(dg, "1357", NULL);
    DUO_EXPECT_ERR(sign_with(&sp, sig), DUO_E_WRONG_PIN);
    duo_memzero(&k, sizeof k);
}

static void test_exactly_one(void) {
    duo_scalar k, zero, big;
    uint8_t dg[32];
    duo_p2_sign *s = NULL;
    duo_p2_sign_params sp;

    memset(dg, 0x11, sizeof dg);
    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &k, g_er.k2, (const uint8_t *)PIN, strlen(PIN)));
    /* both */
    sp = params(dg, PIN, &k);
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    DUO_CHECK(s == NULL);
    /* both, with a precomputed r^N: taken and freed on the error path too
     * (the sanitizer build checks the leak) */
    sp.precomputed_rn = BN_secure_new();
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    /* neither */
    sp = params(dg, NULL, NULL);
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    /* a length without a PIN, next to a KDF value */
    sp = params(dg, NULL, &k);
    sp.pin_len = 4;
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    /* a PIN without a length, next to a KDF value */
    sp = params(dg, NULL, &k);
    sp.pin = (const uint8_t *)PIN;
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    /* a KDF output is in [1, q-1] */
    memset(&zero, 0, sizeof zero);
    sp = params(dg, NULL, &zero);
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    memset(&big, 0xff, sizeof big);
    sp = params(dg, NULL, &big);
    DUO_EXPECT_ERR(duo_p2_sign_new(&s, &sp), DUO_E_INVALID_ARG);
    /* the valid one */
    sp = params(dg, NULL, &k);
    DUO_CHECK_OK(duo_p2_sign_new(&s, &sp));
    duo_p2_sign_free(s);
    duo_memzero(&k, sizeof k);
}

/* After a PIN change the old salt's value unmasks to another x2: the cloud
 * says WRONG_PIN (this is why the device library binds a prepared PIN to
 * the salt and wipes it on a PIN change). */
static void test_stale_after_change_pin(void) {
    duo_scalar old_k, new_k;
    uint8_t dg[32], sig[64];
    duo_p2_sign_params sp;

    memset(dg, 0x66, sizeof dg);
    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &old_k, g_er.k2, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK_OK(duo_p2_key_change_pin(b2b_ec(), g_er.k2, (const uint8_t *)PIN, strlen(PIN), (const uint8_t *)PIN,
                                       strlen(PIN), NULL)); /* same PIN, fresh salt */
    sp = params(dg, NULL, &old_k);
    DUO_EXPECT_ERR(sign_with(&sp, sig), DUO_E_WRONG_PIN);
    DUO_CHECK_OK(duo_p2_pin_kdf(b2b_ec(), &new_k, g_er.k2, (const uint8_t *)PIN, strlen(PIN)));
    DUO_CHECK(memcmp(old_k.b, new_k.b, 32) != 0);
    sp = params(dg, NULL, &new_k);
    DUO_CHECK_OK(sign_with(&sp, sig));
    DUO_CHECK_OK(duo_ecdsa_verify(b2b_ec(), sig, dg, &g_er.k2->q));
    duo_memzero(&old_k, sizeof old_k);
    duo_memzero(&new_k, sizeof new_k);
}

int main(void) {
    b2b_enroll_opts eo;
    memset(&eo, 0, sizeof eo);
    eo.bits = 2048;
    eo.pin = PIN;
    if (b2b_enroll(&g_er, &eo) != DUO_OK) {
        fprintf(stderr, "enrolment failed at step %d\n", g_er.fail_step);
        return 1;
    }
    DUO_RUN(test_kdf_matches_internal);
    DUO_RUN(test_kdf_args);
    DUO_RUN(test_prepared_signs);
    DUO_RUN(test_wrong_prepared_pin);
    DUO_RUN(test_exactly_one);
    DUO_RUN(test_stale_after_change_pin);
    b2b_enroll_run_free(&g_er);
    b2b_env_free();
    return duo_test_finish();
}
