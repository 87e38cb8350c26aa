/* The inner channel (inner_channel.h): a whole session both ways, then every
 * tampering the record layer must refuse with its own error, leaving both
 * sides' state unchanged: each byte of the ciphertext flipped, a replayed or
 * reordered record, a record moved to another method, key or session, a
 * wrong static key, and outer fields that do not fit the stage. */
#include <stdlib.h>
#include <string.h>

#include "duosign/inner_channel.h"
#include "duosign/mem.h"
#include "test_harness.h"

static const uint8_t KID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t KID2[16] = {9};

typedef struct {
    duo_ch_static sk;
    duo_channel dev, cloud;
} pair;

/* Request 0 sealed by the device, opened by the cloud; response 0 back. */
static void handshake(pair *p, const char *method) {
    duo_ch_record rq, rs;
    uint8_t *ct = NULL, *ct2 = NULL, *pt = NULL;
    size_t n = 0;
    DUO_CHECK_OK(duo_ch_static_generate(&p->sk, 7));
    DUO_CHECK_OK(duo_ch_device_begin(&p->dev, 7, p->sk.pub, NULL));
    DUO_CHECK_OK(duo_ch_seal(&p->dev, &rq, &ct, method, KID, (const uint8_t *)"hello", 5, NULL));
    DUO_CHECK(rq.has_ephemeral && !rq.has_channel_id && rq.counter == 0 && rq.ct_len == 5 + DUO_CH_TAG_BYTES);
    DUO_CHECK_OK(duo_ch_cloud_accept(&p->cloud, &p->sk, &rq));
    DUO_CHECK_OK(duo_ch_open(&p->cloud, &pt, &n, method, &rq));
    DUO_CHECK(n == 5 && memcmp(pt, "hello", 5) == 0);
    free(pt);
    DUO_CHECK_OK(duo_ch_seal(&p->cloud, &rs, &ct2, method, KID, (const uint8_t *)"world!", 6, NULL));
    DUO_CHECK(rs.has_ephemeral && rs.has_channel_id);
    DUO_CHECK_OK(duo_ch_open(&p->dev, &pt, &n, method, &rs));
    DUO_CHECK(n == 6 && memcmp(pt, "world!", 6) == 0);
    DUO_CHECK(duo_ct_is_zero(p->dev.e_priv, sizeof p->dev.e_priv)); /* forward secrecy: the ephemeral is gone */
    free(pt);
    free(ct);
    free(ct2);
}

static void test_session(void) {
    pair p;
    handshake(&p, "SignStart");
    for (int i = 0; i < 3; i++) {
        duo_ch_record rq, rs;
        uint8_t *ct = NULL, *ct2 = NULL, *pt = NULL;
        size_t n;
        DUO_CHECK_OK(duo_ch_seal(&p.dev, &rq, &ct, "SignFinish", KID, (const uint8_t *)"abc", 3, NULL));
        DUO_CHECK(rq.has_channel_id && !rq.has_ephemeral && rq.counter == (uint64_t)i + 1);
        DUO_CHECK_OK(duo_ch_open(&p.cloud, &pt, &n, "SignFinish", &rq));
        DUO_CHECK(n == 3 && memcmp(pt, "abc", 3) == 0);
        free(pt);
        DUO_CHECK_OK(duo_ch_seal(&p.cloud, &rs, &ct2, "SignFinish", KID, NULL, 0, NULL)); /* empty message */
        DUO_CHECK_OK(duo_ch_open(&p.dev, &pt, &n, "SignFinish", &rs));
        DUO_CHECK(n == 0);
        free(pt);
        free(ct);
        free(ct2);
    }
    duo_ch_clear(&p.dev);
    duo_ch_clear(&p.cloud);
    duo_ch_static_clear(&p.sk);
}

/* A record every tampering below starts from: request 1 of a session. */
static void next_request(pair *p, duo_ch_record *rq, uint8_t **ct) {
    DUO_CHECK_OK(duo_ch_seal(&p->dev, rq, ct, "SignFinish", KID, (const uint8_t *)"pin proof", 9, NULL));
}

