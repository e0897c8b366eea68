// Golden packets for the VTEP: decapsulation and encapsulation with IPv4 and IPv6 on
// both sides, symmetric IRB through the L3VNI, bridging in L2VNIs (untagged and 802.1Q
// access ports), flooding with split horizon, learning, and every drop reason.
// Expected frames are built field by field in frames.hpp, not by the dataplane's code.
#include "control/icmp/icmp.hpp"
#include "control/neigh/packets.hpp"
#include "tests/packet/eal_main.hpp"
#include "tests/packet/frames.hpp"
#include "tests/packet/harness.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

using namespace vleaf;
using namespace vleaf::test;

namespace {

Prefix P(const char *s) {
    return *Prefix::parse(s, true);
}
IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}

const MacAddr kH1 = mac(0x12), kH2 = mac(0x22), kH3 = mac(0x33), kH4 = mac(0x44);
const MacAddr kVtep2 = mac(0x99), kVtep3 = mac(0x98), kVtep6 = mac(0x97); // underlay neighbors
const MacAddr kGw10{{0, 0, 0x5e, 0, 1, 1}}, kGw20{{0, 0, 0x5e, 0, 1, 2}};
const MacAddr kRmac = mac(0x64), kRemoteRmac = mac(0x65);
const MacAddr kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
constexpr uint16_t kIfUnderlay = 0, kGwIf10 = 10, kGwIf20 = 11;
// Our addresses in VRF 1 (the gateways'), for ICMP messages from us.
const std::vector<Prefix> kVrf1Addrs{P("192.168.20.1/24"), P("192.168.10.1/24"),
                                     P("fd00:10::1/64")};

class Vxlan : public ::testing::Test {
  protected:
    Rig rig{8192, 1 << 16, {4096, 300}, 2};
    MacAddr port_mac[Rig::kPorts];
    uint16_t bd10 = 0, bd20 = 0;

    void SetUp() override {
        for (unsigned p = 0; p < Rig::kPorts; p++) port_mac[p] = mac(uint8_t(0x10 + p));
        dp::VxlanParams vp;
        vp.has4 = vp.has6 = true;
        vp.src4 = A("10.255.0.1").v4_net();
        std::memcpy(vp.src6, A("fd00:255::1").bytes.data(), 16);
        vp.port_be = rte_cpu_to_be_16(4789);
        tune(vp);
        rig.fib->overlay().set_params(vp);
        auto &f = *rig.prog;
        f.add_interface(kIfUnderlay, "underlay", rig.port[0], 0,
                        {P("10.99.0.1/24"), P("fd00:99::1/64")});
        f.add_local(0, A("10.255.0.1"));
        f.add_local(0, A("fd00:255::1"));
        f.neighbor(kIfUnderlay, A("10.99.0.2"), kVtep2);
        f.neighbor(kIfUnderlay, A("10.99.0.3"), kVtep3);
        f.neighbor(kIfUnderlay, A("fd00:99::2"), kVtep6);
        f.add_l3vni(100, 1, kRmac);
        bd10 = f.add_bridge_domain(10, 1, kGw10);
        bd20 = f.add_bridge_domain(20, 1, kGw20);
        f.add_access(rig.port[1], 0, bd10);
        f.add_access(rig.port[2], 20, bd20);
        f.add_gateway(kGwIf10, "vni10", bd10, 1, {P("192.168.10.1/24"), P("fd00:10::1/64")});
        f.add_gateway(kGwIf20, "vni20", bd20, 1, {P("192.168.20.1/24")});
        ASSERT_EQ(f.add_flood(bd10, A("10.99.0.2")), "");
        ASSERT_EQ(f.add_flood(bd10, A("10.99.0.3")), "");
        ASSERT_EQ(f.add_flood(bd20, A("10.99.0.2")), "");
        ASSERT_EQ(f.add_remote_mac(bd10, kH3, A("10.99.0.2")), "");
        ASSERT_EQ(f.add_remote_mac(bd20, kH4, A("10.99.0.2")), "");
        local_mac(bd10, kH1, rig.port[1], 0);
        local_mac(bd20, kH2, rig.port[2], 20);
        f.neighbor(kGwIf10, A("192.168.10.2"), kH1);
        f.neighbor(kGwIf10, A("fd00:10::2"), kH1);
        f.neighbor(kGwIf20, A("192.168.20.2"), kH2);
        ASSERT_EQ(f.add_tunnel_route(1, P("192.168.30.0/24"), A("10.99.0.2"), 100, kRemoteRmac),
                  "");
        ASSERT_EQ(f.add_tunnel_route(1, P("fd00:30::/64"), A("10.99.0.2"), 100, kRemoteRmac), "");
        ASSERT_EQ(f.add_tunnel_route(1, P("192.168.40.0/24"), A("fd00:99::2"), 100, kRemoteRmac),
                  "");
        ASSERT_TRUE(rig.errors.empty()) << rig.errors.front();
    }

    virtual void tune(dp::VxlanParams &) {}

    void local_mac(uint16_t bd, const MacAddr &m, uint16_t port, uint16_t vlan) {
        MacDest d;
        d.port = port;
        d.vlan = vlan;
        d.is_static = true;
        ASSERT_EQ(rig.fib->apply(Update::mac_set(bd, m, d)), "");
    }

    Outer from_vtep2(uint32_t vni) {
        return Outer{port_mac[0], kVtep2, "10.99.0.2", "10.255.0.1", 50000, 4789, vni};
    }
    Outer to_vtep(const MacAddr &nh, const char *dip, uint32_t vni,
                  const char *sip = "10.255.0.1") {
        return Outer{nh, port_mac[0], sip, dip, 0, 4789, vni};
    }

