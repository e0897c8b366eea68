// EVPN between the embedded speaker and the dataplane, both ways.
//
// Speaker -> dataplane: what EVPN learned (remote MACs with their IPs from type 2, flood
// lists from type 3, IP-VRF best paths from type 5 and type-2 host routes with an L3VNI)
// crosses the EVPN ring as EvpnMsg, made on the BGP thread by EvpnFeed, and the table
// writer's EvpnWriter turns it into the same Programmer calls (and so the same update
// messages) as the static VXLAN configuration, in the writer's batch.
//
// Dataplane -> speaker: MACs the dataplane learned on access ports, the IPs seen with them
// in ARP/ND at the anycast gateway, and their aging, leave the writer as
// Event::Kind::LocalMac over the event ring; EvpnFeed::local() originates or withdraws
// their type-2 routes.
#pragma once

#include "control/bgp/evpn_tables.hpp"
#include "control/bgp/rib.hpp"
#include "control/fib/programmer.hpp"

#include <boost/lockfree/spsc_queue.hpp>

#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

namespace vleaf::bgp {
class Speaker;
}

namespace vleaf::fib {

struct Event;

inline constexpr unsigned kMaxMacIps = 8; // IPs carried with one remote MAC

struct EvpnMsg {
    // ResyncBegin and ResyncEnd bracket the whole EVPN state sent again; at ResyncEnd the
    // writer removes what it holds from EVPN and did not receive in between.
    enum class Op : uint8_t {
        MacSet,
        MacDel,
        FloodAdd,
        FloodDel,
        RouteSet,
        RouteDel,
        ResyncBegin,
        ResyncEnd
    };
    Op op = Op::MacDel;
    uint8_t n = 0;                      // MacSet: ips used; RouteSet: hops used
    uint32_t id = 0;                    // Mac*, Flood*: the L2VNI; Route*: the dataplane VRF
    MacAddr mac;                        // Mac*
    IpAddr vtep;                        // MacSet, Flood*
    Prefix prefix;                      // Route*
    std::array<IpAddr, kMaxMacIps> ips; // MacSet (ARP/ND suppression)
    std::array<Programmer::TunnelHop, kMaxEcmp> hops; // RouteSet: best path and ECMP siblings
};
using EvpnRing = boost::lockfree::spsc_queue<EvpnMsg>;

// The translations, pure functions of the speaker's notifications.
EvpnMsg evpn_l2_msg(const bgp::EvpnL2Change &c);
// An IP-VRF Loc-RIB change (ch.vrf != 0) for dataplane VRF `vrf`: RouteSet with the
// tunnel hops of the best paths (VTEP = BGP next hop, the path's L3VNI, its Router's MAC
// extended community; paths without a router MAC cannot be encapsulated and are left out),
// RouteDel when none is left.
EvpnMsg evpn_route_msg(const bgp::RibChange &ch, uint32_t vrf);
// The same for the current best paths of `prefix` in IP-VRF `v` (RouteDel when it has none).
EvpnMsg evpn_route_msg(const bgp::IpVrf &v, const Prefix &prefix, uint32_t vrf);

struct EvpnFeedCounters {
    uint64_t pushed = 0;
    uint64_t ring_full = 0;  // pushes that found the ring full
    uint64_t backlogged = 0; // entries that went through the backlog
    uint64_t backlog_max = 0;
    uint64_t resyncs = 0; // full resyncs started
    uint64_t local_originated = 0;
    uint64_t local_withdrawn = 0;
    uint64_t local_refused = 0; // sticky elsewhere, duplicate, unknown VNI
};

// BGP thread: follows the speaker's EVPN notifications with the route Feed's policy
// (feed.hpp). It never blocks the BGP thread and never loses a change: a change goes
// straight into the ring, or, when the ring is full, waits in a backlog of what it is
// about (a remote MAC, a flood list entry, an IP-VRF prefix) and leaves with the
// speaker's state at the time it is sent, so a MAC added then removed while waiting
// goes out as one removal. Past `backlog_limit` waiting entries the backlog is dropped
// and the whole EVPN state is sent again between ResyncBegin and ResyncEnd.
class EvpnFeed {
  public:
    // `vrf_ids`: IP-VRF name -> dataplane VRF id. `wake` as for Feed.
    EvpnFeed(bgp::Speaker &speaker, EvpnRing &ring, std::map<std::string, uint32_t> vrf_ids,
             size_t backlog_limit, std::function<void()> wake);
    // Sends what waits, as far as the ring has room, then wakes the writer.
    void flush();
    bool pending() const { return !backlog_.empty() || resync_ != Resync::Idle; }
    // Sends the whole EVPN state again (the writer asked, or the backlog overflowed).
    void request_resync();
    size_t backlog() const { return backlog_.size(); }
    bool resyncing() const { return resync_ != Resync::Idle; }
    // A LocalMac event from the writer.
    void local(const Event &e);
    const EvpnFeedCounters &counters() const { return c_; }

