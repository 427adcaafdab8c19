/*
 * A controller that works only while it leads: libkle's leader election in
 * a complete program.
 *
 * It connects as kubectl does (--kubeconfig, else $KUBECONFIG or
 * ~/.kube/config, or in a pod its service account), campaigns for a lock of
 * the type --resource-lock names (leases by default) under an identity of
 * its own (--identity, else kle_default_identity(): $POD_NAME, else the
 * hostname and a random UUID), and "reconciles" once a second while it
 * leads. When leadership is lost (renewals failed, or another holder took
 * the lease) or handed over to another replica (kle transfer), it campaigns
 * again; SIGTERM or SIGINT stop it, releasing the lease so that another
 * replica takes over at once. With --metrics-file PATH it writes its
 * metrics there every 5 s (leadership, fencing token, last renewal, watch
 * stream, API requests by verb and code), for a textfile collector.
 *
 * Build against an installed libkle:
 *     cc -Wall -Wextra -Werror controller.c $(pkg-config --cflags --libs kle) -o controller
 * Run:
 *     ./controller --lock-name my-controller
 */
#include <kle/kle.h>
#include <kle/client.h>
#include <kle/locks.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The elector, for the signal handler: kle_elector_stop() is safe there. */
static kle_elector *volatile running_elector;
static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
    if (running_elector)
        kle_elector_stop(running_elector);
}

/*
 * Metrics (--metrics-file): a thread writes the elector's metrics
 * (kle_elector_metrics(), from its kle_elector_stats) and the client's
 * (kle_client_metrics()) to a file every 5 s, replacing it atomically.
 */
static pthread_mutex_t metrics_mu = PTHREAD_MUTEX_INITIALIZER;
static kle_elector *metrics_elector; /* the running campaign's, under metrics_mu */
static kle_client *metrics_client;
static const char *metrics_file;
static kle_event *metrics_stop;
static pthread_t metrics_thread;

/* Publishes the running elector (or NULL) to the signal handler and the metrics thread. */
static void set_running(kle_elector *e)
{
    pthread_mutex_lock(&metrics_mu);
    running_elector = e;
    metrics_elector = e;
    pthread_mutex_unlock(&metrics_mu);
}

static void write_metrics(void)
{
    char *elector = NULL, *api = NULL, tmp[4096];
    pthread_mutex_lock(&metrics_mu);
    if (metrics_elector && kle_elector_metrics(&elector, metrics_elector) < 0)
        elector = NULL;
    pthread_mutex_unlock(&metrics_mu);
    if (kle_client_metrics(&api, metrics_client) < 0)
        api = NULL;
    snprintf(tmp, sizeof(tmp), "%s.tmp", metrics_file);
    FILE *f = fopen(tmp, "w");
    if (f) {
        int ok = fputs(elector ? elector : "", f) >= 0 && fputs(api ? api : "", f) >= 0;
        if (fclose(f) == 0 && ok)
            rename(tmp, metrics_file);
    }
    kle_free(elector);
    kle_free(api);
}

static void *metrics_main(void *arg)
{
    (void)arg;
    struct pollfd p = {kle_event_fd(metrics_stop), POLLIN, 0};
    do
        write_metrics();
    while (poll(&p, 1, 5000) == 0);
    return NULL;
}

/* Starts the metrics thread (with --metrics-file); returns 0 or -1. */
static int start_metrics(kle_client *client)
{
    if (!metrics_file)
        return 0;
    metrics_client = client;
    if (kle_event_new(&metrics_stop) < 0)
        return -1;
    if (pthread_create(&metrics_thread, NULL, metrics_main, NULL) != 0) {
        kle_event_free(metrics_stop);
        metrics_stop = NULL;
        return -1;
    }
    return 0;
}

static void stop_metrics(void)
{
    if (!metrics_stop)
        return;
    kle_event_set(metrics_stop);
    pthread_join(metrics_thread, NULL);
    kle_event_free(metrics_stop);
}

/* README: begin */
static void lead(kle_leading *leading, void *data)
{
    const char *identity = data;
    /* The fencing token: higher with every change of leader. */
    printf("%s: leading (fencing token %d)\n", identity, kle_leading_transitions(leading));
    fflush(stdout);
    while (kle_leading_wait_ns(leading, KLE_SEC(1)) != 0) {
        /* Reconcile here: the wait returns 0 as soon as leadership ends. */
    }
    printf("%s: stopped leading\n", identity);
    fflush(stdout);
}

