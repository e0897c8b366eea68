#!/usr/bin/python3
"""Service VIPs announced by the real vleafd's BGP speaker while they have a usable
backend, as seen by real iBGP peers (GoBGP and FRR bgpd) in their own JSON.

  gb (gobgpd 10.0.1.2, fd00:1::2) ── p0 ┐                   ┌ p1 ── be (backends 10.0.2.11..13,
                                        [ns vl: vleafd AS 65001]       fd00:2::11, fd00:2::12)
  fr (FRR bgpd 10.0.3.2, fd00:3::2) ── p2 ┘

Both peers are in AS 65001 (iBGP, so LOCAL_PREF travels), over an IPv4 and an IPv6
session each, reaching vleafd's speaker through its dataplane and taps. Services:
  web    10.96.0.10:80    -> 10.0.2.11, 10.0.2.12 :9000  communities 65001:100 65001:200, local-pref 250
  tls    10.96.0.10:443   -> 10.0.2.13:9443              (the same VIP, shared like MetalLB's allow-shared-ip)
  web6   fd00:96::10:80   -> fd00:2::11, fd00:2::12 :9000, TCP health checks, community 65001:600, local-pref 300
Each backend has a TCP server (lib/lb_echo.py) in ns be. The checks: both peers receive the /32 and the
/128 with the configured communities and local-pref; `vleafctl backend down` on every
backend of web leaves the /32 up (tls still serves the VIP) and on tls too withdraws it
from both peers within a bound; one backend up brings it back; stopping one listener of
web6 keeps the /128 (the other backend is healthy), stopping both withdraws it, starting
one brings it back; a service added at runtime through the API is announced with the
communities and local-pref it names; `service del` withdraws.

usage: test_service_bgp.py VLEAFD VLEAFCTL
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, frr_bgpd, gobgp_toml, gobgpd, popen_vleafd, run_lab, vleafd_ports  # noqa: E402
from netns import run, wait_for  # noqa: E402

VIP4, VIP6, VIP_API = "10.96.0.10/32", "fd00:96::10/128", "10.96.0.20/32"
API_BOUND = 3.0  # s from a `vleafctl` change to the peers' RIBs following
HEALTH_BOUND = 5.0  # s from a listener change to the peers following (300 ms checks, fall 2)

WEB4 = [("10.0.2.11", 9000), ("10.0.2.12", 9000)]
TLS4 = [("10.0.2.13", 9443)]
WEB6 = [("fd00:2::11", 9000), ("fd00:2::12", 9000)]

VLEAFD_CONFIG = """\
log_level: info
mempool: {{mbufs: 16383, cache: 256}}
ports:
{ports}
interfaces:
{interfaces}
bgp:
  asn: 65001
  router_id: 10.0.1.1
  peers:
    - {{address: 10.0.1.2, remote_as: 65001, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
    - {{address: "fd00:1::2", remote_as: 65001, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
    - {{address: 10.0.3.2, remote_as: 65001, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
    - {{address: "fd00:3::2", remote_as: 65001, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
services:
  - name: web
    vip: 10.96.0.10
    port: 80
    announce: {{communities: ["65001:100", "65001:200"], local_pref: 250}}
    backends:
      - {{ip: 10.0.2.11, port: 9000}}
      - {{ip: 10.0.2.12, port: 9000}}
  - name: tls
    vip: 10.96.0.10
    port: 443
    announce: {{communities: ["65001:100", "65001:200"], local_pref: 250}}
    backends:
      - {{ip: 10.0.2.13, port: 9443}}
  - name: web6
    vip: "fd00:96::10"
    port: 80
    health: {{tcp: true, interval_ms: 300, timeout_ms: 200, rise: 1, fall: 2}}
    announce: {{communities: ["65001:600"], local_pref: 300}}
    backends:
      - {{ip: "fd00:2::11", port: 9000}}
      - {{ip: "fd00:2::12", port: 9000}}
api: {{socket: {socket}}}
"""

GOBGP = gobgp_toml(65001, "10.0.1.2", ["10.0.1.2", "fd00:1::2"],
                   [("10.0.1.1", 65001, "ipv4-unicast"), ("fd00:1::1", 65001, "ipv6-unicast")])

FRR = """\
frr defaults datacenter
hostname fr
log stdout informational
router bgp 65001
 bgp router-id 10.0.3.2
 neighbor 10.0.3.1 remote-as 65001
 neighbor 10.0.3.1 timers 3 9
 neighbor 10.0.3.1 timers connect 1
 neighbor fd00:3::1 remote-as 65001
 neighbor fd00:3::1 timers 3 9
 neighbor fd00:3::1 timers connect 1
 address-family ipv4 unicast
  no neighbor fd00:3::1 activate
 exit-address-family
 address-family ipv6 unicast
  neighbor fd00:3::1 activate
 exit-address-family
"""

ECHO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib", "lb_echo.py")


def community(text):
    high, low = text.split(":")
    return int(high) << 16 | int(low)


class Setup:
    def __init__(self, lab, vleafd, vleafctl):
        self.lab, self.ctl_bin = lab, vleafctl
        self.vl, self.gb, self.be, self.fr = (lab.netns(n) for n in ("vl", "gb", "be", "fr"))
        hosts = ((self.gb, 1), (self.be, 2), (self.fr, 3))
        ports, ifs = vleafd_ports(lab, self.vl, hosts, ipv6=True)
        for ns, _ in hosts:
            ns.sysctl("net.ipv6.conf.eth0.accept_dad", "0")
        for ns, n in ((self.gb, 1), (self.fr, 3)):
            ns.add_addr("eth0", f"10.0.{n}.2/24")
            ns.add_addr("eth0", f"fd00:{n}::2/64")
        for addr, _ in WEB4 + TLS4:
            self.be.add_addr("eth0", f"{addr}/24")
        for addr, _ in WEB6:
            self.be.add_addr("eth0", f"{addr}/64")
        self.socket = lab.path("vleafd.sock")
        cfg = lab.write("vleafd.yaml", VLEAFD_CONFIG.format(ports=ports, interfaces=ifs, socket=self.socket))
        self.listeners = {}
        for addr, port in WEB4 + TLS4 + WEB6:
            self.start_listener(addr, port)
        self.vleafd = popen_vleafd(lab, self.vl, vleafd, cfg)
        wait_for(lambda: self.alive() and os.path.exists(self.socket) and self.vl.link_exists("vl-tap2"),
                 30, "vleafd API and taps")
        self.gobgp = gobgpd(lab, self.gb, "gb", GOBGP, 50051)
        self.vtysh = frr_bgpd(lab, self.fr, "fr", FRR)

    def start_listener(self, addr, port):
        p = subprocess.Popen(["ip", "netns", "exec", self.be.name, "/usr/bin/python3", ECHO, "server",
                              addr, str(port), addr], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
        line = p.stdout.readline().strip()
        if line != "listening":
            p.kill()
            p.wait()
            raise RuntimeError(f"listener {addr}:{port} did not start: {line!r}")
        self.listeners[(addr, port)] = p

    def stop_listener(self, addr, port):
        p = self.listeners.pop((addr, port))
        p.kill()
        p.wait()

    def stop(self):
        for key in list(self.listeners):
            self.stop_listener(*key)

    def alive(self):
        if self.vleafd.poll() is not None:
            raise AssertionError(f"vleafd exited {self.vleafd.poll()}:\n{self.vleafd.log()[-3000:]}")
        return True

    def ctl(self, *words, **args):
        self.alive()
        argv = [self.ctl_bin, "-s", self.socket, "-j", *words] + [f"{k}={v}" for k, v in args.items()]
        r = run(argv, check=False, timeout=10)
        if r.returncode != 0:
            raise AssertionError(f"vleafctl {' '.join(words)} {args}: exit {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def backends(self, service, state, addrs):
        for addr, port in addrs:
            self.ctl("backend", state, service=service, ip=addr, port=port)

    # What each peer holds for a prefix, from its own JSON: {"communities": [...],
    # "local_pref": N, "next_hop": ADDR}, or None when it has no path.
    def at_gobgp(self, prefix):
        family = "ipv6" if ":" in prefix else "ipv4"
        paths = self.gobgp("global", "rib", "-a", family).get(prefix)
        if not paths:
            return None
        expect(len(paths) == 1, f"GoBGP {prefix}: {len(paths)} paths")
        a = {x["type"]: x for x in paths[0]["attrs"]}
        nh = a.get(3 if family == "ipv4" else 14, {}).get("nexthop")  # 14: MP_REACH_NLRI
        return {"communities": a[8]["communities"] if 8 in a else [],
                "local_pref": a[5]["value"] if 5 in a else None,
                "next_hop": nh}

    def at_frr(self, prefix):
        family = "ipv6" if ":" in prefix else "ipv4"
        out = self.vtysh(f"show bgp {family} unicast {prefix} json")
        paths = out.get("paths") or []
        if not paths:
            return None
        expect(len(paths) == 1, f"FRR {prefix}: {len(paths)} paths")
        p = paths[0]
        hops = p.get("nexthops") or [{}]
        return {"communities": (p.get("community") or {}).get("list", []),
                "local_pref": p.get("locPrf"),
                "next_hop": hops[0].get("ip")}

    def peers(self, prefix):
        return {"gobgp": self.at_gobgp(prefix), "frr": self.at_frr(prefix)}


def expected(prefix, communities, local_pref):
    # FRR lists communities as text, GoBGP as 32-bit numbers.
    nh = {"10": ("10.0.1.1", "10.0.3.1"), "fd": ("fd00:1::1", "fd00:3::1")}[prefix[:2]]
    return {"gobgp": {"communities": [community(c) for c in communities],
                      "local_pref": local_pref, "next_hop": nh[0]},
            "frr": {"communities": communities, "local_pref": local_pref, "next_hop": nh[1]}}


def follows(s, prefix, want, what, since, bound):
    """Waits until both peers hold `want` for `prefix` (None: no path); checks the bound."""
    def seen():
        got = s.peers(prefix)
        if got == want:
            return True
        follows.last = got
        return False
    follows.last = None
    try:
        wait_for(seen, bound + 10, f"peers to follow {what} for {prefix}", interval=0.05)
    except Exception as exc:
        raise AssertionError(f"{exc}; peers hold {follows.last}, expected {want}") from None
    took = time.monotonic() - since
    print(f"     {prefix}: peers followed {what} after {took:.2f}s", flush=True)
    expect(took <= bound, f"{what}: peers took {took:.2f}s for {prefix} (bound {bound}s)")


def established(s):
    peers = {p["neighbor"]: p["state"] for p in s.ctl("show", "bgp", "summary")["peers"]}
    return all(peers.get(a) == "Established" for a in ("10.0.1.2", "fd00:1::2", "10.0.3.2", "fd00:3::2"))


def check_sessions(s):
    wait_for(lambda: established(s), 60, "vleafd's four sessions Established")


def check_announced(s):
    since = time.monotonic()
    follows(s, VIP4, expected(VIP4, ["65001:100", "65001:200"], 250), "the configuration", since, 20)
    follows(s, VIP6, expected(VIP6, ["65001:600"], 300), "the configuration", since, 20)
    shown = {x["name"]: x["announced"] for x in s.ctl("service", "show")}
    expect(shown == {"web": True, "tls": True, "web6": True}, f"service show: announced {shown}")


def check_shared_vip(s):
    s.backends("web", "down", WEB4)
    time.sleep(API_BOUND)  # long enough for a wrong withdrawal to reach the peers
    want = expected(VIP4, ["65001:100", "65001:200"], 250)
    got = s.peers(VIP4)
    expect(got == want, f"web has no usable backend but tls serves {VIP4}: peers hold {got}")


def check_api_down_withdraws(s):
    since = time.monotonic()
    s.backends("tls", "down", TLS4)
    follows(s, VIP4, {"gobgp": None, "frr": None}, "every backend down", since, API_BOUND)
    expect(s.peers(VIP6) == expected(VIP6, ["65001:600"], 300), f"{VIP6} changed with {VIP4}")


def check_api_up_announces(s):
    since = time.monotonic()
    s.backends("web", "up", WEB4[:1])
    follows(s, VIP4, expected(VIP4, ["65001:100", "65001:200"], 250), "one backend up", since, API_BOUND)


def check_health(s):
    want = expected(VIP6, ["65001:600"], 300)
    s.stop_listener(*WEB6[0])
    addr = WEB6[0][0]
    wait_for(lambda: not next(b for b in s.ctl("service", "show", name="web6")[0]["backends"]
                              if b["ip"] == addr)["healthy"], HEALTH_BOUND + 5,
             f"{addr} to fail its health checks")
    expect(s.peers(VIP6) == want, f"one of two web6 backends unhealthy: peers hold {s.peers(VIP6)}")
    since = time.monotonic()
    s.stop_listener(*WEB6[1])
    follows(s, VIP6, {"gobgp": None, "frr": None}, "both listeners stopped", since, HEALTH_BOUND)
    since = time.monotonic()
    s.start_listener(*WEB6[1])
    follows(s, VIP6, want, "a listener started again", since, HEALTH_BOUND)


def check_api_service(s):
    since = time.monotonic()
    s.ctl("service", "add", name="dns", vip=VIP_API.split("/")[0], proto="udp", port=53,
          communities="65001:53,65001:54", local_pref=180)
    s.ctl("backend", "add", service="dns", ip="10.0.2.14", port=5353)
    want = expected(VIP_API, ["65001:53", "65001:54"], 180)
    follows(s, VIP_API, want, "service add and backend add", since, API_BOUND)
    since = time.monotonic()
    s.ctl("service", "del", name="dns")
    follows(s, VIP_API, {"gobgp": None, "frr": None}, "service del", since, API_BOUND)


def check_service_del(s):
    since = time.monotonic()
    s.ctl("service", "del", name="web6")
    follows(s, VIP6, {"gobgp": None, "frr": None}, "service del", since, API_BOUND)
    want4 = expected(VIP4, ["65001:100", "65001:200"], 250)
    expect(s.peers(VIP4) == want4, f"{VIP4} changed when web6 went: {s.peers(VIP4)}")
    s.backends("tls", "up", TLS4)
    s.ctl("service", "del", name="web")
    time.sleep(API_BOUND)
    expect(s.peers(VIP4) == want4, f"web deleted while tls serves {VIP4}: peers hold {s.peers(VIP4)}")
    since = time.monotonic()
    s.ctl("service", "del", name="tls")
    follows(s, VIP4, {"gobgp": None, "frr": None}, "service del", since, API_BOUND)


def scenario(lab, check):
    s = None
    try:
        s = Setup(lab, os.environ["VLEAFD"], os.environ["VLEAFCTL"])
        check("vleafd's sessions to GoBGP and FRR (IPv4 and IPv6) Established", check_sessions, s)
        check("both peers receive the /32 and /128 with the configured communities and local-pref",
              check_announced, s)
        check("a VIP shared by two services stays while one of them has a usable backend",
              check_shared_vip, s)
        check("backend down on every backend withdraws the /32 from both peers",
              check_api_down_withdraws, s)
        check("one backend up announces it again", check_api_up_announces, s)
        check("TCP health checks: the /128 follows its backends' listeners", check_health, s)
        check("a service added through the API is announced with its communities and local-pref;"
              " service del withdraws it", check_api_service, s)
        check("service del withdraws the VIPs", check_service_del, s)
        if check.failed:
            print(f"vleafd log:\n{s.vleafd.log()[-6000:]}", flush=True)
            print(f"gobgpd log:\n{s.gobgp.proc.log()[-3000:]}", flush=True)
    finally:
        if s:
            s.stop()


if __name__ == "__main__":
    sys.exit(run_lab(sys.argv, __doc__, "svcbgp", 240, scenario, binaries=("VLEAFD", "VLEAFCTL")))
