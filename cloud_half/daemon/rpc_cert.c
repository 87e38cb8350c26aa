/* duosign-cloud: IssueCertificate (issue 16, docs/PROTOCOL.md
 * "Certificates in enrolment"). After EnrollConfirm the device sends its
 * key's PKCS#10 request, signed through a CSR-purpose signing session; the
 * issuing CA checks it against the stored key and certifies the key for its
 * role. An empty request fetches the key's newest good certificate (one an
 * operator imported for a --no-ca store). The request is MACed with the
 * current device secret; nothing rotates, and on any refusal nothing is
 * stored. */
#include "rpc.h"

#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "duosign/mem.h"

/* The certificate's role for the key's role: a key from before roles signs
 * documents, so it gets the signing profile (nonRepudiation). */
static int cert_role(int key_role) { return key_role == DUO_KEY_ROLE_AUTH ? DUO_CERT_ROLE_AUTH : DUO_CERT_ROLE_SIGN; }

/* The newest good certificate of a key (the walk is oldest first). */
typedef struct newest {
    duo_issue_cert_resp *out;
    int found;
} newest;

static int newest_cb(void *data, const duo_cert_row *row) {
    newest *n = data;
    if (row->revoked || row->der_len == 0 || row->der_len > sizeof n->out->certificate) return 0;
    memcpy(n->out->certificate, row->der, row->der_len);
    n->out->certificate_len = row->der_len;
    n->found = 1;
    return 0;
}

static int fetch(duo_rpc *c, const duo_key_info *ki, duo_issue_cert_resp *out) {
    newest n = {.out = out, .found = 0};
    int r = duo_keystore_cert_list(c->ks, ki->key_id, newest_cb, &n);
    if (r != DUO_OK) return r;
    if (!n.found) {
        DETAIL(c->info, "no certificate is stored for this key yet; the operator imports one (cert import), then "
                        "fetch again");
        return DUO_E_NO_CERT;
    }
    return DUO_OK;
}

static int issue(duo_rpc *c, const duo_key_info *ki, const duo_issue_cert_req *req, duo_issue_cert_resp *out) {
    duo_ca *ca = NULL;
    int r = duo_ca_load(&ca, c->ks);
    if (r == DUO_E_NO_CA) {
        DETAIL(c->info, "this server has no issuing CA (--no-ca); the key stays usable without a certificate until "
                        "the operator imports one: then duosign cert --fetch");
        return r;
    }
    if (r != DUO_OK) return r;
    r = duo_ca_issue_for_key(ca, c->ks, out->certificate, sizeof out->certificate, &out->certificate_len, NULL,
                             ki->key_id, cert_role(ki->role), req->csr, req->csr_len, duo__now_s());
    duo_ca_free(ca);
    if (r == DUO_E_CSR_MALFORMED)
        DETAIL(c->info, "the certification request is not a DER PKCS#10 request");
    else if (r == DUO_E_CSR_BAD_SIGNATURE)
        DETAIL(c->info, "the certification request is not signed by its own key");
    else if (r == DUO_E_CSR_KEY_MISMATCH)
        DETAIL(c->info, "the certification request is for another public key than this key's");
    else if (r == DUO_E_CA_EXPIRED)
        DETAIL(c->info, "the issuing CA is outside its validity; contact the operator");
    return r;
}

int duo__rpc_issue_certificate(duo_rpc *c, const uint8_t *in, size_t in_len, uint8_t **resp, size_t *resp_len) {
    duo_issue_cert_req *req = NULL;
    duo_issue_cert_resp *out = NULL;
    duo_key_info ki;
    duo_key_secrets *sec = NULL;
    uint8_t mi[32], used[32];
    int r = DUO_E_NOMEM;
    memset(used, 0, sizeof used);
    if (!(req = malloc(sizeof *req)) || !(out = calloc(1, sizeof *out)) || !(sec = duo_secure_malloc(sizeof *sec)))
        goto out;
    if ((r = duo_wire_parse_issue_cert_req(req, in, in_len)) != DUO_OK) goto out;
    if ((r = duo_wire_mac_input_issue_cert(mi, req)) != DUO_OK) goto out;
    if ((r = duo__policy_key_auth(c->ks, &ki, sec, req->key_id, mi, req->mac, used, NULL, 0, c->info)) != DUO_OK)
        goto out;
    if ((r = duo__policy_locked_err(&ki, c->info)) != DUO_OK) goto out;
    r = req->csr_len == 0 ? fetch(c, &ki, out) : issue(c, &ki, req, out);
    if (r == DUO_OK) {
        uint8_t *o = NULL;
        size_t ol = 0;
        r = duo_wire_build_issue_cert_resp(&o, &ol, out);
        r = duo__rpc_respond(resp, resp_len, r, o, ol);
    }
out:
    duo_memzero(used, sizeof used);
    if (sec) {
        duo_key_secrets_clear(sec);
        duo_secure_free(sec);
    }
    free(req);
    free(out);
    return r;
}
