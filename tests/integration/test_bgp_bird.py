#!/usr/bin/python3
"""vleaf-bgpd in a Calico iBGP full mesh with two BIRD 2 nodes (AS 64512).

  ns vl (vleaf-bgpd 10.0.0.1, fd00::1) ─┐
  ns b1 (BIRD 10.0.0.11, fd00::11)    ──┼── bridge in ns sw
  ns b2 (BIRD 10.0.0.12, fd00::12)    ──┘

Each BIRD node announces its pod blocks like Calico (a /26 and a /122, blackhole
static routes, next hop self, add-path on, graceful restart) over IPv4 and IPv6
sessions; vleaf announces its own pod block and a service VIP with a community and
local-pref 200. Checked both ways: vleaf learns exactly the BIRD blocks with the right
next hop/origin/local-pref, each BIRD learns vleaf's routes with their attributes, and
vleaf (not a route reflector) does not pass one BIRD's routes to the other.

usage: test_bgp_bird.py VLEAF_BGPD
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, bird, expect, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 64512
  router_id: 10.0.0.1
  listen_port: 179
  peers:
    - {address: 10.0.0.11, remote_as: 64512, timers: {hold: 9, connect_retry: 2}}
    - {address: 10.0.0.12, remote_as: 64512, timers: {hold: 9, connect_retry: 2}}
    - {address: "fd00::11", remote_as: 64512, timers: {hold: 9, connect_retry: 2}}
    - {address: "fd00::12", remote_as: 64512, timers: {hold: 9, connect_retry: 2}}
  announce:
    - 10.244.0.0/26
    - {prefix: 10.96.0.10/32, communities: ["64512:100"], local_pref: 200}
    - "fd00:244::/122"
    - {prefix: "fd00:96::10/128", communities: ["64512:100"], local_pref: 200}
"""

BIRD = """\
router id 10.0.0.{n};
protocol device {{ scan time 2; }}
protocol direct {{ ipv4; ipv6; interface "*"; }}
protocol static {{ ipv4; route 10.244.{n}.0/26 blackhole; }}
protocol static {{ ipv6; route fd00:244:0:{n}::/122 blackhole; }}
filter calico_export {{ if source = RTS_STATIC then accept; reject; }}
template bgp mesh4 {{
  local 10.0.0.{n} as 64512;
  graceful restart;
  connect retry time 2;
  hold time 9;
  ipv4 {{ import all; export filter calico_export; next hop self; gateway recursive; add paths on; }};
}}
template bgp mesh6 {{
  local fd00::{n} as 64512;
  graceful restart;
  connect retry time 2;
  hold time 9;
  ipv6 {{ import all; export filter calico_export; next hop self; gateway recursive; add paths on; }};
}}
protocol bgp vleaf4 from mesh4 {{ neighbor 10.0.0.1 as 64512; }}
protocol bgp vleaf6 from mesh6 {{ neighbor fd00::1 as 64512; }}
protocol bgp node4 from mesh4 {{ neighbor 10.0.0.{other} as 64512; }}
protocol bgp node6 from mesh6 {{ neighbor fd00::{other} as 64512; }}
"""


def established(birdc, proto):
    return "Established" in birdc(f"show protocols {proto}")


def check_sessions(v, birdcs):
    for addr in ("10.0.0.11", "10.0.0.12", "fd00::11", "fd00::12"):
        wait_for(lambda: v.state(addr) == "Established", 30, f"vleaf session to {addr}")
    for n, birdc in birdcs.items():
        for proto in ("vleaf4", "vleaf6", "node4", "node6"):
            wait_for(lambda: established(birdc, proto), 30, f"b{n} protocol {proto}")


