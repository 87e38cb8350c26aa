#!/usr/bin/env bash
# End to end: the duosign CLI against a real duosign-cloud on loopback with
# TLS. Enrol, sign in every format and verify each with a tool that shares no
# code with duosign (openssl dgst for DER, python3-ecdsa for raw, a python
# JWS check), then the failure paths and their exit codes: wrong PIN, lock,
# missing file, corrupted state, crash between the new secret and the state
# write, clone, revocation, server down. The state file must be unchanged by
# every failure.
# Usage: test_cli_e2e.sh /path/to/duosign /path/to/duosign-cloud
set -uo pipefail
DUOSIGN=${1:?duosign}
CLOUD=${2:?duosign-cloud}
PY=/usr/bin/python3
BITS=${DUO_E2E_BITS:-2048}
T=$(mktemp -d /tmp/duo-e2e-XXXXXX)
# ok/bad/run/same, start_daemon/stop_daemon, token (shared with the reliability tests)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() {
  stop_daemon
  rm -rf "$T"
}
trap cleanup EXIT

# ---- the daemon
"$CLOUD" init --data "$T/data" >/dev/null || { echo "init failed"; exit 1; }
start_daemon "$T/data" --paillier-bits "$BITS" || exit 1
CA="$T/data/ca.pem"
printf '2468\n' >"$T/pin"
printf '1111\n' >"$T/badpin"
printf '97531\n' >"$T/pin2"
enrol() { # enrol CITIZEN STATE
  run 0 "enrol $1" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$(token "$1")" --state "$2" \
      --pin-file "$T/pin" --paillier-bits "$BITS"
}

# ---- enrol, sign, verify independently
S="$T/alice.state"
enrol alice "$S"
[ "$(stat -c %a "$S")" = 600 ] && ok "state file mode 0600" || bad "state file mode $(stat -c %a "$S")"
run 0 "pubkey" -- "$DUOSIGN" pubkey --state "$S" --out "$T/pub.pem"
head -c 20000 /dev/urandom >"$T/doc"
run 0 "sign DER" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/sig.der" --pin-file "$T/pin"
openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/doc" >/dev/null 2>&1 \
  && ok "openssl dgst accepts the DER signature" || bad "openssl dgst rejects the DER signature"
