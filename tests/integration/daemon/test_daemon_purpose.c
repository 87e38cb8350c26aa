/* Issue 16, the rest, against a real duosign-cloud: a key's role is bound
 * at the cloud and each signing purpose is checked there (docs/PROTOCOL.md
 * "Signing purposes"); one token admits one auth and one sign key; the
 * IssueCertificate RPC with every field tampered gets its specific error and
 * stores nothing, and a request signed through a CSR-purpose session gets a
 * certificate that OpenSSL verifies against the issuing CA. Issue 17: a
 * relying party's request that expires while the PIN is typed, and an
 * approval replayed, are refused and sign nothing (test_rp).
 * Usage: test_daemon_purpose PATH/TO/duosign-cloud */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <grpc/grpc_security.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "daemon_client.h"
#include "duosign/ec_pkey.h"
#include "duosign/login_digest.h"
#include "duosign.pb-c.h"
#include "relying_party.pb-c.h"

static client g_c;
static daemon_t g_d;

/* The number of certificates the store holds (cert list, one per line). */
static int cert_count(void) {
    char out[8192];
    if (run_cmd(out, sizeof out, "'%s' cert list --data '%s' 2>/dev/null | grep -c '^[0-9a-f]' || true", g_bin, g_dir) <
        0)
        return -1;
    return atoi(out);
}

/* A signature of dv with purpose (and its data) over digest: the SignStart
 * outcome (the duo error, 0 on success of both rounds). */
static int sign_rq(device *dv, int purpose, const uint8_t *data, size_t len, const uint8_t digest[32],
                   const uint8_t *request_id, uint8_t sig[64]) {
    sign_run sr;
    memset(&sr, 0, sizeof sr);
    sr.purpose = purpose;
    sr.request_id = request_id;
    sr.purpose_data = data;
    sr.purpose_data_len = len;
    int r = dev_sign(&g_c, dv, PIN, digest, &sr);
    if (r == 0 && sig) memcpy(sig, sr.sig, 64);
    return r == 0 ? 0 : sr.res.duo_err != 0 ? sr.res.duo_err : -1;
}

static int sign_as(device *dv, int purpose, const uint8_t *data, size_t len, const uint8_t digest[32],
                   uint8_t sig[64]) {
    return sign_rq(dv, purpose, data, len, digest, NULL, sig);
}

/* The public key of dv as an EVP_PKEY. */
static EVP_PKEY *dev_pkey(const device *dv) {
    uint8_t q[33];
    EVP_PKEY *k = NULL;
    duo_point_serialize(g_ec, q, &dv->key->q);
    return duo_ec_pkey_from_point(&k, "secp256k1", q, 33) == DUO_OK ? k : NULL;
}

/* An unsigned request for pub (subject CN=t); its info DER in *info. */
static X509_REQ *req_for(EVP_PKEY *pub, uint8_t **info, int *info_len) {
    X509_REQ *req = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
    X509_REQ_set_version(req, 0);
    X509_REQ_set_subject_name(req, n);
    X509_REQ_set_pubkey(req, pub);
    X509_NAME_free(n);
    *info = NULL;
    *info_len = i2d_re_X509_REQ_tbs(req, info);
    return req;
}

/* dv's PKCS#10, signed by both halves through a CSR-purpose session. */
static int csr_2p(device *dv, uint8_t **der, int *der_len) {
    EVP_PKEY *pub = dev_pkey(dv);
    uint8_t *info = NULL, digest[32], sig[64], *sd = NULL;
    int info_len, sd_len, r = -1;
    X509_REQ *req = req_for(pub, &info, &info_len);
    ECDSA_SIG *es = ECDSA_SIG_new();
    X509_ALGOR *alg = X509_ALGOR_new();
    ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
    SHA256(info, (size_t)info_len, digest);
    if (sign_as(dv, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, digest, sig) != 0) goto out;
    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
    sd_len = i2d_ECDSA_SIG(es, &sd);
    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL);
    ASN1_BIT_STRING_set(bits, sd, sd_len);
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set1_signature_algo(req, alg);
    X509_REQ_set0_signature(req, bits);
    bits = NULL;
    *der = NULL;
    *der_len = i2d_X509_REQ(req, der);
    r = *der_len > 0 && X509_REQ_verify(req, pub) == 1 ? 0 : -1;
