// BGP-4 message data model and codec (RFC 4271, 4760, 6793, 7606, 7911, 8950, 9072,
// EVPN RFC 7432/8365/9136). Decoders take message bodies (the bytes after the 19-byte
// header), never read out of bounds and report errors as the NOTIFICATION to send or
// as an RFC 7606 action; encoders append whole messages (header included) to a buffer.
#pragma once

#include "vleaf/addr.hpp"

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vleaf::bgp {

using Bytes = std::vector<uint8_t>;
using ByteView = std::span<const uint8_t>;

constexpr size_t kHeaderLen = 19;
constexpr size_t kMaxMessageLen = 4096;          // RFC 4271
constexpr size_t kMaxExtendedMessageLen = 65535; // RFC 8654, when both sides advertise it
constexpr uint16_t kAsTrans = 23456;             // RFC 6793

enum class MsgType : uint8_t {
    Open = 1,
    Update = 2,
    Notification = 3,
    Keepalive = 4,
    RouteRefresh = 5,
};

// ---------------------------------------------------------------------------------------
// Address families

enum class Afi : uint16_t { Ipv4 = 1, Ipv6 = 2, L2vpn = 25 };
enum class Safi : uint8_t { Unicast = 1, Multicast = 2, Evpn = 70 };

// Raw AFI/SAFI pair as carried on the wire; may name families this codec does not parse.
struct AfiSafi {
    uint16_t afi = 0;
    uint8_t safi = 0;
    auto operator<=>(const AfiSafi &) const = default;
    std::string str() const; // "ipv4-unicast", "l2vpn-evpn", or "afi/safi"
};

// The families whose NLRI this codec understands; used as an array index.
enum class RouteFamily : uint8_t { Ipv4Unicast = 0, Ipv6Unicast = 1, Evpn = 2 };
constexpr size_t kRouteFamilies = 3;

AfiSafi to_afi_safi(RouteFamily f);
std::optional<RouteFamily> to_route_family(AfiSafi as);
const char *family_name(RouteFamily f); // "ipv4-unicast", "ipv6-unicast", "l2vpn-evpn"

// ---------------------------------------------------------------------------------------
// NOTIFICATION codes and subcodes (RFC 4271 §4.5, 6.x; RFC 4486; RFC 7313)

namespace err {
constexpr uint8_t kHeader = 1, kOpen = 2, kUpdate = 3, kHoldTimerExpired = 4, kFsm = 5, kCease = 6,
                  kRouteRefresh = 7;
// Message Header Error subcodes
constexpr uint8_t kConnNotSynchronized = 1, kBadMessageLength = 2, kBadMessageType = 3;
// OPEN Message Error subcodes
constexpr uint8_t kUnspecific = 0, kUnsupportedVersion = 1, kBadPeerAs = 2, kBadBgpId = 3,
                  kUnsupportedOptParam = 4, kUnacceptableHoldTime = 6, kUnsupportedCapability = 7;
// UPDATE Message Error subcodes
constexpr uint8_t kMalformedAttrList = 1, kUnrecognizedWellKnown = 2, kMissingWellKnown = 3,
                  kAttrFlagsError = 4, kAttrLengthError = 5, kInvalidOrigin = 6,
                  kInvalidNextHop = 8, kOptionalAttrError = 9, kInvalidNetworkField = 10,
                  kMalformedAsPath = 11;
// Cease subcodes (RFC 4486, 8538)
constexpr uint8_t kMaxPrefixes = 1, kAdminShutdown = 2, kPeerDeconfigured = 3, kAdminReset = 4,
                  kConnectionRejected = 5, kOtherConfigChange = 6, kCollisionResolution = 7,
                  kOutOfResources = 8, kHardReset = 9;
// ROUTE-REFRESH Message Error subcode (RFC 7313)
constexpr uint8_t kInvalidRouteRefreshLength = 1;
} // namespace err

struct Notification {
    uint8_t code = 0;
    uint8_t subcode = 0;
    Bytes data;
    bool operator==(const Notification &) const = default;
    std::string str() const; // "UPDATE Message Error/Malformed AS_PATH (3/11) data 02 01"
};

// ---------------------------------------------------------------------------------------
// Message header

struct Header {
    uint16_t length = 0; // whole message, header included
    MsgType type = MsgType::Keepalive;
};

struct HeaderResult {
    Header header;
    std::optional<Notification> error; // 1/1, 1/2 (data: the length) or 1/3 (data: the type)
};

// `bytes` must hold at least kHeaderLen bytes. Checks the marker, the length against
// max_len and against the per-type minimum/fixed lengths, and the type.
HeaderResult decode_header(ByteView bytes, size_t max_len);

// ---------------------------------------------------------------------------------------
// OPEN and capabilities (RFC 5492)

namespace cap {
constexpr uint8_t kMultiprotocol = 1, kRouteRefresh = 2, kExtendedNextHop = 5, kExtendedMessage = 6,
                  kGracefulRestart = 64, kFourOctetAs = 65, kAddPath = 69,
                  kEnhancedRouteRefresh = 70;
}

struct GracefulRestartCap {
    struct Family {
        AfiSafi family;
        bool forwarding_preserved = false; // F bit
        auto operator<=>(const Family &) const = default;
    };
    bool restarting = false;   // R bit
    bool notification = false; // N bit (RFC 8538)
    uint16_t restart_time = 0; // seconds, 12 bits
    std::vector<Family> families;
    auto operator<=>(const GracefulRestartCap &) const = default;
};

struct AddPathCap {
    enum Mode : uint8_t { Receive = 1, Send = 2, Both = 3 };
    AfiSafi family;
    uint8_t mode = Receive;
    auto operator<=>(const AddPathCap &) const = default;
};

struct ExtendedNextHopCap { // RFC 8950: NLRI of `family` may carry a next hop of nexthop_afi
    uint16_t nlri_afi = 0;
    uint16_t nlri_safi = 0;
    uint16_t nexthop_afi = 0;
    auto operator<=>(const ExtendedNextHopCap &) const = default;
};

struct RawCapability { // kept as received (value ≤ 255 octets) to be logged and shown
    uint8_t code = 0;
    Bytes value;
    auto operator<=>(const RawCapability &) const = default;
};

struct Capabilities {
    std::vector<AfiSafi> multiprotocol;
    bool route_refresh = false;
    bool enhanced_route_refresh = false;
    bool extended_message = false;
    std::optional<uint32_t> four_octet_as;
    std::optional<GracefulRestartCap> graceful_restart;
    std::vector<AddPathCap> add_path;
    std::vector<ExtendedNextHopCap> extended_nexthop;
    std::vector<RawCapability> unknown;
    bool operator==(const Capabilities &) const = default;
};

struct Open {
    uint8_t version = 4;
    uint16_t my_as = 0; // the 2-octet field: AS_TRANS when the AS needs 4 octets
    uint16_t hold_time = 0;
    uint32_t bgp_id = 0; // host byte order
    Capabilities caps;
    // Encode the optional parameters in the RFC 9072 extended format even when they
    // would fit in 255 bytes (set on decode when the peer used it). The encoder switches
    // to it on its own when they do not fit.
    bool extended_params = false;

    uint32_t asn() const { return caps.four_octet_as ? *caps.four_octet_as : my_as; }
    bool operator==(const Open &) const = default;
};

struct OpenResult {
    Open open;
    std::optional<Notification> error; // 2/0, 2/1, 2/3, 2/4, 2/6 ...
};

// Syntax and the checks that need no configuration: version (2/1), hold time 1 or 2
// (2/6), BGP identifier 0 (2/3), unknown optional parameters (2/4), malformed
// parameters or capabilities (2/0). Peer AS and collision checks belong to the session.
OpenResult decode_open(ByteView body);

// Fills my_as (AS_TRANS above 65535) and the four-octet AS capability from `asn`.
Open make_open(uint32_t asn, uint16_t hold_time, uint32_t bgp_id, Capabilities caps);

// ---------------------------------------------------------------------------------------
// Per-session codec context, derived from both OPENs.

struct CodecContext {
    bool four_octet_as = true; // both sides advertised RFC 6793
    bool ebgp = false;         // RFC 7606 attribute-discard of LOCAL_PREF/ORIGINATOR_ID/...
    bool extended_message = false;
    std::array<bool, kRouteFamilies> add_path_rx{};                // NLRI we receive carry path ids
    std::array<bool, kRouteFamilies> add_path_tx{};                // NLRI we send carry path ids
    std::array<bool, kRouteFamilies> families{true, false, false}; // negotiated
    // RFC 8950: the peer accepts IPv4 unicast with an IPv6 next hop, so we may send it.
    // The decoder accepts such next hops regardless.
    bool extended_nexthop_ipv4 = false;

    size_t max_message_len() const {
        return extended_message ? kMaxExtendedMessageLen : kMaxMessageLen;
    }
};

// What the two OPENs agree on (RFC 4760 §8: no MP capability at all means IPv4 unicast).
CodecContext negotiate(const Open &local, const Open &remote, bool ebgp);

// ---------------------------------------------------------------------------------------
// Route distinguishers and route targets (RFC 4364 §4.2, RFC 4360/5668)

// Types 0 (2-octet AS : 4-octet number), 1 (IPv4 : 2-octet number) and 2 (4-octet AS :
// 2-octet number). Other types keep bytes 2..7 in admin (4) + assigned (2).
struct RouteDistinguisher {
    uint16_t type = 0;
    uint32_t admin = 0; // AS number, or IPv4 address in host byte order
    uint32_t assigned = 0;

    // "65000:100" (type 0), "10.0.0.1:5" (type 1), "4200000000:7" or "65000L:7" (type 2).
    static std::optional<RouteDistinguisher> parse(std::string_view text);
    std::string str() const;
    auto operator<=>(const RouteDistinguisher &) const = default;
};

// Route target extended community, types 0x00/0x01/0x02 subtype 0x02; same textual forms.
struct RouteTarget {
    uint8_t type = 0; // 0: AS2:N32, 1: IPv4:N16, 2: AS4:N16
    uint32_t admin = 0;
    uint32_t assigned = 0;
    static std::optional<RouteTarget> parse(std::string_view text);
    std::string str() const;
    auto operator<=>(const RouteTarget &) const = default;
};

constexpr uint16_t kTunnelVxlan = 8; // RFC 9012 tunnel type / encapsulation ext community

struct MacMobility {
    bool sticky = false;
    uint32_t sequence = 0;
    auto operator<=>(const MacMobility &) const = default;
};

// One extended community as the 8 wire octets read big-endian.
struct ExtCommunity {
    uint64_t raw = 0;

    uint8_t type() const { return uint8_t(raw >> 56); }
    uint8_t subtype() const { return uint8_t(raw >> 48); }
    bool transitive() const { return (type() & 0x40) == 0; }

    static ExtCommunity route_target(const RouteTarget &rt);
    static ExtCommunity encapsulation(uint16_t tunnel_type); // 0x03 0x0c
    static ExtCommunity router_mac(const MacAddr &mac);      // 0x06 0x03 (RFC 9135)
    static ExtCommunity mac_mobility(const MacMobility &mm); // 0x06 0x00 (RFC 7432)

    std::optional<RouteTarget> as_route_target() const;
    std::optional<uint16_t> as_encapsulation() const;
    std::optional<MacAddr> as_router_mac() const;
    std::optional<MacMobility> as_mac_mobility() const;
    std::string str() const; // "rt 65000:10", "encap 8", "rmac 00:11:..", "raw 0x..."
    auto operator<=>(const ExtCommunity &) const = default;
};

// ---------------------------------------------------------------------------------------
// Path attributes

namespace attr {
constexpr uint8_t kOrigin = 1, kAsPath = 2, kNextHop = 3, kMed = 4, kLocalPref = 5,
                  kAtomicAggregate = 6, kAggregator = 7, kCommunities = 8, kOriginatorId = 9,
                  kClusterList = 10, kMpReach = 14, kMpUnreach = 15, kExtCommunities = 16,
                  kAs4Path = 17, kAs4Aggregator = 18, kPmsiTunnel = 22, kTunnelEncap = 23,
                  kLargeCommunities = 32;
// Flag bits
constexpr uint8_t kOptional = 0x80, kTransitive = 0x40, kPartial = 0x20, kExtendedLength = 0x10;
} // namespace attr

enum class Origin : uint8_t { Igp = 0, Egp = 1, Incomplete = 2 };

enum class SegmentType : uint8_t { AsSet = 1, AsSequence = 2, ConfedSequence = 3, ConfedSet = 4 };

struct AsSegment {
    SegmentType type = SegmentType::AsSequence;
    std::vector<uint32_t> asns;
    auto operator<=>(const AsSegment &) const = default;
};

struct AsPath {
    std::vector<AsSegment> segments;

    // RFC 4271 §9.1.2.2 a: a set counts 1, confederation segments count 0.
    size_t length() const;
    bool contains(uint32_t asn) const;
    std::optional<uint32_t> first_as() const; // leftmost AS of a leading AS_SEQUENCE
    std::string str() const;                  // "65001 65002 {65003,65004} (65010)"
    auto operator<=>(const AsPath &) const = default;
};

struct Aggregator {
    uint32_t asn = 0;
    uint32_t address = 0; // IPv4, host byte order
    auto operator<=>(const Aggregator &) const = default;
};

struct LargeCommunity {
    uint32_t global = 0, local1 = 0, local2 = 0;
    auto operator<=>(const LargeCommunity &) const = default;
};

// RFC 6514 §5; for VXLAN (RFC 8365 §5.1.3) `label` holds the VNI in all 24 bits.
struct PmsiTunnel {
    static constexpr uint8_t kIngressReplication = 6;
    uint8_t flags = 0;
    uint8_t tunnel_type = kIngressReplication;
    uint32_t label = 0; // 24-bit field value
    Bytes tunnel_id;    // for ingress replication: the endpoint IPv4/IPv6 address

    static PmsiTunnel ingress_replication(uint32_t vni, const IpAddr &endpoint);
    std::optional<IpAddr> endpoint() const; // for ingress replication with a 4/16-byte id
    auto operator<=>(const PmsiTunnel &) const = default;
};

// RFC 9012. Parsed and validated: TLV/sub-TLV lengths nest exactly, known sub-TLVs have
// their fixed sizes. Sub-TLV values are kept as bytes.
struct TunnelEncap {
    struct SubTlv {
        static constexpr uint8_t kEncapsulation = 1, kProtocolType = 2, kColor = 4,
                                 kEgressEndpoint = 6, kUdpDestPort = 8;
        uint8_t type = 0;
        Bytes value;
        auto operator<=>(const SubTlv &) const = default;
    };
    struct Tunnel {
        uint16_t type = 0;
        std::vector<SubTlv> sub_tlvs;
        auto operator<=>(const Tunnel &) const = default;
    };
    std::vector<Tunnel> tunnels;
    auto operator<=>(const TunnelEncap &) const = default;
};

// An attribute the codec does not interpret. Only optional transitive ones are kept
// (optional non-transitive unknowns are dropped, RFC 4271 §5); the decoder sets the
// Partial bit in `flags` already, as it must be on any re-advertisement.
struct RawAttr {
    uint8_t flags = 0;
    uint8_t type = 0;
    Bytes value;
    auto operator<=>(const RawAttr &) const = default;
};

// Everything but MP_REACH_NLRI / MP_UNREACH_NLRI, which live in Update.
struct PathAttrs {
    std::optional<Origin> origin;
    // AS numbers are always 4-octet here: toward a 2-octet-only peer AS_PATH/AGGREGATOR
    // are encoded with AS_TRANS plus AS4_PATH/AS4_AGGREGATOR, and merged back on decode.
    std::optional<AsPath> as_path;
    std::optional<uint32_t> next_hop; // NEXT_HOP (IPv4, host byte order)
    std::optional<uint32_t> med;
    std::optional<uint32_t> local_pref;
    bool atomic_aggregate = false;
    std::optional<Aggregator> aggregator;
    std::vector<uint32_t> communities;
    std::optional<uint32_t> originator_id; // host byte order
    std::vector<uint32_t> cluster_list;    // host byte order
    std::vector<ExtCommunity> ext_communities;
    std::vector<LargeCommunity> large_communities;
    std::optional<PmsiTunnel> pmsi_tunnel;
    std::optional<TunnelEncap> tunnel_encap;
    std::vector<RawAttr> unknown; // sorted by type

    auto operator<=>(const PathAttrs &) const = default;
};

// ---------------------------------------------------------------------------------------
// NLRI

struct PrefixNlri {
    uint32_t path_id = 0; // RFC 7911, 0 when add-path is not in use
    Prefix prefix;
    auto operator<=>(const PrefixNlri &) const = default;
};

using Esi = std::array<uint8_t, 10>;

// EVPN labels are the 3-octet field value; for VXLAN (RFC 8365 §5.1.3) that is the VNI.
struct EvpnMacIp { // route type 2
    RouteDistinguisher rd;
    Esi esi{};
    uint32_t eth_tag = 0;
    MacAddr mac;
    std::optional<IpAddr> ip;
    uint32_t label1 = 0;            // L2VNI
    std::optional<uint32_t> label2; // L3VNI (symmetric IRB)
    auto operator<=>(const EvpnMacIp &) const = default;
};

struct EvpnImet { // route type 3
    RouteDistinguisher rd;
    uint32_t eth_tag = 0;
    IpAddr originator;
    auto operator<=>(const EvpnImet &) const = default;
};

struct EvpnIpPrefix { // route type 5 (RFC 9136)
    RouteDistinguisher rd;
    Esi esi{};
    uint32_t eth_tag = 0;
    Prefix prefix;
    IpAddr gateway;     // same family as prefix; unspecified when absent
    uint32_t label = 0; // L3VNI
    auto operator<=>(const EvpnIpPrefix &) const = default;
};

struct EvpnOther { // types 1, 4 and any other: kept opaque, not imported
    uint8_t type = 0;
    Bytes value;
    auto operator<=>(const EvpnOther &) const = default;
};

struct EvpnNlri {
    uint32_t path_id = 0;
    std::variant<EvpnMacIp, EvpnImet, EvpnIpPrefix, EvpnOther> route;

    uint8_t route_type() const;
    // FRR-style key: "[2]:[0]:[48]:[00:11:22:33:44:55]:[32]:[10.0.0.1]" with the RD first.
    std::string str() const;
    auto operator<=>(const EvpnNlri &) const = default;
};

// Orders EVPN routes by their BGP route key only (RFC 7432 7.2, RFC 9136 3.2): RD,
// Ethernet tag and MAC/IP (type 2), originator (type 3) or prefix (type 5). Labels, ESI
// and gateway are not part of the key: a route re-announced with another label
// replaces the old one.
struct EvpnKeyLess {
    bool operator()(const EvpnNlri &a, const EvpnNlri &b) const;
};

struct NextHop {
    IpAddr addr;
    std::optional<IpAddr> link_local; // IPv6 second next hop (RFC 2545)
    auto operator<=>(const NextHop &) const = default;
};

struct MpReach {
    AfiSafi family;
    NextHop next_hop;
    std::vector<PrefixNlri> prefixes; // IPv4/IPv6 unicast
    std::vector<EvpnNlri> evpn;       // L2VPN EVPN
    bool operator==(const MpReach &) const = default;
};

struct MpUnreach {
    AfiSafi family;
    std::vector<PrefixNlri> prefixes;
    std::vector<EvpnNlri> evpn;
    bool operator==(const MpUnreach &) const = default;
};

struct Update {
    std::vector<PrefixNlri> withdrawn; // IPv4 unicast, classic field
    PathAttrs attrs;
    std::vector<PrefixNlri> nlri; // IPv4 unicast, classic field
    std::optional<MpReach> mp_reach;
    std::optional<MpUnreach> mp_unreach;

    void clear(); // keeps vector capacity for reuse by decode_update
    bool operator==(const Update &) const = default;
};

// The family an End-of-RIB marker (RFC 4724 §2) stands for, if `u` is one.
std::optional<AfiSafi> end_of_rib(const Update &u);

// ---------------------------------------------------------------------------------------
// UPDATE decoding with RFC 7606 outcomes, most severe wins.

enum class UpdateAction : uint8_t {
    Ok,               // use as is
    AttributeDiscard, // use as is: the offending attributes were left out of `attrs`
    TreatAsWithdraw,  // withdraw every NLRI in nlri, mp_reach and the withdrawn fields
    AfiSafiDisable,   // RFC 4760 §7 / 7606 §3 j: disable `family` (or reset the session)
    SessionReset,     // send `notification`, close the session
};

struct UpdateResult {
    UpdateAction action = UpdateAction::Ok;
    Update update; // everything that could be parsed
    // The NOTIFICATION RFC 4271 prescribes for the error. Send it only for SessionReset
    // (or AfiSafiDisable when the family cannot be disabled); otherwise it is for logs.
    std::optional<Notification> notification;
    AfiSafi family;                 // for AfiSafiDisable
    std::vector<uint8_t> discarded; // attribute types left out (AttributeDiscard)
    std::string reason;             // the most severe error: which attribute, what fault
};

// `body` is the UPDATE after the header. Reuses `out`'s vectors. With
// ctx.four_octet_as false, AS_PATH/AGGREGATOR are 2-octet on the wire and AS4_PATH /
// AS4_AGGREGATOR are merged into as_path/aggregator (RFC 6793 §4.2.3).
void decode_update(ByteView body, const CodecContext &ctx, UpdateResult &out);
UpdateResult decode_update(ByteView body, const CodecContext &ctx);

// ---------------------------------------------------------------------------------------
// NOTIFICATION, ROUTE-REFRESH

std::optional<Notification> decode_notification(ByteView body); // nullopt: shorter than 2

struct RouteRefresh {
    enum Subtype : uint8_t { Normal = 0, BeginOfRib = 1, EndOfRib = 2 }; // RFC 7313
    AfiSafi family;
    uint8_t subtype = Normal;
    bool operator==(const RouteRefresh &) const = default;
};

struct RouteRefreshResult {
    RouteRefresh refresh;
    std::optional<Notification> error; // 7/1 on a bad length
};
RouteRefreshResult decode_route_refresh(ByteView body);

// ---------------------------------------------------------------------------------------
// Encoders: each appends one or more complete messages to `out`.

void encode_open(const Open &open, Bytes &out);
void encode_keepalive(Bytes &out);
void encode_notification(const Notification &n, Bytes &out);
void encode_route_refresh(const RouteRefresh &rr, Bytes &out);

// One UPDATE exactly as given (with ctx deciding 2/4-octet AS and path ids). Returns
// false, leaving `out` unchanged, if it exceeds ctx.max_message_len().
bool encode_update(const Update &u, const CodecContext &ctx, Bytes &out);

// Announce many routes sharing `attrs` and `nh` in as few UPDATEs as fit; returns the
// number of messages. IPv4 unicast uses the classic NEXT_HOP/NLRI fields unless `nh` is
// IPv6 (RFC 8950), the others MP_REACH_NLRI. attrs.next_hop is ignored. Returns 0 and
// writes nothing when the attributes leave no room for a single route.
size_t encode_announce(RouteFamily family, const PathAttrs &attrs, const NextHop &nh,
                       std::span<const PrefixNlri> routes, const CodecContext &ctx, Bytes &out);
size_t encode_announce(const PathAttrs &attrs, const NextHop &nh, std::span<const EvpnNlri> routes,
                       const CodecContext &ctx, Bytes &out);
size_t encode_withdraw(RouteFamily family, std::span<const PrefixNlri> routes,
                       const CodecContext &ctx, Bytes &out);
size_t encode_withdraw(std::span<const EvpnNlri> routes, const CodecContext &ctx, Bytes &out);
void encode_end_of_rib(RouteFamily family, Bytes &out);

} // namespace vleaf::bgp
