#!/usr/bin/python3
"""vleafd as an EVPN leaf: its embedded speaker peers with FRR 8.4 (zebra + bgpd) backed
by a kernel VTEP, and every overlay entry on vleafd's side comes from EVPN; the
configuration has no flood list, remote MAC or remote prefix.

  h1 (192.168.10.2) ── vl-h1 ┐                                  ┌ br10: vxlan10 + fr-h3 ── h3 (192.168.10.3)
                             [ns vl: vleafd, VTEP 10.8.0.1] ── vl-fab ── eth0 [ns fr: FRR, VTEP 10.8.0.2]
                                                                └ br100: vxlan100 (L3VNI) ── routed ── h4 (192.168.30.2)

Bridged: h1 reaches h3 over L2VNI 10 through the flood list (FRR's type 3) and h3's MAC
(FRR's type 2); FRR's kernel reaches h1 through vleafd's type 3 and the type 2 that
vleafd originates for h1's MAC and IP once its dataplane learns them. Routed: h1 reaches
h4 through vleafd's anycast gateway and FRR's type 5 for 192.168.30.0/24 in L3VNI 100
(symmetric IRB); FRR routes back through vleafd's type-5 prefix. Shutting the peer down
on FRR's side takes the remote MACs and tunnel routes out of vleafd's tables.

usage: test_evpn_leaf.py VLEAFD VLEAFCTL
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import FRR_EVPN_ZEBRA, expect, frr_bgpd, frr_evpn_bgpd, kernel_vtep, run_lab  # noqa: E402
from netns import run, vleafd_memory, wait_for  # noqa: E402

RMAC = "02:00:00:00:64:01"      # vleafd's router MAC in L3VNI 100
FRR_RMAC = "02:00:00:00:64:02"  # FRR's (br100)
H3_MAC = "02:00:00:00:10:03"
GW10 = "00:00:5e:00:01:01"

CONFIG = """
log_level: info
mempool: {{mbufs: 8191, cache: 256}}
ports:
  - {{name: p0, device: "net_af_packet0,iface=vl-fab,qpairs=1,blocksz=4096,framesz=2048,framecnt=512", rss: false, rx_desc: 512, tx_desc: 512}}
  - {{name: p1, device: "net_af_packet1,iface=vl-h1,qpairs=1,blocksz=4096,framesz=2048,framecnt=512", rss: false, rx_desc: 512, tx_desc: 512}}
interfaces:
  - {{name: fabric, port: p0, mtu: 1600, ipv4: [10.8.0.1/24], tap: vl-tap-fab}}
workers:
  - lcore: 1
    rx: [{{port: p0}}, {{port: p1}}]
vrfs:
  - {{name: default, max_routes_v4: 1024, max_routes_v6: 1024}}
  - {{name: tenant, id: 1, l3vni: 100, router_mac: "{rmac}", max_routes_v4: 1024, max_routes_v6: 1024}}
vxlan: {{source: 10.8.0.1}}
bridge_domains:
  - {{vni: 10, vrf: tenant, gateway_mac: "{gw10}", gateway_ipv4: [192.168.10.1/24], access: [{{port: p1}}]}}
