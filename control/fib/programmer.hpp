// Turns what the control plane knows (interface addresses, static routes, resolved
// neighbors, BGP best paths) into dataplane updates. Next hops are shared objects: every
// route through the same neighbor points at one adjacency, so a neighbor's MAC change or
// loss is one message, not one per route.
//
// Updates leave in batches (commit()), ordered so that the single table writer needs at
// most one RCU grace period per batch: next-hop (and overlay) sets in the order made,
// then route adds, then route deletes, then next-hop deletes. Within a batch only the last
// operation on a prefix leaves (an add then a delete of a prefix the dataplane never had sends
// nothing). A freed next-hop id is held until the dataplane has let go of it (Dataplane):
// workers may still hold it with its old meaning for one RCU grace period after the batch
// that deleted it, and a reuse before that would make the table writer wait.
#pragma once

#include "control/fib/route_table.hpp"
#include "vleaf/update.hpp"

#include <array>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

namespace vleaf::fib {

const char *route_type_name(RouteType t);

struct ProgrammerCounters {
    uint64_t bgp_set = 0;
    uint64_t bgp_del = 0;
    uint64_t bgp_unresolved = 0; // no BGP next hop in a connected subnet: not installed
    uint64_t bgp_shadowed = 0;   // a connected/static route for the same prefix wins
    uint64_t evpn_shadowed = 0;  // an IP-VRF route from EVPN where a configured one is
    uint64_t batches = 0;
    uint64_t resyncs = 0;
    uint64_t resync_removed = 0;        // BGP routes the dataplane had and the RIB did not
    uint64_t vtep_underlay_changes = 0; // a remote VTEP's route moved to another next hop
    uint64_t nh_reused = 0;             // next-hop ids reused once the dataplane let go of them
};

class Programmer {
  public:
    using Sink = std::function<void(const Update &)>;
    // The sink applies each update before it returns. After each batch, `settle` lets the
    // dataplane start the grace period covering what the batch unlinked; `released` tells,
    // without waiting, whether the dataplane has let go of a deleted next-hop id. Without
    // them, freed ids are reusable once their batch is out. `prefetch` is told about each
    // route add (or delete) of a batch some routes before the sink gets it: the
    // dataplane's tables are far larger than the caches, and fetching ahead overlaps the
    // cache misses of consecutive updates.
    struct Dataplane {
        std::function<void()> settle;
        std::function<bool(NhId)> released;
        std::function<void(uint32_t vrf, const Prefix &, bool add)> prefetch;
    };
    explicit Programmer(Sink sink, Dataplane dp = {})
        : sink_(std::move(sink)), dp_(std::move(dp)) {}

    // Groups the updates of several calls into one batch (commit() on the outermost
    // scope's end). Every public call outside a scope is a batch of its own.
    class Scope {
      public:
        explicit Scope(Programmer &p) : p_(p) { ++p_.depth_; }
        ~Scope() {
            if (--p_.depth_ == 0) p_.commit();
        }
        Scope(const Scope &) = delete;
        Scope &operator=(const Scope &) = delete;

      private:
        Programmer &p_;
    };

    void add_interface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                       const std::vector<Prefix> &addresses);
    // The anycast gateway of bridge domain `bd`: an interface whose neighbors are hosts in
    // the domain, reached by bridging (local access port or the domain's VXLAN tunnels).
    void add_gateway(uint16_t ifid, const std::string &name, uint16_t bd, uint32_t vrf,
                     const std::vector<Prefix> &addresses);

