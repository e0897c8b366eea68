// Golden packets through the real pipeline: every forwarding case and drop reason.
#include "tests/packet/eal_main.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

using namespace vleaf;
using namespace vleaf::test;

namespace {

const MacAddr kHost1 = mac(0x12), kHost2 = mac(0x22), kHost3 = mac(0x32);
const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

Prefix P(const char *s) {
    return *Prefix::parse(s, true);
}
IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}

class Pipeline : public ::testing::Test {
  protected:
    Rig rig;
    MacAddr port_mac[Rig::kPorts];

    void SetUp() override {
        for (unsigned p = 0; p < Rig::kPorts; p++) port_mac[p] = mac(uint8_t(0x10 + p));
        auto &f = *rig.prog;
        f.add_interface(0, "if0", rig.port[0], 0, {P("10.0.1.1/24"), P("fd00:1::1/64")});
        f.add_interface(1, "if1", rig.port[1], 0, {P("10.0.2.1/24"), P("fd00:2::1/64")});
        f.add_interface(2, "if2", rig.port[2], 0, {P("10.0.3.1/24")});
        f.neighbor(1, A("10.0.2.2"), kHost2);
        f.neighbor(2, A("10.0.3.2"), kHost3);
        f.neighbor(1, A("fd00:2::2"), kHost2);
        ASSERT_EQ(f.add_static(0, P("10.100.0.0/16"), {A("10.0.2.2")}, {}, false), "");
        ASSERT_EQ(f.add_static(0, P("10.200.0.0/16"), {A("10.0.2.2"), A("10.0.3.2")}, {}, false),
                  "");
        ASSERT_EQ(f.add_static(0, P("10.66.0.0/16"), {}, {}, true), "");
        ASSERT_EQ(f.add_static(0, P("10.77.0.0/16"), {A("10.0.2.9")}, {}, false), "");
        ASSERT_EQ(f.add_static(0, P("fd00:100::/48"), {A("fd00:2::2")}, {}, false), "");
        ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();
    }

    Frame v4(const V4 &v = {}) { return ipv4(port_mac[0], kHost1, v); }
    Frame v6(const V6 &v = {}) { return ipv6(port_mac[0], kHost1, v); }

    // Sends one frame in on port 0 and expects exactly `want` out of port `out`.
    void expect_routed(const Frame &in, unsigned out, const MacAddr &next) {
        rig.run(0, {in});
        auto sent = rig.take_tx(out);
        ASSERT_EQ(sent.size(), 1u);
        EXPECT_EQ(bytes_of(sent[0]), routed(in, next, port_mac[out]));
        rte_pktmbuf_free(sent[0]);
    }

    void expect_drop(const Frame &in, Drop why) {
        uint64_t before = rig.drops(why);
        rig.run(0, {in});
        EXPECT_EQ(rig.drops(why), before + 1) << drop_names[int(why)];
        for (unsigned p = 0; p < Rig::kPorts; p++) EXPECT_TRUE(rig.take_tx(p).empty());
        EXPECT_TRUE(rig.take_punts().empty());
    }

    dp::PuntMsg expect_punt(const Frame &in, Punt why) {
        rig.run(0, {in});
        auto p = rig.take_punts();
        EXPECT_EQ(p.size(), 1u);
        if (p.empty()) return {};
        EXPECT_EQ(p[0].reason, uint8_t(why)) << punt_names[int(why)];
        EXPECT_EQ(bytes_of(p[0].m), in); // punted untouched: the kernel sees what arrived
        rte_pktmbuf_free(p[0].m);
        return p[0];
    }
};

TEST_F(Pipeline, Ipv4ToNeighbor) {
    expect_routed(v4(), 1, kHost2);
}

TEST_F(Pipeline, Ipv4ViaStaticRoute) {
    expect_routed(v4({.dst = "10.100.7.9"}), 1, kHost2);
}

TEST_F(Pipeline, Ipv6ToNeighborAndViaStaticRoute) {
    expect_routed(v6(), 1, kHost2);
    expect_routed(v6({.dst = "fd00:100:0:1::5"}), 1, kHost2);
}

TEST_F(Pipeline, TcpOverIpv4KeepsPayload) {
    expect_routed(v4({.proto = 6, .payload = 1000}), 1, kHost2);
}