static void expect_refused(pair *p, const duo_ch_record *rq, const char *method, int err) {
    duo_channel before = p->cloud;
    uint8_t *pt = (uint8_t *)1;
    size_t n = 99;
    DUO_EXPECT_ERR(duo_ch_open(&p->cloud, &pt, &n, method, rq), err);
    DUO_CHECK(pt == NULL && n == 0);
    DUO_CHECK(memcmp(&before, &p->cloud, sizeof before) == 0); /* nothing changed */
}

static void test_byte_flips(void) {
    pair p;
    duo_ch_record rq;
    uint8_t *ct;
    handshake(&p, "SignStart");
    next_request(&p, &rq, &ct);
    for (size_t i = 0; i < rq.ct_len; i++)
        for (int bit = 0; bit < 8; bit++) {
            ct[i] ^= (uint8_t)(1u << bit);
            expect_refused(&p, &rq, "SignFinish", DUO_E_CHANNEL_AUTH);
            ct[i] ^= (uint8_t)(1u << bit);
        }
    /* Outer fields: key id, channel id, counter. */
    for (size_t i = 0; i < 16; i++) {
        rq.key_id[i] ^= 1;
        expect_refused(&p, &rq, "SignFinish", DUO_E_CHANNEL_AUTH);
        rq.key_id[i] ^= 1;
        rq.channel_id[i] ^= 1;
        expect_refused(&p, &rq, "SignFinish", DUO_E_CHANNEL_UNKNOWN);
        rq.channel_id[i] ^= 1;
    }
    rq.has_key_id = 0;
    expect_refused(&p, &rq, "SignFinish", DUO_E_CHANNEL_AUTH);
    rq.has_key_id = 1;
    rq.ct_len = DUO_CH_TAG_BYTES - 1;
    expect_refused(&p, &rq, "SignFinish", DUO_E_CHANNEL_MALFORMED);
    rq.ct_len = 9 + DUO_CH_TAG_BYTES;
    /* The untouched record still opens: nothing was charged by the refusals. */
    uint8_t *pt;
    size_t n;
    DUO_CHECK_OK(duo_ch_open(&p.cloud, &pt, &n, "SignFinish", &rq));
    free(pt);
    free(ct);
}

static void test_replay_reorder(void) {
    pair p;
    duo_ch_record r1, r2;
    uint8_t *c1, *c2, *pt;
    size_t n;
    handshake(&p, "EnrollStart");
    next_request(&p, &r1, &c1);
    next_request(&p, &r2, &c2);
    expect_refused(&p, &r2, "SignFinish", DUO_E_CHANNEL_REPLAY); /* out of order */
    DUO_CHECK_OK(duo_ch_open(&p.cloud, &pt, &n, "SignFinish", &r1));
    free(pt);
    expect_refused(&p, &r1, "SignFinish", DUO_E_CHANNEL_REPLAY); /* replayed */
    r1.counter = 2; /* the replay relabelled to the expected counter: the tag binds it */
    expect_refused(&p, &r1, "SignFinish", DUO_E_CHANNEL_AUTH);
    DUO_CHECK_OK(duo_ch_open(&p.cloud, &pt, &n, "SignFinish", &r2));
    free(pt);
    free(c1);
    free(c2);
}

static void test_moved(void) {
    pair p, q;
    duo_ch_record rq;
    uint8_t *ct;
    handshake(&p, "SignStart");
    handshake(&q, "SignStart");
    next_request(&p, &rq, &ct);
    expect_refused(&p, &rq, "SignStart", DUO_E_CHANNEL_AUTH); /* another method */
    expect_refused(&p, &rq, "Status", DUO_E_CHANNEL_AUTH);
    memcpy(rq.key_id, KID2, 16);
    expect_refused(&p, &rq, "SignFinish", DUO_E_CHANNEL_AUTH); /* another key */
    memcpy(rq.key_id, KID, 16);
    memcpy(rq.channel_id, q.cloud.channel_id, DUO_CH_ID_BYTES); /* into another session */
    expect_refused(&q, &rq, "SignFinish", DUO_E_CHANNEL_AUTH);
    free(ct);
}

