// EVPN <-> dataplane translation: speaker notifications to EvpnMsgs, EvpnMsgs to overlay
// updates (shared, reference-counted tunnel next hops, removable again), local MACs to
// LocalMac events, and the bgp.evpn <-> vxlan configuration link.
#include "control/bgp/speaker.hpp"
#include "control/config/config.hpp"
#include "control/fib/evpn.hpp"
#include "control/fib/ring.hpp"
#include "tests/unit/fib_model.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <random>

using namespace vleaf;
using Op = Update::Op;
using fib::EvpnMsg;

namespace {

Prefix P(const char *s) {
    return *Prefix::parse(s, true);
}
IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}
MacAddr M(uint8_t b) {
    return MacAddr{{2, 0, 0, 0, 0, b}};
}

// The first update `op` at or after log[from].
const Update *find(const std::vector<Update> &log, size_t from, Op op) {
    for (size_t k = from; k < log.size(); k++)
        if (log[k].op == op) return &log[k];
    return nullptr;
}

size_t count(const std::vector<Update> &log, Op op) {
    return size_t(
        std::count_if(log.begin(), log.end(), [&](const Update &u) { return u.op == op; }));
}

TEST(EvpnTranslate, L2ChangesBecomeMacAndFloodMessages) {
    bgp::EvpnL2Change c{bgp::EvpnL2Change::MacRemote,
                        10,
                        M(1),
                        A("10.9.9.9"),
                        {A("192.168.10.5"), A("fd00:10::5")}};
    EvpnMsg m = fib::evpn_l2_msg(c);
    EXPECT_EQ(m.op, EvpnMsg::Op::MacSet);
    EXPECT_EQ(m.id, 10u);
    EXPECT_EQ(m.mac, M(1));
    EXPECT_EQ(m.vtep, A("10.9.9.9"));
    ASSERT_EQ(m.n, 2);
    EXPECT_EQ(m.ips[1], A("fd00:10::5"));
    c.kind = bgp::EvpnL2Change::MacGone;
    EXPECT_EQ(fib::evpn_l2_msg(c).op, EvpnMsg::Op::MacDel);
    c.kind = bgp::EvpnL2Change::FloodAdd;
    EXPECT_EQ(fib::evpn_l2_msg(c).op, EvpnMsg::Op::FloodAdd);
    c.kind = bgp::EvpnL2Change::FloodRemove;
    EXPECT_EQ(fib::evpn_l2_msg(c).op, EvpnMsg::Op::FloodDel);
}

TEST(EvpnTranslate, VrfBestPathsBecomeTunnelHopsWithVniAndRouterMac) {
    bgp::AttrData a, b, no_rmac;
    a.next_hop.addr = A("10.9.9.1");
    a.attrs.ext_communities.push_back(bgp::ExtCommunity::router_mac(M(0xa)));
    b.next_hop.addr = A("10.9.9.2");
    b.attrs.ext_communities.push_back(bgp::ExtCommunity::router_mac(M(0xb)));
    no_rmac.next_hop.addr = A("10.9.9.3");
    std::vector<bgp::Path> now{{&a, 0, 1}, {&b, 0, 2}, {&no_rmac, 0, 3}};
    std::vector<uint32_t> vnis{100, 101, 100};
    Prefix p = P("10.30.0.0/16");
    bgp::RibChange ch{bgp::RouteFamily::Ipv4Unicast, 5, &p, nullptr, {}, now, "vpn1", vnis};
    EvpnMsg m = fib::evpn_route_msg(ch, 1);
    EXPECT_EQ(m.op, EvpnMsg::Op::RouteSet);
    EXPECT_EQ(m.id, 1u); // the dataplane's VRF, not the speaker's
    EXPECT_EQ(m.prefix, p);
    ASSERT_EQ(m.n, 2); // no router MAC: cannot be encapsulated (RFC 9135)
    EXPECT_EQ(m.hops[0].vtep, A("10.9.9.1"));
    EXPECT_EQ(m.hops[0].vni, 100u);
    EXPECT_EQ(m.hops[0].router_mac, M(0xa));
    EXPECT_EQ(m.hops[1].vni, 101u);
    EXPECT_EQ(m.hops[1].router_mac, M(0xb));
    bgp::RibChange gone{bgp::RouteFamily::Ipv4Unicast, 5, &p, nullptr, now, {}, "vpn1", {}};
    EXPECT_EQ(fib::evpn_route_msg(gone, 1).op, EvpnMsg::Op::RouteDel);
}

