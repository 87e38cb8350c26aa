#!/usr/bin/env bash
# Issue 16 through the duosign CLI against a real daemon: the citizen's two
# keys in one enroll (--auth-token: two tokens, still accepted), each key's PKCS#10 signed by both
# halves (`openssl req -verify`), certificates from `duosign-cloud cert
# issue` stored with `duosign cert --in` and printed by `duosign cert`
# (keyUsage digitalSignature / nonRepudiation; python3's cryptography loads
# them), `sign --format cms` checked by `openssl cms -verify` (a changed
# document refused), the CRL before and after the device's revoke
# (`openssl verify -crl_check`), an old single-key state still signing,
# the user's mistakes: each a clear message and its exit code, nothing
# sent and no file changed; and --no-ca: the CSR signed by an external CA
# (openssl), imported, stored, CMS verified against that CA.
# Usage: test_cli_certs.sh /path/to/duosign-cloud /path/to/duosign
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:?duosign}
T=$(mktemp -d /tmp/duo-cli-certs-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
trap 'stop_daemon; rm -rf "$T"' EXIT
has() { grep -q -- "$2" "$T/$1" && ok "$3" || { bad "$3: '$2' not in $1"; sed 's/^/    /' "$T/$1"; }; }
umask 077

"$CLOUD" init --data "$T/d" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
"$CLOUD" ca export --data "$T/d" --out "$T/issuing.pem" >/dev/null || { echo "ca export failed"; exit 1; }
start_daemon "$T/d" --paillier-bits 2048 || exit 1
tok() { "$CLOUD" token issue --data "$T/d" --citizen 1234567890 --name "Citizen Test" 2>/dev/null | tail -1; }
S=$T/c.state
printf '1234\n' >"$T/pin1"
printf '12345\n' >"$T/pin2"
printf '1234\n' >"$T/pin4"
printf '12a45\n' >"$T/pinx"
DEV=(--server "$ADDR" --ca "$T/d/ca.pem" --paillier-bits 2048)

# ---- enrol's mistakes: nothing sent (the tokens stay usable)
T1=$(tok)
T2=$(tok)
run 2 "two keys with --pin-file" -- "$DUOSIGN" enroll "${DEV[@]}" --auth-token "$T1" --token "$T2" --state "$S" \
    --pin-file "$T/pin2"
has err "pin1-file" "names --pin1-file"
run 3 "PIN2 of 4 digits" -- "$DUOSIGN" enroll "${DEV[@]}" --auth-token "$T1" --token "$T2" --state "$S" \
    --pin1-file "$T/pin1" --pin2-file "$T/pin4"
has err "PIN2 (signing) must be at least 5 digits" "PIN2's length, by role"
[ -e "$S" ] && bad "a signing state was written" || ok "no signing state written"
run 3 "PIN1 with a letter" -- "$DUOSIGN" enroll "${DEV[@]}" --auth-token "$T1" --token "$T2" --state "$S" \
    --pin1-file "$T/pinx" --pin2-file "$T/pin2"
has err "PIN1 (authentication) must be digits only" "PIN1 digits only"
[ -e "$S.auth" ] && bad "an auth state was written" || ok "no auth state written"
run 2 "--pin1-file without --auth-token" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$T2" --state "$S" \
    --pin1-file "$T/pin1"
run 2 "--key with enroll" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$T2" --state "$S" --key auth
run 2 "--key other" -- "$DUOSIGN" status --state "$S" --key admin
has err "auth or sign" "names the roles"

# ---- the two keys in one enroll
run 0 "enroll both keys" -- "$DUOSIGN" enroll "${DEV[@]}" --auth-token "$T1" --token "$T2" --state "$S" \
    --pin1-file "$T/pin1" --pin2-file "$T/pin2"
AK=$(grep -o 'enrolled key [0-9a-f]*' "$T/out" | sed -n 1p | awk '{print $3}')
SK=$(grep -o 'enrolled key [0-9a-f]*' "$T/out" | sed -n 2p | awk '{print $3}')
[ -n "$AK" ] && [ -n "$SK" ] && [ "$AK" != "$SK" ] && ok "two key ids" || bad "two key ids: '$AK' '$SK'"
[ -f "$S" ] && [ -f "$S.auth" ] && ok "FILE and FILE.auth" || bad "state files"
run 0 "status --key auth" -- "$DUOSIGN" status --state "$S" --key auth
has out "$AK" "status --key auth is the auth key"
run 0 "status (sign by default)" -- "$DUOSIGN" status --state "$S"
has out "$SK" "status without --key is the signing key"
run 0 "pubkey --key auth" -- "$DUOSIGN" pubkey --state "$S" --key auth --out "$T/auth.pub"
run 0 "pubkey --key sign" -- "$DUOSIGN" pubkey --state "$S" --key sign --out "$T/sign.pub"
cmp -s "$T/auth.pub" "$T/sign.pub" && bad "the two keys are one" || ok "two different public keys"

# ---- the certificates came inside the enrolment (issue 16, the rest;
# test_cli_certs_enrol.sh covers that flow); the operator's certificates
# below replace them through cert --in.
printf 'a contract\n' >"$T/doc"
run 0 "cert right after enrolment (issued inside it)" -- "$DUOSIGN" cert --state "$S"

# ---- CSRs signed by both halves
run 4 "csr with the wrong PIN" -- "$DUOSIGN" csr --key auth --state "$S" --out "$T/auth.csr" --pin-file "$T/pin2"
[ -e "$T/auth.csr" ] && bad "a CSR after a wrong PIN" || ok "no CSR after a wrong PIN"
run 2 "csr without --out" -- "$DUOSIGN" csr --state "$S" --pin-file "$T/pin2"
run 0 "csr --key auth" -- "$DUOSIGN" csr --key auth --state "$S" --out "$T/auth.csr" --pin-file "$T/pin1"
run 0 "csr --key sign" -- "$DUOSIGN" csr --key sign --state "$S" --out "$T/sign.csr" --pin-file "$T/pin2" \
    --name "Citizen Test"
for k in auth sign; do
  run 0 "openssl req -verify ($k)" -- openssl req -inform DER -in "$T/$k.csr" -verify -noout
done
run 1 "cert issue: auth CSR for the sign key" -- "$CLOUD" cert issue --data "$T/d" --key-id "$SK" --role sign \
    --csr "$T/auth.csr" --out "$T/x.pem"
run 1 "cert issue: a sign certificate for the auth key" -- "$CLOUD" cert issue --data "$T/d" --key-id "$AK" \
    --role sign --csr "$T/auth.csr" --out "$T/x.pem"
has err "enrolled for the other role" "names the role mismatch"
[ -e "$T/x.pem" ] && bad "a certificate of the wrong role written" || ok "nothing written"
run 0 "cert issue auth" -- "$CLOUD" cert issue --data "$T/d" --key-id "$AK" --role auth --csr "$T/auth.csr" \
    --out "$T/auth.crt"
run 0 "cert issue sign" -- "$CLOUD" cert issue --data "$T/d" --key-id "$SK" --role sign --csr "$T/sign.csr" \
    --out "$T/sign.crt"

# ---- duosign cert
run 3 "cert --in: the auth certificate for the sign key" -- "$DUOSIGN" cert --state "$S" --in "$T/auth.crt"
has err "another key" "names the mismatch"
[ -e "$S.cert.pem" ] && bad "a mismatched certificate stored" || ok "nothing stored"
run 3 "cert --in: not a certificate" -- "$DUOSIGN" cert --state "$S" --in "$T/doc"
run 0 "cert --in (auth)" -- "$DUOSIGN" cert --key auth --state "$S" --in "$T/auth.crt"
run 0 "cert --in (sign)" -- "$DUOSIGN" cert --key sign --state "$S" --in "$T/sign.crt"
run 0 "cert --key auth" -- "$DUOSIGN" cert --key auth --state "$S"
cp "$T/out" "$T/auth.pem"
run 0 "cert (sign)" -- "$DUOSIGN" cert --state "$S"
cp "$T/out" "$T/sign.pem"
openssl x509 -in "$T/auth.pem" -noout -text >"$T/at" 2>&1 && ok "auth PEM parses" || bad "auth PEM"
openssl x509 -in "$T/sign.pem" -noout -text >"$T/st" 2>&1 && ok "sign PEM parses" || bad "sign PEM"
has at "Digital Signature" "auth certificate: digitalSignature"
has st "Non Repudiation" "sign certificate: nonRepudiation"
grep -q "Non Repudiation" "$T/at" && bad "auth certificate has nonRepudiation" || ok "auth: no nonRepudiation"
has st "serialNumber = PNOUA-1234567890" "sign certificate: PNOUA-<citizen id>"
if python3 -c 'import cryptography' 2>/dev/null; then
  run 0 "python3 cryptography loads both" -- python3 -c '
import sys
from cryptography import x509
for p in sys.argv[1:]:
    c = x509.load_pem_x509_certificate(open(p, "rb").read())
    ku = c.extensions.get_extension_for_class(x509.KeyUsage).value
    print(p, ku.digital_signature, ku.content_commitment)
' "$T/auth.pem" "$T/sign.pem"
else
  ok "python3 cryptography not installed (skipped)"
fi

# ---- CMS
run 2 "--format other" -- "$DUOSIGN" sign --format pdf --state "$S" --in "$T/doc" --out "$T/doc.p7s"
run 4 "cms with PIN1 for the signing key" -- "$DUOSIGN" sign --format cms --state "$S" --in "$T/doc" \
    --out "$T/doc.p7s" --pin-file "$T/pin1"
[ -e "$T/doc.p7s" ] && bad "a CMS after a wrong PIN" || ok "no CMS after a wrong PIN"
run 0 "sign --format cms" -- "$DUOSIGN" sign --format cms --key sign --state "$S" --in "$T/doc" \
    --out "$T/doc.p7s" --pin-file "$T/pin2"
run 0 "openssl cms -verify accepts it" -- openssl cms -verify -binary -inform DER -in "$T/doc.p7s" \
    -content "$T/doc" -CAfile "$T/issuing.pem" -out /dev/null
printf 'a contract!\n' >"$T/doc2"
run 4 "openssl cms -verify refuses a changed document" -- openssl cms -verify -binary -inform DER \
    -in "$T/doc.p7s" -content "$T/doc2" -CAfile "$T/issuing.pem" -out /dev/null
openssl cms -cmsout -print -inform DER -in "$T/doc.p7s" >"$T/cmsprint" 2>&1
has cmsprint "signingCertificateV2\|id-smime-aa-signingCertificateV2" "CAdES signingCertificateV2"
# The authentication key signs no document: the cloud refuses (its role).
run 19 "sign --format cms --key auth (a document on the auth key)" -- "$DUOSIGN" sign --format cms --key auth \
    --state "$S" --in "$T/doc" --out "$T/login.p7s" --pin-file "$T/pin1"
run 0 "plain der still signs" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/doc.sig" --pin-file "$T/pin2"
run 0 "openssl dgst verifies it" -- openssl dgst -sha256 -verify "$T/sign.pub" -signature "$T/doc.sig" "$T/doc"

# ---- change-pin by role
printf '1234\n' >"$T/new4"
run 3 "change-pin --key sign to 4 digits" -- "$DUOSIGN" change-pin --key sign --state "$S" --pin-file "$T/pin2" \
    --new-pin-file "$T/new4"
has err "PIN2 (signing) must be at least 5 digits" "change-pin: PIN2's rule"
run 0 "change-pin --key auth to 4 digits" -- "$DUOSIGN" change-pin --key auth --state "$S" --pin-file "$T/pin1" \
    --new-pin-file "$T/new4"

# ---- revocation
run 0 "CRL before" -- "$CLOUD" crl --data "$T/d" --out "$T/crl1.pem"
run 0 "verify -crl_check: good" -- openssl verify -crl_check -CRLfile "$T/crl1.pem" -CAfile "$T/issuing.pem" \
    "$T/sign.pem"
run 0 "the device revokes the signing key" -- "$DUOSIGN" revoke --key sign --state "$S"
run 0 "CRL after" -- "$CLOUD" crl --data "$T/d" --out "$T/crl2.pem"
run 2 "verify -crl_check: revoked" -- openssl verify -crl_check -CRLfile "$T/crl2.pem" -CAfile "$T/issuing.pem" \
    "$T/sign.pem"
cat "$T/out" "$T/err" >"$T/verify"
has verify "certificate revoked" "openssl: certificate revoked"
run 0 "verify -crl_check: the auth key's certificate is still good" -- openssl verify -crl_check \
    -CRLfile "$T/crl2.pem" -CAfile "$T/issuing.pem" "$T/auth.pem"

# ---- an old single-key state keeps working
run 0 "enroll one key (legacy)" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$(tok)" --state "$T/old.state" \
    --pin-file "$T/pin4"
[ -e "$T/old.state.auth" ] && bad "a legacy enroll made an auth state" || ok "one state file"
run 0 "legacy state signs" -- "$DUOSIGN" sign --state "$T/old.state" --in "$T/doc" --out "$T/old.sig" \
    --pin-file "$T/pin4"
run 3 "legacy state has no auth key" -- "$DUOSIGN" status --state "$T/old.state" --key auth

stop_daemon

# ---- --no-ca: the device's CSR goes to an external CA (openssl here), the
# operator imports the answer, the device stores it and signs CMS with it
"$CLOUD" init --data "$T/n" --no-ca >/dev/null 2>&1 || bad "init --no-ca"
start_daemon "$T/n" --paillier-bits 2048 || exit 1
NT=$("$CLOUD" token issue --data "$T/n" --citizen 555 2>/dev/null | tail -1)
run 0 "enroll (no CA)" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$T/n/ca.pem" --paillier-bits 2048 --token "$NT" \
    --state "$T/n.state" --pin-file "$T/pin2"
NK=$(grep -o 'enrolled key [0-9a-f]*' "$T/out" | awk '{print $3}')
run 0 "csr for the external CA" -- "$DUOSIGN" csr --state "$T/n.state" --out "$T/n.csr" --pin-file "$T/pin2"
run 1 "cert issue without a CA" -- "$CLOUD" cert issue --data "$T/n" --key-id "$NK" --role sign --csr "$T/n.csr" \
    --out "$T/x.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ext.key" -out "$T/ext.pem" \
    -days 2 -subj "/CN=External CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign >/dev/null 2>&1 || bad "external CA"
printf 'keyUsage=critical,nonRepudiation\nbasicConstraints=critical,CA:FALSE\n' >"$T/ext.cnf"
openssl x509 -req -inform DER -in "$T/n.csr" -CA "$T/ext.pem" -CAkey "$T/ext.key" -CAcreateserial -days 1 \
    -extfile "$T/ext.cnf" -out "$T/n.crt" >/dev/null 2>&1 && ok "the external CA signs the CSR" || bad "external sign"
run 0 "cert import" -- "$CLOUD" cert import --data "$T/n" --key-id "$NK" --in "$T/n.crt"
run 0 "duosign cert --in (external)" -- "$DUOSIGN" cert --state "$T/n.state" --in "$T/n.crt"
run 0 "sign --format cms (external CA)" -- "$DUOSIGN" sign --format cms --state "$T/n.state" --in "$T/doc" \
    --out "$T/n.p7s" --pin-file "$T/pin2"
run 0 "openssl cms -verify against the external CA" -- openssl cms -verify -binary -inform DER -in "$T/n.p7s" \
    -content "$T/doc" -CAfile "$T/ext.pem" -out /dev/null
run 4 "...and not against the first cloud's CA" -- openssl cms -verify -binary -inform DER -in "$T/n.p7s" \
    -content "$T/doc" -CAfile "$T/issuing.pem" -out /dev/null
stop_daemon
if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all CLI certificate checks passed"
