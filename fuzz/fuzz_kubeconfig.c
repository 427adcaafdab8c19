/*
 * The kubeconfig loader: YAML (libyaml, converted to JSON), the clusters,
 * users and contexts lists, the current context, inline and file
 * credentials, exec plugin stanzas. The input is written to a file in a
 * private directory and loaded as --kubeconfig; files it names relative to
 * itself resolve into that directory (empty, so they are missing).
 */
#include <fcntl.h>
#include <unistd.h>

#include "fuzz.h"
#include "kube/kube.h"

static char dir[64];
static char path[96];

static void cleanup(void)
{
    unlink(path);
    rmdir(dir);
}

static void setup(void)
{
    if (dir[0])
        return;
    snprintf(dir, sizeof(dir), "/tmp/kle-fuzz-kubeconfig.XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/config", dir);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    setup();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    close(fd);
    kle_kube__config *cfg = NULL;
    kle_error_clear();
    int rc = kle_kube__config_load(&cfg, path, NULL, NULL, NULL);
    if (rc < 0) {
        fuzz_check_error(rc);
        FUZZ_CHECK(rc == KLE_EKUBECONFIG || rc == KLE_EAUTH || rc == KLE_ENOMEM);
        FUZZ_CHECK(cfg == NULL);
    } else {
        FUZZ_CHECK(rc == 0 && cfg != NULL);
        FUZZ_CHECK(cfg->server != NULL && cfg->namespace_ != NULL);
        size_t n = strlen(cfg->server);
        FUZZ_CHECK(n == 0 || cfg->server[n - 1] != '/');
        kle_kube__config_free(cfg);
    }
    unlink(path);
    return 0;
}