run 0 "sign raw (PIN on stdin)" -- sh -c "\"$DUOSIGN\" sign --state \"$S\" --in \"$T/doc\" --out \"$T/sig.raw\" --format raw --pin-stdin <\"$T/pin\""
run 0 "sign JWS" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/sig.jws" --format jws --pin-file "$T/pin"
$PY - "$T" <<'PY' && ok "python3-ecdsa verifies raw r||s and the JWS" || bad "python3 checks of raw/JWS"
import sys, hashlib, base64, json
from ecdsa import VerifyingKey, BadSignatureError
from ecdsa.util import sigdecode_string
T = sys.argv[1]
vk = VerifyingKey.from_pem(open(T + '/pub.pem').read())
doc = open(T + '/doc', 'rb').read()
raw = open(T + '/sig.raw', 'rb').read()
assert len(raw) == 64
assert vk.verify(raw, doc, hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
n = vk.curve.order
assert int.from_bytes(raw[32:], 'big') <= n // 2, "not low-S"
jws = open(T + '/sig.jws').read().strip()
h, p, s = jws.split('.')
d = lambda x: base64.urlsafe_b64decode(x + '=' * (-len(x) % 4))
assert json.loads(d(h))['alg'] == 'ES256K'
assert d(p) == doc
sig = d(s); assert len(sig) == 64
assert vk.verify(sig, (h + '.' + p).encode(), hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
try:
    vk.verify(raw, doc + b'x', hashfunc=hashlib.sha256, sigdecode=sigdecode_string); sys.exit(1)
except BadSignatureError:
    pass
PY
run 0 "duosign verify DER" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.der" --in "$T/doc"
run 0 "duosign verify raw" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.raw" --in "$T/doc" --format raw
run 0 "duosign verify JWS" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.jws" --in "$T/doc" --format jws
cp "$T/doc" "$T/doc2"; printf 'x' >>"$T/doc2"
run 1 "duosign verify rejects a changed file" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.der" --in "$T/doc2"
$PY -c "import sys;b=bytearray(open(sys.argv[1],'rb').read());b[-3]^=4;open(sys.argv[2],'wb').write(b)" "$T/sig.der" "$T/sig.bad"
run 1 "duosign verify rejects a changed signature" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.bad" --in "$T/doc"
run 0 "status" -- "$DUOSIGN" status --state "$S"
grep -q 'state: active' "$T/out" && ok "status says active" || bad "status output"

# ---- failures leave the state alone
cp "$S" "$T/before"
run 4 "wrong PIN" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/x" --pin-file "$T/badpin"
grep -qi 'attempts left' "$T/err" && ok "wrong PIN message shows attempts left" || bad "no attempts left in: $(cat "$T/err")"
same "$S" "$T/before" "state unchanged after a wrong PIN"
run 3 "missing document" -- "$DUOSIGN" sign --state "$S" --in "$T/nope" --out "$T/x" --pin-file "$T/pin"
run 3 "missing PIN file" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/x" --pin-file "$T/nopin"
same "$S" "$T/before" "state unchanged after a missing file"
cp "$S" "$T/corrupt"; $PY -c "import sys;b=bytearray(open(sys.argv[1],'rb').read());b[len(b)//2]^=1;open(sys.argv[1],'wb').write(b)" "$T/corrupt"
cp "$T/corrupt" "$T/corrupt.orig"
run 9 "corrupted state" -- "$DUOSIGN" sign --state "$T/corrupt" --in "$T/doc" --out "$T/x" --pin-file "$T/pin"
same "$T/corrupt" "$T/corrupt.orig" "corrupted state file unchanged"
[ -e "$T/x" ] && bad "a failed sign wrote an output" || ok "no output written by failed signs"

# ---- kill -9 between the new device secret and the state write
run 137 "crash before the state write" -- env DUOSIGN_TEST_CRASH_BEFORE_SAVE=1 "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/y" --pin-file "$T/pin"
same "$S" "$T/before" "state unchanged by the crash"
run 0 "sign after the crash" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/sig2.der" --pin-file "$T/pin"
openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig2.der" "$T/doc" >/dev/null 2>&1 \
  && ok "signature after the crash verifies" || bad "signature after the crash"

# ---- refresh, change PIN
run 0 "refresh" -- "$DUOSIGN" refresh --state "$S"
run 0 "change-pin" -- "$DUOSIGN" change-pin --state "$S" --pin-file "$T/pin" --new-pin-file "$T/pin2"
run 4 "old PIN refused after change" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/x" --pin-file "$T/pin"
run 0 "new PIN signs" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/sig3.der" --pin-file "$T/pin2"
openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig3.der" "$T/doc" >/dev/null 2>&1 \
  && ok "signature with the new PIN verifies" || bad "signature with the new PIN"

# ---- clone: an old copy of the state, used after the secret moved on
cp "$S" "$T/clone"
run 0 "sign (secret rotates)" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/z" --pin-file "$T/pin2"
run 0 "sign again (old secret retired)" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/z" --pin-file "$T/pin2"
run 7 "the stale copy is detected as a clone" -- "$DUOSIGN" sign --state "$T/clone" --in "$T/doc" --out "$T/z" --pin-file "$T/pin2"

# ---- lockout (second citizen)
S2="$T/bob.state"
enrol bob "$S2"
"$DUOSIGN" sign --state "$S2" --in "$T/doc" --out "$T/x" --pin-file "$T/badpin" >/dev/null 2>&1
"$DUOSIGN" sign --state "$S2" --in "$T/doc" --out "$T/x" --pin-file "$T/badpin" >/dev/null 2>&1
"$DUOSIGN" sign --state "$S2" --in "$T/doc" --out "$T/x" --pin-file "$T/badpin" >/dev/null 2>&1
run 5 "locked after three wrong PINs" -- "$DUOSIGN" sign --state "$S2" --in "$T/doc" --out "$T/x" --pin-file "$T/pin"
grep -q 'locked until' "$T/err" && ok "lock message says until when" || bad "no lock time in: $(cat "$T/err")"

# ---- revocation (third citizen)
S3="$T/carol.state"
enrol carol "$S3"
run 0 "revoke" -- "$DUOSIGN" revoke --state "$S3"
run 6 "revoked key cannot sign" -- "$DUOSIGN" sign --state "$S3" --in "$T/doc" --out "$T/x" --pin-file "$T/pin"

# ---- server down
stop_daemon
cp "$S3" "$T/before3"
run 8 "server down" -- "$DUOSIGN" status --state "$S3"
grep -q "server unreachable at $ADDR" "$T/err" && ok "unreachable message names the address" || bad "message: $(cat "$T/err")"
run 8 "server down (sign)" -- "$DUOSIGN" sign --state "$S3" --in "$T/doc" --out "$T/x" --pin-file "$T/pin"
same "$S3" "$T/before3" "state unchanged when the server is down"

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all end-to-end checks passed"
