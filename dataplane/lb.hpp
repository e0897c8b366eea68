// Stage: service load balancing, between parse and route. A TCP/UDP packet to a VIP:port
// gets its backend from the worker's flow table, or for a new flow from the service's
// Maglev table (the same on every vleaf given the same backends); then DNAT rewrites its
// destination, or DSR tunnels it (IP-in-IP) to the backend's node. Either way the route
// stage then routes it to its new destination. Replies from a DNAT backend get the VIP
// back as their source (from the flow table: see lb_tables.hpp). Other traffic costs a bit
// test per packet.
#pragma once

#include "control/services/maglev.hpp"
#include "dataplane/csum.hpp"
#include "dataplane/worker.hpp"

#include <rte_ip.h>

namespace vleaf::dp {

inline constexpr unsigned kLbAgeScan = 8; // flow slots the ager visits per burst

// Replaces an address (alen bytes) and its port in place, updating the IPv4 header's
// checksum (ip_csum, null for IPv6) and the L4 one, which also covers the address through
// the pseudo-header, by precomputed deltas. A zero UDP checksum over IPv4 means "none" and
// stays so.
inline void nat_rewrite(uint8_t *addr, uint16_t *port, const void *to_addr, uint16_t to_port,
                        unsigned alen, uint16_t *ip_csum, uint16_t *l4_csum, bool udp,
                        uint16_t ip_delta, uint16_t l4_delta) {
    if (ip_csum) *ip_csum = csum_apply(*ip_csum, ip_delta);
    if (!udp || *l4_csum != 0) {
        uint16_t c = csum_apply(*l4_csum, l4_delta);
        *l4_csum = udp && c == 0 ? 0xffff : c;
    }
    std::memcpy(addr, to_addr, alen);
    *port = to_port;
}

inline uint16_t *l4_csum(uint8_t *l4, uint8_t proto) {
    return reinterpret_cast<uint16_t *>(l4 + (proto == IPPROTO_TCP ? 16 : 6));
}

// Prepends an outer IPv4 (proto 4) or IPv6 (next header 41) header behind the Ethernet one.
inline bool lb_encap(rte_mbuf *m, bool v6, const uint8_t *src, const uint8_t *dst) {
    unsigned hl = v6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_prepend(m, uint16_t(hl)));
    if (!p) return false;
    std::memmove(p, p + hl, sizeof(rte_ether_hdr));
    uint8_t *outer = p + sizeof(rte_ether_hdr), *inner = outer + hl;
    if (!v6) {
        auto *in = reinterpret_cast<const rte_ipv4_hdr *>(inner);
        auto *o = reinterpret_cast<rte_ipv4_hdr *>(outer);
        o->version_ihl = 0x45;
        o->type_of_service = in->type_of_service;
        o->total_length = rte_cpu_to_be_16(uint16_t(rte_be_to_cpu_16(in->total_length) + hl));
        o->packet_id = 0;
        o->fragment_offset = in->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
        o->time_to_live = in->time_to_live;
        o->next_proto_id = IPPROTO_IPIP;
        o->hdr_checksum = 0;
        std::memcpy(&o->src_addr, src, 4);
        std::memcpy(&o->dst_addr, dst, 4);
        o->hdr_checksum = rte_ipv4_cksum(o);
    } else {
        auto *in = reinterpret_cast<const rte_ipv6_hdr *>(inner);
        auto *o = reinterpret_cast<rte_ipv6_hdr *>(outer);
        o->vtc_flow = in->vtc_flow & rte_cpu_to_be_32(0xfff00000); // version and class
        o->payload_len = rte_cpu_to_be_16(uint16_t(rte_be_to_cpu_16(in->payload_len) + hl));
        o->proto = IPPROTO_IPV6;
        o->hop_limits = in->hop_limits;
        std::memcpy(o->src_addr, src, 16);
        std::memcpy(o->dst_addr, dst, 16);
    }
    return true;
}

