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
for b in duosign duosign-cloud; do
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

step "2. start duosign-cloud on loopback with TLS"
"$bin/duosign-cloud" serve --data "$work/data" --listen 127.0.0.1:0 >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  grep -q 'listening on' "$work/serve.log" && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; echo "demo: daemon exited" >&2; exit 1; }
  sleep 0.1
done
addr=$(grep -o 'listening on [0-9.]*:[0-9]*' "$work/serve.log" | head -1 | awk '{print $3}')
[ -n "$addr" ] || { cat "$work/serve.log"; echo "demo: daemon did not start" >&2; exit 1; }
echo "daemon pid $pid: $(grep 'listening on' "$work/serve.log" | head -1)"

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

step "12. revocation: the certificate is good under the first CRL, revoked under the next"
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

printf '\ndemo: enrolled a citizen over TLS, signed a file with the split key, verified it with openssl;\n'
printf 'certified the key by the issuing CA, signed as CMS (openssl cms -verify), revoked it (CRL)\n'
