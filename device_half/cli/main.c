/* duosign: the command-line tool for testers and integrators.
 *
 * Written only against the public headers duosign/device.h and
 * duosign/device_grpc.h (plus OpenSSL for hashing and local verification),
 * like curl's src/ on include/curl/. See docs/CLI.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/sha.h>

#include "atomic.h"
#include "cli.h"
#include "duosign/device.h"
#include "duosign/device_grpc.h"
#include "duosign/device_x509.h"
#include "present.h"

#define MAX_DOC ((size_t)1 << 30)
#define MAX_SMALL ((size_t)1 << 20)
#define APP_MAGIC "duosign-cli/1\n"

const char *prog = "duosign";

static const char usage_text[] = "usage: duosign <command> [options]\n"
                                 "\n"
                                 "commands:\n"
                                 "  enroll  --server HOST:PORT --ca CA.pem --token TOKEN --state FILE\n"
                                 "          [--curve p256|secp256k1] [--paillier-bits 3072|2048] [--insecure]\n"
                                 "          [--both | --pin1-file F1 --pin2-file F2] [--auth-token TOKEN1]\n"
                                 "          (the citizen's two keys in one go, from one token: the\n"
                                 "          authentication key, PIN1 of at least 4 digits, in FILE.auth; the\n"
                                 "          signing key, PIN2 of at least 5 digits, in FILE; each gets its\n"
                                 "          certificate from the cloud's CA inside the enrolment)\n"
                                 "  sign    --state FILE --in DOC --out SIG [--format der|raw|jws|cms]\n"
                                 "  pubkey  --state FILE [--out pub.pem] [--raw]\n"
                                 "  verify  --pubkey pub.pem --sig SIG --in DOC [--format der|raw|jws]   (local)\n"
                                 "  status  --state FILE\n"
                                 "  present --state FILE --doc TYPE [--once] [--png FILE]\n"
                                 "          (show a document, e.g. passport: a QR code and EAN-13 digits that\n"
                                 "          live 180 s, single use; a new one when it dies; --once: one code;\n"
                                 "          --png: also write the QR code as a picture)\n"
                                 "  refresh --state FILE\n"
                                 "  resync  --state FILE   after the service was restored from a backup: prove\n"
                                 "          the PIN once so that it adopts this device's secret (sign, csr, cms\n"
                                 "          and change-pin do it by themselves when the service asks)\n"
                                 "  revoke  --state FILE\n"
                                 "  revoke  --code CODE --citizen ID --server HOST:PORT --ca CA.pem\n"
                                 "          (the phone is lost: the one-time code shown at enrolment)\n"
                                 "  change-pin --state FILE [--new-pin-file FILE]\n"
                                 "  csr     --state FILE --out REQ.der [--name CN]   (PKCS#10, signed by both halves)\n"
                                 "  cert    --state FILE [--in CERT.pem | --fetch]   (print the key's certificate;\n"
                                 "          --in stores one, checked against the key, in the state; --fetch\n"
                                 "          asks the cloud for one the operator imported)\n"
                                 "  requests --state FILE [--wait SECONDS]   relying parties' requests waiting\n"
                                 "  approve --state FILE --request ID   show who asks, what and the code; ask the\n"
                                 "          PIN of the key it needs (FILE.auth or FILE) and sign it\n"
                                 "  refuse  --state FILE --request ID\n"
                                 "  claim   LINK --state FILE   an anonymous login's link (the RP's QR code):\n"
                                 "          claim it with the authentication key, then approve as above\n"
                                 "  --version   print the version\n"
                                 "\n"
                                 "--key auth|sign: which of the citizen's keys (state FILE.auth or FILE;\n"
                                 "default sign, which is also an old single-key state) sign, csr, cert,\n"
                                 "pubkey, status, refresh, revoke and change-pin use.\n"
                                 "PIN: asked on the terminal without echo, or --pin-file FILE (first line),\n"
                                 "or --pin-stdin (first line of standard input; change-pin reads the old PIN\n"
                                 "then the new one). Never from the command line or the environment.\n"
                                 "Online commands take --server, --ca, --insecure and --timeout-ms to\n"
                                 "override what enroll stored in the state file; -v/--verbose shows gRPC's\n"
                                 "own log lines.\n"
                                 "sign hashes DOC with SHA-256; der (default) is what\n"
                                 "`openssl dgst -sha256 -verify pub.pem -signature SIG DOC` checks; raw is\n"
                                 "r||s (64 bytes); jws is a compact JWS, alg ES256 for a P-256 key (RFC 7518),\n"
                                 "ES256K for secp256k1 (RFC 8812), payload DOC; cms is a detached CMS\n"
                                 "SignedData (CAdES-BES) with the certificate stored by `duosign cert --in`,\n"
                                 "which `openssl cms -verify -binary -inform DER -content DOC` checks.\n"
                                 "enroll makes P-256 keys unless --curve secp256k1; verify takes the curve\n"
                                 "from the public key.\n"
                                 "\n"
                                 "exit codes:\n"
                                 "  0 success             8 server unreachable or timed out\n"
                                 "  1 other error         9 state file corrupted\n"
                                 "  2 usage error        10 signed, but the signature went to a fallback file\n"
                                 "  3 bad input file or      (named on stderr; the state is saved)\n"
                                 "    unwritable output  11 server certificate not trusted by the CA (TLS)\n"
                                 "  4 wrong PIN          12 server busy; retry later\n"
                                 "  5 key locked         13 enrolment token unknown, used or another citizen's\n"
                                 "  6 key revoked or     14 enrolment token expired\n"
                                 "    suspended          15 error at the signing service (its key store)\n"
                                 "  7 a clone of this device was detected\n"
                                 " 16 refused by the server (revoke --code: code or citizen id not accepted)\n"
                                 " 17 enroll: the server does not enrol keys on this --curve\n"
                                 " 19 this key's role does not sign that (auth: logins; sign: documents)\n"
                                 " 20 no certificate for this key yet (cert --fetch later)\n"
                                 " 24 approve, refuse, claim: the request is no longer waiting (answered,\n"
                                 "    cancelled, expired) or the link is unknown or already claimed\n"
                                 " 26 present: no such document for the citizen in the registry\n"
                                 " 28 resync refused: none open (no restore since), already used (a copy of\n"
                                 "    this device?), another restore epoch, or altered on the way\n"
                                 "  (verify exits 1 when the signature does not match)\n";

static void usage_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_err(const char *fmt, ...) {
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

/* Printed under the revocation code. */
#define REVOKE_HINT                                                                                         \
    "if this device is lost: duosign revoke --code CODE --citizen YOUR-CITIZEN-ID --server HOST:PORT --ca " \
    "CA.pem"

/* An empty revocation code: the cloud had already accepted an earlier
 * confirmation whose answer was lost, and shows the code only once. */
#define NO_CODE_AGAIN                                                                                     \
    "enrolment confirmed (the cloud had already accepted an earlier attempt); the revocation code is "    \
    "shown only the first time and cannot be shown again. Without it, the key can still be revoked from " \
    "this device (duosign revoke) or by the operator"

