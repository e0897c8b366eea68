"""A minimal BGP speaker over a plain TCP socket, for sending hand-made (and broken)
messages to vleaf-bgpd. IPv4 unicast, 4-octet AS."""

import socket
import struct

MARKER = b"\xff" * 16


def message(kind, body):
    return MARKER + struct.pack("!HB", 19 + len(body), kind) + body


def open_msg(asn, router_id, hold=30):
    caps = bytes([1, 4, 0, 1, 0, 1])  # multiprotocol IPv4 unicast
    caps += bytes([65, 4]) + struct.pack("!I", asn)  # 4-octet AS
    params = bytes([2, len(caps)]) + caps
    my_as = asn if asn < 65536 else 23456
    body = struct.pack("!BHH4sB", 4, my_as, hold, socket.inet_aton(router_id), len(params))
    return message(1, body + params)


def keepalive():
    return message(4, b"")


def attr(flags, kind, value):
    if len(value) > 255:
        return struct.pack("!BBH", flags | 0x10, kind, len(value)) + value
    return struct.pack("!BBB", flags, kind, len(value)) + value


def origin(value):
    return attr(0x40, 1, bytes([value]))


def as_path(*asns):
    return attr(0x40, 2, bytes([2, len(asns)]) + b"".join(struct.pack("!I", a) for a in asns))


def next_hop(addr):
    return attr(0x40, 3, socket.inet_aton(addr))


def nlri(prefix):
    addr, length = prefix.split("/")
    length = int(length)
    return bytes([length]) + socket.inet_aton(addr)[:(length + 7) // 8]


def update(attrs=b"", prefixes=(), withdrawn=()):
    w = b"".join(nlri(p) for p in withdrawn)
    body = struct.pack("!H", len(w)) + w + struct.pack("!H", len(attrs)) + attrs
    return message(2, body + b"".join(nlri(p) for p in prefixes))


class Speaker:
    def __init__(self, addr, port=179, source=None, timeout=10):
        self.sock = socket.create_connection((addr, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv(self):
        """The next message as (type, body), or None when the peer closed."""
        while True:
            if len(self.buf) >= 19:
                length, kind = struct.unpack("!HB", self.buf[16:19])
                if len(self.buf) >= length:
                    body, self.buf = self.buf[19:length], self.buf[length:]
                    return kind, body
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def handshake(self, asn, router_id):
        self.send(open_msg(asn, router_id))
        kinds = []
        while 4 not in kinds:
            m = self.recv()
            if m is None:
                raise RuntimeError(f"closed during the handshake after {kinds}")
            kinds.append(m[0])
            if m[0] == 3:
                raise RuntimeError(f"NOTIFICATION {m[1][0]}/{m[1][1]} during the handshake")
            if m[0] == 1:
                self.send(keepalive())

    def notification(self):
        """Reads until a NOTIFICATION (returns (code, subcode)) or the close (None)."""
        while True:
            m = self.recv()
            if m is None:
                return None
            if m[0] == 3:
                return m[1][0], m[1][1]

    def close(self):
        self.sock.close()


MESSAGES = {
    # A well-formed route.
    "valid": lambda: update(origin(0) + as_path(65005) + next_hop("10.6.2.2"), ["192.0.2.128/25"]),
    # ORIGIN 7 does not exist: RFC 7606 7.1, treat-as-withdraw.
    "bad-origin": lambda: update(origin(7) + as_path(65005) + next_hop("10.6.2.2"),
                                 ["192.0.2.128/25"]),
    # NLRI without the mandatory NEXT_HOP (the shape of CVE-2023-46753): treat-as-withdraw.
    "no-next-hop": lambda: update(origin(0) + as_path(65005), ["192.0.2.0/25"]),
    # A broken header marker: NOTIFICATION 1/1, the session closes.
    "bad-marker": lambda: b"\x00" * 16 + keepalive()[16:],
}


def main():
    """Reads commands from stdin, one per line, answering each with one line:
    connect ADDR SOURCE ASN ROUTER_ID | send NAME | notification | keepalive."""
    import sys
    sp = None
    for line in sys.stdin:
        cmd = line.split()
        try:
            if cmd[0] == "connect":
                sp = Speaker(cmd[1], source=cmd[2])
                sp.handshake(int(cmd[3]), cmd[4])
                print("ok", flush=True)
            elif cmd[0] == "send":
                sp.send(MESSAGES[cmd[1]]())
                print("sent", flush=True)
            elif cmd[0] == "keepalive":
                sp.send(keepalive())
                print("sent", flush=True)
            elif cmd[0] == "notification":
                n = sp.notification()
                print(f"{n[0]} {n[1]}" if n else "closed", flush=True)
        except Exception as exc:
            print(f"error {type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
