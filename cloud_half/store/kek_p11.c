/* A KEK in a PKCS#11 token: URI parsing, module loading, login, the AES key
 * object and GCM inside the token. See kek_p11.h. */
#define CRYPTOKI_GNU /* p11-kit's header: lowercase names, no compat macros */
#include "kek_p11.h"

#include <ctype.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "duosign/mem.h"

#define P11_LABEL_MAX 64
#define P11_PIN_MAX 256

struct duo_p11_key {
    struct duo_p11_key *next; /* the process-wide list */
    char uri[PATH_MAX];
    struct ck_function_list *f;
    ck_session_handle_t session;
    ck_object_handle_t obj;
    int extractable;
    pthread_mutex_t mu; /* one operation at a time on the session */
};

typedef struct p11_uri {
    char token[P11_LABEL_MAX + 1], object[P11_LABEL_MAX + 1];
    char module[PATH_MAX], pin_source[PATH_MAX];
    int has_slot;
    unsigned long slot;
} p11_uri;

typedef struct p11_module {
    char path[PATH_MAX];
    struct ck_function_list *f;
} p11_module;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER; /* guards g_keys and g_modules */
static duo_p11_key *g_keys;
static p11_module g_modules[8];

int duo_p11_is_uri(const char *ref) { return ref != NULL && strncmp(ref, "pkcs11:", 7) == 0; }

/* ------------------------------------------------------------ the URI */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes [v, v+len) into out (NUL-terminated); 0 if malformed or too long. */
static int pct_decode(char *out, size_t cap, const char *v, size_t len) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)v[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = hexval(v[i + 1])) < 0 || (lo = hexval(v[i + 2])) < 0) return 0;
            c = hi << 4 | lo;
            i += 2;
        }
        if (c == 0 || o + 1 >= cap) return 0;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 1;
}

/* One "name=value" attribute of the path (query == 0) or the query. */
static int uri_attr(p11_uri *u, char *err, size_t cap, const char *a, size_t len, int query) {
    const char *eq = memchr(a, '=', len);
    size_t nlen;
    char val[PATH_MAX];
    if (len == 0) return DUO_OK;
    if (eq == NULL) {
        snprintf(err, cap, "PKCS#11 URI attribute '%.*s' has no value", (int)len, a);
        return DUO_E_INVALID_ARG;
    }
    nlen = (size_t)(eq - a);
    if (!pct_decode(val, sizeof val, eq + 1, len - nlen - 1)) {
        snprintf(err, cap, "PKCS#11 URI attribute '%.*s' is badly percent-encoded or too long", (int)nlen, a);
        return DUO_E_INVALID_ARG;
    }
#define IS(name) (nlen == sizeof name - 1 && memcmp(a, name, nlen) == 0)
    if (!query && IS("token") && strlen(val) <= 32)
        memcpy(u->token, val, strlen(val) + 1);
    else if (!query && IS("object") && strlen(val) <= P11_LABEL_MAX)
        memcpy(u->object, val, strlen(val) + 1);
    else if (!query && IS("type") && strcmp(val, "secret-key") == 0)
        ;
    else if (!query && IS("slot-id") && val[0] != '\0' && strspn(val, "0123456789") == strlen(val)) {
        u->has_slot = 1;
        u->slot = strtoul(val, NULL, 10);
    } else if (query && IS("module-path"))
        memcpy(u->module, val, strlen(val) + 1);
    else if (query && IS("pin-source"))
        snprintf(u->pin_source, sizeof u->pin_source, "%s", strncmp(val, "file:", 5) == 0 ? val + 5 : val);
    else if (IS("pin-value")) {
        snprintf(err, cap,
                 "pin-value is not accepted in the KEK's PKCS#11 URI (it would be stored in kek.ref and shown "
                 "in process listings): put the PIN in a file named by pin-source=PATH, or in $" DUO_P11_PIN_ENV);
        return DUO_E_INVALID_ARG;
    } else {
        snprintf(err, cap,
                 "PKCS#11 URI attribute '%.*s' is not supported or has a bad value (use token=, object=, "
                 "slot-id=, type=secret-key; ?module-path=, pin-source=)",
                 (int)nlen, a);
        return DUO_E_INVALID_ARG;
    }
#undef IS
    return DUO_OK;
}

