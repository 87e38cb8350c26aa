/* duosign CLI: the two-party signer the X.509 and CMS builders call
 * (duosign/device_x509.h): one signing session per digest, a
 * resynchronisation when the service asks for one, the state saved right
 * after. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "cli.h"

static int cli_sign_once(cli_signer *cs, const uint8_t digest[32], uint8_t sig_rs[64]) {
    if (cs->info != NULL) {
        uint8_t h[32];
        SHA256(cs->info, cs->info_len, h);
        /* the builder signs exactly the info the cloud is shown */
        cs->r = CRYPTO_memcmp(h, digest, 32) == 0 ? duo_device_sign_csr_info(cs->s->ctx, sig_rs, cs->info, cs->info_len,
                                                                             (const uint8_t *)cs->pin, cs->pin_len)
                                                  : DUO_E_INTERNAL;
    } else {
        cs->r = duo_device_sign(cs->s->ctx, sig_rs, digest, (const uint8_t *)cs->pin, cs->pin_len);
    }
    return cs->r;
}

int cli_sign_digest(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]) {
    cli_signer *cs = ctx;
    /* After a restore of the service: resynchronise, then once more. */
    if (cli_sign_once(cs, digest, sig_rs) == DUO_E_RESYNC_POSSIBLE &&
        (cs->r = duo_cli_resync(cs->s, cs->pin, cs->pin_len)) == DUO_OK)
        (void)cli_sign_once(cs, digest, sig_rs);
    if (cs->r != DUO_OK) return cs->r;
    cs->save_ex = save_state(cs->s, cs->o->state);
    if (cs->save_ex != EX_OK_)
        fprintf(stderr, "%s: warning: the state was not updated; the old one stays valid\n", prog);
    return DUO_OK;
}

/* The PIN, then the builder (build) through the two-party signer. */
int run_signed(session *s, const opts *o, int (*build)(void *arg, cli_signer *cs), void *arg) {
    char pin[DUO_DEVICE_PIN_MAX + 2];
    size_t pin_len = 0;
    cli_signer cs = {s, o, pin, 0, DUO_OK, EX_OK_, NULL, 0};
    int r, ex;
    if ((ex = get_pin(o, 0, 0, pin, sizeof pin, &pin_len)) != EX_OK_) return ex;
    cs.pin_len = pin_len;
    r = build(arg, &cs);
    OPENSSL_cleanse(pin, sizeof pin);
    if (cs.r != DUO_OK) return report(s, "signing", cs.r);
    if (r != DUO_OK) {
        fprintf(stderr, "%s: %s\n", prog, duo_strerror(r));
        return exit_for(r);
    }
    return cs.save_ex;
}
