/* duosign CLI: looking after an enrolled key: `duosign pubkey`, `status`,
 * `refresh` (rotate the device secret) and `change-pin`. */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"

int cmd_pubkey(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char pem[DUO_DEVICE_PUBKEY_PEM_MAX];
    size_t pem_len = sizeof pem;
    uint8_t pk[DUO_DEVICE_PUBKEY_BYTES];
    int r, ex;

    if ((ex = open_state(&s, o, 0)) != EX_OK_) goto out;
    if (o->raw) {
        if ((r = duo_device_pubkey(s.ctx, pk)) != DUO_OK) {
            ex = report(&s, "public key export", r);
            goto out;
        }
        if (o->out) {
            ex = write_output("public key", o->out, pk, sizeof pk, 0644);
        } else {
            print_hex(stdout, pk, sizeof pk);
            printf("\n");
        }
        goto out;
    }
    if ((r = duo_device_pubkey_pem(s.ctx, pem, &pem_len)) != DUO_OK) {
        ex = report(&s, "public key export", r);
        goto out;
    }
    if (o->out) {
        ex = write_output("public key", o->out, (const uint8_t *)pem, pem_len, 0644);
    } else {
        fputs(pem, stdout);
    }
out:
    session_close(&s);
    return ex;
}

static const char *state_name(int st) {
    switch (st) {
        case DUO_DEVICE_KEY_PENDING:
            return "pending";
        case DUO_DEVICE_KEY_ACTIVE:
            return "active";
        case DUO_DEVICE_KEY_LOCKED:
            return "locked";
        case DUO_DEVICE_KEY_SUSPENDED:
            return "suspended";
        case DUO_DEVICE_KEY_REVOKED:
            return "revoked";
        default:
            return "unknown";
    }
}

int cmd_status(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    duo_device_status_info st;
    uint8_t kid[DUO_DEVICE_KEY_ID_BYTES], pk[DUO_DEVICE_PUBKEY_BYTES];
    int r, ex;

    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_status(s.ctx, &st)) != DUO_OK) {
        ex = report(&s, "status", r);
        goto out;
    }
    if (duo_device_key_id(s.ctx, kid) == DUO_OK && duo_device_pubkey(s.ctx, pk) == DUO_OK) {
        printf("key id: ");
        print_hex(stdout, kid, sizeof kid);
        printf("\ncurve: %s\nserver: %s\nstate: %s\nPIN attempts left: %u\n",
               duo_device_curve_name(duo_device_curve(s.ctx)), duo_device_server_address(s.ctx), state_name(st.state),
               st.pin_attempts_left);
        if (st.locked_until > 0) {
            char tb[64];
            fmt_time(st.locked_until, tb, sizeof tb);
            printf("locked until: %s\n", tb);
        }
        printf("public key: ");
        print_hex(stdout, pk, sizeof pk);
        printf("%s\n", memcmp(pk, st.public_key, sizeof pk) == 0 ? "" : "  (MISMATCH with the server!)");
    }
    ex = EX_OK_;
    if (st.state == DUO_DEVICE_KEY_REVOKED || st.state == DUO_DEVICE_KEY_SUSPENDED)
        ex = EX_REVOKED;
    else if (st.state == DUO_DEVICE_KEY_LOCKED)
        ex = EX_LOCKED;
out:
    session_close(&s);
    return ex;
}

int cmd_refresh(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    int r, ex;
    if ((ex = check_state_writable(o)) != EX_OK_) return ex;
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((r = duo_device_refresh(s.ctx)) != DUO_OK) {
        ex = report(&s, "refresh", r);
        goto out;
    }
    if ((ex = save_state(&s, o->state)) == EX_OK_) printf("device secret rotated; state saved to %s\n", o->state);
out:
    session_close(&s);
    return ex;
}

int cmd_change_pin(const opts *o) {
    session s = {NULL, NULL, NULL, NULL};
    char old_pin[DUO_DEVICE_PIN_MAX + 2], new_pin[DUO_DEVICE_PIN_MAX + 2];
    size_t old_len = 0, new_len = 0;
    int r, ex;

    memset(old_pin, 0, sizeof old_pin);
    memset(new_pin, 0, sizeof new_pin);
    if (o->pin_file != NULL && o->new_pin_file == NULL) {
        usage_err("%s", "change-pin with --pin-file needs --new-pin-file for the new PIN");
        return EX_USAGE_;
    }
    if ((ex = check_state_writable(o)) != EX_OK_) return ex;
    if ((ex = open_state(&s, o, 1)) != EX_OK_) goto out;
    if ((ex = get_pin(o, 0, 0, old_pin, sizeof old_pin, &old_len)) != EX_OK_) goto out;
    if ((ex = get_pin(o, 1, 1, new_pin, sizeof new_pin, &new_len)) != EX_OK_) goto out;
    r = duo_device_change_pin(s.ctx, (const uint8_t *)old_pin, old_len, (const uint8_t *)new_pin, new_len);
    if (r == DUO_E_RESYNC_POSSIBLE && (r = duo_cli_resync(&s, old_pin, old_len)) == DUO_OK) /* then once more */
        r = duo_device_change_pin(s.ctx, (const uint8_t *)old_pin, old_len, (const uint8_t *)new_pin, new_len);
    if (r != DUO_OK) {
        ex = report(&s, "PIN change", r);
        goto out;
    }
    if ((ex = save_state(&s, o->state)) == EX_OK_) printf("PIN changed; state saved to %s\n", o->state);
out:
    OPENSSL_cleanse(old_pin, sizeof old_pin);
    OPENSSL_cleanse(new_pin, sizeof new_pin);
    session_close(&s);
    return ex;
}
