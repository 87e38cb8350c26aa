/* duosign: the login digest (duosign/login_digest.h). */
#include "duosign/login_digest.h"

#include <string.h>

#include <openssl/evp.h>

#include "duosign/mem.h"

/* Appends u32be(len) || bytes. */
static int put_field(EVP_MD_CTX *md, const uint8_t *p, size_t len) {
    uint8_t be[4];
    if (len > UINT32_MAX || (p == NULL && len != 0)) return DUO_E_INVALID_ARG;
    be[0] = (uint8_t)(len >> 24);
    be[1] = (uint8_t)(len >> 16);
    be[2] = (uint8_t)(len >> 8);
    be[3] = (uint8_t)len;
    if (EVP_DigestUpdate(md, be, 4) != 1) return DUO_E_INTERNAL;
    if (len > 0 && EVP_DigestUpdate(md, p, len) != 1) return DUO_E_INTERNAL;
    return DUO_OK;
}

int duo_login_digest_fields(uint8_t out[32], const char *tag, const duo_login_field *fields, size_t n) {
    EVP_MD_CTX *md = NULL;
    unsigned int outl = 0;
    int r = DUO_E_INVALID_ARG;
    if (out == NULL || tag == NULL || (fields == NULL && n != 0)) return DUO_E_INVALID_ARG;
    if ((md = EVP_MD_CTX_new()) == NULL) return DUO_E_NOMEM;
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        r = DUO_E_INTERNAL;
        goto out;
    }
    if ((r = put_field(md, (const uint8_t *)tag, strlen(tag))) != DUO_OK) goto out;
    for (size_t i = 0; i < n; i++)
        if ((r = put_field(md, fields[i].ptr, fields[i].len)) != DUO_OK) goto out;
    r = EVP_DigestFinal_ex(md, out, &outl) == 1 && outl == 32 ? DUO_OK : DUO_E_INTERNAL;
out:
    if (r != DUO_OK) duo_memzero(out, 32);
    EVP_MD_CTX_free(md);
    return r;
}

int duo_login_digest(uint8_t out[32], const uint8_t *challenge, size_t challenge_len) {
    duo_login_field f = {.ptr = challenge, .len = challenge_len};
    return duo_login_digest_fields(out, DUO_LOGIN_TAG_V1, &f, 1);
}
