/* duosign-cloud: security events, each one log line and one counter
 * (events.h). */
#include "events.h"

#include <stdarg.h>
#include <stdio.h>

#include "metrics.h"

static const struct {
    const char *name, *metric, *help;
    duo_log_level lvl;
} table[DUO_EV_COUNT] = {
#define DUO_EV_ROW(e, n, mname, l, h) [e] = {n, mname, h, l},
    DUO_OPS_EVENTS(DUO_EV_ROW)
#undef DUO_EV_ROW
};

void duo__event(duo_ops_event ev, const duo_call_info *info, const uint8_t *key_id, const char *fmt, ...) {
    if ((unsigned)ev >= DUO_EV_COUNT) return;
    duo_metrics_event(ev);
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!key_id && info && info->has_key_id) key_id = info->key_id;
    duo_log_event(table[ev].lvl, table[ev].name, info && info->request_id[0] ? info->request_id : NULL, key_id, "%s",
                  msg);
}

const char *duo__event_metric(duo_ops_event ev) { return table[ev].metric; }
const char *duo__event_help(duo_ops_event ev) { return table[ev].help; }
