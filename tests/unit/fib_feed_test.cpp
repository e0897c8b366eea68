// RIB -> ring -> FIB: the producer's direct path, coalescing while the ring is full, the
// full resync past the backlog limit, peer-down and graceful-restart semantics, all
// checked by comparing what the dataplane model ends up with against the Loc-RIB.
#include "control/fib/bgp_thread.hpp"
#include "control/fib/feed.hpp"
#include "tests/unit/fib_model.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <deque>
#include <random>
#include <set>
#include <thread>

using namespace vleaf;
using namespace vleaf::bgp;

namespace {

const RouteFamily V4 = RouteFamily::Ipv4Unicast;

Prefix P(const std::string &s) {
    return *Prefix::parse(s);
}
IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}

struct FeedTest : ::testing::Test {
    Rib rib{RibOptions{65001, 0x0a000001, 0, 4, true, false}};
    test::Model model;
    fib::Programmer prog{[this](const vleaf::Update &u) { model.apply(u); }};
    std::unique_ptr<fib::RouteRing> ring;
    std::unique_ptr<fib::Feed> feed;
    fib::DrainCounters drained;
    int wakes = 0;
    PeerId p1 = 0, p2 = 0;

    void make(size_t ring_size, size_t limit) {
        prog.add_interface(0, "a", 7, 0, {*Prefix::parse("10.0.1.1/24", true)});
        prog.add_interface(1, "b", 8, 0, {*Prefix::parse("10.0.2.1/24", true)});
        ring = std::make_unique<fib::RouteRing>(ring_size);
        feed = std::make_unique<fib::Feed>(rib, *ring, limit, [this] { wakes++; });
        RibPeer a;
        a.address = A("10.0.1.2");
        a.asn = 65010;
        a.router_id = 2;
        p1 = rib.add_peer(a);
        RibPeer b;
        b.address = A("10.0.2.2");
        b.asn = 65020;
        b.router_id = 3;
        p2 = rib.add_peer(b);
    }
    void announce(PeerId from, const std::string &prefix, const char *nh, uint32_t med = 0) {
        PathAttrs a;
        a.origin = Origin::Igp;
        a.as_path = AsPath{};
        a.as_path->segments.push_back({SegmentType::AsSequence, {rib.peer(from).asn}});
        a.med = med;
        auto *attrs = rib.intern(std::move(a), NextHop{A(nh), {}});
        rib.update(from, V4, P(prefix), 0, attrs);
        rib.discard_unused(attrs);
    }
    void withdraw(PeerId from, const std::string &prefix) { rib.withdraw(from, V4, P(prefix), 0); }
    // Producer and writer take turns until nothing waits.
    void pump() {
        for (int k = 0; k < 100000 && (feed->pending() || ring->read_available()); k++) {
            feed->flush();
            fib::drain(*ring, prog, 1 << 20, drained);
        }
        ASSERT_FALSE(feed->pending());
    }
    // The FIB holds exactly the RIB's best paths (next hops of the best and its siblings).
    void expect_fib_equals_rib() {
        std::map<std::string, std::set<std::string>> want, have;
        rib.for_each(V4, [&](const Prefix *p, const EvpnNlri *, const RouteEntry &e) {
            for (auto &path : e.best())
                if (path.peer != kLocalPeer) want[p->str()].insert(path.attrs->next_hop.addr.str());
        });
        for (auto &r : prog.routes()) {
            if (r.type != "bgp") continue;
            for (auto &h : r.hops) have[r.prefix.str()].insert(h.via);
            EXPECT_TRUE(model.routes.count({0, r.prefix})) << r.prefix.str() << " not in dataplane";
        }
        EXPECT_EQ(have, want);
        // And the dataplane holds nothing else: interfaces' routes plus the BGP ones.
        EXPECT_EQ(model.routes.size(), 6 + have.size()); // 2 × (connected, local, broadcast)
    }
};

TEST_F(FeedTest, ChangesGoStraightIntoTheRingWhenItHasRoom) {
    make(64, 1000);
    for (int k = 0; k < 5; k++) announce(p1, "192.168." + std::to_string(k) + ".0/24", "10.0.1.2");
    EXPECT_EQ(ring->read_available(), 5u);
    EXPECT_EQ(feed->backlog(), 0u);
    feed->flush();
    EXPECT_EQ(wakes, 1) << "one wake per flush, not per message";
    pump();
    expect_fib_equals_rib();
    EXPECT_EQ(drained.messages, 5u);
}

