// The common burst in two tight loops instead of the stages one by one: every packet a
// plain IPv4 frame (parse's ipv4_plain, not to our VTEP address, not a martian) received
// on a routed port (no access VLANs), so that the stages between parse and route, and those
// after forward, would pass it untouched, but for the ACLs and the LB stage (when services
// are configured on a single worker). The ingress ACL and the LB stage run between the two
// loops, in that order, on the burst as parse would leave it; the egress ACL after the
// second loop, which knows each packet's egress port, before anything is sent.
//
// The first loop checks the packets and looks their destinations up in the port's VRF
// (inline, as l3fwd's rte_lpm_lookupx4: nothing in the loop waits for the result, so
// the table loads overlap; with the LB stage, in bulk after it), writing nothing the
// stages read before writing it themselves: a burst with any other IPv4 packet goes
// through the stages from the start. Frames that are not IPv4 at all (ARP, IPv6; on a
// routed port a VLAN tag is not IPv4 either) are split off (OddSplit) and go through the
// stages after the plain ones, as a burst of their own (with the LB stage, but IPv6): that
// reorders no IPv4 flow. IPv4 oddities (TTL, options, fragments, martians) stay on the
// whole-burst path, which keeps each flow in order. The second loop forwards to Forward
// next hops (ECMP members too) with TTL left and within the egress MTU, with the header
// pointers the first loop kept. At the first packet that is anything
// else, the burst is left as parse and route leave it and forward4 and the stages after
// it go on from that packet, so that every check and drop reason stays in one place.
#pragma once

#include "dataplane/acl.hpp"
#include "dataplane/dispatch.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/lb.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/route.hpp"

#include <algorithm>
#include <bit>

namespace vleaf::dp {

// Whether the stages that parse's plain packets go through without a route lookup (and
// those after forward) have nothing to do on this burst, but for the ACLs (plain4_acl,
// plain4_acl_out): Lb when the LB stage has, on a single worker (with more, its handoff
// stage would send packets away first).
enum class Idle4 : uint8_t { No, Yes, Lb };

// What plain4's `rest` runs: the stages after forward, or (Done: plain4 classified the
// burst with its egress policies already) those after acl_out.
enum class OutAcl : uint8_t { Pending, Done };

inline Idle4 stages_idle4(const Burst &b, const Worker &w) {
    if (b.entry != Entry::Port || w.ov->access(b.port)) return Idle4::No;
    const LbState *lb = w.lb ? w.lb->state() : nullptr;
    if (!lb || lb->empty()) return Idle4::Yes;
    return w.handoff ? Idle4::No : Idle4::Lb;
}

// The burst as parse leaves it when every packet is plain: all IPv4, route list in burst
// order.
inline void plain4_as_parsed(Burst &b, uint8_t vrf) {
    std::fill_n(b.action, kMaxBurst, Action::Tx);
    std::fill_n(b.vrf, kMaxBurst, vrf);
    std::fill_n(b.vrf4, kMaxBurst, vrf);
    for (unsigned k = 0; k < b.n; k++) b.idx4[k] = static_cast<uint8_t>(k);
    b.n4 = b.n;
    b.n6 = b.nd = b.n2 = b.n2in = b.ne = 0;
}

// The burst as parse and route leave it, then forward4 from packet `from` on and `rest`:
// the stages after forward.
template <class Rest>
[[gnu::noinline]] void plain4_staged(Burst &b, Worker &w, unsigned from, uint8_t vrf, Rest &&rest) {
    plain4_as_parsed(b, vrf);
    forward4(b, w, from);
    rest(OutAcl::Pending);
}

// A plain burst of which acl_in denied packets `deny` (bit per packet), through the stages
// from there: lb (a no-op without services), route, forward, `rest`.
template <class Rest>
[[gnu::noinline]] void plain4_denied(Burst &b, Worker &w, uint8_t vrf, uint64_t deny, Rest &&rest) {
    plain4_as_parsed(b, vrf);
    for (; deny; deny &= deny - 1) b.drop(unsigned(__builtin_ctzll(deny)), Drop::acl_deny);
    b.compact();
    lb(b, w);
    route(b, w);
    forward4(b, w);
    rest(OutAcl::Pending);
}

// The LB stage on a plain burst, given the burst as parse leaves it (route list in burst
// order): LB packets get their new destination in dst4 (DSR: and an outer header, so
// `frame` is read again). False when it dropped a packet: route and forward take the burst
// as the stages would.
inline bool plain4_lb(Burst &b, Worker &w, uint8_t vrf, uint8_t **frame) {
    const unsigned n = b.n;
    plain4_as_parsed(b, vrf);
    lb(b, w);
    if (b.n4 != n) return false;
    for (unsigned i = 0; i < n; i++) frame[i] = rte_pktmbuf_mtod(b.m[i], uint8_t *);
    return true;
}

// Where AclSet::deny4_plain reads a plain frame (the IPv4 protocol byte), and how long
// the frame must be for it (4 bytes after the IPv4 header).
inline constexpr unsigned kAclKey = sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, next_proto_id);
inline constexpr unsigned kAclFrame = sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) + 4;

