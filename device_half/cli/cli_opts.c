/* duosign CLI: the command line: the options every command shares
 * (getopt_long), their values checked once here, and the usage errors. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void usage_err(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run `duosign --help` for usage)\n");
}

/* ------------------------------------------------------------ options */

enum {
    O_SERVER = 256,
    O_CA,
    O_TOKEN,
    O_STATE,
    O_IN,
    O_OUT,
    O_FORMAT,
    O_PUBKEY,
    O_SIG,
    O_PIN_FILE,
    O_NEW_PIN_FILE,
    O_PIN_STDIN,
    O_INSECURE,
    O_BITS,
    O_CURVE,
    O_TIMEOUT,
    O_RAW,
    O_VERBOSE,
    O_CODE,
    O_CITIZEN,
    O_NAME,
    O_KEY,
    O_AUTH_TOKEN,
    O_PIN1_FILE,
    O_PIN2_FILE,
    O_REQUEST,
    O_WAIT,
    O_BOTH,
    O_FETCH,
    O_DOC,
    O_ONCE,
    O_PNG,
    O_HELP
};

static const struct option long_opts[] = {{"server", required_argument, NULL, O_SERVER},
                                          {"ca", required_argument, NULL, O_CA},
                                          {"token", required_argument, NULL, O_TOKEN},
                                          {"state", required_argument, NULL, O_STATE},
                                          {"in", required_argument, NULL, O_IN},
                                          {"out", required_argument, NULL, O_OUT},
                                          {"format", required_argument, NULL, O_FORMAT},
                                          {"pubkey", required_argument, NULL, O_PUBKEY},
                                          {"sig", required_argument, NULL, O_SIG},
                                          {"pin-file", required_argument, NULL, O_PIN_FILE},
                                          {"new-pin-file", required_argument, NULL, O_NEW_PIN_FILE},
                                          {"pin-stdin", no_argument, NULL, O_PIN_STDIN},
                                          {"insecure", no_argument, NULL, O_INSECURE},
                                          {"paillier-bits", required_argument, NULL, O_BITS},
                                          {"curve", required_argument, NULL, O_CURVE},
                                          {"timeout-ms", required_argument, NULL, O_TIMEOUT},
                                          {"raw", no_argument, NULL, O_RAW},
                                          {"verbose", no_argument, NULL, O_VERBOSE},
                                          {"code", required_argument, NULL, O_CODE},
                                          {"citizen", required_argument, NULL, O_CITIZEN},
                                          {"name", required_argument, NULL, O_NAME},
                                          {"key", required_argument, NULL, O_KEY},
                                          {"auth-token", required_argument, NULL, O_AUTH_TOKEN},
                                          {"pin1-file", required_argument, NULL, O_PIN1_FILE},
                                          {"pin2-file", required_argument, NULL, O_PIN2_FILE},
                                          {"request", required_argument, NULL, O_REQUEST},
                                          {"wait", required_argument, NULL, O_WAIT},
                                          {"both", no_argument, NULL, O_BOTH},
                                          {"fetch", no_argument, NULL, O_FETCH},
                                          {"doc", required_argument, NULL, O_DOC},
                                          {"once", no_argument, NULL, O_ONCE},
                                          {"png", required_argument, NULL, O_PNG},
                                          {"help", no_argument, NULL, O_HELP},
                                          {NULL, 0, NULL, 0}};

static int parse_uint(const char *s, unsigned *out) {
    char *end = NULL;
    unsigned long v;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v > 0x7fffffffUL || s[0] == '-') return -1;
    *out = (unsigned)v;
    return 0;
}

