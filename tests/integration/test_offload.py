#!/usr/bin/python3
"""rte_flow offload falling back to software in the real vleafd (topology as in test_acl).

The demo configuration with offload left on for p0 (h1's port) and turned off for p1,
plus a VXLAN VTEP with a VNI steered to queue 0. af_packet ports have no rte_flow at
all, so every rule p0 is offered falls back as no_flow_api, with the port's own error as
the reason, while the software ACL still drops what the deny rule matches; p1 reports its
rules as disabled; a rule that could match IPv6 neighbor discovery is never offered
(fallback `rule`). Deleting the policy takes its rules out of `show offload`.

usage: test_offload.py VLEAFD VLEAFCTL
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, run_lab  # noqa: E402
from netns import run  # noqa: E402
from test_acl import BLOCKED, OPEN, acl_deny_drops, connects, ctl, policy  # noqa: E402
from test_forwarding import Topology, Vleafd, check_ping, check_tcp  # noqa: E402

# A bridge domain without access ports gives a VNI without another VRF's FIB memory.
EXTRA_CONFIG = """
bridge_domains:
  - {vni: 100}

vxlan:
  source: 10.0.9.9
  vni_queues:
    - {vni: 100, queue: 0}
"""
NO_FLOW_API = "validate: Function not implemented"


class OffloadVleafd(Vleafd):
    def __init__(self, *args):
        super().__init__(*args)
        with open(self.config) as f:
            text = f.read()
        # p1 is the second port of the demo: its block ends at its `promiscuous: true`.
        p1 = text.index("- name: p1")
        end = text.index("promiscuous: true", p1) + len("promiscuous: true")
        text = text[:end] + "\n    offload: false" + text[end:]
        with open(self.config, "w") as f:
            f.write(text + EXTRA_CONFIG)


def offload(d):
    return {p["port"]: p for p in json.loads(ctl(d, "show", "offload").stdout)}


def rules_of(port):
    return {(r["kind"], r["id"]): r for r in port["rules"]}


def check_vxlan_steering(d):
    ports = offload(d)
    p0, p1 = ports["p0"], ports["p1"]
    expect(p0["offload"] == "on" and p1["offload"] == "off", f"knobs {p0['offload']} {p1['offload']}")
    steer = rules_of(p0)[("vxlan-queue", 100)]
    expect(steer["state"] == "software" and steer["reason"].startswith(NO_FLOW_API),
           f"p0 VNI 100: {steer}")
    expect(p0["attempts"] == 1 and p0["offloaded"] == 0 and p0["fallbacks"]["no_flow_api"] == 1,
           f"p0 counters {p0}")
    off = rules_of(p1)[("vxlan-queue", 100)]
    expect(off["reason"] == "offload is off on this port", f"p1 VNI 100: {off}")
    expect(p1["attempts"] == 0 and p1["fallbacks"]["disabled"] == 1, f"p1 counters {p1}")


def check_fallback_still_drops(d, topo):
    expect(connects(topo, "10.0.2.2", BLOCKED), "port open before any ACL")
    ctl(d, "acl", "add", "policy=h1-in", "interface=h1", "direction=in", "dst=10.0.2.0/24",
        "proto=tcp", f"dport={BLOCKED}", "action=deny")
    ctl(d, "acl", "add", "policy=h1-in", "dst=fd00:2::/64", "action=deny", "priority=9")
    p0 = offload(d)["p0"]
    deny = rules_of(p0)[("acl-drop", 1)]
    expect(deny["owner"] == "h1-in" and deny["state"] == "software"
           and deny["reason"].startswith(NO_FLOW_API), f"rule 1: {deny}")
    nd = rules_of(p0)[("acl-drop", 2)]
    expect(nd["reason"] == "could match IPv6 neighbor discovery, which goes to the host unfiltered",
           f"rule 2: {nd}")
    expect(p0["attempts"] == 2 and p0["fallbacks"]["no_flow_api"] == 2
           and p0["fallbacks"]["rule"] == 1, f"p0 counters {p0}")
    expect(not [r for r in offload(d)["p1"]["rules"] if r["kind"] == "acl-drop"],
           "p1 got rules of h1's policy")
    # The IPv6 rule would block h2 altogether: drop it, then see the software ACL work.
    ctl(d, "acl", "del", "policy=h1-in", "id=2")
    before = acl_deny_drops(d)
    expect(not connects(topo, "10.0.2.2", BLOCKED), f"TCP port {BLOCKED} open despite the deny rule")
    check_ping(topo.h1, "10.0.2.2", count=3)
    check_tcp(topo, "10.0.2.2", 1 << 20, OPEN)
    hits = {r["id"]: r["hits"] for r in policy(d, "h1-in")["rules"]}
    expect(hits[1] >= 1, f"rule hits {hits}")
    expect(acl_deny_drops(d) - before >= hits[1], f"acl_deny grew by {acl_deny_drops(d) - before}")
    expect(set(rules_of(offload(d)["p0"])) == {("vxlan-queue", 100), ("acl-drop", 1)},
           f"p0 rules after deleting rule 2: {sorted(rules_of(offload(d)['p0']))}")


def check_policy_deleted(d, topo):
    ctl(d, "acl", "del", "policy=h1-in")
    expect(set(rules_of(offload(d)["p0"])) == {("vxlan-queue", 100)},
           f"p0 rules left: {sorted(rules_of(offload(d)['p0']))}")
    expect(connects(topo, "10.0.2.2", BLOCKED), "port still blocked after the policy was deleted")


def check_text_output(d):
    text = run([d.ctl_binary, "-s", d.socket, "show", "offload"], timeout=30).stdout
    expect("vxlan-queue" in text and "no_flow_api" in text and "offload is off on this port" in text,
           f"vleafctl show offload:\n{text}")


def scenario(lab, check):
    topo = Topology(lab)
    d = OffloadVleafd(lab, topo, os.environ["VLEAFD"], os.environ["VLEAFCTL"])
    d.start()
    check("ping h1 -> h2 (neighbors resolved)", check_ping, topo.h1, "10.0.2.2")
    check("VXLAN steering: no_flow_api on p0, disabled on p1", check_vxlan_steering, d)
    check("ACL deny rule falls back on p0 and the software ACL drops", check_fallback_still_drops,
          d, topo)
    check("deleting the policy takes its rules out", check_policy_deleted, d, topo)
    check("vleafctl renders show offload", check_text_output, d)
    if check.failed:
        print(f"vleafd log:\n{d.proc.log()[-6000:]}", flush=True)


def main(argv):
    return run_lab(argv, __doc__, "offload", 200, scenario, binaries=("VLEAFD", "VLEAFCTL"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