out:
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    ECDSA_SIG_free(es);
    OPENSSL_free(sd);
    OPENSSL_free(info);
    X509_REQ_free(req);
    EVP_PKEY_free(pub);
    return r;
}

/* IssueCertificate for dv with csr, MACed with its secret; mut (may be NULL)
 * changes the request after the MAC. Returns the duo error (0: OK, the
 * certificate in out). */
static int issue(device *dv, const uint8_t *csr, size_t csr_len, void (*mut)(duo_issue_cert_req *),
                 duo_issue_cert_resp *out) {
    duo_issue_cert_req *q = calloc(1, sizeof *q);
    rpc_result res;
    uint8_t mi[32];
    int st;
    memcpy(q->key_id, dv->key->key_id, 16);
    RAND_bytes(q->device_nonce, 32);
    if (csr_len) memcpy(q->csr, csr, csr_len);
    q->csr_len = csr_len;
    if (duo_wire_mac_input_issue_cert(mi, q) != DUO_OK || duo_mac_compute(q->mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    if (mut) mut(q);
    memset(&res, 0, sizeof res);
    st = CALL(&g_c, "IssueCertificate", issue_cert_req, q, issue_cert_resp, out, &res);
    free(q);
    return st == 0 ? 0 : res.duo_err != 0 ? res.duo_err : -1;
}
static void mut_key_id(duo_issue_cert_req *q) { q->key_id[0] ^= 1; }
static void mut_nonce(duo_issue_cert_req *q) { q->device_nonce[0] ^= 1; }
static void mut_csr(duo_issue_cert_req *q) { q->csr[q->csr_len - 1] ^= 1; }
static void mut_mac(duo_issue_cert_req *q) { q->mac[0] ^= 1; }
static void mut_csr_drop(duo_issue_cert_req *q) { q->csr_len = 0; }

/* ------------------------------------------------ relying parties (issue 17)
 * Two abuses of an RP request against the real daemon, with an RP of its own
 * (client certificate, --rp-listen) and the daemon's test clock (a file
 * holding an offset in seconds; nothing here sleeps): a request that expires
 * while the citizen types the PIN, and an approval replayed. */

static char g_clock[300];
static grpc_channel *g_rp; /* the RP's mTLS channel */

static void clock_set(int offset) {
    FILE *f = fopen(g_clock, "w");
    if (f) {
        fprintf(f, "%d\n", offset);
        fclose(f);
    }
}

/* A free TCP port on 127.0.0.1 for --rp-listen (the daemon prints only its
 * main port in the line duo_it reads). */
static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &al) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0) close(s);
    return port;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *b = calloc(1, 65536);
    if (f && b) b[fread(b, 1, 65535, f)] = 0;
    if (f) fclose(f);
    return b;
}

/* The RP "Test Bank"'s channel: TLS with the client certificate rp add wrote. */
static grpc_channel *rp_channel(const char *dir, int port) {
    char p[400], target[64];
    snprintf(p, sizeof p, "%s/server-ca.pem", dir);
    char *ca = slurp(p);
    snprintf(p, sizeof p, "%s/client.pem", dir);
    char *crt = slurp(p);
    snprintf(p, sizeof p, "%s/client.key", dir);
    char *key = slurp(p);
    grpc_ssl_pem_key_cert_pair kp = {key, crt};
    grpc_channel_credentials *cr = grpc_ssl_credentials_create_ex(ca, &kp, NULL, NULL);
    snprintf(target, sizeof target, "127.0.0.1:%d", port);
    grpc_channel *ch = grpc_channel_create(target, cr, NULL);
    grpc_channel_credentials_release(cr);
    free(ca);
    free(crt);
    free(key);
    return ch;
}

