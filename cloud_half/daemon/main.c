/* duosign-cloud: the government cloud signer daemon and its admin commands.
 *
 *   duosign-cloud init   --data DIR [--force] [--kek REF] [--store URL] [--no-ca] [CA options]
 *   duosign-cloud serve  --data DIR --listen ADDR:PORT [...]
 *   duosign-cloud token issue --data DIR --citizen ID [--name NAME] [--ttl SECONDS] [--no-fingerprint]
 *   duosign-cloud ca|cert|crl ...   (cmd_ca.c)
 *   duosign-cloud citizen ...       (cmd_citizen.c)
 *   duosign-cloud key list|show|unlock|revoke ...
 *   duosign-cloud audit verify|list --data DIR
 *   duosign-cloud kek status|rotate --data DIR [--to REF]   (kek_cmd.c)
 *
 * Errors go to stderr with a non-zero exit status (1 failure, 2 usage). */
#include "daemon.h"
#include "chkeys.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "duosign/channel_fp.h"
#include "duosign/mem.h"
#include "kekref.h"
#include "keystore.h"
#include "mark.h"

#define PROG "duosign-cloud"

/* -------------------------------------------------------------- init */

static const char *const data_files[] = {DUO_FILE_KEK, DUO_FILE_KEK_REF, DUO_FILE_DB, DUO_FILE_DB "-wal",
                                         DUO_FILE_DB "-shm", DUO_FILE_CA, DUO_FILE_CERT, DUO_FILE_KEY,
                                         DUO_FILE_STORE_URL,
                                         /* the store's high-water mark: a new store starts a new chain */
                                         DUO_FILE_MARK, DUO_FILE_MARK ".lock",
                                         /* the inner channel's keys, sealed under the old KEK */
                                         DUO_FILE_CHKEYS};

static int dir_is_empty(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    closedir(d);
    return empty;
}

static int first_entry(void *data, const duo_audit_entry *e) {
    (void)data;
    (void)e;
    return DUO_E_EXISTS;
}

/* DUO_OK if the store has no audit entry yet (a new database), DUO_E_EXISTS
 * if it has: init --store on a shared database must not make a second KEK
 * and CA for it. */
static int store_is_empty(duo_keystore *ks) { return duo_keystore_audit_list(ks, 1, first_entry, NULL); }