// A packet the stage looks up: to a VIP (svc: its service) or perhaps a reply of a DNAT flow
// (svc null).
struct LbCand {
    FlowKey key;
    const LbService *svc;
    uint8_t *l3;
    uint32_t sig;
    uint8_t at;   // packet index
    uint8_t slot; // its index in idx4 / idx6
    uint8_t proto;
    uint8_t vrf;
};

// The IP header's fields the stage reads and writes, for both families.
template <bool V6> struct LbHdr {
    static constexpr unsigned kLen = V6 ? sizeof(rte_ipv6_hdr) : sizeof(rte_ipv4_hdr);
    static constexpr unsigned kAlen = V6 ? 16 : 4;
    static uint8_t *src(uint8_t *l3) { return l3 + (V6 ? 8 : 12); }
    static uint8_t *dst(uint8_t *l3) { return l3 + (V6 ? 24 : 16); }
    static uint16_t *ports(uint8_t *l3) { return reinterpret_cast<uint16_t *>(l3 + kLen); }
    static uint16_t *ip_csum(uint8_t *l3) {
        return V6 ? nullptr : reinterpret_cast<uint16_t *>(l3 + 10);
    }
    static uint16_t *l4_csum(uint8_t *l3, uint8_t proto) {
        return reinterpret_cast<uint16_t *>(l3 + kLen + (proto == IPPROTO_TCP ? 16 : 6));
    }
    static unsigned l3_len(const uint8_t *l3) {
        uint16_t len;
        std::memcpy(&len, l3 + (V6 ? 4 : 2), 2);
        return (V6 ? kLen : 0) + rte_be_to_cpu_16(len);
    }
};

// The IPv6 key of a candidate (see FlowKey6).
inline FlowKey6 flow_key6_of(uint8_t *l3, FlowKind kind, uint8_t vrf) {
    using H = LbHdr<true>;
    FlowKey6 k;
    uint16_t *ports = H::ports(l3);
    std::memcpy(&k.w[0], H::src(l3), 32); // source and destination
    k.w[4] = flow_tuple_word(ports[0], ports[1], l3[6], vrf) | flow_kind(kind);
    return k;
}

inline bool lb_l4(uint8_t proto) {
    return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

// Whether the L4 header up to its checksum is missing from the packet or its first segment.
template <bool V6> inline bool lb_truncated(const rte_mbuf *m, const uint8_t *l3, uint8_t proto) {
    using H = LbHdr<V6>;
    const unsigned need =
        H::kLen + (proto == IPPROTO_TCP ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr));
    return H::l3_len(l3) < need || m->data_len < sizeof(rte_ether_hdr) + need;
}

// Whether an IPv4 packet (`addrs` and `ports` as loaded from its header) may be a reply of
// a DNAT flow: its source is a backend's address and port.
inline bool lb_from_backend4(const LbState &st, uint64_t addrs, uint32_t ports) {
    return test_bit(st.bport_bits, rte_be_to_cpu_16(uint16_t(ports))) &&
           test_bit(st.baddr_bits, addr_bit4(uint32_t(addrs)));
}

