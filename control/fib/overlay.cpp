// The Programmer's VXLAN half: remote VTEPs and their underlay next hops, tunnel next
// hops (remote VTEP, VNI, router MAC), VNI maps, bridge domains, flood lists and MACs.
#include "control/fib/programmer.hpp"

namespace vleaf::fib {

std::optional<NhId> Programmer::underlay(const IpAddr &ip) {
    if (auto ifid = connected_if(0, ip)) return adjacency(*ifid, ip);
    const RouteEntry *best = nullptr;
    int best_len = -1;
    for (auto &[key, r] : routes_)
        if (key.vrf == 0 && key.prefix.contains(ip) && key.prefix.len > best_len &&
            r.type == RouteType::Static && r.nh >= kFirstDynamicNh) {
            best = &r;
            best_len = key.prefix.len;
        }
    if (!best) return std::nullopt;
    return best->nh;
}

std::optional<uint16_t> Programmer::vtep(const IpAddr &remote, std::string *error) {
    Scope batch(*this);
    if (auto it = vtep_ids_.find(remote); it != vtep_ids_.end()) return it->second;
    if (vteps_.size() >= kMaxVtep) {
        if (error) *error = "out of VTEP ids";
        return std::nullopt;
    }
    auto nh = underlay(remote);
    if (!nh) {
        if (error)
            *error =
                "VTEP " + remote.str() +
                " is neither on a connected subnet nor behind a static route in the default VRF";
        return std::nullopt;
    }
    auto id = static_cast<uint16_t>(vteps_.size());
    nhs_.at(*nh).refs++; // VTEPs stay for the daemon's lifetime
    vteps_[id] = Vtep{remote, *nh, 0};
    vtep_ids_[remote] = id;
    emit(Update::vtep_set(id, remote, *nh));
    return id;
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
    auto v = vtep(remote, &err);
    if (!v) return err;
    emit(Update::flood(true, bd, *v));
    return {};
}

std::string Programmer::add_remote_mac(uint16_t bd, const MacAddr &mac, const IpAddr &remote) {
    Scope batch(*this);
    std::string err;
    auto v = vtep(remote, &err);
    if (!v) return err;
    MacDest d;
    d.kind = MacDest::Kind::Remote;
    d.is_static = true;
    d.vtep = *v;
    emit(Update::mac_set(bd, mac, d));
    return {};
}

std::string Programmer::add_tunnel_route(uint32_t vrf, const Prefix &prefix, const IpAddr &remote,
                                         uint32_t vni, const MacAddr &router_mac) {
    Scope batch(*this);
    std::string err;
    auto v = vtep(remote, &err);
    if (!v) return err;
    set_route(vrf, prefix, RouteType::Vxlan, tunnel(*v, vni, router_mac));
    return {};
}

std::vector<std::pair<uint16_t, IpAddr>> Programmer::unresolved_vteps() const {
    std::vector<std::pair<uint16_t, IpAddr>> out;
    auto add = [&](NhId id) {
        const NhObj &o = nhs_.at(id);
        if (o.type == NhObj::Type::Adjacency && !o.mac) out.emplace_back(o.ifid, o.ip);
    };
    for (auto &[id, v] : vteps_) {
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
    for (auto &[id, v] : vteps_) out.push_back(VtepView{id, v.addr, hops(v.underlay), v.tunnels});
    return out;
}

} // namespace vleaf::fib
