#!/usr/bin/env bash
# Installs the Debian 12 packages duosign needs to build, test and run.
# Does nothing when every package is already installed. Needs root (or sudo)
# only when something is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang llvm libclang-rt-14-dev
  libssl-dev openssl libsecp256k1-dev
  libprotobuf-c-dev protobuf-c-compiler
  libgrpc-dev protobuf-compiler protobuf-compiler-grpc
  libuv1-dev libsqlite3-dev sqlite3 libpq-dev postgresql libjansson-dev libmicrohttpd-dev
  python3 python3-grpcio python3-protobuf python3-ecdsa python3-cryptography python3-jwcrypto time
  valgrind clang-format
  libp11-kit-dev softhsm2
  libqrencode-dev libpng-dev chromium zbar-tools
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# Node's jose (JWS cross-check, tests/integration/interop): the committed
# package-lock.json, from the npm registry only. Node itself (with npm) must
# be installed already: the interop test says so when it is not.
interop_node() {
  local d
  d="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/interop/node"
  if command -v npm >/dev/null && [ ! -d "$d/node_modules/jose" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error) || echo "setup: npm ci in $d failed" >&2
  fi
}

# openid-client for duosign-oidc's test and demo (tests/integration/oidc/node),
# from its committed package-lock.json.
oidc_node() {
  local d
  d="$(cd "$(dirname "$0")/.." && pwd)/tests/integration/oidc/node"
  if command -v npm >/dev/null && [ ! -d "$d/node_modules/openid-client" ]; then
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error) || echo "setup: npm ci in $d failed" >&2
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  interop_node
  oidc_node
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
interop_node
oidc_node
