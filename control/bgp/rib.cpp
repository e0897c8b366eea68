#include "control/bgp/rib.hpp"

#include "control/bgp/policy.hpp"

#include <algorithm>
#include <cstring>

namespace vleaf::bgp {

namespace {

inline size_t mix(size_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

size_t hash_bytes(size_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; ++i) h = mix(h, p[i]);
    return h;
}

// Hashes the fields that usually differ between attribute sets; equality is checked in
// full by AttrPool::Eq.
size_t hash_attrs(const PathAttrs &a, const NextHop &nh) {
    size_t h = hash_bytes(0, nh.addr.bytes.data(), 16);
    h = mix(h, a.origin ? uint64_t(*a.origin) + 1 : 0);
    if (a.as_path)
        for (auto &s : a.as_path->segments) {
            h = mix(h, uint64_t(s.type));
            for (auto asn : s.asns) h = mix(h, asn);
        }
    h = mix(h, a.med ? uint64_t(*a.med) + 1 : 0);
    h = mix(h, a.local_pref ? uint64_t(*a.local_pref) + 1 : 0);
    for (auto c : a.communities) h = mix(h, c);
    for (auto &c : a.ext_communities) h = mix(h, c.raw);
    for (auto &c : a.large_communities) h = mix(h, uint64_t(c.global) << 32 | c.local1);
    h = mix(h, a.originator_id.value_or(0));
    h = mix(h, a.cluster_list.size());
    return h;
}

} // namespace

const AttrData *AttrPool::intern(PathAttrs &&attrs, const NextHop &nh) {
    auto *d = new AttrData{std::move(attrs), nh, 0, 0};
    d->hash = hash_attrs(d->attrs, nh);
    auto [it, inserted] = set_.insert(d);
    if (!inserted) delete d;
    return *it;
}

void AttrPool::unref(const AttrData *a) {
    if (--a->refs) return;
    set_.erase(a);
    delete a;
}

void AttrPool::discard_unused(const AttrData *a) {
    if (a->refs) return;
    set_.erase(a);
    delete a;
}

const char *verdict_name(ImportVerdict v) {
    switch (v) {
    case ImportVerdict::Accepted:
        return "accepted";
    case ImportVerdict::AsLoop:
        return "AS path loop";
    case ImportVerdict::OriginatorLoop:
        return "ORIGINATOR_ID is ours";
    case ImportVerdict::ClusterLoop:
        return "CLUSTER_LIST loop";
    case ImportVerdict::Denied:
        return "denied by import policy";
    }
    return "?";
}

void reflect_attrs(PathAttrs &a, uint32_t from_router_id, uint32_t cluster_id) {
    if (!a.originator_id) a.originator_id = from_router_id;
    a.cluster_list.insert(a.cluster_list.begin(), cluster_id);
}

size_t Rib::KeyHash::operator()(const V6Key &k) const {
    uint64_t a, b;
    std::memcpy(&a, k.a.data(), 8);
    std::memcpy(&b, k.a.data() + 8, 8);
    return mix(mix(a * 0x9e3779b97f4a7c15ull, b), k.len);
}

Rib::V6Key Rib::v6_key(const Prefix &p) {
    return {p.masked().addr.bytes, p.len};
}
Prefix Rib::from_key(const V4Key &k) {
    return {IpAddr::v4(uint32_t(k.v >> 8)), uint8_t(k.v)};
}
Prefix Rib::from_key(const V6Key &k) {
    return {IpAddr::v6(k.a.data()), k.len};
}

Rib::Rib(const RibOptions &opt) : opt_(opt) {
    if (!opt_.cluster_id) opt_.cluster_id = opt_.router_id;
    if (!opt_.max_paths) opt_.max_paths = 1;
    RibPeer local;
    local.in_use = true;
    local.asn = opt_.asn;
    local.router_id = opt_.router_id;
    peers_.push_back(local);
}

Rib::~Rib() {
    auto drop = [this](RouteEntry &e) {
        for (auto &p : e.all()) pool_.unref(p.attrs);
    };
    v4_.for_each([&](const V4Key &, RouteEntry &e) { drop(e); });
    v6_.for_each([&](const V6Key &, RouteEntry &e) { drop(e); });
    for (auto &[k, e] : evpn_) drop(e);
}

PeerId Rib::add_peer(const RibPeer &p) {
    for (size_t i = 1; i < peers_.size(); ++i)
        if (!peers_[i].in_use) {
            peers_[i] = p;
            peers_[i].in_use = true;
            return PeerId(i);
        }
    if (peers_.size() > 0xffff) throw std::length_error("more than 65535 BGP peers");
    peers_.push_back(p);
    peers_.back().in_use = true;
    return PeerId(peers_.size() - 1);
}

void Rib::remove_peer(PeerId id) {
    peer_down(id, 0);
    peers_[id] = RibPeer{};
}

ImportVerdict Rib::check_import(const Prefix *prefix, PathAttrs &attrs,
                                const Policy &policy) const {
    if (attrs.as_path && attrs.as_path->contains(opt_.asn)) return ImportVerdict::AsLoop;
    if (attrs.originator_id == opt_.router_id) return ImportVerdict::OriginatorLoop;
    if (std::find(attrs.cluster_list.begin(), attrs.cluster_list.end(), opt_.cluster_id) !=
        attrs.cluster_list.end())
        return ImportVerdict::ClusterLoop;
    if (!policy_permits(policy, prefix, attrs)) return ImportVerdict::Denied;
    policy_rewrite(policy, attrs);
    return ImportVerdict::Accepted;
}

void RouteEntry::reserve_one() {
    if (n < cap) return;
    auto c = uint16_t(cap * 2);
    auto *grown = new Path[c];
    std::copy(data(), data() + n, grown);
    if (cap > 1) delete[] heap_;
    heap_ = grown;
    cap = c;
}

void Rib::set_path(RouteEntry &e, RouteFamily f, const Path &np) {
    Path *paths = e.data();
    for (size_t i = 0; i < e.n; ++i) {
        Path &p = paths[i];
        if (p.peer != np.peer || p.path_id != np.path_id) continue;
        if (p.attrs != np.attrs) {
            AttrPool::ref(np.attrs);
            release_.push_back(p.attrs);
        }
        p.attrs = np.attrs;
        p.flags = np.flags;
        return;
    }
    e.reserve_one();
    AttrPool::ref(np.attrs);
    e.data()[e.n++] = np;
    ++total_paths_;
    ++peers_[np.peer].accepted[size_t(f)];
}

bool Rib::remove_path(RouteEntry &e, RouteFamily f, PeerId peer, uint32_t path_id) {
    Path *paths = e.data();
    for (size_t i = 0; i < e.n; ++i) {
        Path &p = paths[i];
        if (p.peer != peer || p.path_id != path_id) continue;
        release_.push_back(p.attrs);
        // Order does not matter: select() puts the best paths first again.
        p = paths[--e.n];
        --total_paths_;
        --peers_[peer].accepted[size_t(f)];
        return true;
    }
    return false;
}

template <class Op>
bool Rib::modify(RouteEntry &e, RouteFamily f, const Prefix *p, const EvpnNlri *ev, Op op) {
    before_.assign(e.data(), e.data() + e.n_best);
    if (op()) {
        select(e);
        auto now = e.best();
        bool same = before_.size() == now.size() &&
                    std::equal(now.begin(), now.end(), before_.begin(),
                               [](const Path &a, const Path &b) { return a.same(b); });
        if (!same) notify(RibChange{f, 0, p, ev, before_, now, {}, {}});
        // Replaced attribute sets stay alive until the listeners have seen `before`.
        for (auto *a : release_) pool_.unref(a);
        release_.clear();
    }
    return e.n != 0;
}

void Rib::update(PeerId peer, RouteFamily f, const Prefix &p, uint32_t path_id,
                 const AttrData *attrs) {
    Path np{attrs, path_id, peer, 0, 0};
    auto upd = [&](auto &table, auto key) {
        auto &e = table[key];
        modify(e, f, &p, nullptr, [&] {
            set_path(e, f, np);
            return true;
        });
    };
    if (f == RouteFamily::Ipv4Unicast)
        upd(v4_, v4_key(p));
    else
        upd(v6_, v6_key(p));
}

void Rib::update(PeerId peer, const EvpnNlri &route, const AttrData *attrs) {
    EvpnNlri key = route;
    key.path_id = 0;
    auto it = evpn_.find(key);
    if (it == evpn_.end()) {
        it = evpn_.emplace(key, RouteEntry{}).first;
    } else if (!(it->first == key)) {
        // Same route key, other labels/ESI/gateway: the newest NLRI is the one to send.
        auto node = evpn_.extract(it);
        node.key() = key;
        it = evpn_.insert(std::move(node)).position;
    }
    auto &e = it->second;
    Path np{attrs, route.path_id, peer, 0, 0};
    modify(e, RouteFamily::Evpn, nullptr, &it->first, [&] {
        set_path(e, RouteFamily::Evpn, np);
        return true;
    });
}

void Rib::withdraw(PeerId peer, RouteFamily f, const Prefix &p, uint32_t path_id) {
    auto wd = [&](auto &table, auto key) {
        RouteEntry *e = table.find(key);
        if (e && !modify(*e, f, &p, nullptr, [&] { return remove_path(*e, f, peer, path_id); }))
            table.erase(key);
    };
    if (f == RouteFamily::Ipv4Unicast)
        wd(v4_, v4_key(p));
    else
        wd(v6_, v6_key(p));
}

void Rib::withdraw(PeerId peer, const EvpnNlri &route) {
    EvpnNlri key = route;
    key.path_id = 0;
    auto it = evpn_.find(key);
    if (it == evpn_.end()) return;
    if (!modify(it->second, RouteFamily::Evpn, nullptr, &key,
                [&] { return remove_path(it->second, RouteFamily::Evpn, peer, route.path_id); }))
        evpn_.erase(it);
}

template <class Pred> void Rib::remove_where(PeerId peer, FamilyMask families, Pred pred) {
    // Returns false if the entry became empty.
    auto sweep_entry = [&](RouteEntry &e, RouteFamily f, const Prefix *p, const EvpnNlri *ev) {
        return modify(e, f, p, ev, [&] {
            bool removed = false;
            Path *paths = e.data();
            for (size_t i = 0; i < e.n;) {
                Path &x = paths[i];
                if (x.peer == peer && pred(x)) {
                    release_.push_back(x.attrs);
                    x = paths[--e.n];
                    --total_paths_;
                    --peers_[peer].accepted[size_t(f)];
                    removed = true;
                } else {
                    ++i;
                }
            }
            return removed;
        });
    };
    auto wanted = [&](RouteFamily f) {
        return (families & family_bit(f)) && peers_[peer].accepted[size_t(f)];
    };
    // Emptied unicast entries stay (without paths, invisible to find()) until the sweep
    // is over: erasing moves other entries of the table.
    auto sweep_unicast = [&](auto &table, RouteFamily f) {
        if (!wanted(f)) return;
        table.for_each([&](const auto &k, RouteEntry &e) {
            Prefix p = from_key(k);
            sweep_entry(e, f, &p, nullptr);
        });
        table.erase_if([](const RouteEntry &e) { return e.n == 0; });
    };
    sweep_unicast(v4_, RouteFamily::Ipv4Unicast);
    sweep_unicast(v6_, RouteFamily::Ipv6Unicast);
    if (!wanted(RouteFamily::Evpn)) return;
    for (auto it = evpn_.begin(); it != evpn_.end();)
        it = sweep_entry(it->second, RouteFamily::Evpn, nullptr, &it->first) ? std::next(it)
                                                                             : evpn_.erase(it);
}

void Rib::peer_down(PeerId peer, FamilyMask keep) {
    remove_where(peer, FamilyMask(~keep), [](const Path &) { return true; });
    // Kept paths become stale: the restarted peer re-announces what it still has and
    // End-of-RIB (or the restart timer) sweeps the rest.
    mark_stale(peer, keep);
}

void Rib::mark_stale(PeerId peer, FamilyMask families) {
    // The best path sets do not change: staleness is not a best-path criterion.
    auto mark_entry = [&](RouteEntry &e) {
        Path *paths = e.data();
        for (size_t i = 0; i < e.n; ++i)
            if (paths[i].peer == peer) paths[i].flags |= Path::kStale;
    };
    auto wanted = [&](RouteFamily f) {
        return (families & family_bit(f)) && peers_[peer].accepted[size_t(f)];
    };
    if (wanted(RouteFamily::Ipv4Unicast))
        v4_.for_each([&](const V4Key &, RouteEntry &e) { mark_entry(e); });
    if (wanted(RouteFamily::Ipv6Unicast))
        v6_.for_each([&](const V6Key &, RouteEntry &e) { mark_entry(e); });
    if (wanted(RouteFamily::Evpn))
        for (auto &[k, e] : evpn_) mark_entry(e);
}

void Rib::sweep_stale(PeerId peer, FamilyMask families) {
    remove_where(peer, families, [](const Path &p) { return p.flags & Path::kStale; });
}

void Rib::end_deferral() {
    deferring_ = false;
    for (unsigned i = 0; i < kRouteFamilies; ++i) {
        auto f = RouteFamily(i);
        for_each(f, [&](const Prefix *p, const EvpnNlri *ev, const RouteEntry &e) {
            if (e.n_best) notify(RibChange{f, 0, p, ev, {}, e.best(), {}, {}});
        });
    }
}

void Rib::for_each(
    RouteFamily f,
    const std::function<void(const Prefix *, const EvpnNlri *, const RouteEntry &)> &fn) const {
    auto visit = [&](const auto &k, const RouteEntry &e) {
        if (!e.n) return; // emptied by a sweep under way
        Prefix p = from_key(k);
        fn(&p, nullptr, e);
    };
    if (f == RouteFamily::Ipv4Unicast)
        v4_.for_each(visit);
    else if (f == RouteFamily::Ipv6Unicast)
        v6_.for_each(visit);
    else
        for (auto &[k, e] : evpn_) fn(nullptr, &k, e);
}

const RouteEntry *Rib::find(RouteFamily f, const Prefix &p) const {
    const RouteEntry *e = f == RouteFamily::Ipv4Unicast ? v4_.find(v4_key(p)) : v6_.find(v6_key(p));
    return e && e->n ? e : nullptr; // an entry emptied by a sweep under way is gone
}

size_t Rib::prefixes(RouteFamily f) const {
    switch (f) {
    case RouteFamily::Ipv4Unicast:
        return v4_.size();
    case RouteFamily::Ipv6Unicast:
        return v6_.size();
    case RouteFamily::Evpn:
        return evpn_.size();
    }
    return 0;
}

} // namespace vleaf::bgp
