// When ICMP errors must not be sent (RFC 1812 4.3.2.7, RFC 4443 2.4), how much they
// quote, echo replies and the choice of our source address. The bytes of the messages
// themselves are compared with independently built frames in tests/packet/vxlan_test.cpp.
#include "control/icmp/icmp.hpp"
#include "tests/packet/frames.hpp"

#include <gtest/gtest.h>

using namespace vleaf;
using namespace vleaf::test;

namespace {

IpAddr A(const char *s) {
    return *IpAddr::parse(s);
}

const MacAddr kA{{2, 0, 0, 0, 0, 1}}, kB{{2, 0, 0, 0, 0, 2}};

std::optional<std::vector<uint8_t>> too_big(const Frame &f, const char *from = "10.0.0.1") {
    return icmp::too_big(f, A(from), 1450, false, kA, kB);
}

Frame df(V4 v) {
    v.frag = 0x4000;
    return ipv4(kB, kA, v);
}

TEST(Icmp, FragNeededOnlyForDfPacketsFromUnicastSources) {
    EXPECT_TRUE(too_big(df({.payload = 1500})));
    EXPECT_FALSE(too_big(ipv4(kB, kA, {.payload = 1500})));                      // no DF
    EXPECT_FALSE(too_big(df({.src = "0.0.0.0", .payload = 1500})));              // unspecified
    EXPECT_FALSE(too_big(df({.src = "224.0.0.5", .payload = 1500})));            // multicast
    EXPECT_FALSE(too_big(df({.dst = "239.1.1.1", .payload = 1500})));            // to a group
    EXPECT_FALSE(too_big(df({.dst = "255.255.255.255", .payload = 1500})));      // broadcast
    EXPECT_FALSE(too_big(ipv4(kB, kA, {.payload = 1500, .frag = 0x4000 | 10}))); // later fragment
    EXPECT_FALSE(too_big(df({.payload = 1500}), "fd00::1")); // source of the other family
}

TEST(Icmp, NoErrorAboutAnError) {
    Frame err = icmp4(kB, kA, "10.0.1.2", "10.0.2.2", 3, 1, 0, Frame(1500, 0));
    err[14 + 6] = 0x40; // DF
    put16(err, 14 + 10, 0);
    put16(err, 14 + 10, checksum(&err[14], 20));
    EXPECT_FALSE(too_big(err));
    Frame echo = icmp4(kB, kA, "10.0.1.2", "10.0.2.2", 8, 0, 0, Frame(1500, 0));
    echo[14 + 6] = 0x40;
    EXPECT_TRUE(too_big(echo));
    EXPECT_FALSE(
        too_big(icmp6(kB, kA, "fd00:1::2", "fd00:2::2", 1, 4, 0, Frame(1500, 0)), "fd00::1"));
    EXPECT_TRUE(
        too_big(icmp6(kB, kA, "fd00:1::2", "fd00:2::2", 128, 0, 0, Frame(1500, 0)), "fd00::1"));
}

TEST(Icmp, QuotesUpTo576Or1280Bytes) {
    auto small = too_big(df({.payload = 100}));
    ASSERT_TRUE(small);
    EXPECT_EQ(small->size(), 14 + 20 + 8 + 20 + 8 + 100u);
    auto v4 = too_big(df({.payload = 3000}));
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->size(), 14 + 576u);
    auto v6 = too_big(ipv6(kB, kA, {.payload = 3000}), "fd00::1");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->size(), 14 + 1280u);
    // Ethernet padding after a short packet is not quoted.
    Frame padded = df({.payload = 2});
    padded.resize(60, 0xee);
    auto p = too_big(padded);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->size(), 14 + 28 + 30u);
}

TEST(Icmp, ForwardedPacketsAreQuotedAsTheyArrived) {
    Frame in = df({.ttl = 64, .payload = 1500});
    Frame after = routed(in, kB, kA); // TTL 63, checksum updated
    auto err = icmp::too_big(after, A("10.0.0.1"), 1450, true, kA, kB);
    ASSERT_TRUE(err);
    Frame quote(err->begin() + 14 + 28, err->end());
    EXPECT_EQ(quote, ip_part(in, quote.size()));
}

TEST(Icmp, EchoRepliesOnlyToEchoRequests) {
    Frame body(20, 7);
    auto r = icmp::echo_reply(icmp4(kB, kA, "10.0.1.2", "10.0.2.2", 8, 0, 0x10002, body));
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, icmp4(kA, kB, "10.0.2.2", "10.0.1.2", 0, 0, 0x10002, body));
    EXPECT_FALSE(icmp::echo_reply(icmp4(kB, kA, "10.0.1.2", "10.0.2.2", 0, 0, 0x10002, body)));
    EXPECT_FALSE(icmp::echo_reply(ipv4(kB, kA, {.proto = 1})));
    auto r6 = icmp::echo_reply(icmp6(kB, kA, "fd00:1::2", "fd00:2::2", 128, 0, 7, body));
    ASSERT_TRUE(r6);
    EXPECT_EQ(*r6, icmp6(kA, kB, "fd00:2::2", "fd00:1::2", 129, 0, 7, body));
    EXPECT_FALSE(icmp::echo_reply(icmp6(kB, kA, "fd00:1::2", "fd00:2::2", 135, 0, 7, body)));
    EXPECT_FALSE(icmp::echo_reply(Frame(10, 0)));
}

TEST(Icmp, SourceIsTheAddressOfTheSubnetElseTheFirstOfTheFamily) {
    std::vector<Prefix> ours{*Prefix::parse("10.1.0.1/24", true),
                             *Prefix::parse("10.2.0.1/24", true),
                             *Prefix::parse("fd00:2::1/64", true)};
    EXPECT_EQ(icmp::source_for(ours, A("10.2.0.7")), A("10.2.0.1"));
    EXPECT_EQ(icmp::source_for(ours, A("192.0.2.1")), A("10.1.0.1"));
    EXPECT_EQ(icmp::source_for(ours, A("fd00:9::1")), A("fd00:2::1"));
    EXPECT_FALSE(icmp::source_for({ours[0]}, A("fd00:9::1")));
    EXPECT_EQ(icmp::source_of(ipv4(kB, kA, {})), A("10.0.1.2"));
    EXPECT_EQ(icmp::destination_of(ipv6(kB, kA, {})), A("fd00:2::2"));
    EXPECT_FALSE(icmp::source_of(l2(kB, kA, 0x0806, 28)));
}

} // namespace
