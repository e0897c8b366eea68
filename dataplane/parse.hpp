// Stage 1: classify by ethertype, validate L3 headers, collect destinations for bulk
// lookups. Frames of access ports go to their bridge domain, VXLAN to our VTEP address
// to decapsulation (the common L3VNI case is taken apart right here, in the same pass).
// Anything for the control plane (ARP, ND, IPv6 multicast) is punted.
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

// Most bursts carry one VNI: its map slot is looked up once per run of equal VNIs.
struct VniCache {
    uint32_t vni = ~0u; // no 24-bit VNI
    uint64_t slot = 0;
};

// Takes the outer headers off with three stores (rte_pktmbuf_adj's checks are the
// caller's: data_len covers `outer`).
inline void strip_outer(rte_mbuf *m, unsigned outer) {
    m->data_off = static_cast<uint16_t>(m->data_off + outer);
    m->data_len = static_cast<uint16_t>(m->data_len - outer);
    m->pkt_len -= outer;
    // Receive checksum flags describe the outer header.
    m->ol_flags &= ~(RTE_MBUF_F_RX_IP_CKSUM_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
}

inline bool is_vxlan_port(const rte_mbuf *m, unsigned l4_off, const VxlanParams &vx) {
    if (m->data_len < l4_off + sizeof(rte_udp_hdr)) return false;
    return rte_pktmbuf_mtod_offset(m, const rte_udp_hdr *, l4_off)->dst_port == vx.port_be;
}

// VXLAN for the decapsulation stage.
inline void to_decap(Burst &b, unsigned i, unsigned &nd) {
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
        to_decap(b, i, nd);
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
        to_decap(b, i, nd);
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
inline bool ipv4_plain(const uint8_t *frame, uint32_t pkt_len, uint64_t ol_flags) {
    uint64_t h; // frame bytes 12-19: ether type, version/IHL, TOS, total length, id
    uint16_t frag;
    std::memcpy(&h, frame + 12, 8);
    std::memcpy(&frag, frame + 20, 2);
    unsigned total = rte_be_to_cpu_16(static_cast<uint16_t>(h >> 32));
    uint64_t odd = (h & 0xffffff) ^ 0x450008; // 08 00 45, as the bytes lie in memory
    odd |= frag & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK);
    // 20 <= total <= pkt_len - 14, where pkt_len >= data_len >= 34
    odd |= unsigned(total - sizeof(rte_ipv4_hdr) >
                    pkt_len - sizeof(rte_ether_hdr) - sizeof(rte_ipv4_hdr));
    odd |= unsigned((ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD);
    return odd == 0;
}

// Whether any of the first `n` destinations of the route list is a martian or `also`
// (host order; 0 adds nothing), checked four at a time (the list is padded with a
// harmless 1.0.0.0).
inline bool any_martian4(Burst &b, unsigned n, uint32_t also = 0) {
    static_assert(kMaxBurst % 4 == 0);
    for (unsigned k = n; k % 4; k++) b.dst4[k] = 0x01000000;
    const __m128i all = _mm_set1_epi32(-1), zero = _mm_setzero_si128(), mcast = _mm_set1_epi32(0xe);
    const __m128i other = _mm_set1_epi32(static_cast<int>(also));
    __m128i bad = zero;
    for (unsigned k = 0; k < n; k += 4) {
        __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i *>(&b.dst4[k]));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi32(_mm_srli_epi32(d, 28), mcast));
        bad = _mm_or_si128(bad, _mm_or_si128(_mm_cmpeq_epi32(d, zero), _mm_cmpeq_epi32(d, all)));
        bad = _mm_or_si128(bad, _mm_cmpeq_epi32(d, other));
    }
    return !_mm_testz_si128(bad, bad);
}

