// Stage 1: classify by ethertype, validate L3 headers, collect destinations for bulk
// lookups. Anything for the control plane (ARP, ND, IPv6 multicast) is punted here.
#pragma once

#include "dataplane/worker.hpp"

#include <immintrin.h>
#include <rte_arp.h>
#include <rte_ip.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace vleaf::dp {

inline constexpr unsigned kPrefetchAhead = 4;

// Multicast, broadcast and zero destinations are never routed.
inline bool martian4(uint32_t dst) {
    return ((dst >> 28) == 0xe) | (dst == 0) | (dst == 0xffffffff);
}

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
    if (martian4(dst)) return b.drop(i, Drop::ip_martian);
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
        b.idx4[kept++] = b.idx4[k];
    }
    b.n4 = static_cast<uint16_t>(kept);
}

// Out of line: the loop in parse() stays small.
[[gnu::noinline]] inline void parse_one(Burst &b, unsigned i, rte_mbuf *m) {
    b.nh[i] = kNhNoRoute;
    if (m->data_len < sizeof(rte_ether_hdr)) return b.drop(i, Drop::runt);
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

inline bool parse_plain4(Burst &b, unsigned i, unsigned &n4) {
    rte_mbuf *m = b.m[i];
    auto *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    if (unlikely(m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) ||
        unlikely(!ipv4_plain(m, frame)))
        return false;
    uint32_t dst;
    std::memcpy(&dst, frame + sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, dst_addr), 4);
    b.dst4[n4] = rte_be_to_cpu_32(dst);
    b.idx4[n4++] = static_cast<uint8_t>(i);
    return true;
}

inline void parse(Burst &b) {
    const unsigned n = b.n;
    unsigned n4 = 0, i = 0;
    b.n6 = 0;
    std::fill_n(b.action, kMaxBurst, Action::Tx); // constant size: a few vector stores
    auto one = [&](unsigned k) {
        if (likely(parse_plain4(b, k, n4))) return;
        b.n4 = static_cast<uint16_t>(n4);
        parse_one(b, k, b.m[k]);
        n4 = b.n4;
    };
    for (unsigned k = 0; k < kPrefetchAhead && k < n; k++)
        rte_prefetch0(rte_pktmbuf_mtod(b.m[k], void *));
    for (; i + kPrefetchAhead < n; i++) {
        rte_prefetch0(rte_pktmbuf_mtod(b.m[i + kPrefetchAhead], void *));
        one(i);
    }
    for (; i < n; i++) one(i);
    b.n4 = static_cast<uint16_t>(n4);
    drop_martians4(b);
}

} // namespace vleaf::dp
