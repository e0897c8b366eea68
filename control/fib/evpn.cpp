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
    const RouteSlot *r = route(vrf, prefix);
    if (r && r->type != RouteType::Evpn) {
        counters_.evpn_shadowed++;
        return {};
    }
    bool had = r != nullptr; // vtep_ref() may make routes: r is not kept
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
        if (had) del_route(vrf, prefix);
        return err.empty() ? "no tunnel next hop" : err;
    }
    set_route(vrf, prefix, RouteType::Evpn, group(members));
    return {};
}

void Programmer::del_evpn_route(uint32_t vrf, const Prefix &prefix) {
    Scope batch(*this);
    const RouteSlot *r = route(vrf, prefix);
    if (r && r->type == RouteType::Evpn) del_route(vrf, prefix);
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
    switch (m.op) {
    case EvpnMsg::Op::ResyncBegin:
        resyncing_ = true;
        renewed_macs_.clear();
        renewed_floods_.clear();
        renewed_routes_.clear();
        break;
    case EvpnMsg::Op::ResyncEnd:
        if (resyncing_) sweep();
        break;
    case EvpnMsg::Op::RouteSet:
        if (auto err = prog_.set_evpn_route(m.id, m.prefix, {m.hops.data(), m.n}); !err.empty()) {
            routes_.erase({m.id, m.prefix}); // none of its hops could be used: it is gone
            fail("VRF " + std::to_string(m.id) + " " + m.prefix.str(), err);
            break;
        }
        routes_.insert({m.id, m.prefix});
        if (resyncing_) renewed_routes_.insert({m.id, m.prefix});
        break;
    case EvpnMsg::Op::RouteDel:
        prog_.del_evpn_route(m.id, m.prefix);
        routes_.erase({m.id, m.prefix});
        break;
    default:
        apply_l2(m);
        break;
    }
    c_.remote_macs = remote_.size();
    c_.flood_vteps = floods_.size();
    c_.routes = routes_.size();
}

void EvpnWriter::apply_l2(const EvpnMsg &m) {
    auto bd_it = bds_.find(m.id);
    if (bd_it == bds_.end()) return fail("VNI " + std::to_string(m.id), "no bridge domain");
    uint16_t bd = bd_it->second;
    std::string what = "VNI " + std::to_string(m.id) + " ";
    switch (m.op) {
    case EvpnMsg::Op::FloodAdd:
        if (auto err = prog_.add_flood(bd, m.vtep); !err.empty()) return fail(what + "flood", err);
        floods_.insert({bd, m.vtep});
        if (resyncing_) renewed_floods_.insert({bd, m.vtep});
        break;
    case EvpnMsg::Op::FloodDel:
        prog_.del_flood(bd, m.vtep);
        floods_.erase({bd, m.vtep});
        break;
    case EvpnMsg::Op::MacSet: {
        if (auto err = prog_.add_remote_mac(bd, m.mac, m.vtep); !err.empty())
            return fail(what + m.mac.str(), err);
        if (resyncing_) renewed_macs_.insert({bd, m.mac});
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
    case EvpnMsg::Op::MacDel:
        if (auto it = remote_.find({bd, m.mac}); it != remote_.end()) remove_remote(it);
        break;
    default:
        break;
    }
}

EvpnWriter::RemoteMacs::iterator EvpnWriter::remove_remote(RemoteMacs::iterator it) {
    auto [bd, mac] = it->first;
    prog_.del_remote_mac(bd, mac);
    for (auto &ip : it->second)
        if (hooks_.binding) hooks_.binding(bd, ip, std::nullopt);
    return remote_.erase(it);
}

namespace {

template <class K, class V> const K &key_of(const std::pair<const K, V> &e) {
    return e.first;
}
template <class K> const K &key_of(const K &k) {
    return k;
}

// Removes the entries of `held` missing from `renewed`, each through `remove` (which
// returns the next iterator); returns how many.
template <class Held, class Renewed, class Remove>
uint64_t remove_unrenewed(Held &held, const Renewed &renewed, Remove remove) {
    uint64_t n = 0;
    for (auto it = held.begin(); it != held.end();) {
        if (renewed.count(key_of(*it))) {
            ++it;
            continue;
        }
        it = remove(it);
        n++;
    }
    return n;
}

} // namespace

void EvpnWriter::sweep() {
    uint64_t removed =
        remove_unrenewed(remote_, renewed_macs_, [this](auto it) { return remove_remote(it); });
    removed += remove_unrenewed(floods_, renewed_floods_, [this](auto it) {
        prog_.del_flood(it->first, it->second);
        return floods_.erase(it);
    });
    removed += remove_unrenewed(routes_, renewed_routes_, [this](auto it) {
        prog_.del_evpn_route(it->first, it->second);
        return routes_.erase(it);
    });
    if (removed) spdlog::info("evpn: resync removed {} entries EVPN no longer has", removed);
    c_.resync_removed += removed;
    c_.resyncs++;
    resyncing_ = false;
    renewed_macs_.clear();
    renewed_floods_.clear();
    renewed_routes_.clear();
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