// The stages keep a burst's order across families; plain4 sends the IPv4 packets of a
// burst before the others (OddSplit), each family still in order.
TEST_F(Pipeline, BurstOfMixedFamiliesKeepsOrder) {
    std::vector<Frame> in;
    in.reserve(32);
    for (int k = 0; k < 32; k++)
        in.push_back(k % 3 ? v4({.sport = uint16_t(k)}) : v6({.sport = uint16_t(k)}));
    std::vector<Frame> v4_first = in;
    std::stable_partition(v4_first.begin(), v4_first.end(),
                          [](const Frame &f) { return f[12] == 0x08; });
    for (bool staged : {true, false}) {
        if (staged)
            rig.run_stages(0, in);
        else
            rig.run(0, in);
        auto out = rig.take_tx(1);
        ASSERT_EQ(out.size(), in.size());
        for (size_t k = 0; k < in.size(); k++) {
            EXPECT_EQ(bytes_of(out[k]), routed((staged ? in : v4_first)[k], kHost2, port_mac[1]))
                << k << (staged ? " staged" : "");
            rte_pktmbuf_free(out[k]);
        }
    }
}

TEST_F(Pipeline, EcmpSpreadsFlowsAndKeepsEachFlowOnOnePath) {
    std::map<uint16_t, unsigned> path_of;
    unsigned per_port[Rig::kPorts] = {};
    for (int round = 0; round < 2; round++) {
        for (uint16_t sport = 0; sport < 256; sport++) {
            rig.run(0, {v4({.dst = "10.200.1.1", .sport = sport})});
            for (unsigned p = 1; p <= 2; p++)
                for (rte_mbuf *m : rig.take_tx(p)) {
                    auto b = bytes_of(m);
                    EXPECT_EQ(MacAddr({b[0], b[1], b[2], b[3], b[4], b[5]}),
                              p == 1 ? kHost2 : kHost3);
                    if (round == 0) {
                        path_of[sport] = p;
                        per_port[p]++;
                    } else {
                        EXPECT_EQ(path_of[sport], p) << "flow " << sport << " moved";
                    }
                    rte_pktmbuf_free(m);
                }
        }
    }
    EXPECT_EQ(per_port[1] + per_port[2], 256u);
    EXPECT_GT(per_port[1], 96u);
    EXPECT_GT(per_port[2], 96u);
}

TEST_F(Pipeline, DropReasons) {
    Frame runt(10, 0);
    expect_drop(runt, Drop::runt);
    expect_drop(ether(port_mac[0], kHost1, 0x88cc), Drop::unknown_ethertype);
    Frame short_ip = v4();
    short_ip.resize(14 + 12);
    expect_drop(short_ip, Drop::runt);
    Frame bad_version = v4();
    bad_version[14] = 0x65;
    expect_drop(bad_version, Drop::ip_bad_version);
    Frame bad_ihl = v4();
    bad_ihl[14] = 0x44;
    expect_drop(bad_ihl, Drop::ip_bad_header_len);
    Frame options = v4();
    options[14] = 0x46;
    expect_drop(options, Drop::ip_options);
    Frame too_long = v4();
    put16(too_long, 16, 2000);
    expect_drop(too_long, Drop::ip_bad_total_len);
    expect_drop(v4({.frag = 0x2000}), Drop::ip_fragment); // more fragments
    expect_drop(v4({.frag = 0x0010}), Drop::ip_fragment); // non-zero offset
    expect_drop(v4({.dst = "224.0.0.5"}), Drop::ip_martian);
    expect_drop(v4({.dst = "255.255.255.255"}), Drop::ip_martian);
    expect_drop(v4({.ttl = 1}), Drop::ttl_exceeded);
    expect_drop(v4({.ttl = 0}), Drop::ttl_exceeded);
    expect_drop(v6({.hops = 1}), Drop::ttl_exceeded);
    expect_drop(v4({.dst = "192.0.2.1"}), Drop::no_route);
    expect_drop(v6({.dst = "2001:db8::1"}), Drop::no_route);
    expect_drop(v4({.dst = "10.66.1.1"}), Drop::blackhole);
    Frame v6_long = v6();
    put16(v6_long, 14 + 4, 1400);
    expect_drop(v6_long, Drop::ip_bad_total_len);
    Frame v6_version = v6();
    v6_version[14] = 0x40;
    expect_drop(v6_version, Drop::ip_bad_version);
}

