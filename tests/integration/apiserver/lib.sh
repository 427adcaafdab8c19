# Assertions shared by the kle-apiserver shell tests.
set -euo pipefail
. "$KLE_SOURCE_DIR/tests/support/apiserver.sh"

FAILURES=0
TEST_NAME=$(basename "$0" .sh)

fail() { echo "FAIL [$TEST_NAME]: $*" >&2; FAILURES=$((FAILURES + 1)); }
pass() { echo "ok   [$TEST_NAME]: $*"; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
# expect_match WHAT REGEX ACTUAL
expect_match() {
  if printf '%s' "$3" | grep -Eq -- "$2"; then pass "$1"; else fail "$1: [$3] does not match /$2/"; fi
}

# jget EXPR < json: prints a Python expression over the parsed JSON `d`.
jget() {
  python3 -c 'import json,sys
d=json.load(sys.stdin)
v=eval(sys.argv[1])
print(json.dumps(v) if isinstance(v,(dict,list)) else v)' "$1"
}

# req METHOD PATH [BODY [CONTENT-TYPE]]: sets CODE and BODY from the API.
req() {
  local method=$1 path=$2 data=${3-} ct=${4:-application/json} out
  out=$(mktemp)
  if [ -n "$data" ]; then
    printf '%s' "$data" >"$out.in"
    CODE=$(kle_curl -o "$out" -w '%{http_code}' -X "$method" -H "Content-Type: $ct" \
      --data-binary "@$out.in" "$SERVER$path" || true)
    rm -f "$out.in"
  else
    CODE=$(kle_curl -o "$out" -w '%{http_code}' -X "$method" "$SERVER$path" || true)
  fi
  BODY=$(cat "$out")
  rm -f "$out"
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls a condition with a
# deadline (the same order as tests/e2e/cli/lib.sh's).
wait_until() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$((SECONDS + secs))
  until "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      fail "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.05
  done
}

finish() {
  local rc=0
  kle_apiserver_stop || { fail "server did not shut down cleanly"; }
  if [ "$FAILURES" -ne 0 ]; then
    echo "$TEST_NAME: $FAILURES failure(s)" >&2
    exit 1
  fi
  echo "$TEST_NAME: all passed"
  exit $rc
}

trap 'if [ -n "${KLE_APISERVER_PID:-}" ]; then kle_apiserver_stop >/dev/null 2>&1 || true; fi' EXIT
