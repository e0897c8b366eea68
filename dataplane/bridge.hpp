// Stages: bridging in the L2VNI bridge domains.
// bridge_in takes frames entering a domain (from an access port or decapsulated from a
// tunnel): pops the access VLAN tag, reports unknown or moved source MACs for learning,
// routes frames addressed to the domain's anycast gateway MAC, and hands ARP/ND from
// access ports to the control thread (gateway answers, ARP/ND suppression).
// bridge_out forwards by destination MAC: out of an access port (tagged as the port
// wants), into the tunnel to a remote VTEP, or flooded by head-end replication to the
// local access ports and the flood list. A frame never goes back where it came from:
// not to its own access port and VLAN, and not from a tunnel into a tunnel.
#pragma once

#include "dataplane/dispatch.hpp"
#include "dataplane/vxlan.hpp"

namespace vleaf::dp {

inline bool is_bum(const rte_ether_hdr *eth) {
    return eth->dst_addr.addr_bytes[0] & 1;
}

inline void pop_vlan(rte_mbuf *m) {
    auto *p = rte_pktmbuf_mtod(m, uint8_t *);
    std::memmove(p + sizeof(rte_vlan_hdr), p, 2 * sizeof(rte_ether_addr));
    rte_pktmbuf_adj(m, sizeof(rte_vlan_hdr));
}

// A frame for the gateway, or ARP/ND the control thread must see.
inline bool to_control(Burst &b, unsigned i, const rte_ether_hdr *eth, bool gateway) {
    bool from_access = b.from[i] == From::Access;
    if (!gateway && !(from_access && is_bum(eth))) return false;
    const rte_mbuf *m = b.m[i];
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP) && (gateway || from_access)) {
        b.punt(i, Punt::bd_arp);
        return true;
    }
    if (eth->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6) &&
        m->data_len >= sizeof(*eth) + sizeof(rte_ipv6_hdr) + 1 &&
        is_nd(m, reinterpret_cast<const rte_ipv6_hdr *>(eth + 1))) {
        b.punt(i, Punt::bd_nd);
        return true;
    }
    return false;
}

inline void learn(Burst &b, Worker &w, unsigned i, uint64_t key, int32_t slot, uint32_t now) {
    uint64_t want = b.from[i] == From::Access ? mac_dest::local(b.port, b.vlan_in[i]) : 0;
    if (slot >= 0) {
        MacSlot &s = w.ov->slots()[slot];
        uint64_t have = __atomic_load_n(&s.dest, __ATOMIC_ACQUIRE);
        bool same;
        if (b.from[i] == From::Access) {
            same = (have & ~mac_dest::kStatic) == want;
        } else {
            const RemoteVtep &v = w.ov->vteps()[mac_dest::vtep(have)];
            same = (have & mac_dest::kRemote) && (v.family == 6) == b.outer_v6[i] &&
                   std::memcmp(v.addr, b.outer_src[i], b.outer_v6[i] ? 16 : 4) == 0;
        }
        // Static entries never move; refreshing them costs a store nobody reads.
        if (same || (have & mac_dest::kStatic)) {
            if (!(have & mac_dest::kStatic) && s.seen != now) s.seen = now;
            return;
        }
    }
    if (!w.allow_learn(key, rte_rdtsc())) return;
    LearnMsg msg{};
    msg.key = key;
    msg.dest = want;
    if (b.from[i] == From::Tunnel) {
        msg.dest = mac_dest::kRemote;
        msg.family = b.outer_v6[i] ? 6 : 4;
        std::memcpy(msg.addr, b.outer_src[i], b.outer_v6[i] ? 16 : 4);
    }
    if (rte_ring_enqueue_elem(w.ov->learn_ring(), &msg, sizeof msg) == 0) {
        w.stats.learn_sent++;
        w.wake_control();
    } else {
        w.stats.learn_dropped++;
    }
}