def check_vleaf_learns(v):
    want4 = {"10.244.11.0/26": "10.0.0.11", "10.244.12.0/26": "10.0.0.12"}
    want6 = {"fd00:244:0:11::/122": "fd00::11", "fd00:244:0:12::/122": "fd00::12"}
    for fam, want, own in (("ipv4", want4, {"10.244.0.0/26", "10.96.0.10/32"}),
                           ("ipv6", want6, {"fd00:244::/122", "fd00:96::10/128"})):
        routes = wait_for(lambda: (r := v.routes(fam)) and set(r) == set(want) | own and r,
                          20, f"vleaf {fam} routes {sorted(set(want) | own)}")
        for prefix, nh in want.items():
            p = routes[prefix]
            expect(p["next_hop"] == nh, f"{prefix}: next hop {p['next_hop']}, want {nh}")
            expect(p["from"] == nh, f"{prefix}: learned from {p['from']}, want {nh}")
            expect(p["origin"] == "igp", f"{prefix}: origin {p['origin']}")
            expect(p["local_pref"] == 100, f"{prefix}: local_pref {p['local_pref']}")
            expect(p["as_path"] == "", f"{prefix}: as_path {p['as_path']!r}")
        for prefix in own:
            expect(routes[prefix]["from"] == "local", f"{prefix}: {routes[prefix]}")


def bird_route(birdc, prefix):
    return birdc(f"show route for {prefix} all")


def check_bird_learns(birdcs):
    for n, birdc in birdcs.items():
        for prefix, nh, lp, community in (
                ("10.96.0.10/32", "10.0.0.1", 200, "(64512,100)"),
                ("10.244.0.0/26", "10.0.0.1", 100, None),
                ("fd00:96::10/128", "fd00::1", 200, "(64512,100)"),
                ("fd00:244::/122", "fd00::1", 100, None)):
            out = wait_for(lambda: (o := bird_route(birdc, prefix)) and "BGP.origin" in o and o,
                           20, f"b{n} to learn {prefix}")
            expect(f"via {nh}" in out, f"b{n} {prefix}: no 'via {nh}' in\n{out}")
            expect("BGP.origin: IGP" in out, f"b{n} {prefix}: origin in\n{out}")
            expect(f"BGP.local_pref: {lp}" in out, f"b{n} {prefix}: local_pref in\n{out}")
            if community:
                expect(f"BGP.community: {community}" in out, f"b{n} {prefix}: community in\n{out}")
            expect("BGP.originator_id" not in out, f"b{n} {prefix}: reflected?\n{out}")


def check_no_reflection(birdcs):
    # b1's block must reach b2 over their direct session only: vleaf is no reflector.
    for n, other in ((11, 12), (12, 11)):
        out = bird_route(birdcs[n], f"10.244.{other}.0/26")
        expect("[node4 " in out and "vleaf4" not in out,
               f"b{n}: 10.244.{other}.0/26 should come from node4 only:\n{out}")


def scenario(lab, check):
    sw = lab.netns("sw")
    sw.ip("link", "add", "br0", "type", "bridge")
    sw.ip("link", "set", "br0", "up")
    nodes = {}
    for short, n in (("vl", 1), ("b1", 11), ("b2", 12)):
        ns = lab.netns(short)
        lab.veth(ns, "eth0", sw, f"p{n}")
        sw.ip("link", "set", f"p{n}", "master", "br0")
        ns.add_addr("eth0", f"10.0.0.{n}/24")
        ns.add_addr("eth0", f"fd00::{n}/64")
        nodes[short] = ns
    v = Vleaf(lab, nodes["vl"], VLEAF)
    birdcs = {}
    for short, n, other in (("b1", 11, 12), ("b2", 12, 11)):
        birdcs[n] = bird(lab, nodes[short], short, BIRD.format(n=n, other=other))
    check("sessions Established (vleaf and BIRD, IPv4 and IPv6)", check_sessions, v, birdcs)
    check("vleaf learns exactly the BIRD pod blocks", check_vleaf_learns, v)
    check("BIRD learns vleaf's routes with their attributes", check_bird_learns, birdcs)
    check("vleaf does not reflect iBGP routes", check_no_reflection, birdcs)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)
        for n, birdc in birdcs.items():
            print(birdc("show protocols all"), flush=True)


def main(argv):
    return run_lab(argv, __doc__, "bird", 240, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