static int uri_parse(p11_uri *u, char *err, size_t cap, const char *uri) {
    const char *p, *q;
    int r;
    memset(u, 0, sizeof *u);
    if (!duo_p11_is_uri(uri)) {
        snprintf(err, cap, "'%s' is not a PKCS#11 URI (pkcs11:...)", uri);
        return DUO_E_INVALID_ARG;
    }
    p = uri + 7;
    q = strchr(p, '?');
    for (int query = 0; query < 2; query++) {
        const char *end = query ? p + strlen(p) : (q ? q : p + strlen(p));
        char sep = query ? '&' : ';';
        while (p < end) {
            const char *e = memchr(p, sep, (size_t)(end - p));
            if (e == NULL) e = end;
            if ((r = uri_attr(u, err, cap, p, (size_t)(e - p), query)) != DUO_OK) return r;
            p = e < end ? e + 1 : end;
        }
        if (!q) break;
        p = q + 1;
    }
    if (!u->token[0] || !u->object[0] || !u->module[0]) {
        snprintf(err, cap,
                 "the KEK's PKCS#11 URI must name token=, object= and ?module-path= (e.g. "
                 "pkcs11:token=duosign;object=kek?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=/etc/"
                 "duosign/pin)");
        return DUO_E_INVALID_ARG;
    }
    return DUO_OK;
}

/* ------------------------------------------------------------ module, token */

static const char *rv_name(ck_rv_t rv) {
    switch (rv) {
        case CKR_PIN_INCORRECT:
            return "CKR_PIN_INCORRECT";
        case CKR_PIN_LOCKED:
            return "CKR_PIN_LOCKED";
        case CKR_PIN_LEN_RANGE:
            return "CKR_PIN_LEN_RANGE";
        case CKR_TOKEN_NOT_PRESENT:
            return "CKR_TOKEN_NOT_PRESENT";
        case CKR_DEVICE_ERROR:
            return "CKR_DEVICE_ERROR";
        case CKR_MECHANISM_INVALID:
            return "CKR_MECHANISM_INVALID";
        case CKR_KEY_FUNCTION_NOT_PERMITTED:
            return "CKR_KEY_FUNCTION_NOT_PERMITTED";
        case CKR_USER_NOT_LOGGED_IN:
            return "CKR_USER_NOT_LOGGED_IN";
        default:
            return "PKCS#11 error";
    }
}

/* Loads and initialises a module once per process (caller holds g_mu). */
static int module_get(struct ck_function_list **out, char *err, size_t cap, const char *path) {
    size_t i;
    for (i = 0; i < sizeof g_modules / sizeof g_modules[0] && g_modules[i].f != NULL; i++)
        if (strcmp(g_modules[i].path, path) == 0) {
            *out = g_modules[i].f;
            return DUO_OK;
        }
    if (i == sizeof g_modules / sizeof g_modules[0]) {
        snprintf(err, cap, "too many PKCS#11 modules");
        return DUO_E_KEK_UNAVAILABLE;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        snprintf(err, cap, "cannot load the PKCS#11 module %s: %s", path, dlerror());
        return DUO_E_KEK_UNAVAILABLE;
    }
    ck_rv_t (*get)(struct ck_function_list **) = (ck_rv_t(*)(struct ck_function_list **))dlsym(dl, "C_GetFunctionList");
    struct ck_function_list *f = NULL;
    if (get == NULL || get(&f) != CKR_OK || f == NULL) {
        snprintf(err, cap, "%s is not a PKCS#11 module (no C_GetFunctionList)", path);
        dlclose(dl);
        return DUO_E_KEK_UNAVAILABLE;
    }
    struct ck_c_initialize_args args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK; /* our threads call it concurrently */
    ck_rv_t rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        snprintf(err, cap, "the PKCS#11 module %s failed to initialise (%s, 0x%lx)", path, rv_name(rv), rv);
        return DUO_E_KEK_UNAVAILABLE; /* dl stays loaded: a module may keep threads */
    }
    snprintf(g_modules[i].path, sizeof g_modules[i].path, "%s", path);
    g_modules[i].f = f;
    *out = f;
    return DUO_OK;
}

