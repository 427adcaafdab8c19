/* Built against the installed libkle.a: uses the record, the kubeconfig
 * loader (libyaml) and the client (libcurl), then reports. */
#include <stdio.h>

#include "kle/kle.h"

int main(void)
{
    kle_record r = KLE_RECORD_INIT;
    if (kle_record_set_holder(&r, "static", 6) != 0)
        return 1;
    int holder_ok = kle_record_holder_is(&r, "static");
    kle_record_dispose(&r);

    kle_client_opts opts = KLE_CLIENT_OPTS_INIT;
    opts.kubeconfig = "/nonexistent/kubeconfig";
    kle_client *client = NULL;
    int rc = kle_client_new_from_kubeconfig(&client, &opts);
    kle_client_free(client);

    printf("libkle %s linked statically: holder %s, missing kubeconfig: %s\n",
           kle_version(NULL, NULL, NULL), holder_ok ? "ok" : "WRONG", kle_error_name(rc));
    return holder_ok && rc == KLE_EKUBECONFIG ? 0 : 1;
}
