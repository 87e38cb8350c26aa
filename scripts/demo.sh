#!/usr/bin/env bash
# End-to-end demonstration on an existing build directory ($1, default build):
# a duosign-cloud signer on loopback with the embedded SQLite store and TLS,
# a one-time enrolment token, a test citizen enrolled with a PIN by the
# duosign CLI, a file signed by both halves, and the signature verified by
# plain OpenSSL. The daemon is stopped on exit, whatever happens.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$here/$build" ;; esac
bin="$build/bin"
for b in duosign duosign-cloud duosign-rp; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b is missing; build first (cmake --build $build)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/duosign-demo-XXXXXX)
pid=
stop() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "demo: daemon stopped"
  fi
  rm -rf "$work"
}
trap stop EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }

step "1. initialise a signer data directory (KEK, SQLite key store, development TLS CA)"
"$bin/duosign-cloud" init --data "$work/data"

echo "+ duosign-cloud rp add --name 'Demo Bank' --out-dir rp   (a relying party's client certificate)"
"$bin/duosign-cloud" rp add --data "$work/data" --name "Demo Bank" --out-dir "$work/rp"

# Starts the daemon on LISTEN and RP_LISTEN (port 0: any); sets pid, addr
# and rp_addr. A port the previous daemon just freed may linger: a few tries.
start_serve() {
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    "$bin/duosign-cloud" serve --data "$work/data" --listen "$1" --rp-listen "$2" >"$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
      grep -q 'listening on' "$work/serve.log" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    grep -q 'listening on' "$work/serve.log" && break
    wait "$pid" 2>/dev/null || true
    sleep 0.5
  done
  addr=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.log" | head -1 | awk '{print $3}')
  [ -n "$addr" ] || { cat "$work/serve.log"; echo "demo: daemon did not start" >&2; exit 1; }
  rp_addr=$(grep -o 'relying parties on [0-9.]*:[0-9]*' "$work/serve.log" | head -1 | awk '{print $4}')
  echo "daemon pid $pid: $(grep 'listening on' "$work/serve.log" | head -1)"
}

step "2. start duosign-cloud on loopback with TLS (device service, and the RelyingParty service for client certificates)"
start_serve 127.0.0.1:0 127.0.0.1:0

step "3. issue one one-time enrolment token for citizen 'demo-citizen' (name from the citizen record): it admits both keys"
token=$("$bin/duosign-cloud" token issue --data "$work/data" --citizen demo-citizen --name "Demo Citizen" 2>/dev/null | tail -1)
echo "token: $token"

step "4. enrol the citizen's device: two P-256 keys from one token in one command, each certified inside the enrolment"
echo "   authentication key: PIN1 (>= 4 digits) -> citizen.state.auth; signing key: PIN2 (>= 5 digits) -> citizen.state"
echo "   (PINs from files, they never leave the device; each key's PKCS#10 is signed by both halves, then IssueCertificate)"
umask 077
printf '4829\n' >"$work/pin1"
printf '482916\n' >"$work/pin"
"$bin/duosign" enroll --server "$addr" --ca "$work/data/ca.pem" --token "$token" \
  --state "$work/citizen.state" --pin1-file "$work/pin1" --pin2-file "$work/pin" | tee "$work/enroll.out"
auth_kid=$(grep -o 'enrolled key [0-9a-f]*' "$work/enroll.out" | sed -n 1p | awk '{print $3}')
kid=$(grep -o 'enrolled key [0-9a-f]*' "$work/enroll.out" | sed -n 2p | awk '{print $3}')
[ -n "$auth_kid" ] && [ -n "$kid" ] && [ "$auth_kid" != "$kid" ] || { echo "demo: two keys expected" >&2; exit 1; }
echo "device state: $work/citizen.state ($(stat -c '%s bytes, mode %a' "$work/citizen.state"))"

