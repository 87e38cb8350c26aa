#!/usr/bin/env bash
# duosign-oidc end to end (issue 18): the provider over HTTPS in front of a
# RelyingParty service (fake_rp.py: real gRPC, a TLS client certificate
# required; a scriptable signer for the abuse cases — the real daemon runs in
# test_oidc_cloud.sh),
# driven by openid-client from npm (node/flow.cjs: the flow and every abuse
# case), the login page's own script run by headless Chromium under its CSP
# up to the service's redirect URI, the evidence checked with python3-
# cryptography, and the operator's mistakes at the command line. (The QR
# code in a Chromium screenshot, decoded by zbarimg, is test_oidc_cloud.sh's,
# with the real daemon's link.)
# Usage: test_oidc.sh /path/to/duosign-oidc [ARTEFACT_DIR]
set -uo pipefail
OIDC=$(realpath "${1:?duosign-oidc}")
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/duo-oidc-XXXXXX)
ART=${2:-$T/artefacts}
mkdir -p "$ART"
FAILS=0
PIDS=()
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
# expect CODE DESCRIPTION -- command...: the exit status and a message on stderr.
expect() {
  local want=$1 what=$2
  shift 3
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" = "$want" ]; then ok "$what (exit $got: $(head -c 120 "$T/err" | tr '\n' ' '))"; else
    bad "$what: exit $got, want $want"; cat "$T/err"; fi
}

command -v node >/dev/null || { echo "node is missing (scripts/setup.sh)"; exit 1; }
if [ ! -d "$HERE/node/node_modules/openid-client" ]; then
  (cd "$HERE/node" && npm ci --no-audit --no-fund --loglevel=error) >"$T/npm.log" 2>&1 \
    || { echo "npm ci failed (is registry.npmjs.org reachable?):"; cat "$T/npm.log"; exit 1; }
