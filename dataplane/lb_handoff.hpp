// Stage: LB handoff, right before the LB stage, with more than one worker. A DNAT flow's
// request and reply entries live in one worker's flow table, but RSS spreads a request
// and its reply (different 5-tuples) over any workers. As VPP's NAT handoff does, every
// LB packet therefore goes to the flow's owner, a function of the client side only (its
// address, port, protocol and VRF), which a request (client = source) and its reply
// (client = destination) both compute. Packets another worker owns leave the burst into
// that worker's handoff ring (multi-producer, single-consumer, fixed size; full: counted
// drop lb_handoff_full); the owner drains its ring into the LB stage, from where they go
// on through route, forward and the rest (pipeline_handed_in). With one worker the stage
// is a single test per burst.
#pragma once

#include "dataplane/lb_tables.hpp"
#include "dataplane/worker.hpp"

#include <rte_ip.h>

#include <bit>

namespace vleaf::dp {

// Which worker owns the flow of client `addr` (4 or 16 bytes, network order) and `port_be`.
inline unsigned lb_owner(const uint8_t *addr, bool v6, uint16_t port_be, uint8_t proto, uint8_t vrf,
                         unsigned n_workers) {
    uint64_t w[2] = {};
    std::memcpy(w, addr, v6 ? 16 : 4);
    const uint64_t rest = port_be | uint64_t(proto) << 16 | uint64_t(vrf) << 24;
    const uint32_t h = crc32c64(rest, crc32c64(w[1], crc32c64(w[0], 0x68616e64)));
    return unsigned((uint64_t(h) * n_workers) >> 32); // multiply-shift: no division
}

inline constexpr unsigned kNoOwner = ~0u; // not an LB packet: stays where it is

// The owner of a routed packet, or kNoOwner. The same decision as lb_pick4/6: to a VIP
// (the client is the source), else perhaps a DNAT reply (the client is the destination).
// The exact VIP lookup is needed only when both filters pass.
template <bool V6>
inline unsigned lb_packet_owner(const LbState &st, const uint8_t *l3, uint8_t vrf, unsigned n) {
    constexpr unsigned kLen = V6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    const uint8_t proto = l3[V6 ? 6 : 9];
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return kNoOwner;
    const uint8_t *src = l3 + (V6 ? 8 : 12), *dst = l3 + (V6 ? 24 : 16);
    uint16_t sport, dport;
    std::memcpy(&sport, l3 + kLen, 2);
    std::memcpy(&dport, l3 + kLen + 2, 2);
    auto bit = [](const uint8_t *a) {
        if (V6) return addr_bit(a, true);
        uint32_t v;
        std::memcpy(&v, a, 4);
        return addr_bit4(v);
    };
    bool vip =
        test_bit(st.vport_bits, rte_be_to_cpu_16(dport)) && test_bit(st.vaddr_bits, bit(dst));
    const bool reply =
        test_bit(st.bport_bits, rte_be_to_cpu_16(sport)) && test_bit(st.baddr_bits, bit(src));
    if (vip && reply) vip = st.vips.find(lb_key(dst, V6, vrf, dport, proto)) != LbIndex::kNone;
    if (vip) return lb_owner(src, V6, sport, proto, vrf, n);
    if (reply) return lb_owner(dst, V6, dport, proto, vrf, n);
    return kNoOwner;
}

inline void lb_handoff(Burst &b, Worker &w) {
    if (!w.handoff) return; // one worker
    const LbState *st = w.lb->state();
    if (!st || st->empty()) return;
    const unsigned n = w.n_workers, self = w.rcu_id;
    uint8_t owner[kMaxBurst];
    uint64_t away = 0, v6 = 0; // bits by packet index
    auto owners = [&]<bool V6>(const uint8_t *idx, const uint8_t *vrf, unsigned count) {
        for (unsigned k = 0; k < count; k++) {
            const unsigned i = idx[k];
            auto *l3 = rte_pktmbuf_mtod_offset(b.m[i], const uint8_t *, sizeof(rte_ether_hdr));
            const unsigned o = lb_packet_owner<V6>(*st, l3, vrf[k], n);
            owner[i] = uint8_t(o);
            away |= uint64_t(o != kNoOwner && o != self) << i;
            v6 |= uint64_t(V6) << i;
        }
    };
    owners.template operator()<false>(b.idx4, b.vrf4, b.n4);
    owners.template operator()<true>(b.idx6, b.vrf6, b.n6);
    if (!away) return;
    // One enqueue per owner.
    HandoffMsg msg[kMaxBurst];
    uint8_t at[kMaxBurst];
    while (away) {
        const unsigned o = owner[std::countr_zero(away)];
        unsigned m = 0;
        for (uint64_t left = away; left; left &= left - 1) {
            const unsigned i = unsigned(std::countr_zero(left));
            if (owner[i] != o) continue;
            msg[m] = {b.m[i], b.port, b.vrf[i], uint8_t(v6 >> i & 1)};
            at[m++] = uint8_t(i);
            away &= ~(uint64_t(1) << i);
        }
        const unsigned ok =
            rte_ring_mp_enqueue_burst_elem(w.handoff[o], msg, sizeof(HandoffMsg), m, nullptr);
        for (unsigned j = 0; j < ok; j++) b.action[at[j]] = Action::Done;
        for (unsigned j = ok; j < m; j++) b.drop(at[j], Drop::lb_handoff_full);
        w.stats.lb.handoff_out += ok;
    }
    b.compact();
}

// Starts a burst of handed-in packets: those of `msg` that came in on the port of the first
// one still in `left` (a burst has one receiving port), which leave `left`.
inline void handed_in(Burst &b, const HandoffMsg *msg, uint64_t &left) {
    b.n = b.n4 = b.n6 = b.nd = b.n2 = b.n2in = b.ne = 0;
    b.entry = Entry::Port;
    b.port = msg[std::countr_zero(left)].port;
    for (uint64_t l = left; l; l &= l - 1) {
        const unsigned k = unsigned(std::countr_zero(l));
        const HandoffMsg &h = msg[k];
        if (h.port != b.port) continue;
        left &= ~(uint64_t(1) << k);
        const unsigned i = b.n++;
        b.m[i] = h.m;
        auto *l3 = rte_pktmbuf_mtod_offset(h.m, const uint8_t *, sizeof(rte_ether_hdr));
        if (h.v6) {
            b.to_route6(i, l3 + 24, h.vrf);
        } else {
            uint32_t dst;
            std::memcpy(&dst, l3 + 16, 4);
            b.to_route4(i, rte_be_to_cpu_32(dst), h.vrf);
        }
    }
}

} // namespace vleaf::dp
