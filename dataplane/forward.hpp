// Stage: turn each route result into an action. Forwarded packets get their TTL or
// hop limit decremented (IPv4 checksum updated incrementally, RFC 1624) and their
// Ethernet header rewritten for the next hop; ECMP picks a member by 5-tuple hash.
// Overlay next hops hand the packet on: Tunnel to encapsulation (inner destination MAC
// the remote router MAC, RFC 9135), Bridge to the bridge domain of the anycast gateway.
// The common case (a Forward next hop, TTL > 1, within the MTU) takes one test per
// packet; everything else goes through the checks one by one, which name the reason.
#pragma once

#include "dataplane/worker.hpp"

#include "dataplane/parse.hpp"

#include <immintrin.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>

#include <cstring>

namespace vleaf::dp {

// CRC32-C of the addresses, protocol and ports (SSE4.2, which -march=native implies).
inline uint32_t flow_hash4(const rte_ipv4_hdr *ip) {
    uint32_t h = static_cast<uint32_t>(
        _mm_crc32_u64(ip->next_proto_id, (uint64_t(ip->src_addr) << 32) | ip->dst_addr));
    if (ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP)
        h = _mm_crc32_u32(h, *reinterpret_cast<const uint32_t *>(ip + 1));
    return h;
}

inline uint32_t flow_hash6(const rte_ipv6_hdr *ip) {
    uint32_t h = rte_hash_crc(ip->src_addr, 32, ip->proto); // source and destination
    if (ip->proto == IPPROTO_TCP || ip->proto == IPPROTO_UDP)
        h = _mm_crc32_u32(h, *reinterpret_cast<const uint32_t *>(ip + 1));
    return h;
}

// A next hop as the worker reads it: one 16-byte load (see nexthop.hpp), fields taken
// from the register.
struct NhView {
    __m128i v;
    NhKind kind() const { return static_cast<NhKind>(_mm_extract_epi8(v, 14)); }
    uint16_t port() const { return static_cast<uint16_t>(_mm_extract_epi16(v, 6)); }
    uint32_t group() const { return static_cast<uint32_t>(_mm_extract_epi32(v, 2)); } // bytes 8-11
    unsigned n_members() const { return static_cast<unsigned>(_mm_extract_epi8(v, 15)); }
};

inline NhView nh_view(const Nh *table, uint32_t id) {
    return {_mm_load_si128(reinterpret_cast<const __m128i *>(&table[id]))};
}

// The member of an ECMP group that `hash_of_flow` picks; its id replaces `id`.
inline NhView ecmp_member(const Worker &w, NhView group, uint32_t &id, uint32_t hash_of_flow) {
    // Multiply-shift maps the hash onto [0, n) evenly without a division.
    id = w.fib->groups()[group.group()].members[(uint64_t(hash_of_flow) * group.n_members()) >> 32];
    NhView nh = nh_view(w.fib->nexthops(), id);
    if (nh.kind() == NhKind::Ecmp) // nested groups are not built
        nh.v = _mm_insert_epi8(nh.v, static_cast<int>(NhKind::NoRoute), 14);
    return nh;
}

// Both Ethernet addresses (frame bytes 0-11) from the next hop in one 16-byte store.
inline void rewrite_l2(uint8_t *frame, NhView nh) {
    __m128i now = _mm_loadu_si128(reinterpret_cast<const __m128i *>(frame));
    _mm_storeu_si128(reinterpret_cast<__m128i *>(frame), _mm_blend_epi16(nh.v, now, 0xc0));
}

// A packet routed into a tunnel (TTL already decremented), symmetric IRB (RFC 9135):
// the inner frame goes from our router MAC to the remote one. `hash`: its flow's, for
// the outer UDP source port (taken here, where its headers were just read).
inline void tunnel_next(Burst &b, const Worker &w, unsigned i, uint8_t *frame, NhView nh,
                        uint32_t hash) {
    _mm_storeu_si64(frame, nh.v);                              // bytes 0-7: the remote MAC
    std::memcpy(frame + 6, &w.ov->router_macs()[b.vrf[i]], 6); // then ours over 6-11
    b.from[i] = From::Gateway; // routed: an error about it is routed back, not bridged
    b.to_encap(i, frame, nh.port(), nh.group(), hash);
}

// A routed packet (TTL already decremented) into the bridge domain of an anycast gateway.
inline void bridge_next(Burst &b, const Worker &w, unsigned i, NhView nh) {
    auto *frame = rte_pktmbuf_mtod(b.m[i], uint8_t *);
    auto *eth = reinterpret_cast<rte_ether_hdr *>(frame);
    _mm_storeu_si64(frame, nh.v);
    rte_ether_addr_copy(&w.ov->bds()[nh.port()].gw_mac, &eth->src_addr);
    b.to_bridge(i, nh.port(), From::Gateway, kAnyVlan);
}

// What non-Forward next hops do with a packet; shared by both families. `dst` (`len`
// bytes) is the destination, which is the neighbor to resolve on a connected route.
inline void exception(Burst &b, Worker &w, unsigned i, NhKind kind, bool ttl_expired,
                      const void *dst, unsigned len) {
    switch (kind) {
    case NhKind::Local: {
        // VXLAN to one of our addresses that is not a VTEP address.
        const rte_mbuf *m = b.m[i];
        bool v4 = len == 4;
        auto *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, sizeof(rte_ether_hdr));
        uint8_t proto = v4 ? ip[9] : ip[6];
        if (proto == IPPROTO_UDP &&
            is_vxlan_port(m, kUdpOff + (v4 ? sizeof(rte_ipv4_hdr) : sizeof(rte_ipv6_hdr)),
                          w.ov->params()))
            return b.drop(i, Drop::vxlan_wrong_dst);
        return b.punt(i, Punt::local);
    }
    case NhKind::Resolve:
    case NhKind::Unresolved: {
        if (ttl_expired) return b.drop(i, Drop::ttl_exceeded);
        uint32_t key = kind == NhKind::Resolve ? rte_hash_crc(dst, len, 0) : b.nh[i];
        if (!w.allow_resolve(key, rte_rdtsc())) return b.drop(i, Drop::neigh_unresolved);
        return b.punt(i, Punt::resolve);
    }
    case NhKind::Blackhole:
        return b.drop(i, Drop::blackhole);
    default:
        return b.drop(i, Drop::no_route);
    }
}