class EvpnWriterTest : public ::testing::Test {
  protected:
    test::Model model;
    fib::Programmer prog{[this](const Update &u) { model.apply(u); }};
    std::map<std::pair<uint16_t, IpAddr>, MacAddr> bindings;
    std::vector<fib::Event> events;
    std::unique_ptr<fib::EvpnWriter> w;
    uint16_t bd = 0;

    void SetUp() override {
        prog.add_interface(0, "underlay", 7, 0, {P("10.9.9.254/24")});
        bd = prog.add_bridge_domain(10, 1, std::nullopt);
        fib::EvpnWriter::Hooks h;
        h.binding = [this](uint16_t b, const IpAddr &ip, std::optional<MacAddr> mac) {
            if (mac)
                bindings[{b, ip}] = *mac;
            else
                bindings.erase({b, ip});
        };
        h.event = [this](const fib::Event &e) {
            events.push_back(e);
            return true;
        };
        w = std::make_unique<fib::EvpnWriter>(prog, h);
        w->add_l2vni(10, bd);
    }
    EvpnMsg l2(EvpnMsg::Op op, const char *vtep, MacAddr mac = {},
               const std::vector<IpAddr> &ips = {}) {
        EvpnMsg m;
        m.op = op;
        m.id = 10;
        m.vtep = A(vtep);
        m.mac = mac;
        for (auto &ip : ips) m.ips[m.n++] = ip;
        return m;
    }
    EvpnMsg route(const char *prefix, const std::vector<fib::Programmer::TunnelHop> &hops) {
        EvpnMsg m;
        m.op = hops.empty() ? EvpnMsg::Op::RouteDel : EvpnMsg::Op::RouteSet;
        m.id = 1;
        m.prefix = P(prefix);
        for (auto &h : hops) m.hops[m.n++] = h;
        return m;
    }
};

TEST_F(EvpnWriterTest, FloodListFollowsType3) {
    w->apply(l2(EvpnMsg::Op::FloodAdd, "10.9.9.1"));
    ASSERT_EQ(model.vteps.size(), 1u);
    ASSERT_EQ(count(model.log, Op::FloodAdd), 1u);
    EXPECT_EQ(model.log.back().ov.bd, bd);
    uint16_t vtep = model.vteps.begin()->first;
    size_t before = model.log.size();
    w->apply(l2(EvpnMsg::Op::FloodDel, "10.9.9.1"));
    const Update *del = find(model.log, before, Op::FloodDel);
    ASSERT_TRUE(del);
    EXPECT_EQ(del->ov.vtep, vtep);
    EXPECT_TRUE(find(model.log, before, Op::VtepDel)); // nothing else names it
    EXPECT_EQ(w->counters().errors, 0u);
}

TEST_F(EvpnWriterTest, RemoteMacsAndTheirBindingsComeAndGo) {
    w->apply(l2(EvpnMsg::Op::MacSet, "10.9.9.1", M(1), {A("192.168.10.5"), A("fd00::5")}));
    const Update &set = model.log.back();
    ASSERT_EQ(set.op, Op::MacSet);
    EXPECT_EQ(set.ov.dest.kind, MacDest::Kind::Remote);
    EXPECT_TRUE(set.ov.dest.is_static); // never aged or moved by learning
    EXPECT_EQ(bindings.size(), 2u);
    // The MAC keeps one IP: the other binding goes.
    w->apply(l2(EvpnMsg::Op::MacSet, "10.9.9.1", M(1), {A("192.168.10.5")}));
    EXPECT_EQ(bindings.size(), 1u);
    EXPECT_EQ((bindings.at({bd, A("192.168.10.5")})), M(1));
    size_t before = model.log.size();
    w->apply(l2(EvpnMsg::Op::MacDel, "0.0.0.0", M(1)));
    const Update *del = find(model.log, before, Op::MacDel);
    ASSERT_TRUE(del);
    EXPECT_EQ(del->ov.mac, M(1));
    EXPECT_TRUE(bindings.empty());
    EXPECT_EQ(w->counters().remote_macs, 0u);
}