// The rare martian is taken out of the plain packets' route list.
inline void drop_martians4(Burst &b) {
    const unsigned n = b.n4;
    if (likely(!any_martian4(b, n))) return;
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

// The common VXLAN frame, taken apart here in one pass: a valid VNI of an L3VNI with a
// plain IPv4 frame (ipv4_plain) inside, whose destination goes into the VRF's route list.
// Anything else (L2VNI, unknown VNI, bad flags, truncated, inner IPv6) is left to the
// decapsulation stage, whose checks name the reason.
inline bool decap4_l3(Burst &b, unsigned i, rte_mbuf *m, const uint8_t *frame, unsigned &n4,
                      VniCache &c, const Overlay &ov) {
    constexpr unsigned udp = kOuter4 - sizeof(VxlanHdr) - sizeof(rte_udp_hdr);
    constexpr unsigned least = sizeof(rte_udp_hdr) + sizeof(VxlanHdr) + sizeof(rte_ether_hdr);
    if (m->data_len < kOuter4 + sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) return false;
    VxlanHdr vx;
    uint16_t dgram_len;
    std::memcpy(&vx, frame + udp + sizeof(rte_udp_hdr), sizeof vx);
    std::memcpy(&dgram_len, frame + udp + offsetof(rte_udp_hdr, dgram_len), 2);
    if (!(vx.flags & rte_cpu_to_be_32(kVxlanFlagI)) || rte_be_to_cpu_16(dgram_len) < least)
        return false;
    uint32_t vni = rte_be_to_cpu_32(vx.vni) >> 8;
    if (vni != c.vni) c = VniCache{vni, ov.vni(vni)};
    const uint8_t *inner = frame + kOuter4;
    if (!(c.slot & kVniL3) || !ipv4_plain(inner, m->pkt_len - kOuter4, 0)) return false;
    strip_outer(m, kOuter4);
    uint32_t dst;
    std::memcpy(&dst, inner + sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, dst_addr), 4);
    auto vrf = static_cast<uint8_t>(c.slot);
    b.vrf[i] = vrf;
    b.vrf4[n4] = vrf;
    b.dst4[n4] = rte_be_to_cpu_32(dst);
    b.idx4[n4++] = static_cast<uint8_t>(i);
    return true;
}

// VXLAN over plain IPv4 to our VTEP address on the VXLAN port is decapsulated: here or in
// the decapsulation stage. Anything else to that address is left to parse_one.
struct Vxlan4 {
    const VxlanParams &vx;
    const Overlay &ov;
    unsigned nd = 0, decapsulated = 0;
    VniCache vni;
};

inline bool plain_vxlan4(Burst &b, unsigned i, rte_mbuf *m, const uint8_t *frame, unsigned &n4,
                         Vxlan4 &v) {
    constexpr unsigned l4 = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr);
    if (frame[sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, next_proto_id)] != IPPROTO_UDP ||
        !v.vx.has4 || !is_vxlan_port(m, l4, v.vx))
        return false;
    if (decap4_l3(b, i, m, frame, n4, v.vni, v.ov))
        v.decapsulated++;
    else
        to_decap(b, i, v.nd);
    return true;
}

// A plain IPv4 frame (ipv4_plain) goes straight into the route list, or to decapsulation.
inline bool parse_plain4(Burst &b, unsigned i, unsigned &n4, Vxlan4 &v) {
    rte_mbuf *m = b.m[i];
    auto *frame = rte_pktmbuf_mtod(m, const uint8_t *);
    if (unlikely(m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) ||
        unlikely(!ipv4_plain(frame, m->pkt_len, m->ol_flags)))
        return false;
    uint32_t dst;
    std::memcpy(&dst, frame + sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, dst_addr), 4);
    if (unlikely(dst == v.vx.src4)) return plain_vxlan4(b, i, m, frame, n4, v);
    b.dst4[n4] = rte_be_to_cpu_32(dst);
    b.idx4[n4++] = static_cast<uint8_t>(i);
    return true;
}

inline void parse(Burst &b, Worker &w) {
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
    unsigned n4 = 0, i = 0;
    Vxlan4 v{vx, *w.ov, 0, 0, {}};
    auto one = [&](unsigned k) {
        if (!access && likely(parse_plain4(b, k, n4, v))) return;
        b.n4 = static_cast<uint16_t>(n4);
        b.nd = static_cast<uint16_t>(v.nd);
        parse_one(b, k, access, vrf, vx);
        n4 = b.n4;
        v.nd = b.nd;
    };
    // A frame longer than a cache line may be VXLAN, whose inner headers start in the
    // second line: both are fetched (the first twice when the frame is short).
    auto fetch = [&](unsigned k) {
        const rte_mbuf *m = b.m[k];
        auto *p = rte_pktmbuf_mtod(m, const char *);
        rte_prefetch0(p);
        rte_prefetch0(p + (m->data_len > RTE_CACHE_LINE_SIZE ? RTE_CACHE_LINE_SIZE : 0));
    };
    for (unsigned k = 0; k < kPrefetchAhead && k < n; k++) fetch(k);
    for (; i + kPrefetchAhead < n; i++) {
        fetch(i + kPrefetchAhead);
        one(i);
    }
    for (; i < n; i++) one(i);
    b.n4 = static_cast<uint16_t>(n4);
    b.nd = static_cast<uint16_t>(v.nd);
    w.stats.decapsulated += v.decapsulated;
    drop_martians4(b);
    b.n2in = b.n2;
}

} // namespace vleaf::dp