fi
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------- PKI: one test CA
cd "$T"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj /CN=test-ca -days 1 -out ca.pem 2>/dev/null
mkcert() { # NAME SAN
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "$2" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
mkcert server "IP:127.0.0.1,DNS:localhost"
mkcert rp-oidc "DNS:duosign-oidc"

# ---------------------------------------------------------------- the operator's mistakes
expect 2 "no command" -- "$OIDC"
expect 2 "serve without its flags" -- "$OIDC" serve --dir "$T/op"
expect 27 "client add before init" -- "$OIDC" client add --dir "$T/op" --name x --redirect-uri https://a.example/cb
expect 0 "init" -- "$OIDC" init --dir "$T/op"
expect 1 "init twice (never overwrites)" -- "$OIDC" init --dir "$T/op"
expect 1 "redirect URI over plain http" -- "$OIDC" client add --dir "$T/op" --name x --redirect-uri http://a.example/cb
expect 1 "redirect URI with a fragment" -- "$OIDC" client add --dir "$T/op" --name x --redirect-uri 'https://a.example/cb#f'
expect 1 "relative redirect URI" -- "$OIDC" client add --dir "$T/op" --name x --redirect-uri /cb
expect 1 "public key that is not PEM" -- "$OIDC" client add --dir "$T/op" --name x --redirect-uri https://a.example/cb --public-key /etc/hostname
expect 2 "client add without --name" -- "$OIDC" client add --dir "$T/op" --redirect-uri https://a.example/cb
n=$("$OIDC" client list --dir "$T/op" | wc -l)
[ "$n" = 0 ] && ok "the refused commands registered nothing" || bad "refused commands left $n clients"
grep -q "CHECK\|current 0 file:kek" "$T/op/kek.ref" && ok "the store's KEK is named in kek.ref" || bad "no kek.ref"
if $PY - "$T/op/oidc.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sealed = db.execute("select sealed from keys").fetchone()[0]
pw = db.execute("select value from meta where name='pairwise'").fetchone()[0]
# sealed format 2: version byte, KEK id, nonce, ciphertext, tag: no DER private key inside
sys.exit(0 if sealed[0] == 2 and pw[0] == 2 and b"\x30\x77\x02\x01\x01" not in sealed else 1)
PY
then ok "provider key and pairwise secret are sealed under the KEK"; else bad "secrets not sealed"; fi

# ---------------------------------------------------------------- processes
RP_PORT=$(free_port); OP_PORT=$(free_port); APP_PORT=$(free_port)
mkdir -p "$T/rp"
$PY "$HERE/fake_rp.py" serve --dir "$T/rp" --port "$RP_PORT" --cert server.pem --key server.key --ca ca.pem \
  --rp-name "duosign-oidc" >"$T/rp.log" 2>&1 &
PIDS+=($!)
REDIRECT="http://127.0.0.1:$APP_PORT/cb"
REDIRECT2="https://other.example/cb"
out=$("$OIDC" client add --dir "$T/op" --name "Demo Bank" --redirect-uri "$REDIRECT") || bad "client add"
CLIENT_ID=$(echo "$out" | awk '/^client_id/{print $2}')
CLIENT_SECRET=$(echo "$out" | awk '/^client_secret/{print $2}')
openssl ecparam -name prime256v1 -genkey -noout -out app2.key 2>/dev/null
openssl pkey -in app2.key -pubout -out app2.pub 2>/dev/null
out=$("$OIDC" client add --dir "$T/op" --name "Other Portal" --redirect-uri "$REDIRECT2" --public-key app2.pub) || bad "client add --public-key"
JWT_CLIENT_ID=$(echo "$out" | awk '/^client_id/{print $2}')
echo "$out" | grep -q client_secret && bad "a private_key_jwt client got a secret" || ok "private_key_jwt client: no secret"
JWT_CLIENT_JWK=$(node -e 'const c=require("crypto"),fs=require("fs");const j=c.createPrivateKey(fs.readFileSync(process.argv[1])).export({format:"jwk"});j.alg="ES256";console.log(JSON.stringify(j))' app2.key)
date +%s >clock
expect 1 "serve without TLS and without --insecure-http" -- "$OIDC" serve --dir "$T/op" --listen "127.0.0.1:$OP_PORT" \
  --issuer "https://127.0.0.1:$OP_PORT" --cloud "127.0.0.1:$RP_PORT" --cloud-ca ca.pem --rp-cert rp-oidc.pem \
  --rp-key rp-oidc.key --rp-name duosign-oidc
ISSUER="https://127.0.0.1:$OP_PORT"
"$OIDC" serve --dir "$T/op" --listen "127.0.0.1:$OP_PORT" --issuer "$ISSUER" --tls-cert server.pem --tls-key server.key \
  --cloud "127.0.0.1:$RP_PORT" --cloud-ca ca.pem --rp-cert rp-oidc.pem --rp-key rp-oidc.key --rp-name duosign-oidc \
  --poll-ms 2000 --test-clock "$T/clock" >"$T/op.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do
  grep -q serving "$T/op.log" && grep -q "fake RelyingParty" "$T/rp.log" && break
  sleep 0.1
done
grep -q serving "$T/op.log" || { bad "duosign-oidc did not start"; cat "$T/op.log"; exit 1; }
grep -q "fake RelyingParty" "$T/rp.log" || { bad "fake RP did not start"; cat "$T/rp.log"; exit 1; }
curl -s --cacert ca.pem "$ISSUER/.well-known/openid-configuration" | grep -q '"issuer"' \
  && ok "discovery over HTTPS (curl, the test CA)" || bad "discovery over HTTPS"
curl -s "http://127.0.0.1:$OP_PORT/jwks" >/dev/null 2>&1 && bad "plain HTTP answered on the HTTPS port" || ok "no plain HTTP on the HTTPS port"

# ---------------------------------------------------------------- openid-client drives the flow
ISSUER=$ISSUER CLIENT_ID=$CLIENT_ID CLIENT_SECRET=$CLIENT_SECRET REDIRECT=$REDIRECT REDIRECT2=$REDIRECT2 \
  JWT_CLIENT_ID=$JWT_CLIENT_ID JWT_CLIENT_JWK=$JWT_CLIENT_JWK FAKE_RP="$HERE/fake_rp.py" RP_DIR="$T/rp" CLOCK="$T/clock" \
  OIDC_BIN="$OIDC" OP_DIR="$T/op" OUT="$T" NODE_EXTRA_CA_CERTS="$T/ca.pem" node "$HERE/node/flow.cjs" | tee "$T/flow.out"
grep -q "^all passed" "$T/flow.out" || FAILS=$((FAILS + $(grep -c '^not ok' "$T/flow.out") + 1))

# ---------------------------------------------------------------- evidence: the citizen's signature with the jti
JTI=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["jti"])' "$T/first_token.json")
"$OIDC" evidence --dir "$T/op" --jti "$JTI" >"$T/evidence.json" 2>"$T/err" || { bad "evidence --jti"; cat "$T/err"; }
cp "$T/evidence.json" "$ART/evidence.json"
if $PY - "$T/evidence.json" "$T/first_token.json" <<'PY'
import base64, hashlib, json, struct, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
ev, tok = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
b = lambda k: base64.urlsafe_b64decode(ev[k] + "=" * (-len(ev[k]) % 4))
assert ev["jti"] == tok["jti"] and ev["sub"] == tok["sub"]
assert ev["display_text"] == "Log in to Demo Bank" and ev["rp_name"] == "duosign-oidc"
def item(t, label, v):  # transcript.h's item encoding
    return bytes([t]) + struct.pack(">I", len(label)) + label + struct.pack(">Q", len(v)) + v