TEST_F(EvpnWriterTest, UnknownVniAndUnreachableVtepAreCountedNotApplied) {
    EvpnMsg m = l2(EvpnMsg::Op::FloodAdd, "10.9.9.1");
    m.id = 11;
    size_t before = model.log.size();
    w->apply(m);
    w->apply(l2(EvpnMsg::Op::MacSet, "172.16.0.1", M(2)));
    EXPECT_EQ(model.log.size(), before);
    EXPECT_EQ(w->counters().errors, 2u);
}

TEST_F(EvpnWriterTest, VrfRoutesShareTunnelNexthopsAndReleaseThem) {
    fib::Programmer::TunnelHop h1{A("10.9.9.1"), 100, M(0xa)}, h2{A("10.9.9.2"), 100, M(0xb)};
    w->apply(route("10.30.0.0/16", {h1}));
    w->apply(route("192.168.10.5/32", {h1})); // a type-2 host route in the same VRF
    NhId t = model.routes.at({1, P("10.30.0.0/16")});
    EXPECT_EQ(model.routes.at({1, P("192.168.10.5/32")}), t);
    EXPECT_EQ(model.nhs.at(t).kind, NhKind::Tunnel);
    EXPECT_EQ(model.nhs.at(t).vni, 100u);
    EXPECT_EQ(model.nhs.at(t).mac, M(0xa));
    // ECMP over two VTEPs, then back to one; the tunnel stays while a route uses it.
    w->apply(route("10.30.0.0/16", {h1, h2}));
    NhId g = model.routes.at({1, P("10.30.0.0/16")});
    EXPECT_EQ(model.nhs.at(g).kind, NhKind::Ecmp);
    EXPECT_EQ(model.nhs.at(g).n_members, 2);
    w->apply(route("10.30.0.0/16", {}));
    EXPECT_FALSE(model.routes.count({1, P("10.30.0.0/16")}));
    EXPECT_FALSE(model.nhs.count(g));
    EXPECT_TRUE(model.nhs.count(t));
    w->apply(route("192.168.10.5/32", {}));
    EXPECT_FALSE(model.nhs.count(t)); // the last user gone: the tunnel next hop too
    EXPECT_TRUE(model.vteps.empty()); // and the VTEPs
    auto routes = prog.routes();
    EXPECT_TRUE(
        std::none_of(routes.begin(), routes.end(), [](auto &r) { return r.type == "evpn"; }));
}

TEST_F(EvpnWriterTest, ConfiguredRoutesWinOverEvpn) {
    ASSERT_EQ(prog.add_tunnel_route(1, P("10.30.0.0/16"), A("10.9.9.3"), 100, M(3)), "");
    NhId mine = model.routes.at({1, P("10.30.0.0/16")});
    w->apply(route("10.30.0.0/16", {{A("10.9.9.1"), 100, M(0xa)}}));
    w->apply(route("10.30.0.0/16", {}));
    EXPECT_EQ(model.routes.at({1, P("10.30.0.0/16")}), mine);
    EXPECT_EQ(prog.counters().evpn_shadowed, 1u);
}

