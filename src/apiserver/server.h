/* The HTTP front of kle-apiserver. */
#ifndef KLE_APISERVER_SERVER_H
#define KLE_APISERVER_SERVER_H

#include "apiserver/apiserver.h"

#include <microhttpd.h>
#include <sys/socket.h>

/* Records whether client certificates are verified and the address
 * discovery reports. */
void kle_apiserver__set_options(int have_client_ca, const char *addr);
/* Starts the API listener (TLS when tls is set); NULL on failure. */
struct MHD_Daemon *kle_apiserver__http_start(const struct sockaddr *addr, int ipv6,
                                             const kle_apiserver__tls *tls,
                                             const char *client_ca_pem);

#endif
