/*
 * Test helper: a private temp dir holding a kubeconfig for an unreachable
 * server (https://127.0.0.1:1), token auth, namespace "team". Use
 * kubeconfig_fixture_setup/teardown as a CMocka group's setup and teardown;
 * fixture_dir and fixture_kubeconfig name the files, fixture_client() opens it.
 */
#ifndef KLE_TESTS_KUBECONFIG_FIXTURE_H
#define KLE_TESTS_KUBECONFIG_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "kle/client.h"

static char fixture_dir[256], fixture_kubeconfig[300];

static int kubeconfig_fixture_setup(void **state)
{
    (void)state;
    snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/kle-test-kubeconfig-XXXXXX");
    assert_non_null(mkdtemp(fixture_dir));
    snprintf(fixture_kubeconfig, sizeof(fixture_kubeconfig), "%s/config", fixture_dir);
    FILE *f = fopen(fixture_kubeconfig, "w");
    assert_non_null(f);
    fputs("current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
          "users:\n- name: u\n  user: {token: secret-token}\n"
          "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: team}\n",
          f);
    fclose(f);
    return 0;
}

static int kubeconfig_fixture_teardown(void **state)
{
    char cmd[400];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fixture_dir);
    return system(cmd);
}

static kle_client *fixture_client(void)
{
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = fixture_kubeconfig;
    kle_client *c = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&c, &o), 0);
    return c;
}

#endif
