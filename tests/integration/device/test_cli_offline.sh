#!/usr/bin/env bash
# duosign CLI without a server: argument errors and their exit codes, bad
# input files, a corrupted state, and local `verify` (DER, raw, JWS) against
# signatures made independently with OpenSSL and python3-ecdsa.
# Usage: test_cli_offline.sh /path/to/duosign
set -uo pipefail
DUOSIGN=${1:?path to duosign}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/duo-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
expect() { # expect CODE DESCRIPTION -- command...
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>"$T/err"; local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL $what: exit $got, want $want"; sed 's/^/    /' "$T/err"; fails=$((fails+1))
  else
    echo "ok   $what (exit $got)"
  fi
}

# ---- usage errors: exit 2
expect 2 "no command" -- "$DUOSIGN"
expect 2 "unknown command" -- "$DUOSIGN" frobnicate
expect 2 "unknown option" -- "$DUOSIGN" sign --state x --in y --out z --bogus
expect 2 "PIN on the command line is not an option" -- "$DUOSIGN" sign --state x --in y --out z --pin 1234
expect 2 "missing --out" -- "$DUOSIGN" sign --state x --in y
expect 2 "bad --format" -- "$DUOSIGN" sign --state x --in y --out z --format pem
expect 2 "bad --paillier-bits" -- "$DUOSIGN" enroll --server a:1 --ca c --token t --state s --paillier-bits 1024
expect 2 "enroll without --ca or --insecure" -- "$DUOSIGN" enroll --server a:1 --token t --state "$T/s"
expect 2 "both --pin-file and --pin-stdin" -- "$DUOSIGN" sign --state x --in y --out z --pin-file p --pin-stdin
expect 2 "stray argument" -- "$DUOSIGN" status --state x extra
expect 0 "--help" -- "$DUOSIGN" --help
grep -q "4 wrong PIN" "$T/out" || { echo "FAIL --help lists the exit codes"; fails=$((fails+1)); }

# ---- bad input files: exit 3
echo hello >"$T/doc"
expect 3 "missing state file" -- "$DUOSIGN" sign --state "$T/nope" --in "$T/doc" --out "$T/sig"
expect 3 "missing document" -- "$DUOSIGN" sign --state "$T/nope" --in "$T/nodoc" --out "$T/sig"
expect 3 "missing CA file" -- "$DUOSIGN" enroll --server 127.0.0.1:1 --ca "$T/noca" --token t --state "$T/s" --pin-file "$T/doc"
expect 3 "missing pubkey" -- "$DUOSIGN" verify --pubkey "$T/nopub" --sig "$T/doc" --in "$T/doc"
expect 3 "pubkey not PEM" -- "$DUOSIGN" verify --pubkey "$T/doc" --sig "$T/doc" --in "$T/doc"

# ---- corrupted state: exit 9, file unchanged
head -c 3000 /dev/urandom >"$T/corrupt.state"
cp "$T/corrupt.state" "$T/corrupt.orig"
expect 9 "corrupted state (sign)" -- "$DUOSIGN" sign --state "$T/corrupt.state" --in "$T/doc" --out "$T/sig" --pin-stdin
expect 9 "corrupted state (pubkey)" -- "$DUOSIGN" pubkey --state "$T/corrupt.state"
printf 'DUOS\0\1\0\0' >"$T/trunc.state"
expect 9 "truncated state" -- "$DUOSIGN" status --state "$T/trunc.state"
cmp -s "$T/corrupt.state" "$T/corrupt.orig" || { echo "FAIL corrupted state file was modified"; fails=$((fails+1)); }
[ -e "$T/sig" ] && { echo "FAIL a signature was written"; fails=$((fails+1)); }

# ---- item 8 of issue 13: a new PIN has a minimum length (exit 3, nothing sent)
printf '123\n' >"$T/shortpin"
expect 3 "enrol with a 3-character PIN" -- "$DUOSIGN" enroll --server 127.0.0.1:1 --insecure --token t --state "$T/s" --pin-file "$T/shortpin"
grep -q 'at least 4' "$T/err" || { echo "FAIL short PIN message: $(cat "$T/err")"; fails=$((fails+1)); }
grep -qi 'unreachable' "$T/err" && { echo "FAIL the short PIN was sent"; fails=$((fails+1)); }
[ -e "$T/s" ] && { echo "FAIL a state was written"; fails=$((fails+1)); }

# ---- item 9 of issue 13: temporary state copies left by a killed save are
# wiped and removed by the next run that opens that state (even a refused one)
printf 'next secret' >"$T/corrupt.state.tmp.Ab12Cd"
printf 'next secret' >"$T/corrupt.state.tmp.Zz98Yx"
printf 'keep' >"$T/corrupt.state.tmp.short"
expect 9 "pubkey on a corrupted state with leftovers" -- "$DUOSIGN" pubkey --state "$T/corrupt.state"
[ -e "$T/corrupt.state.tmp.Ab12Cd" ] || [ -e "$T/corrupt.state.tmp.Zz98Yx" ] \
  && { echo "FAIL leftover temporary state files were not removed"; fails=$((fails+1)); } \
  || echo "ok   leftover temporary state files removed"
