#!/usr/bin/env bash
# Issue 16 through the commands: real duosign-cloud processes and the
# openssl command line as the relying party.
#  - init makes the issuing CA; ca export/show; token issue --name; a key
#    (ca_tool addkey: the public key an enrolment would store, activated
#    with the token, so the name travels token -> key);
#  - a CSR from the device builder: `openssl req -verify` accepts it; cert
#    issue writes a certificate (`openssl x509 -text`: PNOUA-..., CN, key
#    usage, CRL DP); `openssl verify -crl_check` accepts it with the first
#    CRL; a CMS from the builder passes `openssl cms -verify` and a changed
#    document fails; python3's cryptography loads certificate and CRL;
#  - key revoke, then a CRL: "certificate revoked", cessationOfOperation;
#    a frozen key's certificate: keyCompromise (the CRL's sweep);
#  - the operator's mistakes: each a clear message and exit 1 (refused) or
#    2 (usage), nothing stored;
#  - --no-ca: no CA; cert import checks the key;
#  - with the duosign CLI: a key enrolled through a real daemon, its CSR and
#    a CMS signed by the two-party protocol (ca_tool csr2p / cms2p over the
#    device library), `openssl cms -verify`; the device's Revoke RPC revokes
#    the certificate at once.
# Usage: test_ca_cli.sh /path/to/duosign-cloud /path/to/ca_tool [/path/to/duosign]
set -uo pipefail
CLOUD=${1:?duosign-cloud}
TOOL=${2:?ca_tool}
DUOSIGN=${3:-}
T=$(mktemp -d /tmp/duo-ca-cli-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
trap 'stop_daemon; rm -rf "$T"' EXIT
has() { grep -q -- "$2" "$T/$1" && ok "$3" || { bad "$3: '$2' not in $1"; sed 's/^/    /' "$T/$1"; }; }
KID=a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1
KID2=b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2

run 0 "init with the CA's options" -- "$CLOUD" init --data "$T/d" --country UA --cert-days 30 \
    --ca-name "Test Issuing CA" --crl-url http://crl.example.test/duosign.crl
has out "issuing CA" "init says it made the issuing CA"
run 0 "ca export" -- "$CLOUD" ca export --data "$T/d" --out "$T/ca.pem"
run 0 "ca show" -- "$CLOUD" ca show --data "$T/d"
has out "http://crl.example.test/duosign.crl" "ca show prints the CRL URL"
has out "certificate days:  30" "ca show prints the certificate validity"
openssl x509 -in "$T/ca.pem" -noout -text >"$T/catext" 2>&1 && ok "openssl x509 parses the CA" || bad "CA text"
has catext "CA:TRUE" "the CA is a CA"
cmp -s "$T/ca.pem" "$T/d/ca.pem" && bad "the issuing CA is the TLS CA" || ok "the issuing CA is not the TLS CA"

# ---- a citizen's key and its certificate
run 0 "token issue --name" -- "$CLOUD" token issue --data "$T/d" --citizen 1234567890 --name "Тарас Шевченко"
TOK=$(cat "$T/out")
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$T/key.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out "$T/other.pem" 2>/dev/null
run 0 "the key is enrolled (ca_tool addkey)" -- "$TOOL" addkey "$T/d" "$T/key.pem" 1234567890 "$TOK" "$KID"
run 0 "key show" -- "$CLOUD" key show --data "$T/d" "$KID"
has out "citizen name:    Тарас Шевченко" "the token's name went with the key"
run 0 "the device builds a CSR" -- "$TOOL" csr "$T/key.pem" secp256k1 "Taras" "$T/req.der"
run 0 "openssl req -verify accepts the CSR" -- openssl req -inform DER -in "$T/req.der" -verify -noout
has err "verify OK" "openssl: self-signature verify OK"
run 0 "cert issue" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role sign --csr "$T/req.der" \
    --out "$T/cert.pem"
openssl x509 -in "$T/cert.pem" -noout -text -nameopt utf8,sep_comma_plus_space >"$T/text" 2>&1 \
    && ok "openssl x509 -text parses the certificate" || bad "x509 -text"
has text "serialNumber=PNOUA-1234567890" "subject serialNumber PNOUA-<id>"
has text "CN=Тарас Шевченко" "subject CN = the name from the token"
has text "Non Repudiation" "keyUsage nonRepudiation for role sign"
has text "X509v3 Key Usage: critical" "keyUsage critical"
has text "CA:FALSE" "basicConstraints CA:FALSE"
has text "URI:http://crl.example.test/duosign.crl" "CRL distribution point"
has text "X509v3 Authority Key Identifier" "AKI"
has text "X509v3 Subject Key Identifier" "SKI"
run 0 "cert list" -- "$CLOUD" cert list --data "$T/d" --key-id "$KID"
has out "sign  issued    good" "cert list: good"

run 0 "first CRL" -- "$CLOUD" crl --data "$T/d" --out "$T/crl1.pem"
run 0 "openssl verify -crl_check accepts the certificate before revocation" -- \
    openssl verify -crl_check -CRLfile "$T/crl1.pem" -CAfile "$T/ca.pem" "$T/cert.pem"

# ---- a CMS signature
printf 'a contract the citizen signs\n' >"$T/doc"
run 0 "the device builds a detached CMS" -- "$TOOL" cms "$T/key.pem" "$T/cert.pem" "$T/doc" "$T/doc.p7s"
run 0 "openssl cms -verify accepts it" -- openssl cms -verify -binary -inform DER -in "$T/doc.p7s" \
    -content "$T/doc" -CAfile "$T/ca.pem" -out /dev/null
has err "Verification successful" "CMS Verification successful"
printf 'a contract the citizen signs!\n' >"$T/doc2"
run 4 "openssl cms -verify refuses a changed document" -- openssl cms -verify -binary -inform DER \
    -in "$T/doc.p7s" -content "$T/doc2" -CAfile "$T/ca.pem" -out /dev/null
openssl cms -cmsout -print -inform DER -in "$T/doc.p7s" >"$T/cmsprint" 2>&1
has cmsprint "id-smime-aa-signingCertificateV2" "signed attribute signingCertificateV2"
has cmsprint "signingTime" "signed attribute signingTime"
has cmsprint "messageDigest" "signed attribute messageDigest"

# ---- the operator's mistakes: clear message, nothing stored
"$TOOL" csr "$T/other.pem" secp256k1 x "$T/other.der"
run 1 "a CSR of another key" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role auth --csr "$T/other.der" \
    --out "$T/x.pem"
has err "not the stored public key" "says the key is not the stored one"
head -c 100 /dev/urandom >"$T/garbage"
run 1 "a CSR that is garbage" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role auth --csr "$T/garbage" \
    --out "$T/x.pem"
has err "not a PKCS#10" "says it is not a request"
python3 - "$T/req.der" "$T/bad.der" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-1] ^= 1
open(sys.argv[2], 'wb').write(b)
PY
run 1 "a CSR signed badly" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role auth --csr "$T/bad.der" \
    --out "$T/x.pem"
