// Stage: service load balancing, between parse and route. A TCP/UDP packet to a VIP:port
// gets its backend from the worker's flow table, or for a new flow from the service's
// Maglev table (the same on every vleaf given the same backends); then DNAT rewrites its
// destination, or DSR tunnels it (IP-in-IP) to the backend's node. Either way the route
// stage then routes it to its new destination. Replies from a DNAT backend get the VIP
// back as their source (from the flow table: see lb_tables.hpp). Other traffic costs a bit
// test per packet.
#pragma once

#include "control/services/maglev.hpp"
#include "dataplane/worker.hpp"

#include <rte_ip.h>

namespace vleaf::dp {

inline constexpr unsigned kLbAgeScan = 8; // flow slots the ager visits per burst

// RFC 1624 eqn. 3 over 16-bit words as they sit in the packet: one's complement sums do not
// depend on byte order, so no swapping is needed.
inline uint16_t csum_update(uint16_t sum, const uint16_t *old, const uint16_t *now,
                            unsigned words) {
    uint32_t s = uint16_t(~sum);
    for (unsigned k = 0; k < words; k++) s += uint16_t(~old[k]) + uint32_t(now[k]);
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return uint16_t(~s);
}

// Replaces an address (alen bytes) and its port in place with incremental checksum updates:
// the IPv4 header's (ip_csum, null for IPv6) and the L4 one, which also covers the address
// through the pseudo-header. A zero UDP checksum over IPv4 means "none" and stays so.
inline void nat_rewrite(uint8_t *addr, uint16_t *port, const uint8_t *to_addr, uint16_t to_port,
                        unsigned alen, uint16_t *ip_csum, uint16_t *l4_csum, bool udp) {
    uint16_t old[9], now[9];
    std::memcpy(old, addr, alen);
    std::memcpy(now, to_addr, alen);
    old[alen / 2] = *port;
    now[alen / 2] = to_port;
    if (ip_csum) *ip_csum = csum_update(*ip_csum, old, now, alen / 2);
    if (!udp || *l4_csum != 0) {
        uint16_t c = csum_update(*l4_csum, old, now, alen / 2 + 1);
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

// Where a packet's addresses, ports and checksums are, for both families.
struct LbPkt {
    uint8_t *src, *dst; // addresses in the IP header
    uint16_t *ports;    // source, destination
    uint16_t *ip_csum;  // IPv4 only
    uint8_t *l4;
    uint8_t proto;
};

// A TCP/UDP packet whose L4 header (up to its checksum) is in the first segment.
inline bool lb_view(rte_mbuf *m, bool v6, LbPkt &p, bool &truncated) {
    auto *l3 = rte_pktmbuf_mtod_offset(m, uint8_t *, sizeof(rte_ether_hdr));
    unsigned hl, l3_len;
    if (!v6) {
        auto *ip = reinterpret_cast<rte_ipv4_hdr *>(l3);
        p = {l3 + offsetof(rte_ipv4_hdr, src_addr),
             l3 + offsetof(rte_ipv4_hdr, dst_addr),
             nullptr,
             reinterpret_cast<uint16_t *>(l3 + offsetof(rte_ipv4_hdr, hdr_checksum)),
             nullptr,
             ip->next_proto_id};
        hl = sizeof(rte_ipv4_hdr); // parse refused options
        l3_len = rte_be_to_cpu_16(ip->total_length);
    } else {
        auto *ip = reinterpret_cast<rte_ipv6_hdr *>(l3);
        p = {ip->src_addr, ip->dst_addr, nullptr, nullptr, nullptr, ip->proto};
        hl = sizeof(rte_ipv6_hdr);
        l3_len = hl + rte_be_to_cpu_16(ip->payload_len);
    }
    if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP) return false;
    unsigned need = hl + (p.proto == IPPROTO_TCP ? sizeof(rte_tcp_hdr) : sizeof(rte_udp_hdr));
    truncated = l3_len < need || m->data_len < sizeof(rte_ether_hdr) + need;
    p.l4 = l3 + hl;
    p.ports = reinterpret_cast<uint16_t *>(p.l4);
    return true;
}

// Visits kLbAgeScan buckets per burst, freeing the slots of flows idle for the timeout.
inline void lb_age(LbFlows &fl, uint32_t now, LbCounters &c) {
    for (unsigned k = 0; k < kLbAgeScan; k++) {
        FlowBucket &bk = fl.bucket[fl.cursor];
        fl.cursor = (fl.cursor + 1) & fl.mask;
        for (unsigned w = 0; w < kFlowWays; w++) {
            if (!bk.sig[w] || now - bk.seen[w] < fl.timeout) continue;
            bk.sig[w] = 0;
            fl.free[fl.nfree++] = bk.idx[w];
            fl.used--;
            c.flows_aged++;
        }
    }
}

// Makes the key in registers and stores it word by word: hashing it back from memory would
// stall on loads spanning several smaller stores. Returns its flow_sig().
inline uint32_t flow_key(FlowKey &k, const uint8_t *src, const uint8_t *dst, bool v6,
                         uint16_t sport, uint16_t dport, uint8_t proto, uint16_t vrf) {
    uint64_t w[5] = {};
    if (v6) {
        std::memcpy(&w[0], src, 8);
        std::memcpy(&w[1], src + 8, 8);
        std::memcpy(&w[2], dst, 8);
        std::memcpy(&w[3], dst + 8, 8);
    } else {
        uint32_t a, b;
        std::memcpy(&a, src, 4);
        std::memcpy(&b, dst, 4);
        w[0] = a;
        w[2] = b;
    }
    w[4] = sport | uint32_t(dport) << 16 | uint64_t(proto) << 32 | uint64_t(v6) << 40 |
           uint64_t(vrf) << 48;
    auto *out = reinterpret_cast<uint8_t *>(&k);
    for (unsigned i = 0; i < 5; i++) std::memcpy(out + 8 * i, &w[i], 8);
    return flow_sig(w);
}

inline uint32_t maglev_hash(const FlowKey &k) {
    if (k.v6)
        return svc::flow_hash6(k.src, k.dst, k.proto, rte_be_to_cpu_16(k.sport),
                               rte_be_to_cpu_16(k.dport));
    uint32_t src, dst;
    std::memcpy(&src, k.src, 4);
    std::memcpy(&dst, k.dst, 4);
    return svc::flow_hash4(rte_be_to_cpu_32(src), rte_be_to_cpu_32(dst), k.proto,
                           rte_be_to_cpu_16(k.sport), rte_be_to_cpu_16(k.dport));
}

// Pins flow `k` (absent from the table, or pinned to another service) to `to`:`port_be`.
// Null slot when the table is full: the packet is still balanced, its flow not pinned.
inline FlowSlot flow_pin(LbFlows &fl, FlowSlot at, const FlowKey &k, uint32_t sig,
                         const LbService &s, const uint8_t *to, uint16_t port_be, uint32_t now,
                         LbCounters &c) {
    if (!at.b) {
        if (!flow_insert(fl, k, sig, at)) {
            c.flow_table_full++;
            return {};
        }
        c.flows_created++;
    }
    FlowEntry &e = fl.e[at.b->idx[at.way]];
    std::memcpy(e.to, to, 16);
    e.port_be = port_be;
    e.mode = s.mode;
    at.b->service[at.way] = s.id;
    at.b->seen[at.way] = now;
    return at;
}

inline void lb(Burst &b, Worker &w) {
    const LbState *st = w.lb ? w.lb->state() : nullptr;
    if (!st || st->empty()) return;
    LbFlows &fl = *w.flows;
    LbCounters &cnt = w.stats.lb;

    // Packets to a VIP (svc set) and possible replies of DNAT flows (svc = kReply); their
    // flow table buckets, then entries, are prefetched for all of them before any is read.
    constexpr uint32_t kReply = UINT32_MAX;
    FlowKey keys[kMaxBurst];
    uint32_t sig[kMaxBurst];
    LbPkt pk[kMaxBurst];
    uint8_t at[kMaxBurst], slot[kMaxBurst]; // packet index; its index in idx4/idx6
    bool v6s[kMaxBurst];
    uint32_t svc[kMaxBurst];
    uint16_t vrfs[kMaxBurst];
    unsigned n = 0;
    bool dropped = false;
    for (unsigned fam = 0; fam < 2; fam++) {
        const bool v6 = fam == 1;
        const unsigned count = v6 ? b.n6 : b.n4;
        for (unsigned k = 0; k < count; k++) {
            unsigned i = v6 ? b.idx6[k] : b.idx4[k];
            const uint32_t vrf = v6 ? b.vrf6[k] : b.vrf4[k];
            LbPkt p;
            bool truncated;
            if (!lb_view(b.m[i], v6, p, truncated)) continue;
            uint32_t s = LbIndex::kNone;
            if (test_bit(st->vport_bits, rte_be_to_cpu_16(p.ports[1])) &&
                test_bit(st->vaddr_bits, addr_bit(p.dst, v6))) {
                s = st->vips.find(lb_key(p.dst, v6, vrf, p.ports[1], p.proto));
            }
            if (s == LbIndex::kNone) {
                if (truncated || !test_bit(st->bport_bits, rte_be_to_cpu_16(p.ports[0])) ||
                    !test_bit(st->baddr_bits, addr_bit(p.src, v6)))
                    continue;
                s = kReply;
            } else if (truncated) {
                b.drop(i, Drop::lb_truncated);
                dropped = true;
                continue;
            }
            sig[n] = flow_key(keys[n], p.src, p.dst, v6, p.ports[0], p.ports[1], p.proto,
                              s == kReply ? uint16_t(vrf | kReplyKey) : uint16_t(vrf));
            flow_prefetch_bucket(fl, sig[n]);
            pk[n] = p;
            at[n] = uint8_t(i);
            slot[n] = uint8_t(k);
            v6s[n] = v6;
            vrfs[n] = vrf;
            svc[n++] = s;
        }
    }
    for (unsigned j = 0; j < n; j++) flow_prefetch_entry(fl, sig[j]);
    const uint32_t now = flow_now();
    for (unsigned j = 0; j < n; j++) {
        const bool v6 = v6s[j];
        const unsigned alen = v6 ? 16 : 4;
        LbPkt &p = pk[j];
        // Found after the flows of earlier packets in this burst were pinned.
        FlowSlot f = flow_find(fl, keys[j], sig[j]);
        if (svc[j] == kReply) {
            if (!f.b) continue; // not a flow vleaf translated: routed as is
            f.b->seen[f.way] = now;
            const FlowEntry &e = fl.e[f.b->idx[f.way]];
            nat_rewrite(p.src, &p.ports[0], e.to, e.port_be, alen, p.ip_csum,
                        l4_csum(p.l4, p.proto), p.proto == IPPROTO_UDP);
            cnt.reverse_nat++;
            continue;
        }
        const LbService &s = *st->svc[svc[j]];
        const uint8_t *to;
        uint16_t to_port;
        if (f.b && f.b->service[f.way] == s.id && fl.e[f.b->idx[f.way]].mode == s.mode) {
            f.b->seen[f.way] = now;
            const FlowEntry &e = fl.e[f.b->idx[f.way]];
            to = e.to;
            to_port = e.port_be;
            cnt.flow_hits++;
        } else {
            uint32_t idx = s.table[svc::slot_of(maglev_hash(keys[j]), s.table_size)];
            if (idx == svc::kNoBackend) {
                b.drop(at[j], Drop::lb_no_backend);
                dropped = true;
                continue;
            }
            const LbBackend &be = s.backends[idx];
            to = s.mode == LbMode::Dnat ? be.addr : be.node;
            to_port = be.port_be;
            if (flow_pin(fl, f, keys[j], sig[j], s, to, to_port, now, cnt).b &&
                s.mode == LbMode::Dnat) {
                // The reply's entry: backend -> client, giving back VIP:port.
                FlowKey rk;
                uint32_t rsig = flow_key(rk, be.addr, p.src, v6, be.port_be, p.ports[0], p.proto,
                                         uint16_t(vrfs[j] | kReplyKey));
                flow_pin(fl, flow_find(fl, rk, rsig), rk, rsig, s, s.vip, s.vport_be, now, cnt);
            }
        }
        if (s.mode == LbMode::Dnat) {
            nat_rewrite(p.dst, &p.ports[1], to, to_port, alen, p.ip_csum, l4_csum(p.l4, p.proto),
                        p.proto == IPPROTO_UDP);
            cnt.dnat++;
        } else {
            if (!lb_encap(b.m[at[j]], v6, s.encap_src, to)) {
                b.drop(at[j], Drop::lb_no_headroom);
                dropped = true;
                continue;
            }
            cnt.dsr_encap++;
        }
        if (v6) {
            std::memcpy(b.dst6[slot[j]], to, 16);
        } else {
            uint32_t d;
            std::memcpy(&d, to, 4);
            b.dst4[slot[j]] = rte_be_to_cpu_32(d);
        }
    }
    if (dropped) b.compact();
    lb_age(fl, now, cnt);
}

} // namespace vleaf::dp
