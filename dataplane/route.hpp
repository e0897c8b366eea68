// Stage: longest-prefix match for the whole burst at once, per family, in each packet's
// VRF. A burst usually holds one VRF (one bulk lookup); decapsulated or bridged packets
// may add others, looked up in bulk per VRF.
#pragma once

#include "dataplane/worker.hpp"

#include <algorithm>

namespace vleaf::dp {

// Next-hop ids land in `nh` in list order, where forward reads them.
template <class Dst, class Lookup>
inline void route_family(const Fib &fib, unsigned n, const uint8_t *vrf, Dst *dst, uint64_t *nh,
                         Lookup lookup) {
    if (n == 0) return;
    uint8_t first = vrf[0];
    bool one = true;
    for (unsigned k = 1; k < n; k++) one &= vrf[k] == first;
    if (one) {
        const VrfTables *t = fib.vrf(first);
        if (t && t->v4)
            lookup(t, dst, nh, n);
        else
            std::fill_n(nh, n, uint64_t(kNhNoRoute)); // no such VRF
        return;
    }
    // Several VRFs: gather each VRF's destinations, look them up together, scatter back.
    uint64_t done = 0;
    Dst sub[kMaxBurst];
    uint64_t sub_nh[kMaxBurst];
    uint8_t at[kMaxBurst];
    for (unsigned k = 0; k < n; k++) {
        if (done >> k & 1) continue;
        uint8_t v = vrf[k];
        unsigned m = 0;
        for (unsigned j = k; j < n; j++)
            if (vrf[j] == v) {
                std::memcpy(&sub[m], &dst[j], sizeof(Dst));
                at[m++] = static_cast<uint8_t>(j);
                done |= uint64_t(1) << j;
            }
        const VrfTables *t = fib.vrf(v);
        if (t && t->v4)
            lookup(t, sub, sub_nh, m);
        else
            std::fill_n(sub_nh, m, uint64_t(kNhNoRoute));
        for (unsigned j = 0; j < m; j++) nh[at[j]] = sub_nh[j];
    }
}

inline void route(Burst &b, const Worker &w) {
    route_family(*w.fib, b.n4, b.vrf4, b.dst4, b.nh4,
                 [](const VrfTables *t, uint32_t *d, uint64_t *nh, unsigned n) {
                     t->v4->lookup_bulk(d, nh, n);
                 });
    using Dst6 = uint8_t[16];
    route_family(*w.fib, b.n6, b.vrf6, b.dst6, b.nh6,
                 [](const VrfTables *t, Dst6 *d, uint64_t *nh, unsigned n) {
                     rte_fib6_lookup_bulk(t->fib6(), d, nh, n);
                 });
}

} // namespace vleaf::dp