has err "does not verify" "says the signature does not verify"
run 1 "an unknown key" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID2" --role auth --csr "$T/req.der" \
    --out "$T/x.pem"
run 2 "a bad role" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role admin --csr "$T/req.der" --out "$T/x"
run 2 "no role" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --csr "$T/req.der" --out "$T/x"
run 2 "a bad key id" -- "$CLOUD" cert issue --data "$T/d" --key-id xyz --role sign --csr "$T/req.der" --out "$T/x"
run 1 "a missing CSR file" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role sign --csr "$T/none" \
    --out "$T/x"
run 2 "crl --next-update-hours 0" -- "$CLOUD" crl --data "$T/d" --out "$T/x" --next-update-hours 0
run 2 "crl without --out" -- "$CLOUD" crl --data "$T/d"
run 2 "token issue --name too long" -- "$CLOUD" token issue --data "$T/d" --citizen 1 --name "$(printf 'x%.0s' {1..200})"
run 1 "token issue --name with a control character" -- "$CLOUD" token issue --data "$T/d" --citizen 1 \
    --name "$(printf 'a\tb')"
has err "printable" "says the name must be printable"
run 1 "init with a bad country" -- "$CLOUD" init --data "$T/bad" --country ukr
has err "two capital letters" "init names the bad setting"
run 2 "init with a bad --ca-days" -- "$CLOUD" init --data "$T/bad2" --ca-days 0
[ -e "$T/x.pem" ] && bad "a refused issue wrote a file" || ok "no refused issue wrote a file"
run 0 "cert list after the refusals" -- "$CLOUD" cert list --data "$T/d"
[ "$(wc -l <"$T/out")" -eq 1 ] && ok "still one certificate stored" || bad "certificates: $(cat "$T/out")"