step "5. export the public key (P-256, the default curve)"
"$bin/duosign" pubkey --state "$work/citizen.state" --out "$work/pub.pem"
cat "$work/pub.pem"
openssl pkey -pubin -in "$work/pub.pem" -noout -text | grep 'ASN1 OID' | sed 's/^/  /'
openssl pkey -pubin -in "$work/pub.pem" -noout -text | grep -q 'prime256v1' \
  || { echo "demo: the default key is not P-256" >&2; exit 1; }

step "6. sign a document (two-party ECDSA: phone half + cloud half)"
printf 'I, demo-citizen, agree to the terms of this demonstration.\nDate: %s\n' "$(date -u +%F)" >"$work/document.txt"
cat "$work/document.txt"
"$bin/duosign" sign --state "$work/citizen.state" --in "$work/document.txt" --out "$work/document.sig" \
  --pin-file "$work/pin"

step "7. verify with plain OpenSSL (no duosign code involved)"
echo "+ openssl dgst -sha256 -verify pub.pem -signature document.sig document.txt"
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/document.sig" "$work/document.txt"
openssl asn1parse -inform DER -in "$work/document.sig" | sed 's/^/  /'

step "8. a changed document is rejected"
printf 'tampered\n' >>"$work/document.txt"
if openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/document.sig" "$work/document.txt"; then
  echo "demo: a tampered document verified!" >&2; exit 1
fi

step "9. key status at the signer"
"$bin/duosign" status --state "$work/citizen.state"

step "10. the certificates the enrolment brought (kept in the device state), and the roles the cloud enforces"
"$bin/duosign" cert --key auth --state "$work/citizen.state" | openssl x509 -noout -ext keyUsage | sed 's/^/  auth key: /'
"$bin/duosign" cert --state "$work/citizen.state" >"$work/cert.pem"
"$bin/duosign-cloud" key show --data "$work/data" "$auth_kid" | grep '^role' | sed 's/^/  auth key: /'
"$bin/duosign-cloud" key show --data "$work/data" "$kid" | grep '^role' | sed 's/^/  sign key: /'
echo "+ duosign sign --key auth (a document with the authentication key: refused by the cloud, exit 19)"
if "$bin/duosign" sign --key auth --state "$work/citizen.state" --in "$work/document.txt" --out "$work/auth.sig" \
  --pin-file "$work/pin1" 2>"$work/role.err"; then
  echo "demo: the auth key signed a document!" >&2; exit 1
fi
sed 's/^/  /' "$work/role.err"
openssl x509 -in "$work/cert.pem" -noout -subject -issuer -ext keyUsage,crlDistributionPoints | sed 's/^/  sign key: /'
"$bin/duosign-cloud" ca export --data "$work/data" --out "$work/issuing-ca.pem"

step "11. sign the document as a detached CMS (CAdES-BES), verify it with openssl cms against the issuing CA"
printf 'I, Demo Citizen, sign this contract.\nDate: %s\n' "$(date -u +%F)" >"$work/contract.txt"
"$bin/duosign" sign --format cms --state "$work/citizen.state" --in "$work/contract.txt" \
  --out "$work/contract.p7s" --pin-file "$work/pin"
echo "+ openssl cms -verify -binary -inform DER -in contract.p7s -content contract.txt -CAfile issuing-ca.pem"
openssl cms -verify -binary -inform DER -in "$work/contract.p7s" -content "$work/contract.txt" \
  -CAfile "$work/issuing-ca.pem" -out /dev/null
cp "$work/contract.txt" "$work/contract-changed.txt"
printf 'and a clause added later\n' >>"$work/contract-changed.txt"
if openssl cms -verify -binary -inform DER -in "$work/contract.p7s" -content "$work/contract-changed.txt" \
  -CAfile "$work/issuing-ca.pem" -out /dev/null 2>"$work/cms.err"; then
  echo "demo: a changed document verified as CMS!" >&2; exit 1
fi
echo "changed document refused: $(grep -o 'digest failure\|content verify error' "$work/cms.err" | head -1)"

