/* Server-side printing: meta.k8s.io/v1 Table answers for clients that ask
 * with Accept: application/json;as=Table (kubectl get), with the columns
 * kube-apiserver prints for each resource. */
#include "apiserver/objects.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void human_duration(long long secs, char *out, size_t len)
{
    long long m = secs / 60, h = secs / 3600, d = h / 24;
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(out, len, "%llds", secs);
    else if (m < 10)
        snprintf(out, len, secs % 60 ? "%lldm%llds" : "%lldm", m, secs % 60);
    else if (m < 180)
        snprintf(out, len, "%lldm", m);
    else if (h < 8)
        snprintf(out, len, m % 60 ? "%lldh%lldm" : "%lldh", h, m % 60);
    else if (h < 48)
        snprintf(out, len, "%lldh", h);
    else if (h < 24 * 8)
        snprintf(out, len, h % 24 ? "%lldd%lldh" : "%lldd", d, h % 24);
    else if (d < 365 * 2)
        snprintf(out, len, "%lldd", d);
    else
        snprintf(out, len, "%lldy%lldd", d / 365, d % 365);
}

/* Age of an RFC 3339 timestamp, "<unknown>" when missing. */
static void age(const char *ts, char *out, size_t len)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (!ts || !strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm)) {
        snprintf(out, len, "<unknown>");
        return;
    }
    human_duration((long long)(time(NULL) - timegm(&tm)), out, len);
}

static const char *str_at(json_object *o, const char *a, const char *b)
{
    json_object *v;
    if (!json_object_object_get_ex(o, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return json_object_is_type(v, json_type_null) ? NULL : json_object_get_string(v);
}

static void add_col(json_object *cols, const char *name, const char *type, const char *format)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "name", json_object_new_string(name));
    json_object_object_add(c, "type", json_object_new_string(type));
    json_object_object_add(c, "format", json_object_new_string(format));
    json_object_object_add(c, "description", json_object_new_string(name));
    json_object_object_add(c, "priority", json_object_new_int(0));
    json_object_array_add(cols, c);
}

static int is_event(const kle_apiserver__resource *r)
{
    return strcmp(r->plural, "events") == 0;
}

json_object *kle_apiserver__table_columns(const kle_apiserver__resource *r)
{
    json_object *cols = json_object_new_array();
    if (is_event(r)) {
        add_col(cols, "Last Seen", "string", "");
        add_col(cols, "Type", "string", "");
        add_col(cols, "Reason", "string", "");
        add_col(cols, "Object", "string", "");
        add_col(cols, "Message", "string", "");
        return cols;
    }
    add_col(cols, "Name", "string", "name");
    if (strcmp(r->plural, "namespaces") == 0)
        add_col(cols, "Status", "string", "");
    else if (strcmp(r->plural, "configmaps") == 0)
        add_col(cols, "Data", "integer", "");
    else if (strcmp(r->plural, "endpoints") == 0)
        add_col(cols, "Endpoints", "string", "");
    else if (strcmp(r->plural, "leases") == 0)
        add_col(cols, "Holder", "string", "");
    add_col(cols, "Age", "string", "");
    return cols;
}

json_object *kle_apiserver__table_row(const kle_apiserver__resource *r, json_object *obj)
{
    json_object *row = json_object_new_object(), *cells = json_object_new_array(), *v, *partial;
    char buf[64];
    const char *created = kle_apiserver__meta_str(obj, "creationTimestamp");

    if (is_event(r)) {
        const char *seen = str_at(obj, "lastTimestamp", NULL);
        const char *kind, *name, *msg;
        char object[600], lower[64];
        if (!seen)
            seen = str_at(obj, "eventTime", NULL);
        if (!seen)
            seen = str_at(obj, "deprecatedLastTimestamp", NULL);
        age(seen ? seen : created, buf, sizeof(buf));
        json_object_array_add(cells, json_object_new_string(buf));
        json_object_array_add(
            cells,
            json_object_new_string(str_at(obj, "type", NULL) ? str_at(obj, "type", NULL) : ""));
        json_object_array_add(
            cells,
            json_object_new_string(str_at(obj, "reason", NULL) ? str_at(obj, "reason", NULL) : ""));
        kind = str_at(obj, "involvedObject", "kind");
        name = str_at(obj, "involvedObject", "name");
        if (!kind) {
            kind = str_at(obj, "regarding", "kind");
            name = str_at(obj, "regarding", "name");
        }
        snprintf(lower, sizeof(lower), "%s", kind ? kind : "");
        for (char *p = lower; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        snprintf(object, sizeof(object), "%s/%s", lower, name ? name : "");
        json_object_array_add(cells, json_object_new_string(object));
        msg = str_at(obj, "message", NULL);
        if (!msg)
            msg = str_at(obj, "note", NULL);
        json_object_array_add(cells, json_object_new_string(msg ? msg : ""));
    } else {
        const char *name = kle_apiserver__meta_str(obj, "name");
        json_object_array_add(cells, json_object_new_string(name ? name : ""));
        if (strcmp(r->plural, "namespaces") == 0) {
            const char *phase = str_at(obj, "status", "phase");
            json_object_array_add(cells, json_object_new_string(phase ? phase : "Active"));
        } else if (strcmp(r->plural, "configmaps") == 0) {
            int n = 0;
            if (json_object_object_get_ex(obj, "data", &v) &&
                json_object_is_type(v, json_type_object))
                n += json_object_object_length(v);
            if (json_object_object_get_ex(obj, "binaryData", &v) &&
                json_object_is_type(v, json_type_object))
                n += json_object_object_length(v);
            json_object_array_add(cells, json_object_new_int(n));
        } else if (strcmp(r->plural, "endpoints") == 0) {
            json_object_array_add(cells, json_object_new_string("<none>"));
        } else if (strcmp(r->plural, "leases") == 0) {
            const char *h = str_at(obj, "spec", "holderIdentity");
            json_object_array_add(cells, json_object_new_string(h ? h : ""));
        }
        age(created, buf, sizeof(buf));
        json_object_array_add(cells, json_object_new_string(buf));
    }
    json_object_object_add(row, "cells", cells);
    partial = json_object_new_object();
    json_object_object_add(partial, "kind", json_object_new_string("PartialObjectMetadata"));
    json_object_object_add(partial, "apiVersion", json_object_new_string("meta.k8s.io/v1"));
    if (json_object_object_get_ex(obj, "metadata", &v))
        json_object_object_add(partial, "metadata", json_object_get(v));
    json_object_object_add(row, "object", partial);
    return row;
}

json_object *kle_apiserver__table(const kle_apiserver__resource *r, json_object *items,
                                  const char *rv)
{
    json_object *t = json_object_new_object(), *meta = json_object_new_object(),
                *rows = json_object_new_array();
    json_object_object_add(t, "kind", json_object_new_string("Table"));
    json_object_object_add(t, "apiVersion", json_object_new_string("meta.k8s.io/v1"));
    if (rv)
        json_object_object_add(meta, "resourceVersion", json_object_new_string(rv));
    json_object_object_add(t, "metadata", meta);
    json_object_object_add(t, "columnDefinitions", kle_apiserver__table_columns(r));
    for (size_t i = 0; i < json_object_array_length(items); i++)
        json_object_array_add(rows,
                              kle_apiserver__table_row(r, json_object_array_get_idx(items, i)));
    json_object_object_add(t, "rows", rows);
    return t;
}
