/* JSON output exactly as qemu-img prints it. QEMU serializes a QDict, a
 * hash table of 512 buckets walked in bucket order (newest entry first
 * within a bucket), so users' scripts and diffs see members in that order;
 * we sort json-c's members the same way. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "tools/img/img.h"

static unsigned qdict_bucket(const char *key)
{
    unsigned v = 0x238F13AFu * (unsigned)strlen(key);
    for (unsigned i = 0; key[i]; i++)
        v += (unsigned)(unsigned char)key[i] << (i * 5 % 24);
    return (1103515243u * v + 12345u) % 512;
}

struct member {
    const char *key;
    struct json_object *val;
    unsigned bucket;
    int index;
};

static int member_cmp(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    if (x->bucket != y->bucket)
        return x->bucket < y->bucket ? -1 : 1;
    return y->index - x->index;
}

static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':  fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04X", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void put_value(FILE *f, struct json_object *o, int level);

static void put_object(FILE *f, struct json_object *o, int level)
{
    int n = json_object_object_length(o), i = 0;
    if (!n) {
        fputs("{}", f);
        return;
    }
    struct member *m = calloc(n, sizeof(*m));
    json_object_object_foreach(o, key, val) {
        m[i] = (struct member){ key, val, qdict_bucket(key), i };
        i++;
    }
    qsort(m, n, sizeof(*m), member_cmp);
    fputc('{', f);
    for (i = 0; i < n; i++) {
        fprintf(f, "%s\n%*s", i ? "," : "", (level + 1) * 4, "");
        put_string(f, m[i].key);
        fputs(": ", f);
        put_value(f, m[i].val, level + 1);
    }
    fprintf(f, "\n%*s}", level * 4, "");
    free(m);
}

static void put_array(FILE *f, struct json_object *o, int level)
{
    size_t n = json_object_array_length(o);
    if (!n) {
        fputs("[]", f);
        return;
    }
    fputc('[', f);
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s\n%*s", i ? "," : "", (level + 1) * 4, "");
        put_value(f, json_object_array_get_idx(o, i), level + 1);
    }
    fprintf(f, "\n%*s]", level * 4, "");
}

static void put_value(FILE *f, struct json_object *o, int level)
{
    switch (json_object_get_type(o)) {
    case json_type_null:    fputs("null", f); break;
    case json_type_boolean: fputs(json_object_get_boolean(o) ? "true" : "false", f); break;
    case json_type_double:  fprintf(f, "%.17g", json_object_get_double(o)); break;
    case json_type_int:     fprintf(f, "%" PRId64, json_object_get_int64(o)); break;
    case json_type_string:  put_string(f, json_object_get_string(o)); break;
    case json_type_object:  put_object(f, o, level); break;
    case json_type_array:   put_array(f, o, level); break;
    }
}

void qjson_print(FILE *f, struct json_object *o)
{
    put_value(f, o, 0);
    fputc('\n', f);
}

/* The "Format specific information:" block: members in QDict order, dashes
 * in names shown as spaces, nested objects and lists indented by four. */
static void dump_value(FILE *f, struct json_object *o, int indent);

static void dump_object(FILE *f, struct json_object *o, int indent)
{
    int n = json_object_object_length(o), i = 0;
    if (!n)
        return;
    struct member *m = calloc(n, sizeof(*m));
    json_object_object_foreach(o, key, val) {
        m[i] = (struct member){ key, val, qdict_bucket(key), i };
        i++;
    }
    qsort(m, n, sizeof(*m), member_cmp);
    for (i = 0; i < n; i++) {
        enum json_type t = json_object_get_type(m[i].val);
        bool composite = t == json_type_object || t == json_type_array;
        fprintf(f, "%*s", indent * 4, "");
        for (const char *k = m[i].key; *k; k++)
            fputc(*k == '-' ? ' ' : *k, f);
        fputs(composite ? ":\n" : ": ", f);
        dump_value(f, m[i].val, indent + 1);
        if (!composite)
            fputc('\n', f);
    }
    free(m);
}

static void dump_value(FILE *f, struct json_object *o, int indent)
{
    switch (json_object_get_type(o)) {
    case json_type_object:
        dump_object(f, o, indent);
        break;
    case json_type_array:
        for (size_t i = 0; i < json_object_array_length(o); i++) {
            struct json_object *e = json_object_array_get_idx(o, i);
            enum json_type t = json_object_get_type(e);
            bool composite = t == json_type_object || t == json_type_array;
            fprintf(f, "%*s[%zu]:%c", indent * 4, "", i, composite ? '\n' : ' ');
            dump_value(f, e, indent + 1);
            if (!composite)
                fputc('\n', f);
        }
        break;
    case json_type_boolean:
        fputs(json_object_get_boolean(o) ? "true" : "false", f);
        break;
    case json_type_int:
        fprintf(f, "%" PRId64, json_object_get_int64(o));
        break;
    case json_type_null:
        fputs("null", f);
        break;
    default:
        fputs(json_object_get_string(o), f);
        break;
    }
}

void qjson_dump_human(FILE *f, struct json_object *o, int indent)
{
    dump_value(f, o, indent);
}
