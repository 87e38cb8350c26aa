#!/usr/bin/env bash
# duosign-oidc against the real duosign-cloud RelyingParty service (branch
# rp's serve --rp-listen): the provider registered with `duosign-cloud rp
# add`, its TLS client certificate, an anonymous StartAuthentication whose
# link and verification code the login page shows, GetSession long polls
# (RUNNING until the device answers), the page rendered by headless Chromium
# and its QR decoded by zbarimg back to the daemon's link, and a provider
# whose certificate is not registered refused by the daemon.
# The device side (WaitRequests, duosign claim/approve) is not merged yet:
# the approval itself runs in test_oidc.sh against fake_rp.py.
# Usage: test_oidc_cloud.sh /path/to/duosign-oidc /path/to/duosign-cloud [ARTEFACT_DIR]
set -uo pipefail
OIDC=$(realpath "${1:?duosign-oidc}")
CLOUD=$(realpath "${2:?duosign-cloud}")
PY=/usr/bin/python3
T=$(mktemp -d /tmp/duo-oidc-cloud-XXXXXX)
ART=${3:-$T/artefacts}
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
start_daemon "$T/data" --rp-listen "127.0.0.1:$RP_PORT" || exit 1

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

[ "$FAILS" = 0 ] && echo "PASS" || echo "FAIL: $FAILS"
exit $((FAILS > 0))
