// RIB: best path tie-breakers one by one, ECMP, route reflection rules and loop checks,
// graceful restart stale handling, change notifications and attribute interning.
#include "control/bgp/rib.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

IpAddr ip(const char *s) {
    return *IpAddr::parse(s);
}
Prefix pfx(const char *s) {
    return *Prefix::parse(s);
}
const RouteFamily V4 = RouteFamily::Ipv4Unicast;

AsPath path(const std::vector<uint32_t> &asns) {
    AsPath p;
    if (!asns.empty()) p.segments.push_back({SegmentType::AsSequence, asns});
    return p;
}

PathAttrs attrs(const std::vector<uint32_t> &asns = {65010}) {
    PathAttrs a;
    a.origin = Origin::Igp;
    a.as_path = path(asns);
    return a;
}

struct BgpRib : ::testing::Test {
    RibOptions opt{65001, 0x0a000001, 0, 1, false, false};
    std::unique_ptr<Rib> rib = std::make_unique<Rib>(opt);

    PeerId peer(const char *addr, uint32_t asn, uint32_t router_id, bool rr_client = false) {
        RibPeer p;
        p.address = ip(addr);
        p.asn = asn;
        p.router_id = router_id;
        p.ibgp = asn == opt.asn;
        p.rr_client = rr_client;
        return rib->add_peer(p);
    }
    void announce(PeerId from, const char *prefix, PathAttrs a, const char *nh = "192.0.2.1") {
        rib->update(from, V4, pfx(prefix), 0, rib->intern(std::move(a), NextHop{ip(nh), {}}));
    }
    // The peer owning the best path of a prefix.
    PeerId best(const char *prefix) {
        auto *e = rib->find(V4, pfx(prefix));
        EXPECT_NE(e, nullptr);
        return e && e->n_best ? e->all()[0].peer : PeerId(0xffff);
    }
    void reset(RibOptions o) {
        opt = o;
        rib = std::make_unique<Rib>(opt);
    }
};

} // namespace

TEST_F(BgpRib, HigherLocalPrefWins) {
    PeerId a = peer("10.0.0.2", 65001, 2), b = peer("10.0.0.3", 65001, 3);
    PathAttrs x = attrs({65010, 65011}), y = attrs({65010, 65011, 65012});
    x.local_pref = 100;
    y.local_pref = 200; // beats the shorter path
    announce(a, "10.1.0.0/16", x);
    announce(b, "10.1.0.0/16", y);
    EXPECT_EQ(best("10.1.0.0/16"), b);
}

TEST_F(BgpRib, LocallyOriginatedWins) {
    PeerId a = peer("10.0.0.2", 65002, 2);
    announce(a, "10.1.0.0/16", attrs({65002}));
    announce(kLocalPeer, "10.1.0.0/16", attrs({65002, 65003}), "0.0.0.0");
    EXPECT_EQ(best("10.1.0.0/16"), kLocalPeer);
}

TEST_F(BgpRib, ShorterAsPathWins) {
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65003, 3);
    announce(a, "10.1.0.0/16", attrs({65002, 65010}));
    announce(b, "10.1.0.0/16", attrs({65003}));
    EXPECT_EQ(best("10.1.0.0/16"), b);
    // An AS_SET counts as one.
    PathAttrs set = attrs({65002});
    set.as_path->segments.push_back({SegmentType::AsSet, {1, 2, 3}});
    announce(a, "10.2.0.0/16", set);
    announce(b, "10.2.0.0/16", attrs({65003, 65004, 65005}));
    EXPECT_EQ(best("10.2.0.0/16"), a);
}

TEST_F(BgpRib, LowerOriginWins) {
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65003, 3);
    PathAttrs x = attrs({65002}), y = attrs({65003});
    x.origin = Origin::Incomplete;
    y.origin = Origin::Egp;
    announce(a, "10.1.0.0/16", x);
    announce(b, "10.1.0.0/16", y);
    EXPECT_EQ(best("10.1.0.0/16"), b);
}