static int cmd_init(int argc, char **argv) {
    const char *dir = NULL, *kek_ref = NULL, *store_url = NULL, *v;
    int force = 0, no_ca = 0;
    duo_ca_settings cas = {0};
    for (int i = 1; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("usage: " PROG " init --data DIR [--force] [--kek REF] [--store URL] [--no-ca] [--ca-name NAME]\n"
                   "                    [--ca-days N] [--cert-days N] [--country CC] [--crl-url URL]\n\n"
                   "Creates a data directory (mode 0700) holding:\n"
                   "  kek         a random 32-byte key-encryption key (0600), unless --kek names\n"
                   "              another: file:NAME, or a key in a PKCS#11 token,\n"
                   "              pkcs11:token=LABEL;object=LABEL?module-path=MODULE&pin-source=PINFILE\n"
                   "              (generated there if absent; PIN from PINFILE or $DUOSIGN_KEK_PIN)\n"
                   "  kek.ref     which key-encryption key the data directory uses\n"
                   "  keys.db     the SQLite key store and audit log, unless --store names a\n"
                   "              PostgreSQL database, postgresql://USER@HOST:PORT/DB (schema created\n"
                   "              there if absent; several signer nodes may share it): store.url\n"
                   "              (0600) then records the URL\n"
                   "  ca.pem      a development CA certificate (EC P-256)\n"
                   "  server.pem  a server certificate for localhost and 127.0.0.1\n"
                   "  server.key  its private key (0600)\n"
                   "and, in keys.db, the issuing CA for citizens' certificates: a P-256 key sealed under\n"
                   "the KEK and a self-signed certificate (not the TLS CA). --no-ca leaves it out\n"
                   "(certificates then come from an external CA: " PROG " cert import).\n"
                   "  --ca-name NAME   the CA's CN (default \"" DUO_CA_DEFAULT_NAME "\")\n"
                   "  --ca-days N      the CA certificate's validity (default 3650)\n"
                   "  --cert-days N    a citizen certificate's validity (default 730; never past the CA's)\n"
                   "  --country CC     serialNumber PNO<CC>-<citizen id> and C (default UA)\n"
                   "  --crl-url URL    the CRL distribution point (default " DUO_CA_DEFAULT_CRL_URL ")\n"
                   "Refuses a directory that exists and is not empty unless --force is given;\n"
                   "--force DESTROYS the keys stored there.\n");
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = 1;
        } else if (duo__opt_val(argc, argv, &i, "--kek", &v)) {
            kek_ref = v;
        } else if (duo__opt_val(argc, argv, &i, "--store", &v)) {
            store_url = v;
        } else if (!duo__ca_init_opt(argc, argv, &i, &cas, &no_ca)) {
            duo__unknown_arg("init", argv[i]);
        }
    }
    duo__need("init", "--data DIR", dir);
    if (store_url != NULL && !duo_store_url_ok(store_url)) {
        fprintf(stderr, PROG " init: --store must be a PostgreSQL URL, postgresql://USER@HOST:PORT/DATABASE\n");
        return DUO_EXIT_USAGE;
    }
    struct stat st;
    char path[DUO_PATH_MAX], err[DUO_ERRMSG_MAX] = "";
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return duo__fail("%s exists and is not a directory", dir);
        int empty = dir_is_empty(dir);
        if (empty < 0) return duo__fail("cannot read directory %s", dir);
        if (!empty && !force)
            return duo__fail("%s exists and is not empty; refusing to overwrite it. Use another directory, "
                             "or --force to destroy the keys in it",
                             dir);
        if (!empty)
            for (size_t i = 0; i < sizeof data_files / sizeof data_files[0]; i++) {
                snprintf(path, sizeof path, "%s/%s", dir, data_files[i]);
                if (unlink(path) != 0 && errno != ENOENT)
                    return duo__fail("cannot remove %s: %s", path, strerror(errno));
            }
        if (chmod(dir, 0700) != 0) return duo__fail("cannot chmod 0700 %s: %s", dir, strerror(errno));
    } else if (mkdir(dir, 0700) != 0) {
        return duo__fail("cannot create %s: %s", dir, strerror(errno));
    }

    if (kek_ref != NULL && strncmp(kek_ref, "file:", 5) != 0 && strncmp(kek_ref, "pkcs11:", 7) != 0) {
        fprintf(stderr, PROG " init: --kek must be file:NAME or pkcs11:URI (try --help)\n");
        return DUO_EXIT_USAGE;
    }
    int r = duo__kek_init(dir, kek_ref, err, sizeof err);
    if (r != DUO_OK) return duo__fail("cannot create the key-encryption key: %s", err[0] ? err : duo_strerror(r));
    if ((r = duo__pki_create(dir, err, sizeof err)) != DUO_OK) return duo__fail("%s", err);
    {
        duo_chkeys ck;
        if ((r = duo__chkeys_load(&ck, err, sizeof err, dir, 1)) != DUO_OK) return duo__fail("%s", err);
        duo__chkeys_clear(&ck);
    }
    if (store_url != NULL && (r = duo_datadir_set_store_url(err, sizeof err, dir, store_url)) != DUO_OK)
        return duo__fail("%s", err);
    duo_keystore *ks;
    if ((r = duo_datadir_open_store(&ks, err, sizeof err, dir, 1, NULL, 0)) != DUO_OK) return duo__fail("%s", err);
    if (store_url != NULL && (r = store_is_empty(ks)) != DUO_OK) {
        duo_keystore_free(ks);
        if (r == DUO_E_EXISTS)
            return duo__fail("the PostgreSQL database already holds a duosign store; a new node joins it with a copy "
                             "of an existing node's data directory (its KEK), not with init");
        return duo__fail("cannot read the audit log: %s", duo_strerror(r));
    }
    duo_audit_event ev = {.kind = DUO_AUDIT_ADMIN, .detail = "init: data directory created"};
    r = duo_keystore_audit_append(ks, NULL, &ev);
    if (r != DUO_OK) {
        duo_keystore_free(ks);
        return duo__fail("cannot write the audit log: %s", duo_strerror(r));
    }
    printf("initialised %s\n", dir);
    printf("  key-encryption key  %s\n", kek_ref ? kek_ref : DUO_FILE_KEK);
    if (store_url != NULL)
        printf("  key store           PostgreSQL (URL in %s/" DUO_FILE_STORE_URL ")\n", dir);
    else
        printf("  key store           %s/" DUO_FILE_DB "\n", dir);
    printf("  TLS (development)   %s/" DUO_FILE_CA ", " DUO_FILE_CERT ", " DUO_FILE_KEY "\n", dir);
    printf("  channel key         %s/" DUO_FILE_CHKEYS " (X25519, sealed under the KEK)\n", dir);
    r = duo__ca_init(ks, &cas, no_ca);
    duo_keystore_free(ks);
    if (r != DUO_EXIT_OK) return r;
    printf("next: " PROG " serve --data %s --listen 127.0.0.1:7443\n", dir);
    return DUO_EXIT_OK;
}

