// Turns what the control plane knows (interface addresses, static routes, resolved
// neighbors) into dataplane updates. Next hops are shared objects: every route through
// the same neighbor points at one adjacency, so a neighbor's MAC change or loss is one
// message, not one per route.
#pragma once

#include "vleaf/update.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace vleaf::fib {

class Programmer {
  public:
    using Sink = std::function<void(const Update &)>;
    explicit Programmer(Sink sink) : sink_(std::move(sink)) {}

    void add_interface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                       const std::vector<Prefix> &addresses);
    // The anycast gateway of bridge domain `bd`: an interface whose neighbors are hosts in
    // the domain, reached by bridging (local access port or the domain's VXLAN tunnels).
    void add_gateway(uint16_t ifid, const std::string &name, uint16_t bd, uint32_t vrf,
                     const std::vector<Prefix> &addresses);

    // VXLAN (overlay.cpp). Remote VTEPs are found or created by address; the underlay
    // next hop to each is a neighbor on a connected subnet or a static route's next hop.
    std::optional<uint16_t> vtep(const IpAddr &remote, std::string *error = nullptr);
    void add_l3vni(uint32_t vni, uint32_t vrf, const MacAddr &router_mac);
    uint16_t add_bridge_domain(uint32_t vni, uint32_t vrf, const std::optional<MacAddr> &gw);
    void add_access(uint16_t port, uint16_t vlan, uint16_t bd);
    std::string add_flood(uint16_t bd, const IpAddr &vtep);
    std::string add_remote_mac(uint16_t bd, const MacAddr &mac, const IpAddr &vtep);
    // A remote prefix in `vrf` behind `vtep` (EVPN type-5, symmetric IRB).
    std::string add_tunnel_route(uint32_t vrf, const Prefix &prefix, const IpAddr &vtep,
                                 uint32_t vni, const MacAddr &router_mac);
    // Underlay neighbors of remote VTEPs that have no MAC yet: to resolve.
    std::vector<std::pair<uint16_t, IpAddr>> unresolved_vteps() const;

    // Returns an error naming the offending gateway, empty on success.
    std::string add_static(uint32_t vrf, const Prefix &prefix, const std::vector<IpAddr> &via,
                           std::optional<uint16_t> dev, bool blackhole);
    // An address of ours on no interface (a loopback VTEP address): to the exception path.
    void add_local(uint32_t vrf, const IpAddr &addr);
    // A neighbor became reachable (mac) or was lost (nullopt).
    void neighbor(uint16_t ifid, const IpAddr &ip, const std::optional<MacAddr> &mac);

    struct Target {
        uint16_t ifid;
        IpAddr ip;
    };
    // Whom to resolve for a packet punted with `nh` and destination `dst`.
    std::optional<Target> resolve_target(NhId nh, const IpAddr &dst) const;

    struct Hop {
        std::string via; // gateway, or "" for connected/local
        std::string interface;
        std::string mac; // "" while unresolved
    };
    struct RouteView {
        uint32_t vrf;
        Prefix prefix;
        std::string type; // connected | local | static | neighbor | blackhole | vxlan
        std::vector<Hop> hops;
    };
    std::vector<RouteView> routes() const;
    struct VtepView {
        uint16_t id;
        IpAddr addr;
        std::vector<Hop> underlay;
        unsigned tunnels; // tunnel next hops through it
    };
    std::vector<VtepView> vteps() const;
    size_t nexthop_count() const { return nhs_.size(); }

  private:
    struct Iface {
        std::string name;
        uint16_t port;
        uint32_t vrf;
        std::vector<Prefix> addresses;
        NhId connected_nh;
        std::optional<uint16_t> bd; // an anycast gateway
    };
    struct NhObj {
        enum class Type { Connected, Adjacency, Group, Tunnel } type = Type::Connected;
        uint16_t ifid = 0;
        IpAddr ip;                  // Adjacency
        std::optional<MacAddr> mac; // Adjacency, when resolved
        std::vector<NhId> members;  // Group
        uint16_t vtep = 0;          // Tunnel
        uint32_t vni = 0;           // Tunnel
        unsigned refs = 0;
    };
    struct Vtep {
        IpAddr addr;
        NhId underlay;
        unsigned tunnels = 0;
    };
    using TunnelKey = std::tuple<uint16_t, uint32_t, MacAddr>;
    struct RouteEntry {
        std::string type;
        NhId nh;
    };
    using RouteKey = std::pair<uint32_t, Prefix>;

    void add_iface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                   const std::vector<Prefix> &addresses, std::optional<uint16_t> bd);
    NhId alloc();
    void publish(NhId id);
    void unref(NhId id);
    void drop_unused(NhId id);
    NhId adjacency(uint16_t ifid, const IpAddr &ip);
    NhId group(std::vector<NhId> members);
    void set_route(uint32_t vrf, const Prefix &p, const std::string &type, NhId nh);
    void del_route(uint32_t vrf, const Prefix &p);
    std::optional<uint16_t> connected_if(uint32_t vrf, const IpAddr &ip) const;
    std::optional<NhId> underlay(const IpAddr &ip);
    NhId tunnel(uint16_t vtep, uint32_t vni, const MacAddr &router_mac);
    Hop hop(NhId id) const;
    std::vector<Hop> hops(NhId id) const;

    Sink sink_;
    std::map<uint16_t, Iface> ifs_;
    std::map<NhId, NhObj> nhs_;
    std::map<std::pair<uint16_t, IpAddr>, NhId> adj_;
    std::map<std::vector<NhId>, NhId> groups_;
    std::map<RouteKey, RouteEntry> routes_;
    std::vector<NhId> free_;
    NhId next_ = kFirstDynamicNh;
    std::map<uint16_t, Vtep> vteps_;
    std::map<IpAddr, uint16_t> vtep_ids_;
    std::map<TunnelKey, NhId> tunnels_;
    uint16_t next_bd_ = 0;
};

} // namespace vleaf::fib
