// Stage 2: longest-prefix match for the whole burst at once, per family, in the VRF of
// the receiving port.
#pragma once

#include "dataplane/worker.hpp"

namespace vleaf::dp {

inline void route(Burst &b) {
    const VrfTables *t = b.vrf;
    if (b.n4) {
        uint32_t res[kMaxBurst];
        rte_lpm_lookup_bulk(t->v4, b.dst4, res, b.n4);
        uint32_t dflt = __atomic_load_n(&t->default_v4, __ATOMIC_ACQUIRE);
        for (unsigned k = 0; k < b.n4; k++)
            b.nh[b.idx4[k]] = (res[k] & RTE_LPM_LOOKUP_SUCCESS) ? (res[k] & 0x00ffffff) : dflt;
    }
    if (b.n6) {
        rte_fib6_lookup_bulk(t->v6, b.dst6, b.nh6, b.n6);
        for (unsigned k = 0; k < b.n6; k++) b.nh[b.idx6[k]] = static_cast<uint32_t>(b.nh6[k]);
    }
}

} // namespace vleaf::dp
