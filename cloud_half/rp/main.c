/* duosign-rp: a relying party for testers and integrators
 * (docs/RELYING_PARTIES.md). It asks a citizen to log in (auth) or to sign a
 * document (sign) through duosign-cloud's RelyingParty service,
 * authenticated by its client certificate, prints the verification code
 * (and, for an anonymous login, the link to show as a QR code), waits for
 * the citizen's answer, writes the signature and the certificate, and
 * verifies them itself with OpenSSL before saying OK. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "duosign/device_grpc.h"
#include "duosign/errors.h"
#include "duosign/rp_digest.h"
#include "redeem.h"
#include "relying_party.pb-c.h"

#define PROG "duosign-rp"
#define SVC "/duosign.v1.RelyingParty/"
#define FILE_MAX (64u << 20)

enum { EX_OK = 0, EX_FAIL = 1, EX_USAGE = 2, EX_INPUT = 3, EX_NOT_OK = 24 };

static const char usage_text[] =
    "usage: duosign-rp auth|sign --server HOST:PORT --ca SERVER-CA.pem --cert CLIENT.pem --key CLIENT.key\n"
    "                  [--citizen ID] [--in DOC] [--text TEXT] [--hash sha256|sha384|sha512]\n"
    "                  [--out SIG.der] [--cert-out CERT.pem] [--wait SECONDS] [--request-id ID]\n"
    "       duosign-rp redeem CODE --server HOST:PORT --ca SERVER-CA.pem --cert CLIENT.pem --key CLIENT.key\n"
    "                  [--doc TYPE]\n\n"
    "redeem: a presentation code a citizen's device shows (duosign present; the QR code's text or\n"
    "      the 13 barcode digits), once, for --doc TYPE (default passport): prints the document;\n"
    "      exit 26 for a code that is unknown, expired, already redeemed or for another document\n"
    "auth: log the citizen in (without --citizen: an anonymous login; the link to show as a\n"
    "      QR code is printed, the citizen's device claims it: duosign claim LINK)\n"
    "sign: have the citizen sign --in DOC (its --hash digest, default sha256) with the signing key\n"
    "The verification code is printed first: the citizen's device shows the same. The answer\n"
    "is awaited up to --wait seconds (default 120); on OK the signature (DER) goes to --out,\n"
    "the certificate (PEM) to --cert-out, and both are verified here with OpenSSL (sign: over\n"
    "DOC; auth: over the digest recomputed from the challenge, server random, code and text).\n"
    "--cert/--key: written by 'duosign-cloud rp add --out-dir' (client.pem, client.key; the\n"
    "server's CA is server-ca.pem there).\n"
    "exit: 0 OK and verified; 24 the citizen refused, the request timed out or was cancelled,\n"
    "      or the account is unusable (the end result is printed); 2 usage; 3 bad file; 1 other\n";

typedef struct {
    const char *mode, *server, *ca, *cert, *key, *citizen, *in, *text, *hash, *out, *cert_out, *request_id;
    const char *code, *doc; /* redeem */
    unsigned wait_s;
} opts;

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && (size_t)n <= FILE_MAX && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
            if (len) *len = (size_t)n;
        }
    }
    fclose(f);
    return buf;
}

/* One unary call: packs req, unpacks the answer as rdesc. */
static int call(duo_grpc_transport *t, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *rdesc, ProtobufCMessage **out) {
    char path[96], msg[512] = "";
    size_t n = protobuf_c_message_get_packed_size(req), rl = 0;
    uint8_t *b = malloc(n ? n : 1), *resp = NULL;
    if (!b) return DUO_E_NOMEM;
    protobuf_c_message_pack(req, b);
    snprintf(path, sizeof path, SVC "%s", method);
    int r = duo_grpc_transport_call(t, path, b, n, &resp, &rl, msg, sizeof msg);
    free(b);
    if (r != DUO_OK) {
        fprintf(stderr, PROG ": %s: %s (%s)\n", method, msg[0] ? msg : duo_strerror(r), duo_err_name(r));
        return r;
    }
    *out = protobuf_c_message_unpack(rdesc, NULL, rl, resp ? resp : (const uint8_t *)"");
    duo_grpc_transport_free_resp(t, resp, rl);
    return *out ? DUO_OK : DUO_E_DECODE;
}

