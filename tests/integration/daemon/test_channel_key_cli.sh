#!/bin/sh
# duosign-cloud channel-key (issue 12): list, rotate, retire, and the
# operator's mistakes (clear message, exit status 2 for usage, 1 for a
# refusal), and the keys surviving a KEK rotation (re-sealed).
# Usage: test_channel_key_cli.sh PATH/TO/duosign-cloud
set -u
CLOUD=${1:?duosign-cloud}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
run() { # run EXPECTED_EXIT GREP_PATTERN DESCRIPTION -- CMD...
  want=$1 pat=$2 what=$3
  shift 4
  out=$("$@" 2>&1)
  got=$?
  if [ "$got" -eq "$want" ] && printf '%s' "$out" | grep -q -- "$pat"; then
    echo "ok   $what"
  else
    echo "FAIL $what: exit $got (want $want), output: $out"
    fails=$((fails + 1))
  fi
}
D=$T/d
"$CLOUD" init --data "$D" >/dev/null 2>&1 || { echo "FAIL init"; exit 1; }
run 0 "^1 [0-9a-f]\{64\} fingerprint [0-9a-f]\{32\} current$" "init made channel key 1" -- "$CLOUD" channel-key list --data "$D"
run 2 "usage" "no subcommand" -- "$CLOUD" channel-key
run 2 "unknown subcommand 'bogus'" "unknown subcommand" -- "$CLOUD" channel-key bogus --data "$D"
run 2 "channel-key list: --data DIR is required" "list without --data" -- "$CLOUD" channel-key list
run 2 "give the key's number" "retire without a number" -- "$CLOUD" channel-key retire --data "$D"
run 2 "give the key's number" "retire with a bad number" -- "$CLOUD" channel-key retire x1 --data "$D"
run 1 "current one" "the current key is never retired" -- "$CLOUD" channel-key retire 1 --data "$D"
run 1 "cannot load the key-encryption key" "list on a missing data directory" -- "$CLOUD" channel-key list --data "$T/none"
run 0 "channel key 2 is current" "rotate" -- "$CLOUD" channel-key rotate --data "$D"
run 1 "no channel key 7" "retire an unknown key" -- "$CLOUD" channel-key retire 7 --data "$D"
before=$("$CLOUD" channel-key list --data "$D")
run 0 "rotated" "kek rotate" -- "$CLOUD" kek rotate --data "$D"
after=$("$CLOUD" channel-key list --data "$D" 2>&1)
if [ "$before" = "$after" ]; then echo "ok   the channel keys open after a KEK rotation"; else
  echo "FAIL channel keys after kek rotate: $after"; fails=$((fails + 1)); fi
run 0 "channel key 1 retired" "retire the old key" -- "$CLOUD" channel-key retire 1 --data "$D"
run 0 "^2 [0-9a-f]\{64\} fingerprint [0-9a-f]\{32\} current$" "only key 2 is left" -- "$CLOUD" channel-key list --data "$D"
# an edited file is refused, not used (the first hex digit of key 2 changed
# whatever it was: replacing it by a fixed digit is a no-op 1 time in 16)
sed -i -e 's/^2 0/2 x/' -e 's/^2 [1-9a-f]/2 0/' -e 's/^2 x/2 1/' "$D/channel.keys"
run 1 "does not open" "an edited channel.keys is refused" -- "$CLOUD" channel-key list --data "$D"
[ "$fails" -eq 0 ] && echo "all passed" && exit 0
exit 1
