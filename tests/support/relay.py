#!/usr/bin/env python3
"""A TCP fault relay on 127.0.0.1 (bench/chaos, scripts/demo).

As a module: Relay(target_port), with .port, .frozen, .cut, .latency,
.reset(), .heal(), .close().

As a program: relay.py TARGET_PORT PORT_FILE writes its port to PORT_FILE
and relays until killed; SIGUSR1 cuts the network (open connections freeze,
new ones are held unanswered), SIGUSR2 heals it (held connections are reset,
the client reconnects).
"""
import signal
import socket
import sys
import threading
import time


class Relay:
    """A TCP relay on 127.0.0.1 to 127.0.0.1:target with faults:
    freeze (open connections stop passing bytes), cut (freeze, and new
    connections are held open unanswered), latency, reset (RST both sides)."""

    def __init__(self, target, host="127.0.0.1"):
        """Listens on host (a free port) and relays to host:target."""
        self.target = target
        self.host = host
        self.lsock = socket.socket()
        self.lsock.bind((host, 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.mu = threading.Lock()
        self.conns = []  # [client, upstream or None]
        self.frozen = False
        self.cut = False
        self.latency = 0.0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            with self.mu:
                cut = self.cut
            if cut:
                with self.mu:
                    self.conns.append([c, None])
                continue
            try:
                u = socket.create_connection((self.host, self.target), timeout=5)
                u.settimeout(None)
            except OSError:
                _rst(c)
                continue
            pair = [c, u]
            with self.mu:
                self.conns.append(pair)
            threading.Thread(target=self._pump, args=(pair, 0, 1), daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, 1, 0), daemon=True).start()

    def _pump(self, pair, a, b):
        import select
        src, dst = pair[a], pair[b]
        try:
            while True:
                if self.frozen or self.cut:
                    time.sleep(0.05)
                    continue
                r, _, _ = select.select([src], [], [], 0.1)
                if not r:
                    continue
                if self.frozen or self.cut:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if self.latency:
                    time.sleep(self.latency)
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.mu:
            if pair in self.conns:
                self.conns.remove(pair)
                for s in pair:
                    if s:
                        s.close()

    def reset(self):
        with self.mu:
            conns, self.conns = self.conns, []
        for pair in conns:
            for s in pair:
                if s:
                    _rst(s)

    def heal(self):
        self.frozen = False
        self.latency = 0.0
        if self.cut:
            self.cut = False
            # Connections held during the cut never reached the server.
            with self.mu:
                held = [p for p in self.conns if p[1] is None]
                self.conns = [p for p in self.conns if p[1] is not None]
            for p in held:
                _rst(p[0])

    def close(self):
        self.closed = True
        self.lsock.close()
        self.reset()


def _rst(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def main():
    r = Relay(int(sys.argv[1]))
    signal.signal(signal.SIGUSR1, lambda *_: setattr(r, "cut", True))
    signal.signal(signal.SIGUSR2, lambda *_: r.heal())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write(f"{r.port}\n")
    import os
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
