#!/usr/bin/env bash
# Formats the tree's C sources with clang-format and the top-level .clang-format.
# Usage: scripts/format.sh           rewrite every tracked .c/.h file in place
#        scripts/format.sh --check   change nothing; list unformatted files, exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null; then
  echo "format: $cf not found (scripts/setup.sh installs it)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--check" ]; then
  bad=0
  for f in "${files[@]}"; do
    if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
      echo "format: $f is not formatted (run scripts/format.sh)" >&2
      bad=1
    fi
  done
  [ $bad -eq 0 ] && echo "format: ${#files[@]} files formatted"
  exit $bad
fi
"$cf" --style=file -i "${files[@]}"
