/* duosign-oidc: discovery (OpenID Connect Discovery 1.0 section 3) and the
 * JWKS (RFC 7517), which lists every key whose tokens may still be alive. */
#include <stdio.h>
#include <string.h>

#include "oidc.h"

void ep_discovery(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    (void)q;
    char a[600], t[600], u[600], j[600];
    snprintf(a, sizeof a, "%s/authorize", c->issuer);
    snprintf(t, sizeof t, "%s/token", c->issuer);
    snprintf(u, sizeof u, "%s/userinfo", c->issuer);
    snprintf(j, sizeof j, "%s/jwks", c->issuer);
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s], s:[s], s:[s,s], s:[s], s:[s,s], s:[s], s:[s],"
        " s:[s,s,s,s,s,s,s,s,s,s], s:b, s:b}",
        "issuer", c->issuer, "authorization_endpoint", a, "token_endpoint", t, "userinfo_endpoint", u, "jwks_uri", j,
        "response_types_supported", "code", "response_modes_supported", "query", "grant_types_supported",
        "authorization_code", "subject_types_supported", "pairwise", "id_token_signing_alg_values_supported", "ES256",
        "scopes_supported", "openid", "profile", "code_challenge_methods_supported", "S256",
        "token_endpoint_auth_methods_supported", "client_secret_basic", "private_key_jwt",
        "token_endpoint_auth_signing_alg_values_supported", "ES256", "acr_values_supported",
        "urn:duosign:acr:split-key", "claims_supported", "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "acr",
        "amr", "name", "request_parameter_supported", 0, "claims_parameter_supported", 0);
    oidc_reply_json(r, 200, d);
}

static void add_key(void *user, const char *kid, const char *jwk) {
    (void)kid;
    json_t *k = json_loads(jwk, 0, NULL);
    if (k != NULL) json_array_append_new(user, k);
}

void ep_jwks(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    (void)q;
    json_t *keys = json_array();
    if (keys == NULL || os_key_each_public(c->store, add_key, keys) != DUO_OK) {
        json_decref(keys);
        oidc_reply_error(r, 500, "server_error", "cannot read the provider keys");
        return;
    }
    oidc_reply_json(r, 200, json_pack("{s:o}", "keys", keys));
}
