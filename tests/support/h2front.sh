# Shell side of the HTTP/2 TLS front (see h2front.h); sourced by apiserver.sh.
#
#   kle_h2front_start CERT_DIR LOG_DIR BACKEND_PORT
#       Starts nghttpx on a free 127.0.0.1 port before https://127.0.0.1:BACKEND_PORT
#       with kle-apiserver's serving certificate; sets KLE_H2FRONT_PID and
#       KLE_H2FRONT_URL. Waits (10 s) until it accepts connections.
#   kle_h2front_stop
#
# kle_apiserver_start does this by itself when KLE_TEST_HTTP=2.

kle_h2front_start() {
  local certs=$1 logdir=$2 backend=$3 port deadline bin=${KLE_NGHTTPX:-}
  if [ -z "$bin" ]; then
    if [ -x /usr/sbin/nghttpx ]; then bin=/usr/sbin/nghttpx; else bin=nghttpx; fi
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || return 1
  "$bin" "--frontend=127.0.0.1,$port" "--backend=127.0.0.1,$backend;;tls;sni=localhost" \
    "--cacert=$certs/ca.crt" --conf=/dev/null --single-process --workers=1 --no-ocsp --no-via \
    --no-server-push --backend-read-timeout=10m --frontend-http2-read-timeout=10m \
    --frontend-read-timeout=10m --backend-keep-alive-timeout=30s --backend-connect-timeout=5s \
    --accesslog-file=/dev/null --errorlog-file=/dev/stderr \
    "$certs/serving.key" "$certs/serving.crt" >>"$logdir/nghttpx.log" 2>&1 &
  KLE_H2FRONT_PID=$!
  deadline=$((SECONDS + 10))
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    if ! kill -0 "$KLE_H2FRONT_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "kle_h2front_start: nghttpx did not start (is nghttp2-proxy installed?); log:" >&2
      cat "$logdir/nghttpx.log" >&2
      kle_h2front_stop
      return 1
    fi
    sleep 0.02
  done
  KLE_H2FRONT_URL="https://127.0.0.1:$port"
  export KLE_H2FRONT_PID KLE_H2FRONT_URL
}

kle_h2front_stop() {
  if [ -n "${KLE_H2FRONT_PID:-}" ]; then
    kill -TERM "$KLE_H2FRONT_PID" 2>/dev/null
    wait "$KLE_H2FRONT_PID" 2>/dev/null
    KLE_H2FRONT_PID=
    KLE_H2FRONT_URL=
  fi
}
