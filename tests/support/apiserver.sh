# Shell test harness for kle-apiserver. Source it, then:
#
#   kle_apiserver_start [extra kle-apiserver args...]
#       Starts kle-apiserver on 127.0.0.1:0 with a fresh temp dir and an
#       admin listener, waits (30 s deadline) for its kubeconfig, and exports
#       KUBECONFIG  the kubeconfig it wrote (admin token, namespace default)
#       SERVER      https://127.0.0.1:PORT
#       TOKEN       the admin bearer token (group system:masters)
#       ADMIN       http://127.0.0.1:PORT, the fault/counter listener
#       CA          path of the CA certificate (PEM) to trust
#       KLE_APISERVER_DIR, KLE_APISERVER_PID, KLE_APISERVER_LOG
#       Returns non-zero (after printing the server log) when it fails.
#   kle_apiserver_restart
#       Stops the server (it must exit 0) and starts it again with the same
#       arguments on the same port and temp dir: SERVER, TOKEN, CA and
#       KUBECONFIG stay valid (with --data-dir the objects too).
#   kle_apiserver_stop
#       SIGTERM, waits up to 20 s (then SIGKILL), removes the temp dir;
#       returns the server's exit status (0 = clean shutdown).
#   kle_curl ARGS...  curl with the CA and admin token of the running server.
#   kle_admin METHOD PATH [JSON]
#       One request to the admin listener; prints the answer, fails on >= 400:
#         kle_admin POST /faults '{"verb":"update","resource":"leases","error":503,"count":2}'
#         kle_admin DELETE /faults; kle_admin POST /pause; kle_admin GET /counters
#
# With KLE_TEST_HTTP=2 an HTTP/2 TLS front (nghttpx, h2front.sh) is started
# before the server: SERVER and KUBECONFIG name the front, SERVER_DIRECT the
# server itself.
#
# The binary is $KLE_APISERVER, else $KLE_BUILD_DIR/src/apiserver/kle-apiserver.
# With KLE_APISERVER_WRAPPER set it runs as "$KLE_APISERVER_WRAPPER" BINARY ARGS
# (e.g. a script that execs valgrind "$@").

. "$(dirname "${BASH_SOURCE[0]}")/h2front.sh"

kle_apiserver__bin() {
  if [ -n "${KLE_APISERVER:-}" ]; then
    printf '%s\n' "$KLE_APISERVER"
  elif [ -n "${KLE_BUILD_DIR:-}" ]; then
    printf '%s\n' "$KLE_BUILD_DIR/src/apiserver/kle-apiserver"
  else
    echo "kle_apiserver_start: set KLE_APISERVER or KLE_BUILD_DIR" >&2
    return 1
  fi
}

kle_apiserver_start() {
  KLE_APISERVER_ARGS=("$@")
  KLE_APISERVER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kle-test-XXXXXX") || return 1
  KLE_APISERVER_LOG="$KLE_APISERVER_DIR/apiserver.log"
  kle_apiserver__launch 127.0.0.1:0
}

