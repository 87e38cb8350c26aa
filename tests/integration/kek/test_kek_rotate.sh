#!/usr/bin/env bash
# KEK rotation (issue 21 item 5), with real processes:
#  - a data directory from before KEK ids (every value in sealed format 1, no
#    kek.ref) still serves, and rotation re-seals it;
#  - `kek rotate` killed (SIGKILL) at every crash point in turn, one value
#    per transaction: after each kill every sealed value still opens
#    (`kek status`), at several points a daemon started on the half-rotated
#    store signs for every key (checked with openssl), and a rerun completes;
#  - a few kill -9s at random moments, then the same checks;
#  - the operator's mistakes, each with its message and exit status, and
#    kek.ref unchanged by each.
# Usage: test_kek_rotate.sh /path/to/duosign /path/to/duosign-cloud
set -uo pipefail
DUOSIGN=${1:?duosign}
CLOUD=${2:?duosign-cloud}
BITS=2048
T=$(mktemp -d /tmp/duo-kek-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
. "$(dirname "$0")/kek_lib.sh"
cleanup() { stop_daemon; rm -rf "$T"; }
trap cleanup EXIT
D="$T/data"
printf '2468\n' >"$T/pin"
SERVE=(--paillier-bits "$BITS" --prime-pool 1 --session-ttl 600)
# The device state files keep the server's address: every daemon of the test
# listens on one port.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# ---- keys: two active, with retired secrets and an empty pending column
"$CLOUD" init --data "$D" >/dev/null || { echo "init failed"; exit 1; }
start_daemon "$D" "${SERVE[@]}" || exit 1
enrol alice
enrol bob
sign_ok alice "before"
stop_daemon

# ---- a data directory from before KEK ids
n=$(to_legacy "$D") && ok "rewrote $n sealed values in format 1, removed kek.ref" || bad "legacy rewrite"
[ "$(kek_ids "$D")" = "0 " ] && ok "kek status: all values under KEK id 0 (legacy)" || bad "legacy ids: $(kek_ids "$D")"
start_daemon "$D" "${SERVE[@]}" || exit 1
sign_ok alice "legacy store"
stop_daemon
run 0 "rotate a legacy store" -- "$CLOUD" kek rotate --data "$D"
grep -q "^current: KEK id 1  file:kek-1" "$T/out" && ok "now KEK id 1 (file:kek-1)" || bad "rotate output: $(cat "$T/out")"
[ "$(kek_ids "$D")" = "1 " ] && ok "every value under KEK id 1" || bad "ids after rotation: $(kek_ids "$D")"
python3 - "$D/keys.db" <<'PY' && ok "no format-1 value left" || bad "format-1 values left"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
left = db.execute("SELECT count(*) FROM keys WHERE substr(x1_sealed,1,1) = x'01' OR substr(secret_cur_sealed,1,1) = x'01'").fetchone()[0]
left += db.execute("SELECT count(*) FROM retired_secrets WHERE substr(sealed,1,1) = x'01'").fetchone()[0]
sys.exit(left != 0)
PY
# The issuing CA's private key is a sealed column too (sealed_columns.c):
# signing a CRL opens it under the new KEK.
run 0 "the issuing CA's key opens after the rotation (crl)" -- "$CLOUD" crl --data "$D" --out "$T/crl.pem"
openssl crl -in "$T/crl.pem" -noout 2>/dev/null && ok "the CRL parses" || bad "the CRL does not parse"

# ---- killed at every crash point (one value per transaction)
daemon_check() { # daemon_check WHAT: a daemon on the half-rotated store signs for each key
  start_daemon "$D" "${SERVE[@]}" || { bad "$1: daemon did not start"; return; }
  sign_ok alice "$1"
  sign_ok bob "$1"
  stop_daemon
}
kills=0
k=0
while [ $k -lt 400 ]; do
  # every point up to 12 (the file steps and the first values), then every 5th
  if [ $k -lt 12 ]; then k=$((k + 1)); else k=$((k + 5)); fi
  DUOSIGN_TEST_KEK_ROTATE_KILL_AT=$k "$CLOUD" kek rotate --data "$D" --batch 1 >"$T/out" 2>"$T/err"
  rc=$?
  if [ $rc -eq 0 ]; then ok "kill point $k is past the end: rotation completed"; break; fi
  [ $rc -eq 137 ] || { bad "kill point $k: exit $rc, want 137 (SIGKILL)"; cat "$T/err"; break; }
  kills=$((kills + 1))
  "$CLOUD" kek status --data "$D" >"$T/status" 2>&1 || { bad "kill point $k: a sealed value does not open"; cat "$T/status"; }
  case $k in 2|7) daemon_check "killed at point $k";; esac
  "$CLOUD" kek rotate --data "$D" >"$T/out" 2>"$T/err" || { bad "kill point $k: rerun failed"; cat "$T/err"; }
  after=$(kek_ids "$D")
  [ "$(echo $after | wc -w)" = 1 ] || bad "kill point $k: after the rerun, values under KEK ids '$after'"
  grep -q '^next' "$D/kek.ref" && bad "kill point $k: kek.ref still names a next KEK"
done
[ $kills -ge 12 ] && ok "$kills rotations killed at successive points, each finished by a rerun" \
  || bad "only $kills kill points"

