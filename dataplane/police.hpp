// Control-plane policing: each worker lets punts through to the control thread at a rate
// per class (config punt_police), so that a flood of one kind (ARP requests for our
// address) neither keeps the control thread busy nor crowds out another (BGP). Buckets
// are the worker's own: no shared state in the fast path.
#pragma once

#include "vleaf/stats.hpp"

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

namespace vleaf::dp {

// `exempt`: punts already limited per destination or source (resolve_gap, icmp_gap).
enum class PuntClass : uint8_t { arp_nd, host, bgp, count, exempt = count };

// Drop reasons in class order.
static_assert(int(Drop::punt_policed_host) == int(Drop::punt_policed_arp_nd) + 1);
static_assert(int(Drop::punt_policed_bgp) == int(Drop::punt_policed_arp_nd) + 2);

inline bool is_bgp(const rte_mbuf *m) {
    constexpr unsigned l3 = sizeof(rte_ether_hdr);
    if (m->data_len < l3 + sizeof(rte_ipv4_hdr)) return false;
    auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
    auto *ip = rte_pktmbuf_mtod_offset(m, const uint8_t *, l3);
    unsigned l4;
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) &&
        ip[9] == IPPROTO_TCP) // parse() let only option-less headers through
        l4 = l3 + sizeof(rte_ipv4_hdr);
    else if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6) && ip[6] == IPPROTO_TCP)
        l4 = l3 + sizeof(rte_ipv6_hdr);
    else
        return false;
    if (m->data_len < l4 + sizeof(rte_tcp_hdr)) return false;
    auto *tcp = rte_pktmbuf_mtod_offset(m, const rte_tcp_hdr *, l4);
    constexpr uint16_t bgp = RTE_BE16(179);
    return tcp->src_port == bgp || tcp->dst_port == bgp;
}

inline PuntClass punt_class(uint8_t reason, const rte_mbuf *m) {
    switch (static_cast<Punt>(reason)) {
    case Punt::arp:
    case Punt::nd:
    case Punt::bd_arp:
    case Punt::bd_nd:
        return PuntClass::arp_nd;
    case Punt::local:
        return is_bgp(m) ? PuntClass::bgp : PuntClass::host;
    default:
        return PuntClass::exempt;
    }
}

// A token bucket kept in clock cycles: a packet takes `cost` cycles of credit, credit
// grows with the clock up to `depth` (the burst let through after a quiet time).
struct PuntBucket {
    uint64_t cost = 0; // 0: not policed
    uint64_t depth = 0;
    uint64_t credit = 0;
    uint64_t last = 0; // the clock when credit was last brought up to date

    void set(uint64_t rate, uint64_t burst, uint64_t hz) {
        cost = hz / rate;
        depth = cost * burst;
        credit = depth;
        last = 0;
    }
    bool take(uint64_t now) {
        if (cost == 0) return true;
        uint64_t c = credit + (now - last);
        credit = c > depth || c < credit ? depth : c; // full, or the sum wrapped
        last = now;
        if (credit < cost) return false;
        credit -= cost;
        return true;
    }
};

// The burst each class may send at once: a tenth of a second at its rate, at least two
// full bursts of packets (a link coming up with many hosts resolving at once).
inline uint64_t punt_burst(uint64_t rate) {
    return rate / 10 > 64 ? rate / 10 : 64;
}

} // namespace vleaf::dp
