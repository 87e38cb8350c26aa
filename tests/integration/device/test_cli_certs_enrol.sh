#!/usr/bin/env bash
# Issue 16, the rest, through the duosign CLI against a real daemon: one
# token admits the citizen's two keys (`enroll --token T --both`), each key's
# role is bound at the cloud (`key show` role, a document refused on the
# auth key with exit 19, nothing changed), each key's certificate is issued
# inside the enrolment (CSR-purpose signature, IssueCertificate) and kept in
# the state (blob v4, v3 + the channel pin: `duosign cert --key auth|sign` prints it, keyUsage
# digitalSignature / nonRepudiation), `sign --format cms` takes it from the
# state and `openssl cms -verify` accepts it, the CRL lists it after the
# revoke; the token admits no third key (exit 13); with --no-ca the keys
# come without certificates and `cert --fetch` picks up the one the operator
# imported (exit 20 before).
# Usage: test_cli_certs_enrol.sh /path/to/duosign-cloud /path/to/duosign
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:?duosign}
T=$(mktemp -d /tmp/duo-cli-certs3-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
trap 'stop_daemon; rm -rf "$T"' EXIT
has() { grep -q -- "$2" "$T/$1" && ok "$3" || { bad "$3: '$2' not in $1"; sed 's/^/    /' "$T/$1"; }; }
umask 077

"$CLOUD" init --data "$T/d" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
"$CLOUD" ca export --data "$T/d" --out "$T/issuing.pem" >/dev/null || { echo "ca export failed"; exit 1; }
# --require-channel: every call below (enrolment, the CSR-purpose signatures,
# IssueCertificate, signing, revoke) has to go through the inner channel
start_daemon "$T/d" --paillier-bits 2048 --require-channel || exit 1
tok() { "$CLOUD" token issue --data "$1" --citizen 1234567890 --name "Citizen Test" 2>/dev/null | tail -1; }
S=$T/c.state
printf '1234\n' >"$T/pin1"
printf '12345\n' >"$T/pin2"
DEV=(--server "$ADDR" --ca "$T/d/ca.pem" --paillier-bits 2048)
TK=$(tok "$T/d")

# ---- one token, two keys, two certificates
run 0 "enroll both keys from one token" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$TK" --state "$S" \
    --pin1-file "$T/pin1" --pin2-file "$T/pin2"
has out "certificate issued (auth key)" "auth certificate issued in enrolment"
has out "certificate issued (sign key)" "sign certificate issued in enrolment"
AK=$(grep -o 'enrolled key [0-9a-f]*' "$T/out" | sed -n 1p | awk '{print $3}')
SK=$(grep -o 'enrolled key [0-9a-f]*' "$T/out" | sed -n 2p | awk '{print $3}')
[ -n "$AK" ] && [ -n "$SK" ] && [ "$AK" != "$SK" ] && ok "two key ids" || bad "two key ids: '$AK' '$SK'"
run 0 "key show auth" -- "$CLOUD" key show --data "$T/d" "$AK"
has out "role: *auth" "the cloud stores the auth role"
run 0 "key show sign" -- "$CLOUD" key show --data "$T/d" "$SK"
has out "role: *sign" "the cloud stores the sign role"
run 0 "key list" -- "$CLOUD" key list --data "$T/d"
has out "role=auth" "key list shows the role"

# ---- the token is spent: a third enrolment of either role is refused
run 13 "a third key on the token" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$TK" --state "$T/third" \
    --pin-file "$T/pin2"
[ -e "$T/third" ] && bad "a state for a refused enrolment" || ok "no state for the refused enrolment"

# ---- certificates from the state
run 0 "cert --key auth" -- "$DUOSIGN" cert --state "$S" --key auth
cp "$T/out" "$T/auth.pem"
run 0 "cert --key sign" -- "$DUOSIGN" cert --state "$S" --key sign
cp "$T/out" "$T/sign.pem"
[ -e "$S.cert.pem" ] && bad "a certificate file beside the state" || ok "the certificate lives in the state"
openssl x509 -in "$T/auth.pem" -noout -ext keyUsage >"$T/ku" 2>&1
has ku "Digital Signature" "auth certificate: digitalSignature"
openssl x509 -in "$T/sign.pem" -noout -ext keyUsage >"$T/ku" 2>&1
has ku "Non Repudiation" "sign certificate: nonRepudiation"
openssl x509 -in "$T/sign.pem" -noout -subject >"$T/subj" 2>&1
has subj "PNOUA-1234567890" "subject serialNumber from the token's citizen"
openssl verify -CAfile "$T/issuing.pem" "$T/auth.pem" "$T/sign.pem" >"$T/v" 2>&1 && ok "both chain to the issuing CA" ||
  { bad "chain"; cat "$T/v"; }
"$DUOSIGN" pubkey --state "$S" --key sign --out "$T/sign.pub" >/dev/null 2>&1
openssl x509 -in "$T/sign.pem" -noout -pubkey >"$T/cert.pub"
same "$T/sign.pub" "$T/cert.pub" "the sign certificate certifies the sign key"

# ---- roles: a document on the auth key is refused by the cloud, nothing changes
printf 'a contract\n' >"$T/doc"
cp "$S.auth" "$T/auth.before"
run 19 "a document with the auth key" -- "$DUOSIGN" sign --key auth --state "$S" --in "$T/doc" --out "$T/x.sig" \
    --pin-file "$T/pin1"
has err "DUO_E_ROLE_PURPOSE" "the specific error"
same "$S.auth" "$T/auth.before" "auth state unchanged"
[ -e "$T/x.sig" ] && bad "a signature from the auth key" || ok "no signature written"

# ---- CMS from the state's certificate, checked by openssl, then the CRL
run 0 "sign --format cms" -- "$DUOSIGN" sign --format cms --state "$S" --in "$T/doc" --out "$T/doc.p7s" \
    --pin-file "$T/pin2"
openssl cms -verify -binary -inform DER -in "$T/doc.p7s" -content "$T/doc" -CAfile "$T/issuing.pem" \
    -out /dev/null >"$T/v" 2>&1 && ok "openssl cms -verify accepts it" || { bad "cms verify"; cat "$T/v"; }
printf 'another contract\n' >"$T/doc2"
openssl cms -verify -binary -inform DER -in "$T/doc.p7s" -content "$T/doc2" -CAfile "$T/issuing.pem" \
    -out /dev/null >/dev/null 2>&1 && bad "a changed document verifies" || ok "a changed document is refused"
run 0 "revoke the sign key" -- "$DUOSIGN" revoke --state "$S"
run 0 "crl" -- "$CLOUD" crl --data "$T/d" --out "$T/crl.pem"
openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/issuing.pem" "$T/sign.pem" >"$T/v" 2>&1
has v "certificate revoked" "the revoked key's certificate is on the CRL"
openssl verify -crl_check -CRLfile "$T/crl.pem" -CAfile "$T/issuing.pem" "$T/auth.pem" >"$T/v" 2>&1 &&
  ok "the auth certificate is still good" || { bad "auth certificate"; cat "$T/v"; }
stop_daemon

# ---- --no-ca: keys without certificates, fetched after the operator's import
"$CLOUD" init --data "$T/n" --no-ca >/dev/null 2>&1 || { echo "init --no-ca failed"; exit 1; }
start_daemon "$T/n" --paillier-bits 2048 --require-channel || exit 1
DEV=(--server "$ADDR" --ca "$T/n/ca.pem" --paillier-bits 2048)
N=$T/n.state
run 0 "enroll without a CA" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$(tok "$T/n")" --state "$N" \
    --pin1-file "$T/pin1" --pin2-file "$T/pin2"
has out "no certificate: the server has no issuing CA" "says the key works without a certificate"
run 20 "cert before any import" -- "$DUOSIGN" cert --state "$N"
cp "$N" "$T/n.before"
run 20 "cert --fetch before the import" -- "$DUOSIGN" cert --fetch --state "$N"
has err "DUO_E_NO_CERT" "the specific error"
same "$N" "$T/n.before" "state unchanged"
run 0 "csr for the external CA" -- "$DUOSIGN" csr --state "$N" --out "$T/n.csr" --pin-file "$T/pin2"
openssl req -inform DER -in "$T/n.csr" -verify -noout >/dev/null 2>&1 && ok "openssl req -verify" || bad "csr verify"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ext.key" -out "$T/ext.pem" \
    -subj "/CN=External CA" -days 30 >/dev/null 2>&1
printf 'keyUsage=critical,nonRepudiation\n' >"$T/ext.cnf"
openssl x509 -req -inform DER -in "$T/n.csr" -CA "$T/ext.pem" -CAkey "$T/ext.key" -CAcreateserial \
    -days 30 -extfile "$T/ext.cnf" -out "$T/n.cert.pem" >/dev/null 2>&1 || bad "external CA signing"
NK=$("$DUOSIGN" status --state "$N" 2>/dev/null | grep -o '[0-9a-f]\{32\}' | head -1)
run 0 "operator imports" -- "$CLOUD" cert import --data "$T/n" --key-id "$NK" --in "$T/n.cert.pem"
run 0 "cert --fetch" -- "$DUOSIGN" cert --fetch --state "$N"
run 0 "cert prints the fetched one" -- "$DUOSIGN" cert --state "$N"
openssl x509 -in "$T/out" -noout -issuer >"$T/iss" 2>&1
has iss "External CA" "the imported certificate is in the state"
run 2 "cert --fetch --in" -- "$DUOSIGN" cert --fetch --in "$T/n.cert.pem" --state "$N"
run 2 "--fetch on sign" -- "$DUOSIGN" sign --fetch --state "$N" --in "$T/doc" --out "$T/y"
run 2 "--both on cert" -- "$DUOSIGN" cert --both --state "$N"

[ "$fails" -eq 0 ] && echo "all passed" || echo "$fails failed"
[ "$fails" -eq 0 ]