// TTL - 1 and checksum + 0x0100 with the end-around carry (RFC 1624), as one read-modify-
// write of header bytes 8-11 (TTL, protocol, checksum) seen as a little-endian word:
// adding 0xffff subtracts 1 from the TTL (> 1 here) and carries 1 into the checksum.
inline void ttl_decrement4(rte_ipv4_hdr *ip, uint32_t ttl_word) {
    uint64_t y = uint64_t(ttl_word) + 0xffff;
    y += (y >> 32) << 16;
    auto w = static_cast<uint32_t>(y);
    std::memcpy(&ip->time_to_live, &w, 4);
}

// Not a plain forward: which reason, or which overlay next hop, in the original order.
[[gnu::noinline]] inline void forward4_other(Burst &b, Worker &w, unsigned k, uint32_t id,
                                             NhView view) {
    unsigned i = b.idx4[k];
    auto *ip = rte_pktmbuf_mtod_offset(b.m[i], rte_ipv4_hdr *, sizeof(rte_ether_hdr));
    Nh nh;
    _mm_store_si128(reinterpret_cast<__m128i *>(&nh), view.v);
    b.nh[i] = id;
    uint32_t ttl_word;
    std::memcpy(&ttl_word, &ip->time_to_live, 4);
    bool expired = uint8_t(ttl_word) <= 1;
    if (nh.kind < NhKind::Forward) return exception(b, w, i, nh.kind, expired, &b.dst4[k], 4);
    if (expired) return b.drop(i, Drop::ttl_exceeded);
    if (nh.kind != NhKind::Forward) { // Bridge (forward4 takes a Tunnel with TTL left)
        ttl_decrement4(ip, ttl_word);
        return bridge_next(b, w, i, view);
    }
    if (rte_be_to_cpu_16(ip->total_length) > w.ports[nh.port].mtu)
        return b.drop(i, Drop::mtu_exceeded);
}

