#!/usr/bin/python3
"""vleaf-bgpd (AS 65001) and GoBGP (AS 65002): eBGP IPv4 unicast both ways.

  ns vl (vleaf-bgpd 10.1.0.1) ── veth ── ns gb (gobgpd 10.1.0.2)

GoBGP injects routes with MED and communities; vleaf must learn them with GoBGP's AS
prepended, its address as next hop and the MED kept. vleaf announces its pod block and
a VIP with a community; GoBGP (`gobgp -j global rib`) must see AS_PATH 65001, next hop
10.1.0.1, no LOCAL_PREF (eBGP) and the community. A withdraw on GoBGP reaches vleaf.

usage: test_bgp_gobgp.py VLEAF_BGPD
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import run_lab, Vleaf, expect, gobgpd, link, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.1.0.1
  peers:
    - {address: 10.1.0.2, remote_as: 65002, timers: {hold: 9, connect_retry: 2}}
  announce:
    - 10.244.0.0/26
    - {prefix: 10.96.0.10/32, communities: ["65001:100"], local_pref: 200}
"""

GOBGP = """\
[global.config]
  as = 65002
  router-id = "10.1.0.2"
  local-address-list = ["10.1.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.1.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 2
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"""


def attrs_by_type(path):
    return {a["type"]: a for a in path["attrs"]}


def check_session(v, gobgp):
    wait_for(lambda: v.state("10.1.0.2") == "Established", 30, "vleaf session to GoBGP")
    wait_for(lambda: gobgp("neighbor")[0]["state"]["session_state"] == 6, 30,
             "GoBGP session Established (6)")


def check_vleaf_learns(v, gobgp):
    gobgp("global", "rib", "add", "192.0.2.0/24", "-a", "ipv4", "origin", "igp", "med", "10",
          "community", "65002:7", as_json=False)
    gobgp("global", "rib", "add", "198.51.100.0/24", "-a", "ipv4", "origin", "incomplete",
          as_json=False)
    want = {"192.0.2.0/24", "198.51.100.0/24", "10.244.0.0/26", "10.96.0.10/32"}
    routes = wait_for(lambda: (r := v.routes()) and set(r) == want and r, 20,
                      f"vleaf routes {sorted(want)}")
    p = routes["192.0.2.0/24"]
    expect(p["next_hop"] == "10.1.0.2", f"next hop {p['next_hop']}")
    expect(p["as_path"] == "65002", f"as_path {p['as_path']!r}")
    expect(p["origin"] == "igp", f"origin {p['origin']}")
    expect(p.get("med") == 10, f"med {p.get('med')}")
    expect(p["communities"] == ["65002:7"], f"communities {p['communities']}")
    expect(p["local_pref"] == 100, f"local_pref {p['local_pref']} (default for eBGP routes)")
    expect(routes["198.51.100.0/24"]["origin"] == "incomplete", f"{routes['198.51.100.0/24']}")


def check_gobgp_learns(gobgp):
    def rib():
        r = gobgp("global", "rib", "-a", "ipv4")
        return "10.96.0.10/32" in r and "10.244.0.0/26" in r and r
    rib = wait_for(rib, 20, "GoBGP to learn vleaf's routes")
    for prefix, comms in (("10.96.0.10/32", [65001 << 16 | 100]), ("10.244.0.0/26", None)):
        paths = rib[prefix]
        expect(len(paths) == 1, f"{prefix}: {len(paths)} paths")
        a = attrs_by_type(paths[0])
        expect(a[1]["value"] == 0, f"{prefix}: origin {a[1]}")
        asns = [asn for seg in a[2]["as_paths"] for asn in seg["asns"]]
        expect(asns == [65001], f"{prefix}: AS path {asns}")
        expect(a[3]["nexthop"] == "10.1.0.1", f"{prefix}: next hop {a[3]}")
        expect(5 not in a, f"{prefix}: LOCAL_PREF sent over eBGP: {a.get(5)}")
        if comms:
            expect(a[8]["communities"] == comms, f"{prefix}: communities {a[8]}")
        else:
            expect(8 not in a, f"{prefix}: unexpected communities {a.get(8)}")


def check_withdraw(v, gobgp):
    gobgp("global", "rib", "del", "192.0.2.0/24", "-a", "ipv4", as_json=False)
    wait_for(lambda: "192.0.2.0/24" not in v.routes(), 10, "vleaf to drop 192.0.2.0/24")
    expect("198.51.100.0/24" in v.routes(), "198.51.100.0/24 went too")


def scenario(lab, check):
    vl, gb = lab.netns("vl"), lab.netns("gb")
    link(lab, vl, ["10.1.0.1/24"], gb, ["10.1.0.2/24"])
    v = Vleaf(lab, vl, VLEAF)
    gobgp = gobgpd(lab, gb, "gb", GOBGP, 50051)
    check("session Established", check_session, v, gobgp)
    check("vleaf learns GoBGP's routes (eBGP attributes)", check_vleaf_learns, v, gobgp)
    check("GoBGP learns vleaf's routes (AS 65001, next hop self)", check_gobgp_learns,
          gobgp)
    check("GoBGP withdraw reaches vleaf", check_withdraw, v, gobgp)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-8000:], flush=True)
        print(gobgp.proc.log()[-4000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "gobgp", 180, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
