#include "control/config/evpn.hpp"

#include <string>

namespace vleaf::config {

namespace {
std::string at(const char *list, size_t i) {
    return std::string(list) + "[" + std::to_string(i) + "]";
}
} // namespace

void link_evpn(Config &cfg) {
    if (!cfg.bgp || !cfg.vxlan) return;
    bgp::EvpnConfig &e = cfg.bgp->evpn;
    auto fail = [&](const std::string &path, const std::string &reason) {
        throw ConfigError(cfg.source + ": " + path + ": " + reason);
    };

    const Vxlan &vx = *cfg.vxlan;
    if (!e.vtep) {
        e.vtep = vx.source4 ? vx.source4 : vx.source6;
        if (!e.vtep) fail("vxlan.source", "required with bgp (the VTEP announced by EVPN)");
    } else if (*e.vtep != vx.source4 && *e.vtep != vx.source6) {
        fail("bgp.evpn.vtep", e.vtep->str() + " is not vxlan.source (packets to it would not "
                                              "be decapsulated)");
    }

    for (size_t i = 0; i < e.vrfs.size(); i++) {
        const bgp::EvpnVrf &v = e.vrfs[i];
        std::string path = "bgp.evpn." + at("vrfs", i);
        const Vrf *dp = cfg.vrf(v.name);
        if (!dp) fail(path + ".name", "'" + v.name + "' is not one of vrfs");
        if (dp->l3vni != v.l3vni)
            fail(path + ".l3vni", std::to_string(v.l3vni) + " differs from the l3vni of VRF '" +
                                      v.name + "' (" + std::to_string(dp->l3vni) + ")");
        if (dp->router_mac != v.router_mac)
            fail(path + ".router_mac",
                 v.router_mac.str() + " differs from the router_mac of VRF '" + v.name + "'");
    }
    for (const Vrf &v : cfg.vrfs)
        if (v.l3vni && !e.vrf(v.name)) {
            bgp::EvpnVrf x;
            x.name = v.name;
            x.l3vni = v.l3vni;
            x.router_mac = *v.router_mac;
            e.vrfs.push_back(x);
        }
    for (size_t i = 0; i < e.vrfs.size(); i++)
        if (!e.vrfs[i].rd && e.vrfs[i].l3vni > 0xffff)
            fail("bgp.evpn." + at("vrfs", i) + ".rd",
                 "L3VNI above 65535: give the RD explicitly under bgp.evpn.vrfs");

    // The IP-VRF of a bridge domain, when its VRF has an L3VNI (symmetric IRB).
    auto irb_vrf = [&](const BridgeDomain &b) {
        const Vrf *v = cfg.vrf(b.vrf);
        return v && v->l3vni ? v->name : std::string();
    };
    auto bd_of = [&](uint32_t vni) -> const BridgeDomain * {
        for (auto &b : cfg.bridge_domains)
            if (b.vni == vni) return &b;
        return nullptr;
    };
    for (size_t i = 0; i < e.vnis.size(); i++) {
        bgp::L2Vni &v = e.vnis[i];
        std::string path = "bgp.evpn." + at("vnis", i);
        const BridgeDomain *b = bd_of(v.vni);
        if (!b) fail(path + ".vni", "no bridge domain has VNI " + std::to_string(v.vni));
        if (v.vrf.empty())
            v.vrf = irb_vrf(*b);
        else if (v.vrf != irb_vrf(*b))
            fail(path + ".vrf", "'" + v.vrf + "' is not the VRF of the bridge domain with VNI " +
                                    std::to_string(v.vni) + " ('" + b->vrf + "')");
    }
    for (size_t k = 0; k < cfg.bridge_domains.size(); k++) {
        const BridgeDomain &b = cfg.bridge_domains[k];
        if (e.vni(b.vni)) continue;
        if (b.vni > 0xffff)
            fail(at("bridge_domains", k) + ".vni",
                 "VNI above 65535: give its RD explicitly under bgp.evpn.vnis");
        bgp::L2Vni x;
        x.vni = b.vni;
        x.vrf = irb_vrf(b);
        e.vnis.push_back(x);
    }
}

} // namespace vleaf::config