/* ------------------------------------------------------------- token */

/* CODE "." the current channel key's fingerprint (duosign/channel_fp.h), so
 * the device can check the key the cloud presents at enrolment. The key is
 * read as `serve` reads it (opened with the KEK, its public half checked;
 * made if the data directory has none yet). */
static int token_fingerprint(char *token, size_t cap, const char *dir, uint32_t *number) {
    duo_chkeys keys;
    char err[256], hex[DUO_CH_FP_HEX + 1];
    size_t n = strlen(token);
    int r = duo__chkeys_load(&keys, err, sizeof err, dir, 1);
    if (r != DUO_OK) {
        fprintf(stderr, PROG " token issue: the channel key: %s\n", err);
        return r;
    }
    const duo_ch_static *cur = duo__chkeys_current(&keys);
    if (cur == NULL)
        r = DUO_E_STATE_CORRUPT;
    else if ((r = duo_ch_fingerprint_hex(hex, cur->pub)) == DUO_OK && n + 1 + DUO_CH_FP_HEX + 1 > cap)
        r = DUO_E_BUFFER_TOO_SMALL;
    if (r == DUO_OK) {
        snprintf(token + n, cap - n, "%c%s", DUO_CH_FP_SEP, hex);
        *number = cur->id;
    }
    duo__chkeys_clear(&keys);
    return r;
}