/* Returns -1 to continue, or an exit code. */
int parse_opts(opts *o, int argc, char **argv) {
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hv", long_opts, NULL)) != -1) {
        switch (c) {
            case O_SERVER:
                o->server = optarg;
                break;
            case O_CA:
                o->ca = optarg;
                break;
            case O_TOKEN:
                o->token = optarg;
                break;
            case O_STATE:
                o->state = optarg;
                break;
            case O_IN:
                o->in = optarg;
                break;
            case O_OUT:
                o->out = optarg;
                break;
            case O_FORMAT:
                o->format = optarg;
                break;
            case O_PUBKEY:
                o->pubkey = optarg;
                break;
            case O_SIG:
                o->sig = optarg;
                break;
            case O_PIN_FILE:
                o->pin_file = optarg;
                break;
            case O_NEW_PIN_FILE:
                o->new_pin_file = optarg;
                break;
            case O_PIN_STDIN:
                o->pin_stdin = 1;
                break;
            case O_INSECURE:
                o->insecure = 1;
                break;
            case O_RAW:
                o->raw = 1;
                break;
            case O_CODE:
                o->code = optarg;
                break;
            case O_CITIZEN:
                o->citizen = optarg;
                break;
            case O_NAME:
                o->name = optarg;
                break;
            case O_KEY:
                if (strcmp(optarg, "auth") != 0 && strcmp(optarg, "sign") != 0) {
                    usage_err("--key must be auth or sign, not '%s'", optarg);
                    return EX_USAGE_;
                }
                o->key = optarg;
                break;
            case O_AUTH_TOKEN:
                o->auth_token = optarg;
                break;
            case O_PIN1_FILE:
                o->pin1_file = optarg;
                break;
            case O_PIN2_FILE:
                o->pin2_file = optarg;
                break;
            case O_BOTH:
                o->both = 1;
                break;
            case O_FETCH:
                o->fetch = 1;
                break;
            case O_DOC:
                o->doc = optarg;
                break;
            case O_ONCE:
                o->once = 1;
                break;
            case O_PNG:
                o->png = optarg;
                break;
            case 'v':
            case O_VERBOSE:
                o->verbose = 1;
                break;
            case O_BITS:
                if (parse_uint(optarg, &o->paillier_bits) != 0 ||
                    (o->paillier_bits != 2048 && o->paillier_bits != 3072)) {
                    usage_err("--paillier-bits must be 3072 or 2048, not '%s'", optarg);
                    return EX_USAGE_;
                }
                break;
            case O_CURVE:
                if (strcmp(optarg, "p256") == 0 || strcmp(optarg, "P-256") == 0) {
                    o->curve = DUO_DEVICE_CURVE_P256;
                } else if (strcmp(optarg, "secp256k1") == 0) {
                    o->curve = DUO_DEVICE_CURVE_SECP256K1;
                } else {
                    usage_err("--curve must be p256 or secp256k1, not '%s'", optarg);
                    return EX_USAGE_;
                }
                break;
            case O_TIMEOUT:
                if (parse_uint(optarg, &o->timeout_ms) != 0 || o->timeout_ms == 0) {
                    usage_err("--timeout-ms needs a positive number, not '%s'", optarg);
                    return EX_USAGE_;
                }
                break;
            case 'h':
            case O_REQUEST:
                o->request = optarg;
                break;
            case O_WAIT:
                if (parse_uint(optarg, &o->wait_s) != 0 || o->wait_s > 3600) {
                    usage_err("--wait takes whole seconds 0..3600, not '%s'", optarg);
                    return EX_USAGE_;
                }
                o->has_wait = 1;
                break;
            case O_HELP:
                fputs(usage_text, stdout);
                return EX_OK_;
            case ':':
                usage_err("option %s needs a value", argv[optind - 1]);
                return EX_USAGE_;
            default:
                usage_err("unknown option '%s'", argv[optind - 1]);
                return EX_USAGE_;
        }
    }
    if (optind < argc && strcmp(o->cmd, "claim") == 0 && o->link == NULL) o->link = argv[optind++];
    if (optind < argc) {
        usage_err("unexpected argument '%s'", argv[optind]);
        return EX_USAGE_;
    }
    if (o->pin_file != NULL && o->pin_stdin) {
        usage_err("%s", "give either --pin-file or --pin-stdin, not both");
        return EX_USAGE_;
    }
    if (o->format != NULL && strcmp(o->format, "der") != 0 && strcmp(o->format, "raw") != 0 &&
        strcmp(o->format, "jws") != 0 && strcmp(o->format, "cms") != 0) {
        usage_err("--format must be der, raw, jws or cms, not '%s'", o->format);
        return EX_USAGE_;
    }
    if ((o->pin1_file != NULL || o->pin2_file != NULL || o->auth_token != NULL) && strcmp(o->cmd, "enroll") != 0 &&
        strcmp(o->cmd, "enrol") != 0) {
        usage_err("%s", "--auth-token, --pin1-file and --pin2-file are for enroll (then --key auth|sign)");
        return EX_USAGE_;
    }
    if (o->both && strcmp(o->cmd, "enroll") != 0 && strcmp(o->cmd, "enrol") != 0) {
        usage_err("%s", "--both is for enroll (the two keys from one token)");
        return EX_USAGE_;
    }
    if (o->fetch && strcmp(o->cmd, "cert") != 0) {
        usage_err("%s", "--fetch is for cert");
        return EX_USAGE_;
    }
    if ((o->doc != NULL || o->png != NULL || o->once) && strcmp(o->cmd, "present") != 0) {
        usage_err("%s", "--doc, --once and --png are for present");
        return EX_USAGE_;
    }
    if (o->key != NULL && (!strcmp(o->cmd, "enroll") || !strcmp(o->cmd, "enrol") || !strcmp(o->cmd, "verify"))) {
        usage_err("--key is not for %s (enroll makes both keys with --auth-token)", o->cmd);
        return EX_USAGE_;
    }
    /* Two keys, two state files: FILE holds the signing key (an old
     * single-key state is one), FILE.auth the authentication key. */
    if (o->key != NULL && strcmp(o->key, "auth") == 0 && o->state != NULL) {
        if ((size_t)snprintf(o->state_buf, sizeof o->state_buf, "%s.auth", o->state) >= sizeof o->state_buf) {
            usage_err("%s", "--state is too long");
            return EX_USAGE_;
        }
        o->state = o->state_buf;
    }
    /* A role's PIN rules for a new PIN (change-pin --key ...): PIN1 at least
     * 4 digits, PIN2 at least 5. Without --key, the single-key rule. */
    if (o->key != NULL) {
        int auth = strcmp(o->key, "auth") == 0;
        o->pin_label = auth ? "PIN1 (authentication)" : "PIN2 (signing)";
        o->pin_min = auth ? 4 : 5;
        o->pin_digits = 1;
    }
    return -1;
}

int require(const char *val, const char *name) {
    if (val == NULL) {
        fprintf(stderr, "%s: %s needs %s\n(run `duosign --help` for usage)\n", prog, "this command", name);
        return 0;
    }
    return 1;
}