// The first pass over the burst's IPv4 packets: picks the TCP/UDP packets to a VIP and
// those that may be replies of DNAT flows, makes their keys and prefetches their primary
// buckets; lb_vips4 finds the requests' services. Other traffic costs two bit tests. A key
// is the packet's own 5-tuple, so its bucket does not wait for the VIP index lookup. The
// pass is short on purpose: with a big table each prefetch waits for its page walk (nested
// in a VM) before it retires, and the reorder buffer holds several of these iterations, so
// the burst's walks overlap one another and lb_vips4's work overlaps the last of them.
inline void lb_pick4(const Burst &b, const LbState &st, const LbFlows &fl, LbCand *c, unsigned &n) {
    for (unsigned k = 0; k < b.n4; k++) {
        const unsigned i = b.idx4[k];
        uint8_t *l3 = rte_pktmbuf_mtod_offset(b.m[i], uint8_t *, sizeof(rte_ether_hdr));
        const uint8_t proto = l3[9]; // parse refused IPv4 options
        if (!lb_l4(proto)) continue;
        // Source and destination, and the two ports, each in one load.
        uint64_t addrs;
        uint32_t ports;
        std::memcpy(&addrs, l3 + 12, 8);
        std::memcpy(&ports, l3 + 20, 4);
        const uint16_t dport = uint16_t(ports >> 16);
        FlowKind kind = kFlowRequest4;
        if (!test_bit(st.vport_bits, rte_be_to_cpu_16(dport)) ||
            !test_bit(st.vaddr_bits, addr_bit4(uint32_t(addrs >> 32)))) {
            if (!lb_from_backend4(st, addrs, ports)) continue;
            kind = kFlowReply4;
        }
        const uint8_t vrf = b.vrf4[k];
        const FlowKey key{addrs,
                          flow_tuple_word(uint16_t(ports), dport, proto, vrf) | flow_kind(kind)};
        const uint32_t sig = flow_sig(key);
        flow_prefetch_bucket(fl, flow_bucket1(fl, sig));
        c[n++] = {key, nullptr, l3, sig, uint8_t(i), uint8_t(k), proto, vrf};
    }
}

// The services of lb_pick4's requests; drops truncated ones, and leaves out requests that
// are the bit filters' false positives and cannot be replies either, and truncated replies.
// A burst's packets to a VIP mostly go to a few services in runs: the index is looked up
// once per run.
inline void lb_vips4(Burst &b, const LbState &st, LbCand *c, unsigned &n, bool &dropped) {
    uint64_t last = ~uint64_t(0); // VIP, port, protocol, VRF: never all ones
    const LbService *last_svc = nullptr;
    unsigned kept = 0;
    for (unsigned j = 0; j < n; j++) {
        LbCand &x = c[j];
        if (x.key.k1 >> 56 == kFlowRequest4) {
            const uint32_t dst = uint32_t(x.key.k0 >> 32);
            // Destination port and protocol, as in the key's tuple word.
            const uint64_t port_proto = (x.key.k1 >> 16) & 0xffffff;
            const uint64_t vip = dst | port_proto << 32 | uint64_t(x.vrf) << 56;
            if (vip != last) {
                last = vip;
                const uint32_t at = st.vips.find({{dst, 0, x.vrf | port_proto << 32}});
                last_svc = at == LbIndex::kNone ? nullptr : st.svc[at];
            }
            x.svc = last_svc;
            if (!x.svc) { // the bit filters' false positive
                if (!lb_from_backend4(st, x.key.k0, uint32_t(x.key.k1))) continue;
                x.key.k1 = (x.key.k1 & ~flow_kind(FlowKind(0xff))) | flow_kind(kFlowReply4);
                x.sig = flow_sig(x.key);
            }
        }
        if (lb_truncated<false>(b.m[x.at], x.l3, x.proto)) {
            if (x.svc) {
                b.drop(x.at, Drop::lb_truncated);
                dropped = true;
            }
            continue;
        }
        if (kept != j) c[kept] = x;
        kept++;
    }
    n = kept;
}

