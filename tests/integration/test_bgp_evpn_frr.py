#!/usr/bin/python3
"""EVPN with FRR 8.4 (zebra + bgpd) as a kernel VTEP: a Linux VXLAN device for VNI 10 in
a bridge with a host behind it (advertise-all-vni), and an L3VNI 100 in FRR's default
VRF (advertise ipv4 unicast).

  ns h1 (192.168.10.11) ── br10 + vxlan10 ─ ns fr (FRR, VTEP 10.8.0.2, AS 65003)
                                               │ veth
                                             ns vl (vleaf-bgpd, VTEP 10.8.0.1, AS 65001)

vleaf imports FRR's type 3 (flood list), type 2 (h1's MAC) and type 5 (10.30.0.0/24 in
VRF blue); FRR imports vleaf's type 3 (its kernel floods VNI 10 to 10.8.0.1), type 2
(a MAC/IP given to vleaf through its API: FRR's kernel fdb points it at 10.8.0.1) and
type 5 (10.40.0.0/24: a kernel route through the L3VNI). Route targets use FRR's
automatic values (65003:VNI) on the vleaf side.

usage: test_bgp_evpn_frr.py VLEAF_BGPD
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import FRR_EVPN_ZEBRA, run_lab, Vleaf, expect, frr_bgpd, frr_evpn_bgpd, kernel_vtep, link, wait_for  # noqa: E402

VLEAF = """\
bgp:
  asn: 65001
  router_id: 10.8.0.1
  peers:
    - {address: 10.8.0.2, remote_as: 65003, families: [l2vpn-evpn], timers: {connect_retry: 1}}
  evpn:
    vrfs:
      - {name: blue, l3vni: 100, router_mac: "02:00:00:00:01:00", route_targets: ["65003:100"],
         prefixes: [10.40.0.0/24]}
    vnis:
      - {vni: 10, route_targets: ["65003:10"], vrf: blue}
"""

H1_MAC, VLEAF_MAC = "02:00:00:00:0a:11", "02:00:00:aa:00:01"
FRR_RMAC = "02:00:00:00:02:00"


def build_vtep(lab, fr, h1):
    lab.veth(h1, "eth0", fr, "h1")
    h1.ip("link", "set", "eth0", "address", H1_MAC)
    h1.add_addr("eth0", "192.168.10.11/24")
    kernel_vtep(fr, "10.8.0.2", FRR_RMAC)
    fr.ip("link", "set", "h1", "master", "br10")


def check_session(v):
    wait_for(lambda: v.state("10.8.0.2") == "Established", 30, "the EVPN session")


def check_vleaf_imports(v, h1):
    imet = wait_for(lambda: [x for x in v.query("show evpn imet") if x["vni"] == 10 and x["remote"]],
                    20, "FRR's type 3 for VNI 10")
    expect([r["vtep"] for r in imet[0]["remote"]] == ["10.8.0.2"], f"flood list {imet}")
    # h1 speaks: br10 learns its MAC, zebra tells bgpd, FRR announces type 2.
    h1.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "192.168.10.1"], check=False)
    mac = wait_for(lambda: [m for m in v.query("show evpn mac", vni=10) if m["mac"] == H1_MAC],
                   20, "h1's MAC from FRR")[0]
    expect(mac["type"] == "remote" and mac["vtep"] == "10.8.0.2", f"h1's MAC entry {mac}")
    routes = wait_for(lambda: v.query("show bgp routes ipv4", vrf="blue"), 20,
                      "FRR's type 5 in VRF blue")
    by = {r["prefix"]: r["paths"][0] for r in routes}
    p = by.get("10.30.0.0/24")
    expect(p, f"VRF blue {sorted(by)}")
    expect(p["next_hop"] == "10.8.0.2" and p["vni"] == 100, f"10.30.0.0/24 path {p}")
    expect(p.get("router_mac") == FRR_RMAC, f"router MAC {p.get('router_mac')}")


def check_frr_imports(v, fr, vtysh):
    v.query("evpn mac add", vni=10, mac=VLEAF_MAC, ip="192.168.10.99")
    vni = wait_for(lambda: (x := vtysh("show evpn vni 10 json")) and x.get("numRemoteVteps")
                   and x, 20, "FRR to import vleaf's type 3")
    # FRR 8.4 lists the remote VTEPs under numRemoteVteps.
    expect("10.8.0.1" in str(vni["numRemoteVteps"]), f"FRR's VNI 10: {vni}")
    fdb = wait_for(lambda: (out := fr.run(["bridge", "fdb", "show", "dev", "vxlan10"]).stdout)
                   and VLEAF_MAC in out and "00:00:00:00:00:00 dst 10.8.0.1" in out and out,
                   20, "the kernel fdb entries for vleaf's VTEP")
    lines = [x for x in fdb.splitlines() if x.startswith(VLEAF_MAC)]
    expect(any("dst 10.8.0.1" in x for x in lines), f"vleaf's MAC in the fdb: {lines}")
    macs = vtysh("show evpn mac vni 10 json")
    m = macs.get("macs", macs).get(VLEAF_MAC, {})
    expect(m.get("type") == "remote" and m.get("remoteVtep") == "10.8.0.1", f"FRR's entry {m or macs}")
    route = wait_for(lambda: (out := fr.run(["ip", "route", "show", "10.40.0.0/24"]).stdout)
                     and out, 20, "the kernel route for vleaf's type 5")
    expect("10.8.0.1" in route and "br100" in route, f"kernel route {route!r}")
    evpn = vtysh("show bgp l2vpn evpn json")
    text = str(evpn)
    for want in ("10.40.0.0", VLEAF_MAC, "[3]:[0]:[32]:[10.8.0.1]"):
        expect(want in text, f"{want} not in FRR's EVPN table")


def scenario(lab, check):
    vl, fr, h1 = lab.netns("vl"), lab.netns("fr"), lab.netns("h1")
    link(lab, vl, ["10.8.0.1/24"], fr, ["10.8.0.2/24"])
    build_vtep(lab, fr, h1)
    v = Vleaf(lab, vl, VLEAF)
    vtysh = frr_bgpd(lab, fr, "fr", frr_evpn_bgpd("10.30.0.0/24"), zebra_conf=FRR_EVPN_ZEBRA)
    check("EVPN session Established", check_session, v)
    check("vleaf imports FRR's types 3, 2 and 5", check_vleaf_imports, v, h1)
    check("FRR and its kernel import vleaf's types 3, 2 and 5", check_frr_imports, v, fr, vtysh)
    check("vleaf-bgpd still running", lambda: expect(v.alive(), "vleaf-bgpd died"))
    if check.failed:
        print(v.log()[-6000:], flush=True)
        print(vtysh.proc.log()[-4000:], flush=True)
        print(vtysh("show bgp l2vpn evpn", as_json=False)[-4000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "evfrr", 150, scenario)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
