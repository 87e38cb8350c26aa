#!/usr/bin/env bash
# `cmake --install` puts header, libraries and duosign-device.pc in a prefix;
# a program built only with `pkg-config duosign-device` links and runs
# against the shared library and against the static archive.
# Usage: install_check.sh BUILD_DIR
set -euo pipefail
build=${1:?build dir}
P=$(mktemp -d /tmp/duo-install-XXXXXX)
trap 'rm -rf "$P"' EXIT
cmake --install "$build" --prefix "$P" >/dev/null
libdir=$(dirname "$(find "$P" -name duosign-device.pc | head -1)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"
for f in include/duosign/device.h include/duosign/device_x509.h include/duosign/errors.h; do
  [ -f "$P/$f" ] || { echo "FAIL $f not installed"; exit 1; }
done
cat >"$P/app.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <duosign/device.h>
int main(void) {
    duo_device_ctx *ctx = NULL;
    if (duo_device_ctx_new(&ctx) != DUO_OK) return 1;
    if (duo_device_state_import(ctx, (const unsigned char *)"DUOS", 4) != DUO_E_STATE_CORRUPT) return 2;
    printf("%s\n", duo_strerror(DUO_E_STATE_CORRUPT));
    duo_device_ctx_free(ctx);
    return 0;
}
C
cc -std=c11 -Wall -Werror "$P/app.c" -o "$P/app-shared" $(pkg-config --cflags --libs duosign-device) -Wl,-rpath,"$libdir"
"$P/app-shared" >/dev/null && echo "ok   shared library via pkg-config"
cc -std=c11 -Wall -Werror "$P/app.c" -o "$P/app-static" $(pkg-config --cflags duosign-device) \
   -L"$libdir" -Wl,-Bstatic -lduosign-device -Wl,-Bdynamic $(pkg-config --libs-only-l --static duosign-device | sed 's/-lduosign-device//')
"$P/app-static" >/dev/null && echo "ok   static archive via pkg-config"
if ldd "$P/app-static" | grep -q duosign-device; then echo "FAIL static app still needs the .so"; exit 1; fi
[ -x "$P/bin/duosign" ] && "$P/bin/duosign" --help >/dev/null && echo "ok   installed duosign runs"

# ---- libduosign-device-grpc through its own pkg-config file (issue 13 item 14)
pc_grpc="$libdir/pkgconfig/duosign-device-grpc.pc"
[ -f "$pc_grpc" ] || { echo "FAIL duosign-device-grpc.pc not installed"; exit 1; }
[ -f "$P/include/duosign/device_grpc.h" ] || { echo "FAIL device_grpc.h not installed"; exit 1; }
cat >"$P/app_grpc.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <duosign/device.h>
#include <duosign/device_grpc.h>
int main(void) {
    duo_device_ctx *ctx = NULL;
    duo_grpc_transport *t = NULL;
    if (duo_device_version() != DUOSIGN_DEVICE_VERSION_NUMBER) return 3;
    if (strcmp(duo_device_version_string(), DUOSIGN_DEVICE_VERSION_STRING) != 0) return 4;
    if (duo_device_ctx_new(&ctx) != DUO_OK) return 1;
    if (duo_grpc_transport_new(&t, "127.0.0.1:1", NULL, 0, 1000) != DUO_OK) return 2;
    if (duo_device_set_transport(ctx, duo_grpc_transport_call, duo_grpc_transport_free_resp, t) != DUO_OK) return 5;
    printf("duosign-device %s\n", duo_device_version_string());
    duo_device_ctx_free(ctx);
    duo_grpc_transport_free(t);
    return 0;
}
C
cc -std=c11 -Wall -Werror "$P/app_grpc.c" -o "$P/app-grpc" $(pkg-config --cflags --libs duosign-device-grpc) -Wl,-rpath,"$libdir"
"$P/app-grpc" >"$P/app-grpc.out" && grep -q "duosign-device $(pkg-config --modversion duosign-device-grpc)" "$P/app-grpc.out" \
  && echo "ok   gRPC transport app via pkg-config duosign-device-grpc (version $(cat "$P/app-grpc.out"))" \
  || { echo "FAIL gRPC transport app"; exit 1; }
