// The whole packet path of a worker, in order. Each stage walks the burst once; a burst of
// plain routed IPv4 packets takes the same path in two loops (plain4.hpp).
#pragma once

#include "dataplane/acl.hpp"
#include "dataplane/bridge.hpp"
#include "dataplane/dispatch.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/lb.hpp"
#include "dataplane/lb_handoff.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/plain4.hpp"
#include "dataplane/route.hpp"
#include "dataplane/vxlan.hpp"

#include <rte_cycles.h>

namespace vleaf::dp {

// The stages after forward (Done: but acl_out, which plain4 did).
template <class Each>
inline void stages_out(Burst &b, Worker &w, Each &&each, OutAcl acl = OutAcl::Pending) {
    if (acl == OutAcl::Pending) each(StageAclOut, [&] { acl_out(b, w); });
    each(StageBridgeOut, [&] { bridge_out(b, w); });
    each(StageEncap, [&] { vxlan_encap(b, w); });
    each(StageDispatch, [&] { dispatch(b, w); });
}

// Runs the stages through `each(stage, call)`, which may time them (benchmarks,
// -Dstage_cycles=true); the plain pipeline just calls them. Packets handed over by
// another worker (lb_handoff.hpp) start at the LB stage.
template <class Each> inline void stages_from_lb(Burst &b, Worker &w, Each &&each) {
    each(StageLb, [&] { lb(b, w); });
    each(StageRoute, [&] { route(b, w); });
    each(StageForward, [&] { forward(b, w); });
    stages_out(b, w, each);
}

template <class Each> inline void stages(Burst &b, Worker &w, Each &&each) {
    each(StageParse, [&] { parse(b, w); });
    each(StageDecap, [&] { vxlan_decap(b, w); });
    each(StageBridgeIn, [&] { bridge_in(b, w); });
    each(StageAclIn, [&] { acl_in(b, w); });
    each(StageHandoff, [&] { lb_handoff(b, w); });
    stages_from_lb(b, w, each);
}

inline void time_stage(Worker &w, Stage s, auto &&call) {
    uint64_t t0 = rte_rdtsc();
    call();
    w.stats.stage_cycles[s] += rte_rdtsc() - t0;
}

// With -Dstage_cycles=true every burst goes through the stages, so that each is timed.
inline void pipeline(Burst &b, Worker &w) {
    if constexpr (kStageCycles) {
        stages(b, w, [&](Stage s, auto &&call) { time_stage(w, s, call); });
    } else {
        auto call = [](Stage, auto &&run) { run(); };
        if (!plain4(b, w, [&](OutAcl acl) { stages_out(b, w, call, acl); })) stages(b, w, call);
    }
}

// A burst of handed-in packets (handed_in()), whose earlier stages ran on another worker.
inline void pipeline_handed_in(Burst &b, Worker &w) {
    if constexpr (kStageCycles)
        stages_from_lb(b, w, [&](Stage s, auto &&call) { time_stage(w, s, call); });
    else
        stages_from_lb(b, w, [](Stage, auto &&run) { run(); });
}

} // namespace vleaf::dp