TEST_F(Pipeline, MtuOfEgressPort) {
    rig.info[rig.port[1]].mtu = 1000;
    expect_drop(v4({.payload = 1000}), Drop::mtu_exceeded);
    expect_drop(v6({.payload = 1000}), Drop::mtu_exceeded);
    expect_routed(v4({.payload = 1000 - 28}), 1, kHost2); // exactly the MTU
}

TEST_F(Pipeline, ExceptionsArePunted) {
    Frame arp = ether(kBroadcast, kHost1, 0x0806);
    arp.resize(42, 0);
    expect_punt(arp, Punt::arp);
    expect_punt(v6({.dst = "ff02::1:ff00:1", .hops = 255, .next = 58, .sport = 135}), Punt::nd);
    expect_punt(v6({.dst = "fd00:1::1", .hops = 255, .next = 58, .sport = 136}), Punt::nd);
    expect_punt(v4({.dst = "10.0.1.1"}), Punt::local);
    expect_punt(v4({.dst = "10.0.2.1", .ttl = 1}), Punt::local); // TTL 1 is fine for us
    expect_punt(v4({.dst = "10.0.1.255"}), Punt::local);
    expect_punt(v6({.dst = "fd00:1::1"}), Punt::local);
    expect_punt(v6({.dst = "fe80::1"}), Punt::local);
    expect_punt(v6({.dst = "ff02::2"}), Punt::local);
}

TEST_F(Pipeline, UnresolvedDestinationsArePuntedWithTheirNextHop) {
    auto connected = expect_punt(v4({.dst = "10.0.2.77"}), Punt::resolve);
    auto t = rig.prog->resolve_target(connected.nh, A("10.0.2.77"));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->ifid, 1);
    EXPECT_EQ(t->ip, A("10.0.2.77"));
    auto gateway = expect_punt(v4({.dst = "10.77.3.3"}), Punt::resolve);
    t = rig.prog->resolve_target(gateway.nh, A("10.77.3.3"));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->ip, A("10.0.2.9")); // the gateway, not the destination
    expect_drop(v4({.dst = "10.77.3.3", .ttl = 1}), Drop::ttl_exceeded);
}

TEST_F(Pipeline, FloodTowardsAnUnresolvedNeighborIsRateLimited) {
    rig.w->resolve_gap = UINT64_MAX / 2; // one punt per destination, ever, in this test
    expect_punt(v4({.dst = "10.0.2.50"}), Punt::resolve);
    expect_drop(v4({.dst = "10.0.2.50"}), Drop::neigh_unresolved);
    expect_punt(v4({.dst = "10.0.2.51"}), Punt::resolve);          // another neighbor
    expect_punt(v4({.dst = "10.77.0.1"}), Punt::resolve);          // an unresolved gateway
    expect_drop(v4({.dst = "10.77.9.9"}), Drop::neigh_unresolved); // same gateway
}

TEST_F(Pipeline, NeighborChangesApplyToEveryRouteThroughIt) {
    const MacAddr moved = mac(0x2f);
    rig.prog->neighbor(1, A("10.0.2.2"), moved);
    expect_routed(v4(), 1, moved);
    expect_routed(v4({.dst = "10.100.0.1"}), 1, moved);
    rig.prog->neighbor(1, A("10.0.2.2"), std::nullopt);
    expect_punt(v4({.dst = "10.100.0.1"}), Punt::resolve);
    rig.prog->neighbor(1, A("10.0.2.9"), kHost2);
    expect_routed(v4({.dst = "10.77.0.1"}), 1, kHost2);
    EXPECT_TRUE(rig.errors.empty());
}

TEST_F(Pipeline, RoutesWithdrawnAndReplaced) {
    auto &f = *rig.prog;
    ASSERT_EQ(f.add_static(0, P("10.100.0.0/16"), {A("10.0.3.2")}, {}, false), "");
    expect_routed(v4({.dst = "10.100.0.1"}), 2, kHost3);
    ASSERT_EQ(f.add_static(0, P("0.0.0.0/0"), {A("10.0.3.2")}, {}, false), "");
    expect_routed(v4({.dst = "198.51.100.1"}), 2, kHost3);
    EXPECT_TRUE(rig.errors.empty());
}