/* StartSignature for citizen over digest (SHA-256). Returns the duo error
 * (0: OK, the session id in sid). */
static int rp_start(const char *rid, const char *citizen, const uint8_t digest[32], char sid[80]) {
    Duosign__V1__StartSignatureRequest q = DUOSIGN__V1__START_SIGNATURE_REQUEST__INIT;
    rpc_result res;
    uint8_t b[512], *o = NULL;
    size_t ol = 0;
    q.request_id = (char *)rid;
    q.citizen_id = (char *)citizen;
    q.digest.data = (uint8_t *)digest;
    q.digest.len = 32;
    q.hash_algorithm = DUOSIGN__V1__HASH_ALGORITHM__SHA256;
    q.display_text = (char *)"Sign the contract";
    size_t n = duosign__v1__start_signature_request__pack(&q, b);
    int st = duo_test_unary(g_rp, NULL, "/duosign.v1.RelyingParty/StartSignature", b, n, 60000, &res, &o, &ol);
    if (st != 0) return res.duo_err ? res.duo_err : -1;
    Duosign__V1__StartSignatureResponse *r = duosign__v1__start_signature_response__unpack(NULL, ol, o);
    free(o);
    if (!r) return -1;
    snprintf(sid, 80, "%s", r->session_id);
    duosign__v1__start_signature_response__free_unpacked(r, NULL);
    return 0;
}

/* GetSession without waiting: the state, the end result and whether a
 * signature came with it. Returns the duo error (0: OK). */
static int rp_get(const char *sid, int *state, int *result, int *has_sig) {
    Duosign__V1__GetSessionRequest q = DUOSIGN__V1__GET_SESSION_REQUEST__INIT;
    rpc_result res;
    uint8_t b[256], *o = NULL;
    size_t ol = 0;
    q.session_id = (char *)sid;
    size_t n = duosign__v1__get_session_request__pack(&q, b);
    int st = duo_test_unary(g_rp, NULL, "/duosign.v1.RelyingParty/GetSession", b, n, 60000, &res, &o, &ol);
    if (st != 0) return res.duo_err ? res.duo_err : -1;
    Duosign__V1__GetSessionResponse *r = duosign__v1__get_session_response__unpack(NULL, ol, o);
    free(o);
    if (!r) return -1;
    *state = r->state;
    *result = r->result;
    *has_sig = r->signature.len != 0;
    duosign__v1__get_session_response__free_unpacked(r, NULL);
    return 0;
}

/* The device's WaitRequests (no wait): the id of the request over digest, if
 * one is pending. Returns 0 with rid set, -1 none or a failure. */
static int dev_request_for(device *dv, const uint8_t digest[32], uint8_t rid[16]) {
    Duosign__V1__WaitRequestsRequest q = DUOSIGN__V1__WAIT_REQUESTS_REQUEST__INIT;
    rpc_result res;
    uint8_t nonce[32], mi[32], mac[32], b[256], *o = NULL;
    size_t ol = 0;
    int rc = -1;
    if (duo_rng_bytes(NULL, nonce, 32) != DUO_OK ||
        duo_wire_mac_input_wait_requests(mi, dv->key->key_id, nonce, 0) != DUO_OK ||
        duo_mac_compute(mac, dv->key->device_secret, mi) != DUO_OK)
        return -1;
    q.key_id.data = dv->key->key_id;
    q.key_id.len = 16;
    q.device_nonce.data = nonce;
    q.device_nonce.len = 32;
    q.mac.data = mac;
    q.mac.len = 32;
    size_t n = duosign__v1__wait_requests_request__pack(&q, b);
    if (duo_test_unary(g_c.ch, NULL, M("WaitRequests"), b, n, 60000, &res, &o, &ol) != 0) return -1;
    Duosign__V1__WaitRequestsResponse *r = duosign__v1__wait_requests_response__unpack(NULL, ol, o);
    free(o);
    for (size_t i = 0; r && i < r->n_requests; i++) {
        const Duosign__V1__PendingRequest *p = r->requests[i];
        if (p->digest.len == 32 && memcmp(p->digest.data, digest, 32) == 0 && p->request_id.len == 16) {
            memcpy(rid, p->request_id.data, 16);
            rc = 0;
        }
    }
    if (r) duosign__v1__wait_requests_response__free_unpacked(r, NULL);
    return rc;
}

