"""BGP interop helpers on top of netns.Lab: vleaf-bgpd and the peer daemons (BIRD 2,
GoBGP, FRR bgpd, ExaBGP), each in its own namespace, and veth links between them.
The Lab removes every namespace and process when the test ends, pass or fail.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys

from netns import Lab, Terminated, namespaces, vleafd_memory, wait_for  # noqa: F401 (re-exported)

SKIP = 77  # meson: test skipped (shown as SKIP, never as a pass)


def require_root():
    if os.geteuid() != 0:
        print("interop tests need root (network namespaces)", file=sys.stderr)
        sys.exit(SKIP)


_links = 0


def link(lab, ns_a, addrs_a, ns_b, addrs_b):
    """A veth pair between two namespaces with addresses like ['10.0.0.1/24']."""
    global _links
    _links += 1
    a, b = f"bgp{_links}a", f"bgp{_links}b"
    lab.veth(ns_a, a, ns_b, b)
    for ns, dev, addrs in ((ns_a, a, addrs_a), (ns_b, b, addrs_b)):
        for ad in addrs:
            ns.add_addr(dev, ad)
    return a, b


class Vleaf:
    """vleaf-bgpd in a namespace, queried over its management socket."""

    def __init__(self, lab, ns, bgp_yaml, name="vleaf"):
        self.lab, self.ns, self.name = lab, ns, name
        self.conf = lab.write(f"{name}.yaml", bgp_yaml)
        self.sock = lab.path(f"{name}.sock")
        self.bin = os.environ.get("VLEAF_BGPD", "vleaf-bgpd")
        self.start()

    def start(self, *extra_args):
        """Starts vleaf-bgpd, e.g. start("-R") as a restarting speaker."""
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.proc = self.ns.popen([self.bin, "-c", self.conf, "-s", self.sock, "-l", "debug",
                                   *extra_args], self.name)
        wait_for(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, 10,
                 "vleaf-bgpd socket")
        if self.proc.poll() is not None:
            raise RuntimeError("vleaf-bgpd exited: " + self.proc.log())

    def stop(self):
        self.proc.signal(signal.SIGTERM)
        self.proc.wait(timeout=10)

    def kill(self):
        """As a crash: no NOTIFICATION, the peers see the TCP connection close."""
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def alive(self):
        return self.proc.poll() is None

    def query(self, command, **args):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock)
        s.sendall((json.dumps({"command": command, "args": args}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        s.close()
        reply = json.loads(buf)
        if not reply.get("ok"):
            raise RuntimeError(f"{command}: {reply.get('error')}")
        return reply["result"]

    def peer(self, address):
        for p in self.query("show bgp summary")["peers"]:
            if p["neighbor"] == address:
                return p
        return None

    def state(self, address):
        p = self.peer(address)
        return p and p["state"]

    def routes(self, family="ipv4"):
        """{prefix: best path} for a family."""
        return {r["prefix"]: r["paths"][0] for r in self.query(f"show bgp routes {family}")}

    def log(self):
        return self.proc.log()


def vleafd_ports(lab, vl, hosts, ipv6=False):
    """vleafd's ports toward `hosts`, (namespace, n) pairs: port pK on veth vl-pK (left to
    DPDK by vl's kernel) to the host's eth0, interface iK with 10.0.n.1/24 (and fd00:n::1/64)
    and tap vl-tapK. Returns the `ports:` and `interfaces:` YAML lines."""
    ports, ifs = [], []
    for k, (ns, n) in enumerate(hosts):
        lab.veth(vl, f"vl-p{k}", ns, "eth0")
        vl.kernel_ignores(f"vl-p{k}")
        ns.no_offloads("eth0")
        ports.append(f"  - {{name: p{k}, device: 'net_af_packet{k},iface=vl-p{k},qpairs=1,"
                     f"blocksz=4096,framesz=2048,framecnt=512', rx_desc: 512, tx_desc: 512,"
                     f" rss: false}}")
        v6 = f", ipv6: ['fd00:{n}::1/64']" if ipv6 else ""
        ifs.append(f"  - {{name: i{k}, port: p{k}, ipv4: [10.0.{n}.1/24]{v6}, tap: vl-tap{k}}}")
    return "\n".join(ports), "\n".join(ifs)


def popen_vleafd(lab, ns, vleafd, config):
    """vleafd on lcores 0 and 1 with hugepages when enough are free, else --no-huge."""
    mem = vleafd_memory()
    return ns.popen([vleafd, "-l", "0,1", *mem, "--no-pci", "--file-prefix",
                     lab.dpdk_prefix("vleafd"), "--log-level=*:warning", "--", "--config", config],
                    "vleafd")


def bird(lab, ns, name, conf):
    """BIRD 2 in a namespace; returns a function running birdc commands."""
    cfg = lab.write(f"{name}/bird.conf", conf)
    sock = lab.path(f"{name}/bird.ctl")
    proc = ns.popen(["bird", "-f", "-c", cfg, "-s", sock, "-P", lab.path(f"{name}/bird.pid")],
                    f"{name}/bird")

    def birdc_ready():
        if proc.poll() is not None:
            raise AssertionError(f"{name}: bird exited: {proc.log()}")
        return subprocess.run(["birdc", "-s", sock, "show", "status"], capture_output=True,
                              text=True).returncode == 0
    wait_for(birdc_ready, 10, f"{name} control socket")

    def birdc(cmd):
        return subprocess.run(["birdc", "-s", sock] + cmd.split(), capture_output=True,
                              text=True, check=True).stdout
    birdc.proc = proc
    return birdc


def gobgp_toml(asn, router_id, local_addresses, neighbors, hold=9, keepalive=3, connect_retry=1):
    """A gobgpd configuration: neighbors are (address, peer AS, AFI-SAFI name) tuples."""
    text = f"""\