// What a burst did: frames sent per port, frames punted with their reason, drops by
// reason (counter increments).
// What a port does not take of a burst is freed and counted as tx_full.
TEST_F(Pipeline, TxCountsAndFreesWhatThePortRefuses) {
    // Ring port 1 takes 4095 mbufs (ring of 4096): fill it but for 10.
    std::vector<rte_mbuf *> filler(4085);
    ASSERT_EQ(rte_pktmbuf_alloc_bulk(rig.pool, filler.data(), unsigned(filler.size())), 0);
    ASSERT_EQ(rte_ring_enqueue_bulk(rig.tx[1], reinterpret_cast<void **>(filler.data()),
                                    unsigned(filler.size()), nullptr),
              filler.size());
    std::vector<Frame> in;
    for (uint16_t k = 0; k < 32; k++) in.push_back(v4({.sport = k}));
    const unsigned free_before = rte_mempool_avail_count(rig.pool);
    const uint64_t tx_before = rig.w->stats.tx, full_before = rig.drops(Drop::tx_full);
    rig.run(0, in);
    EXPECT_EQ(rig.w->stats.tx - tx_before, 10u);
    EXPECT_EQ(rig.drops(Drop::tx_full) - full_before, 22u);
    // The burst's 32 mbufs came from the pool; the 22 refused are back in it.
    EXPECT_EQ(rte_mempool_avail_count(rig.pool), free_before - 10);
    auto sent = rig.take_tx(1);
    ASSERT_EQ(sent.size(), 4095u);
    EXPECT_EQ(bytes_of(sent.back()), routed(in[9], kHost2, port_mac[1]));
    for (rte_mbuf *m : sent) rte_pktmbuf_free(m);
}

struct Outcome {
    std::vector<Frame> sent[Rig::kPorts];
    std::vector<std::pair<uint8_t, Frame>> punted;
    std::vector<uint64_t> drops;
    std::vector<std::vector<uint64_t>> acl_hits; // of each policy in PlainBurst::acl_ids
    bool operator==(const Outcome &) const = default;
};

class PlainBurst : public Pipeline {
  protected:
    void SetUp() override {
        Pipeline::SetUp();
        rig.w->resolve_gap = 0; // every unresolved packet is punted, in both runs
        rig.info[rig.port[2]].mtu = 1000;
    }

    // ACL policies whose hit counters an outcome includes (what the burst added to them).
    std::vector<uint32_t> acl_ids;
    std::vector<std::vector<uint64_t>> acl_before;

    static bool is_ipv4(const Frame &f) { return f.size() >= 14 && f[12] == 0x08 && f[13] == 0; }
    static Outcome ipv4_first(Outcome o) {
        for (auto &s : o.sent) std::stable_partition(s.begin(), s.end(), is_ipv4);
        std::stable_partition(o.punted.begin(), o.punted.end(),
                              [](const auto &p) { return is_ipv4(p.second); });
        return o;
    }

    template <class Run> Outcome outcome(Run &&run) {
        std::vector<uint64_t> before(std::begin(rig.w->stats.drops), std::end(rig.w->stats.drops));
        acl_before.clear();
        for (uint32_t id : acl_ids) acl_before.push_back(rig.acl->hits(id));
        run();
        Outcome o;
        for (unsigned p = 0; p < Rig::kPorts; p++)
            for (rte_mbuf *m : rig.take_tx(p)) {
                o.sent[p].push_back(bytes_of(m));
                rte_pktmbuf_free(m);
            }
        for (auto &pm : rig.take_punts()) {
            o.punted.emplace_back(pm.reason, bytes_of(pm.m));
            rte_pktmbuf_free(pm.m);
        }
        for (size_t d = 0; d < before.size(); d++)
            o.drops.push_back(rig.w->stats.drops[d] - before[d]);
        for (size_t k = 0; k < acl_ids.size(); k++) {
            std::vector<uint64_t> hits = rig.acl->hits(acl_ids[k]);
            for (size_t r = 0; r < hits.size(); r++) hits[r] -= acl_before[k][r];
            o.acl_hits.push_back(hits);
        }
        return o;
    }

