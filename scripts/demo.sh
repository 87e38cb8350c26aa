#!/usr/bin/env bash
# End-to-end demonstration on an existing build directory ($1, default build).
set -euo pipefail
build=${1:-build}
echo "demo: nothing end-to-end is built yet"
