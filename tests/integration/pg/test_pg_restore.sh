#!/usr/bin/env bash
# A PostgreSQL store after a point-in-time recovery, and `check` on
# PostgreSQL (issue 20, items 4-6), with the real binaries on a real server
# (run through pg_env.sh):
#  1. The operator's mistakes: restore with both --in and --mark-only, with
#     neither; --mark-only on a SQLite directory; --mark-only while the
#     daemon serves: clear message, exit code from the error table, nothing
#     written (audit count and mark unchanged).
#  2. check on PostgreSQL: says whether data checksums are on, every policy
#     MAC and sealed value good, the keys counted; exit 0.
#  3. Two nodes on one database. A citizen enrols and signs (the signature
#     verified with OpenSSL); the database is dumped (the recovery target);
#     the citizen signs again and node 2 issues a token (both nodes' marks
#     move past the target); the database is put back to the dump (as a
#     point-in-time recovery would). Before the target, pin_failures set
#     with psql while the node serves: the sign is refused (exit 15),
#     key.policy_mac logged and audited, the row left as edited; put back,
#     the citizen signs. Node 1's serve, key list and check are
#     refused with exit 18 and a message naming --mark-only; `restore
#     --mark-only` on node 1 records store.restore (epoch 1) and moves its
#     mark; a second run changes nothing; node 2 is still refused until it
#     runs --mark-only too; then both nodes start and the audit chain
#     verifies. A node without a mark: nothing to do; a node whose mark is
#     unreadable: refused (naming --mark-only), then accepted.
# Usage: test_pg_restore.sh /path/to/duosign-cloud /path/to/duosign
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:?duosign}
: "${DUO_TEST_PG_URL:?run through tests/integration/pg/pg_env.sh}"
T=$(mktemp -d /tmp/duo-pg-restore-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() { stop_daemon; [ -n "${DUO_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
PGBIN=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_dump" ] && PGBIN="$d"; done
[ -n "$PGBIN" ] || { echo "no pg_dump under /usr/lib/postgresql/*/bin"; exit 1; }
q() { psql -X -q -At "$DUO_TEST_PG_URL" -c "$1"; }
audit_n() { q "SELECT count(*) FROM audit"; }
D1="$T/n1"
D2="$T/n2"
"$CLOUD" init --data "$D1" --store "$DUO_TEST_PG_URL" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
cp -a "$D1" "$D2" # the second node: the same KEK and URL, its own mark
"$CLOUD" init --data "$T/sq" >/dev/null 2>&1 || { echo "init (SQLite) failed"; exit 1; }
# One port for every start of node 1: the device's state names it.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

echo "== 1. mistakes"
run 2 "restore with --in and --mark-only" -- "$CLOUD" restore --data "$D1" --in "$T/x" --mark-only
grep -q 'exclude each other' "$T/err" && ok "says they exclude each other" || bad "message: $(cat "$T/err")"
run 2 "restore with neither" -- "$CLOUD" restore --data "$D1"
grep -q -- '--mark-only' "$T/err" && ok "names --mark-only" || bad "message: $(cat "$T/err")"
run 2 "restore --mark-only without --data" -- "$CLOUD" restore --mark-only
run 1 "restore --mark-only on a SQLite directory" -- "$CLOUD" restore --data "$T/sq" --mark-only
grep -q 'is SQLite' "$T/err" && grep -q -- '--in FILE' "$T/err" && ok "says SQLite restores from a file" ||
  bad "message: $(cat "$T/err")"
run 1 "restore --mark-only of a missing directory" -- "$CLOUD" restore --data "$T/nope" --mark-only
n0=$(audit_n)
mark0=$(sha256sum "$D1/keys.db.mark" | cut -c1-64)
start_daemon "$D1" --insecure || exit 1
run 1 "restore --mark-only while the daemon serves" -- "$CLOUD" restore --data "$D1" --mark-only
grep -q 'stop it first' "$T/err" && ok "says to stop the daemon" || bad "message: $(cat "$T/err")"
stop_daemon
[ "$(audit_n)" = "$n0" ] && ok "no audit entry from the refused commands" || bad "audit grew"
[ "$(sha256sum "$D1/keys.db.mark" | cut -c1-64)" = "$mark0" ] && ok "mark unchanged" || bad "mark changed"

echo "== 3a. enrol, sign, the recovery target, sign again"
start_daemon "$D1" --paillier-bits 2048 || exit 1
printf '2468\n' >"$T/pin"
head -c 3000 /dev/urandom >"$T/doc"
run 0 "enrol" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$D1/ca.pem" --token "$(token PITR1)" --state "$T/s" \
  --pin-file "$T/pin" --paillier-bits 2048
run 0 "sign" -- "$DUOSIGN" sign --state "$T/s" --in "$T/doc" --out "$T/sig1" --pin-file "$T/pin"
run 0 "public key" -- "$DUOSIGN" pubkey --state "$T/s" --out "$T/pub.pem"
openssl dgst -sha256 -verify "$T/pub.pem" -signature "$T/sig1" "$T/doc" >/dev/null 2>&1 &&
  ok "OpenSSL verifies the signature" || bad "OpenSSL does not verify the signature"
# The policy MAC while the node serves: pin_failures set with psql.
K=$(q "SELECT encode(key_id, 'hex') FROM keys")
q "UPDATE keys SET pin_failures = 2" && ok "pin_failures set to 2 with psql while serving" || bad "psql edit"
run 15 "the citizen's sign is refused (an error at the service)" -- \
  "$DUOSIGN" sign --state "$T/s" --in "$T/doc" --out "$T/sigx" --pin-file "$T/pin"
grep -q 'key.policy_mac' "$T/serve.log" && ok "the node logs key.policy_mac" || bad "no key.policy_mac in the log"
q "SELECT encode(key_id, 'hex') FROM audit WHERE kind = 'key.policy_mac'" | grep -q "$K" &&
  ok "audited key.policy_mac for the key" || bad "audit: $(q "SELECT kind FROM audit ORDER BY seq DESC LIMIT 3")"
[ "$(q "SELECT pin_failures FROM keys")" = 2 ] && ok "nothing rewrote the edited row" || bad "the edited row changed"
q "UPDATE keys SET pin_failures = 0" >/dev/null
run 0 "the row put back: the citizen signs" -- \
  "$DUOSIGN" sign --state "$T/s" --in "$T/doc" --out "$T/sig1" --pin-file "$T/pin"
"$PGBIN/pg_dump" -f "$T/target.sql" "$DUO_TEST_PG_URL" 2>"$T/err" && ok "recovery target dumped (daemon serving)" ||
  bad "pg_dump: $(cat "$T/err")"
n_target=$(audit_n)
run 0 "sign after the target" -- "$DUOSIGN" sign --state "$T/s" --in "$T/doc" --out "$T/sig2" --pin-file "$T/pin"
stop_daemon
run 0 "node 2 writes after the target" -- "$CLOUD" token issue --data "$D2" --citizen PITR2

echo "== 2. check on PostgreSQL"
run 0 "check" -- "$CLOUD" check --data "$D1"
grep -q 'data checksums' "$T/out" && ok "check says whether data checksums are on" || bad "check: $(cat "$T/out")"
grep -q 'policy MACs: ok, 1 keys (1 active' "$T/out" && ok "check counts the key" || bad "check: $(cat "$T/out")"
grep -q 'sealed values: ok' "$T/out" && ok "every sealed value opens" || bad "check: $(cat "$T/out")"
grep -q 'high-water mark: ok' "$T/out" && ok "check reports the mark" || bad "check: $(cat "$T/out")"
q "UPDATE keys SET pin_failures = 2" && ok "pin_failures edited with psql" || bad "psql edit"
run 15 "check reports the edited row" -- "$CLOUD" check --data "$D1"
grep -q 'policy MACs: FAILED' "$T/out" && ok "names the policy MAC" || bad "check: $(cat "$T/out")"
q "UPDATE keys SET pin_failures = 0" >/dev/null
run 0 "the row put back: check passes" -- "$CLOUD" check --data "$D1"

echo "== 3b. the database put back to the target"
q "DROP SCHEMA public CASCADE; CREATE SCHEMA public" 2>/dev/null && psql -X -q "$DUO_TEST_PG_URL" \
  -v ON_ERROR_STOP=1 -f "$T/target.sql" >/dev/null 2>"$T/err" && ok "database recovered to the target" ||
  bad "recovery: $(cat "$T/err")"
[ "$(audit_n)" = "$n_target" ] && ok "the store is back at $n_target audit entries" || bad "audit: $(audit_n)"
"$CLOUD" serve --data "$D1" --listen 127.0.0.1:0 --insecure >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 18 ] && ok "node 1 refuses the recovered store (exit 18)" || bad "serve exit $rc: $(cat "$T/err")"
grep -q 'OLDER than this node' "$T/err" && grep -q -- "--data $D1 --mark-only" "$T/err" &&
  ok "message names --mark-only" || bad "message: $(cat "$T/err")"
run 18 "key list refuses it too" -- "$CLOUD" key list --data "$D1"
run 18 "check reports it" -- "$CLOUD" check --data "$D1"
grep -q 'high-water mark: FAILED' "$T/out" && ok "check names the mark" || bad "check: $(cat "$T/out")"
[ "$(audit_n)" = "$n_target" ] && ok "nothing written by the refusals" || bad "audit grew"

echo "== 3c. restore --mark-only"
run 0 "node 1: restore --mark-only" -- "$CLOUD" restore --data "$D1" --mark-only
grep -q 'epoch 1' "$T/out" && ok "epoch 1" || bad "output: $(cat "$T/out")"
[ "$(audit_n)" = $((n_target + 1)) ] && ok "one audit entry" || bad "audit: $(audit_n)"
q "SELECT detail FROM audit WHERE kind = 'store.restore'" | grep -q 'mark-only.*epoch 1' &&
  ok "audit records store.restore (mark-only, epoch 1)" || bad "audit: $(q "SELECT kind, detail FROM audit")"
run 0 "node 1: a second run" -- "$CLOUD" restore --data "$D1" --mark-only
grep -q 'nothing to do' "$T/out" && ok "changes nothing" || bad "output: $(cat "$T/out")"
[ "$(audit_n)" = $((n_target + 1)) ] && ok "no second audit entry" || bad "audit: $(audit_n)"
run 0 "node 1: check" -- "$CLOUD" check --data "$D1"
"$CLOUD" serve --data "$D2" --listen 127.0.0.1:0 --insecure >"$T/out" 2>"$T/err"
rc=$?
[ $rc -eq 18 ] && ok "node 2 still refuses the store (exit 18)" || bad "node 2 serve exit $rc: $(cat "$T/err")"
run 0 "node 2: restore --mark-only" -- "$CLOUD" restore --data "$D2" --mark-only
grep -q 'epoch 1' "$T/out" && ok "node 2 at its epoch 1" || bad "output: $(cat "$T/out")"
start_daemon "$D1" --insecure && ok "node 1 serves" || bad "node 1 after --mark-only"
stop_daemon
start_daemon "$D2" --insecure && ok "node 2 serves" || bad "node 2 after --mark-only"
stop_daemon

echo "== 3d. a node without a mark, a node whose mark is unreadable"
cp -a "$D1" "$T/n3"
rm -f "$T/n3/keys.db.mark"
n1=$(audit_n)
run 0 "no mark: restore --mark-only" -- "$CLOUD" restore --data "$T/n3" --mark-only
grep -q 'nothing to do' "$T/out" && [ "$(audit_n)" = "$n1" ] && ok "nothing to do, no audit entry" ||
  bad "output: $(cat "$T/out"), audit $(audit_n)"
head -c 200 /dev/urandom >"$D2/keys.db.mark"
run 1 "node 2 with an unreadable mark: refused" -- "$CLOUD" key list --data "$D2"
grep -q -- "--data $D2 --mark-only" "$T/err" && ok "names --mark-only" || bad "message: $(cat "$T/err")"
run 0 "node 2: restore --mark-only replaces the unreadable mark" -- "$CLOUD" restore --data "$D2" --mark-only
[ "$(audit_n)" = $((n1 + 1)) ] && ok "audited" || bad "audit: $(audit_n)"
run 0 "node 2: key list" -- "$CLOUD" key list --data "$D2"
run 0 "token issue on node 1 after the restore" -- "$CLOUD" token issue --data "$D1" --citizen PITR3
run 0 "audit verify" -- "$CLOUD" audit verify --data "$D1"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
