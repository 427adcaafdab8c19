#!/usr/bin/env bash
# deploy/Dockerfile builds with buildah (chroot isolation, no daemon) and
# the image runs `kle --version`, printing this tree's version. Then the
# COPY --from recipe of docs/install.md builds an image of one's own from
# it, and kle runs a command there, under the supervisor it copied, against
# a kle-apiserver on this machine.
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
TAG2=localhost/kle-e2e-recipe:$$
cleanup() {
  buildah rm kle-e2e-$$ kle-e2e-recipe-$$ >/dev/null 2>&1
  # buildah bud of the recipe can leave the working container of its
  # "FROM $TAG AS kle" stage, which keeps $TAG from being removed.
  local c
  for c in $(buildah containers -q --filter ancestor="$TAG" 2>/dev/null); do
    buildah rm "$c" >/dev/null 2>&1
  done
  buildah rmi "$TAG2" "$TAG" >/dev/null 2>&1
  [ -z "${KLE_APISERVER_PID:-}" ] || kle_apiserver_stop >/dev/null 2>&1
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

# The recipe: its Dockerfile block, copying from the image just built; the
# program of one's own is left out.
python3 - "$KLE_SOURCE_DIR/docs/install.md" "$TAG" >"$W/recipe.Dockerfile" <<'PY' ||
import re, sys
text = open(sys.argv[1]).read()
block = [b for b in re.findall(r"```dockerfile\n(.*?)```", text, re.S) if "COPY --from=kle" in b][0]
block = re.sub(r"^FROM \S+ AS kle$", "FROM " + sys.argv[2] + " AS kle", block, flags=re.M)
print("\n".join(l for l in block.splitlines() if "my-program" not in l))
PY
  { echo "FAIL: no COPY --from=kle recipe in docs/install.md"; exit 1; }
if ! buildah bud --isolation chroot --pull=never -f "$W/recipe.Dockerfile" -t "$TAG2" "$W" \
  >"$W/recipe.log" 2>&1; then
  tail -n 30 "$W/recipe.log"
  echo "FAIL: buildah bud of docs/install.md's recipe"
  exit 1
fi
. "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
kle_apiserver_start >/dev/null || { echo "FAIL: kle-apiserver"; exit 1; }
buildah from --pull=never --name kle-e2e-recipe-$$ "$TAG2" >/dev/null || { echo "FAIL: buildah from"; exit 1; }
# kle in the image runs sh once (--on-exit=exit) with the lock from the
# environment; sh prints the program it runs under: the copied supervisor.
# shellcheck disable=SC2016
OUT=$(buildah run --isolation chroot -v "$KUBECONFIG:/kubeconfig:ro" --env KUBECONFIG=/kubeconfig \
  --env KLE_LOCK_NAME=image-recipe kle-e2e-recipe-$$ -- /usr/local/bin/kle run --identity img \
  --on-exit=exit -- sh -c 'readlink /proc/$PPID/exe' 2>"$W/run.log") ||
  { cat "$W/run.log"; echo "FAIL: kle run in the recipe's image: $OUT"; exit 1; }
if [ "$OUT" != /usr/local/libexec/kle/kle-supervise ]; then
  cat "$W/run.log"
  echo "FAIL: in the recipe's image the command ran under '$OUT', not the copied kle-supervise"
  exit 1
fi
echo "ok: docs/install.md's recipe builds; kle runs a command there under $OUT"
