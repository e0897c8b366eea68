// Speakers talking to each other over loopback TCP in one thread: connection collision,
// max-prefix, route reflection, dynamic neighbors.
#include "control/bgp/speaker.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <functional>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace vleaf;
using namespace vleaf::bgp;
using nlohmann::json;

namespace {

// Every speaker listens on its own 127.0.0.N with the same port.
const uint16_t kPort = uint16_t(20000 + getpid() % 30000);

std::unique_ptr<Speaker> speaker(int n, uint32_t asn, const std::string &peers,
                                 const std::string &extra = "", bool start = true) {
    std::string y = "asn: " + std::to_string(asn) + "\nrouter_id: 10.0.0." + std::to_string(n) +
                    "\nlisten_address: 127.0.0." + std::to_string(n) +
                    "\nlisten_port: " + std::to_string(kPort) + "\npeers:\n" + peers + extra;
    auto s = std::make_unique<Speaker>(parse_config(YAML::Load(y)));
    if (start) s->start();
    return s;
}

// A peer entry of speaker `self` for 127.0.0.`n`.
std::string peer(int self, int n, uint32_t asn, const std::string &more = "") {
    return "  - {address: 127.0.0." + std::to_string(n) + ", remote_as: " + std::to_string(asn) +
           ", port: " + std::to_string(kPort) + ", update_source: 127.0.0." + std::to_string(self) +
           ", timers: {connect_retry: 1}" + more + "}\n";
}

bool run_until(std::initializer_list<Speaker *> all, const std::function<bool()> &done,
               int timeout_ms = 10000) {
    for (int t = 0; t < timeout_ms; t += 2) {
        for (auto *s : all) s->poll(1);
        if (done()) return true;
    }
    return false;
}

json neighbor(Speaker &s, int n) {
    auto all = s.show_neighbors("127.0.0." + std::to_string(n));
    return all.empty() ? json() : all[0];
}

bool established(Speaker &s, int n) {
    auto j = neighbor(s, n);
    return !j.is_null() && j["state"] == "Established";
}

json route(Speaker &s, const std::string &prefix) {
    auto r = s.show_routes(RouteFamily::Ipv4Unicast, prefix);
    return r.empty() ? json() : r[0]["paths"][0];
}

// A scripted peer on 127.0.0.`self` speaking BGP through the codec: it says only what
// the test makes it say (e.g. a BoRR and never the EoRR) and discards what it receives.
class RawPeer {
  public:
    RawPeer(int self, int to) {
        fd_ = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(0x7f000000u | uint32_t(self));
        EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
        a.sin_addr.s_addr = htonl(0x7f000000u | uint32_t(to));
        a.sin_port = htons(kPort);
        EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
        fcntl(fd_, F_SETFL, O_NONBLOCK);
    }
    ~RawPeer() { close(fd_); }
    RawPeer(const RawPeer &) = delete;
    RawPeer &operator=(const RawPeer &) = delete;

    void send(const Bytes &b) {
        drain();
        EXPECT_EQ(write(fd_, b.data(), b.size()), ssize_t(b.size()));
    }
    void drain() {
        uint8_t buf[4096];
        while (read(fd_, buf, sizeof buf) > 0) {
        }
    }

  private:
    int fd_ = -1;
};

struct BgpSpeaker : ::testing::Test {
    void SetUp() override { spdlog::set_level(spdlog::level::warn); }
};

} // namespace