// The ingress ACL on a plain burst, all of whose packets `acl` filters (acl_in's policy
// of the port, else of its VRF); `home`: AclSet::prefetch4 of each. False when it denied a
// packet: then the burst has gone on as the stages take it, the denied packets dropped as
// acl_in drops them.
template <class Rest>
inline bool plain4_acl(Burst &b, Worker &w, const AclSet &acl, uint8_t vrf, uint8_t *const *frame,
                       const uint32_t *home, Rest &&rest) {
    const uint64_t deny = acl.deny4_plain(frame, kAclKey, home, b.n, w.rcu_id);
    if (likely(deny == 0)) return true;
    plain4_denied(b, w, vrf, deny, rest);
    return false;
}

// A forwarded plain burst of which acl_out would deny packets `deny`, as the stages leave it
// after acl_out: the stages after it go on from there.
template <class Rest>
[[gnu::noinline]] void plain4_out_denied(Burst &b, uint8_t vrf, uint64_t deny, Rest &&rest) {
    plain4_as_parsed(b, vrf); // forward4 leaves a Forward packet's state as it finds it
    for (; deny; deny &= deny - 1) b.drop(unsigned(__builtin_ctzll(deny)), Drop::acl_deny);
    rest(OutAcl::Done);
}

// The packets of a forwarded plain burst that their egress policies sets[i] deny (bit per
// packet; null: no policy), one classify call per distinct policy; `home[i]`: the
// AclSet::prefetch4 of each with its own policy.
[[gnu::noinline]] inline uint64_t plain4_out_deny(const Worker &w, unsigned n,
                                                  const AclSet *const *sets, uint8_t *const *frame,
                                                  const uint32_t *home) {
    uint64_t deny = 0;
    uint64_t todo = n == 64 ? ~uint64_t(0) : (uint64_t(1) << n) - 1;
    while (todo) {
        const AclSet *s = sets[__builtin_ctzll(todo)];
        uint8_t *f[kMaxBurst];
        uint32_t h[kMaxBurst];
        uint8_t who[kMaxBurst];
        unsigned m = 0;
        for (uint64_t left = todo; left; left &= left - 1) {
            const auto i = unsigned(__builtin_ctzll(left));
            if (sets[i] != s) continue;
            todo &= ~(uint64_t(1) << i);
            f[m] = frame[i], h[m] = home[i], who[m++] = uint8_t(i);
        }
        if (!s) continue;
        for (uint64_t d = s->deny4_plain(f, kAclKey, h, m, w.rcu_id); d; d &= d - 1)
            deny |= uint64_t(1) << who[__builtin_ctzll(d)];
    }
    return deny;
}

