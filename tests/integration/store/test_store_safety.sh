#!/usr/bin/env bash
# Rollback, integrity, backup and restore (issue 20, items 4-5), with the real
# duosign-cloud binary:
#  1. The operator's mistakes: check/backup/restore without --data, --out,
#     --in; backup onto an existing file; restore of a file that is not a
#     store, of a missing file, while the daemon serves: clear message, exit
#     code from the error table, the store unchanged.
#  2. A store older than its high-water mark (an older keys.db copied in) is
#     refused by serve and by the admin commands (exit 18, message naming
#     restore); check says so.
#  3. A truncated WAL (the daemon killed -9 while its last commits are only
#     in the -wal, whose tail is then cut) is refused at start.
#  4. backup while the daemon serves; restore (daemon stopped) installs it,
#     audits store.restore with a new epoch, keeps the old keys.db aside,
#     moves the mark: serve starts, check passes, the chain verifies.
#  5. (with the duosign CLI) an enrolled citizen with a wrong PIN counted;
#     pin_failures set back to 0 with the sqlite3 shell while the daemon
#     serves: the citizen's next sign is refused (exit 15: an error at the
#     service), the daemon logs key.policy_mac, the audit has key.policy_mac
#     for that key, and the row is left as the shell wrote it.
# Usage: test_store_safety.sh /path/to/duosign-cloud [/path/to/duosign]
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:-}
T=$(mktemp -d /tmp/duo-storesafety-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() { stop_daemon; [ -n "${DUO_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
D="$T/data"
"$CLOUD" init --data "$D" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
tokens() { for _ in $(seq 1 "$1"); do "$CLOUD" token issue --data "$D" --citizen EE1 >/dev/null 2>&1 || bad "token issue"; done; }
dbsum() { sha256sum "$D/keys.db" | cut -c1-64; }
tokens 2

echo "== 1. mistakes"
run 2 "check without --data" -- "$CLOUD" check
run 2 "backup without --out" -- "$CLOUD" backup --data "$D"
run 2 "backup without --data" -- "$CLOUD" backup --out "$T/x.db"
run 2 "restore without --in" -- "$CLOUD" restore --data "$D"
run 2 "restore with an unknown option" -- "$CLOUD" restore --data "$D" --in "$T/x.db" --force
run 1 "check of a missing data directory" -- "$CLOUD" check --data "$T/nope"
grep -q 'does not exist' "$T/err" && ok "names the missing directory" || bad "message: $(cat "$T/err")"
run 0 "check of a good store" -- "$CLOUD" check --data "$D"
grep -q 'high-water mark: ok' "$T/out" && ok "check reports the mark" || bad "check output: $(cat "$T/out")"
run 0 "backup" -- "$CLOUD" backup --data "$D" --out "$T/b0.db"
run 1 "backup onto an existing file" -- "$CLOUD" backup --data "$D" --out "$T/b0.db"
grep -q 'never overwrites' "$T/err" && ok "says it never overwrites" || bad "message: $(cat "$T/err")"
before=$(dbsum)
head -c 8192 /dev/urandom >"$T/junk.db"
run 15 "restore of a file that is not a store (store error)" -- "$CLOUD" restore --data "$D" --in "$T/junk.db"
grep -q 'not a duosign key store' "$T/err" && ok "says it is not a store" || bad "message: $(cat "$T/err")"
run 1 "restore of a missing file" -- "$CLOUD" restore --data "$D" --in "$T/missing.db"
[ "$(dbsum)" = "$before" ] && ok "store unchanged by the refused restores" || bad "store changed"
[ ! -e "$D/keys.db.restoring" ] && ok "no staged copy left" || bad "staged copy left"
start_daemon "$D" --insecure || exit 1
run 1 "restore while the daemon serves" -- "$CLOUD" restore --data "$D" --in "$T/b0.db"
grep -q 'stop it first' "$T/err" && ok "says to stop the daemon" || bad "message: $(cat "$T/err")"
echo "== 4a. backup while serving"
tokens 3
run 0 "backup while the daemon serves" -- "$CLOUD" backup --data "$D" --out "$T/b1.db"
[ "$(stat -c %a "$T/b1.db")" = 600 ] && ok "backup is 0600" || bad "backup mode $(stat -c %a "$T/b1.db")"
tokens 2
stop_daemon

echo "== 2. a store older than the mark"
cp "$D/keys.db" "$T/newest.db"
cp "$T/b1.db" "$D/keys.db"; rm -f "$D/keys.db-wal" "$D/keys.db-shm"
"$CLOUD" serve --data "$D" --listen 127.0.0.1:0 --insecure >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 18 ] && ok "serve refuses an old store (exit 18)" || bad "serve exit $rc: $(cat "$T/err")"
grep -q 'OLDER than its high-water mark' "$T/err" && grep -q 'duosign-cloud restore' "$T/err" &&
  ok "message names the fix" || bad "message: $(cat "$T/err")"
run 18 "token issue refuses it too" -- "$CLOUD" token issue --data "$D" --citizen EE1
run 18 "check reports it" -- "$CLOUD" check --data "$D"
cp "$T/newest.db" "$D/keys.db"
run 0 "the newest keys.db put back: accepted" -- "$CLOUD" check --data "$D"

echo "== 3. a truncated WAL"
start_daemon "$D" --insecure || exit 1
tokens 3
kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=
wal=$(stat -c %s "$D/keys.db-wal" 2>/dev/null || echo 0)
if [ "$wal" -gt 8240 ]; then
  truncate -s $((wal - 4120)) "$D/keys.db-wal"
  "$CLOUD" serve --data "$D" --listen 127.0.0.1:0 --insecure >"$T/out" 2>"$T/err"
  rc=$?
  [ $rc -eq 18 ] && ok "serve refuses the store with its WAL cut (exit 18)" || bad "serve exit $rc: $(cat "$T/err")"
else
  bad "no WAL to truncate ($wal bytes)"
fi

echo "== 4b. restore"
b1sum=$(sha256sum "$T/b1.db")
run 0 "restore the backup" -- "$CLOUD" restore --data "$D" --in "$T/b1.db"
grep -q 'epoch 1' "$T/out" && ok "new epoch 1" || bad "output: $(cat "$T/out")"
ls "$D"/keys.db.before-restore-* >/dev/null 2>&1 && ok "old keys.db kept aside" || bad "old keys.db not kept"
run 0 "check after restore" -- "$CLOUD" check --data "$D"
run 0 "audit verify after restore" -- "$CLOUD" audit verify --data "$D"
"$CLOUD" audit list --data "$D" >"$T/audit" 2>&1
grep 'store.restore' "$T/audit" | grep -q 'epoch 1' && ok "audit records the restore" || bad "audit: $(tail -3 "$T/audit")"
start_daemon "$D" --insecure && ok "serve starts on the restored store" || bad "serve after restore"
tokens 1
stop_daemon
run 0 "a second restore" -- "$CLOUD" restore --data "$D" --in "$T/b0.db"
grep -q 'epoch 2' "$T/out" && ok "epoch 2" || bad "output: $(cat "$T/out")"
[ "$(sha256sum "$T/b1.db")" = "$b1sum" ] && ok "the backup file is left as it was" || bad "backup changed"

if [ -n "$DUOSIGN" ]; then
  echo "== 5. a policy row edited with the sqlite3 shell while the daemon serves"
  start_daemon "$D" --paillier-bits 2048 || exit 1
  printf '2468\n' >"$T/pin"; printf '1111\n' >"$T/badpin"; head -c 3000 /dev/urandom >"$T/doc"
  run 0 "enrol" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$D/ca.pem" --token "$(token MAC1)" --state "$T/s" \
      --pin-file "$T/pin" --paillier-bits 2048
  K=$("$CLOUD" key list --data "$D" --citizen MAC1 2>/dev/null | grep -o '[0-9a-f]\{32\}' | head -1)
  run 4 "a wrong PIN is counted" -- "$DUOSIGN" sign --state "$T/s" --in "$T/doc" --out "$T/sig" --pin-file "$T/badpin"
  sqlite3 "$D/keys.db" "UPDATE keys SET pin_failures = 0 WHERE hex(key_id) = upper('$K')" &&
    ok "pin_failures set back to 0 with the sqlite3 shell" || bad "sqlite3 edit"
  run 15 "the citizen's next sign is refused (an error at the service)" -- \
      "$DUOSIGN" sign --state "$T/s" --in "$T/doc" --out "$T/sig" --pin-file "$T/pin"
  grep -q 'key.policy_mac' "$T/serve.log" && ok "the daemon logs key.policy_mac" || bad "no key.policy_mac in the log"
  stop_daemon
  "$CLOUD" audit list --data "$D" >"$T/audit" 2>&1
  grep 'key.policy_mac' "$T/audit" | grep -q "$K" && ok "audited key.policy_mac for the key" ||
    bad "audit: $(tail -3 "$T/audit")"
  [ "$(sqlite3 "$D/keys.db" "SELECT pin_failures FROM keys WHERE hex(key_id) = upper('$K')")" = 0 ] &&
    ok "nothing rewrote the edited row" || bad "the edited row changed"
  run 15 "check reports the edited row (a key store error)" -- "$CLOUD" check --data "$D"
fi

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