/* Returns -1 to continue, or an exit code. */
static int parse_opts(opts *o, int argc, char **argv) {
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

/* ------------------------------------------------------------ small helpers */

static void wipe_free(uint8_t *p, size_t n) {
    if (p != NULL) {
        OPENSSL_cleanse(p, n);
        free(p);
    }
}

static int read_input(const char *what, const char *path, uint8_t **out, size_t *len, size_t max) {
    int r = duo_cli_read_file(path, out, len, max);
    if (r != 0) {
        fprintf(stderr, "%s: cannot read %s '%s': %s\n", prog, what, path, strerror(-r));
        return EX_INPUT;
    }
    return EX_OK_;
}

/* Reads a CA file and checks that it holds PEM certificates (OpenSSL), so
 * that a wrong file is one clear line (exit 3), not a connection error. */
static int read_ca(const char *path, uint8_t **out, size_t *len) {
    int ex = read_input("CA certificate", path, out, len, MAX_SMALL);
    BIO *bio;
    X509 *x = NULL;
    if (ex != EX_OK_) return ex;
    if ((bio = BIO_new_mem_buf(*out, (int)*len)) != NULL) x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    if (x == NULL) {
        fprintf(stderr, "%s: CA certificate '%s' is not a PEM certificate (-----BEGIN CERTIFICATE-----)\n", prog, path);
        free(*out);
        *out = NULL;
        *len = 0;
        return EX_INPUT;
    }
    X509_free(x);
    return EX_OK_;
}

static int write_output(const char *what, const char *path, const uint8_t *data, size_t len, mode_t mode) {
    int r = duo_cli_write_atomic(path, data, len, mode);
    if (r != 0) {
        fprintf(stderr, "%s: cannot write %s '%s': %s\n", prog, what, path, strerror(-r));
        return EX_OTHER;
    }
    return EX_OK_;
}

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding (RFC 7515 section 2). Returns malloc'd text. */
static char *b64url_encode(const uint8_t *in, size_t len) {
    size_t cap = (len + 2) / 3 * 4 + 1, i, o = 0;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int b64url_val(char c) {
    const char *p = (c == '\0') ? NULL : strchr(b64url_alphabet, c);
    return p ? (int)(p - b64url_alphabet) : -1;
}

/* Strict decode (no padding, canonical trailing bits). Returns 0 or -1. */
static int b64url_decode(const char *in, size_t len, uint8_t **out, size_t *out_len) {
    size_t i, o = 0;
    uint8_t *buf;
    uint32_t acc = 0;
    int bits = 0;
    if (len % 4 == 1) return -1;
    if ((buf = malloc(len * 3 / 4 + 1)) == NULL) return -1;
    for (i = 0; i < len; i++) {
        int v = b64url_val(in[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = o;
    return 0;
}

/* The JWS alg of a key's curve: ES256 (RFC 7518 3.4) for P-256, ES256K
 * (RFC 8812) for secp256k1; NULL for anything else. */
static const char *jws_alg_of(int curve) {
    return curve == DUO_DEVICE_CURVE_P256 ? "ES256" : curve == DUO_DEVICE_CURVE_SECP256K1 ? "ES256K" : NULL;
}

/* signing input = b64url(header) "." b64url(doc) */
static char *jws_signing_input(const char *alg, const uint8_t *doc, size_t doc_len) {
    char header[64];
    snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JOSE\"}", alg);
    char *h = b64url_encode((const uint8_t *)header, strlen(header));
    char *p = b64url_encode(doc, doc_len);
    char *si = NULL;
    if (h != NULL && p != NULL && (si = malloc(strlen(h) + strlen(p) + 2)) != NULL) {
        sprintf(si, "%s.%s", h, p);
    }
    free(h);
    free(p);
    return si;
}

/* ------------------------------------------------------------ PIN */

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

/* Which PIN source: the n-th PIN (0 = current/old, 1 = new). */
int get_pin(const opts *o, int which, int confirm, char *buf, size_t cap, size_t *len) {
    long n;
    *len = 0;
    if (which == 1 && o->new_pin_file != NULL) {
        uint8_t *data = NULL;
        size_t dl = 0;
        char *nl;
        if (read_input("new PIN file", o->new_pin_file, &data, &dl, 4096) != EX_OK_) return EX_INPUT;
        nl = memchr(data, '\n', dl);
        n = nl ? (long)(nl - (char *)data) : (long)dl;
        if (n > 0 && data[n - 1] == '\r') n--;
        if ((size_t)n >= cap)
            n = -1;
        else {
            memcpy(buf, data, (size_t)n);
            buf[n] = '\0';
        }
        wipe_free(data, dl);
    } else if (o->pin_file != NULL) {
        uint8_t *data = NULL;
        size_t dl = 0;
        char *nl;
        if (which == 1) {
            fprintf(stderr, "%s: change-pin with --pin-file needs --new-pin-file for the new PIN\n", prog);
            return EX_USAGE_;
        }
        if (read_input("PIN file", o->pin_file, &data, &dl, 4096) != EX_OK_) return EX_INPUT;
        nl = memchr(data, '\n', dl);
        n = nl ? (long)(nl - (char *)data) : (long)dl;
        if (n > 0 && data[n - 1] == '\r') n--;
        if ((size_t)n >= cap)
            n = -1;
        else {
            memcpy(buf, data, (size_t)n);
            buf[n] = '\0';
        }
        wipe_free(data, dl);
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

/* ------------------------------------------------------------ device plumbing */

/* The exit status for a failure: the error table's column (errors.h,
 * duo_err_exit_code; documented in docs/CLI.md). */
static int exit_for(int r) { return duo_err_exit_code(r); }

void fmt_time(int64_t t, char *buf, size_t cap) {
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
        snprintf(buf, cap, "%lld", (long long)t);
    }
}

/* Reports a failure of an online library call with the server's message
 * and what to do, and returns the exit code. */
int report(session *s, const char *what, int r) {
    const char *addr = s->addr != NULL ? s->addr : "?";
    fprintf(stderr, "%s: %s failed: %s (%s)\n", prog, what, duo_device_errmsg(s->ctx), duo_err_name(r));
    switch (r) {
        case DUO_E_WRONG_PIN:
        case DUO_E_KEY_LOCKED: {
            duo_device_status_info st;
            if (duo_device_status(s->ctx, &st) == DUO_OK) {
                if (st.state == DUO_DEVICE_KEY_LOCKED && st.locked_until > 0) {
                    char tb[64];
                    fmt_time(st.locked_until, tb, sizeof tb);
                    fprintf(stderr, "%s: the key is locked until %s\n", prog, tb);
                    return EX_LOCKED;
                }
                if (st.state == DUO_DEVICE_KEY_REVOKED) {
                    fprintf(stderr, "%s: the key is now revoked\n", prog);
                    return EX_REVOKED;
                }
                if (r == DUO_E_WRONG_PIN) {
                    fprintf(stderr, "%s: PIN attempts left before the key locks: %u\n", prog, st.pin_attempts_left);
                }
            }
            break;
        }
        case DUO_E_UNAVAILABLE:
            fprintf(stderr, "%s: check the server address (%s) and that duosign-cloud is running there\n", prog, addr);
            break;
        case DUO_E_TIMEOUT:
            fprintf(stderr, "%s: no answer from %s in time: check the network, or raise --timeout-ms\n", prog, addr);
            break;
        case DUO_E_TLS_UNTRUSTED:
            fprintf(stderr,
                    "%s: the server at %s is reachable, but its certificate does not verify under the CA in use "
                    "(%s): give the CA of that service with --ca, or check that %s is the service you enrolled "
                    "with\n",
                    prog, addr, s->ca_origin != NULL ? s->ca_origin : "?", addr);
            break;
        case DUO_E_SERVER_BUSY:
            fprintf(stderr, "%s: the server at %s is up but busy (too many sessions in progress): retry in a minute\n",
                    prog, addr);
            break;
        case DUO_E_TOKEN_INVALID:
            fprintf(stderr,
                    "%s: the enrolment token was refused: it is unknown, already used, or issued for another "
                    "citizen; ask the operator for a new one\n",
                    prog);
            break;
        case DUO_E_TOKEN_EXPIRED:
            fprintf(stderr, "%s: the enrolment token has expired; ask the operator for a new one\n", prog);
            break;
        case DUO_E_STATE_CORRUPT:
        case DUO_E_STORE:
            /* Online, a corrupted record is the cloud's (the library never
             * reports its own state as corrupt after it was loaded). */
            fprintf(stderr,
                    "%s: this is an error at the signing service (%s), not in your state file, which is "
                    "unchanged: report it to the service's operator\n",
                    prog, addr);
            return EX_SERVER;
        case DUO_E_CLONE_SUSPECTED:
            fprintf(stderr, "%s: the key is frozen; enrol again\n", prog);
            break;
        case DUO_E_RESYNC_POSSIBLE:
            fprintf(stderr,
                    "%s: the service was restored from a backup: run 'duosign resync --state FILE' (it asks the "
                    "PIN once), then this command again\n",
                    prog);
            break;
        default:
            break;
    }
    return exit_for(r);
}

void session_close(session *s) {
    duo_device_ctx_free(s->ctx);
    duo_grpc_transport_free(s->t);
    s->ctx = NULL;
    s->t = NULL;
}

/* The connection settings stored in the app data of the state:
 * APP_MAGIC, then "insecure\n" or "tls\n" followed by the CA PEM. */
static int connect_transport(session *s, const opts *o, const char *address, const uint8_t *ca, size_t ca_len) {
    int r;
    if (o->insecure) {
        ca = NULL;
        ca_len = 0;
    }
    s->addr = address;
    if ((r = duo_grpc_transport_new(&s->t, address, (const char *)ca, ca_len, o->timeout_ms)) != DUO_OK) {
        fprintf(stderr, "%s: cannot set up the connection to %s: %s\n", prog, address, duo_strerror(r));
        return r == DUO_E_BAD_CA ? EX_INPUT : EX_OTHER;
    }
    if ((r = duo_device_set_transport(s->ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, s->t)) != DUO_OK) {
        return EX_OTHER;
    }
    return EX_OK_;
}

/* Saves the state atomically (mode 0600), then acknowledges it. */
int save_state(session *s, const char *path) {
    uint8_t *blob = NULL;
    size_t len = 0;
    int r, ex;

    if ((r = duo_device_state_export(s->ctx, &blob, &len)) != DUO_OK) {
        fprintf(stderr, "%s: cannot serialize the state: %s\n", prog, duo_strerror(r));
        return EX_OTHER;
    }
    ex = write_output("state file", path, blob, len, 0600);
    duo_device_blob_free(blob, len);
    if (ex != EX_OK_) {
        /* Not acknowledged: the library keeps using the stored secret. */
        return ex;
    }
    if ((r = duo_device_state_persisted(s->ctx)) != DUO_OK) {
        fprintf(stderr, "%s: %s\n", prog, duo_device_errmsg(s->ctx));
        return EX_OTHER;
    }
    return EX_OK_;
}

/* Temporary copies of the state left by a process killed while saving hold
 * the next device secret: wipe and remove them (atomic.h). Not fatal. */
static void cleanup_tmp(const char *state) {
    unsigned n = 0;
    int r = duo_cli_cleanup_tmp(state, &n);
    if (n > 0)
        fprintf(stderr,
                "%s: removed %u leftover temporary state file%s of '%s' (an earlier run was killed while saving)\n",
                prog, n, n == 1 ? "" : "s", state);
    if (r != 0) fprintf(stderr, "%s: warning: cannot remove temporary files of '%s': %s\n", prog, state, strerror(-r));
}

/* Loads the state file and, when online, connects to its server. */
int open_state(session *s, const opts *o, int online) {
    uint8_t *blob = NULL;
    size_t len = 0;
    int r, ex;
    const uint8_t *app = NULL;
    size_t app_len = 0;
    uint8_t *ca_file = NULL;
    size_t ca_file_len = 0;
    const uint8_t *ca = NULL;
    size_t ca_len = 0;
    const char *addr;

    if (!require(o->state, "--state FILE")) return EX_USAGE_;
    if ((r = duo_device_ctx_new(&s->ctx)) != DUO_OK) {
        fprintf(stderr, "%s: %s\n", prog, duo_strerror(r));
        return EX_OTHER;
    }
    if ((ex = read_input("state file", o->state, &blob, &len, 16u << 20)) != EX_OK_) return ex;
    cleanup_tmp(o->state);
    r = duo_device_state_import(s->ctx, blob, len);
    wipe_free(blob, len);
    if (r != DUO_OK) {
        fprintf(stderr, "%s: state file '%s' refused: %s\n", prog, o->state, duo_strerror(r));
        return exit_for(r);
    }
    if (!online) return EX_OK_;

    if (duo_device_app_data(s->ctx, &app, &app_len) == DUO_OK && app_len >= strlen(APP_MAGIC) &&
        memcmp(app, APP_MAGIC, strlen(APP_MAGIC)) == 0) {
        const uint8_t *p = app + strlen(APP_MAGIC);
        size_t n = app_len - strlen(APP_MAGIC);
        if (n >= 4 && memcmp(p, "tls\n", 4) == 0) {
            ca = p + 4;
            ca_len = n - 4;
            s->ca_origin = "the CA stored in the state file at enrolment";
        }
    }
    if (o->ca != NULL) {
        if ((ex = read_ca(o->ca, &ca_file, &ca_file_len)) != EX_OK_) return ex;
        s->ca_origin = o->ca;
        ca = ca_file;
        ca_len = ca_file_len;
    }
    addr = o->server ? o->server : duo_device_server_address(s->ctx);
    if (ca == NULL && !o->insecure) {
        fprintf(stderr, "%s: the state has no CA certificate for %s: give --ca CA.pem (or --insecure for tests)\n",
                prog, addr);
        free(ca_file);
        return EX_USAGE_;
    }
    ex = connect_transport(s, o, addr, ca_len ? ca : NULL, ca_len);
    free(ca_file);
    if (ex != EX_OK_) return ex;

    /* An enrolment stored but not confirmed (crash or network loss): finish it. */
    if (!duo_device_is_confirmed(s->ctx)) {
        char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
        if ((r = duo_device_enroll_confirm(s->ctx, code, sizeof code)) != DUO_OK) {
            return report(s, "confirming the enrolment", r);
        }
        if ((ex = save_state(s, o->state)) != EX_OK_) return ex;
        if (code[0] != '\0')
            printf("enrolment confirmed; revocation code (keep it safe, shown once): %s\n%s\n", code, REVOKE_HINT);
        else
            printf("%s\n", NO_CODE_AGAIN);
    }
    return EX_OK_;
}

void print_hex(FILE *f, const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) fprintf(f, "%02x", p[i]);
}

/* ------------------------------------------------------------ commands */

static int enrol_certificate(session *s, const opts *o, const char *pin, size_t pin_len);

static int enroll_one(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t *ca = NULL, *app = NULL;
    size_t ca_len = 0, app_len;
    char pin[DUO_DEVICE_PIN_MAX + 2];
    size_t pin_len = 0;
    char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    uint8_t kid[DUO_DEVICE_KEY_ID_BYTES];
    struct stat st;
    int r, ex;

    if (!require(o->server, "--server HOST:PORT") || !require(o->token, "--token TOKEN") ||
        !require(o->state, "--state FILE")) {
        return EX_USAGE_;
    }
    if (o->ca == NULL && !o->insecure) {
        usage_err("%s", "enroll needs --ca CA.pem (or --insecure for tests)");
        return EX_USAGE_;
    }
    if (strlen(o->token) == 0 || strlen(o->token) > DUO_DEVICE_TOKEN_MAX) {
        usage_err("%s", "the token must be 1 to 128 characters");
        return EX_USAGE_;
    }
    if (stat(o->state, &st) == 0) {
        fprintf(stderr, "%s: state file '%s' already exists; refusing to overwrite an enrolled key\n", prog, o->state);
        return EX_USAGE_;
    }
    /* An enrolment killed while saving may have left its temporary file. */
    cleanup_tmp(o->state);
    if (o->ca != NULL && !o->insecure) {
        if ((ex = read_ca(o->ca, &ca, &ca_len)) != EX_OK_) return ex;
    }
    /* The token is consumed by the cloud: check that the state can be
     * written before using it. */
    if ((r = duo_cli_check_writable(o->state)) != 0) {
        fprintf(stderr, "%s: cannot write the state file '%s': %s (nothing was sent)\n", prog, o->state, strerror(-r));
        free(ca);
        return EX_INPUT;
    }
    if (o->pin_pre != NULL) {
        memcpy(pin, o->pin_pre, o->pin_pre_len);
        pin_len = o->pin_pre_len;
    } else if ((ex = get_pin(o, 0, 1, pin, sizeof pin, &pin_len)) != EX_OK_) {
        goto out;
    }
    if ((r = duo_device_ctx_new(&s.ctx)) != DUO_OK) {
        ex = EX_OTHER;
        goto out;
    }
    s.ca_origin = o->ca;
    if ((ex = connect_transport(&s, o, o->server, ca, ca_len)) != EX_OK_) goto out;
    if (o->curve != 0 && (r = duo_device_set_enroll_curve(s.ctx, o->curve)) != DUO_OK) {
        ex = report(&s, "enrolment", r);
        goto out;
    }
    if ((r = duo_device_set_enroll_role(s.ctx, o->role)) != DUO_OK) {
        ex = report(&s, "enrolment", r);
        goto out;
    }
    fprintf(stderr, "enrolling with %s (%s key, Paillier %u bits)...\n", o->server,
            duo_device_curve_name(o->curve ? o->curve : DUO_DEVICE_CURVE_P256),
            o->paillier_bits ? o->paillier_bits : 3072);
    r = duo_device_enroll(s.ctx, o->server, (const uint8_t *)o->token, strlen(o->token), (const uint8_t *)pin, pin_len,
                          o->paillier_bits);
    if (r != DUO_OK) {
        ex = report(&s, "enrolment", r);
        goto out;
    }
    /* Remember how to reach the server. */
    app_len = strlen(APP_MAGIC) + (ca ? 4 + ca_len : 9);
    if ((app = malloc(app_len)) == NULL) {
        ex = EX_OTHER;
        goto out;
    }
    memcpy(app, APP_MAGIC, strlen(APP_MAGIC));
    if (ca) {
        memcpy(app + strlen(APP_MAGIC), "tls\n", 4);
        memcpy(app + strlen(APP_MAGIC) + 4, ca, ca_len);
    } else {
        memcpy(app + strlen(APP_MAGIC), "insecure\n", 9);
    }
    if ((r = duo_device_set_app_data(s.ctx, app, app_len)) != DUO_OK) {
        ex = report(&s, "storing the connection settings", r);
        goto out;
    }
    /* DESIGN 3.2: store durably before the confirmation. */
    if ((ex = save_state(&s, o->state)) != EX_OK_) goto out;
    if ((r = duo_device_enroll_confirm(s.ctx, code, sizeof code)) != DUO_OK) {
        ex = report(&s, "enrolment confirmation", r);
        fprintf(stderr, "%s: the state is stored; any later command retries the confirmation\n", prog);
        goto out;
    }
    if ((ex = save_state(&s, o->state)) != EX_OK_) goto out;
    if (duo_device_key_id(s.ctx, kid) == DUO_OK) {
        printf("enrolled key ");
        print_hex(stdout, kid, sizeof kid);
        printf(" at %s\nstate: %s\n", o->server, o->state);
        if (code[0] != '\0')
            printf("revocation code (keep it safe, shown once): %s\n%s\n", code, REVOKE_HINT);
        else
            printf("%s\n", NO_CODE_AGAIN);
    }
    /* A key with a role gets its certificate now (its PIN proves the request). */
    ex = o->role != DUO_DEVICE_ROLE_NONE ? enrol_certificate(&s, o, pin, pin_len) : EX_OK_;
out:
    OPENSSL_cleanse(pin, sizeof pin);
    free(app);
    free(ca);
    session_close(&s);
    return ex;
}

/* enroll: one key (--token), or the citizen's two keys in one action
 * (--auth-token T1 --token T2): the authentication key (PIN1, at least 4
 * digits) in FILE.auth, then the signing key (PIN2, at least 5 digits) in
 * FILE. Each is a full two-party key with its own share, secrets and
 * lockout counter (docs/DECISIONS.md). */
static int cmd_enroll(const opts *o) {
    opts a, b;
    struct stat st;
    char pin1[DUO_DEVICE_PIN_MAX + 2], pin2[DUO_DEVICE_PIN_MAX + 2];
    int ex, r;
    if (o->auth_token == NULL && !o->both && o->pin1_file == NULL && o->pin2_file == NULL) {
        return enroll_one(o); /* one key without a role, as before roles */
    }
    if (!require(o->state, "--state FILE") || !require(o->token, "--token TOKEN (the signing key's)")) return EX_USAGE_;
    if (o->pin_file != NULL) {
        usage_err("%s", "two keys take --pin1-file (authentication) and --pin2-file (signing), not --pin-file");
        return EX_USAGE_;
    }
    if (o->pin_stdin && (o->pin1_file != NULL || o->pin2_file != NULL)) {
        usage_err("%s", "give the two PINs either as files or on standard input (PIN1, then PIN2), not both");
        return EX_USAGE_;
    }
    a = *o;
    b = *o;
    if ((size_t)snprintf(a.state_buf, sizeof a.state_buf, "%s.auth", o->state) >= sizeof a.state_buf) {
        usage_err("%s", "--state is too long");
        return EX_USAGE_;
    }
    a.state = a.state_buf;
    if (stat(a.state, &st) == 0 || stat(b.state, &st) == 0) {
        fprintf(stderr, "%s: state file '%s' or '%s' already exists; refusing to overwrite an enrolled key\n", prog,
                b.state, a.state);
        return EX_USAGE_;
    }
    /* One token admits both keys; --auth-token (a second token) still works. */
    a.token = o->auth_token != NULL ? o->auth_token : o->token;
    a.role = DUO_DEVICE_ROLE_AUTH;
    b.role = DUO_DEVICE_ROLE_SIGN;
    a.pin_file = o->pin1_file;
    a.pin_label = "PIN1 (authentication)";
    a.pin_min = 4;
    a.pin_digits = 1;
    b.pin_file = o->pin2_file;
    b.pin_label = "PIN2 (signing)";
    b.pin_min = 5;
    b.pin_digits = 1;
    /* Both PINs and both files are checked before the first token is used. */
    if ((r = duo_cli_check_writable(a.state)) != 0 || (r = duo_cli_check_writable(b.state)) != 0) {
        fprintf(stderr, "%s: cannot write the state files '%s': %s (nothing was sent)\n", prog, b.state, strerror(-r));
        return EX_INPUT;
    }
    if ((ex = get_pin(&a, 0, 1, pin1, sizeof pin1, &a.pin_pre_len)) != EX_OK_) goto out;
    if ((ex = get_pin(&b, 0, 1, pin2, sizeof pin2, &b.pin_pre_len)) != EX_OK_) goto out;
    a.pin_pre = pin1;
    b.pin_pre = pin2;
    fprintf(stderr, "authentication key (PIN1) -> %s\n", a.state);
    if ((ex = enroll_one(&a)) != EX_OK_) goto out;
    fprintf(stderr, "signing key (PIN2) -> %s\n", b.state);
    if ((ex = enroll_one(&b)) != EX_OK_)
        fprintf(stderr, "%s: the authentication key is enrolled (%s); the signing key is not\n", prog, a.state);
out:
    OPENSSL_cleanse(pin1, sizeof pin1);
    OPENSSL_cleanse(pin2, sizeof pin2);
    return ex;
}

/* Where a signature goes when --out cannot be written after the cloud made
 * it: next to the state file, named after the time. Returns 0 and the path
 * in buf, or -errno. */
static int write_fallback(const char *state, const char *fmt, const uint8_t *data, size_t len, char *buf, size_t cap) {
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    int r;
    if (gmtime_r(&now, &tm) == NULL || strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm) == 0) {
        snprintf(ts, sizeof ts, "%lld", (long long)now);
    }
    if ((size_t)snprintf(buf, cap, "%s.signature-%s-%ld.%s", state, ts, (long)getpid(), fmt) >= cap) {
        return -ENAMETOOLONG;
    }
    r = duo_cli_write_atomic(buf, data, len, 0644);
    return r;
}

/* ------------------------------------------------------------ certificates */

/* The key's certificate is public: it is kept beside the state file, not in
 * it (the state's format is the library's), as STATE.cert.pem. */
static int cert_path(const opts *o, char *buf, size_t cap) {
    if ((size_t)snprintf(buf, cap, "%s.cert.pem", o->state) >= cap) {
        fprintf(stderr, "%s: the state file name is too long\n", prog);
        return EX_USAGE_;
    }
    return EX_OK_;
}

/* The key's certificate: the one kept in the state (issued in enrolment,
 * fetched, or stored by cert --in), else the file an older duosign kept
 * beside the state. Returns EX_OK_ and *out, or an exit code. */
static int load_file_cert(session *s, const char *path, X509 **out);
static int load_own_cert(session *s, const char *path, X509 **out) {
    const uint8_t *der = NULL;
    size_t len = 0;
    if (duo_device_certificate(s->ctx, &der, &len) == DUO_OK) {
        const uint8_t *p = der;
        *out = d2i_X509(NULL, &p, (long)len); /* checked against the key when it was kept */
        return *out != NULL ? EX_OK_ : EX_OTHER;
    }
    return load_file_cert(s, path, out);
}

/* Reads a PEM certificate and checks that its key is the state's key.
 * Returns EX_OK_ and *out (free with X509_free), or an exit code. */
static int load_file_cert(session *s, const char *path, X509 **out) {
    char pem[DUO_DEVICE_PUBKEY_PEM_MAX];
    size_t pem_len = sizeof pem;
    BIO *b = NULL;
    EVP_PKEY *mine = NULL;
    X509 *x = NULL;
    FILE *f = fopen(path, "r");
    int ex = EX_INPUT;

    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "%s: no certificate in the state, nor '%s': %s (duosign cert --fetch, or --in CERT.pem)\n",
                prog, path, strerror(errno));
        return duo_err_exit_code(DUO_E_NO_CERT);
    }
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        fprintf(stderr, "%s: '%s' is not a PEM certificate\n", prog, path);
        goto out;
    }
    if (duo_device_pubkey_pem(s->ctx, pem, &pem_len) != DUO_OK || (b = BIO_new_mem_buf(pem, (int)pem_len)) == NULL ||
        (mine = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) == NULL) {
        ex = EX_OTHER;
        goto out;
    }
    if (EVP_PKEY_eq(X509_get0_pubkey(x), mine) != 1) {
        fprintf(stderr, "%s: the certificate '%s' is for another key than this state's\n", prog, path);
        goto out;
    }
    *out = x;
    x = NULL;
    ex = EX_OK_;
out:
    X509_free(x);
    EVP_PKEY_free(mine);
    BIO_free(b);
    return ex;
}

