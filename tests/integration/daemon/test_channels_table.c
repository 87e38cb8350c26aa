/* duosign-cloud: the inner channel's session table (cloud_half/daemon/
 * channels.c), hashed by channel id with its entries in insertion order
 * (issue 22): a session taken once and only once, unknown ids refused,
 * expiry on an injected clock (also after the clock stepped back), the
 * oldest entry dropped when the table is full, the count, and 20000 random
 * puts and takes checked against a plain model of the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "duosign/errors.h"
#include "test_harness.h"

/* A session whose id and keys are derived from n (a test stand-in). */
static void chan(duo_channel *ch, unsigned n) {
    memset(ch, 0, sizeof *ch);
    ch->role = 2;
    ch->established = 1;
    for (int i = 0; i < DUO_CH_ID_BYTES; i++) ch->channel_id[i] = (uint8_t)(n * 131u + (unsigned)i * 7u + (n >> 8));
    memcpy(ch->channel_id, &n, sizeof n); /* distinct ids; ids sharing low bits share a bucket */
    memset(ch->k_d2c, (int)(n & 0xff), sizeof ch->k_d2c);
    ch->n_d2c = n;
}

static int take_n(duo_channels *t, unsigned n, int64_t now) {
    duo_channel want, got;
    chan(&want, n);
    int r = duo__channels_take(t, &got, want.channel_id, now);
    if (r == DUO_OK && (got.n_d2c != n || memcmp(got.k_d2c, want.k_d2c, sizeof got.k_d2c) != 0)) return -1;
    return r;
}

static void put_n(duo_channels *t, unsigned n, int64_t now) {
    duo_channel ch;
    chan(&ch, n);
    duo__channels_put(t, &ch, now);
    DUO_CHECK(ch.n_d2c == 0 && ch.established == 0); /* wiped */
}

static void test_take_once(void) {
    duo_channels *t = NULL;
    DUO_REQUIRE(duo__channels_new(&t, 8, 60) == DUO_OK);
    put_n(t, 1, 100);
    put_n(t, 2, 100);
    DUO_CHECK(duo__channels_count(t) == 2);
    DUO_CHECK(take_n(t, 3, 100) == DUO_E_CHANNEL_UNKNOWN);
    DUO_CHECK(take_n(t, 2, 100) == DUO_OK);
    DUO_CHECK(take_n(t, 2, 100) == DUO_E_CHANNEL_UNKNOWN); /* in use: taken once */
    DUO_CHECK(duo__channels_count(t) == 1);
    put_n(t, 2, 100); /* back after the response */
    DUO_CHECK(take_n(t, 2, 101) == DUO_OK && take_n(t, 1, 101) == DUO_OK);
    DUO_CHECK(duo__channels_count(t) == 0);
    duo__channels_free(t);
}

static void test_expiry(void) {
    duo_channels *t = NULL;
    DUO_REQUIRE(duo__channels_new(&t, 8, 60) == DUO_OK);
    put_n(t, 1, 100);
    put_n(t, 2, 130);
    DUO_CHECK(take_n(t, 1, 160) == DUO_E_CHANNEL_UNKNOWN); /* 100 + 60: expired */
    DUO_CHECK(duo__channels_count(t) == 1);
    DUO_CHECK(take_n(t, 2, 189) == DUO_OK);
    /* the clock stepped back: an entry behind a live head still expires */
    put_n(t, 3, 1000);
    put_n(t, 4, 500);
    DUO_CHECK(take_n(t, 4, 700) == DUO_E_CHANNEL_UNKNOWN);
    DUO_CHECK(take_n(t, 3, 700) == DUO_OK);
    DUO_CHECK(duo__channels_count(t) == 0);
    duo__channels_free(t);
}

static void test_full_drops_oldest(void) {
    duo_channels *t = NULL;
    DUO_REQUIRE(duo__channels_new(&t, 4, 60) == DUO_OK);
    for (unsigned n = 1; n <= 6; n++) put_n(t, n, 100);
    DUO_CHECK(duo__channels_count(t) == 4);
    DUO_CHECK(take_n(t, 1, 100) == DUO_E_CHANNEL_UNKNOWN && take_n(t, 2, 100) == DUO_E_CHANNEL_UNKNOWN);
    for (unsigned n = 3; n <= 6; n++) DUO_CHECK(take_n(t, n, 100) == DUO_OK);
    duo__channels_free(t);
}

/* Random puts and takes on a small table (many ids per bucket) against a
 * model: at[n] = the time n was put and seq[n] its put's number (0: not in;
 * the clock never steps back here, so put order is expiry order). */
static void test_against_model(void) {
    enum { CAP = 37, IDS = 200, OPS = 20000 };
    duo_channels *t = NULL;
    static int64_t at[IDS];
    static unsigned long seq[IDS];
    unsigned long puts = 0;
    unsigned seed = 12345;
    int64_t now = 1000;
    DUO_REQUIRE(duo__channels_new(&t, CAP, 30) == DUO_OK);
    for (int op = 0; op < OPS && duo_test_failures == 0; op++) {
        seed = seed * 1103515245u + 12345u;
        unsigned n = (seed >> 8) % IDS;
        if ((seed >> 20) % 7 == 0) now++;
        for (unsigned k = 0; k < IDS; k++)
            if (seq[k] && at[k] + 30 <= now) seq[k] = 0; /* expired */
        if ((seed >> 4) & 1) {
            if (seq[n]) continue; /* a channel is in the table at most once */
            size_t held = 0;
            unsigned oldest = IDS;
            for (unsigned k = 0; k < IDS; k++) {
                if (!seq[k]) continue;
                held++;
                if (oldest == IDS || seq[k] < seq[oldest]) oldest = k;
            }
            if (held == CAP) seq[oldest] = 0; /* full: the oldest goes */
            put_n(t, n, now);
            at[n] = now;
            seq[n] = ++puts;
        } else {
            int r = take_n(t, n, now);
            DUO_CHECK_MSG(r == (seq[n] ? DUO_OK : DUO_E_CHANNEL_UNKNOWN), "op %d id %u: %d", op, n, r);
            seq[n] = 0;
        }
        size_t held = 0;
        for (unsigned k = 0; k < IDS; k++) held += seq[k] != 0;
        DUO_CHECK_MSG(duo__channels_count(t) == held, "op %d: %zu held, model %zu", op, duo__channels_count(t), held);
    }
    duo__channels_free(t);
}

int main(void) {
    DUO_RUN(test_take_once);
    DUO_RUN(test_expiry);
    DUO_RUN(test_full_drops_oldest);
    DUO_RUN(test_against_model);
    return duo_test_finish();
}
