#!/usr/bin/python3
"""Bulk BGP load: N IPv4 prefixes from one ExaBGP peer into vleaf-bgpd and, in the same
run, into BIRD 2, GoBGP and FRR bgpd, each in its own namespace on one bridge.

  ns ex (ExaBGP 10.7.0.9, AS 65100) ── bridge ── vleaf 10.7.0.1 / BIRD .2 / GoBGP .3 / FRR .4

ExaBGP queues every announcement before its sessions come up (a feed process prints
them in batches of 500 prefixes) and then sends the same table to every receiver.
Reported per receiver: seconds from ExaBGP's start to the full table (polled every
0.2 s), and the RSS growth per path. For vleaf also its own figure: first to last
UPDATE received, the table being complete when the last one is processed.
The injector is the same for everyone: when all receivers finish together, the run was
injector-bound.

With --injector raw, bgp_inject.py replaces ExaBGP: the table is encoded beforehand
and written to every receiver at once, so that the receivers, not the injector, set
the pace; its own sending time is printed too.

usage: bgp_load.py VLEAF_BGPD [--prefixes N] [--only vleaf,bird,gobgp,frr]
                   [--injector exabgp|raw]
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration", "lib"))
from bgplab import Lab, Vleaf, bird, frr_bgpd, gobgpd, wait_for  # noqa: E402

FEED = """\
import sys, time
n = int(sys.argv[1])
batch = []
for i in range(n):
    a = 0x0b000000 + i * 256  # 11.0.0.0/24 onwards, /24s
    batch.append(f"{a >> 24}.{a >> 16 & 255}.{a >> 8 & 255}.0/24")
    if len(batch) == 500 or i == n - 1:
        sys.stdout.write("announce attributes next-hop self origin igp nlri " + " ".join(batch) + "\\n")
        batch = []
sys.stdout.flush()
while True:
    time.sleep(60)
