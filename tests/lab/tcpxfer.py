#!/usr/bin/env python3
"""Tiny TCP file transfer for the lab (stdlib only, v4 and v6).

    tcpxfer.py recv PORT OUTFILE        accept one connection, write all bytes
    tcpxfer.py send HOST PORT INFILE    connect, send the file, half-close,
                                        wait for the receiver's byte count
    tcpxfer.py stream HOST PORT RATE STOPFILE COPYFILE
                                        connect, send random bytes at about
                                        RATE bytes/s until STOPFILE exists
                                        (a long-lived flow that spans path
                                        changes), keep a copy in COPYFILE,
                                        then finish as `send` does

The receiver answers with the number of bytes it got, so the sender only
exits 0 when the whole file arrived; the caller compares sha256 sums.
"""
import os
import socket
import sys
import time

TIMEOUT = 60  # seconds without progress


def recv(port, path):
    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.bind(("::", port))
    srv.listen(1)
    srv.settimeout(TIMEOUT)
    conn, peer = srv.accept()
    conn.settimeout(TIMEOUT)
    n = 0
    with open(path, "wb") as f:
        while True:
            b = conn.recv(1 << 20)
            if not b:
                break
            f.write(b)
            n += len(b)
    conn.sendall(b"%d\n" % n)
    conn.close()
    print("received %d bytes from %s" % (n, peer[0]), file=sys.stderr)


def send(host, port, path):
    conn = socket.create_connection((host, port), timeout=TIMEOUT)
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            conn.sendall(b)
            n += len(b)
    finish(conn, n)


def stream(host, port, rate, stopfile, copy):
    conn = socket.create_connection((host, port), timeout=TIMEOUT)
    chunk = max(1024, rate // 20)
    n = 0
    start = time.monotonic()
    with open(copy, "wb") as f:
        while not os.path.exists(stopfile):
            b = os.urandom(chunk)
            conn.sendall(b)
            f.write(b)
            n += len(b)
            ahead = n / rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    finish(conn, n)


def finish(conn, n):
    """Half-closes and checks the receiver's count of bytes against `n`."""
    conn.shutdown(socket.SHUT_WR)
    reply = b""
    while not reply.endswith(b"\n"):
        b = conn.recv(64)
        if not b:
            break
        reply += b
    got = int(reply.strip() or b"-1")
    if got != n:
        sys.exit("sent %d bytes but receiver got %d" % (n, got))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "recv":
        recv(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) == 5 and sys.argv[1] == "send":
        send(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) == 7 and sys.argv[1] == "stream":
        stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        sys.exit(__doc__)
