#!/usr/bin/python3
"""RIB -> FIB end to end: GoBGP peers announce, move and withdraw routes while h1 sends
a continuous UDP stream through the real vleafd, and the stream follows within a bound.

  h1 (10.0.1.2) ── p0 ┐                      ┌ p1 ── r2 (10.0.2.2, gobgpd AS 65002)
                      [ns vl: vleafd + BGP]  ┤
                                             └ p2 ── r3 (10.0.3.2, gobgpd AS 65002)
                                             (bulk: vleaf-bgpd AS 65003 on p2 as 10.0.3.3)

The BGP sessions reach vleafd's embedded speaker through its own dataplane and tap
(the exception path). 10.200.0.0/24 is announced by both routers; r2 wins (lower router
id), so the stream goes to r2, moves to r3 when r2 withdraws, comes back, moves when
r2's gobgpd is killed (the session drops: its routes must leave the FIB within 1 s),
and stops (no_route) when r3 withdraws too. vleafd runs with a 64-message route ring:
a bulk peer announcing 20000 prefixes overflows it, which must end in a resync with
the FIB equal to the RIB.

usage: test_fib_bgp.py VLEAFD VLEAFCTL VLEAF_BGPD
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from bgplab import expect, gobgpd, popen_vleafd, run_lab, vleafd_ports  # noqa: E402
from netns import run, wait_for  # noqa: E402

PREFIX = "10.200.0.0/24"
DST = "10.200.0.1"
FOLLOW_BOUND = 2.0  # s from the peer's command to the stream arriving at the new router
WITHDRAW_BOUND = 1.0  # s from a session loss to its routes leaving the FIB
BULK = 20000

VLEAFD_CONFIG = """\
log_level: info
mempool: {{mbufs: 16383, cache: 256}}
ports:
{ports}
interfaces:
{interfaces}
fib: {{ring_size: 64, backlog_limit: 2000}}
bgp:
  asn: 65001
  router_id: 10.0.1.1
  listen_address: 0.0.0.0
  peers:
    - {{address: 10.0.2.2, remote_as: 65002, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
    - {{address: 10.0.3.2, remote_as: 65002, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
    - {{address: 10.0.3.3, remote_as: 65003, timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
api: {{socket: {socket}}}
"""

GOBGP = """\
[global.config]
  as = 65002
  router-id = "{addr}"
  local-address-list = ["{addr}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{gw}"
    peer-as = 65001
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"""

# Counts the stream's UDP datagrams; the count, the highest sequence number seen and when
# the stream last began arriving (the first datagram after a 50 ms gap, monotonic clock,
# which all namespaces share) are rewritten to a file every 20 ms for the test to poll.
RECEIVER = r"""
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9000))
s.settimeout(0.05)
n, last, began, prev = 0, -1, 0.0, 0.0
out = sys.argv[1]
t = time.monotonic()
while True:
    try:
        data = s.recv(64)
        now = time.monotonic()
        if now - prev > 0.05:
            began = now
        prev = now
        n += 1
        last = max(last, int(data.split()[0]))
    except socket.timeout:
        pass
    if time.monotonic() - t > 0.02:
        with open(out + ".tmp", "w") as f:
            f.write(f"{n} {last} {began}\n")
        os.replace(out + ".tmp", out)
        t = time.monotonic()
"""

SENDER = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
seq = 0
while True:
    s.sendto(f"{seq} stream".encode(), (sys.argv[1], 9000))
    seq += 1
    time.sleep(0.001)
"""


class Receiver:
    def __init__(self, lab, ns, name):
        self.file = lab.path(f"{name}.count")
        script = lab.write(f"{name}_rx.py", RECEIVER)
        self.proc = ns.popen(["/usr/bin/python3", script, self.file], f"{name}_rx")

    def fields(self):
        try:
            with open(self.file) as f:
                n, _, began = f.read().split()
                return int(n), float(began)
        except (OSError, ValueError):
            return 0, 0.0

    def count(self):
        return self.fields()[0]

    def began(self):
        """When the stream last started arriving (time.monotonic())."""
        return self.fields()[1]


class Setup:
    def __init__(self, lab, vleafd, vleafctl, vleaf_bgpd):
        self.lab, self.ctl = lab, vleafctl
        self.vl, self.h1 = lab.netns("vl"), lab.netns("h1")
        self.r2, self.r3 = lab.netns("r2"), lab.netns("r3")
        hosts = ((self.h1, 1), (self.r2, 2), (self.r3, 3))
        ports, ifs = vleafd_ports(lab, self.vl, hosts)
        for ns, n in hosts:
            ns.add_addr("eth0", f"10.0.{n}.2/24")
        self.r3.add_addr("eth0", "10.0.3.3/24")  # the bulk peer's address
        self.h1.add_route("default", via="10.0.1.1")
        for r in (self.r2, self.r3):
            r.add_addr("lo", f"{DST}/32")  # the stream's destination exists on both
            r.sysctl("net.ipv4.conf.all.rp_filter", "0")
        self.socket = lab.path("vleafd.sock")
        cfg = lab.write("vleafd.yaml", VLEAFD_CONFIG.format(ports=ports, interfaces=ifs, socket=self.socket))
        self.vleafd = popen_vleafd(lab, self.vl, vleafd, cfg)
        wait_for(lambda: self.alive() and os.path.exists(self.socket) and self.vl.link_exists("vl-tap2"),
                 30, "vleafd API and taps")
        self.gobgp = {}
        for port, (name, ns, n) in enumerate((("r2", self.r2, 2), ("r3", self.r3, 3))):
            ns.add_route("10.0.1.0/24", via=f"10.0.{n}.1")
            toml = GOBGP.format(addr=f"10.0.{n}.2", gw=f"10.0.{n}.1")
            self.gobgp[name] = gobgpd(lab, ns, name, toml, 50051 + port)
        self.vleaf_bgpd = vleaf_bgpd
        self.rx = {"r2": Receiver(lab, self.r2, "r2"), "r3": Receiver(lab, self.r3, "r3")}
        sender = lab.write("tx.py", SENDER)
        self.sender = self.h1.popen(["/usr/bin/python3", sender, DST], "h1_tx")

    def alive(self):
        if self.vleafd.poll() is not None:
            raise AssertionError(f"vleafd exited {self.vleafd.poll()}:\n{self.vleafd.log()[-3000:]}")
        return True

    def show(self, *words):
        self.alive()
        out = run([self.ctl, "-s", self.socket, "-j", *words], timeout=10).stdout
        return json.loads(out)

    def bgp_routes(self):
        """{prefix: [interface of each next hop]} of the BGP routes in vleafd's FIB."""
        return {r["prefix"]: sorted(h["via"] for h in r["nexthops"])
                for r in self.show("show", "routes") if r["type"] == "bgp"}

    def established(self, addr):
        return any(p["neighbor"] == addr and p["state"] == "Established"
                   for p in self.show("show", "bgp", "summary")["peers"])


def cpus(allowed):
    """The CPUs of a Cpus_allowed_list ("0-2,5")."""
    out = set()
    for part in allowed.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def arriving_at(s, name, window=0.3):
    before = s.rx[name].count()
    time.sleep(window)
    return s.rx[name].count() - before > window * 200  # the stream is ~1000 packets/s


def rib(s, router, verb):
    """`gobgp global rib add|del PREFIX` on `router`; returns when it started (the CLI
    itself takes tens of ms before gobgpd sends the UPDATE: printed)."""
    t = time.monotonic()
    s.gobgp[router]("global", "rib", verb, PREFIX, as_json=False)
    print(f"     gobgp {router} rib {verb}: the CLI took {(time.monotonic() - t) * 1000:.0f} ms",
          flush=True)
    return t


def follows(s, name, what, since):
    other = "r3" if name == "r2" else "r2"
    wait_for(lambda: arriving_at(s, name, 0.1), FOLLOW_BOUND + 5, f"stream at {name} after {what}")
    # From the first datagram the router got, not from when the polling here noticed.
    took = s.rx[name].began() - since
    print(f"     stream reached {name} {took * 1000:.0f} ms after {what}", flush=True)
    expect(took > 0, f"{what}: the stream was arriving at {name} before it")
    expect(took <= FOLLOW_BOUND, f"{what}: stream took {took:.2f}s to reach {name} (bound {FOLLOW_BOUND}s)")
    expect(not arriving_at(s, other), f"{what}: stream still arrives at {other}")


def scenario(lab, check):
    s = Setup(lab, *(os.environ[b] for b in ("VLEAFD", "VLEAFCTL", "VLEAF_BGPD")))
    check("sessions to both GoBGP routers Established through the dataplane and tap",
          lambda: wait_for(lambda: s.established("10.0.2.2") and s.established("10.0.3.2"), 30,
                           "sessions"))
    t = rib(s, "r3", "add")
    check("r3's route: the stream goes to r3", follows, s, "r3", "r3 announces", t)
    t = rib(s, "r2", "add")
    check("r2's better route: the stream moves to r2", follows, s, "r2", "r2 announces", t)
    check("fib holds the BGP route through r2",
          lambda: expect(s.bgp_routes().get(PREFIX) == ["10.0.2.2"], f"{s.bgp_routes()}"))
    t = rib(s, "r2", "del")
    check("r2 withdraws: the stream moves to r3", follows, s, "r3", "r2 withdraws", t)
    t = rib(s, "r2", "add")
    check("r2 announces again: the stream comes back", follows, s, "r2", "r2 re-announces", t)

    def peer_killed():
        # The clock first: read after the signal, it can already be later than the
        # stream's first datagram at r3 when this process is scheduled out in between.
        t = time.monotonic()
        s.gobgp["r2"].proc.signal(signal.SIGKILL)  # the kernel resets the TCP session
        wait_for(lambda: s.bgp_routes().get(PREFIX) == ["10.0.3.2"], WITHDRAW_BOUND + 5,
                 "FIB to lose r2's route", interval=0.02)
        took = time.monotonic() - t
        print(f"     r2's route left the FIB {took:.2f}s after its gobgpd was killed", flush=True)
        expect(took <= WITHDRAW_BOUND, f"took {took:.2f}s (bound {WITHDRAW_BOUND}s)")
        follows(s, "r3", "r2's session dropped", t)
    check("r2's session drops (TCP reset): its routes leave the FIB within 1 s", peer_killed)

    def withdrawn():
        stats = s.show("show", "stats")["drops"]["no_route"]
        s.gobgp["r3"]("global", "rib", "del", PREFIX, as_json=False)
        wait_for(lambda: PREFIX not in s.bgp_routes(), FOLLOW_BOUND, "route to leave the FIB")
        expect(not arriving_at(s, "r3") and not arriving_at(s, "r2"), "stream still delivered")
        expect(s.show("show", "stats")["drops"]["no_route"] > stats, "no no_route drops counted")
    check("r3 withdraws too: the stream is dropped as no_route", withdrawn)

    def bulk_resync():
        before = s.show("show", "fib", "summary")["bgp"]
        announce = "\n".join(f"    - 10.{64 + k // 256}.{k % 256}.0/24" for k in range(BULK))
        conf = lab.write("bulk.yaml", f"""\
bgp:
  asn: 65003
  router_id: 10.0.3.3
  listen_address: ""
  peers:
    - {{address: 10.0.3.1, remote_as: 65001, update_source: 10.0.3.3,
       timers: {{hold: 9, keepalive: 3, connect_retry: 1}}}}
  announce:
{announce}
""")
        bulk = s.r3.popen([s.vleaf_bgpd, "-c", conf, "-s", lab.path("bulk.sock")], "bulk")
        wait_for(lambda: bulk.poll() is None and s.established("10.0.3.3"), 30, "bulk session")
        wait_for(lambda: s.show("show", "fib", "summary")["bgp"]["routes"] == BULK, 30,
                 f"{BULK} BGP routes in the FIB")
        after = s.show("show", "fib", "summary")["bgp"]
        print(f"     fib summary: {json.dumps(after)}", flush=True)
        expect(after["producer"]["resyncs_started"] > before["producer"]["resyncs_started"],
               "the bulk feed did not overflow the 64-message ring into a resync")
        expect(after["resyncs"] > before["resyncs"], "the writer completed no resync")
        rib = {r["prefix"]: r["paths"][0]["next_hop"]
               for r in s.show("show", "bgp", "routes", "ipv4")}
        fib = {p: tuple(hops) for p, hops in s.bgp_routes().items()}
        want = {p: (nh,) for p, nh in rib.items()}
        expect(fib == want, f"FIB != RIB: {len(fib)} vs {len(want)} prefixes, e.g. "
               f"{sorted(set(fib.items()) ^ set(want.items()))[:3]}")
        bulk.signal(signal.SIGTERM)  # Cease NOTIFICATION: all 20000 leave at once
        t = time.monotonic()
        wait_for(lambda: s.show("show", "fib", "summary")["bgp"]["routes"] == 0, 10,
                 "bulk routes to leave", interval=0.05)
        print(f"     {BULK} routes left the FIB {time.monotonic() - t:.2f}s after the NOTIFICATION",
              flush=True)
    check(f"{BULK} prefixes through a 64-message ring: resync, FIB == RIB", bulk_resync)

    def placement():
        threads = {}  # tid: (name, allowed CPUs)
        for tid in os.listdir(f"/proc/{s.vleafd.pid}/task"):
            with open(f"/proc/{s.vleafd.pid}/task/{tid}/status") as f:
                st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            threads[int(tid)] = (st["Name"], cpus(st["Cpus_allowed_list"]))
        workers = {t: c for t, (n, c) in threads.items() if n.startswith(("rte-worker", "lcore-worker"))}
        expect(len(workers) == 1, f"one worker thread expected: {threads}")
        wtid, wcpus = next(iter(workers.items()))
        names = sorted(n for n, _ in threads.values())
        expect("vleaf-bgp" in names, f"no BGP thread: {names}")
        for tid, (name, c) in threads.items():
            expect(tid == wtid or not c & wcpus,
                   f"{name} may run on the worker's CPUs {sorted(wcpus)}: {sorted(c)}")
        expect("shares a CPU" not in s.vleafd.log(), "placement warning with -l 0,1")
        w = s.show("show", "stats")["workers"][0]
        with open(f"/proc/{s.vleafd.pid}/task/{wtid}/schedstat") as f:
            scheduled_in = int(f.read().split()[2])
        expect(0 < w["times_scheduled_in"] <= scheduled_in and w["cpu_wait_ms"] >= 0,
               f"show stats worker scheduling: {w}")
        print(f"     worker thread {wtid} alone on CPUs {sorted(wcpus)}; waited for them "
              f"{w['cpu_wait_ms']:.1f} ms in {w['times_scheduled_in']} slices", flush=True)
    check("the worker's CPU is no other vleafd thread's (control, BGP, EAL); show stats has "
          "its run-queue wait", placement)

    def summary_shape():
        fs = s.show("show", "fib", "summary")
        for key in ("vrfs", "nexthops", "ecmp_groups", "dataplane", "bgp"):
            expect(key in fs, f"show fib summary lacks {key}: {fs}")
        for key in ("ring_depth", "messages_applied", "resyncs", "update_lag_us", "routes"):
            expect(key in fs["bgp"], f"show fib summary .bgp lacks {key}")
        expect(fs["dataplane"]["updates_failed"] == 0, f"failed updates: {fs['dataplane']}")
        n = s.show("show", "bgp", "neighbors")
        expect(len(n) == 3, f"show bgp neighbors: {n}")
    check("show fib summary and show bgp neighbors through vleafd", summary_shape)

    def sigterm():
        s.vleafd.signal(signal.SIGTERM)
        rc = s.vleafd.wait(timeout=10)
        expect(rc == 0, f"vleafd exited {rc}:\n{s.vleafd.log()[-2000:]}")
    check("SIGTERM: vleafd with its BGP thread exits 0", sigterm)
    if check.failed:
        print(f"vleafd log:\n{s.vleafd.log()[-6000:]}", flush=True)


def main(argv):
    return run_lab(argv, __doc__, "fibbgp", 240, scenario,
                   binaries=("VLEAFD", "VLEAFCTL", "VLEAF_BGPD"))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
