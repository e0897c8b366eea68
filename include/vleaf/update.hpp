// Control -> dataplane update messages. Small PODs: they cross lock-free rings and are
// applied by the single table writer. BGP, static config and the neighbor resolver
// all speak this vocabulary, so the dataplane never knows where a route came from.
#pragma once

#include "vleaf/addr.hpp"

#include <array>
#include <cstdint>
#include <type_traits>

namespace vleaf {

using NhId = uint32_t;

// Next hops the dataplane always has. Control allocates the rest from kFirstDynamicNh.
inline constexpr NhId kNhNoRoute = 0;   // what a lookup miss resolves to
inline constexpr NhId kNhLocal = 1;     // one of our addresses: to the exception path
inline constexpr NhId kNhBlackhole = 2; // configured discard
inline constexpr NhId kFirstDynamicNh = 3;
inline constexpr NhId kMaxNh = 1 << 20; // fits rte_lpm (24 bit) and rte_fib6 next hops
inline constexpr unsigned kMaxEcmp = 16;

enum class NhKind : uint8_t {
    NoRoute,    // drop, counted as no_route
    Local,      // punt to the kernel tap of the receiving interface
    Blackhole,  // drop, counted as blackhole
    Resolve,    // connected subnet: the packet's destination is the neighbor to resolve
    Unresolved, // gateway known, its MAC not yet: punt for resolution
    Forward,    // out of `port` to `mac`
    Ecmp,       // hash over `members`
};

struct Nexthop {
    NhKind kind = NhKind::NoRoute;
    uint16_t port = 0; // dataplane port id
    MacAddr mac;       // destination MAC for Forward
    uint8_t n_members = 0;
    std::array<NhId, kMaxEcmp> members{};
};

struct Update {
    enum class Op : uint8_t { NexthopSet, NexthopDel, RouteAdd, RouteDel };
    Op op = Op::RouteAdd;
    uint32_t vrf = 0;
    NhId nh = 0;     // the next hop set/deleted, or the one a route points to
    Prefix prefix;   // RouteAdd/RouteDel
    Nexthop nexthop; // NexthopSet

    static Update nexthop_set(NhId id, const Nexthop &n) {
        Update u;
        u.op = Op::NexthopSet;
        u.nh = id;
        u.nexthop = n;
        return u;
    }
    static Update nexthop_del(NhId id) {
        Update u;
        u.op = Op::NexthopDel;
        u.nh = id;
        return u;
    }
    static Update route_add(uint32_t vrf, const Prefix &p, NhId nh) {
        Update u;
        u.op = Op::RouteAdd;
        u.vrf = vrf;
        u.prefix = p;
        u.nh = nh;
        return u;
    }
    static Update route_del(uint32_t vrf, const Prefix &p) {
        Update u;
        u.op = Op::RouteDel;
        u.vrf = vrf;
        u.prefix = p;
        return u;
    }
};
static_assert(std::is_trivially_copyable_v<Update>, "updates cross lock-free rings by copy");

} // namespace vleaf