    // One frame in on port `in`; exactly one out of `out`, whose bytes are returned.
    Frame one_out(unsigned in, const Frame &f, unsigned out) {
        rig.run(in, {f});
        return only_out(out);
    }

    // What left since the last look: exactly one frame, out of `out`.
    Frame only_out(unsigned out) {
        Frame got;
        for (unsigned p = 0; p < Rig::kPorts; p++) {
            auto sent = rig.take_tx(p);
            EXPECT_EQ(sent.size(), p == out ? 1u : 0u) << "port " << p;
            for (rte_mbuf *m : sent) {
                if (p == out) got = bytes_of(m);
                rte_pktmbuf_free(m);
            }
        }
        EXPECT_TRUE(rig.take_punts().empty());
        return got;
    }

    // The one packet the pipeline handed to the control thread, with `why`.
    Frame one_punt(Punt why, uint32_t nh, uint8_t vrf) {
        auto p = rig.take_punts();
        for (unsigned k = 0; k < Rig::kPorts; k++) EXPECT_TRUE(rig.take_tx(k).empty());
        if (p.size() != 1) {
            ADD_FAILURE() << p.size() << " punts";
            for (auto &pm : p) rte_pktmbuf_free(pm.m);
            return {};
        }
        EXPECT_EQ(p[0].reason, uint8_t(why));
        EXPECT_EQ(p[0].nh, nh);
        EXPECT_EQ(p[0].vrf, vrf);
        Frame f = bytes_of(p[0].m);
        rte_pktmbuf_free(p[0].m);
        return f;
    }

    // What the control thread does with its answers: into the pipeline, routed in a VRF
    // or bridged in a bridge domain.
    void inject(dp::Entry entry, uint16_t id, const Frame &f) {
        dp::Burst b;
        b.n = 1;
        b.port = rig.port[0];
        b.entry = entry;
        b.entry_id = id;
        b.entry_vlan = dp::kAnyVlan;
        b.m[0] = rig.mbuf(f);
        rig.w->process(b);
    }

    // The outer UDP source port is a hash: take it from what was sent, check its range.
    static uint16_t sport_of(const Frame &f) {
        size_t udp = f[12] == 0x86 ? 14 + 40 : 14 + 20;
        uint16_t s = uint16_t(f.at(udp) << 8 | f.at(udp + 1));
        EXPECT_GE(s, 49152);
        return s;
    }

    void expect_encap(unsigned in, const Frame &f, Outer o, const Frame &inner) {
        Frame got = one_out(in, f, 0);
        if (got.empty()) return;
        o.sport = sport_of(got);
        EXPECT_EQ(got, vxlan(o, inner));
    }

    void expect_drop(unsigned in, const Frame &f, Drop why) {
        uint64_t before = rig.drops(why);
        rig.run(in, {f});
        EXPECT_EQ(rig.drops(why), before + 1) << drop_names[int(why)];
        for (unsigned p = 0; p < Rig::kPorts; p++) EXPECT_TRUE(rig.take_tx(p).empty());
        EXPECT_TRUE(rig.take_punts().empty());
    }
};

// Symmetric IRB: the remote leaf routed into the L3VNI; we route in the VRF and bridge
// to the host through the gateway of its subnet.
TEST_F(Vxlan, DecapL3vniIpv4ToLocalHost) {
    Frame inner = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "192.168.10.2"});
    Frame got = one_out(0, vxlan(from_vtep2(100), inner), 1);
    EXPECT_EQ(got, routed(inner, kH1, kGw10));
}

TEST_F(Vxlan, DecapL3vniIpv6ToLocalHost) {
    Frame inner = ipv6(kRmac, kRemoteRmac, {.src = "fd00:30::2", .dst = "fd00:10::2"});
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(100), inner), 1), routed(inner, kH1, kGw10));
}

TEST_F(Vxlan, DecapOverIpv6Underlay) {
    Frame inner = ipv4(kRmac, kRemoteRmac, {.src = "192.168.40.2", .dst = "192.168.10.2"});
    Outer o{port_mac[0], kVtep6, "fd00:99::2", "fd00:255::1", 50001, 4789, 100};
    EXPECT_EQ(one_out(0, vxlan(o, inner), 1), routed(inner, kH1, kGw10));
}

TEST_F(Vxlan, DecapL3vniToTaggedAccessPort) {
    Frame inner = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "192.168.20.2"});
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(100), inner), 2), tagged(routed(inner, kH2, kGw20), 20));
}

// Route + encap: inner destination MAC is the remote router MAC, source our router MAC.
TEST_F(Vxlan, EncapIpv4IntoL3vni) {
    Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2"});
    expect_encap(1, in, to_vtep(kVtep2, "10.99.0.2", 100), routed(in, kRemoteRmac, kRmac));
}

TEST_F(Vxlan, EncapIpv6IntoL3vni) {
    Frame in = ipv6(kGw10, kH1, {.src = "fd00:10::2", .dst = "fd00:30::2"});
    expect_encap(1, in, to_vtep(kVtep2, "10.99.0.2", 100), routed(in, kRemoteRmac, kRmac));
}

TEST_F(Vxlan, EncapOverIpv6UnderlayWithUdpChecksum) {
    Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.40.9"});
    expect_encap(1, in, to_vtep(kVtep6, "fd00:99::2", 100, "fd00:255::1"),
                 routed(in, kRemoteRmac, kRmac));
}

