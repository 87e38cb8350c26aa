/* duosign CLI: drawing presentation codes (present.h). The QR code carries
 * the base32 code exactly (upper case: QR's alphanumeric mode), error
 * correction M; the terminal picture uses half blocks (two modules per
 * character row) with the 4-module quiet zone scanners need, the PNG 8
 * pixels per module. The countdown runs on the monotonic clock from the
 * moment the code arrived, so the phone's wall clock does not matter. */
#include "present.h"

#include <errno.h>
#include <png.h>
#include <qrencode.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUIET 4     /* modules of white border */
#define PNG_SCALE 8 /* pixels per module */

static int dark(const QRcode *q, int x, int y) {
    if (x < 0 || y < 0 || x >= q->width || y >= q->width) return 0;
    return q->data[y * q->width + x] & 1;
}

/* Dark modules as the terminal's foreground: "\u2580" upper half, "\u2584"
 * lower half, "\u2588" both. Inverted terminals scan too (zbar, phones). */
static void draw_terminal(FILE *out, const QRcode *q) {
    int w = q->width + 2 * QUIET;
    for (int y = -QUIET; y < q->width + QUIET; y += 2) {
        for (int x = -QUIET; x < w - QUIET; x++) {
            int top = dark(q, x, y), bottom = dark(q, x, y + 1);
            fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", out);
        }
        fputc('\n', out);
    }
}

static int write_png(const char *path, const QRcode *q, char *why, size_t why_cap) {
    int side = (q->width + 2 * QUIET) * PNG_SCALE;
    volatile int r = DUO_E_CODE_RENDER; /* set after setjmp: kept across longjmp */
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep row = NULL;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        snprintf(why, why_cap, "cannot write the picture '%s': %s", path, strerror(errno));
        return DUO_E_IO;
    }
    if ((row = malloc((size_t)side)) == NULL ||
        (png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL)) == NULL ||
        (info = png_create_info_struct(png)) == NULL)
        goto out;
    if (setjmp(png_jmpbuf(png))) goto out;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < side; y++) {
        for (int x = 0; x < side; x++) row[x] = dark(q, x / PNG_SCALE - QUIET, y / PNG_SCALE - QUIET) ? 0 : 255;
        png_write_row(png, row);
    }
    png_write_end(png, NULL);
    r = DUO_OK;
out:
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(f) != 0 && r == DUO_OK) {
        snprintf(why, why_cap, "cannot write the picture '%s': %s", path, strerror(errno));
        r = DUO_E_IO;
    }
    if (r == DUO_E_CODE_RENDER) snprintf(why, why_cap, "libpng failed to write '%s'", path);
    return r;
}

static int64_t mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Waits until the code dies, redrawing "expires in N s" on a terminal. */
static void countdown(FILE *out, int64_t ttl, int tty) {
    int64_t end = mono_s() + ttl;
    for (int64_t left = ttl; left > 0; left = end - mono_s()) {
        if (tty) {
            fprintf(out, "\rexpires in %3lld s ", (long long)left);
            fflush(out);
        }
        struct timespec one = {1, 0};
        nanosleep(&one, NULL);
    }
    if (tty) fputs("\rexpired; fetching a new code\n", out);
}

static int show(const duo_cli_present_opts *o, const duo_device_presentation *p, char *why, size_t why_cap) {
    QRcode *q = QRcode_encodeString(p->code, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    int r = DUO_OK;
    if (q == NULL) {
        snprintf(why, why_cap, "libqrencode could not encode the code");
        return DUO_E_CODE_RENDER;
    }
    if (o->png != NULL) r = write_png(o->png, q, why, why_cap);
    if (r == DUO_OK) {
        if (o->tty) fputs("\033[2J\033[H", o->out); /* a fresh screen for each code */
        draw_terminal(o->out, q);
        fprintf(o->out, "document: %s\ncode: %s\nbarcode (EAN-13): %s\nvalid for %lld s, single use\n", o->doc, p->code,
                p->barcode, (long long)(p->expires_at - p->issued_at));
        if (o->png != NULL) fprintf(o->out, "picture: %s\n", o->png);
        fflush(o->out);
    }
    QRcode_free(q);
    return r;
}

int duo_cli_present(duo_device_ctx *ctx, const duo_cli_present_opts *o, char *why, size_t why_cap) {
    duo_device_presentation p;
    int r;
    why[0] = '\0';
    for (;;) {
        if ((r = duo_device_presentation_code(ctx, o->doc, &p)) != DUO_OK) return r;
        if ((r = show(o, &p, why, why_cap)) != DUO_OK || o->once) break;
        countdown(o->out, p.expires_at - p.issued_at, o->tty);
    }
    memset(&p, 0, sizeof p);
    return r;
}
