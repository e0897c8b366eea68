// BGP message codec: round trips, messages captured from real peers, RFC 7606 outcomes
// and malformed inputs per NOTIFICATION code.
#include "control/bgp/message.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

Bytes hex(std::string_view h) {
    Bytes b;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
        b.push_back(uint8_t(std::stoul(std::string(h.substr(i, 2)), nullptr, 16)));
    return b;
}

Bytes cat(std::initializer_list<Bytes> parts) {
    Bytes b;
    for (auto &p : parts) b.insert(b.end(), p.begin(), p.end());
    return b;
}

ByteView body(const Bytes &msg) {
    return ByteView(msg).subspan(kHeaderLen);
}

CodecContext all_families(bool ebgp = false) {
    CodecContext c;
    c.families = {true, true, true};
    c.ebgp = ebgp;
    return c;
}

IpAddr ip(const char *s) {
    return *IpAddr::parse(s);
}
Prefix pfx(const char *s) {
    return *Prefix::parse(s);
}
MacAddr mac(const char *s) {
    return *MacAddr::parse(s);
}
RouteDistinguisher rd(const char *s) {
    return *RouteDistinguisher::parse(s);
}

// An UPDATE body from its three fields.
Bytes update_body(const Bytes &withdrawn, const Bytes &attrs, const Bytes &nlri) {
    Bytes b{uint8_t(withdrawn.size() >> 8), uint8_t(withdrawn.size())};
    b.insert(b.end(), withdrawn.begin(), withdrawn.end());
    b.push_back(uint8_t(attrs.size() >> 8));
    b.push_back(uint8_t(attrs.size()));
    b.insert(b.end(), attrs.begin(), attrs.end());
    b.insert(b.end(), nlri.begin(), nlri.end());
    return b;
}

Bytes pa(uint8_t flags, uint8_t type, const Bytes &v) {
    Bytes b{flags, type};
    if (flags & attr::kExtendedLength) b.push_back(uint8_t(v.size() >> 8));
    b.push_back(uint8_t(v.size()));
    b.insert(b.end(), v.begin(), v.end());
    return b;
}

const Bytes kOrigin = pa(0x40, 1, {0});
const Bytes kAsPath = pa(0x40, 2, {2, 1, 0, 0, 0xfd, 0xe9}); // AS_SEQUENCE 65001
const Bytes kNextHop = pa(0x40, 3, {10, 0, 0, 1});
const Bytes kNlri = {24, 192, 0, 2}; // 192.0.2.0/24
const Bytes kBase = cat({kOrigin, kAsPath, kNextHop});

UpdateResult decode(const Bytes &b, const CodecContext &ctx = all_families()) {
    return decode_update(b, ctx);
}

// Decodes one complete message of the expected type, checking the header on the way.
UpdateResult decode_msg(ByteView msg, const CodecContext &ctx) {
    auto h = decode_header(msg, ctx.max_message_len());
    EXPECT_FALSE(h.error) << h.error->str();
    EXPECT_EQ(h.header.type, MsgType::Update);
    EXPECT_EQ(h.header.length, msg.size());
    return decode_update(msg.subspan(kHeaderLen), ctx);
}

// Splits a buffer of back-to-back messages.
std::vector<ByteView> split(const Bytes &buf) {
    std::vector<ByteView> out;
    size_t i = 0;
    while (i + kHeaderLen <= buf.size()) {
        size_t len = size_t(buf[i + 16]) << 8 | buf[i + 17];
        out.push_back(ByteView(buf).subspan(i, len));
        i += len;
    }
    EXPECT_EQ(i, buf.size());
    return out;
}

PathAttrs rich_attrs() {
    PathAttrs a;
    a.origin = Origin::Incomplete;
    a.as_path = AsPath{{{SegmentType::AsSequence, {65001, 4200000001u, 65003}},
                        {SegmentType::AsSet, {65010, 65011}}}};
    a.med = 50;
    a.local_pref = 200;
    a.atomic_aggregate = true;
    a.aggregator = Aggregator{4200000001u, 0x0a000001};
    a.communities = {0xfde90064, 0xffffff01};
    a.originator_id = 0x0a000005;
    a.cluster_list = {0x0a000006, 0x0a000007};
    a.ext_communities = {ExtCommunity::route_target(*RouteTarget::parse("65001:10")),
                         ExtCommunity::encapsulation(kTunnelVxlan),
                         ExtCommunity::router_mac(mac("00:11:22:33:44:66")),
                         ExtCommunity::mac_mobility({true, 7})};
    a.large_communities = {{4200000001u, 1, 2}};
    a.pmsi_tunnel = PmsiTunnel::ingress_replication(10, ip("10.0.0.1"));
    TunnelEncap te;
    te.tunnels.push_back({kTunnelVxlan,
                          {{TunnelEncap::SubTlv::kEgressEndpoint, {0, 0, 0, 0, 0, 1, 10, 0, 0, 1}},
                           {TunnelEncap::SubTlv::kUdpDestPort, {0x12, 0xb5}},
                           {200, Bytes(300, 0xab)}}}); // 2-octet length sub-TLV
    a.tunnel_encap = te;
    a.unknown = {{attr::kOptional | attr::kTransitive | attr::kPartial, 99, {1, 2, 3}}};
    return a;
}

} // namespace

// ---------------------------------------------------------------------------------------
// Header, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH

TEST(BgpHeader, KeepaliveRoundTrip) {
    Bytes b;
    encode_keepalive(b);
    ASSERT_EQ(b.size(), 19u);
    auto h = decode_header(b, kMaxMessageLen);
    EXPECT_FALSE(h.error);
    EXPECT_EQ(h.header.type, MsgType::Keepalive);
}

TEST(BgpHeader, Errors) {
    Bytes b;
    encode_keepalive(b);
    Bytes bad_marker = b;
    bad_marker[3] = 0;
    EXPECT_EQ(decode_header(bad_marker, 4096).error, (Notification{1, 1, {}}));
    Bytes long_keepalive = b;
    long_keepalive[17] = 20;
    EXPECT_EQ(decode_header(long_keepalive, 4096).error, (Notification{1, 2, {0, 20}}));
    Bytes too_long = b;
    too_long[18] = 2;
    too_long[16] = 0x10, too_long[17] = 0x01; // 4097
    EXPECT_EQ(decode_header(too_long, 4096).error, (Notification{1, 2, {0x10, 0x01}}));
    EXPECT_FALSE(decode_header(too_long, kMaxExtendedMessageLen).error);
    Bytes short_open = b;
    short_open[18] = 1; // OPEN of 19 bytes
    EXPECT_EQ(decode_header(short_open, 4096).error, (Notification{1, 2, {0, 19}}));
    Bytes bad_type = b;
    bad_type[18] = 9;
    EXPECT_EQ(decode_header(bad_type, 4096).error, (Notification{1, 3, {9}}));
}

TEST(BgpNotification, RoundTripAndText) {
    Notification n{err::kUpdate, err::kMalformedAsPath, {2, 1}};
    Bytes b;
    encode_notification(n, b);
    EXPECT_FALSE(decode_header(b, 4096).error);
    EXPECT_EQ(decode_notification(body(b)), n);
    EXPECT_EQ(n.str(), "UPDATE Message Error/Malformed AS_PATH (3/11) data 02 01");
    EXPECT_FALSE(decode_notification(Bytes{6}));
    // Oversized data is cut so the message still fits.
    Bytes big;
    encode_notification({6, 2, Bytes(5000, 'x')}, big);
    EXPECT_EQ(big.size(), kMaxMessageLen);
}

