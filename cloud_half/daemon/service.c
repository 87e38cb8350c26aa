/* duosign-cloud: the service, composition root of the daemon (service.h).
 *
 * It keeps the configuration, the store connections, the method table and
 * the dispatch, the timers and the lifecycle, and holds the rooms the
 * handlers work in, each its own object with its own lock:
 *   sessions.c  live sessions and tombstones        (its mutex)
 *   keycache.c  built duo_p1_key objects             (its mutex)
 *   pool.c      Paillier / range-proof precomputation (its mutex)
 *   freezes.c   freezes not stored yet: those keys are refused (its mutex)
 *   policy.c    key states, request authentication, PIN lockout, the freeze
 *               (stateless over the store)
 *   rpc_enroll.c, rpc_sign.c, rpc_key.c  the handlers (rpc.h: the method table)
 * Key state lives only in the store; every change goes through one store
 * transaction with its audit entry, guarded by the row version (optimistic
 * concurrency: re-read and retry on DUO_E_CONFLICT).
 *
 * Threads: handlers run on the server's worker threads, concurrently. The
 * service's own lock, ks_mu, guards only the free list of store connections
 * (workers + 1 connections, so no handler waits for one and no crypto runs
 * under a shared lock); write_mu is the store connections' write queue
 * (duo_keystore_config). Timers and the pool's refills run on the loop
 * thread. */
#include "service.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "channels.h"
#include "chkeys.h"
#include "docstore.h"
#include "duosign.pb-c.h"
#include "duosign/mem.h"
#include "duosign/rng.h"
#include "relying_party.pb-c.h"
#include "rp_ca.h"
#include "log.h"
#include "metrics.h"
#include "rpc.h"

#define PENDING_MAX_AGE_S 3600
#define MAINT_PERIOD_MS 30000
#define CODE_KEEP_S 3600

struct duo_service {
    duo_service_config cfg;
    char data_dir[DUO_PATH_MAX];
    duo_ec *ec[DUO_CURVE_COUNT]; /* one context per curve (NULL at 0) */
    uv_loop_t *loop;

    /* Rooms (each with its own lock). */
    duo_sessions *sessions;
    duo_keycache *keys;
    duo_pool *pool;
    duo_freezes *freezes;
    duo_overlap *overlap;     /* SignFinish's store write beside its decryption */
    duo_rp_room *rp;          /* relying parties' requests */
    duo_redeem_limit *redeem; /* RedeemPresentation's per-RP limits */
    duo_chkeys chkeys;        /* the inner channel's static keys (SECRET) */
    duo_channels *channels;

    pthread_mutex_t ks_mu; /* guards ks_free and n_free */
    pthread_cond_t ks_cv;
    pthread_mutex_t write_mu; /* the store connections' write transactions queue here */
    duo_keystore **ks_all, **ks_free;
    size_t n_ks, n_free;

    uv_timer_t sweep_timer, maint_timer;
    int handles_open;

    uint32_t rid_prefix;          /* random per process: request ids differ across restarts */
    atomic_uint_fast32_t rid_seq; /* request ids: prefix and sequence */
};

/* ---------------------------------------------------- store connections */

static duo_keystore *ks_acquire(duo_service *s) {
    pthread_mutex_lock(&s->ks_mu);
    while (s->n_free == 0) pthread_cond_wait(&s->ks_cv, &s->ks_mu);
    duo_keystore *ks = s->ks_free[--s->n_free];
    pthread_mutex_unlock(&s->ks_mu);
    return ks;
}

static void ks_release(duo_service *s, duo_keystore *ks) {
    pthread_mutex_lock(&s->ks_mu);
    s->ks_free[s->n_free++] = ks;
    pthread_cond_signal(&s->ks_cv);
    pthread_mutex_unlock(&s->ks_mu);
}

size_t duo_service_pool_ready(duo_service *s) { return duo__pool_ready(s->pool); }

static duo_keystore *ks_get_cb(void *svc) { return ks_acquire(svc); }
static void ks_put_cb(void *svc, duo_keystore *ks) { ks_release(svc, ks); }

