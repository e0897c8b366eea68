#include "control/neigh/resolver.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>

using namespace vleaf;
using namespace vleaf::neigh;

namespace {

// Every expected frame below was produced by scapy 2.5 (an independent encoder), not by
// the code under test, and pasted field by field:
//   /usr/bin/python3 -c 'from scapy.all import *; print(bytes(
//     Ether(dst="02:00:00:00:00:aa", src="02:00:00:00:00:01")/
//     IPv6(src="fd00::1", dst="fd00::2", hlim=255)/
//     ICMPv6ND_NA(R=1, S=1, O=1, tgt="fd00::1")/
//     ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:01")).hex())'
// and likewise for the others (ARP with Padding(b"\0"*18) to 60 bytes). Matching them
// byte for byte checks every field, including the ICMPv6 checksums scapy computed.
std::vector<uint8_t> hex(std::string_view s) {
    std::vector<uint8_t> out;
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    for (size_t i = 0; i < s.size(); i++) {
        if (s[i] == ' ') continue;
        out.push_back(static_cast<uint8_t>(nibble(s[i]) << 4 | nibble(s[i + 1])));
        i++;
    }
    return out;
}

const auto kArpRequestIn = hex("ffffffffffff 0200000000aa 0806" // broadcast from the peer
                               "0001 0800 06 04 0001"           // Ethernet/IPv4, request
                               "0200000000aa 0a000002"          // sender 10.0.0.2
                               "000000000000 0a000001"          // who has 10.0.0.1
                               "000000000000000000000000000000000000");
const auto kArpReplyOut = hex("0200000000aa 020000000001 0806" // unicast back to the requester
                              "0001 0800 06 04 0002"           // reply
                              "020000000001 0a000001"          // 10.0.0.1 is at our MAC
                              "0200000000aa 0a000002"          // to the requester
                              "000000000000000000000000000000000000");
const auto kArpRequestOut = hex("ffffffffffff 020000000001 0806"
                                "0001 0800 06 04 0001"
                                "020000000001 0a000001" // from our address on that subnet
                                "000000000000 0a000002" // who has 10.0.0.2
                                "000000000000000000000000000000000000");
const auto kNsIn = hex("3333ff000001 0200000000aa 86dd"    // to solicited-node MAC
                       "60000000 0020 3a ff"               // ICMPv6, 32 bytes, hlim 255
                       "fd000000000000000000000000000002"  // src fd00::2
                       "ff0200000000000000000001ff000001"  // dst ff02::1:ff00:1
                       "87 00 7cef 00000000"               // NS, checksum 0x7cef
                       "fd000000000000000000000000000001"  // target fd00::1
                       "01 01 0200000000aa");              // SLLA
const auto kNaOut = hex("0200000000aa 020000000001 86dd"   // to the SLLA
                        "60000000 0020 3a ff"              // hop limit 255
                        "fd000000000000000000000000000001" // from the target
                        "fd000000000000000000000000000002" // to the solicitor
                        "88 00 9c9b e0000000"              // NA, R|S|O
                        "fd000000000000000000000000000001" // target fd00::1
                        "02 01 020000000001");             // TLLA = our MAC
const auto kNsOut = hex("3333ff000002 020000000001 86dd"
                        "60000000 0020 3a ff"
                        "fd000000000000000000000000000001" // our address on the subnet
                        "ff0200000000000000000001ff000002" // solicited-node of fd00::2
                        "87 00 7d97 00000000"
                        "fd000000000000000000000000000002"
                        "01 01 020000000001");
const auto kDadNaOut = hex("333300000001 020000000001 86dd" // all-nodes MAC
                           "60000000 0020 3a ff"
                           "fd000000000000000000000000000001"
                           "ff020000000000000000000000000001" // ff02::1
                           "88 00 da9a a0000000"              // NA, R|O, not solicited
                           "fd000000000000000000000000000001"
                           "02 01 020000000001");
const auto kLinkLocalNaOut = hex("0200000000aa 020000000001 86dd"
                                 "60000000 0020 3a ff"
                                 "fe80000000000000000000fffe000001" // our EUI-64 link-local
                                 "fe80000000000000000000fffe0000aa"
                                 "88 00 9a73 e0000000"
                                 "fe80000000000000000000fffe000001"
                                 "02 01 020000000001");
const auto kLinkLocalNsOut = hex("3333ff0000aa 020000000001 86dd"
                                 "60000000 0020 3a ff"
                                 "fe80000000000000000000fffe000001" // from our link-local
                                 "ff0200000000000000000001ff0000aa"
                                 "87 00 7b47 00000000"
                                 "fe80000000000000000000fffe0000aa"
                                 "01 01 020000000001");

IpAddr ip(const char *s) {
    return *IpAddr::parse(s);
}
MacAddr mac(const char *s) {
    return *MacAddr::parse(s);
}
Prefix pfx(const char *s) {
    return *Prefix::parse(s, true);
}

const MacAddr kUs = mac("02:00:00:00:00:01");
const MacAddr kUs2 = mac("02:00:00:00:00:02");
const MacAddr kPeer = mac("02:00:00:00:00:aa");
const MacAddr kPeerMoved = mac("02:00:00:00:00:bb");

config::Neighbors timers() {
    config::Neighbors t;
    t.reachable_ms = 30000;
    t.retrans_ms = 1000;
    t.retries = 3;
    t.hold_packets = 2;
    return t;
}

// Fixes the ICMPv6 checksum of an ND frame after a test edited it.
void fix_checksum(std::vector<uint8_t> &f) {
    uint8_t *ip6 = f.data() + kEthHeaderLen;
    size_t len = ip6[4] << 8 | ip6[5];
    uint8_t *icmp = ip6 + kIpv6HeaderLen;
    icmp[2] = icmp[3] = 0;
    uint16_t c = icmp6_checksum(IpAddr::v6(ip6 + 8), IpAddr::v6(ip6 + 24), {icmp, len});
    icmp[2] = static_cast<uint8_t>(c >> 8);
    icmp[3] = static_cast<uint8_t>(c);
}

class Neigh : public ::testing::Test {
  protected:
    using Change = std::tuple<uint16_t, IpAddr, std::optional<MacAddr>>;

