// A burst of packets moving through the pipeline, with per-packet scratch state kept in
// parallel arrays so that each stage walks contiguous memory.
#pragma once

#include "control/config/config.hpp"
#include "dataplane/fib.hpp"
#include "vleaf/stats.hpp"

#include <rte_mbuf.h>

namespace vleaf::dp {

inline constexpr uint16_t kMaxBurst = config::kMaxBurst; // the config refuses larger bursts

enum class Action : uint8_t { Tx, Drop, Punt };

struct Burst {
    uint16_t n = 0;
    uint16_t port = 0; // every packet of a burst came in on this port
    const VrfTables *vrf = nullptr;
    rte_mbuf *m[kMaxBurst];

    // parse -> route
    uint16_t n4 = 0, n6 = 0;
    uint8_t idx4[kMaxBurst], idx6[kMaxBurst];
    uint32_t dst4[kMaxBurst]; // host byte order, as rte_fib wants
    uint8_t dst6[kMaxBurst][16];

    // route -> forward: next-hop ids in list order (rte_fib's 64-bit results)
    uint64_t nh4[kMaxBurst], nh6[kMaxBurst];

    // forward -> dispatch
    uint32_t nh[kMaxBurst]; // Punt: the next hop (to resolve)
    Action action[kMaxBurst];
    uint8_t reason[kMaxBurst]; // Drop or Punt value
    uint16_t out_port[kMaxBurst];

    void drop(unsigned i, Drop why) {
        action[i] = Action::Drop;
        reason[i] = static_cast<uint8_t>(why);
    }
    void punt(unsigned i, Punt why) {
        action[i] = Action::Punt;
        reason[i] = static_cast<uint8_t>(why);
    }
};

} // namespace vleaf::dp
