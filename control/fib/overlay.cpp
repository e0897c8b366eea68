// The Programmer's VXLAN half: remote VTEPs and their underlay next hops, tunnel next
// hops (remote VTEP, VNI, router MAC), VNI maps, bridge domains, flood lists and MACs.
#include "control/fib/programmer.hpp"

namespace vleaf::fib {

// The next hop of the best default-VRF route to `ip`: for a connected subnet (or a route
// out of an interface) the neighbor `ip` itself; nothing through local, blackhole or
// VXLAN routes.
std::optional<NhId> Programmer::underlay(const IpAddr &ip) {
    for (int len = ip.max_len(); len >= 0; len--) {
        const RouteSlot *r = route(0, Prefix{ip, uint8_t(len)}.masked());
        if (!r) continue;
        NhId nh = r->nh;
        if (nh < kFirstDynamicNh) return std::nullopt;
        const NhObj &o = nhs_.at(nh);
        if (o.type == NhObj::Type::Connected) return adjacency(o.ifid, ip);
        if (o.type == NhObj::Type::Tunnel) return std::nullopt;
        return nh;
    }
    return std::nullopt;
}

std::optional<uint16_t> Programmer::vtep_id(const IpAddr &remote) const {
    auto it = vtep_ids_.find(remote);
    if (it == vtep_ids_.end()) return std::nullopt;
    return it->second;
}

// A reference to the VTEP at `remote`, created if new.
std::optional<uint16_t> Programmer::vtep_ref(const IpAddr &remote, std::string *error) {
    if (auto it = vtep_ids_.find(remote); it != vtep_ids_.end()) {
        vteps_.at(it->second).refs++;
        return it->second;
    }
    if (free_vteps_.empty() && next_vtep_ == kMaxVtep) {
        *error = "out of VTEP ids";
        return std::nullopt;
    }
    auto nh = underlay(remote);
    if (!nh) {
        *error = "VTEP " + remote.str() + " is reached by no route in the default VRF";
        return std::nullopt;
    }
    uint16_t id = next_vtep_;
    if (free_vteps_.empty()) {
        next_vtep_++;
    } else {
        id = free_vteps_.back();
        free_vteps_.pop_back();
    }
    nhs_.at(*nh).refs++;
    vteps_[id] = Vtep{remote, *nh, 0, 1};
    vtep_ids_[remote] = id;
    emit(Update::vtep_set(id, remote, *nh));
    return id;
}

void Programmer::vtep_unref(uint16_t id) {
    Vtep &v = vteps_.at(id);
    if (--v.refs > 0) return;
    NhId underlay = v.underlay;
    vtep_dels_.push_back(Update::vtep_del(id));
    freed_vteps_.push_back(id);
    vtep_ids_.erase(v.addr);
    vteps_.erase(id);
    unref(underlay);
}

// VTEPs inside default-VRF prefixes whose routes changed take the next hop of their best
// route now (kNhNoRoute if none is left: encapsulation drops until one comes back).
void Programmer::follow_underlay() {
    if (underlay_dirty_.empty()) return;
    std::set<uint16_t> moved;
    for (const Prefix &p : underlay_dirty_)
        for (auto it = vtep_ids_.lower_bound(p.masked().addr);
             it != vtep_ids_.end() && p.contains(it->first); ++it)
            moved.insert(it->second);
    underlay_dirty_.clear();
    for (uint16_t id : moved) {
        Vtep &v = vteps_.at(id);
        NhId now = underlay(v.addr).value_or(kNhNoRoute);
        if (now == v.underlay) continue;
        if (now >= kFirstDynamicNh) nhs_.at(now).refs++;
        NhId before = v.underlay;
        v.underlay = now;
        emit(Update::vtep_set(id, v.addr, now));
        counters_.vtep_underlay_changes++;
        unref(before);
    }
}

NhId Programmer::tunnel(uint16_t vtep, uint32_t vni, const MacAddr &router_mac) {
    auto key = TunnelKey{vtep, vni, router_mac};
    if (auto it = tunnels_.find(key); it != tunnels_.end()) return it->second;
    NhId id = alloc();
    NhObj o;
    o.type = NhObj::Type::Tunnel;
    o.vtep = vtep;
    o.vni = vni;
    o.mac = router_mac;
    nhs_[id] = o;
    tunnels_[key] = id;
    vteps_.at(vtep).tunnels++;
    vteps_.at(vtep).refs++;
    publish(id);
    return id;
}

void Programmer::add_l3vni(uint32_t vni, uint32_t vrf, const MacAddr &router_mac) {
    Scope batch(*this);
    emit(Update::l3vni_set(vni, vrf, router_mac));
}

uint16_t Programmer::add_bridge_domain(uint32_t vni, uint32_t vrf,
                                       const std::optional<MacAddr> &gw) {
    Scope batch(*this);
    uint16_t bd = next_bd_++;
    emit(Update::bd_set(bd, vni, vrf, gw.value_or(MacAddr{})));
    emit(Update::l2vni_set(vni, bd));
    return bd;
}

void Programmer::add_access(uint16_t port, uint16_t vlan, uint16_t bd) {
    Scope batch(*this);
    emit(Update::access(true, port, vlan, bd));
}

std::string Programmer::add_flood(uint16_t bd, const IpAddr &remote) {
    Scope batch(*this);
    std::string err;
    auto v = vtep_ref(remote, &err);
    if (!v) return err;
    if (!floods_.insert({bd, *v}).second) {
        vtep_unref(*v); // already in the list
        return {};
    }
    emit(Update::flood(true, bd, *v));
    return {};
}

void Programmer::del_flood(uint16_t bd, const IpAddr &remote) {
    Scope batch(*this);
    auto v = vtep_id(remote);
    if (!v || !floods_.erase({bd, *v})) return;
    emit(Update::flood(false, bd, *v));
    vtep_unref(*v);
}

std::string Programmer::add_remote_mac(uint16_t bd, const MacAddr &mac, const IpAddr &remote) {
    Scope batch(*this);
    std::string err;
    auto v = vtep_ref(remote, &err);
    if (!v) return err;
    MacDest d;
    d.kind = MacDest::Kind::Remote;
    d.is_static = true;
    d.vtep = *v;
    emit(Update::mac_set(bd, mac, d));
    auto [it, fresh] = remote_macs_.try_emplace({bd, mac}, *v);
    if (!fresh) {
        uint16_t before = it->second; // moved, or set again: one reference per MAC
        it->second = *v;
        vtep_unref(before);
    }
    return {};
}

void Programmer::del_remote_mac(uint16_t bd, const MacAddr &mac) {
    Scope batch(*this);
    auto it = remote_macs_.find({bd, mac});
    if (it == remote_macs_.end()) return;
    uint16_t v = it->second;
    remote_macs_.erase(it);
    emit(Update::mac_del(bd, mac));
    vtep_unref(v);
}

std::string Programmer::add_tunnel_route(uint32_t vrf, const Prefix &prefix, const IpAddr &remote,
                                         uint32_t vni, const MacAddr &router_mac) {
    Scope batch(*this);
    std::string err;
    auto v = vtep_ref(remote, &err);
    if (!v) return err;
    set_route(vrf, prefix, RouteType::Vxlan, tunnel(*v, vni, router_mac));
    vtep_unref(*v); // the tunnel next hop holds the VTEP
    return {};
}

void Programmer::del_tunnel_route(uint32_t vrf, const Prefix &prefix) {
    Scope batch(*this);
    const RouteSlot *r = route(vrf, prefix);
    if (r && r->type == RouteType::Vxlan) del_route(vrf, prefix);
}

std::vector<std::pair<uint16_t, IpAddr>> Programmer::unresolved_vteps() const {
    std::vector<std::pair<uint16_t, IpAddr>> out;
    auto add = [&](NhId id) {
        const NhObj &o = nhs_.at(id);
        if (o.type == NhObj::Type::Adjacency && !o.mac) out.emplace_back(o.ifid, o.ip);
    };
    for (auto &[id, v] : vteps_) {
        if (v.underlay < kFirstDynamicNh) continue;
        const NhObj &o = nhs_.at(v.underlay);
        if (o.type == NhObj::Type::Group)
            for (NhId m : o.members) add(m);
        else
            add(v.underlay);
    }
    return out;
}

std::vector<Programmer::VtepView> Programmer::vteps() const {
    std::vector<VtepView> out;
    for (auto &[id, v] : vteps_)
        out.push_back(VtepView{id, v.addr, hops(v.underlay), v.tunnels, v.refs});
    return out;
}

} // namespace vleaf::fib
