#!/usr/bin/env bash
# duosign-oidc against the real duosign-cloud RelyingParty service (branch
# rp's serve --rp-listen): the provider registered with `duosign-cloud rp
# add`, its TLS client certificate, an anonymous StartAuthentication whose
# link and verification code the login page shows, GetSession long polls
# (RUNNING until the device answers), the page rendered by headless Chromium
# and its QR decoded by zbarimg back to the daemon's link, and a provider
# whose certificate is not registered refused by the daemon; then the whole
# login with a real citizen: enrolled by the duosign CLI with a certified
# authentication key, claiming the page's link with `duosign claim` (the
# two-party signature over the login structure), and a demo service on
# openid-client exchanging the code and checking the ID token.
# Usage: test_oidc_cloud.sh page|login duosign-oidc duosign-cloud duosign [ARTEFACT_DIR]
# (page: the page, its poll, its QR, an unknown certificate; login: the whole
# login; two ctest tests so each stays short on a loaded machine)
set -uo pipefail
MODE=${1:?page|login}
shift
OIDC=$(realpath "${1:?duosign-oidc}")
CLOUD=$(realpath "${2:?duosign-cloud}")
DUOSIGN=$(realpath "${3:?duosign}")
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
T=$(mktemp -d /tmp/duo-oidc-cloud-XXXXXX)
ART=${4:-$T/artefacts}
mkdir -p "$ART"
FAILS=0
SERVER_PID=
OP_PID=
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() {
  [ -n "$OP_PID" ] && kill "$OP_PID" 2>/dev/null
  stop_daemon
  wait 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$CLOUD" init --data "$T/data" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
"$CLOUD" rp add --data "$T/data" --name "duosign-oidc" --out-dir "$T/rp" >"$T/rpadd.log" 2>&1 \
  && ok "duosign-cloud rp add issued the provider's client certificate" || { bad "rp add"; cat "$T/rpadd.log"; exit 1; }
RP_PORT=$(free_port)
start_daemon "$T/data" --rp-listen "127.0.0.1:$RP_PORT" --paillier-bits 2048 --prime-pool 3 || exit 1

if [ "$MODE" = login ]; then
# A citizen with two certified keys (the login uses the authentication key).
tok() { "$CLOUD" token issue --data "$T/data" --citizen 1234567890 --name "Olena Pchilka" 2>/dev/null | tail -1; }
printf '2580\n' >"$T/pin1"
printf '25801\n' >"$T/pin2"
"$DUOSIGN" enroll --server "$ADDR" --ca "$T/data/ca.pem" --paillier-bits 2048 --auth-token "$(tok)" --token "$(tok)" \
  --state "$T/c.state" --pin1-file "$T/pin1" --pin2-file "$T/pin2" >"$T/enroll.out" 2>&1 || { bad "enrol"; cat "$T/enroll.out"; exit 1; }
AUTH_KID=$(grep -o 'enrolled key [0-9a-f]*' "$T/enroll.out" | sed -n 1p | awk '{print $3}')
"$DUOSIGN" csr --key auth --state "$T/c.state" --out "$T/auth.csr" --pin-file "$T/pin1" >/dev/null 2>&1 &&
  "$CLOUD" cert issue --data "$T/data" --key-id "$AUTH_KID" --role auth --csr "$T/auth.csr" --out "$T/auth.pem" >/dev/null 2>&1 &&
  "$DUOSIGN" cert --key auth --state "$T/c.state" --in "$T/auth.pem" >/dev/null 2>&1 \
  && ok "citizen enrolled; authentication key certified" || { bad "certify the auth key"; exit 1; }

fi
OP_PORT=$(free_port)
ISSUER="http://127.0.0.1:$OP_PORT"
REDIRECT="https://bank.example/cb"
"$OIDC" init --dir "$T/op" >/dev/null
out=$("$OIDC" client add --dir "$T/op" --name "Demo Bank" --redirect-uri "$REDIRECT")
CLIENT_ID=$(echo "$out" | awk '/^client_id/{print $2}')
start_op() { # CERT KEY
  "$OIDC" serve --dir "$T/op" --listen "127.0.0.1:$OP_PORT" --issuer "$ISSUER" --insecure-http \
    --cloud "127.0.0.1:$RP_PORT" --cloud-ca "$T/rp/server-ca.pem" --rp-cert "$1" --rp-key "$2" \
    --rp-name "duosign-oidc" --poll-ms 500 >"$T/op.log" 2>&1 &
  OP_PID=$!
  for _ in $(seq 100); do grep -q serving "$T/op.log" && return 0; sleep 0.1; done
  bad "duosign-oidc did not start"; cat "$T/op.log"; exit 1
}
start_op "$T/rp/client.pem" "$T/rp/client.key"

if [ "$MODE" = page ]; then
VERIFIER=$($PY -c 'import secrets; print(secrets.token_urlsafe(48))')
CHALLENGE=$($PY -c 'import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode().rstrip("="))' "$VERIFIER")
AUTH="$ISSUER/authorize?client_id=$CLIENT_ID&redirect_uri=$(printf %s "$REDIRECT" | jq -sRr @uri 2>/dev/null || $PY -c 'import urllib.parse,sys;print(urllib.parse.quote(sys.argv[1],safe=""))' "$REDIRECT")&response_type=code&scope=openid&state=S&nonce=N&code_challenge=$CHALLENGE&code_challenge_method=S256"
curl -s -c "$T/jar" -o "$T/page.html" -w '%{http_code}' "$AUTH" >"$T/code"
LINK=$(grep -o 'id="link" href="[^"]*"' "$T/page.html" | sed 's/.*href="//; s/"$//; s/&amp;/\&/g')
VC=$(grep -o 'id="vc">[0-9]*<' "$T/page.html" | grep -o '[0-9]*')
[ "$(cat "$T/code")" = 200 ] && [ -n "$LINK" ] && [ ${#VC} = 4 ] \
  && ok "the daemon's anonymous StartAuthentication: the page shows code $VC and link $LINK" \
  || { bad "no login page from the real daemon (HTTP $(cat "$T/code"))"; cat "$T/op.log"; }
grep -q "Demo Bank" "$T/page.html" && ok "the page names the service" || bad "service name missing"
TXN=$(grep -o 'data-txn="[^"]*"' "$T/page.html" | cut -d'"' -f2)
CSRF=$(grep -o 'data-csrf="[^"]*"' "$T/page.html" | cut -d'"' -f2)
ans=$(curl -s -b "$T/jar" -H 'Content-Type: application/x-www-form-urlencoded' -d "txn=$TXN&csrf=$CSRF" "$ISSUER/login/poll")
echo "$ans" | grep -q '"status":"waiting"' && ok "GetSession long poll at the daemon: still waiting for the citizen" \
  || bad "poll answer: $ans"

# The page as a browser draws it, its QR decoded by an independent decoder.
if command -v chromium >/dev/null && command -v zbarimg >/dev/null; then
  timeout 60 chromium --headless --no-sandbox --no-zygote --disable-gpu --disable-dev-shm-usage --window-size=520,900 \
    --screenshot="$ART/login_page_cloud.png" "file://$T/page.html" >"$T/chromium.log" 2>&1
  got=$(zbarimg -q --raw "$ART/login_page_cloud.png" 2>/dev/null | head -1)
  [ -n "$got" ] && [ "$got" = "$LINK" ] && ok "Chromium + zbarimg: the QR code is the daemon's link" \
    || bad "QR decoded to '$got', want '$LINK'"
else
  bad "chromium or zbarimg missing (scripts/setup.sh)"
fi

# A provider whose certificate the daemon does not know gets nothing.
kill "$OP_PID"; wait "$OP_PID" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stranger -days 1 \
  -keyout "$T/stranger.key" -out "$T/stranger.pem" 2>/dev/null
start_op "$T/stranger.pem" "$T/stranger.key"
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$AUTH")
case "$loc" in "$REDIRECT"?error=temporarily_unavailable*state=S*) ok "unregistered provider certificate: temporarily_unavailable, state echoed" ;;
  *) bad "unregistered certificate: redirect '$loc'" ;; esac

fi
if [ "$MODE" = login ]; then
# The whole login with the real daemon and the real device half.
kill "$OP_PID"; wait "$OP_PID" 2>/dev/null; OP_PID=
APP_PORT=$(free_port)
out=$("$OIDC" client add --dir "$T/op" --name "Demo Bank Online" --redirect-uri "http://127.0.0.1:$APP_PORT/cb")
start_op "$T/rp/client.pem" "$T/rp/client.key"
cat >"$T/citizen.sh" <<EOF2
#!/bin/sh
"$DUOSIGN" claim "\$1" --state "$T/c.state" --pin-file "$T/pin1"
EOF2
chmod +x "$T/citizen.sh"
ISSUER=$ISSUER CLIENT_ID=$(echo "$out" | awk '/^client_id/{print $2}') CLIENT_SECRET=$(echo "$out" | awk '/^client_secret/{print $2}') \
  APP_PORT=$APP_PORT CITIZEN_CMD="$T/citizen.sh" node "$HERE/node/demo-service.cjs" >"$T/login.out" 2>&1
rc=$?
cat "$T/login.out" | sed 's/^/    /'
[ $rc = 0 ] && grep -q '"name": "Olena Pchilka"' "$T/login.out" && grep -q '"acr"' "$T/login.out" \
  && ok "openid-client logged the citizen in through the real daemon: duosign claim, code, ID token verified" \
  || bad "the real login failed"
JTI=$(grep -o '"jti": "[^"]*"' "$T/login.out" | cut -d'"' -f4)
"$OIDC" evidence --dir "$T/op" --jti "$JTI" >"$ART/evidence_cloud.json" 2>/dev/null
if $PY - "$ART/evidence_cloud.json" <<'PY'
import base64, json, subprocess, sys, tempfile
ev = json.load(open(sys.argv[1]))
b = lambda k: base64.urlsafe_b64decode(ev[k] + "=" * (-len(ev[k]) % 4))
d = tempfile.mkdtemp()
open(d + "/c.pem", "w").write(ev["certificate"])
subprocess.run(["openssl", "x509", "-in", d + "/c.pem", "-pubkey", "-noout", "-out", d + "/pub.pem"], check=True)
sig = b("signature"); r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
def der_int(x):
    v = x.to_bytes((x.bit_length() + 8) // 8, "big")
    return b"\x02" + bytes([len(v)]) + v
body = der_int(r) + der_int(s)
open(d + "/sig", "wb").write(b"\x30" + bytes([len(body)]) + body)
open(d + "/dg", "wb").write(b("signed_digest"))
p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", d + "/pub.pem", "-in", d + "/dg",
                    "-sigfile", d + "/sig"], capture_output=True, text=True)
sys.exit(0 if p.returncode == 0 and ev["citizen_id"] == "1234567890" else 1)
PY
then ok "evidence of the real login: the citizen's two-party signature verifies with openssl pkeyutl under the auth certificate"
else bad "evidence of the real login"; fi

fi
[ "$FAILS" = 0 ] && echo "PASS" || echo "FAIL: $FAILS"
exit $((FAILS > 0))
