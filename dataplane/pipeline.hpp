// The whole packet path of a worker, in order. Each stage walks the burst once.
#pragma once

#include "dataplane/acl.hpp"
#include "dataplane/bridge.hpp"
#include "dataplane/dispatch.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/lb.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/route.hpp"
#include "dataplane/vxlan.hpp"

#include <rte_cycles.h>

namespace vleaf::dp {

#ifdef VLEAF_STAGE_CYCLES
#define VLEAF_STAGE(w, stage, call)                                                                \
    do {                                                                                           \
        uint64_t t0_ = rte_rdtsc();                                                                \
        call;                                                                                      \
        (w).stats.stage_cycles[stage] += rte_rdtsc() - t0_;                                        \
    } while (0)
#else
#define VLEAF_STAGE(w, stage, call) call
#endif

inline void pipeline(Burst &b, Worker &w) {
    VLEAF_STAGE(w, StageParse, parse(b, w));
    VLEAF_STAGE(w, StageDecap, vxlan_decap(b, w));
    VLEAF_STAGE(w, StageBridgeIn, bridge_in(b, w));
    VLEAF_STAGE(w, StageAclIn, acl_in(b, w));
    VLEAF_STAGE(w, StageLb, lb(b, w));
    VLEAF_STAGE(w, StageRoute, route(b, w));
    VLEAF_STAGE(w, StageForward, forward(b, w));
    VLEAF_STAGE(w, StageAclOut, acl_out(b, w));
    VLEAF_STAGE(w, StageBridgeOut, bridge_out(b, w));
    VLEAF_STAGE(w, StageEncap, vxlan_encap(b, w));
    VLEAF_STAGE(w, StageDispatch, dispatch(b, w));
}

} // namespace vleaf::dp