TEST_F(FeedTest, EcmpFromMultipathAndBestPathChanges) {
    make(64, 1000);
    announce(p1, "192.168.0.0/24", "10.0.1.2");
    announce(p2, "192.168.0.0/24", "10.0.2.2");
    pump();
    expect_fib_equals_rib();
    NhId g = model.routes.at({0, P("192.168.0.0/24")});
    ASSERT_EQ(model.nhs.at(g).kind, NhKind::Ecmp);
    announce(p2, "192.168.0.0/24", "10.0.2.2", 50); // worse MED: p1 alone
    pump();
    expect_fib_equals_rib();
    EXPECT_FALSE(model.nhs.count(g)) << "the group went with its last route";
}

TEST_F(FeedTest, FullRingBacklogCoalescesAndLosesNothing) {
    make(4, 1000);
    for (int k = 0; k < 4; k++) announce(p1, "192.168." + std::to_string(k) + ".0/24", "10.0.1.2");
    ASSERT_EQ(ring->read_available(), 4u);
    announce(p1, "192.168.200.0/24", "10.0.1.2"); // added then withdrawn while waiting
    withdraw(p1, "192.168.200.0/24");
    for (int k = 0; k < 3; k++) announce(p1, "192.168.0.0/24", k % 2 ? "10.0.2.2" : "10.0.1.2");
    EXPECT_EQ(feed->backlog(), 2u) << "one entry per prefix, whatever the number of changes";
    EXPECT_GT(feed->counters().ring_full, 0u);
    EXPECT_TRUE(feed->pending());
    pump();
    EXPECT_EQ(feed->counters().pushed, 6u);
    EXPECT_EQ(feed->counters().resyncs, 0u);
    expect_fib_equals_rib();
    for (auto &u : model.log)
        EXPECT_FALSE(u.op == vleaf::Update::Op::RouteAdd && u.prefix == P("192.168.200.0/24"))
            << "an add then a delete reached the dataplane";
}

TEST_F(FeedTest, BacklogPastLimitResyncsAndRemovesWhatTheRibLost) {
    make(8, 16);
    for (int k = 0; k < 50; k++) {
        announce(p1, "192.168." + std::to_string(k) + ".0/24", "10.0.1.2");
        pump(); // a writer that keeps up
    }
    ASSERT_EQ(prog.bgp_routes(), 50u);
    // The writer stalls: 50 withdrawals and 100 new prefixes, far past the limit.
    for (int k = 0; k < 50; k++) withdraw(p1, "192.168." + std::to_string(k) + ".0/24");
    for (int k = 0; k < 100; k++) announce(p2, "10.9." + std::to_string(k) + ".0/24", "10.0.2.2");
    EXPECT_EQ(feed->counters().resyncs, 1u);
    EXPECT_TRUE(feed->resyncing());
    pump();
    EXPECT_EQ(drained.resyncs, 1u);
    // 8 withdrawals fit the ring, the next 17 overflowed the backlog (dropped, the resync
    // removes them), the last 25 waited in the resync's backlog and went out as deletes.
    EXPECT_EQ(prog.counters().resync_removed, 17u);
    expect_fib_equals_rib();
}

TEST_F(FeedTest, RandomChurnThroughATinyRingEndsWithFibEqualToRib) {
    make(16, 64);
    std::mt19937 rng(7);
    const char *hops[] = {"10.0.1.2", "10.0.2.2", "10.0.1.3", "192.0.2.1"}; // last: unreachable
    for (int k = 0; k < 20000; k++) {
        PeerId from = rng() % 2 ? p1 : p2;
        std::string prefix = "172.16." + std::to_string(rng() % 250) + ".0/24";
        if (rng() % 3 == 0)
            withdraw(from, prefix);
        else
            announce(from, prefix, hops[rng() % 4], rng() % 2);
        if (rng() % 50 == 0) {
            feed->flush();
            fib::drain(*ring, prog, rng() % 8, drained); // a slow writer
        }
        if (rng() % 5000 == 0) feed->request_resync();
    }
    pump();
    // 192.0.2.1 is not in a connected subnet: such routes are counted, not installed.
    std::map<std::string, std::set<std::string>> reachable;
    rib.for_each(V4, [&](const Prefix *p, const EvpnNlri *, const RouteEntry &e) {
        for (auto &path : e.best())
            if (path.attrs->next_hop.addr != A("192.0.2.1"))
                reachable[p->str()].insert(path.attrs->next_hop.addr.str());
    });
    std::map<std::string, std::set<std::string>> have;
    for (auto &r : prog.routes())
        if (r.type == "bgp")
            for (auto &h : r.hops) have[r.prefix.str()].insert(h.via);
    EXPECT_EQ(have, reachable);
    EXPECT_EQ(model.routes.size(), 6 + have.size());
    EXPECT_GT(feed->counters().resyncs, 0u);
}

