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
    Tunnel,     // VXLAN to remote VTEP `vtep` with `vni`, inner destination MAC `mac` (RFC 9135)
    Bridge,     // into bridge domain `bd` to host `mac`: routed out of the domain's gateway
};

// Remote VTEPs, bridge domains and access ports are small dense ids the control plane
// allocates; the dataplane sizes its tables for these many.
inline constexpr uint16_t kMaxVtep = 4096;
inline constexpr uint16_t kMaxBd = 4096;
inline constexpr uint32_t kMaxVni = (1u << 24) - 1;
inline constexpr uint16_t kNoVlan = 0; // an untagged access port

struct Nexthop {
    NhKind kind = NhKind::NoRoute;
    uint16_t port = 0; // dataplane port id
    MacAddr mac;       // destination MAC for Forward
    uint8_t n_members = 0;
    std::array<NhId, kMaxEcmp> members{};
    uint16_t vtep = 0; // Tunnel
    uint32_t vni = 0;  // Tunnel
    uint16_t bd = 0;   // Bridge
};

// Where frames to a MAC address of a bridge domain go: out of a local access port
// (with its VLAN tag, or untagged) or through the tunnel to a remote VTEP.
struct MacDest {
    enum class Kind : uint8_t { Local, Remote } kind = Kind::Local;
    bool is_static = false; // configured or from BGP: never aged, never moved by learning
    uint16_t port = 0;      // Local
    uint16_t vlan = kNoVlan;
    uint16_t vtep = 0; // Remote
};

// The overlay half of an update: VTEPs, VNIs, bridge domains, access ports, MACs.
struct Overlay {
    uint16_t vtep = 0;       // VtepSet/Del, FloodAdd/Del
    IpAddr addr;             // VtepSet: the remote VTEP's address
    uint32_t vni = 0;        // VniSet/Del, BdSet
    uint16_t bd = 0;         // BdSet/Del, Flood*, Mac*, AccessSet
    uint32_t vrf = 0;        // VniSet (L3VNI), BdSet (the gateway's VRF)
    MacAddr mac;             // BdSet: gateway MAC (zero: no gateway); Mac*: the address;
                             // VniSet (L3VNI): our router MAC
    uint16_t port = 0;       // AccessSet/Del
    uint16_t vlan = kNoVlan; // AccessSet/Del
    MacDest dest;            // MacSet
};

struct Update {
    enum class Op : uint8_t {
        NexthopSet,
        NexthopDel,
        RouteAdd,
        RouteDel,
        VtepSet,   // remote VTEP `ov.vtep` at `ov.addr`, reached through underlay next hop `nh`
        VtepDel,   // no tunnel next hop, flood list or MAC may still name it
        VniSet,    // L2VNI `ov.vni` is bridge domain `ov.bd`, or L3VNI `ov.vni` is VRF `ov.vrf`
        VniDel,    // decapsulation of `ov.vni` stops
        BdSet,     // bridge domain `ov.bd`: VNI, gateway MAC and VRF
        BdDel,     // its access ports, flood list and MACs must be gone
        FloodAdd,  // BUM frames of `ov.bd` are replicated to `ov.vtep`
        FloodDel,  //
        AccessSet, // frames on `ov.port` with `ov.vlan` (kNoVlan: untagged) belong to `ov.bd`
        AccessDel, //
        MacSet,    // `ov.mac` in `ov.bd` is at `ov.dest`
        MacDel,    //
    };
    Op op = Op::RouteAdd;
    bool l3 = false; // VniSet/VniDel: an L3VNI (VRF) rather than an L2VNI (bridge domain)
    uint32_t vrf = 0;
    NhId nh = 0;     // the next hop set/deleted, or the one a route or VTEP points to
    Prefix prefix;   // RouteAdd/RouteDel
    Nexthop nexthop; // NexthopSet
    Overlay ov;      // VXLAN and bridging ops

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
    static Update vtep_set(uint16_t vtep, const IpAddr &addr, NhId underlay) {
        Update u;
        u.op = Op::VtepSet;
        u.ov.vtep = vtep;
        u.ov.addr = addr;
        u.nh = underlay;
        return u;
    }
    static Update vtep_del(uint16_t vtep) {
        Update u;
        u.op = Op::VtepDel;
        u.ov.vtep = vtep;
        return u;
    }
    static Update l2vni_set(uint32_t vni, uint16_t bd) {
        Update u;
        u.op = Op::VniSet;
        u.ov.vni = vni;
        u.ov.bd = bd;
        return u;
    }
    static Update l3vni_set(uint32_t vni, uint32_t vrf, const MacAddr &router_mac) {
        Update u;
        u.op = Op::VniSet;
        u.l3 = true;
        u.ov.vni = vni;
        u.ov.vrf = vrf;
        u.ov.mac = router_mac;
        return u;
    }
    static Update vni_del(uint32_t vni) {
        Update u;
        u.op = Op::VniDel;
        u.ov.vni = vni;
        return u;
    }
    static Update bd_set(uint16_t bd, uint32_t vni, uint32_t vrf, const MacAddr &gateway_mac) {
        Update u;
        u.op = Op::BdSet;
        u.ov.bd = bd;
        u.ov.vni = vni;
        u.ov.vrf = vrf;
        u.ov.mac = gateway_mac;
        return u;
    }
    static Update bd_del(uint16_t bd) {
        Update u;
        u.op = Op::BdDel;
        u.ov.bd = bd;
        return u;
    }
    static Update flood(bool add, uint16_t bd, uint16_t vtep) {
        Update u;
        u.op = add ? Op::FloodAdd : Op::FloodDel;
        u.ov.bd = bd;
        u.ov.vtep = vtep;
        return u;
    }
    static Update access(bool add, uint16_t port, uint16_t vlan, uint16_t bd) {
        Update u;
        u.op = add ? Op::AccessSet : Op::AccessDel;
        u.ov.port = port;
        u.ov.vlan = vlan;
        u.ov.bd = bd;
        return u;
    }
    static Update mac_set(uint16_t bd, const MacAddr &mac, const MacDest &dest) {
        Update u;
        u.op = Op::MacSet;
        u.ov.bd = bd;
        u.ov.mac = mac;
        u.ov.dest = dest;
        return u;
    }
    static Update mac_del(uint16_t bd, const MacAddr &mac) {
        Update u;
        u.op = Op::MacDel;
        u.ov.bd = bd;
        u.ov.mac = mac;
        return u;
    }
};
static_assert(std::is_trivially_copyable_v<Update>, "updates cross lock-free rings by copy");

} // namespace vleaf