    // The burst through Worker::process (plain4 first), and through the stages alone.
    // plain4 may send the frames that are not IPv4 after the IPv4 ones (OddSplit): each
    // port's frames and the punted ones are compared IPv4 first, in order within each.
    void expect_same_as_stages(const std::vector<Frame> &in, const std::string &what) {
        Outcome fast = ipv4_first(outcome([&] { rig.run(0, in); }));
        Outcome staged = ipv4_first(outcome([&] { rig.run_stages(0, in); }));
        size_t out = 0;
        for (auto &s : fast.sent) out += s.size();
        EXPECT_EQ(out + fast.punted.size() +
                      std::accumulate(fast.drops.begin(), fast.drops.end(), uint64_t{0}),
                  in.size())
            << what;
        EXPECT_TRUE(fast == staged) << what;
    }
};

// plain4 takes a burst of plain IPv4 whole; any other packet, at any place in the burst,
// sends it through the stages (before the lookup) or hands it to them from that packet on
// (after): either way every packet ends as the stages alone would have it.
TEST_F(PlainBurst, EndsAsInTheStagesWhateverPacketIsMixedIn) {
    auto plain = [&](unsigned k) {
        return v4({.dst = "10.100." + std::to_string(k) + ".1", .sport = uint16_t(k)});
    };
    Frame options = v4(), fragment = v4({.frag = 0x2000}), short_ip = v4();
    options[14] = 0x46;
    short_ip.resize(14 + 12);
    Frame arp = ether(kBroadcast, kHost1, 0x0806);
    arp.resize(42, 0);
    const std::vector<std::pair<std::string, Frame>> odd = {
        {"none", plain(99)},
        {"ttl 1", v4({.dst = "10.100.9.9", .ttl = 1})},
        {"no route", v4({.dst = "192.0.2.1"})},
        {"blackhole", v4({.dst = "10.66.1.1"})},
        {"local", v4({.dst = "10.0.1.1"})},
        {"unresolved", v4({.dst = "10.0.2.77"})},
        {"ecmp", v4({.dst = "10.200.1.1", .sport = 7})},
        {"other port", v4({.dst = "10.0.3.2"})},
        {"mtu of the other port", v4({.dst = "10.0.3.2", .payload = 1000})},
        {"martian", v4({.dst = "224.0.0.5"})},
        {"fragment", fragment},
        {"options", options},
        {"runt", short_ip},
        {"ipv6", v6()},
        {"arp", arp},
    };
    for (auto &[name, frame] : odd)
        for (unsigned at : {0u, 13u, 31u}) {
            std::vector<Frame> in;
            for (unsigned k = 0; k < 32; k++) in.push_back(k == at ? frame : plain(k));
            expect_same_as_stages(in, name + " at " + std::to_string(at));
        }
}

