/* libFuzzer target: the inner channel (issue 12) and, through it, the
 * decrypted payload parsers.
 *
 * Input: byte 0 picks the mode and a wire message (fz_wire_table), byte 1
 * the method name bound in the AAD, the rest is the payload.
 *   even byte 0: the payload is a plain message. A device session (fixed
 *     static key, fixed ephemeral: reproducible) seals it, the envelope is
 *     built and parsed, the cloud accepts and opens it: the plaintext must
 *     come back byte for byte, and then goes to the message's own parser
 *     exactly as the daemon's dispatch hands it to a handler (and the
 *     response direction the same way, device side);
 *   odd byte 0: the payload is a Sealed envelope from the network: parsed,
 *     accepted and opened by the cloud with the fixed static key; any
 *     failure must be one of the channel's documented errors; a record that
 *     opens (a seed sealed to that key) goes on to its payload's parser.
 * Seeds (corpus/fuzz_inner_channel): valid plain messages of every kind
 * behind an even selector, and envelopes of real records behind an odd one
 * (gen_seeds.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duosign/inner_channel.h"
#include "wire_msgs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {"EnrollStart", "EnrollKeyShare", "SignStart", "SignFinish", "Status"};

static int fixed(void *d, uint8_t *out, size_t n) {
    memset(out, *(const uint8_t *)d, n);
    return 0;
}

static void fail(const char *what, int r) {
    fprintf(stderr, "fuzz_inner_channel: %s (%s)\n", what, duo_err_name(r));
    abort();
}

/* The plain message as its handler (or the device) receives it. */
static void parse_payload(unsigned m, const uint8_t *pt, size_t n) {
    fz_any out;
    int r = fz_wire_table[m].parse(&out, pt, n);
    if (r == DUO_OK && fz_wire_table[m].free_) fz_wire_table[m].free_(&out);
}

static void through_channel(const duo_ch_static *sk, unsigned m, const char *method, const uint8_t *p, size_t n) {
    duo_channel dev, cloud;
    duo_ch_record rec, in;
    uint8_t seed_e = 7, seed_c = 9, *ct = NULL, *env = NULL, *buf = NULL, *pt = NULL;
    size_t el = 0, pl = 0;
    duo_rng re = {fixed, &seed_e}, rc = {fixed, &seed_c};
    static const uint8_t kid[16] = {4};
    int r;
    if ((r = duo_ch_device_begin(&dev, sk->id, sk->pub, &re)) != DUO_OK) fail("begin", r);
    if ((r = duo_ch_seal(&dev, &rec, &ct, method, kid, p, n, NULL)) != DUO_OK) fail("seal", r);
    if ((r = duo_wire_build_sealed(&env, &el, &rec)) != DUO_OK) {
        if (r == DUO_E_MSG_TOO_LARGE) goto out;
        fail("build", r);
    }
    if ((r = duo_wire_parse_sealed(&in, &buf, env, el)) != DUO_OK) fail("envelope round trip", r);
    if ((r = duo_ch_cloud_accept(&cloud, sk, &in)) != DUO_OK) fail("accept", r);
    if ((r = duo_ch_open(&cloud, &pt, &pl, method, &in)) != DUO_OK) fail("open", r);
    if (pl != n || (n && memcmp(pt, p, n) != 0)) fail("plaintext differs", DUO_E_INTERNAL);
    parse_payload(m, pt, pl); /* the decrypted payload parser */
    free(pt);
    free(ct);
    free(env);
    free(buf);
    pt = ct = env = buf = NULL;
    /* back: the cloud's response 0, opened by the device */
    if ((r = duo_ch_seal(&cloud, &rec, &ct, method, kid, p, n, &rc)) != DUO_OK) fail("seal back", r);
    if ((r = duo_wire_build_sealed(&env, &el, &rec)) != DUO_OK) fail("build back", r);
    if ((r = duo_wire_parse_sealed(&in, &buf, env, el)) != DUO_OK) fail("envelope back", r);
    if ((r = duo_ch_open(&dev, &pt, &pl, method, &in)) != DUO_OK) fail("open back", r);
    parse_payload(m, pt, pl);
out:
    free(pt);
    free(ct);
    free(env);
    free(buf);
    duo_ch_clear(&dev);
    duo_ch_clear(&cloud);
}

static void from_network(const duo_ch_static *sk, unsigned m, const char *method, const uint8_t *p, size_t n) {
    duo_ch_record in;
    duo_channel cloud;
    uint8_t *buf = NULL, *pt = NULL;
    size_t pl = 0;
    int r = duo_wire_parse_sealed(&in, &buf, p, n);
    if (r == DUO_OK) {
        r = in.has_ephemeral ? duo_ch_cloud_accept(&cloud, sk, &in) : DUO_E_CHANNEL_UNKNOWN;
        if (r == DUO_OK) r = duo_ch_open(&cloud, &pt, &pl, method, &in);
        if (r == DUO_OK) parse_payload(m, pt, pl); /* a valid record (the seeds): its payload's parser */
        duo_ch_clear(&cloud);
    }
    if (r != DUO_OK && r != DUO_E_CHANNEL_MALFORMED && r != DUO_E_CHANNEL_AUTH && r != DUO_E_CHANNEL_STATIC_KEY &&
        r != DUO_E_CHANNEL_UNKNOWN && r != DUO_E_CHANNEL_REPLAY && r != DUO_E_UNSUPPORTED && r != DUO_E_MSG_TOO_LARGE &&
        r != DUO_E_NOMEM)
        fail("undocumented error", r);
    free(pt);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_ch_static sk;
    uint8_t seed = 1;
    duo_rng rs = {fixed, &seed};
    if (size < 2) return 0;
    /* a fixed static key: X25519 clamps, so the constant private key works */
    sk.id = 1;
    if (duo_rng_bytes(&rs, sk.priv, sizeof sk.priv) != DUO_OK || duo_ch_static_public(&sk) != DUO_OK) abort();
    const char *method = methods[data[1] % (sizeof methods / sizeof methods[0])];
    if (data[0] % 2 == 0)
        through_channel(&sk, (unsigned)(data[0] / 2) % FZ_MSG_COUNT, method, data + 2, size - 2);
    else
        from_network(&sk, (unsigned)(data[0] / 2) % FZ_MSG_COUNT, method, data + 2, size - 2);
    duo_ch_static_clear(&sk);
    return 0;
}
