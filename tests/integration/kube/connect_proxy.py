#!/usr/bin/env python3
"""A minimal HTTP CONNECT proxy for the client's proxy-url test.

Listens on 127.0.0.1 (a free port), writes the port to argv[1] once ready,
appends every CONNECT target to argv[2], relays bytes both ways. Only
loopback targets are allowed."""
import os
import select
import socket
import sys
import threading


def relay(a, b):
    try:
        while True:
            r, _, _ = select.select([a, b], [], [], 60)
            if not r:
                return
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def handle(conn, log_path):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            conn.close()
            return
        head += chunk
    line = head.split(b"\r\n", 1)[0].decode()
    parts = line.split()
    if len(parts) < 2 or parts[0] != "CONNECT":
        conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
        conn.close()
        return
    host, port = parts[1].rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        conn.close()
        return
    with open(log_path, "a") as f:
        f.write(parts[1] + "\n")
    up = socket.create_connection((host.strip("[]"), int(port)))
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    relay(conn, up)


def main():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    tmp = sys.argv[1] + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(tmp, sys.argv[1])
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, sys.argv[2]), daemon=True).start()


if __name__ == "__main__":
    main()
