// vleafd's EVPN leaf: the `bgp.evpn` section and the VXLAN dataplane configuration describe
// the same VNIs and VRFs, so each is written once. What `bgp.evpn` leaves out is taken
// from the dataplane sections (every bridge domain is an L2VNI, every VRF with an l3vni an
// IP-VRF, the VTEP is vxlan.source); what it gives must agree with them.
#pragma once

#include "control/config/config.hpp"

namespace vleaf::config {

// Completes and checks cfg.bgp->evpn against cfg's vxlan, vrfs and bridge_domains.
// Throws ConfigError naming the field that disagrees. Nothing to do without both a `bgp`
// and a `vxlan` section.
void link_evpn(Config &cfg);

} // namespace vleaf::config