[global.config]
  as = {asn}
  router-id = "{router_id}"
  local-address-list = {json.dumps(local_addresses)}
"""
    for address, peer_as, family in neighbors:
        text += f"""\
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{address}"
    peer-as = {peer_as}
  [neighbors.timers.config]
    hold-time = {hold}
    keepalive-interval = {keepalive}
    connect-retry = {connect_retry}
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{family}"
"""
    return text


def gobgpd(lab, ns, name, toml, api_port):
    """GoBGP in a namespace; returns a function running `gobgp -j` and parsing JSON."""
    cfg = lab.write(f"{name}/gobgpd.toml", toml)
    proc = ns.popen(["gobgpd", "-f", cfg, "-p", "--api-hosts", f"127.0.0.1:{api_port}",
                     "--pprof-disable"], f"{name}/gobgpd")

    def gobgp(*args, as_json=True):
        argv = ["ip", "netns", "exec", ns.name, "gobgp", "-p", str(api_port)]
        argv += (["-j"] if as_json else []) + list(args)
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        return json.loads(out) if as_json else out
    wait_for(lambda: gobgp("global", as_json=False), 10, f"{name} API")
    gobgp.proc = proc
    return gobgp


# FRR as an EVPN leaf with a kernel VTEP (AS 65003, router id 10.8.0.2, vleaf at 10.8.0.1):
# zebra puts L3VNI 100 in the default VRF; bgpd advertises every VNI and `network`.
FRR_EVPN_ZEBRA = """\
hostname fr
log stdout informational
vrf default
 vni 100
exit-vrf
"""


def frr_evpn_bgpd(network):
    return f"""\
frr defaults datacenter
hostname fr
log stdout informational
router bgp 65003
 bgp router-id 10.8.0.2
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.8.0.1 remote-as 65001
 neighbor 10.8.0.1 timers 3 9
 neighbor 10.8.0.1 timers connect 1
 address-family ipv4 unicast
  network {network}
 exit-address-family
 address-family l2vpn evpn
  neighbor 10.8.0.1 activate
  advertise-all-vni
  advertise ipv4 unicast
 exit-address-family
