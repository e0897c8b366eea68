// The FIB programmer's routes by VRF and prefix: open addressing (linear probing,
// backward-shift deletion) in one array. A node-based map costs an allocation per route
// and a bucket plus a node per lookup; at 1M routes that was the top of the table
// writer's profile. A slot also carries the route's operation in the programmer's open
// batch, so the batch finds the earlier operations on a prefix without a search.
#pragma once

#include "vleaf/update.hpp"

#include <vector>

namespace vleaf::fib {

enum class RouteType : uint8_t { Connected, Local, Static, Neighbor, Blackhole, Vxlan, Bgp, Evpn };

struct RouteKey {
    uint32_t vrf;
    Prefix prefix;
    bool operator==(const RouteKey &) const = default;
};

struct RouteSlot {
    RouteKey key;
    uint32_t hash = 0;
    bool used = false;    // the slot holds `key`
    bool present = false; // false: deleted in the open batch, erased when the batch leaves
    RouteType type = RouteType::Bgp;
    uint32_t resync_gen = 0; // BGP: the resync that last confirmed it
    NhId nh = kNhNoRoute;
    uint32_t batch = 0; // the batch that `op` (an index into its operations) belongs to
    uint32_t op = 0;
};

class RouteTable {
  public:
    RouteTable();
    RouteSlot *find(const RouteKey &k);
    const RouteSlot *find(const RouteKey &k) const;
    // The slot of `k`, a new one (not present) if there was none. Moves other slots.
    RouteSlot &slot(const RouteKey &k);
    void erase(const RouteKey &k);
    template <class F> void for_each(F f) const {
        for (const RouteSlot &s : slots_)
            if (s.used) f(s);
    }
    template <class F> void for_each(F f) {
        for (RouteSlot &s : slots_)
            if (s.used) f(s);
    }

  private:
    static uint32_t hash(const RouteKey &k);
    size_t probe(const RouteKey &k, uint32_t h) const; // its slot, or the empty one to use
    void grow();

    std::vector<RouteSlot> slots_;
    size_t mask_;
    size_t used_ = 0;
};

} // namespace vleaf::fib