static const EVP_MD *hash_md(const char *h, int *alg) {
    if (!h || !strcmp(h, "sha256")) return *alg = 1, EVP_sha256();
    if (!strcmp(h, "sha384")) return *alg = 2, EVP_sha384();
    if (!strcmp(h, "sha512")) return *alg = 3, EVP_sha512();
    return NULL;
}

static const char *result_name(int r) {
    static const char *n[] = {"RUNNING",          "OK",         "USER_REFUSED", "TIMEOUT",
                              "ACCOUNT_UNUSABLE", "PIN_LOCKED", "CANCELLED"};
    return r >= 0 && r <= 6 ? n[r] : "?";
}

/* r || s as DER (what openssl dgst -verify reads). */
static int sig_der(const uint8_t rs[64], unsigned char **der, int *len) {
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *ss = BN_bin2bn(rs + 32, 32, NULL);
    if (!s || !r || !ss || ECDSA_SIG_set0(s, r, ss) != 1) {
        ECDSA_SIG_free(s);
        BN_free(r);
        BN_free(ss);
        return -1;
    }
    *der = NULL;
    *len = i2d_ECDSA_SIG(s, der);
    ECDSA_SIG_free(s);
    return *len > 0 ? 0 : -1;
}

/* Verifies the result with the certificate's key: over DOC (sign) or the
 * digest (auth); writes --out and --cert-out. */
static int verify_and_write(const opts *o, const Duosign__V1__GetSessionResponse *g, const uint8_t *expect_digest,
                            const uint8_t *doc, size_t doc_len, const EVP_MD *md) {
    const unsigned char *p = g->certificate.data;
    X509 *x = g->certificate.len ? d2i_X509(NULL, &p, (long)g->certificate.len) : NULL;
    EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
    unsigned char *der = NULL;
    int der_len = 0, ok = 0, rc = EX_FAIL;
    if (!pk || g->signature.len != 64 || g->signed_digest.len != 32 || sig_der(g->signature.data, &der, &der_len)) {
        fprintf(stderr, PROG ": the result lacks a certificate or a 64-byte signature\n");
        goto out;
    }
    if (expect_digest && memcmp(expect_digest, g->signed_digest.data, 32) != 0) {
        fprintf(stderr, PROG ": the signed digest is not the one this request fixes: REFUSED\n");
        goto out;
    }
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pc = NULL;
    if (doc) { /* the document itself, under its hash */
        ok = c && EVP_DigestVerifyInit(c, NULL, md, NULL, pk) == 1 &&
             EVP_DigestVerify(c, der, (size_t)der_len, doc, doc_len) == 1;
    } else if ((pc = EVP_PKEY_CTX_new(pk, NULL)) != NULL) {
        ok = EVP_PKEY_verify_init(pc) == 1 && EVP_PKEY_verify(pc, der, (size_t)der_len, g->signed_digest.data, 32) == 1;
    }
    EVP_PKEY_CTX_free(pc);
    EVP_MD_CTX_free(c);
    if (!ok) {
        fprintf(stderr, PROG ": the signature does NOT verify with the returned certificate's key\n");
        goto out;
    }
    char subj[256];
    X509_NAME_oneline(X509_get_subject_name(x), subj, sizeof subj);
    printf("signature verified with the certificate of %s\n", subj);
    if (o->out) {
        FILE *f = fopen(o->out, "wb");
        if (!f || fwrite(der, 1, (size_t)der_len, f) != (size_t)der_len || fclose(f) != 0) {
            fprintf(stderr, PROG ": cannot write %s\n", o->out);
            rc = EX_INPUT;
            goto out;
        }
        printf("signature (DER) written to %s\n", o->out);
    }
    if (o->cert_out) {
        FILE *f = fopen(o->cert_out, "w");
        if (!f || PEM_write_X509(f, x) != 1 || fclose(f) != 0) {
            fprintf(stderr, PROG ": cannot write %s\n", o->cert_out);
            rc = EX_INPUT;
            goto out;
        }
        printf("certificate written to %s\n", o->cert_out);
    }
    rc = EX_OK;
out:
    OPENSSL_free(der);
    X509_free(x);
    return rc;
}

