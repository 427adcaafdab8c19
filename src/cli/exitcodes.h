/* kle's exit codes, shared with the libc-only kle-supervise. */
#ifndef KLE_CLI_EXITCODES_H
#define KLE_CLI_EXITCODES_H

/*
 * Exit codes (docs/cli.md, "Exit codes"). kle run passes COMMAND's status
 * through, so its own outcomes after the command line was accepted use
 * codes that common commands do not (as timeout(1) uses 124 to 127).
 */
#define CLI_EXIT_OK         0
#define CLI_EXIT_FAILURE    1   /* status, transfer: API, kubeconfig or system failure */
#define CLI_EXIT_USAGE      2   /* bad flag or value, found before connecting */
#define CLI_EXIT_NOTFOUND   3   /* status: the lock object does not exist */
#define CLI_EXIT_NOT_LEADER 4   /* status --is-leader: the identity does not hold the lock */
#define CLI_EXIT_LOST       122 /* run: leadership lost while COMMAND ran (--on-exit=exit) */
#define CLI_EXIT_TIMEOUT    124 /* run --timeout: the lock was not acquired in time */
#define CLI_EXIT_RUN_FAILED 125 /* run: kle itself failed (configuration, API, system) */
#define CLI_EXIT_CANNOT_RUN 126 /* run: COMMAND could not be executed */
#define CLI_EXIT_NO_COMMAND 127 /* run: COMMAND was not found */

#endif
