#!/usr/bin/env python3
"""Fails when a folder of src/ depends on one it may not (docs/architecture.md,
"Where the code lives"):

    base          <- every other folder; it uses none of them
    election      -> base
    kube          -> base
    locks         -> base, election, kube
    coordinated   -> base, election, kube, locks
    testing       -> the public headers only (kle/...), and public symbols
    cli, apiserver -> base, election, kube, locks, coordinated (not testing)

A folder depends on another when one of its files includes a header of the
other ("other/x.h"), or when one of its object files uses a global symbol an
object file of the other defines (nm): a call through whatever header.
Within a folder, files may depend on each other as they need.

usage: folders.py SRC_DIR OBJECT...   (the objects of src/, any order)
"""
import os
import re
import subprocess
import sys

ALLOWED = {
    "base": set(),
    "election": {"base"},
    "kube": {"base"},
    "locks": {"base", "election", "kube"},
    "coordinated": {"base", "election", "kube", "locks"},
    "testing": set(),
    "cli": {"base", "election", "kube", "locks", "coordinated"},
    "apiserver": {"base", "election", "kube", "locks", "coordinated"},
}


def folder_of_path(src, path):
    rel = os.path.relpath(path, src)
    top = rel.split(os.sep, 1)[0]
    return top if top in ALLOWED else None


def include_edges(src):
    """(from folder, to folder, file, header) for every quoted include of another folder."""
    edges = []
    for root, _, files in os.walk(src):
        for f in sorted(files):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(root, f)
            here = folder_of_path(src, path)
            if here is None:
                continue
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    # Quoted includes resolve next to the file, then from src/.
                    for base in (root, src):
                        cand = os.path.normpath(os.path.join(base, m.group(1)))
                        if os.path.isfile(cand):
                            there = folder_of_path(src, cand)
                            if there and there != here:
                                edges.append((here, there, os.path.relpath(path, src), m.group(1)))
                            break
    return edges


def folder_of_object(obj):
    # .../CMakeFiles/<target>.dir/src/<folder>/<file>.c.o (a target of the
    # top folder), or .../src/<folder>/CMakeFiles/<target>.dir/<file>.c.o
    # (a target of the folder's own CMakeLists.txt).
    m = re.search(r"\.dir/(?:.*/)?src/([^/]+)/[^/]+\.o$", obj) or re.search(
        r"/src/([^/]+)/CMakeFiles/[^/]+\.dir/[^/]+\.o$", obj)
    return m.group(1) if m and m.group(1) in ALLOWED else None


def symbol_edges(objects):
    """(from folder, to folder, object, symbol) for every global symbol used across folders."""
    out = subprocess.run(["nm", "-A"] + objects, check=True, capture_output=True, text=True).stdout
    defined, used = {}, []
    for line in out.splitlines():
        obj, _, rest = line.rpartition(":")
        parts = rest.split()
        folder = folder_of_object(obj)
        if folder is None:
            continue
        if len(parts) == 2 and parts[0] == "U":
            used.append((folder, obj, parts[1]))
        elif len(parts) == 3 and parts[1] in "TDBRCVW":
            defined.setdefault(parts[2], folder)
    edges = []
    for folder, obj, sym in used:
        there = defined.get(sym)
        if there and there != folder:
            edges.append((folder, there, obj, sym))
    return edges


def public(sym):
    # Internal functions carry a double underscore (kle_kube__request, kle_log__write).
    return sym.startswith("kle_") and "__" not in sym


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    src = sys.argv[1]
    objects = sorted({o for arg in sys.argv[2:] for o in arg.split(";") if o.endswith(".o")})
    missing = sorted(set(ALLOWED) - {folder_of_object(o) for o in objects} - {"testing"})
    if missing and len(objects) > 0:
        print("FAIL: no objects of " + ", ".join(missing) + " were given")
        return 1
    bad = []
    for here, there, f, h in include_edges(src):
        if there not in ALLOWED[here]:
            bad.append("%s -> %s: %s includes \"%s\"" % (here, there, f, h))
    for here, there, obj, sym in symbol_edges(objects):
        if there in ALLOWED[here]:
            continue
        if here == "testing" and public(sym):
            continue  # the public API
        bad.append("%s -> %s: %s uses %s" % (here, there, obj.split(".dir/", 1)[-1], sym))
    for b in sorted(set(bad)):
        print("FAIL: " + b)
    if bad:
        print("%d dependencies the folders may not have (tests/structure/folders.py lists the rules)"
              % len(set(bad)))
        return 1
    print("the folders of %s depend only as allowed (%d object files)" % (src, len(objects)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