/* The key's PIN attempts left (Status), -1 on failure. */
static int pin_left(device *dv) {
    duo_status_resp st;
    rpc_result res;
    return dev_status(&g_c, dv, &st, &res) == 0 ? (int)st.pin_attempts_left : -1;
}

/* Audit entries saying the request rid was signed, plus those saying a
 * round 2 over digest was accepted: 0 if nothing was signed, 2 per
 * signature. -1 on failure. */
static int audit_signed(const uint8_t rid[16], const uint8_t digest[32]) {
    char out[64], h[33], dh[65];
    for (int i = 0; i < 16; i++) snprintf(h + 2 * i, 3, "%02x", rid[i]);
    for (int i = 0; i < 32; i++) snprintf(dh + 2 * i, 3, "%02x", digest[i]);
    if (run_cmd(out, sizeof out,
                "'%s' audit list --data '%s' 2>/dev/null | grep -E '%s.*approved it|round 2 accepted.*digest=%s' "
                "| wc -l",
                g_bin, g_dir, h, dh) != 0)
        return -1;
    return atoi(out);
}

/* Round 1 of an approval of request rid over digest with the sign key: the
 * SignStart sent, round 2 built (not sent) in *m2. Returns the duo error of
 * SignStart (0: OK). */
static int approve_open(device *dv, const uint8_t digest[32], const uint8_t rid[16], duo_p2_sign **s,
                        duo_sign_finish_req *m2) {
    duo_sign_start_req m0;
    duo_sign_start_resp m1;
    rpc_result res;
    memset(m2, 0, sizeof *m2);
    duo_p2_sign_params sp = {.ec = g_ec,
                             .key = dv->key,
                             .pin = (const uint8_t *)PIN,
                             .pin_len = strlen(PIN),
                             .digest = digest,
                             .purpose = DUO_SIGN_PURPOSE_DOCUMENT,
                             .request_id = rid};
    if (duo_p2_sign_new(s, &sp) != DUO_OK || duo_p2_sign_start(*s, &m0) != DUO_OK) return -1;
    if (CALL(&g_c, "SignStart", sign_start_req, &m0, sign_start_resp, &m1, &res) != 0)
        return res.duo_err ? res.duo_err : -1;
    return duo_p2_sign_on_start(*s, &m1, m2) == DUO_OK ? 0 : -1;
}

/* 1. The request expires between SignStart and SignFinish: the re-check
 * before decryption refuses, the RP's session ends TIMEOUT, no signature,
 * the PIN count unchanged. */
static void rp_expires_during_pin(device *sign) {
    uint8_t digest[32], rid[16];
    char sid[80];
    int state = 0, result = 0, has_sig = 1, left = pin_left(sign);
    duo_p2_sign *s = NULL;
    duo_sign_finish_req m2;
    duo_sign_finish_resp m3;
    rpc_result res;
    digest_of(digest, "rp: expires while the PIN is typed", 1);
    DUO_REQUIRE(rp_start("late-1", "4242", digest, sid) == 0);
    DUO_REQUIRE(dev_request_for(sign, digest, rid) == 0);
    DUO_REQUIRE(approve_open(sign, digest, rid, &s, &m2) == 0);
    clock_set(10); /* past the 5 s request, well within the signing session's life */
    int st = CALL(&g_c, "SignFinish", sign_finish_req, &m2, sign_finish_resp, &m3, &res);
    DUO_CHECK(st == GRPC_STATUS_FAILED_PRECONDITION && res.duo_err == DUO_E_RP_REQUEST_CLOSED);
    DUO_CHECK(rp_get(sid, &state, &result, &has_sig) == 0);
    DUO_CHECK(state == DUOSIGN__V1__GET_SESSION_RESPONSE__STATE__COMPLETE &&
              result == DUOSIGN__V1__GET_SESSION_RESPONSE__END_RESULT__TIMEOUT && !has_sig);
    DUO_CHECK(audit_signed(rid, digest) == 0);
    DUO_CHECK(pin_left(sign) == left && left > 0);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
}