inline void bridge_in(Burst &b, Worker &w) {
    if (b.n2in == 0) return;
    uint64_t keys[kMaxBurst];
    const void *kp[kMaxBurst];
    unsigned n = 0;
    uint8_t at[kMaxBurst];
    for (unsigned k = 0; k < b.n2in; k++) {
        unsigned i = b.idx2[k];
        rte_mbuf *m = b.m[i];
        if (b.from[i] == From::Access && b.vlan_in[i]) pop_vlan(m);
        auto *eth = rte_pktmbuf_mtod(m, const rte_ether_hdr *);
        if ((eth->src_addr.addr_bytes[0] & 1) || rte_is_zero_ether_addr(&eth->src_addr)) {
            b.drop(i, Drop::l2_bad_source);
            continue;
        }
        keys[n] = mac_key(b.bd[i], eth->src_addr.addr_bytes);
        kp[n] = &keys[n];
        at[n++] = static_cast<uint8_t>(i);
    }
    uint64_t hits = 0;
    void *data[kMaxBurst];
    if (n) rte_hash_lookup_bulk_data(w.ov->macs(), kp, n, &hits, data);
    uint32_t now = uint32_t(rte_rdtsc() >> kSeenShift);
    for (unsigned j = 0; j < n; j++)
        learn(b, w, at[j], keys[j],
              (hits >> j & 1) ? static_cast<int32_t>(reinterpret_cast<uintptr_t>(data[j])) : -1,
              now);
    unsigned kept = 0;
    for (unsigned k = 0; k < b.n2in; k++) {
        unsigned i = b.idx2[k];
        if (b.action[i] != Action::Tx) continue;
        const BridgeDomain &bd = w.ov->bds()[b.bd[i]];
        auto *eth = rte_pktmbuf_mtod(b.m[i], const rte_ether_hdr *);
        bool gateway = bd.has_gw && rte_is_same_ether_addr(&eth->dst_addr, &bd.gw_mac);
        b.nh[i] = b.bd[i] | uint32_t(b.vlan_in[i]) << 16; // for punts: where it came from
        if (to_control(b, i, eth, gateway)) continue;
        if (gateway) {
            parse_ip(b, i, b.m[i], static_cast<uint8_t>(bd.vrf));
            continue;
        }
        b.idx2[kept++] = static_cast<uint8_t>(i);
    }
    b.n2 = static_cast<uint16_t>(kept);
}

// Sends one copy (or the original) of a frame of bridge domain `bd` to an access port.
inline void to_access(Worker &w, rte_mbuf *m, const AccessRef &a) {
    if (a.vlan) {
        m->vlan_tci = a.vlan;
        if (rte_vlan_insert(&m) != 0) {
            w.stats.drops[static_cast<int>(Drop::vxlan_no_headroom)]++;
            rte_pktmbuf_free(m);
            return;
        }
    }
    tx_queue(w, a.port, m);
}

// One copy (or the original) of flooded frame i toward a VTEP. A frame too big for the
// tunnel gets one ICMP error however many VTEPs it was too big for: the first copy that
// does not fit goes to the control thread (if answers_too_big), the others are dropped.
inline void to_tunnel(Burst &b, Worker &w, unsigned i, rte_mbuf *m, uint16_t vtep, uint32_t vni,
                      bool &too_big_seen) {
    uint16_t port, mtu;
    Drop why;
    VtepCache c;
    EncapParams p(w);
    bool ok = encap_one(w, c, p, m, inner_hash(m), vtep, vni, port, why, mtu);
    p.done(w);
    if (ok) {
        w.stats.encapsulated++;
        return tx_queue(w, port, m);
    }
    if (why == Drop::vxlan_mtu_exceeded && !too_big_seen) {
        too_big_seen = true;
        if (answers_too_big(w, m))
            return punt_now(
                w, PuntMsg{m, too_big_nh(b, i, mtu), uint8_t(Punt::too_big), b.vrf[i], b.port});
    }
    w.stats.drops[static_cast<int>(why)]++;
    rte_pktmbuf_free(m);
}

