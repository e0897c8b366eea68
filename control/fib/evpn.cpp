// The table writer's EVPN side: the Programmer's IP-VRF routes from EVPN and EvpnWriter,
// which applies EvpnMsgs and reports local MACs back toward the speaker.
#include "control/fib/evpn.hpp"
#include "control/fib/ring.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace vleaf::fib {

std::string Programmer::set_evpn_route(uint32_t vrf, const Prefix &prefix,
                                       std::span<const TunnelHop> hops) {
    Scope batch(*this);
    auto it = routes_.find({vrf, prefix});
    if (it != routes_.end() && it->second.type != RouteType::Evpn) {
        counters_.evpn_shadowed++;
        return {};
    }
    std::vector<NhId> members;
    std::string err;
    for (auto &h : hops) {
        if (members.size() == kMaxEcmp) break;
        auto v = vtep_ref(h.vtep, &err);
        if (!v) continue;
        members.push_back(tunnel(*v, h.vni, h.router_mac));
        vtep_unref(*v); // the tunnel next hop holds the VTEP
    }
    if (members.empty()) {
        if (it != routes_.end()) del_route(vrf, prefix);
        return err.empty() ? "no tunnel next hop" : err;
    }
    set_route(vrf, prefix, RouteType::Evpn, group(members));
    return {};
}

void Programmer::del_evpn_route(uint32_t vrf, const Prefix &prefix) {
    Scope batch(*this);
    auto it = routes_.find({vrf, prefix});
    if (it != routes_.end() && it->second.type == RouteType::Evpn) del_route(vrf, prefix);
}

size_t EvpnWriter::drain(EvpnRing &ring, size_t max) {
    constexpr size_t kChunk = 16;
    EvpnMsg buf[kChunk];
    size_t done = 0;
    while (done < max) {
        size_t n = ring.pop(buf, std::min(kChunk, max - done));
        if (n == 0) break;
        for (size_t k = 0; k < n; k++) apply(buf[k]);
        done += n;
    }
    return done;
}

void EvpnWriter::fail(const std::string &what, const std::string &err) {
    c_.errors++;
    spdlog::warn("evpn: {}: {}", what, err);
}

void EvpnWriter::apply(const EvpnMsg &m) {
    c_.applied++;
    if (m.op == EvpnMsg::Op::RouteSet) {
        auto err = prog_.set_evpn_route(m.id, m.prefix, {m.hops.data(), m.n});
        if (!err.empty()) fail("VRF " + std::to_string(m.id) + " " + m.prefix.str(), err);
        return;
    }
    if (m.op == EvpnMsg::Op::RouteDel) {
        prog_.del_evpn_route(m.id, m.prefix);
        return;
    }
    auto bd_it = bds_.find(m.id);
    if (bd_it == bds_.end()) return fail("VNI " + std::to_string(m.id), "no bridge domain");
    uint16_t bd = bd_it->second;
    std::string what = "VNI " + std::to_string(m.id) + " ";
    switch (m.op) {
    case EvpnMsg::Op::FloodAdd:
        if (auto err = prog_.add_flood(bd, m.vtep); !err.empty()) fail(what + "flood", err);
        break;
    case EvpnMsg::Op::FloodDel:
        prog_.del_flood(bd, m.vtep);
        break;
    case EvpnMsg::Op::MacSet: {
        if (auto err = prog_.add_remote_mac(bd, m.mac, m.vtep); !err.empty())
            return fail(what + m.mac.str(), err);
        // It was ours and moved behind the remote VTEP: the dataplane entry is replaced.
        local_.erase({bd, m.mac});
        std::vector<IpAddr> now(m.ips.begin(), m.ips.begin() + m.n);
        auto &was = remote_[{bd, m.mac}];
        for (auto &ip : was)
            if (std::find(now.begin(), now.end(), ip) == now.end() && hooks_.binding)
                hooks_.binding(bd, ip, std::nullopt);
        for (auto &ip : now)
            if (hooks_.binding) hooks_.binding(bd, ip, m.mac);
        was = std::move(now);
        break;
    }
    case EvpnMsg::Op::MacDel: {
        auto it = remote_.find({bd, m.mac});
        if (it == remote_.end()) break;
        prog_.del_remote_mac(bd, m.mac);
        for (auto &ip : it->second)
            if (hooks_.binding) hooks_.binding(bd, ip, std::nullopt);
        remote_.erase(it);
        break;
    }
    default:
        break;
    }
    c_.remote_macs = remote_.size();
}

std::optional<uint32_t> EvpnWriter::vni_of(uint16_t bd) const {
    for (auto &[vni, b] : bds_)
        if (b == bd) return vni;
    return std::nullopt;
}

void EvpnWriter::tell(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip, bool present) {
    Event e;
    e.kind = Event::Kind::LocalMac;
    e.reachable = present;
    e.vni = vni;
    e.mac = mac;
    e.has_ip = ip.has_value();
    if (ip) e.ip = *ip;
    if (hooks_.event) hooks_.event(e);
}

void EvpnWriter::local_mac(uint16_t bd, const MacAddr &mac, bool present) {
    auto vni = vni_of(bd);
    if (!vni) return;
    auto it = local_.find({bd, mac});
    if (present) {
        if (it != local_.end()) return;
        local_.emplace(std::make_pair(bd, mac), std::set<IpAddr>{});
        tell(*vni, mac, std::nullopt, true);
        return;
    }
    if (it == local_.end()) return;
    for (auto &ip : it->second) tell(*vni, mac, ip, false);
    tell(*vni, mac, std::nullopt, false);
    local_.erase(it);
}

void EvpnWriter::local_ip(uint16_t bd, const MacAddr &mac, const IpAddr &ip) {
    auto vni = vni_of(bd);
    auto it = local_.find({bd, mac});
    if (!vni || it == local_.end() || !it->second.insert(ip).second) return;
    tell(*vni, mac, ip, true);
}

} // namespace vleaf::fib