/* The two-party signer behind the X.509/CMS builders: one signing session
 * (the PIN is checked by the cloud), the state saved right after. */
typedef struct cli_signer {
    session *s;
    const opts *o;
    const char *pin;
    size_t pin_len;
    int r;               /* the library's error, for report() */
    int save_ex;         /* the state's save */
    const uint8_t *info; /* a certification request's info: signed with the CSR purpose */
    size_t info_len;
} cli_signer;

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

static int cli_sign_digest(void *ctx, const uint8_t digest[32], uint8_t sig_rs[64]) {
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
static int run_signed(session *s, const opts *o, int (*build)(void *arg, cli_signer *cs), void *arg) {
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

typedef struct csr_job {
    const char *cn;
    uint8_t *der;
    size_t len;
} csr_job;

/* The request is signed with the CSR purpose: the cloud is shown its info
 * and signs only a request for this key. */
static int build_csr(void *arg, cli_signer *cs) {
    csr_job *j = arg;
    uint8_t q[DUO_DEVICE_PUBKEY_BYTES], *info = NULL;
    size_t info_len = 0;
    duo_csr_subject subj = {.common_name = j->cn};
    const char *curve = duo_device_curve_name(duo_device_curve(cs->s->ctx));
    int r = duo_device_pubkey(cs->s->ctx, q);
    if (r != DUO_OK) return r;
    if ((r = duo_csr_info(&info, &info_len, curve, q, sizeof q, &subj)) != DUO_OK) return r;
    cs->info = info;
    cs->info_len = info_len;
    r = duo_csr_build(&j->der, &j->len, curve, q, sizeof q, &subj, cli_sign_digest, cs);
    cs->info = NULL;
    duo_x509_free(info);
    return r;
}

/* After an enrolment with a role: the key's request, signed by both halves
 * (CSR purpose, the PIN just typed), then IssueCertificate; the
 * certificate goes into the state. Without a CA at the cloud the key stays
 * usable and `cert --fetch` picks one up later. */
static int enrol_certificate(session *s, const opts *o, const char *pin, size_t pin_len) {
    csr_job j = {"duosign key", NULL, 0};
    cli_signer cs = {s, o, pin, pin_len, DUO_OK, EX_OK_, NULL, 0};
    int r = build_csr(&j, &cs), ex;
    if (cs.r != DUO_OK) {
        ex = report(s, "signing the certificate request", cs.r);
        goto out;
    }
    if (r != DUO_OK || cs.save_ex != EX_OK_) {
        fprintf(stderr, "%s: the certificate request failed: %s\n", prog, duo_strerror(r));
        ex = r != DUO_OK ? exit_for(r) : cs.save_ex;
        goto out;
    }
    r = duo_device_issue_certificate(s->ctx, j.der, j.len);
    if (r == DUO_E_NO_CA) {
        printf("no certificate: the server has no issuing CA; the key works without one. When the operator has "
               "imported it: duosign cert --fetch --state %s\n",
               o->state);
        ex = EX_OK_;
        goto out;
    }
    if (r != DUO_OK) {
        ex = report(s, "certificate issuance", r);
        goto out;
    }
    if ((ex = save_state(s, o->state)) == EX_OK_)
        printf("certificate issued (%s key) and kept in %s\n", o->role == DUO_DEVICE_ROLE_AUTH ? "auth" : "sign",
               o->state);
out:
    duo_x509_free(j.der);
    return ex;
}

/* duosign csr: a PKCS#10 request (DER) for an external CA or for
 * `duosign-cloud cert issue --csr`; the subject is a placeholder (the CA
 * certifies its own record of the citizen). */
static int cmd_csr(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    csr_job j = {o->name != NULL ? o->name : "duosign key", NULL, 0};
    int r, ex;
    if (!require(o->state, "--state FILE") || !require(o->out, "--out REQ.der")) return EX_USAGE_;
    if (strlen(j.cn) == 0 || strlen(j.cn) > 64) {
        usage_err("%s", "--name must be 1 to 64 bytes");
        return EX_USAGE_;
    }
    if ((r = duo_cli_check_writable(o->out)) != 0) {
        fprintf(stderr, "%s: cannot write the request to '%s': %s (nothing was sent)\n", prog, o->out, strerror(-r));
        return EX_INPUT;
    }
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((ex = run_signed(&s, o, build_csr, &j)) != EX_OK_) goto out;
    if ((ex = write_output("request", o->out, j.der, j.len, 0644)) == EX_OK_)
        printf("certificate request (PKCS#10, DER) -> %s\n", o->out);
out:
    duo_x509_free(j.der);
    session_close(&s);
    return ex;
}

/* duosign cert: prints the stored certificate, or with --in stores one. */
static int cmd_cert(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char path[4096];
    X509 *x = NULL;
    BIO *b = NULL;
    BUF_MEM *mem = NULL;
    int ex;
    if (!require(o->state, "--state FILE")) return EX_USAGE_;
    if (o->in != NULL && o->fetch) {
        usage_err("%s", "cert takes --in CERT.pem or --fetch, not both");
        return EX_USAGE_;
    }
    if ((ex = cert_path(o, path, sizeof path)) != EX_OK_ || (ex = open_state(&s, o, o->fetch)) != EX_OK_) goto out;
    if (o->fetch) {
        int r = duo_device_issue_certificate(s.ctx, NULL, 0);
        if (r != DUO_OK) {
            ex = report(&s, "fetching the certificate", r);
            goto out;
        }
        if ((ex = save_state(&s, o->state)) == EX_OK_) printf("certificate fetched and kept in %s\n", o->state);
        goto out;
    }
    if ((ex = o->in != NULL ? load_file_cert(&s, o->in, &x) : load_own_cert(&s, path, &x)) != EX_OK_) goto out;
    if (o->in != NULL) {
        uint8_t *der = NULL;
        int len = i2d_X509(x, &der), r;
        r = len > 0 ? duo_device_set_certificate(s.ctx, der, (size_t)len) : DUO_E_NOMEM;
        OPENSSL_free(der);
        if (r != DUO_OK) {
            ex = report(&s, "storing the certificate", r);
            goto out;
        }
        if ((ex = save_state(&s, o->state)) == EX_OK_) printf("certificate stored in %s\n", o->state);
        goto out;
    }
    if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509(b, x) != 1) {
        ex = EX_OTHER;
        goto out;
    }
    BIO_get_mem_ptr(b, &mem);
    fwrite(mem->data, 1, mem->length, stdout);
out:
    BIO_free(b);
    X509_free(x);
    session_close(&s);
    return ex;
}

typedef struct cms_job {
    const uint8_t *cert;
    size_t cert_len;
    uint8_t digest[32];
    uint8_t *der;
    size_t len;
} cms_job;

static int build_cms(void *arg, cli_signer *cs) {
    cms_job *j = arg;
    return duo_cms_sign_detached(&j->der, &j->len, j->cert, j->cert_len, j->digest, (int64_t)time(NULL),
                                 cli_sign_digest, cs);
}

/* sign --format cms: the stored certificate is checked before anything is
 * sent; the document's SHA-256 goes into the signed attributes. */
static int sign_cms(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char path[4096], fb[4096];
    uint8_t *doc = NULL, *cert = NULL;
    size_t doc_len = 0;
    X509 *x = NULL;
    cms_job j;
    int r, ex, len;
    memset(&j, 0, sizeof j);
    if ((ex = read_input("document", o->in, &doc, &doc_len, MAX_DOC)) != EX_OK_) goto out;
    if ((r = duo_cli_check_writable(o->out)) != 0 || (r = duo_cli_check_writable(o->state)) != 0) {
        fprintf(stderr, "%s: cannot write the signature or the state: %s (nothing was sent)\n", prog, strerror(-r));
        ex = EX_INPUT;
        goto out;
    }
    if ((ex = cert_path(o, path, sizeof path)) != EX_OK_ || (ex = open_state(&s, o, 1)) != EX_OK_ ||
        (ex = load_own_cert(&s, path, &x)) != EX_OK_)
        goto out;
    if ((len = i2d_X509(x, &cert)) <= 0) {
        ex = EX_OTHER;
        goto out;
    }
    j.cert = cert;
    j.cert_len = (size_t)len;
    SHA256(doc, doc_len, j.digest);
    if ((ex = run_signed(&s, o, build_cms, &j)) != EX_OK_ && j.der == NULL) goto out;
    if ((r = duo_cli_write_atomic(o->out, j.der, j.len, 0644)) != 0) {
        fprintf(stderr, "%s: cannot write the signature to '%s': %s\n", prog, o->out, strerror(-r));
        if (write_fallback(o->state, "p7s", j.der, j.len, fb, sizeof fb) == 0)
            fprintf(stderr, "%s: the signature is saved in '%s' instead\n", prog, fb);
        ex = EX_FALLBACK;
        goto out;
    }
    printf("signed %s (SHA-256 ", o->in);
    print_hex(stdout, j.digest, sizeof j.digest);
    printf(") -> %s (cms, detached CAdES-BES)\n", o->out);
out:
    duo_x509_free(j.der);
    OPENSSL_free(cert);
    X509_free(x);
    free(doc);
    session_close(&s);
    return ex;
}

static int cmd_sign(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t *doc = NULL, digest[32], sig[64], der[DUO_DEVICE_SIG_DER_MAX];
    size_t doc_len = 0, der_len = sizeof der, pin_len = 0, out_len = 0;
    char pin[DUO_DEVICE_PIN_MAX + 2];
    char *si = NULL, *sig64 = NULL, *jws = NULL;
    const uint8_t *out_data = NULL;
    const char *fmt = o->format ? o->format : "der";
    int r, ex, save_ex;

    if (!require(o->state, "--state FILE") || !require(o->in, "--in DOC") || !require(o->out, "--out SIG")) {
        return EX_USAGE_;
    }
    if (strcmp(fmt, "cms") == 0) return sign_cms(o);
    if ((ex = read_input("document", o->in, &doc, &doc_len, MAX_DOC)) != EX_OK_) goto out;
    /* A signature made by the cloud cannot be taken back, and it rotates
     * the device secret: check every file this command writes before
     * anything is sent (issue 13 item 4). */
    if ((r = duo_cli_check_writable(o->out)) != 0) {
        fprintf(stderr, "%s: cannot write the signature to '%s': %s (nothing was sent; the state is unchanged)\n", prog,
                o->out, strerror(-r));
        ex = EX_INPUT;
        goto out;
    }
    if ((r = duo_cli_check_writable(o->state)) != 0) {
        fprintf(stderr, "%s: cannot write the state file '%s': %s (nothing was sent)\n", prog, o->state, strerror(-r));
        ex = EX_INPUT;
        goto out;
    }
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if (strcmp(fmt, "jws") == 0) {
        if ((si = jws_signing_input(jws_alg_of(duo_device_curve(s.ctx)), doc, doc_len)) == NULL) {
            ex = EX_OTHER;
            goto out;
        }
        SHA256((const uint8_t *)si, strlen(si), digest);
    } else {
        SHA256(doc, doc_len, digest);
    }
    if ((ex = get_pin(o, 0, 0, pin, sizeof pin, &pin_len)) != EX_OK_) goto out;
    r = duo_device_sign(s.ctx, sig, digest, (const uint8_t *)pin, pin_len);
    if (r == DUO_E_RESYNC_POSSIBLE && (r = duo_cli_resync(&s, pin, pin_len)) == DUO_OK) /* then once more */
        r = duo_device_sign(s.ctx, sig, digest, (const uint8_t *)pin, pin_len);
    OPENSSL_cleanse(pin, sizeof pin);
    if (r != DUO_OK) {
        ex = report(&s, "signing", r);
        goto out;
    }
    if (getenv("DUOSIGN_TEST_CRASH_BEFORE_SAVE") != NULL) {
        /* Test hook: die like kill -9 between the new secret and the write. */
        raise(SIGKILL);
    }
    /* The new device secret must be stored before anything else. */
    save_ex = save_state(&s, o->state);
    if (save_ex != EX_OK_) {
        fprintf(stderr, "%s: warning: the state was not updated; the old one stays valid\n", prog);
    }
    /* From here on the signature exists: it must reach a file, or stdout. */
    if (strcmp(fmt, "der") == 0) {
        if (duo_device_sig_to_der(der, &der_len, sig) != DUO_OK) der_len = 0;
        out_data = der;
        out_len = der_len;
    } else if (strcmp(fmt, "raw") == 0) {
        out_data = sig;
        out_len = sizeof sig;
    } else if ((sig64 = b64url_encode(sig, sizeof sig)) != NULL &&
               (jws = malloc(strlen(si) + strlen(sig64) + 2)) != NULL) {
        sprintf(jws, "%s.%s", si, sig64);
        out_data = (const uint8_t *)jws;
        out_len = strlen(jws);
    }
    if (out_len == 0) {
        /* Cannot happen short of malloc failing; keep the signature anyway. */
        fprintf(stderr, "%s: cannot encode the signature as %s; here it is as r || s (hex): ", prog, fmt);
        print_hex(stderr, sig, sizeof sig);
        fprintf(stderr, "\n");
        ex = EX_FALLBACK;
        goto out;
    }
    /* Test hook: the output write fails after the signature (disk full). */
    r = getenv("DUOSIGN_TEST_FAIL_OUTPUT") != NULL ? -ENOSPC : duo_cli_write_atomic(o->out, out_data, out_len, 0644);
    if (r != 0) {
        char fb[4096];
        int fr;
        fprintf(stderr, "%s: cannot write the signature to '%s': %s\n", prog, o->out, strerror(-r));
        fr = write_fallback(o->state, fmt, out_data, out_len, fb, sizeof fb);
        if (fr == 0) {
            fprintf(stderr, "%s: the signature is saved in '%s' instead (%s)%s\n", prog, fb, fmt,
                    save_ex == EX_OK_ ? "; the state file is saved: do not sign again to recover it" : "");
        } else {
            fprintf(stderr, "%s: nor in '%s': %s; the signature (%s, hex) is: ", prog, fb, strerror(-fr), fmt);
            print_hex(stderr, out_data, out_len);
            fprintf(stderr, "\n");
        }
        ex = EX_FALLBACK;
        goto out;
    }
    printf("signed %s (SHA-256 ", o->in);
    print_hex(stdout, digest, sizeof digest);
    printf(") -> %s (%s)\n", o->out, fmt);
    ex = save_ex;
out:
    OPENSSL_cleanse(pin, sizeof pin);
    free(doc);
    free(si);
    free(sig64);
    free(jws);
    session_close(&s);
    return ex;
}

static int cmd_pubkey(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char pem[DUO_DEVICE_PUBKEY_PEM_MAX];
    size_t pem_len = sizeof pem;
    uint8_t pk[DUO_DEVICE_PUBKEY_BYTES];
    int r, ex;

    if ((ex = open_state(&s, o, 0)) != EX_OK_) goto out;
    if (o->raw) {
        if ((r = duo_device_pubkey(s.ctx, pk)) != DUO_OK) {
            ex = report(&s, "public key export", r);
            goto out;
        }
        if (o->out) {
            ex = write_output("public key", o->out, pk, sizeof pk, 0644);
        } else {
            print_hex(stdout, pk, sizeof pk);
            printf("\n");
        }
        goto out;
    }
    if ((r = duo_device_pubkey_pem(s.ctx, pem, &pem_len)) != DUO_OK) {
        ex = report(&s, "public key export", r);
        goto out;
    }
    if (o->out) {
        ex = write_output("public key", o->out, (const uint8_t *)pem, pem_len, 0644);
    } else {
        fputs(pem, stdout);
    }
out:
    session_close(&s);
    return ex;
}

/* Local verification with OpenSSL only (no duosign code involved). */
static int verify_der(EVP_PKEY *pk, const uint8_t *der, size_t der_len, const uint8_t *msg, size_t msg_len) {
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = 0;
    if (m != NULL && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, pk) == 1) {
        ok = EVP_DigestVerify(m, der, der_len, msg, msg_len) == 1;
    }
    EVP_MD_CTX_free(m);
    return ok;
}