static int cmd_token(int argc, char **argv) {
    const char *dir = NULL, *citizen = NULL, *name = NULL, *ttl_s = NULL, *v;
    int with_fp = 1;
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("usage: " PROG
               " token issue --data DIR --citizen ID [--name NAME] [--ttl SECONDS] [--no-fingerprint]\n\n"
               "Prints a one-time enrolment token for the citizen on stdout. Only its\n"
               "SHA-256 is stored, with the citizen's name (the CN of their certificates;\n"
               "UTF-8, at most %d bytes; without it the CN is the citizen id).\n"
               "The token ends in '.' and the fingerprint of the current channel key\n"
               "(channel-key list): the device checks the key the cloud presents at\n"
               "enrolment against it (--no-fingerprint: the bare code, for an app that\n"
               "takes 32 characters only; the device then trusts the TLS alone).\n"
               "Default TTL 86400 s (24 h).\n",
               DUO_CITIZEN_NAME_MAX);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    if (strcmp(argv[1], "issue") != 0) duo__unknown_arg("token", argv[1]);
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("usage: " PROG
                   " token issue --data DIR --citizen ID [--name NAME] [--ttl SECONDS] [--no-fingerprint]\n");
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--citizen", &v)) {
            citizen = v;
        } else if (duo__opt_val(argc, argv, &i, "--ttl", &v)) {
            ttl_s = v;
        } else if (duo__opt_val(argc, argv, &i, "--name", &v)) {
            name = v;
        } else if (strcmp(argv[i], "--no-fingerprint") == 0) {
            with_fp = 0;
        } else {
            duo__unknown_arg("token issue", argv[i]);
        }
    }
    duo__need("token issue", "--data DIR", dir);
    duo__need("token issue", "--citizen ID", citizen);
    long long ttl = 86400;
    if (ttl_s) {
        char *end;
        ttl = strtoll(ttl_s, &end, 10);
        if (*end || ttl <= 0 || ttl > 90LL * 86400) {
            fprintf(stderr, PROG " token issue: --ttl must be 1..7776000 seconds\n");
            return DUO_EXIT_USAGE;
        }
    }
    if (strlen(citizen) > DUO_CITIZEN_ID_MAX) {
        fprintf(stderr, PROG " token issue: --citizen is longer than %d bytes\n", DUO_CITIZEN_ID_MAX);
        return DUO_EXIT_USAGE;
    }
    if (name != NULL && (name[0] == '\0' || strlen(name) > DUO_CITIZEN_NAME_MAX)) {
        fprintf(stderr, PROG " token issue: --name must be 1..%d bytes\n", DUO_CITIZEN_NAME_MAX);
        return DUO_EXIT_USAGE;
    }
    duo_keystore *ks = duo__open_or_die(dir);
    char token[96];
    uint32_t chkey = 0;
    int r = duo__random_code(token, sizeof token, 20, 0); /* 160 bits, 32 chars */
    if (r == DUO_OK && with_fp && (r = token_fingerprint(token, sizeof token, dir, &chkey)) != DUO_OK) {
        duo_keystore_free(ks);
        duo_memzero(token, sizeof token);
        return duo__fail("cannot issue the token: the channel key: %s", duo_strerror(r));
    }
    if (r == DUO_OK) {
        char detail[96];
        if (with_fp)
            snprintf(detail, sizeof detail, "ttl %llds, channel key %u", ttl, (unsigned)chkey);
        else
            snprintf(detail, sizeof detail, "ttl %llds, no channel-key fingerprint", ttl);
        duo_audit_event ev = {.kind = DUO_AUDIT_TOKEN_ISSUED, .citizen_id = citizen, .detail = detail};
        r = duo_keystore_token_insert_named(ks, (const uint8_t *)token, strlen(token), citizen, name, (int64_t)ttl,
                                            &ev);
    }
    duo_keystore_free(ks);
    if (r != DUO_OK) {
        duo_memzero(token, sizeof token);
        return duo__fail("cannot issue the token: %s",
                         r == DUO_E_INVALID_ARG ? "citizen id and name must be printable text" : duo_strerror(r));
    }
    char when[64];
    duo__fmt_time(when, sizeof when, (int64_t)time(NULL) + ttl);
    printf("%s\n", token);
    if (with_fp)
        fprintf(stderr, "token for citizen %s, single use, expires %s; carries channel key %u's fingerprint\n", citizen,
                when, (unsigned)chkey);
    else
        fprintf(stderr, "token for citizen %s, single use, expires %s; no channel-key fingerprint\n", citizen, when);
    duo_memzero(token, sizeof token);
    return DUO_EXIT_OK;
}

/* --------------------------------------------------------------- key */

static void print_key_line(const duo_key_info *k) {
    char id[2 * DUO_KEY_ID_BYTES + 1], created[64];
    duo__hex(id, k->key_id, DUO_KEY_ID_BYTES);
    duo__fmt_time(created, sizeof created, k->created_at);
    printf("%s  %-9s  %-20s  pin_failures=%u  role=%s  created %s\n", id, duo_key_state_name(k->state), k->citizen_id,
           k->pin_failures, duo_key_role_name(k->role), created);
}

static int list_cb(void *data, const duo_key_info *k) {
    (*(size_t *)data)++;
    print_key_line(k);
    return 0;
}

