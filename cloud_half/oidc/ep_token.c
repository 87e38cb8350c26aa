/* duosign-oidc: the token endpoint (RFC 6749 4.1.3, OIDC Core 3.1.3,
 * RFC 7636 4.6, RFC 7523 for private_key_jwt) and userinfo (OIDC Core 5.3).
 *
 * Order at /token: the request's form, then who the client is (401
 * invalid_client), then the grant (invalid_grant for an unknown, used,
 * expired or foreign code, a wrong redirect_uri or PKCE verifier). A code
 * presented twice also revokes the tokens issued from it (RFC 6749 4.1.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "duosign/mem.h"
#include "duosign/rng.h"
#include "jose.h"
#include "oidc.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

static void client_error(oidc_reply *r, const char *desc, int basic) {
    oidc_reply_error(r, 401, "invalid_client", desc);
    if (basic) snprintf(r->www_auth, sizeof r->www_auth, "Basic realm=\"duosign-oidc\"");
}

/* RFC 6749 2.3.1: Basic with form-urlencoded id and secret. Our ids and
 * secrets are base64url, which form encoding leaves alone. */
static int auth_basic(oidc_ctx *c, const char *hdr, os_client *cl) {
    uint8_t dec[256], h[32];
    char *colon;
    int n;
    size_t hl = strlen(hdr + 6);
    if (hl == 0 || hl > 340) return 0;
    if ((n = EVP_DecodeBlock(dec, (const unsigned char *)hdr + 6, (int)hl)) <= 0) return 0;
    while (n > 0 && dec[n - 1] == '\0') n--; /* EVP_DecodeBlock counts the padding */
    dec[n] = '\0';
    if ((colon = strchr((char *)dec, ':')) == NULL || (int)strlen((char *)dec) != n) return 0;
    *colon = '\0';
    if (os_client_get(c->store, (char *)dec, cl) != DUO_OK || cl->public_key_pem[0] != '\0') return 0;
    SHA256((const unsigned char *)colon + 1, strlen(colon + 1), h);
    int ok = duo_ct_eq(h, cl->secret_hash, 32);
    duo_memzero(dec, sizeof dec);
    return ok;
}

/* RFC 7523 3: iss = sub = client_id, aud names us, exp in the future (and
 * not far), jti once. */
static int auth_jwt(oidc_ctx *c, const char *jwt, const char *client_id, os_client *cl, const char **why) {
    json_t *cl_claims = NULL;
    char tok_ep[600];
    int ok = 0;
    int64_t now = os_now(c->store);
    if (client_id == NULL) return *why = "private_key_jwt needs client_id", 0;
    if (os_client_get(c->store, client_id, cl) != DUO_OK || cl->public_key_pem[0] == '\0')
        return *why = "unknown client or no registered key", 0;
    if (jose_verify_es256(jwt, cl->public_key_pem, &cl_claims) != DUO_OK)
        return *why = "client_assertion does not verify (ES256 under the registered key)", 0;
    const char *iss = json_string_value(json_object_get(cl_claims, "iss")),
               *sub = json_string_value(json_object_get(cl_claims, "sub")),
               *jti = json_string_value(json_object_get(cl_claims, "jti"));
    json_t *aud = json_object_get(cl_claims, "aud"), *exp = json_object_get(cl_claims, "exp");
    snprintf(tok_ep, sizeof tok_ep, "%s/token", c->issuer);
    int aud_ok = 0;
    if (json_is_string(aud))
        aud_ok = strcmp(json_string_value(aud), tok_ep) == 0 || strcmp(json_string_value(aud), c->issuer) == 0;
    for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); i++) {
        const char *a = json_string_value(json_array_get(aud, i));
        aud_ok |= a != NULL && (strcmp(a, tok_ep) == 0 || strcmp(a, c->issuer) == 0);
    }
    if (iss == NULL || sub == NULL || strcmp(iss, client_id) != 0 || strcmp(sub, client_id) != 0)
        *why = "client_assertion iss and sub must be the client_id";
    else if (!aud_ok)
        *why = "client_assertion aud must be the token endpoint or the issuer";
    else if (!json_is_integer(exp) || json_integer_value(exp) <= now || json_integer_value(exp) > now + 600)
        *why = "client_assertion is expired or lives longer than 10 minutes";
    else if (jti == NULL || jti[0] == '\0' || strlen(jti) > 128)
        *why = "client_assertion needs a jti";
    else if (os_jti_once(c->store, client_id, jti, json_integer_value(exp)) != DUO_OK)
        *why = "client_assertion was already used (jti replay)";
    else
        ok = 1;
    json_decref(cl_claims);
    return ok;
}

