// Adj-RIB-Out: which best paths each peer gets (iBGP and route reflection rules, export
// policy), with which attributes, and the coalesced queue that turns them into UPDATEs
// when the peer's socket has room. Nothing per prefix is stored once it is sent.
#include "control/bgp/policy.hpp"
#include "control/bgp/speaker.hpp"

#include <spdlog/spdlog.h>

namespace vleaf::bgp {

namespace {

// Above this many unsent bytes a peer gets no more UPDATEs until its socket drains:
// the pending queue coalesces meanwhile, the loop never blocks.
constexpr size_t kHighWater = size_t{256} * 1024;
// Prefixes encoded per peer per loop iteration, to keep the loop responsive.
constexpr size_t kFlushBatch = 20000;

template <class Map, class Key> void put(Map &m, const Key &k, const AttrData *attrs, Rib &rib) {
    if (attrs) Rib::ref(attrs);
    auto [it, inserted] = m.try_emplace(k, attrs);
    if (!inserted) {
        if (it->second) rib.unref(it->second);
        it->second = attrs;
        if constexpr (std::is_same_v<Key, EvpnNlri>) {
            // The same route key with new labels: send the newest NLRI.
            if (!(it->first == k)) {
                auto node = m.extract(it);
                node.key() = k;
                m.insert(std::move(node));
            }
        }
    }
}

} // namespace

bool Speaker::exportable(const Session &s, const Path &p, const Prefix *prefix,
                         const Policy &policy) const {
    if (p.peer == s.rib_id) return false; // never back to where it came from
    const RibPeer &from = rib_.peer(p.peer);
    if (s.ibgp() && !ibgp_may_advertise(p.peer, from, s.cfg.rr_client)) return false;
    const PathAttrs &a = p.attrs->attrs;
    // The peer would drop it as an AS loop: save the bytes.
    if (!s.ibgp() && a.as_path && a.as_path->contains(s.local.remote_as)) return false;
    return policy_permits(policy, prefix, a);
}

NextHop Speaker::self_next_hop(const Session &s, RouteFamily f) const {
    NextHop nh;
    const IpAddr &local = s.local_addr;
    if (f == RouteFamily::Ipv6Unicast) {
        if (!local.is_v4()) {
            nh.addr = local;
        } else {
            // No IPv6 address on an IPv4 session: the v4-mapped address, as FRR does.
            uint8_t b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            std::copy(local.bytes.begin(), local.bytes.begin() + 4, b + 12);
            nh.addr = IpAddr::v6(b);
        }
    } else if (local.is_v4() ||
               (f == RouteFamily::Ipv4Unicast && s.neg.ctx.extended_nexthop_ipv4)) {
        nh.addr = local; // an IPv6 one only when RFC 8950 extended next hop was negotiated
    } else {
        nh.addr = IpAddr::v4(cfg_.router_id.v4_host());
    }
    return nh;
}

const AttrData *Speaker::export_attrs(Session &s, const Path &p, RouteFamily family) {
    uint64_t key = uint64_t(reinterpret_cast<uintptr_t>(p.attrs)) ^ (uint64_t(p.peer) << 48) ^
                   (uint64_t(family) << 56);
    auto it = s.export_cache.find(key);
    if (it != s.export_cache.end()) return it->second;

    const RibPeer &from = rib_.peer(p.peer);
    bool local = p.peer == kLocalPeer;
    PathAttrs a = p.attrs->attrs;
    NextHop nh = p.attrs->next_hop;
    nh.link_local.reset(); // only meaningful on the link it was learned on
    bool self = nh.addr.is_unspecified() || (s.cfg.next_hop_self && (local || !from.ibgp));
    if (!s.ibgp()) {
        if (!a.as_path) a.as_path = AsPath{};
        auto &segs = a.as_path->segments;
        if (segs.empty() || segs.front().type != SegmentType::AsSequence ||
            segs.front().asns.size() >= 255)
            segs.insert(segs.begin(), AsSegment{SegmentType::AsSequence, {}});
        segs.front().asns.insert(segs.front().asns.begin(), s.local.asn);
        a.local_pref.reset();
        a.originator_id.reset();
        a.cluster_list.clear();
        if (!local) a.med.reset(); // RFC 4271 5.1.4: MED stays in the neighboring AS
        // An EVPN next hop is the VTEP that terminates the tunnel: kept across eBGP, as
        // in EVPN fabrics (RFC 8365 7) and FRR's default.
        if (family != RouteFamily::Evpn) self = true;
    } else {
        a.local_pref = a.local_pref.value_or(100);
        if (!local && from.ibgp) reflect_attrs(a, from.router_id, rib_.options().cluster_id);
    }
    if (self) nh = self_next_hop(s, family);
    policy_rewrite(s.cfg.export_policy, a);
    a.next_hop.reset();
    const AttrData *out = rib_.intern(std::move(a), nh);
    Rib::ref(out);
    Rib::ref(p.attrs); // the cache key must not be freed and reused while cached
    s.export_cache.emplace(key, out);
    s.export_keys.push_back(p.attrs);
    return out;
}

void Speaker::on_rib_change(const RibChange &ch) {
    if (ch.vrf) return; // IP-VRF tables are for forwarding, not advertised as such
    for (auto &sp : sessions_) {
        Session &s = *sp;
        if (!s.up || !(s.neg.families & family_bit(ch.family))) continue;
        bool was =
            !ch.before.empty() && exportable(s, ch.before[0], ch.prefix, s.cfg.export_policy);
        bool is = !ch.now.empty() && exportable(s, ch.now[0], ch.prefix, s.cfg.export_policy);
        if (!was && !is) continue;
        const AttrData *attrs = is ? export_attrs(s, ch.now[0], ch.family) : nullptr;
        if (ch.evpn)
            put(s.out.evpn, *ch.evpn, attrs, rib_);
        else
            put(s.out.unicast[ch.family == RouteFamily::Ipv4Unicast ? 0 : 1], *ch.prefix, attrs,
                rib_);
    }
}

void Speaker::queue_full_table(Session &s, FamilyMask families, const Policy *was_policy) {
    if (was_policy) drop_export_cache(s); // rewrites computed under the old policy
    for (unsigned i = 0; i < kRouteFamilies; ++i) {
        auto f = RouteFamily(i);
        if (!(families & family_bit(f))) continue;
        rib_.for_each(f, [&](const Prefix *p, const EvpnNlri *ev, const RouteEntry &e) {
            if (!e.n_best) return;
            const AttrData *attrs = nullptr;
            if (exportable(s, e.all()[0], p, s.cfg.export_policy))
                attrs = export_attrs(s, e.all()[0], f);
            else if (!was_policy || !exportable(s, e.all()[0], p, *was_policy))
                return;
            if (ev)
                put(s.out.evpn, *ev, attrs, rib_);
            else
                put(s.out.unicast[i], *p, attrs, rib_);
        });
    }
}

void Speaker::drop_export_cache(Session &s) {
    for (auto &[k, a] : s.export_cache) rib_.unref(a);
    for (auto *a : s.export_keys) rib_.unref(a);
    s.export_cache.clear();
    s.export_keys.clear();
}

void Speaker::clear_out(Session &s) {
    for (auto &m : s.out.unicast) {
        for (auto &[k, a] : m)
            if (a) rib_.unref(a);
        m.clear();
    }
    for (auto &[k, a] : s.out.evpn)
        if (a) rib_.unref(a);
    s.out.evpn.clear();
    s.out.eor = s.out.borr = s.out.eorr = 0;
    drop_export_cache(s);
}

void Speaker::flush_out(Session &s) {
    Conn &c = *s.main;
    if (!s.up || c.fd < 0 || c.unsent() > kHighWater) return;
    auto markers = [&](FamilyMask &mask, uint8_t subtype, uint64_t &counter) {
        for (unsigned i = 0; i < kRouteFamilies; ++i)
            if (mask & family_bit(RouteFamily(i))) {
                encode_route_refresh({to_afi_safi(RouteFamily(i)), subtype}, c.wbuf);
                ++counter;
            }
        mask = 0;
    };
    markers(s.out.borr, RouteRefresh::BeginOfRib, s.counters.borr_out);
    size_t budget = kFlushBatch;
    // Group by attribute set: one UPDATE carries many prefixes.
    std::unordered_map<const AttrData *, std::vector<PrefixNlri>> groups;
    std::vector<PrefixNlri> withdrawn;
    for (unsigned i = 0; i < 2 && budget; ++i) {
        auto f = RouteFamily(i);
        auto &m = s.out.unicast[i];
        groups.clear();
        withdrawn.clear();
        for (auto it = m.begin(); it != m.end() && budget; --budget) {
            if (it->second)
                groups[it->second].push_back({0, it->first});
            else
                withdrawn.push_back({0, it->first});
            it = m.erase(it);
        }
        if (!withdrawn.empty()) {
            s.counters.updates_out += encode_withdraw(f, withdrawn, s.neg.ctx, c.wbuf);
            s.counters.prefixes_withdrawn_out += withdrawn.size();
        }
        for (auto &[attrs, routes] : groups) {
            s.counters.updates_out +=
                encode_announce(f, attrs->attrs, attrs->next_hop, routes, s.neg.ctx, c.wbuf);
            s.counters.prefixes_announced_out += routes.size();
            for (size_t k = 0; k < routes.size(); ++k) rib_.unref(attrs);
        }
    }
    if (budget && !s.out.evpn.empty()) {
        std::map<const AttrData *, std::vector<EvpnNlri>> eg;
        std::vector<EvpnNlri> ew;
        for (auto it = s.out.evpn.begin(); it != s.out.evpn.end() && budget; --budget) {
            if (it->second)
                eg[it->second].push_back(it->first);
            else
                ew.push_back(it->first);
            it = s.out.evpn.erase(it);
        }
        if (!ew.empty()) {
            s.counters.updates_out += encode_withdraw(ew, s.neg.ctx, c.wbuf);
            s.counters.prefixes_withdrawn_out += ew.size();
        }
        for (auto &[attrs, routes] : eg) {
            s.counters.updates_out +=
                encode_announce(attrs->attrs, attrs->next_hop, routes, s.neg.ctx, c.wbuf);
            s.counters.prefixes_announced_out += routes.size();
            for (size_t k = 0; k < routes.size(); ++k) rib_.unref(attrs);
        }
    }
    if (s.out.size() == 0) {
        for (unsigned i = 0; i < kRouteFamilies; ++i)
            if (s.out.eor & family_bit(RouteFamily(i))) {
                encode_end_of_rib(RouteFamily(i), c.wbuf);
                ++s.counters.updates_out;
            }
        s.out.eor = 0;
        markers(s.out.eorr, RouteRefresh::EndOfRib, s.counters.eorr_out);
        // The cached rewrites are only worth keeping while a burst is being sent.
        drop_export_cache(s);
    }
    flush_conn(c);
}

} // namespace vleaf::bgp