bgp:
  asn: 65001
  router_id: 10.8.0.1
  listen_address: 0.0.0.0
  peers:
    - {{address: 10.8.0.2, remote_as: 65003, families: [l2vpn-evpn], timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
  evpn:
    # FRR's automatic route targets are its AS:VNI; the rest comes from the sections above.
    vrfs: [{{name: tenant, l3vni: 100, router_mac: "{rmac}", route_targets: ["65003:100"], prefixes: [192.168.10.0/24]}}]
    vnis: [{{vni: 10, route_targets: ["65003:10"]}}]
api: {{socket: {sock}}}
"""

def build(lab):
    vl, fr = lab.netns("vl"), lab.netns("fr")
    h1, h3, h4 = lab.netns("h1"), lab.netns("h3"), lab.netns("h4")
    lab.veth(vl, "vl-fab", fr, "eth0")
    lab.veth(vl, "vl-h1", h1, "eth0")
    lab.veth(fr, "fr-h3", h3, "eth0")
    lab.veth(fr, "fr-h4", h4, "eth0")
    for port in ("vl-fab", "vl-h1"):
        vl.kernel_ignores(port)
    vl.ip("link", "set", "vl-fab", "mtu", "1600")
    h1.no_offloads("eth0")
    h1.add_addr("eth0", "192.168.10.2/24")
    h1.add_route("default", via="192.168.10.1")
    fr.no_offloads("eth0")
    fr.ip("link", "set", "eth0", "mtu", "1600")
    fr.add_addr("eth0", "10.8.0.2/24")
    fr.sysctl("net.ipv4.ip_forward", 1)
    for key in ("all", "default"):
        fr.sysctl(f"net.ipv4.conf.{key}.rp_filter", 0)
    kernel_vtep(fr, "10.8.0.2", FRR_RMAC)
    fr.ip("link", "set", "fr-h3", "master", "br10")
    fr.ip("link", "set", "fr-h3", "up")
    h3.no_offloads("eth0")
    h3.ip("link", "set", "eth0", "address", H3_MAC)
    h3.add_addr("eth0", "192.168.10.3/24")
    fr.add_addr("fr-h4", "192.168.30.1/24")
    h4.no_offloads("eth0")
    h4.add_addr("eth0", "192.168.30.2/24")
    h4.add_route("default", via="192.168.30.1")
    return vl, fr, h1, h3, h4


class Vleafd:
    def __init__(self, lab, vl, vleafd, vleafctl):
        self.ctl = vleafctl
        self.socket = lab.path("vleafd.sock")
        config = lab.write("vleafd.yaml", CONFIG.format(rmac=RMAC, gw10=GW10, sock=self.socket))
        mem = vleafd_memory()
        self.proc = vl.popen([vleafd, "-l", "0,1", *mem, "--no-pci", "--file-prefix",
                              lab.dpdk_prefix("vleafd"), "--log-level=*:warning", "--",
                              "--config", config], name="vleafd")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"vleafd exited with {self.proc.poll()}:\n{self.proc.log()}")
            return os.path.exists(self.socket) and self.show("vxlan", "vtep")
        wait_for(ready, 30, "vleafd to answer on its API socket")

    def show(self, *what):
        out = run([self.ctl, "-s", self.socket, "-j", "show", *what], timeout=10).stdout
        return json.loads(out)

    def macs(self):
        return {m["mac"]: m for m in self.show("vxlan", "mac", "10")}

    def evpn_routes(self):
        return {r["prefix"]: r for r in self.show("routes", "vrf=tenant") if r["type"] == "evpn"}


def check_session(d):
    def up():
        peers = d.show("bgp", "summary")["peers"]
        return peers and peers[0]["state"] == "Established"
    wait_for(up, 20, "the EVPN session between vleafd and FRR")


def check_ping(ns, dst, count=3):
    ns.ping(dst, count=1, deadline=8)  # the first may wait for ARP and for type-2 routes
    sent, received = ns.ping(dst, count=count)
    # ping -w sends until `count` replies arrive, so a slow reply can leave one more
    # request in flight when it stops: one unanswered request is not a loss.
    expect(received == count and sent - received <= 1,
           f"{ns.name} -> {dst}: {received}/{sent} replies, {count} wanted")


def check_remote_state(d):
    m = wait_for(lambda: d.macs().get(H3_MAC), 10, "h3's MAC from FRR's type 2")
    expect(m["type"] == "remote" and m["vtep"] == "10.8.0.2" and m["static"],
           f"h3's entry {m}")
    r = wait_for(lambda: d.evpn_routes().get("192.168.30.0/24"), 10, "FRR's type 5 in VRF tenant")
    hop = r["nexthops"][0]
    expect(hop["via"] == "10.8.0.2" and hop["interface"] == "vxlan100" and hop["mac"] == FRR_RMAC,
           f"192.168.30.0/24 {r}")


def check_frr_has_h1(vtysh, h1_mac):
    def entry():
        macs = vtysh("show evpn mac vni 10 json")
        return macs.get("macs", macs).get(h1_mac)
    m = wait_for(entry, 10, "h1's MAC in FRR (vleafd's type 2)")
    expect(m.get("type") == "remote" and m.get("remoteVtep") == "10.8.0.1", f"FRR's entry {m}")
    text = str(vtysh("show bgp l2vpn evpn route type macip json"))
    expect(h1_mac in text and "192.168.10.2" in text, "h1's MAC/IP route not in FRR's table")


def check_withdrawn(d, vtysh):
    vtysh("configure terminal", "router bgp 65003", "neighbor 10.8.0.1 shutdown", as_json=False)
    wait_for(lambda: H3_MAC not in d.macs() and not d.evpn_routes(), 10,
             "the remote MAC and tunnel routes to leave vleafd's tables")


def scenario(lab, check):
    vl, fr, h1, h3, h4 = build(lab)
    d = Vleafd(lab, vl, os.environ["VLEAFD"], os.environ["VLEAFCTL"])
    vtysh = frr_bgpd(lab, fr, "fr", frr_evpn_bgpd("192.168.30.0/24"), zebra_conf=FRR_EVPN_ZEBRA)
    check("EVPN session Established", check_session, d)
    check("bridged h1 -> h3 over L2VNI 10 from EVPN state", check_ping, h1, "192.168.10.3")
    check("bridged h3 -> h1", check_ping, h3, "192.168.10.2")
    check("vleafd has h3's MAC and FRR's prefix from EVPN", check_remote_state, d)
    check("FRR has vleafd's type 2 for h1", check_frr_has_h1, vtysh, h1.mac("eth0"))
    check("routed h1 -> h4 over L3VNI 100 (type 5)", check_ping, h1, "192.168.30.2")
    check("peer shut down: remote state withdrawn", check_withdrawn, d, vtysh)
    if check.failed:
        print(f"vleafd log:\n{d.proc.log()[-5000:]}", flush=True)
        print(f"macs: {d.show('vxlan', 'mac')}", flush=True)
        print(f"routes: {d.show('routes', 'vrf=tenant')}", flush=True)
        print(vtysh("show bgp l2vpn evpn", as_json=False)[-3000:], flush=True)
        print(fr.run(["bridge", "fdb", "show"]).stdout[-2000:], flush=True)


def main(argv):
    return run_lab(argv, __doc__, "evl", 90, scenario, binaries=("VLEAFD", "VLEAFCTL"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
