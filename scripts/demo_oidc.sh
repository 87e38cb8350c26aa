#!/usr/bin/env bash
# "Log in with duosign" (issue 18; docs/OIDC.md), on an existing build
# directory ($1, default build): duosign-oidc over HTTPS, a demo web service
# with openid-client that logs a citizen in and prints the verified ID
# token's claims, and the login's evidence in the provider's audit table.
# The RelyingParty service of duosign-cloud is not merged yet (branch rp):
# until it is, the provider talks to tests/integration/oidc/fake_rp.py, a
# stand-in gRPC server with mutual TLS whose "citizen" signs the real login
# structure (duo_rp_auth_digest). Every process is stopped on exit.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$here/$build" ;; esac
oidc="$build/bin/duosign-oidc"
t="$here/tests/integration/oidc"
[ -x "$oidc" ] || { echo "demo: $oidc is missing; build first" >&2; exit 1; }
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
cd "$work"

step "13. Log in with duosign: an OpenID provider (duosign-oidc) in front of the signer"
openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
openssl req -x509 -new -key ca.key -subj /CN=demo-ca -days 1 -out ca.pem 2>/dev/null
for n in server:IP:127.0.0.1 rp-oidc:DNS:duosign-oidc; do
  name=${n%%:*}
  openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
  openssl req -new -key "$name.key" -subj "/CN=$name" -out "$name.csr" 2>/dev/null
  printf 'subjectAltName=%s\n' "${n#*:}" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile "$name.ext" \
    -out "$name.pem" 2>/dev/null
done
rp_port=$(port); op_port=$(port); app_port=$(port)
mkdir rp
/usr/bin/python3 "$t/fake_rp.py" serve --dir rp --port "$rp_port" --cert server.pem --key server.key --ca ca.pem \
  --rp-name duosign-oidc --citizen 1234567890 >rp.log 2>&1 &
pids+=($!)
"$oidc" init --dir op
"$oidc" client add --dir op --name "Demo Bank" --redirect-uri "http://127.0.0.1:$app_port/cb" | tee client.out
issuer="https://127.0.0.1:$op_port"
"$oidc" serve --dir op --listen "127.0.0.1:$op_port" --issuer "$issuer" --tls-cert server.pem --tls-key server.key \
  --cloud "127.0.0.1:$rp_port" --cloud-ca ca.pem --rp-cert rp-oidc.pem --rp-key rp-oidc.key --rp-name duosign-oidc \
  >op.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q serving op.log && grep -q RelyingParty rp.log && break; sleep 0.1; done
cat op.log
printf '#!/bin/sh\necho "citizen: approves the login on the device (claims $1)"\n/usr/bin/python3 %s act --dir %s --link "$1" --action approve\n' \
  "$t/fake_rp.py" "$work/rp" >citizen.sh
chmod +x citizen.sh
ISSUER=$issuer CLIENT_ID=$(awk '/^client_id/{print $2}' client.out) CLIENT_SECRET=$(awk '/^client_secret/{print $2}' client.out) \
  APP_PORT=$app_port CITIZEN_CMD="$work/citizen.sh" NODE_EXTRA_CA_CERTS="$work/ca.pem" \
  node "$t/node/demo-service.cjs"

step "14. the login's evidence: the citizen's two-party signature over the login challenge, kept with the token's jti"
jti=$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select jti from audit").fetchone()[0])' op/oidc.db)
echo "+ duosign-oidc evidence --dir op --jti $jti"
"$oidc" evidence --dir op --jti "$jti" | /usr/bin/python3 -c 'import json,sys
d = json.load(sys.stdin); d["certificate"] = d["certificate"].split("\n")[1][:48] + "... (PEM)"
print(json.dumps(d, indent=2))'
printf '\ndemo: a web service logged a citizen in through duosign-oidc with openid-client, and printed the verified claims\n'
