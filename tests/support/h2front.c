/* Test harness: an HTTP/2 TLS front (nghttpx); see h2front.h. */
#include "support/h2front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long front_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int kle_test_http2(void)
{
    const char *v = getenv("KLE_TEST_HTTP");
    return v && strcmp(v, "2") == 0;
}

/* A port that was free a moment ago (the kernel does not hand it out again
 * at once). */
static unsigned front_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    unsigned port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int front_accepts(unsigned port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
    if (fd < 0)
        return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static const char *nghttpx_bin(void)
{
    const char *env = getenv("KLE_NGHTTPX");
    if (env && *env)
        return env;
    if (access("/usr/sbin/nghttpx", X_OK) == 0)
        return "/usr/sbin/nghttpx";
    return "nghttpx";
}

static void front_print_log(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    if (!f)
        return;
    fprintf(stderr, "--- nghttpx log (%s) ---\n", path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

int kle_test_h2front_start(kle_test_h2front *f, const char *cert_dir, const char *log_dir,
                           unsigned backend_port)
{
    char ca[400], key[400], crt[400];
    snprintf(ca, sizeof(ca), "%s/ca.crt", cert_dir);
    snprintf(key, sizeof(key), "%s/serving.key", cert_dir);
    snprintf(crt, sizeof(crt), "%s/serving.crt", cert_dir);
    kle_test_h2front_opts o = {crt, key, ca, log_dir, backend_port, 0, NULL};
    return kle_test_h2front_start_opts(f, &o);
}

int kle_test_h2front_start_opts(kle_test_h2front *f, const kle_test_h2front_opts *o)
{
    char frontend[64], backend[96], cacert[400];
    int status;

    memset(f, 0, sizeof(f[0]));
    snprintf(f->log_path, sizeof(f->log_path), "%s/nghttpx.log", o->log_dir);
    snprintf(cacert, sizeof(cacert), "--cacert=%s", o->backend_ca);
    for (int attempt = 0; attempt < 3; attempt++) {
        f->port = o->port ? o->port : front_free_port();
        if (!f->port)
            break;
        snprintf(frontend, sizeof(frontend), "--frontend=127.0.0.1,%u", f->port);
        snprintf(backend, sizeof(backend), "--backend=127.0.0.1,%u;;tls;sni=localhost",
                 o->backend_port);
        const char *argv[40] = {nghttpx_bin(), frontend, backend, cacert, "--conf=/dev/null",
                                "--single-process", "--workers=1", "--no-ocsp", "--no-via",
                                "--no-server-push",
                                /* Watch streams may be quiet for minutes. */
                                "--backend-read-timeout=10m", "--frontend-http2-read-timeout=10m",
                                "--frontend-read-timeout=10m", "--backend-keep-alive-timeout=30s",
                                "--backend-connect-timeout=5s", "--accesslog-file=/dev/null",
                                "--errorlog-file=/dev/stderr"};
        int n = 17;
        for (int i = 0; o->extra_args && o->extra_args[i] && n < 37; i++)
            argv[n++] = o->extra_args[i];
        argv[n++] = o->key;
        argv[n++] = o->cert;
        argv[n] = NULL;
        f->pid = fork();
        if (f->pid < 0) {
            f->pid = 0;
            break;
        }
        if (f->pid == 0) {
            int fd = open(f->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
            execvp(argv[0], (char *const *)argv);
            _exit(127);
        }
        long long deadline = front_now_ms() + 10000;
        while (!front_accepts(f->port)) {
            if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
                f->pid = 0;
                break;
            }
            if (front_now_ms() > deadline) {
                kle_test_h2front_stop(f);
                break;
            }
            poll(NULL, 0, 10);
        }
        if (f->pid) {
            snprintf(f->url, sizeof(f->url), "https://127.0.0.1:%u", f->port);
            return 0;
        }
        if (o->port)
            poll(NULL, 0, 200); /* the old front's port may still be in use */
    }
    fprintf(stderr,
            "kle_test_h2front_start: nghttpx did not start (is nghttp2-proxy installed?)\n");
    front_print_log(f->log_path);
    return -1;
}

void kle_test_h2front_stop(kle_test_h2front *f)
{
    int status;
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    long long deadline = front_now_ms() + 5000;
    while (waitpid(f->pid, &status, WNOHANG) == 0) {
        if (front_now_ms() > deadline) {
            kill(f->pid, SIGKILL);
            waitpid(f->pid, &status, 0);
            break;
        }
        poll(NULL, 0, 10);
    }
    f->pid = 0;
}

int kle_test_replace_in_file(const char *path, const char *from, const char *to)
{
    char tmp[512], *text = NULL;
    size_t len = 0, flen = strlen(from);
    FILE *in = fopen(path, "r"), *out;
    if (!in)
        return -1;
    {
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
            char *t = realloc(text, len + n + 1);
            if (!t) {
                free(text);
                fclose(in);
                return -1;
            }
            text = t;
            memcpy(text + len, buf, n);
            len += n;
        }
    }
    fclose(in);
    if (!text)
        return -1;
    text[len] = '\0';
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    out = fopen(tmp, "w");
    if (!out) {
        free(text);
        return -1;
    }
    fchmod(fileno(out), 0600);
    for (char *p = text, *hit; *p; p = hit + flen) {
        hit = strstr(p, from);
        if (!hit) {
            fputs(p, out);
            break;
        }
        fwrite(p, 1, (size_t)(hit - p), out);
        fputs(to, out);
    }
    free(text);
    if (fclose(out) != 0)
        return -1;
    return rename(tmp, path);
}
