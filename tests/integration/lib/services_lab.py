"""The services lab: clients reach a VIP served by backends in their own namespaces,
through the real vleafd (DNAT both ways).

  c (10.0.1.2) ── veth ── [ns vl: vleafd, af_packet p0/p1] ── veth ── [ns sw: bridge] ─┬─ b1 (10.0.2.11)
                                                                                        ├─ b2 (10.0.2.12)
                                                                                        └─ b3 (10.0.2.13)
Service web: 10.96.0.10:8080/tcp -> b1..b3 port 9000, TCP health checks every 300 ms.
Each backend runs an echo server (lb_echo.py) that first names itself.
"""

import json
import os
import subprocess
import sys

from bgplab import run_lab
from netns import run, vleafd_memory, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_CONFIG = os.path.join(HERE, "..", "..", "..", "conf", "demo.yaml")
DEMO_SOCKET = "socket: /run/vleaf/demo.sock"
ECHO = os.path.join(HERE, "lb_echo.py")
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


class ServiceLab:
    """The namespaces, echo servers and vleafd of the topology above. `config` edits the
    configuration text (demo.yaml with the API socket and SERVICES); `eal` are vleafd's
    EAL core options."""

    def __init__(self, lab, vleafd, vleafctl, config=lambda text: text, eal=("-l", "0,1")):
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
        text = config(text.replace(DEMO_SOCKET, f"socket: {self.socket}") + SERVICES)
        config_path = lab.write("vleafd.yaml", text)
        prefix = lab.dpdk_prefix("vleafd")
        mem = vleafd_memory()
        self.proc = self.vl.popen([vleafd, *eal, *mem, "--no-pci", "--file-prefix", prefix,
                                   "--log-level=*:warning", "--", "--config", config_path],
                                  name="vleafd")

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


def run_service_lab(argv, doc, name, checks, **options):
    """run_lab (`usage: test.py VLEAFD VLEAFCTL`) over a ServiceLab made with `options`:
    checks(s, check) runs the checks; vleafd's log is printed if one failed, and the echo
    servers and client are stopped whatever happens."""
    def scenario(lab, check):
        s = None
        try:
            s = ServiceLab(lab, os.environ["VLEAFD"], os.environ["VLEAFCTL"], **options)
            checks(s, check)
            if check.failed:
                print(f"vleafd log:\n{s.proc.log()[-4000:]}", flush=True)
        finally:
            if s:
                s.stop()
    return run_lab(argv, doc, name, 240, scenario, binaries=("VLEAFD", "VLEAFCTL"))