TEST_F(BgpSpeaker, CollisionLeavesOneSession) {
    // Both sides listen, then both connect: each sees its own connection and the peer's.
    auto a = speaker(1, 65001, peer(1, 2, 65002), "announce: [10.1.0.0/16]\n", false);
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16]\n", false);
    a->listen();
    b->listen();
    a->start_peers();
    b->start_peers();
    ASSERT_TRUE(
        run_until({a.get(), b.get()}, [&] { return established(*a, 2) && established(*b, 1); }));
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] {
        return !route(*a, "10.2.0.0/16").is_null() && !route(*b, "10.1.0.0/16").is_null();
    }));
    // Whatever the race, the sessions stay up and use one connection each way.
    run_until(
        {a.get(), b.get()}, [] { return false; }, 1500);
    EXPECT_EQ(neighbor(*a, 2)["counters"]["established"], 1);
    EXPECT_EQ(neighbor(*b, 1)["counters"]["established"], 1);
    EXPECT_EQ(neighbor(*a, 2)["local_port"], neighbor(*b, 1)["remote_port"]);
    EXPECT_EQ(route(*a, "10.2.0.0/16")["as_path"], "65002");
    // Each side saw two connections and both closed the same one (the one initiated by
    // the lower identifier, a's).
    EXPECT_EQ(a->show_summary()["connections"]["rejected_collision"], 1);
    EXPECT_EQ(b->show_summary()["connections"]["rejected_collision"], 1);
    EXPECT_EQ(neighbor(*a, 2)["local_port"], kPort) << "the survivor is b's connection to a";
}

TEST_F(BgpSpeaker, MaxPrefixSendsCease) {
    auto a = speaker(1, 65001, peer(1, 2, 65002, ", max_prefix: 2"));
    auto b =
        speaker(2, 65002, peer(2, 1, 65001), "announce: [10.1.0.0/16, 10.2.0.0/16, 10.3.0.0/16]\n");
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] {
        return neighbor(*b, 1)["last_error"].get<std::string>().find("Maximum Number") !=
               std::string::npos;
    })) << neighbor(*b, 1).dump();
    EXPECT_EQ(neighbor(*b, 1)["last_error"],
              "received Cease/Maximum Number of Prefixes Reached (6/1) data 00 01 01 00 00 00 02")
        << "RFC 4486: AFI, SAFI, limit";
    EXPECT_NE(neighbor(*a, 2)["last_error"].get<std::string>().find("sent Cease"),
              std::string::npos);
    EXPECT_TRUE(route(*a, "10.1.0.0/16").is_null()) << "the peer's routes are gone";
}

TEST_F(BgpSpeaker, RouteReflection) {
    // a reflects; b is its client, c and d are not.
    auto a = speaker(
        1, 65001, peer(1, 2, 65001, ", rr_client: true") + peer(1, 3, 65001) + peer(1, 4, 65001));
    auto b = speaker(2, 65001, peer(2, 1, 65001), "announce: [10.2.0.0/16]\n");
    auto c = speaker(3, 65001, peer(3, 1, 65001), "announce: [10.3.0.0/16]\n");
    auto d = speaker(4, 65001, peer(4, 1, 65001));
    std::initializer_list<Speaker *> all = {a.get(), b.get(), c.get(), d.get()};
    ASSERT_TRUE(run_until(all, [&] {
        return !route(*c, "10.2.0.0/16").is_null() && !route(*d, "10.2.0.0/16").is_null() &&
               !route(*b, "10.3.0.0/16").is_null();
    }));
    // The client's route reaches the non-clients, marked by the reflector.
    auto r = route(*c, "10.2.0.0/16");
    EXPECT_EQ(r["originator_id"], "10.0.0.2");
    EXPECT_EQ(r["cluster_list"], json::array({"10.0.0.1"}));
    EXPECT_EQ(r["next_hop"], "127.0.0.2") << "a reflector keeps the next hop";
    // A non-client's route goes to clients only.
    run_until(
        all, [] { return false; }, 500);
    EXPECT_TRUE(route(*d, "10.3.0.0/16").is_null());
    EXPECT_EQ(route(*b, "10.3.0.0/16")["originator_id"], "10.0.0.3");
}

TEST_F(BgpSpeaker, DynamicNeighborFromRange) {
    auto a = speaker(1, 65001, "  - {range: 127.0.0.0/24, remote_as: 65002}\n");
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16]\n");
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] { return established(*a, 2); }));
    EXPECT_EQ(neighbor(*a, 2)["dynamic"], true);
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] { return !route(*a, "10.2.0.0/16").is_null(); }));
    // When the dynamic neighbor goes away, so do its session and routes.
    b->shutdown();
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] { return neighbor(*a, 2).is_null(); }));
    EXPECT_TRUE(route(*a, "10.2.0.0/16").is_null());
}

