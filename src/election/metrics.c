/* Electors' metrics in the Prometheus text exposition format (0.0.4). */
#include "kle/elector.h"
#include "kle/log.h"
#include "kle/sys/errors.h"
#include "base/buf.h"
#include "election/elector_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends printf-formatted text (a failure is kept in b->failed). */
#define put kle_buf__printf

/* A label value: backslash, double quote and newline escaped. */
static void put_label(kle_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            put(b, "\\\\");
        else if (*v == '"')
            put(b, "\\\"");
        else if (*v == '\n')
            put(b, "\\n");
        else
            put(b, "%c", *v);
    }
}

int kle_metrics_format(char **out, const char *const *names, const kle_elector_stats *const *stats,
                       size_t n)
{
    if (!out || (n && (!names || !stats)))
        return kle_error_set(KLE_EINVAL, "kle_metrics_format: out, names and stats are required");
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || !stats[i])
            return kle_error_set(KLE_EINVAL, "kle_metrics_format: names[%zu] or stats[%zu] is NULL",
                                 i, i);
        if (stats[i]->version < 1 || stats[i]->version > KLE_ELECTOR_STATS_VERSION)
            return kle_error_set(KLE_EVERSION,
                                 "kle_metrics_format: stats[%zu] version %u is not "
                                 "supported",
                                 i, stats[i]->version);
    }
    kle_buf b = {0};
    /* client-go's names and help texts (k8s.io/client-go/tools/leaderelection/metrics.go). */
    if (n) {
        put(&b, "# HELP leader_election_master_status Gauge of if the reporting system is master "
                "of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the "
                "string used to identify the lease. Please make sure to group by name.\n"
                "# TYPE leader_election_master_status gauge\n");
        for (size_t i = 0; i < n; i++) {
            put(&b, "leader_election_master_status{name=\"");
            put_label(&b, names[i]);
            put(&b, "\"} %d\n", stats[i]->leader ? 1 : 0);
        }
        put(&b, "# HELP leader_election_slowpath_total Total number of slow path exercised in "
                "renewing leader leases. 'name' is the string used to identify the lease. Please "
                "make sure to group by name.\n"
                "# TYPE leader_election_slowpath_total counter\n");
        for (size_t i = 0; i < n; i++) {
            put(&b, "leader_election_slowpath_total{name=\"");
            put_label(&b, names[i]);
            put(&b, "\"} %llu\n", (unsigned long long)stats[i]->slowpath_total);
        }
    }
    /* What the elector knows beyond client-go's (stats versions 2 and 3). */
    size_t v2 = 0, led = 0;
    for (size_t i = 0; i < n; i++) {
        v2 += stats[i]->version >= 2;
        led += stats[i]->version >= 3 && stats[i]->acquisitions > 0;
    }
    if (v2) {
        put(&b, "# HELP kle_watch_stream_up Whether the elector's watch stream of the lock is "
                "healthy (1) or not (0: polling, or between streams).\n"
                "# TYPE kle_watch_stream_up gauge\n");
        for (size_t i = 0; i < n; i++) {
            if (stats[i]->version < 2)
                continue;
            put(&b, "kle_watch_stream_up{name=\"");
            put_label(&b, names[i]);
            put(&b, "\"} %d\n", stats[i]->watching ? 1 : 0);
        }
        put(&b, "# HELP kle_watch_stream_restarts_total Watch streams of the lock started after "
                "the first (reconnects).\n"
                "# TYPE kle_watch_stream_restarts_total counter\n");
        for (size_t i = 0; i < n; i++) {
            if (stats[i]->version < 2)
                continue;
            put(&b, "kle_watch_stream_restarts_total{name=\"");
            put_label(&b, names[i]);
            put(&b, "\"} %llu\n", (unsigned long long)stats[i]->watch_restarts);
        }
    }
    if (led) {
        put(&b, "# HELP kle_leader_fencing_token The fencing token (leaderTransitions) of this "
                "replica's current term as leader, or of its last one.\n"
                "# TYPE kle_leader_fencing_token gauge\n");
        for (size_t i = 0; i < n; i++) {
            if (stats[i]->version < 3 || !stats[i]->acquisitions)
                continue;
            put(&b, "kle_leader_fencing_token{name=\"");
            put_label(&b, names[i]);
            put(&b, "\"} %lld\n", (long long)stats[i]->token);
        }
        put(&b, "# HELP kle_leader_last_renewal_timestamp_seconds When this replica last "
                "acquired or renewed the lease (the renewTime it wrote), in seconds since the "
                "epoch.\n"
                "# TYPE kle_leader_last_renewal_timestamp_seconds gauge\n");
        for (size_t i = 0; i < n; i++) {
            if (stats[i]->version < 3 || !stats[i]->acquisitions)
                continue;
            int64_t ns = stats[i]->last_renew_wall_ns;
            put(&b, "kle_leader_last_renewal_timestamp_seconds{name=\"");
            put_label(&b, names[i]);
            put(&b, "\"} %lld.%03lld\n", (long long)(ns / KLE_NS_PER_SEC),
                (long long)(ns % KLE_NS_PER_SEC / KLE_NS_PER_MS));
        }
    }
    put(&b,
        "# HELP kle_log_dropped_lines_total Log lines dropped because the log output was "
        "blocked and the log queue full.\n"
        "# TYPE kle_log_dropped_lines_total counter\n"
        "kle_log_dropped_lines_total %llu\n",
        (unsigned long long)kle_log_dropped());
    if (b.failed) {
        free(b.data);
        return kle_error_set(KLE_ENOMEM, "kle_metrics_format: out of memory");
    }
    *out = b.data;
    return 0;
}

int kle_elector_metrics(char **out, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_metrics: out and elector are required");
    kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
    int rc = kle_elector_get_stats(&s, e);
    if (rc < 0)
        return rc;
    const char *name = kle_elector__metrics_name(e);
    const kle_elector_stats *sp = &s;
    return kle_metrics_format(out, &name, &sp, 1);
}