TEST_F(BgpRib, MedComparedOnlyWithinNeighborAs) {
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65002, 3),
           c = peer("10.0.0.4", 65003, 1);
    PathAttrs x = attrs({65002}), y = attrs({65002});
    x.med = 50;
    y.med = 10;
    announce(a, "10.1.0.0/16", x);
    announce(b, "10.1.0.0/16", y);
    EXPECT_EQ(best("10.1.0.0/16"), b) << "same neighbor AS: lower MED";
    // Another neighbor AS with a worse MED is not compared on MED; it wins on router id.
    PathAttrs z = attrs({65003});
    z.med = 1000;
    announce(c, "10.2.0.0/16", z);
    announce(b, "10.2.0.0/16", y);
    EXPECT_EQ(best("10.2.0.0/16"), c);
    // always_compare_med: MED decides across neighbor AS too.
    reset({65001, 0x0a000001, 0, 1, false, true});
    a = peer("10.0.0.3", 65002, 3);
    c = peer("10.0.0.4", 65003, 1);
    announce(c, "10.2.0.0/16", z);
    announce(a, "10.2.0.0/16", y);
    EXPECT_EQ(best("10.2.0.0/16"), a);
}

TEST_F(BgpRib, MissingMedIsZero) {
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65002, 3);
    PathAttrs x = attrs({65002});
    x.med = 5;
    announce(a, "10.1.0.0/16", x);
    announce(b, "10.1.0.0/16", attrs({65002}));
    EXPECT_EQ(best("10.1.0.0/16"), b);
}

TEST_F(BgpRib, EbgpOverIbgp) {
    PeerId i = peer("10.0.0.2", 65001, 1), e = peer("10.0.0.3", 65002, 9);
    announce(i, "10.1.0.0/16", attrs({65010}));
    announce(e, "10.1.0.0/16", attrs({65002}));
    EXPECT_EQ(best("10.1.0.0/16"), e);
}

TEST_F(BgpRib, LowerRouterIdThenOriginatorId) {
    PeerId a = peer("10.0.0.2", 65001, 20), b = peer("10.0.0.3", 65001, 10);
    announce(a, "10.1.0.0/16", attrs());
    announce(b, "10.1.0.0/16", attrs());
    EXPECT_EQ(best("10.1.0.0/16"), b);
    // A reflected path is compared by its ORIGINATOR_ID, not the reflector's id.
    PathAttrs r = attrs();
    r.originator_id = 30;
    announce(b, "10.2.0.0/16", r);
    announce(a, "10.2.0.0/16", attrs());
    EXPECT_EQ(best("10.2.0.0/16"), a);
}

TEST_F(BgpRib, ShorterClusterListThenLowerPeerAddress) {
    PeerId a = peer("10.0.0.2", 65001, 5), b = peer("10.0.0.3", 65001, 5);
    PathAttrs x = attrs(), y = attrs();
    x.originator_id = y.originator_id = 7;
    x.cluster_list = {1, 2};
    y.cluster_list = {1};
    announce(a, "10.1.0.0/16", x);
    announce(b, "10.1.0.0/16", y);
    EXPECT_EQ(best("10.1.0.0/16"), b);
    announce(a, "10.2.0.0/16", attrs());
    announce(b, "10.2.0.0/16", attrs());
    EXPECT_EQ(best("10.2.0.0/16"), a) << "everything equal: lower peer address";
}

TEST_F(BgpRib, EcmpSameAsPath) {
    reset({65001, 0x0a000001, 0, 4, false, false});
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65002, 3),
           c = peer("10.0.0.4", 65003, 4);
    announce(a, "10.1.0.0/16", attrs({65002}), "10.0.0.2");
    announce(b, "10.1.0.0/16", attrs({65002}), "10.0.0.3");
    announce(c, "10.1.0.0/16", attrs({65003}), "10.0.0.4");
    auto *e = rib->find(V4, pfx("10.1.0.0/16"));
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->n_best, 2) << "different AS path is not multipath without relax";
    EXPECT_EQ(e->all()[0].peer, a);
    EXPECT_EQ(e->all()[1].peer, b);
}

