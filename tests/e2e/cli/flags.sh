#!/usr/bin/env bash
# Bad flags and values: one line naming the problem, exit 2. Help: exit 0.
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
trap 'rm -rf "$T"' EXIT

bad() { # bad EXPECTED-SUBSTRING ARGS...
  local want=$1 out rc
  shift
  out=$("$KLE" "$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq 2 ] || fail "kle $*: exit $rc, want 2 (said: $out)"
  [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] || fail "kle $*: more than one line: $out"
  grep -qF -- "$want" <<<"$out" || fail "kle $*: \"$out\" lacks \"$want\""
}
bad 'no command given (run, status, transfer, help)'
bad 'unknown command "frob"' frob
bad 'unknown flag "--frob"' run --frob --lock-name x -- true
bad 'unknown flag "--output"' run --output json --lock-name x -- true
bad '--lock-name is required' run -- true
bad '--lock-name is required' status
bad 'no command given' run --lock-name x
bad 'invalid duration "15"' run --lock-name x --lease-duration 15 -- true
bad 'invalid duration "abc"' run --lock-name x --retry-period=abc -- true
bad '--lease-duration 2s must be greater than --renew-deadline 3s' run --lock-name x --lease-duration 2s --renew-deadline 3s -- true
bad 'must be greater than 1.2 x --retry-period' run --lock-name x --renew-deadline 2s --retry-period 2s -- true
bad '--grace 5s must be at most --lease-duration 15s - --renew-deadline 10s - 100ms = 4.9s' run --lock-name x --grace 5s -- true
bad '--grace 1s must be at most --lease-duration 4s - --renew-deadline 3s - 100ms = 900ms' run --lock-name x --leader-elect-lease-duration 4s --leader-elect-renew-deadline 3s --leader-elect-retry-period 1s --grace 1s -- true
bad "--retry-period 2ms is below kle's floor of 100ms" run --lock-name x --lease-duration 1s --renew-deadline 3ms --retry-period 2ms -- true
bad "--renew-deadline 500ms is below kle's floor of 1s" run --lock-name x --lease-duration 1s --renew-deadline 500ms --retry-period 100ms -- true
bad "= 200ms is below kle's floor of 500ms" run --lock-name x --lease-duration 2s --renew-deadline 1.8s --retry-period 1s -- true
bad '--lock-name "My_Lock": not a valid object name' run --lock-name My_Lock -- true
bad '--lock-name "-x": not a valid object name' status --lock-name -x
bad '--namespace "Prod": not a valid namespace' transfer --lock-name x --to y --namespace Prod
bad '--to: ' transfer --lock-name x --to ''
bad '--yes confirms --force' transfer --lock-name x --to y --yes
bad 'invalid value "some" (holder or all)' status --lock-name x -w --changes some
bad '--changes chooses what -w prints' status --lock-name x --changes all
bad '--timeout needs an election' run --leader-elect=false --timeout 1s -- true
bad 'invalid duration "soon"' run --lock-name x --timeout soon -- true
bad 'invalid value "sometimes"' run --lock-name x --on-exit sometimes -- true
bad 'unknown lock type "leasez"' run --lock-name x --resource-lock leasez -- true
bad '--lease-duration 4294967297s: too long (at most 2147483647s' run --lock-name x --lease-duration 4294967297s -- true
bad '--release-on-cancel takes no separate value, but "false" follows it: write --release-on-cancel=false' run --lock-name x --release-on-cancel false -- ./cmd
bad 'invalid boolean "maybe"' run --lock-name x --release-on-cancel=maybe -- true
bad 'invalid output format "yaml"' status --lock-name x -o yaml
bad 'invalid log format "xml"' status --lock-name x --log-format xml
bad 'invalid level "loud"' status --lock-name x -v loud
bad 'flag needs a value' status --lock-name
bad '--http-addr "bogus": expected HOST:PORT' run --lock-name x --http-addr bogus -- true
bad '--http-addr "1.2.3.4:99999": expected HOST:PORT' run --lock-name x --http-addr 1.2.3.4:99999 -- true
out=$(KLE_LEASE_DURATION=nope "$KLE" run --lock-name x -- true 2>&1); rc=$?
[ "$rc" -eq 2 ] && grep -qF '$KLE_LEASE_DURATION: invalid duration "nope"' <<<"$out" || fail "env fallback: $rc $out"
pass "bad flags and values exit 2 with the reason"

ver=$("$KLE" --version) || fail "kle --version: exit $?"
grep -qE '^kle [0-9]+\.[0-9]+\.[0-9]+ \(libkle [0-9]+\.[0-9]+\.[0-9]+\)$' <<<"$ver" || fail "kle --version said: $ver"
[ "$("$KLE" version)" = "$ver" ] || fail "kle version differs from kle --version"
pass "kle --version: $ver"

for c in "" run status transfer; do
  out=$("$KLE" $c --help); rc=$?
  [ "$rc" -eq 0 ] || fail "kle $c --help exit $rc"
  grep -q 'Usage' <<<"$out" || fail "kle $c --help: $out"
done
out=$("$KLE" run --help) # captured: grep -q in a pipe could SIGPIPE kle (pipefail)
for f in --on-exit --timeout --leader-elect --grace --candidate; do
  grep -q -- "$f" <<<"$out" || fail "run --help lacks $f"
done
grep -q -- '--on-exit MODE          when COMMAND exits: exit (default' <<<"$out" || fail "run --help: the default --on-exit"
out=$("$KLE" --help)
grep -q 'kle transfer' <<<"$out" || fail "kle --help lacks transfer"
grep -q '124 --timeout' <<<"$out" || fail "kle --help lacks the exit codes"
out=$("$KLE" help transfer)
grep -q -- '--yes' <<<"$out" || fail "help transfer lacks --yes"
help=$("$KLE" help status) # captured: grep -q under pipefail could SIGPIPE kle
grep -q -- '--output' <<<"$help" || fail "help status lacks --output"
pass "--help for every command"
