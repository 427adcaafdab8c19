/*
 * The supervisor shim between kle run and its command (supervise.c): built
 * into kle (kle __supervise) and on its own as kle-supervise, which links
 * libc only, so this header names nothing of libkle.
 */
#ifndef KLE_CLI_SUPERVISE_H
#define KLE_CLI_SUPERVISE_H

#include "exitcodes.h"

/* The supervisor (argv after "__supervise"). Never returns on success. */
int cli_supervise_main(int argc, char **argv);

#endif
