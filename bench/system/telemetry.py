#!/usr/bin/python3
"""Port packet rates of a running DPDK process, read through its telemetry socket.

  telemetry.py rate FILE_PREFIX [--port 0] [--warmup 2] [--seconds 5] [--pid PID] [--cpu N]
      waits for the socket, lets the forwarder warm up, samples /ethdev/stats at t0 and
      t1 and prints one JSON object: {"opps": ..., "ipps": ..., "seconds": ...}; with
      --pid and --cpu also the CPU time its thread pinned to CPU N (the forwarding lcore)
      got meanwhile and the packets per second of that CPU time ("opps_cpu"): on a
      shared machine the lcore is preempted, which the wall-clock rate counts against it
  telemetry.py query FILE_PREFIX COMMAND     prints the raw JSON answer
"""
import argparse
import json
import os
import socket
import sys
import time

RUNTIME_DIR = "/var/run/dpdk"


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


class Telemetry:
    def __init__(self, prefix, wait=30.0, pid=None):
        path = os.path.join(RUNTIME_DIR, prefix, "dpdk_telemetry.v2")
        deadline = time.monotonic() + wait
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                if pid is not None and not alive(pid):
                    raise SystemExit(f"telemetry.py: process {pid} exited before {path} appeared")
                if time.monotonic() > deadline:
                    raise SystemExit(f"telemetry.py: cannot connect to {path}: {e}")
                time.sleep(0.2)
        # The server greets with its version and maximum answer length.
        hello = json.loads(self.sock.recv(4096))
        self.max_len = int(hello.get("max_output_len", 16384))

    def query(self, command):
        self.sock.send(command.encode())
        answer = json.loads(self.sock.recv(self.max_len))
        key = command.split(",", 1)[0]
        if answer.get(key) is None:
            raise SystemExit(f"telemetry.py: '{command}' returned {answer}")
        return answer[key]

    def port_stats(self, port):
        return self.query(f"/ethdev/stats,{port}")


def lcore_thread(pid, cpu):
    """The thread of `pid` pinned to exactly `cpu` that has run longest, or None."""
    best, best_ns = None, -1
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                pinned = any(l.split(":")[0] == "Cpus_allowed_list" and l.split(":")[1].strip() == str(cpu)
                             for l in f)
            ns = cpu_ns(pid, tid)
        except OSError:
            continue
        if pinned and ns > best_ns:
            best, best_ns = tid, ns
    return best


def cpu_ns(pid, tid):
    """Nanoseconds thread `tid` has been on a CPU (schedstat's first field)."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


def rate(args):
    t = Telemetry(args.prefix, pid=args.pid)
    time.sleep(args.warmup)
    tid = lcore_thread(args.pid, args.cpu) if args.pid and args.cpu is not None else None
    s0, t0 = t.port_stats(args.port), time.monotonic()
    c0 = cpu_ns(args.pid, tid) if tid else 0
    time.sleep(args.seconds)
    s1, t1 = t.port_stats(args.port), time.monotonic()
    c1 = cpu_ns(args.pid, tid) if tid else 0
    dt = t1 - t0
    out = {
        "opps": (s1["opackets"] - s0["opackets"]) / dt,
        "ipps": (s1["ipackets"] - s0["ipackets"]) / dt,
        "imissed": s1["imissed"] - s0["imissed"],
        "seconds": dt,
    }
    if tid and c1 > c0:
        out["cpu_seconds"] = (c1 - c0) / 1e9
        out["opps_cpu"] = (s1["opackets"] - s0["opackets"]) / out["cpu_seconds"]
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rate")
    r.add_argument("prefix", help="the process's EAL --file-prefix")
    r.add_argument("--port", type=int, default=0)
    r.add_argument("--pid", type=int, help="stop waiting for the socket if this process exits")
    r.add_argument("--warmup", type=float, default=2.0)
    r.add_argument("--seconds", type=float, default=5.0)
    r.add_argument("--cpu", type=int, help="the forwarding lcore's CPU (needs --pid)")
    q = sub.add_parser("query")
    q.add_argument("prefix")
    q.add_argument("command")
    a = ap.parse_args()
    if a.cmd == "rate":
        rate(a)
    else:
        print(json.dumps(Telemetry(a.prefix).query(a.command)))


if __name__ == "__main__":
    sys.exit(main())
