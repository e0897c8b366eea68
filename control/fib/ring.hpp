// The lock-free rings between vleafd's BGP thread and its table writer (the daemon
// thread), and the writer's side of the forward ring.
//
// Where the FIB programmer runs: on the writer thread, not on the BGP thread. The
// programmer owns the shared next-hop objects, and the other users of those objects (the
// interfaces' connected next hops, static routes, the neighbor resolver's adjacencies,
// the punt handler asking whom to resolve for a next hop) all live on the writer thread.
// Had the programmer run on the BGP thread, every neighbor resolution would have to
// cross a ring to it and every punt would need its answer back, and the adjacency a BGP
// route and a static route share could be changed from two threads. So the BGP thread
// sends route intents (prefix and BGP next-hop addresses), and the writer turns them into
// dataplane updates in the same thread that resolves neighbors and applies the updates.
#pragma once

#include "control/fib/programmer.hpp"
#include "control/fib/spsc_ring.hpp"

#include <array>
#include <cstdint>

namespace vleaf::fib {

// BGP thread -> writer: the best-path state of one prefix, or a resync marker.
struct RouteMsg {
    enum class Op : uint8_t { Set, Del, ResyncBegin, ResyncEnd };
    Op op = Op::Del;
    uint8_t n_via = 0;
    uint32_t vrf = 0;
    uint64_t stamp_ns = 0; // when the producer made it (steady clock), for the update lag
    Prefix prefix;
    std::array<IpAddr, kMaxEcmp> via; // BGP next hops of the best path and its ECMP siblings
};

// Writer -> BGP thread: what the dataplane side learned. Neighbor resolutions are where
// EVPN type-2 origination of local hosts starts; a resync request makes the producer
// send the whole RIB again.
struct Event {
    // LocalMac: `mac` (with `ip` when has_ip) learned on an access port of L2VNI `vni`
    // (reachable) or gone from it: EVPN type 2 to originate or withdraw (see evpn.hpp).
    enum class Kind : uint8_t { Neighbor, ResyncRequest, LocalMac };
    Kind kind = Kind::Neighbor;
    bool reachable = false; // Neighbor: resolved (mac valid) or lost
    bool has_ip = false;    // LocalMac
    uint16_t ifid = 0;
    uint32_t vni = 0; // LocalMac
    IpAddr ip;
    MacAddr mac;
};

// Bounded, allocated once: push fails when full, it never allocates or blocks.
using RouteRing = SpscRing<RouteMsg>;
using EventRing = SpscRing<Event>;

uint64_t steady_ns();

struct DrainCounters {
    uint64_t messages = 0; // route messages applied
    uint64_t batches = 0;
    uint64_t resyncs = 0; // completed (ResyncEnd applied)
    uint64_t last_lag_ns = 0;
    uint64_t max_lag_ns = 0;
};

// The writer's side: applies up to `max` messages as one programmer batch (one grace
// period at most in the dataplane). Returns how many were applied.
size_t drain(RouteRing &ring, Programmer &prog, size_t max, DrainCounters &c);

} // namespace vleaf::fib
