#!/usr/bin/env bash
# The KEK in a PKCS#11 token (issue 21 item 6), with SoftHSM2 from Debian: a
# token initialised in a temporary directory (SOFTHSM2_CONF), init and serve
# with --kek pkcs11:..., enrol and sign end to end through the daemon
# (openssl verifies), rotation token -> file -> token (PIN from the
# environment) -> token (killed half way, a daemon signs, a rerun finishes),
# a wrong or missing PIN refused with a clear message, the PIN never on a
# command line, the operator's mistakes.
# Usage: test_kek_pkcs11.sh /path/to/duosign /path/to/duosign-cloud
set -uo pipefail
DUOSIGN=${1:?duosign}
CLOUD=${2:?duosign-cloud}
BITS=2048
MODULE=${DUO_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
command -v softhsm2-util >/dev/null && [ -e "$MODULE" ] || { echo "softhsm2 not installed (scripts/setup.sh)"; exit 1; }
T=$(mktemp -d /tmp/duo-kekp11-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
. "$(dirname "$0")/kek_lib.sh"
cleanup() { stop_daemon; rm -rf "$T"; }
trap cleanup EXIT
D="$T/data"
printf '2468\n' >"$T/pin"
SERVE=(--paillier-bits "$BITS" --prime-pool 1 --session-ttl 600)
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# ---- a SoftHSM2 token of our own
mkdir -p "$T/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >"$T/softhsm2.conf"
export SOFTHSM2_CONF="$T/softhsm2.conf"
TOKEN_PIN="duo-7391-token"
softhsm2-util --init-token --free --label duosign --pin "$TOKEN_PIN" --so-pin "so-5678-pin" >/dev/null \
  || { echo "softhsm2-util --init-token failed"; exit 1; }
printf '%s\n' "$TOKEN_PIN" >"$T/token.pin"
chmod 600 "$T/token.pin"
uri() { echo "pkcs11:token=duosign;object=$1?module-path=$MODULE${2:+&pin-source=$2}"; }
A=$(uri kek-a "$T/token.pin")

# ---- init and serve with the KEK in the token
run 0 "init --kek pkcs11" -- "$CLOUD" init --data "$D" --kek "$A"
[ ! -e "$D/kek" ] && ok "no KEK file in the data directory" || bad "a KEK file was written"
grep -q "$TOKEN_PIN" "$D/kek.ref" && bad "the PIN is in kek.ref" || ok "kek.ref holds no PIN"
run 0 "kek status" -- "$CLOUD" kek status --data "$D"
grep -q "sensitive and not extractable" "$T/out" && ok "the token key is sensitive and not extractable" \
  || { bad "token key attributes"; cat "$T/out"; }
start_daemon "$D" "${SERVE[@]}" --kek "$A" || exit 1
tr '\0' ' ' </proc/"$SERVER_PID"/cmdline | grep -q "$TOKEN_PIN" && bad "the PIN is on the daemon's command line" \
  || ok "the PIN is not on the daemon's command line"
enrol alice
enrol bob
sign_ok alice "token KEK"
stop_daemon
[ "$(kek_ids "$D")" = "0 " ] && ok "values sealed under KEK id 0 (the token key)" || bad "ids: $(kek_ids "$D")"

# ---- wrong, missing PIN; wrong token; another --kek
printf 'wrong-pin-0000\n' >"$T/token.pin"
run 1 "serve with a wrong PIN" -- "$CLOUD" serve --data "$D" --listen 127.0.0.1:0 "${SERVE[@]}"
grep -q "refused the PIN (CKR_PIN_INCORRECT)" "$T/err" && ok "says the token refused the PIN" || { bad "wrong PIN message"; cat "$T/err"; }
run 1 "kek status with a wrong PIN" -- "$CLOUD" kek status --data "$D"
grep -q "refused the PIN" "$T/err" && ok "status says the token refused the PIN" || bad "status wrong PIN message"
printf '%s\n' "$TOKEN_PIN" >"$T/token.pin"
mv "$T/token.pin" "$T/token.pin.away"
run 1 "serve without the PIN file" -- "$CLOUD" serve --data "$D" --listen 127.0.0.1:0 "${SERVE[@]}"
grep -q "cannot read the token PIN file" "$T/err" && ok "says the PIN file is missing" || { bad "missing PIN message"; cat "$T/err"; }
mv "$T/token.pin.away" "$T/token.pin"
run 1 "serve --kek another token key" -- "$CLOUD" serve --data "$D" --listen 127.0.0.1:0 --kek "$(uri kek-z "$T/token.pin")"
grep -q "is not this data directory's key-encryption key" "$T/err" && ok "says which KEK the directory uses" || bad "--kek mismatch message"
cp "$D/kek.ref" "$T/ref.saved"
sed -i 's/token=duosign;/token=gone;/' "$D/kek.ref"
run 1 "serve when the token is not there" -- "$CLOUD" serve --data "$D" --listen 127.0.0.1:0 "${SERVE[@]}"
grep -q "no PKCS#11 token labelled 'gone'" "$T/err" && ok "says the token is not there" || { bad "missing token message"; cat "$T/err"; }
cp "$T/ref.saved" "$D/kek.ref"
run 1 "rotate --to a token that does not exist" -- "$CLOUD" kek rotate --data "$D" \
  --to "pkcs11:token=nosuch;object=k?module-path=$MODULE&pin-source=$T/token.pin"
grep -q "no PKCS#11 token labelled 'nosuch'" "$T/err" && ok "says there is no such token" || { bad "no token message"; cat "$T/err"; }
run 2 "rotate --to a URI without object=" -- "$CLOUD" kek rotate --data "$D" --to "pkcs11:token=duosign?module-path=$MODULE"
grep -q "must name token=, object=" "$T/err" && ok "says what the URI must name" || bad "URI message"
same "$D/kek.ref" "$T/ref.saved" "kek.ref unchanged by the refused rotations"
run 2 "init --kek with a bad reference" -- "$CLOUD" init --data "$T/other" --kek "nonsense"

# ---- token -> file
run 0 "rotate token -> file" -- "$CLOUD" kek rotate --data "$D" --to file:kek-file
[ "$(kek_ids "$D")" = "1 " ] && ok "every value under KEK id 1 (file)" || bad "ids: $(kek_ids "$D")"
grep -q "no longer used: delete it in the token" "$T/out" && ok "tells to delete the old token key" || bad "rotate output"
start_daemon "$D" "${SERVE[@]}" --kek file:kek-file || exit 1
sign_ok alice "file KEK after the token"
stop_daemon

# ---- file -> token, PIN from the environment
B=$(uri kek-b)
DUOSIGN_KEK_PIN="$TOKEN_PIN" run 0 "rotate file -> token (PIN in \$DUOSIGN_KEK_PIN)" -- \
  env DUOSIGN_KEK_PIN="$TOKEN_PIN" "$CLOUD" kek rotate --data "$D" --to "$B"
run 1 "serve without any PIN" -- env -u DUOSIGN_KEK_PIN "$CLOUD" serve --data "$D" --listen 127.0.0.1:0
grep -q "needs its user PIN" "$T/err" && ok "says the token needs its PIN and where to give it" || { bad "no PIN message"; cat "$T/err"; }
export DUOSIGN_KEK_PIN="$TOKEN_PIN"
[ "$(kek_ids "$D")" = "2 " ] && ok "every value under KEK id 2 (token)" || bad "ids: $(kek_ids "$D")"
start_daemon "$D" "${SERVE[@]}" || exit 1
sign_ok bob "token KEK after the file"
stop_daemon

# ---- token -> token, killed half way
C=$(uri kek-c "$T/token.pin")
DUOSIGN_TEST_KEK_ROTATE_KILL_AT=6 "$CLOUD" kek rotate --data "$D" --to "$C" --batch 1 >/dev/null 2>&1
rc=$?
[ $rc -eq 137 ] && ok "rotation killed half way" || bad "killed rotation: exit $rc"
[ "$(echo $(kek_ids "$D") | wc -w)" = 2 ] && ok "values under both token keys: $(kek_ids "$D")" || bad "ids: $(kek_ids "$D")"
start_daemon "$D" "${SERVE[@]}" || exit 1
sign_ok alice "half-rotated between two token keys"
sign_ok bob "half-rotated between two token keys"
stop_daemon
run 0 "the rotation finishes" -- "$CLOUD" kek rotate --data "$D"
[ "$(kek_ids "$D")" = "3 " ] && ok "every value under KEK id 3" || bad "ids: $(kek_ids "$D")"
start_daemon "$D" "${SERVE[@]}" --kek "$C" || exit 1
sign_ok alice "after token -> token"
stop_daemon
run 0 "audit chain intact" -- "$CLOUD" audit verify --data "$D"

echo "$fails failures"
[ "$fails" -eq 0 ]
