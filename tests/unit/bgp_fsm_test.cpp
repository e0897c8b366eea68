// RFC 4271 FSM driven with a fake clock: transitions, timers, OPEN checks, capability
// negotiation, NOTIFICATION codes and the collision rule.
#include "control/bgp/fsm.hpp"

#include <gtest/gtest.h>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

const TimePoint t0{};

LocalParams params(bool passive = false) {
    LocalParams lp;
    lp.asn = 65001;
    lp.bgp_id = 0x0a000001;
    lp.remote_as = 65002;
    lp.hold = 90;
    lp.keepalive = 30;
    lp.connect_retry = 5;
    lp.families = family_bit(RouteFamily::Ipv4Unicast) | family_bit(RouteFamily::Ipv6Unicast);
    lp.passive = passive;
    return lp;
}

Open peer_open(uint32_t asn = 65002, uint16_t hold = 30, uint32_t id = 0x0a000002) {
    Capabilities caps;
    caps.multiprotocol = {to_afi_safi(RouteFamily::Ipv4Unicast), to_afi_safi(RouteFamily::Evpn)};
    caps.route_refresh = true;
    return make_open(asn, hold, id, caps);
}

std::vector<FsmAction::Kind> kinds(const FsmActions &a) {
    std::vector<FsmAction::Kind> k;
    for (auto &x : a) k.push_back(x.kind);
    return k;
}

const Notification *sent(const FsmActions &a) {
    for (auto &x : a)
        if (x.kind == FsmAction::SendNotification) return &x.error;
    return nullptr;
}

// Brings an FSM to Established at t0.
Fsm established(const LocalParams &lp = params(), const Open &o = peer_open()) {
    Fsm f(lp);
    f.handle(FsmEvent::ManualStart, t0);
    f.handle(FsmEvent::TcpConnected, t0);
    f.open_received(o, t0);
    f.handle(FsmEvent::KeepaliveReceived, t0);
    return f;
}

} // namespace

TEST(BgpFsm, ActiveStartConnectsAndRetries) {
    Fsm f(params());
    EXPECT_EQ(kinds(f.handle(FsmEvent::ManualStart, t0)), std::vector{FsmAction::Connect});
    EXPECT_EQ(f.state(), FsmState::Connect);
    EXPECT_EQ(kinds(f.handle(FsmEvent::TcpFailed, t0)), std::vector{FsmAction::Disconnect});
    EXPECT_EQ(f.state(), FsmState::Active);
    EXPECT_TRUE(f.expire(t0 + Seconds(4)).empty()) << "ConnectRetry is 5 s";
    EXPECT_EQ(kinds(f.expire(t0 + Seconds(5))), std::vector{FsmAction::Connect});
    EXPECT_EQ(f.state(), FsmState::Connect);
}

TEST(BgpFsm, PassiveWaitsInActive) {
    Fsm f(params(true));
    EXPECT_TRUE(f.handle(FsmEvent::ManualStart, t0).empty());
    EXPECT_EQ(f.state(), FsmState::Active);
    EXPECT_TRUE(f.expire(t0 + Seconds(600)).empty());
    EXPECT_EQ(kinds(f.handle(FsmEvent::TcpConnected, t0)), std::vector{FsmAction::SendOpen});
    EXPECT_EQ(f.state(), FsmState::OpenSent);
}

TEST(BgpFsm, HandshakeToEstablished) {
    Fsm f(params());
    f.handle(FsmEvent::ManualStart, t0);
    EXPECT_EQ(kinds(f.handle(FsmEvent::TcpConnected, t0)), std::vector{FsmAction::SendOpen});
    EXPECT_EQ(kinds(f.open_received(peer_open(), t0)), std::vector{FsmAction::SendKeepalive});
    EXPECT_EQ(f.state(), FsmState::OpenConfirm);
    EXPECT_EQ(kinds(f.handle(FsmEvent::KeepaliveReceived, t0)),
              std::vector{FsmAction::Established});
    EXPECT_EQ(f.state(), FsmState::Established);
}

TEST(BgpFsm, OpenSentHoldIsFourMinutes) {
    Fsm f(params());
    f.handle(FsmEvent::ManualStart, t0);
    f.handle(FsmEvent::TcpConnected, t0);
    EXPECT_TRUE(f.expire(t0 + Seconds(239)).empty());
    auto a = f.expire(t0 + Seconds(240));
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->code, err::kHoldTimerExpired);
}