TEST_F(BgpSpeaker, PeerLossWithGracefulRestartKeepsStaleRoutes) {
    auto a = speaker(1, 65001, peer(1, 2, 65002));
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16]\n");
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] { return !route(*a, "10.2.0.0/16").is_null(); }));
    b.reset(); // the connection closes without a NOTIFICATION, as when a peer crashes
    ASSERT_TRUE(run_until({a.get()}, [&] { return !established(*a, 2); }));
    EXPECT_EQ(route(*a, "10.2.0.0/16")["stale"], true);
    EXPECT_EQ(neighbor(*a, 2)["stale_families"], json::array({"ipv4-unicast"}));
}

TEST_F(BgpSpeaker, UnknownPeerIsRejected) {
    auto a = speaker(1, 65001, peer(1, 3, 65003));
    auto b = speaker(2, 65002, peer(2, 1, 65001));
    run_until(
        {a.get(), b.get()}, [] { return false; }, 1500);
    EXPECT_GE(a->show_summary()["connections"]["rejected_unknown"].get<int>(), 1);
    EXPECT_FALSE(established(*b, 1));
}

TEST_F(BgpSpeaker, TcpMd5) {
    auto a = speaker(1, 65001, peer(1, 2, 65002, ", password: s3cret"));
    auto b = speaker(2, 65002, peer(2, 1, 65001, ", password: s3cret"));
    ASSERT_TRUE(
        run_until({a.get(), b.get()}, [&] { return established(*a, 2) && established(*b, 1); }));
    EXPECT_EQ(neighbor(*a, 2)["password"], true);
    // A wrong key: the kernel drops the segments, no session.
    auto c = speaker(3, 65003, peer(3, 4, 65001, ", password: wrong"));
    auto d = speaker(4, 65001, peer(4, 3, 65003, ", password: s3cret"));
    run_until(
        {c.get(), d.get()}, [] { return false; }, 2500);
    EXPECT_FALSE(established(*c, 4));
    EXPECT_FALSE(established(*d, 3));
}

TEST_F(BgpSpeaker, TtlSecurity) {
    // GTSM: TTL 255 out, at least 254 in; loopback peers are one hop away.
    auto a = speaker(1, 65001, peer(1, 2, 65002, ", ttl_security: true"));
    auto b = speaker(2, 65002, peer(2, 1, 65001, ", ttl_security: true"));
    ASSERT_TRUE(
        run_until({a.get(), b.get()}, [&] { return established(*a, 2) && established(*b, 1); }));
}

TEST_F(BgpSpeaker, EnhancedRouteRefresh) {
    auto a = speaker(1, 65001, peer(1, 2, 65002), "announce: [10.1.0.0/16]\n");
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16, 10.3.0.0/16]\n");
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] {
        return !route(*a, "10.2.0.0/16").is_null() && !route(*a, "10.3.0.0/16").is_null() &&
               !route(*b, "10.1.0.0/16").is_null();
    }));
    EXPECT_EQ(neighbor(*a, 2)["enhanced_route_refresh"], true);
    EXPECT_FALSE(a->request_refresh(*IpAddr::parse("127.0.0.9"))) << "no such session";
    ASSERT_TRUE(a->request_refresh(*IpAddr::parse("127.0.0.2")));
    ASSERT_TRUE(
        run_until({a.get(), b.get()}, [&] { return neighbor(*a, 2)["counters"]["eorr_in"] == 1; }));
    auto bn = neighbor(*b, 1)["counters"];
    EXPECT_EQ(bn["route_refresh_in"], 1);
    EXPECT_EQ(bn["borr_out"], 1);
    EXPECT_EQ(bn["eorr_out"], 1);
    auto an = neighbor(*a, 2);
    EXPECT_EQ(an["counters"]["route_refresh_out"], 1);
    EXPECT_EQ(an["counters"]["borr_in"], 1);
    EXPECT_EQ(an["stale_families"], json::array()) << "EoRR ends the refresh";
    // Everything was sent again between BoRR and EoRR: nothing swept, nothing stale.
    EXPECT_EQ(route(*a, "10.2.0.0/16")["stale"], false);
    EXPECT_EQ(route(*a, "10.3.0.0/16")["stale"], false);
    // Soft reset out: the table goes out again without a refresh request.
    EXPECT_EQ(neighbor(*b, 1)["counters"]["prefixes_announced_in"], 1);
    EXPECT_TRUE(a->resend(*IpAddr::parse("127.0.0.2")));
    EXPECT_TRUE(run_until({a.get(), b.get()}, [&] {
        return neighbor(*b, 1)["counters"]["prefixes_announced_in"] == 2;
    }));
}