// Frames that are not IPv4 (ARP, IPv6, a VLAN tag, another ether type), one or several,
// anywhere in a plain burst, alone or with an IPv4 packet that the stages take over: every
// packet ends as the stages alone would have it, IPv4 in the same order.
TEST_F(PlainBurst, EndsAsInTheStagesWithFramesThatAreNotIPv4) {
    auto plain = [&](unsigned k) {
        return v4({.dst = "10.100." + std::to_string(k) + ".1", .sport = uint16_t(k)});
    };
    Frame arp = ether(kBroadcast, kHost1, 0x0806);
    arp.resize(42, 0);
    Frame vlan = tagged(plain(50), 7), lldp = l2(port_mac[0], kHost1, 0x88cc);
    Frame v6_unresolved = v6({.dst = "fd00:2::77"});
    const std::vector<std::pair<std::string, Frame>> ipv4_odd = {
        {"", {}},
        {"ttl 1", v4({.dst = "10.100.9.9", .ttl = 1})},
        {"unresolved", v4({.dst = "10.0.2.77"})},
        {"other port", v4({.dst = "10.0.3.2"})},
        {"ecmp", v4({.dst = "10.200.1.1", .sport = 7})},
        {"martian", v4({.dst = "224.0.0.5"})},
        {"no route", v4({.dst = "192.0.2.1"})},
    };
    const std::vector<std::pair<std::string, std::map<unsigned, Frame>>> mixes = {
        {"arp at 0", {{0, arp}}},
        {"arp at 31", {{31, arp}}},
        {"ipv6 at 5, arp at 6", {{5, v6()}, {6, arp}}},
        {"vlan, lldp, unresolved ipv6", {{1, vlan}, {17, lldp}, {30, v6_unresolved}}},
        {"every other one", {}},
    };
    for (auto &[mix_name, mix] : mixes)
        for (auto &[odd_name, odd] : ipv4_odd) {
            std::vector<Frame> in;
            for (unsigned k = 0; k < 32; k++) {
                auto it = mix.find(k);
                if (mix.empty() && k % 2)
                    in.push_back(k % 4 == 1 ? arp : v6({.sport = uint16_t(k)}));
                else if (it != mix.end())
                    in.push_back(it->second);
                else if (k == 12 && !odd.empty())
                    in.push_back(odd);
                else
                    in.push_back(plain(k));
            }
            std::string what = mix_name;
            expect_same_as_stages(in, what.append(" ").append(odd_name));
        }
    std::vector<Frame> none_plain;
    for (unsigned k = 0; k < 8; k++) none_plain.push_back(k % 2 ? arp : v6());
    expect_same_as_stages(none_plain, "only arp and ipv6");
}

// The IPv4 packets of a burst with an IPv6 packet first leave before it: plain4 forwarded
// them and left the IPv6 packet to the stages, which alone would send it first.
TEST_F(PlainBurst, SplitsOffFramesThatAreNotIPv4) {
    std::vector<Frame> in{v6()};
    for (unsigned k = 0; k < 31; k++) in.push_back(v4({.dst = "10.100.0.1", .sport = uint16_t(k)}));
    rig.run(0, in);
    auto sent = rig.take_tx(1);
    ASSERT_EQ(sent.size(), 32u);
    for (unsigned k = 0; k < 32; k++) {
        EXPECT_EQ(bytes_of(sent[k]), routed(in[(k + 1) % 32], kHost2, port_mac[1])) << k;
        rte_pktmbuf_free(sent[k]);
    }
}

// Plain bursts spread over two egress ports by ECMP, and bursts shorter than a prefetch.
TEST_F(PlainBurst, EndsAsInTheStagesOverSeveralPortsAndShortBursts) {
    std::vector<Frame> in;
    for (uint16_t k = 0; k < 32; k++) in.push_back(v4({.dst = "10.200.1.1", .sport = k}));
    expect_same_as_stages(in, "ecmp");
    for (unsigned n : {1u, 3u, 5u}) {
        std::vector<Frame> few;
        for (unsigned k = 0; k < n; k++) few.push_back(v4({.dst = "10.100.0.1"}));
        expect_same_as_stages(few, std::to_string(n) + " packets");
    }
}

// Plain bursts with ACLs. The policies take UDP port 2000: by host, rules that pin
// destination hosts 10.100.h.1 (the exact-match part) denying `deny`, counting host 4 (ahead
// of the others) and allowing host 5; by prefix, the same on the hosts' /24s plus an Allow
// of 10.100.0.0/16 after them (rte_acl), other ports denied by default.
class PlainBurstAcl : public PlainBurst {
  protected:
    struct PolicyCase {
        std::string name;
        std::vector<std::pair<AclAttach, AclPolicy>> policies;
    };
    // Installs the case's policies as ids 1, 2, ... (acl_ids), runs `check`, removes them.
    template <class Check> void with_policies(const PolicyCase &c, Check &&check) {
        acl_ids.clear();
        for (const auto &[where, policy] : c.policies) {
            acl_ids.push_back(uint32_t(acl_ids.size() + 1));
            rig.acl->set(acl_ids.back(), where, policy);
        }
        check();
        for (uint32_t id : acl_ids) rig.acl->del(id);
    }
    static AclRule pinned(const std::string &dst, uint16_t dport, AclAction a) {
        AclRule r;
        r.src = P("10.0.0.0/8"), r.dst = P(dst.c_str()), r.proto = IPPROTO_UDP;
        r.dport_lo = r.dport_hi = dport, r.action = a;
        return r;
    }
    static std::string host(unsigned h) { return "10.100." + std::to_string(h) + ".1/32"; }
    static AclPolicy by_host(const std::vector<unsigned> &deny) {
        AclPolicy p;
        p.rules = {pinned(host(4), 2000, AclAction::Count),
                   pinned(host(5), 2000, AclAction::Allow)};
        p.rules[0].priority = -1;
        for (unsigned h : deny) p.rules.push_back(pinned(host(h), 2000, AclAction::Deny));
        return p;
    }
    static AclPolicy by_prefix(const std::vector<unsigned> &deny) {
        AclPolicy p = by_host(deny);
        for (AclRule &r : p.rules) r.dst = Prefix{r.dst.addr, 24}.masked();
        p.rules.push_back(pinned("10.100.0.0/16", 2000, AclAction::Allow));
        p.rules.back().priority = 1;
        p.default_action = AclAction::Deny; // ports other than 2000
        return p;
    }
    Frame plain(unsigned k) {
        return v4({.dst = "10.100." + std::to_string(k % 8) + ".1", .sport = uint16_t(k)});
    }

