#!/usr/bin/python3
"""One TCP transfer whose content both ends hash, to prove it arrived intact.

  tcp_transfer.py sink ADDR PORT            accept one connection, read to EOF
  tcp_transfer.py source ADDR PORT NBYTES   connect, send NBYTES random bytes

Each side prints "<bytes> <sha256>" when done. The sink prints "listening" once it
accepts connections.
"""

import hashlib
import os
import socket
import sys


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def sink(addr, port):
    with socket.socket(family(addr), socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr, port))
        srv.listen(1)
        print("listening", flush=True)
        conn, _ = srv.accept()
        digest, total = hashlib.sha256(), 0
        with conn:
            while chunk := conn.recv(1 << 16):
                digest.update(chunk)
                total += len(chunk)
    print(total, digest.hexdigest(), flush=True)


def source(addr, port, nbytes):
    digest, sent = hashlib.sha256(), 0
    with socket.create_connection((addr, port), timeout=30) as conn:
        while sent < nbytes:
            chunk = os.urandom(min(1 << 16, nbytes - sent))
            conn.sendall(chunk)
            digest.update(chunk)
            sent += len(chunk)
        conn.shutdown(socket.SHUT_WR)
        # Wait for the sink to close: everything sent has then been read.
        while conn.recv(1 << 16):
            pass
    print(sent, digest.hexdigest(), flush=True)


def main(argv):
    if len(argv) == 4 and argv[1] == "sink":
        sink(argv[2], int(argv[3]))
    elif len(argv) == 5 and argv[1] == "source":
        source(argv[2], int(argv[3]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