/* 2. An approval replayed after it completed: its SignStart and SignFinish
 * as sent, and a fresh SignStart for the same request, each refused; one
 * signature only, the PIN count unchanged. */
static void rp_approval_replayed(device *sign) {
    uint8_t digest[32], rid[16];
    char sid[80];
    int state = 0, result = 0, has_sig = 0;
    sign_run sr;
    rpc_result res;
    duo_sign_start_resp m1;
    duo_sign_finish_resp m3;
    duo_p2_sign *s = NULL;
    duo_sign_finish_req m2;
    digest_of(digest, "rp: an approval replayed", 1);
    DUO_REQUIRE(rp_start("replay-1", "4242", digest, sid) == 0);
    DUO_REQUIRE(dev_request_for(sign, digest, rid) == 0);
    memset(&sr, 0, sizeof sr);
    sr.purpose = DUO_SIGN_PURPOSE_DOCUMENT;
    sr.request_id = rid;
    sr.keep_start = sr.keep_finish = 1;
    DUO_REQUIRE(dev_sign(&g_c, sign, PIN, digest, &sr) == 0);
    DUO_CHECK(openssl_verify(sign, digest, sr.sig) == 1);
    DUO_CHECK(rp_get(sid, &state, &result, &has_sig) == 0 &&
              result == DUOSIGN__V1__GET_SESSION_RESPONSE__END_RESULT__OK && has_sig);
    int left = pin_left(sign);
    /* the SignStart as sent: its nonce is spent */
    DUO_CHECK(CALL_BYTES(&g_c, "SignStart", sr.start_bytes, sr.start_len, duo_wire_parse_sign_start_resp, &m1, &res) ==
                  GRPC_STATUS_UNAUTHENTICATED &&
              res.duo_err == DUO_E_UNAUTHENTICATED);
    /* the SignFinish as sent: its session is used */
    DUO_CHECK(CALL_BYTES(&g_c, "SignFinish", sr.finish_bytes, sr.finish_len, duo_wire_parse_sign_finish_resp, &m3,
                         &res) == GRPC_STATUS_FAILED_PRECONDITION &&
              res.duo_err == DUO_E_PROTO_STATE);
    /* the device itself, fresh nonce and secret: the request is answered */
    DUO_CHECK(approve_open(sign, digest, rid, &s, &m2) == DUO_E_RP_REQUEST_CLOSED);
    DUO_CHECK(audit_signed(rid, digest) == 2); /* one signature, not two */
    {
        duo_status_resp ks; /* a replay is refused, not taken for a clone: the key stays active */
        DUO_CHECK(dev_status(&g_c, sign, &ks, &res) == 0 && ks.state == DUO_KEY_STATE_ACTIVE);
    }
    DUO_CHECK(pin_left(sign) == left && left > 0);
    DUO_CHECK(rp_get(sid, &state, &result, &has_sig) == 0 &&
              result == DUOSIGN__V1__GET_SESSION_RESPONSE__END_RESULT__OK);
    duo_wire_free_sign_finish_req(&m2);
    duo_p2_sign_free(s);
    free(sr.start_bytes);
    free(sr.finish_bytes);
}

/* Restarts the daemon with an RP listener, a 5 s request lifetime and the
 * test clock; runs both cases; then the daemon as before. */
