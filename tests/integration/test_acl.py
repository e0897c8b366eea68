#!/usr/bin/python3
"""ACLs in the real vleafd, driven by vleafctl (topology and vleafd as in test_forwarding).

A deny rule for one TCP port to h2, added at run time on h2's interface in direction out,
blocks that port over IPv4 and IPv6 while ping and another TCP port keep working; its hit
counter and the acl_deny drop reason move; deleting the rule opens the port again. Bad
requests are refused with the field named.

usage: test_acl.py VLEAFD VLEAFCTL
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, run_lab  # noqa: E402
from netns import run  # noqa: E402
from test_forwarding import Topology, Vleafd, check_ping, check_tcp  # noqa: E402

BLOCKED, OPEN = 5101, 5102


def ctl(d, *words, check=True):
    return run([d.ctl_binary, "-s", d.socket, "-j", *words], check=check, timeout=30)


def connects(topo, addr, port):
    """Whether h1 gets a TCP connection to a listener on h2 at addr:port within 2 s."""
    listener = subprocess.Popen(
        ["ip", "netns", "exec", topo.h2.name, sys.executable, "-c",
         "import socket,sys\n"
         f"s=socket.socket(socket.AF_INET6 if ':' in '{addr}' else socket.AF_INET)\n"
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         f"s.bind(('{addr}', {port})); s.listen(4); print('listening', flush=True)\n"
         "while True: s.accept()[0].close()\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        expect(listener.stdout.readline().strip() == "listening", "listener did not start")
        probe = topo.h1.run([sys.executable, "-c",
                             "import socket\n"
                             f"socket.create_connection(('{addr}', {port}), timeout=2).close()\n"],
                            check=False, timeout=30)
        return probe.returncode == 0
    finally:
        listener.kill()
        listener.wait()


def policy(d, name):
    return json.loads(ctl(d, "acl", "show", f"policy={name}").stdout)[0]


def acl_deny_drops(d):
    return d.counters()[0]["drops"]["acl_deny"]


def check_deny(d, topo):
    expect(connects(topo, "10.0.2.2", BLOCKED), "port open before any ACL")
    out = json.loads(ctl(d, "acl", "add", "policy=h2-in", "interface=h2", "direction=out",
                         "dst=10.0.2.0/24", "proto=tcp", f"dport={BLOCKED}", "action=deny").stdout)
    expect(out["id"] == 1, f"first rule id {out['id']}")
    out = json.loads(ctl(d, "acl", "add", "policy=h2-in", "dst=fd00:2::/64", "proto=tcp",
                         f"dport={BLOCKED}", "action=deny", "priority=5").stdout)
    expect(out["id"] == 2, f"second rule id {out['id']}")
    before = acl_deny_drops(d)
    expect(not connects(topo, "10.0.2.2", BLOCKED), f"IPv4 TCP port {BLOCKED} still open")
    expect(not connects(topo, "fd00:2::2", BLOCKED), f"IPv6 TCP port {BLOCKED} still open")
    check_ping(topo.h1, "10.0.2.2", count=3)
    check_ping(topo.h1, "fd00:2::2", count=3)
    check_tcp(topo, "10.0.2.2", 1 << 20, OPEN)
    p = policy(d, "h2-in")
    hits = {r["id"]: r["hits"] for r in p["rules"]}
    expect(hits[1] >= 1 and hits[2] >= 1, f"rule hits {hits}")
    expect(p["default_hits"] > 0, f"default hits {p['default_hits']} after allowed traffic")
    expect(acl_deny_drops(d) - before >= hits[1] + hits[2],
           f"acl_deny grew by {acl_deny_drops(d) - before}, rules hit {hits}")


def check_errors(d):
    for args, want in (
            (["policy=h2-in", "dst=10.0.0.0/8", "proto=tcp", "dport=70000", "action=deny"],
             "dport: '70000' is not a port"),
            (["policy=h2-in", "dst=10.0.0.0/8", "action=drop"], "action: 'drop' is not allow"),
            (["policy=h2-in", "dst=10.0.0.1/8", "action=deny"], "dst: '10.0.0.1/8' has host bits"),
            (["policy=new", "interface=nope", "family=ipv4", "action=deny"],
             "interface: unknown interface 'nope'"),
            (["policy=h2-in", "colour=red"], "colour: not an argument")):
        r = ctl(d, "acl", "add", *args, check=False)
        expect(r.returncode == 1 and want in r.stderr, f"{args}: exit {r.returncode}, {r.stderr.strip()}")
    expect(ctl(d, "acl", "show", "policy=new", check=False).returncode == 1,
           "a refused add left a policy behind")
    expect(len(policy(d, "h2-in")["rules"]) == 2, "a refused add changed the policy")


def check_delete(d, topo):
    ctl(d, "acl", "del", "policy=h2-in", "id=1")
    expect(connects(topo, "10.0.2.2", BLOCKED), "IPv4 port still blocked after its rule was deleted")
    expect(not connects(topo, "fd00:2::2", BLOCKED), "IPv6 port open while its rule remains")
    ctl(d, "acl", "del", "policy=h2-in")
    expect(connects(topo, "fd00:2::2", BLOCKED), "IPv6 port blocked after the policy was deleted")
    expect(json.loads(ctl(d, "acl", "show").stdout) == [], "policies left")


def scenario(lab, check):
    topo = Topology(lab)
    d = Vleafd(lab, topo, os.environ["VLEAFD"], os.environ["VLEAFCTL"])
    d.start()
    check("ping h1 -> h2 (neighbors resolved)", check_ping, topo.h1, "10.0.2.2")
    check("ping h1 -> h2 IPv6", check_ping, topo.h1, "fd00:2::2")
    check("deny rules block a TCP port (IPv4, IPv6); ping and another port pass; hits move",
          check_deny, d, topo)
    check("bad acl requests refused naming the field, nothing changed", check_errors, d)
    check("deleting rules and the policy opens the port again", check_delete, d, topo)
    if check.failed:
        print(f"vleafd log:\n{d.proc.log()[-6000:]}", flush=True)


def main(argv):
    return run_lab(argv, __doc__, "acl", 200, scenario, binaries=("VLEAFD", "VLEAFCTL"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