step "12. a relying party (Demo Bank) asks the citizen to sign and to log in; the citizen approves from the CLI"
rpargs=(--server "$rp_addr" --ca "$work/rp/server-ca.pem" --cert "$work/rp/client.pem" --key "$work/rp/client.key")
# rp_wait OUT: the session id duosign-rp prints once the request is made
rp_wait() {
  for _ in $(seq 1 300); do grep -q '^session:' "$1" && break; sleep 0.1; done
  grep '^session:' "$1" | awk '{print $2}'
}
printf 'loan agreement no. 42: 10 000 UAH at 12 %%\n' >"$work/loan.txt"
echo "+ duosign-rp sign --citizen demo-citizen --in loan.txt --text 'Sign the loan agreement no. 42' ..."
"$bin/duosign-rp" sign "${rpargs[@]}" --citizen demo-citizen --in "$work/loan.txt" --text "Sign the loan agreement no. 42" \
  --out "$work/loan.sig" --cert-out "$work/loan-signer.pem" >"$work/rp-sign.out" 2>&1 &
rp_pid=$!
sid=$(rp_wait "$work/rp-sign.out")
sed 's/^/  [rp] /' "$work/rp-sign.out"
echo "+ duosign requests --state citizen.state"
"$bin/duosign" requests --state "$work/citizen.state"
echo "+ duosign approve --state citizen.state --request $sid   (the citizen checks the code, types PIN2)"
"$bin/duosign" approve --state "$work/citizen.state" --request "$sid" --pin-file "$work/pin"
wait "$rp_pid" || { cat "$work/rp-sign.out"; echo "demo: duosign-rp sign failed" >&2; exit 1; }
sed -n '/^result/,$p' "$work/rp-sign.out" | sed 's/^/  [rp] /'
openssl x509 -in "$work/loan-signer.pem" -pubkey -noout -out "$work/loan-signer.pub"
echo "+ openssl dgst -sha256 -verify signer-pubkey.pem -signature loan.sig loan.txt   (the RP's own check)"
openssl dgst -sha256 -verify "$work/loan-signer.pub" -signature "$work/loan.sig" "$work/loan.txt"
openssl verify -CAfile "$work/issuing-ca.pem" "$work/loan-signer.pem"
echo "+ duosign-rp auth --citizen demo-citizen --text 'Log in to Demo Bank' ..."
"$bin/duosign-rp" auth "${rpargs[@]}" --citizen demo-citizen --text "Log in to Demo Bank" >"$work/rp-auth.out" 2>&1 &
rp_pid=$!
sid=$(rp_wait "$work/rp-auth.out")
sed 's/^/  [rp] /' "$work/rp-auth.out"
echo "+ duosign approve --state citizen.state --request $sid   (a login: the authentication key, PIN1)"
"$bin/duosign" approve --state "$work/citizen.state" --request "$sid" --pin-file "$work/pin1"
wait "$rp_pid" || { cat "$work/rp-auth.out"; echo "demo: duosign-rp auth failed" >&2; exit 1; }
sed -n '/^result/,$p' "$work/rp-auth.out" | sed 's/^/  [rp] /'

step "13. a backup, a signature after it, the backup restored: the device resynchronises once, nobody is locked out"
echo "+ duosign-cloud backup --data data --out keys.backup   (online, while serving)"
"$bin/duosign-cloud" backup --data "$work/data" --out "$work/keys.backup"
echo "+ duosign sign ...   (after the backup: the device's secret rotates, the backup never sees the new one)"
"$bin/duosign" sign --state "$work/citizen.state" --in "$work/document.txt" --out "$work/document2.sig" \
  --pin-file "$work/pin"
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
echo "+ duosign-cloud restore --data data --in keys.backup   (daemon stopped)"
"$bin/duosign-cloud" restore --data "$work/data" --in "$work/keys.backup"
start_serve "$addr" "$rp_addr"
echo "+ duosign sign ...   (the store does not know the device's secret: one resync with a PIN proof, then the signature)"
"$bin/duosign" sign --state "$work/citizen.state" --in "$work/document.txt" --out "$work/document3.sig" \
  --pin-file "$work/pin"
