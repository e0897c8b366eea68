// The whole packet path of a worker, in order. Each stage walks the burst once.
#pragma once

#include "dataplane/acl.hpp"
#include "dataplane/bridge.hpp"
#include "dataplane/dispatch.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/lb.hpp"
#include "dataplane/lb_handoff.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/route.hpp"
#include "dataplane/vxlan.hpp"

#include <rte_cycles.h>

namespace vleaf::dp {

// Runs the stages through `each(stage, call)`, which may time them (benchmarks,
// -Dstage_cycles=true); the plain pipeline just calls them. Packets handed over by
// another worker (lb_handoff.hpp) start at the LB stage.
template <class Each> inline void stages_from_lb(Burst &b, Worker &w, Each &&each) {
    each(StageLb, [&] { lb(b, w); });
    each(StageRoute, [&] { route(b, w); });
    each(StageForward, [&] { forward(b, w); });
    each(StageAclOut, [&] { acl_out(b, w); });
    each(StageBridgeOut, [&] { bridge_out(b, w); });
    each(StageEncap, [&] { vxlan_encap(b, w); });
    each(StageDispatch, [&] { dispatch(b, w); });
}

template <class Each> inline void stages(Burst &b, Worker &w, Each &&each) {
    each(StageParse, [&] { parse(b, w); });
    each(StageDecap, [&] { vxlan_decap(b, w); });
    each(StageBridgeIn, [&] { bridge_in(b, w); });
    each(StageAclIn, [&] { acl_in(b, w); });
    each(StageHandoff, [&] { lb_handoff(b, w); });
    stages_from_lb(b, w, each);
}

// `run(b, w, each)`: stages or stages_from_lb.
template <class Run> inline void timed_stages(Burst &b, Worker &w, Run &&run) {
    if constexpr (kStageCycles)
        run(b, w, [&](Stage s, auto &&call) {
            uint64_t t0 = rte_rdtsc();
            call();
            w.stats.stage_cycles[s] += rte_rdtsc() - t0;
        });
    else
        run(b, w, [](Stage, auto &&call) { call(); });
}

inline void pipeline(Burst &b, Worker &w) {
    timed_stages(b, w, [](Burst &b2, Worker &w2, auto &&each) { stages(b2, w2, each); });
}

// A burst of handed-in packets (handed_in()), whose earlier stages ran on another worker.
inline void pipeline_handed_in(Burst &b, Worker &w) {
    timed_stages(b, w, [](Burst &b2, Worker &w2, auto &&each) { stages_from_lb(b2, w2, each); });
}

} // namespace vleaf::dp