TEST_F(FeedTest, PeerDownWithdrawsButGracefulRestartKeepsStaleRoutesUntilSwept) {
    make(1024, 100000);
    for (int k = 0; k < 10; k++) {
        announce(p1, "192.168." + std::to_string(k) + ".0/24", "10.0.1.2");
        announce(p2, "10.9." + std::to_string(k) + ".0/24", "10.0.2.2");
    }
    pump();
    ASSERT_EQ(prog.bgp_routes(), 20u);
    rib.peer_down(p2, 0); // hold timer, NOTIFICATION, TCP reset, max-prefix: all end here
    pump();
    EXPECT_EQ(prog.bgp_routes(), 10u);
    rib.peer_down(p1, family_bit(V4)); // restarting: forwarding goes on
    pump();
    EXPECT_EQ(prog.bgp_routes(), 10u);
    rib.sweep_stale(p1, family_bit(V4)); // End-of-RIB or restart timer
    pump();
    EXPECT_EQ(prog.bgp_routes(), 0u);
    expect_fib_equals_rib();
}

TEST_F(FeedTest, OurOwnAnnouncementsStayOutOfTheFib) {
    make(64, 1000);
    PathAttrs a;
    a.origin = Origin::Igp;
    a.as_path = AsPath{};
    rib.update(kLocalPeer, V4, P("10.96.0.10/32"), 0, rib.intern(std::move(a), NextHop{}));
    pump();
    EXPECT_EQ(prog.bgp_routes(), 0u);
    EXPECT_FALSE(model.routes.count({0, P("10.96.0.10/32")}));
}

// The backlog against a plain model (a queue of keys, each waiting at most once), through
// enough keys to rebuild its table many times and empty it now and then, with keys that
// come back while waiting, after being sent, and after the table was rebuilt.
TEST(Backlog, KeepsArrivalOrderAndEachKeyOnceAcrossRebuilds) {
    struct Hash {
        size_t operator()(uint32_t k) const { return k / 4; } // collisions on purpose
    };
    fib::Backlog<uint32_t, Hash> b;
    std::deque<uint32_t> want;
    std::set<uint32_t> waiting;
    std::mt19937 rng(5);
    size_t emptied = 0;
    for (int step = 0; step < 200000; step++) {
        // Phases of growth (up to ~6000 waiting) and of draining.
        bool grow = (step / 20000) % 2 == 0;
        if (rng() % 4 != 0 || !grow) {
            uint32_t k = rng() % (grow ? 20000 : 50);
            bool added = b.add(k);
            ASSERT_EQ(added, waiting.insert(k).second) << "key " << k << " at step " << step;
            if (added) want.push_back(k);
        }
        if (rng() % (grow ? 3 : 1) == 0 && !want.empty()) {
            ASSERT_EQ(b.at(0), want.front());
            waiting.erase(want.front());
            want.pop_front();
            b.pop();
            emptied += want.empty();
        }
        ASSERT_EQ(b.size(), want.size());
        ASSERT_EQ(b.empty(), want.empty());
        if (!want.empty()) {
            ASSERT_EQ(b.at(want.size() - 1), want.back());
        }
    }
    EXPECT_GT(emptied, 10u);
    b.release();
    EXPECT_TRUE(b.empty());
    EXPECT_TRUE(b.add(1));
    EXPECT_FALSE(b.add(1));
}