TEST_F(EvpnWriterTest, LocalMacsAndIpsAreOriginatedAndWithdrawn) {
    w->local_ip(bd, M(5), A("192.168.10.7")); // MAC not learned here: nothing
    EXPECT_TRUE(events.empty());
    w->local_mac(bd, M(5), true);
    w->local_mac(bd, M(5), true); // seen again: nothing new
    w->local_ip(bd, M(5), A("192.168.10.7"));
    w->local_ip(bd, M(5), A("192.168.10.7"));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].kind, fib::Event::Kind::LocalMac);
    EXPECT_TRUE(events[0].reachable);
    EXPECT_EQ(events[0].vni, 10u);
    EXPECT_FALSE(events[0].has_ip);
    EXPECT_TRUE(events[1].has_ip);
    EXPECT_EQ(events[1].ip, A("192.168.10.7"));
    w->local_mac(bd, M(5), false); // aged: the MAC/IP and the MAC routes are withdrawn
    ASSERT_EQ(events.size(), 4u);
    EXPECT_FALSE(events[2].reachable);
    EXPECT_TRUE(events[2].has_ip);
    EXPECT_FALSE(events[3].reachable);
    EXPECT_FALSE(events[3].has_ip);
    EXPECT_EQ(w->local_macs(), 0u);
}

TEST_F(EvpnWriterTest, ALocalMacThatMovedToARemoteVtepIsNoLongerOurs) {
    w->local_mac(bd, M(6), true);
    w->apply(l2(EvpnMsg::Op::MacSet, "10.9.9.1", M(6)));
    EXPECT_EQ(w->local_macs(), 0u);
    w->local_mac(bd, M(6), false);
    EXPECT_EQ(events.size(), 1u); // the speaker already withdrew it (MAC mobility)
}

// --- speaker -> EVPN ring -> writer: coalescing, ring-full policy, resync ---

