#!/usr/bin/python3
"""Malformed UPDATEs from a raw TCP speaker while a GoBGP session stays up.

  ns gb (gobgpd 10.6.1.2) ── veth ── ns vl (vleaf-bgpd) ── veth ── ns raw (python 10.6.2.2)

The raw speaker (lib/rawbgp.py) opens a session and sends, in order: a valid route, the
same route with ORIGIN 7 (RFC 7606: treat-as-withdraw), a route without NEXT_HOP
(treat-as-withdraw) and a message with a broken marker (NOTIFICATION 1/1, session
closed). The GoBGP session must not notice: never dropped, its route kept.

usage: test_bgp_malformed.py VLEAF_BGPD
"""

import os
import subprocess
import sys

LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib")
sys.path.insert(0, LIB)
from bgplab import run_lab, Vleaf, expect, gobgpd, link, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.6.1.1
  peers:
    - {address: 10.6.1.2, remote_as: 65002, timers: {hold: 9, connect_retry: 1}}
    - {address: 10.6.2.2, remote_as: 65005, passive: true}
"""

GOBGP = """\
[global.config]
  as = 65002
  router-id = "10.6.1.2"
  local-address-list = ["10.6.1.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.6.1.1"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"""

RAW = "10.6.2.2"


class Raw:
    def __init__(self, ns):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns.name, "/usr/bin/python3",
                                   os.path.join(LIB, "rawbgp.py")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        answer = self.p.stdout.readline().strip()
        if answer.startswith("error") or not answer:
            raise AssertionError(f"raw speaker: {line}: {answer or 'no answer'}")
        return answer

    def close(self):
        self.p.kill()
        self.p.wait()


def raw_counters(v):
    return v.query("show bgp neighbors", address=RAW)[0]["counters"]


def check_raw_up(v, raw):
    raw.cmd(f"connect 10.6.2.1 {RAW} 65005 {RAW}")
    wait_for(lambda: v.state(RAW) == "Established", 10, "raw session Established")
    raw.cmd("send valid")
    wait_for(lambda: "192.0.2.128/25" in v.routes(), 10, "the valid route")


def check_bad_origin(v, raw):
    raw.cmd("send bad-origin")
    wait_for(lambda: raw_counters(v)["treat_as_withdraw"] == 1, 10, "treat_as_withdraw = 1")
    expect("192.0.2.128/25" not in v.routes(), "route still installed after a bad ORIGIN")
    expect(v.state(RAW) == "Established", f"raw session {v.state(RAW)}")


def check_missing_next_hop(v, raw):
    raw.cmd("send no-next-hop")
    wait_for(lambda: raw_counters(v)["treat_as_withdraw"] == 2, 10, "treat_as_withdraw = 2")
    expect("192.0.2.0/25" not in v.routes(), "route without NEXT_HOP installed")
    expect(v.state(RAW) == "Established", f"raw session {v.state(RAW)}")
    raw.cmd("keepalive")


def check_bad_marker(v, raw):
    raw.cmd("send bad-marker")
    answer = raw.cmd("notification")
    expect(answer == "1 1", f"NOTIFICATION {answer}, want 1 1 (Connection Not Synchronized)")
    wait_for(lambda: v.state(RAW) != "Established", 5, "raw session closed")
    n = v.query("show bgp neighbors", address=RAW)[0]
    expect("Message Header Error" in n["last_error"], f"last_error {n['last_error']!r}")


def check_gobgp_untouched(v):
    n = v.query("show bgp neighbors", address="10.6.1.2")[0]
    expect(n["state"] == "Established", f"GoBGP session {n['state']}")
    expect(n["counters"]["established"] == 1 and n["counters"]["dropped"] == 0,
           f"GoBGP session flapped: {n['counters']}")
    expect("203.0.113.0/24" in v.routes(), "GoBGP's route lost")


def scenario(lab, check):
    raw = None
    try:
        vl, gb, rw = lab.netns("vl"), lab.netns("gb"), lab.netns("raw")
        link(lab, vl, ["10.6.1.1/24"], gb, ["10.6.1.2/24"])
        link(lab, vl, ["10.6.2.1/24"], rw, [f"{RAW}/24"])
        v = Vleaf(lab, vl, VLEAF)
        gobgp = gobgpd(lab, gb, "gb", GOBGP, 50051)
        wait_for(lambda: v.state("10.6.1.2") == "Established", 30, "GoBGP session")
        gobgp("global", "rib", "add", "203.0.113.0/24", "-a", "ipv4", as_json=False)
        wait_for(lambda: "203.0.113.0/24" in v.routes(), 10, "GoBGP's route")
        raw = Raw(rw)
        check("raw speaker session and a valid route", check_raw_up, v, raw)
        check("bad ORIGIN: treat-as-withdraw, session stays", check_bad_origin, v, raw)
        check("NLRI without NEXT_HOP: treat-as-withdraw, session stays",
              check_missing_next_hop, v, raw)
        check("broken marker: NOTIFICATION 1/1 and close", check_bad_marker, v, raw)
        check("GoBGP session untouched throughout", check_gobgp_untouched, v)
        check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
        if check.failed:
            print(v.log()[-8000:], flush=True)
    finally:
        if raw:
            raw.close()


def main(argv):
    return run_lab(argv, __doc__, "bad", 180, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
