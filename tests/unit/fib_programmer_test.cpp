// The FIB programmer's bookkeeping: shared next hops, reference counts and ordering.
#include "control/fib/programmer.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

using namespace vleaf;
using Op = Update::Op;

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

// Replays updates the way the dataplane applies them and checks that every reference
// is to something that exists at that moment.
struct Model {
    std::map<NhId, Nexthop> nhs;
    std::map<std::pair<uint32_t, Prefix>, NhId> routes;
    std::map<uint16_t, Update> vteps;
    std::vector<Update> log;

    void apply(const Update &u) {
        log.push_back(u);
        switch (u.op) {
        case Op::NexthopSet:
            for (unsigned k = 0; k < u.nexthop.n_members; k++)
                ASSERT_TRUE(nhs.count(u.nexthop.members[k])) << "member before group";
            if (u.nexthop.kind == NhKind::Tunnel) {
                ASSERT_TRUE(vteps.count(u.nexthop.vtep)) << "tunnel before its VTEP";
            }
            nhs[u.nh] = u.nexthop;
            break;
        case Op::NexthopDel:
            ASSERT_TRUE(nhs.count(u.nh));
            for (auto &[k, v] : routes)
                ASSERT_NE(v, u.nh) << "deleted while " << k.second.str() << " uses it";
            nhs.erase(u.nh);
            break;
        case Op::RouteAdd:
            ASSERT_TRUE(u.nh < kFirstDynamicNh || nhs.count(u.nh)) << "route before its next hop";
            routes[{u.vrf, u.prefix}] = u.nh;
            break;
        case Op::RouteDel:
            ASSERT_EQ(routes.erase({u.vrf, u.prefix}), 1u);
            break;
        case Op::VtepSet:
            ASSERT_TRUE(nhs.count(u.nh)) << "VTEP before its underlay next hop";
            ASSERT_FALSE(vteps.count(u.ov.vtep)) << "VTEP id reused";
            vteps[u.ov.vtep] = u;
            break;
        case Op::FloodAdd:
        case Op::FloodDel:
            ASSERT_TRUE(vteps.count(u.ov.vtep)) << "flood list names an unknown VTEP";
            break;
        case Op::MacSet:
            if (u.ov.dest.kind == MacDest::Kind::Remote) {
                ASSERT_TRUE(vteps.count(u.ov.dest.vtep)) << "MAC behind an unknown VTEP";
            }
            break;
        default:
            break;
        }
    }
};

class ProgrammerTest : public ::testing::Test {
  protected:
    Model model;
    fib::Programmer f{[this](const Update &u) { model.apply(u); }};

    void SetUp() override {
        f.add_interface(0, "a", 7, 0, {P("10.0.1.1/24"), P("fd00:1::1/64")});
        f.add_interface(1, "b", 8, 0, {P("10.0.2.1/24")});
    }
};

TEST_F(ProgrammerTest, InterfaceAddressesBecomeLocalConnectedAndBroadcastRoutes) {
    EXPECT_EQ(model.routes.at({0, P("10.0.1.1/32")}), kNhLocal);
    EXPECT_EQ(model.routes.at({0, P("10.0.1.255/32")}), kNhLocal);
    EXPECT_EQ(model.routes.at({0, P("fd00:1::1/128")}), kNhLocal);
    NhId conn = model.routes.at({0, P("10.0.1.0/24")});
    EXPECT_EQ(model.nhs.at(conn).kind, NhKind::Resolve);
    EXPECT_EQ(model.nhs.at(conn).port, 7);
    EXPECT_EQ(model.routes.at({0, P("fd00:1::/64")}), conn);
}