// The speaker's EVPN tables fed by a remote iBGP peer, the EvpnFeed on a small ring and
// the writer on the dataplane model. State is compared as (bd or VRF, key) -> VTEPs.
class EvpnFeedTest : public ::testing::Test {
  protected:
    bgp::Speaker speaker{bgp::parse_config(YAML::Load(R"(
asn: 65001
router_id: 10.9.9.254
listen_address: ""
evpn:
  vrfs: [{name: vpn1, l3vni: 100, router_mac: "02:00:00:00:00:64"}]
  vnis: [{vni: 10, vrf: vpn1}]
)"))};
    test::Model model;
    fib::Programmer prog{[this](const Update &u) { model.apply(u); }};
    std::unique_ptr<fib::EvpnRing> ring;
    std::unique_ptr<fib::EvpnFeed> feed;
    std::unique_ptr<fib::EvpnWriter> w;
    bgp::PeerId peer = 0;
    uint16_t bd = 0;

    void make(size_t ring_size, size_t limit) {
        prog.add_interface(0, "underlay", 7, 0, {P("10.9.9.254/24")});
        bd = prog.add_bridge_domain(10, 1, std::nullopt);
        ring = std::make_unique<fib::EvpnRing>(ring_size);
        feed = std::make_unique<fib::EvpnFeed>(
            speaker, *ring, std::map<std::string, uint32_t>{{"vpn1", 1}}, limit, nullptr);
        w = std::make_unique<fib::EvpnWriter>(prog, fib::EvpnWriter::Hooks{});
        w->add_l2vni(10, bd);
        bgp::RibPeer p;
        p.address = A("10.9.9.200");
        p.asn = 65001;
        p.ibgp = true;
        p.router_id = 0x0a0909c8;
        peer = speaker.rib().add_peer(p);
        speaker.start_peers(); // the EVPN tables from the configuration; no peer to start
    }
    // A route of VTEP 10.9.9.`vtep` with route target 65001:`rt`, announced or withdrawn.
    void route(const bgp::EvpnNlri &n, int vtep, uint32_t rt, bool announce,
               std::optional<MacAddr> rmac = std::nullopt) {
        if (!announce) {
            speaker.rib().withdraw(peer, n);
            return;
        }
        bgp::PathAttrs a;
        a.origin = bgp::Origin::Igp;
        a.as_path = bgp::AsPath{};
        a.local_pref = 100;
        a.ext_communities.push_back(bgp::ExtCommunity::route_target(
            *bgp::RouteTarget::parse("65001:" + std::to_string(rt))));
        a.ext_communities.push_back(bgp::ExtCommunity::encapsulation(bgp::kTunnelVxlan));
        if (rmac) a.ext_communities.push_back(bgp::ExtCommunity::router_mac(*rmac));
        IpAddr nh = A(("10.9.9." + std::to_string(vtep)).c_str());
        auto *attrs = speaker.rib().intern(std::move(a), bgp::NextHop{nh, {}});
        speaker.rib().update(peer, n, attrs);
        speaker.rib().discard_unused(attrs);
    }
    bgp::RouteDistinguisher rd(int vtep) {
        return {1, (10u << 24) | (9u << 16) | (9u << 8) | uint32_t(vtep), 10};
    }
    void mac(int vtep, uint8_t m, bool announce) {
        bgp::EvpnNlri n;
        bgp::EvpnMacIp r;
        r.rd = rd(vtep);
        r.mac = M(m);
        r.label1 = 10;
        n.route = r;
        route(n, vtep, 10, announce);
    }
    void imet(int vtep, bool announce) {
        bgp::EvpnNlri n;
        n.route = bgp::EvpnImet{rd(vtep), 0, A(("10.9.9." + std::to_string(vtep)).c_str())};
        route(n, vtep, 10, announce);
    }
    void prefix(int vtep, int k, bool announce) {
        bgp::EvpnNlri n;
        bgp::EvpnIpPrefix r;
        r.rd = rd(vtep);
        r.prefix = P(("10.40." + std::to_string(k) + ".0/24").c_str());
        r.gateway = A("0.0.0.0");
        r.label = 100;
        n.route = r;
        route(n, vtep, 100, announce, M(uint8_t(0xa0 + vtep)));
    }
    // Producer and writer take turns until nothing waits.
    void pump() {
        for (int k = 0; k < 100000 && (feed->pending() || ring->read_available()); k++) {
            feed->flush();
            fib::Programmer::Scope batch(prog);
            w->drain(*ring, 1 << 20);
        }
        ASSERT_FALSE(feed->pending());
    }

    using State = std::map<std::string, std::set<std::string>>;
    // What the speaker's tables say the dataplane must hold.
    State control() {
        State s;
        for (auto &[vni, m] : speaker.evpn().mac_vrfs()) {
            for (auto &[mac, e] : m.macs)
                if (e.owner == bgp::MacEntry::Owner::Remote)
                    s["mac " + mac.str()].insert(e.owner_vtep.str());
            for (auto &[k, vtep] : m.imet) s["flood"].insert(vtep.str());
        }
        for (auto &[prefix, e] : speaker.evpn().ip_vrfs().at("vpn1").routes)
            for (size_t k = 0; k < e.n_best; k++)
                s["route " + prefix.str()].insert(e.cands[k].path.attrs->next_hop.addr.str());
        return s;
    }
    // What the dataplane model holds.
    State dataplane() {
        State s;
        auto vtep = [&](uint16_t id) { return model.vteps.at(id).ov.addr.str(); };
        for (auto &[k, v] : model.remote_macs) s["mac " + k.second.str()].insert(vtep(v));
        for (auto &[b, v] : model.floods) s["flood"].insert(vtep(v));
        for (auto &[k, nh] : model.routes) {
            if (k.first != 1) continue;
            const Nexthop &n = model.nhs.at(nh);
            if (n.kind == NhKind::Tunnel) s["route " + k.second.str()].insert(vtep(n.vtep));
            for (unsigned i = 0; n.kind == NhKind::Ecmp && i < n.n_members; i++)
                s["route " + k.second.str()].insert(vtep(model.nhs.at(n.members[i]).vtep));
        }
        return s;
    }
};

TEST_F(EvpnFeedTest, ChangesGoStraightIntoTheRingWhenItHasRoom) {
    make(64, 1000);
    imet(1, true);
    mac(1, 1, true);
    prefix(2, 0, true);
    EXPECT_EQ(ring->read_available(), 3u);
    EXPECT_EQ(feed->backlog(), 0u);
    pump();
    EXPECT_EQ(dataplane(), control());
    EXPECT_EQ(control().size(), 3u);
    EXPECT_EQ(w->counters().errors, 0u);
}

TEST_F(EvpnFeedTest, FullRingBacklogCoalescesAddThenDeleteAndLosesNothing) {
    make(4, 1000);
    imet(1, true);
    for (uint8_t m = 1; m <= 3; m++) mac(1, m, true);
    ASSERT_EQ(ring->read_available(), 4u);
    mac(2, 0x50, true); // added then withdrawn while waiting
    mac(2, 0x50, false);
    mac(1, 1, false); // withdrawn, announced again, withdrawn
    mac(1, 1, true);
    mac(1, 1, false);
    prefix(2, 7, true);
    EXPECT_EQ(feed->backlog(), 3u) << "one entry per MAC or prefix, whatever the changes";
    EXPECT_GT(feed->counters().ring_full, 0u);
    pump();
    EXPECT_EQ(feed->counters().resyncs, 0u);
    EXPECT_EQ(dataplane(), control());
    for (auto &u : model.log)
        EXPECT_FALSE(u.op == Op::MacSet && u.ov.mac == M(0x50))
            << "an add then a delete reached the dataplane";
}

TEST_F(EvpnFeedTest, BacklogPastLimitResyncsAndTheDataplaneEndsEqualToTheSpeaker) {
    make(8, 16);
    for (int v = 1; v <= 3; v++) imet(v, true);
    for (uint8_t m = 0; m < 30; m++) {
        mac(1 + m % 3, m, true);
        prefix(1 + m % 2, m, true);
        pump(); // a writer that keeps up
    }
    ASSERT_EQ(dataplane(), control());
    // The writer stalls: MACs and prefixes go, others come, a VTEP leaves the flood list.
    for (uint8_t m = 0; m < 20; m++) mac(1 + m % 3, m, false);
    for (uint8_t m = 100; m < 140; m++) mac(1 + m % 3, m, true);
    for (int k = 0; k < 10; k++) prefix(1 + k % 2, k, false);
    imet(3, false);
    EXPECT_EQ(feed->counters().resyncs, 1u);
    EXPECT_TRUE(feed->resyncing());
    pump();
    EXPECT_EQ(w->counters().resyncs, 1u);
    // What overflowed the backlog was dropped: only the resync's sweep removes it.
    EXPECT_GT(w->counters().resync_removed, 0u);
    EXPECT_EQ(dataplane(), control());
    EXPECT_EQ(control().size(), 1 + 50 + 20) << "flood list, MACs, prefixes";
    EXPECT_EQ(control()["flood"].size(), 2u);
    EXPECT_EQ(w->counters().errors, 0u);
}

TEST_F(EvpnFeedTest, RandomChurnThroughATinyRingEndsWithTheDataplaneEqualToTheSpeaker) {
    make(8, 24);
    std::mt19937 rng(11);
    for (int k = 0; k < 6000; k++) {
        int vtep = 1 + int(rng() % 3);
        bool announce = rng() % 3 != 0;
        switch (rng() % 4) {
        case 0:
            imet(vtep, announce);
            break;
        case 1:
            prefix(vtep, int(rng() % 40), announce);
            break;
        default:
            mac(vtep, uint8_t(rng() % 60), announce);
            break;
        }
        if (rng() % 40 == 0) {
            feed->flush();
            fib::Programmer::Scope batch(prog);
            w->drain(*ring, rng() % 6); // a slow writer
        }
        if (rng() % 2000 == 0) feed->request_resync();
    }
    pump();
    EXPECT_EQ(dataplane(), control());
    EXPECT_GT(control().size(), 40u);
    EXPECT_GT(feed->counters().resyncs, 0u);
    // A resync requested during another restarts it: one ResyncEnd for both.
    EXPECT_GT(w->counters().resyncs, 0u);
}

// --- configuration: bgp.evpn and the dataplane sections describe the same VNIs ---

const std::string kLeaf = R"(
ports:
  - {name: p0, device: net_null0}
interfaces:
  - {name: u, port: p0, ipv4: [10.9.9.254/24]}
vrfs:
  - {name: vpn1, id: 1, l3vni: 100, router_mac: "02:00:00:00:00:64"}
vxlan: {source: 10.9.9.254}
bridge_domains:
  - {vni: 10, vrf: vpn1, gateway_mac: "00:00:5e:00:01:01", gateway_ipv4: [192.168.10.1/24]}
  - {vni: 20}
)";

std::string error_of(const std::string &yaml) {
    try {
        config::parse(yaml, "t.yaml");
    } catch (const config::ConfigError &e) {
        return e.what();
    }
    ADD_FAILURE() << "accepted:\n" << yaml;
    return "";
}

TEST(EvpnConfig, BgpEvpnIsCompletedFromTheDataplaneSections) {
    auto c = config::parse(kLeaf + "bgp: {asn: 65001, router_id: 1.1.1.1}\n", "t.yaml");
    const auto &e = c.bgp->evpn;
    EXPECT_EQ(e.vtep, A("10.9.9.254"));
    ASSERT_EQ(e.vrfs.size(), 1u);
    EXPECT_EQ(e.vrfs[0].name, "vpn1");
    EXPECT_EQ(e.vrfs[0].l3vni, 100u);
    EXPECT_EQ(e.vrfs[0].router_mac, (MacAddr{{2, 0, 0, 0, 0, 0x64}}));
    ASSERT_EQ(e.vnis.size(), 2u);
    EXPECT_EQ(e.vnis[0].vni, 10u);
    EXPECT_EQ(e.vnis[0].vrf, "vpn1"); // symmetric IRB through the bridge domain's VRF
    EXPECT_EQ(e.vnis[1].vrf, "");     // the default VRF has no L3VNI
    // Given explicitly (e.g. for route targets) and consistent: kept as written.
    auto d = config::parse(kLeaf + R"(bgp:
  asn: 65001
  router_id: 1.1.1.1
  evpn:
    vtep: 10.9.9.254
    vrfs: [{name: vpn1, l3vni: 100, router_mac: "02:00:00:00:00:64", route_targets: ["1:1"]}]
    vnis: [{vni: 20, route_targets: ["2:2"]}]
)",
                           "t.yaml");
    ASSERT_EQ(d.bgp->evpn.vnis.size(), 2u);
    EXPECT_EQ(d.bgp->evpn.vnis[0].import_targets.size(), 1u);
    EXPECT_EQ(d.bgp->evpn.vnis[1].vni, 10u);
}

