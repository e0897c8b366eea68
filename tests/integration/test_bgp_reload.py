#!/usr/bin/python3
"""Route refresh and configuration reload against FRR 8.4 bgpd.

vleaf-bgpd (AS 65001) has three addresses on one veth to FRR (AS 65003), so that one
FRR process serves three sessions:
  A  10.6.0.1 <-> 10.6.0.2   kept across the reload; its import policy changes
  R  10.6.0.7 <-> 10.6.0.8   removed by the reload
  N  10.6.0.5 <-> 10.6.0.6   added by the reload

1. Route refresh on demand: `clear bgp soft in` makes vleaf send ROUTE-REFRESH; FRR
   answers between BoRR and EoRR (RFC 7313). FRR's `clear bgp soft in` makes vleaf send
   its table again between BoRR and EoRR, and FRR keeps every route.
2. SIGHUP with a new file: A's import policy no longer filters 198.51.100.0/24, which
   vleaf then learns through a route refresh while A stays Established (same
   connection, established once on both sides); R is told Cease/Peer De-configured;
   N comes up; a new announcement reaches FRR.

usage: test_bgp_reload.py VLEAF_BGPD
"""

import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, expect, frr_bgpd, link, wait_for  # noqa: E402

PEER = "{{address: {addr}, remote_as: 65003, update_source: {src}, " \
       "timers: {{hold: 9, connect_retry: 1}}{extra}}}"


def vleaf_yaml(after):
    peers = [PEER.format(addr="10.6.0.2", src="10.6.0.1",
                         extra="" if after else ", import: {prefix_list: [203.0.113.0/24]}")]
    peers.append(PEER.format(addr="10.6.0.6", src="10.6.0.5", extra="") if after else
                 PEER.format(addr="10.6.0.8", src="10.6.0.7", extra=""))
    announce = ["10.244.0.0/26"] + (["10.244.1.0/26"] if after else [])
    return ("bgp:\n  asn: 65001\n  router_id: 10.6.0.1\n  peers:\n" +
            "".join(f"    - {p}\n" for p in peers) +
            f"  announce: [{', '.join(announce)}]\n")


FRR = """\
frr defaults datacenter
hostname fr
log stdout informational
router bgp 65003
 bgp router-id 10.6.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
""" + "".join(f""" neighbor {v} remote-as 65001
 neighbor {v} update-source {f}
 neighbor {v} timers 3 9
 neighbor {v} timers connect 1
""" for v, f in (("10.6.0.1", "10.6.0.2"), ("10.6.0.5", "10.6.0.6"), ("10.6.0.7", "10.6.0.8"))) + """\
 address-family ipv4 unicast
  network 203.0.113.0/24
  network 198.51.100.0/24
 exit-address-family
"""


def frr_neighbor(vtysh, addr):
    return vtysh(f"show bgp neighbors {addr} json")[addr]


def paths_from(v, prefix, addr):
    for r in v.query("show bgp routes ipv4", prefix=prefix):
        return [p for p in r["paths"] if p["from"] == addr]
    return []


def counters(v, addr):
    return v.query("show bgp neighbors", address=addr)[0]["counters"]


def check_up(v, vtysh):
    for addr in ("10.6.0.2", "10.6.0.8"):
        wait_for(lambda: v.state(addr) == "Established", 30, f"vleaf session to {addr}")
    wait_for(lambda: paths_from(v, "203.0.113.0/24", "10.6.0.2"), 20, "203.0.113.0/24 from A")
    wait_for(lambda: paths_from(v, "198.51.100.0/24", "10.6.0.8"), 20, "198.51.100.0/24 from R")
    expect(not paths_from(v, "198.51.100.0/24", "10.6.0.2"),
           "198.51.100.0/24 from A passed the import policy")
    n = v.query("show bgp neighbors", address="10.6.0.2")[0]
    expect(n["enhanced_route_refresh"], f"FRR did not negotiate enhanced route refresh: {n}")


