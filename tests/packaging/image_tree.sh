#!/usr/bin/env bash
# The container image on plain directory trees, where no image can be built
# (no registry to pull the base image from): deploy/Dockerfile's install
# commands run on this build into a "build stage" tree, its COPY --from
# lines fill an "image" tree, the COPY --from recipe of docs/install.md
# fills "yours" from it; every copied program needs only libraries of the
# packages its stage installs; kle runs from "yours" and finds its
# supervisor there. Also: .dockerignore keeps build trees out of the
# context, and the image names and versions agree with the project's.
set -euo pipefail
if [ "${KLE_SANITIZED:-0}" = 1 ]; then
  echo "SKIP: the image holds release programs; a sanitizer build's need the sanitizer runtimes"
  exit 77
fi
build="$KLE_BUILD_DIR"
src="$KLE_SOURCE_DIR"
work="$build/image-tree-test"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
dockerfile="$src/deploy/Dockerfile"
version=$(sed -n 's/^project(libkle VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")

# 1. .dockerignore: build trees out, the sources in.
python3 - "$src" "$build" <<'PY' || fail ".dockerignore"
import fnmatch, os, sys
src, build = sys.argv[1], os.path.realpath(sys.argv[2])
pats = []
for line in open(os.path.join(src, ".dockerignore")):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    # This check models plain patterns only (Docker and buildah also know
    # "!" exceptions and "**"): refuse what it cannot model.
    if line.startswith("!") or "**" in line:
        sys.exit(f".dockerignore: {line!r}: extend tests/packaging/image_tree.sh to model it")
    pats.append(line.strip("/"))
def excluded(rel):
    parts = rel.split("/")
    # A pattern excludes a path when it matches the path or a parent of it;
    # "*" does not cross "/" (Go's filepath.Match).
    for i in range(1, len(parts) + 1):
        prefix = parts[:i]
        for p in pats:
            pp = p.split("/")
            if len(pp) == len(prefix) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(prefix, pp)):
                return True
    return False
inside, outside = 0, 0
for root, dirs, files in os.walk(src):
    relroot = os.path.relpath(root, src)
    for d in list(dirs):
        rel = os.path.normpath(os.path.join(relroot, d))
        if excluded(rel):
            dirs.remove(d)
    for f in files:
        rel = os.path.normpath(os.path.join(relroot, f))
        if not excluded(rel):
            inside += os.path.getsize(os.path.join(root, f))
for name in os.listdir(src):
    if (name == "build" or name.startswith("build-")) and not excluded(name):
        sys.exit(f".dockerignore does not exclude the build tree {name}/")
rel_build = os.path.relpath(build, os.path.realpath(src))
if not rel_build.startswith("..") and not excluded(rel_build):
    sys.exit(f".dockerignore does not exclude this build directory, {rel_build}")
if excluded(".git") is False and os.path.exists(os.path.join(src, ".git")):
    sys.exit(".dockerignore does not exclude .git")
for need in ["CMakeLists.txt", "cmake/KlePackage.cmake", "src/cli/main.c", "include/kle/kle.h",
             "deploy/Dockerfile"]:
    if excluded(need):
        sys.exit(f".dockerignore excludes {need}, which the image build needs")
print(f"ok: .dockerignore: build trees and .git out; context {inside / 2**20:.1f} MiB")
PY