static void test_wrong_static_key(void) {
    duo_ch_static sk, other;
    duo_channel dev, cloud;
    duo_ch_record rq;
    uint8_t *ct, *pt;
    size_t n;
    DUO_CHECK_OK(duo_ch_static_generate(&sk, 1));
    DUO_CHECK_OK(duo_ch_static_generate(&other, 1));
    /* The device pinned `other` (a wrong key, or one the cloud never had). */
    DUO_CHECK_OK(duo_ch_device_begin(&dev, 1, other.pub, NULL));
    DUO_CHECK_OK(duo_ch_seal(&dev, &rq, &ct, "SignStart", KID, (const uint8_t *)"x", 1, NULL));
    DUO_CHECK_OK(duo_ch_cloud_accept(&cloud, &sk, &rq));
    DUO_EXPECT_ERR(duo_ch_open(&cloud, &pt, &n, "SignStart", &rq), DUO_E_CHANNEL_AUTH);
    /* A key number the cloud does not hold. */
    rq.static_id = 2;
    DUO_EXPECT_ERR(duo_ch_cloud_accept(&cloud, &sk, &rq), DUO_E_CHANNEL_STATIC_KEY);
    /* Request 0 without its ephemeral, or with a channel id. */
    rq.static_id = 1;
    rq.has_ephemeral = 0;
    DUO_EXPECT_ERR(duo_ch_cloud_accept(&cloud, &sk, &rq), DUO_E_CHANNEL_MALFORMED);
    rq.has_ephemeral = 1;
    rq.has_channel_id = 1;
    DUO_EXPECT_ERR(duo_ch_cloud_accept(&cloud, &sk, &rq), DUO_E_CHANNEL_MALFORMED);
    /* A low-order ephemeral (all zero) gives no key at all. */
    rq.has_channel_id = 0;
    memset(rq.ephemeral, 0, 32);
    DUO_EXPECT_ERR(duo_ch_cloud_accept(&cloud, &sk, &rq), DUO_E_CHANNEL_AUTH);
    free(ct);
    duo_ch_static_clear(&sk);
    duo_ch_static_clear(&other);
}

/* A forged response 0 (another cloud ephemeral) leaves the device able to
 * open the genuine one. */
static void test_forged_response(void) {
    duo_ch_static sk;
    duo_channel dev, cloud, cloud2;
    duo_ch_record rq, rs, fake;
    uint8_t *ct, *c2, *c3, *pt;
    size_t n;
    DUO_CHECK_OK(duo_ch_static_generate(&sk, 3));
    DUO_CHECK_OK(duo_ch_device_begin(&dev, 3, sk.pub, NULL));
    DUO_CHECK_OK(duo_ch_seal(&dev, &rq, &ct, "Status", KID, (const uint8_t *)"s", 1, NULL));
    DUO_CHECK_OK(duo_ch_cloud_accept(&cloud, &sk, &rq));
    DUO_CHECK_OK(duo_ch_open(&cloud, &pt, &n, "Status", &rq));
    free(pt);
    cloud2 = cloud;
    DUO_CHECK_OK(duo_ch_seal(&cloud, &rs, &c2, "Status", KID, (const uint8_t *)"ok", 2, NULL));
    DUO_CHECK_OK(duo_ch_seal(&cloud2, &fake, &c3, "Status", KID, (const uint8_t *)"ok", 2, NULL));
    memcpy(fake.channel_id, rs.channel_id, DUO_CH_ID_BYTES);
    fake.ct = c2; /* the genuine ciphertext under another ephemeral */
    duo_channel before = dev;
    DUO_CHECK(duo_ch_open(&dev, &pt, &n, "Status", &fake) == DUO_E_CHANNEL_AUTH);
    DUO_CHECK(memcmp(&before, &dev, sizeof dev) == 0);
    DUO_CHECK_OK(duo_ch_open(&dev, &pt, &n, "Status", &rs));
    DUO_CHECK(n == 2);
    free(pt);
    free(ct);
    free(c2);
    free(c3);
    duo_ch_static_clear(&sk);
}

int main(void) {
    DUO_RUN(test_session);
    DUO_RUN(test_byte_flips);
    DUO_RUN(test_replay_reorder);
    DUO_RUN(test_moved);
    DUO_RUN(test_wrong_static_key);
    DUO_RUN(test_forged_response);
    return duo_test_finish();
}
