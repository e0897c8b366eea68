// Stage: turn each route result into an action. Forwarded packets get their TTL or
// hop limit decremented (IPv4 checksum updated incrementally, RFC 1624) and their
// Ethernet header rewritten for the next hop; ECMP picks a member by 5-tuple hash.
// Overlay next hops hand the packet on: Tunnel to encapsulation (inner destination MAC
// the remote router MAC, RFC 9135), Bridge to the bridge domain of the anycast gateway.
#pragma once

#include "dataplane/worker.hpp"

#include "dataplane/parse.hpp"

#include <rte_hash_crc.h>
#include <rte_ip.h>

namespace vleaf::dp {

inline uint32_t flow_hash4(const rte_ipv4_hdr *ip) {
    uint32_t h =
        rte_hash_crc_8byte((uint64_t(ip->src_addr) << 32) | ip->dst_addr, ip->next_proto_id);
    if (ip->next_proto_id == IPPROTO_TCP || ip->next_proto_id == IPPROTO_UDP)
        h = rte_hash_crc_4byte(*reinterpret_cast<const uint32_t *>(ip + 1), h);
    return h;
}

inline uint32_t flow_hash6(const rte_ipv6_hdr *ip) {
    uint32_t h = rte_hash_crc(ip->src_addr, 32, ip->proto); // source and destination
    if (ip->proto == IPPROTO_TCP || ip->proto == IPPROTO_UDP)
        h = rte_hash_crc_4byte(*reinterpret_cast<const uint32_t *>(ip + 1), h);
    return h;
}

// Follows an ECMP next hop to the member chosen by `hash` and records the member's id.
inline Nh pick_nexthop(const Worker &w, uint32_t &id, uint32_t hash_of_flow) {
    Nh nh = nh_load(&w.fib->nexthops()[id]);
    if (nh.kind == NhKind::Ecmp) {
        // Multiply-shift maps the hash onto [0, n) evenly without a division.
        unsigned k = static_cast<unsigned>((uint64_t(hash_of_flow) * nh.n_members) >> 32);
        id = w.fib->groups()[nh.group].members[k];
        nh = nh_load(&w.fib->nexthops()[id]);
        if (nh.kind == NhKind::Ecmp) nh.kind = NhKind::NoRoute; // nested groups are not built
    }
    return nh;
}

inline void rewrite_l2(rte_mbuf *m, const Nh &nh, const Worker &w) {
    auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
    rte_ether_addr_copy(&nh.mac, &eth->dst_addr);
    rte_ether_addr_copy(&w.ports[nh.port].mac, &eth->src_addr);
}

// A routed packet (TTL already decremented) leaving through the overlay.
inline void overlay_next(Burst &b, const Worker &w, unsigned i, const Nh &nh) {
    auto *eth = rte_pktmbuf_mtod(b.m[i], rte_ether_hdr *);
    rte_ether_addr_copy(&nh.mac, &eth->dst_addr);
    if (nh.kind == NhKind::Tunnel) {
        rte_ether_addr_copy(&w.ov->router_macs()[b.vrf[i]], &eth->src_addr);
        b.from[i] = From::Gateway; // routed: an error about it is routed back, not bridged
        return b.to_encap(i, nh.port, nh.group);
    }
    rte_ether_addr_copy(&w.ov->bds()[nh.port].gw_mac, &eth->src_addr);
    b.to_bridge(i, nh.port, From::Gateway, kAnyVlan);
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

inline void forward4(Burst &b, Worker &w) {
    for (unsigned k = 0; k < b.n4; k++) {
        unsigned i = b.idx4[k];
        rte_mbuf *m = b.m[i];
        auto *ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr *, sizeof(rte_ether_hdr));
        Nh nh = nh_load(&w.fib->nexthops()[b.nh[i]]);
        if (nh.kind == NhKind::Ecmp) nh = pick_nexthop(w, b.nh[i], flow_hash4(ip));
        bool expired = ip->time_to_live <= 1;
        if (nh.kind != NhKind::Forward) {
            if (nh.kind < NhKind::Tunnel) {
                exception(b, w, i, nh.kind, expired, &b.dst4[k], 4);
                continue;
            }
            if (expired) {
                b.drop(i, Drop::ttl_exceeded);
                continue;
            }
            ip->time_to_live--;
            uint32_t sum = uint32_t(ip->hdr_checksum) + rte_cpu_to_be_16(0x0100);
            ip->hdr_checksum = static_cast<uint16_t>(sum + (sum >> 16));
            overlay_next(b, w, i, nh);
            continue;
        }
        if (expired) {
            b.drop(i, Drop::ttl_exceeded);
            continue;
        }
        if (rte_be_to_cpu_16(ip->total_length) > w.ports[nh.port].mtu) {
            b.drop(i, Drop::mtu_exceeded);
            continue;
        }
        ip->time_to_live--;
        uint32_t sum = uint32_t(ip->hdr_checksum) + rte_cpu_to_be_16(0x0100);
        ip->hdr_checksum = static_cast<uint16_t>(sum + (sum >> 16));
        rewrite_l2(m, nh, w);
        b.out_port[i] = nh.port;
    }
}

inline void forward6(Burst &b, Worker &w) {
    for (unsigned k = 0; k < b.n6; k++) {
        unsigned i = b.idx6[k];
        rte_mbuf *m = b.m[i];
        auto *ip = rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr *, sizeof(rte_ether_hdr));
        Nh nh = nh_load(&w.fib->nexthops()[b.nh[i]]);
        if (nh.kind == NhKind::Ecmp) nh = pick_nexthop(w, b.nh[i], flow_hash6(ip));
        bool expired = ip->hop_limits <= 1;
        if (nh.kind != NhKind::Forward) {
            if (nh.kind < NhKind::Tunnel) {
                exception(b, w, i, nh.kind, expired, b.dst6[k], 16);
                continue;
            }
            if (expired) {
                b.drop(i, Drop::ttl_exceeded);
                continue;
            }
            ip->hop_limits--;
            overlay_next(b, w, i, nh);
            continue;
        }
        if (expired) {
            b.drop(i, Drop::ttl_exceeded);
            continue;
        }
        if (rte_be_to_cpu_16(ip->payload_len) + sizeof(rte_ipv6_hdr) > w.ports[nh.port].mtu) {
            b.drop(i, Drop::mtu_exceeded);
            continue;
        }
        ip->hop_limits--;
        rewrite_l2(m, nh, w);
        b.out_port[i] = nh.port;
    }
}

inline void forward(Burst &b, Worker &w) {
    forward4(b, w);
    forward6(b, w);
}

} // namespace vleaf::dp
