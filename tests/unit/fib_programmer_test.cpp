// The FIB programmer's bookkeeping: shared next hops, reference counts and ordering.
#include "control/fib/programmer.hpp"
#include "tests/unit/fib_model.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

using namespace vleaf;
using Op = Update::Op;
using test::Model;

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

// With the dataplane's grace periods: a freed id comes back only once the dataplane has
// let go of it; meanwhile new ids are fresh ones.
TEST(ProgrammerGrace, FreedIdIsHeldUntilTheDataplaneLetsGoOfIt) {
    Model model;
    std::set<NhId> let_go;
    fib::Programmer f{[&](const Update &u) { model.apply(u); },
                      {.settle = [] {},
                       .released = [&](NhId id) { return let_go.count(id) > 0; },
                       .prefetch = {}}};
    f.add_interface(0, "a", 7, 0, {P("10.0.1.1/24")});
    f.neighbor(0, A("10.0.1.5"), M(5));
    NhId adj = model.routes.at({0, P("10.0.1.5/32")});
    f.neighbor(0, A("10.0.1.5"), std::nullopt);
    ASSERT_FALSE(model.nhs.count(adj));
    f.neighbor(0, A("10.0.1.6"), M(6));
    EXPECT_NE(model.routes.at({0, P("10.0.1.6/32")}), adj) << "reused while workers may hold it";
    let_go.insert(adj);
    f.neighbor(0, A("10.0.1.7"), M(7));
    EXPECT_EQ(model.routes.at({0, P("10.0.1.7/32")}), adj);
    EXPECT_EQ(f.counters().nh_reused, 1u);
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

// A BGP next hop resolves on the first interface (by id, then address) of the route's
// VRF whose subnet holds it, as Prefix::contains decides: overlapping subnets, odd
// lengths, both families, another VRF, addresses on either side of each boundary.
TEST(ProgrammerSubnets, NexthopsResolveOnTheFirstInterfaceWhoseSubnetHoldsThem) {
    Model model;
    fib::Programmer f{[&](const Update &u) { model.apply(u); }};
    struct Itf {
        uint16_t id;
        uint32_t vrf;
        std::vector<Prefix> addresses;
    };
    std::vector<Itf> ifs{{5, 0, {P("10.1.0.1/16"), P("fd00::1/64")}},
                         {2, 0, {P("10.1.2.1/23"), P("10.9.0.1/31")}},
                         {9, 1, {P("10.1.2.1/24"), P("fd00::1/127")}},
                         {3, 0, {P("fd00::8000:0:0:1/65"), P("192.168.7.9/32")}}};
    for (auto &i : ifs)
        f.add_interface(i.id, "if" + std::to_string(i.id), i.id, i.vrf, i.addresses);
    std::sort(ifs.begin(), ifs.end(), [](auto &a, auto &b) { return a.id < b.id; });
    std::mt19937 rng(1);
    uint32_t route = 0;
    for (auto &i : ifs)
        for (const Prefix &a : i.addresses)
            for (int k = 0; k < 64; k++) {
                // An address of the subnet with one of its bits flipped: inside, or just out.
                IpAddr ip = a.addr;
                unsigned bit = rng() % unsigned(ip.max_len());
                ip.bytes[bit / 8] ^= uint8_t(0x80 >> (bit % 8));
                for (uint32_t vrf : {0u, 1u}) {
                    std::optional<uint16_t> want;
                    for (auto &j : ifs)
                        for (const Prefix &b : j.addresses)
                            if (!want && j.vrf == vrf && b.contains(ip)) want = j.id;
                    Prefix dst{IpAddr::v4((100u << 24) | ++route), 32};
                    f.set_bgp(vrf, dst, &ip, 1);
                    auto it = model.routes.find({vrf, dst});
                    ASSERT_EQ(it != model.routes.end(), want.has_value()) << ip.str();
                    if (!want) continue;
                    auto t = f.resolve_target(it->second, ip);
                    ASSERT_TRUE(t);
                    EXPECT_EQ(t->ifid, *want) << ip.str() << " in VRF " << vrf;
                    EXPECT_EQ(t->ip, ip);
                }
            }
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

TEST_F(ProgrammerTest, BgpRoutesShareAdjacenciesWithStaticRoutesAndFormEcmpGroups) {
    ASSERT_EQ(f.add_static(0, P("10.100.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    NhId adj = model.routes.at({0, P("10.100.0.0/16")});
    IpAddr one[] = {A("10.0.2.2")};
    f.set_bgp(0, P("192.168.0.0/24"), one, 1);
    EXPECT_EQ(model.routes.at({0, P("192.168.0.0/24")}), adj);
    IpAddr two[] = {A("10.0.2.2"), A("10.0.1.9")};
    f.set_bgp(0, P("192.168.1.0/24"), two, 2);
    NhId g = model.routes.at({0, P("192.168.1.0/24")});
    ASSERT_EQ(model.nhs.at(g).kind, NhKind::Ecmp);
    EXPECT_EQ(model.nhs.at(g).n_members, 2);
    // A neighbor's MAC is one update, whether static, BGP or ECMP routes use it.
    size_t before = model.log.size();
    f.neighbor(1, A("10.0.2.2"), M(7));
    EXPECT_EQ(model.nhs.at(adj).mac, M(7));
    EXPECT_LE(model.log.size(), before + 2); // the adjacency and its host route
    EXPECT_EQ(f.bgp_routes(), 2u);
    f.del_bgp(0, P("192.168.1.0/24"));
    EXPECT_FALSE(model.nhs.count(g));
    EXPECT_EQ(f.bgp_routes(), 1u);
}

TEST_F(ProgrammerTest, BgpNeverReplacesConnectedOrStaticRoutesAndSkipsUnreachableNexthops) {
    IpAddr via[] = {A("10.0.1.2")};
    f.set_bgp(0, P("10.0.2.0/24"), via, 1); // the connected subnet of interface b
    EXPECT_EQ(model.nhs.at(model.routes.at({0, P("10.0.2.0/24")})).kind, NhKind::Resolve);
    f.del_bgp(0, P("10.0.2.0/24"));
    EXPECT_TRUE(model.routes.count({0, P("10.0.2.0/24")}));
    EXPECT_EQ(f.counters().bgp_shadowed, 1u);
    IpAddr far[] = {A("192.0.2.1")};
    f.set_bgp(0, P("172.16.0.0/12"), far, 1);
    EXPECT_FALSE(model.routes.count({0, P("172.16.0.0/12")}));
    EXPECT_EQ(f.counters().bgp_unresolved, 1u);
    // A path that loses its only reachable next hop leaves the FIB.
    f.set_bgp(0, P("172.16.0.0/12"), via, 1);
    EXPECT_TRUE(model.routes.count({0, P("172.16.0.0/12")}));
    f.set_bgp(0, P("172.16.0.0/12"), far, 1);
    EXPECT_FALSE(model.routes.count({0, P("172.16.0.0/12")}));
}

TEST_F(ProgrammerTest, BatchSendsOnlyTheLastStateOfEachPrefixAddsBeforeDeletes) {
    IpAddr a[] = {A("10.0.1.2")}, b[] = {A("10.0.2.2")};
    f.set_bgp(0, P("192.168.9.0/24"), a, 1);
    size_t before = model.log.size();
    {
        fib::Programmer::Scope batch(f);
        f.set_bgp(0, P("192.168.7.0/24"), a, 1); // added and deleted: nothing to send
        f.del_bgp(0, P("192.168.7.0/24"));
        f.del_bgp(0, P("192.168.9.0/24")); // deleted, re-added, deleted again
        f.set_bgp(0, P("192.168.9.0/24"), a, 1);
        f.set_bgp(0, P("192.168.8.0/24"), b, 1); // a new adjacency and a route
        f.del_bgp(0, P("192.168.9.0/24"));
        EXPECT_EQ(model.log.size(), before) << "nothing leaves before the batch ends";
    }
    // Phases in order: next-hop sets, route adds, route deletes, next-hop deletes; one
    // route operation per prefix (192.168.8/24 added, 192.168.9/24 deleted).
    auto phase = [](Op op) {
        return op == Op::NexthopSet ? 0 : op == Op::RouteAdd ? 1 : op == Op::RouteDel ? 2 : 3;
    };
    std::map<Op, int> n;
    for (size_t k = before; k < model.log.size(); k++) {
        n[model.log[k].op]++;
        if (k > before) {
            EXPECT_LE(phase(model.log[k - 1].op), phase(model.log[k].op)) << k;
        }
    }
    EXPECT_EQ(n[Op::RouteAdd], 1);
    EXPECT_EQ(n[Op::RouteDel], 1);
    EXPECT_TRUE(model.routes.count({0, P("192.168.8.0/24")}));
    EXPECT_FALSE(model.routes.count({0, P("192.168.7.0/24")}));
    EXPECT_FALSE(model.routes.count({0, P("192.168.9.0/24")}));
}

TEST_F(ProgrammerTest, FreedNexthopIdIsNotReusedWithinItsBatch) {
    IpAddr a[] = {A("10.0.1.2")}, b[] = {A("10.0.2.2")};
    f.set_bgp(0, P("192.168.1.0/24"), a, 1);
    NhId old = model.routes.at({0, P("192.168.1.0/24")});
    {
        fib::Programmer::Scope batch(f);
        f.del_bgp(0, P("192.168.1.0/24")); // frees the adjacency of a
        f.set_bgp(0, P("192.168.2.0/24"), b, 1);
    }
    EXPECT_NE(model.routes.at({0, P("192.168.2.0/24")}), old);
    EXPECT_FALSE(model.nhs.count(old));
}

TEST_F(ProgrammerTest, ResyncRemovesExactlyTheBgpRoutesNotConfirmed) {
    IpAddr a[] = {A("10.0.1.2")}, b[] = {A("10.0.2.2")};
    for (int k = 0; k < 20; k++)
        f.set_bgp(0, P(("192.168." + std::to_string(k) + ".0/24").c_str()), k % 2 ? a : b, 1);
    ASSERT_EQ(f.add_static(0, P("10.100.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    f.bgp_resync_begin();
    for (int k = 0; k < 20; k += 3) // confirm some, change the next hop of one
        f.set_bgp(0, P(("192.168." + std::to_string(k) + ".0/24").c_str()), k == 3 ? b : a, 1);
    f.set_bgp(0, P("192.169.0.0/24"), a, 1); // new in the RIB
    f.bgp_resync_end();
    std::set<Prefix> bgp;
    for (auto &r : f.routes())
        if (r.type == "bgp") bgp.insert(r.prefix);
    std::set<Prefix> want{P("192.169.0.0/24")};
    for (int k = 0; k < 20; k += 3)
        want.insert(P(("192.168." + std::to_string(k) + ".0/24").c_str()));
    EXPECT_EQ(bgp, want);
    EXPECT_EQ(f.counters().resync_removed, 20u - 7u);
    EXPECT_TRUE(model.routes.count({0, P("10.100.0.0/16")})) << "static routes are not BGP's";
    EXPECT_EQ(model.nhs.at(model.routes.at({0, P("192.168.3.0/24")})).port, 8);
    // Every model route matches the programmer's view: nothing stale left in the dataplane.
    size_t n = 0;
    for (auto &r : f.routes()) n += model.routes.count({r.vrf, r.prefix});
    EXPECT_EQ(n, model.routes.size());
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

// A VTEP lives while a tunnel route, a flood list or a remote MAC names it; with the last
// it goes (after the routes and before the next hops that named it), its id free again.
TEST_F(ProgrammerTest, VtepIsDeletedWithItsLastUser) {
    uint16_t bd = f.add_bridge_domain(10, 1, M(0x5e));
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.30.0/24"), A("10.0.2.9"), 100, M(0x64)), "");
    ASSERT_EQ(f.add_flood(bd, A("10.0.2.9")), "");
    ASSERT_EQ(f.add_flood(bd, A("10.0.2.9")), ""); // twice: still one user
    ASSERT_EQ(f.add_remote_mac(bd, M(0x33), A("10.0.2.9")), "");
    ASSERT_EQ(f.add_remote_mac(bd, M(0x33), A("10.0.2.9")), "");
    uint16_t id = *f.vtep_id(A("10.0.2.9"));
    NhId underlay = model.vteps.at(id).nh;
    ASSERT_EQ(f.vteps().at(0).users, 3u);
    f.del_tunnel_route(1, P("192.168.30.0/24"));
    f.del_remote_mac(bd, M(0x33));
    EXPECT_TRUE(model.vteps.count(id));
    EXPECT_FALSE(model.routes.count({1, P("192.168.30.0/24")}));
    size_t before = model.log.size();
    f.del_flood(bd, A("10.0.2.9"));
    EXPECT_FALSE(model.vteps.count(id));
    EXPECT_FALSE(f.vtep_id(A("10.0.2.9")));
    EXPECT_FALSE(model.nhs.count(underlay)) << "the unresolved neighbor served only the VTEP";
    std::vector<Op> ops;
    for (size_t k = before; k < model.log.size(); k++) ops.push_back(model.log[k].op);
    EXPECT_EQ(ops, (std::vector<Op>{Op::FloodDel, Op::VtepDel, Op::NexthopDel}));
    // The id serves the next VTEP.
    ASSERT_EQ(f.add_flood(bd, A("10.0.1.9")), "");
    EXPECT_EQ(f.vtep_id(A("10.0.1.9")), id);
    EXPECT_EQ(model.vteps.at(id).ov.addr, A("10.0.1.9"));
}

TEST_F(ProgrammerTest, LastTunnelRouteTakesItsVtepAfterTheRoute) {
    f.neighbor(1, A("10.0.2.9"), M(9)); // the host route keeps the adjacency
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.30.0/24"), A("10.0.2.9"), 100, M(0x64)), "");
    NhId tunnel = model.routes.at({1, P("192.168.30.0/24")});
    NhId adj = model.routes.at({0, P("10.0.2.9/32")});
    size_t before = model.log.size();
    // Replacing the route by a blackhole releases the tunnel next hop in the same batch.
    ASSERT_EQ(f.add_static(1, P("192.168.30.0/24"), {}, {}, true), "");
    std::vector<Op> ops;
    for (size_t k = before; k < model.log.size(); k++) ops.push_back(model.log[k].op);
    EXPECT_EQ(ops, (std::vector<Op>{Op::RouteAdd, Op::VtepDel, Op::NexthopDel}));
    EXPECT_EQ(model.log.back().nh, tunnel);
    EXPECT_TRUE(model.vteps.empty());
    EXPECT_TRUE(model.nhs.count(adj));
}

TEST_F(ProgrammerTest, RemoteMacMovesBetweenVteps) {
    uint16_t bd = f.add_bridge_domain(10, 1, M(0x5e));
    ASSERT_EQ(f.add_remote_mac(bd, M(0x33), A("10.0.2.9")), "");
    uint16_t first = *f.vtep_id(A("10.0.2.9"));
    ASSERT_EQ(f.add_remote_mac(bd, M(0x33), A("10.0.2.8")), "");
    EXPECT_FALSE(f.vtep_id(A("10.0.2.9"))) << "the MAC was its only user";
    EXPECT_FALSE(model.vteps.count(first) && model.vteps.at(first).ov.addr == A("10.0.2.9"));
    EXPECT_EQ(model.remote_macs.at({bd, M(0x33)}), *f.vtep_id(A("10.0.2.8")));
    f.del_remote_mac(bd, M(0x33));
    EXPECT_TRUE(model.vteps.empty());
    EXPECT_TRUE(model.remote_macs.empty());
}

// The underlay next hop is the best route's: a more specific route takes the VTEP, its
// withdrawal gives it back, a blackhole leaves it without one; one VtepSet each time.
TEST_F(ProgrammerTest, VtepFollowsTheRouteToIt) {
    ASSERT_EQ(f.add_static(0, P("10.99.0.0/16"), {A("10.0.2.2")}, {}, false), "");
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.30.0/24"), A("10.99.3.3"), 100, M(1)), "");
    uint16_t id = *f.vtep_id(A("10.99.3.3"));
    NhId wide = model.routes.at({0, P("10.99.0.0/16")});
    EXPECT_EQ(model.vteps.at(id).nh, wide);
    auto vtep_sets = [&](size_t from) {
        unsigned n = 0;
        for (size_t k = from; k < model.log.size(); k++) n += model.log[k].op == Op::VtepSet;
        return n;
    };
    size_t before = model.log.size();
    IpAddr via = A("10.0.1.2");
    f.set_bgp(0, P("10.99.3.0/24"), &via, 1);
    NhId narrow = model.routes.at({0, P("10.99.3.0/24")});
    EXPECT_NE(narrow, wide);
    EXPECT_EQ(model.vteps.at(id).nh, narrow);
    EXPECT_EQ(vtep_sets(before), 1u);
    EXPECT_EQ(f.counters().vtep_underlay_changes, 1u);
    // A route beside it moves nothing.
    before = model.log.size();
    f.set_bgp(0, P("10.99.4.0/24"), &via, 1);
    EXPECT_EQ(vtep_sets(before), 0u);
    f.del_bgp(0, P("10.99.3.0/24"));
    EXPECT_EQ(model.vteps.at(id).nh, wide);
    ASSERT_EQ(f.add_static(0, P("10.99.3.0/24"), {}, {}, true), "");
    EXPECT_EQ(model.vteps.at(id).nh, kNhNoRoute);
    EXPECT_TRUE(f.vteps().front().underlay.empty());
    // The neighbor's MAC is a shared next hop: no VTEP message when it resolves.
    ASSERT_EQ(f.add_flood(f.add_bridge_domain(10, 1, M(0x5e)), A("10.0.1.7")), "");
    before = model.log.size();
    f.neighbor(0, A("10.0.1.7"), M(7));
    EXPECT_EQ(vtep_sets(before), 0u);
    EXPECT_EQ(model.nhs.at(model.vteps.at(*f.vtep_id(A("10.0.1.7"))).nh).mac, M(7));
    // A static host route to a connected VTEP is more specific than its subnet: it wins.
    before = model.log.size();
    ASSERT_EQ(f.add_static(0, P("10.0.1.7/32"), {A("10.0.2.2")}, {}, false), "");
    EXPECT_EQ(vtep_sets(before), 1u);
    EXPECT_EQ(model.vteps.at(*f.vtep_id(A("10.0.1.7"))).nh, wide);
}

} // namespace
