#!/usr/bin/python3
"""Service load balancing by the real vleafd: clients reach a VIP served by backends in
their own namespaces, through DNAT both ways.

  c (10.0.1.2) ── veth ── [ns vl: vleafd, af_packet p0/p1] ── veth ── [ns sw: bridge] ─┬─ b1 (10.0.2.11)
                                                                                        ├─ b2 (10.0.2.12)
                                                                                        └─ b3 (10.0.2.13)
Service web: 10.96.0.10:8080/tcp -> b1..b3 port 9000, TCP health checks every 300 ms.
Each backend runs an echo server that first names itself. The checks: connections spread
over the backends; a backend removed through `vleafctl backend del` keeps its established
connections (data still echoes intact) while new connections avoid it; a backend whose
server stops is marked unhealthy by the health checks and avoided; the service API
(`service add|show|del`, errors naming the bad field) and the LB counters.

usage: test_services.py VLEAFD VLEAFCTL
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, run_lab  # noqa: E402
from netns import free_hugepage_mb, run, wait_for  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_CONFIG = os.path.join(HERE, "..", "..", "conf", "demo.yaml")
DEMO_SOCKET = "socket: /run/vleaf/demo.sock"
ECHO = os.path.join(HERE, "lib", "lb_echo.py")
VIP, VPORT, BPORT = "10.96.0.10", 8080, 9000
BACKENDS = {"b1": "10.0.2.11", "b2": "10.0.2.12", "b3": "10.0.2.13"}
SERVICES = f"""
services:
  - name: web
    vip: {VIP}
    port: {VPORT}
    health: {{tcp: true, interval_ms: 300, timeout_ms: 200, rise: 1, fall: 2}}
    backends:
