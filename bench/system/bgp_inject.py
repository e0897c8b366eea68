#!/usr/bin/python3
"""A fast bulk injector: N IPv4 /24 prefixes in pre-encoded, full-size UPDATEs sent at
once to several BGP receivers in parallel (one connection each, AS 65100, 4-octet AS).
Encoding happens before any connection, so the timed part is only the sending.

  bgp_inject.py N SOURCE ADDR:ASN [ADDR:ASN ...]

Prints "sent ADDR SECONDS" when a receiver has been handed the whole table (the
injector's own time), then keeps the sessions alive until killed.
"""

import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tests", "integration", "lib"))
import rawbgp  # noqa: E402


def table(n, source):
    attrs = rawbgp.origin(0) + rawbgp.as_path(65100) + rawbgp.next_hop(source)
    room = 4096 - 19 - 4 - len(attrs)
    out, nlri = [], bytearray()
    for i in range(n):
        a = 0x0b000000 + i * 256
        nlri += struct.pack("!BBBB", 24, a >> 24, a >> 16 & 255, a >> 8 & 255)
        if len(nlri) + 4 > room or i == n - 1:
            body = struct.pack("!H", 0) + struct.pack("!H", len(attrs)) + attrs + bytes(nlri)
            out.append(rawbgp.message(2, body))
            nlri = bytearray()
    return b"".join(out)


def serve(addr, asn, source, stream, lock):
    while True:
        try:
            sp = rawbgp.Speaker(addr, source=source, timeout=30)
            sp.handshake(65100, source)
            break
        except OSError:
            time.sleep(0.5)
    sp.sock.settimeout(None)
    start = time.monotonic()
    sp.send(stream)
    took = time.monotonic() - start
    with lock:
        print(f"sent {addr} {took:.3f}", flush=True)
    # Keep the session: answer with keepalives, drain whatever the receiver sends.
    sp.sock.settimeout(20)
    while True:
        try:
            if sp.recv() is None:
                return
        except socket.timeout:
            pass
        sp.send(rawbgp.keepalive())


def main(argv):
    if len(argv) < 4:
        sys.exit(__doc__)
    n, source = int(argv[1]), argv[2]
    stream = table(n, source)
    print(f"encoded {n} prefixes in {len(stream)} bytes", flush=True)
    lock = threading.Lock()
    threads = []
    for target in argv[3:]:
        addr, asn = target.split(":")
        t = threading.Thread(target=serve, args=(addr, int(asn), source, stream, lock),
                             daemon=True)
        t.start()
        threads.append(t)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main(sys.argv)