    // VXLAN (overlay.cpp). A remote VTEP lives while tunnel next hops, flood lists or
    // remote MACs name it: the first creates it (an error if no route leads to it), the
    // last one gone deletes it. Its underlay next hop is the one of the best default-VRF
    // route to it (for a connected subnet, the VTEP itself as a neighbor), followed as
    // routes change: one VtepSet per VTEP whose route changed, the neighbors' MACs being
    // shared next hops already.
    std::optional<uint16_t> vtep_id(const IpAddr &remote) const; // known VTEPs only
    void add_l3vni(uint32_t vni, uint32_t vrf, const MacAddr &router_mac);
    uint16_t add_bridge_domain(uint32_t vni, uint32_t vrf, const std::optional<MacAddr> &gw);
    void add_access(uint16_t port, uint16_t vlan, uint16_t bd);
    std::string add_flood(uint16_t bd, const IpAddr &vtep);
    void del_flood(uint16_t bd, const IpAddr &vtep);
    // A static (configured or EVPN) MAC behind `vtep`; setting it again moves it.
    std::string add_remote_mac(uint16_t bd, const MacAddr &mac, const IpAddr &vtep);
    void del_remote_mac(uint16_t bd, const MacAddr &mac);
    // A remote prefix in `vrf` behind `vtep` (EVPN type-5, symmetric IRB).
    std::string add_tunnel_route(uint32_t vrf, const Prefix &prefix, const IpAddr &vtep,
                                 uint32_t vni, const MacAddr &router_mac);
    void del_tunnel_route(uint32_t vrf, const Prefix &prefix);
    // EVPN (evpn.cpp): an IP-VRF route through one tunnel next hop per hop (several:
    // ECMP), replaced or removed as BGP's best paths change. Configured routes of the same
    // prefix win.
    struct TunnelHop {
        IpAddr vtep;
        uint32_t vni = 0;
        MacAddr router_mac;
    };
    std::string set_evpn_route(uint32_t vrf, const Prefix &prefix, std::span<const TunnelHop> hops);
    void del_evpn_route(uint32_t vrf, const Prefix &prefix);
    // Underlay neighbors of remote VTEPs that have no MAC yet: to resolve.
    std::vector<std::pair<uint16_t, IpAddr>> unresolved_vteps() const;

    // Returns an error naming the offending gateway, empty on success.
    std::string add_static(uint32_t vrf, const Prefix &prefix, const std::vector<IpAddr> &via,
                           std::optional<uint16_t> dev, bool blackhole);
    // An address of ours on no interface (a loopback VTEP address): to the exception path.
    void add_local(uint32_t vrf, const IpAddr &addr);
    // A neighbor became reachable (mac) or was lost (nullopt).
    void neighbor(uint16_t ifid, const IpAddr &ip, const std::optional<MacAddr> &mac);

    // Brings the programmer's state of vrf/prefix into the cache, ahead of a set_bgp or
    // del_bgp of it.
    void prefetch(uint32_t vrf, const Prefix &prefix) const { routes_.prefetch({vrf, prefix}); }