// The same for IPv6, whose way keys are fingerprints of longer keys (kept in k6).
inline void lb_pick6(Burst &b, const LbState &st, const LbFlows &fl, LbCand *c, FlowKey6 *k6,
                     unsigned &n, bool &dropped) {
    using H = LbHdr<true>;
    for (unsigned k = 0; k < b.n6; k++) {
        const unsigned i = b.idx6[k];
        uint8_t *l3 = rte_pktmbuf_mtod_offset(b.m[i], uint8_t *, sizeof(rte_ether_hdr));
        const uint8_t proto = l3[6];
        if (!lb_l4(proto)) continue;
        const uint16_t *ports = H::ports(l3);
        const uint8_t *src = H::src(l3), *dst = H::dst(l3);
        const uint8_t vrf = b.vrf6[k];
        uint32_t s = LbIndex::kNone;
        if (test_bit(st.vport_bits, rte_be_to_cpu_16(ports[1])) &&
            test_bit(st.vaddr_bits, addr_bit(dst, true)))
            s = st.vips.find(lb_key(dst, true, vrf, ports[1], proto));
        const LbService *svc = s == LbIndex::kNone ? nullptr : st.svc[s];
        if (svc) {
            if (lb_truncated<true>(b.m[i], l3, proto)) {
                b.drop(i, Drop::lb_truncated);
                dropped = true;
                continue;
            }
        } else {
            if (!test_bit(st.bport_bits, rte_be_to_cpu_16(ports[0])) ||
                !test_bit(st.baddr_bits, addr_bit(src, true)) ||
                lb_truncated<true>(b.m[i], l3, proto))
                continue;
        }
        k6[n] = flow_key6_of(l3, svc ? kFlowRequest6 : kFlowReply6, vrf);
        const FlowKey key = flow_key6(k6[n]);
        const uint32_t sig = flow_sig(key);
        flow_prefetch_bucket(fl, flow_bucket1(fl, sig));
        c[n++] = {key, svc, l3, sig, uint8_t(i), uint8_t(k), proto, vrf};
    }
}

// Where a way sends its packets: the IPv4 address in the way, or its IPv6 entry's.
inline const void *way_to(const LbFlows &fl, const FlowWay &w, bool v6) {
    return v6 ? static_cast<const void *>(fl.e6[w.to].to) : &w.to;
}

// A reply of a DNAT flow gets the VIP:port back as its source.
template <bool V6>
inline void lb_reverse(const LbFlows &fl, const LbCand &c, const FlowWay &w, LbCounters &cnt) {
    using H = LbHdr<V6>;
    nat_rewrite(H::src(c.l3), &H::ports(c.l3)[0], way_to(fl, w, V6), w.port_be, H::kAlen,
                H::ip_csum(c.l3), H::l4_csum(c.l3, c.proto), c.proto == IPPROTO_UDP, w.ip_delta,
                w.l4_delta);
    cnt.reverse_nat++;
}

// Sends a request on to its backend: DNAT to `to`:`port_be`, or DSR through a tunnel to
// `to`; then the route stage routes it there. False when it was dropped.
template <bool V6>
inline bool lb_send(Burst &b, const LbCand &c, const LbService &s, const void *to, uint16_t port_be,
                    uint16_t ip_delta, uint16_t l4_delta, LbCounters &cnt) {
    using H = LbHdr<V6>;
    if (s.mode == LbMode::Dnat) {
        nat_rewrite(H::dst(c.l3), &H::ports(c.l3)[1], to, port_be, H::kAlen, H::ip_csum(c.l3),
                    H::l4_csum(c.l3, c.proto), c.proto == IPPROTO_UDP, ip_delta, l4_delta);
        cnt.dnat++;
    } else if (lb_encap(b.m[c.at], V6, s.encap_src, static_cast<const uint8_t *>(to))) {
        cnt.dsr_encap++;
    } else {
        b.drop(c.at, Drop::lb_no_headroom);
        return false;
    }
    if (V6) {
        std::memcpy(b.dst6[c.slot], to, 16);
    } else {
        uint32_t d;
        std::memcpy(&d, to, 4);
        b.dst4[c.slot] = rte_be_to_cpu_32(d);
    }
    return true;
}

// A packet whose way was found: false when it is a request pinned under another mode or
// another service of the same VIP (then lb_balance() pins it again).
template <bool V6>
inline bool lb_hit(Burst &b, const LbFlows &fl, const LbCand &c, FlowWay &w, uint32_t now,
                   bool &dropped, LbCounters &cnt) {
    if (!c.svc) {
        flow_touch(w, now);
        lb_reverse<V6>(fl, c, w, cnt);
        return true;
    }
    const LbService &s = *c.svc;
    if (w.mode != s.mode || w.svc != uint8_t(s.id)) return false;
    flow_touch(w, now);
    cnt.flow_hits++;
    if (!lb_send<V6>(b, c, s, way_to(fl, w, V6), w.port_be, w.ip_delta, w.l4_delta, cnt))
        dropped = true;
    return true;
}