    Neigh()
        : r(timers(), Callbacks{
                          [this](uint16_t ifid, std::vector<uint8_t> f) {
                              sent.emplace_back(ifid, std::move(f));
                          },
                          [this](uint16_t ifid, const IpAddr &a, std::optional<MacAddr> m) {
                              changes.emplace_back(ifid, a, m);
                          },
                          [this](void *h, bool ok) { released.emplace_back(h, ok); },
                      }) {
        r.add_interface({1, kUs, {pfx("10.0.0.1/24")}, {pfx("fd00::1/64")}});
    }

    void add_second() { r.add_interface({2, kUs2, {pfx("192.168.1.1/24")}, {pfx("fd01::1/64")}}); }

    std::optional<Entry> entry(uint16_t ifid, const char *a) const {
        for (const auto &e : r.entries())
            if (e.ifid == ifid && e.ip == ip(a)) return e;
        return std::nullopt;
    }

    // A frame from the peer: kArpRequestIn with other addresses or opcode.
    static std::vector<uint8_t> arp_from_peer(uint16_t op, const char *spa, const char *tpa,
                                              MacAddr sha = kPeer, MacAddr eth_dst = {}) {
        MacAddr bcast = *MacAddr::parse("ff:ff:ff:ff:ff:ff");
        return build_arp(op, eth_dst.is_zero() ? bcast : eth_dst, sha, ip(spa), MacAddr{}, ip(tpa));
    }

    Resolver r;
    std::vector<std::pair<uint16_t, std::vector<uint8_t>>> sent;
    std::vector<Change> changes;
    std::vector<std::pair<void *, bool>> released;
};

TEST_F(Neigh, AnswersArpRequestWithExactReplyAndLearnsRequester) {
    EXPECT_EQ(r.on_frame(1, kArpRequestIn, 0), Verdict::Consumed);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].first, 1);
    EXPECT_EQ(sent[0].second, kArpReplyOut);
    EXPECT_EQ(r.counters().arp_replies_sent, 1u);
    // RFC 826: a request addressed to us creates the sender's entry.
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], Change(1, ip("10.0.0.2"), kPeer));
    auto e = entry(1, "10.0.0.2");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->state, State::Reachable);
    EXPECT_EQ(r.counters().learned, 1u);
}

TEST_F(Neigh, AnswersNeighborSolicitationWithExactAdvertisement) {
    EXPECT_EQ(r.on_frame(1, kNsIn, 0), Verdict::Consumed);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].second, kNaOut);
    EXPECT_EQ(r.counters().na_sent, 1u);
    // RFC 4861 7.2.3: learned from the SLLA, but Stale until confirmed.
    auto e = entry(1, "fd00::2");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->state, State::Stale);
    EXPECT_EQ(e->mac, kPeer);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], Change(1, ip("fd00::2"), kPeer));
}

