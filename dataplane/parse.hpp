// Stage 1: classify by ethertype, validate L3 headers, collect destinations for bulk
// lookups. Anything for the control plane (ARP, ND, IPv6 multicast) is punted here.
#pragma once

#include "dataplane/worker.hpp"

#include <rte_arp.h>
#include <rte_ip.h>

namespace vleaf::dp {

inline constexpr unsigned kPrefetchAhead = 4;

inline void parse_ipv4(Burst &b, unsigned i, rte_mbuf *m) {
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
    uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
    // Multicast, broadcast and zero destinations are never routed.
    if ((dst >> 28) == 0xe || dst == 0xffffffff || dst == 0) return b.drop(i, Drop::ip_martian);
    b.action[i] = Action::Tx;
    b.dst4[b.n4] = dst;
    b.idx4[b.n4++] = static_cast<uint8_t>(i);
}

inline void parse_ipv6(Burst &b, unsigned i, rte_mbuf *m) {
    if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr)) return b.drop(i, Drop::runt);
    auto *ip = rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr *, sizeof(rte_ether_hdr));
    if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6) return b.drop(i, Drop::ip_bad_version);
    if (rte_be_to_cpu_16(ip->payload_len) + sizeof(rte_ipv6_hdr) >
        m->pkt_len - sizeof(rte_ether_hdr))
        return b.drop(i, Drop::ip_bad_total_len);
    if (ip->proto == IPPROTO_ICMPV6 && m->data_len >= sizeof(rte_ether_hdr) + sizeof(*ip) + 1) {
        uint8_t type = *rte_pktmbuf_mtod_offset(m, const uint8_t *,
                                                sizeof(rte_ether_hdr) + sizeof(rte_ipv6_hdr));
        if (type >= 133 && type <= 137) return b.punt(i, Punt::nd); // RS, RA, NS, NA, redirect
    }
    // Link-local and multicast traffic belongs to the host (MLD, DHCPv6, link-local BGP).
    if (ip->dst_addr[0] == 0xff || (ip->dst_addr[0] == 0xfe && (ip->dst_addr[1] & 0xc0) == 0x80))
        return b.punt(i, Punt::local);
    b.action[i] = Action::Tx;
    std::memcpy(b.dst6[b.n6], ip->dst_addr, 16);
    b.idx6[b.n6++] = static_cast<uint8_t>(i);
}

inline void parse(Burst &b) {
    b.n4 = b.n6 = 0;
    for (unsigned i = 0; i < kPrefetchAhead && i < b.n; i++)
        rte_prefetch0(rte_pktmbuf_mtod(b.m[i], void *));
    for (unsigned i = 0; i < b.n; i++) {
        if (i + kPrefetchAhead < b.n)
            rte_prefetch0(rte_pktmbuf_mtod(b.m[i + kPrefetchAhead], void *));
        rte_mbuf *m = b.m[i];
        b.nh[i] = kNhNoRoute;
        if (m->data_len < sizeof(rte_ether_hdr)) {
            b.drop(i, Drop::runt);
            continue;
        }
        uint16_t type = rte_pktmbuf_mtod(m, const rte_ether_hdr *)->ether_type;
        if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
            parse_ipv4(b, i, m);
        else if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))
            parse_ipv6(b, i, m);
        else if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
            b.punt(i, Punt::arp);
        else
            b.drop(i, Drop::unknown_ethertype);
    }
}

} // namespace vleaf::dp
