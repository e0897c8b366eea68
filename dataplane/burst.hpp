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
    uint64_t nh64[kMaxBurst]; // lookup results of one family

    // route -> forward -> dispatch
    uint32_t nh[kMaxBurst];
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
    // A stage between parse and route that dropped packets takes them out of the family
    // lists, so that route and forward never see (and re-decide) them.
    void compact() {
        unsigned n = 0;
        for (unsigned k = 0; k < n4; k++)
            if (action[idx4[k]] == Action::Tx) {
                idx4[n] = idx4[k];
                dst4[n++] = dst4[k];
            }
        n4 = uint16_t(n);
        n = 0;
        for (unsigned k = 0; k < n6; k++)
            if (action[idx6[k]] == Action::Tx) {
                idx6[n] = idx6[k];
                std::memcpy(dst6[n++], dst6[k], 16);
            }
        n6 = uint16_t(n);
    }
};

} // namespace vleaf::dp