/* Finds the slot whose token has the URI's label (and slot id, if given). */
static int slot_find(ck_slot_id_t *slot, char *err, size_t cap, struct ck_function_list *f, const p11_uri *u) {
    ck_slot_id_t ids[64];
    unsigned long n = sizeof ids / sizeof ids[0];
    char want[32];
    ck_rv_t rv = f->C_GetSlotList(1, ids, &n);
    if (rv != CKR_OK) {
        snprintf(err, cap, "cannot list the PKCS#11 module's slots (%s, 0x%lx)", rv_name(rv), rv);
        return DUO_E_KEK_UNAVAILABLE;
    }
    memset(want, ' ', sizeof want); /* token labels are blank-padded */
    memcpy(want, u->token, strlen(u->token));
    for (unsigned long i = 0; i < n; i++) {
        struct ck_token_info ti;
        if (u->has_slot && ids[i] != u->slot) continue;
        if (f->C_GetTokenInfo(ids[i], &ti) != CKR_OK) continue;
        if (memcmp(ti.label, want, sizeof want) == 0) {
            *slot = ids[i];
            return DUO_OK;
        }
    }
    snprintf(err, cap, "no PKCS#11 token labelled '%s'%s in %s (%lu tokens present)", u->token,
             u->has_slot ? " in that slot-id" : "", u->module, n);
    return DUO_E_KEK_UNAVAILABLE;
}

/* The user PIN: the pin-source file (first line), else $DUOSIGN_KEK_PIN. */
static int pin_read(char pin[P11_PIN_MAX + 1], char *err, size_t cap, const p11_uri *u) {
    pin[0] = '\0';
    if (u->pin_source[0]) {
        FILE *fp = fopen(u->pin_source, "re");
        if (fp == NULL) {
            snprintf(err, cap, "cannot read the token PIN file %s (pin-source)", u->pin_source);
            return DUO_E_KEK_PIN;
        }
        if (fgets(pin, P11_PIN_MAX + 1, fp) == NULL) pin[0] = '\0';
        fclose(fp);
        pin[strcspn(pin, "\r\n")] = '\0';
    } else {
        const char *e = getenv(DUO_P11_PIN_ENV);
        if (e != NULL && strlen(e) <= P11_PIN_MAX) memcpy(pin, e, strlen(e) + 1);
    }
    if (pin[0] == '\0') {
        snprintf(err, cap,
                 "the token '%s' needs its user PIN: give pin-source=PATH in the KEK's URI (a 0600 file "
                 "holding the PIN) or set " DUO_P11_PIN_ENV,
                 u->token);
        return DUO_E_KEK_PIN;
    }
    return DUO_OK;
}

static int login(char *err, size_t cap, struct ck_function_list *f, ck_session_handle_t s, const p11_uri *u) {
    char pin[P11_PIN_MAX + 1];
    int r = pin_read(pin, err, cap, u);
    if (r != DUO_OK) return r;
    ck_rv_t rv = f->C_Login(s, CKU_USER, (unsigned char *)pin, strlen(pin));
    duo_memzero(pin, sizeof pin);
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return DUO_OK;
    snprintf(err, cap, "the PKCS#11 token '%s' refused the PIN (%s)%s", u->token, rv_name(rv),
             rv == CKR_PIN_INCORRECT ? ": check the pin-source file or " DUO_P11_PIN_ENV : "");
    return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_LEN_RANGE ? DUO_E_KEK_PIN
                                                                                      : DUO_E_KEK_UNAVAILABLE;
}

/* ------------------------------------------------------------ the key object */

static int key_generate(ck_object_handle_t *obj, char *err, size_t cap, struct ck_function_list *f,
                        ck_session_handle_t s, const p11_uri *u) {
    ck_object_class_t cls = CKO_SECRET_KEY;
    ck_key_type_t kt = CKK_AES;
    unsigned long len = 32;
    unsigned char yes = 1, no = 0;
    struct ck_attribute t[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_TOKEN, &yes, 1},
        {CKA_PRIVATE, &yes, 1},
        {CKA_SENSITIVE, &yes, 1},
        {CKA_EXTRACTABLE, &no, 1},
        {CKA_ENCRYPT, &yes, 1},
        {CKA_DECRYPT, &yes, 1},
        {CKA_WRAP, &no, 1},
        {CKA_UNWRAP, &no, 1},
        {CKA_LABEL, (void *)u->object, strlen(u->object)},
    };
    struct ck_mechanism m = {CKM_AES_KEY_GEN, NULL, 0};
    ck_rv_t rv = f->C_GenerateKey(s, &m, t, sizeof t / sizeof t[0], obj);
    if (rv != CKR_OK) {
        snprintf(err, cap, "the token '%s' cannot generate the AES-256 key '%s' (%s, 0x%lx)", u->token, u->object,
                 rv_name(rv), rv);
        return DUO_E_KEK_UNAVAILABLE;
    }
    return DUO_OK;
}

