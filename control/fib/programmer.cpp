#include "control/fib/programmer.hpp"

#include <algorithm>
#include <cstring>

namespace vleaf::fib {

const char *route_type_name(RouteType t) {
    switch (t) {
    case RouteType::Connected:
        return "connected";
    case RouteType::Local:
        return "local";
    case RouteType::Static:
        return "static";
    case RouteType::Neighbor:
        return "neighbor";
    case RouteType::Blackhole:
        return "blackhole";
    case RouteType::Vxlan:
        return "vxlan";
    case RouteType::Bgp:
        return "bgp";
    case RouteType::Evpn:
        return "evpn";
    }
    return "?";
}

size_t Programmer::KeyHash::operator()(const RouteKey &k) const {
    uint64_t a, b;
    std::memcpy(&a, k.prefix.addr.bytes.data(), 8);
    std::memcpy(&b, k.prefix.addr.bytes.data() + 8, 8);
    uint64_t h = (a ^ (uint64_t(k.vrf) << 40 | k.prefix.len)) * 0x9e3779b97f4a7c15ull;
    h ^= (b + 0x632be59bd9b4e019ull) * 0xff51afd7ed558ccdull;
    return size_t(h ^ (h >> 29));
}

void Programmer::commit() {
    follow_underlay();
    if (nh_sets_.empty() && route_ops_.empty() && nh_dels_.empty() && vtep_dels_.empty()) return;
    counters_.batches++;
    for (const Update &u : nh_sets_) sink_(u);
    // The last operation on a prefix decides; the first says what the dataplane had.
    auto less = [](const PendingRoute &a, const PendingRoute &b) {
        return a.key.vrf != b.key.vrf ? a.key.vrf < b.key.vrf : a.key.prefix < b.key.prefix;
    };
    if (route_ops_.size() > 1) std::stable_sort(route_ops_.begin(), route_ops_.end(), less);
    for (size_t i = 0; i < route_ops_.size();) {
        size_t j = i;
        while (j + 1 < route_ops_.size() && route_ops_[j + 1].key == route_ops_[i].key) j++;
        const PendingRoute &first = route_ops_[i], &last = route_ops_[j];
        if (last.add && !(first.existed && first.prev == last.nh))
            sink_(Update::route_add(last.key.vrf, last.key.prefix, last.nh));
        else if (!last.add && first.existed)
            dels_.push_back(Update::route_del(last.key.vrf, last.key.prefix));
        i = j + 1;
    }
    for (const Update &u : dels_) sink_(u);
    // No route leads to their tunnel next hops any more; their underlay next hops go next.
    for (const Update &u : vtep_dels_) sink_(u);
    for (NhId id : nh_dels_) sink_(Update::nexthop_del(id));
    free_.insert(free_.end(), freed_.begin(), freed_.end());
    free_vteps_.insert(free_vteps_.end(), freed_vteps_.begin(), freed_vteps_.end());
    vtep_dels_.clear();
    freed_vteps_.clear();
    nh_sets_.clear();
    route_ops_.clear();
    dels_.clear();
    nh_dels_.clear();
    freed_.clear();
}

NhId Programmer::alloc() {
    if (!free_.empty()) {
        NhId id = free_.back();
        free_.pop_back();
        return id;
    }
    return next_++;
}

// Sends the dataplane's view of next hop `id`.
void Programmer::publish(NhId id) {
    const NhObj &o = nhs_.at(id);
    Nexthop n;
    switch (o.type) {
    case NhObj::Type::Connected:
        n.kind = NhKind::Resolve;
        n.port = ifs_.at(o.ifid).port;
        break;
    case NhObj::Type::Adjacency: {
        const Iface &itf = ifs_.at(o.ifid);
        n.kind = !o.mac ? NhKind::Unresolved : itf.bd ? NhKind::Bridge : NhKind::Forward;
        n.port = itf.port;
        n.bd = itf.bd.value_or(0);
        if (o.mac) n.mac = *o.mac;
        break;
    }
    case NhObj::Type::Tunnel:
        n.kind = NhKind::Tunnel;
        n.vtep = o.vtep;
        n.vni = o.vni;
        n.mac = *o.mac;
        break;
    case NhObj::Type::Group:
        n.kind = NhKind::Ecmp;
        n.n_members = static_cast<uint8_t>(o.members.size());
        std::copy(o.members.begin(), o.members.end(), n.members.begin());
        break;
    }
    nh_sets_.push_back(Update::nexthop_set(id, n));
}

void Programmer::unref(NhId id) {
    if (id < kFirstDynamicNh) return;
    --nhs_.at(id).refs;
    drop_unused(id);
}

void Programmer::drop_unused(NhId id) {
    NhObj &o = nhs_.at(id);
    if (o.refs > 0) return;
    // A neighbor entry stays while resolved: it backs its host route.
    if (o.type == NhObj::Type::Adjacency) adj_.erase({o.ifid, o.ip});
    if (o.type == NhObj::Type::Group) groups_.erase(o.members);
    if (o.type == NhObj::Type::Tunnel) {
        tunnels_.erase({o.vtep, o.vni, *o.mac});
        vteps_.at(o.vtep).tunnels--;
        vtep_unref(o.vtep);
    }
    std::vector<NhId> members = o.members;
    nhs_.erase(id);
    nh_dels_.push_back(id);
    freed_.push_back(id);
    for (NhId m : members) unref(m);
}

NhId Programmer::adjacency(uint16_t ifid, const IpAddr &ip) {
    auto it = adj_.find({ifid, ip});
    if (it != adj_.end()) return it->second;
    NhId id = alloc();
    NhObj o;
    o.type = NhObj::Type::Adjacency;
    o.ifid = ifid;
    o.ip = ip;
    nhs_[id] = o;
    adj_[{ifid, ip}] = id;
    publish(id);
    return id;
}

// Members carry no reference of the caller's; a new group takes one on each.
NhId Programmer::group(std::vector<NhId> members) {
    std::sort(members.begin(), members.end());
    members.erase(std::unique(members.begin(), members.end()), members.end());
    if (members.size() == 1) return members[0];
    auto it = groups_.find(members);
    if (it != groups_.end()) return it->second;
    NhId id = alloc();
    NhObj o;
    o.type = NhObj::Type::Group;
    o.members = members;
    nhs_[id] = o;
    groups_[members] = id;
    for (NhId m : members) nhs_.at(m).refs++;
    publish(id);
    return id;
}

void Programmer::set_route(uint32_t vrf, const Prefix &p, RouteType type, NhId nh) {
    if (vrf == 0 && !vteps_.empty()) underlay_dirty_.push_back(p);
    if (nh >= kFirstDynamicNh) nhs_.at(nh).refs++;
    auto [it, fresh] = routes_.try_emplace(RouteKey{vrf, p}, RouteEntry{type, 0, nh});
    NhId previous = fresh ? kNhNoRoute : it->second.nh;
    route_ops_.push_back({it->first, true, !fresh, nh, previous});
    if (fresh) {
        counts_[vrf][p.addr.is_v4() ? 0 : 1]++;
        if (type == RouteType::Bgp) bgp_routes_++;
    } else {
        if (it->second.type == RouteType::Bgp && type != RouteType::Bgp) bgp_routes_--;
        it->second = RouteEntry{type, 0, nh};
        unref(previous);
    }
    if (type == RouteType::Bgp) it->second.resync_gen = resync_gen_;
}

void Programmer::del_route(uint32_t vrf, const Prefix &p) {
    auto it = routes_.find({vrf, p});
    if (it == routes_.end()) return;
    if (vrf == 0 && !vteps_.empty()) underlay_dirty_.push_back(p);
    NhId nh = it->second.nh;
    if (it->second.type == RouteType::Bgp) bgp_routes_--;
    route_ops_.push_back({it->first, false, true, 0, nh});
    counts_[vrf][p.addr.is_v4() ? 0 : 1]--;
    routes_.erase(it);
    unref(nh);
}

void Programmer::add_gateway(uint16_t ifid, const std::string &name, uint16_t bd, uint32_t vrf,
                             const std::vector<Prefix> &addresses) {
    add_iface(ifid, name, 0, vrf, addresses, bd);
}

void Programmer::add_interface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                               const std::vector<Prefix> &addresses) {
    add_iface(ifid, name, port, vrf, addresses, std::nullopt);
}