/* ------------------------------------------------- method table, dispatch */

static const struct {
    const char *name;
    duo_rpc_fn fn;
} method_table[DUO_MSG_COUNT] = {
#define DUO_RPC_ROW(index, mname, fn) [index] = {mname, fn},
    DUO_RPC_METHODS(DUO_RPC_ROW)
#undef DUO_RPC_ROW
};

/* 16 hex digits: the process's random prefix and a sequence number. */
static void next_request_id(duo_service *s, char out[DUO_CALL_ID_MAX]) {
    snprintf(out, DUO_CALL_ID_MAX, "%08x%08x", (unsigned)s->rid_prefix,
             (unsigned)(atomic_fetch_add(&s->rid_seq, 1) & 0xffffffffu));
}

/* The cloud keeps a channel after these methods' responses: their session
 * continues with the next round (the device's continues_session lists the
 * rounds after them). A new multi-round RPC adds its first rounds here. */
static int keeps_channel(int mi) {
    return mi == DUO_MSG_ENROLL_START || mi == DUO_MSG_ENROLL_KEY_SHARE || mi == DUO_MSG_ENROLL_PDL_CHALLENGE ||
           mi == DUO_MSG_ENROLL_PDL_OPEN || mi == DUO_MSG_SIGN_START;
}

/* A Sealed request (the inner channel, issue 12): the record is opened
 * before anything else looks at it, the handler runs on the plain message
 * exactly as for a plain request, and its response goes back sealed. A
 * record that does not open changes nothing: no handler runs (no PIN
 * counter, no store write), and a session taken from the table goes back
 * as it was, so the genuine record may still come. */
static int sealed_call(duo_service *s, duo_rpc *c, int mi, const uint8_t *req, size_t req_len, uint8_t **resp,
                       size_t *resp_len) {
    const char *m = method_table[mi].name;
    duo_ch_record rec, back;
    duo_channel ch;
    uint8_t *buf = NULL, *pt = NULL, *inner = NULL, *ct = NULL;
    size_t pt_len = 0, inner_len = 0;
    int have = 0, keep = 0, from_handler = 0, r;
    int64_t now = duo__now_s();

    memset(&ch, 0, sizeof ch);
    if ((r = duo_wire_parse_sealed(&rec, &buf, req, req_len)) != DUO_OK) goto out;
    if (rec.has_ephemeral) {
        const duo_ch_static *sk = duo__chkeys_find(&s->chkeys, rec.static_id);
        r = sk ? duo_ch_cloud_accept(&ch, sk, &rec) : DUO_E_CHANNEL_STATIC_KEY;
    } else {
        r = rec.has_channel_id ? duo__channels_take(s->channels, &ch, rec.channel_id, now) : DUO_E_CHANNEL_MALFORMED;
        keep = r == DUO_OK; /* refused below: it goes back unchanged */
    }
    if (r != DUO_OK) goto out;
    have = 1;
    if ((r = duo_ch_open(&ch, &pt, &pt_len, m, &rec)) != DUO_OK) goto out;
    keep = 0;
    c->sealed = 1;
    if (rec.has_key_id) {
        memcpy(c->info->key_id, rec.key_id, sizeof c->info->key_id);
        c->info->has_key_id = 1;
    }
    if ((r = method_table[mi].fn(c, pt, pt_len, &inner, &inner_len)) != DUO_OK) {
        from_handler = 1; /* its own detail ("N attempts left") reaches the device */
        goto out;
    }
    /* The key's first authenticated request inside the channel moves it:
     * durable before this response leaves, so the device never sees a
     * sealed answer while its key would still take plain requests. */
    if ((r = duo__policy_mark_moved(c->ks, c->info)) != DUO_OK) {
        from_handler = 1;
        if (!c->info->detail[0]) DETAIL(c->info, "the signer's storage failed (%s); retry", duo_strerror(r));
        goto out;
    }
    if ((r = duo_ch_seal(&ch, &back, &ct, m, rec.has_key_id ? rec.key_id : NULL, inner, inner_len, NULL)) != DUO_OK)
        goto out;
    /* A device sealing to an older key is told to fetch the current one. */
    back.rekey = duo__chkeys_current(&s->chkeys)->id != ch.static_id;
    if ((r = duo_wire_build_sealed(resp, resp_len, &back)) != DUO_OK) goto out;
    keep = keeps_channel(mi);
out:
    if (r != DUO_OK && !from_handler) DETAIL(c->info, "%s (inner channel): %s", m, duo_strerror(r));
    if (have && keep) duo__channels_put(s->channels, &ch, now);
    duo_ch_clear(&ch);
    free(buf);
    free(ct);
    if (pt) duo_memzero(pt, pt_len);
    free(pt);
    if (inner) duo_memzero(inner, inner_len);
    free(inner);
    return r;
}

