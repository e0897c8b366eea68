#include "control/fib/programmer.hpp"

#include <algorithm>
#include <cstring>

namespace vleaf::fib {

namespace {
// How many routes ahead of their update the tables are prefetched: enough to cover a
// cache miss with the work of the updates in between, few enough that the lines stay.
constexpr size_t kAhead = 8;
} // namespace

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

void Programmer::commit() {
    follow_underlay();
    if (nh_sets_.empty() && route_ops_.empty() && nh_dels_.empty() && vtep_dels_.empty()) return;
    counters_.batches++;
    for (const Update &u : nh_sets_) sink_(u);
    auto sends_add = [](const PendingRoute &o) { return o.add && !(o.existed && o.prev == o.nh); };
    for (size_t i = 0; i < route_ops_.size(); i++) {
        if (i + kAhead < route_ops_.size()) {
            const PendingRoute &next = route_ops_[i + kAhead];
            if (!next.add) routes_.prefetch(next.key); // erased below
            if (dp_.prefetch && sends_add(next)) dp_.prefetch(next.key.vrf, next.key.prefix, true);
        }
        const PendingRoute &o = route_ops_[i];
        if (sends_add(o))
            sink_(Update::route_add(o.key.vrf, o.key.prefix, o.nh));
        else if (!o.add && o.existed)
            dels_.push_back(o.key);
        if (!o.add) routes_.erase(o.key);
    }
    // A slot's `op` belongs to the batch it names; at the wrap none may name the next one.
    if (++batch_ == 0) {
        routes_.for_each([](RouteSlot &r) { r.batch = 0; });
        batch_ = 1;
    }
    for (size_t i = 0; i < dels_.size(); i++) {
        if (dp_.prefetch && i + kAhead < dels_.size())
            dp_.prefetch(dels_[i + kAhead].vrf, dels_[i + kAhead].prefix, false);
        sink_(Update::route_del(dels_[i].vrf, dels_[i].prefix));
    }
    // No route leads to their tunnel next hops any more; their underlay next hops go next.
    for (const Update &u : vtep_dels_) sink_(u);
    for (NhId id : nh_dels_) sink_(Update::nexthop_del(id));
    if (dp_.settle) {
        dp_.settle();
        held_.insert(held_.end(), freed_.begin(), freed_.end());
    } else {
        free_.insert(free_.end(), freed_.begin(), freed_.end());
    }
    free_vteps_.insert(free_vteps_.end(), freed_vteps_.begin(), freed_vteps_.end());
    vtep_dels_.clear();
    freed_vteps_.clear();
    nh_sets_.clear();
    route_ops_.clear();
    dels_.clear();
    nh_dels_.clear();
    freed_.clear();
}

void Programmer::release_held() {
    // Deleted in this order, so released in it.
    while (!held_.empty() && dp_.released(held_.front())) {
        free_.push_back(held_.front());
        held_.pop_front();
    }
}

NhId Programmer::alloc() {
    if (free_.empty()) release_held();
    if (free_.empty() && next_ == kMaxNh && !held_.empty()) {
        free_.push_back(held_.front()); // no fresh id left: the writer will wait for it
        held_.pop_front();
    }
    if (!free_.empty()) {
        NhId id = free_.back();
        free_.pop_back();
        counters_.nh_reused++;
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

void Programmer::note(RouteSlot &r, bool add, NhId nh) {
    if (r.batch != batch_) {
        r.batch = batch_;
        r.op = uint32_t(route_ops_.size());
        route_ops_.push_back({r.key, r.present, r.nh, add, nh});
        return;
    }
    route_ops_[r.op].add = add;
    route_ops_[r.op].nh = nh;
}

const RouteSlot *Programmer::route(uint32_t vrf, const Prefix &p) const {
    const RouteSlot *r = routes_.find({vrf, p});
    return r && r->present ? r : nullptr;
}

void Programmer::set_route(uint32_t vrf, const Prefix &p, RouteType type, NhId nh) {
    if (vrf == 0 && !vteps_.empty()) underlay_dirty_.push_back(p);
    if (nh >= kFirstDynamicNh) nhs_.at(nh).refs++;
    RouteSlot &r = routes_.slot({vrf, p});
    bool fresh = !r.present;
    NhId previous = r.nh;
    note(r, true, nh);
    if (fresh) {
        counts_[vrf][p.addr.is_v4() ? 0 : 1]++;
        if (type == RouteType::Bgp) bgp_routes_++;
    } else if (r.type == RouteType::Bgp && type != RouteType::Bgp) {
        bgp_routes_--;
    }
    r.present = true;
    r.type = type;
    r.nh = nh;
    r.resync_gen = type == RouteType::Bgp ? resync_gen_ : 0;
    if (!fresh) unref(previous);
}

// The slot stays (not present) until the batch leaves: an add of the prefix later in the
// batch finds what the dataplane had.
void Programmer::del_route(uint32_t vrf, const Prefix &p) {
    RouteSlot *r = routes_.find({vrf, p});
    if (!r || !r->present) return;
    if (vrf == 0 && !vteps_.empty()) underlay_dirty_.push_back(p);
    NhId nh = r->nh;
    if (r->type == RouteType::Bgp) bgp_routes_--;
    note(*r, false, kNhNoRoute);
    r->present = false;
    counts_[vrf][p.addr.is_v4() ? 0 : 1]--;
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
    index_subnets();
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

void Programmer::index_subnets() {
    subnets_.clear();
    for (auto &[id, itf] : ifs_)
        for (const Prefix &a : itf.addresses) {
            // Prefix::contains compares masked addresses; an IPv4 prefix masks only its
            // first 4 bytes and compares the rest as they are.
            std::array<uint8_t, 16> mask;
            mask.fill(0xff);
            Prefix ones{a.addr, a.len};
            ones.addr.bytes = mask;
            mask = ones.masked().addr.bytes;
            Subnet sn{itf.vrf, a.addr.family, id, {}, {}};
            std::memcpy(sn.mask.data(), mask.data(), 16);
            std::memcpy(sn.net.data(), a.addr.bytes.data(), 16);
            sn.net[0] &= sn.mask[0];
            sn.net[1] &= sn.mask[1];
            subnets_.push_back(sn);
        }
}

std::optional<uint16_t> Programmer::connected_if(uint32_t vrf, const IpAddr &ip) const {
    std::array<uint64_t, 2> a;
    std::memcpy(a.data(), ip.bytes.data(), 16);
    for (const Subnet &sn : subnets_)
        if (sn.vrf == vrf && sn.family == ip.family && ((a[0] ^ sn.net[0]) & sn.mask[0]) == 0 &&
            ((a[1] ^ sn.net[1]) & sn.mask[1]) == 0)
            return sn.ifid;
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
        if (!route(itf->second.vrf, host))
            set_route(itf->second.vrf, host, RouteType::Neighbor, id);
        return;
    }
    if (it == adj_.end()) return;
    NhId id = it->second;
    nhs_.at(id).mac.reset();
    publish(id);
    const RouteSlot *r = route(itf->second.vrf, host);
    if (r && r->type == RouteType::Neighbor) del_route(itf->second.vrf, host);
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
    std::vector<const RouteSlot *> sorted;
    routes_.for_each([&](const RouteSlot &r) {
        if (r.present) sorted.push_back(&r);
    });
    std::sort(sorted.begin(), sorted.end(), [](auto *a, auto *b) {
        return a->key.vrf != b->key.vrf ? a->key.vrf < b->key.vrf : a->key.prefix < b->key.prefix;
    });
    std::vector<RouteView> out;
    out.reserve(sorted.size());
    for (const RouteSlot *r : sorted)
        out.push_back(RouteView{r->key.vrf, r->key.prefix, route_type_name(r->type), hops(r->nh)});
    return out;
}

void Programmer::set_bgp(uint32_t vrf, const Prefix &prefix, const IpAddr *via, unsigned n_via) {
    Scope batch(*this);
    counters_.bgp_set++;
    const RouteSlot *r = route(vrf, prefix);
    if (r && r->type != RouteType::Bgp) {
        counters_.bgp_shadowed++;
        return;
    }
    bool had = r != nullptr;
    // On the writer's path for every BGP update: no heap allocation unless it is ECMP.
    std::array<NhId, kMaxEcmp> members;
    unsigned n = 0;
    for (unsigned k = 0; k < n_via && n < kMaxEcmp; k++)
        if (auto ifid = connected_if(vrf, via[k])) members[n++] = adjacency(*ifid, via[k]);
    if (n == 0) {
        // Not resolvable through a connected subnet (no recursive resolution yet).
        counters_.bgp_unresolved++;
        if (had) del_route(vrf, prefix);
        return;
    }
    NhId nh = n == 1 ? members[0] : group({members.begin(), members.begin() + n});
    set_route(vrf, prefix, RouteType::Bgp, nh);
}

void Programmer::del_bgp(uint32_t vrf, const Prefix &prefix) {
    Scope batch(*this);
    counters_.bgp_del++;
    const RouteSlot *r = route(vrf, prefix);
    if (r && r->type == RouteType::Bgp) del_route(vrf, prefix);
}

void Programmer::bgp_resync_begin() {
    counters_.resyncs++;
    resync_gen_++;
}

void Programmer::bgp_resync_end() {
    Scope batch(*this);
    std::vector<RouteKey> stale;
    routes_.for_each([&](const RouteSlot &r) {
        if (r.present && r.type == RouteType::Bgp && r.resync_gen != resync_gen_)
            stale.push_back(r.key);
    });
    for (auto &k : stale) del_route(k.vrf, k.prefix);
    counters_.resync_removed += stale.size();
}

} // namespace vleaf::fib