openssl dgst -sha256 -verify "$work/pub.pem" -signature "$work/document3.sig" "$work/document.txt"
echo "+ duosign-cloud audit list --data data   (the restore and the resync, in the hash-chained audit)"
"$bin/duosign-cloud" audit list --data "$work/data" | grep -E 'store.restore|secret.resync' | sed 's/^/  /'
"$bin/duosign-cloud" audit list --data "$work/data" | grep -q 'secret.resync' \
  || { echo "demo: no secret.resync in the audit" >&2; exit 1; }

step "14. revocation: the certificate is good under the first CRL, revoked under the next"
"$bin/duosign-cloud" crl --data "$work/data" --out "$work/crl1.pem"
openssl verify -crl_check -CRLfile "$work/crl1.pem" -CAfile "$work/issuing-ca.pem" "$work/cert.pem"
"$bin/duosign" revoke --key sign --state "$work/citizen.state"
"$bin/duosign-cloud" crl --data "$work/data" --out "$work/crl2.pem"
echo "+ openssl verify -crl_check -CRLfile crl2.pem -CAfile issuing-ca.pem cert.pem"
if openssl verify -crl_check -CRLfile "$work/crl2.pem" -CAfile "$work/issuing-ca.pem" "$work/cert.pem" \
  >"$work/verify.out" 2>&1; then
  cat "$work/verify.out"; echo "demo: a revoked certificate verified!" >&2; exit 1
fi
sed 's/^/  /' "$work/verify.out"
grep -q 'certificate revoked' "$work/verify.out" || { echo "demo: not reported revoked" >&2; exit 1; }

step "15. a document shown by a code that dies in three minutes: the registry, a QR picture, a verifier redeeming it once"
"$bin/duosign-cloud" citizen set --data "$work/data" --citizen demo-citizen --doc passport \
  --attr "name=Demo Citizen" --attr birth_date=1991-08-24 --attr number=FA123456
echo "+ duosign present --key auth --state citizen.state --doc passport --once --png passport-qr.png"
"$bin/duosign" present --key auth --state "$work/citizen.state" --doc passport --once --png "$work/passport-qr.png" |
  tee "$work/present.out"
if command -v zbarimg >/dev/null; then
  echo "+ zbarimg passport-qr.png   (an independent decoder reads the picture)"
  code=$(zbarimg --quiet --raw "$work/passport-qr.png" 2>/dev/null)
else
  code=$(awk '/^code: /{print $2}' "$work/present.out")
fi
echo "the QR picture carries: $code"
echo "+ duosign-rp redeem CODE --doc passport ...   (the verifier, Demo Bank, with its TLS client certificate)"
"$bin/duosign-rp" redeem "$code" --doc passport "${rpargs[@]}"
echo "+ the same code a second time"
if "$bin/duosign-rp" redeem "$code" --doc passport "${rpargs[@]}" 2>"$work/redeem2.err"; then
  echo "demo: a code was redeemed twice!" >&2; exit 1
fi
sed 's/^/  /' "$work/redeem2.err"

printf '\ndemo: enrolled a citizen over TLS, signed a file with the split key, verified it with openssl;\n'
printf 'certified the key by the issuing CA, signed as CMS (openssl cms -verify), answered a relying party'"'"'s\n'
printf 'signature and login requests from the CLI (verified by the RP with openssl), revoked it (CRL);\n'
printf 'restored a backup that the device resynchronised with once; showed a passport as a QR code that a\n'
printf 'verifier redeemed once and was refused the second time\n'

# Issue 18: "Log in with duosign" (docs/OIDC.md): duosign-oidc and a demo
# web service with openid-client that prints the verified ID token's claims.
if [ -x "$bin/duosign-oidc" ]; then
  "$here/scripts/demo_oidc.sh" "$build"
fi
