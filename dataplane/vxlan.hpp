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

#include <bit>

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

// RFC 7348: the outer source port carries entropy from the inner frame for ECMP: its
// 5-tuple, or for other frames its MACs.
inline uint32_t inner_hash(const rte_mbuf *m) {
    auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
        m->data_len >= sizeof(*eth) + sizeof(rte_ipv4_hdr) + 4)
        return flow_hash4(reinterpret_cast<const rte_ipv4_hdr *>(eth + 1));
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6) &&
        m->data_len >= sizeof(*eth) + sizeof(rte_ipv6_hdr) + 4)
        return flow_hash6(reinterpret_cast<const rte_ipv6_hdr *>(eth + 1));
    return rte_hash_crc(eth, 12, 0);
}

// Where a frame toward a VTEP leaves: the underlay next hop (its MACs in bytes 0-11) and
// what its port takes.
struct Egress {
    NhView u;
    uint16_t port;
    uint16_t mtu;
    bool ip_cksum; // the port computes the outer IPv4 checksum
};

inline Egress egress(const Worker &w, NhView u) {
    const PortInfo &out = w.ports[u.port()];
    return {u, u.port(), out.mtu, out.tx_ip_cksum};
}

// What encapsulation toward an IPv4 VTEP through one egress takes: the template as the
// two 32-byte stores of the outer headers (frame bytes 0-31, 18-49; they agree where they
// overlap) with the egress MACs blended into the first, the header sum (RemoteVtep::sum4),
// and the largest inner frame the egress port's MTU takes.
struct Run4 {
    __m256i head, tail;
    uint32_t sum;
    uint32_t cksum_mask; // 0 if the port computes the checksum (it wants 0 there)
    uint16_t max_inner;
    uint16_t port;
    bool ip_cksum;

    Run4() = default;
    Run4(const RemoteVtep &v, const Egress &e)
        : head(_mm256_blend_epi32(_mm256_load_si256(reinterpret_cast<const __m256i *>(v.outer)),
                                  _mm256_castsi128_si256(e.u.v), 0x07)),
          tail(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(v.outer + kOuter4 - 32))),
          sum(v.sum4), cksum_mask(e.ip_cksum ? 0 : ~0u),
          max_inner(static_cast<uint16_t>(e.mtu > kGrows4 ? e.mtu - kGrows4 : 0)), port(e.port),
          ip_cksum(e.ip_cksum) {}
};

// What encapsulation reads of a remote VTEP, once per run of packets toward it (a burst
// mostly goes to one): the VTEP, its underlay next hop and, when that is a plain next hop
// of an IPv4 VTEP (`fast4`), all the outer headers take but the per-packet fields; an ECMP
// group's member is picked per packet.
struct VtepCache {
    uint32_t vtep = ~0u; // no VTEP id
    const RemoteVtep *v = nullptr;
    uint8_t family = 0;
    bool fast4 = false;
    uint32_t id = 0;
    NhView u{};
    Egress e; // valid after look_up, when u is a Forward next hop
    Run4 r4;  // valid after look_up, when fast4

    [[gnu::noinline]] void look_up(const Worker &w, uint16_t to) {
        vtep = to;
        v = &w.ov->vteps()[to];
        family = __atomic_load_n(&v->family, __ATOMIC_ACQUIRE);
        id = __atomic_load_n(&v->underlay, __ATOMIC_RELAXED);
        u = nh_view(w.fib->nexthops(), id);
        fast4 = family == 4 && u.kind() == NhKind::Forward;
        if (u.kind() == NhKind::Forward) e = egress(w, u);
        if (fast4) r4 = Run4(*v, e);
    }

    // The egress of a packet of flow `hash`, or false with why not.
    bool egress_of(const Worker &w, uint32_t hash, Egress &out, Drop &why) const {
        if (!family) return why = Drop::vxlan_no_vtep, false;
        if (u.kind() == NhKind::Forward) return out = e, true;
        uint32_t member = id;
        NhView m = u.kind() == NhKind::Ecmp ? ecmp_member(w, u, member, hash) : u;
        if (m.kind() != NhKind::Forward) return why = Drop::vxlan_underlay_unresolved, false;
        return out = egress(w, m), true;
    }
};

// What a worker's encapsulation keeps across packets: the UDP source port range, and the
// outer IPv4 identification, in bits 16-31 of `id` (so that it wraps at 16 bits): 0 with
// DF, else the worker's counter (step 1 << 16).
struct EncapParams {
    uint32_t sport_min, sport_span;
    uint32_t id, id_step;