TEST_F(Neigh, AnswersForDerivedLinkLocalAddress) {
    EXPECT_EQ(link_local(kUs), ip("fe80::ff:fe00:1"));
    auto ns = build_ns(kPeer, multicast_mac(solicited_node(ip("fe80::ff:fe00:1"))),
                       ip("fe80::ff:fe00:aa"), solicited_node(ip("fe80::ff:fe00:1")),
                       ip("fe80::ff:fe00:1"));
    EXPECT_EQ(r.on_frame(1, ns, 0), Verdict::Consumed);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].second, kLinkLocalNaOut);
    EXPECT_TRUE(entry(1, "fe80::ff:fe00:aa"));
}

TEST_F(Neigh, DefendsOurAddressAgainstDadProbeToAllNodes) {
    auto probe = build_ns(kPeer, multicast_mac(solicited_node(ip("fd00::1"))), ip("::"),
                          solicited_node(ip("fd00::1")), ip("fd00::1"));
    EXPECT_EQ(r.on_frame(1, probe, 0), Verdict::Consumed);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].second, kDadNaOut);
    EXPECT_TRUE(r.entries().empty()); // nothing to learn from ::
}

TEST_F(Neigh, AnswersArpProbeFromUnspecifiedSender) {
    EXPECT_EQ(r.on_frame(1, arp_from_peer(kArpRequest, "0.0.0.0", "10.0.0.1"), 0),
              Verdict::Consumed);
    ASSERT_EQ(sent.size(), 1u);
    auto reply = parse_frame(sent[0].second);
    auto *arp = std::get_if<ArpMsg>(&reply);
    ASSERT_TRUE(arp);
    EXPECT_EQ(arp->op, kArpReply);
    EXPECT_EQ(arp->eth_dst, kPeer);
    EXPECT_EQ(arp->tpa, ip("0.0.0.0"));
    EXPECT_TRUE(r.entries().empty());
}

TEST_F(Neigh, ResolveSendsExactRequestsAndHoldsPackets) {
    int a, b, c;
    r.resolve(1, ip("10.0.0.2"), 0, &a);
    r.resolve(1, ip("fd00::2"), 0);
    r.resolve(1, ip("fe80::ff:fe00:aa"), 0);
    ASSERT_EQ(sent.size(), 3u);
    EXPECT_EQ(sent[0].second, kArpRequestOut);
    EXPECT_EQ(sent[1].second, kNsOut);
    EXPECT_EQ(sent[2].second, kLinkLocalNsOut);
    // Already in progress: queued, no second request.
    r.resolve(1, ip("10.0.0.2"), 10, &b);
    r.resolve(1, ip("10.0.0.2"), 20, &c);
    EXPECT_EQ(sent.size(), 3u);
    // hold_packets = 2: the oldest goes.
    ASSERT_EQ(released.size(), 1u);
    EXPECT_EQ(released[0], std::make_pair(static_cast<void *>(&a), false));
    EXPECT_EQ(r.counters().held_dropped, 1u);
    EXPECT_EQ(entry(1, "10.0.0.2")->held, 2u);

    auto reply = build_arp(kArpReply, kUs, kPeer, ip("10.0.0.2"), kUs, ip("10.0.0.1"));
    EXPECT_EQ(r.on_frame(1, reply, 500), Verdict::Kernel);
    ASSERT_EQ(released.size(), 3u);
    EXPECT_EQ(released[1], std::make_pair(static_cast<void *>(&b), true));
    EXPECT_EQ(released[2], std::make_pair(static_cast<void *>(&c), true));
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], Change(1, ip("10.0.0.2"), kPeer));
    EXPECT_EQ(entry(1, "10.0.0.2")->state, State::Reachable);

    // Known now: a late punt is handed straight back.
    int d;
    r.resolve(1, ip("10.0.0.2"), 600, &d);
    EXPECT_EQ(released.back(), std::make_pair(static_cast<void *>(&d), true));
    EXPECT_EQ(sent.size(), 3u);
}

