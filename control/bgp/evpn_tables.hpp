// EVPN seen from the VTEP: the MAC-VRF of every local L2VNI and the Loc-RIB of every
// IP-VRF. Routes learned from peers are imported from the global L2VPN EVPN table by
// route target; local routes (type 3 per L2VNI, type 5 per VRF prefix, type 2 per local
// MAC/IP) are originated into it. MAC mobility follows RFC 7432 15: sequence numbers,
// sticky MACs, duplicate detection.
#pragma once

#include "control/bgp/config.hpp"
#include "control/bgp/fsm.hpp"
#include "control/bgp/rib.hpp"

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace vleaf::bgp {

// One imported MAC/IP route of a remote VTEP.
struct RemoteMac {
    IpAddr vtep;
    std::optional<IpAddr> ip;
    uint32_t seq = 0;
    bool sticky = false;
    uint32_t l3vni = 0; // label 2, 0 when absent
};

struct MacEntry {
    // Local: the IPs originated with this MAC (nullopt: the MAC-only route).
    std::set<std::optional<IpAddr>> local_ips;
    bool local_sticky = false;
    uint32_t local_seq = 0;
    std::map<EvpnNlri, RemoteMac, EvpnKeyLess> remote; // by the route's key in the global table
    // Where the MAC lives now: here (local), at a remote VTEP, or nowhere yet.
    enum class Owner : uint8_t { None, Local, Remote } owner = Owner::None;
    IpAddr owner_vtep;
    std::deque<TimePoint> moves; // within the detection window
    bool duplicate = false;      // frozen: local changes are not advertised

    bool local() const { return !local_ips.empty(); }
    const RemoteMac *best_remote() const;
};

struct MacVrf {
    uint32_t vni = 0;
    RouteDistinguisher rd;
    std::vector<RouteTarget> import_targets, export_targets;
    // Symmetric IRB: the IP-VRF whose L3VNI, router MAC and export targets MAC/IP
    // routes carry.
    std::string vrf;
    uint32_t l3vni = 0;
    MacAddr router_mac;
    std::vector<RouteTarget> vrf_export_targets;
    std::map<MacAddr, MacEntry> macs;
    std::map<EvpnNlri, IpAddr, EvpnKeyLess> imet; // imported type 3 routes: the flood list
    std::set<IpAddr> flood_list() const;
    // Everything that decides the local routes and the imports.
    bool same_settings(const MacVrf &o) const {
        return std::tie(vni, rd, import_targets, export_targets, vrf, l3vni, router_mac,
                        vrf_export_targets) == std::tie(o.vni, o.rd, o.import_targets,
                                                        o.export_targets, o.vrf, o.l3vni,
                                                        o.router_mac, o.vrf_export_targets);
    }
};

// A path of an IP-VRF Loc-RIB: the imported EVPN route's path and its L3VNI.
struct VrfCandidate {
    Path path;
    uint32_t vni = 0;
    EvpnNlri key;
};

struct IpVrf {
    uint32_t id = 0; // RibChange::vrf; stable across reloads for a name
    EvpnVrf cfg;
    RouteDistinguisher rd;
    std::vector<RouteTarget> import_targets, export_targets;
    // Candidates in preference order; the first n_best are the best path and its ECMP
    // siblings.
    struct Entry {
        std::vector<VrfCandidate> cands;
        uint16_t n_best = 0;
    };
    std::map<Prefix, Entry> routes;
};

// What the dataplane must learn about the overlay from EVPN: where remote MACs are
// (type 2) and which VTEPs receive the BUM frames of a VNI (type 3). The IP-VRF routes go
// through Rib::on_change.
struct EvpnL2Change {
    enum Kind : uint8_t {
        MacRemote,   // mac is behind vtep (new, moved, or its IPs changed)
        MacGone,     // mac is no longer at a remote VTEP (withdrawn, or moved here)
        FloodAdd,    // vtep joins the VNI's flood list
        FloodRemove, // vtep leaves it
    };
    Kind kind;
    uint32_t vni = 0;
    MacAddr mac;
    IpAddr vtep;
    std::vector<IpAddr> ips; // MacRemote: the IPs announced with the MAC (ARP/ND suppression)
};

// The MacRemote change that puts `mac` of `m` behind its owner VTEP (e.owner is Remote),
// with the IPs that VTEP announced with it.
EvpnL2Change remote_mac_change(const MacVrf &m, const MacAddr &mac, const MacEntry &e);

enum class MacResult : uint8_t {
    Advertised, // originated (with a higher sequence number if it moved here)
    Refused,    // a remote VTEP holds it as a sticky MAC
    Duplicate,  // frozen by duplicate detection: recorded, not advertised
    UnknownVni,
};
const char *mac_result_name(MacResult r);

class EvpnTables {
  public:
    explicit EvpnTables(Rib &rib) : rib_(rib) {}
    ~EvpnTables();
    EvpnTables(const EvpnTables &) = delete;
    EvpnTables &operator=(const EvpnTables &) = delete;

    // Applies a configuration, the first or a reloaded one: VNIs and VRFs whose
    // settings changed are rebuilt (local routes re-originated, imports redone), the
    // others are left alone.
    void configure(const BgpConfig &cfg);
    // Listener of the global table (Rib::on_change).
    void on_rib_change(const RibChange &ch);
    void on_l2_change(std::function<void(const EvpnL2Change &)> cb) {
        l2_listeners_.push_back(std::move(cb));
    }

    MacResult originate_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip,
                               bool sticky);
    bool withdraw_mac_ip(uint32_t vni, const MacAddr &mac, std::optional<IpAddr> ip);
    // Unfreezes a duplicate MAC: its move history is forgotten.
    bool clear_duplicate(uint32_t vni, const MacAddr &mac);

    const std::map<uint32_t, MacVrf> &mac_vrfs() const { return macs_; }
    const std::map<std::string, IpVrf> &ip_vrfs() const { return vrfs_; }
    const IpAddr &vtep() const { return vtep_; }
    uint64_t moves() const { return moves_; }

  private:
    MacVrf make_mac_vrf(const BgpConfig &cfg, const L2Vni &v) const;
    IpVrf make_ip_vrf(const BgpConfig &cfg, const EvpnVrf &v);
    // Forgets every imported route of a table (a VRF's Loc-RIB tells its listeners).
    void clear_imports(MacVrf &m);
    void clear_imports(IpVrf &v);
    // Imports every remote route of the global table into one table.
    void import_all(MacVrf *m, IpVrf *v);
    // Puts the global table's best path for `key` (null: none) into every table that
    // imports it and takes it out of the others; `restricted`: only only_m / only_v.
    void apply(const EvpnNlri &key, const Path *best, MacVrf *only_m, IpVrf *only_v,
               bool restricted);

    // Local routes
    void originate_imet(const MacVrf &m, bool withdraw);
    void originate_prefixes(const IpVrf &v, bool withdraw);
    void advertise_mac(const MacVrf &m, const MacAddr &mac, const MacEntry &e, bool withdraw);
    EvpnNlri mac_route(const MacVrf &m, const MacAddr &mac, const std::optional<IpAddr> &ip) const;
    void install(const EvpnNlri &key, PathAttrs &&attrs, bool withdraw);
    PathAttrs base_attrs(const std::vector<RouteTarget> &targets) const;

    // MAC mobility: decides who owns the MAC after a change, withdraws a local MAC
    // that moved away, counts moves and detects duplicates.
    void resolve(MacVrf &m, const MacAddr &mac, MacEntry &e);
    void tell(const EvpnL2Change &c);
    // Tells the listeners where the MAC is after a change (`was_remote`: before it).
    void tell_mac(const MacVrf &m, const MacAddr &mac, const MacEntry *e, bool was_remote);
    void tell_flood(const MacVrf &m, const std::set<IpAddr> &before);

    // IP-VRF Loc-RIB: sets (or with nullopt removes) the candidate imported from `key`,
    // selects again and tells the listeners if the best set changed.
    void vrf_set(IpVrf &v, const Prefix &p, const EvpnNlri &key, std::optional<VrfCandidate> c);

    Rib &rib_;
    IpAddr vtep_;
    uint32_t asn_ = 0;
    uint32_t dup_max_moves_ = 5;
    uint32_t dup_window_s_ = 180;
    std::map<uint32_t, MacVrf> macs_;
    std::map<std::string, IpVrf> vrfs_;
    std::map<std::string, uint32_t> vrf_ids_;
    uint64_t moves_ = 0;
    std::vector<std::function<void(const EvpnL2Change &)>> l2_listeners_;
};

} // namespace vleaf::bgp