// The egress ACL on a forwarded plain burst, packet i filtered by acl_out's policy of its
// egress port, else of the VRF (null: none), `home[i]` its AclSet::prefetch4; `out_ports`:
// bit per egress port. With one egress policy in `st` (AclState::only) every packet's is that
// one or none, and the first loop hashed them all for it; with more, the second loop put
// each packet's in `sets`. Usually one port takes the whole burst: one policy, looked up
// once. False when it denied a packet: then the burst has gone on as the stages take it
// after acl_out.
template <class Rest>
inline bool plain4_acl_out(Burst &b, Worker &w, const AclState &st, uint64_t out_ports,
                           const AclSet **sets, uint8_t *const *frame, const uint32_t *home,
                           uint8_t vrf, Rest &&rest) {
    constexpr unsigned kOut = unsigned(AclDirection::Out);
    const unsigned n = b.n;
    uint64_t deny = 0;
    if (likely(std::has_single_bit(out_ports))) {
        const AclSet *s = st.port[kOut][std::countr_zero(out_ports)];
        if (!s) s = st.vrf[kOut][vrf];
        if (!s) return true;
        deny = s->deny4_plain(frame, kAclKey, home, n, w.rcu_id);
    } else {
        if (st.only[kOut])
            for (unsigned i = 0; i < n; i++) {
                const AclSet *s = st.port[kOut][b.out_port[i]];
                sets[i] = s ? s : st.vrf[kOut][vrf];
            }
        deny = plain4_out_deny(w, n, sets, frame, home);
    }
    if (likely(deny == 0)) return true;
    plain4_out_denied(b, vrf, deny, rest);
    return false;
}

// ipv4_plain's checks for a whole burst, or-ed without a branch per check into one word
// (one register in the first loop, which has none to spare): header bits that differ from
// a plain frame's, and the high half of length differences (total length within the
// frame, at least a header), which a negative one sets.
struct PlainChecks {
    uint64_t odd = 0;
    void add(const rte_mbuf *m, const uint8_t *frame) {
        uint64_t h; // frame bytes 12-19: ether type, version/IHL, TOS, total length, id
        uint16_t frag, total_be;
        std::memcpy(&h, frame + 12, 8);
        std::memcpy(&frag, frame + 20, 2);
        std::memcpy(&total_be, frame + 16, 2);
        odd |= ((h & 0xffffff) ^ 0x450008) | // 08 00 45, as the bytes lie in memory
               (frag & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK));
        // The NIC's verdict is BAD when bit 4 is set without bit 7 (GOOD; both: NONE).
        static_assert(RTE_MBUF_F_RX_IP_CKSUM_BAD == 1 << 4 &&
                      RTE_MBUF_F_RX_IP_CKSUM_GOOD == 1 << 7);
        odd |= m->ol_flags & ~(m->ol_flags >> 3) & RTE_MBUF_F_RX_IP_CKSUM_BAD;
        uint64_t total = rte_be_to_cpu_16(total_be);
        odd |= ((uint64_t(m->pkt_len) - sizeof(rte_ether_hdr) - total) |
                (total - sizeof(rte_ipv4_hdr))) >>
               32;
    }
    bool plain() const { return odd == 0; }
};

// The frames that are not IPv4, taken out of a burst so that its IPv4 frames can take
// the plain path: split() moves the IPv4 frames (and what the first loop kept for them)
// to the front and the others behind them, both in their order, so that the whole burst
// can still go through the stages; give_back() leaves the others alone in the burst.
struct OddSplit {
    static_assert(kMaxBurst <= 64);
    uint64_t mask = 0; // bit per packet of the burst as received
    unsigned n = 0;
    rte_mbuf *m[kMaxBurst];

    void add(unsigned i) { mask |= uint64_t(1) << i; }
    // The number of IPv4 frames. `home`, `home_out`: AclSet::prefetch4's of the ingress
    // policy and of the only egress one, when there are.
    [[gnu::noinline]] unsigned split(Burst &b, uint8_t **frame, uint32_t *home,
                                     uint32_t *home_out) {
        unsigned kept = 0;
        for (unsigned i = 0; i < b.n; i++) {
            if (mask >> i & 1) {
                m[n++] = b.m[i];
                continue;
            }
            b.m[kept] = b.m[i];
            frame[kept] = frame[i];
            b.dst4[kept] = b.dst4[i];
            if (home) home[kept] = home[i];
            if (home_out) home_out[kept] = home_out[i];
            b.nh4[kept++] = b.nh4[i];
        }
        std::copy_n(m, n, b.m + kept);
        return kept;
    }
    // False, for the stages to take the burst, unless there was nothing to split off.
    bool give_back(Burst &b) const {
        if (n == 0) return true;
        std::copy_n(m, n, b.m);
        b.n = static_cast<uint16_t>(n);
        return false;
    }
};

