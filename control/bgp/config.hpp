// The `bgp:` section of the vleaf configuration. Parsed from a YAML::Node so that the
// main config loader and the standalone vleaf-bgpd share one parser; errors name the
// field path ("bgp.peers[1].remote_as: ...").
#pragma once

#include "control/bgp/message.hpp"
#include "vleaf/addr.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace vleaf::bgp {

struct BgpConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The inverse of family_name(RouteFamily): "ipv4-unicast", "ipv6-unicast", "l2vpn-evpn".
std::optional<RouteFamily> family_from_name(const std::string &name);

using FamilyMask = uint8_t; // bit (1 << RouteFamily)
inline constexpr FamilyMask family_bit(RouteFamily f) {
    return FamilyMask(1u << unsigned(f));
}

// A standard community as 32 bits (AS << 16 | value).
using Community = uint32_t;
std::optional<Community> parse_community(const std::string &text); // "65000:100"
std::string community_str(Community c);

struct PrefixListEntry {
    Prefix prefix;
    uint8_t ge = 0; // 0: exactly prefix.len unless le is set
    uint8_t le = 0;
    bool permit = true;

    bool matches(const Prefix &p) const;

    bool operator==(const PrefixListEntry &) const = default;
};

// Import and export policy of one peer: the first prefix-list entry that matches
// decides; with a non-empty list, an unmatched prefix is denied.
struct Policy {
    std::vector<PrefixListEntry> prefix_list;
    std::vector<Community> match_community; // route must carry all of them
    std::vector<Community> set_community;   // added
    std::optional<uint32_t> set_local_pref;
    std::optional<uint32_t> set_med;

    bool empty() const;

    bool operator==(const Policy &) const = default;
};

struct PeerTimers {
    uint16_t hold = 90;
    uint16_t keepalive = 30;
    uint16_t connect_retry = 10; // shorter than RFC 4271's 120 s: peers come and go

    bool operator==(const PeerTimers &) const = default;
};

struct PeerConfig {
    std::optional<IpAddr> address; // a single neighbor ...
    std::optional<Prefix> range;   // ... or dynamic neighbors from this prefix (passive)
    uint32_t remote_as = 0;
    std::optional<uint32_t> local_as; // default: the speaker's
    std::string description;
    bool passive = false;
    std::string password;      // TCP-MD5 (RFC 2385)
    bool ttl_security = false; // GTSM (RFC 5082)
    uint8_t multihop = 0;      // eBGP TTL; 0: directly connected (TTL 1)
    std::optional<IpAddr> update_source;
    uint16_t port = 179; // peer's port for active connections
    PeerTimers timers;
    std::vector<RouteFamily> families; // default: the family of the address
    bool rr_client = false;
    bool next_hop_self = false;
    uint32_t max_prefix = 0; // 0: unlimited
    bool graceful_restart = true;
    uint16_t restart_time = 120;
    // RFC 7313 4: paths the peer marked stale with a BoRR and did not send again are
    // purged at its EoRR, or after this many seconds without one (FRR's stale-path time).
    uint16_t refresh_stale_time = 360;
    Policy import_policy;
    Policy export_policy;

    std::string name() const; // address or range, for logs

    bool operator==(const PeerConfig &) const = default;
};

struct Announce {
    Prefix prefix;
    std::vector<Community> communities;
    std::optional<uint32_t> local_pref;
    std::optional<uint32_t> med;
    std::optional<IpAddr> next_hop; // default: the session's local address

    bool operator==(const Announce &) const = default;
};

// An L2VNI (MAC-VRF, RFC 7432/8365): EVPN type 3 announces it, type 2 carries its MACs.
// RD and route targets default to FRR's automatic values: RD router-id:VNI, RT AS:VNI
// (the low 16 bits of the AS, type 0).
struct L2Vni {
    uint32_t vni = 0;
    std::optional<RouteDistinguisher> rd;
    std::vector<RouteTarget> import_targets, export_targets; // empty: automatic
    std::string vrf; // IP-VRF for symmetric IRB: MAC/IP routes carry its L3VNI and RTs

    bool operator==(const L2Vni &) const = default;
};

// An IP-VRF with an L3VNI (RFC 9135/9136): its prefixes go out as EVPN type 5 with the
// router MAC; type 5 and type 2 MAC/IP routes with matching targets form its Loc-RIB.
struct EvpnVrf {
    std::string name;
    uint32_t l3vni = 0;
    MacAddr router_mac;
    std::optional<RouteDistinguisher> rd;
    std::vector<RouteTarget> import_targets, export_targets; // empty: automatic (AS:L3VNI)
    std::vector<Prefix> prefixes;                            // announced as type 5

    bool operator==(const EvpnVrf &) const = default;
};

struct EvpnConfig {
    std::optional<IpAddr> vtep; // our VXLAN tunnel endpoint; default the router id
    std::vector<L2Vni> vnis;
    std::vector<EvpnVrf> vrfs;
    // RFC 7432 15.1 duplicate MAC detection (FRR's defaults): this many moves within the
    // window freeze the MAC.
    uint32_t dup_max_moves = 5;
    uint32_t dup_window_s = 180;

    bool operator==(const EvpnConfig &) const = default;
    const L2Vni *vni(uint32_t v) const;
    const EvpnVrf *vrf(const std::string &name) const;
};

struct BgpConfig {
    uint32_t asn = 0;
    IpAddr router_id;
    std::optional<uint32_t> cluster_id; // route reflector cluster; default router id
    std::string listen_address = "::";  // "" disables listening
    uint16_t listen_port = 179;
    uint16_t max_paths = 1;       // ECMP width
    bool multipath_relax = false; // ECMP across different neighbor AS
    bool always_compare_med = false;
    // After our own restart (Speaker::set_restarting): how long route selection may wait
    // for End-of-RIB from the peers (RFC 4724 4.1; FRR's select-defer-time).
    uint16_t select_defer_time = 360;
    std::vector<PeerConfig> peers;
    std::vector<Announce> announce;
    EvpnConfig evpn;

    // What the speaker uses when the configuration leaves it automatic.
    IpAddr vtep() const { return evpn.vtep.value_or(router_id); }
    RouteDistinguisher auto_rd(uint32_t vni) const;
    RouteTarget auto_rt(uint32_t vni) const;
};

// Parses `node` (the value of the `bgp:` key). Throws BgpConfigError with
// "<path>.<field>: <reason>" where path is e.g. "bgp".
BgpConfig parse_config(const YAML::Node &node, const std::string &path = "bgp");

} // namespace vleaf::bgp
