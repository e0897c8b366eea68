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

inline void lb_age(LbFlows &fl, uint64_t now, LbCounters &c) {
    for (unsigned k = 0; k < kLbAgeScan; k++) {
        uint32_t at = fl.cursor;
        fl.cursor = at + 1 == fl.capacity ? 0 : at + 1;
        FlowEntry &e = fl.e[at];
        if (e.last_seen == 0 || now - e.last_seen <= fl.timeout) continue;
        void *key;
        if (rte_hash_get_key_with_position(fl.h, int32_t(at), &key) == 0)
            rte_hash_del_key(fl.h, key);
        e.last_seen = 0;
        fl.used--;
        c.flows_aged++;
    }
}

inline void flow_key(FlowKey &k, const uint8_t *src, const uint8_t *dst, unsigned alen,
                     uint16_t sport, uint16_t dport, uint8_t proto, bool v6, uint16_t vrf) {
    std::memset(&k, 0, sizeof k);
    std::memcpy(k.src, src, alen);
    std::memcpy(k.dst, dst, alen);
    k.sport = sport;
    k.dport = dport;
    k.proto = proto;
    k.v6 = v6;
    k.vrf = vrf;
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

// The flow's entry for `k`, made if new; null when the table is full. `fresh`: made now.
inline FlowEntry *flow_add(LbFlows &fl, const FlowKey &k, LbCounters &c, bool &fresh) {
    int32_t at = rte_hash_add_key(fl.h, &k);
    if (at < 0) {
        c.flow_table_full++;
        return nullptr;
    }
    FlowEntry *e = &fl.e[at];
    fresh = e->last_seen == 0; // else a packet earlier in this burst made it
    if (fresh) {
        fl.used++;
        c.flows_created++;
    }
    return e;
}

inline void lb(Burst &b, Worker &w) {
    const LbState *st = w.lb ? w.lb->state() : nullptr;
    if (!st || st->empty()) return;
    LbFlows &fl = *w.flows;
    LbCounters &cnt = w.stats.lb;

    // Packets to a VIP (svc set) and possible replies of DNAT flows (svc = kReply), looked
    // up in the flow table together.
    constexpr uint32_t kReply = UINT32_MAX;
    FlowKey keys[kMaxBurst];
    const void *kp[kMaxBurst];
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
        const unsigned alen = v6 ? 16 : 4;
        for (unsigned k = 0; k < count; k++) {
            unsigned i = v6 ? b.idx6[k] : b.idx4[k];
            const uint32_t vrf = v6 ? b.vrf6[k] : b.vrf4[k];
            LbPkt p;
            bool truncated;
            if (!lb_view(b.m[i], v6, p, truncated)) continue;
            uint32_t s = kReply;
            if (port_bit(st->vport_bits, rte_be_to_cpu_16(p.ports[1]))) {
                uint8_t addr[16] = {};
                std::memcpy(addr, p.dst, alen);
                s = st->vips.find(lb_key(addr, vrf, p.ports[1], p.proto, v6));
            }
            if (s == LbIndex::kNone || s == kReply) {
                if (truncated || !port_bit(st->bport_bits, rte_be_to_cpu_16(p.ports[0]))) continue;
                s = kReply;
            } else if (truncated) {
                b.drop(i, Drop::lb_truncated);
                dropped = true;
                continue;
            }
            flow_key(keys[n], p.src, p.dst, alen, p.ports[0], p.ports[1], p.proto, v6,
                     s == kReply ? uint16_t(vrf | kReplyKey) : vrf);
            kp[n] = &keys[n];
            pk[n] = p;
            at[n] = uint8_t(i);
            slot[n] = uint8_t(k);
            v6s[n] = v6;
            vrfs[n] = vrf;
            svc[n++] = s;
        }
    }
    const uint64_t now = rte_rdtsc();
    int32_t pos[kMaxBurst];
    if (n) rte_hash_lookup_bulk(fl.h, kp, n, pos);
    for (unsigned j = 0; j < n; j++) {
        const bool v6 = v6s[j];
        const unsigned alen = v6 ? 16 : 4;
        LbPkt &p = pk[j];
        FlowEntry *e = pos[j] >= 0 ? &fl.e[pos[j]] : nullptr;
        if (svc[j] == kReply) {
            if (!e || !e->last_seen) continue; // not a flow vleaf translated: routed as is
            e->last_seen = now;
            nat_rewrite(p.src, &p.ports[0], e->backend.addr, e->backend.port_be, alen, p.ip_csum,
                        l4_csum(p.l4, p.proto), p.proto == IPPROTO_UDP);
            cnt.reverse_nat++;
            continue;
        }
        const LbService &s = *st->svc[svc[j]];
        const LbBackend *be;
        if (e && e->last_seen && e->service == s.id) {
            e->last_seen = now;
            be = &e->backend;
            cnt.flow_hits++;
        } else {
            uint32_t idx = s.table[svc::slot_of(maglev_hash(keys[j]), s.table_size)];
            if (idx == svc::kNoBackend) {
                b.drop(at[j], Drop::lb_no_backend);
                dropped = true;
                continue;
            }
            be = &s.backends[idx];
            bool fresh = false;
            if (!e) e = flow_add(fl, keys[j], cnt, fresh);
            if (e && !fresh && e->last_seen && e->service == s.id) {
                be = &e->backend; // the flow's first packet in this burst pinned it
            } else if (e) {
                e->backend = *be;
                e->service = s.id;
            }
            if (e) e->last_seen = now;
            if (e && s.mode == LbMode::Dnat) {
                // The reply's entry: backend -> client, giving back VIP:port.
                FlowKey rk;
                flow_key(rk, be->addr, p.src, alen, be->port_be, p.ports[0], p.proto, v6,
                         uint16_t(vrfs[j] | kReplyKey));
                if (FlowEntry *r = flow_add(fl, rk, cnt, fresh)) {
                    std::memcpy(r->backend.addr, s.vip, 16);
                    r->backend.port_be = s.vport_be;
                    r->service = s.id;
                    r->last_seen = now;
                }
            }
        }
        if (s.mode == LbMode::Dnat) {
            nat_rewrite(p.dst, &p.ports[1], be->addr, be->port_be, alen, p.ip_csum,
                        l4_csum(p.l4, p.proto), p.proto == IPPROTO_UDP);
            cnt.dnat++;
        } else {
            if (!lb_encap(b.m[at[j]], v6, s.encap_src, be->node)) {
                b.drop(at[j], Drop::lb_no_headroom);
                dropped = true;
                continue;
            }
            cnt.dsr_encap++;
        }
        const uint8_t *to = s.mode == LbMode::Dnat ? be->addr : be->node;
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