// RFC 7313 4: a BoRR without its EoRR must not keep stale paths forever.
TEST_F(BgpSpeaker, BorrWithoutEorrPurgesStalePathsAfterTheTimer) {
    auto a = speaker(1, 65001, peer(1, 2, 65002, ", passive: true, refresh_stale_time: 1"));
    RawPeer b(2, 1);
    LocalParams lp;
    lp.asn = 65002;
    lp.bgp_id = 0x0a000002;
    lp.remote_as = 65001;
    lp.families = family_bit(RouteFamily::Ipv4Unicast);
    lp.graceful_restart = false;
    Bytes msg;
    encode_open(local_open(lp), msg);
    encode_keepalive(msg);
    b.send(msg);
    ASSERT_TRUE(run_until({a.get()}, [&] {
        b.drain();
        return established(*a, 2);
    }));
    EXPECT_EQ(neighbor(*a, 2)["enhanced_route_refresh"], true);

    PathAttrs attrs;
    attrs.origin = Origin::Igp;
    attrs.as_path = AsPath{{AsSegment{SegmentType::AsSequence, {65002}}}};
    CodecContext ctx;
    ctx.ebgp = true;
    auto announce = [&](const std::vector<const char *> &prefixes) {
        std::vector<PrefixNlri> routes;
        routes.reserve(prefixes.size());
        for (auto *p : prefixes) routes.push_back({0, *Prefix::parse(p)});
        Bytes u;
        encode_announce(RouteFamily::Ipv4Unicast, attrs, NextHop{*IpAddr::parse("127.0.0.2"), {}},
                        routes, ctx, u);
        return u;
    };
    b.send(announce({"10.2.0.0/16", "10.3.0.0/16"}));
    ASSERT_TRUE(run_until({a.get()}, [&] { return !route(*a, "10.3.0.0/16").is_null(); }));

    // BoRR, then only 10.2.0.0/16 again, and no EoRR.
    msg.clear();
    encode_route_refresh({to_afi_safi(RouteFamily::Ipv4Unicast), RouteRefresh::BeginOfRib}, msg);
    auto again = announce({"10.2.0.0/16"});
    msg.insert(msg.end(), again.begin(), again.end());
    auto borr_sent = Clock::now();
    b.send(msg);
    ASSERT_TRUE(run_until({a.get()}, [&] { return neighbor(*a, 2)["counters"]["borr_in"] == 1; }));
    ASSERT_TRUE(run_until({a.get()}, [&] { return route(*a, "10.2.0.0/16")["stale"] == false; }));
    EXPECT_EQ(route(*a, "10.3.0.0/16")["stale"], true) << "not sent again since the BoRR";
    EXPECT_EQ(neighbor(*a, 2)["stale_families"], json::array({"ipv4-unicast"}));

    ASSERT_TRUE(run_until({a.get()}, [&] {
        b.drain();
        return route(*a, "10.3.0.0/16").is_null();
    }));
    auto took = Clock::now() - borr_sent;
    EXPECT_GE(took, std::chrono::milliseconds(900)) << "purged before refresh_stale_time";
    EXPECT_LE(took, std::chrono::milliseconds(1500));
    EXPECT_EQ(route(*a, "10.2.0.0/16")["stale"], false) << "what was sent again stays";
    EXPECT_EQ(neighbor(*a, 2)["stale_families"], json::array());
    EXPECT_TRUE(established(*a, 2)) << "the session is not reset";
}

