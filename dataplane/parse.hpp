// Stage 1: classify by ethertype, validate L3 headers, collect destinations for bulk
// lookups. Frames of access ports go to their bridge domain, VXLAN to our VTEP address
// to decapsulation. Anything for the control plane (ARP, ND, IPv6 multicast) is punted.
#pragma once

#include "dataplane/worker.hpp"

#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_udp.h>

namespace vleaf::dp {

inline constexpr unsigned kPrefetchAhead = 4;
inline constexpr unsigned kUdpOff = sizeof(rte_ether_hdr);

inline bool is_vxlan_port(const rte_mbuf *m, unsigned l4_off, const VxlanParams &vx) {
    if (m->data_len < l4_off + sizeof(rte_udp_hdr)) return false;
    return rte_pktmbuf_mtod_offset(m, const rte_udp_hdr *, l4_off)->dst_port == vx.port_be;
}

// `vx`: the outer header of a received frame (VXLAN to our VTEP is decapsulated); null
// for frames already inside the overlay.
inline void parse_ipv4(Burst &b, unsigned i, rte_mbuf *m, uint8_t vrf, const VxlanParams *vx) {
    if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) return b.drop(i, Drop::runt);
    auto *ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    uint8_t vihl = ip->version_ihl;
    if ((vihl >> 4) != 4) return b.drop(i, Drop::ip_bad_version);
    if ((vihl & 0xf) < 5) return b.drop(i, Drop::ip_bad_header_len);
    if ((vihl & 0xf) > 5) return b.drop(i, Drop::ip_options);
    uint16_t total = rte_be_to_cpu_16(ip->total_length);
    if (total < sizeof(rte_ipv4_hdr) || total > m->pkt_len - sizeof(rte_ether_hdr))
        return b.drop(i, Drop::ip_bad_total_len);
    if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD)
        return b.drop(i, Drop::ip_bad_checksum);
    if (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK))
        return b.drop(i, Drop::ip_fragment);
    if (vx && ip->next_proto_id == IPPROTO_UDP && vx->has4 && ip->dst_addr == vx->src4 &&
        is_vxlan_port(m, kUdpOff + sizeof(rte_ipv4_hdr), *vx)) {
        b.action[i] = Action::Tx;
        b.idxd[b.nd++] = static_cast<uint8_t>(i);
        return;
    }
    uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
    // Multicast, broadcast and zero destinations are never routed.
    if ((dst >> 28) == 0xe || dst == 0xffffffff || dst == 0) return b.drop(i, Drop::ip_martian);
    b.to_route4(i, dst, vrf);
}

inline bool is_nd(const rte_mbuf *m, const rte_ipv6_hdr *ip) {
    if (ip->proto != IPPROTO_ICMPV6 || m->data_len < sizeof(rte_ether_hdr) + sizeof(*ip) + 1)
        return false;
    uint8_t type = *reinterpret_cast<const uint8_t *>(ip + 1);
    return type >= 133 && type <= 137; // RS, RA, NS, NA, redirect
}

inline void parse_ipv6(Burst &b, unsigned i, rte_mbuf *m, uint8_t vrf, const VxlanParams *vx) {
    if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr)) return b.drop(i, Drop::runt);
    auto *ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr *, sizeof(rte_ether_hdr));
    if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6) return b.drop(i, Drop::ip_bad_version);
    if (rte_be_to_cpu_16(ip->payload_len) + sizeof(rte_ipv6_hdr) >
        m->pkt_len - sizeof(rte_ether_hdr))
        return b.drop(i, Drop::ip_bad_total_len);
    if (is_nd(m, ip)) return b.punt(i, Punt::nd);
    // Link-local and multicast traffic belongs to the host (MLD, DHCPv6, link-local BGP).
    if (ip->dst_addr[0] == 0xff || (ip->dst_addr[0] == 0xfe && (ip->dst_addr[1] & 0xc0) == 0x80))
        return b.punt(i, Punt::local);
    if (vx && ip->proto == IPPROTO_UDP && vx->has6 &&
        std::memcmp(ip->dst_addr, vx->src6, 16) == 0 &&
        is_vxlan_port(m, kUdpOff + sizeof(rte_ipv6_hdr), *vx)) {
        b.action[i] = Action::Tx;
        b.idxd[b.nd++] = static_cast<uint8_t>(i);
        return;
    }
    b.to_route6(i, ip->dst_addr, vrf);
}

// An IP frame into the route lists of `vrf`; anything else is dropped.
inline void parse_ip(Burst &b, unsigned i, rte_mbuf *m, uint8_t vrf) {
    uint16_t type = rte_pktmbuf_mtod(m, const rte_ether_hdr *)->ether_type;
    if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) return parse_ipv4(b, i, m, vrf, nullptr);
    if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) return parse_ipv6(b, i, m, vrf, nullptr);
    b.drop(i, Drop::unknown_ethertype);
}

// Frames the control thread injected: routed in a VRF or bridged in a bridge domain.
inline void parse_injected(Burst &b) {
    for (unsigned i = 0; i < b.n; i++) {
        b.nh[i] = kNhNoRoute;
        b.vrf[i] = 0;
        if (b.entry == Entry::Routed)
            parse_ip(b, i, b.m[i], static_cast<uint8_t>(b.entry_id));
        else
            b.to_bridge(i, b.entry_id, From::Gateway, b.entry_vlan);
    }
}

inline void parse(Burst &b, const Worker &w) {
    b.n4 = b.n6 = b.nd = b.n2 = b.n2in = b.ne = 0;
    if (b.entry != Entry::Port) return parse_injected(b);
    const VxlanParams &vx = w.ov->params();
    const uint16_t *access = w.ov->access(b.port); // bridge domain + 1 by VLAN, or null
    auto vrf = static_cast<uint8_t>(w.ports[b.port].vrf);
    for (unsigned i = 0; i < kPrefetchAhead && i < b.n; i++)
        rte_prefetch0(rte_pktmbuf_mtod(b.m[i], void *));
    for (unsigned i = 0; i < b.n; i++) {
        if (i + kPrefetchAhead < b.n)
            rte_prefetch0(rte_pktmbuf_mtod(b.m[i + kPrefetchAhead], void *));
        rte_mbuf *m = b.m[i];
        b.nh[i] = kNhNoRoute;
        b.vrf[i] = vrf;
        if (m->data_len < sizeof(rte_ether_hdr)) {
            b.drop(i, Drop::runt);
            continue;
        }
        uint16_t type = rte_pktmbuf_mtod(m, const rte_ether_hdr *)->ether_type;
        if (access) {
            uint16_t vlan = 0;
            if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN)) {
                if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_vlan_hdr)) {
                    b.drop(i, Drop::runt);
                    continue;
                }
                auto *tag = rte_pktmbuf_mtod_offset(m, const rte_vlan_hdr *, sizeof(rte_ether_hdr));
                vlan = rte_be_to_cpu_16(tag->vlan_tci) & 0xfff;
            }
            if (uint16_t bd = access[vlan]) {
                b.to_bridge(i, uint16_t(bd - 1), From::Access, vlan);
                continue;
            }
            if (vlan) {
                b.drop(i, Drop::unknown_vlan);
                continue;
            }
        }
        if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
            parse_ipv4(b, i, m, vrf, &vx);
        else if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))
            parse_ipv6(b, i, m, vrf, &vx);
        else if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
            b.punt(i, Punt::arp);
        else
            b.drop(i, Drop::unknown_ethertype);
    }
    b.n2in = b.n2;
}

} // namespace vleaf::dp