// A port that computes IPv4 checksums gets the outer one to do: left 0, flagged.
TEST_F(Vxlan, EncapLeavesTheOuterChecksumToAPortThatOffloadsIt) {
    rig.info[rig.port[0]].tx_ip_cksum = true;
    Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2"});
    rig.run(1, {in});
    auto sent = rig.take_tx(0);
    ASSERT_EQ(sent.size(), 1u);
    Frame got = bytes_of(sent[0]);
    EXPECT_TRUE(sent[0]->ol_flags & RTE_MBUF_F_TX_IP_CKSUM);
    EXPECT_TRUE(sent[0]->ol_flags & RTE_MBUF_F_TX_IPV4);
    EXPECT_EQ(sent[0]->l2_len, 14u);
    EXPECT_EQ(sent[0]->l3_len, 20u);
    rte_pktmbuf_free(sent[0]);
    Outer o = to_vtep(kVtep2, "10.99.0.2", 100);
    o.sport = sport_of(got);
    Frame want = vxlan(o, routed(in, kRemoteRmac, kRmac));
    put16(want, 14 + 10, 0);
    EXPECT_EQ(got, want);
}

TEST_F(Vxlan, EncapFromTaggedAccessPortRoutesBetweenVnis) {
    Frame in = tagged(ipv4(kGw20, kH2, {.src = "192.168.20.2", .dst = "192.168.30.7"}), 20);
    Frame untagged = ipv4(kGw20, kH2, {.src = "192.168.20.2", .dst = "192.168.30.7"});
    expect_encap(2, in, to_vtep(kVtep2, "10.99.0.2", 100), routed(untagged, kRemoteRmac, kRmac));
    // Between the two local VNIs through their gateways, tag added on the way out.
    Frame to_h2 = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.20.2"});
    EXPECT_EQ(one_out(1, to_h2, 2), tagged(routed(to_h2, kH2, kGw20), 20));
}

// Outer IPv4 without DF: each frame its own identification (and checksum); the
// configured TTL.
class VxlanNoDf : public Vxlan {
    void tune(dp::VxlanParams &vp) override {
        vp.df = false;
        vp.ttl = 9;
    }

  protected:
    // `in` as encapsulated toward VTEP 2 with the UDP source port of `got` and identification
    // `ident`, the outer checksum computed afresh.
    Frame want_encap(const Frame &in, const Frame &got, uint16_t ident) {
        Outer o = to_vtep(kVtep2, "10.99.0.2", 100);
        o.df = false;
        o.ttl = 9;
        o.sport = sport_of(got);
        Frame want = vxlan(o, routed(in, kRemoteRmac, kRmac));
        put16(want, 14 + 4, ident);
        put16(want, 14 + 10, 0);
        put16(want, 14 + 10, checksum(&want[14], 20));
        return want;
    }
};

TEST_F(VxlanNoDf, EncapNumbersOuterIpv4Packets) {
    Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2"});
    for (uint16_t ident : {0, 1, 2}) {
        Frame got = one_out(1, in, 0);
        EXPECT_EQ(got, want_encap(in, got, ident)) << "identification " << ident;
    }
}

// Lengths and identifications that carry across the 16-bit halves of the header sum.
TEST_F(VxlanNoDf, OuterChecksumOverLengthsAndIdentifications) {
    uint16_t ident = 0;
    for (uint16_t payload = 0; payload <= 1300; payload += 13, ident++) {
        Frame in =
            ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2", .payload = payload});
        Frame got = one_out(1, in, 0);
        if (got.empty()) return;
        ASSERT_EQ(got, want_encap(in, got, ident)) << "payload " << payload;
    }
}

// The checksum fold of encapsulation against the textbook one (RFC 1071) for every sum
// it can be given: template (16 bits) + inner length (16) + identification (16).
TEST(VxlanChecksum, FoldsEverySumOfThreeWords) {
    unsigned wrong = 0;
    for (uint32_t sum = 0; sum <= 3 * 0xffff; sum++) {
        uint32_t folded = sum;
        while (folded >> 16) folded = (folded & 0xffff) + (folded >> 16);
        wrong += uint16_t(dp::cksum_hi(sum) >> 16) != uint16_t(~folded);
    }
    EXPECT_EQ(wrong, 0u);
}

TEST_F(Vxlan, SourcePortFollowsTheInnerFlow) {
    std::set<uint16_t> ports;
    for (uint16_t sport = 1; sport <= 64; sport++) {
        Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2", .sport = sport});
        uint16_t first = sport_of(one_out(1, in, 0));
        EXPECT_EQ(sport_of(one_out(1, in, 0)), first) << "flow " << sport << " moved";
        ports.insert(first);
    }
    EXPECT_GT(ports.size(), 48u); // 64 flows over 16384 ports: few collisions
}

TEST_F(Vxlan, L2vniDecapToLocalHostAndLearnsTheRemoteSource) {
    const MacAddr remote = mac(0x55);
    Frame inner = l2(kH1, remote, 0x0800, 60);
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(10), inner), 1), inner);
    dp::LearnMsg msg[4];
    ASSERT_EQ(rig.fib->overlay().drain_learned(msg, 4), 1u);
    EXPECT_EQ(msg[0].key, dp::mac_key(bd10, remote.bytes.data()));
    EXPECT_TRUE(msg[0].dest & dp::mac_dest::kRemote);
    EXPECT_EQ(msg[0].family, 4);
    EXPECT_EQ(IpAddr::v4(uint32_t(msg[0].addr[0]) << 24 | msg[0].addr[1] << 16 |
                         msg[0].addr[2] << 8 | msg[0].addr[3]),
              A("10.99.0.2"));
}

TEST_F(Vxlan, L2vniDecapToTaggedPort) {
    Frame inner = l2(kH2, mac(0x56), 0x0800, 60);
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(20), inner), 2), tagged(inner, 20));
}

