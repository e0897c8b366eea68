// vleafd as an EVPN leaf: the embedded speaker's EVPN state feeds the overlay tables
// (fib::EvpnWriter on this, the table writer's, thread) and the MACs and IPs the
// dataplane learns on access ports go back to it as type-2 routes.
#include "control/vleafd/daemon.hpp"

namespace vleaf {

std::map<std::string, uint32_t> Daemon::evpn_vrf_ids() const {
    std::map<std::string, uint32_t> out;
    for (auto &v : cfg_.vrfs)
        if (v.l3vni) out[v.name] = v.id;
    return out;
}

void Daemon::setup_evpn() {
    if (!bgp_ || !cfg_.vxlan) return;
    fib::EvpnWriter::Hooks h;
    h.binding = [this](uint16_t bd, const IpAddr &ip, std::optional<MacAddr> mac) {
        if (mac)
            bindings_[{bd, ip}] = *mac;
        else
            bindings_.erase({bd, ip});
    };
    h.event = [this](const fib::Event &e) { return bgp_->send_event(e); };
    evpn_ = std::make_unique<fib::EvpnWriter>(*fib_, std::move(h));
    // Every bridge domain is an L2VNI of bgp.evpn (config::link_evpn).
    for (auto &b : bds_) evpn_->add_l2vni(b.cfg->vni, b.id);
}

// One batch per loop turn (the loop comes back within a millisecond), like the routes.
void Daemon::drain_evpn() {
    if (!evpn_) return;
    fib::Programmer::Scope batch(*fib_);
    evpn_->drain(bgp_->evpn_ring(), 1024);
}

void Daemon::evpn_local_mac(uint16_t bd, const MacAddr &mac, bool present) {
    if (evpn_) evpn_->local_mac(bd, mac, present);
}

void Daemon::evpn_local_ip(uint16_t bd, const MacAddr &mac, const IpAddr &ip) {
    if (evpn_) evpn_->local_ip(bd, mac, ip);
}

} // namespace vleaf