void Programmer::add_iface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                           const std::vector<Prefix> &addresses, std::optional<uint16_t> bd) {
    Scope batch(*this);
    NhId conn = alloc();
    ifs_[ifid] = Iface{name, port, vrf, addresses, conn, bd};
    NhObj o;
    o.type = NhObj::Type::Connected;
    o.ifid = ifid;
    nhs_[conn] = o;
    publish(conn);
    for (const Prefix &a : addresses) {
        set_route(vrf, a.masked(), RouteType::Connected, conn);
        set_route(vrf, Prefix{a.addr, static_cast<uint8_t>(a.addr.max_len())}, RouteType::Local,
                  kNhLocal);
        if (a.addr.is_v4() && a.len <= 30) {
            // The subnet broadcast address belongs to the host, not to a neighbor.
            uint32_t bcast = a.addr.v4_host() | (0xffffffffu >> a.len);
            set_route(vrf, Prefix{IpAddr::v4(bcast), 32}, RouteType::Local, kNhLocal);
        }
    }
}

void Programmer::add_local(uint32_t vrf, const IpAddr &addr) {
    Scope batch(*this);
    set_route(vrf, Prefix{addr, static_cast<uint8_t>(addr.max_len())}, RouteType::Local, kNhLocal);
}

std::optional<uint16_t> Programmer::connected_if(uint32_t vrf, const IpAddr &ip) const {
    for (auto &[id, itf] : ifs_) {
        if (itf.vrf != vrf) continue;
        for (auto &a : itf.addresses)
            if (a.contains(ip)) return id;
    }
    return std::nullopt;
}