static int raw_to_der(const uint8_t raw[64], uint8_t *der, size_t *der_len) {
    return duo_device_sig_to_der(der, der_len, raw) == DUO_OK ? 0 : -1;
}

/* The JWS Protected Header (RFC 7515 section 4), parsed as JSON: an object
 * (RFC 7515 5.2 step 5: valid JSON, no duplicate member names, which
 * jansson rejects with JSON_REJECT_DUPLICATES; nothing after the object),
 * "alg" exactly "ES256K" (RFC 8812), and no "crit" (4.1.11: a recipient
 * must reject extensions it does not understand; this verifier understands
 * none). Returns 0, or -1 with the reason in why. */
static int jws_header_check(const uint8_t *hdr, size_t hdr_len, const char *want, char *why, size_t why_cap) {
    json_error_t jerr;
    json_t *h = json_loadb((const char *)hdr, hdr_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *alg, *crit;
    int r = -1;

    if (h == NULL) {
        snprintf(why, why_cap, "the protected header is not valid JSON: %s", jerr.text);
        return -1;
    }
    if (!json_is_object(h)) {
        snprintf(why, why_cap, "the protected header is not a JSON object");
        goto out;
    }
    if ((crit = json_object_get(h, "crit")) != NULL) {
        const char *first = json_is_array(crit) && json_is_string(json_array_get(crit, 0))
                                ? json_string_value(json_array_get(crit, 0))
                                : "?";
        snprintf(why, why_cap,
                 "the protected header marks extensions critical (crit, first \"%s\") this verifier "
                 "does not understand",
                 first);
        goto out;
    }
    alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), want) != 0 || json_string_length(alg) != strlen(want)) {
        snprintf(why, why_cap, "the protected header's alg is %s%s%s, not \"%s\" (the public key's curve)",
                 json_is_string(alg) ? "\"" : "",
                 alg == NULL           ? "missing"
                 : json_is_string(alg) ? json_string_value(alg)
                                       : "not a string",
                 json_is_string(alg) ? "\"" : "", want);
        goto out;
    }
    r = 0;
