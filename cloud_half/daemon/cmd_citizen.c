/* duosign-cloud's citizen document registry (issue 19, docs/DOCUMENTS.md):
 *
 *   citizen set    --data DIR --citizen ID --doc TYPE --attr NAME=VALUE...
 *                  [--photo FILE]
 *   citizen show   --data DIR --citizen ID --doc TYPE
 *   citizen list   --data DIR [--citizen ID]
 *   citizen remove --data DIR --citizen ID --doc TYPE
 *
 * A document is what a presentation code shows a verifier. Every change is
 * one store transaction with its audit entry, which names the attributes
 * but never their values (the audit log is read by more people than the
 * registry). Store errors exit with the error table's code. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "docstore.h"

#define PROG "duosign-cloud"

static const char usage[] =
    "usage: " PROG " citizen set    --data DIR --citizen ID --doc TYPE --attr NAME=VALUE... [--photo FILE]\n"
    "       " PROG " citizen show   --data DIR --citizen ID --doc TYPE\n"
    "       " PROG " citizen list   --data DIR [--citizen ID]\n"
    "       " PROG " citizen remove --data DIR --citizen ID --doc TYPE\n\n"
    "The registry of the citizens' documents that presentation codes show (duosign present).\n"
    "TYPE and NAME: 1..32 of a-z, 0-9 and _ (passport, birth_date); VALUE: up to 256 bytes of\n"
    "UTF-8 without control characters; at most 32 attributes. set replaces the whole document.\n"
    "--photo: a picture (any format, at most 64 KiB) handed to verifiers as stored.\n";

typedef struct args {
    const char *sub, *dir, *citizen, *doc, *photo;
    const char *attrs[DUO_DOC_ATTRS_MAX + 1];
    size_t n_attrs;
} args;

/* "duosign-cloud: WHAT: the error's message"; returns the error table's
 * exit code for r. */