TEST(BgpRouteRefresh, SubtypesAndLength) {
    for (uint8_t sub : {RouteRefresh::Normal, RouteRefresh::BeginOfRib, RouteRefresh::EndOfRib}) {
        RouteRefresh rr{to_afi_safi(RouteFamily::Evpn), sub};
        Bytes b;
        encode_route_refresh(rr, b);
        EXPECT_FALSE(decode_header(b, 4096).error);
        auto d = decode_route_refresh(body(b));
        EXPECT_FALSE(d.error);
        EXPECT_EQ(d.refresh, rr);
    }
    auto bad = decode_route_refresh(Bytes{0, 1, 0, 1, 0});
    ASSERT_TRUE(bad.error);
    EXPECT_EQ(bad.error->code, err::kRouteRefresh);
    EXPECT_EQ(bad.error->subcode, err::kInvalidRouteRefreshLength);
    EXPECT_EQ(bad.error->data.size(), 24u); // the whole offending message
}

// ---------------------------------------------------------------------------------------
// OPEN

namespace {
Capabilities full_caps() {
    Capabilities c;
    c.multiprotocol = {to_afi_safi(RouteFamily::Ipv4Unicast), to_afi_safi(RouteFamily::Ipv6Unicast),
                       to_afi_safi(RouteFamily::Evpn)};
    c.route_refresh = true;
    c.enhanced_route_refresh = true;
    c.extended_message = true;
    GracefulRestartCap gr;
    gr.restarting = true;
    gr.notification = true;
    gr.restart_time = 120;
    gr.families = {{to_afi_safi(RouteFamily::Ipv4Unicast), true},
                   {to_afi_safi(RouteFamily::Evpn), false}};
    c.graceful_restart = gr;
    c.add_path = {{to_afi_safi(RouteFamily::Ipv4Unicast), AddPathCap::Both},
                  {to_afi_safi(RouteFamily::Evpn), AddPathCap::Receive}};
    c.extended_nexthop = {{1, 1, 2}};
    c.unknown = {{73, {3, 'a', 'b', 'c', 0}}};
    return c;
}

OpenResult decode_open_msg(const Bytes &m) {
    auto h = decode_header(m, kMaxMessageLen);
    EXPECT_FALSE(h.error);
    EXPECT_EQ(h.header.type, MsgType::Open);
    return decode_open(body(m));
}
} // namespace

TEST(BgpOpen, RoundTripAllCapabilities) {
    Open o = make_open(4200000000u, 90, 0x0a000001, full_caps());
    EXPECT_EQ(o.my_as, kAsTrans);
    Bytes b;
    encode_open(o, b);
    auto d = decode_open_msg(b);
    ASSERT_FALSE(d.error) << d.error->str();
    EXPECT_EQ(d.open, o);
    EXPECT_EQ(d.open.asn(), 4200000000u);
}

TEST(BgpOpen, ExtendedOptionalParameters) {
    // RFC 9072: forced, and automatic once the capabilities exceed 255 bytes.
    Open o = make_open(65001, 90, 1, full_caps());
    o.extended_params = true;
    Bytes b;
    encode_open(o, b);
    EXPECT_EQ(b[28], 255);
    EXPECT_EQ(b[29], 255);
    auto d = decode_open_msg(b);
    ASSERT_FALSE(d.error);
    EXPECT_EQ(d.open, o);

    Open big = make_open(65001, 90, 1, full_caps());
    for (int i = 0; i < 20; i++)
        big.caps.unknown.push_back({uint8_t(200 + i), Bytes(20, uint8_t(i))});
    b.clear();
    encode_open(big, b);
    d = decode_open_msg(b);
    ASSERT_FALSE(d.error);
    EXPECT_TRUE(d.open.extended_params);
    big.extended_params = true;
    EXPECT_EQ(d.open, big);
}

TEST(BgpOpen, Errors) {
    Open o = make_open(65001, 90, 1, {});
    o.caps.route_refresh = true;
    Bytes good;
    encode_open(o, good);
    Bytes v3 = good;
    v3[19] = 3;
    EXPECT_EQ(decode_open_msg(v3).error, (Notification{2, 1, {0, 4}}));
    Bytes hold1 = good;
    hold1[22] = 0, hold1[23] = 1;
    EXPECT_EQ(decode_open_msg(hold1).error, (Notification{2, 6, {}}));
    Bytes id0 = good;
    id0[24] = id0[25] = id0[26] = id0[27] = 0;
    EXPECT_EQ(decode_open_msg(id0).error, (Notification{2, 3, {}}));
    // Optional parameter type 1 (authentication, deprecated) is not supported.
    Bytes auth = hex("040000005a0a00000104010200ab");
    EXPECT_EQ(decode_open(ByteView(auth).first(14)).error->subcode, err::kUnsupportedOptParam);
    // A capability that overruns its parameter, and a parameter that overruns the message.
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "0402020505"))
                  .error,
              (Notification{2, 0, {}}));
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "0402080206"))
                  .error,
              (Notification{2, 0, {}}));
    // Known capabilities with the wrong size.
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "06020441020000"))
                  .error,
              (Notification{2, 0, {}}));
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "050203450101"))
                  .error,
              (Notification{2, 0, {}}));
    // Truncated fixed part.
    EXPECT_EQ(decode_open(hex("04fde900")).error->code, err::kHeader);
}

TEST(BgpOpen, Rfc9072ShapeOfCve2022_40302) {
    // Extended optional parameters length claiming more than the message holds, a
    // parameter whose 2-octet length overruns, and a header cut inside the extension.
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "ffff0100020006"))
                  .error,
              (Notification{2, 0, {}}));
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "ffff000502ffff0000"))
                  .error,
              (Notification{2, 0, {}}));
    EXPECT_EQ(decode_open(hex("04fde9005a0a000001"
                              "ffff00"))
                  .error,
              (Notification{2, 0, {}}));
    // Found by fuzz_open: an empty extended parameter block survives a round trip.
    auto empty = decode_open(hex("04fdd901ffff000502ffff0000"));
    ASSERT_FALSE(empty.error);
    EXPECT_TRUE(empty.open.extended_params);
    Bytes b;
    encode_open(empty.open, b);
    EXPECT_EQ(decode_open_msg(b).open, empty.open);
    // A well-formed extended encoding of one route-refresh capability.
    auto ok = decode_open(hex("04fde9005a0a000001"
                              "ffff00050200020200"));
    ASSERT_FALSE(ok.error);
    EXPECT_TRUE(ok.open.caps.route_refresh);
}

// Captured with tcpdump on a veth between GoBGP 3.10 (AS 65001, 10.99.0.1) and FRR 8.4
// bgpd (AS 65002, 10.99.0.2, EVPN VTEP 10.255.0.2 for VNI 10), in network namespaces.
const char *const kGobgpOpen =
    "ffffffffffffffffffffffffffffffff004d0104fde9005a0a63000130022e0200490402766d0001040001000101"
    "040002000101040019004641040000fde9050c000100010002001900460002";
const char *const kFrrOpen =
    "ffffffffffffffffffffffffffffffff00890104fdea00090a6300026c020601040001000102060104000200010206"
    "010400190046020280000202020002024600020641040000fdea02020600020e450c000101010002010100194601"
    "020b4909076672722d6361700002044002c07802174715000101800000000002018000000000194680000000";

TEST(BgpOpen, CapturedFromGobgp) {
    auto d = decode_open_msg(hex(kGobgpOpen));
    ASSERT_FALSE(d.error) << d.error->str();
    EXPECT_EQ(d.open.asn(), 65001u);
    EXPECT_EQ(d.open.hold_time, 90);
    EXPECT_EQ(d.open.bgp_id, 0x0a630001u);
    EXPECT_EQ(d.open.caps.multiprotocol.size(), 3u);
    EXPECT_TRUE(d.open.caps.route_refresh);
    EXPECT_EQ(d.open.caps.four_octet_as, 65001u);
    ASSERT_EQ(d.open.caps.extended_nexthop.size(), 2u);
    EXPECT_EQ(d.open.caps.extended_nexthop[0], (ExtendedNextHopCap{1, 1, 2}));
    EXPECT_FALSE(d.open.caps.graceful_restart);
    ASSERT_EQ(d.open.caps.unknown.size(), 1u); // hostname "vm"
    EXPECT_EQ(d.open.caps.unknown[0], (RawCapability{73, {2, 'v', 'm', 0}}));
    Bytes again;
    encode_open(d.open, again);
    EXPECT_EQ(decode_open_msg(again).open, d.open);
}

