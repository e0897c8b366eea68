// Stage 1: classify by ethertype, validate L3 headers, collect destinations for bulk
// lookups. Frames of access ports go to their bridge domain, VXLAN to our VTEP address
// to decapsulation. Anything for the control plane (ARP, ND, IPv6 multicast) is punted.
#pragma once

#include "dataplane/worker.hpp"

#include <immintrin.h>
#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace vleaf::dp {

inline constexpr unsigned kPrefetchAhead = 4;
inline constexpr unsigned kUdpOff = sizeof(rte_ether_hdr);

inline bool is_vxlan_port(const rte_mbuf *m, unsigned l4_off, const VxlanParams &vx) {
    if (m->data_len < l4_off + sizeof(rte_udp_hdr)) return false;
    return rte_pktmbuf_mtod_offset(m, const rte_udp_hdr *, l4_off)->dst_port == vx.port_be;
}

// VXLAN to decapsulate: the inner headers lie in the frame's second cache line, which
// decapsulation reads after the whole burst has been parsed.
inline void to_decap(Burst &b, unsigned i, const rte_mbuf *m, unsigned &nd) {
    rte_prefetch0(rte_pktmbuf_mtod_offset(m, const char *, RTE_CACHE_LINE_SIZE));
    b.action[i] = Action::Tx;
    b.idxd[nd++] = static_cast<uint8_t>(i);
}

// Multicast, broadcast and zero destinations are never routed.
inline bool martian4(uint32_t dst) {
    return ((dst >> 28) == 0xe) | (dst == 0) | (dst == 0xffffffff);
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
        unsigned nd = b.nd;
        to_decap(b, i, m, nd);
        b.nd = static_cast<uint16_t>(nd);
        return;
    }
    uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
    if (martian4(dst)) return b.drop(i, Drop::ip_martian);
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
        unsigned nd = b.nd;
        to_decap(b, i, m, nd);
        b.nd = static_cast<uint16_t>(nd);
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

// The common case in one test: IPv4 without options, not a fragment, with a total length
// that fits the frame and no checksum error flagged by the NIC. Whatever fails goes
// through parse_one, whose checks name the reason.
inline bool ipv4_plain(const rte_mbuf *m, const uint8_t *frame) {
    uint64_t h; // frame bytes 12-19: ether type, version/IHL, TOS, total length, id
    uint16_t frag;
    std::memcpy(&h, frame + 12, 8);
    std::memcpy(&frag, frame + 20, 2);
    unsigned total = rte_be_to_cpu_16(static_cast<uint16_t>(h >> 32));
    uint64_t odd = (h & 0xffffff) ^ 0x450008; // 08 00 45, as the bytes lie in memory
    odd |= frag & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK);
    // 20 <= total <= pkt_len - 14, where pkt_len >= data_len >= 34
    odd |= unsigned(total - sizeof(rte_ipv4_hdr) >
                    m->pkt_len - sizeof(rte_ether_hdr) - sizeof(rte_ipv4_hdr));
    odd |= unsigned((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD);
    return odd == 0;
}

// The plain packets' destinations are checked four at a time (the list is padded with a
// harmless 1.0.0.0); the rare martian is taken out of the list.
inline void drop_martians4(Burst &b) {
    const unsigned n = b.n4;
    static_assert(kMaxBurst % 4 == 0);
    for (unsigned k = n; k % 4; k++) b.dst4[k] = 0x01000000;
    const __m128i all = _mm_set1_epi32(-1), zero = _mm_setzero_si128(), mcast = _mm_set1_epi32(0xe);
    __m128i bad = zero;
    for (unsigned k = 0; k < n; k += 4) {
        __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i *>(&b.dst4[k]));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi32(_mm_srli_epi32(d, 28), mcast));
        bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi32(d, zero), _mm_cmpeq_epi32(d, all)));
    }
    if (likely(_mm_testz_si128(bad, bad))) return;
    unsigned kept = 0;
    for (unsigned k = 0; k < n; k++) {
        if (martian4(b.dst4[k])) {
            b.drop(b.idx4[k], Drop::ip_martian);
            continue;
        }
        b.dst4[kept] = b.dst4[k];
        b.vrf4[kept] = b.vrf4[k];
        b.idx4[kept++] = b.idx4[k];
    }
    b.n4 = static_cast<uint16_t>(kept);
}