out:
    json_decref(h);
    return r;
}

/* The DUO_DEVICE_CURVE_* of an EC public key, from its group name; 0 for
 * any other curve. */
static int pubkey_curve(const EVP_PKEY *pk) {
    char name[64] = "";
    if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, NULL) != 1) return 0;
    if (strcmp(name, "prime256v1") == 0 || strcmp(name, "P-256") == 0) return DUO_DEVICE_CURVE_P256;
    if (strcmp(name, "secp256k1") == 0) return DUO_DEVICE_CURVE_SECP256K1;
    return 0;
}

static int cmd_verify(const opts *o) {
    uint8_t *pem = NULL, *sig = NULL, *doc = NULL, *dec = NULL, *hdr = NULL, *payload = NULL;
    size_t pem_len = 0, sig_len = 0, doc_len = 0, dec_len = 0, hdr_len = 0, payload_len = 0;
    const char *fmt = o->format ? o->format : "der";
    EVP_PKEY *pk = NULL;
    BIO *bio = NULL;
    uint8_t der[DUO_DEVICE_SIG_DER_MAX];
    size_t der_len = sizeof der;
    int ex, ok = 0, curve;

    if (!require(o->pubkey, "--pubkey pub.pem") || !require(o->sig, "--sig SIG") || !require(o->in, "--in DOC")) {
        return EX_USAGE_;
    }
    if ((ex = read_input("public key", o->pubkey, &pem, &pem_len, MAX_SMALL)) != EX_OK_) goto out;
    if ((ex = read_input("signature", o->sig, &sig, &sig_len, MAX_DOC)) != EX_OK_) goto out;
    if ((ex = read_input("document", o->in, &doc, &doc_len, MAX_DOC)) != EX_OK_) goto out;
    if ((bio = BIO_new_mem_buf(pem, (int)pem_len)) == NULL ||
        (pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL)) == NULL || !EVP_PKEY_is_a(pk, "EC")) {
        fprintf(stderr, "%s: '%s' is not a PEM EC public key\n", prog, o->pubkey);
        ex = EX_INPUT;
        goto out;
    }
    if ((curve = pubkey_curve(pk)) == 0) {
        fprintf(stderr, "%s: '%s' is an EC key on a curve duosign does not use (P-256 and secp256k1 only)\n", prog,
                o->pubkey);
        ex = EX_INPUT;
        goto out;
    }
    if (strcmp(fmt, "der") == 0) {
        ok = verify_der(pk, sig, sig_len, doc, doc_len);
    } else if (strcmp(fmt, "raw") == 0) {
        ok = sig_len == 64 && raw_to_der(sig, der, &der_len) == 0 && verify_der(pk, der, der_len, doc, doc_len);
    } else {
        /* Compact JWS: header.payload.signature (RFC 7515 section 7.1). */
        char *d1, *d2, *text;
        size_t n = sig_len;
        while (n > 0 && (sig[n - 1] == '\n' || sig[n - 1] == '\r')) n--;
        if ((text = malloc(n + 1)) == NULL) {
            ex = EX_OTHER;
            goto out;
        }
        memcpy(text, sig, n);
        text[n] = '\0';
        d1 = strchr(text, '.');
        d2 = d1 ? strchr(d1 + 1, '.') : NULL;
        if (d1 && d2 && strchr(d2 + 1, '.') == NULL && strlen(text) == n &&
            b64url_decode(text, (size_t)(d1 - text), &hdr, &hdr_len) == 0 &&
            b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), &payload, &payload_len) == 0 &&
            b64url_decode(d2 + 1, strlen(d2 + 1), &dec, &dec_len) == 0) {
            /* The header must be a JSON object naming the alg of the
             * key's curve, with no critical extension; the payload must be
             * DOC. */
            char why[256];
            int alg_ok = jws_header_check(hdr, hdr_len, jws_alg_of(curve), why, sizeof why) == 0;
            if (!alg_ok) fprintf(stderr, "%s: %s\n", prog, why);
            ok = alg_ok && payload_len == doc_len && memcmp(payload, doc, doc_len) == 0 && dec_len == 64 &&
                 raw_to_der(dec, der, &der_len) == 0 &&
                 verify_der(pk, der, der_len, (const uint8_t *)text, (size_t)(d2 - text));
        }
        free(text);
    }
    if (ok) {
        printf("signature OK (%s, %s)\n", fmt, o->in);
        ex = EX_OK_;
    } else {
        fprintf(stderr, "%s: signature INVALID for '%s' (%s)\n", prog, o->in, fmt);
        ex = EX_OTHER;
    }