TEST_F(Neigh, LearnsFromSolicitedAdvertisementAndHonoursOverrideFlag) {
    r.resolve(1, ip("fd00::2"), 0);
    auto na = [](MacAddr m, uint8_t flags) {
        return build_na(m, kUs, ip("fd00::2"), ip("fd00::1"), ip("fd00::2"), flags);
    };
    EXPECT_EQ(r.on_frame(1, na(kPeer, kNaSolicited | kNaOverride), 100), Verdict::Kernel);
    EXPECT_EQ(entry(1, "fd00::2")->state, State::Reachable);
    EXPECT_EQ(entry(1, "fd00::2")->mac, kPeer);
    ASSERT_EQ(changes.size(), 1u);

    // No O flag: a different MAC does not replace the known one, it only casts doubt.
    r.on_frame(1, na(kPeerMoved, 0), 200);
    EXPECT_EQ(entry(1, "fd00::2")->mac, kPeer);
    EXPECT_EQ(entry(1, "fd00::2")->state, State::Stale);
    EXPECT_EQ(changes.size(), 1u);

    // O flag: the neighbor moved.
    r.on_frame(1, na(kPeerMoved, kNaSolicited | kNaOverride), 300);
    EXPECT_EQ(entry(1, "fd00::2")->mac, kPeerMoved);
    EXPECT_EQ(entry(1, "fd00::2")->state, State::Reachable);
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[1], Change(1, ip("fd00::2"), kPeerMoved));
    EXPECT_EQ(r.counters().mac_changed, 1u);
}

TEST_F(Neigh, IgnoresUnsolicitedAdvertisementsAndRepliesForUnknownNeighbors) {
    auto na = build_na(kPeer, multicast_mac(all_nodes()), ip("fd00::7"), all_nodes(), ip("fd00::7"),
                       kNaOverride);
    EXPECT_EQ(r.on_frame(1, na, 0), Verdict::Kernel);
    // A reply addressed to someone else (10.0.0.9), for a neighbor we never asked about.
    auto reply = build_arp(kArpReply, *MacAddr::parse("ff:ff:ff:ff:ff:ff"), kPeer, ip("10.0.0.7"),
                           kPeerMoved, ip("10.0.0.9"));
    EXPECT_EQ(r.on_frame(1, reply, 0), Verdict::Kernel);
    EXPECT_TRUE(r.entries().empty());
    EXPECT_TRUE(changes.empty());
    EXPECT_EQ(r.counters().unsolicited_ignored, 2u);
}

TEST_F(Neigh, ArpMergeUpdatesKnownNeighborsOnly) {
    // A request between two other hosts: neither known, nothing created or answered.
    EXPECT_EQ(r.on_frame(1, arp_from_peer(kArpRequest, "10.0.0.2", "10.0.0.3"), 0),
              Verdict::Consumed);
    EXPECT_TRUE(sent.empty());
    EXPECT_TRUE(r.entries().empty());
    EXPECT_EQ(r.counters().requests_not_ours, 1u);

    r.on_frame(1, kArpRequestIn, 0); // creates 10.0.0.2
    r.on_frame(1, arp_from_peer(kArpRequest, "10.0.0.2", "10.0.0.3", kPeerMoved), 10);
    EXPECT_EQ(entry(1, "10.0.0.2")->mac, kPeerMoved);
    EXPECT_EQ(sent.size(), 1u); // still only the one reply to the request for us
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[1], Change(1, ip("10.0.0.2"), kPeerMoved));
}

TEST_F(Neigh, AnswersButDoesNotLearnSendersOutsideOurSubnets) {
    EXPECT_EQ(r.on_frame(1, arp_from_peer(kArpRequest, "10.9.9.9", "10.0.0.1"), 0),
              Verdict::Consumed);
    auto ns = kNsIn;
    ns[22] = 0xfe; // src fe00::2, outside fd00::/64 and fe80::/10
    fix_checksum(ns);
    EXPECT_EQ(r.on_frame(1, ns, 0), Verdict::Consumed);
    EXPECT_EQ(sent.size(), 2u);
    EXPECT_TRUE(r.entries().empty());
    EXPECT_TRUE(changes.empty());
    EXPECT_EQ(r.counters().off_subnet_ignored, 2u);
}

TEST_F(Neigh, DoesNotAnswerForAddressesThatAreNotOurs) {
    auto ns = build_ns(kPeer, multicast_mac(solicited_node(ip("fd00::3"))), ip("fd00::2"),
                       solicited_node(ip("fd00::3")), ip("fd00::3"));
    EXPECT_EQ(r.on_frame(1, ns, 0), Verdict::Consumed);
    EXPECT_EQ(r.on_frame(1, arp_from_peer(kArpRequest, "10.0.0.2", "10.0.0.3"), 0),
              Verdict::Consumed);
    // Another subnet altogether.
    EXPECT_EQ(r.on_frame(1, arp_from_peer(kArpRequest, "10.0.0.2", "192.168.1.1"), 0),
              Verdict::Consumed);
    EXPECT_TRUE(sent.empty());
    EXPECT_TRUE(r.entries().empty());
    EXPECT_EQ(r.counters().requests_not_ours, 3u);
}