static void stopped(void *data)
{
    (void)data;
}

static int campaign(kle_client *client, const char *resource_lock, const char *lock_name,
                    const char *identity)
{
    kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
    lo.name = lock_name;
    lo.identity = identity;
    kle_lock *lock;
    if (kle_lock_new_by_name(&lock, resource_lock, client, &lo) < 0)
        return kle_error_last()->code;

    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT; /* 15 s / 10 s / 2 s */
    cfg.lock = lock;
    cfg.release_on_cancel = 1; /* release on SIGTERM: the next leader starts at once */
    cfg.callbacks.on_started_leading = lead;
    cfg.callbacks.on_stopped_leading = stopped;
    cfg.callbacks.data = (void *)identity;
    kle_elector *e;
    if (kle_elector_new(&e, &cfg) < 0) {
        kle_lock_free(lock); /* on failure the lock is still ours */
        return kle_error_last()->code;
    }
    set_running(e); /* for the signal handler and the metrics */
    if (stopping)
        kle_elector_stop(e); /* a signal came before the handler could see e */
    int rc;
    /* Campaign until stopped: after a loss (renewals failed, or the watch
     * showed another holder), and after a handover to another replica
     * (0 without a stop), campaign again. Any other code is a failure. */
    while ((rc = kle_elector_run(e)) == 0 || kle_error_is_lost_leadership(rc)) {
        if (stopping) {
            rc = 0;
            break;
        }
        fprintf(stderr, "%s: %s %s; campaigning again\n", identity,
                rc == 0 ? "handed over" : "lost", lock_name);
    }
    set_running(NULL);
    kle_elector_free(e); /* frees the lock too */
    return rc;
}

/* Returns the exit code: 0 when stopped by a signal, 1 on failure. */
static int controller(const kle_client_opts *co, const char *resource_lock, const char *lock_name,
                      const char *identity)
{
    /* In a pod, its service account; else kubeconfig as kubectl finds it. */
    kle_client *client;
    if (kle_client_new_default(&client, co) < 0) {
        fprintf(stderr, "controller: cannot connect: %s\n", kle_error_last()->message);
        return 1;
    }
    char *own_identity = NULL; /* $POD_NAME, else hostname_UUID */
    if (!identity && kle_default_identity(&own_identity) < 0) {
        fprintf(stderr, "controller: %s\n", kle_error_last()->message);
        kle_client_free(client);
        return 1;
    }
    if (!identity)
        identity = own_identity;
    fprintf(stderr, "controller: campaigning for %s/%s as %s\n", resource_lock, lock_name,
            identity);
    if (start_metrics(client) < 0)
        fprintf(stderr, "controller: cannot start the metrics thread\n");
    int rc = campaign(client, resource_lock, lock_name, identity);
    stop_metrics();
    if (rc < 0)
        fprintf(stderr, "controller: %s\n", kle_error_last()->message);
    else
        fprintf(stderr, "controller: stopped\n");
    kle_free(own_identity);
    kle_client_free(client); /* after the lock that used it */
    return rc < 0 ? 1 : 0;
}
/* README: end */

static void usage(void)
{
    fprintf(stderr, "usage: controller --lock-name NAME [--resource-lock TYPE] "
                    "[--identity ID] [--kubeconfig PATH] [--namespace NS] [--metrics-file PATH]\n");
}

int main(int argc, char **argv)
{
    const char *lock_name = NULL, *resource_lock = "leases", *identity = NULL;
    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (strcmp(argv[i], "--lock-name") == 0)
            lock_name = v;
        else if (strcmp(argv[i], "--resource-lock") == 0)
            resource_lock = v;
        else if (strcmp(argv[i], "--identity") == 0)
            identity = v;
        else if (strcmp(argv[i], "--kubeconfig") == 0)
            co.kubeconfig = v;
        else if (strcmp(argv[i], "--namespace") == 0)
            co.namespace_ = v;
        else if (strcmp(argv[i], "--metrics-file") == 0)
            metrics_file = v;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (!lock_name) {
        usage();
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    return controller(&co, resource_lock, lock_name, identity);
}