""" + "".join(f"      - {{ip: {ip}, port: {BPORT}}}\n" for ip in BACKENDS.values())


class Setup:
    def __init__(self, lab, vleafd, vleafctl):
        self.lab, self.ctl_bin = lab, vleafctl
        self.vl, self.c, self.sw = lab.netns("vl"), lab.netns("c"), lab.netns("sw")
        lab.veth(self.vl, "vl-h1", self.c, "eth0")
        lab.veth(self.vl, "vl-h2", self.sw, "sw-vl")
        for port in ("vl-h1", "vl-h2"):
            self.vl.kernel_ignores(port)
        self.sw.ip("link", "add", "br0", "type", "bridge")
        self.sw.ip("link", "set", "br0", "up")
        self.sw.ip("link", "set", "sw-vl", "master", "br0")
        self.sw.no_offloads("sw-vl")
        self.c.no_offloads("eth0")
        self.c.add_addr("eth0", "10.0.1.2/24")
        self.c.add_route("default", via="10.0.1.1")
        self.backends = {}
        for name, ip in BACKENDS.items():
            ns = lab.netns(name)
            lab.veth(self.sw, f"sw-{name}", ns, "eth0")
            self.sw.ip("link", "set", f"sw-{name}", "master", "br0")
            self.sw.no_offloads(f"sw-{name}")
            ns.no_offloads("eth0")
            ns.add_addr("eth0", f"{ip}/24")
            ns.add_route("default", via="10.0.2.1")  # replies go back through vleafd
            self.backends[name] = ns
        self.servers = {}
        for name in BACKENDS:
            self.start_server(name)

        self.socket = lab.path("vleafd.sock")
        with open(DEMO_CONFIG) as f:
            text = f.read()
        if text.count(DEMO_SOCKET) != 1:
            raise RuntimeError(f"{DEMO_CONFIG} no longer has exactly one '{DEMO_SOCKET}'")
        config = lab.write("vleafd.yaml", text.replace(DEMO_SOCKET, f"socket: {self.socket}") + SERVICES)
        prefix = lab.dpdk_prefix("vleafd")
        mem = ["-m", "256"] if free_hugepage_mb() >= 512 else ["--no-huge", "-m", "512"]
        self.proc = self.vl.popen([vleafd, "-l", "0,1", *mem, "--no-pci", "--file-prefix", prefix,
                                   "--log-level=*:warning", "--", "--config", config], name="vleafd")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"vleafd exited with {self.proc.poll()}:\n{self.proc.log()}")
            return os.path.exists(self.socket) and self.query("show", "interfaces")
        wait_for(ready, 30, "vleafd to answer on its API socket")
        self.client = None

    def start_server(self, name):
        p = subprocess.Popen(["ip", "netns", "exec", self.backends[name].name, sys.executable, ECHO,
                              "server", BACKENDS[name], str(BPORT), name],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
        line = p.stdout.readline().strip()
        if line != "listening":
            raise RuntimeError(f"echo server {name} did not start: {line!r}")
        self.servers[name] = p

    def stop_server(self, name):
        p = self.servers.pop(name)
        p.kill()
        p.wait()

    def stop(self):
        if self.client:
            self.client.kill()
            self.client.wait()
        for name in list(self.servers):
            self.stop_server(name)

    def ctl(self, *words, **args):
        argv = [self.ctl_bin, "-s", self.socket, "-j", *words] + [f"{k}={v}" for k, v in args.items()]
        return run(argv, check=False, timeout=10)

    def query(self, *words, **args):
        r = self.ctl(*words, **args)
        if r.returncode != 0:
            raise AssertionError(f"vleafctl {' '.join(words)}: exit {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def talk(self, command):
        """One command to the client in namespace c; its JSON answer."""
        if self.client is None:
            self.client = subprocess.Popen(["ip", "netns", "exec", self.c.name, sys.executable, ECHO,
                                            "client", VIP, str(VPORT)],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                           start_new_session=True)
        self.client.stdin.write(command + "\n")
        self.client.stdin.flush()
        line = self.client.stdout.readline()
        if not line:
            raise AssertionError(f"client ended without answering {command!r}")
        return json.loads(line)

    def backend(self, name):
        web = self.query("service", "show", name="web")[0]
        return next((b for b in web["backends"] if b["ip"] == BACKENDS[name]), None)


def check_configured(s):
    web = s.query("service", "show", name="web")[0]
    expect((web["vip"], web["port"], web["proto"], web["mode"]) == (VIP, VPORT, "tcp", "dnat"), f"web: {web}")
    expect(sorted(b["ip"] for b in web["backends"]) == sorted(BACKENDS.values()), f"backends {web['backends']}")
    wait_for(lambda: s.query("service", "show", name="web")[0]["announced"], 5, "web to be announced")


def check_spread(s, state):
    names = s.talk("open 24")
    errors = [n for n in names if n.startswith("error")]
    expect(not errors, f"connections failed: {errors}")
    expect(len(set(names)) >= 2, f"24 connections all reached {set(names)}")
    state["first"] = names
    ok = s.talk("stream 65536")
    expect(all(x is True for x in ok), f"echo through the VIP: {ok}")


def check_removed_backend_keeps_flows(s, state):
    names = state["first"]
    victim = max(set(names), key=names.count)
    state["victim"] = victim
    s.query("backend", "del", service="web", ip=BACKENDS[victim], port=BPORT)
    expect(s.backend(victim) is None, f"{victim} still listed after backend del")
    ok = s.talk("stream 262144")
    expect(all(x is True for x in ok),
           f"established connections broke after removing {victim} ({names.count(victim)} on it): {ok}")
    fresh = s.talk("open 24")
    expect(victim not in fresh, f"new connections reached the removed backend {victim}: {fresh}")
    expect(not [n for n in fresh if n.startswith("error")], f"new connections failed: {fresh}")
    ok = s.talk("stream 65536")
    expect(all(x is True for x in ok), f"old and new connections together: {ok}")
    s.talk("close")


def check_health(s, state):
    left = [n for n in BACKENDS if n != state["victim"]]
    down, up = left[0], left[1]
    s.stop_server(down)
    wait_for(lambda: s.backend(down)["healthy"] is False, 10, f"{down} to fail its health checks")
    expect(s.backend(up)["healthy"], f"{up} marked unhealthy too")
    fresh = s.talk("open 16")
    expect(fresh == [up] * 16, f"with {down} unhealthy, new connections reached {set(fresh)}")
    s.talk("close")
    s.start_server(down)
    wait_for(lambda: s.backend(down)["healthy"], 10, f"{down} to pass its health checks again")


def check_api(s):
    added = s.query("service", "add", name="dns6", vip="fd00:96::53", proto="udp", port=53)
    expect(added["vip"] == "fd00:96::53" and added["proto"] == "udp", f"added {added}")
    s.query("backend", "add", service="dns6", ip="fd00:2::53", port=5353, weight=3)
    names = [x["name"] for x in s.query("service", "show")]
    expect(sorted(names) == ["dns6", "web"], f"services {names}")
    for words, args, want in (
            (("backend", "add"), {"service": "web", "ip": "10.0.2.300"}, "ip: '10.0.2.300' is not an IP address"),
            (("service", "add"), {"name": "x", "vip": VIP, "port": 99999}, "port: '99999' is not an integer in 1..65535"),
            (("service", "add"), {"name": "web2", "vip": VIP, "port": VPORT}, "is already service 'web'"),
            (("backend", "down"), {"service": "nope", "ip": "10.0.2.11"}, "service: no service named 'nope'")):
        r = s.ctl(*words, **args)
        expect(r.returncode == 1 and want in r.stderr, f"vleafctl {' '.join(words)} {args}: exit {r.returncode}: {r.stderr.strip()}")
    s.query("service", "del", name="dns6")
    expect([x["name"] for x in s.query("service", "show")] == ["web"], "dns6 still listed after service del")


def check_counters(s):
    lb = s.query("show", "lb")
    w = lb["workers"][0]
    expect(w["flows_created"] >= 64 and w["dnat"] > 0 and w["reverse_nat"] > 0 and w["flow_hits"] > 0,
           f"lb counters {w}")
    expect(w["flows"] > 0 and w["flows"] <= w["capacity"], f"flow table {w}")
    drops = s.query("show", "stats")["drops"]
    expect(drops["lb_no_backend"] == 0 and drops["lb_truncated"] == 0, f"drops {drops}")


def scenario(lab, check):
    s = None
    try:
        s = Setup(lab, os.environ["VLEAFD"], os.environ["VLEAFCTL"])
        state = {}
        check("service web from the configuration, announced", check_configured, s)
        check("24 connections spread over the backends, echo intact", check_spread, s, state)
        check("backend del: established connections survive, new ones avoid it",
              check_removed_backend_keeps_flows, s, state)
        check("TCP health checks mark a stopped backend down and up again", check_health, s, state)
        check("service add/show/del and backend add through vleafctl; errors name the field", check_api, s)
        check("LB counters and no LB drops", check_counters, s)
        if check.failed:
            print(f"vleafd log:\n{s.proc.log()[-4000:]}", flush=True)
    finally:
        if s:
            s.stop()


if __name__ == "__main__":
    sys.exit(run_lab(sys.argv, __doc__, "svc", 240, scenario, binaries=("VLEAFD", "VLEAFCTL")))
