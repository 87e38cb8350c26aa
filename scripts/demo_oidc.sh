#!/usr/bin/env bash
# "Log in with duosign" (issue 18; docs/OIDC.md), on an existing build
# directory ($1, default build): a duosign-cloud signer serving the
# RelyingParty service, a citizen enrolled by the duosign CLI with a
# certified authentication key, duosign-oidc over HTTPS registered at the
# signer as a relying party, and a small demo web service with openid-client
# that logs the citizen in (the citizen claims the login page's link with
# `duosign claim`) and prints the verified ID token's claims; then the
# login's evidence. Every process is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$here/$build" ;; esac
bin="$build/bin"
t="$here/tests/integration/oidc"
for b in duosign duosign-cloud duosign-oidc; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing; build first" >&2; exit 1; }
done
[ -d "$t/node/node_modules/openid-client" ] || { echo "demo: openid-client missing (scripts/setup.sh)" >&2; exit 1; }
work=$(mktemp -d /tmp/duosign-oidc-demo-XXXXXX)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # FILE PATTERN
  for _ in $(seq 300); do grep -q "$2" "$1" && return 0; sleep 0.1; done
  cat "$1"; echo "demo: '$2' never appeared in $1" >&2; exit 1
}
cd "$work"

step "16. Log in with duosign: the signer serves relying parties; duosign-oidc is one of them"
"$bin/duosign-cloud" init --data signer >/dev/null
"$bin/duosign-cloud" rp add --data signer --name "duosign-oidc" --out-dir rp
rp_port=$(port)
"$bin/duosign-cloud" serve --data signer --listen 127.0.0.1:0 --rp-listen "127.0.0.1:$rp_port" \
  --paillier-bits 2048 >serve.log 2>&1 &
pids+=($!)
wait_for serve.log 'listening on'
addr=$(grep -o 'listening on [0-9.]*:[0-9]*' serve.log | head -1 | awk '{print $3}')
echo "signer at $addr, RelyingParty service on 127.0.0.1:$rp_port"

step "17. a citizen enrols two keys (PIN1 for logins) and both certified inside the enrolment"
tok() { "$bin/duosign-cloud" token issue --data signer --citizen 1234567890 --name "Lesya Ukrainka" 2>/dev/null | tail -1; }
umask 077
printf '2580\n' >pin1
printf '25801\n' >pin2
"$bin/duosign" enroll --server "$addr" --ca signer/ca.pem --paillier-bits 2048 --token "$(tok)" \
  --state citizen.state --pin1-file pin1 --pin2-file pin2 | tee enroll.out | grep 'enrolled key'
"$bin/duosign" cert --key auth --state citizen.state >auth.pem
openssl x509 -in auth.pem -noout -subject | sed 's/^/  /'

step "18. duosign-oidc over HTTPS (a throwaway TLS certificate), and a web service registered as its client"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -days 1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout op-tls.key -out op-tls.pem 2>/dev/null
op_port=$(port); app_port=$(port)
"$bin/duosign-oidc" init --dir op
"$bin/duosign-oidc" client add --dir op --name "Demo Bank" --redirect-uri "http://127.0.0.1:$app_port/cb" | tee client.out
issuer="https://127.0.0.1:$op_port"
"$bin/duosign-oidc" serve --dir op --listen "127.0.0.1:$op_port" --issuer "$issuer" --tls-cert op-tls.pem \
  --tls-key op-tls.key --cloud "127.0.0.1:$rp_port" --cloud-ca rp/server-ca.pem --rp-cert rp/client.pem \
  --rp-key rp/client.key --rp-name duosign-oidc >op.log 2>&1 &
pids+=($!)
wait_for op.log serving
cat op.log

step "19. the demo service logs the citizen in (openid-client; the citizen claims the page's link with the duosign CLI)"
printf '#!/bin/sh\necho "citizen: + duosign claim $1"\n"%s" claim "$1" --state "%s" --pin-file "%s"\n' \
  "$bin/duosign" "$work/citizen.state" "$work/pin1" >citizen.sh
chmod +x citizen.sh
ISSUER=$issuer CLIENT_ID=$(awk '/^client_id/{print $2}' client.out) CLIENT_SECRET=$(awk '/^client_secret/{print $2}' client.out) \
  APP_PORT=$app_port CITIZEN_CMD="$work/citizen.sh" NODE_EXTRA_CA_CERTS="$work/op-tls.pem" \
  node "$t/node/demo-service.cjs" | tee login.out

step "20. the login's evidence: the citizen's two-party signature over the login structure, kept with the token's jti"
jti=$(grep -o '"jti": "[^"]*"' login.out | cut -d'"' -f4)
echo "+ duosign-oidc evidence --dir op --jti $jti"
"$bin/duosign-oidc" evidence --dir op --jti "$jti" | /usr/bin/python3 -c 'import json,sys
d = json.load(sys.stdin); d["certificate"] = d["certificate"].split("\n")[1][:48] + "... (PEM)"
print(json.dumps(d, indent=2))'
printf '\ndemo: a web service logged a citizen in through duosign-oidc and the signer, and printed the verified claims\n'