// The embedded speaker's thread: calls and posts run on it in order, an event from the
// writer starts a resync that reaches the writer through the ring, and it stops cleanly.
TEST(BgpThread, ServesCallsAndEventsAndStops) {
    BgpConfig cfg;
    cfg.asn = 65001;
    cfg.router_id = A("10.0.0.1");
    cfg.listen_address = ""; // no socket: nothing outside the process
    fib::BgpThread t(cfg, config::FibRings{64, 1000});
    t.start();
    bgp::Announce vip;
    vip.prefix = P("10.96.0.10/32");
    t.announce(vip);
    auto n = t.call([&] { return nlohmann::json(t.speaker().rib().prefixes(V4)); });
    EXPECT_EQ(n, 1) << "the announcement, posted first, ran first";
    test::Model model;
    fib::Programmer prog{[&](const vleaf::Update &u) { model.apply(u); }};
    fib::DrainCounters drained;
    fib::Event e;
    e.kind = fib::Event::Kind::ResyncRequest;
    ASSERT_TRUE(t.send_event(e));
    for (int k = 0; k < 500 && drained.resyncs == 0; k++) {
        fib::drain(t.routes(), prog, 64, drained);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(drained.resyncs, 1u);
    EXPECT_EQ(prog.bgp_routes(), 0u) << "our own VIP is not forwarded through BGP";
    t.withdraw(vip.prefix);
    EXPECT_EQ(t.call([&] { return nlohmann::json(t.speaker().rib().prefixes(V4)); }), 0);
    t.stop();
    // Without the thread, a call runs on the caller: nothing else touches the speaker.
    EXPECT_EQ(t.call([&] { return nlohmann::json(t.speaker().rib().prefixes(V4)); }), 0);
}

// Flow control through the embedded speaker: a peer's burst that leaves the backlog past
// a quarter of its limit pauses the reads (no resync), and once the writer catches up
// everything arrives and the reads resume.
TEST(BgpThread, PausesReadingWhileTheBacklogIsLarge) {
    const std::string port = std::to_string(20000 + getpid() % 30000);
    auto conf = [&](int self, int other, uint32_t asn, uint32_t peer_as) {
        return parse_config(YAML::Load(
            "asn: " + std::to_string(asn) + "\nrouter_id: 10.0.0." + std::to_string(self) +
            "\nlisten_address: 127.0.0." + std::to_string(self) + "\nlisten_port: " + port +
            "\npeers:\n  - {address: 127.0.0." + std::to_string(other) + ", remote_as: " +
            std::to_string(peer_as) + ", port: " + port + ", update_source: 127.0.0." +
            std::to_string(self) + ", timers: {connect_retry: 1}}\n"));
    };
    fib::BgpThread t(conf(11, 12, 65001, 65002), config::FibRings{64, 1000}); // mark: 250
    t.start();
    Speaker peer(conf(12, 11, 65002, 65001));
    peer.start();
    constexpr int kRoutes = 800; // past the mark, short of the resync limit
    for (int k = 0; k < kRoutes; k++) {
        bgp::Announce a;
        a.prefix = Prefix{IpAddr::v4(0x0a000000u | uint32_t(k) << 8), 24};
        peer.originate_prefix(a);
    }
    auto pauses = [&] {
        return t.call([&] { return t.speaker().show_summary()["read_pauses"]; }).get<int>();
    };
    // Nobody drains the route ring meanwhile: the routes pile up in the backlog.
    for (int k = 0; k < 5000 && pauses() == 0; k++) peer.poll(1);
    EXPECT_GT(pauses(), 0) << "the backlog went past the mark";
    test::Model model;
    fib::Programmer prog{[&](const vleaf::Update &u) { model.apply(u); }};
    prog.add_interface(0, "lo", 7, 0, {*Prefix::parse("127.0.0.11/8", true)});
    fib::DrainCounters drained;
    for (int k = 0; k < 5000 && prog.bgp_routes() < size_t(kRoutes); k++) {
        peer.poll(1);
        fib::drain(t.routes(), prog, 64, drained);
    }
    EXPECT_EQ(prog.bgp_routes(), size_t(kRoutes));
    EXPECT_EQ(drained.resyncs, 0u);
    EXPECT_EQ(t.call([&] { return nlohmann::json(t.feed().counters().resyncs); }), 0);
    for (int k = 0; k < 100 && t.call([&] { return nlohmann::json(t.speaker().reads_paused()); });
         k++)
        peer.poll(1);
    EXPECT_FALSE(t.call([&] { return nlohmann::json(t.speaker().reads_paused()); }));
    t.stop();
}

} // namespace
