#!/usr/bin/env bash
# Cross-checks of a P-256 key made by the real daemon and CLI, by code
# nobody here wrote: OpenSSL (openssl dgst over DER, openssl pkey says
# prime256v1), python3-ecdsa (raw r||s), Node's WebCrypto (crypto.subtle
# ECDSA P-256) and jose from npm (compact JWS, ES256), python3-jwcrypto
# (the same JWS). jose comes from the committed package-lock.json (npm ci
# into node/node_modules, npm registry only) when it is not there yet.
# Usage: test_interop_p256.sh /path/to/duosign /path/to/duosign-cloud
set -uo pipefail
DUOSIGN=${1:?duosign}
CLOUD=${2:?duosign-cloud}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
BITS=2048
T=$(mktemp -d /tmp/duo-interop-XXXXXX)
. "$HERE/../common/e2e_lib.sh"
cleanup() {
  stop_daemon
  rm -rf "$T"
}
trap cleanup EXIT

command -v node >/dev/null || { echo "node is missing (scripts/setup.sh)"; exit 1; }
if [ ! -d "$HERE/node/node_modules/jose" ]; then
  (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1 \
    || { echo "npm ci failed (is registry.npmjs.org reachable?):"; cat "$T/npm.log"; exit 1; }
fi

"$CLOUD" init --data "$T/data" >/dev/null || { echo "init failed"; exit 1; }
start_daemon "$T/data" --paillier-bits "$BITS" || exit 1
printf '2468\n' >"$T/pin"
S="$T/p256.state"
run 0 "enrol (default curve)" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$DATA/ca.pem" --token "$(token alice)" \
    --state "$S" --pin-file "$T/pin" --paillier-bits "$BITS"
run 0 "pubkey" -- "$DUOSIGN" pubkey --state "$S" --out "$T/pub.pem"
openssl pkey -pubin -in "$T/pub.pem" -noout -text 2>/dev/null | grep -q 'ASN1 OID: prime256v1' \
  && ok "openssl: the key is P-256" || bad "openssl: the key is not P-256"
head -c 5000 /dev/urandom >"$T/doc"
for f in der raw jws; do
  run 0 "sign $f" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/sig.$f" --format "$f" --pin-file "$T/pin"
done
openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig.der" "$T/doc" >/dev/null 2>&1 \
  && ok "openssl dgst verifies the DER signature" || bad "openssl dgst rejects the DER signature"
$PY - "$T" <<'PY' && ok "python3-ecdsa verifies raw r||s on NIST256p" || bad "python3-ecdsa"
import sys, hashlib
from ecdsa import VerifyingKey
from ecdsa.util import sigdecode_string
T = sys.argv[1]
vk = VerifyingKey.from_pem(open(T + '/pub.pem').read())
assert vk.curve.name == 'NIST256p'
assert vk.verify(open(T + '/sig.raw', 'rb').read(), open(T + '/doc', 'rb').read(), hashfunc=hashlib.sha256,
                 sigdecode=sigdecode_string)
PY
node "$HERE/node/verify.mjs" "$T/pub.pem" "$T/doc" "$T/sig.raw" "$T/sig.jws" >"$T/node.out" 2>&1 \
  && ok "Node WebCrypto and jose verify" || { bad "Node WebCrypto / jose"; sed 's/^/    /' "$T/node.out"; }
$PY "$HERE/verify_jwcrypto.py" "$T/pub.pem" "$T/doc" "$T/sig.jws" >"$T/jwc.out" 2>&1 \
  && ok "python3-jwcrypto verifies the ES256 JWS" || { bad "python3-jwcrypto"; sed 's/^/    /' "$T/jwc.out"; }
run 0 "duosign verify jws" -- "$DUOSIGN" verify --pubkey "$T/pub.pem" --sig "$T/sig.jws" --in "$T/doc" --format jws
cat "$T/node.out"

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all interop checks passed"