static void print_key_full(const duo_key_info *k) {
    char id[2 * DUO_KEY_ID_BYTES + 1], hq[2 * DUO_POINT_BYTES + 1], t1[64], t2[64];
    duo__hex(id, k->key_id, DUO_KEY_ID_BYTES);
    duo__hex(hq, k->q, DUO_POINT_BYTES);
    duo__fmt_time(t1, sizeof t1, k->created_at);
    duo__fmt_time(t2, sizeof t2, k->updated_at);
    printf("key id:          %s\n", id);
    printf("citizen:         %s\n", k->citizen_id);
    printf("state:           %s\n", duo_key_state_name(k->state));
    if (k->reason[0]) printf("reason:          %s\n", k->reason);
    printf("curve:           %s\n", duo_curve_name((duo_curve)k->curve));
    printf("role:            %s\n", duo_key_role_name(k->role));
    printf("public key:      %s\n", hq);
    printf("paillier bits:   %u\n", k->paillier_bits);
    printf("pin failures:    %u\n", k->pin_failures);
    if (k->locked_until) {
        char lt[64];
        duo__fmt_time(lt, sizeof lt, k->locked_until);
        printf("locked until:    %s\n", lt);
    }
    printf("inner channel:   %s\n", k->moved ? "moved (plaintext requests refused)" : "not moved (plaintext accepted)");
    printf("secret rotation: %s, %llu retired\n", k->has_pending_secret ? "pending" : "settled",
           (unsigned long long)k->retired_count);
    printf("versions:        row %llu, secrets %llu\n", (unsigned long long)k->version,
           (unsigned long long)k->secret_version);
    printf("created:         %s\n", t1);
    printf("updated:         %s\n", t2);
}

static int parse_key_id(uint8_t id[DUO_KEY_ID_BYTES], const char *s) {
    if (duo__unhex(id, DUO_KEY_ID_BYTES, s) != DUO_OK) {
        fprintf(stderr, PROG " key: '%s' is not a key id (32 hex digits; see '" PROG " key list')\n", s);
        return 0;
    }
    return 1;
}

