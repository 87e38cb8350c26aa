/* The one error table, expanded into lookup functions (see errors.h). */
#include "duosign/errors.h"

#include <stddef.h>

typedef struct {
    int code;
    duo_err_category_t category;
    int grpc_status;
    int exit_code;
    const char *name;
    const char *message;
} duo__err_entry;

static const duo__err_entry duo__err_table[] = {
#define DUO__ERR_ROW(name, num, cat, grpc, ex, msg) {(num), DUO_CAT_##cat, (grpc), (ex), "DUO_" #name, (msg)},
    DUO_ERROR_MAP(DUO__ERR_ROW)
#undef DUO__ERR_ROW
};

static const duo__err_entry *duo__err_find(int err) {
    size_t i;
    for (i = 0; i < sizeof(duo__err_table) / sizeof(duo__err_table[0]); i++) {
        if (duo__err_table[i].code == err) {
            return &duo__err_table[i];
        }
    }
    return NULL;
}

const char *duo_strerror(int err) {
    const duo__err_entry *e = duo__err_find(err);
    return e != NULL ? e->message : "unknown error";
}

const char *duo_err_name(int err) {
    const duo__err_entry *e = duo__err_find(err);
    return e != NULL ? e->name : "DUO_E_UNKNOWN";
}

duo_err_category_t duo_err_category(int err) {
    const duo__err_entry *e = duo__err_find(err);
    return e != NULL ? e->category : DUO_CAT_INTERNAL;
}

int duo_err_grpc_status(int err) {
    const duo__err_entry *e = duo__err_find(err);
    return e != NULL ? e->grpc_status : 2;
}

int duo_err_exit_code(int err) {
    const duo__err_entry *e = duo__err_find(err);
    return e != NULL ? e->exit_code : 1;
}

int duo_err_is_known(int err) { return duo__err_find(err) != NULL; }