    // Plain bursts to hosts 0-7 (those to hosts 3 and 6 sent to `hosts`' of them, the others
    // to host 2), each with an odd frame at 0, 13 or 31; all to host 3; 3 packets.
    void expect_acl_bursts_as_in_the_stages(const std::string &policies,
                                            const std::vector<std::vector<unsigned>> &hosts) {
        // A plain header and nothing after it: no L4 bytes for in-place classification.
        Frame bare = plain(5);
        bare.resize(14 + 20);
        put16(bare, 14 + 2, 20);
        put16(bare, 14 + 10, 0);
        put16(bare, 14 + 10, checksum(&bare[14], 20));
        Frame arp = ether(kBroadcast, kHost1, 0x0806);
        arp.resize(42, 0);
        const std::vector<std::pair<std::string, Frame>> odd = {
            {"header only", bare},
            {"none", plain(1)},
            {"denied", plain(3)},
            {"by default", v4({.dst = "10.100.1.1", .dport = 80})},
            {"ttl 1", v4({.dst = "10.100.9.9", .ttl = 1})},
            {"ecmp", v4({.dst = "10.200.1.1", .sport = 7})},
            {"no route", v4({.dst = "192.0.2.1"})},
            {"ipv6", v6()},
            {"arp", arp},
        };
        for (auto &[name, frame] : odd)
            for (unsigned at : {0u, 13u, 31u})
                for (const std::vector<unsigned> &to : hosts) {
                    std::vector<Frame> in;
                    std::string what = policies;
                    what.append(", ").append(name).append(" at ").append(std::to_string(at));
                    for (unsigned h : to) what += ", to " + std::to_string(h);
                    for (unsigned k = 0; k < 32; k++) {
                        const bool sent_to = std::find(to.begin(), to.end(), k % 8) != to.end();
                        const bool redirected = (k % 8 == 3 || k % 8 == 6) && !sent_to;
                        in.push_back(k == at ? frame : plain(redirected ? 2 : k));
                    }
                    expect_same_as_stages(in, what);
                }
        std::vector<Frame> all_denied(32, plain(3)), short_burst(3, plain(4));
        expect_same_as_stages(all_denied, policies + ", all to host 3");
        expect_same_as_stages(short_burst, policies + ", 3 packets");
    }
};

// With an ingress policy, plain4 classifies a plain burst between its loops. Whatever the
// policy denies, allows or counts, by the port's policy (the exact-match part) or the VRF's
// (rte_acl), with or without an odd packet mixed in, the burst ends as in the stages with
// the same hit counters.
TEST_F(PlainBurstAcl, WithAnIngressAclEndsAsInTheStages) {
    const std::vector<PolicyCase> cases = {
        {"port", {{AclAttach{AclDirection::In, true, rig.port[0]}, by_host({3, 6})}}},
        {"vrf", {{AclAttach{AclDirection::In, false, 0}, by_prefix({3, 6})}}},
    };
    for (const PolicyCase &c : cases)
        with_policies(c, [&] { expect_acl_bursts_as_in_the_stages(c.name, {{}, {3, 6}}); });
}