kle_apiserver_restart() {
  local port=${SERVER_DIRECT##*:} pid=$KLE_APISERVER_PID rc=0
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" || rc=$?
  KLE_APISERVER_PID=
  if [ "$rc" -ne 0 ]; then
    echo "kle_apiserver_restart: kle-apiserver exited with status $rc; log:" >&2
    cat "$KLE_APISERVER_LOG" >&2
    kle_apiserver_stop
    return 1
  fi
  kle_apiserver__launch "127.0.0.1:$port"
}

kle_apiserver__launch() {
  local bin deadline
  bin=$(kle_apiserver__bin) || return 1
  rm -f "$KLE_APISERVER_DIR/kubeconfig" "$KLE_APISERVER_DIR/env"
  ${KLE_APISERVER_WRAPPER:+"$KLE_APISERVER_WRAPPER"} "$bin" --listen "$1" --admin-listen 127.0.0.1:0 \
    --cert-dir "$KLE_APISERVER_DIR/certs" --admin-token-file "$KLE_APISERVER_DIR/admin-token" \
    --write-ca "$KLE_APISERVER_DIR/ca.crt" --write-env "$KLE_APISERVER_DIR/env" \
    --write-kubeconfig "$KLE_APISERVER_DIR/kubeconfig" "${KLE_APISERVER_ARGS[@]}" \
    >>"$KLE_APISERVER_LOG" 2>&1 &
  KLE_APISERVER_PID=$!
  deadline=$((SECONDS + 30))
  while [ ! -f "$KLE_APISERVER_DIR/kubeconfig" ]; do
    if ! kill -0 "$KLE_APISERVER_PID" 2>/dev/null; then
      wait "$KLE_APISERVER_PID"
      echo "kle_apiserver_start: kle-apiserver exited with status $?; log:" >&2
      cat "$KLE_APISERVER_LOG" >&2
      rm -rf "$KLE_APISERVER_DIR"
      KLE_APISERVER_PID=
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "kle_apiserver_start: no kubeconfig after 30 s; log:" >&2
      cat "$KLE_APISERVER_LOG" >&2
      kle_apiserver_stop
      return 1
    fi
    sleep 0.02
  done
  SERVER=$(sed -n 's/^SERVER=//p' "$KLE_APISERVER_DIR/env")
  ADMIN=$(sed -n 's/^ADMIN=//p' "$KLE_APISERVER_DIR/env")
  TOKEN=$(sed -n 's/^TOKEN=//p' "$KLE_APISERVER_DIR/env")
  CA="$KLE_APISERVER_DIR/ca.crt"
  KUBECONFIG="$KLE_APISERVER_DIR/kubeconfig"
  SERVER_DIRECT=$SERVER
  if [ "${KLE_TEST_HTTP:-}" = 2 ]; then
    # The front outlives a restart (same port); point the new kubeconfig at it.
    if [ -z "${KLE_H2FRONT_PID:-}" ]; then
      kle_h2front_start "$KLE_APISERVER_DIR/certs" "$KLE_APISERVER_DIR" "${SERVER##*:}" || { kle_apiserver_stop; return 1; }
    fi
    sed -i "s#$SERVER_DIRECT#$KLE_H2FRONT_URL#" "$KUBECONFIG"
    SERVER=$KLE_H2FRONT_URL
  fi
  export SERVER SERVER_DIRECT ADMIN TOKEN CA KUBECONFIG KLE_APISERVER_DIR KLE_APISERVER_PID KLE_APISERVER_LOG
}

kle_apiserver_stop() {
  local rc=0 deadline
  kle_h2front_stop
  if [ -n "${KLE_APISERVER_PID:-}" ]; then
    kill -TERM "$KLE_APISERVER_PID" 2>/dev/null
    deadline=$((SECONDS + 20))
    while kill -0 "$KLE_APISERVER_PID" 2>/dev/null; do
      # A zombie still answers kill -0; wait reaps it below.
      if ! ps -o stat= -p "$KLE_APISERVER_PID" 2>/dev/null | grep -qv Z; then
        break
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "kle_apiserver_stop: no exit after SIGTERM; killing" >&2
        kill -KILL "$KLE_APISERVER_PID" 2>/dev/null
        break
      fi
      sleep 0.02
    done
    wait "$KLE_APISERVER_PID"
    rc=$?
    if [ "$rc" -ne 0 ]; then
      echo "kle_apiserver_stop: kle-apiserver exited with status $rc; log:" >&2
      cat "$KLE_APISERVER_LOG" >&2
    fi
    KLE_APISERVER_PID=
  fi
  if [ -n "${KLE_APISERVER_DIR:-}" ]; then
    rm -rf "$KLE_APISERVER_DIR"
    KLE_APISERVER_DIR=
  fi
  return "$rc"
}

kle_curl() {
  curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$@"
}

kle_admin() {
  curl -sS --fail-with-body -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$ADMIN$2"
}