std::string Programmer::add_static(uint32_t vrf, const Prefix &prefix,
                                   const std::vector<IpAddr> &via, std::optional<uint16_t> dev,
                                   bool blackhole) {
    Scope batch(*this);
    if (blackhole) {
        set_route(vrf, prefix, RouteType::Blackhole, kNhBlackhole);
        return {};
    }
    if (dev) {
        auto it = ifs_.find(*dev);
        if (it == ifs_.end()) return "no interface " + std::to_string(*dev);
        set_route(vrf, prefix, RouteType::Static, it->second.connected_nh);
        return {};
    }
    std::vector<NhId> members;
    for (const IpAddr &gw : via) {
        auto ifid = connected_if(vrf, gw);
        if (!ifid) {
            for (NhId m : members) drop_unused(m);
            return "gateway " + gw.str() + " is not in a connected subnet of the route's VRF";
        }
        members.push_back(adjacency(*ifid, gw));
    }
    set_route(vrf, prefix, RouteType::Static, group(members));
    return {};
}

void Programmer::neighbor(uint16_t ifid, const IpAddr &ip, const std::optional<MacAddr> &mac) {
    Scope batch(*this);
    auto itf = ifs_.find(ifid);
    if (itf == ifs_.end()) return;
    auto it = adj_.find({ifid, ip});
    Prefix host{ip, static_cast<uint8_t>(ip.max_len())};
    if (mac) {
        NhId id = adjacency(ifid, ip);
        NhObj &o = nhs_.at(id);
        bool changed = o.mac != mac;
        o.mac = mac;
        if (changed) publish(id);
        if (!routes_.count({itf->second.vrf, host}))
            set_route(itf->second.vrf, host, RouteType::Neighbor, id);
        return;
    }
    if (it == adj_.end()) return;
    NhId id = it->second;
    nhs_.at(id).mac.reset();
    publish(id);
    auto r = routes_.find({itf->second.vrf, host});
    if (r != routes_.end() && r->second.type == RouteType::Neighbor)
        del_route(itf->second.vrf, host);
}

