/* duosign-cloud: security events, each one log line and one counter.
 *
 * DUO_OPS_EVENTS(X) lists them once: X(ENUM, "log event name",
 * "metric name", level, "metric help"). policy.c, rpc_*.c and service.c
 * call duo__event() where the event is decided (after its store write,
 * if any). The audit log in the store remains the record; this is what an
 * operator watches. */
#ifndef DUOSIGN_CLOUD_EVENTS_H
#define DUOSIGN_CLOUD_EVENTS_H

#include <stdint.h>

#include "log.h"
#include "server.h"

#define DUO_OPS_EVENTS(X)                                                                                         \
    X(DUO_EV_PIN_WRONG, "pin.wrong", "duosign_pin_failures_total", DUO_LOG_WARN, "Wrong PINs")                    \
    X(DUO_EV_PIN_LOCKOUT, "pin.lockout", "duosign_pin_lockouts_total", DUO_LOG_WARN, "Keys locked by wrong PINs") \
    X(DUO_EV_CLONE, "key.clone", "duosign_clones_total", DUO_LOG_ERROR, "Clones detected (key frozen)")           \
    X(DUO_EV_ATTACK, "key.attack", "duosign_attacks_total", DUO_LOG_ERROR,                                        \
      "Devices that sent inconsistent protocol values (key frozen or enrolment aborted)")                         \
    X(DUO_EV_REVOKED, "key.revoked", "duosign_revocations_total", DUO_LOG_WARN,                                   \
      "Keys revoked (by code, by the device, by wrong PINs)")                                                     \
    X(DUO_EV_REPLAY, "request.replay", "duosign_replays_total", DUO_LOG_WARN, "Replayed requests refused")        \
    X(DUO_EV_STORE_ERROR, "store.error", "duosign_store_errors_total", DUO_LOG_ERROR,                             \
      "Requests that failed in the key store")                                                                    \
    X(DUO_EV_POLICY_MAC, "key.policy_mac", "duosign_policy_mac_failures_total", DUO_LOG_ERROR,                    \
      "Key rows refused because their policy fields fail their MAC (edited outside duosign)")

typedef enum {
#define DUO_EV_ENUM(e, name, metric, lvl, help) e,
    DUO_OPS_EVENTS(DUO_EV_ENUM)
#undef DUO_EV_ENUM
        DUO_EV_COUNT
} duo_ops_event;

/* Logs the event (with the call's request id and key when info is given)
 * and counts it (metrics.h). key_id may be NULL; fmt says what happened,
 * never with a secret. Thread-safe. */
void duo__event(duo_ops_event ev, const duo_call_info *info, const uint8_t *key_id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The event's metric name and help (metrics.c). */
const char *duo__event_metric(duo_ops_event ev);
const char *duo__event_help(duo_ops_event ev);

#endif
