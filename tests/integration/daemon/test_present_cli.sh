#!/usr/bin/env bash
# Issue 19 through the real binaries: the operator's citizen registry
# (`duosign-cloud citizen set|show|list|remove`), `duosign present --once
# --png` against a real daemon, the PNG decoded by an independent decoder
# (zbarimg, zbar-tools) back to the code the CLI printed, that code redeemed
# once and refused the second time (present_redeem_tool: the RP service's
# redemption function on the store), the barcode form, a document the
# citizen does not have, a revoked key, and every user mistake with its
# message and exit code (nothing changed).
# Usage: test_present_cli.sh duosign-cloud duosign present_redeem_tool
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:?duosign}
REDEEM=${3:?present_redeem_tool}
T=$(mktemp -d /tmp/duo-present-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
trap 'stop_daemon; rm -rf "$T"' EXIT
has() { grep -q -- "$2" "$T/$1" && ok "$3" || { bad "$3: '$2' not in $1"; sed 's/^/    /' "$T/$1"; }; }
umask 077
command -v zbarimg >/dev/null || { echo "zbarimg missing: run scripts/setup.sh (zbar-tools)"; exit 1; }

"$CLOUD" init --data "$T/d" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
start_daemon "$T/d" --paillier-bits 2048 || exit 1
S=$T/c.state
printf '12345\n' >"$T/pin"
DEV=(--server "$ADDR" --ca "$T/d/ca.pem" --paillier-bits 2048)
run 0 "enroll" -- "$DUOSIGN" enroll "${DEV[@]}" --token "$(token C-1001)" --state "$S" --pin-file "$T/pin"

# ---- the registry's mistakes (exit 2: usage; 3: a bad attribute; 26: no such document)
C=(citizen set --data "$T/d" --citizen C-1001)
run 2 "set without --doc" -- "$CLOUD" "${C[@]}" --attr name=Olena
has err "doc TYPE (e.g. passport) is required" "names --doc"
run 2 "set with a bad --doc" -- "$CLOUD" "${C[@]}" --doc Pass-port --attr name=Olena
has err "a-z, 0-9 and _" "says what a type is"
run 2 "set without --attr" -- "$CLOUD" "${C[@]}" --doc passport
run 3 "--attr without =" -- "$CLOUD" "${C[@]}" --doc passport --attr name
has err "not NAME=VALUE" "says NAME=VALUE"
run 3 "--attr with a capital" -- "$CLOUD" "${C[@]}" --doc passport --attr Name=Olena
run 3 "--attr twice" -- "$CLOUD" "${C[@]}" --doc passport --attr name=A --attr name=B
has err "given twice" "says twice"
run 3 "--attr with a line break" -- "$CLOUD" "${C[@]}" --doc passport --attr $'name=a\nb'
run 3 "--photo missing" -- "$CLOUD" "${C[@]}" --doc passport --attr name=Olena --photo "$T/nope.jpg"
run 2 "unknown subcommand" -- "$CLOUD" citizen frobnicate --data "$T/d"
run 2 "--attr on show" -- "$CLOUD" citizen show --data "$T/d" --citizen C-1001 --doc passport --attr a=b
run 26 "show a document not set" -- "$CLOUD" citizen show --data "$T/d" --citizen C-1001 --doc passport
has err "no passport for citizen C-1001" "names the missing document"
run 26 "remove a document not set" -- "$CLOUD" citizen remove --data "$T/d" --citizen C-1001 --doc passport
run 0 "list: none yet" -- "$CLOUD" citizen list --data "$T/d"
has out "0 document(s)" "nothing was stored by the mistakes"

# ---- the registry
printf 'JPEGDATA' >"$T/photo.jpg"
run 0 "set passport" -- "$CLOUD" "${C[@]}" --doc passport --attr "name=Olena Petrenko" --attr birth_date=1990-04-01 \
    --photo "$T/photo.jpg"
run 0 "show passport" -- "$CLOUD" citizen show --data "$T/d" --citizen C-1001 --doc passport
has out "name = Olena Petrenko" "attribute shown"
has out "photo: 8 bytes" "photo stored"
run 0 "audit list" -- "$CLOUD" audit list --data "$T/d"
has out "citizen.doc.set" "the change is audited"
grep -q "Olena" "$T/out" && bad "attribute values in the audit log" || ok "values stay out of the audit log"

# ---- presenting: the user's mistakes
run 2 "present without --doc" -- "$DUOSIGN" present --state "$S" --once
has err "needs --doc" "names --doc"
run 2 "present with a bad --doc" -- "$DUOSIGN" present --state "$S" --doc "Pass port" --once
run 2 "present without --state" -- "$DUOSIGN" present --doc passport --once
run 2 "--png on status" -- "$DUOSIGN" status --state "$S" --png "$T/x.png"
has err "are for present" "says --png is for present"
run 26 "a document the citizen does not have" -- "$DUOSIGN" present --state "$S" --doc driving_licence --once
has err "DUO_E_DOC_NOT_FOUND" "names the error"
run 3 "--png in a missing directory" -- "$DUOSIGN" present --state "$S" --doc passport --once --png "$T/no/dir/q.png"
has err "cannot write the picture" "says the picture could not be written"

# ---- a code as a picture, decoded by zbarimg, redeemed once
run 0 "present --once --png" -- "$DUOSIGN" present --state "$S" --doc passport --once --png "$T/q.png"
cp "$T/out" "$T/present1"
CODE=$(awk '/^code: /{print $2}' "$T/present1")
BAR=$(awk '/^barcode \(EAN-13\): /{print $3}' "$T/present1")
[ ${#CODE} -eq 32 ] && ok "code of 32 base32 characters ($CODE)" || bad "code '$CODE'"
[ ${#BAR} -eq 13 ] && ok "barcode of 13 digits" || bad "barcode '$BAR'"
has present1 "valid for 180 s" "says 180 s"
grep -q $'\u2588' "$T/present1" && ok "QR code drawn in the terminal" || bad "no QR drawn"
run 0 "zbarimg decodes the PNG" -- zbarimg --quiet --raw "$T/q.png"
[ "$(tr -d '\n' <"$T/out")" = "$CODE" ] && ok "the picture carries the code" || bad "decoded '$(cat "$T/out")'"
DECODED=$(tr -d '\n' <"$T/out")
run 26 "redeemed for another document type" -- "$REDEEM" "$T/d" bank "$DECODED" id_card
has err "another document type" "says another document"
run 0 "redeemed once" -- "$REDEEM" "$T/d" bank "$DECODED" passport
has out "name=Olena Petrenko" "the verifier gets the attributes"
has out "photo 8" "and the photo"
grep -q "issued_at [1-9]" "$T/out" && ok "and the time the code was made" || bad "no issued_at"
run 26 "redeemed a second time" -- "$REDEEM" "$T/d" border "$DECODED" passport
has err "already redeemed" "says already redeemed"
run 26 "its barcode form is the same code" -- "$REDEEM" "$T/d" border "$BAR" passport
run 0 "audit list" -- "$CLOUD" audit list --data "$T/d"
has out "code.issue" "issuing is audited"
has out "redeemed by relying party bank" "the redemption is audited with who redeemed it"
has out "relying party border was refused" "the refusal is audited"

# ---- the barcode form; a removed document; a revoked key
run 0 "a second code" -- "$DUOSIGN" present --state "$S" --doc passport --once
BAR2=$(awk '/^barcode \(EAN-13\): /{print $3}' "$T/out")
run 0 "redeemed by its barcode" -- "$REDEEM" "$T/d" border "$BAR2" passport
run 0 "a third code" -- "$DUOSIGN" present --state "$S" --doc passport --once
CODE3=$(awk '/^code: /{print $2}' "$T/out")
run 26 "a mistyped code" -- "$REDEEM" "$T/d" bank "${CODE3:0:31}A" passport
run 0 "remove the passport" -- "$CLOUD" citizen remove --data "$T/d" --citizen C-1001 --doc passport
run 26 "its unredeemed code died with it" -- "$REDEEM" "$T/d" bank "$CODE3" passport
run 26 "no code for a removed document" -- "$DUOSIGN" present --state "$S" --doc passport --once
run 0 "set it again" -- "$CLOUD" "${C[@]}" --doc passport --attr "name=Olena Petrenko"
run 0 "revoke the key" -- "$DUOSIGN" revoke --state "$S"
run 6 "a revoked key gets no code" -- "$DUOSIGN" present --state "$S" --doc passport --once
has err "DUO_E_KEY_REVOKED" "names the revocation"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