static int fail_code(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail_code(int r, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s\n", duo_strerror(r));
    return duo_err_exit_code(r);
}

static void parse(args *a, int argc, char **argv) {
    const char *v;
    for (int i = 2; i < argc; i++) {
        if (duo__is_help(argv[i])) {
            printf("%s", usage);
            exit(DUO_EXIT_OK);
        } else if (duo__opt_val(argc, argv, &i, "--data", &v)) {
            a->dir = v;
        } else if (duo__opt_val(argc, argv, &i, "--citizen", &v)) {
            a->citizen = v;
        } else if (strcmp(a->sub, "list") && duo__opt_val(argc, argv, &i, "--doc", &v)) {
            a->doc = v;
        } else if (!strcmp(a->sub, "set") && duo__opt_val(argc, argv, &i, "--attr", &v)) {
            if (a->n_attrs == DUO_DOC_ATTRS_MAX) {
                fprintf(stderr, PROG ": citizen set: at most %d --attr\n", DUO_DOC_ATTRS_MAX);
                exit(DUO_EXIT_USAGE);
            }
            a->attrs[a->n_attrs++] = v;
        } else if (!strcmp(a->sub, "set") && duo__opt_val(argc, argv, &i, "--photo", &v)) {
            a->photo = v;
        } else {
            duo__unknown_arg("citizen", argv[i]);
        }
    }
    duo__need("citizen", "--data DIR", a->dir);
    if (strcmp(a->sub, "list")) {
        duo__need("citizen", "--citizen ID", a->citizen);
        duo__need("citizen", "--doc TYPE (e.g. passport)", a->doc);
        if (!duo_doc_name_ok(a->doc, DUO_DOC_TYPE_MAX)) {
            fprintf(stderr, PROG ": --doc must be 1..%d of a-z, 0-9 and _ (e.g. passport), not '%s'\n",
                    DUO_DOC_TYPE_MAX, a->doc);
            exit(DUO_EXIT_USAGE);
        }
    }
    if (!strcmp(a->sub, "set") && a->n_attrs == 0) {
        fprintf(stderr, PROG ": citizen set needs at least one --attr NAME=VALUE\n");
        exit(DUO_EXIT_USAGE);
    }
    if (a->citizen != NULL && (a->citizen[0] == '\0' || strlen(a->citizen) > DUO_CITIZEN_ID_MAX)) {
        fprintf(stderr, PROG ": --citizen must be 1..%d bytes\n", DUO_CITIZEN_ID_MAX);
        exit(DUO_EXIT_USAGE);
    }
}

/* Splits "name=value" into row's next attribute; DUO_E_DOC_ATTR with a
 * message when it is not one. */
static int put_attr(duo_doc_row *row, const char *s) {
    const char *eq = strchr(s, '=');
    size_t nn = eq == NULL ? 0 : (size_t)(eq - s);
    duo_doc_attr *at = &row->attrs[row->n_attrs];
    if (eq == NULL || nn == 0 || nn > DUO_DOC_ATTR_NAME_MAX || strlen(eq + 1) > DUO_DOC_ATTR_VALUE_MAX) {
        fprintf(stderr, PROG ": --attr '%s' is not NAME=VALUE (NAME 1..%d of a-z, 0-9, _; VALUE up to %d bytes)\n", s,
                DUO_DOC_ATTR_NAME_MAX, DUO_DOC_ATTR_VALUE_MAX);
        return DUO_E_DOC_ATTR;
    }
    memcpy(at->name, s, nn);
    at->name[nn] = '\0';
    strcpy(at->value, eq + 1);
    if (!duo_doc_name_ok(at->name, DUO_DOC_ATTR_NAME_MAX) || !duo_doc_value_ok(at->value)) {
        fprintf(stderr,
                PROG ": --attr '%s': the name must be a-z, 0-9 and _; the value may not hold control characters\n", s);
        return DUO_E_DOC_ATTR;
    }
    for (size_t i = 0; i < row->n_attrs; i++)
        if (strcmp(row->attrs[i].name, at->name) == 0) {
            fprintf(stderr, PROG ": --attr %s is given twice\n", at->name);
            return DUO_E_DOC_ATTR;
        }
    row->n_attrs++;
    return DUO_OK;
}

static int do_set(const args *a, duo_doc_row *row) {
    char detail[DUO_AUDIT_DETAIL_MAX + 1];
    size_t used;
    snprintf(row->citizen_id, sizeof row->citizen_id, "%s", a->citizen);
    snprintf(row->doc_type, sizeof row->doc_type, "%s", a->doc);
    for (size_t i = 0; i < a->n_attrs; i++)
        if (put_attr(row, a->attrs[i]) != DUO_OK) return duo_err_exit_code(DUO_E_DOC_ATTR);
    if (a->photo != NULL) {
        char *data = NULL, err[DUO_ERRMSG_MAX];
        size_t n = 0;
        if (duo__read_file(&data, &n, a->photo, DUO_DOC_PHOTO_MAX, err, sizeof err) != DUO_OK) {
            fprintf(stderr, PROG ": --photo: %s (at most %d bytes)\n", err, DUO_DOC_PHOTO_MAX);
            return duo_err_exit_code(DUO_E_DOC_ATTR);
        }
        memcpy(row->photo, data, n);
        row->photo_len = n;
        free(data);
    }
    used = (size_t)snprintf(detail, sizeof detail, "document %s set by the operator: attributes", a->doc);
    for (size_t i = 0; i < row->n_attrs && used < sizeof detail; i++)
        used += (size_t)snprintf(detail + used, sizeof detail - used, " %s", row->attrs[i].name);
    if (used < sizeof detail && row->photo_len)
        snprintf(detail + used, sizeof detail - used, ", photo of %zu bytes", row->photo_len);
    duo_keystore *ks = duo__open_or_die(a->dir);
    duo_audit_event ev = {.kind = "citizen.doc.set", .citizen_id = a->citizen, .detail = detail};
    int r = duo_keystore_doc_set(ks, row, &ev);
    duo_keystore_free(ks);
    if (r != DUO_OK) return fail_code(r, "cannot set %s's %s", a->citizen, a->doc);
    printf("document %s of citizen %s set: %zu attributes%s\n", a->doc, a->citizen, row->n_attrs,
           row->photo_len ? ", photo" : "");
    return DUO_EXIT_OK;
}

static void print_doc(const duo_doc_row *row) {
    char tb[64];
    duo__fmt_time(tb, sizeof tb, row->updated_at);
    printf("citizen %s  document %s  (updated %s)\n", row->citizen_id, row->doc_type, tb);
    for (size_t i = 0; i < row->n_attrs; i++) printf("  %s = %s\n", row->attrs[i].name, row->attrs[i].value);
    if (row->photo_len) printf("  photo: %zu bytes\n", row->photo_len);
}

static int list_cb(void *data, const duo_doc_row *row) {
    (*(size_t *)data)++;
    print_doc(row);
    return 0;
}

int duo__cmd_citizen(int argc, char **argv) {
    args a;
    duo_doc_row *row;
    int r, ex = DUO_EXIT_OK;
    memset(&a, 0, sizeof a);
    if (argc < 2 || duo__is_help(argv[1])) {
        printf("%s", usage);
        return argc < 2 ? DUO_EXIT_USAGE : DUO_EXIT_OK;
    }
    a.sub = argv[1];
    if (strcmp(a.sub, "set") && strcmp(a.sub, "show") && strcmp(a.sub, "list") && strcmp(a.sub, "remove"))
        duo__unknown_arg("citizen", a.sub);
    parse(&a, argc, argv);
    if ((row = calloc(1, sizeof *row)) == NULL) return duo__fail("out of memory");
    if (!strcmp(a.sub, "set")) {
        ex = do_set(&a, row);
    } else {
        duo_keystore *ks = duo__open_or_die(a.dir);
        if (!strcmp(a.sub, "show")) {
            if ((r = duo_keystore_doc_get(ks, row, a.citizen, a.doc)) == DUO_OK)
                print_doc(row);
            else
                ex = fail_code(r, "no %s for citizen %s", a.doc, a.citizen);
        } else if (!strcmp(a.sub, "list")) {
            size_t n = 0;
            if ((r = duo_keystore_doc_list(ks, a.citizen, list_cb, &n)) != DUO_OK)
                ex = fail_code(r, "cannot list the documents%s%s", a.citizen ? " of " : "", a.citizen ? a.citizen : "");
            else
                printf("%zu document(s)\n", n);
        } else {
            duo_audit_event ev = {.kind = "citizen.doc.remove", .citizen_id = a.citizen, .detail = a.doc};
            if ((r = duo_keystore_doc_remove(ks, a.citizen, a.doc, &ev)) == DUO_OK)
                printf("document %s of citizen %s removed (its unredeemed codes with it)\n", a.doc, a.citizen);
            else
                ex = fail_code(r, "cannot remove %s of citizen %s", a.doc, a.citizen);
        }
        duo_keystore_free(ks);
    }
    free(row);
    return ex;
}
