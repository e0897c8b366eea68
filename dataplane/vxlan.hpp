// Stages: VXLAN decapsulation and encapsulation (RFC 7348, RFC 8365).
// Decap takes frames parse found addressed to our VTEP on the VXLAN port, checks them,
// strips the outer headers and hands the inner frame to its VNI's VRF (L3VNI, routed)
// or bridge domain (L2VNI, bridged). Parse itself takes the common case apart (outer
// IPv4, L3VNI, plain IPv4 inside: decap4_l3); this stage gets the rest. Encap prepends outer
// Ethernet, IPv4 or IPv6, UDP (source port from the inner flow hash) and VXLAN headers toward a
// remote VTEP, whose underlay next hop gives the egress port and MAC.
#pragma once

#include "dataplane/forward.hpp"

#include <rte_udp.h>

namespace vleaf::dp {

// Returns whether the frame was decapsulated.
inline bool decap_one(Burst &b, Worker &w, unsigned i, VniCache &c) {
    rte_mbuf *m = b.m[i];
    auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    bool v6 = eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
    unsigned outer = v6 ? kOuter6 : kOuter4;
    auto *udp = rte_pktmbuf_mtod_offset(m, const rte_udp_hdr *,
                                        outer - sizeof(VxlanHdr) - sizeof(rte_udp_hdr));
    if (m->data_len < outer + sizeof(rte_ether_hdr) ||
        rte_be_to_cpu_16(udp->dgram_len) <
            sizeof(rte_udp_hdr) + sizeof(VxlanHdr) + sizeof(rte_ether_hdr))
        return b.drop(i, Drop::vxlan_truncated), false;
    auto *vx = reinterpret_cast<const VxlanHdr *>(udp + 1);
    if (!(vx->flags & rte_cpu_to_be_32(kVxlanFlagI)))
        return b.drop(i, Drop::vxlan_bad_flags), false;
    uint32_t vni = rte_be_to_cpu_32(vx->vni) >> 8;
    if (vni != c.vni) c = VniCache{vni, w.ov->vni(vni)};
    uint64_t slot = c.slot;
    if (!slot) return b.drop(i, Drop::vxlan_unknown_vni), false;
    strip_outer(m, outer);
    if (slot & kVniL3) return parse_ip(b, i, m, static_cast<uint8_t>(slot)), true;
    // For learning: the outer source stays readable in the headroom until something is
    // prepended.
    b.outer_src[i] = reinterpret_cast<const uint8_t *>(eth + 1) + (v6 ? 8 : 12);
    b.outer_v6[i] = v6;
    b.to_bridge(i, static_cast<uint16_t>(slot), From::Tunnel, 0);
    return true;
}

inline void vxlan_decap(Burst &b, Worker &w) {
    if (b.nd == 0) return;
    VniCache c;
    unsigned done = 0;
    for (unsigned k = 0; k < b.nd; k++) done += decap_one(b, w, b.idxd[k], c);
    w.stats.decapsulated += done;
    b.n2in = b.n2; // only received bursts decapsulate: their whole L2 list enters
}

// RFC 7348: the outer source port carries entropy from the inner frame for ECMP.
inline uint32_t inner_hash(const rte_mbuf *m) {
    auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    uint32_t h = rte_hash_crc(eth, 12, 0);
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
        m->data_len >= sizeof(*eth) + sizeof(rte_ipv4_hdr) + 4)
        h ^= flow_hash4(reinterpret_cast<const rte_ipv4_hdr *>(eth + 1));
    else if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6) &&
             m->data_len >= sizeof(*eth) + sizeof(rte_ipv6_hdr) + 4)
        h ^= flow_hash6(reinterpret_cast<const rte_ipv6_hdr *>(eth + 1));
    return h;
}