std::optional<Programmer::Target> Programmer::resolve_target(NhId nh, const IpAddr &dst) const {
    auto it = nhs_.find(nh);
    if (it == nhs_.end()) return std::nullopt;
    const NhObj &o = it->second;
    if (o.type == NhObj::Type::Connected) return Target{o.ifid, dst};
    if (o.type == NhObj::Type::Adjacency) return Target{o.ifid, o.ip};
    return std::nullopt;
}

Programmer::Hop Programmer::hop(NhId id) const {
    const NhObj &o = nhs_.at(id);
    Hop h;
    if (o.type == NhObj::Type::Tunnel) {
        h.via = vteps_.at(o.vtep).addr.str();
        h.interface = "vxlan" + std::to_string(o.vni);
        h.mac = o.mac->str();
        return h;
    }
    h.interface = ifs_.at(o.ifid).name;
    if (o.type == NhObj::Type::Adjacency) {
        h.via = o.ip.str();
        if (o.mac) h.mac = o.mac->str();
    }
    return h;
}

std::vector<Programmer::Hop> Programmer::hops(NhId id) const {
    std::vector<Hop> out;
    if (id < kFirstDynamicNh) return out;
    const NhObj &o = nhs_.at(id);
    if (o.type == NhObj::Type::Group)
        for (NhId m : o.members) out.push_back(hop(m));
    else
        out.push_back(hop(id));
    return out;
}

std::vector<Programmer::RouteView> Programmer::routes() const {
    std::vector<const std::pair<const RouteKey, RouteEntry> *> sorted;
    sorted.reserve(routes_.size());
    for (auto &r : routes_) sorted.push_back(&r);
    std::sort(sorted.begin(), sorted.end(), [](auto *a, auto *b) {
        return a->first.vrf != b->first.vrf ? a->first.vrf < b->first.vrf
                                            : a->first.prefix < b->first.prefix;
    });
    std::vector<RouteView> out;
    for (auto *kv : sorted) {
        const auto &[key, r] = *kv;
        out.push_back(RouteView{key.vrf, key.prefix, route_type_name(r.type), hops(r.nh)});
    }
    return out;
}

void Programmer::set_bgp(uint32_t vrf, const Prefix &prefix, const IpAddr *via, unsigned n_via) {
    Scope batch(*this);
    counters_.bgp_set++;
    auto it = routes_.find({vrf, prefix});
    if (it != routes_.end() && it->second.type != RouteType::Bgp) {
        counters_.bgp_shadowed++;
        return;
    }
    // On the writer's path for every BGP update: no heap allocation unless it is ECMP.
    std::array<NhId, kMaxEcmp> members;
    unsigned n = 0;
    for (unsigned k = 0; k < n_via && n < kMaxEcmp; k++)
        if (auto ifid = connected_if(vrf, via[k])) members[n++] = adjacency(*ifid, via[k]);
    if (n == 0) {
        // Not resolvable through a connected subnet (no recursive resolution yet).
        counters_.bgp_unresolved++;
        if (it != routes_.end()) del_route(vrf, prefix);
        return;
    }
    NhId nh = n == 1 ? members[0] : group({members.begin(), members.begin() + n});
    set_route(vrf, prefix, RouteType::Bgp, nh);
}

void Programmer::del_bgp(uint32_t vrf, const Prefix &prefix) {
    Scope batch(*this);
    counters_.bgp_del++;
    auto it = routes_.find({vrf, prefix});
    if (it != routes_.end() && it->second.type == RouteType::Bgp) del_route(vrf, prefix);
}

void Programmer::bgp_resync_begin() {
    counters_.resyncs++;
    resync_gen_++;
}

void Programmer::bgp_resync_end() {
    Scope batch(*this);
    std::vector<RouteKey> stale;
    for (auto &[key, r] : routes_)
        if (r.type == RouteType::Bgp && r.resync_gen != resync_gen_) stale.push_back(key);
    for (auto &k : stale) del_route(k.vrf, k.prefix);
    counters_.resync_removed += stale.size();
}

} // namespace vleaf::fib