# ---- kill -9 at random moments
for i in 1 2 3; do
  "$CLOUD" kek rotate --data "$D" --batch 1 >/dev/null 2>&1 &
  pid=$!
  sleep "0.00$((RANDOM % 10))"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  "$CLOUD" kek status --data "$D" >"$T/status" 2>&1 && ok "random kill $i: every value opens" \
    || { bad "random kill $i: a value does not open"; cat "$T/status"; }
  run 0 "random kill $i: rerun completes" -- "$CLOUD" kek rotate --data "$D"
done
daemon_check "after the random kills"
run 0 "audit chain intact" -- "$CLOUD" audit verify --data "$D"
"$CLOUD" audit list --data "$D" >"$T/audit" 2>&1
grep -q "kek rotate: KEK id 0 (file:kek) -> KEK id 1 (file:kek-1), [0-9]* values re-sealed" "$T/audit" \
  && ok "the first rotation is audited" || bad "no audit entry for the rotation"
grep -q "interrupted rotation finished" "$T/audit" && ok "finished rotations are audited as such" || bad "audit of resumed rotations"

# ---- the operator's mistakes: message, exit status, kek.ref unchanged
cp "$D/kek.ref" "$T/ref.saved"
mistake() { # mistake WANT_EXIT MESSAGE_RE DESCR -- CMD...
  local want=$1 re=$2 what=$3; shift 3
  run "$want" "$what" "$@"
  grep -qE -- "$re" "$T/err" && ok "$what: says '$re'" || { bad "$what: message"; cat "$T/err"; }
  same "$D/kek.ref" "$T/ref.saved" "$what: kek.ref unchanged"
}
mistake 2 "usage" "kek without a subcommand" -- "$CLOUD" kek
mistake 2 "unknown subcommand" "kek frob" -- "$CLOUD" kek frob --data "$D"
mistake 2 "--data DIR is required" "rotate without --data" -- "$CLOUD" kek rotate
mistake 2 "unknown argument" "status --to" -- "$CLOUD" kek status --data "$D" --to file:x
mistake 2 "neither file:PATH nor pkcs11:URI" "rotate --to a bad reference" -- "$CLOUD" kek rotate --data "$D" --to foo:bar
CUR=$(awk '$1 == "current" {print $3}' "$D/kek.ref")
mistake 2 "is the current key-encryption key" "rotate --to the current KEK" -- "$CLOUD" kek rotate --data "$D" --to "$CUR"
mistake 1 "already exists" "rotate --to an existing file" -- "$CLOUD" kek rotate --data "$D" --to file:kek
mistake 2 "pin-value is not accepted" "rotate --to a URI with pin-value" -- "$CLOUD" kek rotate --data "$D" \
  --to "pkcs11:token=t;object=o?module-path=/nonexistent.so&pin-value=1234"
mistake 1 "cannot load the PKCS#11 module" "rotate --to a missing module" -- "$CLOUD" kek rotate --data "$D" \
  --to "pkcs11:token=t;object=o?module-path=/nonexistent.so&pin-source=$T/pin"
mistake 1 "kek status" "status of a missing directory" -- "$CLOUD" kek status --data "$T/nope"
start_daemon "$D" "${SERVE[@]}" || exit 1
mistake 1 "stop it before rotating" "rotate while the daemon serves" -- "$CLOUD" kek rotate --data "$D"
stop_daemon
mistake 1 "is not this data directory's key-encryption key" "serve --kek another KEK" -- \
  "$CLOUD" serve --data "$D" --listen 127.0.0.1:0 --kek file:kek
# a rotation in progress refuses another target
DUOSIGN_TEST_KEK_ROTATE_KILL_AT=2 "$CLOUD" kek rotate --data "$D" >/dev/null 2>&1
grep -q '^next' "$D/kek.ref" && ok "rotation left in progress" || bad "no rotation in progress"
cp "$D/kek.ref" "$T/ref.saved"
mistake 2 "is in progress" "rotate --to another target during a rotation" -- "$CLOUD" kek rotate --data "$D" --to file:elsewhere
run 0 "kek status during a rotation" -- "$CLOUD" kek status --data "$D"
grep -q "a rotation is in progress" "$T/out" && ok "status says a rotation is in progress" || bad "status output"
run 0 "the rotation finishes" -- "$CLOUD" kek rotate --data "$D"
grep -q "interrupted rotation finished" "$T/out" && ok "said it finished an interrupted rotation" || bad "rerun output"
# kek.ref edited: another id, or a check that does not match
cp "$D/kek.ref" "$T/ref.good"
sed -i 's/^current \([0-9]*\)/current 999/' "$D/kek.ref"
run 1 "kek.ref with another KEK id" -- "$CLOUD" kek status --data "$D"
grep -q "is not KEK id 999" "$T/err" && ok "says the key is not KEK id 999" || { bad "edited id message"; cat "$T/err"; }
cp "$T/ref.good" "$D/kek.ref"
printf 'garbage\n' >"$D/kek.ref"
run 1 "kek.ref that does not parse" -- "$CLOUD" kek status --data "$D"
grep -q "does not parse" "$T/err" && ok "says kek.ref does not parse" || bad "garbage kek.ref message"
cp "$T/ref.good" "$D/kek.ref"
daemon_check "at the end"

echo "$fails failures"
[ "$fails" -eq 0 ]
