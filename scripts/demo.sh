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

step "3. issue a one-time enrolment token for citizen 'demo-citizen'"
token=$("$bin/duosign-cloud" token issue --data "$work/data" --citizen demo-citizen 2>/dev/null | tail -1)
echo "token: $token"

step "4. enrol the citizen's device: a P-256 key (the default curve; PIN from a file, it never leaves the device)"
umask 077
printf '482916\n' >"$work/pin"
"$bin/duosign" enroll --server "$addr" --ca "$work/data/ca.pem" --token "$token" \
  --state "$work/citizen.state" --pin-file "$work/pin"
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

printf '\ndemo: enrolled a citizen over TLS, signed a file with the split key, verified it with openssl\n'