grep -q 'removed 2 leftover' "$T/err" || { echo "FAIL no note about the removed files: $(cat "$T/err")"; fails=$((fails+1)); }
[ -e "$T/corrupt.state.tmp.short" ] || { echo "FAIL an unrelated file was removed"; fails=$((fails+1)); }
cmp -s "$T/corrupt.state" "$T/corrupt.orig" || { echo "FAIL corrupted state file was modified"; fails=$((fails+1)); }

# ---- verify with a key made locally
openssl ecparam -name secp256k1 -genkey -noout -out "$T/key.pem" 2>/dev/null
openssl ec -in "$T/key.pem" -pubout -out "$T/pub.pem" 2>/dev/null
head -c 10000 /dev/urandom >"$T/file"
openssl dgst -sha256 -sign "$T/key.pem" -out "$T/sig.der" "$T/file"
expect 0 "verify DER (openssl-made)" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.der" --in "$T/file"
cp "$T/file" "$T/file2"; printf 'x' >>"$T/file2"
expect 1 "verify DER rejects a changed file" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.der" --in "$T/file2"
$PY - "$T/sig.der" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read()); b[-5] ^= 1; open(p + '.bad', 'wb').write(b)
PY
expect 1 "verify DER rejects a changed signature" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.der.bad" --in "$T/file"

# raw and JWS made by python3-ecdsa from the same key
$PY - "$T" <<'PY'
import sys, hashlib, base64, json
from ecdsa import SigningKey
from ecdsa.util import sigencode_string
T = sys.argv[1]
sk = SigningKey.from_pem(open(T + '/key.pem').read())
doc = open(T + '/file', 'rb').read()
open(T + '/sig.raw', 'wb').write(sk.sign_deterministic(doc, hashfunc=hashlib.sha256, sigencode=sigencode_string))
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
si = b64(json.dumps({"alg": "ES256K"}, separators=(',', ':')).encode()) + '.' + b64(doc)
sig = sk.sign_deterministic(si.encode(), hashfunc=hashlib.sha256, sigencode=sigencode_string)
open(T + '/sig.jws', 'w').write(si + '.' + b64(sig))
# JWS with alg none must be refused
open(T + '/none.jws', 'w').write(b64(b'{"alg":"none"}') + '.' + b64(doc) + '.' + b64(sig))
# Item 7 of issue 13: headers as JSON (RFC 7515), each validly signed
def jws(name, header):
    si = b64(header) + '.' + b64(doc)
    s = sk.sign_deterministic(si.encode(), hashfunc=hashlib.sha256, sigencode=sigencode_string)
    open(T + '/' + name + '.jws', 'w').write(si + '.' + b64(s))
jws('ws', b'{"alg": "ES256K"}')
jws('ws2', b' {\n  "typ" : "JOSE",\n  "alg" : "ES256K"\n}\n')
jws('esc', b'{"alg":"ES256\\u004b"}')
jws('dup', b'{"alg":"ES256K","alg":"none"}')
jws('dup2', b'{"alg":"none","alg":"ES256K"}')
jws('crit', b'{"alg":"ES256K","crit":["exp"],"exp":1700000000}')
jws('critb64', b'{"alg":"ES256K","b64":false,"crit":["b64"]}')
jws('inside', b'{"x":"\\"alg\\":\\"ES256K\\"","alg":"none"}')
jws('notobj', b'["alg","ES256K"]')
jws('trail', b'{"alg":"ES256K"}{"alg":"none"}')
jws('noalg', b'{"typ":"JOSE"}')
jws('algnum', b'{"alg":256}')
PY
expect 0 "verify raw (python-ecdsa-made)" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.raw" --in "$T/file" --format raw
expect 1 "verify raw rejects a changed file" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.raw" --in "$T/file2" --format raw
expect 0 "verify JWS (python-made)" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.jws" --in "$T/file" --format jws
expect 1 "verify JWS rejects a changed file" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.jws" --in "$T/file2" --format jws
expect 1 "verify JWS rejects alg none" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/none.jws" --in "$T/file" --format jws
expect 0 "verify JWS with whitespace in the header" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/ws.jws" --in "$T/file" --format jws
expect 0 "verify JWS with newlines and member order" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/ws2.jws" --in "$T/file" --format jws
expect 0 "verify JWS with an escaped alg" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/esc.jws" --in "$T/file" --format jws
for bad in dup dup2 crit critb64 inside notobj trail noalg algnum; do
  expect 1 "verify JWS rejects header '$bad'" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/$bad.jws" --in "$T/file" --format jws
done
"$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/dup.jws" --in "$T/file" --format jws >/dev/null 2>"$T/err"
grep -qi 'duplicate' "$T/err" && echo "ok   duplicate member names are named as the reason" || { echo "FAIL no reason for the duplicate alg"; fails=$((fails+1)); }
"$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/crit.jws" --in "$T/file" --format jws >/dev/null 2>"$T/err"
grep -q 'crit' "$T/err" && echo "ok   crit is named as the reason" || { echo "FAIL no reason for crit"; fails=$((fails+1)); }
expect 1 "verify DER given a raw signature" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.raw" --in "$T/file"

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all CLI offline checks passed"
