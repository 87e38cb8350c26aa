#!/usr/bin/env bash
# End to end: the duosign CLI against a real duosign-cloud on loopback with
# TLS. Enrol, sign in every format and verify each with a tool that shares no
# code with duosign (openssl dgst for DER, python3-ecdsa for raw, a python
# JWS check), then the failure paths and their exit codes: wrong PIN, lock,
# missing file, corrupted state, crash between the new secret and the state
# write, clone, revocation, server down. The state file must be unchanged by
# every failure. Alice's key is on the default curve (P-256: JWS alg ES256),
# Bob's on secp256k1 (ES256K); a daemon restarted with --curves secp256k1
# still signs with Erin's P-256 key but enrols no new P-256 key (exit 17).
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
enrol() { # enrol CITIZEN STATE [enroll args...]
  local who=$1 st=$2; shift 2
  run 0 "enrol $who $*" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$(token "$who")" --state "$st" \
      --pin-file "$T/pin" --paillier-bits "$BITS" "$@"
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
assert vk.curve.name == 'NIST256p', vk.curve.name  # the default curve
doc = open(T + '/doc', 'rb').read()
raw = open(T + '/sig.raw', 'rb').read()
assert len(raw) == 64
assert vk.verify(raw, doc, hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
n = vk.curve.order
assert int.from_bytes(raw[32:], 'big') <= n // 2, "not low-S"
jws = open(T + '/sig.jws').read().strip()
h, p, s = jws.split('.')
d = lambda x: base64.urlsafe_b64decode(x + '=' * (-len(x) % 4))
assert json.loads(d(h))['alg'] == 'ES256'
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
grep -q 'curve: p256' "$T/out" && ok "status names the curve" || bad "status curve: $(cat "$T/out")"
openssl pkey -pubin -in "$T/pub.pem" -noout -text 2>/dev/null | grep -q 'prime256v1' \
  && ok "the default key is P-256 (prime256v1)" || bad "the default key is not P-256"

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
enrol bob "$S2" --curve secp256k1
run 0 "pubkey (secp256k1)" -- "$DUOSIGN" pubkey --state "$S2" --out "$T/pub2.pem"
openssl pkey -pubin -in "$T/pub2.pem" -noout -text 2>/dev/null | grep -q 'secp256k1' \
  && ok "--curve secp256k1 makes a secp256k1 key" || bad "bob's key is not secp256k1"
run 0 "sign DER (secp256k1)" -- "$DUOSIGN" sign --state "$S2" --in "$T/doc" --out "$T/k1.der" --pin-file "$T/pin"
openssl dgst -sha256 -verify "$T/pub2.pem" -signature "$T/k1.der" "$T/doc" >/dev/null 2>&1 \
  && ok "openssl dgst accepts the secp256k1 DER signature" || bad "openssl dgst rejects the secp256k1 signature"
run 0 "sign JWS (secp256k1)" -- "$DUOSIGN" sign --state "$S2" --in "$T/doc" --out "$T/k1.jws" --format jws --pin-file "$T/pin"
run 0 "duosign verify JWS (secp256k1)" -- "$DUOSIGN" verify --pubkey "$T/pub2.pem" --sig "$T/k1.jws" --in "$T/doc" --format jws
$PY - "$T" <<'PY' && ok "secp256k1 JWS says ES256K, low-S, python3-ecdsa verifies" || bad "secp256k1 JWS check"
import sys, hashlib, base64, json
from ecdsa import VerifyingKey
from ecdsa.util import sigdecode_string
T = sys.argv[1]
vk = VerifyingKey.from_pem(open(T + '/pub2.pem').read())
assert vk.curve.name == 'SECP256k1'
h, p, s = open(T + '/k1.jws').read().strip().split('.')
d = lambda x: base64.urlsafe_b64decode(x + '=' * (-len(x) % 4))
assert json.loads(d(h))['alg'] == 'ES256K'
sig = d(s)
assert int.from_bytes(sig[32:], 'big') <= vk.curve.order // 2
assert vk.verify(sig, (h + '.' + p).encode(), hashfunc=hashlib.sha256, sigdecode=sigdecode_string)
PY
# a P-256 JWS checked against the secp256k1 key: the alg names the wrong curve
run 1 "verify refuses an ES256 JWS under a secp256k1 key" -- "$DUOSIGN" verify --pubkey "$T/pub2.pem" --sig "$T/sig.jws" --in "$T/doc" --format jws
grep -q 'not "ES256K"' "$T/err" && ok "the message names the expected alg" || bad "alg message: $(cat "$T/err")"
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

# a fourth citizen's P-256 key, for the restricted daemon below
S4="$T/erin.state"
enrol erin "$S4"
run 0 "pubkey (erin)" -- "$DUOSIGN" pubkey --state "$S4" --out "$T/pub4.pem"

# ---- server down
stop_daemon
cp "$S3" "$T/before3"
run 8 "server down" -- "$DUOSIGN" status --state "$S3"
grep -q "server unreachable at $ADDR" "$T/err" && ok "unreachable message names the address" || bad "message: $(cat "$T/err")"
run 8 "server down (sign)" -- "$DUOSIGN" sign --state "$S3" --in "$T/doc" --out "$T/x" --pin-file "$T/pin"
same "$S3" "$T/before3" "state unchanged when the server is down"

# ---- the operator restricts new keys to secp256k1: Erin's P-256 key still
# signs, a new P-256 enrolment is refused before any key work (exit 17)
start_daemon "$T/data" --paillier-bits "$BITS" --curves secp256k1 || exit 1
# (a new port: --server overrides the address stored at enrolment)
run 0 "P-256 key signs on a secp256k1-only daemon" -- "$DUOSIGN" sign --state "$S4" --server "$ADDR" --in "$T/doc" --out "$T/sig4.der" --pin-file "$T/pin"
openssl dgst -sha256 -verify "$T/pub4.pem" -signature "$T/sig4.der" "$T/doc" >/dev/null 2>&1 \
  && ok "that signature verifies" || bad "signature on the restricted daemon"
TOK=$(token dave)
run 17 "P-256 enrolment refused by --curves secp256k1" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$TOK" \
    --state "$T/dave.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -q 'does not enrol' "$T/err" && ok "the refusal says why" || bad "refusal message: $(cat "$T/err")"
[ -e "$T/dave.state" ] && bad "a refused enrolment wrote a state" || ok "no state after the refusal"
run 0 "the same token enrols on secp256k1" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$TOK" \
    --state "$T/dave.state" --pin-file "$T/pin" --paillier-bits "$BITS" --curve secp256k1
run 2 "--curve p384 is a usage error" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$TOK" \
    --state "$T/frank.state" --pin-file "$T/pin" --curve p384
stop_daemon
run 2 "serve --curves with an unknown name" -- "$CLOUD" serve --data "$T/data" --curves p256,p384
run 2 "serve --curves with an empty item" -- "$CLOUD" serve --data "$T/data" --curves p256,

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all end-to-end checks passed"