TEST_F(BgpRib, EcmpRelaxAndMaxPaths) {
    reset({65001, 0x0a000001, 0, 2, true, false});
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65003, 3),
           c = peer("10.0.0.4", 65004, 4);
    announce(a, "10.1.0.0/16", attrs({65002}), "10.0.0.2");
    announce(b, "10.1.0.0/16", attrs({65003}), "10.0.0.3");
    announce(c, "10.1.0.0/16", attrs({65004}), "10.0.0.4");
    auto *e = rib->find(V4, pfx("10.1.0.0/16"));
    EXPECT_EQ(e->n_best, 2) << "max_paths 2";
    // A longer AS path is never multipath.
    announce(b, "10.1.0.0/16", attrs({65003, 65009}), "10.0.0.3");
    announce(c, "10.1.0.0/16", attrs({65004, 65009}), "10.0.0.4");
    e = rib->find(V4, pfx("10.1.0.0/16"));
    EXPECT_EQ(e->n_best, 1);
}

TEST_F(BgpRib, ImportLoopChecks) {
    PathAttrs loop = attrs({65002, 65001});
    EXPECT_EQ(rib->check_import(nullptr, loop, {}), ImportVerdict::AsLoop);
    PathAttrs orig = attrs();
    orig.originator_id = 0x0a000001;
    EXPECT_EQ(rib->check_import(nullptr, orig, {}), ImportVerdict::OriginatorLoop);
    PathAttrs cl = attrs();
    cl.cluster_list = {5, 0x0a000001}; // cluster id defaults to the router id
    EXPECT_EQ(rib->check_import(nullptr, cl, {}), ImportVerdict::ClusterLoop);
    PathAttrs ok = attrs();
    EXPECT_EQ(rib->check_import(nullptr, ok, {}), ImportVerdict::Accepted);
}

TEST_F(BgpRib, ImportPolicy) {
    Policy pol;
    pol.prefix_list.push_back({pfx("10.0.0.0/8"), 16, 24, true});
    pol.match_community = {65002u << 16 | 1};
    pol.set_local_pref = 300;
    PathAttrs a = attrs();
    Prefix in = pfx("10.1.0.0/16"), out = pfx("10.1.2.128/25");
    EXPECT_EQ(rib->check_import(&in, a, pol), ImportVerdict::Denied) << "community missing";
    a.communities = {65002u << 16 | 1};
    EXPECT_EQ(rib->check_import(&out, a, pol), ImportVerdict::Denied) << "/25 outside le 24";
    EXPECT_EQ(rib->check_import(&in, a, pol), ImportVerdict::Accepted);
    EXPECT_EQ(a.local_pref, 300u);
}

TEST_F(BgpRib, RouteReflectionRules) {
    RibPeer client, nonclient, ebgp;
    client.ibgp = nonclient.ibgp = true;
    client.rr_client = true;
    // From a client: to everyone. From a non-client: to clients only.
    EXPECT_TRUE(ibgp_may_advertise(1, client, false));
    EXPECT_TRUE(ibgp_may_advertise(1, client, true));
    EXPECT_TRUE(ibgp_may_advertise(2, nonclient, true));
    EXPECT_FALSE(ibgp_may_advertise(2, nonclient, false));
    // eBGP-learned and our own routes go to every internal peer.
    EXPECT_TRUE(ibgp_may_advertise(3, ebgp, false));
    EXPECT_TRUE(ibgp_may_advertise(kLocalPeer, nonclient, false));

    PathAttrs a = attrs();
    reflect_attrs(a, 0x0a000007, 0x0a0000ff);
    EXPECT_EQ(a.originator_id, 0x0a000007u);
    EXPECT_EQ(a.cluster_list, std::vector<uint32_t>{0x0a0000ff});
    reflect_attrs(a, 0x0a000009, 0x0a0000fe); // a second reflector keeps the originator
    EXPECT_EQ(a.originator_id, 0x0a000007u);
    EXPECT_EQ(a.cluster_list, (std::vector<uint32_t>{0x0a0000fe, 0x0a0000ff}));
}