/* Who is calling: 1 and cl filled, or 0 with the reply written. */
static int authenticate(oidc_ctx *c, const oidc_req *q, os_client *cl, oidc_reply *r) {
    const char *at = oidc_param(q->params, "client_assertion_type"), *as = oidc_param(q->params, "client_assertion"),
               *why = NULL;
    int basic = q->authorization != NULL && strncasecmp(q->authorization, "Basic ", 6) == 0;
    if (oidc_param(q->params, "client_secret") != NULL) {
        client_error(r, "client_secret_post is not supported; use client_secret_basic", 0);
        return 0;
    }
    if (basic && (at || as)) {
        oidc_reply_error(r, 400, "invalid_request", "use one client authentication method");
        return 0;
    }
    if (basic) {
        if (!auth_basic(c, q->authorization, cl)) {
            client_error(r, "client authentication failed", 1);
            return 0;
        }
        return 1;
    }
    if (at != NULL || as != NULL) {
        if (at == NULL || as == NULL || strcmp(at, ASSERTION_TYPE) != 0) {
            client_error(r, "client_assertion_type must be jwt-bearer with a client_assertion", 0);
            return 0;
        }
        if (!auth_jwt(c, as, oidc_param(q->params, "client_id"), cl, &why)) {
            client_error(r, why, 0);
            return 0;
        }
        return 1;
    }
    client_error(r, "client authentication is required (client_secret_basic or private_key_jwt)", 1);
    return 0;
}

/* The grant's checks, after the code was taken; desc set on failure. */
static int grant_ok(oidc_ctx *c, const oidc_req *q, const os_client *cl, const os_code *code, const char **desc) {
    const char *ru = oidc_param(q->params, "redirect_uri"), *ver = oidc_param(q->params, "code_verifier");
    char s256[48];
    if (code->used) return *desc = "the code was already used; the tokens issued from it are revoked", 0;
    if (os_now(c->store) >= code->expires_at) return *desc = "the code has expired", 0;
    if (strcmp(code->client_id, cl->id) != 0) return *desc = "the code was issued to another client", 0;
    if (ru == NULL || strcmp(ru, code->redirect_uri) != 0) return *desc = "redirect_uri differs from the request's", 0;
    if (ver == NULL) return *desc = "code_verifier is missing", 0;
    size_t vl = strlen(ver);
    if (vl < 43 || vl > 128 || strspn(ver, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") != vl)
        return *desc = "code_verifier must be 43-128 unreserved characters", 0;
    jose_s256(s256, sizeof s256, ver);
    if (strlen(s256) != strlen(code->code_challenge) || !duo_ct_eq(s256, code->code_challenge, strlen(s256)))
        return *desc = "code_verifier does not match the code_challenge", 0;
    return 1;
}

/* Builds and signs the ID token; fills jti. */
static char *id_token(oidc_ctx *c, const os_client *cl, const os_code *code, const char *sub, char *jti,
                      size_t jti_cap) {
    uint8_t raw[16];
    void *pk = NULL;
    char kid[64], *jws = NULL;
    int64_t now = os_now(c->store);
    if (duo_rng_bytes(NULL, raw, sizeof raw) != DUO_OK) return NULL;
    jose_b64url(jti, jti_cap, raw, sizeof raw);
    json_t *cl_claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:[s,s,s]}", "iss", c->issuer, "sub", sub,
                                  "aud", cl->id, "exp", (json_int_t)(now + OIDC_TOKEN_TTL), "iat", (json_int_t)now,
                                  "auth_time", (json_int_t)code->auth_time, "jti", jti, "acr",
                                  "urn:duosign:acr:split-key", "amr", "swk", "pin", "mfa");
    if (cl_claims == NULL) return NULL;
    if (code->nonce[0]) json_object_set_new(cl_claims, "nonce", json_string(code->nonce));
    if (oidc_scope_has(code->scope, "profile") && code->name[0])
        json_object_set_new(cl_claims, "name", json_string(code->name));
    if (os_key_current(c->store, &pk, kid, sizeof kid) == DUO_OK) jws = jose_sign_es256(pk, kid, cl_claims);
    EVP_PKEY_free(pk);
    json_decref(cl_claims);
    return jws;
}

