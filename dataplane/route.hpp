// Stage 2: longest-prefix match for the whole burst at once, per family, in the VRF of
// the receiving port.
#pragma once

#include "dataplane/worker.hpp"

namespace vleaf::dp {

inline void route(Burst &b) {
    const VrfTables *t = b.vrf;
    if (b.n4) rte_fib_lookup_bulk(t->v4, b.dst4, b.nh4, b.n4);
    if (b.n6) rte_fib6_lookup_bulk(t->v6, b.dst6, b.nh6, b.n6);
}

} // namespace vleaf::dp