TEST_F(BgpRib, GracefulRestartStaleHandling) {
    PeerId a = peer("10.0.0.2", 65002, 2);
    announce(a, "10.1.0.0/16", attrs({65002}));
    announce(a, "10.2.0.0/16", attrs({65002}));
    rib->peer_down(a, family_bit(V4));
    auto *e = rib->find(V4, pfx("10.1.0.0/16"));
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->all()[0].flags & Path::kStale);
    // The restarted peer re-announces one route: fresh again.
    announce(a, "10.1.0.0/16", attrs({65002}));
    EXPECT_FALSE(rib->find(V4, pfx("10.1.0.0/16"))->all()[0].flags & Path::kStale);
    // End-of-RIB sweeps the rest.
    rib->sweep_stale(a, family_bit(V4));
    EXPECT_NE(rib->find(V4, pfx("10.1.0.0/16")), nullptr);
    EXPECT_EQ(rib->find(V4, pfx("10.2.0.0/16")), nullptr);
    EXPECT_EQ(rib->peer(a).accepted[size_t(V4)], 1u);
    // Without graceful restart everything goes at once.
    rib->peer_down(a, 0);
    EXPECT_EQ(rib->prefixes(V4), 0u);
    EXPECT_EQ(rib->paths(), 0u);
}

TEST_F(BgpRib, RefreshMarksOnlyOnePeerAndFamilyStale) {
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65003, 3);
    announce(a, "10.1.0.0/16", attrs({65002}));
    announce(a, "10.2.0.0/16", attrs({65002}));
    announce(b, "10.2.0.0/16", attrs({65003}));
    rib->mark_stale(a, family_bit(V4)); // BoRR from a
    announce(a, "10.1.0.0/16", attrs({65002}));
    rib->sweep_stale(a, family_bit(V4)); // EoRR from a
    EXPECT_NE(rib->find(V4, pfx("10.1.0.0/16")), nullptr);
    auto *e = rib->find(V4, pfx("10.2.0.0/16"));
    ASSERT_NE(e, nullptr) << "b's path stays";
    EXPECT_EQ(e->n, 1);
    EXPECT_EQ(e->all()[0].peer, b);
    EXPECT_FALSE(e->all()[0].flags & Path::kStale);
}

TEST_F(BgpRib, ChangesReportBeforeAndAfter) {
    std::vector<std::pair<size_t, size_t>> seen;
    rib->on_change([&](const RibChange &c) { seen.emplace_back(c.before.size(), c.now.size()); });
    PeerId a = peer("10.0.0.2", 65002, 2), b = peer("10.0.0.3", 65003, 3);
    announce(a, "10.1.0.0/16", attrs({65002}));
    announce(b, "10.1.0.0/16", attrs({65003, 65009})); // not better: no change
    announce(a, "10.1.0.0/16", attrs({65002}));        // identical: no change
    rib->withdraw(a, V4, pfx("10.1.0.0/16"), 0);       // b takes over
    rib->withdraw(b, V4, pfx("10.1.0.0/16"), 0);       // gone
    EXPECT_EQ(seen, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {1, 1}, {1, 0}}));
}

TEST_F(BgpRib, AttributeSetsAreShared) {
    PeerId a = peer("10.0.0.2", 65002, 2);
    for (int i = 0; i < 100; ++i) {
        std::string p = "10." + std::to_string(i) + ".0.0/16";
        rib->update(a, V4, pfx(p.c_str()), 0,
                    rib->intern(attrs({65002}), NextHop{ip("192.0.2.1"), {}}));
    }
    EXPECT_EQ(rib->attr_sets(), 1u);
    EXPECT_EQ(rib->paths(), 100u);
    rib->peer_down(a, 0);
    EXPECT_EQ(rib->attr_sets(), 0u) << "freed with the last path";
}

