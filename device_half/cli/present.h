/* duosign CLI: `duosign present` (issue 19): shows presentation codes for
 * one of the citizen's documents as a QR code in the terminal (libqrencode),
 * the EAN-13 digits and a countdown, fetching a new code when one dies;
 * optionally as a PNG picture (libpng). Written against the public
 * duosign/device.h only. */
#ifndef DUOSIGN_CLI_PRESENT_H
#define DUOSIGN_CLI_PRESENT_H

#include <stdio.h>

#include "duosign/device.h"

typedef struct duo_cli_present_opts {
    const char *doc; /* document type, e.g. "passport" */
    const char *png; /* NULL: no picture; else rewritten with each code */
    int once;        /* 1: one code, then return */
    int tty;         /* 1: redraw the countdown in place */
    FILE *out;       /* where the code is drawn (stdout) */
} duo_cli_present_opts;

/* Shows codes until one fails (or, with once, after the first).
 * Returns: DUO_OK; duo_device_presentation_code's errors (the message in
 *          duo_device_errmsg(ctx)); DUO_E_CODE_RENDER (libqrencode or libpng
 *          failed); DUO_E_IO (the PNG file could not be written; *why says
 *          which and why). */
int duo_cli_present(duo_device_ctx *ctx, const duo_cli_present_opts *o, char *why, size_t why_cap);

#endif