    // BGP best paths. `via` are the BGP next hops of the best path and its multipath
    // siblings; each one in a connected subnet of the VRF becomes an adjacency (shared
    // with static routes through the same gateway), several become an ECMP group.
    // Connected, local and static routes win over BGP for the same prefix.
    void set_bgp(uint32_t vrf, const Prefix &prefix, const IpAddr *via, unsigned n_via);
    void del_bgp(uint32_t vrf, const Prefix &prefix);
    // Full resync: BGP routes not set again between begin and end are removed.
    void bgp_resync_begin();
    void bgp_resync_end();
    size_t bgp_routes() const { return bgp_routes_; }

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
        std::string type; // connected | local | static | neighbor | blackhole | vxlan | bgp | evpn
        std::vector<Hop> hops;
    };
    std::vector<RouteView> routes() const; // sorted by VRF and prefix
    struct VtepView {
        uint16_t id;
        IpAddr addr;
        std::vector<Hop> underlay;
        unsigned tunnels; // tunnel next hops through it
        unsigned users;   // tunnel next hops, flood list entries and remote MACs
    };
    std::vector<VtepView> vteps() const;
    size_t nexthop_count() const { return nhs_.size(); }
    size_t group_count() const { return groups_.size(); }
    // Routes per VRF and family (index 0: IPv4, 1: IPv6).
    const std::map<uint32_t, std::array<size_t, 2>> &route_counts() const { return counts_; }
    const ProgrammerCounters &counters() const { return counters_; }

  private:
    friend class Scope;
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
        NhId underlay; // kNhNoRoute while no route leads to it
        unsigned tunnels = 0;
        unsigned refs = 0;
    };
    using TunnelKey = std::tuple<uint16_t, uint32_t, MacAddr>;
    // The route operations of the open batch on one prefix: what the dataplane had before
    // the first, and what the last one leaves.
    struct PendingRoute {
        RouteKey key;
        bool existed; // before the batch
        NhId prev;    // existed: the next hop it had
        bool add;     // the last operation
        NhId nh;      // add: the new next hop
    };

    void commit();
    // Next-hop and overlay (VTEP, VNI, bridge domain, MAC) updates, in the order made.
    void emit(const Update &u) { nh_sets_.push_back(u); }
    void add_iface(uint16_t ifid, const std::string &name, uint16_t port, uint32_t vrf,
                   const std::vector<Prefix> &addresses, std::optional<uint16_t> bd);
    NhId alloc();
    // Moves the held ids the dataplane has let go of to free_.
    void release_held();
    void publish(NhId id);
    void unref(NhId id);
    void drop_unused(NhId id);
    NhId adjacency(uint16_t ifid, const IpAddr &ip);
    NhId group(std::vector<NhId> members);
    void set_route(uint32_t vrf, const Prefix &p, RouteType type, NhId nh);
    void del_route(uint32_t vrf, const Prefix &p);
    // Records an operation on the route of `r` before `r` changes.
    void note(RouteSlot &r, bool add, NhId nh);
    const RouteSlot *route(uint32_t vrf, const Prefix &p) const;
    std::optional<uint16_t> connected_if(uint32_t vrf, const IpAddr &ip) const;
    void index_subnets();
    std::optional<NhId> underlay(const IpAddr &ip);
    std::optional<uint16_t> vtep_ref(const IpAddr &remote, std::string *error);
    void vtep_unref(uint16_t id);
    void follow_underlay();
    NhId tunnel(uint16_t vtep, uint32_t vni, const MacAddr &router_mac);
    Hop hop(NhId id) const;
    std::vector<Hop> hops(NhId id) const;

    Sink sink_;
    Dataplane dp_;
    std::map<uint16_t, Iface> ifs_;
    // The interfaces' addresses as connected_if searches them (by interface id, then
    // address): every BGP update looks its next hops up here, which walking ifs_ and
    // masking each prefix made a tenth of the table writer's time.
    struct Subnet {
        uint32_t vrf;
        Family family;
        uint16_t ifid;
        std::array<uint64_t, 2> net, mask; // the address's bytes as two words
    };
    std::vector<Subnet> subnets_;
    std::map<NhId, NhObj> nhs_;
    std::map<std::pair<uint16_t, IpAddr>, NhId> adj_;
    std::map<std::vector<NhId>, NhId> groups_;
    RouteTable routes_;
    std::vector<NhId> free_;
    std::deque<NhId> held_; // freed ids the dataplane may still hold, oldest first
    NhId next_ = kFirstDynamicNh;
    size_t bgp_routes_ = 0;
    std::map<uint32_t, std::array<size_t, 2>> counts_;
    uint32_t resync_gen_ = 0;
    ProgrammerCounters counters_;

    // The open batch.
    unsigned depth_ = 0;
    uint32_t batch_ = 1;
    std::vector<Update> nh_sets_;
    std::vector<PendingRoute> route_ops_;
    std::vector<RouteKey> dels_; // scratch of commit()
    std::vector<NhId> nh_dels_;
    std::vector<NhId> freed_;            // join free_ once the batch is out
    std::vector<Prefix> underlay_dirty_; // default-VRF routes changed: VTEPs to re-resolve
    std::vector<Update> vtep_dels_;      // after the route deletes, before the next hops'
    std::vector<uint16_t> freed_vteps_;  // join free_vteps_ once the batch is out
    std::map<uint16_t, Vtep> vteps_;
    std::map<IpAddr, uint16_t> vtep_ids_; // ordered: the VTEPs inside a prefix are a range
    std::vector<uint16_t> free_vteps_;
    uint16_t next_vtep_ = 0;
    std::map<TunnelKey, NhId> tunnels_;
    std::set<std::pair<uint16_t, uint16_t>> floods_;               // bridge domain, VTEP
    std::map<std::pair<uint16_t, MacAddr>, uint16_t> remote_macs_; // -> VTEP
    uint16_t next_bd_ = 0;
};

} // namespace vleaf::fib
