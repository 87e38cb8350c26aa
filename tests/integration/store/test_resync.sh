#!/usr/bin/env bash
# The one-time resynchronisation after a restore (issue 20 item 5,
# docs/SECURITY.md 1.10), with the real duosign-cloud and duosign binaries:
#  1. Four citizens enrol; a backup is taken; each signs (their device
#     secrets rotate past the backup), C twice; copies of two states are kept.
#  2. Daemon stopped, `restore` of the backup, daemon started: every citizen
#     signs again (the CLI resynchronises by itself, says so, retries once;
#     for C it is change-pin that does, with the old PIN),
#     each signature verifies with OpenSSL; the audit has store.restore and
#     one secret.resync per key.
#  3. A copy of A's state taken before the restore, used after A resynced
#     and signed twice: caught as a clone (exit 7, key frozen).
#  4. A second resync of C in the epoch, from a copy holding an older secret
#     the restored store never saw: refused (exit 28, DUO_E_RESYNC_USED),
#     audited resync.refused; that copy's sign: DUO_E_RESYNC_USED too;
#     `duosign resync` of C itself: already in sync.
#  5. D resyncs with a wrong PIN: counted as a wrong PIN (exit 4), the third
#     locks the key (the message says until when); nothing adopted; the right
#     PIN during the lock: exit 5.
#  6. Each field of B's Resync request altered on the way (test hook
#     DUOSIGN_TEST_RESYNC_TAMPER of the device library): key id, nonce,
#     epoch, secret, proof, MAC after the MAC -> DUO_E_RESYNC_MAC; the
#     secret one byte short -> DUO_E_BAD_FIELD; another epoch (re-MACed) ->
#     DUO_E_RESYNC_EPOCH; another key id (re-MACed) -> DUO_E_NOT_FOUND; the
#     key rows byte for byte unchanged after each; then B resyncs for real.
#  8. A resync reopened by hand with the sqlite3 shell fails the row's policy
#     MAC (check: exit 15).
#  7. The user's mistakes: resync without --state (exit 2), with a missing
#     state (exit 3); a key never restored: DUO_E_RESYNC_NOT_OPEN (exit 28).
# Usage: test_resync.sh /path/to/duosign-cloud /path/to/duosign
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:?duosign}
BITS=2048
T=$(mktemp -d /tmp/duo-resync-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() { stop_daemon; [ -n "${DUO_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
D="$T/data"
"$CLOUD" init --data "$D" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
start_daemon "$D" --paillier-bits "$BITS" || exit 1
PORT=${ADDR##*:}   # the restarted daemon listens where the states point
CA="$D/ca.pem"
printf '2468\n' >"$T/pin"; printf '1111\n' >"$T/badpin"; printf '97531\n' >"$T/pin2"
head -c 3000 /dev/urandom >"$T/doc"
rows() { sqlite3 "$D/keys.db" "SELECT hex(key_id), state, pin_failures, locked_until, version, secret_version,
  resync_epoch, resync_used, hex(policy_mac), hex(secret_cur_sealed), hex(secret_pend_sealed) FROM keys ORDER BY key_id;
  SELECT count(*) FROM retired_secrets;"; }
keyid() { "$CLOUD" key list --data "$D" --citizen "$1" 2>/dev/null | grep -o '[0-9a-f]\{32\}' | head -1; }

echo "== 7a. mistakes"
run 2 "resync without --state" -- "$DUOSIGN" resync --pin-file "$T/pin"
run 3 "resync of a missing state file" -- "$DUOSIGN" resync --state "$T/nope" --pin-file "$T/pin"

echo "== 1. enrol, back up, sign on"
for c in A B C D; do
  run 0 "enrol $c" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$(token "RS$c")" --state "$T/$c" \
      --pin-file "$T/pin" --paillier-bits "$BITS"
done
run 0 "resync before any restore: already in sync" -- "$DUOSIGN" resync --state "$T/A" --pin-file "$T/pin"
grep -q 'already in sync' "$T/out" && ok "says already in sync" || bad "output: $(cat "$T/out")"
before=$(rows)
DUOSIGN_TEST_RESYNC_FORCE=1 DUOSIGN_TEST_RESYNC_TAMPER=secret \
  run 28 "a Resync with an unknown secret, no restore: none open" -- "$DUOSIGN" resync --state "$T/A" --pin-file "$T/badpin"
grep -q 'DUO_E_RESYNC_NOT_OPEN' "$T/err" && ok "names DUO_E_RESYNC_NOT_OPEN" || bad "message: $(cat "$T/err")"
[ "$(rows)" = "$before" ] && ok "nothing counted, key rows unchanged" || bad "key rows changed"
run 0 "backup" -- "$CLOUD" backup --data "$D" --out "$T/backup.db"
# One signature rotates a device's secret past the backup.
for c in A B C D; do resync_sign_ok "$c" "$T/$c"; done
cp "$T/C" "$T/C.old"   # C's secret after one signature: never in the restored store
resync_sign_ok C "$T/C"
cp "$T/A" "$T/A.copy"  # the same secret as A: a copy of the device
stop_daemon

echo "== 2. restore, every citizen signs again"
run 0 "restore" -- "$CLOUD" restore --data "$D" --in "$T/backup.db"
start_daemon "$D" --paillier-bits "$BITS" || exit 1
[ "$(sqlite3 "$D/keys.db" "SELECT count(*) FROM keys WHERE resync_epoch = 1")" = 4 ] &&
  ok "restore opened one resync per key (epoch 1)" || bad "resync_epoch: $(rows)"
run 4 "D: a resync with a wrong PIN is a wrong PIN" -- "$DUOSIGN" resync --state "$T/D" --pin-file "$T/badpin"
run 4 "D: the second wrong PIN too" -- "$DUOSIGN" resync --state "$T/D" --pin-file "$T/badpin"
[ "$(sqlite3 "$D/keys.db" "SELECT pin_failures, resync_epoch FROM keys WHERE hex(key_id) = upper('$(keyid RSD)')")" = "2|1" ] &&
  ok "D: two PIN failures counted, the resync still open" || bad "D row: $(rows)"
run 4 "D: the third wrong PIN" -- "$DUOSIGN" resync --state "$T/D" --pin-file "$T/badpin"
grep -q 'locked until' "$T/err" && ok "D: it locks the key" || bad "message: $(cat "$T/err")"
[ "$(sqlite3 "$D/keys.db" "SELECT state, resync_epoch FROM keys WHERE hex(key_id) = upper('$(keyid RSD)')")" = "locked|1" ] &&
  ok "D: locked, nothing adopted" || bad "D row: $(rows)"
run 5 "D: a resync with the right PIN while locked" -- "$DUOSIGN" resync --state "$T/D" --pin-file "$T/pin"

echo "== 6. B's Resync altered on the way"
before=$(rows)
tamper() { # tamper MODE EXIT NAME
  DUOSIGN_TEST_RESYNC_TAMPER=$1 run "$2" "B: $1 altered -> $3" -- "$DUOSIGN" resync --state "$T/B" --pin-file "$T/pin"
  grep -q "$3" "$T/err" && ok "names $3" || bad "message: $(cat "$T/err")"
  [ "$(rows)" = "$before" ] && ok "key rows unchanged" || bad "key rows changed after $1"
}
for f in key_id_after nonce_after epoch_after secret_after proof_after mac_after; do tamper $f 28 DUO_E_RESYNC_MAC; done
tamper secret_len 1 DUO_E_BAD_FIELD
tamper epoch 28 DUO_E_RESYNC_EPOCH
tamper key_id 1 DUO_E_NOT_FOUND
resync_sign_ok B "$T/B" resync

resync_sign_ok A "$T/A" resync
resync_sign_ok A "$T/A"
run 0 "C: change-pin resynchronises by itself (with the old PIN)" -- \
    "$DUOSIGN" change-pin --state "$T/C" --pin-file "$T/pin" --new-pin-file "$T/pin2"
grep -q 'resynchronised' "$T/err" && ok "C: the CLI says it resynchronised" || bad "C: no resync line: $(cat "$T/err")"
PINF="$T/pin2" resync_sign_ok C "$T/C"

echo "== 3. a copy of A's device"
run 7 "the copy of A is caught as a clone" -- "$DUOSIGN" sign --state "$T/A.copy" --in "$T/doc" --out "$T/sig.x" --pin-file "$T/pin"
[ "$(sqlite3 "$D/keys.db" "SELECT state FROM keys WHERE hex(key_id) = upper('$(keyid RSA)')")" = suspended ] &&
  ok "A's key is frozen" || bad "A row: $(rows)"

echo "== 4. a second resync of C"
run 28 "C: a second resync (an older secret) is refused" -- "$DUOSIGN" resync --state "$T/C.old" --pin-file "$T/pin"
grep -q 'DUO_E_RESYNC_USED' "$T/err" && ok "names DUO_E_RESYNC_USED" || bad "message: $(cat "$T/err")"
run 28 "C: that copy's sign is refused the same way" -- "$DUOSIGN" sign --state "$T/C.old" --in "$T/doc" --out "$T/sig.x" --pin-file "$T/pin"
run 0 "C: resync of the resynchronised device: nothing to do" -- "$DUOSIGN" resync --state "$T/C" --pin-file "$T/pin2"
grep -q 'already in sync' "$T/out" && ok "says already in sync" || bad "output: $(cat "$T/out")"
PINF="$T/pin2" resync_sign_ok C "$T/C"
stop_daemon

echo "== audit"
"$CLOUD" audit list --data "$D" >"$T/audit" 2>&1
grep -q 'store.restore' "$T/audit" && ok "audit: store.restore" || bad "no store.restore"
for c in A B C; do
  k=$(keyid "RS$c")
  [ "$(grep 'secret.resync' "$T/audit" | grep -c "$k")" = 1 ] && ok "audit: one secret.resync for $c" ||
    bad "secret.resync for $c: $(grep secret.resync "$T/audit")"
done
grep 'secret.resync' "$T/audit" | grep -q "$(keyid RSD)" && bad "D was resynchronised" || ok "no secret.resync for D"
grep 'resync.refused' "$T/audit" | grep -q "$(keyid RSC)" && ok "audit: resync.refused for C" || bad "no resync.refused"
grep 'clone' "$T/audit" | grep -q "$(keyid RSA)" && ok "audit: the clone of A" || bad "no clone entry for A"
run 0 "the audit chain verifies" -- "$CLOUD" audit verify --data "$D"

echo "== the resync fields are under the policy MAC"
sqlite3 "$D/keys.db" "UPDATE keys SET resync_epoch = 1, resync_used = 0 WHERE hex(key_id) = upper('$(keyid RSC)')" &&
  ok "C's resync opened again with the sqlite3 shell" || bad "sqlite3 edit"
run 15 "check refuses the edited row (a key store error)" -- "$CLOUD" check --data "$D"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
