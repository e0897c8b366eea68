#!/usr/bin/python3
"""Many peers: P raw iBGP speakers (dynamic neighbors from 10.8.0.0/16, like Calico
nodes) each announcing R distinct /24s to one vleaf-bgpd, then held for a while to see
that no session is lost (hold time 30 s, keepalives every 10 s from the peers).

  ns ex (P addresses 10.8.1.1...) ── veth ── ns vl (vleaf-bgpd 10.8.0.1)

usage: bgp_peers.py VLEAF_BGPD [--peers 500] [--routes 1000] [--hold-for 45]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration", "lib"))
from bgplab import Lab, Vleaf, link, wait_for  # noqa: E402

PEERS = """\
import os, socket, struct, sys, threading, time
sys.path.insert(0, {lib!r})
import rawbgp
P, R = int(sys.argv[1]), int(sys.argv[2])

def addr(i):
    return f"10.8.{{1 + i // 250}}.{{1 + i % 250}}"

def run(i):
    src = addr(i)
    attrs = rawbgp.origin(0) + rawbgp.attr(0x40, 2, b"") + rawbgp.next_hop(src) + rawbgp.attr(0x40, 5, struct.pack("!I", 100))
    msgs, batch = [], []
    for k in range(R):
        a = (12 << 24) + (i * R + k) * 256
        batch.append(f"{{a >> 24}}.{{a >> 16 & 255}}.{{a >> 8 & 255}}.0/24")
        if len(batch) == 900 or k == R - 1:
            msgs.append(rawbgp.update(attrs, batch))
            batch = []
    while True:
        try:
            sp = rawbgp.Speaker("10.8.0.1", source=src, timeout=60)
            sp.handshake(65001, src)
            break
        except OSError:
            time.sleep(1)
    sp.send(b"".join(msgs))
    sp.sock.settimeout(10)
    while True:
        try:
            if sp.recv() is None:
                print(f"lost {{src}}", flush=True)
                return
        except socket.timeout:
            pass
        sp.send(rawbgp.keepalive())

for i in range(P):
    threading.Thread(target=run, args=(i,), daemon=True).start()
print("started", flush=True)
while True:
    time.sleep(60)
"""


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vleaf_bgpd")
    ap.add_argument("--peers", type=int, default=500)
    ap.add_argument("--routes", type=int, default=1000)
    ap.add_argument("--hold-for", type=int, default=45)
    args = ap.parse_args()
    os.environ["VLEAF_BGPD"] = os.path.abspath(args.vleaf_bgpd)
    P, R = args.peers, args.routes
    with Lab("peers", deadline=1200) as lab:
        vl, ex = lab.netns("vl"), lab.netns("ex")
        _, dev = link(lab, vl, ["10.8.0.1/16"], ex, [])
        # One address per peer; `ip -batch` keeps this quick.
        cmds = "".join(f"addr add 10.8.{1 + i // 250}.{1 + i % 250}/16 dev {dev}\n"
                       for i in range(P))
        batch = lab.write("addrs.batch", cmds)
        ex.run(["ip", "-batch", batch])
        v = Vleaf(lab, vl, """bgp:
  asn: 65001
  router_id: 10.8.0.1
  peers: [{range: 10.8.0.0/16, remote_as: 65001, timers: {hold: 30}}]
""")
        base = rss_kb(v.proc.pid)
        script = lab.write("peers.py", PEERS.format(lib=os.path.join(HERE, "..", "..", "tests",
                                                                     "integration", "lib")))
        t0 = time.monotonic()
        inj = ex.popen(["/usr/bin/python3", script, str(P), str(R)], "peers")

        def summary():
            return v.query("show bgp summary")

        def all_up():
            s = summary()
            return sum(p["state"] == "Established" for p in s["peers"]) == P
        wait_for(all_up, 600, f"{P} sessions Established", interval=1)
        t_up = time.monotonic() - t0
        wait_for(lambda: summary()["rib"]["ipv4-unicast"] == P * R, 600,
                 f"{P * R} prefixes", interval=0.5)
        t_rib = time.monotonic() - t0
        print(f"{P} peers Established after {t_up:.1f} s; {P * R} prefixes after {t_rib:.1f} s",
              flush=True)
        time.sleep(args.hold_for)
        s = summary()
        up = sum(p["state"] == "Established" for p in s["peers"])
        nb = v.query("show bgp neighbors")
        dropped = sum(n["counters"]["dropped"] for n in nb)
        lost = inj.log().count("lost")
        print(f"after {args.hold_for} s more: {up}/{P} Established, {dropped} sessions dropped, "
              f"{lost} lost on the peers' side, RIB {s['rib']['ipv4-unicast']} prefixes, "
              f"vleaf RSS {rss_kb(v.proc.pid) // 1024} MB ({(rss_kb(v.proc.pid) - base) * 1024 // (P * R)} "
              f"B per path incl. {P} sessions)", flush=True)
        return 0 if up == P and dropped == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
