#!/usr/bin/env python3
"""The checks of bench/chaos on hand-written work logs: an overlap of two
kle leaderships, a token that goes back, a replica taking its own record
back, the two kinds of overlap after a Python-client leadership (its
own overrun past its lease, and a takeover before its lease ran out), and
the token rules around the maximum, outside edits of the record and
resets."""
import importlib.machinery
import importlib.util
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
loader = importlib.machinery.SourceFileLoader("chaos", os.path.join(ROOT, "bench", "chaos"))
spec = importlib.util.spec_from_loader("chaos", loader)
chaos = importlib.util.module_from_spec(spec)
loader.exec_module(chaos)

S = 1000000


def check(lines, outside=()):
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "work.log")
        with open(p, "w") as f:
            f.write("".join(f"{int(t * S)} {e} {i} {k} {pid}\n" for t, e, i, k, pid in lines))
        w = chaos.WorkLog(p)
        w.lease_us = 3 * S
        w.outside = [(o[0], int(o[1] * S)) + tuple(o[2:]) for o in outside]
        w.poll()
        return w.check(), list(w.py_overruns.values()), w.bad_lines


def expect(name, got, overlaps=0, tokens=0, overruns=0):
    problems, pyo, bad = got
    o = sum(p.startswith("OVERLAP") for p in problems)
    t = sum(p.startswith("TOKEN") for p in problems)
    if (o, t, len(pyo), bad) != (overlaps, tokens, overruns, 0):
        sys.exit(f"chaos_checker: {name}: got overlaps {o}, tokens {t}, Python overruns "
                 f"{len(pyo)}, bad lines {bad}; expected {overlaps}, {tokens}, {overruns}, 0\n"
                 + "\n".join(problems + pyo))
    print(f"ok   [chaos_checker]: {name}")


# Two kle leaderships one after the other; then the second starts early.
expect("takeover after the stop",
       check([(0, "LEAD", "k0.1", 1, 1), (1, "STOP", "k0.1", 1, 1), (1.5, "LEAD", "k1.1", 2, 2)]))
expect("two kle commands at once",
       check([(0, "LEAD", "k0.1", 1, 1), (1, "BEAT", "k0.1", 1, 1), (0.5, "LEAD", "k1.1", 2, 2)]),
       overlaps=1)
expect("a token that goes back",
       check([(0, "LEAD", "k0.1", 2, 1), (1, "STOP", "k0.1", 2, 1), (2, "LEAD", "k1.1", 1, 2)]),
       tokens=1)
expect("the same token from another holder",
       check([(0, "LEAD", "k0.1", 2, 1), (1, "STOP", "k0.1", 2, 1), (2, "LEAD", "k1.1", 2, 2)]),
       tokens=1)
expect("a replica takes its own record back",
       check([(0, "LEAD", "k0.1", 2, 1), (1, "STOP", "k0.1", 2, 1), (2, "LEAD", "k0.1", 2, 3)]))
# A Python leadership: last write landed at 0 (lease until 3), a write at 2.
py = [(0, "WRITE", "p2.1", 0, 10), (0.1, "LEAD", "p2.1", 0, 11), (0.2, "BEAT", "p2.1", 0, 11),
      (2.0, "WRITE", "p2.1", 0, 10)]
late = [(3.5, "LEAD", "k0.1", 1, 12), (3.6, "BEAT", "k0.1", 1, 12), (4.0, "STOP", "p2.1", 0, 11)]
expect("Python work past its lease, its last write answered 409",
       check(py + [(2.0, "NOWRITE", "p2.1", 0, 10)] + late), overruns=1)
expect("takeover before the Python lease (its write at 2 may have landed)",
       check(py + late), overlaps=1)
expect("tokens restart after a Python leadership",
       check([(0, "LEAD", "k0.1", 5, 1), (1, "STOP", "k0.1", 5, 1), (1.1, "WRITE", "p2.1", 5, 9),
              (1.2, "LEAD", "p2.1", 5, 2), (2, "STOP", "p2.1", 5, 2), (3, "LEAD", "k1.1", 1, 3)]))

# Fencing tokens at the maximum, after outside edits and resets.
M = chaos.MAX_TOKEN
expect("two holders at the maximum (saturated, not an error)",
       check([(0, "LEAD", "k0.1", M, 1), (1, "STOP", "k0.1", M, 1), (2, "LEAD", "k1.1", M, 2)]))
expect("below the maximum the same token from another holder is still an error",
       check([(0, "LEAD", "k0.1", M - 1, 1), (1, "STOP", "k0.1", M - 1, 1),
              (2, "LEAD", "k1.1", M - 1, 2)]), tokens=1)
edit_max = [("edit", 0.5, "k0.1", 3, "k0.1", M)]
expect("leaderTransitions edited to the maximum: the next takeover stays there",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "STOP", "k0.1", 3, 1), (4, "LEAD", "k1.1", M, 2),
              (5, "STOP", "k1.1", M, 2), (6, "LEAD", "k2.1", M, 3)], edit_max))
expect("without the edit, 3 then the maximum is fine but the maximum then 3 is not",
       check([(0, "LEAD", "k0.1", M, 1), (1, "STOP", "k0.1", M, 1), (4, "LEAD", "k1.1", 3, 2)]),
       tokens=1)
expect("an edited baseline still flags a lower token after it",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "STOP", "k0.1", 3, 1), (4, "LEAD", "k1.1", 4, 2)],
             [("edit", 0.5, "k0.1", 3, "k0.1", 10)]), tokens=1)
expect("the edited leadership's LEAD line after the edit belongs before it",
       check([(1.0, "LEAD", "k0.1", 3, 1), (2, "STOP", "k0.1", 3, 1), (4, "LEAD", "k1.1", M, 2)],
             [("edit", 0.9, "k0.1", 3, "k0.1", M)]))
expect("holder emptied by hand: the next holder takes one more",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "STOP", "k0.1", 3, 1), (4, "LEAD", "k1.1", 4, 2)],
             [("edit", 0.5, "k0.1", 3, "", 3)]))
expect("holder emptied by hand: the old holder's own token again is a regression",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "STOP", "k0.1", 3, 1), (4, "LEAD", "k0.1", 3, 2)],
             [("edit", 0.5, "k0.1", 3, "", 3)]), tokens=1)
expect("a reset (every replica restarted, the lock deleted): tokens start again",
       check([(0, "LEAD", "k0.1", M, 1), (1, "STOP", "k0.1", M, 1), (4, "LEAD", "k1.2", 1, 2)],
             [("reset", 2)]))
expect("a lock re-created with a lower token, no reset",
       check([(0, "LEAD", "k0.1", 7, 1), (1, "STOP", "k0.1", 7, 1), (4, "LEAD", "k1.1", 1, 2)]),
       tokens=1)
# Two lock families (--lock endpoints+leases): each object counts its own,
# but one leader among all.
expect("two families count their own tokens",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "STOP", "k0.1", 3, 1), (2, "LEAD", "e1.1", 7, 2),
              (3, "STOP", "e1.1", 7, 2), (4, "LEAD", "k2.1", 4, 3)]))
expect("a token that goes back within one family, across the other's leadership",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "STOP", "k0.1", 3, 1), (2, "LEAD", "e1.1", 7, 2),
              (3, "STOP", "e1.1", 7, 2), (4, "LEAD", "k2.1", 2, 3)]), tokens=1)
expect("leaders of two families at once",
       check([(0, "LEAD", "k0.1", 3, 1), (1, "BEAT", "k0.1", 3, 1), (0.5, "LEAD", "e1.1", 1, 2)]),
       overlaps=1)