# 2. The Dockerfile's build stage on this build: its install commands.
stage="$work/build-stage" image="$work/image" yours="$work/yours"
mkdir -p "$stage" "$image" "$yours"
# Each Dockerfile instruction on one line (continuations joined).
instructions() { sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$1" | grep -v '^ *#'; }
instructions "$dockerfile" >"$work/dockerfile.lines"
awk '/^FROM /{n++} n==1' "$work/dockerfile.lines" >"$work/stage1"
awk '/^FROM /{n++} n==2' "$work/dockerfile.lines" >"$work/stage2"
grep -q '^FROM .* AS build' "$work/stage1" || fail "the Dockerfile's first stage is not 'AS build'"
n=0
while IFS= read -r cmd; do
  read -r -a args <<<"$cmd"
  [ "${args[0]}" = install ] || continue
  dst="${args[-1]}" srcf="${args[-2]}"
  [[ $srcf == /build/* ]] || fail "install from outside /build: $cmd"
  opts=("${args[@]:1:${#args[@]}-3}")
  install -D "${opts[@]}" "$build/${srcf#/build/}" "$stage$dst" || fail "$cmd"
  n=$((n + 1))
done < <(grep '^RUN ' "$work/stage1" | sed 's/&&/\n/g' | sed 's/^RUN //; s/^ *//')
[ "$n" -ge 2 ] || fail "found $n install commands in the Dockerfile's build stage"

# apt_packages FILE: the packages of "apt-get install" in FILE's RUN lines.
apt_packages() {
  grep '^RUN ' "$1" | sed 's/&&/\n/g' | grep 'apt-get install' |
    sed 's/.*apt-get install//' | tr ' ' '\n' | grep -v '^-' | grep . | sort -u
}
# check_libs TREE PACKAGES-FILE WHAT: every ELF file of TREE needs only
# libraries of these packages (or of libc6).
check_libs() {
  local tree=$1 pkgs=$2 what=$3 f lib path owner
  while IFS= read -r f; do
    file -b "$f" | grep -q ELF || continue
    ldd "$f" >"$work/ldd" 2>&1 || fail "ldd $f: $(cat "$work/ldd")"
    for lib in $(readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
      path=$(awk -v l="$lib" '$1 == l && $2 == "=>" {print $3}' "$work/ldd")
      [ -n "$path" ] || continue # the loader itself
      owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "${path#/usr}" 2>/dev/null ||
        dpkg -S "/usr$path" 2>/dev/null || true)
      owner=${owner%%: *}
      owner=${owner%%:*}
      [ -n "$owner" ] || fail "no package owns $path (needed by $f)"
      [ "$owner" = libc6 ] || grep -qx "$owner" "$pkgs" ||
        fail "$what: ${f#"$tree"} needs $lib of $owner, which the stage does not install"
    done
  done < <(find "$tree" -type f)
}

# 3. The image: the final stage's COPY --from=build lines.
apt_packages "$work/stage2" >"$work/image.packages"
n=0
while read -r _ from s d; do
  [ "$from" = --from=build ] || continue
  [ -e "$stage$s" ] || fail "COPY --from=build $s: not in the build stage"
  mkdir -p "$(dirname "$image$d")"
  cp -a "$stage$s" "$image$d"
  n=$((n + 1))
done < <(grep '^COPY --from=' "$work/stage2")
[ "$n" -ge 2 ] || fail "found $n COPY --from=build lines"
check_libs "$image" "$work/image.packages" "deploy/Dockerfile"
echo "ok: deploy/Dockerfile: $n files from the build stage, libraries from $(tr '\n' ' ' <"$work/image.packages")"

# 4. docs/install.md's recipe, from the image into "yours".
python3 - "$src/docs/install.md" >"$work/recipe" <<'PY' || fail "no COPY --from recipe in docs/install.md"
import re, sys
text = open(sys.argv[1]).read()
blocks = [b for b in re.findall(r"```dockerfile\n(.*?)```", text, re.S) if "COPY --from=kle" in b]
if len(blocks) != 1:
    sys.exit(1)
print(blocks[0], end="")
PY
instructions "$work/recipe" >"$work/recipe.lines"
recipe_image=$(awk '$1 == "FROM" && $3 == "AS" && $4 == "kle" {print $2}' "$work/recipe.lines")
deploy_image=$(sed -n 's/^ *image: *//p' "$src/deploy/deployment.yaml")
[ "$recipe_image" = "ghcr.io/libkle/kle:$version" ] || fail "the recipe copies from $recipe_image, not ghcr.io/libkle/kle:$version"
[ "$deploy_image" = "$recipe_image" ] || fail "deploy/deployment.yaml runs $deploy_image, the recipe names $recipe_image"
grep -q "org.opencontainers.image.version=\"$version\"" "$dockerfile" ||
  fail "deploy/Dockerfile's version label is not $version"
grep -q -- "-t $recipe_image " "$dockerfile" || fail "deploy/Dockerfile's comment does not build $recipe_image"
awk '/^FROM /{n++} n==2' "$work/recipe.lines" >"$work/recipe.stage"
apt_packages "$work/recipe.stage" >"$work/yours.packages"
inst="$work/installed"
DESTDIR="$inst" cmake --install "$build" --prefix /usr/local >/dev/null
n=0
while read -r _ from s d; do
  [ "$from" = --from=kle ] || continue
  [ -e "$image$s" ] || fail "the recipe's COPY --from=kle $s: not in the image"
  [ -e "$inst$s" ] || fail "the recipe's $s is not in an install tree (cmake --install --prefix /usr/local)"
  mkdir -p "$(dirname "$yours$d")"
  cp -a "$image$s" "$yours$d"
  n=$((n + 1))
done < <(grep '^COPY --from=' "$work/recipe.stage")
[ "$n" -ge 2 ] || fail "found $n COPY --from=kle lines in the recipe"
check_libs "$yours" "$work/yours.packages" "docs/install.md's recipe"
echo "ok: the recipe: $n files from $recipe_image, also in an install tree; its packages have their libraries"

# 5. kle runs from "yours" and runs COMMAND under the supervisor beside it.
kle="$yours/usr/local/bin/kle"
out=$("$kle" --version)
[[ $out == "kle $version "* ]] || fail "kle --version from the tree: $out"
# shellcheck source=../support/apiserver.sh
source "$src/tests/support/apiserver.sh"
kle_apiserver_start >/dev/null || fail "kle-apiserver did not start"
trap 'kill -KILL "${kle_pid:-0}" 2>/dev/null || true; kle_apiserver_stop >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC2016
KLE_LOCK_NAME=tree "$kle" run --identity t --lease-duration 2s --renew-deadline 1500ms \
  --retry-period 300ms -- sh -c 'readlink /proc/$PPID/exe >"$0.tmp"; mv "$0.tmp" "$0"; exec sleep 60' \
  "$work/supervisor" >"$work/kle.log" 2>&1 &
kle_pid=$!
end=$(( $(date +%s) + 20 ))
until [ -s "$work/supervisor" ]; do
  [ "$(date +%s)" -lt "$end" ] || { cat "$work/kle.log"; fail "the command did not start within 20 s"; }
  kill -0 "$kle_pid" 2>/dev/null || { cat "$work/kle.log"; fail "kle exited"; }
  sleep 0.05
done
super=$(cat "$work/supervisor")
[ "$super" = "$yours/usr/local/libexec/kle/kle-supervise" ] ||
  fail "COMMAND runs under $super, not the tree's kle-supervise"
kill -TERM "$kle_pid"
rc=0
wait "$kle_pid" || rc=$?
[ "$rc" = 0 ] || { cat "$work/kle.log"; fail "kle exited $rc after SIGTERM"; }
echo "ok: kle runs from the tree; COMMAND ran under its kle-supervise; SIGTERM: exit 0"
rm -rf "$work"
echo "4 passed, 0 failed"
