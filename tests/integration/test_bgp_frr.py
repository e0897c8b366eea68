#!/usr/bin/python3
"""vleaf-bgpd (AS 65001) and FRR 8.4 bgpd (AS 65003): eBGP IPv4 and IPv6 unicast both
ways, over an IPv4 and an IPv6 session.

  ns vl (vleaf-bgpd 10.3.0.1, fd00:3::1) ── veth ── ns fr (bgpd -Z 10.3.0.2, fd00:3::2)

FRR originates 203.0.113.0/24 (MED 20, community 65003:9) and 2001:db8:3::/48; vleaf
announces its pod blocks and VIPs. Each side's view is read from its own JSON.

usage: test_bgp_frr.py VLEAF_BGPD
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, expect, frr_bgpd, link, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.3.0.1
  peers:
    - {address: 10.3.0.2, remote_as: 65003, timers: {hold: 9, connect_retry: 2}}
    - {address: "fd00:3::2", remote_as: 65003, timers: {hold: 9, connect_retry: 2}}
  announce:
    - 10.244.0.0/26
    - {prefix: 10.96.0.10/32, communities: ["65001:100"]}
    - "fd00:244::/122"
    - {prefix: "fd00:96::10/128", communities: ["65001:100"]}
"""

FRR = """\
frr defaults datacenter
hostname fr
log stdout informational
route-map SET permit 10
 set metric 20
 set community 65003:9
router bgp 65003
 bgp router-id 10.3.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.3.0.1 remote-as 65001
 neighbor 10.3.0.1 timers 3 9
 neighbor 10.3.0.1 timers connect 2
 neighbor fd00:3::1 remote-as 65001
 neighbor fd00:3::1 timers 3 9
 neighbor fd00:3::1 timers connect 2
 address-family ipv4 unicast
  network 203.0.113.0/24 route-map SET
  no neighbor fd00:3::1 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:3::/48
  neighbor fd00:3::1 activate
 exit-address-family
"""


def check_sessions(v, vtysh):
    for addr in ("10.3.0.2", "fd00:3::2"):
        wait_for(lambda: v.state(addr) == "Established", 30, f"vleaf session to {addr}")
    for addr in ("10.3.0.1", "fd00:3::1"):
        wait_for(lambda: vtysh(f"show bgp neighbors {addr} json")[addr]["bgpState"] ==
                 "Established", 30, f"FRR session to {addr}")


def check_vleaf_learns(v):
    r4 = wait_for(lambda: (r := v.routes("ipv4")) and "203.0.113.0/24" in r and r, 20,
                  "vleaf to learn 203.0.113.0/24")
    expect(set(r4) == {"203.0.113.0/24", "10.244.0.0/26", "10.96.0.10/32"}, f"ipv4: {sorted(r4)}")
    p = r4["203.0.113.0/24"]
    expect(p["next_hop"] == "10.3.0.2", f"next hop {p['next_hop']}")
    expect(p["as_path"] == "65003", f"as_path {p['as_path']!r}")
    expect(p["origin"] == "igp", f"origin {p['origin']}")
    expect(p.get("med") == 20, f"med {p.get('med')}")
    expect(p["communities"] == ["65003:9"], f"communities {p['communities']}")
    r6 = wait_for(lambda: (r := v.routes("ipv6")) and "2001:db8:3::/48" in r and r, 20,
                  "vleaf to learn 2001:db8:3::/48")
    expect(set(r6) == {"2001:db8:3::/48", "fd00:244::/122", "fd00:96::10/128"}, f"ipv6: {sorted(r6)}")
    p = r6["2001:db8:3::/48"]
    expect(p["next_hop"] == "fd00:3::2", f"next hop {p['next_hop']}")
    # FRR adds its link-local address only when the interface had one at session start.
    expect(p.get("link_local", "fe80:").startswith("fe80:"), f"link-local {p.get('link_local')}")
    expect(p["as_path"] == "65003", f"as_path {p['as_path']!r}")


def frr_path(vtysh, afi, prefix):
    out = vtysh(f"show bgp {afi} unicast {prefix} json")
    paths = out.get("paths", [])
    return paths[0] if paths else None


def check_frr_learns(vtysh):
    for afi, prefix, nh, comm in (("ipv4", "10.96.0.10/32", "10.3.0.1", "65001:100"),
                                  ("ipv4", "10.244.0.0/26", "10.3.0.1", None),
                                  ("ipv6", "fd00:96::10/128", "fd00:3::1", "65001:100"),
                                  ("ipv6", "fd00:244::/122", "fd00:3::1", None)):
        p = wait_for(lambda: frr_path(vtysh, afi, prefix), 20, f"FRR to learn {prefix}")
        expect(p["aspath"]["string"] == "65001", f"{prefix}: as path {p['aspath']}")
        expect(p["origin"] == "IGP", f"{prefix}: origin {p['origin']}")
        expect(p["valid"] and p.get("bestpath", {}).get("overall"), f"{prefix}: not best: {p}")
        hops = [h["ip"] for h in p["nexthops"]]
        expect(nh in hops, f"{prefix}: next hops {hops}, want {nh}")
        got = p.get("community", {}).get("string")
        expect(got == comm, f"{prefix}: community {got}, want {comm}")
    routes4 = vtysh("show bgp ipv4 unicast json")["routes"]
    expect(set(routes4) == {"10.96.0.10/32", "10.244.0.0/26", "203.0.113.0/24"},
           f"FRR ipv4 table {sorted(routes4)}")


def scenario(lab, check):
    vl, fr = lab.netns("vl"), lab.netns("fr")
    link(lab, vl, ["10.3.0.1/24", "fd00:3::1/64"], fr, ["10.3.0.2/24", "fd00:3::2/64"])
    v = Vleaf(lab, vl, VLEAF)
    vtysh = frr_bgpd(lab, fr, "fr", FRR)
    check("sessions Established (IPv4 and IPv6)", check_sessions, v, vtysh)
    check("vleaf learns FRR's routes", check_vleaf_learns, v)
    check("FRR learns vleaf's routes", check_frr_learns, vtysh)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)
        print(vtysh.proc.log()[-4000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "frr", 180, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
