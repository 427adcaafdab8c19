#!/usr/bin/env python3
"""Fails when the units of src/ depend on each other in a cycle.

Two graphs are checked:
  - #include "..." lines between the files of src/ (a header that comes
    back to itself);
  - the units' symbols: unit A depends on unit B when A's object file uses
    a global symbol B's defines (nm). This is what "main.c <-> run.c"
    means: each calls a function the other defines, whatever header
    declares it.

usage: unit_cycles.py SRC_DIR GROUP...
  GROUP is a ';'-separated list of object files linked together (one
  program or library); each group is checked on its own.
"""
import os
import re
import subprocess
import sys


def cycles(graph):
    """Strongly connected components of more than one node, or with a self-edge."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    sys.setrecursionlimit(100000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def include_graph(src):
    graph = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(root, f)
            deps = set()
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                    if not m:
                        continue
                    # Quoted includes resolve next to the file, then from src/.
                    for base in (root, src):
                        cand = os.path.normpath(os.path.join(base, m.group(1)))
                        if os.path.isfile(cand):
                            deps.add(os.path.relpath(cand, src))
                            break
            graph[os.path.relpath(path, src)] = deps
    return graph


def symbol_graph(objects):
    defined = {o: set() for o in objects}
    used = {o: set() for o in objects}
    # One nm for the whole group; -A prefixes each line with "object:".
    out = subprocess.run(["nm", "-A"] + objects, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        obj, _, rest = line.rpartition(":")
        parts = rest.split()
        if obj not in defined:
            continue
        if len(parts) == 2 and parts[0] == "U":
            used[obj].add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCVW":
            defined[obj].add(parts[2])
    owner = {}
    for obj, syms in defined.items():
        for s in syms:
            owner.setdefault(s, obj)
    graph = {}
    for obj, syms in used.items():
        graph[obj] = {owner[s] for s in syms if s in owner and owner[s] != obj}
    return graph


def name(obj):
    # .../CMakeFiles/<target>.dir/<path>.c.o -> <path>.c
    base = obj.split(".dir/", 1)[-1]
    return base[:-2] if base.endswith(".o") else base


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 2
    src = sys.argv[1]
    bad = 0
    for comp in cycles(include_graph(src)):
        print("FAIL: #include cycle among " + ", ".join(comp))
        bad += 1
    groups = [g for g in sys.argv[2:] if g]
    nunits = 0
    for group in groups:
        objects = sorted({o for o in group.split(";") if o})
        nunits += len(objects)
        for comp in cycles(symbol_graph(objects)):
            print("FAIL: units that depend on each other: " + ", ".join(name(o) for o in comp))
            bad += 1
    if bad:
        print("%d cycle(s); move what both sides need into a unit of its own" % bad)
        return 1
    print("no cycles among the includes of %s or the %d units of %d groups" % (src, nunits, len(groups)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
