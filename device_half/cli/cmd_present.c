/* duosign CLI: `duosign present`: checks its options and opens the state;
 * present.c draws the codes. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "present.h"

/* Shows presentation codes (present.c). No PIN, no secret rotation: the
 * state file is only read. */
int cmd_present(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    duo_cli_present_opts po = {o->doc, o->png, o->once, 0, stdout};
    char why[512];
    int r, ex;

    if (!require(o->state, "--state FILE") || !require(o->doc, "--doc TYPE (e.g. passport)")) return EX_USAGE_;
    if (strlen(o->doc) == 0 || strlen(o->doc) > DUO_DEVICE_DOC_TYPE_MAX ||
        strspn(o->doc, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(o->doc)) {
        usage_err("--doc must be 1..%d of a-z, 0-9 and _ (e.g. passport), not '%s'", DUO_DEVICE_DOC_TYPE_MAX, o->doc);
        return EX_USAGE_;
    }
    po.tty = isatty(fileno(stdout));
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    r = duo_cli_present(s.ctx, &po, why, sizeof why);
    if (r == DUO_E_IO || r == DUO_E_CODE_RENDER) {
        fprintf(stderr, "%s: present failed: %s\n", prog, why);
        ex = EX_INPUT;
    } else if (r != DUO_OK) {
        ex = report(&s, "present", r);
    } else {
        ex = EX_OK_;
    }
out:
    session_close(&s);
    return ex;
}
