#!/usr/bin/python3
"""Session life cycle against GoBGP: hold-timer expiry, flap and recovery, and a peer
restart with graceful restart (RFC 4724, vleaf as helper).

  ns vl (vleaf-bgpd 10.5.0.1, hold 6 s) ── veth ── ns gb (gobgpd 10.5.0.2, GR 60 s)

1. GoBGP stopped with SIGSTOP: vleaf's hold timer (6 s) expires, vleaf sends
   NOTIFICATION 4/0, the session drops and GoBGP's routes are withdrawn (a NOTIFICATION
   ends graceful restart).
2. SIGCONT: the session comes back (a flap) and the routes return.
3. gobgpd killed with SIGKILL (TCP closes without NOTIFICATION): vleaf keeps its routes
   as stale. A new gobgpd re-announces one of the two routes: after its End-of-RIB the
   other is swept and the re-announced one is no longer stale.

usage: test_bgp_session.py VLEAF_BGPD
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, expect, gobgpd, link, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.5.0.1
  peers:
    - {address: 10.5.0.2, remote_as: 65002, timers: {hold: 6, keepalive: 2, connect_retry: 1}}
"""

GOBGP = """\
[global.config]
  as = 65002
  router-id = "10.5.0.2"
  local-address-list = ["10.5.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.5.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 30
    keepalive-interval = 10
    connect-retry = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 60
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
"""

A, B = "192.0.2.0/24", "198.51.100.0/24"


class Peer:
    def __init__(self, lab, ns):
        self.lab, self.ns, self.runs = lab, ns, 0
        self.start()

    def start(self):
        self.runs += 1
        self.gobgp = gobgpd(self.lab, self.ns, f"gb{self.runs}", GOBGP, 50051)

    def add(self, prefix):
        self.gobgp("global", "rib", "add", prefix, "-a", "ipv4", as_json=False)


def neighbor(v):
    return v.query("show bgp neighbors", address="10.5.0.2")[0]


def up(v):
    return v.state("10.5.0.2") == "Established"


def check_initial(v, peer):
    wait_for(lambda: up(v), 30, "session Established")
    peer.add(A)
    peer.add(B)
    wait_for(lambda: {A, B} <= set(v.routes()), 10, f"vleaf to learn {A} and {B}")
    n = neighbor(v)
    expect(n["graceful_restart"], f"graceful restart not negotiated: {n}")
    expect(n["hold_time"] == 6, f"hold time {n['hold_time']}, want min(6, 30)")


def check_hold_expiry(v, peer):
    peer.gobgp.proc.signal(signal.SIGSTOP)
    start = time.monotonic()
    try:
        wait_for(lambda: not up(v), 12, "the session to drop on hold-timer expiry")
        took = time.monotonic() - start
        print(f"     session dropped {took:.1f} s after SIGSTOP", flush=True)
        expect(4 <= took <= 9, f"dropped after {took:.1f} s, hold time is 6 s")
        n = neighbor(v)
        expect("Hold Timer Expired" in n["last_error"], f"last_error {n['last_error']!r}")
        expect(n["counters"]["notifications_out"] >= 1, f"counters {n['counters']}")
        wait_for(lambda: not ({A, B} & set(v.routes())), 3, "routes withdrawn after hold expiry")
    finally:
        peer.gobgp.proc.signal(signal.SIGCONT)


def check_flap_recovers(v, peer):
    wait_for(lambda: up(v), 40, "session Established again after SIGCONT")
    wait_for(lambda: {A, B} <= set(v.routes()), 10, "routes back after the flap")
    n = neighbor(v)
    expect(n["counters"]["established"] == 2 and n["counters"]["dropped"] == 1,
           f"established/dropped {n['counters']}")


def check_graceful_restart(v, peer):
    peer.gobgp.proc.signal(signal.SIGKILL)
    peer.gobgp.proc.wait(timeout=5)
    wait_for(lambda: not up(v), 10, "session down after the peer died")
    routes = v.routes()
    expect({A, B} <= set(routes), f"stale routes dropped: {sorted(routes)}")
    expect(routes[A]["stale"] and routes[B]["stale"], f"routes not stale: {routes[A]}, {routes[B]}")
    expect(neighbor(v)["stale_families"] == ["ipv4-unicast"], f"{neighbor(v)['stale_families']}")
    peer.start()
    peer.add(A)
    wait_for(lambda: up(v), 30, "session Established with the restarted peer")
    wait_for(lambda: B not in v.routes(), 15, f"{B} swept (not re-announced)")
    routes = wait_for(lambda: (r := v.routes()) and A in r and not r[A]["stale"] and r, 10,
                      f"{A} re-announced and fresh")
    expect(set(routes) == {A}, f"routes after restart {sorted(routes)}")
    expect(neighbor(v)["stale_families"] == [], f"{neighbor(v)['stale_families']}")


def scenario(lab, check):
    vl, gb = lab.netns("vl"), lab.netns("gb")
    link(lab, vl, ["10.5.0.1/24"], gb, ["10.5.0.2/24"])
    v = Vleaf(lab, vl, VLEAF)
    peer = Peer(lab, gb)
    check("session up, routes learned, GR negotiated", check_initial, v, peer)
    check("SIGSTOPped peer: hold timer expires, routes withdrawn", check_hold_expiry, v,
          peer)
    check("SIGCONT: session and routes come back", check_flap_recovers, v, peer)
    check("peer restart: stale routes kept, swept after End-of-RIB",
          check_graceful_restart, v, peer)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "sess", 240, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
