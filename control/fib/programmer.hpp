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
#include <vector>

namespace vleaf::fib {

class Programmer {
  public:
    using Sink = std::function<void(const Update &)>;
    explicit Programmer(Sink sink) : sink_(std::move(sink)) {}

    void add_interface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                       const std::vector<Prefix> &addresses);
    // Returns an error naming the offending gateway, empty on success.
    std::string add_static(uint32_t vrf, const Prefix &prefix, const std::vector<IpAddr> &via,
                           std::optional<uint16_t> dev, bool blackhole);
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
        std::string type; // connected | local | static | neighbor | blackhole
        std::vector<Hop> hops;
    };
    std::vector<RouteView> routes() const;
    size_t nexthop_count() const { return nhs_.size(); }

  private:
    struct Iface {
        std::string name;
        uint16_t port;
        uint32_t vrf;
        std::vector<Prefix> addresses;
        NhId connected_nh;
    };
    struct NhObj {
        enum class Type { Connected, Adjacency, Group } type = Type::Connected;
        uint16_t ifid = 0;
        IpAddr ip;                  // Adjacency
        std::optional<MacAddr> mac; // Adjacency, when resolved
        std::vector<NhId> members;  // Group
        unsigned refs = 0;
    };
    struct RouteEntry {
        std::string type;
        NhId nh;
    };
    using RouteKey = std::pair<uint32_t, Prefix>;

    NhId alloc();
    void publish(NhId id);
    void unref(NhId id);
    void drop_unused(NhId id);
    NhId adjacency(uint16_t ifid, const IpAddr &ip);
    NhId group(std::vector<NhId> members);
    void set_route(uint32_t vrf, const Prefix &p, const std::string &type, NhId nh);
    void del_route(uint32_t vrf, const Prefix &p);
    std::optional<uint16_t> connected_if(uint32_t vrf, const IpAddr &ip) const;
    Hop hop(NhId id) const;

    Sink sink_;
    std::map<uint16_t, Iface> ifs_;
    std::map<NhId, NhObj> nhs_;
    std::map<std::pair<uint16_t, IpAddr>, NhId> adj_;
    std::map<std::vector<NhId>, NhId> groups_;
    std::map<RouteKey, RouteEntry> routes_;
    std::vector<NhId> free_;
    NhId next_ = kFirstDynamicNh;
};

} // namespace vleaf::fib