void ep_token(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    const char *gt = oidc_param(q->params, "grant_type"), *cs = oidc_param(q->params, "code"), *desc = NULL;
    os_client cl;
    os_code code;
    uint8_t ch[32], th[32], secret[32], raw[32];
    char sub[64], jti[32], at[48], *idt = NULL;
    if (!authenticate(c, q, &cl, r)) return;
    if (gt == NULL) return oidc_reply_error(r, 400, "invalid_request", "grant_type is missing");
    if (strcmp(gt, "authorization_code") != 0)
        return oidc_reply_error(r, 400, "unsupported_grant_type", "only authorization_code");
    if (cs == NULL) return oidc_reply_error(r, 400, "invalid_request", "code is missing");
    SHA256((const unsigned char *)cs, strlen(cs), ch);
    if (os_code_take(c->store, ch, &code) != DUO_OK)
        return oidc_reply_error(r, 400, "invalid_grant", "unknown authorization code");
    if (!grant_ok(c, q, &cl, &code, &desc)) {
        if (code.used && os_tokens_revoke_by_code(c->store, ch) != DUO_OK)
            fprintf(stderr, "duosign-oidc: cannot revoke the tokens of a replayed code\n");
        return oidc_reply_error(r, 400, "invalid_grant", desc);
    }
    if (os_pairwise_secret(c->store, secret) != DUO_OK ||
        jose_pairwise_sub(sub, sizeof sub, secret, cl.sector, code.citizen_id) != DUO_OK) {
        duo_memzero(secret, sizeof secret);
        return oidc_reply_error(r, 500, "server_error", "cannot derive the subject");
    }
    duo_memzero(secret, sizeof secret);
    if ((idt = id_token(c, &cl, &code, sub, jti, sizeof jti)) == NULL || duo_rng_bytes(NULL, raw, sizeof raw) != DUO_OK)
        goto fail;
    jose_b64url(at, sizeof at, raw, sizeof raw);
    SHA256((const unsigned char *)at, strlen(at), th);
    if (os_token_put(c->store, th, ch, jti, cl.id, sub, code.scope, code.name, os_now(c->store) + OIDC_TOKEN_TTL) !=
            DUO_OK ||
        os_audit_login(c->store, jti, &code, sub) != DUO_OK)
        goto fail;
    oidc_reply_json(r, 200,
                    json_pack("{s:s, s:s, s:i, s:s, s:s}", "access_token", at, "token_type", "Bearer", "expires_in",
                              OIDC_TOKEN_TTL, "id_token", idt, "scope", code.scope));
    r->no_store = 1;
    free(idt);
    return;
fail:
    free(idt);
    oidc_reply_error(r, 500, "server_error", "cannot issue the tokens");
}

void ep_userinfo(oidc_ctx *c, const oidc_req *q, oidc_reply *r) {
    const char *a = q->authorization;
    char sub[OS_URI_MAX], scope[OS_URI_MAX], name[OS_NAME_MAX];
    uint8_t th[32];
    if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0 || a[7] == '\0' || strlen(a + 7) > 128) {
        oidc_reply_error(r, 401, "invalid_request", "a Bearer access token is required");
        snprintf(r->www_auth, sizeof r->www_auth, "Bearer realm=\"duosign-oidc\"");
        return;
    }
    SHA256((const unsigned char *)a + 7, strlen(a + 7), th);
    if (os_token_get(c->store, th, sub, scope, name) != DUO_OK) {
        oidc_reply_error(r, 401, "invalid_token", "the access token is unknown, expired or revoked");
        snprintf(r->www_auth, sizeof r->www_auth, "Bearer error=\"invalid_token\"");
        return;
    }
    json_t *j = json_pack("{s:s}", "sub", sub);
    if (j != NULL && oidc_scope_has(scope, "profile") && name[0]) json_object_set_new(j, "name", json_string(name));
    oidc_reply_json(r, 200, j);
    r->no_store = 1;
}
