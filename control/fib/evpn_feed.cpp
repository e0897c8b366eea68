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

EvpnFeed::EvpnFeed(bgp::Speaker &speaker, EvpnRing &ring, std::map<std::string, uint32_t> vrf_ids,
                   std::function<void()> wake)
    : speaker_(speaker), ring_(ring), vrf_ids_(std::move(vrf_ids)), wake_(std::move(wake)) {
    speaker_.on_evpn_l2_change([this](const bgp::EvpnL2Change &c) { send(evpn_l2_msg(c)); });
    speaker_.rib().on_change([this](const bgp::RibChange &ch) {
        if (ch.vrf == 0 || !ch.prefix) return;
        auto it = vrf_ids_.find(std::string(ch.vrf_name));
        if (it == vrf_ids_.end()) return; // an IP-VRF the dataplane does not have
        send(evpn_route_msg(ch, it->second));
    });
}

void EvpnFeed::send(const EvpnMsg &m) {
    if (backlog_.empty() && ring_.push(m)) {
        c_.pushed++;
        woken_ = true;
        return;
    }
    backlog_.push_back(m);
    c_.backlogged++;
}

void EvpnFeed::flush() {
    while (!backlog_.empty() && ring_.push(backlog_.front())) {
        backlog_.pop_front();
        c_.pushed++;
        woken_ = true;
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