/* redeem: one call, the document printed (redeem.c). */
static int run_redeem(const opts *o) {
    size_t ca_len = 0;
    char *ca = read_file(o->ca, &ca_len), *cert = read_file(o->cert, NULL), *key = read_file(o->key, NULL);
    duo_grpc_transport *t = NULL;
    int rc = EX_INPUT, r;
    if (!ca || !cert || !key) {
        fprintf(stderr, PROG ": cannot read %s\n", !ca ? o->ca : !cert ? o->cert : o->key);
    } else if ((r = duo_grpc_transport_new_mtls(&t, o->server, ca, ca_len, cert, key, 40000)) != DUO_OK) {
        fprintf(stderr, PROG ": cannot set up the connection: %s\n", duo_strerror(r));
        rc = EX_FAIL;
    } else {
        r = duo_rp_redeem(t, o->code, o->doc ? o->doc : "passport");
        rc = r == DUO_OK ? EX_OK : duo_err_exit_code(r);
    }
    duo_grpc_transport_free(t);
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    free(cert);
    free(ca);
    return rc;
}

static int run(const opts *o) {
    size_t ca_len = 0, doc_len = 0;
    char *ca = read_file(o->ca, &ca_len), *cert = read_file(o->cert, NULL), *key = read_file(o->key, NULL);
    uint8_t *doc = NULL, digest[64], challenge[32], auth_dg[32];
    unsigned dl = 0;
    int alg = 0, rc = EX_FAIL, r, is_auth = !strcmp(o->mode, "auth");
    const EVP_MD *md = hash_md(o->hash, &alg);
    char rid[80], sid[64] = "", code[5] = "";
    duo_grpc_transport *t = NULL;
    ProtobufCMessage *pm = NULL;
    if (!ca || !cert || !key) {
        fprintf(stderr, PROG ": cannot read %s\n", !ca ? o->ca : !cert ? o->cert : o->key);
        rc = EX_INPUT;
        goto out;
    }
    if (!is_auth) {
        if (!(doc = (uint8_t *)read_file(o->in, &doc_len))) {
            fprintf(stderr, PROG ": cannot read --in %s\n", o->in);
            rc = EX_INPUT;
            goto out;
        }
        EVP_Digest(doc, doc_len, digest, &dl, md, NULL);
    } else if (RAND_bytes(challenge, sizeof challenge) != 1) {
        goto out;
    }
    if (o->request_id)
        snprintf(rid, sizeof rid, "%s", o->request_id);
    else
        snprintf(rid, sizeof rid, "duosign-rp-%ld-%ld", (long)time(NULL), (long)getpid());
    if ((r = duo_grpc_transport_new_mtls(&t, o->server, ca, ca_len, cert, key, 40000)) != DUO_OK) {
        fprintf(stderr, PROG ": cannot set up the connection: %s\n", duo_strerror(r));
        goto out;
    }
    const char *text = o->text ? o->text : is_auth ? "Log in" : "Sign the document";
    if (is_auth) {
        Duosign__V1__StartAuthenticationRequest q = DUOSIGN__V1__START_AUTHENTICATION_REQUEST__INIT;
        q.request_id = rid;
        q.citizen_id = (char *)(o->citizen ? o->citizen : "");
        q.challenge = (ProtobufCBinaryData){sizeof challenge, challenge};
        q.display_text = (char *)text;
        if (call(t, "StartAuthentication", &q.base, &duosign__v1__start_authentication_response__descriptor, &pm))
            goto out;
        const Duosign__V1__StartAuthenticationResponse *a = (const void *)pm;
        snprintf(sid, sizeof sid, "%s", a->session_id);
        snprintf(code, sizeof code, "%s", a->verification_code);
        if (a->link[0]) printf("link (show it as a QR code; the citizen runs: duosign claim LINK): %s\n", a->link);
    } else {
        Duosign__V1__StartSignatureRequest q = DUOSIGN__V1__START_SIGNATURE_REQUEST__INIT;
        q.request_id = rid;
        q.citizen_id = (char *)o->citizen;
        q.digest = (ProtobufCBinaryData){dl, digest};
        q.hash_algorithm = (Duosign__V1__HashAlgorithm)alg;
        q.display_text = (char *)text;
        if (call(t, "StartSignature", &q.base, &duosign__v1__start_signature_response__descriptor, &pm)) goto out;
        const Duosign__V1__StartSignatureResponse *a = (const void *)pm;
        snprintf(sid, sizeof sid, "%s", a->session_id);
        snprintf(code, sizeof code, "%s", a->verification_code);
    }
    protobuf_c_message_free_unpacked(pm, NULL);
    pm = NULL;
    printf("verification code: %s\nsession: %s\nwaiting for the citizen (up to %u s)...\n", code, sid, o->wait_s);
    fflush(stdout);
    time_t end = time(NULL) + (time_t)o->wait_s;
    const Duosign__V1__GetSessionResponse *g = NULL;
    for (;;) {
        Duosign__V1__GetSessionRequest q = DUOSIGN__V1__GET_SESSION_REQUEST__INIT;
        q.session_id = sid;
        time_t left = end - time(NULL);
        q.timeout_ms = left <= 0 ? 0 : left > 25 ? 25000u : (uint32_t)left * 1000u;
        if (pm) protobuf_c_message_free_unpacked(pm, NULL);
        pm = NULL;
        if (call(t, "GetSession", &q.base, &duosign__v1__get_session_response__descriptor, &pm)) goto out;
        g = (const void *)pm;
        if (g->state == DUOSIGN__V1__GET_SESSION_RESPONSE__STATE__COMPLETE || time(NULL) >= end) break;
    }
    if (g->state != DUOSIGN__V1__GET_SESSION_RESPONSE__STATE__COMPLETE) {
        Duosign__V1__CancelSessionRequest c = DUOSIGN__V1__CANCEL_SESSION_REQUEST__INIT;
        ProtobufCMessage *cm = NULL;
        c.session_id = sid;
        if (call(t, "CancelSession", &c.base, &duosign__v1__cancel_session_response__descriptor, &cm) == DUO_OK)
            protobuf_c_message_free_unpacked(cm, NULL);
        printf("result: no answer within %u s; the session was cancelled\n", o->wait_s);
        rc = EX_NOT_OK;
        goto out;
    }
    printf("result: %s%s%s\n", result_name(g->result), g->citizen_id[0] ? ", citizen " : "", g->citizen_id);
    if (g->result != DUOSIGN__V1__GET_SESSION_RESPONSE__END_RESULT__OK) {
        rc = EX_NOT_OK;
        goto out;
    }
    if (is_auth) {
        if (g->server_random.len != DUO_RP_SERVER_RANDOM_BYTES) goto out;
        /* The RP's own registered name is in the structure: the daemon's
         * answer does not say it, so it is taken from our certificate's CN. */
        X509 *own = NULL;
        BIO *b = BIO_new_mem_buf(cert, -1);
        char cn[DUO_RP_NAME_MAX + 1] = "";
        if (b && (own = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
            X509_NAME_get_text_by_NID(X509_get_subject_name(own), NID_commonName, cn, sizeof cn);
        X509_free(own);
        BIO_free(b);
        if (duo_rp_auth_digest(auth_dg, cn, challenge, sizeof challenge, g->server_random.data, code, text) != DUO_OK)
            goto out;
        rc = verify_and_write(o, g, auth_dg, NULL, 0, NULL);
    } else {
        rc = verify_and_write(o, g, digest, doc, doc_len, md);
    }
out:
    if (pm) protobuf_c_message_free_unpacked(pm, NULL);
    duo_grpc_transport_free(t);
    if (key) {
        OPENSSL_cleanse(key, strlen(key));
        free(key);
    }
    free(cert);
    free(ca);
    free(doc);
    return rc;
}

int main(int argc, char **argv) {
    static const struct option lo[] = {{"server", 1, 0, 's'},   {"ca", 1, 0, 'a'},      {"cert", 1, 0, 'c'},
                                       {"key", 1, 0, 'k'},      {"citizen", 1, 0, 'z'}, {"in", 1, 0, 'i'},
                                       {"text", 1, 0, 't'},     {"hash", 1, 0, 'H'},    {"out", 1, 0, 'o'},
                                       {"cert-out", 1, 0, 'C'}, {"wait", 1, 0, 'w'},    {"request-id", 1, 0, 'r'},
                                       {"doc", 1, 0, 'd'},      {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    opts o = {.wait_s = 120};
    int c, alg;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE : EX_OK;
    }
    o.mode = argv[1];
    if (strcmp(o.mode, "auth") && strcmp(o.mode, "sign") && strcmp(o.mode, "redeem")) {
        fprintf(stderr, PROG ": the command is auth, sign or redeem, not '%s' (try --help)\n", o.mode);
        return EX_USAGE;
    }
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
            case 's':
                o.server = optarg;
                break;
            case 'a':
                o.ca = optarg;
                break;
            case 'c':
                o.cert = optarg;
                break;
            case 'k':
                o.key = optarg;
                break;
            case 'z':
                o.citizen = optarg;
                break;
            case 'i':
                o.in = optarg;
                break;
            case 't':
                o.text = optarg;
                break;
            case 'H':
                o.hash = optarg;
                break;
            case 'o':
                o.out = optarg;
                break;
            case 'C':
                o.cert_out = optarg;
                break;
            case 'r':
                o.request_id = optarg;
                break;
            case 'd':
                o.doc = optarg;
                break;
            case 'w':
                o.wait_s = (unsigned)strtoul(optarg, &end, 10);
                if (!*optarg || *end || o.wait_s == 0 || o.wait_s > 3600) {
                    fprintf(stderr, PROG ": --wait takes 1..3600 seconds\n");
                    return EX_USAGE;
                }
                break;
            case 'h':
                fputs(usage_text, stdout);
                return EX_OK;
            default:
                fprintf(stderr, PROG ": unknown or incomplete option '%s' (try --help)\n", argv[optind - 1]);
                return EX_USAGE;
        }
    }
    if (!strcmp(o.mode, "redeem") && optind < argc) o.code = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
        return EX_USAGE;
    }
    if (!strcmp(o.mode, "redeem") && (o.citizen || o.in || o.text || o.out || o.cert_out || o.request_id)) {
        fprintf(stderr, PROG " redeem: takes CODE and --doc only (besides the connection)\n");
        return EX_USAGE;
    }
    if (strcmp(o.mode, "redeem") && o.doc) {
        fprintf(stderr, PROG ": --doc is for redeem\n");
        return EX_USAGE;
    }
    const char *miss = !o.server                               ? "--server HOST:PORT"
                       : !o.ca                                 ? "--ca SERVER-CA.pem"
                       : !o.cert                               ? "--cert CLIENT.pem"
                       : !o.key                                ? "--key CLIENT.key"
                       : !strcmp(o.mode, "sign") && !o.citizen ? "--citizen ID"
                       : !strcmp(o.mode, "sign") && !o.in      ? "--in DOC"
                       : !strcmp(o.mode, "redeem") && !o.code  ? "CODE (the QR code's text or the 13 digits)"
                                                               : NULL;
    if (miss) {
        fprintf(stderr, PROG " %s: needs %s (try --help)\n", o.mode, miss);
        return EX_USAGE;
    }
    if (!hash_md(o.hash, &alg)) {
        fprintf(stderr, PROG ": --hash must be sha256, sha384 or sha512\n");
        return EX_USAGE;
    }
    if (o.text && !duo_rp_display_text_ok(o.text)) {
        fprintf(stderr, PROG ": --text must be 1..200 bytes of UTF-8 without control characters\n");
        return EX_USAGE;
    }
    if (!strcmp(o.mode, "redeem")) return run_redeem(&o);
    return run(&o);
}