TEST_F(Neigh, RetransmitsThenFailsAndFreesHeldPackets) {
    int a, b;
    r.resolve(1, ip("10.0.0.2"), 0, &a);
    r.resolve(1, ip("10.0.0.2"), 0, &b);
    r.tick(999);
    EXPECT_EQ(sent.size(), 1u);
    r.tick(1000);
    EXPECT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[1].second, kArpRequestOut);
    r.tick(2000);
    EXPECT_EQ(sent.size(), 3u);
    EXPECT_EQ(entry(1, "10.0.0.2")->probes, 3u);
    EXPECT_TRUE(released.empty());
    r.tick(3000); // retries = 3 requests unanswered
    EXPECT_EQ(sent.size(), 3u);
    EXPECT_EQ(entry(1, "10.0.0.2")->state, State::Failed);
    ASSERT_EQ(released.size(), 2u);
    EXPECT_EQ(released[0], std::make_pair(static_cast<void *>(&a), false));
    EXPECT_EQ(released[1], std::make_pair(static_cast<void *>(&b), false));
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], Change(1, ip("10.0.0.2"), std::nullopt));
    EXPECT_EQ(r.counters().failed, 1u);
    EXPECT_EQ(r.counters().arp_requests_sent, 3u);

    // While failed, more traffic is dropped without new requests.
    int c;
    r.resolve(1, ip("10.0.0.2"), 4000, &c);
    EXPECT_EQ(released.back(), std::make_pair(static_cast<void *>(&c), false));
    EXPECT_EQ(sent.size(), 3u);
    EXPECT_EQ(r.counters().held_dropped, 3u);

    // After the hold time the entry is gone and resolution may start again.
    r.tick(5999);
    EXPECT_TRUE(entry(1, "10.0.0.2"));
    r.tick(6000);
    EXPECT_FALSE(entry(1, "10.0.0.2"));
    EXPECT_EQ(changes.size(), 1u); // failure is reported once
    r.resolve(1, ip("10.0.0.2"), 6100);
    EXPECT_EQ(sent.size(), 4u);
}

TEST_F(Neigh, LateReplyRevivesFailedEntry) {
    r.resolve(1, ip("fd00::2"), 0);
    for (uint64_t t = 1000; t <= 3000; t += 1000) r.tick(t);
    ASSERT_EQ(entry(1, "fd00::2")->state, State::Failed);
    r.on_frame(1,
               build_na(kPeer, kUs, ip("fd00::2"), ip("fd00::1"), ip("fd00::2"),
                        kNaSolicited | kNaOverride),
               3500);
    EXPECT_EQ(entry(1, "fd00::2")->state, State::Reachable);
    EXPECT_EQ(changes.back(), Change(1, ip("fd00::2"), kPeer));
}

TEST_F(Neigh, ReachableEntryGoesStaleAndIsReprobedUnicast) {
    r.on_frame(1, kArpRequestIn, 0);
    sent.clear();
    r.tick(29999);
    EXPECT_TRUE(sent.empty());
    EXPECT_EQ(entry(1, "10.0.0.2")->age_ms, 29999u);
    r.tick(30000);
    ASSERT_EQ(sent.size(), 1u);
    auto probe = parse_frame(sent[0].second);
    auto *arp = std::get_if<ArpMsg>(&probe);
    ASSERT_TRUE(arp);
    EXPECT_EQ(arp->op, kArpRequest);
    EXPECT_EQ(arp->eth_dst, kPeer); // unicast to the MAC we have
    EXPECT_EQ(arp->tpa, ip("10.0.0.2"));
    EXPECT_EQ(entry(1, "10.0.0.2")->state, State::Probe);

    // Confirmed with the same MAC: reachable again, nothing to tell the FIB.
    auto reply = build_arp(kArpReply, kUs, kPeer, ip("10.0.0.2"), kUs, ip("10.0.0.1"));
    r.on_frame(1, reply, 30100);
    EXPECT_EQ(entry(1, "10.0.0.2")->state, State::Reachable);
    EXPECT_EQ(changes.size(), 1u);

    // Next time it stays silent: removed after `retries` unicast probes.
    r.tick(60100);
    r.tick(61100);
    r.tick(62100);
    EXPECT_EQ(sent.size(), 4u);
    EXPECT_EQ(entry(1, "10.0.0.2")->state, State::Probe);
    r.tick(63100);
    EXPECT_FALSE(entry(1, "10.0.0.2"));
    ASSERT_EQ(changes.size(), 2u);
    EXPECT_EQ(changes[1], Change(1, ip("10.0.0.2"), std::nullopt));
    EXPECT_EQ(r.counters().expired, 1u);
}

