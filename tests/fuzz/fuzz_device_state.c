/* libFuzzer target: the device state-blob loader (duo_device_state_import:
 * the blob codec in device_half/lib/blob.c, then the value checks in
 * state.c: point on the curve, Paillier modulus, ckey in Z*_{N^2}).
 *
 * Input: one mode byte, then the blob.
 *   mode even: the blob as given (exercises the SHA-256 trailer check and
 *              everything before it: magic, version, flags, lengths);
 *   mode odd:  the trailer is recomputed first, so the mutations reach the
 *              field parser and the value checks behind the digest.
 * Checks: import returns DUO_OK or DUO_E_STATE_CORRUPT (never another code,
 * never a crash); after DUO_OK, export gives a blob that imports again and
 * exports to the same bytes (the loader keeps nothing it did not check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "duosign/device.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    duo_device_ctx *ctx = NULL, *ctx2 = NULL;
    uint8_t *blob, *out = NULL, *out2 = NULL;
    size_t len, out_len = 0, out2_len = 0;
    int r;

    if (size < 1 || size > (1u << 20)) return 0;
    len = size - 1;
    if ((blob = malloc(len ? len : 1)) == NULL) return 0;
    memcpy(blob, data + 1, len);
    if ((data[0] & 1) && len >= 32) SHA256(blob, len - 32, blob + len - 32);
    if (duo_device_ctx_new(&ctx) != DUO_OK) abort();
    r = duo_device_state_import(ctx, blob, len);
    if (r != DUO_OK && r != DUO_E_STATE_CORRUPT) abort();
    if (r == DUO_OK) {
        if (duo_device_state_export(ctx, &out, &out_len) != DUO_OK) abort();
        if (duo_device_ctx_new(&ctx2) != DUO_OK) abort();
        if (duo_device_state_import(ctx2, out, out_len) != DUO_OK) abort();
        if (duo_device_state_export(ctx2, &out2, &out2_len) != DUO_OK) abort();
        if (out_len != out2_len || memcmp(out, out2, out_len) != 0) abort();
        duo_device_blob_free(out, out_len);
        duo_device_blob_free(out2, out2_len);
        duo_device_ctx_free(ctx2);
    }
    duo_device_ctx_free(ctx);
    free(blob);
    return 0;
}