static void test_rp(device *sign) {
    daemon_t d2;
    char args[512], bank[300], out[1024];
    int port = free_port();
    snprintf(bank, sizeof bank, "%s/bank", g_parent);
    client_close(&g_c);
    DUO_REQUIRE(daemon_stop(&g_d) == 0);
    DUO_REQUIRE(run_cmd(out, sizeof out, "'%s' rp add --data '%s' --name 'Test Bank' --out-dir '%s' 2>&1", g_bin, g_dir,
                        bank) == 0);
    snprintf(args, sizeof args, "--rp-listen 127.0.0.1:%d --rp-session-ttl 5", port);
    DUO_REQUIRE(daemon_start(&d2, args) == 0 && client_open(&g_c, d2.port) == 0);
    g_rp = rp_channel(bank, port);
    DUO_REQUIRE(g_rp != NULL);
    rp_expires_during_pin(sign);
    rp_approval_replayed(sign);
    grpc_channel_destroy(g_rp);
    client_close(&g_c);
    DUO_CHECK(daemon_stop(&d2) == 0);
    DUO_REQUIRE(daemon_start(&g_d, NULL) == 0 && client_open(&g_c, g_d.port) == 0);
}

static void test_all(void) {
    char tok[128], tok2[128];
    device auth, sign, third, legacy;
    rpc_result res;
    uint8_t digest[32], sig[64], chal[32];
    memset(&third, 0, sizeof third);

    /* ---- one token, one auth and one sign key, no third */
    issue_token(tok, sizeof tok, "4242", 600);
    g_enrol_role = DUO_KEY_ROLE_AUTH;
    DUO_REQUIRE(enrol(&g_c, tok, &auth, &res) == 0);
    DUO_CHECK(enrol(&g_c, tok, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_ROLE_USED); /* auth again */
    g_enrol_role = DUO_KEY_ROLE_UNSPECIFIED; /* a legacy key on a half-used token */
    DUO_CHECK(enrol(&g_c, tok, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_ROLE_USED);
    g_enrol_role = DUO_KEY_ROLE_SIGN;
    DUO_REQUIRE(enrol(&g_c, tok, &sign, &res) == 0);
    DUO_CHECK(enrol(&g_c, tok, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_INVALID); /* spent */
    /* a legacy enrolment takes a token whole: no role after it */
    issue_token(tok2, sizeof tok2, "4343", 600);
    g_enrol_role = DUO_KEY_ROLE_UNSPECIFIED;
    DUO_REQUIRE(enrol(&g_c, tok2, &legacy, &res) == 0);
    g_enrol_role = DUO_KEY_ROLE_SIGN;
    DUO_CHECK(enrol(&g_c, tok2, &third, &res) != 0 && res.duo_err == DUO_E_TOKEN_INVALID);
    g_enrol_role = DUO_KEY_ROLE_UNSPECIFIED;

    /* ---- roles and purposes: each refusal specific, before any session */
    digest_of(digest, "a contract", 1);
    DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_DOCUMENT, NULL, 0, digest, NULL), DUO_E_ROLE_PURPOSE);
    DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0, digest, NULL), DUO_E_ROLE_PURPOSE);
    RAND_bytes(chal, sizeof chal);
    uint8_t login[32];
    DUO_REQUIRE(duo_login_digest(login, chal, sizeof chal) == DUO_OK);
    DUO_EXPECT_ERR(sign_as(&sign, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, NULL), DUO_E_ROLE_PURPOSE);
    DUO_EXPECT_ERR(sign_as(&legacy, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, NULL), DUO_E_ROLE_PURPOSE);
    /* a login whose digest is not the cloud's: a document hash passed as a login */
    DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, digest, NULL), DUO_E_PURPOSE_DIGEST);
    /* refusals changed nothing: every key still signs what its role allows */
    DUO_CHECK(sign_as(&auth, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, sig) == 0);
    DUO_CHECK(openssl_verify(&auth, login, sig) == 1);
    DUO_CHECK(sign_as(&sign, DUO_SIGN_PURPOSE_DOCUMENT, NULL, 0, digest, sig) == 0);
    DUO_CHECK(openssl_verify(&sign, digest, sig) == 1);
    DUO_CHECK(sign_as(&legacy, DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0, digest, sig) == 0);
    {
        duo_status_resp st;
        DUO_CHECK(dev_status(&g_c, &auth, &st, &res) == 0 && st.state == DUO_KEY_STATE_ACTIVE);
    }

    /* ---- the CSR purpose signs only the key's own request info */
    {
        EVP_PKEY *other = EVP_EC_gen("P-256"), *spub = dev_pkey(&sign);
        uint8_t *info = NULL, h[32];
        int info_len;
        X509_REQ *r1 = req_for(other, &info, &info_len);
        SHA256(info, (size_t)info_len, h);
        DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, h, NULL), DUO_E_CSR_KEY_MISMATCH);
        OPENSSL_free(info);
        X509_REQ_free(r1);
        r1 = req_for(spub, &info, &info_len); /* the sign key's info, from the auth key */
        SHA256(info, (size_t)info_len, h);
        DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, h, NULL), DUO_E_CSR_KEY_MISMATCH);
        /* the right info but a document's digest */
        DUO_EXPECT_ERR(sign_as(&sign, DUO_SIGN_PURPOSE_CSR, info, (size_t)info_len, digest, NULL),
                       DUO_E_PURPOSE_DIGEST);
        uint8_t junk[40];
        memset(junk, 0x30, sizeof junk);
        SHA256(junk, sizeof junk, h);
        DUO_EXPECT_ERR(sign_as(&sign, DUO_SIGN_PURPOSE_CSR, junk, sizeof junk, h, NULL), DUO_E_CSR_MALFORMED);
        OPENSSL_free(info);
        X509_REQ_free(r1);
        EVP_PKEY_free(other);
        EVP_PKEY_free(spub);
    }

    /* ---- IssueCertificate: each field tampered, its error, nothing stored */
    {
        uint8_t *csr = NULL;
        int csr_len = 0, n0 = cert_count();
        duo_issue_cert_resp *out = calloc(1, sizeof *out);
        DUO_REQUIRE(csr_2p(&sign, &csr, &csr_len) == 0);
        DUO_CHECK(n0 == 0);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_key_id, out), DUO_E_NOT_FOUND);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_nonce, out), DUO_E_UNAUTHENTICATED);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_csr, out), DUO_E_UNAUTHENTICATED);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_mac, out), DUO_E_UNAUTHENTICATED);
        DUO_EXPECT_ERR(issue(&sign, csr, (size_t)csr_len, mut_csr_drop, out), DUO_E_UNAUTHENTICATED);
        /* MACed, but not the key's request */
        DUO_EXPECT_ERR(issue(&auth, csr, (size_t)csr_len, NULL, out), DUO_E_CSR_KEY_MISMATCH);
        uint8_t junk[64];
        memset(junk, 0x30, sizeof junk);
        DUO_EXPECT_ERR(issue(&sign, junk, sizeof junk, NULL, out), DUO_E_CSR_MALFORMED);
        {
            /* the key's public key, signed by another key: no proof of possession */
            EVP_PKEY *other = EVP_EC_gen("P-256"), *spub = dev_pkey(&sign);
            uint8_t *info = NULL, *bad = NULL;
            int info_len, bad_len;
            X509_REQ *r = req_for(spub, &info, &info_len);
            X509_REQ_sign(r, other, EVP_sha256());
            X509_REQ_set_pubkey(r, spub);
            bad_len = i2d_X509_REQ(r, &bad);
            DUO_EXPECT_ERR(issue(&sign, bad, (size_t)bad_len, NULL, out), DUO_E_CSR_BAD_SIGNATURE);
            OPENSSL_free(bad);
            OPENSSL_free(info);
            X509_REQ_free(r);
            EVP_PKEY_free(other);
            EVP_PKEY_free(spub);
        }
        DUO_EXPECT_ERR(issue(&sign, NULL, 0, NULL, out), DUO_E_NO_CERT); /* fetch: none yet */
        DUO_CHECK(cert_count() == n0);
        /* the genuine request: a certificate for the sign key */
        DUO_CHECK(issue(&sign, csr, (size_t)csr_len, NULL, out) == 0);
        DUO_CHECK(cert_count() == n0 + 1);
        {
            const uint8_t *p = out->certificate;
            X509 *x = d2i_X509(NULL, &p, (long)out->certificate_len);
            EVP_PKEY *spub = dev_pkey(&sign);
            DUO_CHECK(x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), spub) == 1);
            DUO_CHECK(x != NULL && (X509_get_key_usage(x) & KU_NON_REPUDIATION));
            EVP_PKEY_free(spub);
            X509_free(x);
        }
        duo_issue_cert_resp *again = calloc(1, sizeof *again);
        DUO_CHECK(issue(&sign, NULL, 0, NULL, again) == 0); /* fetch: the same one */
        DUO_CHECK(again->certificate_len == out->certificate_len &&
                  memcmp(again->certificate, out->certificate, out->certificate_len) == 0);
        free(again);
        OPENSSL_free(csr);
        free(out);
    }

    /* ---- a relying party's request (issue 17) fixes the digest: a LOGIN
     * with request_id is checked by the request binding (no such request
     * here), not against the login structure; without request_id the login
     * digest is still required. Each refusal before any PIN check. */
    {
        uint8_t *csr = NULL, rid[16];
        int csr_len = 0;
        duo_issue_cert_resp *out = calloc(1, sizeof *out);
        DUO_REQUIRE(csr_2p(&auth, &csr, &csr_len) == 0);
        DUO_CHECK(issue(&auth, csr, (size_t)csr_len, NULL, out) == 0); /* a certified auth key */
        RAND_bytes(rid, sizeof rid);
        DUO_EXPECT_ERR(sign_rq(&auth, DUO_SIGN_PURPOSE_LOGIN, NULL, 0, digest, rid, NULL), DUO_E_RP_SESSION_UNKNOWN);
        DUO_EXPECT_ERR(sign_rq(&auth, DUO_SIGN_PURPOSE_LOGIN, NULL, 0, login, rid, NULL), DUO_E_RP_SESSION_UNKNOWN);
        DUO_EXPECT_ERR(sign_as(&auth, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, digest, NULL), DUO_E_PURPOSE_DIGEST);
        DUO_EXPECT_ERR(sign_rq(&sign, DUO_SIGN_PURPOSE_DOCUMENT, NULL, 0, digest, rid, NULL), DUO_E_RP_SESSION_UNKNOWN);
        /* the role still comes first: a login request_id on the sign key */
        DUO_EXPECT_ERR(sign_rq(&sign, DUO_SIGN_PURPOSE_LOGIN, NULL, 0, digest, rid, NULL), DUO_E_ROLE_PURPOSE);
        /* a key without a role answers no request */
        DUO_EXPECT_ERR(sign_rq(&legacy, DUO_SIGN_PURPOSE_UNSPECIFIED, NULL, 0, digest, rid, NULL), DUO_E_RP_WRONG_ROLE);
        /* nothing changed: both keys sign what their role allows */
        DUO_CHECK(sign_as(&auth, DUO_SIGN_PURPOSE_LOGIN, chal, sizeof chal, login, sig) == 0);
        DUO_CHECK(openssl_verify(&auth, login, sig) == 1);
        DUO_CHECK(sign_as(&sign, DUO_SIGN_PURPOSE_DOCUMENT, NULL, 0, digest, sig) == 0);
        DUO_CHECK(openssl_verify(&sign, digest, sig) == 1);
        OPENSSL_free(csr);
        free(out);
    }

    /* ---- a relying party's request: expired during the PIN, and replayed */
    test_rp(&sign);

    device_free(&auth);
    device_free(&sign);
    device_free(&legacy);
}

int main(int argc, char **argv) {
    /* The daemon's test clock (its offset starts at 0): test_rp moves it. */
    snprintf(g_clock, sizeof g_clock, "/tmp/duo-purpose-clock-%d", (int)getpid());
    clock_set(0);
    setenv("DUOSIGN_TEST_CLOCK_FILE", g_clock, 1);
    int rc = it_setup(argc, argv, "duo-purpose", &g_d, &g_c);
    if (rc) return rc;
    test_all();
    rc = it_finish(&g_d, &g_c);
    unlink(g_clock);
    return rc;
}
