#!/usr/bin/python3
"""Packets and routes for the system benchmark, the same for every forwarder.

Writes into OUTDIR:
  traffic.pcap     one ARP request from the next hop (so vleafd learns its MAC, as a real
                   router would from the neighbor's own traffic), then 64-byte IPv4/UDP
                   frames to distinct destinations spread over the routes
  l3fwd_v4.cfg     the routes as l3fwd rules (all out of port 0)
  l3fwd_v6.cfg     one IPv6 rule (l3fwd only reads its rule files when given both)
  routes.yaml      the same routes as vleafd config entries via the next hop
"""
import argparse
import ipaddress
import random
import sys

from scapy.all import ARP, IP, UDP, Ether, Raw, wrpcap

# net_pcap's port MAC (02:70:63:61:70 is "pcap"): frames addressed to the port itself.
PORT_MAC = "02:70:63:61:70:00"
PEER_MAC = "02:00:00:00:00:02"
OUR_IP = "10.0.0.1"
PEER_IP = "10.0.0.2"
# RFC 2544 benchmarking space, which l3fwd's own default table also uses.
ROUTE_SPACE = ipaddress.ip_network("198.18.0.0/15")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outdir")
    ap.add_argument("--routes", type=int, default=512, help="number of /24 routes (max 512)")
    ap.add_argument("--packets", type=int, default=1024, help="IPv4 frames in the pcap")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    subnets = list(ROUTE_SPACE.subnets(new_prefix=24))
    if not 1 <= a.routes <= len(subnets):
        sys.exit(f"make_traffic.py: --routes must be 1..{len(subnets)}, got {a.routes}")
    rng = random.Random(a.seed)
    routes = rng.sample(subnets, a.routes)

    frames = [Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
              / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER_IP, hwdst="00:00:00:00:00:00", pdst=OUR_IP)]
    for i in range(a.packets):
        net = routes[i % len(routes)]
        dst = net.network_address + rng.randrange(1, 255)
        # 14 + 20 + 8 + 18 = 60 bytes, 64 on the wire with the FCS.
        frames.append(Ether(src=PEER_MAC, dst=PORT_MAC)
                      / IP(src="10.0.0.2", dst=str(dst), ttl=64)
                      / UDP(sport=1024 + (i % 4096), dport=5000)
                      / Raw(b"\x00" * 18))
    wrpcap(f"{a.outdir}/traffic.pcap", frames)

    with open(f"{a.outdir}/l3fwd_v4.cfg", "w") as f:
        f.writelines(f"R{net} 0\n" for net in routes)
    with open(f"{a.outdir}/l3fwd_v6.cfg", "w") as f:
        f.write("R2001:db8::/32 0\n")
    with open(f"{a.outdir}/routes.yaml", "w") as f:
        f.writelines(f"  - {{prefix: {net}, via: [{PEER_IP}]}}\n" for net in routes)


if __name__ == "__main__":
    main()
