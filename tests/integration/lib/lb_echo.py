#!/usr/bin/python3
"""TCP echo servers that name themselves, and a client that holds connections to a VIP.

  lb_echo.py server ADDR PORT NAME   accept connections; send "NAME\\n", then echo
  lb_echo.py client ADDR PORT        commands on stdin, one JSON answer per line on stdout:
      open N        open N connections; answer the backend name each one reached
      stream BYTES  send BYTES random bytes on every open connection and read them back;
                    answer per connection whether all came back intact
      close         close every connection; answer {"closed": N}
The server prints "listening" once it accepts connections.
"""

import json
import os
import socket
import sys
import threading


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def serve(conn, name):
    with conn:
        try:
            conn.sendall(name.encode() + b"\n")
            while chunk := conn.recv(1 << 16):
                conn.sendall(chunk)
        except OSError:  # health checks connect and go
            pass


def server(addr, port, name):
    with socket.socket(family(addr), socket.SOCK_STREAM) as srv:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((addr, port))
        srv.listen(64)
        print("listening", flush=True)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=serve, args=(conn, name), daemon=True).start()


def read_line(conn):
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(1)
        if not chunk:
            raise ConnectionError("closed before the backend named itself")
        data += chunk
    return data.decode().strip()


def echo(conn, nbytes, step=16384):
    """Sends in steps and reads each back before the next: both ends' buffers never fill."""
    for at in range(0, nbytes, step):
        payload = os.urandom(min(step, nbytes - at))
        conn.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = conn.recv(len(payload) - len(got))
            if not chunk:
                return False
            got += chunk
        if got != payload:
            return False
    return True


def client(addr, port):
    conns = []
    for line in sys.stdin:
        cmd = line.split()
        if cmd[0] == "open":
            names = []
            for _ in range(int(cmd[1])):
                try:
                    c = socket.create_connection((addr, port), timeout=3)
                    names.append(read_line(c))
                    conns.append(c)
                except OSError as exc:
                    names.append(f"error: {exc}")
            answer = names
        elif cmd[0] == "stream":
            answer = []
            for c in conns:
                try:
                    answer.append(echo(c, int(cmd[1])))
                except OSError as exc:
                    answer.append(f"error: {exc}")
        elif cmd[0] == "close":
            for c in conns:
                c.close()
            answer = {"closed": len(conns)}
            conns = []
        else:
            answer = {"error": f"unknown command {cmd[0]}"}
        print(json.dumps(answer), flush=True)


def main(argv):
    if len(argv) == 5 and argv[1] == "server":
        server(argv[2], int(argv[3]), argv[4])
    elif len(argv) == 4 and argv[1] == "client":
        client(argv[2], int(argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