/* The server's one handler entry point: every method comes here with its
 * index. */
/* What a handler runs with: the service's rooms and a store connection
 * (released by the dispatcher with ks_release). */
static duo_rpc rpc_context(duo_service *s, duo_call_info *info) {
    duo_rpc c = {.cfg = &s->cfg,
                 .ec = (const duo_ec *const *)s->ec,
                 .sessions = s->sessions,
                 .keys = s->keys,
                 .pool = s->pool,
                 .freezes = s->freezes,
                 .overlap = s->overlap,
                 .ks = ks_acquire(s),
                 .info = info,
                 .rp = s->rp,
                 .redeem = s->redeem,
                 .svc = s,
                 .ks_put = ks_put_cb,
                 .ks_get = ks_get_cb,
                 .chkeys = &s->chkeys};
    return c;
}

/* One request line per call, on both services (the daemon README): the
 * detail is ok_detail on success, else the handler's or the error's text.
 * Returns the call's duration in ms. */
static double log_call(const duo_call_info *info, const char *method, int r, int64_t t0, const char *ok_detail) {
    double ms = (double)(duo__mono_us() - t0) / 1000.0;
    duo_log_request rl = {.request_id = info->request_id,
                          .method = method,
                          .key_id = info->has_key_id ? info->key_id : NULL,
                          .code = r,
                          .duration_ms = ms,
                          .peer = info->peer,
                          .detail = r == DUO_OK       ? ok_detail
                                    : info->detail[0] ? info->detail
                                                      : duo_strerror(r)};
    duo_log_request_line(&rl);
    return ms;
}

static int dispatch(void *app, int mi, const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len,
                    duo_call_info *info) {
    duo_service *s = app;
    if (mi < 0 || mi >= DUO_MSG_COUNT) return DUO_E_UNSUPPORTED;
    int64_t t0 = duo__mono_us();
    next_request_id(s, info->request_id);
    duo_rpc c = rpc_context(s, info);
    /* A handler may have left its connection in deferred-commit mode if
     * switching back failed: never run one on it (no-op when durable). */
    int r = duo_keystore_commit_mode(c.ks, DUO_COMMIT_DURABLE);
    if (r == DUO_OK && duo_wire_is_sealed(req, req_len))
        r = sealed_call(s, &c, mi, req, req_len, resp, resp_len);
    else if (r == DUO_OK && s->cfg.require_channel && mi != DUO_MSG_CHANNEL_KEY) {
        r = DUO_E_CHANNEL_REQUIRED; /* before any parsing: a plain request runs nothing */
        DETAIL(info, "%s: plain requests are refused (serve --require-channel); update the app", method_table[mi].name);
    } else if (r == DUO_OK) {
        info->plain = 1; /* a moved key's plain requests are refused (policy.h) */
        r = method_table[mi].fn(&c, req, req_len, resp, resp_len);
    }
    ks_release(s, c.ks);
    if (r == DUO_E_DECODE || r == DUO_E_BAD_FIELD || r == DUO_E_MSG_TOO_LARGE) {
        if (!info->detail[0]) DETAIL(info, "malformed %s request: %s", method_table[mi].name, duo_strerror(r));
    } else if (!info->detail[0] && (r == DUO_E_STORE || r == DUO_E_CONFLICT || r == DUO_E_IO || r == DUO_E_PERMISSION ||
                                    r == DUO_E_TIMEOUT || r == DUO_E_NOMEM)) {
        /* Without a message from the handler these come from the store (a
         * full disk, an I/O error, another process holding the database):
         * the operator gets the reason (SQLite's report just before, see
         * duo_keystore_sqlite_log_to in log.c), the citizen a retry. */
        duo__event(DUO_EV_STORE_ERROR, info, NULL, "%s: store error %s (%s)", method_table[mi].name, duo_err_name(r),
                   duo_strerror(r));
        DETAIL(info, "the signer's storage failed (%s); retry later", duo_strerror(r));
    }
    double ms = log_call(info, method_table[mi].name, r, t0, NULL);
    duo_metrics_request(mi, r, ms / 1000.0);
    return r;
}