# ---- revocation
run 0 "key revoke" -- "$CLOUD" key revoke --data "$T/d" "$KID"
run 0 "cert list after the revocation" -- "$CLOUD" cert list --data "$T/d" --key-id "$KID"
has out "revoked (reason 5)" "key revoke revoked the certificate at once (cessationOfOperation)"
run 1 "cert issue for a revoked key" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID" --role auth \
    --csr "$T/req.der" --out "$T/x.pem"
has err "is not active" "says the key is not active"
run 0 "second CRL" -- "$CLOUD" crl --data "$T/d" --out "$T/crl2.pem" --next-update-hours 12
run 2 "openssl verify -crl_check reports it revoked" -- \
    openssl verify -crl_check -CRLfile "$T/crl2.pem" -CAfile "$T/ca.pem" "$T/cert.pem"
cat "$T/out" >>"$T/err"; has err "certificate revoked" "openssl: certificate revoked"
openssl crl -in "$T/crl2.pem" -noout -text >"$T/crltext" 2>&1 && ok "openssl crl -text parses the CRL" || bad "crl -text"
has crltext "Cessation Of Operation" "reason cessationOfOperation for a revocation"
has crltext "X509v3 CRL Number: *$" "crlNumber present"
grep -A1 "CRL Number" "$T/crltext" | grep -q " 2$" && ok "crlNumber 2" || bad "crlNumber: $(grep -A1 'CRL Number' "$T/crltext")"
run 0 "openssl crl -verify" -- openssl crl -in "$T/crl2.pem" -noout -CAfile "$T/ca.pem"

# a frozen key (a clone): keyCompromise through the CRL's sweep
run 0 "token for a second key" -- "$CLOUD" token issue --data "$T/d" --citizen 42 --name "Леся Українка"
TOK2=$(cat "$T/out")
run 0 "second key" -- "$TOOL" addkey "$T/d" "$T/other.pem" 42 "$TOK2" "$KID2"
run 0 "auth certificate for it" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID2" --role auth \
    --csr "$T/other.der" --out "$T/cert2.pem"
openssl x509 -in "$T/cert2.pem" -noout -text >"$T/text2"
has text2 "Digital Signature" "keyUsage digitalSignature for role auth"
run 0 "freeze it" -- "$TOOL" freeze "$T/d" "$KID2"
run 0 "third CRL" -- "$CLOUD" crl --data "$T/d" --out "$T/crl3.pem"
openssl crl -in "$T/crl3.pem" -noout -text >"$T/crltext3"
has crltext3 "Key Compromise" "reason keyCompromise for a frozen key"
run 2 "the frozen key's certificate is revoked" -- \
    openssl verify -crl_check -CRLfile "$T/crl3.pem" -CAfile "$T/ca.pem" "$T/cert2.pem"

python3 - "$T/cert.pem" "$T/crl3.pem" "$T/ca.pem" >"$T/py" 2>&1 <<'PY'
import sys
from cryptography import x509
from cryptography.x509.oid import NameOID
cert = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
crl = x509.load_pem_x509_crl(open(sys.argv[2], 'rb').read())
ca = x509.load_pem_x509_certificate(open(sys.argv[3], 'rb').read())
assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == "PNOUA-1234567890"
assert crl.is_signature_valid(ca.public_key())
assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
print("python cryptography: loaded", len(list(crl)), "revoked")
PY
[ $? -eq 0 ] && ok "python3 cryptography loads the certificate and the CRL" || { bad "python3 cryptography"; cat "$T/py"; }

