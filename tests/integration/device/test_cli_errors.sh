#!/usr/bin/env bash
# Issue 13, items 4 and 5 (and 6, see the revocation part): the duosign CLI
# against a real duosign-cloud, on the paths where it used to send the user
# the wrong way or lose work.
#  - item 4: an output that cannot be written is refused before the cloud is
#    contacted (state unchanged); a signature the cloud made is never lost
#    (the output write fails after signing: the signature goes to a fallback
#    file next to the state, which is saved, exit 10).
#  - item 5: wrong CA (exit 11), CA not PEM (exit 3, one line), unreachable
#    (exit 8, names the address tried), busy (exit 12), token unknown/used
#    (13) and expired (14), a corrupted key row at the cloud (exit 15, not 9),
#    gRPC core's log lines only with --verbose.
# Usage: test_cli_errors.sh /path/to/duosign /path/to/duosign-cloud
set -uo pipefail
DUOSIGN=${1:?duosign}
CLOUD=${2:?duosign-cloud}
BITS=2048
T=$(mktemp -d /tmp/duo-cli-err-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() {
  stop_daemon
  rm -rf "$T"
}
trap cleanup EXIT
no_grpc_noise() { # gRPC core's own lines look like "E1204 22:58:36.76 ... file.cc:123]"
  if grep -Eq '^[DIWE][0-9]{4} [0-9:.]+ ' "$T/err"; then bad "$1: gRPC log lines on stderr: $(cat "$T/err")"; else ok "$1: no raw gRPC log lines"; fi
}
no_qmark() { grep -q '(?)' "$T/err" && bad "$1: '(?)' in: $(cat "$T/err")" || ok "$1: no '(?)'"; }

"$CLOUD" init --data "$T/data" >/dev/null || { echo "init failed"; exit 1; }
"$CLOUD" init --data "$T/other" >/dev/null || { echo "init failed"; exit 1; }
start_daemon "$T/data" --paillier-bits "$BITS" || exit 1
CA="$T/data/ca.pem"
printf '2468\n' >"$T/pin"
echo "a document" >"$T/doc"

# ---- item 5: enrolment errors, each with its own exit code and message
TOK=$(token alice)
run 11 "enrol with the wrong CA" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$T/other/ca.pem" --token "$TOK" \
    --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -q "certificate" "$T/err" && grep -q "$ADDR" "$T/err" && ok "wrong CA: says certificate and names $ADDR" \
  || bad "wrong CA message: $(cat "$T/err")"
grep -qi 'unreachable' "$T/err" && bad "wrong CA reported as unreachable" || ok "wrong CA not reported as unreachable"
no_grpc_noise "wrong CA"; no_qmark "wrong CA"
run 0 "--verbose shows gRPC's own lines, through our output" -- sh -c "\"$DUOSIGN\" enroll --verbose --server \"$ADDR\" --ca \"$T/other/ca.pem\" --token \"$TOK\" --state \"$T/a.state\" --pin-file \"$T/pin\" --paillier-bits $BITS; test \$? -eq 11"
grep -q '^duosign: grpc error: .*andshake' "$T/err" && ok "verbose: gRPC lines prefixed 'duosign: grpc'" || bad "verbose output: $(cat "$T/err")"
echo "not a certificate" >"$T/notpem"
run 3 "enrol with a CA file that is not PEM" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$T/notpem" --token "$TOK" \
    --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "not a PEM certificate" "$T/err" && ok "CA not PEM: one clear line" \
  || bad "CA not PEM: $(cat "$T/err")"
run 8 "enrol with nothing listening" -- "$DUOSIGN" enroll --server 127.0.0.1:1 --ca "$CA" --token "$TOK" \
    --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -q "check the server address (127.0.0.1:1)" "$T/err" && ok "unreachable: the hint names the address tried" \
  || bad "unreachable hint: $(cat "$T/err")"
no_grpc_noise "unreachable"; no_qmark "unreachable"
run 13 "enrol with an unknown token" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "not-a-real-token" \
    --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -qi 'token' "$T/err" && ok "unknown token: says token" || bad "unknown token: $(cat "$T/err")"
OLD=$("$CLOUD" token issue --data "$T/data" --citizen dave --ttl 1 2>/dev/null | tail -1)
sleep 2
run 14 "enrol with an expired token" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$OLD" \
    --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -qi 'expired' "$T/err" && ok "expired token: says expired" || bad "expired token: $(cat "$T/err")"

# ---- issue 12: the token's channel-key fingerprint (exit 22, nothing sent)
OTHER=$("$CLOUD" token issue --data "$T/other" --citizen alice 2>/dev/null | tail -1)
run 22 "enrol with a token naming another deployment's channel key" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" \
    --token "${TOK%%.*}.${OTHER#*.}" --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -q "not the one the enrolment token names" "$T/err" && ok "fingerprint mismatch: says so" \
  || bad "fingerprint mismatch: $(cat "$T/err")"
[ -e "$T/a.state" ] && bad "fingerprint mismatch wrote a state" || ok "fingerprint mismatch: no state written"
run 22 "enrol with a malformed fingerprint" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" \
    --token "${TOK%%.*}.NOT-HEX" --state "$T/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
grep -q "fingerprint is malformed" "$T/err" && ok "malformed fingerprint: says so" || bad "malformed: $(cat "$T/err")"
no_qmark "malformed fingerprint"

# ---- item 4: the state path is checked before the token is used
run 3 "enrol into a missing directory" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$TOK" \
    --state "$T/nodir/a.state" --pin-file "$T/pin" --paillier-bits "$BITS"
S="$T/a.state"
printf 'secret of a killed enrolment' >"$S.tmp.AbCdEf"
run 0 "enrol (the token was not spent by the refused attempts)" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" \
    --token "$TOK" --state "$S" --pin-file "$T/pin" --paillier-bits "$BITS"
[ -e "$S.tmp.AbCdEf" ] && bad "enrol left a killed enrolment's temporary file" || ok "enrol removed a leftover temporary file"
run 13 "enrol again with the used token" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$TOK" \
    --state "$T/a2.state" --pin-file "$T/pin" --paillier-bits "$BITS"
run 0 "pubkey" -- "$DUOSIGN" pubkey --state "$S" --out "$T/pub.pem"

# ---- item 4: outputs checked before the cloud is contacted
cp "$S" "$T/before"
run 3 "sign --out into a missing directory" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/nodir/x.sig" --pin-file "$T/pin"
same "$S" "$T/before" "state unchanged after the refused output"
run 3 "sign --out nodir/x.sig, server unreachable: refused before any connection" -- "$DUOSIGN" sign --state "$S" \
    --in "$T/doc" --out "$T/nodir/x.sig" --pin-file "$T/pin" --server 127.0.0.1:1
mkdir "$T/adir"
run 3 "sign --out a directory" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/adir" --pin-file "$T/pin"
same "$S" "$T/before" "state unchanged"
run 0 "sign (no clone after the refusals)" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/ok.sig" --pin-file "$T/pin"
openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/ok.sig" "$T/doc" >/dev/null 2>&1 && ok "signature verifies" || bad "signature"

# ---- item 4: the output write fails after the cloud signed: nothing is lost
cp "$S" "$T/before"
run 10 "output fails after signing (test hook)" -- env DUOSIGN_TEST_FAIL_OUTPUT=1 "$DUOSIGN" sign --state "$S" \
    --in "$T/doc" --out "$T/lost.sig" --pin-file "$T/pin"
FB=$(ls "$S".signature-*.der 2>/dev/null | head -1)
[ -n "$FB" ] && grep -qF "$FB" "$T/err" && ok "fallback file written and named: $FB" || bad "no fallback: $(cat "$T/err")"
[ -n "$FB" ] && openssl dgst -sha256 -verify "$T/pub.pem" -signature "$FB" "$T/doc" >/dev/null 2>&1 \
  && ok "the fallback signature verifies" || bad "fallback signature"
cmp -s "$S" "$T/before" && bad "the state was not saved after the signature" || ok "the state was saved (rotated secret)"
run 0 "sign after the fallback (the saved state is current)" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/ok2.sig" --pin-file "$T/pin"
run 0 "status" -- "$DUOSIGN" status --state "$S"
grep -q 'state: active' "$T/out" && ok "still active (no clone)" || bad "status: $(cat "$T/out")"

# ---- item 8: change-pin refuses a short new PIN before the PIN proof; item 4: refresh checks the state path
printf '12\n' >"$T/short"
cp "$S" "$T/before"
run 3 "change-pin to a 2-character PIN" -- "$DUOSIGN" change-pin --state "$S" --pin-file "$T/pin" --new-pin-file "$T/short"
grep -q 'at least 4' "$T/err" && ok "short new PIN: says the minimum" || bad "short new PIN: $(cat "$T/err")"
same "$S" "$T/before" "state unchanged by the refused PIN change"
run 0 "the old PIN still signs" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/ok3.sig" --pin-file "$T/pin"

# ---- item 5: --server overrides: the hint names the address tried, not the stored one
run 8 "status via a dead --server" -- "$DUOSIGN" status --state "$S" --server 127.0.0.1:1
grep -q "(127.0.0.1:1)" "$T/err" && ! grep -q "($ADDR)" "$T/err" && ok "hint names the override" || bad "hint: $(cat "$T/err")"

# ---- item 6: revoke --code CODE --citizen ID, no state file (the phone is lost)
S3="$T/carol.state"
run 0 "enrol carol" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$(token carol)" --state "$S3" \
    --pin-file "$T/pin" --paillier-bits "$BITS"
CODE=$(sed -n 's/^revocation code (keep it safe, shown once): //p' "$T/out")
[ -n "$CODE" ] && ok "revocation code printed" || bad "no revocation code in: $(cat "$T/out")"
grep -q 'if this device is lost: duosign revoke --code' "$T/out" && ok "enrol says how to use the code" \
  || bad "no revocation hint in: $(cat "$T/out")"
cp "$S3" "$T/before3"
run 2 "revoke with both --state and --code" -- "$DUOSIGN" revoke --state "$S3" --code "$CODE" --citizen carol \
    --server "$ADDR" --ca "$CA"
run 16 "revoke with a wrong code" -- "$DUOSIGN" revoke --code "aaaa-bbbb-cccc-dddd-eeee-ffff-gg" --citizen carol \
    --server "$ADDR" --ca "$CA"
grep -q "nothing was changed" "$T/err" && ok "wrong code: clear message" || bad "wrong code message: $(cat "$T/err")"
sed 's/carol/CITIZEN/g' "$T/err" >"$T/err.wrongcode"
run 16 "revoke with the right code but another citizen id" -- "$DUOSIGN" revoke --code "$CODE" --citizen nobody-here \
    --server "$ADDR" --ca "$CA"
sed 's/nobody-here/CITIZEN/g' "$T/err" >"$T/err.nocitizen"
same "$T/err.wrongcode" "$T/err.nocitizen" "a wrong code and an unknown citizen give the same answer"
run 0 "carol still signs after the refused revocations" -- "$DUOSIGN" sign --state "$S3" --in "$T/doc" \
    --out "$T/c.sig" --pin-file "$T/pin"
run 0 "status" -- "$DUOSIGN" status --state "$S3"
grep -q 'state: active' "$T/out" && ok "carol still active" || bad "status: $(cat "$T/out")"
"$CLOUD" audit list --data "$T/data" >"$T/audit" 2>&1
[ "$(grep -c 'key.revoke.refused' "$T/audit")" -ge 2 ] && ok "refusals are audited" \
  || bad "refusals not in the audit log: $(grep -i revoke "$T/audit")"
UPPER=$(printf '%s' "$CODE" | tr 'a-z' 'A-Z' | sed 's/-/ -/')
run 0 "revoke --code (as typed: upper case, a space) --citizen carol, no state file" -- "$DUOSIGN" revoke \
    --code "$UPPER" --citizen carol --server "$ADDR" --ca "$CA"
run 6 "carol's key no longer signs" -- "$DUOSIGN" sign --state "$S3" --in "$T/doc" --out "$T/c2.sig" --pin-file "$T/pin"
run 16 "the code is used up" -- "$DUOSIGN" revoke --code "$CODE" --citizen carol --server "$ADDR" --ca "$CA"
run 0 "alice is untouched" -- "$DUOSIGN" sign --state "$S" --in "$T/doc" --out "$T/a3.sig" --pin-file "$T/pin"

# ---- item 5: a corrupted key row at the cloud is the service's error (15), not the state file's (9)
S2="$T/bob.state"
run 0 "enrol bob" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$CA" --token "$(token bob)" --state "$S2" \
    --pin-file "$T/pin" --paillier-bits "$BITS"
KID=$(grep -o 'enrolled key [0-9a-f]*' "$T/out" | awk '{print $3}')
stop_daemon
sqlite3 "$T/data/keys.db" "UPDATE keys SET x1_sealed = zeroblob(length(x1_sealed)) WHERE hex(key_id) = upper('$KID')" \
  || bad "sqlite3 could not damage the row"
# (sessions last 600 s here: the held enrolment below must outlive any wait)
start_daemon "$T/data" --paillier-bits "$BITS" --max-sessions 1 --session-ttl 600 || exit 1
cp "$S2" "$T/before2"
run 15 "sign with a key row corrupted at the cloud" -- "$DUOSIGN" sign --state "$S2" --server "$ADDR" --in "$T/doc" \
    --out "$T/x.sig" --pin-file "$T/pin"
grep -q "signing service" "$T/err" && ! grep -q "state file is corrupted\|state file.*refused" "$T/err" \
  && ok "says the error is the service's" || bad "corrupted row message: $(cat "$T/err")"
same "$S2" "$T/before2" "bob's state unchanged"

# ---- item 5: the session cap is full: busy (12), not unreachable (8)
/usr/bin/python3 - "$ADDR" "$CA" "$(token erin)" > "$T/holder.out" <<'PY' &
import sys, os, time, grpc
addr, ca, tok = sys.argv[1], open(sys.argv[2], 'rb').read(), sys.argv[3].encode()
ch = grpc.secure_channel(addr, grpc.ssl_channel_credentials(root_certificates=ca))
start = ch.unary_unary('/duosign.v1.DuoSign/EnrollStart')
# EnrollStartRequest: token (1), device_nonce (2, 32 bytes), paillier_bits (3) = 2048
req = b'\x0a' + bytes([len(tok)]) + tok + b'\x12\x20' + os.urandom(32) + b'\x18\x80\x10'
for _ in range(120):  # the key pool may still be filling: follow the server's retry hint
    try:
        start(req, timeout=10)  # the enrolment session stays open: it holds the only slot
        break
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        time.sleep(1)
print('session held', flush=True)
time.sleep(60)
PY
HOLDER=$!
for _ in $(seq 1 150); do grep -q 'session held' "$T/holder.out" 2>/dev/null && break; sleep 1; done
grep -q 'session held' "$T/holder.out" || bad "the helper client could not open an enrolment session"
run 12 "sign while the session cap is full" -- "$DUOSIGN" sign --state "$S" --server "$ADDR" --in "$T/doc" \
    --out "$T/busy.sig" --pin-file "$T/pin"
grep -qi 'busy' "$T/err" && grep -q "$ADDR" "$T/err" && ok "busy: says busy, names $ADDR" || bad "busy message: $(cat "$T/err")"
grep -qi 'unreachable' "$T/err" && bad "busy reported as unreachable" || ok "busy not reported as unreachable"
kill "$HOLDER" 2>/dev/null; wait "$HOLDER" 2>/dev/null

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all CLI error-path checks passed"