duo_server_handler_fn duo_service_handler(void) { return dispatch; }

/* The signing rounds only: each is a few ms of CPU (SignFinish's decryption
 * and its write side by side, SignStart's deferred write) and waits on
 * nothing but the store. Enrolment rounds (hundreds of ms), the long poll
 * and anything slow keep the workers. */
uint64_t duo_service_inline_methods(void) {
    return ((uint64_t)1 << DUO_MSG_SIGN_START) | ((uint64_t)1 << DUO_MSG_SIGN_FINISH);
}

/* ------------------------------------- the RelyingParty service's dispatch */

static const struct {
    const char *name;
    duo_rpc_fn fn;
} rp_table[DUO_RP_COUNT] = {
#define DUO_RPC_ROW(index, mname, fn) [index] = {mname, fn},
    DUO_RP_METHODS(DUO_RPC_ROW)
#undef DUO_RPC_ROW
};

/* Every RelyingParty call: the TLS layer verified the client certificate
 * against the RP trust roots; here it must name a registered RP that is not
 * removed, else UNAUTHENTICATED and nothing else happens. */
static int rp_dispatch(void *app, int mi, const uint8_t *req, size_t req_len, uint8_t **resp, size_t *resp_len,
                       duo_call_info *info) {
    duo_service *s = app;
    if (mi < 0 || mi >= DUO_RP_COUNT) return DUO_E_UNSUPPORTED;
    int64_t t0 = duo__mono_us();
    next_request_id(s, info->request_id);
    duo_rp_row *caller = malloc(sizeof *caller);
    if (!caller) return DUO_E_NOMEM;
    duo_rpc c = rpc_context(s, info);
    int r = info->has_peer_cert ? duo_keystore_rp_by_cert(c.ks, info->peer_cert_sha256, caller) : DUO_E_RP_UNKNOWN;
    if (r == DUO_E_RP_UNKNOWN || r == DUO_E_UNSUPPORTED) {
        DETAIL(info, "this client certificate is not a registered relying party (duosign-cloud rp add)");
        r = DUO_E_RP_UNKNOWN;
    }
    if (r == DUO_OK) {
        c.caller = caller;
        r = rp_table[mi].fn(&c, req, req_len, resp, resp_len);
    }
    ks_release(s, c.ks);
    char who[DUO_RP_ROW_NAME_MAX + 8];
    snprintf(who, sizeof who, "rp:%s", r == DUO_E_RP_UNKNOWN ? "?" : caller->name);
    free(caller);
    (void)log_call(info, rp_table[mi].name, r, t0, who);
    return r;
}

duo_server_handler_fn duo_service_rp_handler(void) { return rp_dispatch; }

/* Appends a registered self-signed certificate (brought with rp add --cert)
 * to the PEM bundle in *data. */
