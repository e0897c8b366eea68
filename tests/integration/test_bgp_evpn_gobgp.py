#!/usr/bin/python3
"""L2VPN EVPN with GoBGP: routes of types 2, 3 and 5 injected by one GoBGP (AS 65002)
are learned by vleaf-bgpd (AS 65001) with their RDs, route targets, encapsulation,
router MAC and PMSI tunnel, and passed on to a second GoBGP (AS 65003) with the next hop
(the VTEP) unchanged and vleaf's AS prepended.

  ns gb1 (10.9.0.2) ─┐
  ns vl  (10.9.0.1) ─┼─ bridge in ns sw
  ns gb2 (10.9.0.3) ─┘

usage: test_bgp_evpn_gobgp.py VLEAF_BGPD
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, expect, gobgpd, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.9.0.1
  peers:
    - {address: 10.9.0.2, remote_as: 65002, families: [l2vpn-evpn], timers: {connect_retry: 1}}
    - {address: 10.9.0.3, remote_as: 65003, families: [l2vpn-evpn], timers: {connect_retry: 1}}
"""

GOBGP = """\
[global.config]
  as = {asn}
  router-id = "{addr}"
  local-address-list = ["{addr}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.9.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
"""

MAC, RMAC = "aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"


def check_sessions(v):
    for addr in ("10.9.0.2", "10.9.0.3"):
        wait_for(lambda: v.state(addr) == "Established", 30, f"session to {addr}")
    n = v.query("show bgp neighbors", address="10.9.0.2")[0]
    expect(n["families"] == ["l2vpn-evpn"], f"families {n['families']}")


def inject(gb1):
    for args in (
            f"macadv {MAC} 10.0.0.10 etag 0 label 10 rd 65002:10 rt 65002:10 encap vxlan "
            "nexthop 10.9.0.2",
            "multicast 10.9.0.2 etag 0 rd 65002:10 rt 65002:10 encap vxlan pmsi ingress-repl 10 "
            "10.9.0.2 nexthop 10.9.0.2",
            f"prefix 10.100.0.0/24 gw 0.0.0.0 etag 0 label 100 rd 65002:100 rt 65002:100 "
            f"encap vxlan router-mac {RMAC} nexthop 10.9.0.2"):
        gb1("global", "rib", "-a", "evpn", "add", *args.split(), as_json=False)


def evpn_routes(v):
    return {r["prefix"]: r["paths"][0] for r in v.query("show bgp routes evpn")}


def check_vleaf_learns(v, gb1):
    inject(gb1)
    routes = wait_for(lambda: (r := evpn_routes(v)) and len(r) == 3 and r, 15,
                      "vleaf to learn 3 EVPN routes")
    by_type = {}
    for key, p in routes.items():
        expect(p["next_hop"] == "10.9.0.2", f"{key}: next hop {p['next_hop']}")
        expect(p["as_path"] == "65002", f"{key}: as_path {p['as_path']}")
        expect("encap vxlan" in p.get("ext_communities", []), f"{key}: no VXLAN encap: {p}")
        for t in ("[2]", "[3]", "[5]"):
            if t in key:
                by_type[t] = (key, p)
    expect(set(by_type) == {"[2]", "[3]", "[5]"}, f"route types {sorted(routes)}")
    key, p = by_type["[2]"]
    expect(MAC in key and "10.0.0.10" in key and "65002:10" in key, f"type 2 key {key}")
    expect("rt 65002:10" in p["ext_communities"], f"type 2 RT {p['ext_communities']}")
    key, p = by_type["[5]"]
    expect("10.100.0.0" in key and "65002:100" in key, f"type 5 key {key}")
    expect(any(RMAC in c for c in p["ext_communities"]), f"type 5 router MAC {p['ext_communities']}")
    key, p = by_type["[3]"]
    expect("10.9.0.2" in key, f"type 3 key {key}")


def check_gobgp_learns(gb2):
    def rib():
        r = gb2("global", "rib", "-a", "evpn")
        return len(r) == 3 and r
    rib = wait_for(rib, 15, "the second GoBGP to learn 3 EVPN routes")
    for key, paths in rib.items():
        a = {x["type"]: x for x in paths[0]["attrs"]}
        asns = [asn for seg in a[2]["as_paths"] for asn in seg["asns"]]
        expect(asns == [65001, 65002], f"{key}: AS path {asns}")
        expect(a[14]["nexthop"] == "10.9.0.2", f"{key}: next hop {a[14]['nexthop']} (VTEP kept)")
        expect(16 in a, f"{key}: extended communities lost")
    multicast = [p for k, p in rib.items() if "Multicast" in k or "[type:multicast]" in k]
    pmsi = [x for p in rib.values() for x in p[0]["attrs"] if x["type"] == 22]
    expect(pmsi, f"PMSI tunnel attribute lost: {multicast or rib}")


def scenario(lab, check):
    sw = lab.netns("sw")
    sw.ip("link", "add", "br0", "type", "bridge")
    sw.ip("link", "set", "br0", "up")
    nodes = {}
    for short, n in (("vl", 1), ("gb1", 2), ("gb2", 3)):
        ns = lab.netns(short)
        lab.veth(ns, "eth0", sw, f"p{n}")
        sw.ip("link", "set", f"p{n}", "master", "br0")
        ns.add_addr("eth0", f"10.9.0.{n}/24")
        nodes[short] = ns
    v = Vleaf(lab, nodes["vl"], VLEAF)
    gb1 = gobgpd(lab, nodes["gb1"], "gb1", GOBGP.format(asn=65002, addr="10.9.0.2"), 50051)
    gb2 = gobgpd(lab, nodes["gb2"], "gb2", GOBGP.format(asn=65003, addr="10.9.0.3"), 50052)
    check("EVPN sessions Established", check_sessions, v)
    check("vleaf learns EVPN types 2, 3 and 5 with their attributes", check_vleaf_learns,
          v, gb1)
    check("the other GoBGP learns them through vleaf, VTEP next hop kept",
          check_gobgp_learns, gb2)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "evpn", 180, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