// Encapsulates `m` toward `vtep`; returns the egress port, or false with `why` (and, for
// vxlan_mtu_exceeded, the largest inner IP packet the tunnel takes in `mtu`).
inline bool encap_one(Worker &w, rte_mbuf *m, uint16_t vtep, uint32_t vni, uint16_t &port,
                      Drop &why, uint16_t &mtu) {
    const RemoteVtep &v = w.ov->vteps()[vtep];
    uint8_t family = __atomic_load_n(&v.family, __ATOMIC_ACQUIRE);
    if (!family) return why = Drop::vxlan_no_vtep, false;
    uint32_t hash = inner_hash(m);
    uint32_t id = v.underlay;
    Nh u = nh_load(&w.fib->nexthops()[id]);
    if (u.kind == NhKind::Ecmp) u = pick_nexthop(w, id, hash);
    if (u.kind != NhKind::Forward) return why = Drop::vxlan_underlay_unresolved, false;
    const PortInfo &out = w.ports[u.port];
    bool v6 = family == 6;
    unsigned outer = v6 ? kOuter6 : kOuter4;
    uint32_t inner_len = m->pkt_len;
    uint32_t ip_len = inner_len + outer - sizeof(rte_ether_hdr);
    if (ip_len > out.mtu) {
        mtu = static_cast<uint16_t>(out.mtu - outer);
        return why = Drop::vxlan_mtu_exceeded, false;
    }
    auto *eth = reinterpret_cast<rte_ether_hdr *>(rte_pktmbuf_prepend(m, uint16_t(outer)));
    if (!eth) return why = Drop::vxlan_no_headroom, false;
    const VxlanParams &p = w.ov->params();
    rte_ether_addr_copy(&u.mac, &eth->dst_addr);
    rte_ether_addr_copy(&out.mac, &eth->src_addr);
    rte_udp_hdr *udp;
    uint16_t udp_len = static_cast<uint16_t>(inner_len + sizeof(rte_udp_hdr) + sizeof(VxlanHdr));
    if (!v6) {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
        auto *ip = reinterpret_cast<rte_ipv4_hdr *>(eth + 1);
        ip->version_ihl = RTE_IPV4_VHL_DEF;
        ip->type_of_service = 0;
        ip->total_length = rte_cpu_to_be_16(uint16_t(ip_len));
        ip->packet_id = p.df ? 0 : rte_cpu_to_be_16(w.ip_id++);
        ip->fragment_offset = p.df ? rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG) : 0;
        ip->time_to_live = p.ttl;
        ip->next_proto_id = IPPROTO_UDP;
        ip->src_addr = p.src4;
        std::memcpy(&ip->dst_addr, v.addr, 4);
        ip->hdr_checksum = 0;
        if (out.tx_ip_cksum) {
            m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
            m->l2_len = sizeof(rte_ether_hdr);
            m->l3_len = sizeof(rte_ipv4_hdr);
        } else {
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    } else {
        eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
        auto *ip = reinterpret_cast<rte_ipv6_hdr *>(eth + 1);
        ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
        ip->payload_len = rte_cpu_to_be_16(udp_len);
        ip->proto = IPPROTO_UDP;
        ip->hop_limits = p.ttl;
        std::memcpy(ip->src_addr, p.src6, 16);
        std::memcpy(ip->dst_addr, v.addr, 16);
        udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    }
    udp->src_port =
        rte_cpu_to_be_16(uint16_t(p.sport_min + ((uint64_t(hash) * p.sport_span) >> 32)));
    udp->dst_port = p.port_be;
    udp->dgram_len = rte_cpu_to_be_16(udp_len);
    udp->dgram_cksum = 0; // optional over IPv4 (RFC 7348)
    auto *vx = reinterpret_cast<VxlanHdr *>(udp + 1);
    vx->flags = rte_cpu_to_be_32(kVxlanFlagI);
    vx->vni = rte_cpu_to_be_32(vni << 8);
    if (v6) // mandatory over IPv6 for receivers that do not accept zero (RFC 6935)
        udp->dgram_cksum = rte_ipv6_udptcp_cksum(reinterpret_cast<rte_ipv6_hdr *>(eth + 1), udp);
    port = u.port;
    w.stats.encapsulated++;
    return true;
}

// An IP packet too big for its tunnel goes to the control thread, which answers its
// source with ICMP fragmentation needed or packet too big carrying `mtu` (RFC 1191,
// RFC 8201): from the gateway of its bridge domain if it was bridged (nh: bd + 1 above
// the MTU), from our address in its VRF if it was routed. IPv4 without DF and packets
// beyond the per-source rate are dropped.
inline void too_big(Burst &b, Worker &w, unsigned i, uint16_t mtu) {
    auto *eth = rte_pktmbuf_mtod(b.m[i], const rte_ether_hdr *);
    const uint8_t *src;
    unsigned len;
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(eth + 1);
        if (!(ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG)))
            return b.drop(i, Drop::vxlan_mtu_exceeded);
        src = reinterpret_cast<const uint8_t *>(&ip->src_addr);
        len = 4;
    } else if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
        src = reinterpret_cast<const rte_ipv6_hdr *>(eth + 1)->src_addr;
        len = 16;
    } else {
        return b.drop(i, Drop::vxlan_mtu_exceeded);
    }
    if (!w.allow_icmp(rte_hash_crc(src, len, 0), rte_rdtsc()))
        return b.drop(i, Drop::vxlan_mtu_exceeded);
    b.nh[i] = mtu | (b.from[i] == From::Gateway ? 0 : uint32_t(b.bd[i] + 1) << 16);
    b.punt(i, Punt::too_big);
}

inline void vxlan_encap(Burst &b, Worker &w) {
    // The outer headers go into the headroom's last cache line, untouched so far.
    for (unsigned k = 0; k < b.ne; k++)
        rte_prefetch0_write(rte_pktmbuf_mtod(b.m[b.idxe[k]], char *) - RTE_CACHE_LINE_SIZE);
    for (unsigned k = 0; k < b.ne; k++) {
        unsigned i = b.idxe[k];
        Drop why;
        uint16_t mtu;
        if (encap_one(w, b.m[i], b.vtep[i], b.vni[i], b.out_port[i], why, mtu)) continue;
        if (why == Drop::vxlan_mtu_exceeded)
            too_big(b, w, i, mtu);
        else
            b.drop(i, why);
    }
}

} // namespace vleaf::dp