static int cmd_key(int argc, char **argv) {
    const char *usage =
        "usage: " PROG " key list   --data DIR [--citizen ID]\n"
        "       " PROG " key show   --data DIR KEYID\n"
        "       " PROG " key unlock --data DIR KEYID      (clears a PIN lock and the failure count)\n"
        "       " PROG " key revoke --data DIR KEYID [--reason TEXT]   (final; destroys the cloud share)\n";
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("%s", usage);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    const char *sub = argv[1], *dir = NULL, *citizen = NULL, *reason = NULL, *keyid = NULL, *v;
    if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "unlock") && strcmp(sub, "revoke"))
        duo__unknown_arg("key", sub);
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--citizen", &v)) {
            citizen = v;
        } else if (duo__opt_val(argc, argv, &i, "--reason", &v)) {
            reason = v;
        } else if (argv[i][0] != '-' && !keyid) {
            keyid = argv[i];
        } else {
            duo__unknown_arg("key", argv[i]);
        }
    }
    duo__need("key", "--data DIR", dir);
    if (strcmp(sub, "list") == 0) {
        duo_keystore *ks = duo__open_or_die(dir);
        size_t n = 0;
        int r = duo_keystore_key_list(ks, citizen, list_cb, &n);
        duo_keystore_free(ks);
        if (r != DUO_OK) return duo__fail("cannot list keys: %s", duo_strerror(r));
        if (n == 0) fprintf(stderr, "no keys\n");
        return DUO_EXIT_OK;
    }
    duo__need("key", "KEYID", keyid);
    uint8_t id[DUO_KEY_ID_BYTES];
    if (!parse_key_id(id, keyid)) return DUO_EXIT_USAGE;
    duo_keystore *ks = duo__open_or_die(dir);
    duo_key_info info;
    int r = duo_keystore_key_get(ks, &info, NULL, id);
    if (r != DUO_OK) {
        duo_keystore_free(ks);
        return duo__fail("key %s: %s", keyid, r == DUO_E_NOT_FOUND ? "no such key (see 'key list')" : duo_strerror(r));
    }
    if (strcmp(sub, "show") == 0) {
        char name[DUO_CITIZEN_NAME_MAX + 1] = "";
        print_key_full(&info);
        if (duo_keystore_key_citizen_name(ks, name, id) == DUO_OK && name[0]) printf("citizen name:    %s\n", name);
        duo_keystore_free(ks);
        return DUO_EXIT_OK;
    }
    if (strcmp(sub, "unlock") == 0) {
        for (int attempt = 0; attempt < 5; attempt++) {
            if (info.state == DUO_KEY_STATE_SUSPENDED || info.state == DUO_KEY_STATE_REVOKED) {
                duo_keystore_free(ks);
                return duo__fail("key %s is %s, which is final: the citizen must enrol again", keyid,
                                 duo_key_state_name(info.state));
            }
            if (info.state == DUO_KEY_STATE_PENDING) {
                duo_keystore_free(ks);
                return duo__fail("key %s is still pending enrolment; nothing to unlock", keyid);
            }
            duo_key_policy pol = {.state = DUO_KEY_STATE_ACTIVE, .pin_failures = 0, .locked_until = 0, .reason = ""};
            char detail[128];
            snprintf(detail, sizeof detail, "admin unlock (was %s, %u PIN failures)", duo_key_state_name(info.state),
                     info.pin_failures);
            duo_audit_event ev = {
                .kind = DUO_AUDIT_UNLOCK, .key_id = id, .citizen_id = info.citizen_id, .detail = detail};
            r = duo_keystore_key_update_policy(ks, id, info.version, &pol, &ev);
            if (r != DUO_E_CONFLICT) break;
            if ((r = duo_keystore_key_get(ks, &info, NULL, id)) != DUO_OK) break;
        }
        duo_keystore_free(ks);
        if (r != DUO_OK) return duo__fail("cannot unlock %s: %s", keyid, duo_strerror(r));
        printf("key %s unlocked; PIN failure count reset\n", keyid);
        return DUO_EXIT_OK;
    }
    /* revoke */
    char why[DUO_REASON_MAX + 1];
    snprintf(why, sizeof why, "revoked by an administrator%s%s", reason ? ": " : "", reason ? reason : "");
    duo_audit_event ev = {.kind = DUO_AUDIT_REVOKE, .key_id = id, .citizen_id = info.citizen_id, .detail = why};
    r = duo_keystore_key_revoke(ks, id, NULL, 0, why, &ev);
    if (r == DUO_OK) duo__certs_follow_key(ks, id, DUO_CRL_REASON_CESSATION);
    duo_keystore_free(ks);
    if (r == DUO_E_KEY_REVOKED) return duo__fail("key %s is already revoked", keyid);
    if (r != DUO_OK) return duo__fail("cannot revoke %s: %s", keyid, duo_strerror(r));
    printf("key %s revoked; its cloud share is destroyed\n", keyid);
    return DUO_EXIT_OK;
}

/* ------------------------------------------------------------- audit */

static int audit_print_cb(void *data, const duo_audit_entry *e) {
    (void)data;
    char t[64], id[2 * 16 + 1] = "-";
    duo__fmt_time(t, sizeof t, e->time);
    if (e->has_key_id) duo__hex(id, e->key_id, 16);
    printf("%6llu  %s  %-16s  %s  %s  %s\n", (unsigned long long)e->seq, t, e->kind, id,
           e->citizen_id[0] ? e->citizen_id : "-", e->detail);
    return 0;
}

