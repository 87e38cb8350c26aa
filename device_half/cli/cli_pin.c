/* duosign CLI: reading a PIN from --pin-file, --new-pin-file, standard
 * input or the terminal (no echo), and a new PIN's rules. Every buffer that
 * held a PIN is wiped. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"

/* Reads one line (without CR/LF) from fd into buf. Returns its length, or -1. */
static long read_line_fd(int fd, char *buf, size_t cap) {
    size_t n = 0;
    for (;;) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0 || c == '\n') break;
        if (n + 1 >= cap) {
            /* Too long: drain the line and fail. */
            n = cap;
            continue;
        }
        buf[n++] = c;
    }
    if (n >= cap) return -1;
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    return (long)n;
}

static long prompt_tty(const char *prompt, char *buf, size_t cap) {
    struct termios old, noecho;
    long n;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -2;
    if (tcgetattr(fd, &old) != 0) {
        close(fd);
        return -2;
    }
    noecho = old;
    noecho.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
    noecho.c_lflag |= ICANON;
    if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &noecho) != 0) {
        close(fd);
        return -2;
    }
    n = read_line_fd(fd, buf, cap);
    (void)tcsetattr(fd, TCSAFLUSH, &old);
    if (write(fd, "\n", 1) < 0) {
        /* nothing to do */
    }
    close(fd);
    return n;
}

/* The first line of a PIN file (without CR/LF) into buf; *n is its length,
 * or -1 when it does not fit. The file's bytes are wiped. Returns EX_OK_,
 * or EX_INPUT when the file cannot be read (said on stderr). */
static int read_pin_file(const char *what, const char *path, char *buf, size_t cap, long *n) {
    uint8_t *data = NULL;
    size_t dl = 0;
    char *nl;
    if (read_input(what, path, &data, &dl, 4096) != EX_OK_) return EX_INPUT;
    nl = memchr(data, '\n', dl);
    *n = nl ? (long)(nl - (char *)data) : (long)dl;
    if (*n > 0 && data[*n - 1] == '\r') (*n)--;
    if ((size_t)*n >= cap)
        *n = -1;
    else {
        memcpy(buf, data, (size_t)*n);
        buf[*n] = '\0';
    }
    wipe_free(data, dl);
    return EX_OK_;
}

/* Which PIN source: the n-th PIN (0 = current/old, 1 = new). */
int get_pin(const opts *o, int which, int confirm, char *buf, size_t cap, size_t *len) {
    long n;
    *len = 0;
    if (which == 1 && o->new_pin_file != NULL) {
        if (read_pin_file("new PIN file", o->new_pin_file, buf, cap, &n) != EX_OK_) return EX_INPUT;
    } else if (o->pin_file != NULL) {
        if (which == 1) {
            fprintf(stderr, "%s: change-pin with --pin-file needs --new-pin-file for the new PIN\n", prog);
            return EX_USAGE_;
        }
        if (read_pin_file("PIN file", o->pin_file, buf, cap, &n) != EX_OK_) return EX_INPUT;
    } else if (o->pin_stdin) {
        n = read_line_fd(STDIN_FILENO, buf, cap);
    } else {
        char label[96];
        snprintf(label, sizeof label, "%s%s: ", which == 1 ? "New " : "", o->pin_label ? o->pin_label : "PIN");
        n = prompt_tty(label, buf, cap);
        if (n == -2) {
            fprintf(stderr, "%s: no terminal to ask for the PIN: use --pin-file FILE or --pin-stdin\n", prog);
            return EX_USAGE_;
        }
        if (n > 0 && confirm) {
            char again[DUO_DEVICE_PIN_MAX + 2];
            long m = prompt_tty("Repeat PIN: ", again, sizeof again);
            int same = (m == n && memcmp(again, buf, (size_t)n) == 0);
            OPENSSL_cleanse(again, sizeof again);
            if (!same) {
                OPENSSL_cleanse(buf, cap);
                fprintf(stderr, "%s: the PINs do not match\n", prog);
                return EX_USAGE_;
            }
        }
    }
    if (n <= 0 || (size_t)n > DUO_DEVICE_PIN_MAX) {
        OPENSSL_cleanse(buf, cap);
        fprintf(stderr, "%s: the PIN must be 1 to %d bytes on one line\n", prog, DUO_DEVICE_PIN_MAX);
        return EX_INPUT;
    }
    /* A new PIN (enrol, change-pin's new one; those are the confirmed
     * ones) has a minimum length; a PIN typed to sign is the cloud's to
     * judge (keys made before the minimum keep working). */
    if (confirm && (size_t)n < (o->pin_min ? o->pin_min : DUO_DEVICE_PIN_MIN)) {
        OPENSSL_cleanse(buf, cap);
        fprintf(stderr, "%s: the %s%s must be at least %zu %s\n", prog, which == 1 ? "new " : "",
                o->pin_label ? o->pin_label : "PIN", o->pin_min ? o->pin_min : (size_t)DUO_DEVICE_PIN_MIN,
                o->pin_digits ? "digits" : "characters (bytes)");
        return EX_INPUT;
    }
    if (confirm && o->pin_digits && strspn(buf, "0123456789") != (size_t)n) {
        OPENSSL_cleanse(buf, cap);
        fprintf(stderr, "%s: the %s must be digits only\n", prog, o->pin_label ? o->pin_label : "PIN");
        return EX_INPUT;
    }
    *len = (size_t)n;
    return EX_OK_;
}