# ---- --no-ca: an external CA's certificate, imported
run 0 "init --no-ca" -- "$CLOUD" init --data "$T/n" --no-ca
has out "none (--no-ca)" "init says there is no CA"
run 1 "ca export without a CA" -- "$CLOUD" ca export --data "$T/n" --out "$T/n.pem"
has err "no issuing CA" "says there is no issuing CA"
run 1 "crl without a CA" -- "$CLOUD" crl --data "$T/n" --out "$T/n.crl"
run 1 "cert issue without a CA" -- "$CLOUD" cert issue --data "$T/n" --key-id "$KID" --role sign --csr "$T/req.der" \
    --out "$T/x.pem"
run 0 "token" -- "$CLOUD" token issue --data "$T/n" --citizen 1234567890
TOK3=$(cat "$T/out")
run 0 "a key there" -- "$TOOL" addkey "$T/n" "$T/key.pem" 1234567890 "$TOK3" "$KID"
run 1 "import of another key's certificate" -- "$CLOUD" cert import --data "$T/n" --key-id "$KID" --role auth \
    --in "$T/cert2.pem"
has err "is not the stored public key" "says the key differs"
run 1 "import of garbage" -- "$CLOUD" cert import --data "$T/n" --key-id "$KID" --role sign --in "$T/garbage"
run 0 "import of the key's certificate (role from its keyUsage)" -- "$CLOUD" cert import --data "$T/n" \
    --key-id "$KID" --in "$T/cert.pem"
run 0 "cert list" -- "$CLOUD" cert list --data "$T/n"
has out "sign  imported" "listed as imported, role sign (nonRepudiation)"
run 0 "audit chain" -- "$CLOUD" audit verify --data "$T/d"

# ---- the real thing: a two-party key, its CSR and a CMS through the protocol
if [ -n "$DUOSIGN" ]; then
  start_daemon "$T/d" --paillier-bits 2048 || exit 1
  printf '2468\n' >"$T/pin"
  "$CLOUD" token issue --data "$T/d" --citizen 3141592653 --name "Іван Франко" >"$T/tok" 2>/dev/null
  run 0 "enrol through the daemon" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$T/d/ca.pem" --token "$(cat "$T/tok")" \
      --state "$T/c.state" --pin-file "$T/pin" --paillier-bits 2048
  KID3=$("$CLOUD" key list --data "$T/d" --citizen 3141592653 | awk '{print $1}')
  run 0 "a CSR signed by the two-party protocol" -- "$TOOL" csr2p "$T/c.state" "$T/pin" "$T/d/ca.pem" Ivan "$T/c.csr"
  run 0 "openssl req -verify accepts the joint key's CSR" -- openssl req -inform DER -in "$T/c.csr" -verify -noout
  run 0 "cert issue for the joint key" -- "$CLOUD" cert issue --data "$T/d" --key-id "$KID3" --role sign \
      --csr "$T/c.csr" --out "$T/c.pem"
  openssl x509 -in "$T/c.pem" -noout -subject -nameopt utf8,sep_comma_plus_space >"$T/subj"
  has subj "CN=Іван Франко" "the enrolled key's certificate names the citizen from the token"
  run 0 "a CMS signed by the two-party protocol" -- "$TOOL" cms2p "$T/c.state" "$T/pin" "$T/d/ca.pem" "$T/c.pem" \
      "$T/doc" "$T/c.p7s"
  run 0 "openssl cms -verify accepts the two-party CMS" -- openssl cms -verify -binary -inform DER -in "$T/c.p7s" \
      -content "$T/doc" -CAfile "$T/ca.pem" -out /dev/null
  run 4 "and refuses it for a changed document" -- openssl cms -verify -binary -inform DER -in "$T/c.p7s" \
      -content "$T/doc2" -CAfile "$T/ca.pem" -out /dev/null
  run 0 "the device revokes its key (Revoke RPC)" -- "$DUOSIGN" revoke --state "$T/c.state"
  run 0 "cert list" -- "$CLOUD" cert list --data "$T/d" --key-id "$KID3"
  has out "revoked (reason 5)" "the daemon revoked the certificate with the key (cessationOfOperation)"
  run 0 "CRL after the device's revocation" -- "$CLOUD" crl --data "$T/d" --out "$T/crl4.pem"
  run 2 "openssl verify -crl_check: revoked" -- \
      openssl verify -crl_check -CRLfile "$T/crl4.pem" -CAfile "$T/ca.pem" "$T/c.pem"
  stop_daemon
fi

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all certificate command checks passed"
