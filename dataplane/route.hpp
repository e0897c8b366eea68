// Stage 2: longest-prefix match for the whole burst at once, per family, in the VRF of
// the receiving port.
#pragma once

#include "dataplane/worker.hpp"

namespace vleaf::dp {

inline void route(Burst &b) {
    const VrfTables *t = b.vrf;
    if (b.n4) {
        rte_fib_lookup_bulk(t->v4, b.dst4, b.nh64, b.n4);
        for (unsigned k = 0; k < b.n4; k++) b.nh[b.idx4[k]] = static_cast<uint32_t>(b.nh64[k]);
    }
    if (b.n6) {
        rte_fib6_lookup_bulk(t->v6, b.dst6, b.nh64, b.n6);
        for (unsigned k = 0; k < b.n6; k++) b.nh[b.idx6[k]] = static_cast<uint32_t>(b.nh64[k]);
    }
}

} // namespace vleaf::dp
