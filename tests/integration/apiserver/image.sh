#!/usr/bin/env bash
# deploy/Dockerfile builds with buildah (chroot isolation, no daemon) and
# the image runs `kle --version`, printing this tree's version.
# Skips (exit 77), saying why, where that cannot happen: no buildah, no
# base image already on the machine (the test never pulls: it sends no
# traffic off the machine), or a build or run that containers cannot do
# here (no user namespaces, no chroot).
set -uo pipefail
skip() { echo "SKIP: $*"; exit 77; }
command -v buildah >/dev/null 2>&1 || skip "buildah is not installed (Debian: apt-get install buildah)"
BASE=$(awk '/^FROM /{print $2; exit}' "$KLE_SOURCE_DIR/deploy/Dockerfile")
buildah inspect --type image "$BASE" >/dev/null 2>&1 ||
  skip "the base image $BASE is not on this machine and the test does not pull it (no registry is reachable here); 'buildah pull $BASE' where one is"
W=$(mktemp -d "${TMPDIR:-/tmp}/kle-image-XXXXXX")
TAG=localhost/kle-e2e:$$
cleanup() {
  buildah rm kle-e2e-$$ >/dev/null 2>&1
  buildah rmi "$TAG" >/dev/null 2>&1
  rm -rf "$W"
}
trap cleanup EXIT
if ! buildah bud --isolation chroot --pull=never -f "$KLE_SOURCE_DIR/deploy/Dockerfile" -t "$TAG" \
  "$KLE_SOURCE_DIR" >"$W/build.log" 2>&1; then
  if grep -qiE 'operation not permitted|user namespace|newuidmap|chroot|unshare|mount' "$W/build.log"; then
    skip "containers cannot be built here: $(grep -iE 'operation not permitted|user namespace|newuidmap|chroot|unshare|mount' "$W/build.log" | head -1)"
  fi
  tail -n 30 "$W/build.log"
  echo "FAIL: buildah bud of deploy/Dockerfile"
  exit 1
fi
buildah from --pull=never --name kle-e2e-$$ "$TAG" >/dev/null || { echo "FAIL: buildah from"; exit 1; }
OUT=$(buildah run --isolation chroot kle-e2e-$$ -- /usr/local/bin/kle --version 2>&1) ||
  skip "the image built but cannot run here: $OUT"
WANT=$(sed -n 's/^project(libkle VERSION \([0-9.]*\).*/\1/p' "$KLE_SOURCE_DIR/CMakeLists.txt")
if ! grep -q "kle $WANT" <<<"$OUT"; then
  echo "FAIL: kle --version in the image printed: $OUT (want kle $WANT)"
  exit 1
fi
USER_ID=$(buildah inspect --format '{{.OCIv1.Config.User}}' "$TAG")
[ "${USER_ID%%:*}" != 0 ] && [ -n "$USER_ID" ] || { echo "FAIL: the image runs as root ($USER_ID)"; exit 1; }
echo "ok: the image runs kle --version: $OUT, as user $USER_ID"