    explicit EncapParams(const Worker &w) {
        const VxlanParams &p = w.ov->params();
        sport_min = p.sport_min;
        sport_span = p.sport_span;
        id = p.df ? 0 : uint32_t(w.ip_id) << 16;
        id_step = p.df ? 0 : 1u << 16;
    }
    uint32_t sport(uint32_t hash) const { // host order
        return uint32_t(sport_min + ((uint64_t(hash) * sport_span) >> 32));
    }
    void done(Worker &w) const {
        if (id_step) w.ip_id = uint16_t(id >> 16);
    }
};

// The outer headers over IPv4 at `at`. What changes per packet comes in one register of
// host-order words: bytes 0-1 total length, 2-3 UDP length, 6-7 header checksum, 8-9 UDP
// source port, 10-11 identification, 12-14 VNI (bytes 4-5 and 15: anything). Two byte
// shuffles put each field where it goes in both stores, in network order, over the
// template's zeros there (-1: the template's byte).
inline void put_outer4(uint8_t *at, const Run4 &r, __m128i fields) {
    const __m256i to_head = _mm256_setr_epi8(                           //
        -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, // Ethernet, IPv4 0-1
        1, 0, 11, 10, -1, -1, -1, -1, 7, 6, -1, -1, -1, -1, -1, -1);    // IPv4 2-17
    const __m256i to_tail = _mm256_setr_epi8(                           //
        11, 10, -1, -1, -1, -1, 7, 6, -1, -1, -1, -1, -1, -1, -1, -1,   // IPv4 4-19
        9, 8, -1, -1, 3, 2, -1, -1, -1, -1, -1, -1, 14, 13, 12, -1);    // UDP, VXLAN
    __m256i f = _mm256_broadcastsi128_si256(fields);
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(at + kOuter4 - 32),
                        _mm256_or_si256(r.tail, _mm256_shuffle_epi8(f, to_tail)));
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(at),
                        _mm256_or_si256(r.head, _mm256_shuffle_epi8(f, to_head)));
}

// In bits 16-31: the IPv4 header checksum for the ones' complement sum `sum` of its words
// (RFC 1071), not yet folded (below 2^32 - 2^16). Adding `sum` rotated by 16 bits adds its
// two halves, with the carry out of the lower ones into the upper half: the end-around
// carry.
inline uint32_t cksum_hi(uint32_t sum) {
    return ~(sum + std::rotr(sum, 16));
}

// Encapsulates `m` toward an IPv4 VTEP. Both lengths come from one multiply-add of the
// inner length; the header checksum from the template's sum plus the inner length and
// the identification.
inline bool encap4(rte_mbuf *m, const Run4 &r, uint32_t hash, uint32_t vni, EncapParams &p,
                   Drop &why, uint16_t &mtu) {
    uint32_t inner_len = m->pkt_len;
    if (unlikely(inner_len > r.max_inner)) {
        mtu = static_cast<uint16_t>(r.max_inner - sizeof(rte_ether_hdr));
        return why = Drop::vxlan_mtu_exceeded, false;
    }
    if (unlikely(m->data_off < kOuter4)) return why = Drop::vxlan_no_headroom, false;
    m->data_off = uint16_t(m->data_off - kOuter4);
    m->data_len = uint16_t(m->data_len + kOuter4);
    m->pkt_len = inner_len + kOuter4;
    uint8_t *eth = rte_pktmbuf_mtod(m, uint8_t *);
    uint32_t cksum = cksum_hi(r.sum + inner_len + (p.id >> 16)) & r.cksum_mask;
    constexpr uint32_t udp_grows = sizeof(rte_udp_hdr) + sizeof(VxlanHdr);
    uint64_t lo = (inner_len * 0x10001u + (kGrows4 | udp_grows << 16)) | uint64_t(cksum) << 32;
    uint64_t hi = p.sport(hash) | p.id | uint64_t(vni) << 32;
    p.id += p.id_step;
    put_outer4(eth, r, _mm_set_epi64x(int64_t(hi), int64_t(lo)));
    if (r.ip_cksum) {
        m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
        m->l2_len = sizeof(rte_ether_hdr);
        m->l3_len = sizeof(rte_ipv4_hdr);
    }
    return true;
}

