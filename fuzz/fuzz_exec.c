/*
 * Exec credential plugins' output: an ExecCredential whose status carries a
 * token or a client certificate and key, and maybe an expirationTimestamp.
 * A parsed credential has what the status said; a refused one leaves none.
 */
#include <json-c/json.h>

#include "fuzz.h"
#include "kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    kle_kube__exec exec = {0};
    exec.api_version = (char *)"client.authentication.k8s.io/v1";
    exec.command = (char *)"fuzz-credential-plugin";
    kle_kube__config cfg = {0};
    cfg.origin = (char *)"kubeconfig /fuzz/config";
    cfg.user = (char *)"fuzz";
    cfg.exec = &exec;

    /* The plugin's output as exec_run hands it over: NUL-terminated. */
    char *text = fuzz_strndup(data, size);
    kle_kube__exec_cred cred = {0};
    kle_error_clear();
    int rc = kle_kube__exec_parse(&cred, &cfg, text, size);
    if (rc < 0) {
        fuzz_check_error(rc);
        FUZZ_CHECK(rc == KLE_EAUTH || rc == KLE_ENOMEM);
        FUZZ_CHECK(!cred.token.data && !cred.client_cert.data && !cred.client_key.data);
    } else {
        FUZZ_CHECK(rc == 0);
        FUZZ_CHECK(cred.token.data || (cred.client_cert.data && cred.client_key.data));
        FUZZ_CHECK(!cred.client_cert.data == !cred.client_key.data);
        if (cred.token.data)
            FUZZ_CHECK(cred.token.len > 0 && strlen(cred.token.data) == cred.token.len);
    }
    kle_kube__exec_cred_clear(&cred);
    free(text);
    return 0;
}