TEST_F(Neigh, StaleIpv6EntryIsProbedWithUnicastSolicitation) {
    r.on_frame(1, kNsIn, 0); // learned Stale
    sent.clear();
    r.tick(1);
    ASSERT_EQ(sent.size(), 1u);
    auto p = parse_frame(sent[0].second);
    auto *ns = std::get_if<NdMsg>(&p);
    ASSERT_TRUE(ns);
    EXPECT_EQ(ns->type, NdType::NeighborSolicit);
    EXPECT_EQ(ns->eth_dst, kPeer);
    EXPECT_EQ(ns->dst, ip("fd00::2"));
    EXPECT_EQ(ns->src, ip("fd00::1"));
    EXPECT_EQ(ns->ll, kUs);
    EXPECT_EQ(entry(1, "fd00::2")->state, State::Probe);
}

class NeighMalformed : public Neigh, public ::testing::WithParamInterface<int> {};

struct Malformed {
    const char *name;
    Bad reason;
    std::vector<uint8_t> frame;
};

std::vector<Malformed> malformed_frames() {
    std::vector<Malformed> out;
    auto arp = kArpRequestIn;
    out.push_back({"short ethernet", Bad::truncated, {arp.begin(), arp.begin() + 10}});
    out.push_back({"short arp", Bad::truncated, {arp.begin(), arp.begin() + 41}});
    auto f = arp;
    f[15] = 6; // htype 6 (IEEE 802)
    out.push_back({"arp htype", Bad::arp_format, f});
    f = arp;
    f[17] = 0xdd; // ptype 0x08dd
    out.push_back({"arp ptype", Bad::arp_format, f});
    f = arp;
    f[18] = 8; // hlen
    out.push_back({"arp hlen", Bad::arp_format, f});
    f = arp;
    f[19] = 16; // plen
    out.push_back({"arp plen", Bad::arp_format, f});
    f = arp;
    f[21] = 3; // RARP request
    out.push_back({"arp opcode", Bad::arp_opcode, f});
    f = arp;
    f[22] = 0x01; // sender MAC multicast
    out.push_back({"arp multicast sender", Bad::bad_sender_mac, f});

    auto ns = kNsIn;
    out.push_back({"short ipv6", Bad::truncated, {ns.begin(), ns.begin() + 50}});
    out.push_back({"payload beyond frame", Bad::truncated, {ns.begin(), ns.end() - 1}});
    f = ns;
    f[19] = 0x10; // payload length 16 < NS minimum 24
    out.push_back({"short ns", Bad::truncated, f});
    f = ns;
    f[14] = 0x40;
    out.push_back({"ip version", Bad::ip6_version, f});
    f = ns;
    f[21] = 254; // hop limit is not covered by the checksum
    out.push_back({"hop limit", Bad::hop_limit, f});
    f = ns;
    f[57] ^= 0x01;
    out.push_back({"checksum", Bad::icmp6_checksum, f});
    f = ns;
    f[79] = 0xff; // option bytes changed, checksum left stale
    out.push_back({"checksum over options", Bad::icmp6_checksum, f});
    f = ns;
    f[55] = 1;
    fix_checksum(f);
    out.push_back({"code", Bad::nd_code, f});
    f = ns;
    f[79] = 0; // option length 0 would loop forever
    fix_checksum(f);
    out.push_back({"option length 0", Bad::nd_option, f});
    f = ns;
    f[79] = 2; // 16-byte option in 8 bytes
    fix_checksum(f);
    out.push_back({"option overrun", Bad::nd_option, f});
    f = ns;
    f[62] = 0xff; // target ff00::1
    fix_checksum(f);
    out.push_back({"multicast target", Bad::nd_target, f});
    f = ns;
    std::fill(f.begin() + 22, f.begin() + 38, 0); // from :: but carrying an SLLA
    fix_checksum(f);
    out.push_back({"dad with slla", Bad::nd_dad_form, f});
    auto na = kNaOut;
    std::copy_n(kDadNaOut.begin(), 6, na.begin());            // to all-nodes MAC
    std::copy_n(kDadNaOut.begin() + 38, 16, na.begin() + 38); // and ff02::1
    fix_checksum(na);
    out.push_back({"solicited na to group", Bad::na_solicited_to_group, na});
    return out;
}

