#!/usr/bin/env python3
"""Checks worker logs (tests/support/worker.sh) for leaders working at once.

Usage: overlap_check.py [--max-intervals N] LOG...

Each LOG holds the workers of one lock (workers of different locks may run
at once); each is checked on its own.

Each line is "TIME_US EVENT IDENTITY TOKEN PID". A leadership (one
identity with one fencing token, whatever processes worked for it: a
restarted command, a daemonized child) works from its first LEAD line to
its last line of any kind (BEAT or STOP): a worker killed by SIGKILL has no
STOP, and its work is what it logged. The
check fails (exit 1, the offending lines printed) when:
  - two workers' intervals overlap (two leaders working at once);
  - a later worker carries a smaller fencing token than an earlier one, or
    a different identity with the same or a smaller token;
  - a line cannot be read.
It prints one summary line: intervals, identities, tokens, smallest gap.
"""
import os
import sys


def main(argv):
    max_intervals = None
    files = []
    it = iter(argv[1:])
    for a in it:
        if a == "--max-intervals":
            max_intervals = int(next(it))
        else:
            files.append(a)
    bad = 0
    for f in files:
        try:
            lines = open(f).read().splitlines()
        except FileNotFoundError:
            continue
        bad |= check(f, lines, max_intervals)
    return bad


def check(f, lines, max_intervals):
    workers = {}
    for n, line in enumerate(lines, 1):
        p = line.split()
        if len(p) != 5 or p[1] not in ("LEAD", "BEAT", "STOP"):
            print(f"overlap_check: {f}:{n}: unreadable line {line!r}")
            return 1
        ts, ev, ident, tok, pid = int(p[0]), p[1], p[2], p[3], p[4]
        w = workers.setdefault((ident, tok), {"id": ident, "tok": tok, "start": None,
                                              "end": ts, "stopped": False, "pids": set()})
        w["pids"].add(pid)
        if ev == "LEAD" and (w["start"] is None or ts < w["start"]):
            w["start"] = ts
        w["end"] = max(w["end"], ts)
        w["stopped"] |= ev == "STOP"
    ivs = []
    for key, w in workers.items():
        if w["start"] is None:
            print(f"overlap_check: leadership {key} has no LEAD line")
            return 1
        ivs.append((w["start"], w["end"], w["id"], int(w["tok"]), ",".join(sorted(w["pids"])),
                    w["stopped"]))
    ivs.sort()
    bad = 0
    min_gap = None
    for i in range(1, len(ivs)):
        prev_end = max(iv[1] for iv in ivs[:i])
        prev = max(ivs[:i], key=lambda iv: iv[1])
        cur = ivs[i]
        gap = cur[0] - prev_end
        min_gap = gap if min_gap is None else min(min_gap, gap)
        if gap <= 0:
            print(f"overlap_check: OVERLAP {-gap / 1000:.1f} ms: {cur[2]} (token {cur[3]}, pid "
                  f"{cur[4]}) started while {prev[2]} (token {prev[3]}, pid {prev[4]}) still "
                  f"worked until {prev[1]}")
            bad = 1
        last = ivs[i - 1]
        if cur[3] < last[3] or (cur[2] != last[2] and cur[3] <= last[3]):
            print(f"overlap_check: fencing token went from {last[3]} ({last[2]}) to {cur[3]} "
                  f"({cur[2]})")
            bad = 1
    if max_intervals is not None and len(ivs) > max_intervals:
        print(f"overlap_check: {len(ivs)} leaderships, at most {max_intervals} expected")
        bad = 1
    gap = "-" if min_gap is None else f"{min_gap / 1000:.1f} ms"
    print(f"overlap_check: {os.path.basename(f)}: {len(ivs)} leaderships, identities "
          f"{sorted(set(iv[2] for iv in ivs))}, tokens {sorted(set(iv[3] for iv in ivs))}, "
          f"smallest gap {gap}: {'FAILED' if bad else 'no overlap'}")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv))