TEST_F(Vxlan, L2vniEncapToRemoteMacLearnsTheLocalSource) {
    const MacAddr local = mac(0x57);
    Frame in = l2(kH3, local, 0x0800, 60);
    expect_encap(1, in, to_vtep(kVtep2, "10.99.0.2", 10), in);
    dp::LearnMsg msg[4];
    ASSERT_EQ(rig.fib->overlay().drain_learned(msg, 4), 1u);
    EXPECT_EQ(msg[0].dest, dp::mac_dest::local(rig.port[1], 0));
    // Once learned, frames to it leave by its port.
    MacDest d;
    d.port = rig.port[1];
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, local, d)), "");
    Frame back = l2(local, kH3, 0x0800, 60);
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(10), back), 1), back);
    EXPECT_EQ(rig.fib->overlay().counters().macs_learned, 1u);
}

TEST_F(Vxlan, TaggedFrameEncapsulatedWithoutItsTag) {
    Frame inner = l2(kH4, mac(0x58), 0x0800, 60);
    expect_encap(2, tagged(inner, 20), to_vtep(kVtep2, "10.99.0.2", 20), inner);
}

TEST_F(Vxlan, MacMovesAreCounted) {
    MacDest d;
    d.port = rig.port[1];
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, mac(0x70), d)), "");
    d.port = rig.port[2];
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, mac(0x70), d)), "");
    EXPECT_EQ(rig.fib->overlay().counters().mac_moves, 1u);
    // A static entry does not move by learning.
    d.port = rig.port[2];
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, kH3, d)), "");
    EXPECT_EQ(rig.fib->overlay().counters().learn_static_conflicts, 1u);
    Frame in = l2(kH3, kH1, 0x0800, 60);
    expect_encap(1, in, to_vtep(kVtep2, "10.99.0.2", 10), in);
}

// BUM from an access port: every other access port of the domain and every VTEP of its
// flood list get a copy; never the port it came from.
TEST_F(Vxlan, FloodFromAccessPortByHeadEndReplication) {
    ASSERT_EQ(rig.prog->add_bridge_domain(30, 1, std::nullopt), 2);
    rig.prog->add_access(rig.port[2], 10, bd10); // a second access port in VNI 10
    Frame bum = l2(kBroadcast, kH1, 0x0800, 60);
    rig.run(1, {bum});
    auto tunnel = rig.take_tx(0);
    ASSERT_EQ(tunnel.size(), 2u);
    std::set<std::string> vteps;
    for (rte_mbuf *m : tunnel) {
        Frame got = bytes_of(m);
        bool to2 = got[33] == 2;
        Outer o = to_vtep(to2 ? kVtep2 : kVtep3, to2 ? "10.99.0.2" : "10.99.0.3", 10);
        o.sport = sport_of(got);
        EXPECT_EQ(got, vxlan(o, bum));
        vteps.insert(o.dip);
        rte_pktmbuf_free(m);
    }
    EXPECT_EQ(vteps.size(), 2u);
    auto local = rig.take_tx(2);
    ASSERT_EQ(local.size(), 1u);
    EXPECT_EQ(bytes_of(local[0]), tagged(bum, 10));
    rte_pktmbuf_free(local[0]);
    EXPECT_TRUE(rig.take_tx(1).empty());
    EXPECT_EQ(rig.w->stats.flooded, 1u);
}

TEST_F(Vxlan, UnknownUnicastIsFlooded) {
    Frame f = l2(mac(0x7e), kH1, 0x0800, 60);
    rig.run(1, {f});
    auto tunnel = rig.take_tx(0);
    EXPECT_EQ(tunnel.size(), 2u);
    for (rte_mbuf *m : tunnel) rte_pktmbuf_free(m);
}

// Split horizon: what came out of a tunnel never goes back into one.
TEST_F(Vxlan, FloodFromTunnelOnlyToLocalPorts) {
    Frame bum = l2(kBroadcast, mac(0x59), 0x0800, 60);
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(10), bum), 1), bum);
    expect_drop(0, vxlan(from_vtep2(10), l2(kH3, mac(0x59), 0x0800, 60)), Drop::l2_split_horizon);
}

TEST_F(Vxlan, ArpAndNdInABridgeDomainGoToTheControlThread) {
    Frame arp = l2(kBroadcast, kH2, 0x0806, 28);
    rig.run(2, {tagged(arp, 20)});
    auto p = rig.take_punts();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].reason, uint8_t(Punt::bd_arp));
    EXPECT_EQ(p[0].nh, bd20 | 20u << 16);
    EXPECT_EQ(bytes_of(p[0].m), arp); // untagged for the control thread
    rte_pktmbuf_free(p[0].m);
    Frame ns =
        ipv6(MacAddr{{0x33, 0x33, 0xff, 0, 0, 1}}, kH1,
             {.src = "fd00:10::2", .dst = "ff02::1:ff00:1", .hops = 255, .next = 58, .sport = 135});
    rig.run(1, {ns});
    p = rig.take_punts();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].reason, uint8_t(Punt::bd_nd));
    rte_pktmbuf_free(p[0].m);
    // An ARP reply to the gateway MAC is the gateway's too.
    rig.run(1, {l2(kGw10, kH1, 0x0806, 28)});
    p = rig.take_punts();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].reason, uint8_t(Punt::bd_arp));
    rte_pktmbuf_free(p[0].m);
}

