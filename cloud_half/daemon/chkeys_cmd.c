/* duosign-cloud channel-key: the inner channel's keys (chkeys.h).
 *
 *   duosign-cloud channel-key list   --data DIR
 *   duosign-cloud channel-key rotate --data DIR
 *   duosign-cloud channel-key retire N --data DIR
 *
 * A running daemon reads DIR/channel.keys when it starts: restart it after
 * rotate or retire (docs/SECURITY.md, "Channel key rotation"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chkeys.h"
#include "daemon.h"
#include "duosign/channel_fp.h"

#define PROG "duosign-cloud channel-key"

static const char *usage_text =
    "usage: duosign-cloud channel-key list --data DIR\n"
    "       duosign-cloud channel-key rotate --data DIR\n"
    "       duosign-cloud channel-key retire N --data DIR\n\n"
    "list    the inner channel's X25519 keys (number, public key, the fingerprint that\n"
    "        'token issue' puts in enrolment tokens); the last is current.\n"
    "rotate  adds a new current key. Devices pinned to an older key keep working and\n"
    "        move to the new one on their next call (the cloud tells them to).\n"
    "retire  removes an old key: devices still pinned to it must re-pin (their next\n"
    "        call fails with 'the cloud does not hold the channel key this device pinned').\n"
    "The daemon reads the keys when it starts: restart it after rotate or retire.\n";

static int list(const char *dir) {
    duo_chkeys k;
    char err[DUO_ERRMSG_MAX] = "";
    int r = duo__chkeys_load(&k, err, sizeof err, dir, 0);
    if (r != DUO_OK) return duo__fail("%s", err[0] ? err : duo_strerror(r));
    for (size_t i = 0; i < k.n; i++) {
        char hex[2 * DUO_CH_PUB_BYTES + 1], fp[DUO_CH_FP_HEX + 1];
        duo__hex(hex, k.keys[i].pub, DUO_CH_PUB_BYTES);
        if ((r = duo_ch_fingerprint_hex(fp, k.keys[i].pub)) != DUO_OK) break;
        printf("%u %s fingerprint %s%s\n", (unsigned)k.keys[i].id, hex, fp, i + 1 == k.n ? " current" : "");
    }
    duo__chkeys_clear(&k);
    return r == DUO_OK ? DUO_EXIT_OK : duo__fail("%s", duo_strerror(r));
}

int duo__cmd_channel_key(int argc, char **argv) {
    const char *dir = NULL, *num = NULL, *v;
    if (argc < 2 || duo__is_help(argv[1])) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    const char *sub = argv[1];
    char cmd[48];
    snprintf(cmd, sizeof cmd, "channel-key %s", sub);
    if (strcmp(sub, "list") != 0 && strcmp(sub, "rotate") != 0 && strcmp(sub, "retire") != 0) {
        fprintf(stderr, PROG ": unknown subcommand '%s' (list, rotate or retire; try --help)\n", sub);
        return DUO_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            fputs(usage_text, stdout);
            return DUO_EXIT_OK;
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            dir = v;
        } else if (strcmp(sub, "retire") == 0 && num == NULL && argv[i][0] != '-') {
            num = argv[i];
        } else {
            duo__unknown_arg(cmd, argv[i]);
        }
    }
    duo__need(cmd, "--data DIR", dir);
    if (strcmp(sub, "list") == 0) return list(dir);
    char err[DUO_ERRMSG_MAX] = "";
    int r;
    if (strcmp(sub, "rotate") == 0) {
        uint32_t n = 0;
        if ((r = duo__chkeys_rotate(&n, err, sizeof err, dir)) != DUO_OK)
            return duo__fail("%s", err[0] ? err : duo_strerror(r));
        printf("channel key %u is current; restart the daemon to serve it\n", (unsigned)n);
        return DUO_EXIT_OK;
    }
    char *end = NULL;
    unsigned long n = num ? strtoul(num, &end, 10) : 0;
    if (!num || *end || n == 0 || n > UINT32_MAX) {
        fprintf(stderr, PROG " retire: give the key's number (see 'channel-key list')\n");
        return DUO_EXIT_USAGE;
    }
    if ((r = duo__chkeys_retire((uint32_t)n, err, sizeof err, dir)) != DUO_OK)
        return duo__fail("%s", err[0] ? err : duo_strerror(r));
    printf("channel key %lu retired; restart the daemon\n", n);
    return DUO_EXIT_OK;
}