// plain4 on a burst whose stages are idle (kLb: but for the LB stage, which may give a
// packet a new destination: its first loop looks nothing up, the LB stage's output is).
// With kLb IPv6 is not split off: the LB stage keeps one flow table for IPv4 and IPv6, and
// the order in which packets reach it decides which of them a full table drops.
// `acl`: the ingress policy of the burst; `out`: the egress policies, when there are any.
// The ingress policy's buckets are prefetched in the first loop; the egress ones too when
// there is only one egress policy (AclState::only), else in the second loop, per packet by
// its egress port. kAcl false: there is no policy at all, and the policy work compiles out
// of both loops (its per-packet tests, and the registers they took, which the compiler made
// up for with stack loads in the first loop, cost 4-9 % of the system benchmark's rate).
template <bool kLb, bool kAcl, class Rest>
inline bool plain4_run(Burst &b, Worker &w, const AclSet *acl, const AclState *out, Rest &&rest) {
    if constexpr (!kAcl) acl = nullptr, out = nullptr;
    unsigned n = b.n;
    auto vrf = static_cast<uint8_t>(w.ports[b.port].vrf);
    const VrfTables *t = w.fib->vrf(vrf);
    if (!t || !t->v4) return false; // no such VRF: route's no_route drops, by the stages
    const Dir24 &fib4 = *t->v4;
    uint8_t *frame[kMaxBurst];
    uint32_t home[kMaxBurst], home_out[kMaxBurst]; // prefetch4's of the ingress, egress ACL
    constexpr unsigned kOut = unsigned(AclDirection::Out);
    const AclSet *out_one = out ? out->only[kOut] : nullptr;
    // classify4_plain reads past the header: with an ACL, shorter frames are the stages'.
    const bool acl_frame = acl || out;
    PlainChecks checks;
    OddSplit odd;
    // VXLAN to our VTEP address is the stages' (decapsulation). Tested per packet so that
    // a tunnel burst leaves at its first packet instead of after the whole first loop
    // (~15 cycles/packet of decap + route, bench_pipeline's VxlanDecapRoute).
    const uint32_t vtep_be = w.ov->params().src4;
    auto check = [&](unsigned i) {
        const rte_mbuf *m = b.m[i];
        // The checks read the first 34 bytes: shorter frames are the stages' (runt).
        if (unlikely(m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr))) return false;
        auto *f = rte_pktmbuf_mtod(m, uint8_t *);
        uint16_t type;
        std::memcpy(&type, f + offsetof(rte_ether_hdr, ether_type), 2);
        if (unlikely(type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))) {
            if (kLb && type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) return false;
            odd.add(i);
            return true;
        }
        checks.add(m, f);
        uint32_t dst;
        std::memcpy(&dst, f + sizeof(rte_ether_hdr) + offsetof(rte_ipv4_hdr, dst_addr), 4);
        if (unlikely(dst == vtep_be)) return false;
        if (acl_frame && unlikely(m->data_len < kAclFrame)) return false;
        if (acl) home[i] = acl->prefetch4(f + kAclKey); // the bucket arrives while we go on
        // acl_out's key fields are those of the header as received: TTL and checksum are
        // not among them.
        if (out_one) home_out[i] = out_one->prefetch4(f + kAclKey);
        frame[i] = f;
        b.dst4[i] = rte_be_to_cpu_32(dst);
        if constexpr (!kLb) b.nh4[i] = fib4.lookup(b.dst4[i]);
        return true;
    };
    // No prefetch ahead (as l3fwd's LPM path): the packets' loads are independent, so
    // the core overlaps them by itself, and the prefetch's own loads cost ~4 cycles a
    // packet in bench_pipeline (PlainBurstWithArp, bench/README.md).
    for (unsigned i = 0; i < n; i++)
        if (!check(i)) return false;
    if (unlikely(odd.mask))
        n = odd.split(b, frame, acl ? home : nullptr, out_one ? home_out : nullptr);
    // Martians are the stages' too (any_martian4 also tests the VTEP address).
    if (!checks.plain() || n == 0 || any_martian4(b, n, rte_be_to_cpu_32(vtep_be))) return false;
    b.n = static_cast<uint16_t>(n);
    if (acl && !plain4_acl(b, w, *acl, vrf, frame, home, rest)) return odd.give_back(b);
    if constexpr (kLb) {
        if (!plain4_lb(b, w, vrf, frame)) {
            route(b, w);
            forward4(b, w);
            rest(OutAcl::Pending);
            return odd.give_back(b);
        }
        fib4.lookup_bulk(b.dst4, b.nh4, n);
    }

    const Nh *table = w.fib->nexthops();
    const PortInfo *ports = w.ports;
    static_assert(RTE_MAX_ETHPORTS <= 64);
    uint64_t out_ports = 0; // bit per egress port
    const AclSet *out_sets[kMaxBurst];
    const bool out_each = out && !out_one; // egress policies looked up per packet
    const AclSet *out_vrf = out ? out->vrf[kOut][vrf] : nullptr;
    for (unsigned i = 0; i < n; i++) {
        auto id = static_cast<uint32_t>(b.nh4[i]);
        NhView nh = nh_view(table, id);
        uint8_t *f = frame[i];
        auto *ip = reinterpret_cast<rte_ipv4_hdr *>(f + sizeof(rte_ether_hdr));
        uint32_t ttl_word;
        std::memcpy(&ttl_word, &ip->time_to_live, 4);
        if (unlikely(nh.kind() != NhKind::Forward)) {
            if (nh.kind() == NhKind::Ecmp) nh = ecmp_member(w, nh, id, flow_hash4(ip));
            if (nh.kind() != NhKind::Forward) {
                plain4_staged(b, w, i, vrf, rest);
                return odd.give_back(b);
            }
        }
        uint16_t port = nh.port();
        if (unlikely((uint8_t(ttl_word) <= 1) |
                     (rte_be_to_cpu_16(ip->total_length) > ports[port].mtu))) {
            plain4_staged(b, w, i, vrf, rest);
            return odd.give_back(b);
        }
        ttl_decrement4(ip, ttl_word);
        rewrite_l2(f, nh);
        b.out_port[i] = port;
        out_ports |= uint64_t(1) << port;
        if (out_each) {
            const AclSet *s = out->port[kOut][port];
            out_sets[i] = s ? s : out_vrf;
            if (out_sets[i]) home_out[i] = out_sets[i]->prefetch4(f + kAclKey);
        }
    }
    if (out && !plain4_acl_out(b, w, *out, out_ports, out_sets, frame, home_out, vrf, rest))
        return odd.give_back(b);
    if (likely(std::has_single_bit(out_ports)))
        tx_queue_all(w, b.out_port[0], b.m, n);
    else
        for (unsigned i = 0; i < n; i++) tx_queue(w, b.out_port[i], b.m[i]);
    return odd.give_back(b);
}

// False: the stages take the burst as it is left, whole or the frames that are not IPv4
// (OddSplit). True: it has been forwarded, or handed on to `rest` (see plain4_staged).
template <class Rest> inline bool plain4(Burst &b, Worker &w, Rest &&rest) {
    const AclState *st = w.acl ? w.acl->state() : nullptr;
    const AclSet *acl =
        st ? acl_in_set(*st, b.port, static_cast<uint8_t>(w.ports[b.port].vrf)) : nullptr;
    const AclState *out = st && st->any[unsigned(AclDirection::Out)] ? st : nullptr;
    const bool policed = acl || out;
    switch (stages_idle4(b, w)) {
    case Idle4::Yes:
        return policed ? plain4_run<false, true>(b, w, acl, out, rest)
                       : plain4_run<false, false>(b, w, acl, out, rest);
    case Idle4::Lb:
        return policed ? plain4_run<true, true>(b, w, acl, out, rest)
                       : plain4_run<true, false>(b, w, acl, out, rest);
    case Idle4::No:
        break;
    }
    return false;
}

} // namespace vleaf::dp