TEST_F(ProgrammerTest, RoutesThroughOneNeighborShareOneNexthop) {
    ASSERT_EQ(f.add_static(0, P("10.100.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    ASSERT_EQ(f.add_static(0, P("10.101.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    NhId a = model.routes.at({0, P("10.100.0.0/16")});
    EXPECT_EQ(model.routes.at({0, P("10.101.0.0/16")}), a);
    EXPECT_EQ(model.nhs.at(a).kind, NhKind::Unresolved);
    size_t before = model.log.size();
    f.neighbor(1, A("10.0.2.2"), M(9));
    // One next-hop update plus the neighbor's host route, whatever the number of routes.
    ASSERT_EQ(model.log.size(), before + 2);
    EXPECT_EQ(model.nhs.at(a).kind, NhKind::Forward);
    EXPECT_EQ(model.nhs.at(a).mac, M(9));
    EXPECT_EQ(model.routes.at({0, P("10.0.2.2/32")}), a);
}

TEST_F(ProgrammerTest, EcmpGroupIsSharedAndDedupedAndFreedWithItsLastRoute) {
    ASSERT_EQ(f.add_static(0, P("10.200.0.0/16"), {A("10.0.1.2"), A("10.0.2.2")}, {}, false), "");
    ASSERT_EQ(f.add_static(0, P("10.201.0.0/16"), {A("10.0.2.2"), A("10.0.1.2")}, {}, false), "");
    NhId g = model.routes.at({0, P("10.200.0.0/16")});
    EXPECT_EQ(model.routes.at({0, P("10.201.0.0/16")}), g);
    EXPECT_EQ(model.nhs.at(g).kind, NhKind::Ecmp);
    EXPECT_EQ(model.nhs.at(g).n_members, 2);
    ASSERT_EQ(f.add_static(0, P("10.200.0.0/16"), {A("10.0.2.2")}, {}, true), ""); // blackhole now
    EXPECT_TRUE(model.nhs.count(g));
    ASSERT_EQ(f.add_static(0, P("10.201.0.0/16"), {}, {}, true), "");
    EXPECT_FALSE(model.nhs.count(g)) << "group outlived its routes";
    // Its members went with it: nothing refers to them any more.
    EXPECT_EQ(model.nhs.size(), 2u); // the two interfaces' connected next hops
}

TEST_F(ProgrammerTest, LostNeighborRemovesHostRouteAndUnusedAdjacency) {
    f.neighbor(0, A("10.0.1.5"), M(5));
    NhId adj = model.routes.at({0, P("10.0.1.5/32")});
    f.neighbor(0, A("10.0.1.5"), std::nullopt);
    EXPECT_FALSE(model.routes.count({0, P("10.0.1.5/32")}));
    EXPECT_FALSE(model.nhs.count(adj));
    // The freed id is reused, so next-hop ids stay dense.
    f.neighbor(0, A("10.0.1.6"), M(6));
    EXPECT_EQ(model.routes.at({0, P("10.0.1.6/32")}), adj);
}

TEST_F(ProgrammerTest, GatewayOutsideConnectedSubnetsIsRejectedWithoutLeaks) {
    size_t nhs = model.nhs.size();
    EXPECT_NE(f.add_static(0, P("10.9.0.0/16"), {A("10.0.1.2"), A("192.0.2.1")}, {}, false)
                  .find("192.0.2.1"),
              std::string::npos);
    EXPECT_EQ(model.nhs.size(), nhs);
    EXPECT_FALSE(model.routes.count({0, P("10.9.0.0/16")}));
}

TEST_F(ProgrammerTest, ResolveTargets) {
    NhId conn = model.routes.at({0, P("10.0.2.0/24")});
    auto t = f.resolve_target(conn, A("10.0.2.44"));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->ifid, 1);
    EXPECT_EQ(t->ip, A("10.0.2.44"));
    ASSERT_EQ(f.add_static(0, P("10.100.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    t = f.resolve_target(model.routes.at({0, P("10.100.0.0/16")}), A("10.100.3.3"));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->ip, A("10.0.2.2"));
    EXPECT_FALSE(f.resolve_target(kNhLocal, A("10.0.1.1")));
}

TEST_F(ProgrammerTest, RouteViewListsNexthops) {
    ASSERT_EQ(f.add_static(0, P("10.200.0.0/16"), {A("10.0.1.2"), A("10.0.2.2")}, {}, false), "");
    f.neighbor(1, A("10.0.2.2"), M(2));
    for (auto &r : f.routes()) {
        if (r.prefix != P("10.200.0.0/16")) continue;
        EXPECT_EQ(r.type, "static");
        ASSERT_EQ(r.hops.size(), 2u);
        std::set<std::string> macs{r.hops[0].mac, r.hops[1].mac};
        EXPECT_TRUE(macs.count("02:00:00:00:00:02"));
        EXPECT_TRUE(macs.count("")); // 10.0.1.2 unresolved
        return;
    }
    FAIL() << "route missing";
}

TEST_F(ProgrammerTest, TunnelRoutesShareTheirVtepAndTunnelNexthop) {
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.30.0/24"), A("10.0.2.9"), 100, M(0x64)), "");
    ASSERT_EQ(f.add_tunnel_route(1, P("fd00:30::/64"), A("10.0.2.9"), 100, M(0x64)), "");
    NhId t = model.routes.at({1, P("192.168.30.0/24")});
    EXPECT_EQ(model.routes.at({1, P("fd00:30::/64")}), t);
    const Nexthop &n = model.nhs.at(t);
    EXPECT_EQ(n.kind, NhKind::Tunnel);
    EXPECT_EQ(n.vni, 100u);
    EXPECT_EQ(n.mac, M(0x64));
    ASSERT_EQ(model.vteps.size(), 1u);
    const Update &v = model.vteps.at(n.vtep);
    EXPECT_EQ(v.ov.addr, A("10.0.2.9"));
    // The underlay next hop is the VTEP's neighbor on the connected subnet, unresolved.
    EXPECT_EQ(model.nhs.at(v.nh).kind, NhKind::Unresolved);
    auto pending = f.unresolved_vteps();
    ASSERT_EQ(pending.size(), 1u);
    EXPECT_EQ(pending[0].first, 1);
    EXPECT_EQ(pending[0].second, A("10.0.2.9"));
    f.neighbor(1, A("10.0.2.9"), M(9));
    EXPECT_EQ(model.nhs.at(v.nh).kind, NhKind::Forward);
    EXPECT_TRUE(f.unresolved_vteps().empty());
    // Another router MAC is another tunnel next hop through the same VTEP.
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.40.0/24"), A("10.0.2.9"), 100, M(0x65)), "");
    EXPECT_NE(model.routes.at({1, P("192.168.40.0/24")}), t);
    EXPECT_EQ(model.vteps.size(), 1u);
    auto views = f.vteps();
    ASSERT_EQ(views.size(), 1u);
    EXPECT_EQ(views[0].tunnels, 2u);
}

TEST_F(ProgrammerTest, VtepBehindAStaticRouteOrUnreachable) {
    ASSERT_EQ(f.add_static(0, P("10.99.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.30.0/24"), A("10.99.3.3"), 100, M(1)), "");
    const Update &v = model.vteps.begin()->second;
    EXPECT_EQ(v.nh, model.routes.at({0, P("10.99.0.0/16")}));
    std::string err = f.add_tunnel_route(1, P("192.168.31.0/24"), A("172.31.0.1"), 100, M(1));
    EXPECT_NE(err.find("172.31.0.1"), std::string::npos) << err;
}

TEST_F(ProgrammerTest, BridgeDomainsFloodListsAndGatewayNeighbors) {
    uint16_t bd = f.add_bridge_domain(10, 1, M(0x5e));
    f.add_access(7, 0, bd);
    ASSERT_EQ(f.add_flood(bd, A("10.0.2.9")), "");
    ASSERT_EQ(f.add_remote_mac(bd, M(0x33), A("10.0.2.9")), "");
    f.add_gateway(5, "vni10", bd, 1, {P("192.168.10.1/24")});
    NhId conn = model.routes.at({1, P("192.168.10.0/24")});
    EXPECT_EQ(model.nhs.at(conn).kind, NhKind::Resolve);
    EXPECT_EQ(model.routes.at({1, P("192.168.10.1/32")}), kNhLocal);
    f.neighbor(5, A("192.168.10.2"), M(0x22));
    NhId host = model.routes.at({1, P("192.168.10.2/32")});
    EXPECT_EQ(model.nhs.at(host).kind, NhKind::Bridge);
    EXPECT_EQ(model.nhs.at(host).bd, bd);
    EXPECT_EQ(model.nhs.at(host).mac, M(0x22));
    bool bd_set = false, l2vni = false;
    for (auto &u : model.log) {
        bd_set |= u.op == Op::BdSet && u.ov.bd == bd && u.ov.vni == 10 && u.ov.mac == M(0x5e);
        l2vni |= u.op == Op::VniSet && !u.l3 && u.ov.vni == 10 && u.ov.bd == bd;
    }
    EXPECT_TRUE(bd_set);
    EXPECT_TRUE(l2vni);
}

} // namespace