static int add_brought_cb(void *data, const duo_rp_row *row) {
    char **bundle = data;
    if (row->issued || row->removed_at) return 0;
    const uint8_t *p = row->cert;
    X509 *x = d2i_X509(NULL, &p, (long)row->cert_len);
    BIO *b = BIO_new(BIO_s_mem());
    char *mem = NULL;
    long n = 0;
    int r = 0;
    if (x && b && PEM_write_bio_X509(b, x) == 1 && (n = BIO_get_mem_data(b, &mem)) > 0) {
        size_t old = *bundle ? strlen(*bundle) : 0;
        char *nb = realloc(*bundle, old + (size_t)n + 1);
        if (nb) {
            memcpy(nb + old, mem, (size_t)n);
            nb[old + (size_t)n] = '\0';
            *bundle = nb;
        } else {
            r = DUO_E_NOMEM;
        }
    }
    BIO_free(b);
    X509_free(x);
    return r;
}

int duo_service_rp_roots(duo_service *s, char **pem) {
    duo_keystore *ks = ks_acquire(s);
    int r = duo_rp_ca_cert_pem(ks, pem);
    if (r == DUO_E_NO_CA) { /* only brought certificates so far (or none) */
        *pem = NULL;
        r = DUO_OK;
    }
    if (r == DUO_OK) r = duo_keystore_rp_list(ks, add_brought_cb, pem);
    if (r == DUO_OK && *pem == NULL) r = DUO_E_NO_CA;
    if (r != DUO_OK) {
        free(*pem);
        *pem = NULL;
    }
    ks_release(s, ks);
    return r;
}

/* A call the server answered without dispatch (deadline past, queue full,
 * unknown method): its request line and count all the same. */
static void refused(void *app, int mi, const char *path, int code, const char *peer) {
    duo_service *s = app;
    char rid[DUO_CALL_ID_MAX], name[64];
    next_request_id(s, rid);
    const char *slash = path ? strrchr(path, '/') : NULL;
    snprintf(name, sizeof name, "%s", mi >= 0 && mi < DUO_MSG_COUNT ? method_table[mi].name : slash ? slash + 1 : "?");
    if (mi >= 0 && mi < DUO_MSG_COUNT) duo_metrics_request(mi, code, 0);
    duo_log_request rl = {.request_id = rid,
                          .method = name,
                          .code = code,
                          .duration_ms = 0,
                          .peer = peer,
                          .detail = code == DUO_E_UNSUPPORTED ? "unknown method"
                                    : code == DUO_E_TIMEOUT   ? "deadline exceeded before the request was handled"
                                                              : "server busy (queue full)"};
    duo_log_request_line(&rl);
}

duo_server_refused_fn duo_service_refused(void) { return refused; }

/* The metrics' method labels: the method table's names. */
static const char *method_names[DUO_MSG_COUNT];

void duo_service_metrics_methods(void) {
    for (int i = 0; i < DUO_MSG_COUNT; i++) method_names[i] = method_table[i].name;
    duo_metrics_set_methods(method_names, DUO_MSG_COUNT);
}

static int count_state_cb(void *data, const duo_key_info *ki) {
    uint64_t *keys = data;
    if (ki->state >= 0 && ki->state < DUO_METRICS_KEY_STATES) keys[ki->state]++;
    return 0;
}

/* The metrics' gauges (HTTP thread): each room under its own lock, the
 * keys by state through a store connection like a handler's. */
void duo_service_metrics_gauges(void *arg, duo_metrics_gauges *g) {
    duo_service *s = arg;
    size_t en = 0, sg = 0;
    duo__sessions_counts(s->sessions, &en, &sg);
    g->sessions_enrol = en;
    g->sessions_sign = sg;
    g->pool_ready = duo__pool_ready(s->pool);
    g->pool_target = s->cfg.prime_pool;
    duo_keystore *ks = ks_acquire(s);
    g->keys_ok = duo_keystore_key_list(ks, NULL, count_state_cb, g->keys) == DUO_OK;
    ks_release(s, ks);
}

/* ------------------------------------------------------ maintenance */

typedef struct {
    uint8_t (*ids)[DUO_KEY_ID_BYTES];
    size_t n, cap;
} idlist;