TEST_P(NeighMalformed, IsCountedAndIgnored) {
    auto m = malformed_frames()[GetParam()];
    SCOPED_TRACE(m.name);
    EXPECT_EQ(r.on_frame(1, m.frame, 0), Verdict::Invalid);
    EXPECT_EQ(r.counters().bad[static_cast<size_t>(m.reason)], 1u)
        << "counted as something other than " << bad_names[static_cast<size_t>(m.reason)];
    uint64_t total = 0;
    for (auto n : r.counters().bad) total += n;
    EXPECT_EQ(total, 1u);
    EXPECT_TRUE(sent.empty());
    EXPECT_TRUE(changes.empty());
    EXPECT_TRUE(r.entries().empty());
}

INSTANTIATE_TEST_SUITE_P(All, NeighMalformed,
                         ::testing::Range(0, static_cast<int>(malformed_frames().size())));

TEST_F(Neigh, ToleratesEthernetPaddingAfterNdPayload) {
    auto f = kNsIn;
    f.resize(f.size() + 10, 0);
    EXPECT_EQ(r.on_frame(1, f, 0), Verdict::Consumed);
    EXPECT_EQ(sent.size(), 1u);
}

TEST_F(Neigh, PassesOtherFramesToTheKernel) {
    // ICMPv6 echo request and a router solicitation.
    auto f = kNsIn;
    f[54] = 128;
    fix_checksum(f);
    EXPECT_EQ(r.on_frame(1, f, 0), Verdict::Kernel);
    EXPECT_EQ(r.counters().not_neigh, 1u);
    f[54] = static_cast<uint8_t>(NdType::RouterSolicit);
    fix_checksum(f);
    EXPECT_EQ(r.on_frame(1, f, 0), Verdict::Kernel);
    EXPECT_TRUE(sent.empty());
}

TEST_F(Neigh, IgnoresFramesUnicastToOtherMacsAndOurOwnFrames) {
    auto f = kArpRequestIn;
    std::copy_n(kPeerMoved.bytes.begin(), 6, f.begin());
    EXPECT_EQ(r.on_frame(1, f, 0), Verdict::Consumed);
    EXPECT_EQ(r.counters().not_for_us, 1u);
    r.resolve(1, ip("10.0.0.2"), 0);
    EXPECT_EQ(r.on_frame(1, kArpRequestOut, 0), Verdict::Consumed); // reflected back
    EXPECT_EQ(r.counters().own_frames, 1u);
    EXPECT_EQ(sent.size(), 1u); // just our request
}

TEST_F(Neigh, CountsConflictsWithOurAddresses) {
    auto f = arp_from_peer(kArpRequest, "10.0.0.1", "10.0.0.1"); // gratuitous, for our address
    EXPECT_EQ(r.on_frame(1, f, 0), Verdict::Consumed);
    EXPECT_EQ(r.counters().address_conflicts, 1u);
    EXPECT_TRUE(r.entries().empty());
}

TEST_F(Neigh, RejectsResolveOutsideSubnetsAndOfOwnOrMulticastAddresses) {
    int a, b, c, d;
    r.resolve(1, ip("10.9.9.9"), 0, &a);
    r.resolve(1, ip("10.0.0.1"), 0, &b);
    r.resolve(1, ip("ff02::1"), 0, &c);
    r.resolve(7, ip("10.0.0.2"), 0, &d);
    r.resolve(1, ip("10.0.0.255"), 0); // the /24's broadcast address
    EXPECT_TRUE(sent.empty());
    EXPECT_TRUE(r.entries().empty());
    ASSERT_EQ(released.size(), 4u);
    for (auto &[h, ok] : released) EXPECT_FALSE(ok);
    EXPECT_EQ(r.counters().resolve_off_subnet, 1u);
    EXPECT_EQ(r.counters().resolve_invalid_target, 3u);
    EXPECT_EQ(r.counters().unknown_interface, 1u);
    EXPECT_EQ(r.on_frame(7, kArpRequestIn, 0), Verdict::Invalid);
    EXPECT_EQ(r.counters().unknown_interface, 2u);
}