TEST_F(Vxlan, InjectedFramesAreBridgedOrRouted) {
    // The control thread floods an ARP request into VNI 10, not back to its port.
    dp::Burst b;
    b.n = 1;
    b.port = rig.port[1];
    b.entry = dp::Entry::Bridged;
    b.entry_id = bd10;
    b.entry_vlan = 0;
    Frame arp = l2(kBroadcast, kH1, 0x0806, 28);
    b.m[0] = rig.mbuf(arp);
    rig.w->process(b);
    auto tunnel = rig.take_tx(0);
    EXPECT_EQ(tunnel.size(), 2u);
    for (rte_mbuf *m : tunnel) rte_pktmbuf_free(m);
    EXPECT_TRUE(rig.take_tx(1).empty());
    EXPECT_TRUE(rig.take_punts().empty()); // not handed back to the control thread
    dp::LearnMsg msg[2];
    EXPECT_EQ(rig.fib->overlay().drain_learned(msg, 2), 0u); // nor learned from
    // A packet held for resolution comes back to be routed in its VRF.
    b.entry = dp::Entry::Routed;
    b.entry_id = 1;
    Frame held = ipv4(kGw10, kH1, {.src = "192.168.10.9", .dst = "192.168.20.2"});
    b.m[0] = rig.mbuf(held);
    rig.w->process(b);
    auto out = rig.take_tx(2);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(bytes_of(out[0]), tagged(routed(held, kH2, kGw20), 20));
    rte_pktmbuf_free(out[0]);
}

TEST_F(Vxlan, UnresolvedHostInAGatewaySubnetIsPuntedWithItsVrf) {
    Frame inner = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "192.168.10.77"});
    rig.run(0, {vxlan(from_vtep2(100), inner)});
    auto p = rig.take_punts();
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0].reason, uint8_t(Punt::resolve));
    EXPECT_EQ(p[0].vrf, 1);
    EXPECT_EQ(bytes_of(p[0].m), inner); // decapsulated, not yet routed
    auto t = rig.prog->resolve_target(p[0].nh, A("192.168.10.77"));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->ifid, kGwIf10);
    rte_pktmbuf_free(p[0].m);
}

TEST_F(Vxlan, DecapDropReasons) {
    Frame inner = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "192.168.10.2"});
    Frame ok = vxlan(from_vtep2(100), inner);
    Frame truncated(ok.begin(), ok.begin() + 14 + 20 + 8 + 8 + 6);
    put16(truncated, 14 + 2, uint16_t(truncated.size() - 14));
    put16(truncated, 14 + 10, 0);
    put16(truncated, 14 + 10, checksum(&truncated[14], 20));
    put16(truncated, 14 + 20 + 4, uint16_t(truncated.size() - 34));
    expect_drop(0, truncated, Drop::vxlan_truncated);
    Outer bad = from_vtep2(100);
    bad.flags = 0;
    expect_drop(0, vxlan(bad, inner), Drop::vxlan_bad_flags);
    expect_drop(0, vxlan(from_vtep2(4242), inner), Drop::vxlan_unknown_vni);
    Outer wrong = from_vtep2(100);
    wrong.dip = "10.99.0.1"; // ours, but not the VTEP address
    expect_drop(0, vxlan(wrong, inner), Drop::vxlan_wrong_dst);
    EXPECT_EQ(rig.w->stats.decapsulated, 0u);
}

// The inner frame of an L3VNI gets the checks of any received frame, whether parse
// decapsulates it in place (martian) or the decapsulation stage does (fragment).
TEST_F(Vxlan, DecapL3vniChecksTheInnerFrame) {
    Frame martian = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "224.0.0.5"});
    expect_drop(0, vxlan(from_vtep2(100), martian), Drop::ip_martian);
    Frame frag =
        ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "192.168.10.2", .frag = 0x2000});
    expect_drop(0, vxlan(from_vtep2(100), frag), Drop::ip_fragment);
    EXPECT_EQ(rig.w->stats.decapsulated, 2u);
}

// One burst mixing VNIs (the VNI lookup is cached per burst): each frame to its own VNI.
TEST_F(Vxlan, DecapBurstOfSeveralVnis) {
    Frame l3 = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.2", .dst = "192.168.10.2"});
    Frame l3b = ipv4(kRmac, kRemoteRmac, {.src = "192.168.30.3", .dst = "192.168.20.2"});
    Frame l2a = l2(kH1, mac(0x58), 0x0800, 60), l2b = l2(kH2, mac(0x59), 0x0800, 60);
    uint64_t unknown = rig.drops(Drop::vxlan_unknown_vni);
    rig.run(0, {vxlan(from_vtep2(100), l3), vxlan(from_vtep2(10), l2a), vxlan(from_vtep2(4242), l3),
                vxlan(from_vtep2(20), l2b), vxlan(from_vtep2(100), l3b)});
    EXPECT_EQ(rig.drops(Drop::vxlan_unknown_vni), unknown + 1);
    EXPECT_EQ(rig.w->stats.decapsulated, 4u);
    auto sent = [&](unsigned p) {
        std::vector<Frame> out;
        for (rte_mbuf *m : rig.take_tx(p)) {
            out.push_back(bytes_of(m));
            rte_pktmbuf_free(m);
        }
        return out;
    };
    // Each port sends its frames in the order they came.
    EXPECT_EQ(sent(1), (std::vector<Frame>{routed(l3, kH1, kGw10), l2a}));
    EXPECT_EQ(sent(2), (std::vector<Frame>{tagged(l2b, 20), tagged(routed(l3b, kH2, kGw20), 20)}));
    EXPECT_TRUE(rig.take_punts().empty());
}