TEST(BgpFsm, NegotiatesHoldAndKeepalive) {
    Fsm f = established(params(), peer_open(65002, 30));
    EXPECT_EQ(f.negotiated().hold, 30);
    EXPECT_EQ(f.negotiated().keepalive, 10) << "min(configured 30, hold/3)";
    // Keepalives every 10 s after OpenConfirm (t0).
    EXPECT_TRUE(f.expire(t0 + Seconds(9)).empty());
    EXPECT_EQ(kinds(f.expire(t0 + Seconds(10))), std::vector{FsmAction::SendKeepalive});
    EXPECT_EQ(kinds(f.expire(t0 + Seconds(20))), std::vector{FsmAction::SendKeepalive});
}

TEST(BgpFsm, HoldTimerExpiryDropsAndRestarts) {
    Fsm f = established(params(), peer_open(65002, 30));
    f.handle(FsmEvent::KeepaliveReceived, t0 + Seconds(20)); // hold restarts: now 50 s
    f.expire(t0 + Seconds(49));
    EXPECT_EQ(f.state(), FsmState::Established);
    auto a = f.expire(t0 + Seconds(50));
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->code, err::kHoldTimerExpired);
    EXPECT_EQ(sent(a)->subcode, 0);
    EXPECT_EQ(kinds(a),
              (std::vector{FsmAction::SendNotification, FsmAction::Disconnect, FsmAction::Down}));
    EXPECT_EQ(f.state(), FsmState::Idle);
    // Automatic restart after ConnectRetry.
    EXPECT_EQ(kinds(f.expire(t0 + Seconds(55))), std::vector{FsmAction::Connect});
    EXPECT_EQ(f.state(), FsmState::Connect);
}

TEST(BgpFsm, ZeroHoldTimeMeansNoTimers) {
    Fsm f = established(params(), peer_open(65002, 0));
    EXPECT_EQ(f.negotiated().hold, 0);
    EXPECT_FALSE(f.next_deadline().has_value());
}

TEST(BgpFsm, OpenErrors) {
    struct Case {
        Open open;
        uint8_t subcode;
    } cases[] = {
        {peer_open(65099), err::kBadPeerAs},
        {peer_open(65002, 2), err::kUnacceptableHoldTime},
    };
    for (auto &c : cases) {
        Fsm f(params());
        f.handle(FsmEvent::ManualStart, t0);
        f.handle(FsmEvent::TcpConnected, t0);
        auto a = f.open_received(c.open, t0);
        ASSERT_NE(sent(a), nullptr);
        EXPECT_EQ(sent(a)->code, err::kOpen);
        EXPECT_EQ(sent(a)->subcode, c.subcode);
        EXPECT_EQ(f.state(), FsmState::Idle);
    }
    // RFC 6286: an internal peer with our identifier.
    LocalParams ibgp = params();
    ibgp.remote_as = ibgp.asn;
    Fsm f(ibgp);
    f.handle(FsmEvent::ManualStart, t0);
    f.handle(FsmEvent::TcpConnected, t0);
    auto a = f.open_received(peer_open(65001, 30, ibgp.bgp_id), t0);
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->subcode, err::kBadBgpId);
    // ... while an external peer may share it.
    Fsm e = established(params(), peer_open(65002, 30, params().bgp_id));
    EXPECT_EQ(e.state(), FsmState::Established);
}

TEST(BgpFsm, UnexpectedMessagesAreFsmErrors) {
    Fsm f(params());
    f.handle(FsmEvent::ManualStart, t0);
    f.handle(FsmEvent::TcpConnected, t0);
    auto a = f.handle(FsmEvent::UpdateReceived, t0);
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->code, err::kFsm);
    EXPECT_EQ(sent(a)->subcode, 1) << "RFC 6608: in OpenSent";

    Fsm g(params());
    g.handle(FsmEvent::ManualStart, t0);
    g.handle(FsmEvent::TcpConnected, t0);
    g.open_received(peer_open(), t0);
    a = g.handle(FsmEvent::UpdateReceived, t0);
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->subcode, 2) << "in OpenConfirm";

    Fsm h = established();
    a = h.open_received(peer_open(), t0);
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->subcode, 3) << "in Established";
}

TEST(BgpFsm, NotificationAndConnectionLossBringSessionDown) {
    Fsm f = established();
    EXPECT_EQ(kinds(f.handle(FsmEvent::NotificationReceived, t0)),
              (std::vector{FsmAction::Disconnect, FsmAction::Down}));
    EXPECT_EQ(f.state(), FsmState::Idle);
    Fsm g = established();
    EXPECT_EQ(kinds(g.handle(FsmEvent::TcpFailed, t0)),
              (std::vector{FsmAction::Disconnect, FsmAction::Down}));
}

