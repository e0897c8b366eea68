#!/usr/bin/python3
"""The real vleafd forwarding between two hosts on different subnets.

  h1 (10.0.1.2, fd00:1::2) ── veth ── [ns vl: vleafd, af_packet ports p0/p1] ── veth ── h2 (10.0.2.2, fd00:2::2,
                                                                                      lo 10.100.0.1, fd00:100::1)
vleafd routes between the two connected subnets and to a static route behind h2,
resolves its neighbors itself and hands traffic for its own addresses to the kernel
of ns vl through a tap per interface. The checks use kernel ping and TCP from the
hosts and read vleafd's state through `vleafctl -j`.

usage: test_forwarding.py VLEAFD VLEAFCTL
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, run_lab  # noqa: E402
from netns import hugepage_files, run, tcp_transfer, vleafd_memory, wait_for  # noqa: E402

# The demo configuration (also vleafd's embedded default), with the API socket moved
# into the test's directory so that the test never touches a running demo.
DEMO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "conf", "demo.yaml")
DEMO_SOCKET = "socket: /run/vleaf/demo.sock"


class Topology:
    def __init__(self, lab):
        self.lab = lab
        self.vl = lab.netns("vl")
        self.h1 = lab.netns("h1")
        self.h2 = lab.netns("h2")
        lab.veth(self.vl, "vl-h1", self.h1, "eth0")
        lab.veth(self.vl, "vl-h2", self.h2, "eth0")
        for port in ("vl-h1", "vl-h2"):
            self.vl.kernel_ignores(port)
        for host, n in ((self.h1, 1), (self.h2, 2)):
            host.no_offloads("eth0")
            host.add_addr("eth0", f"10.0.{n}.2/24")
            host.add_addr("eth0", f"fd00:{n}::2/64")
            host.add_route("default", via=f"10.0.{n}.1")
            host.add_route("default", via=f"fd00:{n}::1")
        self.h2.add_addr("lo", "10.100.0.1/32")
        self.h2.add_addr("lo", "fd00:100::1/128")
        self.mac = {"h1": self.h1.mac("eth0"), "h2": self.h2.mac("eth0"),
                    "vl-h1": self.vl.mac("vl-h1"), "vl-h2": self.vl.mac("vl-h2")}


class Vleafd:
    def __init__(self, lab, topo, vleafd, vleafctl):
        self.topo = topo
        self.ctl_binary = vleafctl
        self.socket = lab.path("vleafd.sock")
        self.config = lab.path("vleafd.yaml")
        with open(DEMO_CONFIG) as f:
            text = f.read()
        if text.count(DEMO_SOCKET) != 1:
            raise RuntimeError(f"{DEMO_CONFIG} no longer has exactly one '{DEMO_SOCKET}'")
        with open(self.config, "w") as f:
            f.write(text.replace(DEMO_SOCKET, f"socket: {self.socket}"))
        self.prefix = lab.dpdk_prefix("vleafd")
        # Hugepages when the machine has them: the set-up CI runs (tools/setup.sh reserves
        # them), and the one where hugepage files must not outlive vleafd.
        mem = vleafd_memory()
        self.hugepages = "--no-huge" not in mem
        self.argv = [vleafd, "-l", "0,1", *mem, "--no-pci", "--file-prefix", self.prefix,
                     "--log-level=*:warning", "--", "--config", self.config]
        self.proc = None

    def start(self):
        print(f"vleafd: {' '.join(self.argv)} ({'hugepages' if self.hugepages else 'no hugepages'})",
              flush=True)
        self.proc = self.topo.vl.popen(self.argv, name="vleafd")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"vleafd exited with {self.proc.poll()}:\n{self.proc.log()}")
            return (os.path.exists(self.socket) and self.topo.vl.link_exists("vl-tap-h1")
                    and self.topo.vl.link_exists("vl-tap-h2") and self.show("interfaces"))
        try:
            wait_for(ready, 30, "vleafd to answer on its API socket with both taps up")
        except AssertionError:
            if self.proc.poll() is None:
                print(self.proc.log(), flush=True)
            raise

    def show(self, what):
        out = run([self.ctl_binary, "-s", self.socket, "-j", "show", what], timeout=10).stdout
        return json.loads(out)

    def counters(self):
        stats = self.show("stats")
        tx = sum(w["tx_packets"] for w in stats["workers"])
        return stats, tx


def check_ping(ns, dst, count=5):
    ns.ping(dst, count=1, deadline=5)  # the first may wait for neighbor resolution
    sent, received = ns.ping(dst, count=count)
    # ping -w sends until `count` replies arrive, so a slow reply can leave one more
    # request in flight when it stops: one unanswered request is not a loss.
    expect(received == count and sent - received <= 1,
           f"{ns.name} -> {dst}: {received}/{sent} replies, {count} wanted")


def check_doorbell(d, topo):
    # Idle, the control loop sleeps up to its 50 ms tick; a punt (here an echo request to
    # our own address, 0.5 s apart) must wake it through the workers' doorbell.
    before = d.show("stats")["exception"]["doorbell_wakes"]
    out = topo.h1.run(["ping", "-n", "-q", "-c", "4", "-i", "0.5", "-w", "10", "10.0.1.1"],
                      check=False, timeout=20).stdout
    after = d.show("stats")["exception"]["doorbell_wakes"]
    rtt = [line for line in out.splitlines() if line.startswith("rtt")]
    print(f"     doorbell wakes {before} -> {after}; {rtt[0] if rtt else out}", flush=True)
    expect(" 0% packet loss" in out, f"pings to 10.0.1.1 lost: {out}")
    expect(after >= before + 1, f"doorbell_wakes {before} -> {after}: no punt woke the sleeping loop")


def check_tcp(topo, addr, nbytes, port):
    (sent, sent_hash), (got, got_hash) = tcp_transfer(topo.h1, topo.h2, addr, port, nbytes)
    expect(sent == nbytes, f"sent {sent} of {nbytes} bytes")
    expect((got, got_hash) == (sent, sent_hash),
           f"received {got} bytes sha256 {got_hash}, sent {sent} bytes sha256 {sent_hash}")


def check_interfaces(d, topo):
    by_name = {i["name"]: i for i in d.show("interfaces")}
    expect(set(by_name) == {"h1", "h2"}, f"interfaces {sorted(by_name)}")
    for name, n in (("h1", 1), ("h2", 2)):
        i = by_name[name]
        expect(i["port"] == f"p{n - 1}", f"{name}: port {i['port']}")
        expect(i["mac"].lower() == topo.mac[f"vl-{name}"], f"{name}: mac {i['mac']}, veth has {topo.mac[f'vl-{name}']}")
        expect(i["ipv4"] == [f"10.0.{n}.1/24"], f"{name}: ipv4 {i['ipv4']}")
        expect(i["ipv6"] == [f"fd00:{n}::1/64"], f"{name}: ipv6 {i['ipv6']}")
        expect(i["tap"] == f"vl-tap-{name}", f"{name}: tap {i['tap']}")
        expect(i["mtu"] == 1500, f"{name}: mtu {i['mtu']}")
        expect(i["rx_packets"] > 0 and i["tx_packets"] > 0,
               f"{name}: rx {i['rx_packets']} tx {i['tx_packets']} after traffic")
        tap_mac = topo.vl.mac(f"vl-tap-{name}")
        expect(tap_mac == topo.mac[f"vl-{name}"], f"tap vl-tap-{name} has mac {tap_mac}, port has {topo.mac[f'vl-{name}']}")
        addrs = topo.vl.ip("-br", "addr", "show", "dev", f"vl-tap-{name}").stdout
        for a in (f"10.0.{n}.1/24", f"fd00:{n}::1/64"):
            expect(a in addrs.split(), f"tap vl-tap-{name} lacks {a}: {addrs.strip()}")


def check_routes(d):
    routes = {(r["prefix"], r["type"]): r for r in d.show("routes")}
    want = [("10.0.1.0/24", "connected"), ("10.0.2.0/24", "connected"),
            ("fd00:1::/64", "connected"), ("fd00:2::/64", "connected"),
            ("10.0.1.1/32", "local"), ("10.0.2.1/32", "local"),
            ("fd00:1::1/128", "local"), ("fd00:2::1/128", "local"),
            ("10.100.0.0/16", "static"), ("fd00:100::/48", "static")]
    missing = [w for w in want if w not in routes]
    expect(not missing, f"routes missing {missing}; have {sorted(routes)}")
    for prefix, via in (("10.100.0.0/16", "10.0.2.2"), ("fd00:100::/48", "fd00:2::2")):
        hops = routes[(prefix, "static")]["nexthops"]
        expect([h["via"] for h in hops] == [via] and hops[0]["interface"] == "h2",
               f"{prefix}: next hops {hops}")
    for (prefix, kind), r in routes.items():
        expect(r["vrf"] == "default", f"{prefix} ({kind}) in vrf {r['vrf']}")


def check_neighbors(d, topo):
    neigh = {(n["interface"], n["ip"]): n for n in d.show("neighbors")}
    for iface, ip, host in (("h1", "10.0.1.2", "h1"), ("h1", "fd00:1::2", "h1"),
                            ("h2", "10.0.2.2", "h2"), ("h2", "fd00:2::2", "h2")):
        n = neigh.get((iface, ip))
        expect(n is not None, f"no neighbor {ip} on {iface}; have {sorted(neigh)}")
        expect(n["mac"].lower() == topo.mac[host], f"neighbor {ip}: mac {n['mac']}, host has {topo.mac[host]}")
        expect(n["state"].lower() == "reachable", f"neighbor {ip}: state {n['state']}")


def check_worker_tx(d, topo):
    _, before = d.counters()
    check_ping(topo.h1, "10.0.2.2", count=20)
    _, after = d.counters()
    # 20 requests and 20 replies, plus the first ping's pair.
    expect(after - before >= 42, f"worker tx_packets grew by {after - before}, expected >= 42")


def check_drop(d, topo, reason, dst, ttl=None):
    stats, _ = d.counters()
    expect(reason in stats["drops"], f"no drop reason {reason} in {sorted(stats['drops'])}")
    before = stats["drops"][reason]
    sent, received = topo.h1.ping(dst, count=3, deadline=3, ttl=ttl)
    expect(sent > 0 and received == 0, f"{dst} answered {received} of {sent} pings")
    # ping stops early when an ICMP error comes back, so expect what it sent.
    wait_for(lambda: d.counters()[0]["drops"][reason] - before >= sent, 3,
             f"drops.{reason} to grow by {sent} from {before}")


def check_second_instance(d, topo):
    argv = [a if a != d.socket else d.socket + ".2" for a in d.argv]
    second = topo.vl.run(argv, check=False, timeout=30)
    out = second.stdout + second.stderr
    expect(second.returncode != 0, f"second vleafd exited 0:\n{out}")
    print(f"     second vleafd exited {second.returncode}: {out.strip().splitlines()[-1]}", flush=True)
    expect(d.prefix in out, f"second vleafd's message does not name the file prefix {d.prefix}:\n{out}")
    expect(d.proc.poll() is None, "the first vleafd died when the second one started")
    check_ping(topo.h1, "10.0.2.2", count=3)


def check_sigterm(d, topo):
    if d.hugepages:
        with open(f"/proc/{d.proc.pid}/maps") as maps:
            huge = [line for line in maps if f"/dev/hugepages/{d.prefix}" in line]
        expect(huge, f"vleafd maps no /dev/hugepages/{d.prefix}* files though it runs on hugepages")
    d.proc.signal(signal.SIGTERM)
    start = time.monotonic()
    try:
        rc = d.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("vleafd still runs 5 s after SIGTERM")
    print(f"     vleafd exited {rc} after {time.monotonic() - start:.2f}s", flush=True)
    expect(rc == 0, f"vleafd exited {rc} on SIGTERM:\n{d.proc.log()[-2000:]}")
    left = hugepage_files(d.prefix)
    expect(not left, f"hugepage files left: {left}")
    expect(not os.path.exists(f"/var/run/dpdk/{d.prefix}"), f"EAL runtime directory /var/run/dpdk/{d.prefix} left")
    for tap in ("vl-tap-h1", "vl-tap-h2"):
        expect(not topo.vl.link_exists(tap), f"{tap} still exists")


def scenario(lab, check):
    topo = Topology(lab)
    d = Vleafd(lab, topo, os.environ["VLEAFD"], os.environ["VLEAFCTL"])
    d.start()
    check("ping h1 -> h2 IPv4", check_ping, topo.h1, "10.0.2.2")
    check("ping h1 -> h2 IPv6", check_ping, topo.h1, "fd00:2::2")
    check("ping static route target IPv4", check_ping, topo.h1, "10.100.0.1")
    check("ping static route target IPv6", check_ping, topo.h1, "fd00:100::1")
    check("ping vleafd's own IPv4 (kernel via tap)", check_ping, topo.h1, "10.0.1.1")
    check("ping vleafd's own IPv6 (kernel via tap)", check_ping, topo.h1, "fd00:1::1")
    check("a punt wakes the idle control loop (doorbell_wakes)", check_doorbell, d, topo)
    check("TCP 4 MB h1 -> h2 IPv4, sha256 equal", check_tcp, topo, "10.0.2.2", 4 << 20, 5001)
    check("TCP 2 MB h1 -> h2 IPv6, sha256 equal", check_tcp, topo, "fd00:2::2", 2 << 20, 5002)
    check("vleafctl show interfaces", check_interfaces, d, topo)
    check("vleafctl show routes", check_routes, d)
    check("vleafctl show neighbors", check_neighbors, d, topo)
    check("per-worker tx counters grow with traffic", check_worker_tx, d, topo)
    check("TTL 1 dropped as ttl_exceeded", check_drop, d, topo, "ttl_exceeded", "10.0.2.2", 1)
    check("unrouted IPv4 dropped as no_route", check_drop, d, topo, "no_route", "192.0.2.1")
    check("unrouted IPv6 dropped as no_route", check_drop, d, topo, "no_route", "2001:db8::1")
    check("second vleafd with the same --file-prefix refuses to start", check_second_instance, d, topo)
    check("SIGTERM: exit 0 within 5 s, no hugepage files or EAL runtime dir, taps gone", check_sigterm, d, topo)
    if check.failed:
        print(f"vleafd log:\n{d.proc.log()[-6000:]}", flush=True)


def main(argv):
    return run_lab(argv, __doc__, "fwd", 240, scenario, binaries=("VLEAFD", "VLEAFCTL"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
