// Stages: ACLs (tables in acl_tables.hpp, classifier in acl_set.hpp). acl_in filters routed
// packets as they were received, before the LB stage (so a denied packet never makes flow
// state); acl_out filters packets the forward stage sends out of a port, as they leave
// (after DNAT: a policy on a pod's port sees the backend address, as Kubernetes
// NetworkPolicy does). A port's policy wins over its VRF's. Denied packets are dropped as
// acl_deny. Bridged frames and packets entering the overlay are not filtered.
#pragma once

#include "dataplane/acl_tables.hpp"
#include "dataplane/worker.hpp"

namespace vleaf::dp {

// Classifies packets at[0..n) of one family, each with its policy sets[k] (null: passes),
// one classify call per distinct policy; drops the denied ones. True if any was dropped.
inline bool acl_apply(Burst &b, unsigned worker, bool v6, unsigned n, const uint8_t *at,
                      const AclSet *const *sets) {
    static_assert(kMaxBurst <= 64, "one bit per packet");
    bool dropped = false;
    // Packets not yet classified; usually one policy takes them all in the first round.
    uint64_t todo = n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
    while (todo) {
        const AclSet *s = sets[__builtin_ctzll(todo)];
        const uint8_t *l3[kMaxBurst];
        uint16_t len[kMaxBurst];
        uint8_t who[kMaxBurst];
        unsigned m = 0;
        for (uint64_t left = todo; left; left &= left - 1) {
            unsigned k = unsigned(__builtin_ctzll(left));
            if (sets[k] != s) continue;
            todo &= ~(uint64_t(1) << k);
            if (!s) continue; // no policy: passes
            rte_mbuf *mb = b.m[at[k]];
            l3[m] = rte_pktmbuf_mtod_offset(mb, const uint8_t *, sizeof(rte_ether_hdr));
            len[m] = uint16_t(mb->data_len - sizeof(rte_ether_hdr));
            who[m++] = at[k];
        }
        if (!s) continue;
        AclVerdict v[kMaxBurst];
        if (v6)
            s->classify6(l3, len, m, v, worker);
        else
            s->classify4(l3, len, m, v, worker);
        for (unsigned k = 0; k < m; k++)
            if (v[k].action == AclAction::Deny) {
                b.drop(who[k], Drop::acl_deny);
                dropped = true;
            }
    }
    return dropped;
}

// The ingress policy of packets received on `port` and routed in `vrf`; null: none.
inline const AclSet *acl_in_set(const AclState &st, uint16_t port, unsigned vrf) {
    constexpr unsigned in = unsigned(AclDirection::In);
    if (!st.any[in]) return nullptr;
    const AclSet *by_port = st.port[in][port];
    return by_port ? by_port : st.vrf[in][vrf];
}

inline void acl_in(Burst &b, Worker &w) {
    constexpr unsigned in = unsigned(AclDirection::In);
    const AclState *st = w.acl ? w.acl->state() : nullptr;
    // Held packets coming back after neighbor resolution passed already.
    if (!st || !st->any[in] || b.entry == Entry::Routed) return;
    const AclSet *by_port = st->port[in][b.port];
    const AclSet *sets[kMaxBurst];
    for (unsigned k = 0; k < b.n4; k++) sets[k] = by_port ? by_port : st->vrf[in][b.vrf4[k]];
    // `b.n4 &&`: without it GCC 12 sees `sets` read unset (-Wmaybe-uninitialized).
    bool dropped = b.n4 && acl_apply(b, w.rcu_id, false, b.n4, b.idx4, sets);
    for (unsigned k = 0; k < b.n6; k++) sets[k] = by_port ? by_port : st->vrf[in][b.vrf6[k]];
    dropped |= acl_apply(b, w.rcu_id, true, b.n6, b.idx6, sets);
    if (dropped) b.compact();
}

// Right after forward: of the routed packets, those in the encapsulation or bridge lists
// went to the overlay (frames bridge_in kept are never in the route lists); every other
// Tx packet has its out_port.
inline void acl_out(Burst &b, Worker &w) {
    constexpr unsigned out = unsigned(AclDirection::Out);
    const AclState *st = w.acl ? w.acl->state() : nullptr;
    if (!st || !st->any[out]) return;
    uint64_t overlay = 0;
    for (unsigned k = 0; k < b.ne; k++) overlay |= uint64_t(1) << b.idxe[k];
    for (unsigned k = 0; k < b.n2; k++) overlay |= uint64_t(1) << b.idx2[k];
    const AclSet *sets[kMaxBurst];
    uint8_t at[kMaxBurst];
    for (unsigned fam = 0; fam < 2; fam++) {
        const unsigned count = fam ? b.n6 : b.n4;
        const uint8_t *idx = fam ? b.idx6 : b.idx4;
        unsigned n = 0;
        for (unsigned k = 0; k < count; k++) {
            unsigned i = idx[k];
            if (b.action[i] != Action::Tx || (overlay >> i & 1)) continue;
            const AclSet *by_port = st->port[out][b.out_port[i]];
            sets[n] = by_port ? by_port : st->vrf[out][b.vrf[i]];
            at[n++] = uint8_t(i);
        }
        acl_apply(b, w.rcu_id, fam == 1, n, at, sets);
    }
}

} // namespace vleaf::dp