TEST(BgpFsm, ManualStopSendsCeaseAndStaysIdle) {
    Fsm f = established();
    auto a = f.handle(FsmEvent::ManualStop, t0);
    ASSERT_NE(sent(a), nullptr);
    EXPECT_EQ(sent(a)->code, err::kCease);
    EXPECT_EQ(sent(a)->subcode, err::kAdminShutdown);
    EXPECT_EQ(f.state(), FsmState::Idle);
    EXPECT_FALSE(f.next_deadline().has_value()) << "no automatic restart after a stop";
}

TEST(BgpFsm, CapabilityNegotiation) {
    LocalParams lp = params();
    Capabilities caps;
    caps.multiprotocol = {to_afi_safi(RouteFamily::Ipv4Unicast), to_afi_safi(RouteFamily::Evpn)};
    caps.route_refresh = true;
    caps.four_octet_as = 65002;
    GracefulRestartCap gr;
    gr.restart_time = 77;
    gr.restarting = true;
    gr.families = {{to_afi_safi(RouteFamily::Ipv4Unicast), true}};
    caps.graceful_restart = gr;
    caps.add_path = {{to_afi_safi(RouteFamily::Ipv4Unicast), AddPathCap::Both}};
    Open o = make_open(65002, 60, 0x0a000002, caps);
    Negotiated n;
    ASSERT_FALSE(check_open(lp, o, n));
    EXPECT_EQ(n.families, family_bit(RouteFamily::Ipv4Unicast)) << "v6 not offered, EVPN not ours";
    EXPECT_TRUE(n.route_refresh);
    EXPECT_TRUE(n.ctx.four_octet_as);
    EXPECT_TRUE(n.peer_gr);
    EXPECT_TRUE(n.peer_restarting);
    EXPECT_EQ(n.peer_restart_time, 77);
    EXPECT_EQ(n.peer_gr_families, family_bit(RouteFamily::Ipv4Unicast));
    EXPECT_TRUE(n.ctx.add_path_rx[size_t(RouteFamily::Ipv4Unicast)]);
    EXPECT_EQ(n.hold, 60);

    // No capabilities at all: IPv4 unicast, 2-octet AS.
    Open plain = make_open(65002, 90, 0x0a000002, {});
    plain.caps.four_octet_as.reset();
    ASSERT_FALSE(check_open(lp, plain, n));
    EXPECT_EQ(n.families, family_bit(RouteFamily::Ipv4Unicast));
    EXPECT_FALSE(n.ctx.four_octet_as);
    EXPECT_FALSE(n.peer_gr);
}

TEST(BgpFsm, FourOctetAsPeer) {
    LocalParams lp = params();
    lp.remote_as = 4200000001u;
    Open o = make_open(4200000001u, 90, 0x0a000002, {});
    EXPECT_EQ(o.my_as, kAsTrans);
    Negotiated n;
    EXPECT_FALSE(check_open(lp, o, n));
    EXPECT_EQ(n.remote_as, 4200000001u);
}

TEST(BgpFsm, LocalOpenAdvertisesOurCapabilities) {
    Open o = local_open(params());
    EXPECT_EQ(o.caps.multiprotocol.size(), 2u);
    EXPECT_TRUE(o.caps.route_refresh);
    EXPECT_EQ(o.caps.four_octet_as, 65001u);
    ASSERT_TRUE(o.caps.graceful_restart);
    EXPECT_EQ(o.caps.graceful_restart->restart_time, 120);
    EXPECT_EQ(o.caps.add_path.size(), 2u);
    for (auto &ap : o.caps.add_path) EXPECT_EQ(ap.mode, AddPathCap::Receive);
    ASSERT_EQ(o.caps.extended_nexthop.size(), 1u);
    EXPECT_EQ(o.caps.extended_nexthop[0].nexthop_afi, uint16_t(Afi::Ipv6));
}

TEST(BgpFsm, CollisionKeepsHigherIdsConnection) {
    // RFC 4271 6.8: the connection initiated by the higher BGP identifier survives.
    EXPECT_TRUE(collision_keep_outgoing(0x0a000002, 0x0a000001));
    EXPECT_FALSE(collision_keep_outgoing(0x0a000001, 0x0a000002));
}
