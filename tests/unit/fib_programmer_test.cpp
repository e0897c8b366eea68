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
    std::vector<Update> log;

    void apply(const Update &u) {
        log.push_back(u);
        switch (u.op) {
        case Op::NexthopSet:
            for (unsigned k = 0; k < u.nexthop.n_members; k++)
                ASSERT_TRUE(nhs.count(u.nexthop.members[k])) << "member before group";
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

} // namespace