TEST_F(Vxlan, EncapDropReasons) {
    // The underlay neighbor of a new VTEP is not resolved yet.
    ASSERT_EQ(
        rig.prog->add_tunnel_route(1, P("192.168.50.0/24"), A("10.99.0.50"), 100, kRemoteRmac), "");
    Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.50.1"});
    expect_drop(1, in, Drop::vxlan_underlay_unresolved);
    // Inner 1472 + 50 bytes of outer headers exceed an underlay MTU of 1500.
    Frame big =
        ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2", .payload = 1472 - 28});
    expect_drop(1, big, Drop::vxlan_mtu_exceeded);
    Frame fits =
        ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2", .payload = 1450 - 28});
    one_out(1, fits, 0);
    expect_drop(2, tagged(l2(kH4, kH2, 0x0800, 60), 30), Drop::unknown_vlan);
    expect_drop(1, l2(kH1, mac(0x5b), 0x0800, 60), Drop::l2_hairpin);
    expect_drop(1, l2(kH3, kBroadcast, 0x0800, 60), Drop::l2_bad_source);
}

// Too big for the tunnel after routing: ICMP fragmentation needed (RFC 1191) with the
// tunnel's inner MTU (1500 - 50), from the gateway address of the sender's subnet, routed
// back; the quote carries the packet as it arrived.
TEST_F(Vxlan, TooBigRoutedIpv4GetsFragNeededFromItsGateway) {
    Frame in =
        ipv4(kGw10, kH1,
             {.src = "192.168.10.2", .dst = "192.168.30.2", .payload = 1472 - 28, .frag = 0x4000});
    rig.run(1, {in});
    Frame punted = one_punt(Punt::too_big, 1450, 1);
    auto from = icmp::source_for(kVrf1Addrs, A("192.168.10.2"));
    ASSERT_EQ(from, A("192.168.10.1"));
    auto err = icmp::too_big(punted, *from, 1450, true, MacAddr{}, MacAddr{});
    ASSERT_TRUE(err);
    inject(dp::Entry::Routed, 1, *err);
    Frame want =
        icmp4(kH1, kGw10, "192.168.10.1", "192.168.10.2", 3, 4, 1450, ip_part(in, 576 - 28), true);
    EXPECT_EQ(only_out(1), routed(want, kH1, kGw10));
    EXPECT_EQ(rig.drops(Drop::vxlan_mtu_exceeded), 0u);
    EXPECT_EQ(rig.punts(Punt::too_big), 1u);
}

TEST_F(Vxlan, TooBigRoutedIpv6GetsPacketTooBig) {
    Frame in = ipv6(kGw10, kH1, {.src = "fd00:10::2", .dst = "fd00:30::2", .payload = 1452 - 48});
    rig.run(1, {in});
    Frame punted = one_punt(Punt::too_big, 1450, 1);
    auto from = icmp::source_for(kVrf1Addrs, A("fd00:10::2"));
    ASSERT_EQ(from, A("fd00:10::1"));
    auto err = icmp::too_big(punted, *from, 1450, true, MacAddr{}, MacAddr{});
    ASSERT_TRUE(err);
    inject(dp::Entry::Routed, 1, *err);
    Frame want = icmp6(kH1, kGw10, "fd00:10::1", "fd00:10::2", 2, 0, 1450, ip_part(in, 1280 - 48));
    EXPECT_EQ(only_out(1), routed(want, kH1, kGw10));
}

// Bridged into the tunnel: the error comes from the domain's gateway and goes straight
// back to the sender's MAC.
TEST_F(Vxlan, TooBigBridgedGetsFragNeededFromTheDomainsGateway) {
    Frame in =
        ipv4(kH3, kH1,
             {.src = "192.168.10.2", .dst = "192.168.10.3", .payload = 1472 - 28, .frag = 0x4000});
    rig.run(1, {in});
    Frame punted = one_punt(Punt::too_big, 1450 | uint32_t(bd10 + 1) << 16, 0);
    auto err = icmp::too_big(punted, A("192.168.10.1"), 1450, false, kH1, kGw10);
    ASSERT_TRUE(err);
    inject(dp::Entry::Bridged, bd10, *err);
    EXPECT_EQ(only_out(1), icmp4(kH1, kGw10, "192.168.10.1", "192.168.10.2", 3, 4, 1450,
                                 ip_part(in, 576 - 28), true));
}

// Flooded (unknown unicast) and too big for the tunnel to both VTEPs of the flood list:
// the local copy leaves, one copy goes to the control thread for the ICMP error (one per
// frame, not per VTEP), the other is counted as dropped.
TEST_F(Vxlan, FloodedTooBigIsAnsweredOncePerFrame) {
    rig.prog->add_access(rig.port[2], 10, bd10);
    Frame in =
        ipv4(mac(0x7e), kH1,
             {.src = "192.168.10.2", .dst = "192.168.10.9", .payload = 1472 - 28, .frag = 0x4000});
    rig.run(1, {in});
    auto local = rig.take_tx(2);
    ASSERT_EQ(local.size(), 1u);
    EXPECT_EQ(bytes_of(local[0]), tagged(in, 10));
    rte_pktmbuf_free(local[0]);
    EXPECT_EQ(one_punt(Punt::too_big, 1450 | uint32_t(bd10 + 1) << 16, 0), in);
    EXPECT_EQ(rig.drops(Drop::vxlan_mtu_exceeded), 1u);
    EXPECT_EQ(rig.punts(Punt::too_big), 1u);
    EXPECT_EQ(rig.w->stats.flooded, 1u);
    // Without DF: no error, both copies dropped.
    Frame no_df =
        ipv4(mac(0x7e), kH1, {.src = "192.168.10.2", .dst = "192.168.10.9", .payload = 1472 - 28});
    rig.run(1, {no_df});
    local = rig.take_tx(2);
    ASSERT_EQ(local.size(), 1u);
    rte_pktmbuf_free(local[0]);
    EXPECT_TRUE(rig.take_punts().empty());
    EXPECT_EQ(rig.drops(Drop::vxlan_mtu_exceeded), 3u);
}

