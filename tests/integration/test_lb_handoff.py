#!/usr/bin/python3
"""LB handoff between two workers (dataplane/lb_handoff.hpp) in the services lab
(lib/services_lab.py: a client, vleafd, three echo backends behind VIP 10.96.0.10:8080).

vleafd runs two worker lcores. Each af_packet port has two queue pairs, i.e. two sockets
in a fanout group over which the kernel spreads received frames by flow hash (af_packet's
RSS); worker lcore 1 polls queue 0 of both ports, lcore 2 queue 1. A DNAT request
(client -> VIP, on p0) and its reply (backend -> client, on p1) are different 5-tuples,
so they reach the same worker only by chance; the worker that owns the flow (a hash of
its client side) holds its flow table entries and the other hands it the packets. The
machine may have two CPUs only: the three lcores share them (--lcores (0-2)@(0-1)).
The checks: both workers receive traffic; 128 connections through the VIP each reach a
backend and echo 16 KiB intact; `show lb` counts handoffs out of and into both workers
(out = in), flows in both workers' tables, and no LB drops.

usage: test_lb_handoff.py VLEAFD VLEAFCTL
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect  # noqa: E402
from netns import wait_for  # noqa: E402
from services_lab import DEMO_CONFIG, run_service_lab  # noqa: E402

CONNECTIONS = 128
ONE_WORKER = """workers:
  - lcore: 1
    rx:
      - {port: p0, queue: 0}
      - {port: p1, queue: 0}
"""
TWO_WORKERS = """workers:
  - lcore: 1
    rx:
      - {port: p0, queue: 0}
      - {port: p1, queue: 0}
  - lcore: 2
    rx:
      - {port: p0, queue: 1}
      - {port: p1, queue: 1}
"""


def two_workers(text):
    """demo.yaml's ports with two queue pairs each, served by two workers."""
    for old, new, count in (("qpairs=1", "qpairs=2", 2), ("rx_queues: 1", "rx_queues: 2", 2),
                            ("mbufs: 8191", "mbufs: 16383", 1), (ONE_WORKER, TWO_WORKERS, 1)):
        if text.count(old) != count:
            raise RuntimeError(f"{DEMO_CONFIG} no longer has {old!r} {count} time(s)")
        text = text.replace(old, new)
    return text


def check_workers(s):
    lb = s.query("show", "lb")["workers"]
    expect(sorted(w["lcore"] for w in lb) == [1, 2], f"LB workers {lb}")


def check_connections(s):
    names = s.talk(f"open {CONNECTIONS}")
    errors = [n for n in names if n.startswith("error")]
    expect(not errors, f"{len(errors)} of {CONNECTIONS} connections failed: {errors[:5]}")
    expect(len(set(names)) >= 2, f"{CONNECTIONS} connections all reached {set(names)}")
    ok = s.talk("stream 16384")
    bad = [k for k, x in enumerate(ok) if x is not True]
    expect(len(ok) == CONNECTIONS and not bad, f"echo broken on connections {bad[:10]}: {[ok[k] for k in bad[:5]]}")
    closed = s.talk("close")
    expect(closed == {"closed": CONNECTIONS}, f"close: {closed}")


def check_spread(s):
    rx = [w["rx_packets"] for w in s.query("show", "stats")["workers"]]
    print(f"rx packets per worker: {rx}", flush=True)
    expect(len(rx) == 2 and min(rx) > 0, f"rx packets per worker {rx}: the fanout did not spread")


def check_handoffs(s):
    def settled():  # every handed-off packet drained by its owner
        lb = s.query("show", "lb")["workers"]
        return sum(w["handoff_out"] for w in lb) == sum(w["handoff_in"] for w in lb)
    wait_for(settled, 5, "handoff_in to catch up with handoff_out")
    lb = s.query("show", "lb")["workers"]
    summary = [{k: w[k] for k in ("lcore", "handoff_out", "handoff_in", "flows_created", "dnat", "reverse_nat")}
               for w in lb]
    print(f"show lb: {summary}", flush=True)
    expect(all(w["handoff_out"] > 0 and w["handoff_in"] > 0 for w in lb), f"handoffs per worker {summary}")
    expect(all(w["flows_created"] > 0 and w["dnat"] > 0 and w["reverse_nat"] > 0 for w in lb),
           f"flows per worker {summary}")
    created = sum(w["flows_created"] for w in lb)
    expect(created >= 2 * CONNECTIONS, f"{created} flow entries for {CONNECTIONS} connections")
    drops = s.query("show", "stats")["drops"]
    lb_drops = {k: v for k, v in drops.items() if k.startswith("lb_") and v}
    expect(not lb_drops, f"LB drops {lb_drops}")


def checks(s, check):
    wait_for(lambda: s.query("service", "show", name="web")[0]["announced"], 10, "web to be announced")
    check("two LB workers", check_workers, s)
    check(f"{CONNECTIONS} connections through the VIP, each echoes intact", check_connections, s)
    check("the fanout spread received packets over both workers", check_spread, s)
    check("handoffs both ways between the workers, no LB drops", check_handoffs, s)


if __name__ == "__main__":
    sys.exit(run_service_lab(sys.argv, __doc__, "lbh", checks, config=two_workers,
                             eal=("--lcores", "(0-2)@(0-1)")))