out:
    BIO_free(bio);
    EVP_PKEY_free(pk);
    free(pem);
    free(sig);
    free(doc);
    free(dec);
    free(hdr);
    free(payload);
    return ex;
}

static const char *state_name(int st) {
    switch (st) {
        case DUO_DEVICE_KEY_PENDING:
            return "pending";
        case DUO_DEVICE_KEY_ACTIVE:
            return "active";
        case DUO_DEVICE_KEY_LOCKED:
            return "locked";
        case DUO_DEVICE_KEY_SUSPENDED:
            return "suspended";
        case DUO_DEVICE_KEY_REVOKED:
            return "revoked";
        default:
            return "unknown";
    }
}

static int cmd_status(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    duo_device_status_info st;
    uint8_t kid[DUO_DEVICE_KEY_ID_BYTES], pk[DUO_DEVICE_PUBKEY_BYTES];
    int r, ex;

    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_status(s.ctx, &st)) != DUO_OK) {
        ex = report(&s, "status", r);
        goto out;
    }
    if (duo_device_key_id(s.ctx, kid) == DUO_OK && duo_device_pubkey(s.ctx, pk) == DUO_OK) {
        printf("key id: ");
        print_hex(stdout, kid, sizeof kid);
        printf("\ncurve: %s\nserver: %s\nstate: %s\nPIN attempts left: %u\n",
               duo_device_curve_name(duo_device_curve(s.ctx)), duo_device_server_address(s.ctx), state_name(st.state),
               st.pin_attempts_left);
        if (st.locked_until > 0) {
            char tb[64];
            fmt_time(st.locked_until, tb, sizeof tb);
            printf("locked until: %s\n", tb);
        }
        printf("public key: ");
        print_hex(stdout, pk, sizeof pk);
        printf("%s\n", memcmp(pk, st.public_key, sizeof pk) == 0 ? "" : "  (MISMATCH with the server!)");
    }
    ex = EX_OK_;
    if (st.state == DUO_DEVICE_KEY_REVOKED || st.state == DUO_DEVICE_KEY_SUSPENDED)
        ex = EX_REVOKED;
    else if (st.state == DUO_DEVICE_KEY_LOCKED)
        ex = EX_LOCKED;