// With egress policies, plain4 classifies a plain burst after its second loop, by the
// policy of each packet's egress port, else of its VRF: alone, with the egress port's or the
// VRF's, and with an ingress policy that denies other packets (both, one or none of them
// denying), each burst ends as in the stages with the same hit counters. A single egress
// policy (hashed for in the first loop) may also be another port's or another VRF's, and
// with two the port's may be another one's, so that the VRF's filters the burst.
TEST_F(PlainBurstAcl, WithAnEgressAclEndsAsInTheStages) {
    const AclAttach in_port{AclDirection::In, true, rig.port[0]};
    const AclAttach out_port{AclDirection::Out, true, rig.port[1]};
    const AclAttach out_port2{AclDirection::Out, true, rig.port[2]};
    const AclAttach out_vrf{AclDirection::Out, false, 0};
    const AclAttach out_vrf1{AclDirection::Out, false, 1};
    const std::vector<PolicyCase> cases = {
        {"egress port", {{out_port, by_host({3, 6})}}},
        {"egress vrf", {{out_vrf, by_prefix({3, 6})}}},
        {"egress on another port", {{out_port2, by_host({3, 6})}}},
        {"egress on another vrf", {{out_vrf1, by_prefix({3, 6})}}},
        {"egress port over vrf", {{out_port, by_host({6})}, {out_vrf, by_prefix({3})}}},
        {"egress vrf, another port", {{out_port2, by_host({6})}, {out_vrf, by_prefix({3})}}},
        {"ingress port, egress vrf", {{in_port, by_host({3})}, {out_vrf, by_prefix({6})}}},
        {"ingress port, egress port", {{in_port, by_prefix({6})}, {out_port, by_host({3})}}},
    };
    for (const PolicyCase &c : cases)
        with_policies(c, [&] {
            expect_acl_bursts_as_in_the_stages(c.name, {{}, {3}, {6}, {3, 6}});
        });
}

// ECMP spreads a plain burst over ports 1 and 2: with a policy on one of them only, on both,
// on one and the VRF's for the other, or the VRF's for both, each port's packets are
// classified by their own policy (or none), as acl_out does.
TEST_F(PlainBurstAcl, WithEgressAclsOnSeveralPortsEndsAsInTheStages) {
    auto by_sport = [](uint16_t deny, uint16_t count) {
        AclRule r;
        r.src = P("10.0.0.0/8"), r.dst = P("10.200.0.0/16"), r.proto = IPPROTO_UDP;
        r.sport_lo = r.sport_hi = deny, r.action = AclAction::Deny;
        AclRule c = r;
        c.sport_lo = 0, c.sport_hi = count, c.action = AclAction::Count;
        AclPolicy p;
        p.rules = {r, c};
        return p;
    };
    const AclAttach port1{AclDirection::Out, true, rig.port[1]};
    const AclAttach port2{AclDirection::Out, true, rig.port[2]};
    const AclAttach vrf{AclDirection::Out, false, 0};
    const std::vector<PolicyCase> cases = {
        {"port 1", {{port1, by_sport(5, 9)}}},
        {"port 2", {{port2, by_sport(6, 12)}}},
        {"ports 1 and 2", {{port1, by_sport(5, 9)}, {port2, by_sport(6, 12)}}},
        {"port 1 and vrf", {{port1, by_sport(5, 9)}, {vrf, by_sport(6, 12)}}},
        {"vrf", {{vrf, by_sport(6, 12)}}},
    };
    for (const PolicyCase &c : cases)
        with_policies(c, [&] {
            for (uint16_t deny_from : {0, 5, 6}) { // sport 5 or 6 sent from `deny_from` on
                std::vector<Frame> in;
                for (uint16_t k = 0; k < 32; k++) {
                    const bool denied_port = k == 5 || k == 6;
                    const auto sport = uint16_t(denied_port && k < deny_from ? 40 + k : k);
                    in.push_back(v4({.dst = "10.200.1.1", .sport = sport}));
                }
                expect_same_as_stages(in, c.name + ", from " + std::to_string(deny_from));
            }
        });
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog); });
}
