// The whole packet path of a worker, in order. Each stage walks the burst once; a burst of
// plain routed IPv4 packets takes the same path in two loops (plain4.hpp).
#pragma once

#include "dataplane/acl.hpp"
#include "dataplane/bridge.hpp"
#include "dataplane/dispatch.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/lb.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/plain4.hpp"
#include "dataplane/route.hpp"
#include "dataplane/vxlan.hpp"

#include <rte_cycles.h>

namespace vleaf::dp {

// The stages after forward.
template <class Each> inline void stages_out(Burst &b, Worker &w, Each &&each) {
    each(StageAclOut, [&] { acl_out(b, w); });
    each(StageBridgeOut, [&] { bridge_out(b, w); });
    each(StageEncap, [&] { vxlan_encap(b, w); });
    each(StageDispatch, [&] { dispatch(b, w); });
}

// Runs the stages through `each(stage, call)`, which may time them (benchmarks,
// -Dstage_cycles=true); the plain pipeline just calls them.
template <class Each> inline void stages(Burst &b, Worker &w, Each &&each) {
    each(StageParse, [&] { parse(b, w); });
    each(StageDecap, [&] { vxlan_decap(b, w); });
    each(StageBridgeIn, [&] { bridge_in(b, w); });
    each(StageAclIn, [&] { acl_in(b, w); });
    each(StageLb, [&] { lb(b, w); });
    each(StageRoute, [&] { route(b, w); });
    each(StageForward, [&] { forward(b, w); });
    stages_out(b, w, each);
}

// With -Dstage_cycles=true every burst goes through the stages, so that each is timed.
inline void pipeline(Burst &b, Worker &w) {
    if constexpr (kStageCycles) {
        stages(b, w, [&](Stage s, auto &&call) {
            uint64_t t0 = rte_rdtsc();
            call();
            w.stats.stage_cycles[s] += rte_rdtsc() - t0;
        });
    } else {
        auto call = [](Stage, auto &&run) { run(); };
        if (!plain4(b, w, [&] { stages_out(b, w, call); })) stages(b, w, call);
    }
}

} // namespace vleaf::dp