TEST(BgpOpen, CapturedFromFrr) {
    auto d = decode_open_msg(hex(kFrrOpen));
    ASSERT_FALSE(d.error) << d.error->str();
    const auto &c = d.open.caps;
    EXPECT_EQ(d.open.asn(), 65002u);
    EXPECT_EQ(d.open.hold_time, 9); // frr defaults datacenter
    EXPECT_TRUE(c.route_refresh);
    EXPECT_TRUE(c.enhanced_route_refresh);
    EXPECT_EQ(c.multiprotocol.size(), 3u);
    ASSERT_EQ(c.add_path.size(), 3u);
    EXPECT_EQ(c.add_path[0],
              (AddPathCap{to_afi_safi(RouteFamily::Ipv4Unicast), AddPathCap::Receive}));
    ASSERT_TRUE(c.graceful_restart);
    EXPECT_EQ(c.graceful_restart->restart_time, 120);
    // Hostname (73), long-lived GR (71) and Cisco route refresh (128) are kept as they came.
    std::set<uint8_t> unknown;
    for (auto &u : c.unknown) unknown.insert(u.code);
    EXPECT_EQ(unknown, (std::set<uint8_t>{71, 73, 128}));
    for (auto &u : c.unknown) {
        if (u.code == 73) {
            EXPECT_EQ(std::string(u.value.begin() + 1, u.value.begin() + 8), "frr-cap");
        }
    }
    Bytes again;
    encode_open(d.open, again);
    EXPECT_EQ(decode_open_msg(again).open, d.open);
}

// The same pair with graceful restart enabled on both sides.
TEST(BgpOpen, CapturedGracefulRestart) {
    auto gobgp = decode_open_msg(hex(
        "ffffffffffffffffffffffffffffffff005d0104fde9005a0a63000140023e0200490402766d00010400010001"
        "01040002000101040019004641040000fde9400e005a000101000002010000194600050c000100010002001900"
        "46"
        "0002"));
    ASSERT_FALSE(gobgp.error);
    ASSERT_TRUE(gobgp.open.caps.graceful_restart);
    const auto &g = *gobgp.open.caps.graceful_restart;
    EXPECT_FALSE(g.restarting);
    EXPECT_EQ(g.restart_time, 90);
    ASSERT_EQ(g.families.size(), 3u);
    EXPECT_EQ(g.families[2].family, to_afi_safi(RouteFamily::Evpn));
    EXPECT_FALSE(g.families[2].forwarding_preserved);
    auto frr = decode_open_msg(hex("ffffffffffffffffffffffffffffffff00950104fdea00090a6300027802060"
                                   "10400010001020601040002000102"
                                   "06010400190046020280000202020002024600020641040000fdea020206000"
                                   "20e450c0001010100020101001946"
                                   "01020b4909076672722d636170000210400ec07800010100000201000019460"
                                   "002174715000101800000000002018"
                                   "000000000194680000000"));
    ASSERT_FALSE(frr.error);
    const auto &f = *frr.open.caps.graceful_restart;
    EXPECT_TRUE(f.restarting);
    EXPECT_TRUE(f.notification);
    EXPECT_EQ(f.restart_time, 120);
    EXPECT_EQ(f.families.size(), 3u);
}

TEST(BgpEncoder, EndOfRibMatchesGobgpAndFrr) {
    // Both peers sent exactly these End-of-RIB markers after graceful restart negotiation.
    const std::pair<RouteFamily, const char *> captured[] = {
        {RouteFamily::Ipv4Unicast, "ffffffffffffffffffffffffffffffff00170200000000"},
        {RouteFamily::Ipv6Unicast, "ffffffffffffffffffffffffffffffff001d0200000006800f03000201"},
        {RouteFamily::Evpn, "ffffffffffffffffffffffffffffffff001d0200000006800f03001946"}};
    for (auto [family, h] : captured) {
        Bytes b;
        encode_end_of_rib(family, b);
        EXPECT_EQ(b, hex(h)) << family_name(family);
        EXPECT_EQ(end_of_rib(decode_msg(hex(h), all_families()).update), to_afi_safi(family));
    }
}

TEST(BgpOpen, Negotiate) {
    Open local = make_open(65001, 90, 1, full_caps());
    auto remote_caps = full_caps();
    remote_caps.multiprotocol.pop_back(); // no EVPN
    remote_caps.add_path = {{to_afi_safi(RouteFamily::Ipv4Unicast), AddPathCap::Send}};
    remote_caps.extended_message = false;
    Open remote = make_open(65002, 90, 2, remote_caps);
    auto c = negotiate(local, remote, true);
    EXPECT_TRUE(c.four_octet_as);
    EXPECT_TRUE(c.ebgp);
    EXPECT_FALSE(c.extended_message);
    EXPECT_EQ(c.families, (std::array<bool, 3>{true, true, false}));
    EXPECT_EQ(c.add_path_rx, (std::array<bool, 3>{true, false, false}));
    EXPECT_EQ(c.add_path_tx, (std::array<bool, 3>{false, false, false}));
    EXPECT_TRUE(c.extended_nexthop_ipv4);
    // No MP capability at all means IPv4 unicast only; no 4-octet AS on one side.
    Open old;
    old.my_as = 65002;
    auto c2 = negotiate(local, old, true);
    EXPECT_FALSE(c2.four_octet_as);
    EXPECT_EQ(c2.families, (std::array<bool, 3>{true, false, false}));
}

// ---------------------------------------------------------------------------------------
// Route distinguishers, route targets, extended communities

TEST(BgpEvpnIds, RouteDistinguisherForms) {
    EXPECT_EQ(rd("65000:100"), (RouteDistinguisher{0, 65000, 100}));
    EXPECT_EQ(rd("10.0.0.1:5"), (RouteDistinguisher{1, 0x0a000001, 5}));
    EXPECT_EQ(rd("4200000000:7"), (RouteDistinguisher{2, 4200000000u, 7}));
    EXPECT_EQ(rd("65000L:7"), (RouteDistinguisher{2, 65000, 7}));
    for (const char *s : {"65000:100", "10.0.0.1:5", "4200000000:7", "65000L:7", "0:4294967295"})
        EXPECT_EQ(rd(s).str(), s);
    for (const char *s : {"", "65000", "x:1", "10.0.0.1:70000", "4200000000:70000", "1:2:3",
                          "65000:", "::1:5", "65000:-1"})
        EXPECT_FALSE(RouteDistinguisher::parse(s)) << s;
    EXPECT_EQ(RouteTarget::parse("65001:10")->str(), "65001:10");
}

TEST(BgpEvpnIds, ExtendedCommunities) {
    for (const char *s : {"65001:10", "10.1.2.3:300", "4200000000:9"}) {
        auto rt = *RouteTarget::parse(s);
        auto ec = ExtCommunity::route_target(rt);
        EXPECT_EQ(ec.as_route_target(), rt);
        EXPECT_EQ(ec.str(), std::string("rt ") + s);
    }
    EXPECT_EQ(ExtCommunity::route_target(*RouteTarget::parse("65001:10")).raw,
              0x0002fde90000000aull);
    auto enc = ExtCommunity::encapsulation(kTunnelVxlan);
    EXPECT_EQ(enc.raw, 0x030c000000000008ull);
    EXPECT_EQ(enc.as_encapsulation(), kTunnelVxlan);
    EXPECT_FALSE(enc.as_route_target());
    auto rmac = ExtCommunity::router_mac(mac("00:11:22:33:44:66"));
    EXPECT_EQ(rmac.raw, 0x0603001122334466ull);
    EXPECT_EQ(rmac.as_router_mac(), mac("00:11:22:33:44:66"));
    auto mm = ExtCommunity::mac_mobility({true, 0x01020304});
    EXPECT_EQ(mm.raw, 0x0600010001020304ull);
    EXPECT_EQ(mm.as_mac_mobility(), (MacMobility{true, 0x01020304}));
    EXPECT_EQ(mm.str(), "mm seq 16909060 sticky");
    ExtCommunity opaque{0x4300000000000001ull};
    EXPECT_FALSE(opaque.transitive());
    EXPECT_EQ(opaque.str(), "0x4300000000000001");
}