  private:
    struct Key {
        enum class Kind : uint8_t { Mac, Flood, Route } kind = Kind::Mac;
        uint32_t id = 0; // Mac, Flood: the L2VNI; Route: the dataplane VRF
        MacAddr mac;
        IpAddr vtep;
        Prefix prefix;
        auto operator<=>(const Key &) const = default;
    };
    enum class Resync { Idle, Begin, Streaming };

    // `m` is what `k` is now.
    void send(const Key &k, const EvpnMsg &m);
    EvpnMsg current(const Key &k) const;
    bool push(const EvpnMsg &m);
    void remember(const Key &k);
    void remember_everything();

    bgp::Speaker &speaker_;
    EvpnRing &ring_;
    std::map<std::string, uint32_t> vrf_ids_;
    std::map<uint32_t, std::string> vrf_names_;
    size_t limit_;
    std::function<void()> wake_;
    std::set<Key> backlog_;
    std::deque<Key> order_; // backlog_ in arrival order
    Resync resync_ = Resync::Idle;
    bool woken_ = false;
    EvpnFeedCounters c_;
};

struct EvpnWriterCounters {
    uint64_t applied = 0;
    uint64_t errors = 0;         // VTEP unreachable in the underlay, unknown VNI
    uint64_t resyncs = 0;        // completed (ResyncEnd applied)
    uint64_t resync_removed = 0; // entries the resyncs did not renew
    uint64_t remote_macs = 0, flood_vteps = 0, routes = 0; // now
};

// The table writer's side. Knows the bridge domain of each L2VNI, the remote MACs EVPN
// put in (to take out their ARP/ND bindings again) and the MACs learned locally (to
// originate and withdraw them).
class EvpnWriter {
  public:
    struct Hooks {
        // A MAC/IP binding for ARP/ND suppression appeared (mac) or went away (nullopt).
        std::function<void(uint16_t bd, const IpAddr &, std::optional<MacAddr>)> binding;
        // Tells the BGP thread (Event::Kind::LocalMac); false if the event ring is full.
        std::function<bool(const Event &)> event;
    };
    EvpnWriter(Programmer &prog, Hooks hooks) : prog_(prog), hooks_(std::move(hooks)) {}

    void add_l2vni(uint32_t vni, uint16_t bd) { bds_[vni] = bd; }
    // Applies up to `max` messages inside the caller's programmer batch.
    size_t drain(EvpnRing &ring, size_t max);
    void apply(const EvpnMsg &m);

    // From the dataplane: `mac` was learned on an access port of bridge domain `bd`, or
    // left it (aged, or moved behind a remote VTEP).
    void local_mac(uint16_t bd, const MacAddr &mac, bool present);
    // An IP seen with a MAC in ARP/ND in bridge domain `bd`; originated if the MAC is local.
    void local_ip(uint16_t bd, const MacAddr &mac, const IpAddr &ip);
    size_t local_macs() const { return local_.size(); }
    const EvpnWriterCounters &counters() const { return c_; }

  private:
    using RemoteMacs = std::map<std::pair<uint16_t, MacAddr>, std::vector<IpAddr>>;
    std::optional<uint32_t> vni_of(uint16_t bd) const;
    void tell(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip, bool present);
    void fail(const std::string &what, const std::string &err);
    void apply_l2(const EvpnMsg &m);
    RemoteMacs::iterator remove_remote(RemoteMacs::iterator it);
    // ResyncEnd: removes what the resync did not renew.
    void sweep();

    Programmer &prog_;
    Hooks hooks_;
    std::map<uint32_t, uint16_t> bds_;                               // L2VNI -> bd
    RemoteMacs remote_;                                              // from EVPN
    std::set<std::pair<uint16_t, IpAddr>> floods_;                   // from EVPN
    std::set<std::pair<uint32_t, Prefix>> routes_;                   // from EVPN
    std::map<std::pair<uint16_t, MacAddr>, std::set<IpAddr>> local_; // learned here
    // Between ResyncBegin and ResyncEnd: what was renewed.
    bool resyncing_ = false;
    std::set<std::pair<uint16_t, MacAddr>> renewed_macs_;
    std::set<std::pair<uint16_t, IpAddr>> renewed_floods_;
    std::set<std::pair<uint32_t, Prefix>> renewed_routes_;
    EvpnWriterCounters c_;
};

} // namespace vleaf::fib