TEST_F(Vxlan, TooBigOverAnIpv6UnderlayLeavesRoomFor70Bytes) {
    Frame in =
        ipv4(kGw10, kH1,
             {.src = "192.168.10.2", .dst = "192.168.40.9", .payload = 1440 - 28, .frag = 0x4000});
    rig.run(1, {in});
    one_punt(Punt::too_big, 1430, 1);
    Frame fits =
        ipv4(kGw10, kH1,
             {.src = "192.168.10.2", .dst = "192.168.40.9", .payload = 1430 - 28, .frag = 0x4000});
    one_out(1, fits, 0);
}

// No DF: no error (the sender did not ask for path MTU discovery); beyond the rate, a
// source's packets are dropped without one.
TEST_F(Vxlan, TooBigWithoutDfOrBeyondTheRateIsDropped) {
    expect_drop(1,
                ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.30.2", .payload = 1600}),
                Drop::vxlan_mtu_exceeded);
    rig.w->icmp_gap = rte_get_tsc_hz() * 60;
    auto big = [](const char *src) {
        return ipv4(kGw10, kH1,
                    {.src = src, .dst = "192.168.30.2", .payload = 1600, .frag = 0x4000});
    };
    rig.run(1, {big("192.168.10.2")});
    one_punt(Punt::too_big, 1450, 1);
    expect_drop(1, big("192.168.10.2"), Drop::vxlan_mtu_exceeded);
    rig.run(1, {big("192.168.10.5")});
    one_punt(Punt::too_big, 1450, 1);
}

// The anycast gateway has no kernel behind it: the control thread answers echo requests.
TEST_F(Vxlan, EchoToTheGatewayAddressIsAnswered) {
    Frame payload(56, 0x61);
    Frame req = icmp4(kGw10, kH1, "192.168.10.2", "192.168.10.1", 8, 0, 0x4d2a0001, payload);
    rig.run(1, {req});
    auto reply = icmp::echo_reply(one_punt(Punt::local, kNhLocal, 1));
    ASSERT_TRUE(reply);
    inject(dp::Entry::Routed, 1, *reply);
    Frame want = icmp4(kH1, kGw10, "192.168.10.1", "192.168.10.2", 0, 0, 0x4d2a0001, payload);
    EXPECT_EQ(only_out(1), routed(want, kH1, kGw10));

    Frame req6 = icmp6(kGw10, kH1, "fd00:10::2", "fd00:10::1", 128, 0, 0x4d2a0002, payload);
    rig.run(1, {req6});
    reply = icmp::echo_reply(one_punt(Punt::local, kNhLocal, 1));
    ASSERT_TRUE(reply);
    inject(dp::Entry::Routed, 1, *reply);
    Frame want6 = icmp6(kH1, kGw10, "fd00:10::1", "fd00:10::2", 129, 0, 0x4d2a0002, payload);
    EXPECT_EQ(only_out(1), routed(want6, kH1, kGw10));
}

// ND suppression: a solicitation for an address with a known binding is answered in the
// owner's name and bridged back to the asker, not flooded into the tunnels.
TEST_F(Vxlan, NeighborSolicitationForAKnownBindingIsAnswered) {
    auto target = A("fd00:10::3").bytes;
    Frame ns_body(target.begin(), target.end());
    ns_body.insert(ns_body.end(), {1, 1});
    ns_body.insert(ns_body.end(), kH1.bytes.begin(), kH1.bytes.end());
    Frame ns = icmp6(MacAddr{{0x33, 0x33, 0xff, 0, 0, 3}}, kH1, "fd00:10::2", "ff02::1:ff00:3", 135,
                     0, 0, ns_body, 255);
    rig.run(1, {ns});
    auto parsed = neigh::parse_frame(one_punt(Punt::bd_nd, bd10, 0));
    EXPECT_EQ(neigh::solicited(parsed), A("fd00:10::3"));
    auto na = neigh::proxy_reply(parsed, kH3);
    ASSERT_TRUE(na);
    inject(dp::Entry::Bridged, bd10, *na);
    Frame na_body(target.begin(), target.end());
    na_body.insert(na_body.end(), {2, 1});
    na_body.insert(na_body.end(), kH3.bytes.begin(), kH3.bytes.end());
    EXPECT_EQ(only_out(1),
              icmp6(kH1, kH3, "fd00:10::3", "fd00:10::2", 136, 0, 0x60000000, na_body, 255));
    EXPECT_FALSE(neigh::proxy_reply(parsed, kH1)); // the asker itself: nothing to answer
}

TEST_F(Vxlan, ArpRequestForAKnownBindingIsAnswered) {
    auto arp = [](uint16_t op, const MacAddr &sha, const char *spa, const MacAddr &tha,
                  const char *tpa) {
        Frame f = ether(op == 1 ? kBroadcast : tha, sha, 0x0806);
        f.insert(f.end(), {0, 1, 8, 0, 6, 4, 0, uint8_t(op)});
        auto s = A(spa).bytes, t = A(tpa).bytes;
        f.insert(f.end(), sha.bytes.begin(), sha.bytes.end());
        f.insert(f.end(), s.begin(), s.begin() + 4);
        f.insert(f.end(), tha.bytes.begin(), tha.bytes.end());
        f.insert(f.end(), t.begin(), t.begin() + 4);
        f.resize(60, 0);
        return f;
    };
    rig.run(1, {arp(1, kH1, "192.168.10.2", MacAddr{}, "192.168.10.3")});
    auto parsed = neigh::parse_frame(one_punt(Punt::bd_arp, bd10, 0));
    auto reply = neigh::proxy_reply(parsed, kH3);
    ASSERT_TRUE(reply);
    inject(dp::Entry::Bridged, bd10, *reply);
    EXPECT_EQ(only_out(1), arp(2, kH3, "192.168.10.3", kH1, "192.168.10.2"));
}