// ---------------------------------------------------------------------------------------
// UPDATE round trips

TEST(BgpUpdate, AllAttributesRoundTrip) {
    Update u;
    u.attrs = rich_attrs();
    u.attrs.next_hop = 0x0a000001;
    u.nlri = {{0, pfx("192.0.2.0/24")}, {0, pfx("0.0.0.0/0")}, {0, pfx("10.1.2.3/32")}};
    u.withdrawn = {{0, pfx("198.51.100.0/25")}};
    auto ctx = all_families();
    Bytes b;
    ASSERT_TRUE(encode_update(u, ctx, b));
    auto d = decode_msg(b, ctx);
    EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
    EXPECT_EQ(d.update, u);
}

TEST(BgpUpdate, TwoOctetAsPeerGetsAsTransAndAs4Path) {
    Update u;
    u.attrs = rich_attrs();
    u.attrs.next_hop = 0x0a000001;
    u.attrs.as_path->segments.insert(u.attrs.as_path->segments.begin(),
                                     {SegmentType::ConfedSequence, {65100}});
    u.nlri = {{0, pfx("192.0.2.0/24")}};
    auto ctx = all_families();
    ctx.four_octet_as = false;
    Bytes b;
    ASSERT_TRUE(encode_update(u, ctx, b));
    // The 2-octet AS_PATH on the wire carries AS_TRANS in place of 4200000001.
    const Bytes wire_path = {2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0xfd, 0xeb};
    EXPECT_NE(std::search(b.begin(), b.end(), wire_path.begin(), wire_path.end()), b.end());
    auto d = decode_msg(b, ctx);
    EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
    EXPECT_EQ(d.update, u); // AS4_PATH and AS4_AGGREGATOR merged back
    // Between two 4-octet speakers AS4_PATH must not appear: discarded.
    auto body4 = update_body({}, cat({kBase, pa(0xc0, 17, {2, 1, 0, 0, 0, 1})}), kNlri);
    auto d4 = decode(body4);
    EXPECT_EQ(d4.action, UpdateAction::AttributeDiscard);
    EXPECT_EQ(d4.discarded, Bytes{17});
}

TEST(BgpUpdate, As4MergeWithShorterAs4Path) {
    // AS_PATH 65001 23456 23456 (2-octet), AS4_PATH 4200000001 4200000002: the leading
    // AS from AS_PATH is kept, the rest comes from AS4_PATH.
    auto ctx = all_families();
    ctx.four_octet_as = false;
    Bytes as_path = pa(0x40, 2, {2, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0x5b, 0xa0});
    Bytes as4 = pa(0xc0, 17, {2, 2, 0xfa, 0x56, 0xea, 0x01, 0xfa, 0x56, 0xea, 0x02});
    auto d = decode(update_body({}, cat({kOrigin, as_path, kNextHop, as4}), kNlri), ctx);
    EXPECT_EQ(d.action, UpdateAction::Ok);
    EXPECT_EQ(d.update.attrs.as_path->str(), "65001 4200000001 4200000002");
    // AS4_PATH longer than AS_PATH: ignored.
    Bytes as_path1 = pa(0x40, 2, {2, 1, 0xfd, 0xe9});
    d = decode(update_body({}, cat({kOrigin, as_path1, kNextHop, as4}), kNlri), ctx);
    EXPECT_EQ(d.update.attrs.as_path->str(), "65001");
}