want = hashlib.sha256(item(1, b"duosign/v1/rp-auth", b"") + item(2, b"rp_name", ev["rp_name"].encode())
                      + item(2, b"challenge", b("challenge")) + item(2, b"server_random", b("server_random"))
                      + item(2, b"code", ev["verification_code"].encode())
                      + item(2, b"display_text", ev["display_text"].encode())).digest()
assert want == b("signed_digest"), "the digest is not the login structure"
sig = b("signature")
der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
cert = x509.load_pem_x509_certificate(ev["certificate"].encode())
cert.public_key().verify(der, want, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
PY
then ok "evidence --jti: the citizen's signature over this login's structure, re-verified by python3-cryptography"
else bad "audit evidence"; fi
expect 1 "evidence of an unknown jti" -- "$OIDC" evidence --dir "$T/op" --jti nope
expect 2 "evidence without --jti" -- "$OIDC" evidence --dir "$T/op"

# ---------------------------------------------------------------- the page's own script, in a real browser
# Under its Content-Security-Policy the page's script must poll and follow
# the redirect: the signer approves at once, and the "service" (a one-shot
# listener on the redirect URI's port) must receive the code and the state.
if command -v chromium >/dev/null; then
  echo auto-approve >"$T/rp/mode"
  $PY - "$APP_PORT" "$T/cb.txt" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        open(sys.argv[2], "w").write(self.path)
        self.send_response(200); self.end_headers(); self.wfile.write(b"service: logged in\n")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).handle_request()
PY
  PIDS+=($!)
  timeout 60 chromium --headless --no-sandbox --no-zygote --disable-gpu --disable-dev-shm-usage --ignore-certificate-errors \
    --virtual-time-budget=15000 --dump-dom "$(cat "$T/authorize_url.txt")" >"$T/dom.html" 2>"$T/chromium2.log"
  rm -f "$T/rp/mode"
  grep -q '^/cb?code=[A-Za-z0-9_-]*&state=shot$' "$T/cb.txt" 2>/dev/null \
    && ok "Chromium ran the page's script under its CSP: it polled and followed the redirect to the service with the code and state" \
    || { bad "the browser did not reach the service (got '$(cat "$T/cb.txt" 2>/dev/null)')"; grep -i "content security" "$T/chromium2.log" | head -3; }
fi

[ "$FAILS" = 0 ] && echo "PASS" || echo "FAIL: $FAILS"
exit $((FAILS > 0))
