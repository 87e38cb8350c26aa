/* duosign-cloud: the inner channel's static keys (issue 12; docs/PROTOCOL.md
 * "Inner channel", docs/SECURITY.md "Channel key rotation").
 *
 * DIR/channel.keys lists the cloud's X25519 channel keys, one a line:
 *     NUMBER PUBLIC-HEX SEALED-PRIVATE-HEX
 * the private half sealed under the data directory's KEK (seal.h; AAD key id
 * DUO_CHKEY_SEAL_ID, column "channel_key", version NUMBER). The last line is
 * the current key: ChannelKey answers it and a device that sealed to an
 * older one is told (Sealed.rekey) to fetch it. Older keys stay usable until
 * `duosign-cloud channel-key retire`; numbers only grow. The file is
 * replaced atomically (temporary, fsync, rename).
 * Thread-safety: a loaded duo_chkeys is read-only and shared. */
#ifndef DUOSIGN_CLOUD_CHKEYS_H
#define DUOSIGN_CLOUD_CHKEYS_H

#include <stddef.h>
#include <stdint.h>

#include "duosign/inner_channel.h"

#define DUO_FILE_CHKEYS "channel.keys"
#define DUO_CHKEY_SEAL_ID "duosign.channel-key"
#define DUO_CHKEYS_MAX 16

typedef struct duo_chkeys {
    size_t n;
    duo_ch_static keys[DUO_CHKEYS_MAX]; /* SECRET (priv): wipe with duo__chkeys_clear */
} duo_chkeys;

/* Loads DIR/channel.keys, opening each private key with the data
 * directory's KEK. create: make the file with key 1 when it does not exist
 * (init, and serve on a data directory made before the channel).
 * Returns: DUO_OK; DUO_E_IO (missing, unreadable); DUO_E_STATE_CORRUPT (a line
 *          that does not parse, a key that does not open or whose public half
 *          differs); the KEK's errors; with err. */
int duo__chkeys_load(duo_chkeys *out, char *err, size_t cap, const char *dir, int create);

/* Appends a new key (number = last + 1), which becomes current.
 * Returns as duo__chkeys_load; DUO_E_EXISTS when DUO_CHKEYS_MAX keys are kept
 * (retire one first). Out: *number. */
int duo__chkeys_rotate(uint32_t *number, char *err, size_t cap, const char *dir);

/* Removes key `number` (never the current one: DUO_E_INVALID_ARG; not
 * there: DUO_E_NOT_FOUND). Devices pinned to it get
 * DUO_E_CHANNEL_STATIC_KEY afterwards. */
int duo__chkeys_retire(uint32_t number, char *err, size_t cap, const char *dir);

/* After `kek rotate` (also a resumed one): re-seals DIR/channel.keys under
 * the current KEK, opening it with the current, next or old (the rotation's
 * previous) KEK. No file: DUO_OK. Returns as duo__chkeys_load. */
struct duo_kek_slot;
int duo__chkeys_reseal(char *err, size_t cap, const char *dir, const struct duo_kek_slot *old);

/* The key with this number, or NULL. */
const duo_ch_static *duo__chkeys_find(const duo_chkeys *k, uint32_t number);
/* The current (last) key, or NULL when none is loaded. */
const duo_ch_static *duo__chkeys_current(const duo_chkeys *k);
void duo__chkeys_clear(duo_chkeys *k);

/* chkeys_cmd.c: "duosign-cloud channel-key list|rotate|retire N". */
int duo__cmd_channel_key(int argc, char **argv);

#endif
