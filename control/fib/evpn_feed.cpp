// The BGP thread's EVPN side: the speaker's EVPN notifications become EvpnMsgs on the
// EVPN ring, and LocalMac events become type-2 originations and withdrawals.
#include "control/bgp/speaker.hpp"
#include "control/fib/evpn.hpp"
#include "control/fib/ring.hpp"

#include <spdlog/spdlog.h>

namespace vleaf::fib {

EvpnMsg evpn_l2_msg(const bgp::EvpnL2Change &c) {
    EvpnMsg m;
    m.id = c.vni;
    m.mac = c.mac;
    m.vtep = c.vtep;
    switch (c.kind) {
    case bgp::EvpnL2Change::MacRemote:
        m.op = EvpnMsg::Op::MacSet;
        for (auto &ip : c.ips)
            if (m.n < kMaxMacIps) m.ips[m.n++] = ip;
        break;
    case bgp::EvpnL2Change::MacGone:
        m.op = EvpnMsg::Op::MacDel;
        break;
    case bgp::EvpnL2Change::FloodAdd:
        m.op = EvpnMsg::Op::FloodAdd;
        break;
    case bgp::EvpnL2Change::FloodRemove:
        m.op = EvpnMsg::Op::FloodDel;
        break;
    }
    return m;
}

EvpnMsg evpn_route_msg(const bgp::RibChange &ch, uint32_t vrf) {
    EvpnMsg m;
    m.id = vrf;
    m.prefix = *ch.prefix;
    for (size_t k = 0; k < ch.now.size() && m.n < kMaxEcmp; k++) {
        const bgp::Path &p = ch.now[k];
        if (p.peer == bgp::kLocalPeer) continue;
        std::optional<MacAddr> rmac;
        for (auto &x : p.attrs->attrs.ext_communities)
            if (auto r = x.as_router_mac()) rmac = r;
        if (!rmac || k >= ch.now_vni.size()) continue;
        m.hops[m.n++] = Programmer::TunnelHop{p.attrs->next_hop.addr, ch.now_vni[k], *rmac};
    }
    m.op = m.n ? EvpnMsg::Op::RouteSet : EvpnMsg::Op::RouteDel;
    return m;
}

EvpnMsg evpn_route_msg(const bgp::IpVrf &v, const Prefix &prefix, uint32_t vrf) {
    std::vector<bgp::Path> now;
    std::vector<uint32_t> vnis;
    if (auto it = v.routes.find(prefix); it != v.routes.end())
        for (size_t k = 0; k < it->second.n_best; k++) {
            now.push_back(it->second.cands[k].path);
            vnis.push_back(it->second.cands[k].vni);
        }
    bgp::RibChange ch{prefix.addr.is_v4() ? bgp::RouteFamily::Ipv4Unicast
                                          : bgp::RouteFamily::Ipv6Unicast,
                      v.id,
                      &prefix,
                      nullptr,
                      {},
                      now,
                      v.cfg.name,
                      vnis};
    return evpn_route_msg(ch, vrf);
}

EvpnFeed::EvpnFeed(bgp::Speaker &speaker, EvpnRing &ring, std::map<std::string, uint32_t> vrf_ids,
                   size_t backlog_limit, std::function<void()> wake)
    : speaker_(speaker), ring_(ring), vrf_ids_(std::move(vrf_ids)), limit_(backlog_limit),
      wake_(std::move(wake)) {
    for (auto &[name, id] : vrf_ids_) vrf_names_[id] = name;
    speaker_.on_evpn_l2_change([this](const bgp::EvpnL2Change &c) {
        bool mac = c.kind == bgp::EvpnL2Change::MacRemote || c.kind == bgp::EvpnL2Change::MacGone;
        Key k;
        k.kind = mac ? Key::Kind::Mac : Key::Kind::Flood;
        k.id = c.vni;
        if (mac)
            k.mac = c.mac;
        else
            k.vtep = c.vtep;
        send(k, evpn_l2_msg(c));
    });
    speaker_.rib().on_change([this](const bgp::RibChange &ch) {
        if (ch.vrf == 0 || !ch.prefix) return;
        auto it = vrf_ids_.find(std::string(ch.vrf_name));
        if (it == vrf_ids_.end()) return; // an IP-VRF the dataplane does not have
        Key k;
        k.kind = Key::Kind::Route;
        k.id = it->second;
        k.prefix = *ch.prefix;
        send(k, evpn_route_msg(ch, it->second));
    });
}

void EvpnFeed::send(const Key &k, const EvpnMsg &m) {
    if (backlog_.empty() && resync_ == Resync::Idle && push(m)) return;
    remember(k);
}

bool EvpnFeed::push(const EvpnMsg &m) {
    if (!ring_.push(m)) {
        c_.ring_full++;
        return false;
    }
    c_.pushed++;
    woken_ = true;
    return true;
}

void EvpnFeed::remember(const Key &k) {
    if (!backlog_.insert(k).second) return;
    order_.push_back(k);
    c_.backlogged++;
    c_.backlog_max = std::max<uint64_t>(c_.backlog_max, backlog_.size());
    // While resyncing the backlog is the whole state: no limit then.
    if (resync_ == Resync::Idle && backlog_.size() > limit_) request_resync();
}

void EvpnFeed::request_resync() {
    backlog_.clear();
    order_ = {};
    resync_ = Resync::Begin;
    c_.resyncs++;
}

void EvpnFeed::remember_everything() {
    const bgp::EvpnTables &t = speaker_.evpn();
    for (auto &[vni, m] : t.mac_vrfs()) {
        Key k;
        k.id = vni;
        for (auto &[mac, e] : m.macs) {
            if (e.owner != bgp::MacEntry::Owner::Remote) continue;
            k.mac = mac;
            remember(k);
        }
        k.kind = Key::Kind::Flood;
        k.mac = {};
        for (auto &[route, vtep] : m.imet) {
            k.vtep = vtep;
            remember(k);
        }
    }
    for (auto &[name, v] : t.ip_vrfs()) {
        auto it = vrf_ids_.find(name);
        if (it == vrf_ids_.end()) continue;
        Key k;
        k.kind = Key::Kind::Route;
        k.id = it->second;
        for (auto &[prefix, e] : v.routes) {
            k.prefix = prefix;
            remember(k);
        }
    }
}

EvpnMsg EvpnFeed::current(const Key &k) const {
    const bgp::EvpnTables &t = speaker_.evpn();
    EvpnMsg m;
    m.id = k.id;
    switch (k.kind) {
    case Key::Kind::Mac: {
        m.op = EvpnMsg::Op::MacDel;
        m.mac = k.mac;
        auto vrf = t.mac_vrfs().find(k.id);
        if (vrf == t.mac_vrfs().end()) return m;
        auto e = vrf->second.macs.find(k.mac);
        if (e == vrf->second.macs.end() || e->second.owner != bgp::MacEntry::Owner::Remote)
            return m;
        return evpn_l2_msg(bgp::remote_mac_change(vrf->second, k.mac, e->second));
    }
    case Key::Kind::Flood: {
        m.op = EvpnMsg::Op::FloodDel;
        m.vtep = k.vtep;
        auto vrf = t.mac_vrfs().find(k.id);
        if (vrf == t.mac_vrfs().end()) return m;
        for (auto &[route, vtep] : vrf->second.imet)
            if (vtep == k.vtep) m.op = EvpnMsg::Op::FloodAdd;
        return m;
    }
    case Key::Kind::Route:
        break;
    }
    auto name = vrf_names_.find(k.id);
    auto v = name == vrf_names_.end() ? t.ip_vrfs().end() : t.ip_vrfs().find(name->second);
    if (v != t.ip_vrfs().end()) return evpn_route_msg(v->second, k.prefix, k.id);
    m.op = EvpnMsg::Op::RouteDel;
    m.prefix = k.prefix;
    return m;
}

void EvpnFeed::flush() {
    if (resync_ == Resync::Begin) {
        EvpnMsg begin;
        begin.op = EvpnMsg::Op::ResyncBegin;
        if (push(begin)) {
            resync_ = Resync::Streaming;
            remember_everything();
        }
    }
    if (resync_ != Resync::Begin) {
        while (!order_.empty() && push(current(order_.front()))) {
            backlog_.erase(order_.front());
            order_.pop_front();
        }
        EvpnMsg end;
        end.op = EvpnMsg::Op::ResyncEnd;
        if (order_.empty() && resync_ == Resync::Streaming && push(end)) resync_ = Resync::Idle;
    }
    if (woken_ && wake_) wake_();
    woken_ = false;
}

void EvpnFeed::local(const Event &e) {
    std::optional<IpAddr> ip;
    if (e.has_ip) ip = e.ip;
    if (!e.reachable) {
        if (speaker_.withdraw_mac_ip(e.vni, e.mac, ip)) c_.local_withdrawn++;
        return;
    }
    auto r = speaker_.originate_mac_ip(e.vni, e.mac, ip);
    if (r == bgp::MacResult::Advertised) {
        c_.local_originated++;
    } else {
        c_.local_refused++;
        spdlog::info("evpn: VNI {} MAC {} IP {}: {}", e.vni, e.mac.str(),
                     ip ? ip->str() : std::string("-"), bgp::mac_result_name(r));
    }
}

} // namespace vleaf::fib