static int cmd_audit(int argc, char **argv) {
    const char *usage = "usage: " PROG " audit verify --data DIR   (checks the hash chain; exit 1 if broken)\n"
                        "       " PROG " audit list   --data DIR\n";
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("%s", usage);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    const char *sub = argv[1], *dir = NULL, *v;
    if (strcmp(sub, "verify") && strcmp(sub, "list")) duo__unknown_arg("audit", sub);
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else {
            duo__unknown_arg("audit", argv[i]);
        }
    }
    duo__need("audit", "--data DIR", dir);
    duo_keystore *ks = duo__open_or_die(dir);
    int r;
    if (strcmp(sub, "list") == 0) {
        r = duo_keystore_audit_list(ks, 1, audit_print_cb, NULL);
        duo_keystore_free(ks);
        if (r != DUO_OK) return duo__fail("cannot read the audit log: %s", duo_strerror(r));
        return DUO_EXIT_OK;
    }
    uint64_t bad = 0, count = 0;
    uint8_t head[DUO_AUDIT_HASH_LEN];
    r = duo_keystore_audit_verify(ks, &bad, &count, head);
    duo_keystore_free(ks);
    if (r == DUO_E_STATE_CORRUPT) {
        fprintf(stderr,
                PROG ": audit chain BROKEN at entry %llu: an entry was edited, deleted, inserted or "
                     "reordered (or the tail was cut). Preserve the database for investigation.\n",
                (unsigned long long)bad);
        return DUO_EXIT_FAIL;
    }
    if (r != DUO_OK) return duo__fail("cannot verify the audit log: %s", duo_strerror(r));
    char hh[2 * DUO_AUDIT_HASH_LEN + 1];
    duo__hex(hh, head, DUO_AUDIT_HASH_LEN);
    printf("audit chain OK: %llu entries, head %s\n", (unsigned long long)count, hh);
    return DUO_EXIT_OK;
}

/* -------------------------------------------------------------- main */

static void usage(FILE *f) {
    fprintf(f, "usage: " PROG " COMMAND [OPTIONS]\n\n"
               "commands:\n"
               "  init   --data DIR [--force]             create a data directory\n"
               "  serve  --data DIR --listen ADDR:PORT    run the signer (TLS; --insecure for plaintext)\n"
               "  token  issue --data DIR --citizen ID    print a one-time enrolment token\n"
               "  key    list|show|unlock|revoke          inspect and administer keys\n"
               "  ca     export|show --data DIR           the issuing CA (citizens' certificates)\n"
               "  cert   issue|import|list --data DIR     certificates of keys\n"
               "  crl    --data DIR --out FILE            sign a CRL with the issuing CA\n"
               "  citizen set|show|list|remove --data DIR the citizens' documents (presentation codes)\n"
               "  audit  verify|list --data DIR           check or print the audit log\n"
               "  check  --data DIR                       full integrity, audit, MAC and mark check\n"
               "  backup --data DIR --out FILE            online copy of the store (safe while serving)\n"
               "  restore --data DIR --in FILE            install a backup (daemon stopped)\n"
               "  restore --data DIR --mark-only          accept a PostgreSQL store after its recovery\n"
               "  kek    status|rotate --data DIR         the key-encryption key: check, rotate\n"
               "  rp     add|list|remove --data DIR       relying parties (client certificates)\n"
               "  channel-key list|rotate|retire N --data DIR   the inner channel's keys\n"
               "  --version                               print the version\n\n"
               "'" PROG " COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return DUO_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (duo__is_help(cmd) || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return DUO_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf(PROG " %s\n", DUOSIGN_VERSION);
        return DUO_EXIT_OK;
    }
    if (strcmp(cmd, "init") == 0) return cmd_init(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0) return duo__cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "token") == 0) return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "key") == 0) return cmd_key(argc - 1, argv + 1);
    if (strcmp(cmd, "audit") == 0) return cmd_audit(argc - 1, argv + 1);
    if (strcmp(cmd, "ca") == 0) return duo__cmd_ca(argc - 1, argv + 1);
    if (strcmp(cmd, "cert") == 0) return duo__cmd_cert(argc - 1, argv + 1);
    if (strcmp(cmd, "crl") == 0) return duo__cmd_crl(argc - 1, argv + 1);
    if (strcmp(cmd, "citizen") == 0) return duo__cmd_citizen(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0) return duo__cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0) return duo__cmd_backup(argc - 1, argv + 1);
    if (strcmp(cmd, "restore") == 0) return duo__cmd_restore(argc - 1, argv + 1);
    if (strcmp(cmd, "kek") == 0) return duo__cmd_kek(argc - 1, argv + 1);
    if (strcmp(cmd, "rp") == 0) return duo__cmd_rp(argc - 1, argv + 1);
    if (strcmp(cmd, "channel-key") == 0) return duo__cmd_channel_key(argc - 1, argv + 1);
    fprintf(stderr, PROG ": unknown command '%s'\n\n", cmd);
    usage(stderr);
    return DUO_EXIT_USAGE;
}