// Head-end replication: a copy per local access port and, unless the frame came out of
// a tunnel, per remote VTEP of the flood list; the original goes to the last target.
inline void flood(Burst &b, Worker &w, unsigned i) {
    const BridgeDomain &bd = w.ov->bds()[b.bd[i]];
    rte_mbuf *m = b.m[i];
    unsigned n_local = __atomic_load_n(&bd.n_local, __ATOMIC_ACQUIRE);
    unsigned n_flood =
        b.from[i] == From::Tunnel ? 0 : __atomic_load_n(&bd.n_flood, __ATOMIC_ACQUIRE);
    bool skip_own = b.from[i] != From::Tunnel;
    unsigned targets = n_flood;
    for (unsigned k = 0; k < n_local; k++)
        targets += !(skip_own && bd.local[k].port == b.port && bd.local[k].vlan == b.vlan_in[i]);
    if (targets == 0) return b.drop(i, Drop::l2_flood_empty);
    w.stats.flooded++;
    b.action[i] = Action::Done;
    auto next = [&](unsigned &left) -> rte_mbuf * {
        if (--left == 0) return m;
        rte_mbuf *c = rte_pktmbuf_copy(m, w.pool, 0, UINT32_MAX);
        if (!c) w.stats.drops[static_cast<int>(Drop::mbuf_exhausted)]++;
        return c;
    };
    unsigned left = targets;
    for (unsigned k = 0; k < n_local; k++) {
        const AccessRef a = bd.local[k];
        if (skip_own && a.port == b.port && a.vlan == b.vlan_in[i]) continue;
        if (rte_mbuf *c = next(left)) to_access(w, c, a);
    }
    bool too_big_seen = false;
    for (unsigned k = 0; k < n_flood; k++)
        if (rte_mbuf *c = next(left)) to_tunnel(b, w, i, c, bd.flood[k], bd.vni, too_big_seen);
}

inline void bridge_out(Burst &b, Worker &w) {
    if (b.n2 == 0) return;
    uint64_t keys[kMaxBurst];
    const void *kp[kMaxBurst];
    void *data[kMaxBurst];
    uint64_t hits = 0;
    for (unsigned k = 0; k < b.n2; k++) {
        auto *eth = rte_pktmbuf_mtod(b.m[b.idx2[k]], const rte_ether_hdr *);
        keys[k] = mac_key(b.bd[b.idx2[k]], eth->dst_addr.addr_bytes);
        kp[k] = &keys[k];
    }
    rte_hash_lookup_bulk_data(w.ov->macs(), kp, b.n2, &hits, data);
    for (unsigned k = 0; k < b.n2; k++) {
        unsigned i = b.idx2[k];
        rte_mbuf *m = b.m[i];
        if (!(hits >> k & 1) || is_bum(rte_pktmbuf_mtod(m, const rte_ether_hdr *))) {
            flood(b, w, i);
            continue;
        }
        auto slot = reinterpret_cast<uintptr_t>(data[k]);
        uint64_t d = __atomic_load_n(&w.ov->slots()[slot].dest, __ATOMIC_ACQUIRE);
        if (d & mac_dest::kRemote) {
            if (b.from[i] == From::Tunnel) {
                b.drop(i, Drop::l2_split_horizon);
                continue;
            }
            b.to_encap(i, rte_pktmbuf_mtod(m, const uint8_t *), mac_dest::vtep(d),
                       w.ov->bds()[b.bd[i]].vni, inner_hash(m));
            continue;
        }
        AccessRef a{mac_dest::port(d), mac_dest::vlan(d)};
        if (b.from[i] == From::Access && a.port == b.port && a.vlan == b.vlan_in[i]) {
            b.drop(i, Drop::l2_hairpin);
            continue;
        }
        if (a.vlan) {
            m->vlan_tci = a.vlan;
            if (rte_vlan_insert(&m) != 0) {
                b.drop(i, Drop::vxlan_no_headroom);
                continue;
            }
            b.m[i] = m;
        }
        b.out_port[i] = a.port;
    }
}

} // namespace vleaf::dp
