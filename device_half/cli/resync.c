/* duosign resync, and the resynchronisation the signing commands run by
 * themselves: after a restore of the cloud's store from a backup, a device
 * whose secret rotated since holds one the store never saw; it proves its
 * PIN once and the cloud adopts its secret (docs/SECURITY.md 1.10). */
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

int duo_cli_resync(session *s, const char *pin, size_t pin_len) {
    int done = 0;
    int r = duo_device_resync(s->ctx, (const uint8_t *)pin, pin_len, &done);
    if (r == DUO_OK && done)
        fprintf(stderr,
                "%s: the signing service was restored from a backup; this device resynchronised with it "
                "(once, with the PIN)\n",
                prog);
    return r;
}

/* The hint after a refused resynchronisation (report() has said why). */
static void resync_hint(int r) {
    if (r == DUO_E_RESYNC_USED)
        fprintf(stderr,
                "%s: this key already resynchronised after the restore, from this device or a copy of it; if it "
                "was not you, revoke the key (duosign revoke --code)\n",
                prog);
    else if (r == DUO_E_RESYNC_NOT_OPEN)
        fprintf(stderr, "%s: the service was not restored since this key was enrolled: nothing to resynchronise\n",
                prog);
}

int cmd_resync(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char pin[DUO_DEVICE_PIN_MAX + 2];
    size_t pin_len = 0;
    int r, ex, done = 0;

    memset(pin, 0, sizeof pin);
    if (!require(o->state, "--state FILE")) return EX_USAGE_;
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((ex = get_pin(o, 0, 0, pin, sizeof pin, &pin_len)) != EX_OK_) goto out;
    r = duo_device_resync(s.ctx, (const uint8_t *)pin, pin_len, &done);
    OPENSSL_cleanse(pin, sizeof pin);
    if (r != DUO_OK) {
        ex = report(&s, "resync", r);
        resync_hint(r);
        goto out;
    }
    printf("%s\n", done ? "resynchronised: the service now knows this device's secret; the state file is unchanged"
                        : "already in sync: the service knows this device's secret; nothing to do");
    ex = EX_OK_;
out:
    OPENSSL_cleanse(pin, sizeof pin);
    session_close(&s);
    return ex;
}
