#!/usr/bin/python3
"""vleafd as a VTEP against the Linux kernel's VXLAN: bridged and routed, IPv4 and IPv6.

  h1 (BD 10, untagged) ── vl-h1 ┐                                      ┌ br10: vxlan10 + kv-h3 ── h3 (192.168.10.3)
                                ├ [ns vl: vleafd] ── vl-fab ── eth0 [ns kv: kernel VTEP 10.99.0.2]
  h2 (BD 20, untagged) ─ vl-h2 ─┘   VTEP 10.99.0.1 underlay              └ br100: vxlan100 (L3VNI) ── routed ── h4 (192.168.30.2)

Bridged: h1 and h3 share 192.168.10.0/24 and fd00:10::/64 over L2VNI 10 (vleafd floods
ARP/ND by head-end replication, learns MACs; h3's IPv4 binding is configured, so h1's
ARP for it is answered by vleafd: suppression). Routed: h1 and h2 reach h4's subnets
through vleafd's anycast gateways (192.168.10.1, 192.168.20.1, same MAC on every leaf)
into L3VNI 100, symmetric IRB: the kernel routes back with vleafd's router MAC as inner
destination. The underlay MTU is 1500 on both VTEPs: hosts behind the kernel VTEP have
the overlay MTU (1450), those behind vleafd 1500, so their path MTU discovery rests on
vleafd's ICMP fragmentation needed / packet too big (bridged and routed; TCP h1 -> h4 needs
it). vleafd answers pings to its anycast gateway addresses and h1's neighbor solicitations
for h3 (ND suppression). Checks use kernel ping and TCP between the hosts and vleafctl -j.

usage: test_vxlan.py VLEAFD VLEAFCTL
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, run_lab  # noqa: E402
from netns import run, tcp_transfer, vleafd_memory, wait_for  # noqa: E402

RMAC = "02:00:00:00:64:01"         # vleafd's router MAC in L3VNI 100
KERNEL_RMAC = "02:00:00:00:64:02"  # the kernel VTEP's (br100)
H3_MAC = "02:00:00:00:10:03"
GW10, GW20 = "00:00:5e:00:01:01", "00:00:5e:00:01:02"

CONFIG = """
log_level: info
burst: 32
mempool: {{mbufs: 16383, cache: 256, data_room: 2176}}
ports:
  - {{name: p0, device: "net_af_packet0,iface=vl-fab,qpairs=1,blocksz=4096,framesz=2048,framecnt=512", rss: false, rx_desc: 512, tx_desc: 512}}
  - {{name: p1, device: "net_af_packet1,iface=vl-h1,qpairs=1,blocksz=4096,framesz=2048,framecnt=512", rss: false, rx_desc: 512, tx_desc: 512}}
  - {{name: p2, device: "net_af_packet2,iface=vl-h2,qpairs=1,blocksz=4096,framesz=2048,framecnt=512", rss: false, rx_desc: 512, tx_desc: 512}}
interfaces:
  - {{name: fabric, port: p0, mtu: 1500, ipv4: [10.99.0.1/24], tap: vl-tap-fab}}
workers:
  - lcore: 1
    rx: [{{port: p0}}, {{port: p1}}, {{port: p2}}]
vrfs:
  - {{name: default, max_routes_v4: 1024, max_routes_v6: 1024}}
  - {{name: tenant, id: 1, l3vni: 100, router_mac: "{rmac}", max_routes_v4: 1024, max_routes_v6: 1024}}
vxlan:
  source: 10.99.0.1
  mac_aging_s: 300
routes:
  - {{prefix: 192.168.30.0/24, vrf: tenant, vtep: 10.99.0.2, router_mac: "{krmac}"}}
  - {{prefix: "fd00:30::/64", vrf: tenant, vtep: 10.99.0.2, router_mac: "{krmac}"}}
bridge_domains:
  - vni: 10
    vrf: tenant
    gateway_mac: "{gw10}"
    gateway_ipv4: [192.168.10.1/24]
    gateway_ipv6: ["fd00:10::1/64"]
    access: [{{port: p1}}]
    flood: [10.99.0.2]
    macs: [{{mac: "{h3}", vtep: 10.99.0.2, ips: [192.168.10.3, "fd00:10::3"]}}]
  - vni: 20
    vrf: tenant
    gateway_mac: "{gw20}"
    gateway_ipv4: [192.168.20.1/24]
    gateway_ipv6: ["fd00:20::1/64"]
    access: [{{port: p2}}]