TEST(BgpUpdate, Ipv6WithLinkLocalAndEvpnRoundTrip) {
    auto ctx = all_families();
    Update u6;
    u6.attrs.origin = Origin::Igp;
    u6.attrs.as_path = AsPath{};
    u6.attrs.local_pref = 100;
    u6.mp_reach =
        MpReach{to_afi_safi(RouteFamily::Ipv6Unicast),
                {ip("2001:db8::1"), ip("fe80::1")},
                {{0, pfx("2001:db8:1::/48")}, {0, pfx("::/0")}, {0, pfx("2001:db8::1/128")}},
                {}};
    u6.mp_unreach =
        MpUnreach{to_afi_safi(RouteFamily::Ipv6Unicast), {{0, pfx("2001:db8:2::/64")}}, {}};
    Bytes b;
    ASSERT_TRUE(encode_update(u6, ctx, b));
    auto d = decode_msg(b, ctx);
    EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
    EXPECT_EQ(d.update, u6);

    EvpnMacIp m2{rd("10.0.0.1:10"), {}, 0, mac("00:11:22:33:44:55"), ip("10.1.1.5"), 10, 100};
    EvpnMacIp m2_noip{
        rd("65001:10"), {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 5, mac("00:11:22:33:44:56"), {}, 10, {}};
    EvpnMacIp m2_v6{rd("4200000000:10"), {}, 0,  mac("00:11:22:33:44:57"),
                    ip("2001:db8::5"),   10, 100};
    EvpnImet m3{rd("10.0.0.1:10"), 0, ip("10.0.0.1")};
    EvpnImet m3_v6{rd("10.0.0.1:11"), 0, ip("2001:db8::1")};
    EvpnIpPrefix m5{rd("65001:100"), {}, 0, pfx("10.20.0.0/24"), ip("0.0.0.0"), 100};
    EvpnIpPrefix m5_v6{rd("65001:100"), {}, 0, pfx("2001:db8:5::/64"), ip("2001:db8::9"), 100};
    EvpnOther t1{1, Bytes(25, 7)}, t4{4, Bytes(23, 9)};
    Update ue;
    ue.attrs = rich_attrs();
    ue.mp_reach = MpReach{to_afi_safi(RouteFamily::Evpn),
                          {ip("10.0.0.1"), {}},
                          {},
                          {{0, m2},
                           {0, m2_noip},
                           {0, m2_v6},
                           {0, m3},
                           {0, m3_v6},
                           {0, m5},
                           {0, m5_v6},
                           {0, t1},
                           {0, t4}}};
    ue.mp_unreach = MpUnreach{to_afi_safi(RouteFamily::Evpn), {}, {{0, m3}}};
    b.clear();
    ASSERT_TRUE(encode_update(ue, ctx, b));
    d = decode_msg(b, ctx);
    EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
    EXPECT_EQ(d.update, ue);
    EXPECT_EQ(ue.mp_reach->evpn[0].str(),
              "[10.0.0.1:10]:[2]:[0]:[48]:[00:11:22:33:44:55]:[32]:[10.1.1.5]");
    EXPECT_EQ(ue.mp_reach->evpn[3].str(), "[10.0.0.1:10]:[3]:[0]:[32]:[10.0.0.1]");
    EXPECT_EQ(ue.mp_reach->evpn[5].str(), "[65001:100]:[5]:[0]:[24]:[10.20.0.0]");
    EXPECT_EQ(ue.mp_reach->evpn[7].route_type(), 1);
}

TEST(BgpUpdate, AddPathIdentifiers) {
    auto ctx = all_families();
    ctx.add_path_rx = {true, true, true};
    ctx.add_path_tx = {true, true, true};
    Update u;
    u.attrs.origin = Origin::Igp;
    u.attrs.as_path = AsPath{};
    u.attrs.next_hop = 0x0a000001;
    u.nlri = {{1, pfx("192.0.2.0/24")}, {2, pfx("192.0.2.0/24")}};
    u.withdrawn = {{7, pfx("198.51.100.0/24")}};
    u.mp_reach = MpReach{to_afi_safi(RouteFamily::Evpn),
                         {ip("10.0.0.1"), {}},
                         {},
                         {{5, EvpnImet{rd("10.0.0.1:10"), 0, ip("10.0.0.1")}}}};
    Bytes b;
    ASSERT_TRUE(encode_update(u, ctx, b));
    auto d = decode_msg(b, ctx);
    EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
    EXPECT_EQ(d.update, u);
    // Without add-path receive negotiated, the same bytes are not valid NLRI.
    auto plain = all_families();
    EXPECT_NE(decode_update(body(b), plain).action, UpdateAction::Ok);
}

// ---------------------------------------------------------------------------------------
// UPDATEs captured from GoBGP 3.10 and FRR 8.4 (see kGobgpOpen)

namespace {
const char *const kGobgpV4 = "ffffffffffffffffffffffffffffffff003d02000000224001010240020602010000f"
                             "de94003040a6300018004040000000ac00804fde9006418cb0071";
const char *const kGobgpV6 = "ffffffffffffffffffffffffffffffff0043020000002c4001010240020602010000f"
                             "de9800e1c0002011000000000000000000000ffff0a630001003020010db80002";
const char *const kGobgpType2 =
    "ffffffffffffffffffffffffffffffff006d02000000564001010240020602010000fde9800e33001946040a630001"
    "00022800010a630001000a000000000000000000000000000030001122334455200a01010500000a000064c0101000"
    "02fde90000000a030c000000000008";
const char *const kGobgpType3 = "ffffffffffffffffffffffffffffffff0062020000004b40010102400206020100"
                                "00fde9800e1c001946040a63000100031100010a630001000a00000000200a6300"
                                "01c010100002fde90000000a030c000000000008c01609000600000a0a630001";
const char *const kGobgpType5 =
    "ffffffffffffffffffffffffffffffff006f02000000584001010240020602010000fde9800e2d001946040a630001"
    "0005220000fde9000000640000000000000000000000000000180a14000000000000000064c010180002fde9000000"
    "64030c0000000000080603001122334466";
const char *const kFrrV4 = "ffffffffffffffffffffffffffffffff003c020000001c400101005002000602010000f"
                           "dea4003040a6300028004040000000018c0000219c6336480";
const char *const kFrrV6 =
    "ffffffffffffffffffffffffffffffff005c0200000045900e002c0002012020010db8009900000000000000000002"
    "fe80000000000000f84ab8fffea4b704003020010db80001400101005002000602010000fdea80040400000000";
const char *const kFrrType2 =
    "ffffffffffffffffffffffffffffffff00680200000051900e002c001946040aff000200022100010a630002000200"
    "000000000000000000000000003000aabbccdd010000000a400101005002000602010000fdeac01010030c00000000"
    "00080002fdea0000000a";
const char *const kFrrType3 = "ffffffffffffffffffffffffffffffff0064020000004d900e001c001946040aff00"
                              "0200031100010a630002000200000000200aff0002400101005002000602010000fd"
                              "eac01010030c0000000000080002fdea0000000ac01609000600000a0aff0002";
const char *const kFrrType5Reflected =
    "ffffffffffffffffffffffffffffffff0075020000005e900e002d001946040a6300010005220000fde90000006400"
    "00000000000000000000000000180a14000000000000000064400101025002000a02020000fdea0000fde9c0101800"
    "02fde900000064030c0000000000080603001122334466";
const char *const kAllCaptured[] = {
    kGobgpV4, kGobgpV6, kGobgpType2, kGobgpType3, kGobgpType5,
    kFrrV4,   kFrrV6,   kFrrType2,   kFrrType3,   kFrrType5Reflected};

UpdateResult decode_captured(const char *h) {
    Bytes m = hex(h);
    auto d = decode_msg(m, all_families(true));
    EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
    return d;
}
} // namespace

TEST(BgpUpdateCaptured, GobgpIpv4AndIpv6) {
    auto d = decode_captured(kGobgpV4);
    EXPECT_EQ(d.update.nlri, (std::vector<PrefixNlri>{{0, pfx("203.0.113.0/24")}}));
    EXPECT_EQ(d.update.attrs.next_hop, 0x0a630001u);
    EXPECT_EQ(d.update.attrs.med, 10u);
    EXPECT_EQ(d.update.attrs.communities, (std::vector<uint32_t>{0xfde90064}));
    EXPECT_EQ(d.update.attrs.as_path->str(), "65001");
    d = decode_captured(kGobgpV6);
    ASSERT_TRUE(d.update.mp_reach);
    EXPECT_EQ(d.update.mp_reach->next_hop.addr, ip("::ffff:10.99.0.1"));
    EXPECT_EQ(d.update.mp_reach->prefixes, (std::vector<PrefixNlri>{{0, pfx("2001:db8:2::/48")}}));
}

TEST(BgpUpdateCaptured, GobgpEvpnTypes235) {
    auto d = decode_captured(kGobgpType2);
    ASSERT_TRUE(d.update.mp_reach);
    ASSERT_EQ(d.update.mp_reach->evpn.size(), 1u);
    auto &m = std::get<EvpnMacIp>(d.update.mp_reach->evpn[0].route);
    EXPECT_EQ(m.rd, rd("10.99.0.1:10"));
    EXPECT_EQ(m.mac, mac("00:11:22:33:44:55"));
    EXPECT_EQ(m.ip, ip("10.1.1.5"));
    EXPECT_EQ(m.label1, 10u);
    EXPECT_EQ(m.label2, 100u);
    EXPECT_EQ(d.update.mp_reach->next_hop.addr, ip("10.99.0.1"));
    ASSERT_EQ(d.update.attrs.ext_communities.size(), 2u);
    EXPECT_EQ(d.update.attrs.ext_communities[0].as_route_target(), RouteTarget::parse("65001:10"));
    EXPECT_EQ(d.update.attrs.ext_communities[1].as_encapsulation(), kTunnelVxlan);

    d = decode_captured(kGobgpType3);
    auto &i = std::get<EvpnImet>(d.update.mp_reach->evpn.at(0).route);
    EXPECT_EQ(i.originator, ip("10.99.0.1"));
    ASSERT_TRUE(d.update.attrs.pmsi_tunnel);
    EXPECT_EQ(d.update.attrs.pmsi_tunnel->tunnel_type, PmsiTunnel::kIngressReplication);
    EXPECT_EQ(d.update.attrs.pmsi_tunnel->label, 10u); // the VNI, in all 24 bits
    EXPECT_EQ(d.update.attrs.pmsi_tunnel->endpoint(), ip("10.99.0.1"));

    d = decode_captured(kGobgpType5);
    auto &p = std::get<EvpnIpPrefix>(d.update.mp_reach->evpn.at(0).route);
    EXPECT_EQ(p.rd, rd("65001:100"));
    EXPECT_EQ(p.prefix, pfx("10.20.0.0/24"));
    EXPECT_EQ(p.gateway, ip("0.0.0.0"));
    EXPECT_EQ(p.label, 100u);
    EXPECT_EQ(d.update.attrs.ext_communities.at(2).as_router_mac(), mac("00:11:22:33:44:66"));
}

TEST(BgpUpdateCaptured, FrrUnicastAndEvpn) {
    auto d = decode_captured(kFrrV4);
    EXPECT_EQ(d.update.nlri,
              (std::vector<PrefixNlri>{{0, pfx("192.0.2.0/24")}, {0, pfx("198.51.100.128/25")}}));
    EXPECT_EQ(d.update.attrs.origin, Origin::Igp);
    d = decode_captured(kFrrV6); // global + link-local next hop, 32 bytes
    ASSERT_TRUE(d.update.mp_reach);
    EXPECT_EQ(d.update.mp_reach->next_hop.addr, ip("2001:db8:99::2"));
    ASSERT_TRUE(d.update.mp_reach->next_hop.link_local);
    EXPECT_EQ(d.update.mp_reach->next_hop.link_local->bytes[0], 0xfe);
    d = decode_captured(kFrrType2); // MAC only, L2VNI 10, RD type 1 10.99.0.2:2
    auto &m = std::get<EvpnMacIp>(d.update.mp_reach->evpn.at(0).route);
    EXPECT_EQ(m.rd, rd("10.99.0.2:2"));
    EXPECT_EQ(m.mac, mac("00:aa:bb:cc:dd:01"));
    EXPECT_FALSE(m.ip);
    EXPECT_EQ(m.label1, 10u);
    EXPECT_FALSE(m.label2);
    EXPECT_EQ(d.update.mp_reach->next_hop.addr, ip("10.255.0.2"));
    d = decode_captured(kFrrType3);
    EXPECT_EQ(d.update.attrs.pmsi_tunnel->endpoint(), ip("10.255.0.2"));
    EXPECT_EQ(d.update.attrs.pmsi_tunnel->label, 10u);
    d = decode_captured(kFrrType5Reflected);
    EXPECT_EQ(d.update.attrs.as_path->str(), "65002 65001");
}

TEST(BgpUpdateCaptured, ReencodeDecodesTheSame) {
    for (const char *h : kAllCaptured) {
        auto d = decode_captured(h);
        Bytes b;
        ASSERT_TRUE(encode_update(d.update, all_families(true), b));
        EXPECT_EQ(decode_msg(b, all_families(true)).update, d.update) << h;
    }
}

TEST(BgpUpdateCaptured, EveryTruncationAndBitFlipIsHandled) {
    // Decoding must stay in bounds (checked under ASan/UBSan) and classify every input.
    std::mt19937 rng(42);
    for (const char *h : kAllCaptured) {
        Bytes m = hex(h);
        Bytes b(m.begin() + kHeaderLen, m.end());
        for (size_t n = 0; n < b.size(); n++) {
            auto d = decode_update(ByteView(b).first(n), all_families());
            if (d.action == UpdateAction::SessionReset) {
                EXPECT_TRUE(d.notification);
            }
        }
        for (int i = 0; i < 500; i++) {
            Bytes f = b;
            f[rng() % f.size()] ^= uint8_t(1u << (rng() % 8));
            auto d = decode_update(f, all_families());
            if (d.action != UpdateAction::Ok) {
                EXPECT_FALSE(d.reason.empty());
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// RFC 7606 outcomes

namespace {
void expect(const UpdateResult &d, UpdateAction a, uint8_t subcode) {
    EXPECT_EQ(d.action, a) << d.reason;
    ASSERT_TRUE(d.notification) << d.reason;
    EXPECT_EQ(d.notification->code, err::kUpdate);
    EXPECT_EQ(d.notification->subcode, subcode) << d.reason;
    EXPECT_FALSE(d.reason.empty());
}
} // namespace

TEST(BgpRfc7606, TreatAsWithdrawKeepsTheNlri) {
    auto d = decode(update_body({}, cat({pa(0x40, 1, {3}), kAsPath, kNextHop}), kNlri));
    expect(d, UpdateAction::TreatAsWithdraw, err::kInvalidOrigin);
    EXPECT_EQ(d.update.nlri, (std::vector<PrefixNlri>{{0, pfx("192.0.2.0/24")}}));
    EXPECT_EQ(d.notification->data, (Bytes{0x40, 1, 1, 3})); // the attribute, as received
}

TEST(BgpRfc7606, PerAttributeOutcomes) {
    auto with = [](const Bytes &extra, const Bytes &base = kBase) {
        return decode(update_body({}, cat({base, extra}), kNlri));
    };
    auto without_nh = cat({kOrigin, kAsPath});
    expect(decode(update_body({}, cat({pa(0x40, 1, {0, 0}), kAsPath, kNextHop}), kNlri)),
           UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(decode(update_body({}, cat({pa(0xc0, 1, {0}), kAsPath, kNextHop}), kNlri)),
           UpdateAction::TreatAsWithdraw, err::kAttrFlagsError);
    for (const Bytes &path : {Bytes{2, 0}, Bytes{2, 2, 0, 0, 0, 1}, Bytes{2, 1, 0, 0, 0, 1, 2},
                              Bytes{7, 1, 0, 0, 0, 1}})
        expect(decode(update_body({}, cat({kOrigin, pa(0x40, 2, path), kNextHop}), kNlri)),
               UpdateAction::TreatAsWithdraw, err::kMalformedAsPath);
    expect(with(pa(0x40, 3, {0, 0, 0, 0}), without_nh), UpdateAction::TreatAsWithdraw,
           err::kInvalidNextHop);
    expect(with(pa(0x40, 3, {224, 0, 0, 1}), without_nh), UpdateAction::TreatAsWithdraw,
           err::kInvalidNextHop);
    expect(with(pa(0x40, 3, {10, 0, 0, 1, 0}), without_nh), UpdateAction::TreatAsWithdraw,
           err::kAttrLengthError);
    expect(with(pa(0x80, 4, {0, 0, 1})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0x40, 5, {0, 0, 1})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0xc0, 8, {0, 0, 1})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0xc0, 8, {})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0x80, 9, {1, 2, 3})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0x80, 10, {1, 2, 3, 4, 5})), UpdateAction::TreatAsWithdraw,
           err::kAttrLengthError);
    expect(with(pa(0xc0, 16, {1, 2, 3, 4})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0xc0, 32, Bytes(13, 0))), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    expect(with(pa(0xc0, 22, {0, 6, 0, 0, 10, 1, 2})), UpdateAction::TreatAsWithdraw,
           err::kOptionalAttrError);
    expect(with(pa(0xc0, 22, {0, 6})), UpdateAction::TreatAsWithdraw, err::kAttrLengthError);
    // Confederation segments from an external peer; MP_REACH_NLRI marked transitive.
    Bytes confed = pa(0x40, 2, {3, 1, 0, 0, 0xfd, 0xe9});
    expect(decode(update_body({}, cat({kOrigin, confed, kNextHop}), kNlri), all_families(true)),
           UpdateAction::TreatAsWithdraw, err::kMalformedAsPath);
    EXPECT_EQ(decode(update_body({}, cat({kOrigin, confed, kNextHop}), kNlri)).action,
              UpdateAction::Ok);
    auto flagged = decode(update_body({},
                                      cat({kOrigin, kAsPath,
                                           pa(0xc0, 14,
                                              hex("00194604"
                                                  "0a000001"
                                                  "00"
                                                  "0311"
                                                  "00010a000001000a"
                                                  "00000000"
                                                  "20"
                                                  "0a000001"))}),
                                      {}));
    expect(flagged, UpdateAction::TreatAsWithdraw, err::kAttrFlagsError);
    ASSERT_TRUE(flagged.update.mp_reach); // parsed anyway, so that its routes can be withdrawn
    EXPECT_EQ(flagged.update.mp_reach->evpn.size(), 1u);
    // Unrecognized well-known attribute: the only per-attribute session reset.
    expect(with(pa(0x40, 99, {1})), UpdateAction::SessionReset, err::kUnrecognizedWellKnown);
}

TEST(BgpRfc7606, AttributeDiscard) {
    auto d = decode(update_body({}, cat({kBase, pa(0x40, 6, {1}), pa(0xc0, 7, {0, 1, 2})}), kNlri));
    EXPECT_EQ(d.action, UpdateAction::AttributeDiscard);
    EXPECT_EQ(d.discarded, (Bytes{6, 7}));
    EXPECT_FALSE(d.update.attrs.atomic_aggregate);
    EXPECT_FALSE(d.update.attrs.aggregator);
    EXPECT_EQ(d.update.nlri.size(), 1u);
    // iBGP-only attributes from an external peer.
    auto e = decode(update_body({},
                                cat({kBase, pa(0x40, 5, {0, 0, 0, 100}), pa(0x80, 9, {1, 2, 3, 4}),
                                     pa(0x80, 10, {1, 2, 3, 4})}),
                                kNlri),
                    all_families(true));
    EXPECT_EQ(e.action, UpdateAction::AttributeDiscard);
    EXPECT_EQ(e.discarded, (Bytes{5, 9, 10}));
    EXPECT_FALSE(e.update.attrs.local_pref);
    // A repeated attribute: the first copy wins.
    auto r = decode(
        update_body({}, cat({kBase, pa(0x80, 4, {0, 0, 0, 1}), pa(0x80, 4, {0, 0, 0, 2})}), kNlri));
    EXPECT_EQ(r.action, UpdateAction::AttributeDiscard);
    EXPECT_EQ(r.update.attrs.med, 1u);
}

TEST(BgpRfc7606, MissingWellKnownOnlyWithNlri) {
    auto d = decode(update_body({}, cat({kOrigin, kNextHop}), kNlri));
    expect(d, UpdateAction::TreatAsWithdraw, err::kMissingWellKnown);
    EXPECT_EQ(d.notification->data, Bytes{2});
    d = decode(update_body({}, cat({kOrigin, kAsPath}), kNlri));
    EXPECT_EQ(d.notification->data, Bytes{3});
    // CVE-2023-46753 shape: MP_REACH with EVPN routes and nothing else.
    Bytes evpn_reach = pa(0x90, 14,
                          hex("001946040a00000100"
                              "0311"
                              "0000000000000000"
                              "00000000"
                              "20"
                              "0a000001"));
    d = decode(update_body({}, evpn_reach, {}));
    expect(d, UpdateAction::TreatAsWithdraw, err::kMissingWellKnown);
    ASSERT_TRUE(d.update.mp_reach);
    EXPECT_EQ(d.update.mp_reach->evpn.size(), 1u);
    // Withdrawals alone need nothing.
    d = decode(update_body({24, 192, 0, 2}, {}, {}));
    EXPECT_EQ(d.action, UpdateAction::Ok);
    d = decode(update_body({},
                           pa(0x80, 15,
                              hex("000201"
                                  "102001")),
                           {}));
    EXPECT_EQ(d.action, UpdateAction::Ok);
    EXPECT_EQ(d.update.mp_unreach->prefixes, (std::vector<PrefixNlri>{{0, pfx("2001::/16")}}));
}

TEST(BgpRfc7606, MpReachErrorsDisableTheFamily) {
    // CVE-2023-46752 shapes: next-hop length inconsistent with the family, NLRI overrun,
    // EVPN route length overrun, attribute too short to name a family.
    auto disable = [](const Bytes &mp, AfiSafi fam) {
        auto d = decode(update_body({}, cat({kOrigin, kAsPath, pa(0x80, 14, mp)}), {}));
        expect(d, UpdateAction::AfiSafiDisable, err::kOptionalAttrError);
        EXPECT_EQ(d.family, fam);
        EXPECT_FALSE(d.update.mp_reach);
    };
    auto evpn = to_afi_safi(RouteFamily::Evpn), v6 = to_afi_safi(RouteFamily::Ipv6Unicast);
    disable(hex("00194603"
                "0a0000"
                "00"),
            evpn);
    disable(hex("00194604"
                "0a000001"),
            evpn); // no reserved octet
    disable(hex("00020104"
                "0a000001"
                "00"
                "3020010db8"),
            v6);
    disable(hex("00020110"
                "20010db8000000000000000000000001"
                "00"
                "8120010db8"),
            v6);
    disable(hex("00194604"
                "0a000001"
                "00"
                "03ff0000"),
            evpn);
    auto d = decode(update_body({}, cat({kBase, pa(0x80, 14, {0, 2})}), kNlri));
    expect(d, UpdateAction::SessionReset, err::kOptionalAttrError);
    // The same for MP_UNREACH.
    d = decode(update_body({}, pa(0x80, 15, hex("0002018120010db8")), {}));
    expect(d, UpdateAction::AfiSafiDisable, err::kOptionalAttrError);
    // A malformed EVPN route whose own length is consistent: only that UPDATE is withdrawn.
    d = decode(update_body({},
                           cat({kOrigin, kAsPath,
                                pa(0x80, 14,
                                   hex("00194604"
                                       "0a000001"
                                       "00"
                                       "0221"
                                       "00010a0000010001"
                                       "00000000000000000000"
                                       "00000000"
                                       "2f"
                                       "001122334455"
                                       "00"
                                       "00000a"))}),
                           {}));
    expect(d, UpdateAction::TreatAsWithdraw, err::kOptionalAttrError);
    // Families that were not negotiated are ignored, not errors.
    auto v4only = all_families();
    v4only.families = {true, false, false};
    d = decode(update_body({},
                           cat({kOrigin, kAsPath,
                                pa(0x80, 14,
                                   hex("00194603"
                                       "0a0000"
                                       "00"))}),
                           {}),
               v4only);
    EXPECT_EQ(d.action, UpdateAction::Ok);
    EXPECT_FALSE(d.update.mp_reach);
}

TEST(BgpRfc7606, SessionResets) {
    // Duplicate MP_REACH_NLRI: Malformed Attribute List.
    Bytes mp = pa(0x80, 14,
                  hex("00020110"
                      "20010db8000000000000000000000001"
                      "00"
                      "3020010db8"));
    expect(decode(update_body({}, cat({kOrigin, kAsPath, mp, mp}), {})), UpdateAction::SessionReset,
           err::kMalformedAttrList);
    // Withdrawn length beyond the message; attribute length beyond the message.
    expect(decode(Bytes{0, 9, 24, 1, 2}), UpdateAction::SessionReset, err::kMalformedAttrList);
    expect(decode(Bytes{0, 0, 0, 50, 0x40, 1, 1, 0}), UpdateAction::SessionReset,
           err::kMalformedAttrList);
    // Invalid network field: prefix length 33, and a prefix cut short.
    expect(decode(update_body({}, kBase, {33, 1, 2, 3, 4, 5})), UpdateAction::SessionReset,
           err::kInvalidNetworkField);
    expect(decode(update_body({}, kBase, {24, 1, 2})), UpdateAction::SessionReset,
           err::kInvalidNetworkField);
    expect(decode(update_body({40, 1}, {}, {})), UpdateAction::SessionReset,
           err::kInvalidNetworkField);
    // The most severe outcome wins over an earlier treat-as-withdraw.
    expect(decode(update_body({}, cat({pa(0x40, 1, {9}), kAsPath, kNextHop, pa(0x40, 99, {})}),
                              kNlri)),
           UpdateAction::SessionReset, err::kUnrecognizedWellKnown);
}

TEST(BgpRfc7606, AttributeListOverrun) {
    // The last attribute claims more bytes than the attribute list holds: treat-as-withdraw
    // when the NLRI is located, session reset when the routes concerned are unknown.
    Bytes cut = cat({kBase, Bytes{0x80, 4, 9, 0}});
    expect(decode(update_body({}, cut, kNlri)), UpdateAction::TreatAsWithdraw,
           err::kMalformedAttrList);
    expect(decode(update_body({}, cut, {})), UpdateAction::SessionReset, err::kMalformedAttrList);
    Bytes two = cat({kBase, Bytes{0x90, 4}}); // extended length flag but one octet left
    expect(decode(update_body({}, two, kNlri)), UpdateAction::TreatAsWithdraw,
           err::kMalformedAttrList);
}

TEST(BgpRfc7606, TunnelEncapsulationShapeOfCve2023_38802) {
    auto te = [](const char *h) {
        return decode(update_body({}, cat({kBase, pa(0xc0, 23, hex(h))}), kNlri));
    };
    // Valid: VXLAN tunnel with a UDP port sub-TLV and an IPv4 egress endpoint.
    auto ok = te("00080010"
                 "08021234"
                 "060a000000000001"
                 "0a000001");
    EXPECT_EQ(ok.action, UpdateAction::Ok) << ok.reason;
    ASSERT_TRUE(ok.update.attrs.tunnel_encap);
    EXPECT_EQ(ok.update.attrs.tunnel_encap->tunnels.at(0).sub_tlvs.size(), 2u);
    for (const char *bad : {"0008000a"
                            "08021234", // TLV longer than attribute
                            "00080004"
                            "0805123400", // sub-TLV overruns TLV
                            "00080003"
                            "800010", // 2-octet sub-TLV length cut
                            "00080004"
                            "08031234", // sub-TLV overruns TLV
                            "00080005"
                            "0803123400", // UDP port of 3 octets
                            "0008000c"
                            "060a000000000002"
                            "0a000001", // IPv6 AFI with an IPv4 address
                            "00080001"
                            "06"})
        expect(te(bad), UpdateAction::TreatAsWithdraw, err::kOptionalAttrError);
}

TEST(BgpRfc7606, UnknownOptionalAttributes) {
    auto d =
        decode(update_body({}, cat({kBase, pa(0xc0, 200, {1, 2}), pa(0x80, 201, {3})}), kNlri));
    EXPECT_EQ(d.action, UpdateAction::Ok);
    ASSERT_EQ(d.update.attrs.unknown.size(), 1u); // non-transitive one dropped
    EXPECT_EQ(d.update.attrs.unknown[0].type, 200);
    EXPECT_EQ(d.update.attrs.unknown[0].flags, 0xe0); // Partial set for propagation
}

// ---------------------------------------------------------------------------------------
// Packing encoder and End-of-RIB

namespace {
// Decodes back-to-back UPDATEs; every one but the last must be too full to take another
// route of `route_len` bytes.
template <class Route, class Get>
std::vector<Route> collect(const Bytes &buf, const CodecContext &ctx, size_t route_len, Get get) {
    std::vector<Route> all;
    auto msgs = split(buf);
    for (size_t i = 0; i < msgs.size(); i++) {
        auto m = msgs[i];
        EXPECT_LE(m.size(), ctx.max_message_len());
        if (i + 1 < msgs.size()) {
            EXPECT_GT(m.size() + route_len, ctx.max_message_len());
        }
        auto d = decode_msg(m, ctx);
        EXPECT_EQ(d.action, UpdateAction::Ok) << d.reason;
        auto part = get(d.update);
        all.insert(all.end(), part.begin(), part.end());
    }
    return all;
}
PathAttrs simple_attrs() {
    PathAttrs a;
    a.origin = Origin::Igp;
    a.as_path = AsPath{{{SegmentType::AsSequence, {65001}}}};
    a.communities = {1, 2, 3};
    return a;
}
} // namespace

TEST(BgpEncoder, PacksIpv4Prefixes) {
    std::vector<PrefixNlri> routes;
    for (uint32_t i = 0; i < 5000; i++)
        routes.push_back({0, {IpAddr::v4(0x0a000000 + (i << 8)), 24}});
    auto ctx = all_families();
    Bytes buf;
    size_t n = encode_announce(RouteFamily::Ipv4Unicast, simple_attrs(), {ip("10.0.0.1"), {}},
                               routes, ctx, buf);
    // 4096 - 23 (header, lengths) - 35 (attributes) leaves room for 1009 /24s per UPDATE.
    EXPECT_EQ(n, 5u);
    auto got = collect<PrefixNlri>(buf, ctx, 4, [](const Update &u) { return u.nlri; });
    EXPECT_EQ(got, routes);

    ctx.extended_message = true;
    buf.clear();
    EXPECT_EQ(encode_announce(RouteFamily::Ipv4Unicast, simple_attrs(), {ip("10.0.0.1"), {}},
                              routes, ctx, buf),
              1u);

    buf.clear();
    ctx.extended_message = false;
    EXPECT_EQ(encode_withdraw(RouteFamily::Ipv4Unicast, routes, ctx, buf), 5u);
    EXPECT_EQ(collect<PrefixNlri>(buf, ctx, 4, [](const Update &u) { return u.withdrawn; }),
              routes);
}

TEST(BgpEncoder, PacksIpv6AndRfc8950Ipv4) {
    std::vector<PrefixNlri> routes;
    for (uint32_t i = 0; i < 3000; i++) {
        uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, uint8_t(i >> 8), uint8_t(i)};
        routes.push_back({0, {IpAddr::v6(b), 48}});
    }
    auto ctx = all_families();
    Bytes buf;
    size_t n = encode_announce(RouteFamily::Ipv6Unicast, simple_attrs(),
                               {ip("2001:db8::1"), ip("fe80::1")}, routes, ctx, buf);
    EXPECT_EQ(n, split(buf).size());
    auto get = [](const Update &u) {
        return u.mp_reach ? u.mp_reach->prefixes : std::vector<PrefixNlri>{};
    };
    EXPECT_EQ(collect<PrefixNlri>(buf, ctx, 7, get), routes);
    buf.clear();
    encode_withdraw(RouteFamily::Ipv6Unicast, routes, ctx, buf);
    EXPECT_EQ(
        collect<PrefixNlri>(buf, ctx, 7, [](const Update &u) { return u.mp_unreach->prefixes; }),
        routes);
    // IPv4 routes with an IPv6 next hop go in MP_REACH_NLRI.
    std::vector<PrefixNlri> v4{{0, pfx("192.0.2.0/24")}};
    buf.clear();
    encode_announce(RouteFamily::Ipv4Unicast, simple_attrs(), {ip("2001:db8::1"), {}}, v4, ctx,
                    buf);
    auto d = decode_msg(buf, ctx);
    ASSERT_TRUE(d.update.mp_reach);
    EXPECT_EQ(d.update.mp_reach->family, to_afi_safi(RouteFamily::Ipv4Unicast));
    EXPECT_EQ(d.update.mp_reach->prefixes, v4);
}