"""


def kernel_vtep(ns, local, router_mac):
    """Linux VTEPs in `ns`: vxlan10 in br10 (L2VNI 10) and vxlan100 in br100 (L3VNI 100,
    whose bridge MAC is the router MAC), learning left to EVPN."""
    for vni, br in ((10, "br10"), (100, "br100")):
        ns.ip("link", "add", br, "type", "bridge")
        if vni == 100:
            ns.ip("link", "set", br, "address", router_mac)
        ns.ip("link", "add", f"vxlan{vni}", "type", "vxlan", "id", str(vni), "local",
              local, "dstport", "4789", "nolearning")
        ns.ip("link", "set", f"vxlan{vni}", "master", br)
        ns.ip("link", "set", f"vxlan{vni}", "up")
        ns.ip("link", "set", br, "up")


def frr_bgpd(lab, ns, name, bgpd_conf, zebra_conf=None):
    """FRR bgpd in a namespace; returns a vtysh runner. Without zebra_conf bgpd runs
    alone (-Z); with it zebra runs first and programs the namespace's kernel (EVPN VTEP,
    routes)."""
    d = lab.path(name)
    os.makedirs(d, exist_ok=True)
    lab.write(f"{name}/bgpd.conf", bgpd_conf)
    lab.write(f"{name}/vtysh.conf", "")
    if zebra_conf is not None:
        lab.write(f"{name}/zebra.conf", zebra_conf)
    shutil.chown(d, "frr", "frr")
    for f in os.listdir(d):
        shutil.chown(os.path.join(d, f), "frr", "frr")
    zserv = ["-z", f"{d}/zserv.api"]
    if zebra_conf is not None:
        ns.popen(["/usr/lib/frr/zebra", "-f", f"{d}/zebra.conf", "-i", f"{d}/zebra.pid",
                  *zserv, "--vty_socket", d, "-P", "0"], f"{name}/zebra")
        wait_for(lambda: os.path.exists(f"{d}/zserv.api"), 10, f"{name} zebra socket")
    proc = ns.popen(["/usr/lib/frr/bgpd", *(zserv if zebra_conf is not None else ["-Z"]),
                     "-f", f"{d}/bgpd.conf", "-i", f"{d}/bgpd.pid", "--vty_socket", d,
                     "-P", "0"], f"{name}/bgpd")

    def vtysh(*cmds, as_json=True):
        argv = ["ip", "netns", "exec", ns.name, "vtysh", "--vty_socket", d]
        for c in cmds:
            argv += ["-c", c]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        return json.loads(out) if as_json else out
    wait_for(lambda: vtysh("show bgp summary json"), 15, f"{name} vty")
    vtysh.proc = proc
    return vtysh


class Checks:
    """Runs every check even after one fails, so that one run shows all that is broken."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def __call__(self, name, fn, *args):
        try:
            fn(*args)
        except Exception as exc:  # Terminated (a BaseException) ends the test instead
            self.failed.append(name)
            print(f"FAIL {name}: {exc}", flush=True)
        else:
            self.passed += 1
            print(f"ok   {name}", flush=True)

    def result(self):
        print(f"{self.passed} passed, {len(self.failed)} failed", flush=True)
        return 1 if self.failed else 0


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def run_lab(argv, doc, name, deadline, scenario, binaries=("VLEAF_BGPD",)):
    """The frame every interop test shares: `usage: test.py VLEAF_BGPD` (or the binaries
    named, each put in the environment variable of its name), root, one Lab in which
    scenario(lab, check) builds its namespaces and runs its checks, an exception or a stop
    recorded as a failure, and a last check that no namespace outlived the Lab.
    Returns the exit status."""
    if len(argv) != 1 + len(binaries):
        sys.exit(doc)
    for env, path in zip(binaries, argv[1:]):
        os.environ[env] = os.path.abspath(path)
    require_root()
    check = Checks()
    names = []
    try:
        with Lab(name, deadline=deadline) as lab:
            try:
                scenario(lab, check)
            finally:
                names = [ns.name for ns in lab.namespaces]
    except (Terminated, Exception) as exc:
        check.failed.append(f"{type(exc).__name__}: {exc}")
        print(f"FAIL {type(exc).__name__}: {exc}", flush=True)
    check("no namespaces left behind",
          lambda: expect(not [n for n in names if n in namespaces()], "namespaces left"))
    return check.result()