api: {{socket: {sock}}}
"""


class Topology:
    def __init__(self, lab):
        self.vl, self.kv = lab.netns("vl"), lab.netns("kv")
        self.h1, self.h2, self.h3, self.h4 = (lab.netns(h) for h in ("h1", "h2", "h3", "h4"))
        lab.veth(self.vl, "vl-fab", self.kv, "eth0")
        lab.veth(self.vl, "vl-h1", self.h1, "eth0")
        lab.veth(self.vl, "vl-h2", self.h2, "eth0")
        lab.veth(self.kv, "kv-h3", self.h3, "eth0")
        lab.veth(self.kv, "kv-h4", self.h4, "eth0")
        for port in ("vl-fab", "vl-h1", "vl-h2"):
            self.vl.kernel_ignores(port)
        # Hosts behind vleafd: h1 untagged in VNI 10, h2 on VLAN 20 (VNI 20).
        self.h1.no_offloads("eth0")
        self.h1.add_addr("eth0", "192.168.10.2/24")
        self.h1.add_addr("eth0", "fd00:10::2/64")
        self.h1.add_route("default", via="192.168.10.1")
        self.h1.add_route("default", via="fd00:10::1")
        # This kernel has neither 802.1Q devices nor VLAN-filtering bridges, so h2 is
        # untagged too; tagged access ports are covered by the golden-packet tests.
        self.h2.no_offloads("eth0")
        self.h2.add_addr("eth0", "192.168.20.2/24")
        self.h2.add_addr("eth0", "fd00:20::2/64")
        self.h2.add_route("default", via="192.168.20.1")
        self.h2.add_route("default", via="fd00:20::1")
        self.kernel_vtep()
        self.mac = {"h1": self.h1.mac("eth0"), "h3": H3_MAC}

    def kernel_vtep(self):
        kv = self.kv
        kv.no_offloads("eth0")
        kv.add_addr("eth0", "10.99.0.2/24")
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            kv.sysctl(key, 1)
        for key in ("all", "default"):
            kv.sysctl(f"net.ipv4.conf.{key}.rp_filter", 0)
        # L2VNI 10: vxlan10 and h3 in br10; BUM frames go to vleafd (head-end replication).
        kv.ip("link", "add", "br10", "type", "bridge")
        kv.ip("link", "add", "vxlan10", "mtu", "1450", "type", "vxlan", "id", "10", "local",
              "10.99.0.2", "dstport", "4789")
        for dev in ("vxlan10", "kv-h3"):
            kv.ip("link", "set", dev, "master", "br10")
        for dev in ("br10", "vxlan10", "kv-h3"):
            kv.ip("link", "set", dev, "up")
        kv.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan10", "dst", "10.99.0.1"])
        self.h3.no_offloads("eth0")
        self.h3.ip("link", "set", "eth0", "address", H3_MAC)
        self.h3.ip("link", "set", "eth0", "mtu", "1450")
        kv.ip("link", "set", "kv-h3", "mtu", "1450")
        self.h3.add_addr("eth0", "192.168.10.3/24")
        self.h3.add_addr("eth0", "fd00:10::3/64")
        # L3VNI 100, symmetric IRB as FRR programs it without kernel VRFs: vxlan100 in br100
        # carrying the router MAC; routes to vleafd's subnets through its router MAC.
        kv.ip("link", "add", "br100", "type", "bridge")
        kv.ip("link", "set", "br100", "address", KERNEL_RMAC)
        kv.ip("link", "add", "vxlan100", "mtu", "1450", "type", "vxlan", "id", "100", "local",
              "10.99.0.2", "dstport", "4789", "nolearning")
        kv.ip("link", "set", "vxlan100", "master", "br100")
        for dev in ("br100", "vxlan100", "kv-h4"):
            kv.ip("link", "set", dev, "up")
        kv.run(["bridge", "fdb", "add", RMAC, "dev", "vxlan100", "master", "static"])
        kv.run(["bridge", "fdb", "add", RMAC, "dev", "vxlan100", "dst", "10.99.0.1", "self", "permanent"])
        kv.ip("neigh", "add", "169.254.0.1", "lladdr", RMAC, "dev", "br100", "nud", "permanent")
        kv.ip("-6", "neigh", "add", "fe80::64:1", "lladdr", RMAC, "dev", "br100", "nud", "permanent")
        for net in ("192.168.10.0/24", "192.168.20.0/24"):
            kv.ip("route", "add", net, "via", "169.254.0.1", "dev", "br100", "onlink")
        for net in ("fd00:10::/64", "fd00:20::/64"):
            kv.ip("-6", "route", "add", net, "via", "fe80::64:1", "dev", "br100")
        kv.add_addr("kv-h4", "192.168.30.1/24")
        kv.add_addr("kv-h4", "fd00:30::1/64")
        self.h4.no_offloads("eth0")
        self.h4.add_addr("eth0", "192.168.30.2/24")
        self.h4.add_addr("eth0", "fd00:30::2/64")
        self.h4.add_route("default", via="192.168.30.1")
        self.h4.add_route("default", via="fd00:30::1")


class Vleafd:
    def __init__(self, lab, topo, vleafd, vleafctl):
        self.topo, self.ctl = topo, vleafctl
        self.socket = lab.path("vleafd.sock")
        config = lab.write("vleafd.yaml", CONFIG.format(rmac=RMAC, krmac=KERNEL_RMAC, gw10=GW10,
                                                        gw20=GW20, h3=H3_MAC, sock=self.socket))
        prefix = lab.dpdk_prefix("vleafd")
        mem = vleafd_memory()
        self.argv = [vleafd, "-l", "0,1", *mem, "--no-pci", "--file-prefix", prefix,
                     "--log-level=*:warning", "--", "--config", config]
        self.proc = topo.vl.popen(self.argv, name="vleafd")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"vleafd exited with {self.proc.poll()}:\n{self.proc.log()}")
            return os.path.exists(self.socket) and self.show("vxlan", "vtep")
        wait_for(ready, 30, "vleafd to answer on its API socket")

    def show(self, *what):
        out = run([self.ctl, "-s", self.socket, "-j", "show", *what], timeout=10).stdout
        return json.loads(out)

    def vxlan_stats(self):
        return self.show("stats")["vxlan"]


def check_ping(ns, dst, count=4):
    ns.ping(dst, count=1, deadline=8)  # the first may wait for ARP/ND on both sides
    sent, received = ns.ping(dst, count=count)
    expect(received == sent == count, f"{ns.name} -> {dst}: {received}/{sent} replies")


def check_tcp(src, dst, addr, nbytes, port):
    (sent, sent_hash), (got, got_hash) = tcp_transfer(src, dst, addr, port, nbytes)
    expect(sent == nbytes, f"sent {sent} of {nbytes} bytes")
    expect((got, got_hash) == (sent, sent_hash),
           f"received {got} bytes sha256 {got_hash}, sent {sent} bytes sha256 {sent_hash}")


def check_suppressed(d):
    s = d.vxlan_stats()
    expect(s["arp_suppressed"] >= 1, f"no ARP request answered from a binding: {s}")
    expect(s["nd_suppressed"] >= 1, f"no neighbor solicitation answered from a binding: {s}")
    expect(s["bum_flooded"] >= 1, f"no ARP/ND flooded into a bridge domain: {s}")


def check_too_big(ns, dst, size, message, fits):
    """A DF ping of `size` bytes gets `message` back from the gateway; then `fits` passes."""
    v6 = ":" in dst
    argv = ["ping", "-n", "-M", "do", "-c", "1", "-W", "3", "-s", str(size), dst]
    out = ns.run(argv, check=False, timeout=15).stdout
    gateway = "fd00:10::1" if v6 else "192.168.10.1"
    expect(f"From {gateway}" in out and message in out, f"{' '.join(argv)}:\n{out}")
    again = ns.run(argv, check=False, timeout=15)
    expect("message too long" in again.stdout + again.stderr,
           f"second ping not refused locally (path MTU not lowered):\n{again.stdout}{again.stderr}")
    ok = ns.run(["ping", "-n", "-q", "-M", "do", "-c", "3", "-i", "0.2", "-s", str(fits), dst],
                check=False, timeout=15).stdout
    expect(" 3 received" in ok, f"{fits}-byte DF pings:\n{ok}")


def check_gateway_ping(d, ns, addrs):
    before = d.vxlan_stats()["gateway_echo_replies"]
    for a in addrs:
        check_ping(ns, a, count=2)
    got = d.vxlan_stats()["gateway_echo_replies"] - before
    expect(got >= 3 * len(addrs), f"{got} echo replies counted for {addrs}")


def check_macs(d, topo):
    macs = {(m["vni"], m["mac"]): m for m in d.show("vxlan", "mac")}
    h1 = macs.get((10, topo.mac["h1"]))
    expect(h1 and h1["type"] == "local" and h1["port"] == "p1" and not h1["static"],
           f"h1 not learned on p1: {h1}; table {list(macs)}")
    h3 = macs.get((10, H3_MAC))
    expect(h3 and h3["type"] == "remote" and h3["vtep"] == "10.99.0.2" and h3["static"],
           f"h3 not a static remote MAC behind 10.99.0.2: {h3}")
    only10 = d.show("vxlan", "mac", "10")
    expect(only10 and all(m["vni"] == 10 for m in only10), f"show vxlan mac 10: {only10}")


def check_vteps(d):
    v = d.show("vxlan", "vtep")
    expect(v["local"]["source"] == "10.99.0.1", f"local VTEP {v['local']}")
    remote = {r["address"]: r for r in v["remote"]}
    r = remote.get("10.99.0.2")
    expect(r and r["underlay"] and r["underlay"][0]["mac"], f"10.99.0.2 unresolved: {v['remote']}")
    vnis = {x["vni"]: x for x in d.show("vxlan", "vni")}
    expect(set(vnis) == {10, 20, 100}, f"VNIs {sorted(vnis)}")
    expect(vnis[100]["type"] == "l3" and vnis[10]["type"] == "l2", f"VNI types {vnis}")
    expect(vnis[20]["access"] == ["p2"], f"VNI 20 access {vnis[20]['access']}")


def check_counters(d):
    stats = d.show("stats")
    w = stats["workers"][0]
    expect(w["decapsulated"] > 0 and w["encapsulated"] > 0, f"worker {w}")
    drops = {k: v for k, v in w["drops"].items() if v and k.startswith(("vxlan_", "l2_"))}
    print(f"     overlay drops: {drops}, too_big punts: {w['punts']['too_big']}", flush=True)
    vx = stats["vxlan"]
    expect(vx["frag_needed_sent"] >= 2 and vx["packet_too_big_sent"] >= 1,
           f"ICMP errors for packets too big for the tunnel: {vx}")
    expect(w["punts"]["too_big"] == vx["frag_needed_sent"] + vx["packet_too_big_sent"] +
           vx["too_big_unanswered"], f"too_big punts {w['punts']} vs {vx}")


def scenario(lab, check):
    vleafd, vleafctl = os.environ["VLEAFD"], os.environ["VLEAFCTL"]
    topo = Topology(lab)
    d = Vleafd(lab, topo, vleafd, vleafctl)
    t = topo
    check("bridged IPv4 h1 -> h3 (L2VNI 10, ARP suppressed)", check_ping, t.h1, "192.168.10.3")
    check("bridged IPv6 h1 -> h3 (L2VNI 10, ND suppressed)", check_ping, t.h1, "fd00:10::3")
    check("bridged IPv4 h3 -> h1", check_ping, t.h3, "192.168.10.2")
    check("bridged TCP 2 MB h1 -> h3 IPv4", check_tcp, t.h1, t.h3, "192.168.10.3", 2 << 20, 5101)
    check("bridged TCP 1 MB h3 -> h1 IPv6", check_tcp, t.h3, t.h1, "fd00:10::2", 1 << 20, 5102)
    check("routed IPv4 h1 -> h4 (gateway, L3VNI 100)", check_ping, t.h1, "192.168.30.2")
    check("routed IPv6 h1 -> h4 (gateway, L3VNI 100)", check_ping, t.h1, "fd00:30::2")
    check("routed IPv4 h4 -> h1", check_ping, t.h4, "192.168.10.2")
    check("routed IPv4 h2 (VNI 20) -> h4", check_ping, t.h2, "192.168.30.2")
    check("routed IPv6 h2 (VNI 20) -> h4", check_ping, t.h2, "fd00:30::2")
    check("routed between VNIs h1 -> h2", check_ping, t.h1, "192.168.20.2")
    check("anycast gateways answer ping", check_gateway_ping, d, t.h1, ["192.168.10.1", "fd00:10::1"])
    check("anycast gateway of VNI 20 answers ping", check_gateway_ping, d, t.h2, ["192.168.20.1"])
    check("bridged PMTU h1 -> h3: frag needed (mtu 1450) from the gateway", check_too_big,
          t.h1, "192.168.10.3", 1472, "Frag needed and DF set (mtu = 1450)", 1422)
    check("routed PMTU h1 -> h4 IPv6: packet too big (mtu 1450)", check_too_big,
          t.h1, "fd00:30::2", 1452, "Packet too big: mtu=1450", 1402)
    check("routed TCP 2 MB h1 -> h4 IPv4 (path MTU from vleafd)", check_tcp, t.h1, t.h4,
          "192.168.30.2", 2 << 20, 5103)
    check("routed TCP 1 MB h4 -> h1 IPv6", check_tcp, t.h4, t.h1, "fd00:10::2", 1 << 20, 5104)
    check("ARP suppression and BUM flooding counted", check_suppressed, d)
    check("vleafctl show vxlan mac [VNI]", check_macs, d, topo)
    check("vleafctl show vxlan vtep|vni", check_vteps, d)
    check("decap/encap counters, ICMP errors counted", check_counters, d)
    if check.failed:
        stats = d.show("stats")
        print(f"vleafd log:\n{d.proc.log()[-6000:]}", flush=True)
        print(f"drops: { {k: v for k, v in stats['drops'].items() if v} }", flush=True)
        print(f"punts: {stats['punts']}\nvxlan: {stats['vxlan']}", flush=True)
        print(f"macs: {d.show('vxlan', 'mac')}", flush=True)
        print(f"neighbors: {d.show('neighbors')}", flush=True)


def main(argv):
    return run_lab(argv, __doc__, "vx", 240, scenario, binaries=("VLEAFD", "VLEAFCTL"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