TEST(BgpEncoder, PacksEvpnType2) {
    std::vector<EvpnNlri> routes;
    for (uint32_t i = 0; i < 1000; i++) {
        MacAddr m{{0, 0x11, 0, 0, uint8_t(i >> 8), uint8_t(i)}};
        routes.push_back(
            {0, EvpnMacIp{rd("10.0.0.1:10"), {}, 0, m, IpAddr::v4(0x0a010000 + i), 10, 100}});
    }
    auto a = simple_attrs();
    a.ext_communities = {ExtCommunity::route_target(*RouteTarget::parse("65001:10")),
                         ExtCommunity::encapsulation(kTunnelVxlan)};
    auto ctx = all_families();
    Bytes buf;
    size_t n = encode_announce(a, {ip("10.0.0.1"), {}}, routes, ctx, buf);
    EXPECT_EQ(n, split(buf).size());
    auto got = collect<EvpnNlri>(buf, ctx, 42, [](const Update &u) { return u.mp_reach->evpn; });
    EXPECT_EQ(got, routes);
    buf.clear();
    encode_withdraw(routes, ctx, buf);
    EXPECT_EQ(collect<EvpnNlri>(buf, ctx, 42, [](const Update &u) { return u.mp_unreach->evpn; }),
              routes);
}

