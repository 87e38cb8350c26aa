/* libFuzzer target: the `duosign` CLI's argument parser (parse_opts in
 * device_half/cli/cli_opts.c: getopt_long, --paillier-bits / --timeout-ms
 * number parsing, --format, conflicting PIN sources, stray arguments).
 *
 * main.c (the help text, the command table) is compiled into this target
 * with its main() renamed, and the other CLI files linked, so the real
 * parse_opts runs. The input is split at NUL bytes into at most 64
 * arguments; argv[0] is the command word ("sign"), as main() passes it.
 * Checks: parse_opts returns -1 (continue), 0 (help) or 2 (usage error);
 * every option value it keeps points into argv; a --paillier-bits it kept is
 * 2048 or 3072, a --timeout-ms it kept is positive, a --format it kept is
 * der, raw, jws or cms, a --key it kept is auth or sign (and --key auth
 * points --state at the parser's own FILE.auth buffer), and --pin-file and
 * --pin-stdin never both survive.
 * Commands are never run: no files, sockets or PIN prompts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int duo_cli_main_not_fuzzed(int argc, char **argv);
#define main duo_cli_main_not_fuzzed
#include "../../device_half/cli/main.c"
#undef main

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    /* usage text and messages are expected; keep the fuzzer's output readable */
    if (freopen("/dev/null", "w", stdout) == NULL || freopen("/dev/null", "w", stderr) == NULL) return 0;
    return 0;
}

static int inside(const char *p, char *const *argv, int argc) {
    int i;
    if (p == NULL) return 1;
    for (i = 0; i < argc; i++) {
        size_t n = strlen(argv[i]);
        if (p >= argv[i] && p <= argv[i] + n) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf, *argv[66];
    int argc = 0, ex;
    size_t i, start = 0;
    opts o;

    if (size > 4096) return 0;
    if ((buf = malloc(size + 1)) == NULL) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    argv[argc++] = (char *)"sign";
    for (i = 0; i <= size && argc < 65; i++) {
        if (buf[i] == '\0') {
            argv[argc++] = buf + start;
            start = i + 1;
        }
    }
    argv[argc] = NULL;
    memset(&o, 0, sizeof o);
    o.cmd = "sign";
    ex = parse_opts(&o, argc, argv);
    if (ex != -1 && ex != EX_OK_ && ex != EX_USAGE_) abort();
    if (ex == -1) {
        const char *vals[] = {o.server, o.ca,  o.token,      o.in,           o.out,      o.format,
                              o.pubkey, o.sig, o.pin_file,   o.new_pin_file, o.code,     o.citizen,
                              o.name,   o.key, o.auth_token, o.pin1_file,    o.pin2_file};
        if (o.state != o.state_buf && !inside(o.state, argv, argc)) abort();
        if (o.key != NULL && strcmp(o.key, "auth") && strcmp(o.key, "sign")) abort();
        for (i = 0; i < sizeof vals / sizeof vals[0]; i++) {
            if (!inside(vals[i], argv, argc)) abort();
        }
        if (o.paillier_bits != 0 && o.paillier_bits != 2048 && o.paillier_bits != 3072) abort();
        if (o.format != NULL && strcmp(o.format, "der") && strcmp(o.format, "raw") && strcmp(o.format, "jws") &&
            strcmp(o.format, "cms"))
            abort();
        if (o.pin_file != NULL && o.pin_stdin) abort();
    }
    free(buf);
    return 0;
}
