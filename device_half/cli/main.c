/* duosign: the command-line tool for testers and integrators.
 *
 * Written only against the public headers duosign/device.h and
 * duosign/device_grpc.h (plus OpenSSL for hashing and local verification),
 * like curl's src/ on include/curl/. See docs/CLI.md.
 *
 * This file: main(), the command table and the top-level help; each
 * command lives in its cmd_*.c file, the shared pieces in cli_*.c (cli.h). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char *prog = "duosign";

const char usage_text[] = "usage: duosign <command> [options]\n"
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