"""

RECEIVERS = {"vleaf": ("10.7.0.1", 65001), "bird": ("10.7.0.2", 65002),
             "gobgp": ("10.7.0.3", 65003), "frr": ("10.7.0.4", 65004)}


def exabgp_conf(feed, receivers):
    out = [f"process feed {{\n  run /usr/bin/python3 {feed} {{n}};\n  encoder text;\n}}\n"]
    for name in receivers:
        addr, asn = RECEIVERS[name]
        out.append(f"""neighbor {addr} {{
  router-id 10.7.0.9;
  local-address 10.7.0.9;
  local-as 65100;
  peer-as {asn};
  hold-time 180;
  family {{ ipv4 unicast; }}
  api {{ processes [ feed ]; }}
}}
""")
    return "".join(out)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """User + system CPU time of a process (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pid(proc, name):
    """The pid of `name` under `ip netns exec` (which execs, so usually the same pid)."""
    out = subprocess.run(["pgrep", "-f", "-P", str(proc.pid), name], capture_output=True,
                         text=True).stdout.split()
    return int(out[0]) if out else proc.pid


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vleaf_bgpd")
    ap.add_argument("--prefixes", type=int, default=1000000)
    ap.add_argument("--only", default="vleaf,bird,gobgp,frr")
    ap.add_argument("--injector", choices=["exabgp", "raw"], default="exabgp")
    ap.add_argument("--perf", metavar="FILE",
                    help="perf record -g vleaf-bgpd while it takes the table, into FILE")
    args = ap.parse_args()
    os.environ["VLEAF_BGPD"] = os.path.abspath(args.vleaf_bgpd)
    names = args.only.split(",")
    n = args.prefixes
    with Lab("load", deadline=1800) as lab:
        sw = lab.netns("sw")
        sw.ip("link", "add", "br0", "type", "bridge")
        sw.ip("link", "set", "br0", "up")
        ns = {}
        for i, short in enumerate(["ex"] + names):
            ns[short] = lab.netns(short)
            lab.veth(ns[short], "eth0", sw, f"p{i}")
            sw.ip("link", "set", f"p{i}", "master", "br0")
            addr = "10.7.0.9" if short == "ex" else RECEIVERS[short][0]
            ns[short].add_addr("eth0", f"{addr}/24")
        counts, pids = {}, {}
        if "vleaf" in names:
            v = Vleaf(lab, ns["vleaf"], f"""bgp:
  asn: 65001
  router_id: 10.7.0.1
  peers: [{{address: 10.7.0.9, remote_as: 65100, passive: true, timers: {{hold: 180}}}}]
""")
            pids["vleaf"] = v.proc.pid
            counts["vleaf"] = lambda: v.query("show bgp summary")["rib"]["ipv4-unicast"]
        if "bird" in names:
            birdc = bird(lab, ns["bird"], "bird", """router id 10.7.0.2;
protocol device { }
protocol bgp ex { local 10.7.0.2 as 65002; neighbor 10.7.0.9 as 65100; hold time 180;
  ipv4 { import all; export none; }; }
""")
            pids["bird"] = birdc.proc.pid

            def bird_count():
                for line in birdc("show route count").splitlines():
                    if "routes for" in line:
                        return int(line.split()[0])
                return 0
            counts["bird"] = bird_count
        if "gobgp" in names:
            gobgp = gobgpd(lab, ns["gobgp"], "gobgp", """[global.config]
  as = 65003
  router-id = "10.7.0.3"
  local-address-list = ["10.7.0.3"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.7.0.9"
    peer-as = 65100
  [neighbors.timers.config]
    hold-time = 180
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
""", 50051)
            pids["gobgp"] = gobgp.proc.pid
            counts["gobgp"] = lambda: int(gobgp("global", "rib", "summary", "-a", "ipv4",
                                                as_json=False).split("Destination:")[1]
                                          .split(",")[0])
        if "frr" in names:
            vtysh = frr_bgpd(lab, ns["frr"], "frr", """frr defaults datacenter
router bgp 65004
 bgp router-id 10.7.0.4
 no bgp ebgp-requires-policy
 neighbor 10.7.0.9 remote-as 65100
 neighbor 10.7.0.9 timers 60 180
""")
            pids["frr"] = vtysh.proc.pid
            counts["frr"] = lambda: vtysh("show bgp summary json")["ipv4Unicast"]["peers"][
                "10.7.0.9"]["pfxRcd"]
        time.sleep(1)
        base = {k: rss_kb(p) for k, p in pids.items()}
        cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
        perf = None
        if args.perf and "vleaf" in names:
            perf = subprocess.Popen(["perf", "record", "-g", "-q", "-o", args.perf, "-p",
                                     str(pids["vleaf"])])
            time.sleep(1)
        if args.injector == "exabgp":
            feed = lab.write("feed.py", FEED)
            conf = lab.write("exabgp.conf", exabgp_conf(feed, names).replace("{n}", str(n)))
            env = ("env exabgp.daemon.user=root exabgp.log.level=WARNING "
                   "exabgp.reactor.speed=0.01 exabgp.api.ack=false").split()
            t0 = time.monotonic()
            inj = ns["ex"].popen(env + ["exabgp", conf], "exabgp")
        else:
            targets = [f"{RECEIVERS[k][0]}:{RECEIVERS[k][1]}" for k in names]
            inj = ns["ex"].popen(["/usr/bin/python3", os.path.join(HERE, "bgp_inject.py"),
                                  str(n), "10.7.0.9"] + targets, "inject")
            wait_for(lambda: "encoded" in inj.log(), 300, "the injector to encode the table")
            t0 = time.monotonic()
        done, cpu = {}, {}
        while len(done) < len(names) and time.monotonic() - t0 < 1500:
            for k in names:
                if k in done:
                    continue
                try:
                    c = counts[k]()
                except Exception:
                    c = 0
                if c >= n:
                    done[k] = time.monotonic() - t0
                    cpu[k] = cpu_seconds(pids[k]) - cpu0[k]
                    print(f"{k}: {c} prefixes after {done[k]:.1f} s", flush=True)
            time.sleep(0.2)
        if perf:
            perf.send_signal(2)
            perf.wait()
        time.sleep(2)  # let allocators settle before reading RSS
        print(f"\n{n} IPv4 prefixes from {args.injector}, same run:")
        if args.injector == "raw":
            for line in inj.log().splitlines():
                if line.startswith("sent"):
                    _, addr, secs = line.split()
                    who = [k for k in names if RECEIVERS[k][0] == addr][0]
                    print(f"injector: whole table written to {who} in {float(secs):.2f} s")
        print(f"{'receiver':10} {'full table (s)':>15} {'CPU (s)':>8} {'RSS growth/path (B)':>20}")
        for k in names:
            grow = (rss_kb(pids[k]) - base[k]) * 1024 / n
            t = f"{done[k]:.1f}" if k in done else "not reached"
            c = f"{cpu[k]:.2f}" if k in cpu else "-"
            print(f"{k:10} {t:>15} {c:>8} {grow:>20.0f}")
        if "vleaf" in names:
            nb = v.query("show bgp neighbors", address="10.7.0.9")[0]
            print(f"vleaf: first to last UPDATE {nb.get('update_span_ms', 0) / 1000:.2f} s, "
                  f"{nb['counters']['updates_in']} UPDATEs, "
                  f"RSS {rss_kb(pids['vleaf']) // 1024} MB")


if __name__ == "__main__":
    main()