TEST(EvpnConfig, DisagreementsNameTheField) {
    auto bgp = [](const std::string &evpn) {
        return kLeaf + "bgp:\n  asn: 65001\n  router_id: 1.1.1.1\n  evpn:\n" + evpn;
    };
    EXPECT_EQ(error_of(bgp("    vtep: 10.9.9.1\n"))
                  .rfind("t.yaml: bgp.evpn.vtep: 10.9.9.1 is not "
                         "vxlan.source",
                         0),
              0u);
    EXPECT_EQ(error_of(bgp("    vnis: [30]\n")),
              "t.yaml: bgp.evpn.vnis[0].vni: no bridge domain has VNI 30");
    EXPECT_EQ(error_of(bgp("    vrfs: [{name: vpn2, l3vni: 100, router_mac: "
                           "\"02:00:00:00:00:64\"}]\n"))
                  .rfind("t.yaml: bgp.evpn.vrfs[0].name: 'vpn2' is not one of vrfs", 0),
              0u);
    EXPECT_NE(error_of(bgp("    vrfs: [{name: vpn1, l3vni: 101, router_mac: "
                           "\"02:00:00:00:00:64\"}]\n"))
                  .find("bgp.evpn.vrfs[0].l3vni: 101 differs"),
              std::string::npos);
    EXPECT_NE(error_of(bgp("    vrfs: [{name: vpn1, l3vni: 100, router_mac: "
                           "\"02:00:00:00:00:65\"}]\n"))
                  .find("bgp.evpn.vrfs[0].router_mac"),
              std::string::npos);
    EXPECT_NE(error_of(bgp("    vrfs: [{name: vpn1, l3vni: 100, router_mac: "
                           "\"02:00:00:00:00:64\"}]\n    vnis: [{vni: 20, vrf: vpn1}]\n"))
                  .find("bgp.evpn.vnis[0].vrf: 'vpn1' is not the VRF of the bridge domain"),
              std::string::npos);
}

} // namespace
