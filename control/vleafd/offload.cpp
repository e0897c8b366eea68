// rte_flow offload in vleafd: control/offload decides, dataplane/offload talks to the
// ports. The ACL registry's changes reach it from acl.cpp; VXLAN steering is set once
// from the configuration.
#include "dataplane/offload.hpp"
#include "control/vleafd/daemon.hpp"

#include <algorithm>

namespace vleaf {

using nlohmann::json;

void Daemon::setup_offload() {
    std::vector<offload::Port> ports;
    for (size_t k = 0; k < dp_->ports().size(); k++) {
        const config::Port &c = cfg_.ports[k];
        offload::Port p;
        p.id = dp_->ports()[k];
        p.name = c.name;
        p.enabled = c.offload;
        p.rx_queues = c.rx_queues;
        if (int ifid = dp_->interface_of_port(p.id); ifid >= 0)
            p.vrf = dp_->interfaces()[size_t(ifid)].vrf;
        for (const auto &bd : cfg_.bridge_domains)
            for (const auto &a : bd.access)
                if (a.port == c.name) {
                    p.bridges = true;
                    p.bridges_untagged = p.bridges_untagged || a.vlan == 0;
                }
        ports.push_back(p);
    }
    offload::Vtep vtep;
    if (cfg_.vxlan) vtep = {cfg_.vxlan->source4, cfg_.vxlan->source6, cfg_.vxlan->udp_port};
    offload_ = std::make_unique<offload::Offload>(dp::flow_port(), std::move(ports), vtep);
    if (!cfg_.vxlan) return;
    std::vector<uint32_t> vnis;
    for (const auto &bd : cfg_.bridge_domains) vnis.push_back(bd.vni);
    for (const auto &v : cfg_.vrfs)
        if (v.l3vni) vnis.push_back(v.l3vni);
    std::sort(vnis.begin(), vnis.end());
    offload_->set_vxlan(vnis, cfg_.vxlan->vni_queues);
}

void Daemon::register_offload() {
    api_->add("show offload", [this](const json &) { return offload_->show(); });
}

} // namespace vleaf