// Finds or adds the way of `key`, and points it at `to`:`port_be`. Null when the table is
// full: the packet is still balanced, its flow not pinned.
template <bool V6>
inline FlowWay *flow_pin(LbFlows &fl, const FlowKey &key, uint32_t sig, const FlowKey6 &k6,
                         FlowWay *w, LbMode mode, uint32_t svc_id, const uint8_t *to,
                         uint16_t port_be, uint16_t ip_delta, uint16_t l4_delta, uint32_t now,
                         LbCounters &cnt) {
    if (!w) {
        if (!(w = flow_insert(fl, key, sig))) {
            cnt.flow_table_full++;
            return nullptr;
        }
        cnt.flows_created++;
    }
    if (V6) {
        fl.e6[w->to].key = k6;
        std::memcpy(fl.e6[w->to].to, to, 16);
    } else {
        std::memcpy(&w->to, to, 4);
    }
    w->port_be = port_be;
    w->ip_delta = ip_delta;
    w->l4_delta = l4_delta;
    w->mode = mode;
    w->svc = uint8_t(svc_id);
    w->seen = now;
    return w;
}

inline uint32_t maglev_hash(uint8_t *l3, bool v6, uint8_t proto) {
    const uint16_t *ports = v6 ? LbHdr<true>::ports(l3) : LbHdr<false>::ports(l3);
    const uint16_t sport = rte_be_to_cpu_16(ports[0]), dport = rte_be_to_cpu_16(ports[1]);
    if (v6) return svc::flow_hash6(LbHdr<true>::src(l3), LbHdr<true>::dst(l3), proto, sport, dport);
    uint32_t src, dst;
    std::memcpy(&src, LbHdr<false>::src(l3), 4);
    std::memcpy(&dst, LbHdr<false>::dst(l3), 4);
    return svc::flow_hash4(rte_be_to_cpu_32(src), rte_be_to_cpu_32(dst), proto, sport, dport);
}

// A packet not settled by its primary bucket: the whole lookup, then for a new flow (or one
// pinned under another mode) the service's Maglev table, and pinning of the flow and, for
// DNAT, of its reply.
template <bool V6>
inline void lb_balance(Burst &b, LbFlows &fl, const LbCand &c, const FlowKey6 &k6, uint32_t now,
                       bool &dropped, LbCounters &cnt) {
    using H = LbHdr<V6>;
    FlowWay *w = V6 ? flow_find6(fl, c.key, c.sig, k6) : flow_find(fl, c.key, c.sig);
    if (!c.svc) {
        if (w) lb_hit<V6>(b, fl, c, *w, now, dropped, cnt);
        return; // else not a flow vleaf translated: routed as is
    }
    if (w && lb_hit<V6>(b, fl, c, *w, now, dropped, cnt)) return;
    const LbService &s = *c.svc;
    uint32_t idx = s.table[svc::slot_of(maglev_hash(c.l3, V6, c.proto), s.table_size)];
    if (idx == svc::kNoBackend) {
        b.drop(c.at, Drop::lb_no_backend);
        dropped = true;
        return;
    }
    const LbBackend &be = s.backends[idx];
    const uint8_t *to = s.mode == LbMode::Dnat ? be.addr : be.node;
    uint16_t *ports = H::ports(c.l3);
    if (flow_pin<V6>(fl, c.key, c.sig, k6, w, s.mode, s.id, to, be.port_be, be.ip_delta,
                     be.l4_delta, now, cnt) &&
        s.mode == LbMode::Dnat) {
        // The reply's way: backend -> client, giving back VIP:port.
        FlowKey rk;
        FlowKey6 rk6{};
        const uint64_t word = flow_tuple_word(be.port_be, ports[0], c.proto, c.vrf);
        if (V6) {
            std::memcpy(&rk6.w[0], be.addr, 16);
            std::memcpy(&rk6.w[2], H::src(c.l3), 16);
            rk6.w[4] = word | flow_kind(kFlowReply6);
            rk = flow_key6(rk6);
        } else {
            uint32_t baddr, client;
            std::memcpy(&baddr, be.addr, 4);
            std::memcpy(&client, H::src(c.l3), 4);
            rk = {baddr | uint64_t(client) << 32, word | flow_kind(kFlowReply4)};
        }
        const uint32_t rsig = flow_sig(rk);
        FlowWay *rw = V6 ? flow_find6(fl, rk, rsig, rk6) : flow_find(fl, rk, rsig);
        flow_pin<V6>(fl, rk, rsig, rk6, rw, s.mode, s.id, s.vip, s.vport_be, be.reply_ip_delta,
                     be.reply_l4_delta, now, cnt);
    }
    if (!lb_send<V6>(b, c, s, to, be.port_be, be.ip_delta, be.l4_delta, cnt)) dropped = true;
}

