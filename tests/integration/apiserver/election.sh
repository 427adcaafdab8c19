#!/usr/bin/env bash
# The coordinated-election controller's choice among LeaseCandidates: the
# ordering and tie-breaks of kube-apiserver's election.go (lowest emulation
# version, then lowest binary version, then oldest candidate; semver
# pre-releases before their release; tolerant parsing; invalid versions
# never chosen). Each case on its own Lease: the first candidate becomes
# the holder, a better one posted later becomes the preferredHolder.
# Candidates carry a renewTime an hour ahead so that they count as
# acked without answering pings (no candidate process runs here).
. "$(dirname "$0")/lib.sh"
kle_apiserver_start --feature-gates=CoordinatedLeaderElection=true

LC=/apis/coordination.k8s.io/v1beta1/namespaces/default/leasecandidates
L=/apis/coordination.k8s.io/v1/namespaces/default/leases
AHEAD=$(python3 -c 'import datetime; print((datetime.datetime.now(datetime.timezone.utc)+datetime.timedelta(seconds=3600)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))')

# candidate NAME LEASE EMULATION BINARY
candidate() {
  req POST $LC "{\"metadata\":{\"name\":\"$1\"},\"spec\":{\"leaseName\":\"$2\",\"emulationVersion\":\"$3\",\"binaryVersion\":\"$4\",\"strategy\":\"OldestEmulationVersion\",\"renewTime\":\"$AHEAD\"}}"
  [ "$CODE" = 201 ] || fail "create candidate $1: $CODE $BODY"
}
# spec_of LEASE FIELD
spec_of() {
  req GET "$L/$1"
  [ "$CODE" = 200 ] && jget "d[\"spec\"].get(\"$2\", \"\")" <<<"$BODY"
}
is() { [ "$(spec_of "$1" "$2")" = "$3" ]; }
# held LEASE: renews the lease as its holder would (else it expires after the
# controller's 5 s and the best candidate becomes the holder, not preferred).
held() {
  req PATCH "$L/$1" "{\"spec\":{\"renewTime\":\"$AHEAD\",\"leaseDurationSeconds\":3600}}" \
    application/merge-patch+json
  [ "$CODE" = 200 ] || fail "renew $1: $CODE $BODY"
}

# 1. Lowest emulation version.
candidate e133 lease-emu 1.33.0 1.33.0
wait_until 20 "e133 holds lease-emu" is lease-emu holderIdentity e133
held lease-emu
expect_eq "the lease carries the strategy" OldestEmulationVersion "$(spec_of lease-emu strategy)"
candidate e131 lease-emu 1.31.0 1.33.0
wait_until 20 "1.31 preferred over 1.33" is lease-emu preferredHolder e131 && pass "lowest emulation version"

# 2. Equal emulation versions: lowest binary version.
candidate b133 lease-bin 1.31.0 1.33.0
wait_until 20 "b133 holds lease-bin" is lease-bin holderIdentity b133
held lease-bin
candidate b132 lease-bin 1.31.0 1.32.0
wait_until 20 "binary 1.32 preferred over 1.33" is lease-bin preferredHolder b132 && pass "then lowest binary version"

# 3. A pre-release sorts before its release; "v1.31" reads as 1.31.0.
candidate p-release lease-pre 1.31.0 1.31.0
wait_until 20 "p-release holds lease-pre" is lease-pre holderIdentity p-release
held lease-pre
candidate p-rc lease-pre 1.31.0-rc.1 1.31.0
wait_until 20 "1.31.0-rc.1 preferred over 1.31.0" is lease-pre preferredHolder p-rc && pass "pre-release first"
candidate t-patch lease-tol 1.31.1 1.31.1
wait_until 20 "t-patch holds lease-tol" is lease-tol holderIdentity t-patch
held lease-tol
candidate t-short lease-tol v1.31 v1.31
wait_until 20 "v1.31 (1.31.0) preferred over 1.31.1" is lease-tol preferredHolder t-short && pass "tolerant parsing"

# 4. Equal versions: the older candidate keeps it; an invalid version is never chosen.
candidate o-old lease-tie 1.31.0 1.31.0
wait_until 20 "o-old holds lease-tie" is lease-tie holderIdentity o-old
held lease-tie
sleep 1.1 # a later creationTimestamp (whole seconds)
candidate o-new lease-tie 1.31.0 1.31.0
candidate o-bad lease-tie abc 1.0.0
# Negative: five controller passes (200 ms each) must leave no preference.
sleep 1
expect_eq "the older of equal candidates keeps the lease, an invalid one is not chosen" "" \
  "$(spec_of lease-tie preferredHolder)"
candidate o-best lease-tie 1.30.0 1.31.0
wait_until 20 "1.30 preferred on lease-tie" is lease-tie preferredHolder o-best
req GET $LC/o-new
expect_eq "candidates are never pinged while acked" "" "$(jget 'd["spec"].get("pingTime", "")' <<<"$BODY")"

# 5. Garbage collection: a candidate not renewed for 30 minutes is deleted.
req POST $LC '{"metadata":{"name":"stale"},"spec":{"leaseName":"lease-gc","emulationVersion":"1.31.0","binaryVersion":"1.31.0","strategy":"OldestEmulationVersion","renewTime":"2020-01-01T00:00:00.000000Z"}}'
gone() { req GET $LC/stale; [ "$CODE" = 404 ]; }
wait_until 10 "the stale candidate is collected" gone && pass "stale candidates are deleted"
finish