static int key_find(ck_object_handle_t *obj, char *err, size_t cap, struct ck_function_list *f, ck_session_handle_t s,
                    const p11_uri *u, int create) {
    ck_object_class_t cls = CKO_SECRET_KEY;
    struct ck_attribute t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)u->object, strlen(u->object)}};
    ck_object_handle_t found[2];
    unsigned long n = 0;
    if (f->C_FindObjectsInit(s, t, 2) != CKR_OK) {
        snprintf(err, cap, "cannot search the token '%s'", u->token);
        return DUO_E_KEK_UNAVAILABLE;
    }
    ck_rv_t rv = f->C_FindObjects(s, found, 2, &n);
    f->C_FindObjectsFinal(s);
    if (rv != CKR_OK) {
        snprintf(err, cap, "cannot search the token '%s' (%s)", u->token, rv_name(rv));
        return DUO_E_KEK_UNAVAILABLE;
    }
    if (n > 1) {
        snprintf(err, cap, "the token '%s' holds several secret keys labelled '%s'; the KEK must be one", u->token,
                 u->object);
        return DUO_E_KEK_UNAVAILABLE;
    }
    if (n == 1) {
        *obj = found[0];
        return DUO_OK;
    }
    if (create) return key_generate(obj, err, cap, f, s, u);
    snprintf(err, cap, "the token '%s' has no secret key labelled '%s' (object=)", u->token, u->object);
    return DUO_E_KEK_UNAVAILABLE;
}

/* An AES-256 key that may encrypt and decrypt; notes whether it can leave. */
static int key_check(int *extractable, char *err, size_t cap, struct ck_function_list *f, ck_session_handle_t s,
                     ck_object_handle_t obj, const p11_uri *u) {
    ck_key_type_t kt = 0;
    unsigned long len = 0;
    unsigned char enc = 0, dec = 0, ext = 1, sens = 0;
    struct ck_attribute t[] = {{CKA_KEY_TYPE, &kt, sizeof kt}, {CKA_VALUE_LEN, &len, sizeof len},
                               {CKA_ENCRYPT, &enc, 1},         {CKA_DECRYPT, &dec, 1},
                               {CKA_EXTRACTABLE, &ext, 1},     {CKA_SENSITIVE, &sens, 1}};
    if (f->C_GetAttributeValue(s, obj, t, sizeof t / sizeof t[0]) != CKR_OK || kt != CKK_AES || len != 32 || !enc ||
        !dec) {
        snprintf(err, cap,
                 "the token object '%s' is not an AES-256 key allowed to encrypt and decrypt (CKA_KEY_TYPE, "
                 "CKA_VALUE_LEN, CKA_ENCRYPT, CKA_DECRYPT)",
                 u->object);
        return DUO_E_KEK_UNAVAILABLE;
    }
    *extractable = ext || !sens;
    return DUO_OK;
}

/* Opens a fresh handle for u (caller holds g_mu). */
static int key_open_new(duo_p11_key **out, char *err, size_t cap, const char *uri, const p11_uri *u, int create) {
    struct ck_function_list *f;
    ck_slot_id_t slot;
    ck_session_handle_t s;
    duo_p11_key *k;
    int r;
    if ((r = module_get(&f, err, cap, u->module)) != DUO_OK || (r = slot_find(&slot, err, cap, f, u)) != DUO_OK)
        return r;
    ck_rv_t rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
    if (rv != CKR_OK) {
        snprintf(err, cap, "cannot open a session on the token '%s' (%s, 0x%lx)", u->token, rv_name(rv), rv);
        return DUO_E_KEK_UNAVAILABLE;
    }
    if ((k = calloc(1, sizeof *k)) == NULL) {
        f->C_CloseSession(s);
        return DUO_E_NOMEM;
    }
    if ((r = login(err, cap, f, s, u)) != DUO_OK || (r = key_find(&k->obj, err, cap, f, s, u, create)) != DUO_OK ||
        (r = key_check(&k->extractable, err, cap, f, s, k->obj, u)) != DUO_OK) {
        f->C_CloseSession(s);
        free(k);
        return r;
    }
    snprintf(k->uri, sizeof k->uri, "%s", uri);
    k->f = f;
    k->session = s;
    pthread_mutex_init(&k->mu, NULL);
    *out = k;
    return DUO_OK;
}

