#!/usr/bin/env bash
# Builds the libFuzzer targets with clang into build-fuzz/ and runs them.
#
#   scripts/fuzz.sh smoke [target...]          <= 10 s per target, <= ~5.5 min in all (CI)
#   scripts/fuzz.sh long [seconds] [target...] default 600 s per target
#   scripts/fuzz.sh regress [target...]        replay the committed corpora once
#
# Each target runs on a fresh copy of tests/fuzz/corpus/<target>/ (the
# committed seeds are never modified). A crash, leak, timeout or sanitizer
# report makes the script exit 1 after running every target; the reproducer
# stays in build-fuzz/fuzz-artifacts/<target>/ and the log in
# build-fuzz/fuzz-work/<target>.log. To keep a crash as a regression seed,
# copy it into tests/fuzz/corpus/<target>/ once fixed.
#
# Environment: DUO_FUZZ_BUILD_DIR (build-fuzz), DUO_FUZZ_SECONDS (smoke time
# per target; default: DUO_FUZZ_SMOKE_BUDGET (330 s) shared by the targets,
# at most 10 s and at least 3 s each; a target's setup counts against its time),
# DUO_FUZZ_ARGS (extra libFuzzer flags), CC (clang).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
mode=${1:-smoke}
[ $# -gt 0 ] && shift
case "$mode" in
  smoke) secs=${DUO_FUZZ_SECONDS:-} ;;
  long)
    secs=600
    if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then secs=$1; shift; fi ;;
  regress) secs=0 ;;
  -h|--help|help) usage ;;
  *) echo "fuzz.sh: unknown mode '$mode'" >&2; usage ;;
esac

build=${DUO_FUZZ_BUILD_DIR:-build-fuzz}
cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "fuzz.sh: $cc not found (libFuzzer needs clang)" >&2; exit 2; }

cmake -S . -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DDUO_BUILD_TESTS=ON -DDUO_BUILD_FUZZ=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target duo_fuzz_all

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(grep -v '^$' "$build/fuzz_targets.txt")
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz.sh: no fuzz targets configured" >&2; exit 1; }
if [ "$mode" = smoke ] && [ -z "$secs" ]; then
  # The whole smoke run stays within the budget however many targets there are.
  # 330 s keeps 7 s each for the 47 targets (the 12 engine targets run twice:
  # fuzz_p*_<x> on secp256k1 and fuzz_p*_<x>_p256 on P-256). Measured on the
  # shared 2-core machine, an engine target's 7 s run takes 13-17 s of wall
  # time (setup and exit come on top), so the P-256 twelve add ~3 min.
  secs=$(( ${DUO_FUZZ_SMOKE_BUDGET:-330} / ${#targets[@]} ))
  [ "$secs" -le 10 ] || secs=10
  [ "$secs" -ge 3 ] || secs=3
fi

work="$build/fuzz-work"
artifacts="$build/fuzz-artifacts"
mkdir -p "$work" "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
  bin="$build/bin/$t"
  [ -x "$bin" ] || { echo "fuzz.sh: no binary $bin" >&2; failed+=("$t"); continue; }
  seeds="tests/fuzz/corpus/$t"
  corpus="$work/$t"
  rm -rf "$corpus"
  mkdir -p "$corpus" "$artifacts/$t"
  if [ -d "$seeds" ]; then cp -R "$seeds"/. "$corpus"/; fi
  log="$work/$t.log"
  if [ "$mode" = regress ]; then
    args=(-runs=0 -print_final_stats=1)
  else
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  fi
  # shellcheck disable=SC2086
  if "$bin" "${args[@]}" -artifact_prefix="$artifacts/$t/" ${DUO_FUZZ_ARGS:-} "$corpus" >"$log" 2>&1; then
    stats=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
    printf 'ok    %-36s runs=%s %s corpus=%s\n' "$t" "${stats:-?}" "${cov:-}" "$(ls "$corpus" | wc -l)"
  else
    failed+=("$t")
    printf 'FAIL  %-36s see %s\n' "$t" "$log"
    ls -1 "$artifacts/$t"/ 2>/dev/null | sed "s|^|      reproducer: $artifacts/$t/|"
    grep -m3 -E 'ERROR: |SUMMARY: |fuzz_wire_.*: |engine fuzz ' "$log" | sed 's/^/      /' || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  echo "reproduce: $build/bin/<target> <reproducer>" >&2
  exit 1
fi
if [ "$mode" = regress ]; then
  echo "fuzz.sh: ${#targets[@]} target(s) clean (regress: committed corpora replayed)"
else
  echo "fuzz.sh: ${#targets[@]} target(s) clean ($mode, ${secs}s each)"
fi