TEST_F(BgpSpeaker, ReloadLeavesUnaffectedSessionsAlone) {
    auto cfg_a = [](const std::string &b_policy, bool with_c, bool with_d) {
        std::string peers = peer(1, 2, 65002, b_policy);
        if (with_c) peers += peer(1, 3, 65003);
        if (with_d) peers += peer(1, 4, 65004);
        return "asn: 65001\nrouter_id: 10.0.0.1\nlisten_address: 127.0.0.1\nlisten_port: " +
               std::to_string(kPort) + "\npeers:\n" + peers + "announce: [10.1.0.0/16]\n";
    };
    auto a = std::make_unique<Speaker>(
        parse_config(YAML::Load(cfg_a(", import: {prefix_list: [10.2.0.0/16]}", true, false))));
    a->start();
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16, 10.3.0.0/16]\n");
    auto c = speaker(3, 65003, peer(3, 1, 65001));
    auto d = speaker(4, 65004, peer(4, 1, 65001));
    std::initializer_list<Speaker *> all = {a.get(), b.get(), c.get(), d.get()};
    ASSERT_TRUE(run_until(all, [&] {
        return established(*a, 2) && established(*a, 3) && !route(*a, "10.2.0.0/16").is_null() &&
               !route(*b, "10.1.0.0/16").is_null();
    }));
    EXPECT_TRUE(route(*a, "10.3.0.0/16").is_null()) << "denied by the import policy";
    auto port = neighbor(*a, 2)["local_port"];

    // A change that needs a restart is refused as a whole.
    auto bad = parse_config(YAML::Load(cfg_a("", false, true)));
    bad.asn = 65009;
    EXPECT_THROW(a->reload(bad), BgpConfigError);
    EXPECT_TRUE(established(*a, 3));

    // b: import policy dropped and export policy added; c removed; d added.
    a->reload(
        parse_config(YAML::Load(cfg_a(", export: {set_community: ['65001:7']}", false, true))));
    ASSERT_TRUE(run_until(all, [&] {
        return !route(*a, "10.3.0.0/16").is_null() && established(*a, 4) &&
               !route(*b, "10.1.0.0/16").is_null() &&
               route(*b, "10.1.0.0/16")["communities"] == json::array({"65001:7"}) &&
               neighbor(*c, 1)["last_error"].get<std::string>().find("De-configured") !=
                   std::string::npos;
    })) << neighbor(*c, 1).dump();
    EXPECT_EQ(neighbor(*b, 1)["counters"]["route_refresh_in"], 1) << "asked b for its routes";
    // b's session was not touched: same connection, established once.
    EXPECT_EQ(neighbor(*a, 2)["counters"]["established"], 1);
    EXPECT_EQ(neighbor(*a, 2)["local_port"], port);
    EXPECT_EQ(neighbor(*b, 1)["counters"]["established"], 1);
    EXPECT_TRUE(neighbor(*a, 3).is_null()) << "c is gone from a";
    EXPECT_FALSE(established(*c, 1));
}

TEST_F(BgpSpeaker, RestartingSpeakerDefersUntilEndOfRib) {
    auto a = speaker(1, 65001, peer(1, 2, 65002), "announce: [10.1.0.0/16]\n");
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16]\n", false);
    b->set_restarting(true);
    b->start();
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] {
        return !route(*a, "10.2.0.0/16").is_null() && !route(*b, "10.1.0.0/16").is_null();
    }));
    auto n = neighbor(*a, 2);
    EXPECT_EQ(n["peer_restarting"], true) << "R bit in b's OPEN";
    auto gr = b->show_summary()["graceful_restart"];
    EXPECT_EQ(gr["deferring"], false);
    EXPECT_EQ(gr["deferral_ended"], "End-of-RIB from every graceful-restart peer");
    EXPECT_EQ(neighbor(*b, 1)["eor_received"], json::array({"ipv4-unicast"}));
    EXPECT_EQ(n["eor_received"], json::array({"ipv4-unicast"})) << "b ends with End-of-RIB";
}