// Over IPv6: the template with three 32-byte stores, the lengths, source port and VNI, and
// the UDP checksum, for receivers that do not accept zero (RFC 6935).
inline bool encap6(rte_mbuf *m, const RemoteVtep &v, const Egress &e, uint32_t hash, uint32_t vni,
                   const EncapParams &p, Drop &why, uint16_t &mtu) {
    uint32_t inner_len = m->pkt_len;
    constexpr unsigned grows = kOuter6 - sizeof(rte_ether_hdr);
    if (inner_len + grows > e.mtu) {
        mtu = static_cast<uint16_t>(e.mtu - kOuter6);
        return why = Drop::vxlan_mtu_exceeded, false;
    }
    auto *eth = reinterpret_cast<uint8_t *>(rte_pktmbuf_prepend(m, uint16_t(kOuter6)));
    if (!eth) return why = Drop::vxlan_no_headroom, false;
    auto *t = reinterpret_cast<const __m256i *>(v.outer);
    _mm256_storeu_si256(
        reinterpret_cast<__m256i *>(eth + kOuter6 - 32),
        _mm256_loadu_si256(reinterpret_cast<const __m256i *>(v.outer + kOuter6 - 32)));
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(eth + 32), _mm256_load_si256(t + 1));
    _mm256_storeu_si256(
        reinterpret_cast<__m256i *>(eth),
        _mm256_blend_epi32(_mm256_load_si256(t), _mm256_castsi128_si256(e.u.v), 0x07));
    auto *ip = reinterpret_cast<rte_ipv6_hdr *>(eth + sizeof(rte_ether_hdr));
    auto *udp = reinterpret_cast<rte_udp_hdr *>(ip + 1);
    auto udp_len = rte_cpu_to_be_16(uint16_t(inner_len + sizeof(rte_udp_hdr) + sizeof(VxlanHdr)));
    ip->payload_len = udp_len;
    udp->src_port = rte_cpu_to_be_16(uint16_t(p.sport(hash)));
    udp->dgram_len = udp_len;
    reinterpret_cast<VxlanHdr *>(udp + 1)->vni = rte_cpu_to_be_32(vni << 8);
    udp->dgram_cksum = rte_ipv6_udptcp_cksum(ip, udp);
    return true;
}

// Encapsulates `m` toward `vtep`; returns the egress port, or false with `why` (and, for
// vxlan_mtu_exceeded, the largest inner IP packet the tunnel takes in `mtu`).
inline bool encap_one(const Worker &w, VtepCache &c, EncapParams &p, rte_mbuf *m, uint32_t hash,
                      uint16_t vtep, uint32_t vni, uint16_t &port, Drop &why, uint16_t &mtu) {
    if (vtep != c.vtep) c.look_up(w, vtep);
    if (likely(c.fast4)) {
        port = c.r4.port;
        return encap4(m, c.r4, hash, vni, p, why, mtu);
    }
    Egress e;
    if (!c.egress_of(w, hash, e, why)) return false;
    port = e.port;
    if (c.family == 6) return encap6(m, *c.v, e, hash, vni, p, why, mtu);
    return encap4(m, Run4(*c.v, e), hash, vni, p, why, mtu);
}

// An IP packet too big for its tunnel goes to the control thread, which answers its
// source with ICMP fragmentation needed or packet too big carrying `mtu` (RFC 1191,
// RFC 8201): from the gateway of its bridge domain if it was bridged (nh: bd + 1 above
// the MTU), from our address in its VRF if it was routed. IPv4 without DF and packets
// beyond the per-source rate are dropped: answers_too_big is false.
inline bool answers_too_big(Worker &w, const rte_mbuf *m) {
    auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    const uint8_t *src;
    unsigned len;
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(eth + 1);
        if (!(ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG))) return false;
        src = reinterpret_cast<const uint8_t *>(&ip->src_addr);
        len = 4;
    } else if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
        src = reinterpret_cast<const rte_ipv6_hdr *>(eth + 1)->src_addr;
        len = 16;
    } else {
        return false;
    }
    return w.allow_icmp(rte_hash_crc(src, len, 0), rte_rdtsc());
}

// The punt's next hop field for packet i too big for a tunnel of inner MTU `mtu`.
inline uint32_t too_big_nh(const Burst &b, unsigned i, uint16_t mtu) {
    return mtu | (b.from[i] == From::Gateway ? 0 : uint32_t(b.bd[i] + 1) << 16);
}

inline void too_big(Burst &b, Worker &w, unsigned i, uint16_t mtu) {
    if (!answers_too_big(w, b.m[i])) return b.drop(i, Drop::vxlan_mtu_exceeded);
    b.nh[i] = too_big_nh(b, i, mtu);
    b.punt(i, Punt::too_big);
}

inline void vxlan_encap(Burst &b, Worker &w) {
    const unsigned n = b.ne;
    if (n == 0) return;
    unsigned done = 0;
    EncapParams p(w);
    VtepCache c;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = b.idxe[k];
        Drop why;
        uint16_t mtu;
        if (likely(encap_one(w, c, p, b.m[i], b.hash[i], b.vtep[i], b.vni[i], b.out_port[i], why,
                             mtu))) {
            done++;
            continue;
        }
        if (why == Drop::vxlan_mtu_exceeded)
            too_big(b, w, i, mtu);
        else
            b.drop(i, why);
    }
    p.done(w);
    w.stats.encapsulated += done;
}

} // namespace vleaf::dp