TEST_F(Neigh, KeepsInterfacesApart) {
    add_second();
    // 192.168.1.1 belongs to interface 2: not answered on 1, answered with 2's MAC on 2.
    auto req = arp_from_peer(kArpRequest, "192.168.1.2", "192.168.1.1");
    EXPECT_EQ(r.on_frame(1, req, 0), Verdict::Consumed);
    EXPECT_TRUE(sent.empty());
    EXPECT_EQ(r.on_frame(2, req, 0), Verdict::Consumed);
    ASSERT_EQ(sent.size(), 1u);
    EXPECT_EQ(sent[0].first, 2);
    auto p = parse_frame(sent[0].second);
    EXPECT_EQ(std::get<ArpMsg>(p).sha, kUs2);
    EXPECT_TRUE(entry(2, "192.168.1.2"));
    EXPECT_FALSE(entry(1, "192.168.1.2"));

    // The same link-local neighbor on both interfaces is two entries, each probed from
    // that interface's own link-local address.
    r.resolve(1, ip("fe80::ff:fe00:aa"), 0);
    r.resolve(2, ip("fe80::ff:fe00:aa"), 0);
    ASSERT_EQ(sent.size(), 3u);
    EXPECT_EQ(sent[1].second, kLinkLocalNsOut);
    EXPECT_EQ(sent[2].first, 2);
    EXPECT_EQ(std::get<NdMsg>(parse_frame(sent[2].second)).src, link_local(kUs2));
    auto na = build_na(kPeer, kUs2, ip("fe80::ff:fe00:aa"), link_local(kUs2),
                       ip("fe80::ff:fe00:aa"), kNaSolicited | kNaOverride);
    r.on_frame(2, na, 10);
    EXPECT_EQ(entry(2, "fe80::ff:fe00:aa")->state, State::Reachable);
    EXPECT_EQ(entry(1, "fe80::ff:fe00:aa")->state, State::Incomplete);

    // Subnets of one interface are not on-link on the other.
    r.resolve(1, ip("192.168.1.5"), 0);
    EXPECT_EQ(r.counters().resolve_off_subnet, 1u);

    // Removing interface 2 reports its neighbors gone and frees what it held.
    int h;
    r.resolve(2, ip("fd01::9"), 20, &h);
    changes.clear();
    r.remove_interface(2);
    EXPECT_EQ(changes.size(), 3u);
    for (auto &[ifid, a, m] : changes) {
        EXPECT_EQ(ifid, 2);
        EXPECT_FALSE(m);
    }
    EXPECT_EQ(released.back(), std::make_pair(static_cast<void *>(&h), false));
    for (const auto &e : r.entries()) EXPECT_EQ(e.ifid, 1);
    EXPECT_EQ(r.on_frame(2, req, 30), Verdict::Invalid);
}

TEST_F(Neigh, ReplacingInterfaceDropsNeighborsOutsideNewSubnets) {
    r.on_frame(1, kArpRequestIn, 0);
    r.on_frame(1, kNsIn, 0);
    changes.clear();
    r.add_interface({1, kUs, {pfx("10.1.0.1/24")}, {pfx("fd00::1/64")}});
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0], Change(1, ip("10.0.0.2"), std::nullopt));
    EXPECT_TRUE(entry(1, "fd00::2"));
}

TEST(NeighPackets, ChecksumOfBuiltFramesVerifies) {
    auto f = build_ns(kUs, kPeer, ip("fd00::1"), ip("fd00::2"), ip("fd00::2"));
    EXPECT_TRUE(std::holds_alternative<NdMsg>(parse_frame(f)));
    const uint8_t *ip6 = f.data() + kEthHeaderLen;
    EXPECT_EQ(icmp6_checksum(IpAddr::v6(ip6 + 8), IpAddr::v6(ip6 + 24),
                             {ip6 + kIpv6HeaderLen, f.size() - kEthHeaderLen - kIpv6HeaderLen}),
              0);
    EXPECT_EQ(solicited_node(ip("fd00::12:3456:789a")), ip("ff02::1:ff56:789a"));
    EXPECT_EQ(multicast_mac(ip("ff02::1:ff56:789a")), mac("33:33:ff:56:78:9a"));
}

TEST(NeighResolver, RejectsUnusableSettings) {
    Callbacks cb{[](uint16_t, const std::vector<uint8_t> &) {},
                 [](uint16_t, const IpAddr &, std::optional<MacAddr>) {}, [](void *, bool) {}};
    auto t = timers();
    t.retries = 0;
    EXPECT_THROW(Resolver(t, cb).tick(0), std::invalid_argument);
    EXPECT_THROW(Resolver(timers(), Callbacks{}).tick(0), std::invalid_argument);
}

} // namespace
