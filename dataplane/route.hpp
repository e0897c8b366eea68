// Stage: longest-prefix match for the whole burst at once, per family, in each packet's
// VRF. A burst usually holds one VRF (one bulk lookup); decapsulated or bridged packets
// may add others, looked up in bulk per VRF.
#pragma once

#include "dataplane/worker.hpp"

namespace vleaf::dp {

template <class Dst, class Lookup>
inline void route_family(Burst &b, const Fib &fib, unsigned n, const uint8_t *idx,
                         const uint8_t *vrf, Dst *dst, Lookup lookup) {
    if (n == 0) return;
    uint8_t first = vrf[0];
    bool one = true;
    for (unsigned k = 1; k < n; k++) one &= vrf[k] == first;
    if (one) {
        const VrfTables *t = fib.vrf(first);
        if (!t || !t->v4) return; // no such VRF: every packet stays kNhNoRoute
        lookup(t, dst, b.nh64, n);
        for (unsigned k = 0; k < n; k++) b.nh[idx[k]] = static_cast<uint32_t>(b.nh64[k]);
        return;
    }
    // Several VRFs: gather each VRF's destinations, look them up together, scatter back.
    uint64_t done = 0;
    Dst sub[kMaxBurst];
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
        if (!t || !t->v4) continue;
        lookup(t, sub, b.nh64, m);
        for (unsigned j = 0; j < m; j++) b.nh[idx[at[j]]] = static_cast<uint32_t>(b.nh64[j]);
    }
}

inline void route(Burst &b, const Worker &w) {
    route_family(b, *w.fib, b.n4, b.idx4, b.vrf4, b.dst4,
                 [](const VrfTables *t, uint32_t *d, uint64_t *nh, unsigned n) {
                     rte_fib_lookup_bulk(t->v4, d, nh, n);
                 });
    using Dst6 = uint8_t[16];
    route_family(b, *w.fib, b.n6, b.idx6, b.vrf6, b.dst6,
                 [](const VrfTables *t, Dst6 *d, uint64_t *nh, unsigned n) {
                     rte_fib6_lookup_bulk(t->v6, d, nh, n);
                 });
}

} // namespace vleaf::dp