out:
    session_close(&s);
    return ex;
}

/* Shows presentation codes (present.c). No PIN, no secret rotation: the
 * state file is only read. */
static int cmd_present(const opts *o) {
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

/* Commands that rotate the device secret write the state afterwards: check
 * that they can before the cloud is contacted (issue 13 item 4). */
int check_state_writable(const opts *o) {
    int r;
    if (o->state == NULL || (r = duo_cli_check_writable(o->state)) == 0) return EX_OK_;
    fprintf(stderr, "%s: cannot write the state file '%s': %s (nothing was sent)\n", prog, o->state, strerror(-r));
    return EX_INPUT;
}

static int cmd_refresh(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    int r, ex;
    if ((ex = check_state_writable(o)) != EX_OK_) return ex;
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_refresh(s.ctx)) != DUO_OK) {
        ex = report(&s, "refresh", r);
        goto out;
    }
    if ((ex = save_state(&s, o->state)) == EX_OK_) printf("device secret rotated; state saved to %s\n", o->state);
out:
    session_close(&s);
    return ex;
}

/* revoke --code CODE --citizen ID: the phone is lost, so there is no state
 * file; the server and its CA come from the command line. */
static int cmd_revoke_code(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    uint8_t *ca = NULL;
    size_t ca_len = 0, i, n = 0;
    char code[DUO_DEVICE_REVOCATION_CODE_MAX + 1];
    int r, ex;

    if (o->state != NULL) {
        usage_err("%s", "revoke takes either --state FILE (from the device) or --code CODE --citizen ID (without "
                        "it), not both");
        return EX_USAGE_;
    }
    if (!require(o->code, "--code CODE") || !require(o->citizen, "--citizen ID") ||
        !require(o->server, "--server HOST:PORT")) {
        return EX_USAGE_;
    }
    if (o->ca == NULL && !o->insecure) {
        usage_err("%s", "revoke --code needs --ca CA.pem (or --insecure for tests)");
        return EX_USAGE_;
    }
    /* The code as printed at enrolment; case and spaces do not matter. */
    for (i = 0; o->code[i] != '\0'; i++) {
        char c = o->code[i];
        if (c == ' ' || c == '\t') continue;
        if (n == DUO_DEVICE_REVOCATION_CODE_MAX) {
            n = 0;
            break;
        }
        code[n++] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    code[n] = '\0';
    if (n == 0 || strlen(o->citizen) == 0 || strlen(o->citizen) > DUO_DEVICE_CITIZEN_ID_MAX) {
        usage_err("the revocation code must be 1 to %d characters and the citizen id 1 to %d",
                  DUO_DEVICE_REVOCATION_CODE_MAX, DUO_DEVICE_CITIZEN_ID_MAX);
        return EX_USAGE_;
    }
    if (o->ca != NULL && !o->insecure) {
        if ((ex = read_ca(o->ca, &ca, &ca_len)) != EX_OK_) return ex;
    }
    if ((r = duo_device_ctx_new(&s.ctx)) != DUO_OK) {
        ex = EX_OTHER;
        goto out;
    }
    s.ca_origin = o->ca;
    if ((ex = connect_transport(&s, o, o->server, ca, ca_len)) != EX_OK_) goto out;
    r = duo_device_revoke_with_code(s.ctx, o->citizen, code);
    if (r == DUO_E_UNAUTHENTICATED) {
        fprintf(stderr,
                "%s: revocation refused by %s: this code does not revoke a key of citizen '%s' (a typo, a code "
                "already used, or another citizen id); nothing was changed\n",
                prog, o->server, o->citizen);
        ex = exit_for(r);
        goto out;
    }
    if (r != DUO_OK) {
        ex = r == DUO_E_INVALID_ARG ? EX_USAGE_ : report(&s, "revocation", r);
        if (r == DUO_E_INVALID_ARG) fprintf(stderr, "%s: %s\n", prog, duo_device_errmsg(s.ctx));
        goto out;
    }
    printf("key of citizen %s revoked with the revocation code; it can no longer sign\n", o->citizen);
    ex = EX_OK_;
out:
    OPENSSL_cleanse(code, sizeof code);
    free(ca);
    session_close(&s);
    return ex;
}

static int cmd_revoke(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    int r, ex;
    if (o->code != NULL || o->citizen != NULL) return cmd_revoke_code(o);
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_revoke(s.ctx)) != DUO_OK) {
        ex = report(&s, "revocation", r);
        goto out;
    }
    printf("key revoked; the state file %s can be deleted\n", o->state);