// Visits kLbAgeScan buckets per burst, freeing the ways of flows idle for the timeout, and
// prefetches those of the next burst: a big table's lines are cold.
inline void lb_age(LbFlows &fl, uint32_t now, LbCounters &c) {
    for (unsigned k = 0; k < kLbAgeScan; k++) {
        FlowBucket &bk = fl.bucket[fl.cursor];
        fl.cursor = (fl.cursor + 1) & fl.mask;
        for (FlowWay &w : bk.way) {
            if (!w.key.k1 || now - w.seen < fl.timeout) continue;
            flow_free(fl, w);
            c.flows_aged++;
        }
    }
    for (unsigned k = 0; k < kLbAgeScan; k++) flow_prefetch_bucket(fl, (fl.cursor + k) & fl.mask);
}

inline void lb(Burst &b, Worker &w) {
    const LbState *st = w.lb ? w.lb->state() : nullptr;
    if (!st || st->empty()) return;
    LbFlows &fl = *w.flows;
    LbCounters &cnt = w.stats.lb;
    // rdtsc takes ~100 cycles on this project's VMs: issued first, it overlaps with the keys.
    const uint32_t now = flow_now();

    // Passes over the burst, so that the flow table's cache misses overlap: keys and primary
    // bucket prefetches for the whole burst (IPv4: the services looked up after all the
    // prefetches, see lb_pick4); then the flows found in their primary bucket (most
    // established IPv4 flows) are done while the others' second lines are prefetched; then
    // the others.
    LbCand c[kMaxBurst];
    FlowKey6 k6[kMaxBurst]; // IPv6 candidates only
    unsigned n = 0;
    bool dropped = false;
    lb_pick4(b, *st, fl, c, n);
    lb_vips4(b, *st, c, n, dropped);
    const unsigned n4 = n;
    lb_pick6(b, *st, fl, c, k6, n, dropped);
    uint8_t rest[kMaxBurst];
    unsigned nrest = 0;
    for (unsigned j = 0; j < n; j++) {
        const uint32_t b1 = flow_bucket1(fl, c[j].sig);
        FlowWay *way = flow_in(fl, b1, c[j].key);
        if (j < n4 && way && lb_hit<false>(b, fl, c[j], *way, now, dropped, cnt)) continue;
        if (j >= n4 && way) rte_prefetch0(&fl.e6[way->to]);
        flow_prefetch_bucket(fl, flow_bucket2(fl, b1, c[j].sig));
        rest[nrest++] = uint8_t(j);
    }
    for (unsigned r = 0; r < nrest; r++) {
        const unsigned j = rest[r];
        if (j < n4)
            lb_balance<false>(b, fl, c[j], k6[j], now, dropped, cnt);
        else
            lb_balance<true>(b, fl, c[j], k6[j], now, dropped, cnt);
    }
    if (dropped) b.compact();
    lb_age(fl, now, cnt);
}

} // namespace vleaf::dp
