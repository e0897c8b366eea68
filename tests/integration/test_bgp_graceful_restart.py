#!/usr/bin/python3
"""vleaf-bgpd restarting with graceful restart (RFC 4724), FRR 8.4 bgpd as the helper.

  ns vl (vleaf-bgpd 10.7.0.1, AS 65001) ── veth ── ns fr (bgpd -Z 10.7.0.2, AS 65003)

vleaf announces 10.50.1.0/24 and 10.50.2.0/24 and is killed (no NOTIFICATION): FRR keeps
both as stale. vleaf comes back with -R (Restart State bit, forwarding preserved) and a
configuration without 10.50.2.0/24: it defers route selection until FRR's End-of-RIB,
then sends its table and End-of-RIB, upon which FRR refreshes 10.50.1.0/24 and sweeps
10.50.2.0/24.

usage: test_bgp_graceful_restart.py VLEAF_BGPD
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, expect, frr_bgpd, link, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.7.0.1
  select_defer_time: 60
  peers:
    - {{address: 10.7.0.2, remote_as: 65003, restart_time: 60, timers: {{hold: 9, connect_retry: 1}}}}
  announce: [{announce}]
"""

FRR = """\
frr defaults datacenter
hostname fr
log stdout informational
router bgp 65003
 bgp router-id 10.7.0.2
 bgp graceful-restart
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.7.0.1 remote-as 65001
 neighbor 10.7.0.1 timers 3 9
 neighbor 10.7.0.1 timers connect 1
 address-family ipv4 unicast
  network 203.0.113.0/24
 exit-address-family
"""


def frr_path(vtysh, prefix):
    paths = vtysh(f"show bgp ipv4 unicast {prefix} json").get("paths", [])
    return paths[0] if paths else None


def check_before(v, vtysh):
    wait_for(lambda: v.state("10.7.0.2") == "Established", 30, "the session")
    for p in ("10.50.1.0/24", "10.50.2.0/24"):
        wait_for(lambda: frr_path(vtysh, p), 15, f"FRR to learn {p}")
    n = v.query("show bgp neighbors", address="10.7.0.2")[0]
    expect(n["graceful_restart"], "FRR did not negotiate graceful restart")


def check_stale_while_down(v, vtysh):
    v.kill()
    for p in ("10.50.1.0/24", "10.50.2.0/24"):
        wait_for(lambda: (x := frr_path(vtysh, p)) and x.get("stale"), 15,
                 f"FRR to keep {p} as stale")


def check_restart(lab, v, vtysh):
    lab.write("vleaf.yaml", VLEAF.format(announce="10.50.1.0/24"))
    v.start("-R")
    gr = v.query("show bgp summary")["graceful_restart"]
    expect(gr["restarting"] and gr["forwarding_preserved"], f"graceful_restart {gr}")
    wait_for(lambda: v.state("10.7.0.2") == "Established", 30, "the session again")
    f = vtysh("show bgp neighbors 10.7.0.1 json")["10.7.0.1"]
    wait_for(lambda: not v.query("show bgp summary")["graceful_restart"]["deferring"], 20,
             "the deferral to end")
    gr = v.query("show bgp summary")["graceful_restart"]
    expect(gr["deferral_ended"] == "End-of-RIB from every graceful-restart peer",
           f"deferral ended by: {gr['deferral_ended']!r}")
    n = v.query("show bgp neighbors", address="10.7.0.2")[0]
    expect(n["eor_received"] == ["ipv4-unicast"], f"End-of-RIB from FRR: {n['eor_received']}")
    wait_for(lambda: not frr_path(vtysh, "10.50.2.0/24"), 15,
             "FRR to sweep 10.50.2.0/24 after vleaf's End-of-RIB")
    p = wait_for(lambda: (x := frr_path(vtysh, "10.50.1.0/24")) and not x.get("stale") and x,
                 15, "10.50.1.0/24 fresh on FRR")
    expect(p["aspath"]["string"] == "65001", f"as path {p['aspath']}")
    gri = f.get("gracefulRestartInfo", {})
    expect(gri.get("rBit") is True, f"FRR did not see the Restart State bit: {gri}")
    expect(gri.get("ipv4Unicast", {}).get("fBit") is True, f"nor the Forwarding State bit: {gri}")
    routes = wait_for(lambda: (r := v.routes("ipv4")) and "203.0.113.0/24" in r and r, 15,
                      "vleaf to learn 203.0.113.0/24 again")
    expect(set(routes) == {"203.0.113.0/24", "10.50.1.0/24"}, f"vleaf table {sorted(routes)}")


def scenario(lab, check):
    vl, fr = lab.netns("vl"), lab.netns("fr")
    link(lab, vl, ["10.7.0.1/24"], fr, ["10.7.0.2/24"])
    v = Vleaf(lab, vl, VLEAF.format(announce="10.50.1.0/24, 10.50.2.0/24"))
    vtysh = frr_bgpd(lab, fr, "fr", FRR)
    check("session up with graceful restart", check_before, v, vtysh)
    check("FRR keeps vleaf's routes as stale while it is down", check_stale_while_down, v, vtysh)
    check("restarting speaker: deferral until FRR's End-of-RIB, then table and End-of-RIB",
          check_restart, lab, v, vtysh)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)
        print(vtysh.proc.log()[-4000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "gr", 150, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