out:
    session_close(&s);
    return ex;
}

static int cmd_change_pin(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char old_pin[DUO_DEVICE_PIN_MAX + 2], new_pin[DUO_DEVICE_PIN_MAX + 2];
    size_t old_len = 0, new_len = 0;
    int r, ex;

    memset(old_pin, 0, sizeof old_pin);
    memset(new_pin, 0, sizeof new_pin);
    if (o->pin_file != NULL && o->new_pin_file == NULL) {
        usage_err("%s", "change-pin with --pin-file needs --new-pin-file for the new PIN");
        return EX_USAGE_;
    }
    if ((ex = check_state_writable(o)) != EX_OK_) return ex;
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((ex = get_pin(o, 0, 0, old_pin, sizeof old_pin, &old_len)) != EX_OK_) goto out;
    if ((ex = get_pin(o, 1, 1, new_pin, sizeof new_pin, &new_len)) != EX_OK_) goto out;
    r = duo_device_change_pin(s.ctx, (const uint8_t *)old_pin, old_len, (const uint8_t *)new_pin, new_len);
    if (r == DUO_E_RESYNC_POSSIBLE && (r = duo_cli_resync(&s, old_pin, old_len)) == DUO_OK) /* then once more */
        r = duo_device_change_pin(s.ctx, (const uint8_t *)old_pin, old_len, (const uint8_t *)new_pin, new_len);
    if (r != DUO_OK) {
        ex = report(&s, "PIN change", r);
        goto out;
    }
    if ((ex = save_state(&s, o->state)) == EX_OK_) printf("PIN changed; state saved to %s\n", o->state);
out:
    OPENSSL_cleanse(old_pin, sizeof old_pin);
    OPENSSL_cleanse(new_pin, sizeof new_pin);
    session_close(&s);
    return ex;
}

static int g_verbose;

static void grpc_log(void *user, int severity, const char *file, int line, const char *message) {
    (void)user;
    if (!g_verbose) return;
    fprintf(stderr, "%s: grpc %s: %s (%s:%d)\n", prog,
            severity == DUO_GRPC_LOG_ERROR  ? "error"
            : severity == DUO_GRPC_LOG_INFO ? "info"
                                            : "debug",
            message, file, line);
}

int main(int argc, char **argv) {
    opts o;
    int ex;
    static const struct {
        const char *name;
        int (*fn)(const opts *);
    } cmds[] = {{"enroll", cmd_enroll},   {"enrol", cmd_enroll},  {"sign", cmd_sign},
                {"pubkey", cmd_pubkey},   {"verify", cmd_verify}, {"status", cmd_status},
                {"refresh", cmd_refresh}, {"revoke", cmd_revoke}, {"change-pin", cmd_change_pin},
                {"csr", cmd_csr},         {"cert", cmd_cert},     {"requests", cmd_requests},
                {"approve", cmd_approve}, {"refuse", cmd_refuse}, {"claim", cmd_claim},
                {"present", cmd_present}, {"resync", cmd_resync}};
    size_t i;

    memset(&o, 0, sizeof o);
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EX_USAGE_;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage_text, stdout);
        return EX_OK_;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("duosign %s\n", duo_device_version_string());
        return EX_OK_;
    }
    for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) break;
    }
    if (i == sizeof cmds / sizeof cmds[0]) {
        usage_err("unknown command '%s'", argv[1]);
        return EX_USAGE_;
    }
    o.cmd = argv[1];
    if ((ex = parse_opts(&o, argc - 1, argv + 1)) >= 0) return ex;
    /* gRPC core's own log lines go through our output, and only with
     * --verbose: the error messages already carry what they say. */
    duo_grpc_set_log(grpc_log, NULL, o.verbose ? DUO_GRPC_LOG_DEBUG : DUO_GRPC_LOG_ERROR);
    g_verbose = o.verbose;
    return cmds[i].fn(&o);
}