TEST_F(BgpSpeaker, RestartingSpeakerWaitsForTheDeferralTimer) {
    // a does no graceful restart: b has no End-of-RIB to wait for, only its timer.
    auto a = speaker(1, 65001, peer(1, 2, 65002, ", graceful_restart: false"),
                     "announce: [10.1.0.0/16]\n");
    auto b = speaker(2, 65002, peer(2, 1, 65001), "announce: [10.2.0.0/16]\nselect_defer_time: 2\n",
                     false);
    b->set_restarting(false);
    b->start();
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] { return established(*a, 2); }));
    run_until(
        {a.get(), b.get()}, [] { return false; }, 800);
    EXPECT_TRUE(route(*a, "10.2.0.0/16").is_null()) << "nothing sent while deferring";
    EXPECT_EQ(b->show_summary()["rib"]["ipv4-unicast"], 2) << "a's route is in b's RIB";
    EXPECT_EQ(b->show_summary()["graceful_restart"]["deferring"], true);
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] {
        return !route(*a, "10.2.0.0/16").is_null() && !route(*b, "10.1.0.0/16").is_null();
    }));
    EXPECT_EQ(b->show_summary()["graceful_restart"]["deferral_ended"], "select_defer_time ran out");
}

// Flow control: while a speaker's reads are paused, a peer's UPDATE waits in TCP; a pause
// renewed for longer than the hold time still lets a round of reads through every
// kMaxReadPause, so the peer's keepalives keep the session up.
TEST_F(BgpSpeaker, PausedReadsHoldUpdatesBackButKeepTheSession) {
    auto peer3s = [](int self, int n, uint32_t asn) {
        return "  - {address: 127.0.0." + std::to_string(n) +
               ", remote_as: " + std::to_string(asn) + ", port: " + std::to_string(kPort) +
               ", update_source: 127.0.0." + std::to_string(self) +
               ", timers: {connect_retry: 1, hold: 3}}\n";
    };
    auto a = speaker(1, 65001, peer3s(1, 2, 65002));
    auto b = speaker(2, 65002, peer3s(2, 1, 65001));
    ASSERT_TRUE(
        run_until({a.get(), b.get()}, [&] { return established(*a, 2) && established(*b, 1); }));
    using std::chrono::milliseconds;
    constexpr auto kPause = milliseconds(5);
    auto start = Clock::now();
    a->pause_reads(kPause);
    Announce x;
    x.prefix = *Prefix::parse("10.9.0.0/16");
    b->originate_prefix(x);
    std::optional<Clock::duration> arrived;
    while (Clock::now() - start < std::chrono::seconds(4)) { // longer than the hold time
        a->pause_reads(kPause);
        a->poll(1);
        b->poll(1);
        if (!arrived && !route(*a, "10.9.0.0/16").is_null()) arrived = Clock::now() - start;
    }
    EXPECT_TRUE(established(*a, 2));
    EXPECT_TRUE(established(*b, 1));
    EXPECT_EQ(neighbor(*a, 2)["counters"]["dropped"], 0);
    EXPECT_EQ(neighbor(*b, 1)["counters"]["dropped"], 0);
    ASSERT_TRUE(arrived) << "a round of reads every kMaxReadPause";
    EXPECT_GE(*arrived, Speaker::kMaxReadPause) << "read while the pause was renewed";
    EXPECT_LE(*arrived, 2 * Speaker::kMaxReadPause);
    EXPECT_GE(a->show_summary()["read_pauses"].get<int>(), 3);
    // Not renewed, the pause ends within kPause and the withdrawal comes through.
    b->withdraw_prefix(x.prefix);
    auto t = Clock::now();
    ASSERT_TRUE(run_until({a.get(), b.get()}, [&] { return route(*a, "10.9.0.0/16").is_null(); }));
    EXPECT_LT(Clock::now() - t, milliseconds(500));
    EXPECT_FALSE(a->reads_paused());
}