static int collect_locked_cb(void *data, const duo_key_info *ki) {
    idlist *l = data;
    if (ki->state != DUO_KEY_STATE_LOCKED || ki->locked_until > duo__now_s()) return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->ids, nc * sizeof *l->ids);
        if (!p) return 1;
        l->ids = p;
        l->cap = nc;
    }
    memcpy(l->ids[l->n++], ki->key_id, DUO_KEY_ID_BYTES);
    return 0;
}

/* A cached key may stay while its row is active or locked. */
static int still_usable_cb(void *data, const uint8_t key_id[DUO_KEY_ID_BYTES]) {
    duo_key_info ki;
    int gr = duo_keystore_key_get(data, &ki, NULL, key_id);
    return !(gr == DUO_E_NOT_FOUND || gr == DUO_E_STATE_CORRUPT || gr == DUO_E_POLICY_MAC ||
             (gr == DUO_OK && ki.state != DUO_KEY_STATE_ACTIVE && ki.state != DUO_KEY_STATE_LOCKED));
}

static void on_sweep(uv_timer_t *t) {
    duo_service *s = t->data;
    duo__sessions_sweep(s->sessions);
    duo__rp_room_sweep(s->rp);
}

/* Loop thread: lifts expired locks (audited) and deletes abandoned enrolments. */
static void on_maint(uv_timer_t *t) {
    duo_service *s = t->data;
    duo_keystore *ks = ks_acquire(s);
    idlist l = {0};
    if (duo_keystore_key_list(ks, NULL, collect_locked_cb, &l) == DUO_OK) {
        for (size_t i = 0; i < l.n; i++) {
            duo_key_info ki;
            duo_call_info dummy;
            memset(&dummy, 0, sizeof dummy);
            if (duo__policy_key_load(ks, &ki, NULL, l.ids[i], &dummy) != DUO_OK) { /* retried next period */
            }
        }
    }
    free(l.ids);
    duo__freezes_retry_all(s->freezes, ks);
    /* Key cache: wipe the keys that left the active/locked states by a path
     * that did not say so here (a freeze for a clone seen by Refresh or
     * Status, a revocation by the admin CLI in another process). */
    duo__keycache_revalidate(s->keys, still_usable_cb, ks);
    size_t n = 0;
    duo_audit_event ev = {.kind = DUO_AUDIT_ADMIN, .detail = "abandoned enrolments purged"};
    if (duo_keystore_purge_pending(ks, &n, PENDING_MAX_AGE_S, &ev) != DUO_OK) { /* retried next period */
    }
    /* Presentation codes: kept CODE_KEEP_S past their expiry so a late try
     * gets "expired" or "used" rather than "unknown", then deleted. */
    if (duo_keystore_code_purge(ks, &n, duo__now_s() - CODE_KEEP_S) != DUO_OK) { /* retried next period */
    }
    /* Signing sessions of a shared store, long expired (every node purges;
     * the DELETE is idempotent). */
    if (duo_keystore_sign_sessions_shared(ks) && duo_keystore_sign_session_purge(ks, NULL) != DUO_OK) {
        /* retried next period */
    }
    ks_release(s, ks);
}

/* ------------------------------------------------------- lifecycle */

static int check_descriptor(char *err, size_t cap) {
    const ProtobufCServiceDescriptor *d = &duosign__v1__duo_sign__descriptor;
    if (d->n_methods != DUO_MSG_COUNT) goto bad;
    for (unsigned i = 0; i < d->n_methods; i++)
        if (method_table[i].name == NULL || strcmp(d->methods[i].name, method_table[i].name) != 0) goto bad;
    const ProtobufCServiceDescriptor *rd = &duosign__v1__relying_party__descriptor;
    if (rd->n_methods != DUO_RP_COUNT) goto bad;
    for (unsigned i = 0; i < rd->n_methods; i++)
        if (rp_table[i].name == NULL || strcmp(rd->methods[i].name, rp_table[i].name) != 0) goto bad;
    return DUO_OK;
bad:
    snprintf(err, cap, "internal: a service descriptor (DuoSign, RelyingParty) does not match its handler table");
    return DUO_E_INTERNAL;
}

