#!/usr/bin/env python3
"""The command of the supervisor tests (tests/e2e/cli/supervise.py
and spawn.sh): writes to the file argv[1], one item a line, its open
descriptors, its soft descriptor limit, its parent's program and its
parent's first argument. Python opens no descriptor of its own before the
count; the file is written under another name and renamed, so a reader
never sees half of it."""
import os
import resource
import sys

fds = []
for fd in range(4096):
    try:
        os.fstat(fd)
        fds.append(str(fd))
    except OSError:
        pass
pp = os.getppid()
args = open(f"/proc/{pp}/cmdline", "rb").read().split(b"\0")
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(" ".join(fds) + "\n")
    f.write(str(resource.getrlimit(resource.RLIMIT_NOFILE)[0]) + "\n")
    f.write(os.readlink(f"/proc/{pp}/exe") + "\n")
    f.write((args[1] if len(args) > 1 else b"").decode() + "\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
