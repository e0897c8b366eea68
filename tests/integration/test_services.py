#!/usr/bin/python3
"""Service load balancing by the real vleafd, one worker, in the services lab
(lib/services_lab.py: a client, vleafd, three echo backends behind VIP 10.96.0.10:8080).
The checks: connections spread over the backends; a backend removed through `vleafctl
backend del` keeps its established connections (data still echoes intact) while new
connections avoid it; a backend whose server stops is marked unhealthy by the health
checks and avoided; the service API (`service add|show|del`, errors naming the bad
field) and the LB counters.

usage: test_services.py VLEAFD VLEAFCTL
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect  # noqa: E402
from netns import wait_for  # noqa: E402
from services_lab import BACKENDS, BPORT, VIP, VPORT, run_service_lab  # noqa: E402


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


def checks(s, check):
    state = {}
    check("service web from the configuration, announced", check_configured, s)
    check("24 connections spread over the backends, echo intact", check_spread, s, state)
    check("backend del: established connections survive, new ones avoid it",
          check_removed_backend_keeps_flows, s, state)
    check("TCP health checks mark a stopped backend down and up again", check_health, s, state)
    check("service add/show/del and backend add through vleafctl; errors name the field", check_api, s)
    check("LB counters and no LB drops", check_counters, s)


if __name__ == "__main__":
    sys.exit(run_service_lab(sys.argv, __doc__, "svc", checks))