int duo_p11_key_open(const duo_p11_key **out, int *extractable, char *err, size_t err_cap, const char *uri,
                     int create) {
    p11_uri u;
    duo_p11_key *k;
    int r;
    if (out != NULL) *out = NULL;
    if (err != NULL && err_cap > 0) err[0] = '\0';
    if (out == NULL || uri == NULL || err == NULL || strlen(uri) >= PATH_MAX) return DUO_E_INVALID_ARG;
    if ((r = uri_parse(&u, err, err_cap, uri)) != DUO_OK) return r;
    pthread_mutex_lock(&g_mu);
    for (k = g_keys; k != NULL; k = k->next)
        if (strcmp(k->uri, uri) == 0) break;
    if (k == NULL && (r = key_open_new(&k, err, err_cap, uri, &u, create)) == DUO_OK) {
        k->next = g_keys;
        g_keys = k;
    }
    pthread_mutex_unlock(&g_mu);
    if (r != DUO_OK) return r;
    if (extractable != NULL) *extractable = k->extractable;
    *out = k;
    return DUO_OK;
}

/* Decrypts into a scratch buffer as long as the input: some tokens (SoftHSM)
 * ask for room for the tag too (CKR_BUFFER_TOO_SMALL otherwise). */
static ck_rv_t decrypt(duo_p11_key *k, const uint8_t *in, size_t in_len, uint8_t *out, unsigned long *n) {
    uint8_t *tmp = duo_secure_malloc(in_len);
    unsigned long got = in_len;
    ck_rv_t rv = CKR_HOST_MEMORY;
    if (tmp == NULL) return rv;
    rv = k->f->C_Decrypt(k->session, (unsigned char *)in, in_len, tmp, &got);
    if (rv == CKR_OK && got <= *n) memcpy(out, tmp, got);
    if (rv == CKR_OK && got > *n) rv = CKR_BUFFER_TOO_SMALL;
    *n = got;
    duo_memzero(tmp, in_len);
    duo_secure_free(tmp);
    return rv;
}

int duo_p11_gcm(const duo_p11_key *kc, int seal, const uint8_t *iv, const uint8_t *aad, size_t aad_len,
                const uint8_t *in, size_t in_len, uint8_t *out) {
    duo_p11_key *k = (duo_p11_key *)kc; /* only its mutex changes */
    struct ck_gcm_params gp = {(unsigned char *)iv, 12, 96, (unsigned char *)aad, aad_len, 128};
    struct ck_mechanism m = {CKM_AES_GCM, &gp, sizeof gp};
    unsigned long want = seal ? in_len + 16 : in_len - 16, n = want;
    ck_rv_t rv;
    if (k == NULL || (!seal && in_len < 16)) return DUO_E_INVALID_ARG;
    pthread_mutex_lock(&k->mu);
    rv = seal ? k->f->C_EncryptInit(k->session, &m, k->obj) : k->f->C_DecryptInit(k->session, &m, k->obj);
    if (rv == CKR_OK)
        rv = seal ? k->f->C_Encrypt(k->session, (unsigned char *)in, in_len, out, &n) : decrypt(k, in, in_len, out, &n);
    pthread_mutex_unlock(&k->mu);
    if (rv == CKR_OK && n == want) return DUO_OK;
    if (!seal) duo_memzero(out, want);
    /* A wrong tag is CKR_ENCRYPTED_DATA_INVALID (SoftHSM) or _LEN_RANGE. */
    if (!seal && (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE)) return DUO_E_STATE_CORRUPT;
    return DUO_E_KEK_UNAVAILABLE;
}