TEST_F(BgpRib, AddPathKeepsPathsApart) {
    PeerId a = peer("10.0.0.2", 65001, 2);
    auto *x = rib->intern(attrs({65010}), NextHop{ip("192.0.2.1"), {}});
    auto *y = rib->intern(attrs({65010, 65011}), NextHop{ip("192.0.2.2"), {}});
    rib->update(a, V4, pfx("10.1.0.0/16"), 1, x);
    rib->update(a, V4, pfx("10.1.0.0/16"), 2, y);
    EXPECT_EQ(rib->find(V4, pfx("10.1.0.0/16"))->n, 2);
    rib->withdraw(a, V4, pfx("10.1.0.0/16"), 1);
    auto *e = rib->find(V4, pfx("10.1.0.0/16"));
    ASSERT_EQ(e->n, 1);
    EXPECT_EQ(e->all()[0].path_id, 2u);
}

// The prefix table against std::map under random inserts and erases. The hash puts every
// key in one of four homes, so probe runs are long and wrap past the end of the table,
// which is where backward-shift deletion can go wrong.
namespace {
struct SmallKey {
    uint32_t v;
    bool operator==(const SmallKey &) const = default;
    static SmallKey none() { return {~0u}; }
};
struct FourHomes {
    size_t operator()(const SmallKey &k) const { return k.v % 4 * 0x4000000000000000ull; }
};
} // namespace

TEST(PrefixTable, MatchesAMapUnderRandomInsertsAndErases) {
    PrefixTable<SmallKey, RouteEntry, FourHomes> t;
    std::map<uint32_t, uint16_t> model;
    uint64_t rng = 42;
    auto next = [&] {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(rng >> 33);
    };
    auto check = [&] {
        ASSERT_EQ(t.size(), model.size());
        for (auto &[k, n] : model) {
            auto *e = t.find({k});
            ASSERT_NE(e, nullptr) << k;
            EXPECT_EQ(e->n, n) << k;
        }
        size_t seen = 0;
        t.for_each([&](const SmallKey &k, const RouteEntry &e) {
            ++seen;
            EXPECT_EQ(model.at(k.v), e.n);
        });
        EXPECT_EQ(seen, model.size());
    };
    for (int round = 0; round < 2000; ++round) {
        uint32_t k = next() % 300;
        switch (next() % 3) {
        case 0:
        case 1:
            t[{k}].n = uint16_t(k % 7 + 1);
            model[k] = uint16_t(k % 7 + 1);
            break;
        default:
            t.erase({k});
            model.erase(k);
        }
        if (round % 100 == 0) check();
        if (round % 500 == 499) {
            // Entries whose key is even lose their paths, then go in one sweep.
            t.for_each([](const SmallKey &key, RouteEntry &e) {
                if (key.v % 2 == 0) e.n = 0;
            });
            t.erase_if([](const RouteEntry &e) { return e.n == 0; });
            std::erase_if(model, [](const auto &kv) { return kv.first % 2 == 0; });
            check();
        }
    }
    check();
    EXPECT_EQ(t.find({1000}), nullptr);
}

TEST_F(BgpRib, ManyPrefixesAndPathsSurvivePeerDown) {
    auto a = peer("10.0.0.2", 65010, 2);
    auto b = peer("10.0.0.3", 65020, 3);
    auto *at = rib->intern(attrs({65010}), NextHop{ip("10.0.0.2"), {}});
    auto *bt = rib->intern(attrs({65020, 65021}), NextHop{ip("10.0.0.3"), {}});
    for (uint32_t i = 0; i < 5000; ++i) {
        Prefix p{IpAddr::v4(0x0b000000 + (i << 8)), 24};
        rib->update(a, V4, p, 0, at);
        if (i % 3 == 0) rib->update(b, V4, p, 0, bt);
    }
    EXPECT_EQ(rib->prefixes(V4), 5000u);
    EXPECT_EQ(rib->paths(), 5000u + 1667u);
    rib->peer_down(a, 0);
    EXPECT_EQ(rib->prefixes(V4), 1667u);
    for (uint32_t i = 0; i < 5000; ++i) {
        auto *e = rib->find(V4, Prefix{IpAddr::v4(0x0b000000 + (i << 8)), 24});
        if (i % 3) {
            EXPECT_EQ(e, nullptr) << i;
        } else {
            ASSERT_NE(e, nullptr) << i;
            ASSERT_EQ(e->n, 1);
            EXPECT_EQ(e->all()[0].peer, b);
        }
    }
}