def check_refresh_in(v, vtysh):
    before = frr_neighbor(vtysh, "10.6.0.1")["messageStats"]["routeRefreshRecv"]
    v.query("clear bgp soft in", address="10.6.0.2")
    wait_for(lambda: counters(v, "10.6.0.2")["eorr_in"] == 1, 15, "EoRR from FRR")
    c = counters(v, "10.6.0.2")
    expect(c["route_refresh_out"] == 1 and c["borr_in"] == 1, f"counters {c}")
    got = frr_neighbor(vtysh, "10.6.0.1")["messageStats"]["routeRefreshRecv"]
    expect(got == before + 1, f"FRR received {got - before} ROUTE-REFRESH")
    p = paths_from(v, "203.0.113.0/24", "10.6.0.2")
    expect(p and not p[0]["stale"], f"203.0.113.0/24 after the refresh: {p}")


def frr_route(vtysh, prefix):
    paths = vtysh(f"show bgp ipv4 unicast {prefix} json").get("paths", [])
    return [p for p in paths if any(h["ip"] == "10.6.0.1" for h in p["nexthops"])]


def check_refresh_out(v, vtysh):
    vtysh("clear bgp 10.6.0.1 soft in", as_json=False)
    wait_for(lambda: counters(v, "10.6.0.2")["eorr_out"] == 1, 15, "vleaf to send EoRR")
    c = counters(v, "10.6.0.2")
    expect(c["route_refresh_in"] == 1 and c["borr_out"] == 1, f"counters {c}")
    wait_for(lambda: frr_route(vtysh, "10.244.0.0/26"), 10, "FRR to keep 10.244.0.0/26")


def check_reload(lab, v, vtysh):
    up_before = v.peer("10.6.0.2")["uptime_s"]
    port = v.query("show bgp neighbors", address="10.6.0.2")[0]["local_port"]
    lab.write("vleaf.yaml", vleaf_yaml(after=True))
    v.proc.signal(signal.SIGHUP)
    wait_for(lambda: paths_from(v, "198.51.100.0/24", "10.6.0.2"), 20,
             "198.51.100.0/24 from A once its import policy is gone")
    wait_for(lambda: v.state("10.6.0.6") == "Established", 30, "the added neighbor")
    wait_for(lambda: v.peer("10.6.0.8") is None, 10, "the removed neighbor to go")
    wait_for(lambda: frr_route(vtysh, "10.244.1.0/26"), 15, "FRR to learn the new announcement")
    n = v.query("show bgp neighbors", address="10.6.0.2")[0]
    expect(n["state"] == "Established" and n["counters"]["established"] == 1,
           f"A was reset: {n['counters']}")
    expect(n["local_port"] == port, "A runs on another connection")
    expect(n["uptime_s"] >= up_before, f"A's uptime went from {up_before} to {n['uptime_s']}")
    expect(n["counters"]["route_refresh_out"] == 2, "no ROUTE-REFRESH for the policy change")
    f = frr_neighbor(vtysh, "10.6.0.1")
    expect(f["bgpState"] == "Established" and f["connectionsEstablished"] == 1,
           f"FRR's session to A: {f['bgpState']}, {f['connectionsEstablished']} establishments")
    r = frr_neighbor(vtysh, "10.6.0.7")
    expect(r["bgpState"] != "Established", "R still Established on FRR")
    reason = r.get("lastNotificationReason", "") + r.get("lastResetDueTo", "")
    # FRR names Cease subcode 3 "Peer Unconfigured" or "Peer De-configured".
    expect("Unconfigured" in reason or "De-configured" in reason,
           f"R's reset reason on FRR: {reason!r}")


def scenario(lab, check):
    vl, fr = lab.netns("vl"), lab.netns("fr")
    link(lab, vl, ["10.6.0.1/24", "10.6.0.5/24", "10.6.0.7/24"],
         fr, ["10.6.0.2/24", "10.6.0.6/24", "10.6.0.8/24"])
    v = Vleaf(lab, vl, vleaf_yaml(after=False))
    vtysh = frr_bgpd(lab, fr, "fr", FRR)
    check("sessions up, import policy applied", check_up, v, vtysh)
    check("vleaf asks FRR for its routes (enhanced route refresh)", check_refresh_in, v, vtysh)
    check("vleaf answers FRR's route refresh", check_refresh_out, v, vtysh)
    check("SIGHUP reload: refresh for a policy change, peer added and removed, A untouched",
          check_reload, lab, v, vtysh)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)
        print(vtysh.proc.log()[-4000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "reload", 150, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