// `from`: the first packet of the route list still to forward (plain4 did the others).
inline void forward4(Burst &b, Worker &w, unsigned from = 0) {
    const Nh *table = w.fib->nexthops();
    const PortInfo *ports = w.ports;
    const unsigned n = b.n4;
    for (unsigned k = from; k < n; k++) {
        unsigned i = b.idx4[k];
        auto id = static_cast<uint32_t>(b.nh4[k]);
        auto *frame = rte_pktmbuf_mtod(b.m[i], uint8_t *);
        auto *ip = reinterpret_cast<rte_ipv4_hdr *>(frame + sizeof(rte_ether_hdr));
        NhView nh = nh_view(table, id);
        uint32_t ttl_word;
        std::memcpy(&ttl_word, &ip->time_to_live, 4);
        if (unlikely(nh.kind() != NhKind::Forward)) {
            // One hash for both the ECMP member and the tunnel's UDP source port.
            const uint32_t hash = flow_hash4(ip);
            if (nh.kind() == NhKind::Ecmp) nh = ecmp_member(w, nh, id, hash);
            if (nh.kind() == NhKind::Tunnel && uint8_t(ttl_word) > 1) { // routed into the overlay
                ttl_decrement4(ip, ttl_word);
                tunnel_next(b, w, i, frame, nh, hash);
                continue;
            }
            if (nh.kind() != NhKind::Forward) {
                forward4_other(b, w, k, id, nh);
                continue;
            }
        }
        uint16_t port = nh.port();
        if (unlikely((uint8_t(ttl_word) <= 1) |
                     (rte_be_to_cpu_16(ip->total_length) > ports[port].mtu))) {
            forward4_other(b, w, k, id, nh);
            continue;
        }
        ttl_decrement4(ip, ttl_word);
        rewrite_l2(frame, nh);
        b.out_port[i] = port;
    }
}

[[gnu::noinline]] inline void forward6_other(Burst &b, Worker &w, unsigned k, uint32_t id,
                                             NhView view) {
    unsigned i = b.idx6[k];
    auto *ip = rte_pktmbuf_mtod_offset(b.m[i], rte_ipv6_hdr *, sizeof(rte_ether_hdr));
    Nh nh;
    _mm_store_si128(reinterpret_cast<__m128i *>(&nh), view.v);
    b.nh[i] = id;
    bool expired = ip->hop_limits <= 1;
    if (nh.kind < NhKind::Forward) return exception(b, w, i, nh.kind, expired, b.dst6[k], 16);
    if (expired) return b.drop(i, Drop::ttl_exceeded);
    if (nh.kind != NhKind::Forward) { // Bridge (forward6 takes a Tunnel with TTL left)
        ip->hop_limits--;
        return bridge_next(b, w, i, view);
    }
    if (rte_be_to_cpu_16(ip->payload_len) + sizeof(rte_ipv6_hdr) > w.ports[nh.port].mtu)
        return b.drop(i, Drop::mtu_exceeded);
}

inline void forward6(Burst &b, Worker &w) {
    const Nh *table = w.fib->nexthops();
    const PortInfo *ports = w.ports;
    const unsigned n = b.n6;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = b.idx6[k];
        auto id = static_cast<uint32_t>(b.nh6[k]);
        auto *frame = rte_pktmbuf_mtod(b.m[i], uint8_t *);
        auto *ip = reinterpret_cast<rte_ipv6_hdr *>(frame + sizeof(rte_ether_hdr));
        NhView nh = nh_view(table, id);
        if (unlikely(nh.kind() != NhKind::Forward)) {
            // One hash for both the ECMP member and the tunnel's UDP source port.
            const uint32_t hash = flow_hash6(ip);
            if (nh.kind() == NhKind::Ecmp) nh = ecmp_member(w, nh, id, hash);
            if (nh.kind() == NhKind::Tunnel && ip->hop_limits > 1) { // routed into the overlay
                ip->hop_limits--;
                tunnel_next(b, w, i, frame, nh, hash);
                continue;
            }
            if (nh.kind() != NhKind::Forward) {
                forward6_other(b, w, k, id, nh);
                continue;
            }
        }
        uint16_t port = nh.port();
        if (unlikely(
                (ip->hop_limits <= 1) |
                (rte_be_to_cpu_16(ip->payload_len) + sizeof(rte_ipv6_hdr) > ports[port].mtu))) {
            forward6_other(b, w, k, id, nh);
            continue;
        }
        ip->hop_limits--;
        rewrite_l2(frame, nh);
        b.out_port[i] = port;
    }
}

inline void forward(Burst &b, Worker &w) {
    forward4(b, w);
    forward6(b, w);
}

} // namespace vleaf::dp