// Dynamic MACs not seen for the aging time leave the table (frames to them are flooded
// again); MACs seen meanwhile and static ones stay.
TEST_F(Vxlan, DynamicMacsAgeOut) {
    MacDest d;
    d.port = rig.port[1];
    const MacAddr idle = mac(0x71), busy = mac(0x72);
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, idle, d)), "");
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, busy, d)), "");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    Frame from_busy = l2(kH3, busy, 0x0800, 60);
    expect_encap(1, from_busy, to_vtep(kVtep2, "10.99.0.2", 10), from_busy);
    auto &ov = rig.fib->overlay();
    EXPECT_EQ(ov.age(rte_rdtsc(), rte_get_tsc_hz() / 10), 1u);
    EXPECT_EQ(ov.counters().macs_aged, 1u);
    std::set<MacAddr> left;
    for (auto &e : ov.mac_table(rte_rdtsc())) left.insert(e.mac);
    EXPECT_EQ(left, (std::set<MacAddr>{kH1, kH2, kH3, kH4, busy}));
    Frame to_idle = l2(idle, mac(0x59), 0x0800, 60);
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(10), to_idle), 1), to_idle);
    EXPECT_EQ(rig.w->stats.flooded, 1u);
    Frame to_busy = l2(busy, mac(0x59), 0x0800, 60);
    EXPECT_EQ(one_out(0, vxlan(from_vtep2(10), to_busy), 1), to_busy);
    EXPECT_EQ(rig.w->stats.flooded, 1u);
}

// The underlay next hop of a VTEP follows the route to it: a more specific route moves
// the tunnel's frames to another neighbor (same outer IP, other outer MAC), withdrawing it
// moves them back, and the neighbor's new MAC is used as soon as it is known.
TEST_F(Vxlan, EncapFollowsTheUnderlayRouteToItsVtep) {
    auto &f = *rig.prog;
    ASSERT_EQ(f.add_static(0, P("10.77.0.0/16"), {A("10.99.0.2")}, {}, false), "");
    ASSERT_EQ(f.add_tunnel_route(1, P("192.168.77.0/24"), A("10.77.0.1"), 100, kRemoteRmac), "");
    Frame in = ipv4(kGw10, kH1, {.src = "192.168.10.2", .dst = "192.168.77.5"});
    Frame inner = routed(in, kRemoteRmac, kRmac);
    expect_encap(1, in, to_vtep(kVtep2, "10.77.0.1", 100), inner);
    IpAddr via = A("10.99.0.3");
    f.set_bgp(0, P("10.77.0.0/24"), &via, 1);
    expect_encap(1, in, to_vtep(kVtep3, "10.77.0.1", 100), inner);
    f.del_bgp(0, P("10.77.0.0/24"));
    expect_encap(1, in, to_vtep(kVtep2, "10.77.0.1", 100), inner);
    f.neighbor(kIfUnderlay, A("10.99.0.2"), mac(0x96));
    expect_encap(1, in, to_vtep(mac(0x96), "10.77.0.1", 100), inner);
    f.neighbor(kIfUnderlay, A("10.99.0.2"), std::nullopt);
    expect_drop(1, in, Drop::vxlan_underlay_unresolved);
    EXPECT_TRUE(rig.errors.empty()) << rig.errors.front();
}

// The last user of a VTEP gone, the VTEP goes, and the MACs learned behind it with it.
TEST_F(Vxlan, DeletedVtepTakesItsLearnedMacs) {
    auto &f = *rig.prog;
    ASSERT_EQ(f.add_flood(bd10, A("10.99.0.7")), "");
    auto id = f.vtep_id(A("10.99.0.7"));
    ASSERT_TRUE(id);
    MacDest d;
    d.kind = MacDest::Kind::Remote;
    d.vtep = *id;
    const MacAddr learned = mac(0x77);
    ASSERT_EQ(rig.fib->apply(Update::mac_set(bd10, learned, d)), "");
    uint64_t vteps = rig.fib->overlay().counters().vteps;
    f.del_flood(bd10, A("10.99.0.7"));
    EXPECT_FALSE(f.vtep_id(A("10.99.0.7")));
    EXPECT_EQ(rig.fib->overlay().counters().vteps, vteps - 1);
    EXPECT_EQ(rig.fib->overlay().counters().macs_flushed, 1u);
    for (auto &e : rig.fib->overlay().mac_table(rte_rdtsc())) EXPECT_NE(e.mac, learned);
    // Frames to it are unknown unicast again: flooded to the VTEPs left in the list.
    rig.run(1, {l2(learned, kH1, 0x0800, 60)});
    auto tunnel = rig.take_tx(0);
    EXPECT_EQ(tunnel.size(), 2u);
    for (rte_mbuf *m : tunnel) rte_pktmbuf_free(m);
    EXPECT_TRUE(rig.errors.empty()) << rig.errors.front();
}

} // namespace

int main(int argc, char **argv) {
    const char *prog = argv[0];
    return eal_main(argc, argv, [prog] { init_eal(prog); });
}