/* The RP requests' clock: the wall clock, plus, for tests only, the offset
 * in seconds written in the file $DUOSIGN_TEST_CLOCK_FILE names (read at
 * every call), so a test moves time forward without sleeping. */
static const char *test_clock_file;

static int64_t rp_clock(void) {
    int64_t now = duo__now_s();
    if (test_clock_file) {
        FILE *f = fopen(test_clock_file, "r");
        long long off = 0;
        if (f) {
            if (fscanf(f, "%lld", &off) != 1) off = 0;
            fclose(f);
        }
        now += off;
    }
    return now;
}

int duo_service_new(duo_service **out, char *err, size_t cap, const duo_service_config *cfg) {
    *out = NULL;
    int r = check_descriptor(err, cap);
    if (r != DUO_OK) return r;
    if (!duo_paillier_bits_supported(cfg->paillier_bits)) {
        snprintf(err, cap, "unsupported Paillier size %u (use 3072 or 2048)", cfg->paillier_bits);
        return DUO_E_INVALID_ARG;
    }
    duo_service *s = calloc(1, sizeof *s);
    if (!s) return DUO_E_NOMEM;
    s->cfg = *cfg;
    snprintf(s->data_dir, sizeof s->data_dir, "%s", cfg->data_dir);
    s->cfg.data_dir = s->data_dir;
    if (s->cfg.session_ttl_s == 0) s->cfg.session_ttl_s = 60;
    if (s->cfg.prime_pool > DUO_POOL_MAX) s->cfg.prime_pool = DUO_POOL_MAX;
    if (s->cfg.prime_pool == 0) s->cfg.prime_pool = 1; /* keys are made only in the pool */
    s->loop = cfg->loop;
    if (duo_rng_bytes(NULL, (uint8_t *)&s->rid_prefix, sizeof s->rid_prefix) != DUO_OK) s->rid_prefix = 0;
    pthread_mutex_init(&s->ks_mu, NULL);
    pthread_mutex_init(&s->write_mu, NULL);
    pthread_cond_init(&s->ks_cv, NULL);
    if (s->cfg.curves == 0) s->cfg.curves = DUO_CURVES_ALL;
    for (int cv = 1; cv < DUO_CURVE_COUNT; cv++) {
        if ((r = duo_ec_new(&s->ec[cv], (duo_curve)cv, NULL)) != DUO_OK) {
            snprintf(err, cap, "cannot create the %s curve context: %s", duo_curve_name((duo_curve)cv),
                     duo_strerror(r));
            goto fail;
        }
    }
    if ((r = duo__sessions_new(&s->sessions, s->cfg.session_ttl_s, s->cfg.max_sessions, s->cfg.max_enrol_per_peer)) !=
            DUO_OK ||
        (r = duo__keycache_new(&s->keys, (const duo_ec *const *)s->ec)) != DUO_OK ||
        (r = duo__freezes_new(&s->freezes)) != DUO_OK ||
        (r = duo__channels_new(&s->channels, s->cfg.max_sessions ? s->cfg.max_sessions : 10000,
                               s->cfg.session_ttl_s)) != DUO_OK)
        goto fail;
    test_clock_file = getenv("DUOSIGN_TEST_CLOCK_FILE");
    if ((r = duo__rp_room_new(&s->rp, rp_clock, cfg->rp_ttl_s, cfg->rp_result_ttl_s, cfg->rp_max_per_rp,
                              cfg->rp_max_per_citizen)) != DUO_OK ||
        (r = duo__redeem_limit_new(&s->redeem, NULL)) != DUO_OK)
        goto fail;
    /* The inner channel's keys; a data directory made before the channel
     * gets its first key here (init makes it for new ones). */
    if ((r = duo__chkeys_load(&s->chkeys, err, cap, cfg->data_dir, 1)) != DUO_OK) goto fail;
    /* One store connection per handler thread, plus one for the loop thread
     * (maintenance timer): a handler takes a connection for its whole call
     * and never waits for one, so the heavy crypto of different keys
     * (Paillier decryption in SignFinish, PDL decryption, proofs and prime
     * generation in enrolment) runs in parallel on all cores; ks_mu only
     * guards the free list. SQLite serialises the writers (BEGIN IMMEDIATE,
     * busy timeout) and WAL lets the readers run beside them. This needs the
     * store fix of 8274b1d (the SQLite driver's open no longer open()s and
     * close()s an existing database file, which dropped this process's POSIX
     * locks and let another process delete the WAL under us; regression test:
     * tests/integration/store/test_store_connections.c). */
    s->n_ks = (cfg->workers > 0 ? cfg->workers : 4) + 1;
    s->ks_all = calloc(s->n_ks, sizeof *s->ks_all);
    s->ks_free = calloc(s->n_ks, sizeof *s->ks_free);
    if (!s->ks_all || !s->ks_free) {
        r = DUO_E_NOMEM;
        goto fail;
    }
    for (size_t i = 0; i < s->n_ks; i++) {
        duo_keystore *ks;
        if ((r = duo_datadir_open_store(&ks, err, cap, cfg->data_dir, 0, &s->write_mu, (int)cfg->store_busy_ms)) !=
            DUO_OK)
            goto fail;
        s->ks_all[i] = ks;
        s->ks_free[s->n_free++] = ks;
    }
    /* A damaged page in the tables behind replay and clone decisions would
     * otherwise go unnoticed until it decided wrongly: refuse to serve it. */
    {
        char why[256];
        if ((r = duo_keystore_integrity_check(s->ks_all[0], 0, why, sizeof why)) != DUO_OK) {
            snprintf(err, cap,
                     "the key database in %s failed SQLite's integrity check (%s); the daemon does not serve a "
                     "damaged store: restore it from a backup (then 'duosign-cloud audit verify')",
                     cfg->data_dir, why[0] ? why : duo_strerror(r));
            goto fail;
        }
    }
    /* One side thread per handler thread (overlap.h); without them the
     * write runs before the decryption, which is only slower. */
    if (duo_overlap_new(&s->overlap, (unsigned)(s->n_ks - 1)) != DUO_OK) s->overlap = NULL;
    if ((r = duo__pool_new(&s->pool, s->loop, s->cfg.paillier_bits, s->cfg.prime_pool)) != DUO_OK) goto fail;
    uv_timer_init(s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_init(s->loop, &s->maint_timer);
    s->maint_timer.data = s;
    s->handles_open = 1;
    uv_timer_start(&s->sweep_timer, on_sweep, 1000, 1000);
    uv_timer_start(&s->maint_timer, on_maint, 1000, MAINT_PERIOD_MS);
    duo__pool_start(s->pool);
    *out = s;
    return DUO_OK;
fail:
    duo_service_free(s);
    return r;
}

void duo_service_stop(duo_service *s) {
    if (!s || !s->handles_open) return;
    duo__pool_stop(s->pool);
    s->handles_open = 0;
    uv_timer_stop(&s->sweep_timer);
    uv_timer_stop(&s->maint_timer);
    uv_close((uv_handle_t *)&s->sweep_timer, NULL);
    uv_close((uv_handle_t *)&s->maint_timer, NULL);
}

void duo_service_free(duo_service *s) {
    if (!s) return;
    duo__sessions_free(s->sessions); /* sessions drop their key references first */
    duo__keycache_free(s->keys);
    duo__freezes_free(s->freezes);
    duo__rp_room_free(s->rp);
    duo__redeem_limit_free(s->redeem);
    duo__channels_free(s->channels);
    duo__chkeys_clear(&s->chkeys);
    duo_overlap_free(s->overlap);
    duo__pool_free(s->pool);
    if (s->ks_all)
        for (size_t i = 0; i < s->n_ks; i++) duo_keystore_free(s->ks_all[i]);
    free(s->ks_all);
    free(s->ks_free);
    for (int cv = 0; cv < DUO_CURVE_COUNT; cv++) duo_ec_free(s->ec[cv]);
    pthread_mutex_destroy(&s->ks_mu);
    pthread_mutex_destroy(&s->write_mu);
    pthread_cond_destroy(&s->ks_cv);
    free(s);
}
