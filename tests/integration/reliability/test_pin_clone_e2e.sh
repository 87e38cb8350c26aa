#!/usr/bin/env bash
# PIN guessing and clones end to end (issue 7, item 4): the duosign CLI
# against a real duosign-cloud (TLS) started with a NON-default lock policy,
# so the test also shows that the policy is configurable.
#
#  1. A stolen state file, wrong PINs: exactly LOCK1 attempts are answered
#     "wrong PIN" (attempts left counting down), then the key is locked for
#     everybody (also the owner with the right PIN); the thief's file is
#     never changed. After the lock expires the thief gets exactly
#     LOCK2-LOCK1 more attempts, then the key is revoked.
#  2. A clone (old copy of the state) used after the original moved on
#     (two operations) is detected at its first use, by sign and, for a
#     dormant clone, by status; the key is frozen for the owner too.
#  3. A copy used when the original is one step ahead (new secret stored,
#     not yet used): the copy's request supersedes that secret, and the
#     ORIGINAL's next request is the one that reveals two devices: frozen.
#  4. The audit log has every PIN failure, the lock, the revocation and each
#     clone suspicion, on the right key; the chain verifies.
# Usage: test_pin_clone_e2e.sh /path/to/duosign /path/to/duosign-cloud
set -uo pipefail
DUOSIGN=${1:?duosign}
CLOUD=${2:?duosign-cloud}
BITS=${DUO_E2E_BITS:-2048}
LOCK1=4       # wrong PINs before the (short) lock
LOCK_SECS=${DUO_LOCK_SECS:-15}  # long enough for the checks made during the lock
LOCK2=6       # total wrong PINs before revocation
T=$(mktemp -d /tmp/duo-pinclone-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() { stop_daemon; [ -n "${DUO_REL_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT

"$CLOUD" init --data "$T/data" >/dev/null || { echo "init failed"; exit 1; }
start_daemon "$T/data" --paillier-bits "$BITS" --lock-policy "$LOCK1:${LOCK_SECS}s,$LOCK2:revoke" || exit 1
CA="$T/data/ca.pem"
printf '2468\n' >"$T/pin"
printf '1111\n' >"$T/badpin"
head -c 5000 /dev/urandom >"$T/doc"
enrol() { # enrol CITIZEN STATE
  run 0 "enrol $1" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$(token "$1")" --state "$2" \
      --pin-file "$T/pin" --paillier-bits "$BITS"
}
keyid() { "$CLOUD" key list --data "$T/data" --citizen "$1" 2>/dev/null | grep -o '[0-9a-f]\{32\}' | head -1; }
sign() { "$DUOSIGN" sign --state "$1" --in "$T/doc" --out "$T/sig" --pin-file "${2:-$T/pin}"; }
# audit list: SEQ DATE TIME UTC KIND KEYID CITIZEN DETAIL...
audit_count() { # audit_count KEYID KIND
  "$CLOUD" audit list --data "$T/data" | awk -v id="$1" -v k="$2" '$5 == k && $6 == id' | wc -l
}
audit_wrong_pins() { # entries (pin.failure, key.lock, key.revoke) recording a wrong PIN
  "$CLOUD" audit list --data "$T/data" | awk -v id="$1" '$6 == id && /wrong PIN/' | wc -l
}
showfield() { "$CLOUD" key show --data "$T/data" "$1" | sed -n "s/^$2: *//p"; }

# ------------------------------------------------------------ 1. PIN guessing
S="$T/alice.state"
enrol alice "$S"
A=$(keyid alice)
[ -n "$A" ] && ok "alice's key id $A" || bad "no key id for alice"
run 0 "owner signs" -- sign "$S"
cp "$S" "$T/stolen"; cp "$S" "$T/stolen.orig"
for i in $(seq 1 $LOCK1); do
  left=$((LOCK1 - i))
  if [ "$left" -gt 0 ]; then
    run 4 "thief: wrong PIN #$i" -- sign "$T/stolen" "$T/badpin"
    grep -q "$left attempt" "$T/err" && ok "message says $left attempt(s) left" || bad "attempt $i message: $(cat "$T/err")"
  else
    # The last allowed guess is still checked (and counted), and it locks:
    # the CLI reports the wrong PIN and exits with "locked".
    run 5 "thief: wrong PIN #$i locks the key" -- sign "$T/stolen" "$T/badpin"
    lock_start=$(date +%s)
    grep -q 'wrong PIN' "$T/err" && grep -q 'locked until' "$T/err" \
      && ok "the ${LOCK1}th wrong PIN is counted and locks (message says until when)" \
      || bad "attempt $i message: $(cat "$T/err")"
  fi
done
run 5 "thief: locked, even with the right PIN (no attempt $((LOCK1 + 1)))" -- sign "$T/stolen" "$T/pin"
run 5 "owner: locked too" -- sign "$S"
[ "$(showfield "$A" 'pin failures')" = "$LOCK1" ] && ok "cloud counted exactly $LOCK1 failures" \
  || bad "pin failures: $(showfield "$A" 'pin failures')"
[ "$(showfield "$A" 'state')" = locked ] && ok "key show: locked" || bad "state: $(showfield "$A" state)"
same "$T/stolen" "$T/stolen.orig" "the thief's guesses never changed the stolen file"
# wait for the lock to expire (it is applied lazily at the next request)
while [ "$(date +%s)" -le $((lock_start + LOCK_SECS + 1)) ]; do sleep 1; done
for i in $(seq $((LOCK1 + 1)) $((LOCK2 - 1))); do
  run 4 "thief after the lock: wrong PIN #$i" -- sign "$T/stolen" "$T/badpin"
done
run 6 "thief: wrong PIN #$LOCK2 (the last one) revokes the key" -- sign "$T/stolen" "$T/badpin"
grep -q 'wrong PIN' "$T/err" && grep -qi 'revoked' "$T/err" && ok "message: wrong PIN, key now revoked" \
  || bad "last attempt message: $(cat "$T/err")"
run 6 "thief: revoked, even with the right PIN" -- sign "$T/stolen" "$T/pin"
run 6 "owner: revoked" -- sign "$S"
[ "$(showfield "$A" state)" = revoked ] && ok "key show: revoked" || bad "state: $(showfield "$A" state)"
n=$(audit_wrong_pins "$A")
[ "$n" -eq "$LOCK2" ] && ok "audit: exactly $n wrong-PIN entries for alice (#1..#$LOCK2)" || bad "audit: $n wrong-PIN entries, want $LOCK2"
n=$(audit_count "$A" key.lock)
[ "$n" -eq 1 ] && ok "audit: one key.lock (at wrong PIN #$LOCK1)" || bad "audit: $n key.lock entries"
n=$(audit_count "$A" key.revoke)
[ "$n" -eq 1 ] && ok "audit: one key.revoke (at wrong PIN #$LOCK2)" || bad "audit: $n key.revoke entries"
"$CLOUD" audit list --data "$T/data" | awk -v id="$A" '$5 == "key.revoke" && $6 == id' | grep -q "after $LOCK2 wrong PINs" \
  && ok "audit: the revocation names the $LOCK2 wrong PINs" || bad "audit: revocation detail"
n=$(audit_count "$A" clone.suspected)
[ "$n" -eq 0 ] && ok "audit: no clone suspicion for alice (the thief never outran the owner)" || bad "audit: $n clone.suspected"
"$CLOUD" audit list --data "$T/data" | awk -v id="$A" '$6 == id && ($5 ~ /^(pin|key)\./)' | cut -c1-160 | sed 's/^/    /'

# The default policy's 3 does not apply: a second citizen gets 3 failures
# and is NOT locked (configured: $LOCK1).
S2="$T/erin.state"
enrol erin "$S2"
for i in 1 2 3; do sign "$S2" "$T/badpin" >/dev/null 2>&1; done
run 0 "three wrong PINs under a 4-failure policy: not locked, the right PIN signs" -- sign "$S2"
[ "$(showfield "$(keyid erin)" 'pin failures')" = 0 ] && ok "the right PIN reset the count" || bad "count not reset"

# ------------------------------------------------------------ 2. clones
S="$T/bob.state"
enrol bob "$S"
B=$(keyid bob)
cp "$S" "$T/bob.clone"
run 0 "bob signs (new secret pending)" -- sign "$S"
run 0 "bob signs again (old secret retired)" -- sign "$S"
run 7 "the clone's first use (sign) is detected" -- sign "$T/bob.clone"
grep -qi 'clone\|copy' "$T/err" && ok "clone message: $(head -1 "$T/err")" || bad "clone message: $(cat "$T/err")"
run 6 "bob's key is frozen for the original too" -- sign "$S"
[ "$(showfield "$B" state)" = suspended ] && ok "key show: suspended" || bad "state: $(showfield "$B" state)"
n=$(audit_count "$B" clone.suspected)
[ "$n" -eq 1 ] && ok "audit: one clone.suspected for bob" || bad "audit: $n clone.suspected for bob"

S="$T/carol.state"
enrol carol "$S"
C=$(keyid carol)
cp "$S" "$T/carol.clone"
run 0 "carol signs" -- sign "$S"
run 0 "carol refreshes" -- "$DUOSIGN" refresh --state "$S"
run 7 "a dormant clone surfaces at its first status call" -- "$DUOSIGN" status --state "$T/carol.clone"
[ "$(showfield "$C" state)" = suspended ] && ok "key show: suspended" || bad "state: $(showfield "$C" state)"
[ "$(audit_count "$C" clone.suspected)" -eq 1 ] && ok "audit: clone.suspected for carol" || bad "no clone audit for carol"

# ------------------------------------------------------------ 3. one step ahead
S="$T/dave.state"
enrol dave "$S"
D=$(keyid dave)
cp "$S" "$T/dave.clone"
run 0 "dave signs once (his new secret is stored, not yet used)" -- sign "$S"
run 0 "the copy signs: the cloud takes it for a device that did not store its secret" -- sign "$T/dave.clone"
run 7 "dave's next use reveals two devices: frozen" -- sign "$S"
run 6 "the copy is frozen too" -- sign "$T/dave.clone"
[ "$(showfield "$D" state)" = suspended ] && ok "key show: suspended" || bad "state: $(showfield "$D" state)"
[ "$(audit_count "$D" clone.suspected)" -eq 1 ] && ok "audit: clone.suspected for dave" || bad "no clone audit for dave"

# A thief who guesses between the owner's uses: the owner's next use freezes it.
S="$T/frank.state"
enrol frank "$S"
F=$(keyid frank)
cp "$S" "$T/frank.stolen"
for i in 1 2 3; do sign "$T/frank.stolen" "$T/badpin" >/dev/null 2>&1; done
run 0 "frank signs (right PIN resets the count, secret rotates)" -- sign "$S"
run 4 "thief guesses again with the old secret" -- sign "$T/frank.stolen" "$T/badpin"
run 7 "frank's next use: a copy of his device is detected" -- sign "$S"
run 6 "the thief is frozen out" -- sign "$T/frank.stolen" "$T/badpin"
[ "$(showfield "$F" state)" = suspended ] && ok "key show: suspended" || bad "state: $(showfield "$F" state)"

# ------------------------------------------------------------ 4. audit chain
stop_daemon
run 0 "audit chain verifies" -- "$CLOUD" audit verify --data "$T/data"
cat "$T/out"
echo "audit entries by kind:"
"$CLOUD" audit list --data "$T/data" | awk '{print $5}' | sort | uniq -c | sed 's/^/  /'

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all PIN-guessing and clone checks passed"
