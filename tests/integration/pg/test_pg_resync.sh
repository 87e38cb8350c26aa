#!/usr/bin/env bash
# The one-time resynchronisation after a point-in-time recovery of a
# PostgreSQL store (issue 20, docs/SECURITY.md 1.10), with the real
# duosign-cloud and duosign binaries on a real server (run through
# pg_env.sh):
#  1. Two nodes on one database. Three citizens enrol on node 1 and sign
#     (OpenSSL verifies); the database is dumped (the recovery target); each
#     signs again, C twice (their device secrets rotate past the target);
#     copies of A's and C's states are kept.
#  2. The database is put back to the dump; `restore --mark-only` on node 1
#     opens one resync per key (epoch 1, in the store.restore entry's
#     transaction); on node 2 it opens none again.
#  3. Node 1 serves: A and B sign (the CLI resynchronises by itself, says so;
#     OpenSSL verifies), C runs `duosign resync`, then signs; the audit has
#     one secret.resync per key.
#  4. The copy of A (its secret before A resynced): caught as a clone (exit
#     7, the key frozen). The older copy of C: a second resync refused (exit
#     28, DUO_E_RESYNC_USED, audited resync.refused).
#  5. resync_epoch/resync_used set with psql: the row fails its policy MAC
#     (C's sign exit 15 while serving, key.policy_mac audited; check exit 15).
# Usage: test_pg_resync.sh /path/to/duosign-cloud /path/to/duosign
set -uo pipefail
CLOUD=${1:?duosign-cloud}
DUOSIGN=${2:?duosign}
: "${DUO_TEST_PG_URL:?run through tests/integration/pg/pg_env.sh}"
BITS=2048
T=$(mktemp -d /tmp/duo-pg-resync-XXXXXX)
. "$(dirname "$0")/../common/e2e_lib.sh"
cleanup() { stop_daemon; [ -n "${DUO_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
PGBIN=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/pg_dump" ] && PGBIN="$d"; done
[ -n "$PGBIN" ] || { echo "no pg_dump under /usr/lib/postgresql/*/bin"; exit 1; }
q() { psql -X -q -At "$DUO_TEST_PG_URL" -c "$1"; }
keyid() { "$CLOUD" key list --data "$D1" --citizen "$1" 2>/dev/null | grep -o '[0-9a-f]\{32\}' | head -1; }
audit_n() { q "SELECT count(*) FROM audit"; }
D1="$T/n1"
D2="$T/n2"
"$CLOUD" init --data "$D1" --store "$DUO_TEST_PG_URL" >/dev/null 2>&1 || { echo "init failed"; exit 1; }
cp -a "$D1" "$D2" # the second node: the same KEK and URL, its own mark
# One port for every start of node 1: the device states name it.
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '2468\n' >"$T/pin"
head -c 3000 /dev/urandom >"$T/doc"

echo "== 1. enrol, sign, the recovery target, sign on"
start_daemon "$D1" --paillier-bits "$BITS" || exit 1
for c in A B C; do
  run 0 "enrol $c" -- "$DUOSIGN" enroll --server "$ADDR" --ca "$D1/ca.pem" --token "$(token "PR$c")" --state "$T/$c" \
    --pin-file "$T/pin" --paillier-bits "$BITS"
  resync_sign_ok "$c" "$T/$c"
done
KA=$(keyid PRA) KB=$(keyid PRB) KC=$(keyid PRC)
"$PGBIN/pg_dump" -f "$T/target.sql" "$DUO_TEST_PG_URL" 2>"$T/err" && ok "recovery target dumped (node serving)" ||
  bad "pg_dump: $(cat "$T/err")"
for c in A B C; do resync_sign_ok "$c" "$T/$c"; done
cp "$T/C" "$T/C.old" # C's secret after one signature past the target: never in the recovered store
resync_sign_ok C "$T/C"
cp "$T/A" "$T/A.copy" # the same secret as A: a copy of the device
stop_daemon
run 0 "node 2 writes after the target (its mark moves past it)" -- "$CLOUD" token issue --data "$D2" --citizen PRX

echo "== 2. recovery, restore --mark-only on both nodes"
q "DROP SCHEMA public CASCADE; CREATE SCHEMA public" 2>/dev/null && psql -X -q "$DUO_TEST_PG_URL" \
  -v ON_ERROR_STOP=1 -f "$T/target.sql" >/dev/null 2>"$T/err" && ok "database recovered to the target" ||
  bad "recovery: $(cat "$T/err")"
[ "$(q "SELECT count(*) FROM keys WHERE resync_epoch <> 0 OR resync_used <> 0")" = 0 ] &&
  ok "no resync open before --mark-only" || bad "resync fields: $(q "SELECT resync_epoch, resync_used FROM keys")"
run 0 "node 1: restore --mark-only" -- "$CLOUD" restore --data "$D1" --mark-only
[ "$(q "SELECT count(*) FROM keys WHERE resync_epoch = 1 AND resync_used = 0")" = 3 ] &&
  ok "one resync opened per key (epoch 1)" || bad "resync fields: $(q "SELECT resync_epoch, resync_used FROM keys")"
q "SELECT detail FROM audit WHERE kind = 'store.restore'" | grep -q 'mark-only.*epoch 1.*resynchronise once' &&
  ok "store.restore says each key may resynchronise once" || bad "audit: $(q "SELECT kind, detail FROM audit")"
n1=$(audit_n)
versions=$(q "SELECT string_agg(version::text || ':' || resync_epoch::text, ',' ORDER BY key_id) FROM keys")
run 0 "node 2: restore --mark-only" -- "$CLOUD" restore --data "$D2" --mark-only
[ "$(q "SELECT string_agg(version::text || ':' || resync_epoch::text, ',' ORDER BY key_id) FROM keys")" = "$versions" ] &&
  ok "node 2's run leaves the open resyncs as they are" || bad "key rows changed by node 2's run"
[ "$(audit_n)" = $((n1 + 1)) ] && ok "node 2's store.restore audited" || bad "audit: $(audit_n), was $n1"

echo "== 3. every citizen signs again"
start_daemon "$D1" --paillier-bits "$BITS" || exit 1
resync_sign_ok A "$T/A" resync
resync_sign_ok A "$T/A"
resync_sign_ok B "$T/B" resync
run 0 "C: duosign resync" -- "$DUOSIGN" resync --state "$T/C" --pin-file "$T/pin"
resync_sign_ok C "$T/C"
[ "$(q "SELECT count(*) FROM keys WHERE resync_epoch = 0 AND resync_used = 1")" = 3 ] &&
  ok "every resync used (epoch 1)" || bad "resync fields: $(q "SELECT resync_epoch, resync_used FROM keys")"

echo "== 4. a copy of A, an older copy of C"
run 7 "the copy of A is caught as a clone" -- \
  "$DUOSIGN" sign --state "$T/A.copy" --in "$T/doc" --out "$T/sig.x" --pin-file "$T/pin"
[ "$(q "SELECT state FROM keys WHERE encode(key_id, 'hex') = '$KA'")" = suspended ] &&
  ok "A's key is frozen" || bad "A: $(q "SELECT state FROM keys")"
run 28 "C: a second resync (an older secret) is refused" -- "$DUOSIGN" resync --state "$T/C.old" --pin-file "$T/pin"
grep -q 'DUO_E_RESYNC_USED' "$T/err" && ok "names DUO_E_RESYNC_USED" || bad "message: $(cat "$T/err")"
resync_sign_ok C "$T/C"

echo "== 5. the resync fields under the policy MAC"
q "UPDATE keys SET resync_epoch = 1, resync_used = 0 WHERE encode(key_id, 'hex') = '$KC'" &&
  ok "C's resync opened again with psql while serving" || bad "psql edit"
run 15 "C's sign is refused (an error at the service)" -- \
  "$DUOSIGN" sign --state "$T/C" --in "$T/doc" --out "$T/sig.x" --pin-file "$T/pin"
q "SELECT encode(key_id, 'hex') FROM audit WHERE kind = 'key.policy_mac'" | grep -q "$KC" &&
  ok "audited key.policy_mac for C" || bad "audit: $(q "SELECT kind FROM audit ORDER BY seq DESC LIMIT 3")"
[ "$(q "SELECT resync_epoch || '|' || resync_used FROM keys WHERE encode(key_id, 'hex') = '$KC'")" = "1|0" ] &&
  ok "nothing rewrote the edited row" || bad "the edited row changed"
stop_daemon
run 15 "check refuses the edited row" -- "$CLOUD" check --data "$D1"
grep -q 'policy MACs: FAILED' "$T/out" && ok "check names the policy MAC" || bad "check: $(cat "$T/out")"

echo "== audit"
"$CLOUD" audit list --data "$D2" >"$T/audit" 2>&1
for c in A B C; do
  k=$(eval echo "\$K$c")
  [ "$(grep 'secret.resync' "$T/audit" | grep -c "$k")" = 1 ] && ok "audit: one secret.resync for $c" ||
    bad "secret.resync for $c: $(grep secret.resync "$T/audit")"
done
grep 'resync.refused' "$T/audit" | grep -q "$KC" && ok "audit: resync.refused for C" || bad "no resync.refused"
grep 'clone' "$T/audit" | grep -q "$KA" && ok "audit: the clone of A" || bad "no clone entry for A"
run 0 "the audit chain verifies" -- "$CLOUD" audit verify --data "$D2"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
