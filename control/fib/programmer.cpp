#include "control/fib/programmer.hpp"

#include <algorithm>

namespace vleaf::fib {

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
    sink_(Update::nexthop_set(id, n));
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
    }
    std::vector<NhId> members = o.members;
    nhs_.erase(id);
    sink_(Update::nexthop_del(id));
    free_.push_back(id);
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

void Programmer::set_route(uint32_t vrf, const Prefix &p, const std::string &type, NhId nh) {
    if (nh >= kFirstDynamicNh) nhs_.at(nh).refs++;
    auto key = RouteKey{vrf, p};
    auto old = routes_.find(key);
    NhId previous = old == routes_.end() ? kNhNoRoute : old->second.nh;
    routes_[key] = {type, nh};
    sink_(Update::route_add(vrf, p, nh));
    if (old != routes_.end()) unref(previous);
}

void Programmer::del_route(uint32_t vrf, const Prefix &p) {
    auto it = routes_.find({vrf, p});
    if (it == routes_.end()) return;
    NhId nh = it->second.nh;
    routes_.erase(it);
    sink_(Update::route_del(vrf, p));
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
    NhId conn = alloc();
    ifs_[ifid] = Iface{name, port, vrf, addresses, conn, bd};
    NhObj o;
    o.type = NhObj::Type::Connected;
    o.ifid = ifid;
    nhs_[conn] = o;
    publish(conn);
    for (const Prefix &a : addresses) {
        set_route(vrf, a.masked(), "connected", conn);
        set_route(vrf, Prefix{a.addr, static_cast<uint8_t>(a.addr.max_len())}, "local", kNhLocal);
        if (a.addr.is_v4() && a.len <= 30) {
            // The subnet broadcast address belongs to the host, not to a neighbor.
            uint32_t bcast = a.addr.v4_host() | (0xffffffffu >> a.len);
            set_route(vrf, Prefix{IpAddr::v4(bcast), 32}, "local", kNhLocal);
        }
    }
}

void Programmer::add_local(uint32_t vrf, const IpAddr &addr) {
    set_route(vrf, Prefix{addr, static_cast<uint8_t>(addr.max_len())}, "local", kNhLocal);
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
    if (blackhole) {
        set_route(vrf, prefix, "blackhole", kNhBlackhole);
        return {};
    }
    if (dev) {
        auto it = ifs_.find(*dev);
        if (it == ifs_.end()) return "no interface " + std::to_string(*dev);
        set_route(vrf, prefix, "static", it->second.connected_nh);
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
    set_route(vrf, prefix, "static", group(members));
    return {};
}

void Programmer::neighbor(uint16_t ifid, const IpAddr &ip, const std::optional<MacAddr> &mac) {
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
            set_route(itf->second.vrf, host, "neighbor", id);
        return;
    }
    if (it == adj_.end()) return;
    NhId id = it->second;
    nhs_.at(id).mac.reset();
    publish(id);
    auto r = routes_.find({itf->second.vrf, host});
    if (r != routes_.end() && r->second.type == "neighbor") del_route(itf->second.vrf, host);
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
    std::vector<RouteView> out;
    for (auto &[key, r] : routes_) {
        out.push_back(RouteView{key.first, key.second, r.type, hops(r.nh)});
    }
    return out;
}

} // namespace vleaf::fib