// One received frame as it comes, for whatever the fast path in parse() does not take.
// Out of line, so that the loop there stays small.
[[gnu::noinline]] inline void parse_one(Burst &b, unsigned i, const uint16_t *access, uint8_t vrf,
                                        const VxlanParams &vx) {
    rte_mbuf *m = b.m[i];
    b.nh[i] = kNhNoRoute;
    if (m->data_len < sizeof(rte_ether_hdr)) return b.drop(i, Drop::runt);
    uint16_t type = rte_pktmbuf_mtod(m, const rte_ether_hdr *)->ether_type;
    if (access) {
        uint16_t vlan = 0;
        if (type == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN)) {
            if (m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_vlan_hdr))
                return b.drop(i, Drop::runt);
            auto *tag = rte_pktmbuf_mtod_offset(m, const rte_vlan_hdr *, sizeof(rte_ether_hdr));
            vlan = rte_be_to_cpu_16(tag->vlan_tci) & 0xfff;
        }
        if (uint16_t bd = access[vlan]) return b.to_bridge(i, uint16_t(bd - 1), From::Access, vlan);
        if (vlan) return b.drop(i, Drop::unknown_vlan);
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

// A plain IPv4 frame to our VTEP address on the VXLAN port goes to decapsulation;
// anything else to that address is left to parse_one.
inline bool plain_vxlan4(Burst &b, unsigned i, const rte_mbuf *m, const uint8_t *frame,
                         unsigned &nd, const VxlanParams &vx) {
    constexpr unsigned l4 = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);
    if (frame[sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, next_proto_id)] != IPPROTO_UDP ||
        !vx.has4 || !is_vxlan_port(m, l4, vx))
        return false;
    to_decap(b, i, m, nd);
    return true;
}

// A plain IPv4 frame (ipv4_plain) goes straight into the route list, or to decapsulation.
inline bool parse_plain4(Burst &b, unsigned i, unsigned &n4, unsigned &nd, const VxlanParams &vx) {
    rte_mbuf *m = b.m[i];
    auto *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    if (unlikely(m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) ||
        unlikely(!ipv4_plain(m, frame)))
        return false;
    uint32_t dst;
    std::memcpy(&dst, frame + sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, dst_addr), 4);
    if (unlikely(dst == vx.src4)) return plain_vxlan4(b, i, m, frame, nd, vx);
    b.dst4[n4] = rte_be_to_cpu_32(dst);
    b.idx4[n4++] = static_cast<uint8_t>(i);
    return true;
}

inline void parse(Burst &b, const Worker &w) {
    b.n4 = b.n6 = b.nd = b.n2 = b.n2in = b.ne = 0;
    if (b.entry != Entry::Port) return parse_injected(b);
    const VxlanParams &vx = w.ov->params();
    const uint16_t *access = w.ov->access(b.port); // bridge domain + 1 by VLAN, or null
    auto vrf = static_cast<uint8_t>(w.ports[b.port].vrf);
    const unsigned n = b.n;
    // What the fast path leaves as is, set for the whole burst with a few vector stores.
    std::fill_n(b.action, kMaxBurst, Action::Tx);
    std::fill_n(b.vrf, kMaxBurst, vrf);
    std::fill_n(b.vrf4, kMaxBurst, vrf);
    unsigned n4 = 0, nd = 0, i = 0;
    auto one = [&](unsigned k) {
        if (!access && likely(parse_plain4(b, k, n4, nd, vx))) return;
        b.n4 = static_cast<uint16_t>(n4);
        b.nd = static_cast<uint16_t>(nd);
        parse_one(b, k, access, vrf, vx);
        n4 = b.n4;
        nd = b.nd;
    };
    for (unsigned k = 0; k < kPrefetchAhead && k < n; k++)
        rte_prefetch0(rte_pktmbuf_mtod(b.m[k], void *));
    for (; i + kPrefetchAhead < n; i++) {
        rte_prefetch0(rte_pktmbuf_mtod(b.m[i + kPrefetchAhead], void *));
        one(i);
    }
    for (; i < n; i++) one(i);
    b.n4 = static_cast<uint16_t>(n4);
    b.nd = static_cast<uint16_t>(nd);
    drop_martians4(b);
    b.n2in = b.n2;
}

} // namespace vleaf::dp