TEST(BgpEncoder, OversizedAttributesAndUpdates) {
    auto a = simple_attrs();
    a.communities.assign(1100, 7); // 4400 bytes
    std::vector<PrefixNlri> routes{{0, pfx("192.0.2.0/24")}};
    Bytes buf;
    EXPECT_EQ(encode_announce(RouteFamily::Ipv4Unicast, a, {ip("10.0.0.1"), {}}, routes,
                              all_families(), buf),
              0u);
    EXPECT_TRUE(buf.empty());
    Update u;
    u.attrs = a;
    EXPECT_FALSE(encode_update(u, all_families(), buf));
    EXPECT_TRUE(buf.empty());
    auto ext = all_families();
    ext.extended_message = true;
    EXPECT_TRUE(encode_update(u, ext, buf));
    EXPECT_EQ(decode_msg(buf, ext).update, u);
}

TEST(BgpEncoder, EndOfRib) {
    for (auto f : {RouteFamily::Ipv4Unicast, RouteFamily::Ipv6Unicast, RouteFamily::Evpn}) {
        Bytes b;
        encode_end_of_rib(f, b);
        auto d = decode_msg(b, all_families());
        EXPECT_EQ(d.action, UpdateAction::Ok);
        EXPECT_EQ(end_of_rib(d.update), to_afi_safi(f)) << family_name(f);
    }
    Bytes b;
    encode_end_of_rib(RouteFamily::Ipv4Unicast, b);
    EXPECT_EQ(b.size(), 23u);
    EXPECT_FALSE(end_of_rib(decode(update_body({}, kBase, kNlri)).update));
}
